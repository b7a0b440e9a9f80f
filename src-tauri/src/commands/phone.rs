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

/// Starts the phone on the wallet's default account at its on-chain provider (replacing a
/// running one). Events, from `ready` and `registered` on, arrive on `events`.
#[tauri::command]
pub async fn phone_start(
    wallet: State<'_, WalletState>,
    phone: State<'_, PhoneState>,
    events: Channel<PhoneEvent>,
) -> Result<PhoneStarted, String> {
    let signer = wallet.signer().await?;
    let net = wallet.config().network();
    let rpc = net.rpc().map_err(|e| e.to_string())?;
    let contract = net.contract().map_err(|e| e.to_string())?;
    let chain = wallet_account::lookup(&rpc, &contract, &signer.address)
        .await
        .map_err(|e| e.to_string())?;
    let proving =
        wallet_account::signing_address(&signer.wallet, &signer.address, chain.device_key.as_ref())
            .map_err(|e| e.to_string())?;
    let key = wallet.key_of(&proving)?;
    let account = wallet_account::account_config(
        &signer.address,
        &chain,
        key,
        &WalletAccountOptions::default(),
    );
    let aor = account.aor.clone();
    let config = PhoneConfig {
        bind: local_ip_towards(&chain.location).await?,
        accounts: vec![account],
        data_dir: Some(wallet.config().data_dir.join("phone")),
        audio: AudioConfig::default_devices(),
        quality_interval_ms: Some(QUALITY_EVERY_MS),
        ..Default::default()
    };
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
