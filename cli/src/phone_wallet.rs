//! `krypton phone --wallet [ADDRESS]`: the wallet account as the phone's KRYPTON SIP account.
//!
//! The chain says where the account lives: `query provider|location|uuid ADDRESS` on the KRYPTON
//! contract (read-only, nothing is signed or sent). The account is then
//!
//! - AOR `sip:ADDRESS@LOCATION`: the realm is the provider's on-chain location string exactly
//!   (`127.0.0.1:5070`, `sip.example.org:5060`);
//! - proxy `sip:LOCATION;transport=udp`, unless `--proxy` names another transport or address (an
//!   SRV-name location is used as a host name: the phone does no SRV lookup yet);
//! - `+sip.instance` `urn:uuid:<the on-chain uuid>`;
//! - no password: the provider's Bearer challenge (AUTH.md §4) is answered with a token that a
//!   [`WalletSigner`] mints with the decrypted key, held for the phone's lifetime and zeroized
//!   when it exits; it signs for this provider's realm only;
//! - `Expires: 60` (the providers' cap for Bearer registrations, AUTH.md §4), or less with
//!   `--expires`.
//!
//! The wallet password comes from `--password-file` (first line) or a terminal prompt, never from
//! stdin, which carries the phone's commands.
//!
//! Device keys: when the address has a device key on chain (`krypton device-key set`), the
//! provider accepts only that key. The phone then signs with it if this wallet holds it as one of
//! its accounts (decrypted with the same password); a device key kept elsewhere (another device,
//! hardware) is not supported yet and is a clear error.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use krypton_chain::krypton::{QueryKind, QueryValue};
use krypton_core::{AccountConfig, WalletSigner};
use krypton_wallet::{Nep6Wallet, PrivateKey, PublicKey, ScriptHash};
use zeroize::Zeroizing;

use crate::context::Context;

/// The registration expiry a Bearer account asks for (the providers' cap).
pub const BEARER_EXPIRES: u32 = 60;

/// What the chain says about a registered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// The provider's address.
    pub provider: String,
    /// The provider's location: the SIP realm and default proxy.
    pub location: String,
    /// The user's public device id (RFC 4122), the `+sip.instance`.
    pub uuid: String,
    /// The device key the address authorised, if any.
    pub device_key: Option<PublicKey>,
}

/// Options of `--wallet` taken from the phone's other flags.
pub struct WalletOptions<'a> {
    /// `--proxy`.
    pub proxy: Option<&'a str>,
    /// `--password-file`.
    pub password_file: Option<&'a Path>,
    /// `--expires` (capped at [`BEARER_EXPIRES`]).
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

/// `query provider|location|uuid|key` for `address`, with errors that say what to do.
pub async fn lookup(ctx: &Context, address: &str) -> anyhow::Result<OnChain> {
    let user = parse(address)?;
    let c = ctx.contract()?;
    let rpc = ctx.rpc()?;
    let provider = match c.query(&rpc, QueryKind::Provider, &user).await? {
        Some(QueryValue::Account(p)) => p.to_address(),
        None => bail!(
            "{address} is not registered with a provider on chain: run `krypton register --provider PROVIDER` first (`krypton providers` lists them)"
        ),
        Some(other) => bail!("the contract answered {other:?} for the provider of {address}"),
    };
    let location = match c.query(&rpc, QueryKind::Location, &user).await? {
        Some(QueryValue::Text(l)) if !l.trim().is_empty() => l,
        _ => bail!(
            "{address}'s provider {provider} is not deployed on chain any more (it has no location): register with a deployed provider (`krypton providers`, then `krypton register --provider …`)"
        ),
    };
    let uuid = match c.query(&rpc, QueryKind::Uuid, &user).await? {
        Some(QueryValue::Text(u)) if !u.trim().is_empty() => u,
        _ => bail!(
            "{address} has no uuid on chain: run `krypton register --provider {provider}` again"
        ),
    };
    let device_key = match c.query(&rpc, QueryKind::Key, &user).await? {
        Some(QueryValue::Key(k)) => Some(k),
        _ => None,
    };
    Ok(OnChain {
        provider,
        location,
        uuid,
        device_key,
    })
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
    let own_key = w
        .account(address)
        .and_then(|a| a.verification_script())
        .and_then(|s| s.single_key());
    let signer_address = match device_key {
        Some(dk) if own_key.as_ref().map(PublicKey::to_compressed) != Some(dk.to_compressed()) => {
            let device_address = dk.address();
            match w.account(&device_address) {
                Some(a) if !a.is_watch_only() => device_address,
                _ => bail!(
                    "{address} has a device key on chain ({}) that this wallet does not hold: the provider accepts only that key, and krypton phone cannot use a device key kept elsewhere yet; import it into this wallet, or remove it with `krypton --account {address} device-key clear`",
                    dk.to_hex()
                ),
            }
        }
        _ => address.to_string(),
    };
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
    let location = chain.location.trim();
    AccountConfig {
        id: address.to_string(),
        aor: format!("sip:{address}@{location}"),
        proxy: Some(
            opts.proxy
                .map(str::to_string)
                .unwrap_or_else(|| format!("sip:{location};transport=udp")),
        ),
        username: None,
        password_file: None,
        display_name: None,
        register: true,
        expires: Some(opts.expires.unwrap_or(BEARER_EXPIRES).min(BEARER_EXPIRES)),
        keepalive: opts.keepalive,
        krypton: true,
        tls_ca: None,
        instance: Some(format!("urn:uuid:{}", chain.uuid.trim())),
        bearer: Some(Arc::new(WalletSigner::new(key, address, location))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_core::wallet_auth::BearerChallenge;

    #[test]
    fn the_account_follows_the_chain() {
        let key = PrivateKey::generate();
        let key_hex = hex::encode(*key.to_bytes());
        let address = key.public_key().address();
        let chain = OnChain {
            provider: "NProvider".into(),
            location: "127.0.0.1:5070".into(),
            uuid: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b".into(),
            device_key: None,
        };
        let opts = WalletOptions {
            proxy: None,
            password_file: None,
            expires: Some(600),
            keepalive: None,
        };
        let a = account_config(&address, &chain, key, &opts);
        assert_eq!(a.aor, format!("sip:{address}@127.0.0.1:5070"));
        assert_eq!(a.proxy.as_deref(), Some("sip:127.0.0.1:5070;transport=udp"));
        assert_eq!(a.expires, Some(60));
        assert_eq!(
            a.instance.as_deref(),
            Some("urn:uuid:6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")
        );
        assert!(a.password_file.is_none());
        let sip = a.to_account().unwrap();
        assert_eq!(sip.aor.domain, "127.0.0.1:5070");
        assert_eq!(sip.policy.expires, 60);
        // The signer signs for this realm only.
        let signer = a.bearer.as_ref().unwrap();
        let mut ch = BearerChallenge {
            realm: "127.0.0.1:5070".into(),
            scope: "krypton".into(),
            nonce: "n".into(),
        };
        assert!(signer.token(&ch, "cid", "urn:uuid:x").is_ok());
        ch.realm = "127.0.0.1:5071".into();
        assert!(signer.token(&ch, "cid", "urn:uuid:x").is_err());
        let debug = format!("{a:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains(&key_hex),
            "{debug}"
        );

        let opts = WalletOptions {
            proxy: Some("sip:127.0.0.1:5070;transport=tcp"),
            expires: Some(30),
            ..opts
        };
        let a = account_config(&address, &chain, PrivateKey::generate(), &opts);
        assert_eq!(a.proxy.as_deref(), Some("sip:127.0.0.1:5070;transport=tcp"));
        assert_eq!(a.expires, Some(30));
    }
}
