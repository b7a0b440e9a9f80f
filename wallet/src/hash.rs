//! Script hashes, Base58Check and N3 addresses.

use std::fmt;
use std::str::FromStr;

use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

use crate::ADDRESS_VERSION_N3;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = sha256(&sha256(payload));
    [h[0], h[1], h[2], h[3]]
}

/// Base58Check encoding: `payload ‖ first 4 bytes of SHA-256(SHA-256(payload))`.
pub fn base58check_encode(payload: &[u8]) -> String {
    let mut buf = Vec::with_capacity(payload.len() + 4);
    buf.extend_from_slice(payload);
    buf.extend_from_slice(&checksum(payload));
    bs58::encode(buf).into_string()
}

/// Decodes Base58Check and verifies the checksum; returns the payload.
pub fn base58check_decode(s: &str) -> Result<Vec<u8>, AddressError> {
    let raw = bs58::decode(s)
        .into_vec()
        .map_err(|_| AddressError::NotBase58)?;
    if raw.len() < 5 {
        return Err(AddressError::BadLength(raw.len()));
    }
    let (payload, sum) = raw.split_at(raw.len() - 4);
    if checksum(payload) != sum {
        return Err(AddressError::BadChecksum);
    }
    Ok(payload.to_vec())
}

/// Why a string is not a valid address or script hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Contains characters outside the Base58 alphabet.
    #[error("not a Base58 string")]
    NotBase58,
    /// The decoded payload has the wrong length.
    #[error("wrong length ({0} bytes)")]
    BadLength(usize),
    /// The checksum does not match: usually a typo in the address.
    #[error("the address checksum does not match: check it for typos")]
    BadChecksum,
    /// A NEO 2 (`A…`) address where an N3 one was expected.
    #[error(
        "this is a legacy NEO 2 address (starts with 'A'); KRYPTON needs an N3 address starting with 'N'"
    )]
    LegacyNeo2,
    /// The version byte is not N3's.
    #[error("unknown address version 0x{0:02x}")]
    BadVersion(u8),
    /// Not `0x` + 40 hex digits.
    #[error("a script hash is 0x followed by 40 hex digits")]
    BadHex,
}

/// A 160-bit script hash: RIPEMD-160(SHA-256(verification script)).
///
/// Stored in serialization order (the order RIPEMD-160 outputs, which Neo calls little-endian).
/// [`fmt::Display`] and [`ScriptHash::to_hex`] give the reversed `0x…` form that JSON-RPC and explorers use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScriptHash(pub [u8; 20]);

impl ScriptHash {
    /// Hash of a verification (or any) script.
    pub fn of_script(script: &[u8]) -> Self {
        let h = Ripemd160::digest(sha256(script));
        ScriptHash(h.into())
    }

    /// Bytes in serialization (little-endian) order.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Builds from bytes in serialization (little-endian) order.
    pub fn from_le_slice(b: &[u8]) -> Option<Self> {
        <[u8; 20]>::try_from(b).ok().map(ScriptHash)
    }

    /// `0x` + 40 hex digits in display (big-endian) order, as JSON-RPC wants `Hash160` values.
    pub fn to_hex(&self) -> String {
        let mut b = self.0;
        b.reverse();
        format!("0x{}", hex::encode(b))
    }

    /// Parses the display form, with or without `0x`.
    pub fn from_hex(s: &str) -> Result<Self, AddressError> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let mut b: [u8; 20] = hex::decode(s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(AddressError::BadHex)?;
        b.reverse();
        Ok(ScriptHash(b))
    }

    /// The N3 address (`N…`).
    pub fn to_address(&self) -> String {
        self.to_address_with_version(ADDRESS_VERSION_N3)
    }

    /// The address for a given version byte (0x17 gives a NEO 2 `A…` address).
    pub fn to_address_with_version(&self, version: u8) -> String {
        let mut p = [0u8; 21];
        p[0] = version;
        p[1..].copy_from_slice(&self.0);
        base58check_encode(&p)
    }

    /// Parses an N3 address, checking version and checksum.
    pub fn from_address(addr: &str) -> Result<Self, AddressError> {
        let p = base58check_decode(addr.trim())?;
        if p.len() != 21 {
            return Err(AddressError::BadLength(p.len()));
        }
        match p[0] {
            ADDRESS_VERSION_N3 => Ok(ScriptHash(p[1..].try_into().expect("length checked"))),
            crate::ADDRESS_VERSION_NEO2 => Err(AddressError::LegacyNeo2),
            v => Err(AddressError::BadVersion(v)),
        }
    }

    /// Accepts either an N3 address or a `0x…` script hash.
    pub fn parse_any(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        if s.starts_with("0x") || (s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())) {
            Self::from_hex(s)
        } else {
            Self::from_address(s)
        }
    }
}

impl fmt::Display for ScriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ScriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptHash({})", self.to_hex())
    }
}

impl FromStr for ScriptHash {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_any(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trip_and_display_order() {
        let le = hex::decode("6b8d5339d5dee15b8a382fd001325c30ba23a997").unwrap();
        let h = ScriptHash::from_le_slice(&le).unwrap();
        assert_eq!(h.to_hex(), "0x97a923ba305c3201d02f388a5be1ded539538d6b");
        assert_eq!(h.to_address(), "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej");
        assert_eq!(
            ScriptHash::from_address("NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej").unwrap(),
            h
        );
        assert_eq!(ScriptHash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(
            "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej"
                .parse::<ScriptHash>()
                .unwrap(),
            h
        );
    }

    #[test]
    fn bad_checksum_is_rejected() {
        // last character changed
        let err = ScriptHash::from_address("NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ek").unwrap_err();
        assert_eq!(err, AddressError::BadChecksum);
        assert!(err.to_string().contains("typos"));
    }

    #[test]
    fn legacy_address_is_named() {
        let h = ScriptHash([7; 20]);
        let a = h.to_address_with_version(crate::ADDRESS_VERSION_NEO2);
        assert!(a.starts_with('A'));
        assert_eq!(
            ScriptHash::from_address(&a).unwrap_err(),
            AddressError::LegacyNeo2
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(
            ScriptHash::from_address("0OIl").unwrap_err(),
            AddressError::NotBase58
        );
        assert!(ScriptHash::from_address("").is_err());
        assert_eq!(
            ScriptHash::from_hex("0x12").unwrap_err(),
            AddressError::BadHex
        );
    }
}
