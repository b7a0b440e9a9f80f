//! Wallet commands for the first run: status, create, unlock/lock, backup, import.
//!
//! The wallet is a NEP-6 document in the OS keychain (krypton-wallet's `Keychain`), keys NEP-2
//! encrypted, exactly as `krypton wallet` keeps it. Decrypted keys stay in [`WalletState`]
//! (an `UnlockedWallet`, zeroized on lock). Nothing returned here holds a key or a password.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krypton_wallet::{Keychain, Nep6Wallet, PrivateKey, UnlockedWallet, VerificationScript};
use serde::Serialize;
use tauri::State;
use zeroize::Zeroizing;

use super::blocking;
use crate::config::DesktopConfig;

/// The label of the first account.
const FIRST_LABEL: &str = "KRYPTON";
/// Idle time after which the unlocked keys are dropped.
const AUTO_LOCK: Duration = Duration::from_secs(15 * 60);
/// Shortest password `wallet_create` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Largest NEP-6 file `wallet_import_nep6` reads.
const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024;

/// The wallet side of the app's state.
pub struct WalletState {
    config: DesktopConfig,
    namespace: String,
    session: Arc<Mutex<Option<UnlockedWallet>>>,
}

impl WalletState {
    /// State for this data dir and keychain store; nothing is read yet.
    pub fn new(config: DesktopConfig) -> Self {
        let namespace = config.keychain_namespace();
        WalletState {
            config,
            namespace,
            session: Arc::new(Mutex::new(None)),
        }
    }

    /// The app's data dir, keychain store and network.
    pub fn config(&self) -> &DesktopConfig {
        &self.config
    }

    /// The wallet from the keychain (on a blocking thread), or what to do when there is none.
    pub(crate) async fn load(&self) -> Result<Nep6Wallet, String> {
        let kc = self.keychain()?;
        blocking(move || kc.load().map_err(|e| e.to_string()))
            .await?
            .ok_or_else(|| "there is no wallet yet: create one or import a NEP-6 file".to_string())
    }

    /// The default account's address.
    pub(crate) async fn default_address(&self) -> Result<String, String> {
        let w = self.load().await?;
        w.default_account()
            .map(|a| a.address().to_string())
            .ok_or_else(|| "the wallet has no default account: import or create one".into())
    }

    /// A copy of the unlocked key of `address` (zeroized on drop), for a transaction or the
    /// phone; restarts the auto-lock timer.
    pub(crate) fn key_of(&self, address: &str) -> Result<PrivateKey, String> {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let session = guard
            .as_mut()
            .ok_or("the wallet is locked: unlock it with its password first")?;
        let key = session
            .key(address, Instant::now())
            .map_err(|e| e.to_string())?;
        PrivateKey::from_bytes(&key.to_bytes()[..]).map_err(|e| e.to_string())
    }

    /// The default account, ready to sign a transaction.
    pub(crate) async fn signer(&self) -> Result<SigningAccount, String> {
        let w = self.load().await?;
        let acc = w
            .default_account()
            .ok_or("the wallet has no default account: import or create one")?;
        let script = acc
            .verification_script()
            .ok_or_else(|| format!("{} cannot sign (watch-only)", acc.address()))?;
        Ok(SigningAccount {
            key: self.key_of(acc.address())?,
            script,
            wallet: w.clone(),
            address: acc.address().to_string(),
        })
    }

    fn keychain(&self) -> Result<Keychain, String> {
        Keychain::open(self.config.keystore, &self.namespace).map_err(|e| e.to_string())
    }

    fn is_unlocked(&self) -> bool {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = guard.as_mut() {
            s.handle_timeout(Instant::now());
            if s.is_locked() {
                *guard = None;
            }
        }
        guard.is_some()
    }

    fn set_session(&self, s: Option<UnlockedWallet>) {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = guard.as_mut() {
            old.lock();
        }
        *guard = s;
    }

    fn status_of(&self, w: Option<&Nep6Wallet>) -> WalletStatus {
        let (state, accounts, default_address) = match w {
            None => ("none", Vec::new(), None),
            Some(w) => (
                if self.is_unlocked() {
                    "unlocked"
                } else {
                    "locked"
                },
                w.accounts()
                    .iter()
                    .map(|a| AccountView {
                        address: a.address().to_string(),
                        label: a.label().unwrap_or_default().to_string(),
                        watch_only: a.is_watch_only(),
                        is_default: a.is_default(),
                    })
                    .collect(),
                w.default_account().map(|a| a.address().to_string()),
            ),
        };
        WalletStatus {
            state,
            accounts,
            default_address,
            keystore: self.config.keystore.to_string(),
            backup_suggestion: backup_suggestion().to_string_lossy().into_owned(),
        }
    }
}

/// The default account with its decrypted key (never serialized; zeroized on drop).
pub(crate) struct SigningAccount {
    /// The wallet it is in.
    pub wallet: Nep6Wallet,
    /// Its address.
    pub address: String,
    /// Its verification script.
    pub script: VerificationScript,
    /// Its key.
    pub key: PrivateKey,
}

/// What the UI shows about the wallet. Display data only.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletStatus {
    /// `none` (first run), `locked` or `unlocked`.
    pub state: &'static str,
    /// The accounts, in wallet order.
    pub accounts: Vec<AccountView>,
    /// The default account's address.
    pub default_address: Option<String>,
    /// Which keychain store holds the wallet.
    pub keystore: String,
    /// Where the backup step suggests writing the backup.
    pub backup_suggestion: String,
}

/// One account as the UI shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// The N3 address.
    pub address: String,
    /// The label.
    pub label: String,
    /// No key in this wallet.
    pub watch_only: bool,
    /// The wallet's default account.
    pub is_default: bool,
}

/// What `wallet_backup` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupResult {
    /// The file.
    pub path: String,
    /// How many accounts it holds.
    pub accounts: usize,
}

fn backup_suggestion() -> PathBuf {
    dirs::document_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("krypton-wallet-backup.json")
}

fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("the password is too long: use at most 1024 bytes".into());
    }
    Ok(())
}

/// An absolute path from the UI.
fn user_path(path: &str, what: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(path.trim());
    if p.as_os_str().is_empty() {
        return Err(format!("enter the path of the {what}"));
    }
    if !p.is_absolute() {
        return Err(format!(
            "{} is not a full path: enter the {what}'s full path, starting with /",
            p.display()
        ));
    }
    Ok(p)
}

/// First run (`none`), `locked` or `unlocked`, with the addresses.
#[tauri::command]
pub async fn wallet_status(state: State<'_, WalletState>) -> Result<WalletStatus, String> {
    let kc = state.keychain()?;
    let w = blocking(move || kc.load().map_err(|e| e.to_string())).await?;
    Ok(state.status_of(w.as_ref()))
}

/// Creates the wallet with one new account, its key NEP-2 encrypted with `password` (scrypt, on
/// a blocking thread), stores it in the keychain and leaves it unlocked.
#[tauri::command]
pub async fn wallet_create(
    state: State<'_, WalletState>,
    password: String,
) -> Result<WalletStatus, String> {
    let password = Zeroizing::new(password);
    check_new_password(&password)?;
    let kc = state.keychain()?;
    let (w, session) = blocking(move || {
        if kc.load().map_err(|e| e.to_string())?.is_some() {
            return Err(
                "there is already a wallet in this keychain: unlock it instead, or use another data dir"
                    .into(),
            );
        }
        let mut w = Nep6Wallet::default();
        let address = w
            .add_account_from_key(&PrivateKey::generate(), &password, FIRST_LABEL)
            .map_err(|e| e.to_string())?;
        w.set_default(&address).map_err(|e| e.to_string())?;
        let session = UnlockedWallet::unlock(&w, &password, Instant::now(), AUTO_LOCK)
            .map_err(|e| e.to_string())?;
        kc.save(&w).map_err(|e| e.to_string())?;
        Ok((w, session))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// Decrypts the wallet's keys with `password` (scrypt, on a blocking thread).
#[tauri::command]
pub async fn wallet_unlock(
    state: State<'_, WalletState>,
    password: String,
) -> Result<WalletStatus, String> {
    let password = Zeroizing::new(password);
    let kc = state.keychain()?;
    let (w, session) = blocking(move || {
        let w = kc
            .load()
            .map_err(|e| e.to_string())?
            .ok_or("there is no wallet yet: create one or import a NEP-6 file")?;
        let s = UnlockedWallet::unlock(&w, &password, Instant::now(), AUTO_LOCK)
            .map_err(|e| format!("{e}; check the password and try again"))?;
        Ok((w, s))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// Drops the decrypted keys.
#[tauri::command]
pub async fn wallet_lock(state: State<'_, WalletState>) -> Result<WalletStatus, String> {
    state.set_session(None);
    wallet_status(state).await
}

/// Writes the wallet as a NEP-6 file (keys NEP-2 encrypted, as in the keychain) to `path`, which
/// must not exist yet.
#[tauri::command]
pub async fn wallet_backup(
    state: State<'_, WalletState>,
    path: String,
) -> Result<BackupResult, String> {
    let path = user_path(&path, "backup file")?;
    let kc = state.keychain()?;
    blocking(move || {
        let w = kc
            .load()
            .map_err(|e| e.to_string())?
            .ok_or("there is no wallet to back up yet: create one first")?;
        write_new_file(&path, w.to_json_pretty().as_bytes())?;
        Ok(BackupResult {
            path: path.to_string_lossy().into_owned(),
            accounts: w.accounts().len(),
        })
    })
    .await
}

fn write_new_file(path: &Path, data: &[u8]) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{} exists already: choose another file name (an existing file is never overwritten)",
            path.display()
        ),
        std::io::ErrorKind::NotFound => format!(
            "the folder of {} does not exist: choose an existing folder",
            path.display()
        ),
        _ => format!("cannot write {}: {e}; choose another place", path.display()),
    })?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}; choose another place", path.display()))
}

/// Imports the accounts of a NEP-6 file (neo-go, Neon, a KRYPTON backup). `password` decrypts
/// its keys (scrypt, on a blocking thread); with a wallet already here, it must be that wallet's
/// password too. The wallet is left unlocked.
#[tauri::command]
pub async fn wallet_import_nep6(
    state: State<'_, WalletState>,
    path: String,
    password: String,
) -> Result<WalletStatus, String> {
    let password = Zeroizing::new(password);
    let path = user_path(&path, "NEP-6 file")?;
    let kc = state.keychain()?;
    let (w, session) = blocking(move || {
        let text = read_small(&path)?;
        let other = Nep6Wallet::from_json(&text)
            .map_err(|e| format!("{} is not a usable NEP-6 wallet: {e}", path.display()))?;
        let mut w = kc.load().map_err(|e| e.to_string())?.unwrap_or_default();
        let n = w
            .merge(&other, Some(password.as_str()))
            .map_err(|e| format!("{e}; check the password and try again"))?;
        if n == 0 {
            return Err(format!(
                "{} has no account that is not in this wallet already",
                path.display()
            ));
        }
        // Decrypts every key, the new ones and any already here: one password for the wallet.
        let s = UnlockedWallet::unlock(&w, &password, Instant::now(), AUTO_LOCK).map_err(|e| {
            format!(
                "{e}; enter the file's password (with a wallet here already, also that wallet's) and try again"
            )
        })?;
        // (`default_account()` falls back to the first keyed account: check the flag itself)
        if !w.accounts().iter().any(|a| a.is_default())
            && let Some(a) = w.accounts().iter().find(|a| !a.is_watch_only())
        {
            let a = a.address().to_string();
            w.set_default(&a).map_err(|e| e.to_string())?;
        }
        kc.save(&w).map_err(|e| e.to_string())?;
        Ok((w, s))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

fn read_small(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}; check the path", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_IMPORT_BYTES {
        return Err(format!(
            "{} is not a NEP-6 wallet file (not a file, or larger than 4 MiB)",
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}; check the path", path.display()))
}
