//! Chain commands: the network, balances, history, the providers on chain, and registering the
//! wallet's account with one of them (a transaction, with progress until it is confirmed).
//!
//! Reads need no key. Transactions are signed with the unlocked wallet's default account, in
//! the core; the UI gets the txid, block and fees, and a [`TxStep`] on its channel at each step.

use std::path::PathBuf;

use krypton_chain::nep17::{self, Asset};
use krypton_chain::{Account, Network, Progress, RpcClient, Sender, Transaction, TxOutcome};
use krypton_core::wallet_account;
use krypton_wallet::ScriptHash;
use serde::{Deserialize, Serialize};
use tauri::State;
use tauri::ipc::Channel;

use super::wallet::WalletState;

/// What the app knows about the chain it talks to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainStatus {
    /// The network setting (`devnet`, `testnet`, `mainnet` or RPC URLs).
    pub network: String,
    /// The RPC node answering.
    pub rpc: String,
    /// Current block height.
    pub height: u32,
    /// The KRYPTON contract's hash, if known on this network.
    pub contract: Option<String>,
}

/// An account's balances.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balances {
    /// The account.
    pub address: String,
    /// GAS, as a decimal string.
    pub gas: String,
    /// NEO.
    pub neo: String,
    /// At this block height.
    pub height: u32,
}

/// One line of the history: a transaction this app sent, or a NEP-17 transfer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// Block height.
    pub block: u64,
    /// `register`, `unregister`, `send` (this app's transactions), `transfer in`,
    /// `transfer out`, `fee` (NEP-17 transfers).
    pub kind: String,
    /// What it was, for people.
    pub summary: String,
    /// Transaction id (for fee burns neo-go reports the block hash).
    pub tx: String,
    /// GAS moved or paid, as a decimal string (negative: out of the account).
    pub gas: Option<String>,
}

/// A provider deployed on chain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    /// The provider's address.
    pub address: String,
    /// Its SIP proxy location.
    pub location: String,
}

/// Where the wallet's account is registered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationView {
    /// The account.
    pub address: String,
    /// Its provider's address.
    pub provider: String,
    /// The provider's location.
    pub location: String,
}

/// A step of a transaction on its way into a block, for the progress display.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum TxStep {
    /// The key is being decrypted or the transaction built.
    #[serde(rename_all = "camelCase")]
    Preparing {
        /// What happens.
        text: String,
    },
    /// Signed; these are the fees.
    #[serde(rename_all = "camelCase")]
    Signed {
        /// Transaction id.
        txid: String,
        /// Total fees, GAS.
        fees: String,
    },
    /// The node took it; waiting for a block.
    #[serde(rename_all = "camelCase")]
    Submitted {
        /// Transaction id.
        txid: String,
        /// Last block that may include it.
        valid_until_block: u32,
    },
    /// In a block and executed.
    #[serde(rename_all = "camelCase")]
    Confirmed {
        /// Transaction id.
        txid: String,
        /// Block height.
        block: u32,
    },
}

/// A confirmed transaction.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxResult {
    /// Transaction id.
    pub txid: String,
    /// Block height.
    pub block: u32,
    /// Fees paid, GAS.
    pub fees: String,
}

/// A GAS transfer signed and waiting for the user's confirmation (at most one).
#[derive(Default)]
pub struct SendState {
    pending: std::sync::Mutex<Option<PendingSend>>,
}

struct PendingSend {
    id: u64,
    tx: Transaction,
    summary: String,
    made: std::time::Instant,
}

/// How long a prepared transfer may wait for its confirmation.
const CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// A transfer ready to send: what it does and what it costs, shown before confirming.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendPreview {
    /// Pass to `chain_send_confirm`.
    pub id: u64,
    /// From (the default account).
    pub from: String,
    /// To.
    pub to: String,
    /// GAS sent.
    pub amount: String,
    /// Network and system fees, GAS.
    pub fees: String,
    /// Amount plus fees, GAS.
    pub total: String,
}

fn network(state: &WalletState) -> Network {
    state.network()
}

fn rpc(state: &WalletState) -> Result<RpcClient, String> {
    network(state).rpc().map_err(|e| e.to_string())
}

fn gas(datoshi: i128) -> String {
    nep17::format_amount(datoshi, 8)
}

/// The network, its RPC node, height and the KRYPTON contract.
#[tauri::command]
pub async fn chain_status(state: State<'_, WalletState>) -> Result<ChainStatus, String> {
    let net = network(&state);
    let rpc = rpc(&state)?;
    let height = rpc.get_block_count().await.map_err(|e| e.to_string())?;
    Ok(ChainStatus {
        network: net.name().to_string(),
        rpc: rpc.current_endpoint().to_string(),
        height,
        contract: net.contract().ok().map(|c| c.hash.to_string()),
    })
}

/// GAS and NEO of the wallet's default account. A failed read is an error, never a zero.
#[tauri::command]
pub async fn chain_balances(state: State<'_, WalletState>) -> Result<Balances, String> {
    let address = state.default_address().await?;
    let who = ScriptHash::parse_any(&address).map_err(|e| e.to_string())?;
    let rpc = rpc(&state)?;
    let balances = rpc
        .get_nep17_balances(&who)
        .await
        .map_err(|e| e.to_string())?;
    let height = rpc.get_block_count().await.map_err(|e| e.to_string())?;
    let amount = |a: Asset| nep17::amount_of(&balances, a);
    Ok(Balances {
        address,
        gas: gas(amount(Asset::Gas)),
        neo: nep17::format_amount(amount(Asset::Neo), 0),
        height,
    })
}

/// The transactions this app sent (newest first), then the account's NEP-17 transfers.
#[tauri::command]
pub async fn chain_history(state: State<'_, WalletState>) -> Result<Vec<HistoryItem>, String> {
    let address = state.default_address().await?;
    let who = ScriptHash::parse_any(&address).map_err(|e| e.to_string())?;
    let mut items = TxLog::new(state.config().data_dir.join("transactions.jsonl")).read();
    items.reverse();
    let transfers = rpc(&state)?
        .get_nep17_transfers(&who, 0)
        .await
        .map_err(|e| e.to_string())?;
    for t in transfers {
        let (symbol, decimals) = if t.asset == nep17::GAS {
            ("GAS", 8)
        } else if t.asset == nep17::NEO {
            ("NEO", 0)
        } else {
            continue;
        };
        let amount = nep17::format_amount(t.amount, decimals);
        let (kind, summary) = match (&t.counterparty, t.received) {
            (None, false) => ("fee", format!("{amount} {symbol} fees")),
            (None, true) => ("transfer in", format!("{amount} {symbol} minted")),
            (Some(c), true) => ("transfer in", format!("{amount} {symbol} from {c}")),
            (Some(c), false) => ("transfer out", format!("{amount} {symbol} to {c}")),
        };
        let signed = if t.received {
            amount.clone()
        } else {
            format!("-{amount}")
        };
        items.push(HistoryItem {
            block: t.block,
            kind: kind.into(),
            summary,
            tx: t.tx_hash,
            gas: (symbol == "GAS").then_some(signed),
        });
    }
    Ok(items)
}

/// The providers deployed on the KRYPTON contract.
#[tauri::command]
pub async fn chain_providers(state: State<'_, WalletState>) -> Result<Vec<ProviderView>, String> {
    let net = network(&state);
    let contract = net.contract().map_err(|e| e.to_string())?;
    let rpc = net.rpc().map_err(|e| e.to_string())?;
    let list = contract.providers(&rpc).await.map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|p| ProviderView {
            address: p.provider.to_address(),
            location: p.location,
        })
        .collect())
}

/// The provider the wallet's default account is registered with, or none.
#[tauri::command]
pub async fn chain_registration(
    state: State<'_, WalletState>,
) -> Result<Option<RegistrationView>, String> {
    let address = state.default_address().await?;
    let net = network(&state);
    let contract = net.contract().map_err(|e| e.to_string())?;
    let rpc = net.rpc().map_err(|e| e.to_string())?;
    match wallet_account::lookup(&rpc, &contract, &address).await {
        Ok(c) => Ok(Some(RegistrationView {
            address,
            provider: c.provider,
            location: c.location,
        })),
        Err(wallet_account::WalletAccountError::NotRegistered(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Registers the wallet's default account with `provider` (a new uuid), waiting until the
/// transaction is in a block; each step goes to `progress`.
#[tauri::command]
pub async fn chain_register(
    state: State<'_, WalletState>,
    provider: String,
    progress: Channel<TxStep>,
) -> Result<TxResult, String> {
    let p = ScriptHash::parse_any(provider.trim()).map_err(|_| {
        format!(
            "{:?} is not a provider address: pick one from the list",
            provider.trim()
        )
    })?;
    let contract = network(&state).contract().map_err(|e| e.to_string())?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let summary = format!("registered with provider {}", p.to_address());
    send_tx(&state, &progress, "register", summary, |me| {
        contract.register_script(me, &p, &uuid)
    })
    .await
}

/// Ends the wallet's default account's registration.
#[tauri::command]
pub async fn chain_unregister(
    state: State<'_, WalletState>,
    progress: Channel<TxStep>,
) -> Result<TxResult, String> {
    let contract = network(&state).contract().map_err(|e| e.to_string())?;
    send_tx(
        &state,
        &progress,
        "unregister",
        "unregistered".into(),
        |me| contract.unregister_script(me),
    )
    .await
}

/// Builds and signs a transfer of `amount` GAS to `to` from the default account, and returns
/// it with its fees for the user to confirm (`chain_send_confirm`); nothing is sent yet.
#[tauri::command]
pub async fn chain_send_prepare(
    state: State<'_, WalletState>,
    sends: State<'_, SendState>,
    to: String,
    amount: String,
) -> Result<SendPreview, String> {
    let to_h = ScriptHash::parse_any(to.trim()).map_err(|_| {
        format!(
            "{:?} is not an N3 address: check it (it starts with N and has 34 characters)",
            to.trim()
        )
    })?;
    let value = nep17::parse_amount(amount.trim(), Asset::Gas).map_err(|e| e.to_string())?;
    let rpc = rpc(&state)?;
    let signer = state.signer().await?;
    let sender = Sender::connect(&rpc).await.map_err(|e| e.to_string())?;
    let account = Account::with_script(signer.script.clone(), vec![&signer.key]);
    let script = nep17::transfer_script(&Asset::Gas.hash(), &account.script_hash(), &to_h, value);
    let tx = sender
        .build(script, &account, value as i64)
        .await
        .map_err(|e| e.to_string())?;
    let fees = (tx.system_fee + tx.network_fee) as i128;
    let id = rand_id();
    let preview = SendPreview {
        id,
        from: signer.address.clone(),
        to: to_h.to_address(),
        amount: gas(value),
        fees: gas(fees),
        total: gas(value + fees),
    };
    *sends.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(PendingSend {
        id,
        tx,
        summary: format!("sent {} GAS to {}", preview.amount, preview.to),
        made: std::time::Instant::now(),
    });
    Ok(preview)
}

fn rand_id() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_u128() as u32)
}

/// Sends the transfer `chain_send_prepare` showed (exactly that transaction, with those fees)
/// and waits for its block; each step goes to `progress`.
#[tauri::command]
pub async fn chain_send_confirm(
    state: State<'_, WalletState>,
    sends: State<'_, SendState>,
    id: u64,
    progress: Channel<TxStep>,
) -> Result<TxResult, String> {
    let pending = sends
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let p = match pending {
        Some(p) if p.id == id && p.made.elapsed() < CONFIRM_WITHIN => p,
        Some(p) if p.id == id => {
            return Err(
                "this transfer waited too long for its confirmation: prepare it again".into(),
            );
        }
        other => {
            *sends.pending.lock().unwrap_or_else(|p| p.into_inner()) = other;
            return Err("there is no such transfer waiting: prepare it again".into());
        }
    };
    let rpc = rpc(&state)?;
    let sender = Sender::connect(&rpc).await.map_err(|e| e.to_string())?;
    let outcome = sender
        .send(&p.tx, &mut step_reporter(&progress))
        .await
        .map_err(|e| e.to_string())?;
    Ok(record(&state, &progress, "send", p.summary, outcome))
}

/// Drops a prepared transfer.
#[tauri::command]
pub async fn chain_send_cancel(sends: State<'_, SendState>) -> Result<(), String> {
    sends
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    Ok(())
}

/// Turns the sender's progress into [`TxStep`]s on `progress`.
fn step_reporter(progress: &Channel<TxStep>) -> impl FnMut(Progress) + Send + '_ {
    move |p: Progress| {
        let s = match p {
            Progress::Signed {
                txid,
                system_fee,
                network_fee,
            } => TxStep::Signed {
                txid,
                fees: gas((system_fee + network_fee) as i128),
            },
            Progress::Submitted {
                txid,
                valid_until_block,
            } => TxStep::Submitted {
                txid,
                valid_until_block,
            },
            Progress::Included { .. } | Progress::Executed { .. } => return,
        };
        // The UI may have gone away: the transaction goes on.
        let _ = progress.send(s);
    }
}

/// Reports the confirmation, records the transaction in the app's history, and says what it cost.
fn record(
    state: &WalletState,
    progress: &Channel<TxStep>,
    kind: &str,
    summary: String,
    outcome: TxOutcome,
) -> TxResult {
    let _ = progress.send(TxStep::Confirmed {
        txid: outcome.txid.clone(),
        block: outcome.block,
    });
    let fees = gas(outcome.fees() as i128);
    TxLog::new(state.config().data_dir.join("transactions.jsonl")).append(&HistoryItem {
        block: outcome.block as u64,
        kind: kind.into(),
        summary,
        tx: outcome.txid.clone(),
        gas: Some(format!("-{fees}")),
    });
    TxResult {
        txid: outcome.txid,
        block: outcome.block,
        fees,
    }
}

/// Signs `make(signer)` with the default account, sends it and waits for its block.
async fn send_tx(
    state: &WalletState,
    progress: &Channel<TxStep>,
    kind: &str,
    summary: String,
    make: impl FnOnce(&ScriptHash) -> Vec<u8>,
) -> Result<TxResult, String> {
    let step = |s: TxStep| {
        // The UI may have gone away: the transaction goes on.
        let _ = progress.send(s);
    };
    step(TxStep::Preparing {
        text: "connecting to the chain".into(),
    });
    let net = network(state);
    let rpc = net.rpc().map_err(|e| e.to_string())?;
    let signer = state.signer().await?;
    let sender = Sender::connect(&rpc).await.map_err(|e| e.to_string())?;
    let account = Account::with_script(signer.script.clone(), vec![&signer.key]);
    let script = make(&account.script_hash());
    step(TxStep::Preparing {
        text: "signing".into(),
    });
    let outcome = sender
        .invoke(script, &account, 0, &mut step_reporter(progress))
        .await
        .map_err(|e| e.to_string())?;
    Ok(record(state, progress, kind, summary, outcome))
}

/// The transactions this app sent, one JSON line each (the chain's NEP-17 transfers show
/// their fees only as burns, without the transaction id).
struct TxLog {
    path: PathBuf,
}

impl TxLog {
    fn new(path: PathBuf) -> Self {
        TxLog { path }
    }

    /// Every readable line; a damaged line is skipped (the chain still has the truth).
    fn read(&self) -> Vec<HistoryItem> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn append(&self, item: &HistoryItem) {
        use std::io::Write as _;
        let line = match serde_json::to_string(item) {
            Ok(l) => l,
            Err(_) => return,
        };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), "cannot record the transaction: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tx_log_keeps_what_it_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = TxLog::new(dir.path().join("t.jsonl"));
        assert!(log.read().is_empty());
        let item = HistoryItem {
            block: 7,
            kind: "register".into(),
            summary: "registered".into(),
            tx: "0xabc".into(),
            gas: Some("-0.01".into()),
        };
        log.append(&item);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("t.jsonl"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{damaged\n"))
            .unwrap();
        log.append(&item);
        assert_eq!(log.read(), vec![item.clone(), item]);
    }
}
