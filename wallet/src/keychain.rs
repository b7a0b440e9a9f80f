//! The NEP-6 wallet stored in the OS keychain (keyring-core and one store per platform).
//!
//! The keychain holds the wallet's NEP-6 JSON, whose keys stay NEP-2 encrypted: it never holds a
//! plaintext key. One entry per namespace: service `krypton-wallet:<namespace>`, user `nep6`.
//!
//! All calls block (Secret Service calls are D-Bus round trips of ~100 ms). This crate has no async
//! runtime; async callers must wrap every call in `tokio::task::spawn_blocking`.
//!
//! Stores are built once per process and kind and used directly through
//! [`keyring_core::Entry::new_in_store`]; keyring-core's global default store is never touched, so
//! several kinds (and tests) can run side by side.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry};

use crate::nep6::{Nep6Error, Nep6Wallet};

/// The user name of the keychain entry.
const USER: &str = "nep6";
/// Prefix of the service name; the namespace follows.
const SERVICE_PREFIX: &str = "krypton-wallet:";

/// Which OS credential store holds the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeystoreKind {
    /// Freedesktop Secret Service over D-Bus (GNOME Keyring, KeePassXC, KWallet): persistent.
    SecretService,
    /// Linux kernel keyutils (session keyring): survives logout for a while, not a reboot.
    Keyutils,
    /// macOS legacy (file) keychain.
    MacOs,
    /// Windows Credential Manager.
    Windows,
    /// In-memory store, for tests; shared within the process, lost at exit.
    Mock,
}

impl KeystoreKind {
    /// The usual persistent store of this platform, if there is one.
    pub fn platform_default() -> Option<Self> {
        if cfg!(target_os = "macos") {
            Some(Self::MacOs)
        } else if cfg!(target_os = "windows") {
            Some(Self::Windows)
        } else if cfg!(all(
            unix,
            not(any(target_os = "ios", target_os = "android"))
        )) {
            Some(Self::SecretService)
        } else {
            None
        }
    }

    /// The name [`FromStr`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::MacOs => "macos",
            Self::Windows => "windows",
            Self::Mock => "mock",
        }
    }

    /// Largest entry the store accepts, when it has a documented limit.
    fn max_secret_len(self) -> Option<usize> {
        match self {
            // Credential Manager blob limit (CRED_MAX_CREDENTIAL_BLOB_SIZE).
            Self::Windows => Some(2560),
            // keyutils "user" key payload limit.
            Self::Keyutils => Some(32767),
            _ => None,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::SecretService => {
                "start and unlock a Secret Service (GNOME Keyring, KeePassXC or KWallet), or choose the keyutils store"
            }
            Self::Keyutils => {
                "run inside a login session or a session keyring (for example `keyctl session - <command>`)"
            }
            Self::MacOs => "unlock the login keychain",
            Self::Windows => "check that Credential Manager is available for this user",
            Self::Mock => "this is a bug in KRYPTON",
        }
    }
}

impl fmt::Display for KeystoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeystoreKind {
    type Err = KeychainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "secret-service" | "secretservice" | "secret" => Ok(Self::SecretService),
            "keyutils" | "linux-keyutils" => Ok(Self::Keyutils),
            "macos" | "keychain" | "apple" => Ok(Self::MacOs),
            "windows" | "credential-manager" => Ok(Self::Windows),
            "mock" => Ok(Self::Mock),
            _ => Err(KeychainError::UnknownKind(s.to_owned())),
        }
    }
}

/// Why the keychain could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeychainError {
    /// The store name is not known.
    #[error(
        "unknown keychain store {0:?}; use one of secret-service, keyutils, macos, windows, mock"
    )]
    UnknownKind(String),
    /// The store does not exist on this platform.
    #[error("the {0} keychain store does not exist on this platform")]
    NotSupported(KeystoreKind),
    /// The namespace is empty, too long, or has control characters.
    #[error("invalid keychain namespace {0:?}: use 1 to 200 printable characters")]
    BadNamespace(String),
    /// The store could not be opened or accessed.
    #[error("the {kind} keychain is not available ({message}); {hint}")]
    Unavailable {
        /// The store.
        kind: KeystoreKind,
        /// The store's error.
        message: String,
        /// What the user can do.
        hint: &'static str,
    },
    /// The store failed for another reason.
    #[error("the {kind} keychain failed: {message}")]
    Store {
        /// The store.
        kind: KeystoreKind,
        /// The store's error.
        message: String,
    },
    /// The stored entry is not a valid wallet.
    #[error(
        "the wallet stored in the {kind} keychain is damaged: {source}; delete it and import the wallet from a backup"
    )]
    Corrupt {
        /// The store.
        kind: KeystoreKind,
        /// What is wrong.
        source: Nep6Error,
    },
    /// The wallet to save is not valid; nothing was written.
    #[error("refusing to save an invalid wallet (the stored one is unchanged): {0}")]
    Invalid(Nep6Error),
    /// The wallet to import is not valid or could not be merged; nothing was written.
    #[error("import failed (the stored wallet is unchanged): {0}")]
    Import(Nep6Error),
    /// The wallet is larger than the store accepts.
    #[error(
        "the wallet is {size} bytes but the {kind} keychain accepts at most {limit}; remove accounts or use another store"
    )]
    TooLarge {
        /// The store.
        kind: KeystoreKind,
        /// Serialized size.
        size: usize,
        /// The store's limit.
        limit: usize,
    },
}

static STORES: Mutex<Option<HashMap<KeystoreKind, Arc<CredentialStore>>>> = Mutex::new(None);

fn make_store(kind: KeystoreKind) -> Result<Arc<CredentialStore>, keyring_core::Error> {
    match kind {
        KeystoreKind::Mock => Ok(keyring_core::mock::Store::new()?),
        #[cfg(target_os = "linux")]
        KeystoreKind::Keyutils => Ok(linux_keyutils_keyring_store::Store::new()?),
        #[cfg(all(
            unix,
            not(any(target_os = "macos", target_os = "ios", target_os = "android"))
        ))]
        KeystoreKind::SecretService => Ok(zbus_secret_service_keyring_store::Store::new()?),
        #[cfg(target_os = "macos")]
        KeystoreKind::MacOs => Ok(apple_native_keyring_store::keychain::Store::new()?),
        #[cfg(target_os = "windows")]
        KeystoreKind::Windows => Ok(windows_native_keyring_store::Store::new()?),
        #[allow(unreachable_patterns)]
        _ => Err(keyring_core::Error::NotSupportedByStore(kind.to_string())),
    }
}

/// The store of this kind, built on first use and then shared by the process.
fn store(kind: KeystoreKind) -> Result<Arc<CredentialStore>, KeychainError> {
    let mut guard = STORES.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(&kind) {
        return Ok(s.clone());
    }
    let s = make_store(kind).map_err(|e| match e {
        keyring_core::Error::NotSupportedByStore(_) => KeychainError::NotSupported(kind),
        e => KeychainError::Unavailable {
            kind,
            message: e.to_string(),
            hint: kind.hint(),
        },
    })?;
    tracing::debug!(%kind, "opened keychain store");
    map.insert(kind, s.clone());
    Ok(s)
}

/// The keychain entry that holds one namespace's wallet.
pub struct Keychain {
    kind: KeystoreKind,
    service: String,
    entry: Entry,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field("kind", &self.kind)
            .field("service", &self.service)
            .finish()
    }
}

impl Keychain {
    /// The namespace of a data directory: the first 8 bytes of SHA-256 of its path, in hex.
    /// Every KRYPTON front end (`krypton`, the desktop app) uses it, so one data dir means one
    /// wallet and two data dirs never share one. Pass the canonical path.
    pub fn namespace_of(data_dir: &std::path::Path) -> String {
        crate::sha256(data_dir.to_string_lossy().as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Opens the entry of `namespace` (a string the caller derives from its data directory, so
    /// separate instances never share an entry) in the store `kind`. Reads nothing yet.
    pub fn open(kind: KeystoreKind, namespace: &str) -> Result<Self, KeychainError> {
        let store = store(kind)?;
        Self::open_in(kind, &store, namespace)
    }

    /// Like [`Self::open`] with a store the caller built (for example a fresh mock store in a test).
    pub fn open_in(
        kind: KeystoreKind,
        store: &Arc<CredentialStore>,
        namespace: &str,
    ) -> Result<Self, KeychainError> {
        if namespace.is_empty()
            || namespace.chars().count() > 200
            || namespace.chars().any(char::is_control)
        {
            return Err(KeychainError::BadNamespace(namespace.to_owned()));
        }
        let service = format!("{SERVICE_PREFIX}{namespace}");
        let entry = Entry::new_in_store(store, &service, USER).map_err(|e| map_err(kind, e))?;
        Ok(Keychain {
            kind,
            service,
            entry,
        })
    }

    /// The store this entry lives in.
    pub fn kind(&self) -> KeystoreKind {
        self.kind
    }

    /// The service name of the entry (`krypton-wallet:<namespace>`; the user is `nep6`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The stored wallet, or `None` when there is none yet.
    pub fn load(&self) -> Result<Option<Nep6Wallet>, KeychainError> {
        let raw = match self.entry.get_secret() {
            Ok(raw) => raw,
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(map_err(self.kind, e)),
        };
        let corrupt = |source| KeychainError::Corrupt {
            kind: self.kind,
            source,
        };
        let text = String::from_utf8(raw).map_err(|_| {
            corrupt(Nep6Error::Json {
                truncated: false,
                line: 0,
                column: 0,
                message: "not UTF-8 text".into(),
            })
        })?;
        let w = Nep6Wallet::from_json(&text).map_err(corrupt)?;
        tracing::debug!(kind = %self.kind, service = %self.service, "loaded wallet from keychain");
        Ok(Some(w))
    }

    /// Validates `wallet` and writes it (compact JSON). An invalid wallet is not written.
    pub fn save(&self, wallet: &Nep6Wallet) -> Result<(), KeychainError> {
        let mut checked = wallet.clone();
        checked.validate().map_err(KeychainError::Invalid)?;
        let json = checked.to_json_compact();
        // What is written must read back as the same wallet.
        let reparsed = Nep6Wallet::from_json(&json).map_err(KeychainError::Invalid)?;
        if reparsed != checked {
            return Err(KeychainError::Invalid(Nep6Error::Json {
                truncated: false,
                line: 0,
                column: 0,
                message: "the wallet does not survive serialization".into(),
            }));
        }
        if let Some(limit) = self.kind.max_secret_len()
            && json.len() > limit
        {
            return Err(KeychainError::TooLarge {
                kind: self.kind,
                size: json.len(),
                limit,
            });
        }
        self.entry
            .set_secret(json.as_bytes())
            .map_err(|e| map_err(self.kind, e))?;
        // Read it back from the store: a keyutils store outside a session keyring can accept a
        // write it will not return, and a wallet that silently vanishes is lost keys.
        match self.entry.get_secret() {
            Ok(stored) if stored == json.as_bytes() => {}
            Ok(_) => {
                return Err(KeychainError::Unavailable {
                    kind: self.kind,
                    message: "the keychain returned different bytes than were written".into(),
                    hint: self.kind.hint(),
                });
            }
            Err(e) => return Err(map_err(self.kind, e)),
        }
        tracing::info!(kind = %self.kind, service = %self.service, accounts = checked.accounts().len(), "saved wallet to keychain");
        Ok(())
    }

    /// Merges the accounts of a NEP-6 file into the stored wallet (a new one if none) and saves it;
    /// returns how many accounts were added. On any error the stored entry is unchanged.
    ///
    /// `password` re-encrypts keys when the file's scrypt parameters differ (see [`Nep6Wallet::merge`]).
    pub fn import_nep6(&self, json: &str, password: Option<&str>) -> Result<usize, KeychainError> {
        let other = Nep6Wallet::from_json(json).map_err(KeychainError::Import)?;
        let mut w = self.load()?.unwrap_or_default();
        let n = w.merge(&other, password).map_err(KeychainError::Import)?;
        self.save(&w)?;
        Ok(n)
    }

    /// Deletes the entry; returns whether there was one.
    pub fn delete(&self) -> Result<bool, KeychainError> {
        match self.entry.delete_credential() {
            Ok(()) => {
                tracing::info!(kind = %self.kind, service = %self.service, "deleted wallet from keychain");
                Ok(true)
            }
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(self.kind, e)),
        }
    }
}

/// Gives the process a session keyring if it has none. Call it first thing in `main`, before any
/// thread starts, when the keyutils store may be used (a no-op elsewhere).
///
/// Session keyrings are per-thread credentials, inherited only by threads created later. Without a
/// login session (no PAM session keyring), the keyutils store's own link to the persistent keyring
/// makes the kernel create a new session keyring for just the calling thread; an entry written from
/// one thread (say a `spawn_blocking` worker) was then unreadable from another (EACCES) and missing
/// for the next process. With one session keyring for every thread, entries land in it and in the
/// per-user persistent keyring that carries them to the next process.
pub fn init_process_keyring() -> Result<(), KeychainError> {
    #[cfg(target_os = "linux")]
    {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        KeyRing::from_special_id(KeyRingIdentifier::Session, true).map_err(|e| {
            KeychainError::Unavailable {
                kind: KeystoreKind::Keyutils,
                message: e.to_string(),
                hint: KeystoreKind::Keyutils.hint(),
            }
        })?;
    }
    Ok(())
}

fn map_err(kind: KeystoreKind, e: keyring_core::Error) -> KeychainError {
    match e {
        keyring_core::Error::NoStorageAccess(_) => KeychainError::Unavailable {
            kind,
            message: e.to_string(),
            hint: kind.hint(),
        },
        e => KeychainError::Store {
            kind,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::nep6::tests::weak_wallet_json;

    const PRIV: &str = "84180ac9d6eb6fba207ea4ef9d2200102d1ebeb4b9c07e2c6a738a42742e27a5";

    #[test]
    fn a_data_dirs_namespace_is_stable() {
        // Existing users' wallets are found by this value: it must never change.
        let want: String = crate::sha256(b"/tmp/k1")[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            Keychain::namespace_of(std::path::Path::new("/tmp/k1")),
            want
        );
        assert_eq!(want.len(), 16);
        assert_ne!(
            Keychain::namespace_of(std::path::Path::new("/tmp/k2")),
            want
        );
    }

    fn unique_ns(tag: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("test-{tag}-{}-{nanos}", std::process::id())
    }

    /// A wallet holding the reference key under weak scrypt parameters (fast in tests).
    fn test_wallet() -> Nep6Wallet {
        let mut w = Nep6Wallet::from_json(&weak_wallet_json()).unwrap();
        let k = PrivateKey::from_bytes(&hex::decode(PRIV).unwrap()).unwrap();
        w.add_account_from_key(&k, "one", "ref").unwrap();
        w
    }

    /// A wallet that passes serde but not validation (address does not match its script).
    fn invalid_wallet() -> Nep6Wallet {
        let mut v: serde_json::Value = serde_json::from_str(&weak_wallet_json()).unwrap();
        v["accounts"][0]["address"] = "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP".into();
        serde_json::from_value(v).unwrap()
    }

    fn assert_no_plaintext(raw: &[u8]) {
        let text = std::str::from_utf8(raw).unwrap();
        let k = PrivateKey::from_bytes(&hex::decode(PRIV).unwrap()).unwrap();
        assert!(
            !text.to_lowercase().contains(PRIV),
            "hex private key in keychain entry"
        );
        assert!(!text.contains(k.to_wif().as_str()), "WIF in keychain entry");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for a in v["accounts"].as_array().unwrap() {
            assert!(a["key"].as_str().unwrap().starts_with("6P"), "{a}");
        }
    }

    /// Save, reload, reject an invalid save and a bad import without touching the entry, delete.
    /// `raw` reads the stored bytes bypassing [`Keychain`].
    fn exercise(kc: &Keychain, raw: &dyn Fn() -> Option<Vec<u8>>) {
        assert!(kc.load().unwrap().is_none());
        assert_eq!(raw(), None);
        let w = test_wallet();
        kc.save(&w).unwrap();
        assert_eq!(kc.load().unwrap().unwrap(), w);
        let before = raw().expect("entry written");
        assert_no_plaintext(&before);

        let err = kc.save(&invalid_wallet()).unwrap_err();
        assert!(
            matches!(
                err,
                KeychainError::Invalid(Nep6Error::AddressMismatch { .. })
            ),
            "{err}"
        );
        assert_eq!(raw().as_deref(), Some(&before[..]));

        let json = test_wallet().to_json_pretty();
        assert!(matches!(
            kc.import_nep6(&json[..json.len() - 3], None).unwrap_err(),
            KeychainError::Import(Nep6Error::Json {
                truncated: true,
                ..
            })
        ));
        assert_eq!(raw().as_deref(), Some(&before[..]));
        // Another wallet with other scrypt parameters: importing needs its password to re-encrypt.
        let k = PrivateKey::from_bytes(&[5; 32]).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&Nep6Wallet::new().to_json_pretty()).unwrap();
        v["scrypt"] = serde_json::json!({"n": 4, "r": 1, "p": 1});
        let mut other = Nep6Wallet::from_json(&v.to_string()).unwrap();
        other.add_account_from_key(&k, "right", "x").unwrap();
        let other_json = other.to_json_pretty();
        assert!(matches!(
            kc.import_nep6(&other_json, Some("wrong")).unwrap_err(),
            KeychainError::Import(Nep6Error::WrongPassword { .. })
        ));
        assert_eq!(raw().as_deref(), Some(&before[..]));
        // A good import adds the account and keeps the rest.
        assert_eq!(kc.import_nep6(&other_json, Some("right")).unwrap(), 1);
        let merged = kc.load().unwrap().unwrap();
        assert_eq!(merged.accounts().len(), w.accounts().len() + 1);
        assert_eq!(
            merged
                .decrypt_account(&k.public_key().address(), "right")
                .unwrap()
                .to_bytes(),
            k.to_bytes()
        );
        assert_no_plaintext(&raw().unwrap());

        assert!(kc.delete().unwrap());
        assert!(!kc.delete().unwrap());
        assert!(kc.load().unwrap().is_none());
        assert_eq!(raw(), None);
    }

    #[test]
    fn mock_store_round_trip_and_atomic_failures() {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let kc = Keychain::open_in(KeystoreKind::Mock, &store, &unique_ns("mock")).unwrap();
        let service = kc.service().to_owned();
        let raw = || match Entry::new_in_store(&store, &service, USER)
            .unwrap()
            .get_secret()
        {
            Ok(b) => Some(b),
            Err(keyring_core::Error::NoEntry) => None,
            Err(e) => panic!("{e}"),
        };
        exercise(&kc, &raw);
    }

    #[test]
    fn namespaces_do_not_share_entries() {
        let a = Keychain::open(KeystoreKind::Mock, &unique_ns("a")).unwrap();
        let b = Keychain::open(KeystoreKind::Mock, &unique_ns("b")).unwrap();
        a.save(&test_wallet()).unwrap();
        assert!(b.load().unwrap().is_none());
        // Re-opening the same namespace sees the same entry (shared per-process store).
        let a2 = Keychain::open(
            KeystoreKind::Mock,
            a.service().trim_start_matches(SERVICE_PREFIX),
        )
        .unwrap();
        assert_eq!(a2.load().unwrap(), Some(test_wallet()));
        a.delete().unwrap();
    }

    #[test]
    fn corrupt_entry_is_reported() {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let kc = Keychain::open_in(KeystoreKind::Mock, &store, "corrupt").unwrap();
        Entry::new_in_store(&store, kc.service(), USER)
            .unwrap()
            .set_secret(b"{\"version\":")
            .unwrap();
        let err = kc.load().unwrap_err();
        assert!(matches!(err, KeychainError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("import the wallet from a backup"));
        Entry::new_in_store(&store, kc.service(), USER)
            .unwrap()
            .set_secret(&[0xff, 0xfe])
            .unwrap();
        assert!(matches!(
            kc.load().unwrap_err(),
            KeychainError::Corrupt { .. }
        ));
    }

    #[test]
    fn kinds_parse_and_bad_namespaces_are_rejected() {
        for k in [
            KeystoreKind::SecretService,
            KeystoreKind::Keyutils,
            KeystoreKind::MacOs,
            KeystoreKind::Windows,
            KeystoreKind::Mock,
        ] {
            assert_eq!(k.as_str().parse::<KeystoreKind>().unwrap(), k);
        }
        assert_eq!(
            "Secret_Service".parse::<KeystoreKind>().unwrap(),
            KeystoreKind::SecretService
        );
        let err = "vault".parse::<KeystoreKind>().unwrap_err();
        assert!(err.to_string().contains("keyutils"));
        for ns in ["", "a\nb", &"x".repeat(201)] {
            assert!(matches!(
                Keychain::open(KeystoreKind::Mock, ns).unwrap_err(),
                KeychainError::BadNamespace(_)
            ));
        }
        #[cfg(target_os = "linux")]
        {
            assert!(matches!(
                Keychain::open(KeystoreKind::Windows, "x").unwrap_err(),
                KeychainError::NotSupported(KeystoreKind::Windows)
            ));
            assert_eq!(
                KeystoreKind::platform_default(),
                Some(KeystoreKind::SecretService)
            );
        }
    }

    #[test]
    fn too_large_for_windows_is_refused_before_writing() {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        // Pretend the mock store is Windows to exercise the size check.
        let kc = Keychain::open_in(KeystoreKind::Windows, &store, "big").unwrap();
        let mut w = Nep6Wallet::new();
        for i in 1..=20u8 {
            w.add_watch_only(crate::ScriptHash([i; 20]), &"label".repeat(10))
                .unwrap();
        }
        assert!(matches!(
            kc.save(&w).unwrap_err(),
            KeychainError::TooLarge { limit: 2560, .. }
        ));
        assert!(kc.load().unwrap().is_none());
    }

    /// Runs against the real kernel keyutils store and reads the raw key with `keyctl`.
    /// Run under `keyctl session - cargo test -p krypton-wallet keychain`; it skips (printing why)
    /// when no usable session keyring exists, unless `KRYPTON_REQUIRE_KEYUTILS=1`.
    #[cfg(target_os = "linux")]
    #[test]
    fn keyutils_raw_entry_holds_only_nep2() {
        use std::process::Command;
        let required = std::env::var("KRYPTON_REQUIRE_KEYUTILS").is_ok_and(|v| v == "1");
        let skip = |why: String| {
            assert!(
                !required,
                "KRYPTON_REQUIRE_KEYUTILS=1 but keyutils is unusable: {why}"
            );
            eprintln!("SKIPPED keyutils_raw_entry_holds_only_nep2: {why}");
        };
        let keyctl_ok = Command::new("keyctl").arg("show").arg("@s").output();
        match keyctl_ok {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skip(format!(
                    "`keyctl show @s` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return skip(format!("keyctl not found ({e}); apt-get install keyutils")),
        }
        let kc = match Keychain::open(KeystoreKind::Keyutils, &unique_ns("keyutils")) {
            Ok(kc) => kc,
            Err(e) => return skip(e.to_string()),
        };
        // Probe: the store can write in this session (plain shells without a session keyring cannot).
        if let Err(e) = kc.save(&test_wallet()) {
            return skip(e.to_string());
        }
        kc.delete().unwrap();
        // keyring-core's keyutils store names the key `keyring:<user>@<service>`.
        let description = format!("keyring:{USER}@{}", kc.service());
        let raw = || {
            let out = Command::new("keyctl")
                .args(["search", "@s", "user", &description])
                .output()
                .unwrap();
            if !out.status.success() {
                return None;
            }
            let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            let data = Command::new("keyctl").args(["pipe", &id]).output().unwrap();
            assert!(data.status.success(), "keyctl pipe {id} failed");
            Some(data.stdout)
        };
        exercise(&kc, &raw);
        // Show what the raw entry looks like (visible with --nocapture).
        kc.save(&test_wallet()).unwrap();
        let bytes = raw().unwrap();
        eprintln!(
            "keyutils key {description:?}: {} bytes: {}",
            bytes.len(),
            String::from_utf8_lossy(&bytes)
        );
        kc.delete().unwrap();
    }

    /// Runs against a real Secret Service when `KRYPTON_TEST_SECRET_SERVICE=1` (for example under
    /// `dbus-run-session` with an unlocked `gnome-keyring-daemon`), reading the raw item with `secret-tool`.
    #[cfg(target_os = "linux")]
    #[test]
    fn secret_service_raw_entry_holds_only_nep2() {
        use std::process::Command;
        if std::env::var("KRYPTON_TEST_SECRET_SERVICE").is_ok_and(|v| v == "1") {
            let kc = Keychain::open(KeystoreKind::SecretService, &unique_ns("ss")).unwrap();
            let service = kc.service().to_owned();
            let raw = || {
                let out = Command::new("secret-tool")
                    .args(["lookup", "service", &service, "username", USER])
                    .output()
                    .unwrap();
                (out.status.success() && !out.stdout.is_empty()).then_some(out.stdout)
            };
            exercise(&kc, &raw);
        } else {
            eprintln!(
                "SKIPPED secret_service_raw_entry_holds_only_nep2: set KRYPTON_TEST_SECRET_SERVICE=1 in a session with an unlocked Secret Service"
            );
        }
    }
}
