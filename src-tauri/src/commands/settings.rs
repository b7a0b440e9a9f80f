//! Settings commands: read and save the app's settings (network, auto-lock, sound devices, SIP
//! accounts, routing rules) and list the sound devices to choose from.
//!
//! The one secret here is a SIP account's password: it comes in with `settings_save`, is sealed
//! at once with a key from the unlocked wallet (`crate::settings::seal`) and never goes back out;
//! the UI only learns whether an account has one.

use krypton_core::audio;
use krypton_core::dialplan::DialPlan;
use serde::{Deserialize, Serialize};
use tauri::State;
use zeroize::Zeroizing;

use super::blocking;
use super::wallet::WalletState;
use crate::settings::{self, Settings, SipAccount};

/// The settings as the UI shows them. No secrets: SIP passwords only as `has_password`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// The network in use (`devnet`, `testnet`, `mainnet` or RPC URLs).
    pub network: String,
    /// The contract hash set for a custom network.
    pub contract: Option<String>,
    /// The network comes from the command line or environment and cannot be changed here.
    pub network_fixed: bool,
    /// Auto-lock time, minutes.
    pub auto_lock_minutes: u32,
    /// The microphone (`default` or a device id).
    pub audio_input: String,
    /// The speaker or headset.
    pub audio_output: String,
    /// Ordinary SIP accounts.
    pub sip_accounts: Vec<SipAccountView>,
    /// Routing rules.
    pub dial_plan: DialPlan,
    /// The accounts routing rules can name: the wallet's addresses, then the SIP account ids.
    pub route_accounts: Vec<String>,
    /// Why the settings file was not used, if it was unreadable.
    pub problem: Option<String>,
}

/// A SIP account as the UI shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SipAccountView {
    /// Its name for routing rules.
    pub id: String,
    /// `sip:user@domain`.
    pub aor: String,
    /// Outbound proxy.
    pub proxy: Option<String>,
    /// Authentication user name.
    pub username: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Registers with its proxy.
    pub register: bool,
    /// A password is saved (sealed).
    pub has_password: bool,
}

/// The settings as the UI sends them to `settings_save`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsInput {
    /// `devnet`, `testnet`, `mainnet` or RPC URLs.
    pub network: String,
    /// The contract hash, for a custom RPC.
    #[serde(default)]
    pub contract: Option<String>,
    /// Auto-lock time, minutes.
    pub auto_lock_minutes: u32,
    /// The microphone.
    pub audio_input: String,
    /// The speaker or headset.
    pub audio_output: String,
    /// Ordinary SIP accounts.
    #[serde(default)]
    pub sip_accounts: Vec<SipAccountInput>,
    /// Routing rules.
    #[serde(default)]
    pub dial_plan: DialPlan,
}

/// A SIP account from the settings form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SipAccountInput {
    /// Its name for routing rules.
    pub id: String,
    /// `sip:user@domain`.
    pub aor: String,
    /// Outbound proxy.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Authentication user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Register with the proxy.
    #[serde(default = "yes")]
    pub register: bool,
    /// A new password; empty or absent keeps the saved one.
    #[serde(default)]
    pub password: Option<String>,
    /// Forget the saved password.
    #[serde(default)]
    pub clear_password: bool,
}

impl std::fmt::Debug for SipAccountInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipAccountInput")
            .field("id", &self.id)
            .field("aor", &self.aor)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}

/// The sound devices to choose from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioDevicesView {
    /// The audio host (`PulseAudio`, `ALSA`, …).
    pub host: String,
    /// Microphones.
    pub inputs: Vec<AudioDeviceView>,
    /// Speakers and headsets.
    pub outputs: Vec<AudioDeviceView>,
}

/// One sound device.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioDeviceView {
    /// What to save in the settings.
    pub id: String,
    /// What to show.
    pub name: String,
    /// The system's default of its direction.
    pub is_default: bool,
}

async fn wallet_addresses(wallet: &WalletState) -> Vec<String> {
    match wallet.load().await {
        Ok(w) => w
            .accounts()
            .iter()
            .filter(|a| !a.is_watch_only())
            .map(|a| a.address().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn view_of(
    wallet: &WalletState,
    s: &Settings,
    problem: Option<String>,
    addresses: Vec<String>,
) -> SettingsView {
    let net = wallet.network();
    let mut route_accounts = addresses;
    route_accounts.extend(s.sip_accounts.iter().map(|a| a.id.clone()));
    SettingsView {
        network: net.name().to_string(),
        contract: if wallet.config().network_fixed {
            wallet.config().contract.clone()
        } else {
            s.contract.clone()
        },
        network_fixed: wallet.config().network_fixed,
        auto_lock_minutes: s.auto_lock_minutes,
        audio_input: s.audio_input.to_string(),
        audio_output: s.audio_output.to_string(),
        sip_accounts: s
            .sip_accounts
            .iter()
            .map(|a| SipAccountView {
                id: a.id.clone(),
                aor: a.aor.clone(),
                proxy: a.proxy.clone(),
                username: a.username.clone(),
                display_name: a.display_name.clone(),
                register: a.register,
                has_password: a.sealed_password.is_some(),
            })
            .collect(),
        dial_plan: s.dial_plan.clone(),
        route_accounts,
        problem,
    }
}

/// The settings.
#[tauri::command]
pub async fn settings_get(wallet: State<'_, WalletState>) -> Result<SettingsView, String> {
    let (s, problem) = wallet.settings();
    let addresses = wallet_addresses(&wallet).await;
    Ok(view_of(&wallet, &s, problem, addresses))
}

/// Checks and saves the settings; returns them as saved. A new SIP password needs the wallet
/// unlocked (it is sealed with a key from the wallet). A changed network applies to the next
/// chain request; the phone picks up accounts, rules and devices when it is started again.
#[tauri::command]
pub async fn settings_save(
    wallet: State<'_, WalletState>,
    settings: SettingsInput,
) -> Result<SettingsView, String> {
    let (old, _) = wallet.settings();
    let addresses = wallet_addresses(&wallet).await;
    let blank = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut sip_accounts = Vec::with_capacity(settings.sip_accounts.len());
    for a in settings.sip_accounts {
        let id = a.id.trim().to_string();
        let password = a.password.map(Zeroizing::new);
        let sealed_password = match password.as_ref().filter(|p| !p.is_empty()) {
            Some(p) => {
                if p.len() > 256 {
                    return Err(format!(
                        "the password of SIP account {id} is too long: use at most 256 bytes"
                    ));
                }
                let default = wallet.default_address().await.map_err(|_| {
                    "create or import a wallet first: SIP passwords are kept encrypted with its key"
                        .to_string()
                })?;
                let key = wallet.key_of(&default).map_err(|_| {
                    "unlock the wallet to save a SIP password: it is kept encrypted with the wallet's key"
                        .to_string()
                })?;
                Some(settings::seal(&key, &id, p))
            }
            None if a.clear_password => None,
            None => old
                .sip_accounts
                .iter()
                .find(|o| o.id == id)
                .and_then(|o| o.sealed_password.clone()),
        };
        sip_accounts.push(SipAccount {
            id,
            aor: a.aor.trim().to_string(),
            proxy: blank(a.proxy),
            username: blank(a.username),
            display_name: blank(a.display_name),
            register: a.register,
            sealed_password,
        });
    }
    let network = settings.network.trim().to_string();
    let new = Settings {
        network: (!network.is_empty()).then_some(network),
        contract: blank(settings.contract),
        auto_lock_minutes: settings.auto_lock_minutes,
        audio_input: settings.audio_input.as_str().into(),
        audio_output: settings.audio_output.as_str().into(),
        sip_accounts,
        dial_plan: settings.dial_plan,
    };
    new.validate(&addresses)?;
    wallet.save_settings(new.clone())?;
    Ok(view_of(&wallet, &new, None, addresses))
}

/// The microphones and speakers of this computer (asks the sound server on a blocking thread).
#[tauri::command]
pub async fn audio_devices() -> Result<AudioDevicesView, String> {
    let list = blocking(|| {
        audio::list_devices().map_err(|e| {
            format!(
                "cannot list the sound devices: {e}; check that a sound server or card is available"
            )
        })
    })
    .await?;
    let view = |d: &audio::SoundDevice| AudioDeviceView {
        id: d.id.clone(),
        name: d.name.clone(),
        is_default: d.is_default,
    };
    Ok(AudioDevicesView {
        host: list.host.clone(),
        inputs: list.inputs.iter().map(view).collect(),
        outputs: list.outputs.iter().map(view).collect(),
    })
}
