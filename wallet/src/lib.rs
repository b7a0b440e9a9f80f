//! NEO N3 wallet primitives for KRYPTON.
//!
//! Knows nothing of the network: keys ([`PrivateKey`], [`PublicKey`]), script hashes and
//! addresses ([`ScriptHash`]), verification scripts, NEP-2 key encryption, NEP-6 wallet
//! files and the OS keychain that stores them.

mod hash;
mod keys;
mod script;

pub use hash::{AddressError, ScriptHash, base58check_decode, base58check_encode, sha256};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use script::{MultisigScript, VerificationScript, VerificationScriptError};

/// N3 address version byte (addresses start with `N`).
pub const ADDRESS_VERSION_N3: u8 = 0x35;
/// Legacy NEO 2 address version byte (addresses start with `A`).
pub const ADDRESS_VERSION_NEO2: u8 = 0x17;
