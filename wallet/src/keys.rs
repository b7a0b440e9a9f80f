//! secp256r1 keys, WIF and N3 signatures.

use std::fmt;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::hash::{AddressError, ScriptHash, base58check_decode, base58check_encode};
use crate::script::VerificationScript;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a valid secp256r1 private scalar.
    #[error("not a valid secp256r1 private key")]
    InvalidPrivateKey,
    /// The bytes are not a valid compressed secp256r1 point.
    #[error("not a valid compressed secp256r1 public key")]
    InvalidPublicKey,
    /// The WIF string is malformed (the text is never echoed: it is a secret).
    #[error("not a valid WIF private key: {0}")]
    InvalidWif(WifError),
}

/// What is wrong with a WIF string. The messages never hold the string: it is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WifError {
    /// A character outside the Base58 alphabet (0, O, I and l are not in it).
    #[error(
        "it has a character that is not Base58 (0, O, I and l never appear in one); copy it again"
    )]
    NotBase58,
    /// The last four bytes do not match: a typo or a cut.
    #[error("its checksum does not match, so a character is wrong or missing; copy it again")]
    BadChecksum,
    /// Not 34 bytes (a WIF is 52 characters).
    #[error(
        "it is {0} bytes long instead of 34 (a WIF is 52 characters starting with K or L); copy all of it"
    )]
    BadLength(usize),
    /// The first byte is not 0x80.
    #[error(
        "its version byte is 0x{0:02x} instead of 0x80, so it is not a NEO WIF private key; export the key as WIF from your wallet"
    )]
    BadVersion(u8),
    /// The last byte is not 0x01 (an uncompressed-key WIF, which NEO does not use).
    #[error(
        "it is not flagged for a compressed public key (the 0x01 that NEO WIFs end with); export the key from a NEO wallet"
    )]
    NotCompressed,
    /// The 32 bytes are not a valid secp256r1 scalar.
    #[error("the 32 key bytes are not a valid secp256r1 private key")]
    BadKey,
}

/// A secp256r1 private key. Zeroized on drop; `Debug` never shows it.
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// A new random key from the OS random number generator.
    pub fn generate() -> Self {
        PrivateKey(SigningKey::random(&mut rand_core::OsRng))
    }

    /// From 32 big-endian bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_slice(b)
            .map(PrivateKey)
            .map_err(|_| KeyError::InvalidPrivateKey)
    }

    /// The 32 secret bytes, in a buffer that is zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes().into())
    }

    /// Parses WIF (`0x80 ‖ key ‖ 0x01`, Base58Check).
    pub fn from_wif(wif: &str) -> Result<Self, KeyError> {
        let bad = KeyError::InvalidWif;
        let p = Zeroizing::new(base58check_decode(wif.trim()).map_err(|e| {
            bad(match e {
                AddressError::BadChecksum => WifError::BadChecksum,
                AddressError::BadLength(n) => WifError::BadLength(n),
                _ => WifError::NotBase58,
            })
        })?);
        if p.len() != 34 {
            return Err(bad(WifError::BadLength(p.len())));
        }
        if p[0] != 0x80 {
            return Err(bad(WifError::BadVersion(p[0])));
        }
        if p[33] != 0x01 {
            return Err(bad(WifError::NotCompressed));
        }
        Self::from_bytes(&p[1..33]).map_err(|_| bad(WifError::BadKey))
    }

    /// Encodes as WIF. The string is a secret: it is zeroized on drop.
    pub fn to_wif(&self) -> Zeroizing<String> {
        let mut p = Zeroizing::new([0u8; 34]);
        p[0] = 0x80;
        p[1..33].copy_from_slice(&*self.to_bytes());
        p[33] = 0x01;
        Zeroizing::new(base58check_encode(&*p))
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Signs `message` as NEO does: ECDSA over SHA-256(message), RFC 6979 nonces, 64-byte `r ‖ s`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig: Signature = self.0.sign(message);
        sig.to_bytes().into()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A secp256r1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From 33 compressed (or 65 uncompressed) SEC1 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(b)
            .map(PublicKey)
            .map_err(|_| KeyError::InvalidPublicKey)
    }

    /// From hex of the compressed form.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let b = hex::decode(s.trim()).map_err(|_| KeyError::InvalidPublicKey)?;
        Self::from_bytes(&b)
    }

    /// The 33-byte compressed encoding (`02`/`03` ‖ X).
    pub fn to_compressed(&self) -> [u8; 33] {
        let p = self.0.to_encoded_point(true);
        p.as_bytes()
            .try_into()
            .expect("compressed point is 33 bytes")
    }

    /// Hex of the compressed encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_compressed())
    }

    /// `(X, Y)` as big-endian bytes; neo-go orders multisig keys by these.
    pub(crate) fn xy(&self) -> ([u8; 32], [u8; 32]) {
        let p = self.0.to_encoded_point(false);
        let x = p.x().expect("not identity");
        let y = p.y().expect("uncompressed");
        ((*x).into(), (*y).into())
    }

    /// The single-signature verification script of this key.
    pub fn verification_script(&self) -> VerificationScript {
        VerificationScript::single(self)
    }

    /// Script hash of the single-signature account.
    pub fn script_hash(&self) -> ScriptHash {
        self.verification_script().script_hash()
    }

    /// N3 address of the single-signature account.
    pub fn address(&self) -> String {
        self.script_hash().to_address()
    }

    /// Checks a 64-byte `r ‖ s` signature over SHA-256(message).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match Signature::from_slice(signature) {
            Ok(sig) => self.0.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIV: &str = "84180ac9d6eb6fba207ea4ef9d2200102d1ebeb4b9c07e2c6a738a42742e27a5";

    #[test]
    fn reference_key_derives_address_and_wif() {
        let k = PrivateKey::from_bytes(&hex::decode(PRIV).unwrap()).unwrap();
        let pk = k.public_key();
        assert_eq!(
            pk.to_hex(),
            "033a4d051b04b7fc0230d2b1aaedfd5a84be279a5361a7358db665ad7857787f1b"
        );
        assert_eq!(pk.address(), "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP");
        assert_eq!(
            pk.script_hash().to_hex(),
            "0x69ecca587293047be4c59159bf8bc399985c160d"
        );
        assert_eq!(
            &*k.to_wif(),
            "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E"
        );
        let back = PrivateKey::from_wif(&k.to_wif()).unwrap();
        assert_eq!(back.public_key(), pk);
    }

    #[test]
    fn sign_and_verify() {
        let k = PrivateKey::generate();
        let sig = k.sign(b"hello");
        assert!(k.public_key().verify(b"hello", &sig));
        assert!(!k.public_key().verify(b"hellO", &sig));
        assert!(!k.public_key().verify(b"hello", &sig[..63]));
    }

    #[test]
    fn debug_does_not_leak() {
        let k = PrivateKey::from_bytes(&hex::decode(PRIV).unwrap()).unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("84180a"));
        assert!(!s.to_lowercase().contains(&PRIV[..8]));
    }

    #[test]
    fn bad_wif_is_rejected_with_the_reason() {
        let wif = "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E";
        let err = |s: &str| match PrivateKey::from_wif(s).unwrap_err() {
            KeyError::InvalidWif(e) => e,
            other => panic!("{other:?}"),
        };
        // cut short: the checksum is then over the wrong bytes
        assert_eq!(err(&wif[..51]), WifError::BadChecksum);
        let mut w = wif.to_string();
        w.replace_range(10..11, "x");
        assert_eq!(err(&w), WifError::BadChecksum);
        w.replace_range(10..11, "0");
        assert_eq!(err(&w), WifError::NotBase58);
        assert_eq!(err("1111"), WifError::BadLength(4));
        let key = hex::decode(PRIV).unwrap();
        let with = |version: u8, flag: &[u8]| {
            let mut p = vec![version];
            p.extend_from_slice(&key);
            p.extend_from_slice(flag);
            base58check_encode(&p)
        };
        assert_eq!(err(&with(0x80, &[])), WifError::BadLength(33));
        assert_eq!(err(&with(0xef, &[0x01])), WifError::BadVersion(0xef));
        assert_eq!(err(&with(0x80, &[0x00])), WifError::NotCompressed);
        assert!(PrivateKey::from_wif(&with(0x80, &[0x01])).is_ok());
        // a zero scalar is not a key
        let mut zero = vec![0x80];
        zero.extend_from_slice(&[0; 32]);
        zero.push(0x01);
        assert_eq!(err(&base58check_encode(&zero)), WifError::BadKey);
        // no message holds the WIF or a part of it
        for bad in [&wif[..51], &w] {
            let msg = PrivateKey::from_wif(bad).unwrap_err().to_string();
            assert!(
                !msg.contains(&wif[..8]) && !msg.contains(&wif[40..]),
                "{msg}"
            );
            assert!(msg.contains("copy it again"), "{msg}");
        }
    }
}
