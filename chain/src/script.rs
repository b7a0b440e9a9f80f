//! A NeoVM script builder for contract calls, byte-for-byte as neo-go builds them.

use krypton_wallet::ScriptHash;

/// `System.Contract.Call` syscall id.
const CONTRACT_CALL: [u8; 4] = [0x62, 0x7d, 0x5b, 0x52];

/// `CallFlags.All`.
pub const CALL_FLAGS_ALL: u8 = 0x0f;

/// One argument of a contract call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (up to 128 bits here).
    Int(i128),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A UTF-8 string (pushed as bytes).
    String(String),
    /// A script hash (20 bytes, serialization order).
    Hash160(ScriptHash),
    /// An array of arguments.
    Array(Vec<Arg>),
}

impl Arg {
    /// The JSON form for `invokefunction`.
    pub fn to_rpc_json(&self) -> serde_json::Value {
        use base64::Engine;
        use serde_json::json;
        match self {
            Arg::Null => json!({"type": "Any"}),
            Arg::Bool(b) => json!({"type": "Boolean", "value": b}),
            Arg::Int(i) => json!({"type": "Integer", "value": i.to_string()}),
            Arg::Bytes(b) => {
                json!({"type": "ByteArray", "value": base64::engine::general_purpose::STANDARD.encode(b)})
            }
            Arg::String(s) => json!({"type": "String", "value": s}),
            Arg::Hash160(h) => json!({"type": "Hash160", "value": h.to_hex()}),
            Arg::Array(a) => {
                json!({"type": "Array", "value": a.iter().map(Arg::to_rpc_json).collect::<Vec<_>>()})
            }
        }
    }
}

/// Builds NeoVM scripts.
#[derive(Debug, Default, Clone)]
pub struct ScriptBuilder(Vec<u8>);

impl ScriptBuilder {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pushes an integer with the shortest encoding (PUSHM1, PUSH0..16, PUSHINT8..128).
    pub fn push_int(&mut self, v: i128) -> &mut Self {
        if (-1..=16).contains(&v) {
            self.0.push((0x10 + v) as u8);
            return self;
        }
        let le = v.to_le_bytes();
        // minimal two's-complement length
        let mut len = 16;
        while len > 1 {
            let top = le[len - 1];
            let next_sign = le[len - 2] & 0x80;
            if (top == 0x00 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                len -= 1;
            } else {
                break;
            }
        }
        let (op, width) = match len {
            1 => (0x00, 1),
            2 => (0x01, 2),
            3..=4 => (0x02, 4),
            5..=8 => (0x03, 8),
            _ => (0x04, 16),
        };
        self.0.push(op);
        self.0.extend_from_slice(&le[..width]);
        self
    }

    /// Pushes bytes with PUSHDATA1/2/4.
    pub fn push_bytes(&mut self, b: &[u8]) -> &mut Self {
        match b.len() {
            0..=0xff => {
                self.0.push(0x0c);
                self.0.push(b.len() as u8);
            }
            0x100..=0xffff => {
                self.0.push(0x0d);
                self.0.extend_from_slice(&(b.len() as u16).to_le_bytes());
            }
            _ => {
                self.0.push(0x0e);
                self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
            }
        }
        self.0.extend_from_slice(b);
        self
    }

    /// Pushes one argument.
    pub fn push_arg(&mut self, a: &Arg) -> &mut Self {
        match a {
            Arg::Null => self.op(0x0b),
            Arg::Bool(true) => self.op(0x08),
            Arg::Bool(false) => self.op(0x09),
            Arg::Int(i) => self.push_int(*i),
            Arg::Bytes(b) => self.push_bytes(b),
            Arg::String(s) => self.push_bytes(s.as_bytes()),
            Arg::Hash160(h) => self.push_bytes(h.as_bytes()),
            Arg::Array(items) => self.push_array(items),
        }
    }

    /// Pushes an array: items in reverse order, count, PACK (or NEWARRAY0 when empty).
    pub fn push_array(&mut self, items: &[Arg]) -> &mut Self {
        if items.is_empty() {
            return self.op(0xc2); // NEWARRAY0
        }
        for a in items.iter().rev() {
            self.push_arg(a);
        }
        self.push_int(items.len() as i128);
        self.op(0xc0) // PACK
    }

    /// Appends a raw opcode.
    pub fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }

    /// `System.Contract.Call(contract, method, CallFlags.All, args)`.
    pub fn contract_call(
        &mut self,
        contract: &ScriptHash,
        method: &str,
        args: &[Arg],
    ) -> &mut Self {
        self.push_array(args);
        self.push_int(CALL_FLAGS_ALL as i128);
        self.push_bytes(method.as_bytes());
        self.push_bytes(contract.as_bytes());
        self.0.push(0x41); // SYSCALL
        self.0.extend_from_slice(&CONTRACT_CALL);
        self
    }

    /// `ASSERT`: FAULT unless the top of the stack is true.
    pub fn assert(&mut self) -> &mut Self {
        self.op(0x39)
    }

    /// The script bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nep17_transfer_matches_neogo_script() {
        // The script inside the neo-go transaction vector (../shared/data/neo-n3-vectors.json).
        let gas = ScriptHash::from_hex("0xd2a4cff31913016155e38e474a2c06d08be276cf").unwrap();
        let from = ScriptHash::from_le_slice(
            &hex::decode("6b8d5339d5dee15b8a382fd001325c30ba23a997").unwrap(),
        )
        .unwrap();
        let to = ScriptHash::from_le_slice(
            &hex::decode("849214f6ab8b63758a28402df2df8b23f72c18b0").unwrap(),
        )
        .unwrap();
        let mut sb = ScriptBuilder::new();
        sb.contract_call(
            &gas,
            "transfer",
            &[
                Arg::Hash160(from),
                Arg::Hash160(to),
                Arg::Int(5_000_000),
                Arg::Null,
            ],
        )
        .assert();
        assert_eq!(
            hex::encode(sb.into_bytes()),
            "0b02404b4c000c14849214f6ab8b63758a28402df2df8b23f72c18b00c146b8d5339d5dee15b8a382fd001325c30ba23a99714c01f0c087472616e736665720c14cf76e28bd0062c4a478ee35561011319f3cfa4d241627d5b5239"
        );
    }

    #[test]
    fn integers_use_the_shortest_push() {
        let enc = |v| hex::encode(ScriptBuilder::new().push_int(v).clone().into_bytes());
        assert_eq!(enc(-1), "0f");
        assert_eq!(enc(0), "10");
        assert_eq!(enc(16), "20");
        assert_eq!(enc(17), "0011");
        assert_eq!(enc(127), "007f");
        assert_eq!(enc(128), "018000");
        assert_eq!(enc(-128), "0080");
        assert_eq!(enc(-129), "017fff");
        assert_eq!(enc(5_000_000), "02404b4c00");
        assert_eq!(enc(100_000_000_000), "0300e8764817000000");
    }
}
