//! What every command needs: the data dir, the network, the keychain and secret input.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use krypton_chain::krypton::KryptonContract;
use krypton_chain::{Network, RpcClient};
use krypton_wallet::{Keychain, KeystoreKind, Nep6Account, Nep6Wallet, PrivateKey, ScriptHash};
use zeroize::Zeroizing;

use crate::Cli;

/// Shared settings of one `krypton` invocation.
pub struct Context {
    /// All local state lives here.
    pub data_dir: PathBuf,
    network: String,
    contract: Option<String>,
    keystore: Option<String>,
    password_stdin: bool,
    /// `--account`.
    pub account: Option<String>,
    stdin_lines: std::sync::Mutex<Option<std::vec::IntoIter<Zeroizing<String>>>>,
}

impl Context {
    /// From the parsed command line.
    pub fn new(cli: &Cli) -> anyhow::Result<Self> {
        let data_dir = match &cli.data_dir {
            Some(d) => d.clone(),
            None => dirs::data_dir()
                .map(|d| d.join("krypton"))
                .ok_or_else(|| anyhow!("cannot find the OS data directory; pass --data-dir DIR"))?,
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
        Ok(Context {
            data_dir,
            network: cli.network.clone(),
            contract: cli.contract.clone(),
            keystore: cli.keystore.clone(),
            password_stdin: cli.password_stdin,
            account: cli.account.clone(),
            stdin_lines: std::sync::Mutex::new(None),
        })
    }

    /// `--keystore` (`KRYPTON_KEYSTORE`) as given, for commands that run `krypton` again.
    pub fn keystore(&self) -> Option<&str> {
        self.keystore.as_deref()
    }

    /// The devnet's folder in the data dir.
    pub fn devnet_dir(&self) -> PathBuf {
        self.data_dir.join("devnet")
    }

    /// The selected network (`--network`, `--contract`) in this data dir.
    pub fn network(&self) -> Network {
        Network::new(&self.network, &self.data_dir, self.contract.as_deref())
    }

    /// RPC endpoints of the selected network.
    pub fn rpc_endpoints(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.network().rpc_endpoints()?)
    }

    /// An RPC client for the selected network.
    pub fn rpc(&self) -> anyhow::Result<RpcClient> {
        Ok(self.network().rpc()?)
    }

    /// The KRYPTON contract on the selected network.
    pub fn contract(&self) -> anyhow::Result<KryptonContract> {
        Ok(self.network().contract()?)
    }

    /// The keychain holding this data dir's wallet.
    pub fn keychain(&self) -> anyhow::Result<Keychain> {
        let kind = match &self.keystore {
            Some(k) => k.parse::<KeystoreKind>()?,
            None => KeystoreKind::platform_default()
                .ok_or_else(|| anyhow!("no keychain on this platform; pass --keystore"))?,
        };
        Ok(Keychain::open(kind, &keychain_namespace(&self.data_dir))?)
    }

    /// Loads the wallet from the keychain (off the async runtime).
    pub async fn load_wallet(&self) -> anyhow::Result<Option<Nep6Wallet>> {
        let kc = self.keychain()?;
        Ok(tokio::task::spawn_blocking(move || kc.load()).await??)
    }

    /// Loads the wallet or says how to make one.
    pub async fn wallet(&self) -> anyhow::Result<Nep6Wallet> {
        self.load_wallet().await?.ok_or_else(|| {
            anyhow!("there is no wallet yet: create one with `krypton wallet create` or import one with `krypton wallet import`")
        })
    }

    /// Saves the wallet to the keychain (off the async runtime).
    pub async fn save_wallet(&self, w: Nep6Wallet) -> anyhow::Result<()> {
        let kc = self.keychain()?;
        tokio::task::spawn_blocking(move || kc.save(&w)).await??;
        Ok(())
    }

    /// The next line of secret input from stdin, read once (secrets never come from argv).
    pub fn secret_line(&self, what: &str) -> anyhow::Result<Zeroizing<String>> {
        let mut guard = self
            .stdin_lines
            .lock()
            .map_err(|_| anyhow!("stdin lock poisoned"))?;
        if guard.is_none() {
            let stdin = std::io::stdin();
            let lines: Vec<Zeroizing<String>> = stdin
                .lock()
                .lines()
                .map(|l| l.map(|s| Zeroizing::new(s.trim_end_matches('\r').to_string())))
                .collect::<Result<_, _>>()
                .context("cannot read standard input")?;
            *guard = Some(lines.into_iter());
        }
        guard
            .as_mut()
            .and_then(Iterator::next)
            .ok_or_else(|| anyhow!("expected the {what} on standard input, one per line"))
    }

    /// The wallet password: from stdin with `--password-stdin`, else a prompt on a terminal.
    pub fn password(&self, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
        if self.password_stdin {
            return self.secret_line("password");
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "this command needs the wallet password: pass --password-stdin and write it on standard input"
            );
        }
        let p = Zeroizing::new(rpassword::prompt_password("Wallet password: ")?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat the password: ")?);
            if *again != *p {
                bail!("the passwords differ; nothing was changed");
            }
        }
        Ok(p)
    }

    /// The account that signs: `--account`, else the wallet's default one.
    pub fn signing_account<'w>(&self, w: &'w Nep6Wallet) -> anyhow::Result<&'w Nep6Account> {
        let acc = match &self.account {
            Some(a) => {
                let h = ScriptHash::parse_any(a).with_context(|| format!("--account {a:?}"))?;
                w.accounts()
                    .iter()
                    .find(|x| x.script_hash() == h)
                    .ok_or_else(|| {
                        anyhow!("{a} is not in this wallet; see `krypton wallet list`")
                    })?
            }
            None => w
                .default_account()
                .ok_or_else(|| anyhow!("the wallet has no account with a key; create one"))?,
        };
        if acc.is_watch_only() {
            bail!(
                "{} is watch-only: this wallet cannot sign for it",
                acc.address()
            );
        }
        Ok(acc)
    }

    /// Decrypts the signing account's key (scrypt, off the async runtime).
    pub async fn signing_key(&self, w: &Nep6Wallet, address: &str) -> anyhow::Result<PrivateKey> {
        let password = self.password(false)?;
        let w = w.clone();
        let address = address.to_string();
        Ok(tokio::task::spawn_blocking(move || w.decrypt_account(&address, &password)).await??)
    }
}

/// A short, stable id of a data dir, so instances with different data dirs never share keychain entries.
pub fn keychain_namespace(data_dir: &Path) -> String {
    Keychain::namespace_of(data_dir)
}
