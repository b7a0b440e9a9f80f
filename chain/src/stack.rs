//! NeoVM stack items as JSON-RPC returns them (invoke results, notifications).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use krypton_wallet::ScriptHash;
use serde_json::Value;

/// A VM stack item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackItem {
    /// `Any` with no value: null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (arbitrary size in the VM; 128 bits here).
    Integer(i128),
    /// `ByteString` or `Buffer`.
    Bytes(Vec<u8>),
    /// `Array` or `Struct`.
    Array(Vec<StackItem>),
    /// `Map` as key/value pairs.
    Map(Vec<(StackItem, StackItem)>),
    /// An iterator or other interop object (not expanded).
    Interop(String),
}

/// Why a JSON value is not a stack item, or not the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected stack item: {0}")]
pub struct StackError(pub String);

fn err<T>(s: impl Into<String>) -> Result<T, StackError> {
    Err(StackError(s.into()))
}

impl StackItem {
    /// Parses `{"type": …, "value": …}`.
    pub fn from_json(v: &Value) -> Result<Self, StackError> {
        let ty = v.get("type").and_then(Value::as_str).unwrap_or_default();
        let val = v.get("value");
        Ok(match ty {
            "Any" => StackItem::Null,
            "Boolean" => StackItem::Bool(
                val.and_then(Value::as_bool)
                    .ok_or_else(|| StackError("bad Boolean".into()))?,
            ),
            "Integer" => {
                let s = match val {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return err("bad Integer"),
                };
                StackItem::Integer(
                    s.parse()
                        .map_err(|_| StackError(format!("integer out of range: {s}")))?,
                )
            }
            "ByteString" | "Buffer" => {
                let s = val.and_then(Value::as_str).unwrap_or_default();
                StackItem::Bytes(B64.decode(s).map_err(|_| StackError("bad base64".into()))?)
            }
            "Array" | "Struct" => {
                let items = val
                    .and_then(Value::as_array)
                    .ok_or_else(|| StackError("bad Array".into()))?;
                StackItem::Array(
                    items
                        .iter()
                        .map(StackItem::from_json)
                        .collect::<Result<_, _>>()?,
                )
            }
            "Map" => {
                let items = val
                    .and_then(Value::as_array)
                    .ok_or_else(|| StackError("bad Map".into()))?;
                let mut out = Vec::new();
                for kv in items {
                    let k = kv
                        .get("key")
                        .ok_or_else(|| StackError("map entry without key".into()))?;
                    let v = kv
                        .get("value")
                        .ok_or_else(|| StackError("map entry without value".into()))?;
                    out.push((StackItem::from_json(k)?, StackItem::from_json(v)?));
                }
                StackItem::Map(out)
            }
            "InteropInterface" => StackItem::Interop(
                v.get("interface")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
            ),
            "Pointer" => StackItem::Integer(match val {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(0) as i128,
                _ => 0,
            }),
            other => return err(format!("unknown type {other:?}")),
        })
    }

    /// True for null.
    pub fn is_null(&self) -> bool {
        matches!(self, StackItem::Null)
    }

    /// As an integer (booleans and byte strings convert as in the VM).
    pub fn as_int(&self) -> Result<i128, StackError> {
        match self {
            StackItem::Integer(i) => Ok(*i),
            StackItem::Bool(b) => Ok(*b as i128),
            StackItem::Bytes(b) if b.len() <= 16 => {
                if b.is_empty() {
                    return Ok(0);
                }
                let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
                let mut le = [fill; 16];
                le[..b.len()].copy_from_slice(b);
                Ok(i128::from_le_bytes(le))
            }
            other => err(format!("expected an integer, got {other:?}")),
        }
    }

    /// As a boolean.
    pub fn as_bool(&self) -> Result<bool, StackError> {
        match self {
            StackItem::Bool(b) => Ok(*b),
            StackItem::Integer(i) => Ok(*i != 0),
            other => err(format!("expected a boolean, got {other:?}")),
        }
    }

    /// As bytes.
    pub fn as_bytes(&self) -> Result<&[u8], StackError> {
        match self {
            StackItem::Bytes(b) => Ok(b),
            other => err(format!("expected bytes, got {other:?}")),
        }
    }

    /// As a UTF-8 string.
    pub fn as_string(&self) -> Result<String, StackError> {
        String::from_utf8(self.as_bytes()?.to_vec()).map_err(|_| StackError("not UTF-8".into()))
    }

    /// As a script hash (20 bytes in serialization order, as the VM holds a `UInt160`).
    pub fn as_hash160(&self) -> Result<ScriptHash, StackError> {
        ScriptHash::from_le_slice(self.as_bytes()?)
            .ok_or_else(|| StackError("expected 20 bytes".into()))
    }

    /// As an array.
    pub fn as_array(&self) -> Result<&[StackItem], StackError> {
        match self {
            StackItem::Array(a) => Ok(a),
            other => err(format!("expected an array, got {other:?}")),
        }
    }

    /// `None` for null, else `f(self)`.
    pub fn optional<T>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, StackError>,
    ) -> Result<Option<T>, StackError> {
        if self.is_null() {
            Ok(None)
        } else {
            f(self).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_rpc_items() {
        let v = json!({"type":"Array","value":[
            {"type":"Integer","value":"2"},
            {"type":"ByteString","value":"l6kjujBcMgHQLziKW+He1TlTjWs="},
            {"type":"Any"},
            {"type":"Boolean","value":true},
            {"type":"Map","value":[{"key":{"type":"ByteString","value":"YQ=="},"value":{"type":"Integer","value":"-5"}}]}
        ]});
        let it = StackItem::from_json(&v).unwrap();
        let a = it.as_array().unwrap();
        assert_eq!(a[0].as_int().unwrap(), 2);
        assert_eq!(
            a[1].as_hash160().unwrap().to_hex(),
            "0x6b8d5339d5dee15b8a382fd001325c30ba23a997"
        );
        assert!(a[2].is_null());
        assert!(a[3].as_bool().unwrap());
        assert!(matches!(&a[4], StackItem::Map(m) if m[0].1 == StackItem::Integer(-5)));
        assert!(a[0].as_string().is_err());
    }

    #[test]
    fn hash160_is_in_serialization_order() {
        let le = hex::decode("6b8d5339d5dee15b8a382fd001325c30ba23a997").unwrap();
        let v = json!({"type":"ByteString","value": B64.encode(&le)});
        let h = StackItem::from_json(&v).unwrap().as_hash160().unwrap();
        assert_eq!(h.to_address(), "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej");
    }

    #[test]
    fn byte_integers_are_signed_little_endian() {
        assert_eq!(StackItem::Bytes(vec![]).as_int().unwrap(), 0);
        assert_eq!(StackItem::Bytes(vec![0xff]).as_int().unwrap(), -1);
        assert_eq!(StackItem::Bytes(vec![0x80, 0x00]).as_int().unwrap(), 128);
    }

    #[test]
    fn garbage_is_an_error() {
        for v in [
            json!({}),
            json!({"type":"Integer","value":"x"}),
            json!({"type":"ByteString","value":"!!"}),
            json!({"type":"Array"}),
        ] {
            assert!(StackItem::from_json(&v).is_err(), "{v}");
        }
    }
}
