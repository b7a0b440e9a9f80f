//! N3 transaction wire format (version 0).
//!
//! txid = SHA-256 of the unsigned part (single hash); the signing message is
//! `network magic (u32 LE) ‖ txid bytes`. Both checked against neo-go (../shared/notes/neo-n3.md §3.4).

use krypton_wallet::{ScriptHash, sha256};

/// Witness scope of a signer. Only the scopes KRYPTON uses are modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitnessScope {
    /// 0x00: the signature only pays fees.
    None,
    /// 0x01: valid for the contract called by the entry script.
    CalledByEntry,
    /// 0x80: valid everywhere (avoid).
    Global,
}

impl WitnessScope {
    /// The scope byte.
    pub fn to_byte(self) -> u8 {
        match self {
            WitnessScope::None => 0x00,
            WitnessScope::CalledByEntry => 0x01,
            WitnessScope::Global => 0x80,
        }
    }
    /// The name JSON-RPC uses.
    pub fn rpc_name(self) -> &'static str {
        match self {
            WitnessScope::None => "None",
            WitnessScope::CalledByEntry => "CalledByEntry",
            WitnessScope::Global => "Global",
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x00 => Some(WitnessScope::None),
            0x01 => Some(WitnessScope::CalledByEntry),
            0x80 => Some(WitnessScope::Global),
            _ => None,
        }
    }
}

/// A transaction signer: account and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signer {
    /// The signing account.
    pub account: ScriptHash,
    /// Where its witness is valid.
    pub scope: WitnessScope,
}

impl Signer {
    /// The JSON form for `invokefunction`/`invokescript`.
    pub fn to_rpc_json(&self) -> serde_json::Value {
        serde_json::json!({"account": self.account.to_hex(), "scopes": self.scope.rpc_name()})
    }
}

/// Invocation and verification scripts of one signer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Witness {
    /// Pushes the signatures.
    pub invocation: Vec<u8>,
    /// The account's verification script.
    pub verification: Vec<u8>,
}

impl Witness {
    /// An invocation script pushing the given 64-byte signatures, in order.
    pub fn invocation_for(signatures: &[[u8; 64]]) -> Vec<u8> {
        let mut s = Vec::with_capacity(signatures.len() * 66);
        for sig in signatures {
            s.push(0x0c);
            s.push(64);
            s.extend_from_slice(sig);
        }
        s
    }
}

/// A version-0 N3 transaction (no attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Random nonce.
    pub nonce: u32,
    /// System fee in datoshi (GAS × 10⁸).
    pub system_fee: i64,
    /// Network fee in datoshi.
    pub network_fee: i64,
    /// Last block height at which the transaction may be included.
    pub valid_until_block: u32,
    /// Signers; the first pays the fees.
    pub signers: Vec<Signer>,
    /// The entry script.
    pub script: Vec<u8>,
    /// One witness per signer, same order.
    pub witnesses: Vec<Witness>,
}

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed transaction: {0}")]
pub struct DecodeError(&'static str);

fn write_varint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn write_varbytes(out: &mut Vec<u8>, b: &[u8]) {
    write_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn varint(&mut self) -> Result<u64, DecodeError> {
        Ok(match self.u8()? {
            0xfd => u16::from_le_bytes(self.take(2)?.try_into().expect("2")) as u64,
            0xfe => self.u32()? as u64,
            0xff => u64::from_le_bytes(self.take(8)?.try_into().expect("8")),
            b => b as u64,
        })
    }
    fn varbytes(&mut self, max: usize) -> Result<Vec<u8>, DecodeError> {
        let n = self.varint()?;
        if n > max as u64 {
            return Err(DecodeError("field too long"));
        }
        Ok(self.take(n as usize)?.to_vec())
    }
}

/// Largest transaction the protocol allows (bytes).
pub const MAX_TRANSACTION_SIZE: usize = 102_400;

impl Transaction {
    /// Serializes the unsigned part (what the txid hashes).
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.script.len());
        out.push(0); // version
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.system_fee.to_le_bytes());
        out.extend_from_slice(&self.network_fee.to_le_bytes());
        out.extend_from_slice(&self.valid_until_block.to_le_bytes());
        write_varint(&mut out, self.signers.len() as u64);
        for s in &self.signers {
            out.extend_from_slice(s.account.as_bytes());
            out.push(s.scope.to_byte());
        }
        write_varint(&mut out, 0); // attributes
        write_varbytes(&mut out, &self.script);
        out
    }

    /// Serializes the whole signed transaction.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.unsigned_bytes();
        write_varint(&mut out, self.witnesses.len() as u64);
        for w in &self.witnesses {
            write_varbytes(&mut out, &w.invocation);
            write_varbytes(&mut out, &w.verification);
        }
        out
    }

    /// Decodes a signed transaction (version 0, no attributes, the scopes in [`WitnessScope`]).
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() > MAX_TRANSACTION_SIZE {
            return Err(DecodeError("larger than the protocol allows"));
        }
        let mut r = Reader(b);
        if r.u8()? != 0 {
            return Err(DecodeError("unknown version"));
        }
        let nonce = r.u32()?;
        let system_fee = r.i64()?;
        let network_fee = r.i64()?;
        let valid_until_block = r.u32()?;
        let n = r.varint()?;
        if n > 16 {
            return Err(DecodeError("too many signers"));
        }
        let mut signers = Vec::new();
        for _ in 0..n {
            let account = ScriptHash::from_le_slice(r.take(20)?).expect("20 bytes");
            let scope =
                WitnessScope::from_byte(r.u8()?).ok_or(DecodeError("unsupported witness scope"))?;
            signers.push(Signer { account, scope });
        }
        if r.varint()? != 0 {
            return Err(DecodeError("attributes are not supported"));
        }
        let script = r.varbytes(MAX_TRANSACTION_SIZE)?;
        let n = r.varint()?;
        if n != signers.len() as u64 {
            return Err(DecodeError("witness count differs from signer count"));
        }
        let mut witnesses = Vec::new();
        for _ in 0..n {
            let invocation = r.varbytes(1024)?;
            let verification = r.varbytes(1024)?;
            witnesses.push(Witness {
                invocation,
                verification,
            });
        }
        if !r.0.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Transaction {
            nonce,
            system_fee,
            network_fee,
            valid_until_block,
            signers,
            script,
            witnesses,
        })
    }

    /// The transaction hash bytes (SHA-256 of the unsigned part, serialization order).
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.unsigned_bytes())
    }

    /// The txid as JSON-RPC shows it: `0x` + reversed hex.
    pub fn txid(&self) -> String {
        let mut h = self.hash();
        h.reverse();
        format!("0x{}", hex::encode(h))
    }

    /// What each signer signs: `magic (u32 LE) ‖ hash`.
    pub fn sign_data(&self, network_magic: u32) -> [u8; 36] {
        let mut m = [0u8; 36];
        m[..4].copy_from_slice(&network_magic.to_le_bytes());
        m[4..].copy_from_slice(&self.hash());
        m
    }

    /// Serialized size in bytes.
    pub fn size(&self) -> usize {
        self.to_bytes().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_wallet::PublicKey;

    // neo-go-signed GAS transfer from ../shared/data/neo-n3-vectors.json
    const RAW: &str = "0018b7d898b43f98000000000088ce120000000000b6180000016b8d5339d5dee15b8a382fd001325c30ba23a99701005b0b02404b4c000c14849214f6ab8b63758a28402df2df8b23f72c18b00c146b8d5339d5dee15b8a382fd001325c30ba23a99714c01f0c087472616e736665720c14cf76e28bd0062c4a478ee35561011319f3cfa4d241627d5b523901420c40e754d9b2a28c5c1dcb7dfcf8aa0e48946dce848febc6b61fcbd0e455beb4c872bbcca2f2f5e76080f8a60815b579baaeb211937a1770bcd9064e5ed719c1a613280c210365dbdf30334c1705b3ea89cba76a8a2662e9f24f71adfbd810ceb0330fd729fb4156e7b327";

    #[test]
    fn neogo_transaction_round_trips_with_its_txid_and_signature() {
        let raw = hex::decode(RAW).unwrap();
        let tx = Transaction::from_bytes(&raw).unwrap();
        assert_eq!(tx.to_bytes(), raw);
        assert_eq!(tx.nonce, 2564339480);
        assert_eq!(tx.system_fee, 9977780);
        assert_eq!(tx.network_fee, 1232520);
        assert_eq!(tx.valid_until_block, 6326);
        assert_eq!(tx.signers[0].scope, WitnessScope::CalledByEntry);
        assert_eq!(
            tx.txid(),
            "0x382e0722515511ec3b69aa3f91956796ed11cf3baf2fcb24bcb83c0c85da8f88"
        );
        let msg = tx.sign_data(42);
        assert_eq!(
            hex::encode(msg),
            "2a000000888fda850c3cb8bc24cb2faf3bcf11ed966795913faa693bec11555122072e38"
        );
        let pk = PublicKey::from_hex(
            "0365dbdf30334c1705b3ea89cba76a8a2662e9f24f71adfbd810ceb0330fd729fb",
        )
        .unwrap();
        let sig = &tx.witnesses[0].invocation[2..];
        assert!(pk.verify(&msg, sig));
        assert!(!pk.verify(&tx.sign_data(43), sig));
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        let raw = hex::decode(RAW).unwrap();
        for n in 0..raw.len() {
            assert!(
                Transaction::from_bytes(&raw[..n]).is_err(),
                "prefix {n} accepted"
            );
        }
        let mut extra = raw.clone();
        extra.push(0);
        assert!(Transaction::from_bytes(&extra).is_err());
        assert!(Transaction::from_bytes(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff]).is_err());
    }

    /// Deterministic random inputs and single-byte mutations of a real transaction: errors, never panics,
    /// and whatever decodes re-encodes to the same bytes.
    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let raw = hex::decode(RAW).unwrap();
        for _ in 0..20_000 {
            let mut b = raw.clone();
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
            if let Ok(tx) = Transaction::from_bytes(&b) {
                assert_eq!(tx.to_bytes(), b);
            }
            let len = (next() % 300) as usize;
            let r: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Ok(tx) = Transaction::from_bytes(&r) {
                assert_eq!(tx.to_bytes(), r);
            }
        }
    }

    #[test]
    fn varint_boundaries() {
        for (n, len) in [
            (0xfcu64, 1),
            (0xfd, 3),
            (0xffff, 3),
            (0x1_0000, 5),
            (0x1_0000_0000, 9),
        ] {
            let mut v = Vec::new();
            write_varint(&mut v, n);
            assert_eq!(v.len(), len);
            assert_eq!(Reader(&v).varint().unwrap(), n);
        }
    }
}
