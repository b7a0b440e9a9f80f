//! Why a token or nonce was refused.

/// `provider/AUTH.md` §7 text for a bad signature or a key that is not the address's.
const NOT_SIGNED: &str = "the proof is not signed by this address's key";
/// §7 text for a replayed, unknown or stale nonce (the phone retries once).
const STALE: &str = "stale proof: retry";
/// §7 text for an expired token.
const EXPIRED: &str = "expired proof: check the computer's clock";

/// Why a token or nonce was refused. One variant per check; `Display` is the text the phone shows
/// (AUTH.md §7) where §7 has one, else a short reason. Never contains the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is empty or longer than [`crate::MAX_TOKEN_LEN`] (or a part exceeds its limit).
    #[error("malformed proof: wrong size")]
    BadSize,
    /// Not three dot-separated parts.
    #[error("malformed proof: not a compact JWS")]
    BadShape,
    /// A part is not unpadded, canonical base64url.
    #[error("malformed proof: bad base64url")]
    BadBase64,
    /// The header is not the JSON object `{"alg","typ","kid"}`.
    #[error("malformed proof: bad header")]
    BadHeader,
    /// `alg` is not `ES256` (`none` included).
    #[error("malformed proof: algorithm must be ES256")]
    UnsupportedAlg,
    /// `typ` is present and not `JWT`.
    #[error("malformed proof: typ must be JWT")]
    BadType,
    /// `kid` is not 66 hex digits of a valid compressed P-256 point.
    #[error("malformed proof: kid must be a compressed P-256 public key in hex")]
    BadKid,
    /// The payload is not a JSON object with the expected claims and types.
    #[error("malformed proof: bad claims")]
    BadPayload,
    /// The signature does not verify with the key in `kid`.
    #[error("{}", NOT_SIGNED)]
    BadSignature,
    /// The key in `kid` is neither the address's device key nor its own account key (§3 point 2).
    #[error("{}", NOT_SIGNED)]
    KeyNotAddress,
    /// `aud` is not this provider.
    #[error("proof is for another provider")]
    WrongAudience,
    /// `nonce` missing or not the one expected.
    #[error("{}", STALE)]
    WrongNonce,
    /// `cid` is not the request's Call-ID (or `credentials`).
    #[error("proof is for another call")]
    WrongCallId,
    /// `iat` is more than [`crate::IAT_SKEW_SECS`] in the future.
    #[error("proof issued in the future: check the computer's clock")]
    IssuedInFuture,
    /// `exp < iat` or `exp − iat` exceeds [`crate::MAX_LIFETIME_SECS`].
    #[error("proof lifetime too long")]
    BadLifetime,
    /// `now > exp`.
    #[error("{}", EXPIRED)]
    Expired,
    /// `iss` is not the AOR user part (the address being registered).
    #[error("proof is for another address")]
    WrongIssuer,
    /// `sub` is present and not `sip:ISS@AUD`.
    #[error("proof subject does not match its issuer")]
    WrongSubject,
    /// `inst` missing or not the Contact's `+sip.instance`.
    #[error("proof is for another device instance")]
    WrongInstance,
    /// The nonce is not one of ours (bad encoding, bad MAC or another Call-ID).
    #[error("{}", STALE)]
    UnknownNonce,
    /// The nonce is older than [`crate::NONCE_LIFETIME_SECS`] or dated in the future.
    #[error("{}", STALE)]
    StaleNonce,
    /// The nonce was already used.
    #[error("{}", STALE)]
    ReplayedNonce,
}
