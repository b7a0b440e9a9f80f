//! Keeps the [`Registry`] in step with the chain: a storage snapshot at start, then every new
//! block's KRYPTON events in order. The only I/O here is JSON-RPC; the cache logic is in
//! [`crate::registry`].

use std::time::Duration;

use krypton_chain::krypton::KryptonEvent;
use krypton_chain::{RpcClient, RpcError};
use krypton_wallet::ScriptHash;

use crate::registry::{Change, Registry, prefix};

/// Reads the contract's storage into a fresh cache. Returns the cache and the height (block
/// count) read *before* the snapshot: following from there replays at most a few events the
/// snapshot already holds, which [`Registry::apply`] tolerates.
pub async fn snapshot(rpc: &RpcClient, contract: &ScriptHash) -> Result<(Registry, u32), RpcError> {
    let height = rpc.get_block_count().await?;
    let mut entries = Vec::new();
    for p in [
        prefix::PROVIDER,
        prefix::USER_PROVIDER,
        prefix::USER_UUID,
        prefix::USER_KEY,
    ] {
        for e in rpc.find_storage(contract, &[p]).await? {
            // neo-go returns the whole key; be tolerant of nodes that strip the prefix.
            let key = if e.key.len() == 20 {
                [&[p][..], &e.key].concat()
            } else {
                e.key
            };
            entries.push((key, e.value));
        }
    }
    let (reg, skipped) = Registry::from_storage(entries.iter().map(|(k, v)| (&k[..], &v[..])));
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "contract storage entries that do not parse were skipped"
        );
    }
    Ok((reg, height))
}

/// The KRYPTON events of block `height`, in execution order.
pub async fn block_events(
    rpc: &RpcClient,
    contract: &ScriptHash,
    height: u32,
) -> Result<Vec<KryptonEvent>, RpcError> {
    let mut out = Vec::new();
    for txid in rpc.get_block_tx_hashes(height).await? {
        let Some(log) = rpc.get_application_log(&txid).await? else {
            continue;
        };
        if log.vm_state != "HALT" {
            continue;
        }
        for n in log.notifications.iter().filter(|n| n.contract == *contract) {
            match KryptonEvent::from_notification(n) {
                Some(Ok(ev)) => out.push(ev),
                Some(Err(e)) => {
                    tracing::warn!(%txid, event = %n.event, error = %e, "undecodable KRYPTON event")
                }
                None => {}
            }
        }
    }
    Ok(out)
}

/// Something that receives the followed state: the service's shared state.
pub trait Sink: Send + Sync {
    /// Applies one block's events (called once per block, in order) and records the new height.
    fn apply_block(&self, height: u32, events: &[KryptonEvent]) -> Vec<Change>;
    /// Called when the follower cannot reach the chain (`Some(error)`) or reaches it again (`None`).
    fn chain_status(&self, error: Option<&RpcError>);
}

/// Follows blocks from `next` (a block count) forever, polling every `poll`. Blocks are applied
/// whole and in order; an RPC failure retries the same block after `poll` (doubling up to 10 s).
pub async fn follow(
    rpc: RpcClient,
    contract: ScriptHash,
    mut next: u32,
    poll: Duration,
    sink: &dyn Sink,
    mut on_change: impl FnMut(Change),
) {
    let mut wait = poll;
    loop {
        match step(&rpc, &contract, &mut next, sink, &mut on_change).await {
            Ok(()) => {
                sink.chain_status(None);
                wait = poll;
            }
            Err(e) => {
                tracing::warn!(error = %e, height = next, "cannot follow the chain; retrying");
                sink.chain_status(Some(&e));
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
        tokio::time::sleep(wait).await;
    }
}

async fn step(
    rpc: &RpcClient,
    contract: &ScriptHash,
    next: &mut u32,
    sink: &dyn Sink,
    on_change: &mut impl FnMut(Change),
) -> Result<(), RpcError> {
    let count = rpc.get_block_count().await?;
    while *next < count {
        let events = block_events(rpc, contract, *next).await?;
        for c in sink.apply_block(*next, &events) {
            on_change(c);
        }
        *next += 1;
    }
    Ok(())
}
