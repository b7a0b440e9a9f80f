//! Verification scripts: single-signature and m-of-n multisig.

use crate::hash::ScriptHash;
use crate::keys::PublicKey;

const PUSHDATA1: u8 = 0x0c;
const SYSCALL: u8 = 0x41;
/// `System.Crypto.CheckSig` syscall id (first 4 bytes of SHA-256 of the name).
const CHECK_SIG: [u8; 4] = [0x56, 0xe7, 0xb3, 0x27];
/// `System.Crypto.CheckMultisig` syscall id.
const CHECK_MULTISIG: [u8; 4] = [0x9e, 0xd0, 0xdc, 0x3a];

/// Why bytes are not a verification script KRYPTON understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationScriptError {
    /// Neither a standard single-signature nor a standard multisig script.
    #[error("not a standard single-signature or multisig verification script")]
    NotStandard,
    /// A key inside the script is not a valid point.
    #[error("the script contains an invalid public key")]
    BadKey,
}

/// An m-of-n multisig account's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultisigScript {
    /// Signatures required.
    pub m: usize,
    /// Public keys in script order (sorted by X, then Y).
    pub keys: Vec<PublicKey>,
}

/// A verification script (the `contract.script` of a NEP-6 account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationScript(Vec<u8>);

impl VerificationScript {
    /// `PUSHDATA1 33 <key> SYSCALL CheckSig`.
    pub fn single(key: &PublicKey) -> Self {
        let mut s = Vec::with_capacity(40);
        s.push(PUSHDATA1);
        s.push(33);
        s.extend_from_slice(&key.to_compressed());
        s.push(SYSCALL);
        s.extend_from_slice(&CHECK_SIG);
        VerificationScript(s)
    }

    /// `PUSH m {PUSHDATA1 33 key}×n PUSH n SYSCALL CheckMultisig`, keys sorted by (X, Y) as neo-go does.
    ///
    /// Returns `None` unless `1 <= m <= n <= 16`.
    pub fn multisig(m: usize, keys: &[PublicKey]) -> Option<Self> {
        if m == 0 || m > keys.len() || keys.len() > 16 {
            return None;
        }
        let mut sorted = keys.to_vec();
        sorted.sort_by_key(|k| k.xy());
        let mut s = vec![0x10 + m as u8];
        for k in &sorted {
            s.push(PUSHDATA1);
            s.push(33);
            s.extend_from_slice(&k.to_compressed());
        }
        s.push(0x10 + sorted.len() as u8);
        s.push(SYSCALL);
        s.extend_from_slice(&CHECK_MULTISIG);
        Some(VerificationScript(s))
    }

    /// Wraps raw script bytes (any script; see [`Self::single_key`] / [`Self::as_multisig`]).
    pub fn from_bytes(b: Vec<u8>) -> Self {
        VerificationScript(b)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RIPEMD-160(SHA-256(script)).
    pub fn script_hash(&self) -> ScriptHash {
        ScriptHash::of_script(&self.0)
    }

    /// The key when this is a standard single-signature script.
    pub fn single_key(&self) -> Option<PublicKey> {
        let s = &self.0;
        if s.len() == 40
            && s[0] == PUSHDATA1
            && s[1] == 33
            && s[35] == SYSCALL
            && s[36..] == CHECK_SIG
        {
            PublicKey::from_bytes(&s[2..35]).ok()
        } else {
            None
        }
    }

    /// The parameters when this is a standard multisig script (m, n ≤ 16).
    pub fn as_multisig(&self) -> Result<MultisigScript, VerificationScriptError> {
        let s = &self.0;
        let small = |b: u8| (0x11..=0x20).contains(&b).then(|| (b - 0x10) as usize);
        let m = s
            .first()
            .copied()
            .and_then(small)
            .ok_or(VerificationScriptError::NotStandard)?;
        let mut i = 1;
        let mut keys = Vec::new();
        while i + 35 <= s.len() && s[i] == PUSHDATA1 && s[i + 1] == 33 {
            keys.push(
                PublicKey::from_bytes(&s[i + 2..i + 35])
                    .map_err(|_| VerificationScriptError::BadKey)?,
            );
            i += 35;
        }
        let n = s
            .get(i)
            .copied()
            .and_then(small)
            .ok_or(VerificationScriptError::NotStandard)?;
        if n != keys.len()
            || m > n
            || s.len() != i + 6
            || s[i + 1] != SYSCALL
            || s[i + 2..] != CHECK_MULTISIG
        {
            return Err(VerificationScriptError::NotStandard);
        }
        Ok(MultisigScript { m, keys })
    }

    /// Number of signatures a witness for this script needs (1 for single-sig).
    pub fn signatures_required(&self) -> Result<usize, VerificationScriptError> {
        if self.single_key().is_some() {
            return Ok(1);
        }
        self.as_multisig().map(|ms| ms.m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multisig_matches_neogo_ordering() {
        let a = PublicKey::from_hex(
            "02b3622bf4017bdfe317c58aed5f4c753f206b7db896046fa7d774bbc4bf7f8dc2",
        )
        .unwrap();
        let b = PublicKey::from_hex(
            "0365dbdf30334c1705b3ea89cba76a8a2662e9f24f71adfbd810ceb0330fd729fb",
        )
        .unwrap();
        let s = VerificationScript::multisig(1, &[a, b]).unwrap();
        assert_eq!(
            hex::encode(s.as_bytes()),
            "110c210365dbdf30334c1705b3ea89cba76a8a2662e9f24f71adfbd810ceb0330fd729fb0c2102b3622bf4017bdfe317c58aed5f4c753f206b7db896046fa7d774bbc4bf7f8dc212419ed0dc3a"
        );
        let ms = s.as_multisig().unwrap();
        assert_eq!(ms.m, 1);
        assert_eq!(ms.keys, vec![b, a]);
        assert_eq!(s.signatures_required().unwrap(), 1);
        assert!(s.single_key().is_none());
    }

    #[test]
    fn committee_address_from_one_of_one() {
        let a = PublicKey::from_hex(
            "02b3622bf4017bdfe317c58aed5f4c753f206b7db896046fa7d774bbc4bf7f8dc2",
        )
        .unwrap();
        let s = VerificationScript::multisig(1, &[a]).unwrap();
        assert_eq!(
            s.script_hash().to_address(),
            "NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP"
        );
        assert_eq!(a.address(), "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn");
    }

    #[test]
    fn non_standard_scripts_are_rejected() {
        for bad in [
            vec![],
            vec![0x11],
            vec![0x11, 0x11, 0x41, 0x9e, 0xd0, 0xdc, 0x3a],
            vec![0u8; 40],
        ] {
            let s = VerificationScript::from_bytes(bad);
            assert!(s.single_key().is_none());
            assert!(s.as_multisig().is_err());
        }
        assert!(VerificationScript::multisig(2, &[]).is_none());
    }
}
