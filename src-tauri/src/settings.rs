//! The app's settings: network, auto-lock time, sound devices, ordinary SIP accounts and the
//! routing rules. One JSON file, `<data dir>/desktop-settings.json` (mode 0600, written
//! atomically), read at start and replaced on every save.
//!
//! SIP account passwords are the one secret here. They are stored sealed: AES-256-GCM under a
//! key derived (HKDF-SHA256) from the wallet's default private key, with the account id as
//! associated data. So the file holds only encrypted material, a password can be read back only
//! while the wallet is unlocked (when the phone starts), and it never goes back to the UI.
//! RustCrypto's `aes-gcm` and `hkdf` do the work.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hkdf::Hkdf;
use krypton_core::AccountConfig;
use krypton_core::config::{Credentials, DeviceChoice};
use krypton_core::dialplan::DialPlan;
use krypton_wallet::{PrivateKey, ScriptHash};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The settings file's name in the data dir.
pub const FILE_NAME: &str = "desktop-settings.json";
/// Auto-lock when none is set, minutes.
pub const DEFAULT_AUTO_LOCK_MINUTES: u32 = 15;
/// Longest auto-lock time, minutes (a day).
pub const MAX_AUTO_LOCK_MINUTES: u32 = 24 * 60;
/// Most SIP accounts.
const MAX_SIP_ACCOUNTS: usize = 16;
/// Most routing rules.
const MAX_RULES: usize = 64;

/// What the settings file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The chain: `devnet`, `testnet`, `mainnet` or an RPC URL; `None` = the default (devnet).
    #[serde(default)]
    pub network: Option<String>,
    /// The KRYPTON contract's hash, for a network without one built in.
    #[serde(default)]
    pub contract: Option<String>,
    /// Minutes of inactivity after which the unlocked keys are dropped.
    #[serde(default = "default_auto_lock")]
    pub auto_lock_minutes: u32,
    /// The microphone for calls.
    #[serde(default = "default_device")]
    pub audio_input: DeviceChoice,
    /// The speaker or headset for calls.
    #[serde(default = "default_device")]
    pub audio_output: DeviceChoice,
    /// Ordinary SIP accounts, besides the wallet's KRYPTON accounts.
    #[serde(default)]
    pub sip_accounts: Vec<SipAccount>,
    /// Routing by destination. Account ids are SIP account ids and wallet addresses. When its
    /// default list is empty, destinations no rule takes go to the default wallet address, then
    /// the other accounts.
    #[serde(default)]
    pub dial_plan: DialPlan,
}

fn default_auto_lock() -> u32 {
    DEFAULT_AUTO_LOCK_MINUTES
}

fn default_device() -> DeviceChoice {
    DeviceChoice::Default
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            network: None,
            contract: None,
            auto_lock_minutes: DEFAULT_AUTO_LOCK_MINUTES,
            audio_input: DeviceChoice::Default,
            audio_output: DeviceChoice::Default,
            sip_accounts: Vec::new(),
            dial_plan: DialPlan::default(),
        }
    }
}

/// An ordinary SIP account (any provider, not on chain), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SipAccount {
    /// Short name that routing rules use (letters, digits, `-`, `_`).
    pub id: String,
    /// `sip:user@domain`.
    pub aor: String,
    /// Outbound proxy `sip:host[:port][;transport=…]`; default: the AOR's domain.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Authentication user name; default: the AOR's user.
    #[serde(default)]
    pub username: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Register with the proxy (off for a proxy that takes calls without registration).
    #[serde(default = "yes")]
    pub register: bool,
    /// The password, sealed (base64 of nonce ‖ AES-GCM ciphertext); `None` = no password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where the settings live, and what was wrong with the file if it could not be read.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    /// Why the file on disk was not used (it is kept, renamed, on the next save).
    pub problem: Option<String>,
}

impl SettingsFile {
    /// Reads `<data_dir>/desktop-settings.json`. A missing file gives the defaults; an
    /// unreadable one gives the defaults and a [`SettingsFile::problem`] (the file is left as
    /// it is until the user saves).
    pub fn load(data_dir: &Path) -> (SettingsFile, Settings) {
        let path = data_dir.join(FILE_NAME);
        let (settings, problem) = match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<Settings>(&text) {
                Ok(s) => (s, None),
                Err(e) => (
                    Settings::default(),
                    Some(format!(
                        "{} is not valid ({e}); the defaults are in use, and saving keeps the old file as {FILE_NAME}.bad",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Settings::default(), None),
            Err(e) => (
                Settings::default(),
                Some(format!(
                    "cannot read {} ({e}); the defaults are in use",
                    path.display()
                )),
            ),
        };
        (SettingsFile { path, problem }, settings)
    }

    /// Writes `settings` (atomically: a temp file renamed over the old one, mode 0600). An
    /// unreadable old file is kept as `…​.bad` first.
    pub fn save(&mut self, settings: &Settings) -> Result<(), String> {
        let fail = |e: std::io::Error| {
            format!(
                "cannot save the settings to {}: {e}; check the data dir's permissions and free space",
                self.path.display()
            )
        };
        if self.problem.take().is_some() && self.path.exists() {
            std::fs::rename(&self.path, self.path.with_extension("json.bad")).map_err(fail)?;
        }
        let text = serde_json::to_string_pretty(settings).map_err(|e| e.to_string())?;
        let tmp = self.path.with_extension("json.tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        {
            use std::io::Write;
            let mut f = opts.open(&tmp).map_err(fail)?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

impl Settings {
    /// The auto-lock time.
    pub fn auto_lock(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.auto_lock_minutes.max(1)) * 60)
    }

    /// Checks everything a user can get wrong, with what to do about it. `wallet_addresses`
    /// are the wallet's addresses (routing rules may name them; SIP ids must not clash).
    pub fn validate(&self, wallet_addresses: &[String]) -> Result<(), String> {
        if let Some(n) = &self.network {
            check_network(n, self.contract.as_deref())?;
        }
        if let Some(c) = &self.contract {
            // (the parse `Network::contract` does when the chain is asked)
            if ScriptHash::from_hex(c.trim()).is_err() {
                return Err(format!(
                    "the contract hash {c:?} is not valid: enter 0x and 40 hex digits"
                ));
            }
        }
        if !(1..=MAX_AUTO_LOCK_MINUTES).contains(&self.auto_lock_minutes) {
            return Err(format!(
                "auto-lock must be between 1 and {MAX_AUTO_LOCK_MINUTES} minutes"
            ));
        }
        if self.sip_accounts.len() > MAX_SIP_ACCOUNTS {
            return Err(format!("at most {MAX_SIP_ACCOUNTS} SIP accounts"));
        }
        if self.dial_plan.rules.len() > MAX_RULES {
            return Err(format!("at most {MAX_RULES} routing rules"));
        }
        let mut ids: Vec<&str> = wallet_addresses.iter().map(String::as_str).collect();
        for a in &self.sip_accounts {
            let id = a.id.trim();
            if ids.contains(&id) {
                return Err(format!(
                    "the account name {id:?} is used twice: give each account its own name"
                ));
            }
            if id.is_empty()
                || id.len() > 32
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "the account name {:?} is not valid: use 1 to 32 letters, digits, - or _",
                    a.id
                ));
            }
            ids.push(id);
            a.to_config(None)
                .to_account()
                .map_err(|e| format!("SIP account {id}: {e}"))?;
        }
        self.dial_plan
            .validate(&ids)
            .map_err(|e| format!("routing rules: {e}"))
    }
}

fn check_network(n: &str, contract: Option<&str>) -> Result<(), String> {
    let n = n.trim();
    if matches!(n, "devnet" | "testnet" | "mainnet") {
        return Ok(());
    }
    for url in n.split(',') {
        let url = url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(format!(
                "{url:?} is not a network: choose devnet, testnet or mainnet, or enter an RPC URL starting with http:// or https://"
            ));
        }
    }
    if contract.is_none_or(|c| c.trim().is_empty()) {
        return Err(
            "a custom RPC needs the KRYPTON contract's hash: enter it (0x and 40 hex digits)"
                .into(),
        );
    }
    Ok(())
}

impl SipAccount {
    /// The phone's account config, with `credentials` if the password was unsealed.
    pub fn to_config(&self, password: Option<Zeroizing<String>>) -> AccountConfig {
        let blank = |s: &Option<String>| s.as_ref().filter(|v| !v.trim().is_empty()).cloned();
        let aor = self.aor.trim().to_string();
        AccountConfig {
            id: self.id.trim().to_string(),
            aor,
            proxy: blank(&self.proxy),
            username: blank(&self.username),
            password_file: None,
            display_name: blank(&self.display_name),
            register: self.register,
            expires: None,
            keepalive: None,
            krypton: false,
            tls_ca: None,
            instance: None,
            bearer: None,
            // (no user name here: the phone takes `username`, else the AOR's user)
            credentials: password.map(|p| Credentials::new("", p.as_str())),
        }
    }
}

/// The sealing key for SIP passwords, derived from the wallet's default key.
fn sealing_key(wallet_key: &PrivateKey) -> Zeroizing<[u8; 32]> {
    let ikm = wallet_key.to_bytes();
    let hk = Hkdf::<Sha256>::new(Some(b"krypton-desktop settings"), &ikm[..]);
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(b"sip account passwords v1", &mut okm[..])
        .expect("32 bytes is a valid HKDF-SHA256 length");
    okm
}

/// Encrypts `password` for account `id` under a key derived from `wallet_key`.
pub fn seal(wallet_key: &PrivateKey, id: &str, password: &str) -> String {
    let key = sealing_key(wallet_key);
    let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key");
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: password.as_bytes(),
                aad: id.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of a short message");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    B64.encode(out)
}

/// Decrypts what [`seal`] made for account `id`; an error says to enter the password again
/// (e.g. after the wallet's default account changed).
pub fn unseal(
    wallet_key: &PrivateKey,
    id: &str,
    sealed: &str,
) -> Result<Zeroizing<String>, String> {
    let again = || {
        format!(
            "the saved password of SIP account {id} cannot be decrypted with this wallet: enter it again in Settings"
        )
    };
    let raw = B64.decode(sealed.trim()).map_err(|_| again())?;
    if raw.len() < 12 + 16 {
        return Err(again());
    }
    let key = sealing_key(wallet_key);
    let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key");
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| again())?,
    );
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| again())
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_core::dialplan::{Match, Rule};

    fn sip(id: &str) -> SipAccount {
        SipAccount {
            id: id.into(),
            aor: format!("sip:alice@{id}.example"),
            proxy: Some("sip:127.0.0.1:5060".into()),
            username: None,
            display_name: None,
            register: true,
            sealed_password: None,
        }
    }

    #[test]
    fn a_sealed_password_opens_only_with_the_same_key_and_account() {
        let k = PrivateKey::generate();
        let sealed = seal(&k, "office", "s3cret pass");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            unseal(&k, "office", &sealed).unwrap().as_str(),
            "s3cret pass"
        );
        assert!(
            unseal(&k, "home", &sealed)
                .unwrap_err()
                .contains("enter it again")
        );
        let other = PrivateKey::generate();
        assert!(unseal(&other, "office", &sealed).is_err());
        assert!(unseal(&k, "office", "bm90IHNlYWxlZA==").is_err());
        assert!(unseal(&k, "office", "***").is_err());
        // a fresh nonce each time
        assert_ne!(seal(&k, "office", "x"), seal(&k, "office", "x"));
    }

    #[test]
    fn an_unsealed_password_signs_in_as_the_user_name_or_the_aors_user() {
        let mut a = sip("office");
        let creds = |a: &SipAccount| {
            a.to_config(Some(Zeroizing::new("pw".into())))
                .to_account()
                .unwrap()
                .credentials
                .unwrap()
        };
        assert_eq!(creds(&a).username, "alice");
        assert_eq!(creds(&a).password.as_str(), "pw");
        a.username = Some("alice-auth".into());
        assert_eq!(creds(&a).username, "alice-auth");
        assert!(
            a.to_config(None)
                .to_account()
                .unwrap()
                .credentials
                .is_none()
        );
    }

    #[test]
    fn settings_round_trip_through_the_file_and_a_corrupt_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, s) = SettingsFile::load(dir.path());
        assert_eq!(s, Settings::default());
        assert!(f.problem.is_none());
        let mut s = Settings {
            auto_lock_minutes: 5,
            network: Some("testnet".into()),
            ..Settings::default()
        };
        s.sip_accounts.push(sip("office"));
        f.save(&s).unwrap();
        assert_eq!(SettingsFile::load(dir.path()).1, s);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the settings file is private");
        }

        std::fs::write(dir.path().join(FILE_NAME), "{ not json").unwrap();
        let (mut f, s2) = SettingsFile::load(dir.path());
        assert_eq!(s2, Settings::default());
        assert!(f.problem.as_deref().unwrap().contains("not valid"));
        f.save(&s).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("desktop-settings.json.bad")).unwrap(),
            "{ not json"
        );
        assert_eq!(SettingsFile::load(dir.path()).1, s);
    }

    #[test]
    fn validation_says_what_to_fix() {
        let wallet = vec!["NUVPACMnKFhpuHjsRjhUvXz1XhqfGZYVtY".to_string()];
        let ok = |s: &Settings| s.validate(&wallet);
        let mut s = Settings::default();
        ok(&s).unwrap();

        s.auto_lock_minutes = 0;
        assert!(ok(&s).unwrap_err().contains("between 1 and"));
        s.auto_lock_minutes = 30;

        s.network = Some("ftp://x".into());
        assert!(ok(&s).unwrap_err().contains("http://"));
        s.network = Some("http://127.0.0.1:20332".into());
        assert!(ok(&s).unwrap_err().contains("contract"));
        s.contract = Some("0x1234".into());
        assert!(ok(&s).unwrap_err().contains("40 hex"));
        s.contract = Some(format!("0x{}", "ab".repeat(20)));
        ok(&s).unwrap();

        s.sip_accounts = vec![sip("office"), sip("office")];
        assert!(ok(&s).unwrap_err().contains("used twice"));
        s.sip_accounts = vec![sip("bad name")];
        assert!(ok(&s).unwrap_err().contains("not valid"));
        let mut bad = sip("office");
        bad.aor = "alice".into();
        s.sip_accounts = vec![bad];
        assert!(ok(&s).unwrap_err().starts_with("SIP account office"));
        let mut clash = sip("x");
        clash.id = wallet[0].clone();
        s.sip_accounts = vec![clash];
        assert!(ok(&s).unwrap_err().contains("used twice"));

        s.sip_accounts = vec![sip("office")];
        s.dial_plan.rules.push(Rule {
            matches: Match::Prefix("+31".into()),
            accounts: vec!["office".into(), wallet[0].clone()],
            strip: 0,
            prepend: String::new(),
            fallback_to_default: false,
        });
        ok(&s).unwrap();
        s.dial_plan.rules[0].accounts.push("nobody".into());
        assert!(ok(&s).unwrap_err().starts_with("routing rules"));
    }
}
