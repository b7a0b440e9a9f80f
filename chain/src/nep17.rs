//! NEP-17 tokens: GAS and NEO, amounts and transfer scripts.

use krypton_wallet::ScriptHash;

use crate::rpc::Nep17Balance;
use crate::script::{Arg, ScriptBuilder};

/// GAS token contract (`0xd2a4cff31913016155e38e474a2c06d08be276cf`).
pub const GAS: ScriptHash = ScriptHash([
    0xcf, 0x76, 0xe2, 0x8b, 0xd0, 0x06, 0x2c, 0x4a, 0x47, 0x8e, 0xe3, 0x55, 0x61, 0x01, 0x13, 0x19,
    0xf3, 0xcf, 0xa4, 0xd2,
]);
/// NEO token contract (`0xef4073a0f2b305a38ec4050e4d3d28bc40ea63f5`).
pub const NEO: ScriptHash = ScriptHash([
    0xf5, 0x63, 0xea, 0x40, 0xbc, 0x28, 0x3d, 0x4d, 0x0e, 0x05, 0xc4, 0x8e, 0xa3, 0x05, 0xb3, 0xf2,
    0xa0, 0x73, 0x40, 0xef,
]);

/// A native token KRYPTON knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// GAS, 8 decimals.
    Gas,
    /// NEO, indivisible.
    Neo,
}

impl Asset {
    /// Contract hash.
    pub fn hash(self) -> ScriptHash {
        match self {
            Asset::Gas => GAS,
            Asset::Neo => NEO,
        }
    }
    /// Decimals.
    pub fn decimals(self) -> u32 {
        match self {
            Asset::Gas => 8,
            Asset::Neo => 0,
        }
    }
    /// Symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Asset::Gas => "GAS",
            Asset::Neo => "NEO",
        }
    }
    /// Parses `GAS`/`NEO` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GAS" => Some(Asset::Gas),
            "NEO" => Some(Asset::Neo),
            _ => None,
        }
    }
}

/// The amount of `asset` in `balances` (`getnep17balances`), in its smallest unit; 0 when the
/// node lists none.
pub fn amount_of(balances: &[Nep17Balance], asset: Asset) -> i128 {
    balances
        .iter()
        .find(|b| b.asset == asset.hash())
        .map(|b| b.amount)
        .unwrap_or(0)
}

/// Why an amount is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Not a decimal number.
    #[error("{0:?} is not an amount; write e.g. 1.5")]
    NotANumber(String),
    /// More fractional digits than the token has.
    #[error("{symbol} has {decimals} decimals; {text:?} has more")]
    TooPrecise {
        /// Input.
        text: String,
        /// Token symbol.
        symbol: String,
        /// Token decimals.
        decimals: u32,
    },
    /// Zero or negative.
    #[error("the amount must be greater than zero")]
    NotPositive,
}

/// Parses a decimal amount into the token's smallest unit, exactly (no floating point).
pub fn parse_amount(text: &str, asset: Asset) -> Result<i128, AmountError> {
    let t = text.trim();
    let nan = || AmountError::NotANumber(text.to_string());
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(nan());
    }
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 20
    {
        return Err(nan());
    }
    let d = asset.decimals();
    let frac = frac.trim_end_matches('0');
    if frac.len() > d as usize {
        return Err(AmountError::TooPrecise {
            text: text.into(),
            symbol: asset.symbol().into(),
            decimals: d,
        });
    }
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| nan())?
    };
    let mut f: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| nan())?
    };
    f *= 10i128.pow(d - frac.len() as u32);
    let v = int * 10i128.pow(d) + f;
    if v <= 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(v)
}

/// Formats an integer amount with `decimals` decimals, trimming trailing zeros.
pub fn format_amount(v: i128, decimals: u32) -> String {
    if decimals == 0 {
        return v.to_string();
    }
    let neg = v < 0;
    let a = v.unsigned_abs();
    let p = 10u128.pow(decimals);
    let frac = format!("{:0width$}", a % p, width = decimals as usize);
    let frac = frac.trim_end_matches('0');
    let sign = if neg { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{}", a / p)
    } else {
        format!("{sign}{}.{frac}", a / p)
    }
}

/// `token.transfer(from, to, amount, null)` followed by ASSERT, as neo-go builds it.
pub fn transfer_script(
    token: &ScriptHash,
    from: &ScriptHash,
    to: &ScriptHash,
    amount: i128,
) -> Vec<u8> {
    let mut sb = ScriptBuilder::new();
    append_transfer(&mut sb, token, from, to, amount);
    sb.into_bytes()
}

/// Appends one asserted transfer to a script (several make a multi-transfer).
pub fn append_transfer(
    sb: &mut ScriptBuilder,
    token: &ScriptHash,
    from: &ScriptHash,
    to: &ScriptHash,
    amount: i128,
) {
    sb.contract_call(
        token,
        "transfer",
        &[
            Arg::Hash160(*from),
            Arg::Hash160(*to),
            Arg::Int(amount),
            Arg::Null,
        ],
    )
    .assert();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_display_as_known() {
        assert_eq!(GAS.to_hex(), "0xd2a4cff31913016155e38e474a2c06d08be276cf");
        assert_eq!(NEO.to_hex(), "0xef4073a0f2b305a38ec4050e4d3d28bc40ea63f5");
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(parse_amount("1.5", Asset::Gas).unwrap(), 150_000_000);
        assert_eq!(parse_amount("0.00000001", Asset::Gas).unwrap(), 1);
        assert_eq!(parse_amount(".5", Asset::Gas).unwrap(), 50_000_000);
        assert_eq!(parse_amount("10", Asset::Neo).unwrap(), 10);
        assert_eq!(parse_amount("10.0", Asset::Neo).unwrap(), 10);
        assert!(matches!(
            parse_amount("1.5", Asset::Neo),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_amount("0.000000001", Asset::Gas),
            Err(AmountError::TooPrecise { .. })
        ));
        for bad in ["", ".", "-1", "1e5", "1,5", "abc", "1.2.3"] {
            assert!(parse_amount(bad, Asset::Gas).is_err(), "{bad}");
        }
        assert_eq!(parse_amount("0", Asset::Gas), Err(AmountError::NotPositive));
        assert_eq!(format_amount(150_000_000, 8), "1.5");
        assert_eq!(format_amount(1, 8), "0.00000001");
        assert_eq!(format_amount(-11210300, 8), "-0.112103");
        assert_eq!(format_amount(7, 0), "7");
    }
}
