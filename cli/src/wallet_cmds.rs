//! `krypton wallet …`: the wallet in the OS keychain.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use krypton_wallet::{Nep2Flavor, Nep6Wallet, PrivateKey, ScriptHash, nep2_decrypt_legacy_aware};
use serde_json::json;

use crate::context::Context;
use crate::output::Output;

/// Wallet subcommands.
#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Create a new account (and the wallet, on first use); password from --password-stdin or a prompt
    Create {
        /// A label for the account
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Import accounts: a NEP-6 file, a WIF key or a NEP-2 key (NEO 2 keys too); secrets come from stdin
    Import {
        /// A NEP-6 wallet file (neo-go, Neon, …); its password from --password-stdin
        #[arg(long, conflicts_with_all = ["wif", "nep2", "watch"])]
        nep6: Option<PathBuf>,
        /// Read a WIF key from the first line of stdin (then the password)
        #[arg(long, conflicts_with_all = ["nep2", "watch"])]
        wif: bool,
        /// Read a NEP-2 key (N3 or legacy NEO 2) from the first line of stdin (then its password)
        #[arg(long, conflicts_with = "watch")]
        nep2: bool,
        /// Add a watch-only address
        #[arg(long)]
        watch: Option<String>,
        /// Label for a WIF/NEP-2/watch-only account
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Write the wallet (keys stay NEP-2 encrypted) to a NEP-6 file, as a backup or for neo-go
    Export {
        /// Destination file
        #[arg(long)]
        nep6: PathBuf,
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// List the accounts
    List,
    /// Make an account the default
    Default { address: String },
    /// Remove one account, or with --all the whole wallet from the keychain
    Remove {
        /// The account to remove
        address: Option<String>,
        /// Remove the whole wallet (export a backup first!)
        #[arg(long, conflicts_with = "address")]
        all: bool,
    },
}

/// Runs a wallet subcommand.
pub async fn run(ctx: &Context, cmd: WalletCmd, out: &Output) -> anyhow::Result<()> {
    match cmd {
        WalletCmd::Create { label } => create(ctx, &label, out).await,
        WalletCmd::Import {
            nep6: Some(file), ..
        } => import_nep6(ctx, &file, out).await,
        WalletCmd::Import {
            wif: true, label, ..
        } => {
            let wif = ctx.secret_line("WIF key")?;
            let key = PrivateKey::from_wif(&wif)?;
            add_key(ctx, key, &label, "wif", out).await
        }
        WalletCmd::Import {
            nep2: true, label, ..
        } => {
            let nep2 = ctx.secret_line("NEP-2 key")?;
            let existing = ctx.load_wallet().await?;
            // A bare NEP-2 key carries no scrypt parameters: it uses the standard ones.
            let params = krypton_wallet::ScryptParams::default();
            let password = ctx.password(false)?;
            out.note("decrypting the key (scrypt)…");
            let (key, flavor) = {
                let (n, p) = (nep2.clone(), password.clone());
                tokio::task::spawn_blocking(move || nep2_decrypt_legacy_aware(&n, &p, params, true))
                    .await??
            };
            if flavor == Nep2Flavor::Neo2Legacy {
                out.note("this is a legacy NEO 2 key: it is imported under its N3 address");
            }
            add_key_with_password(
                ctx,
                existing,
                key,
                &label,
                password,
                if flavor == Nep2Flavor::N3 {
                    "nep2"
                } else {
                    "nep2-neo2"
                },
                out,
            )
            .await
        }
        WalletCmd::Import {
            watch: Some(addr),
            label,
            ..
        } => {
            let h = ScriptHash::parse_any(&addr)
                .with_context(|| format!("{addr:?} is not an N3 address"))?;
            let mut w = ctx.load_wallet().await?.unwrap_or_default();
            let a = w.add_watch_only(h, &label)?;
            ctx.save_wallet(w).await?;
            out.result(json!({"imported": [a], "watch_only": true}));
            Ok(())
        }
        WalletCmd::Import { .. } => {
            bail!("say what to import: --nep6 FILE, --wif, --nep2 or --watch ADDRESS")
        }
        WalletCmd::Export { nep6, force } => {
            let w = ctx.wallet().await?;
            if nep6.exists() && !force {
                bail!("{} exists; pass --force to overwrite it", nep6.display());
            }
            std::fs::write(&nep6, w.to_json_pretty())
                .with_context(|| format!("cannot write {}", nep6.display()))?;
            out.result(json!({"exported": nep6, "accounts": w.accounts().len()}));
            Ok(())
        }
        WalletCmd::List => {
            let w = ctx.wallet().await?;
            let default = w.default_account().map(|a| a.address().to_string());
            let accounts: Vec<_> = w
                .accounts()
                .iter()
                .map(|a| {
                    let script = a.verification_script();
                    let multisig = script.as_ref().and_then(|s| s.as_multisig().ok()).map(|m| format!("{}-of-{}", m.m, m.keys.len()));
                    json!({
                        "address": a.address(),
                        "label": a.label().unwrap_or(""),
                        "default": default.as_deref() == Some(a.address()),
                        "watch_only": a.is_watch_only(),
                        "multisig": multisig,
                        "script_hash": a.script_hash().to_hex(),
                        "public_key": script.as_ref().and_then(|s| s.single_key()).map(|k| k.to_hex()),
                    })
                })
                .collect();
            out.result(json!({"keystore": ctx.keychain()?.kind().as_str(), "accounts": accounts}));
            Ok(())
        }
        WalletCmd::Default { address } => {
            let mut w = ctx.wallet().await?;
            w.set_default(&address)?;
            ctx.save_wallet(w).await?;
            out.result(json!({"default": address}));
            Ok(())
        }
        WalletCmd::Remove {
            address: Some(a), ..
        } => {
            let mut w = ctx.wallet().await?;
            w.remove_account(&a)?;
            ctx.save_wallet(w).await?;
            out.result(json!({"removed": a}));
            Ok(())
        }
        WalletCmd::Remove { all: true, .. } => {
            let kc = ctx.keychain()?;
            let existed = tokio::task::spawn_blocking(move || kc.delete()).await??;
            out.result(json!({"removed_wallet": existed}));
            Ok(())
        }
        WalletCmd::Remove { .. } => {
            bail!("say which account to remove, or --all for the whole wallet")
        }
    }
}

/// Checks `password` against an existing wallet so all its accounts share one password.
async fn check_existing_password(w: &Nep6Wallet, password: &str) -> anyhow::Result<()> {
    if let Some(a) = w.accounts().iter().find(|a| !a.is_watch_only()) {
        let (w, addr, p) = (
            w.clone(),
            a.address().to_string(),
            zeroize::Zeroizing::new(password.to_string()),
        );
        tokio::task::spawn_blocking(move || w.decrypt_account(&addr, &p))
            .await?
            .map_err(|e| {
                anyhow!("{e}: use the password of the wallet that is already in the keychain")
            })?;
    }
    Ok(())
}

async fn create(ctx: &Context, label: &str, out: &Output) -> anyhow::Result<()> {
    let existing = ctx.load_wallet().await?;
    let password = ctx.password(existing.is_none())?;
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    add_key_with_password(
        ctx,
        existing,
        PrivateKey::generate(),
        label,
        password,
        "new",
        out,
    )
    .await?;
    out.note("Back up your wallet now: `krypton wallet export --nep6 FILE` (the keychain copy is tied to this device).");
    Ok(())
}

async fn add_key(
    ctx: &Context,
    key: PrivateKey,
    label: &str,
    how: &str,
    out: &Output,
) -> anyhow::Result<()> {
    let existing = ctx.load_wallet().await?;
    let password = ctx.password(existing.is_none())?;
    add_key_with_password(ctx, existing, key, label, password, how, out).await
}

async fn add_key_with_password(
    ctx: &Context,
    existing: Option<Nep6Wallet>,
    key: PrivateKey,
    label: &str,
    password: zeroize::Zeroizing<String>,
    how: &str,
    out: &Output,
) -> anyhow::Result<()> {
    let first = existing.is_none();
    let mut w = existing.unwrap_or_default();
    check_existing_password(&w, &password).await?;
    out.note("encrypting the key (scrypt)…");
    let label = label.to_string();
    let (mut w, address) = tokio::task::spawn_blocking(move || {
        let a = w.add_account_from_key(&key, &password, &label);
        a.map(|a| (w, a))
    })
    .await??;
    if first || w.default_account().is_none() {
        w.set_default(&address)?;
    }
    ctx.save_wallet(w).await?;
    out.result(json!({"address": address, "created": how == "new", "source": how}));
    Ok(())
}

async fn import_nep6(ctx: &Context, file: &std::path::Path, out: &Output) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let other = Nep6Wallet::from_json(&text)
        .with_context(|| format!("{} is not a usable NEP-6 wallet", file.display()))?;
    let existing = ctx.load_wallet().await?;
    let keyed = other
        .accounts()
        .iter()
        .filter(|a| !a.is_watch_only())
        .count();
    let password = if keyed > 0 {
        Some(ctx.password(false)?)
    } else {
        None
    };
    let mut w = existing.unwrap_or_default();
    if let Some(p) = &password {
        check_existing_password(&w, p).await?;
        out.note("checking the password against every key (scrypt)…");
    }
    let before: Vec<String> = w
        .accounts()
        .iter()
        .map(|a| a.address().to_string())
        .collect();
    let (w, added) = tokio::task::spawn_blocking(move || {
        if let Some(p) = &password {
            for a in other.accounts().iter().filter(|a| !a.is_watch_only()) {
                other.decrypt_account(a.address(), p)?;
            }
        }
        let n = w.merge(&other, password.as_ref().map(|p| p.as_str()));
        n.map(|n| (w, n))
    })
    .await??;
    let imported: Vec<String> = w
        .accounts()
        .iter()
        .map(|a| a.address().to_string())
        .filter(|a| !before.contains(a))
        .collect();
    let mut w = w;
    if w.default_account().is_none()
        && let Some(a) = imported.first()
    {
        w.set_default(a)?;
    }
    ctx.save_wallet(w).await?;
    out.result(json!({"imported": imported, "added": added}));
    Ok(())
}
