//! NEO N3 wallet primitives for KRYPTON.
//!
//! Knows nothing of the network: keys ([`PrivateKey`], [`PublicKey`]), script hashes and
//! addresses ([`ScriptHash`]), verification scripts, NEP-2 key encryption, NEP-6 wallet
//! files and the OS keychain that stores them.

#![warn(missing_docs)]

mod hash;
mod keychain;
mod keys;
mod nep2;
mod nep6;
mod script;
mod unlocked;

pub use hash::{AddressError, ScriptHash, base58check_decode, base58check_encode, sha256};
pub use keychain::{Keychain, KeychainError, KeystoreKind, init_process_keyring};
pub use keys::{KeyError, PrivateKey, PublicKey, WifError};
pub use nep2::{
    Nep2Error, Nep2Flavor, ScryptParams, neo2_address, nep2_decrypt, nep2_decrypt_legacy_aware,
    nep2_encrypt, nep2_encrypt_neo2,
};
pub use nep6::{Nep6Account, Nep6Contract, Nep6Error, Nep6Parameter, Nep6Wallet};
pub use script::{MultisigScript, VerificationScript, VerificationScriptError};
pub use unlocked::{LockedError, UnlockedWallet};

/// N3 address version byte (addresses start with `N`).
pub const ADDRESS_VERSION_N3: u8 = 0x35;
/// Legacy NEO 2 address version byte (addresses start with `A`).
pub const ADDRESS_VERSION_NEO2: u8 = 0x17;
