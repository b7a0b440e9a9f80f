//! NEP-6 wallet files, read and written the way neo-go does.
//!
//! Unknown fields are kept (`other`), and fields that may be missing or `null` remember which, so a
//! wallet read and written again is the same JSON value.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::hash::{AddressError, ScriptHash, base58check_decode};
use crate::keys::PrivateKey;
use crate::nep2::{Nep2Error, ScryptParams, nep2_decrypt, nep2_encrypt};
use crate::script::VerificationScript;

/// Why a NEP-6 wallet could not be read, changed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nep6Error {
    /// The text is not JSON, or not shaped like a NEP-6 wallet.
    #[error("{} (line {line}, column {column}: {message}); restore the wallet from a backup or re-export it", if *truncated { "the wallet file is truncated" } else { "the wallet file is not a valid NEP-6 wallet" })]
    Json {
        /// The file ends early (it was cut off while being written or copied).
        truncated: bool,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The `version` is not a 1.x NEP-6 version.
    #[error(
        "unsupported NEP-6 wallet version {0:?}; KRYPTON reads version 1.0 wallets (as neo-go and Neon write them)"
    )]
    UnknownVersion(String),
    /// The file's `scrypt` parameters are unusable.
    #[error("the wallet's scrypt parameters are unusable: {0}")]
    Scrypt(Nep2Error),
    /// An account's address cannot be parsed.
    #[error("account {index} has an invalid address {address:?}: {source}")]
    BadAddress {
        /// Position in `accounts`.
        index: usize,
        /// The address as written.
        address: String,
        /// Why it is invalid.
        source: AddressError,
    },
    /// `contract.script` is not base64.
    #[error("account {address}: contract.script is not valid base64; the wallet file is corrupt")]
    BadContractScript {
        /// The account.
        address: String,
    },
    /// The address does not belong to the contract script.
    #[error(
        "account {address}: the address does not match its contract script (which gives {script_address}); the wallet file is corrupt or was edited by hand"
    )]
    AddressMismatch {
        /// The address as written.
        address: String,
        /// The address the script hashes to.
        script_address: String,
    },
    /// `key` is neither null/empty nor a NEP-2 string.
    #[error(
        "account {address}: the key is not a NEP-2 encrypted key (6P…); the wallet file is corrupt"
    )]
    BadKey {
        /// The account.
        address: String,
    },
    /// Two accounts have the same address.
    #[error("the wallet lists account {0} twice; remove one of them")]
    DuplicateAccount(String),
    /// No account has this address.
    #[error("there is no account {0} in this wallet; check the address")]
    AccountNotFound(String),
    /// An account with a key already exists at this address.
    #[error("account {0} is already in this wallet")]
    AccountExists(String),
    /// The account has no key.
    #[error("account {0} is watch-only (it has no private key); import its key first")]
    WatchOnly(String),
    /// The password does not decrypt this account's key.
    #[error("wrong password for account {address}")]
    WrongPassword {
        /// The account.
        address: String,
    },
    /// The decrypted key does not belong to the account's contract.
    #[error(
        "account {address}: the decrypted key does not belong to its contract; the wallet file is corrupt"
    )]
    KeyMismatch {
        /// The account.
        address: String,
    },
    /// Another NEP-2 failure.
    #[error("account {address}: {source}")]
    Key {
        /// The account.
        address: String,
        /// The NEP-2 error.
        source: Nep2Error,
    },
    /// Accounts of another wallet use other scrypt parameters and no password was given to re-encrypt them.
    #[error("the imported wallet uses scrypt n={} r={} p={}, this one n={} r={} p={}: give the imported wallet's password so its keys can be re-encrypted", theirs.n, theirs.r, theirs.p, ours.n, ours.r, ours.p)]
    ScryptMismatch {
        /// The other wallet's parameters.
        theirs: ScryptParams,
        /// This wallet's parameters.
        ours: ScryptParams,
    },
}

impl Nep6Error {
    fn from_json(e: serde_json::Error) -> Self {
        Nep6Error::Json {
            truncated: e.is_eof(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// Deserializes a field that is present (even as `null`) into `Some`, so a missing field (`None`)
/// and a `null` one (`Some(None)`/`Some(Value::Null)`) stay apart.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One parameter of an account's contract (`{"name":"parameter0","type":"Signature"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nep6Parameter {
    /// Parameter name.
    pub name: String,
    /// Parameter type (`Signature` for standard accounts).
    #[serde(rename = "type")]
    pub type_: String,
    /// Fields KRYPTON does not know, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An account's contract: verification script and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nep6Contract {
    /// The verification script, base64.
    pub script: String,
    /// The parameters its invocation script must push.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub parameters: Vec<Nep6Parameter>,
    /// Whether it is a deployed contract (always `false` for key accounts).
    #[serde(default)]
    pub deployed: bool,
    /// Fields KRYPTON does not know, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Nep6Contract {
    /// A standard contract for `script` with `n` `Signature` parameters (`parameter0`…).
    pub fn standard(script: &VerificationScript, n: usize) -> Self {
        Nep6Contract {
            script: B64.encode(script.as_bytes()),
            parameters: (0..n)
                .map(|i| Nep6Parameter {
                    name: format!("parameter{i}"),
                    type_: "Signature".into(),
                    other: Map::new(),
                })
                .collect(),
            deployed: false,
            other: Map::new(),
        }
    }

    /// The decoded verification script, if `script` is valid base64.
    pub fn verification_script(&self) -> Option<VerificationScript> {
        B64.decode(self.script.as_bytes())
            .ok()
            .map(VerificationScript::from_bytes)
    }
}

/// One account of a NEP-6 wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nep6Account {
    address: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    key: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    label: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    contract: Option<Option<Nep6Contract>>,
    #[serde(default)]
    lock: bool,
    #[serde(rename = "isDefault", default)]
    is_default: bool,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    extra: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
    #[serde(skip)]
    hash: Option<ScriptHash>,
}

impl Nep6Account {
    /// The N3 address (`N…`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The user's label, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_ref().and_then(|l| l.as_deref())
    }

    /// Sets (or with `None`, clears) the label.
    pub fn set_label(&mut self, label: Option<&str>) {
        self.label = Some(label.map(str::to_owned));
    }

    /// The NEP-2 encrypted key; `None` for a watch-only account.
    pub fn nep2_key(&self) -> Option<&str> {
        self.key
            .as_ref()
            .and_then(|k| k.as_deref())
            .filter(|k| !k.is_empty())
    }

    /// True when the account has no key (neo-go writes `""`, others `null`).
    pub fn is_watch_only(&self) -> bool {
        self.nep2_key().is_none()
    }

    /// True when the file marks this account as the default one.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// True when the user locked the account (clients should not spend from it).
    pub fn is_locked(&self) -> bool {
        self.lock
    }

    /// The contract, if the file has one.
    pub fn contract(&self) -> Option<&Nep6Contract> {
        self.contract.as_ref().and_then(|c| c.as_ref())
    }

    /// The account's script hash (from its address).
    pub fn script_hash(&self) -> ScriptHash {
        self.hash
            .or_else(|| ScriptHash::from_address(&self.address).ok())
            .unwrap_or(ScriptHash([0; 20]))
    }

    /// The verification script from `contract.script`; `None` for watch-only accounts without a contract.
    ///
    /// For multisig accounts use [`VerificationScript::as_multisig`] on the result.
    pub fn verification_script(&self) -> Option<VerificationScript> {
        self.contract().and_then(Nep6Contract::verification_script)
    }

    /// The `extra` value as written (`None` when the field is absent).
    pub fn extra(&self) -> Option<&Value> {
        self.extra.as_ref()
    }

    fn new_keyed(
        address: String,
        hash: ScriptHash,
        nep2: String,
        label: &str,
        contract: Nep6Contract,
    ) -> Self {
        Nep6Account {
            address,
            key: Some(Some(nep2)),
            label: Some(Some(label.to_owned())),
            contract: Some(Some(contract)),
            lock: false,
            is_default: false,
            extra: None,
            other: Map::new(),
            hash: Some(hash),
        }
    }

    /// Checks the address, the contract and the key's shape; fills in the cached script hash.
    fn validate(&mut self, index: usize) -> Result<(), Nep6Error> {
        let hash =
            ScriptHash::from_address(&self.address).map_err(|source| Nep6Error::BadAddress {
                index,
                address: self.address.clone(),
                source,
            })?;
        if let Some(c) = self.contract() {
            let script = c
                .verification_script()
                .ok_or_else(|| Nep6Error::BadContractScript {
                    address: self.address.clone(),
                })?;
            // neo-go writes an empty script for some deployed-contract accounts; only check real scripts.
            if !script.as_bytes().is_empty() && script.script_hash() != hash {
                return Err(Nep6Error::AddressMismatch {
                    address: self.address.clone(),
                    script_address: script.script_hash().to_address(),
                });
            }
        }
        if let Some(k) = self.nep2_key() {
            let ok =
                base58check_decode(k).is_ok_and(|p| p.len() == 39 && p[..3] == [0x01, 0x42, 0xe0]);
            if !ok {
                return Err(Nep6Error::BadKey {
                    address: self.address.clone(),
                });
            }
        }
        self.hash = Some(hash);
        Ok(())
    }
}

/// A NEP-6 wallet as neo-go writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nep6Wallet {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    name: Option<Option<String>>,
    version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    accounts: Vec<Nep6Account>,
    scrypt: ScryptParams,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    extra: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl Default for Nep6Wallet {
    fn default() -> Self {
        Self::new()
    }
}

impl Nep6Wallet {
    /// An empty wallet: version 1.0, scrypt 16384/8/8, `extra` `{"Tokens":null}`, as neo-go creates.
    pub fn new() -> Self {
        let mut extra = Map::new();
        extra.insert("Tokens".into(), Value::Null);
        Nep6Wallet {
            name: None,
            version: "1.0".into(),
            accounts: Vec::new(),
            scrypt: ScryptParams::DEFAULT,
            extra: Some(Value::Object(extra)),
            other: Map::new(),
        }
    }

    /// An empty wallet whose keys will use `scrypt` (checked) instead of 16384/8/8.
    pub fn with_scrypt(scrypt: ScryptParams) -> Result<Self, Nep6Error> {
        scrypt.validate().map_err(Nep6Error::Scrypt)?;
        Ok(Nep6Wallet {
            scrypt,
            ..Self::new()
        })
    }

    /// Parses and validates a NEP-6 file.
    pub fn from_json(json: &str) -> Result<Self, Nep6Error> {
        let mut w: Nep6Wallet = serde_json::from_str(json).map_err(Nep6Error::from_json)?;
        w.validate()?;
        tracing::debug!(accounts = w.accounts.len(), "parsed NEP-6 wallet");
        Ok(w)
    }

    /// Checks version, scrypt parameters and every account (see [`Self::from_json`]).
    pub fn validate(&mut self) -> Result<(), Nep6Error> {
        let major = self.version.split('.').next().unwrap_or("");
        if major != "1" {
            return Err(Nep6Error::UnknownVersion(self.version.clone()));
        }
        self.scrypt.validate().map_err(Nep6Error::Scrypt)?;
        let mut seen = HashSet::new();
        for (i, a) in self.accounts.iter_mut().enumerate() {
            a.validate(i)?;
            if !seen.insert(a.address.clone()) {
                return Err(Nep6Error::DuplicateAccount(a.address.clone()));
            }
        }
        Ok(())
    }

    /// Pretty-printed JSON (two-space indent), readable by neo-go.
    pub fn to_json_pretty(&self) -> String {
        // serde_json only fails on non-string map keys or failing Serialize impls; there are none here.
        serde_json::to_string_pretty(self).expect("NEP-6 wallet serializes")
    }

    /// Compact JSON, for storage where size matters (the OS keychain).
    pub fn to_json_compact(&self) -> String {
        serde_json::to_string(self).expect("NEP-6 wallet serializes")
    }

    /// The wallet name, if any (neo-go leaves it out).
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().and_then(|n| n.as_deref())
    }

    /// Sets or clears the name.
    pub fn set_name(&mut self, name: Option<&str>) {
        self.name = name.map(|n| Some(n.to_owned()));
    }

    /// The NEP-6 version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The scrypt parameters every key in this file is encrypted with.
    pub fn scrypt(&self) -> ScryptParams {
        self.scrypt
    }

    /// The `extra` value as written.
    pub fn extra(&self) -> Option<&Value> {
        self.extra.as_ref()
    }

    /// All accounts, in file order.
    pub fn accounts(&self) -> &[Nep6Account] {
        &self.accounts
    }

    /// The account with this address (or `0x…` script hash).
    pub fn account(&self, address: &str) -> Option<&Nep6Account> {
        let hash = ScriptHash::parse_any(address).ok();
        self.accounts
            .iter()
            .find(|a| a.address == address.trim() || Some(a.script_hash()) == hash)
    }

    fn index_of(&self, address: &str) -> Result<usize, Nep6Error> {
        let hash = ScriptHash::parse_any(address).ok();
        self.accounts
            .iter()
            .position(|a| a.address == address.trim() || Some(a.script_hash()) == hash)
            .ok_or_else(|| Nep6Error::AccountNotFound(address.trim().to_owned()))
    }

    /// The account marked `isDefault`, else the first account with a key (neo-go marks none).
    pub fn default_account(&self) -> Option<&Nep6Account> {
        self.accounts
            .iter()
            .find(|a| a.is_default)
            .or_else(|| self.accounts.iter().find(|a| !a.is_watch_only()))
    }

    /// Marks this account as the only default one.
    pub fn set_default(&mut self, address: &str) -> Result<(), Nep6Error> {
        let i = self.index_of(address)?;
        for (j, a) in self.accounts.iter_mut().enumerate() {
            a.is_default = i == j;
        }
        Ok(())
    }

    /// Encrypts `key` with this file's scrypt parameters and adds a single-signature account.
    ///
    /// A watch-only account at the same address gets the key; an account that already has one is an error.
    /// Returns the new account's address.
    pub fn add_account_from_key(
        &mut self,
        key: &PrivateKey,
        password: &str,
        label: &str,
    ) -> Result<String, Nep6Error> {
        let pk = key.public_key();
        let script = pk.verification_script();
        let hash = script.script_hash();
        let address = hash.to_address();
        let existing = self.accounts.iter().position(|a| a.script_hash() == hash);
        if let Some(i) = existing
            && !self.accounts[i].is_watch_only()
        {
            return Err(Nep6Error::AccountExists(address));
        }
        let nep2 = nep2_encrypt(key, password, self.scrypt).map_err(|source| Nep6Error::Key {
            address: address.clone(),
            source,
        })?;
        let contract = Nep6Contract::standard(&script, 1);
        match existing {
            Some(i) => {
                let a = &mut self.accounts[i];
                a.key = Some(Some(nep2));
                a.contract = Some(Some(contract));
                if a.label().is_none_or(str::is_empty) {
                    a.set_label(Some(label));
                }
            }
            None => self.accounts.push(Nep6Account::new_keyed(
                address.clone(),
                hash,
                nep2,
                label,
                contract,
            )),
        }
        tracing::info!(%address, "added account");
        Ok(address)
    }

    /// Adds a watch-only account (no key, no contract). Returns its address.
    pub fn add_watch_only(&mut self, hash: ScriptHash, label: &str) -> Result<String, Nep6Error> {
        let address = hash.to_address();
        if self.accounts.iter().any(|a| a.script_hash() == hash) {
            return Err(Nep6Error::AccountExists(address));
        }
        self.accounts.push(Nep6Account {
            address: address.clone(),
            key: Some(None),
            label: Some(Some(label.to_owned())),
            contract: Some(None),
            lock: false,
            is_default: false,
            extra: None,
            other: Map::new(),
            hash: Some(hash),
        });
        tracing::info!(%address, "added watch-only account");
        Ok(address)
    }

    /// Removes an account and returns it.
    pub fn remove_account(&mut self, address: &str) -> Result<Nep6Account, Nep6Error> {
        let i = self.index_of(address)?;
        let a = self.accounts.remove(i);
        tracing::info!(address = %a.address, "removed account");
        Ok(a)
    }

    /// Decrypts an account's key with this file's scrypt parameters and checks it belongs to the account.
    pub fn decrypt_account(&self, address: &str, password: &str) -> Result<PrivateKey, Nep6Error> {
        let a = &self.accounts[self.index_of(address)?];
        decrypt_with(a, password, self.scrypt)
    }

    /// Copies the accounts of `other` that this wallet does not have (by address); returns how many.
    ///
    /// When `other` uses different scrypt parameters its keys are decrypted with `password` and
    /// re-encrypted with this wallet's parameters under the same password. On any error nothing is added.
    pub fn merge(
        &mut self,
        other: &Nep6Wallet,
        password: Option<&str>,
    ) -> Result<usize, Nep6Error> {
        let have: HashSet<ScriptHash> =
            self.accounts.iter().map(Nep6Account::script_hash).collect();
        let mut added = Vec::new();
        for a in &other.accounts {
            if have.contains(&a.script_hash())
                || added.iter().any(|b: &Nep6Account| b.address == a.address)
            {
                tracing::debug!(address = %a.address, "skipping duplicate account on import");
                continue;
            }
            let mut a = a.clone();
            a.is_default = false;
            if !a.is_watch_only() && other.scrypt != self.scrypt {
                let Some(pw) = password else {
                    return Err(Nep6Error::ScryptMismatch {
                        theirs: other.scrypt,
                        ours: self.scrypt,
                    });
                };
                let key = decrypt_with(&a, pw, other.scrypt)?;
                let nep2 =
                    nep2_encrypt(&key, pw, self.scrypt).map_err(|source| Nep6Error::Key {
                        address: a.address.clone(),
                        source,
                    })?;
                a.key = Some(Some(nep2));
            }
            added.push(a);
        }
        let n = added.len();
        self.accounts.extend(added);
        tracing::info!(added = n, "merged accounts from another wallet");
        Ok(n)
    }
}

fn decrypt_with(
    a: &Nep6Account,
    password: &str,
    params: ScryptParams,
) -> Result<PrivateKey, Nep6Error> {
    let nep2 = a
        .nep2_key()
        .ok_or_else(|| Nep6Error::WatchOnly(a.address.clone()))?;
    let key = nep2_decrypt(nep2, password, params).map_err(|e| match e {
        Nep2Error::WrongPassword => Nep6Error::WrongPassword {
            address: a.address.clone(),
        },
        source => Nep6Error::Key {
            address: a.address.clone(),
            source,
        },
    })?;
    let pk = key.public_key();
    let belongs = match a.verification_script() {
        None => pk.script_hash() == a.script_hash(),
        Some(s) if s.as_bytes().is_empty() => true,
        Some(s) => {
            s.single_key() == Some(pk) || s.as_multisig().is_ok_and(|m| m.keys.contains(&pk))
        }
    };
    if !belongs {
        return Err(Nep6Error::KeyMismatch {
            address: a.address.clone(),
        });
    }
    Ok(key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../shared/data/neo-n3-vectors.json")).unwrap()
    }

    pub(crate) fn weak_wallet_json() -> String {
        vectors()["neogo_nep6_weak_scrypt"]["wallet"].to_string()
    }

    fn user_wallet_json() -> String {
        serde_json::to_string_pretty(&vectors()["neogo_nep6_user"]["wallet"]).unwrap()
    }

    #[test]
    fn neogo_wallets_round_trip_unchanged() {
        for key in ["neogo_nep6_user", "neogo_nep6_weak_scrypt", "nfc_password"] {
            let original = vectors()[key]["wallet"].clone();
            let w = Nep6Wallet::from_json(&original.to_string()).unwrap();
            let back: Value = serde_json::from_str(&w.to_json_pretty()).unwrap();
            assert_eq!(back, original, "{key}");
        }
    }

    #[test]
    fn unknown_fields_and_nulls_are_kept() {
        let mut v: Value = serde_json::from_str(&user_wallet_json()).unwrap();
        v["name"] = Value::Null;
        v["x-custom"] = serde_json::json!({"a": [1, 2]});
        v["accounts"][0]["label"] = Value::Null;
        v["accounts"][0]["extra"] = Value::Null;
        v["accounts"][0]["future"] = Value::Bool(true);
        v["accounts"][0]["contract"]["parameters"][0]["hint"] = "x".into();
        let w = Nep6Wallet::from_json(&v.to_string()).unwrap();
        assert_eq!(w.name(), None);
        assert_eq!(w.accounts()[0].label(), None);
        let back: Value = serde_json::from_str(&w.to_json_compact()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn reads_neogo_user_wallet() {
        let w = Nep6Wallet::from_json(&user_wallet_json()).unwrap();
        assert_eq!(w.name(), None);
        assert_eq!(w.scrypt(), ScryptParams::DEFAULT);
        let a = &w.accounts()[0];
        assert_eq!(
            a.script_hash().to_hex(),
            "0x97a923ba305c3201d02f388a5be1ded539538d6b"
        );
        assert_eq!(a.label(), Some("user"));
        assert!(!a.is_watch_only() && !a.is_default() && !a.is_locked());
        assert_eq!(
            a.verification_script()
                .unwrap()
                .single_key()
                .unwrap()
                .to_hex(),
            "0365dbdf30334c1705b3ea89cba76a8a2662e9f24f71adfbd810ceb0330fd729fb"
        );
        // neo-go marks no account as default: the first keyed one is used.
        assert_eq!(w.default_account().unwrap().address(), a.address());
    }

    #[test]
    fn weak_wallet_decrypts_with_file_params_including_multisig() {
        let w = Nep6Wallet::from_json(&weak_wallet_json()).unwrap();
        assert_eq!(w.scrypt(), ScryptParams { n: 2, r: 1, p: 1 });
        assert_eq!(w.name(), Some("unittestwallet"));
        assert_eq!(
            w.default_account().unwrap().address(),
            "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn"
        );
        let ms = w.account("NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP").unwrap();
        let m = ms.verification_script().unwrap().as_multisig().unwrap();
        assert_eq!((m.m, m.keys.len()), (1, 1));
        let k1 = w
            .decrypt_account("Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn", "one")
            .unwrap();
        let k2 = w
            .decrypt_account("NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP", "one")
            .unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        assert_eq!(m.keys[0], k1.public_key());
        let err = w
            .decrypt_account("Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn", "two")
            .unwrap_err();
        assert!(matches!(err, Nep6Error::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains("wrong password"));
    }

    #[test]
    fn corrupt_files_give_useful_errors() {
        let json = user_wallet_json();
        let err = Nep6Wallet::from_json(&json[..json.len() / 2]).unwrap_err();
        match &err {
            Nep6Error::Json {
                truncated, line, ..
            } => assert!(*truncated && *line > 1),
            e => panic!("{e:?}"),
        }
        assert!(err.to_string().contains("truncated"));
        let err =
            Nep6Wallet::from_json("{\n  \"version\": \"1.0\",\n  \"accounts\": [}").unwrap_err();
        assert!(
            matches!(
                err,
                Nep6Error::Json {
                    truncated: false,
                    line: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 3"));
        assert!(matches!(
            Nep6Wallet::from_json("[]").unwrap_err(),
            Nep6Error::Json { .. }
        ));

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["version"] = "3.0".into();
        assert_eq!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::UnknownVersion("3.0".into())
        );

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["accounts"][0]["address"] = "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP".into();
        let err = Nep6Wallet::from_json(&v.to_string()).unwrap_err();
        assert!(matches!(err, Nep6Error::AddressMismatch { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("does not match its contract script")
        );

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["accounts"][0]["contract"]["script"] = "!!not base64".into();
        assert!(matches!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::BadContractScript { .. }
        ));

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["accounts"][0]["key"] = "L1eV34wPoj9weqhGijdDLtVQzUpWGHszXXpdU9dPuh2nRFFzFa7E".into();
        assert!(matches!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::BadKey { .. }
        ));

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["accounts"][0]["address"] = "AStZHy8E6StCqYQbzMqi4poH7YNDHQKxvt".into();
        assert!(matches!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::BadAddress {
                source: AddressError::LegacyNeo2,
                ..
            }
        ));

        let mut v: Value = serde_json::from_str(&json).unwrap();
        v["scrypt"] = serde_json::json!({"n": 1u64 << 40, "r": 8, "p": 8});
        assert!(matches!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::Scrypt(_)
        ));

        let mut v: Value = serde_json::from_str(&json).unwrap();
        let a = v["accounts"][0].clone();
        v["accounts"].as_array_mut().unwrap().push(a);
        assert!(matches!(
            Nep6Wallet::from_json(&v.to_string()).unwrap_err(),
            Nep6Error::DuplicateAccount(_)
        ));
    }

    #[test]
    fn new_wallet_matches_neogo_shape() {
        let mut w = Nep6Wallet::new();
        let k = PrivateKey::from_bytes(&[7; 32]).unwrap();
        w.scrypt = ScryptParams { n: 2, r: 1, p: 1 };
        let addr = w.add_account_from_key(&k, "pw", "main").unwrap();
        let v: Value = serde_json::from_str(&w.to_json_pretty()).unwrap();
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["extra"], serde_json::json!({"Tokens": null}));
        assert!(v.get("name").is_none());
        let a = &v["accounts"][0];
        assert_eq!(a["address"], addr.as_str());
        assert_eq!(a["label"], "main");
        assert_eq!(a["lock"], false);
        assert_eq!(a["isDefault"], false);
        assert_eq!(
            a["contract"]["parameters"],
            serde_json::json!([{"name": "parameter0", "type": "Signature"}])
        );
        assert_eq!(a["contract"]["deployed"], false);
        let script = B64
            .decode(a["contract"]["script"].as_str().unwrap())
            .unwrap();
        assert_eq!(script, k.public_key().verification_script().as_bytes());
        assert!(a["key"].as_str().unwrap().starts_with("6P"));
        // Reads back, decrypts with the file's params.
        let w2 = Nep6Wallet::from_json(&w.to_json_pretty()).unwrap();
        assert_eq!(
            w2.decrypt_account(&addr, "pw").unwrap().to_bytes(),
            k.to_bytes()
        );
        assert_eq!(w2, w);
        assert_eq!(
            w.add_account_from_key(&k, "pw", "again").unwrap_err(),
            Nep6Error::AccountExists(addr)
        );
    }

    #[test]
    fn with_scrypt_checks_params() {
        let w = Nep6Wallet::with_scrypt(ScryptParams { n: 2, r: 1, p: 1 }).unwrap();
        assert_eq!(w.scrypt(), ScryptParams { n: 2, r: 1, p: 1 });
        assert!(w.accounts().is_empty());
        assert!(matches!(
            Nep6Wallet::with_scrypt(ScryptParams { n: 3, r: 1, p: 1 }).unwrap_err(),
            Nep6Error::Scrypt(Nep2Error::BadScryptParams { .. })
        ));
    }

    #[test]
    fn neogo_user_key_reencrypts_to_the_same_string() {
        let w = Nep6Wallet::from_json(&user_wallet_json()).unwrap();
        let v = vectors();
        let k = PrivateKey::from_bytes(
            &hex::decode(v["neogo_nep6_user"]["private_key"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let mut fresh = Nep6Wallet::new();
        let addr = fresh.add_account_from_key(&k, "userpass", "user").unwrap();
        assert_eq!(addr, w.accounts()[0].address());
        assert_eq!(fresh.accounts()[0].nep2_key(), w.accounts()[0].nep2_key());
        assert_eq!(fresh.accounts()[0].contract(), w.accounts()[0].contract());
    }

    #[test]
    fn watch_only_default_remove() {
        let mut w = Nep6Wallet::from_json(&weak_wallet_json()).unwrap();
        let h = ScriptHash::from_hex("0x97a923ba305c3201d02f388a5be1ded539538d6b").unwrap();
        let addr = w.add_watch_only(h, "friend").unwrap();
        assert_eq!(addr, "NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej");
        let a = w.account(&addr).unwrap();
        assert!(a.is_watch_only());
        assert!(a.verification_script().is_none());
        assert_eq!(a.script_hash(), h);
        assert_eq!(
            w.decrypt_account(&addr, "x").unwrap_err(),
            Nep6Error::WatchOnly(addr.clone())
        );
        assert!(matches!(
            w.add_watch_only(h, "again"),
            Err(Nep6Error::AccountExists(_))
        ));
        // Survives a round trip as a watch-only account that validates.
        let w2 = Nep6Wallet::from_json(&w.to_json_pretty()).unwrap();
        assert!(w2.account(&addr).unwrap().is_watch_only());

        w.set_default(&addr).unwrap();
        assert_eq!(w.default_account().unwrap().address(), addr);
        assert_eq!(w.accounts().iter().filter(|a| a.is_default()).count(), 1);
        // Lookup by script hash works too.
        assert_eq!(w.account(&h.to_hex()).unwrap().address(), addr);
        w.remove_account(&addr).unwrap();
        assert!(w.account(&addr).is_none());
        assert_eq!(
            w.remove_account(&addr).unwrap_err(),
            Nep6Error::AccountNotFound(addr.clone())
        );
        assert!(w.set_default(&addr).is_err());
        // No default marked and no keyed account: no default.
        let mut e = Nep6Wallet::new();
        e.add_watch_only(h, "").unwrap();
        assert!(e.default_account().is_none());
    }

    #[test]
    fn neogo_watch_only_with_empty_key_is_accepted() {
        let mut v: Value = serde_json::from_str(&user_wallet_json()).unwrap();
        v["accounts"][0]["key"] = "".into();
        v["accounts"][0]["contract"] = Value::Null;
        let w = Nep6Wallet::from_json(&v.to_string()).unwrap();
        assert!(w.accounts()[0].is_watch_only());
        assert!(w.default_account().is_none());
    }

    #[test]
    fn merge_skips_duplicates_and_reencrypts() {
        let weak = Nep6Wallet::from_json(&weak_wallet_json()).unwrap();
        let mut mine = Nep6Wallet::new();
        mine.scrypt = ScryptParams { n: 4, r: 1, p: 1 };
        let err = mine.merge(&weak, None).unwrap_err();
        assert!(matches!(err, Nep6Error::ScryptMismatch { .. }));
        assert!(mine.accounts().is_empty());
        // Wrong password: nothing added.
        assert!(mine.merge(&weak, Some("two")).is_err());
        assert!(mine.accounts().is_empty());
        assert_eq!(mine.merge(&weak, Some("one")).unwrap(), 2);
        assert_eq!(mine.merge(&weak, Some("one")).unwrap(), 0);
        assert!(mine.accounts().iter().all(|a| !a.is_default()));
        let k = mine
            .decrypt_account("NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP", "one")
            .unwrap();
        assert_eq!(
            k.public_key().address(),
            "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn"
        );
        // Same params: copied as they are.
        let mut same = Nep6Wallet::new();
        same.scrypt = weak.scrypt();
        assert_eq!(same.merge(&weak, None).unwrap(), 2);
        assert_eq!(same.accounts()[0].nep2_key(), weak.accounts()[0].nep2_key());
    }

    #[test]
    fn key_that_does_not_belong_is_detected() {
        let mut v: Value = serde_json::from_str(&weak_wallet_json()).unwrap();
        // Put another key (same params) on the committee account.
        let other = PrivateKey::from_bytes(&[9; 32]).unwrap();
        let nep2 = nep2_encrypt(&other, "one", ScryptParams { n: 2, r: 1, p: 1 }).unwrap();
        v["accounts"][1]["key"] = nep2.into();
        let w = Nep6Wallet::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            w.decrypt_account("NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP", "one")
                .unwrap_err(),
            Nep6Error::KeyMismatch { .. }
        ));
    }

    /// Deterministic byte mutations of a neo-go wallet: `from_json` returns errors, never panics.
    #[test]
    fn mutated_files_never_panic() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../shared/data/neo-n3-vectors.json")).unwrap();
        let text = serde_json::to_string(&vectors["neogo_nep6_weak_scrypt"]["wallet"]).unwrap();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let mut b = text.clone().into_bytes();
            for _ in 0..(1 + next() % 3) {
                let i = (next() as usize) % b.len();
                let alphabet = b"{}[]\",:0123456789abcdefNn6P-\x00";
                b[i] = alphabet[(next() as usize) % alphabet.len()];
            }
            if let Ok(s) = std::str::from_utf8(&b) {
                let _ = Nep6Wallet::from_json(s);
            }
            let cut = (next() as usize) % text.len();
            assert!(Nep6Wallet::from_json(&text[..cut]).is_err());
        }
    }
}
