//! NEP-2 password-encrypted private keys (`6P…`).
//!
//! `dk = scrypt(NFC(password), addresshash, n, r, p, 64)`,
//! `enc = AES-256-ECB(key = dk[32..64], privkey XOR dk[0..32])`,
//! output `Base58Check(01 42 E0 ‖ addresshash ‖ enc)`.

use aes::Aes256;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::hash::{ScriptHash, base58check_decode, base58check_encode, sha256};
use crate::keys::PrivateKey;
use crate::{ADDRESS_VERSION_N3, ADDRESS_VERSION_NEO2};

const PREFIX: [u8; 3] = [0x01, 0x42, 0xe0];
const PAYLOAD_LEN: usize = 39;
/// Largest scrypt working memory (`128 · n · r` bytes) a file may ask for: 1 GiB.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Largest scrypt work (`n · r · p`) a file may ask for: 64 × the NEP-2 default.
const MAX_SCRYPT_WORK: u64 = 1 << 26;

/// scrypt cost parameters, as stored in a NEP-6 file's `scrypt` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScryptParams {
    /// CPU/memory cost (a power of two ≥ 2).
    pub n: u64,
    /// Block size (≥ 1).
    pub r: u32,
    /// Parallelism (≥ 1).
    pub p: u32,
}

impl ScryptParams {
    /// The NEP-2 default, 16384/8/8, which new wallets use.
    pub const DEFAULT: ScryptParams = ScryptParams {
        n: 16384,
        r: 8,
        p: 8,
    };

    /// Checks the parameters are valid and cheap enough to run (≤ 1 GiB of memory).
    pub fn validate(&self) -> Result<(), Nep2Error> {
        let bad = |reason: &'static str| {
            Err(Nep2Error::BadScryptParams {
                params: *self,
                reason,
            })
        };
        if self.n < 2 || !self.n.is_power_of_two() {
            return bad("n must be a power of two of at least 2");
        }
        if self.r == 0 || self.p == 0 {
            return bad("r and p must be at least 1");
        }
        let mem = self
            .n
            .checked_mul(u64::from(self.r))
            .and_then(|x| x.checked_mul(128));
        if mem.is_none_or(|m| m > MAX_SCRYPT_MEMORY) {
            return bad("they need more than 1 GiB of memory");
        }
        let work = self
            .n
            .checked_mul(u64::from(self.r))
            .and_then(|x| x.checked_mul(u64::from(self.p)));
        if work.is_none_or(|w| w > MAX_SCRYPT_WORK) {
            return bad("they would take far too long to compute");
        }
        Ok(())
    }

    fn to_scrypt(self) -> Result<scrypt::Params, Nep2Error> {
        self.validate()?;
        let log_n = self.n.trailing_zeros() as u8;
        scrypt::Params::new(log_n, self.r, self.p, 64).map_err(|_| Nep2Error::BadScryptParams {
            params: self,
            reason: "scrypt rejects them (n must be below 2^(16·r))",
        })
    }
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a NEP-2 key could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nep2Error {
    /// Not Base58Check, or not 39 bytes starting `01 42 E0`.
    #[error(
        "not a NEP-2 encrypted key (expected 58 characters starting with 6P); check that the whole key was copied"
    )]
    Malformed,
    /// The password does not decrypt this key.
    #[error("wrong password")]
    WrongPassword,
    /// The scrypt parameters are invalid or too expensive.
    #[error("unusable scrypt parameters n={} r={} p={}: {reason}; the wallet file may be corrupt or hostile", params.n, params.r, params.p)]
    BadScryptParams {
        /// The rejected parameters.
        params: ScryptParams,
        /// What is wrong with them.
        reason: &'static str,
    },
}

/// Which address the NEP-2 address hash was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nep2Flavor {
    /// The N3 (`N…`) address: a key written by N3 wallets.
    N3,
    /// The NEO 2 (`A…`) address: a key exported from a legacy NEO 2 wallet.
    Neo2Legacy,
}

/// The NEO 2 address of a key: version 0x17 over the hash of the NEO 2 single-signature script
/// `PUSHBYTES33 <key> CHECKSIG` (`21 … AC`), which differs from N3's script.
pub fn neo2_address(key: &crate::keys::PublicKey) -> String {
    let mut script = Vec::with_capacity(35);
    script.push(0x21);
    script.extend_from_slice(&key.to_compressed());
    script.push(0xac);
    ScriptHash::of_script(&script).to_address_with_version(ADDRESS_VERSION_NEO2)
}

fn address_hash(key: &PrivateKey, version: u8) -> [u8; 4] {
    let pk = key.public_key();
    let addr = if version == ADDRESS_VERSION_NEO2 {
        neo2_address(&pk)
    } else {
        pk.script_hash().to_address_with_version(version)
    };
    let h = sha256(&sha256(addr.as_bytes()));
    [h[0], h[1], h[2], h[3]]
}

fn derive(
    password: &str,
    salt: &[u8; 4],
    params: ScryptParams,
) -> Result<Zeroizing<[u8; 64]>, Nep2Error> {
    let sp = params.to_scrypt()?;
    let pw: Zeroizing<String> = Zeroizing::new(password.nfc().collect());
    let mut dk = Zeroizing::new([0u8; 64]);
    scrypt::scrypt(pw.as_bytes(), salt, &sp, &mut *dk).map_err(|_| Nep2Error::BadScryptParams {
        params,
        reason: "scrypt rejects the output length",
    })?;
    Ok(dk)
}

fn encrypt_with_hash(
    key: &PrivateKey,
    password: &str,
    params: ScryptParams,
    ah: [u8; 4],
) -> Result<String, Nep2Error> {
    let dk = derive(password, &ah, params)?;
    let mut block = Zeroizing::new([0u8; 32]);
    let sk = key.to_bytes();
    for i in 0..32 {
        block[i] = sk[i] ^ dk[i];
    }
    let cipher = Aes256::new(GenericArray::from_slice(&dk[32..64]));
    for chunk in block.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(chunk));
    }
    let mut payload = Zeroizing::new([0u8; PAYLOAD_LEN]);
    payload[..3].copy_from_slice(&PREFIX);
    payload[3..7].copy_from_slice(&ah);
    payload[7..].copy_from_slice(&*block);
    Ok(base58check_encode(&*payload))
}

/// Encrypts `key` as NEP-2 for N3 (the address hash is taken from the key's `N…` address).
///
/// Deterministic: the same key, password and parameters always give the same string.
pub fn nep2_encrypt(
    key: &PrivateKey,
    password: &str,
    params: ScryptParams,
) -> Result<String, Nep2Error> {
    encrypt_with_hash(key, password, params, address_hash(key, ADDRESS_VERSION_N3))
}

/// Decrypts an N3 NEP-2 key. A key whose address hash does not match gives [`Nep2Error::WrongPassword`].
pub fn nep2_decrypt(
    nep2: &str,
    password: &str,
    params: ScryptParams,
) -> Result<PrivateKey, Nep2Error> {
    match nep2_decrypt_legacy_aware(nep2, password, params, false)? {
        (k, Nep2Flavor::N3) => Ok(k),
        _ => Err(Nep2Error::WrongPassword),
    }
}

/// Decrypts a NEP-2 key; with `allow_neo2`, a key whose hash matches the NEO 2 (`A…`) address of the
/// decrypted key is accepted too, and the flavor that matched is returned.
///
/// The private key is the same secp256r1 key in both cases; only the address used for the hash differs.
pub fn nep2_decrypt_legacy_aware(
    nep2: &str,
    password: &str,
    params: ScryptParams,
    allow_neo2: bool,
) -> Result<(PrivateKey, Nep2Flavor), Nep2Error> {
    let payload =
        Zeroizing::new(base58check_decode(nep2.trim()).map_err(|_| Nep2Error::Malformed)?);
    if payload.len() != PAYLOAD_LEN || payload[..3] != PREFIX {
        return Err(Nep2Error::Malformed);
    }
    let mut ah = [0u8; 4];
    ah.copy_from_slice(&payload[3..7]);
    let dk = derive(password, &ah, params)?;
    let cipher = Aes256::new(GenericArray::from_slice(&dk[32..64]));
    let mut block = Zeroizing::new([0u8; 32]);
    block.copy_from_slice(&payload[7..]);
    for chunk in block.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(chunk));
    }
    for i in 0..32 {
        block[i] ^= dk[i];
    }
    // A wrong password gives random bytes, which are almost always a valid scalar; if not, it is still
    // a wrong password.
    let key = PrivateKey::from_bytes(&*block).map_err(|_| Nep2Error::WrongPassword)?;
    if bool::from(address_hash(&key, ADDRESS_VERSION_N3).ct_eq(&ah)) {
        return Ok((key, Nep2Flavor::N3));
    }
    if allow_neo2 && bool::from(address_hash(&key, ADDRESS_VERSION_NEO2).ct_eq(&ah)) {
        tracing::info!("NEP-2 key matched its NEO 2 address hash (legacy import)");
        return Ok((key, Nep2Flavor::Neo2Legacy));
    }
    Err(Nep2Error::WrongPassword)
}

/// Re-encrypts a legacy NEO 2 NEP-2 key so N3 tools accept it (same key, N3 address hash).
pub fn nep2_encrypt_neo2(
    key: &PrivateKey,
    password: &str,
    params: ScryptParams,
) -> Result<String, Nep2Error> {
    encrypt_with_hash(
        key,
        password,
        params,
        address_hash(key, ADDRESS_VERSION_NEO2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const N3_NEP2: &str = "6PYM7jHL4GmS8Aw2iEFpuaHTCUKjhT4mwVqdoozGU6sUE25BjV4ePXDdLz";
    const N3_PRIV: &str = "84180ac9d6eb6fba207ea4ef9d2200102d1ebeb4b9c07e2c6a738a42742e27a5";
    const NEO2_NEP2: &str = "6PYVPVe1fQznphjbUxXP9KZJqPMVnVwCx5s5pr5axRJ8uHkMtZg97eT5kL";
    const NEO2_PRIV: &str = "cbf4b9f70470856bb4f40f80b87edb90865997ffee6df315ab166d713af433a5";
    const WEAK: ScryptParams = ScryptParams { n: 2, r: 1, p: 1 };

    fn key(h: &str) -> PrivateKey {
        PrivateKey::from_bytes(&hex::decode(h).unwrap()).unwrap()
    }

    #[test]
    fn n3_reference_vector_decrypts_and_reencrypts_exactly() {
        let k = nep2_decrypt(N3_NEP2, "neo", ScryptParams::DEFAULT).unwrap();
        assert_eq!(hex::encode(*k.to_bytes()), N3_PRIV);
        assert_eq!(
            k.public_key().address(),
            "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP"
        );
        assert_eq!(
            nep2_encrypt(&k, "neo", ScryptParams::DEFAULT).unwrap(),
            N3_NEP2
        );
    }

    #[test]
    fn wrong_password_is_reported() {
        let err = nep2_decrypt(N3_NEP2, "oen", ScryptParams::DEFAULT).unwrap_err();
        assert_eq!(err, Nep2Error::WrongPassword);
        assert_eq!(err.to_string(), "wrong password");
    }

    #[test]
    fn neo2_spec_vector_needs_legacy_flag() {
        let p = ScryptParams::DEFAULT;
        assert_eq!(
            nep2_decrypt(NEO2_NEP2, "TestingOneTwoThree", p).unwrap_err(),
            Nep2Error::WrongPassword
        );
        let (k, flavor) =
            nep2_decrypt_legacy_aware(NEO2_NEP2, "TestingOneTwoThree", p, true).unwrap();
        assert_eq!(flavor, Nep2Flavor::Neo2Legacy);
        assert_eq!(hex::encode(*k.to_bytes()), NEO2_PRIV);
        assert_eq!(
            neo2_address(&k.public_key()),
            "AStZHy8E6StCqYQbzMqi4poH7YNDHQKxvt"
        );
        // The N3 address of the same key differs in script as well as version byte.
        assert_ne!(
            k.public_key()
                .script_hash()
                .to_address_with_version(ADDRESS_VERSION_NEO2),
            "AStZHy8E6StCqYQbzMqi4poH7YNDHQKxvt"
        );
        assert_eq!(
            nep2_encrypt_neo2(&k, "TestingOneTwoThree", p).unwrap(),
            NEO2_NEP2
        );
        // An N3 key still reports the N3 flavor through the legacy-aware path.
        let (_, f) = nep2_decrypt_legacy_aware(N3_NEP2, "neo", p, true).unwrap();
        assert_eq!(f, Nep2Flavor::N3);
        // A wrong password is still wrong with the legacy flag.
        assert_eq!(
            nep2_decrypt_legacy_aware(NEO2_NEP2, "testingOneTwoThree", p, true).unwrap_err(),
            Nep2Error::WrongPassword
        );
    }

    #[test]
    fn nfc_password_from_neogo_wallet() {
        // neo-go wallet made with the NFC password "café" (vectors.json `nfc_password`).
        let nep2 = "6PYMN7QV7SmzpDG5utX6ae7qxvJ9w9iK1xjYJRGjHJcKzszmDkPKkXfJgZ";
        let decomposed = "cafe\u{301}";
        let composed = "caf\u{e9}";
        let a = nep2_decrypt(nep2, decomposed, ScryptParams::DEFAULT).unwrap();
        assert_eq!(
            a.public_key().address(),
            "NbevhJXQHNmyc9YemzbwLyt7g7kmcKPY1d"
        );
        let b = nep2_decrypt(nep2, composed, ScryptParams::DEFAULT).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(
            nep2_encrypt(&a, decomposed, ScryptParams::DEFAULT).unwrap(),
            nep2
        );
    }

    #[test]
    fn weak_scrypt_wallet_from_neogo() {
        let nep2 = "6PYM8VdX3hY4B51UJxmm8D41RQMbpJT8aYHibyQ67gjkUPmvQgu51Y5UQR";
        let k = nep2_decrypt(nep2, "one", WEAK).unwrap();
        assert_eq!(
            k.public_key().address(),
            "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn"
        );
        assert_eq!(nep2_encrypt(&k, "one", WEAK).unwrap(), nep2);
        // The same string under the default parameters is a different derivation: wrong password.
        assert_eq!(
            nep2_decrypt(nep2, "one", ScryptParams::DEFAULT).unwrap_err(),
            Nep2Error::WrongPassword
        );
    }

    #[test]
    fn malformed_inputs_are_rejected() {
        for bad in [
            "",
            "6P",
            "not base58 0OIl",
            &N3_NEP2[..57],
            "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E",
        ] {
            assert_eq!(
                nep2_decrypt(bad, "neo", WEAK).unwrap_err(),
                Nep2Error::Malformed,
                "{bad}"
            );
        }
        // Valid Base58Check of the right length but the wrong prefix.
        let mut p = base58check_decode(N3_NEP2).unwrap();
        p[2] = 0xe1;
        assert_eq!(
            nep2_decrypt(&base58check_encode(&p), "neo", WEAK).unwrap_err(),
            Nep2Error::Malformed
        );
    }

    #[test]
    fn scrypt_params_are_validated() {
        assert!(ScryptParams::DEFAULT.validate().is_ok());
        assert!(WEAK.validate().is_ok());
        for bad in [
            ScryptParams { n: 0, r: 8, p: 8 },
            ScryptParams { n: 1, r: 8, p: 8 },
            ScryptParams {
                n: 16383,
                r: 8,
                p: 8,
            },
            ScryptParams {
                n: 16384,
                r: 0,
                p: 8,
            },
            ScryptParams {
                n: 16384,
                r: 8,
                p: 0,
            },
            ScryptParams {
                n: 1 << 40,
                r: 8,
                p: 1,
            },
            ScryptParams {
                n: 1 << 20,
                r: 16,
                p: 1,
            },
            ScryptParams {
                n: u64::MAX / 2 + 1,
                r: u32::MAX,
                p: 1,
            },
            ScryptParams {
                n: 16384,
                r: 8,
                p: 1 << 20,
            },
        ] {
            let err = bad.validate().unwrap_err();
            assert!(matches!(err, Nep2Error::BadScryptParams { .. }), "{bad:?}");
            assert!(err.to_string().contains(&format!("n={}", bad.n)));
            let k = key(N3_PRIV);
            assert!(nep2_encrypt(&k, "x", bad).is_err());
            assert!(nep2_decrypt(N3_NEP2, "x", bad).is_err());
        }
        // 1 GiB exactly is allowed.
        assert!(
            ScryptParams {
                n: 1 << 20,
                r: 8,
                p: 1
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn round_trip_random_key_with_unicode_password() {
        let k = PrivateKey::generate();
        let s = nep2_encrypt(&k, "pässwörd 🔑", WEAK).unwrap();
        assert!(s.starts_with("6P") && s.len() == 58);
        let back = nep2_decrypt(&s, "pässwörd 🔑", WEAK).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
    }
}
