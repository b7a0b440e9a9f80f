//! Commands that read or change the chain: balances, transfers and the KRYPTON contract.

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use krypton_chain::krypton::{KryptonEvent, QueryKind, QueryValue};
use krypton_chain::nep17::{self, Asset};
use krypton_chain::{Account, ChainError, Progress, Sender, TxOutcome};
use krypton_wallet::{PublicKey, ScriptHash};
use serde_json::{Value, json};

use crate::context::Context;
use crate::output::Output;

/// `krypton device-key …`.
#[derive(Subcommand, Debug)]
pub enum DeviceKeyCmd {
    /// Authorise a device's public key (33-byte compressed, hex)
    Set {
        /// The device's public key
        #[arg(long)]
        key: String,
    },
    /// Remove the device key
    Clear,
}

/// `krypton contract …`.
#[derive(Subcommand, Debug)]
pub enum ContractCmd {
    /// Contract version and owner
    Info,
    /// Upgrade the contract (owner only)
    Update {
        /// New NEF file
        #[arg(long)]
        nef: std::path::PathBuf,
        /// New manifest file
        #[arg(long)]
        manifest: std::path::PathBuf,
    },
}

fn gas(v: i64) -> String {
    nep17::format_amount(v as i128, 8)
}

fn address_arg(s: &str) -> anyhow::Result<ScriptHash> {
    ScriptHash::parse_any(s).with_context(|| format!("{s:?} is not a valid N3 address"))
}

/// The address to read: the argument, else `--account`, else the wallet's default account.
async fn target_address(ctx: &Context, address: Option<String>) -> anyhow::Result<ScriptHash> {
    if let Some(a) = address.as_ref().or(ctx.account.as_ref()) {
        return address_arg(a);
    }
    let w = ctx.wallet().await?;
    let acc = w
        .default_account()
        .ok_or_else(|| anyhow!("the wallet has no account; pass an address"))?;
    Ok(acc.script_hash())
}

/// `balance [ADDRESS]`. A failed read is an error, never a zero.
pub async fn balance(ctx: &Context, address: Option<String>, out: &Output) -> anyhow::Result<()> {
    let who = target_address(ctx, address).await?;
    let rpc = ctx.rpc()?;
    let balances = rpc.get_nep17_balances(&who).await?;
    let height = rpc.get_block_count().await?;
    let amount = |a: Asset| nep17::amount_of(&balances, a);
    out.result(json!({
        "address": who.to_address(),
        "GAS": nep17::format_amount(amount(Asset::Gas), 8),
        "NEO": nep17::format_amount(amount(Asset::Neo), 0),
        "GAS_datoshi": amount(Asset::Gas).to_string(),
        "height": height,
        "rpc": rpc.current_endpoint(),
    }));
    Ok(())
}

/// `history [ADDRESS]`.
pub async fn history(ctx: &Context, address: Option<String>, out: &Output) -> anyhow::Result<()> {
    let who = target_address(ctx, address).await?;
    let rpc = ctx.rpc()?;
    let items: Vec<Value> = rpc
        .get_nep17_transfers(&who, 0)
        .await?
        .into_iter()
        .map(|t| {
            let (sym, dec) = if t.asset == nep17::GAS {
                ("GAS", 8)
            } else if t.asset == nep17::NEO {
                ("NEO", 0)
            } else {
                ("?", 0)
            };
            json!({
                "block": t.block,
                "direction": if t.received { "in" } else { "out" },
                "asset": sym,
                "amount": nep17::format_amount(t.amount, dec),
                "counterparty": t.counterparty,
                "fee": !t.received && t.counterparty.is_none(),
                "tx": t.tx_hash,
            })
        })
        .collect();
    out.result(json!({"address": who.to_address(), "transfers": items}));
    Ok(())
}

/// Signs a transaction with the selected account (`--account` or the default) and waits for it.
///
/// `make` builds the script for the signer's script hash and says how much GAS the script itself
/// moves out of the account (for the balance check).
async fn sign_and_send(
    ctx: &Context,
    out: &Output,
    make: impl FnOnce(&ScriptHash) -> (Vec<u8>, i64),
) -> anyhow::Result<(ScriptHash, TxOutcome)> {
    let w = ctx.wallet().await?;
    let acc = ctx.signing_account(&w)?;
    let script_v = acc
        .verification_script()
        .ok_or_else(|| anyhow!("{} has no verification script", acc.address()))?;
    let (script, extra_gas) = make(&acc.script_hash());
    let rpc = ctx.rpc()?;
    // Connect first: an unreachable node is reported before asking for the password.
    let sender = Sender::connect(&rpc).await?;
    out.note("unlocking the key (scrypt)…");
    let key = ctx.signing_key(&w, acc.address()).await?;
    let account = Account::with_script(script_v, vec![&key]);
    let mut progress = |p: Progress| out.tx_progress(&p);
    let outcome = sender
        .invoke(script, &account, extra_gas, &mut progress)
        .await?;
    Ok((account.script_hash(), outcome))
}

/// A transaction's result: id, block, fees, `fields`, and the KRYPTON events of `contract`.
fn tx_result(o: &TxOutcome, contract: Option<&ScriptHash>, fields: Value) -> Value {
    let mut v = json!({
        "txid": o.txid,
        "block": o.block,
        "vm_state": o.log.vm_state,
        "fees": gas(o.fees()),
        "fees_datoshi": o.fees().to_string(),
        "system_fee": gas(o.system_fee),
        "network_fee": gas(o.network_fee),
    });
    let obj = v.as_object_mut().expect("object literal");
    if let Value::Object(f) = fields {
        obj.extend(f);
    }
    if let Some(c) = contract {
        obj.insert("events".into(), events_json(c, o));
    }
    v
}

/// Events of the KRYPTON contract in a transaction.
fn events_json(contract: &ScriptHash, o: &TxOutcome) -> Value {
    let evs: Vec<Value> = o
        .log
        .notifications
        .iter()
        .filter(|n| n.contract == *contract)
        .filter_map(KryptonEvent::from_notification)
        .filter_map(Result::ok)
        .map(event_json)
        .collect();
    Value::Array(evs)
}

fn event_json(e: KryptonEvent) -> Value {
    match e {
        KryptonEvent::ProviderDeployed { provider, location } => {
            json!({"event": "ProviderDeployed", "provider": provider.to_address(), "location": location})
        }
        KryptonEvent::ProviderUndeployed { provider } => {
            json!({"event": "ProviderUndeployed", "provider": provider.to_address()})
        }
        KryptonEvent::UserRegistered {
            user,
            provider,
            uuid,
        } => {
            json!({"event": "UserRegistered", "user": user.to_address(), "provider": provider.to_address(), "uuid": uuid})
        }
        KryptonEvent::UserUnregistered { user } => {
            json!({"event": "UserUnregistered", "user": user.to_address()})
        }
        KryptonEvent::DeviceKeyChanged { user, key } => {
            json!({"event": "DeviceKeyChanged", "user": user.to_address(), "key": key.map(|k| k.to_hex())})
        }
    }
}

/// `send --to --amount [--asset]`.
pub async fn send(
    ctx: &Context,
    to: &str,
    amount: &str,
    asset: &str,
    out: &Output,
) -> anyhow::Result<()> {
    let asset =
        Asset::parse(asset).ok_or_else(|| anyhow!("unknown asset {asset:?}: use GAS or NEO"))?;
    let to_h = address_arg(to)?;
    let value = nep17::parse_amount(amount, asset)?;
    let moved_gas = if asset == Asset::Gas { value as i64 } else { 0 };
    let sent = sign_and_send(ctx, out, |from| {
        (
            nep17::transfer_script(&asset.hash(), from, &to_h, value),
            moved_gas,
        )
    })
    .await;
    let (from, o) = match sent {
        // GAS is checked before invoking; a NEO transfer the account cannot cover fails the ASSERT.
        Err(e) if matches!(e.downcast_ref::<ChainError>(), Some(ChainError::WouldFault { reason }) if reason.contains("ASSERT")) =>
        {
            bail!(
                "the transfer was refused: the account does not hold {amount} {} (check `krypton balance`)",
                asset.symbol()
            )
        }
        r => r?,
    };
    let fields = json!({
        "from": from.to_address(),
        "to": to_h.to_address(),
        "amount": nep17::format_amount(value, asset.decimals()),
        "asset": asset.symbol(),
    });
    out.result(tx_result(&o, None, fields));
    Ok(())
}

/// `provider deploy --location L` (`location` only), `provider undeploy` (neither) and `provider
/// up`'s one transaction (deploy and/or set the peer key as the provider's device key, AUTH.md
/// §6): the transaction's result as printed by the command.
pub async fn provider_tx(
    ctx: &Context,
    location: Option<&str>,
    peer_key: Option<&PublicKey>,
    out: &Output,
) -> anyhow::Result<Value> {
    let c = ctx.contract()?;
    let (me, o) = sign_and_send(ctx, out, |me| {
        if location.is_none() && peer_key.is_none() {
            return (c.undeploy_script(me), 0);
        }
        let mut script = Vec::new();
        if let Some(l) = location {
            script.extend(c.deploy_script(me, l));
        }
        if let Some(k) = peer_key {
            script.extend(c.set_device_key_script(me, k));
        }
        (script, 0)
    })
    .await?;
    let mut fields = json!({"provider": me.to_address()});
    if let Some(l) = location {
        fields["location"] = json!(l);
    }
    Ok(tx_result(&o, Some(&c.hash), fields))
}

/// `register --provider [--uuid]`.
pub async fn register(
    ctx: &Context,
    provider: &str,
    uuid: Option<String>,
    out: &Output,
) -> anyhow::Result<()> {
    let c = ctx.contract()?;
    let p = address_arg(provider)?;
    let uuid = uuid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (me, o) = sign_and_send(ctx, out, |me| (c.register_script(me, &p, &uuid), 0)).await?;
    let fields = json!({"user": me.to_address(), "provider": p.to_address(), "uuid": uuid});
    out.result(tx_result(&o, Some(&c.hash), fields));
    Ok(())
}

/// `unregister`.
pub async fn unregister(ctx: &Context, out: &Output) -> anyhow::Result<()> {
    let c = ctx.contract()?;
    let (me, o) = sign_and_send(ctx, out, |me| (c.unregister_script(me), 0)).await?;
    out.result(tx_result(
        &o,
        Some(&c.hash),
        json!({"user": me.to_address()}),
    ));
    Ok(())
}

/// `query uuid|provider|location|key ADDRESS`.
pub async fn query(ctx: &Context, what: &str, address: &str, out: &Output) -> anyhow::Result<()> {
    let kind = QueryKind::parse(what)
        .ok_or_else(|| anyhow!("cannot query {what:?}: use uuid, provider, location or key"))?;
    let user = address_arg(address)?;
    let c = ctx.contract()?;
    let rpc = ctx.rpc()?;
    let v = c.query(&rpc, kind, &user).await?;
    let value = match v {
        None => Value::Null,
        Some(QueryValue::Text(s)) => json!(s),
        Some(QueryValue::Account(h)) => json!(h.to_address()),
        Some(QueryValue::Key(k)) => json!(k.to_hex()),
    };
    out.result(json!({"type": kind.as_str(), "address": user.to_address(), "value": value}));
    Ok(())
}

/// `providers`.
pub async fn providers(ctx: &Context, out: &Output) -> anyhow::Result<()> {
    let c = ctx.contract()?;
    let rpc = ctx.rpc()?;
    let list: Vec<Value> = c
        .providers(&rpc)
        .await?
        .into_iter()
        .map(|p| json!({"address": p.provider.to_address(), "location": p.location}))
        .collect();
    out.result(json!({"providers": list}));
    Ok(())
}

/// `device-key set|clear`.
pub async fn device_key(ctx: &Context, cmd: DeviceKeyCmd, out: &Output) -> anyhow::Result<()> {
    let key = match &cmd {
        DeviceKeyCmd::Set { key } => Some(
            PublicKey::from_hex(key)
                .with_context(|| format!("--key {key:?} is not a compressed public key"))?,
        ),
        DeviceKeyCmd::Clear => None,
    };
    out.result(device_key_tx(ctx, key.as_ref(), out).await?);
    Ok(())
}

/// Sets (or with `None` clears) the signing account's device key on chain; the transaction result.
pub async fn device_key_tx(
    ctx: &Context,
    key: Option<&PublicKey>,
    out: &Output,
) -> anyhow::Result<Value> {
    let c = ctx.contract()?;
    let (me, o) = sign_and_send(ctx, out, |me| match key {
        Some(k) => (c.set_device_key_script(me, k), 0),
        None => (c.clear_device_key_script(me), 0),
    })
    .await?;
    Ok(tx_result(
        &o,
        Some(&c.hash),
        json!({"user": me.to_address()}),
    ))
}

/// `contract info|update`.
pub async fn contract(ctx: &Context, cmd: ContractCmd, out: &Output) -> anyhow::Result<()> {
    let c = ctx.contract()?;
    match cmd {
        ContractCmd::Info => {
            let rpc = ctx.rpc()?;
            let version = c.version(&rpc).await?;
            let owner = c.owner(&rpc).await?;
            out.result(json!({"contract": c.hash.to_hex(), "version": version.to_string(), "owner": owner.to_address()}));
        }
        ContractCmd::Update { nef, manifest } => {
            let nef_b =
                std::fs::read(&nef).with_context(|| format!("cannot read {}", nef.display()))?;
            let m = std::fs::read_to_string(&manifest)
                .with_context(|| format!("cannot read {}", manifest.display()))?;
            let (_, o) = sign_and_send(ctx, out, |_| (c.update_script(&nef_b, &m), 0)).await?;
            let fields = json!({"contract": c.hash.to_hex(), "updated": true});
            out.result(tx_result(&o, None, fields));
        }
    }
    Ok(())
}
