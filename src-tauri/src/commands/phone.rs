//! Phone commands: start the phone on the wallet's KRYPTON account, pass the user's actions
//! to it, and stream its events to the UI.
//!
//! The phone is krypton-core's [`Phone`], the one the headless `krypton phone` runs: the UI
//! sends [`PhoneCommand`]s (`{"cmd":"call","to":"N…"}`) and gets every [`PhoneEvent`] on the
//! channel it passed to [`phone_start`], in order. The account is found through the chain
//! (`krypton_core::wallet_account`): the provider the wallet's default address is registered
//! with, its Bearer token minted with the unlocked key, which stays in the core.

use krypton_core::wallet_account::{self, WalletAccountOptions};
use krypton_core::{AudioConfig, Phone, PhoneCommand, PhoneConfig, PhoneEvent};
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;
use tokio::sync::Mutex;

use super::wallet::WalletState;
use crate::settings;

/// How often a call's live quality is reported (the call screen's graph).
const QUALITY_EVERY_MS: u64 = 1000;

/// The running phone, if any.
#[derive(Default)]
pub struct PhoneState {
    phone: Mutex<Option<Phone>>,
}

/// What `phone_start` set up.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneStarted {
    /// The account's address of record, `sip:ADDRESS@LOCATION`.
    pub aor: String,
    /// The provider's address.
    pub provider: String,
}

/// Starts the phone (replacing a running one) on every wallet account that is registered with
/// a provider on chain, the default account first, plus the SIP accounts from the settings,
/// routed by the settings' rules, on the chosen sound devices. Events, from `ready` and
/// `registered` on, arrive on `events`.
#[tauri::command]
pub async fn phone_start(
    wallet: State<'_, WalletState>,
    phone: State<'_, PhoneState>,
    events: Channel<PhoneEvent>,
) -> Result<PhoneStarted, String> {
    let signer = wallet.signer().await?;
    let net = wallet.network();
    let rpc = net.rpc().map_err(|e| e.to_string())?;
    let contract = net.contract().map_err(|e| e.to_string())?;
    let (settings, _) = wallet.settings();

    // The wallet's KRYPTON accounts: the default one must be registered (it is the one the
    // Providers panel registers); the others join when they are.
    let mut addresses = vec![signer.address.clone()];
    addresses.extend(
        signer
            .wallet
            .accounts()
            .iter()
            .filter(|a| !a.is_watch_only() && a.address() != signer.address)
            .map(|a| a.address().to_string()),
    );
    let mut accounts = Vec::new();
    let mut first: Option<(String, wallet_account::OnChain)> = None;
    for address in addresses {
        let chain = match wallet_account::lookup(&rpc, &contract, &address).await {
            Ok(c) => c,
            Err(e) if first.is_none() => return Err(e.to_string()),
            Err(e) => {
                tracing::info!("{address} stays off the phone: {e}");
                continue;
            }
        };
        let proving =
            wallet_account::signing_address(&signer.wallet, &address, chain.device_key.as_ref())
                .map_err(|e| e.to_string())?;
        let key = wallet.key_of(&proving)?;
        accounts.push(wallet_account::account_config(
            &address,
            &chain,
            key,
            &WalletAccountOptions::default(),
        ));
        if first.is_none() {
            first = Some((address, chain));
        }
    }
    let (_, chain) = first.ok_or("the wallet has no account registered with a provider")?;
    let aor = accounts[0].aor.clone();

    for a in &settings.sip_accounts {
        let password = match &a.sealed_password {
            Some(sealed) => Some(settings::unseal(&signer.key, &a.id, sealed)?),
            None => None,
        };
        accounts.push(a.to_config(password));
    }
    let mut dial_plan = settings.dial_plan.clone();
    if dial_plan.default.is_empty() {
        dial_plan.default = accounts.iter().map(|a| a.id.clone()).collect();
    }
    let config = PhoneConfig {
        bind: local_ip_towards(&chain.location).await?,
        accounts,
        dial_plan,
        data_dir: Some(wallet.config().data_dir.join("phone")),
        audio: AudioConfig {
            input: Some(settings.audio_input.clone()),
            output: Some(settings.audio_output.clone()),
            echo_cancellation: true,
        },
        quality_interval_ms: Some(QUALITY_EVERY_MS),
        ..Default::default()
    };
    config
        .validate()
        .map_err(|e| format!("{e}: correct the SIP accounts or routing rules in Settings"))?;
    let mut running = phone.phone.lock().await;
    if let Some(old) = running.take() {
        old.send(PhoneCommand::Quit);
    }
    let (p, mut rx) = Phone::start(config).await.map_err(|e| e.to_string())?;
    tauri::async_runtime::spawn(async move {
        while let Some(e) = rx.recv().await {
            if events.send(e).is_err() {
                tracing::debug!("the phone's event channel is closed");
            }
        }
    });
    *running = Some(p);
    Ok(PhoneStarted {
        aor,
        provider: chain.provider,
    })
}

/// The local address that routes to the provider at `location` (`host[:port]`): loopback for
/// a provider on this machine, the LAN address for one elsewhere. No packet is sent.
async fn local_ip_towards(location: &str) -> Result<std::net::IpAddr, String> {
    let target = if location
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        location.to_string()
    } else {
        format!("{location}:5060")
    };
    let addr = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| {
            format!("cannot resolve your provider's address {location}: {e}; check the network")
        })?
        .next()
        .ok_or_else(|| format!("your provider's address {location} does not resolve"))?;
    let any: std::net::SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = tokio::net::UdpSocket::bind(any)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    probe
        .connect(addr)
        .await
        .map_err(|e| format!("no route to your provider at {location}: {e}; check the network"))?;
    probe
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| format!("cannot find the local address: {e}"))
}

/// Passes one user action to the phone (call, answer, hangup, hold, resume, mute, dtmf,
/// message, devices, set_device, transfer); the outcome arrives as events.
#[tauri::command]
pub async fn phone_send(phone: State<'_, PhoneState>, command: PhoneCommand) -> Result<(), String> {
    if matches!(command, PhoneCommand::Quit) {
        return phone_stop(phone).await;
    }
    let running = phone.phone.lock().await;
    let p = running
        .as_ref()
        .ok_or("the phone is not running: unlock the wallet and register with a provider")?;
    if p.send(command) {
        Ok(())
    } else {
        Err("the phone stopped; start it again".into())
    }
}

/// Stops the phone (unregisters, hangs up calls).
#[tauri::command]
pub async fn phone_stop(phone: State<'_, PhoneState>) -> Result<(), String> {
    if let Some(p) = phone.phone.lock().await.take() {
        p.send(PhoneCommand::Quit);
    }
    Ok(())
}
