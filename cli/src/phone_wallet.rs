//! `krypton phone --wallet [ADDRESS]`: the wallet account as the phone's KRYPTON SIP account.
//!
//! The account itself (found through the chain, proving the address with a Bearer token) is
//! built by [`krypton_core::wallet_account`], which the desktop app uses too; this module adds
//! what the command line decides: which addresses, the password (from `--password-file`'s
//! first line or a terminal prompt, never from stdin, which carries the phone's commands), and
//! `--proxy`/`--expires`/`--keepalive`.

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use krypton_core::AccountConfig;
use krypton_core::wallet_account::{self, OnChain, WalletAccountOptions};
use krypton_wallet::{Nep6Wallet, PrivateKey, PublicKey, ScriptHash};
use zeroize::Zeroizing;

use crate::context::Context;

/// Options of `--wallet` taken from the phone's other flags.
pub struct WalletOptions<'a> {
    /// `--proxy`.
    pub proxy: Option<&'a str>,
    /// `--password-file`.
    pub password_file: Option<&'a Path>,
    /// `--expires` (capped at [`wallet_account::BEARER_EXPIRES`]).
    pub expires: Option<u32>,
    /// `--keepalive`.
    pub keepalive: Option<u64>,
}

/// The wallet accounts `addresses` (`None`: `--account`, else the wallet's default) as phone
/// accounts: all looked up on chain first, then unlocked with one password.
pub async fn wallet_accounts(
    ctx: &Context,
    addresses: &[Option<&str>],
    opts: &WalletOptions<'_>,
) -> anyhow::Result<Vec<AccountConfig>> {
    let w = ctx.wallet().await?;
    let mut found = Vec::new();
    for a in addresses {
        let address = pick_address(ctx, &w, *a)?;
        if found.iter().any(|(x, _)| *x == address) {
            bail!("--wallet {address} is given twice");
        }
        // The chain first: an unregistered address fails before any password is asked.
        let chain = lookup(ctx, &address).await?;
        found.push((address, chain));
    }
    let password = wallet_password(opts.password_file)?;
    let mut accounts = Vec::new();
    for (address, chain) in found {
        let key = signing_key(&w, &address, chain.device_key.as_ref(), password.clone()).await?;
        accounts.push(account_config(&address, &chain, key, opts));
    }
    Ok(accounts)
}

/// The address `--wallet ADDRESS` or `--account` names (they must agree), else the default.
fn pick_address(ctx: &Context, w: &Nep6Wallet, address: Option<&str>) -> anyhow::Result<String> {
    let acc = match (address, ctx.account.as_deref()) {
        (Some(a), Some(b)) if parse(a)? != parse(b)? => {
            bail!("--wallet {a} and --account {b} name different accounts: give one")
        }
        (Some(a), _) => {
            let h = parse(a)?;
            w.accounts()
                .iter()
                .find(|x| x.script_hash() == h)
                .ok_or_else(|| anyhow!("{a} is not in this wallet; see `krypton wallet list`"))?
        }
        (None, _) => ctx.signing_account(w)?,
    };
    if acc.is_watch_only() {
        bail!(
            "{} is watch-only: this wallet has no key to prove it to a provider",
            acc.address()
        );
    }
    Ok(acc.address().to_string())
}

fn parse(a: &str) -> anyhow::Result<ScriptHash> {
    ScriptHash::parse_any(a).with_context(|| format!("{a:?} is not a valid N3 address"))
}

/// What the chain says about `address` (see [`wallet_account::lookup`]).
pub async fn lookup(ctx: &Context, address: &str) -> anyhow::Result<OnChain> {
    match wallet_account::lookup(&ctx.rpc()?, &ctx.contract()?, address).await {
        // What to run, in this front end's words.
        Err(wallet_account::WalletAccountError::NotRegistered(a)) => bail!(
            "{a} is not registered with a provider on chain: run `krypton register --provider PROVIDER` first (`krypton providers` lists them)"
        ),
        r => Ok(r?),
    }
}

/// The wallet password: the first line of `file`, else a prompt on a terminal.
fn wallet_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    match file {
        Some(path) => {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the password file {}", path.display())
                })?);
            let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
            Ok(Zeroizing::new(line.to_string()))
        }
        None if std::io::stdin().is_terminal() => Ok(Zeroizing::new(rpassword::prompt_password(
            "Wallet password: ",
        )?)),
        None => bail!(
            "krypton phone --wallet needs the wallet password: pass --password-file FILE (standard input carries the phone's commands)"
        ),
    }
}

/// Decrypts the key that proves `address`: its own, or the on-chain device key if this wallet
/// holds it.
pub async fn signing_key(
    w: &Nep6Wallet,
    address: &str,
    device_key: Option<&PublicKey>,
    password: Zeroizing<String>,
) -> anyhow::Result<PrivateKey> {
    let signer_address = wallet_account::signing_address(w, address, device_key)?;
    let w = w.clone();
    tokio::task::spawn_blocking(move || w.decrypt_account(&signer_address, &password))
        .await?
        .with_context(|| format!("cannot unlock {address} in the wallet"))
}

/// The phone account for `address` registered at `chain`'s provider, proving itself with `key`.
pub fn account_config(
    address: &str,
    chain: &OnChain,
    key: PrivateKey,
    opts: &WalletOptions<'_>,
) -> AccountConfig {
    let options = WalletAccountOptions {
        proxy: opts.proxy.map(str::to_string),
        expires: opts.expires,
        keepalive: opts.keepalive,
    };
    wallet_account::account_config(address, chain, key, &options)
}
