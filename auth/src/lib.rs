//! KRYPTON provider authentication: the token part of `provider/AUTH.md` §3–§6.
//!
//! Sans-IO: nothing here reads a clock, the network or a file. Callers pass `now` (unix seconds).
//!
//! - [`mint`] signs [`Claims`] as an ES256 compact JWS with a wallet key (`kid` = the 33-byte
//!   compressed public key in hex); the signature is NEO's raw 64-byte `r ‖ s`.
//! - [`verify`] parses a token strictly, checks the signature against `kid` and the claims
//!   against [`Expected`] (§4), and returns the [`Verified`] issuer, key and claims.
//! - [`key_matches_address`] is the key-to-address check (§3 point 2).
//! - [`NonceIssuer`] issues and checks stateless HMAC nonces and remembers used ones.
//!
//! Every failure is its own [`AuthError`] variant; its `Display` text is the user-facing reason of
//! AUTH.md §7 where one applies.

#![warn(missing_docs)]

mod error;
mod nonce;
mod token;

pub use error::AuthError;
pub use nonce::{NONCE_LIFETIME_SECS, NonceIssuer};
pub use token::{
    CREDENTIALS_CID, Claims, Expected, IAT_SKEW_SECS, MAX_LIFETIME_SECS, MAX_TOKEN_LEN, Verified,
    key_matches_address, mint, verify,
};
