//! Wallet commands: status, create, unlock/lock, backup, import (NEP-6 file, WIF), receive.
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
use crate::settings::{Settings, SettingsFile};

/// The label of the first account.
const FIRST_LABEL: &str = "KRYPTON";
/// Shortest password `wallet_create` accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Largest NEP-6 file `wallet_import_nep6` reads.
const MAX_IMPORT_BYTES: u64 = 4 * 1024 * 1024;

/// The wallet side of the app's state.
pub struct WalletState {
    config: DesktopConfig,
    namespace: String,
    session: Arc<Mutex<Option<UnlockedWallet>>>,
    settings: Mutex<(SettingsFile, Settings)>,
}

impl WalletState {
    /// State for this data dir and keychain store; nothing is read yet.
    pub fn new(config: DesktopConfig) -> Self {
        let namespace = config.keychain_namespace();
        let settings = Mutex::new(SettingsFile::load(&config.data_dir));
        WalletState {
            config,
            namespace,
            session: Arc::new(Mutex::new(None)),
            settings,
        }
    }

    /// The saved settings (a copy), and what was wrong with the file if it was unreadable.
    pub(crate) fn settings(&self) -> (Settings, Option<String>) {
        let guard = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        (guard.1.clone(), guard.0.problem.clone())
    }

    /// Saves `settings` (already validated) and uses them from now on.
    pub(crate) fn save_settings(&self, settings: Settings) -> Result<(), String> {
        let mut guard = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.save(&settings)?;
        guard.1 = settings;
        Ok(())
    }

    /// The chain this app talks to: `--network`/`KRYPTON_NETWORK` if given, else the one
    /// chosen in the settings, else the devnet.
    pub(crate) fn network(&self) -> krypton_chain::Network {
        if self.config.network_fixed {
            return self.config.network();
        }
        let (s, _) = self.settings();
        let name = s
            .network
            .as_deref()
            .unwrap_or(crate::config::DEFAULT_NETWORK);
        let contract = s.contract.as_deref().or(self.config.contract.as_deref());
        krypton_chain::Network::new(name, &self.config.data_dir, contract)
    }

    /// How long the keys stay unlocked without use (from the settings).
    pub(crate) fn auto_lock(&self) -> std::time::Duration {
        self.settings().0.auto_lock()
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
    let auto_lock = state.auto_lock();
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
        let session = UnlockedWallet::unlock(&w, &password, Instant::now(), auto_lock)
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
    let auto_lock = state.auto_lock();
    let (w, session) = blocking(move || {
        let w = kc
            .load()
            .map_err(|e| e.to_string())?
            .ok_or("there is no wallet yet: create one or import a NEP-6 file")?;
        let s = UnlockedWallet::unlock(&w, &password, Instant::now(), auto_lock)
            .map_err(|e| format!("{e}; check the password and try again"))?;
        Ok((w, s))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// Adds a new address (a fresh key, NEP-2 encrypted with `password`, which must be the
/// wallet's) labelled `label`, and leaves the wallet unlocked. Each address can register with
/// its own provider; the phone uses every registered one (routing rules name them).
#[tauri::command]
pub async fn wallet_add_account(
    state: State<'_, WalletState>,
    password: String,
    label: String,
) -> Result<WalletStatus, String> {
    let password = Zeroizing::new(password);
    let label = label.trim().to_string();
    if label.chars().count() > 64 {
        return Err("the label is too long: use at most 64 characters".into());
    }
    let kc = state.keychain()?;
    let auto_lock = state.auto_lock();
    let (w, session) = blocking(move || {
        let mut w = kc
            .load()
            .map_err(|e| e.to_string())?
            .ok_or("there is no wallet yet: create one first")?;
        // the password must be the wallet's: one password opens every key
        UnlockedWallet::unlock(&w, &password, Instant::now(), auto_lock)
            .map_err(|e| format!("{e}; enter the wallet's password"))?;
        let label = if label.is_empty() {
            format!("{FIRST_LABEL} {}", w.accounts().len() + 1)
        } else {
            label
        };
        w.add_account_from_key(&PrivateKey::generate(), &password, &label)
            .map_err(|e| e.to_string())?;
        let s = UnlockedWallet::unlock(&w, &password, Instant::now(), auto_lock)
            .map_err(|e| e.to_string())?;
        kc.save(&w).map_err(|e| e.to_string())?;
        Ok((w, s))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// Makes `address` (one of the wallet's, with a key) the default: the one the wallet panel
/// shows, sends from and registers, and the phone's first account.
#[tauri::command]
pub async fn wallet_set_default(
    state: State<'_, WalletState>,
    address: String,
) -> Result<WalletStatus, String> {
    let kc = state.keychain()?;
    let w = blocking(move || {
        let mut w = kc
            .load()
            .map_err(|e| e.to_string())?
            .ok_or("there is no wallet yet: create one first")?;
        let a = address.trim();
        match w.account(a) {
            None => return Err(format!("{a} is not an address of this wallet")),
            Some(acc) if acc.is_watch_only() => {
                return Err(format!("{a} is watch-only: it cannot be the default"));
            }
            Some(_) => {}
        }
        w.set_default(a).map_err(|e| e.to_string())?;
        kc.save(&w).map_err(|e| e.to_string())?;
        Ok(w)
    })
    .await?;
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
    let idle = state.auto_lock();
    let (w, session) = blocking(move || {
        let text = read_small(&path)?;
        import_nep6_text(&kc, &text, &path.display().to_string(), &password, idle)
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// As [`wallet_import_nep6`], with the file's text as the UI's file chooser read it (`name`, the
/// chosen file's name, is only for messages). NEP-6 files hold NEP-2 encrypted keys only.
#[tauri::command]
pub async fn wallet_import_nep6_json(
    state: State<'_, WalletState>,
    json: String,
    name: Option<String>,
    password: String,
) -> Result<WalletStatus, String> {
    let password = Zeroizing::new(password);
    let name: String = name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("the chosen file")
        .chars()
        .take(200)
        .collect();
    if json.len() as u64 > MAX_IMPORT_BYTES {
        return Err(format!(
            "{name} is not a NEP-6 wallet file (larger than 4 MiB): choose the wallet's .json file"
        ));
    }
    let kc = state.keychain()?;
    let idle = state.auto_lock();
    let (w, session) =
        blocking(move || import_nep6_text(&kc, &json, &name, &password, idle)).await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// The one import path of a NEP-6 document (from a path or from the file chooser): merge into
/// the keychain wallet, unlock it all with `password` (locking again after `idle`), save.
fn import_nep6_text(
    kc: &Keychain,
    text: &str,
    source: &str,
    password: &str,
    idle: Duration,
) -> Result<(Nep6Wallet, UnlockedWallet), String> {
    let other = Nep6Wallet::from_json(text)
        .map_err(|e| format!("{source} is not a usable NEP-6 wallet: {e}"))?;
    let mut w = kc.load().map_err(|e| e.to_string())?.unwrap_or_default();
    let n = w
        .merge(&other, Some(password))
        .map_err(|e| format!("{e}; check the password and try again"))?;
    if n == 0 {
        return Err(format!(
            "{source} has no account that is not in this wallet already"
        ));
    }
    // Decrypts every key, the new ones and any already here: one password for the wallet.
    let s = UnlockedWallet::unlock(&w, password, Instant::now(), idle).map_err(|e| {
        format!(
            "{e}; enter the file's password (with a wallet here already, also that wallet's) and try again"
        )
    })?;
    set_default_if_none(&mut w)?;
    kc.save(&w).map_err(|e| e.to_string())?;
    Ok((w, s))
}

/// Flags the first keyed account as the default when none is (`default_account()` falls back
/// to it, so check the flag itself).
fn set_default_if_none(w: &mut Nep6Wallet) -> Result<(), String> {
    if !w.accounts().iter().any(|a| a.is_default())
        && let Some(a) = w.accounts().iter().find(|a| !a.is_watch_only())
    {
        let a = a.address().to_string();
        w.set_default(&a).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Imports one private key typed as WIF. The key is NEP-2 encrypted with `password` (scrypt, on
/// a blocking thread) and added to the keychain wallet: a new wallet when there is none (then
/// `password` must be at least [`MIN_PASSWORD_CHARS`]), else `password` must unlock the wallet
/// here. The WIF is never echoed; the wallet is left unlocked.
#[tauri::command]
pub async fn wallet_import_wif(
    state: State<'_, WalletState>,
    wif: String,
    password: String,
) -> Result<WalletStatus, String> {
    let wif = Zeroizing::new(wif);
    let password = Zeroizing::new(password);
    let kc = state.keychain()?;
    let idle = state.auto_lock();
    let (w, session) = blocking(move || {
        let key = PrivateKey::from_wif(&wif).map_err(|e| e.to_string())?;
        drop(wif);
        let address = key.public_key().address();
        let existing = kc.load().map_err(|e| e.to_string())?;
        let is_new = existing.is_none();
        if is_new {
            check_new_password(&password)?;
        }
        let mut w = existing.unwrap_or_default();
        if w.account(&address).is_some_and(|a| !a.is_watch_only()) {
            return Err(format!(
                "{address} is in this wallet already with its key: there is nothing to import"
            ));
        }
        let label = if is_new { FIRST_LABEL } else { "imported" };
        w.add_account_from_key(&key, &password, label)
            .map_err(|e| e.to_string())?;
        // Decrypts every key, the new one and any already here: one password for the wallet.
        let s = UnlockedWallet::unlock(&w, &password, Instant::now(), idle)
            .map_err(|e| format!("{e}; enter this wallet's password (the imported key is encrypted with it too) and try again"))?;
        set_default_if_none(&mut w)?;
        kc.save(&w).map_err(|e| e.to_string())?;
        Ok((w, s))
    })
    .await?;
    state.set_session(Some(session));
    Ok(state.status_of(Some(&w)))
}

/// What the Receive block shows: the address, its `neo:` URI and the URI as a QR code.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveView {
    /// The address to receive at.
    pub address: String,
    /// `neo:ADDRESS`, with `?asset=gas&amount=…` when an amount was asked (NEP-9 style).
    pub uri: String,
    /// The URI as a QR code.
    pub qr: QrView,
}

/// A QR code as modules: `size` × `size`, row-major, `1` dark and `0` light, without the quiet
/// zone (the UI draws a 4-module margin around it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrView {
    /// Modules per side.
    pub size: usize,
    /// `size * size` characters, `0` or `1`.
    pub modules: String,
}

/// The receive view of `address` (which must be in the wallet): its `neo:` URI, with a GAS
/// `amount` if one is given, and the URI as a QR code.
#[tauri::command]
pub async fn wallet_receive(
    state: State<'_, WalletState>,
    address: String,
    amount: Option<String>,
) -> Result<ReceiveView, String> {
    let w = state.load().await?;
    let address = address.trim();
    if w.account(address).is_none() {
        return Err(format!(
            "{address} is not an address of this wallet: choose one of your own addresses to receive at"
        ));
    }
    receive_view(address, amount.as_deref())
}

/// [`ReceiveView`] for `address`, with an optional GAS amount.
pub(crate) fn receive_view(address: &str, amount: Option<&str>) -> Result<ReceiveView, String> {
    use krypton_chain::nep17::{Asset, format_amount, parse_amount};
    let mut uri = format!("neo:{address}");
    if let Some(a) = amount.map(str::trim).filter(|a| !a.is_empty()) {
        let v =
            parse_amount(a, Asset::Gas).map_err(|e| format!("{e}; or leave the amount empty"))?;
        uri.push_str(&format!(
            "?asset=gas&amount={}",
            format_amount(v, Asset::Gas.decimals())
        ));
    }
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("cannot make a QR code: {e}"))?;
    let modules = code
        .to_colors()
        .iter()
        .map(|c| if *c == qrcode::Color::Dark { '1' } else { '0' })
        .collect();
    Ok(ReceiveView {
        address: address.to_string(),
        uri,
        qr: QrView {
            size: code.width(),
            modules,
        },
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws the modules as a greyscale image with a quiet zone and reads it back with a QR
    /// decoder (rqrr), as a phone camera would.
    fn decode(qr: &QrView) -> String {
        const SCALE: usize = 4;
        const QUIET: usize = 4;
        assert_eq!(qr.modules.len(), qr.size * qr.size);
        assert!(qr.modules.bytes().all(|b| b == b'0' || b == b'1'));
        let side = (qr.size + 2 * QUIET) * SCALE;
        let m = qr.modules.as_bytes();
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = (x / SCALE, y / SCALE);
            let inside =
                (QUIET..QUIET + qr.size).contains(&mx) && (QUIET..QUIET + qr.size).contains(&my);
            if inside && m[(my - QUIET) * qr.size + (mx - QUIET)] == b'1' {
                0
            } else {
                255
            }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        grids[0].decode().expect("a readable QR code").1
    }

    const ADDRESS: &str = "NM7Aky765FG8NhhwtxjXRx7jEL1cnw7PBP";

    #[test]
    fn receive_qr_decodes_to_the_uri() {
        let v = receive_view(ADDRESS, None).unwrap();
        assert_eq!(v.uri, format!("neo:{ADDRESS}"));
        assert_eq!(decode(&v.qr), v.uri);

        let v = receive_view(ADDRESS, Some(" 1.50 ")).unwrap();
        assert_eq!(v.uri, format!("neo:{ADDRESS}?asset=gas&amount=1.5"));
        assert_eq!(v.address, ADDRESS);
        assert_eq!(decode(&v.qr), v.uri);
        assert_eq!(
            receive_view(ADDRESS, Some("")).unwrap().uri,
            format!("neo:{ADDRESS}")
        );
    }

    #[test]
    fn receive_refuses_a_bad_amount_saying_what_to_do() {
        for bad in ["-1", "0", "abc", "0.000000001"] {
            let e = receive_view(ADDRESS, Some(bad)).unwrap_err();
            assert!(e.contains("leave the amount empty"), "{bad}: {e}");
        }
    }
}
