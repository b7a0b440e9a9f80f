//! `krypton devnet …`: a local single-node neo-go privnet on loopback with the KRYPTON contract.
//!
//! Everything lives in `<data dir>/devnet`: the node's config, its persistent chain (BoltDB), its
//! own validator key, the named test accounts (NEP-6, password [`DEVNET_PASSWORD`]) and `state.json`.
//! `up` is idempotent: it starts the node if needed, then deploys and funds only what is missing.
//!
//! `up --providers N` also runs the first N of provider-a … provider-d as KRYPTON providers on
//! loopback, each exactly as `krypton provider up` does (deployed on chain, peer key, Kamailio,
//! provider service) in a data dir of its own, `<devnet>/providers/<name>`. They are run by this
//! binary itself as a subprocess (`krypton --data-dir <that dir> --account ADDRESS provider up`,
//! the devnet accounts imported into that dir's wallet), so a devnet provider is nothing but a
//! provider, started, stopped and inspected with the ordinary commands, and `provider_cmd` keeps
//! its single-provider-per-data-dir shape. `down` stops them (`provider down` in each dir) before
//! the node; `status` shows them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use krypton_chain::krypton::{KryptonContract, contract_deployment_script, contract_hash};
use krypton_chain::nep17::{self, Asset};
use krypton_chain::script::ScriptBuilder;
use krypton_chain::{Account, Progress, RpcClient, Sender};
use krypton_wallet::{
    Keychain, KeystoreKind, Nep6Wallet, PrivateKey, PublicKey, ScriptHash, VerificationScript,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::context::{Context, keychain_namespace};
use crate::daemon;
use crate::output::Output;

/// Password of the devnet's own wallet files (test keys only; never use them elsewhere).
pub const DEVNET_PASSWORD: &str = "devnet";
/// The named test accounts `up` creates and funds.
const NAMED_ACCOUNTS: &[&str] = &[
    "owner",
    "alice",
    "bob",
    "provider-a",
    "provider-b",
    "provider-c",
    "provider-d",
];
/// The named accounts `up --providers N` runs as providers, the first N of them.
const PROVIDERS: &[&str] = &["provider-a", "provider-b", "provider-c", "provider-d"];
/// GAS each named account gets.
const NAMED_ACCOUNT_GAS: &str = "1000";
/// Compiled contract, committed beside its source and checked by `contract/check.sh`.
const CONTRACT_NEF: &[u8] = include_bytes!("../../contract/build/krypton.nef");
const CONTRACT_MANIFEST: &str = include_str!("../../contract/build/krypton.manifest.json");
const CONTRACT_NAME: &str = "Krypton";

/// Devnet subcommands.
#[derive(Subcommand, Debug)]
pub enum DevnetCmd {
    /// Start the devnet (idempotent): node, contract, funded test accounts [, providers]
    Up {
        /// RPC port on 127.0.0.1 [default: the previous one, else a free port]
        #[arg(long)]
        rpc_port: Option<u16>,
        /// Also run N KRYPTON providers on loopback (provider-a, provider-b, …; at most 4), each
        /// as `krypton provider up` does, in <data dir>/devnet/providers/<name>
        #[arg(long, value_name = "N")]
        providers: Option<usize>,
        /// PSTN gateway HOST:PORT: every provider's trunk for phone numbers (needs --providers)
        #[arg(long, value_name = "HOST:PORT")]
        trunk: Option<String>,
    },
    /// Stop the devnet's providers, then the node (the chain is kept)
    Down,
    /// Is it running, at which height, and its providers
    Status,
    /// Send GAS (and optionally NEO) from the devnet's committee account
    Fund {
        /// Recipient address
        address: String,
        /// GAS to send
        #[arg(long, default_value = "100")]
        gas: String,
        /// NEO to send
        #[arg(long)]
        neo: Option<String>,
    },
}

/// `state.json`: what `up` created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetState {
    /// RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// Network magic chosen at creation.
    pub magic: u32,
    /// KRYPTON contract hash once deployed.
    pub contract: Option<String>,
    /// Named accounts funded.
    pub funded: bool,
    /// Named test accounts.
    pub accounts: Vec<NamedAccount>,
    /// Addresses of named accounts added to an older devnet and not funded yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfunded: Vec<String>,
}

/// A named test account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedAccount {
    /// e.g. `alice`.
    pub name: String,
    /// N3 address.
    pub address: String,
}

impl DevnetState {
    /// Reads `state.json`; `None` when there is no devnet.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let p = dir.join("state.json");
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(
                serde_json::from_str(&s).with_context(|| format!("{} is corrupt", p.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, dir.join("state.json"))?;
        Ok(())
    }

    /// The RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }
}

/// Runs a devnet subcommand.
pub async fn run(ctx: &Context, cmd: DevnetCmd, out: &Output) -> anyhow::Result<()> {
    let dir = ctx.devnet_dir();
    match cmd {
        DevnetCmd::Up {
            rpc_port,
            providers,
            trunk,
        } => {
            let n = providers.unwrap_or(0);
            if n > PROVIDERS.len() {
                bail!(
                    "the devnet runs at most {} providers ({}): use --providers {} or fewer",
                    PROVIDERS.len(),
                    PROVIDERS.join(", "),
                    PROVIDERS.len()
                );
            }
            if trunk.is_some() && n == 0 {
                bail!(
                    "--trunk is the trunk of the devnet's providers: add --providers N (1 to {})",
                    PROVIDERS.len()
                );
            }
            let mut result = up(&dir, rpc_port, out).await?;
            result["providers"] = json!(up_providers(ctx, &dir, n, trunk.as_deref(), out).await?);
            out.result(result);
            Ok(())
        }
        DevnetCmd::Down => {
            // The providers first: their services must not lose the chain under them.
            let (providers, failed) = down_providers(ctx, &dir).await;
            let stopped = stop(&dir).await?;
            if let Some(e) = failed {
                return Err(e.context(
                    "the node is stopped, but a provider did not stop: run `krypton devnet down` again",
                ));
            }
            out.result(
                json!({"stopped": stopped, "providers_stopped": providers, "data_dir": dir}),
            );
            Ok(())
        }
        DevnetCmd::Status => {
            let st = DevnetState::load(&dir)?;
            let pid = running_pid(&dir);
            let height = match (&st, pid) {
                (Some(st), Some(_)) => client(st)?.get_block_count().await.ok(),
                _ => None,
            };
            out.result(json!({
                "exists": st.is_some(),
                "running": pid.is_some() && height.is_some(),
                "pid": pid,
                "rpc": st.as_ref().map(DevnetState::rpc_url),
                "height": height,
                "contract": st.as_ref().and_then(|s| s.contract.clone()),
                "providers": providers_status(ctx, &dir).await?,
            }));
            Ok(())
        }
        DevnetCmd::Fund { address, gas, neo } => {
            let st = DevnetState::load(&dir)?
                .ok_or_else(|| anyhow!("there is no devnet here: run `krypton devnet up`"))?;
            let to = ScriptHash::parse_any(&address)
                .with_context(|| format!("{address:?} is not an N3 address"))?;
            let mut transfers = vec![(Asset::Gas, to, nep17::parse_amount(&gas, Asset::Gas)?)];
            if let Some(n) = neo {
                transfers.push((Asset::Neo, to, nep17::parse_amount(&n, Asset::Neo)?));
            }
            let rpc = client(&st)?;
            let o = fund(&dir, &rpc, &transfers, out).await?;
            out.result(
                json!({"funded": to.to_address(), "gas": gas, "txid": o.txid, "block": o.block}),
            );
            Ok(())
        }
    }
}

fn client(st: &DevnetState) -> anyhow::Result<RpcClient> {
    Ok(RpcClient::new(vec![st.rpc_url()], Duration::from_secs(10))?)
}

/// Finds the neo-go binary: `$KRYPTON_NEOGO`, the setup script's install, then `PATH`.
fn neogo_path() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("KRYPTON_NEOGO") {
        return Ok(PathBuf::from(p));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")));
    if let Some(p) = cache
        .map(|c| c.join("krypton/tools/neogo"))
        .filter(|p| p.is_file())
    {
        return Ok(p);
    }
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if d.join("neogo").is_file() {
            return Ok(d.join("neogo"));
        }
    }
    bail!("neo-go is not installed: run scripts/setup (or set KRYPTON_NEOGO to the neogo binary)")
}

/// The node's pid if it is alive (not a zombie) and is neo-go.
fn running_pid(dir: &Path) -> Option<i32> {
    daemon::live_pid(&dir.join("node.pid"), is_node)
}

fn is_node(cmdline: &str) -> bool {
    cmdline.contains("neogo")
}

async fn stop(dir: &Path) -> anyhow::Result<bool> {
    daemon::stop(&dir.join("node.pid"), is_node, "the devnet node").await
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn new_wallet_file(path: &Path, keys: &[(&str, &PrivateKey)]) -> anyhow::Result<Vec<NamedAccount>> {
    let mut w = Nep6Wallet::new();
    let mut out = Vec::new();
    for (name, k) in keys {
        let address = w.add_account_from_key(k, DEVNET_PASSWORD, name)?;
        out.push(NamedAccount {
            name: name.to_string(),
            address,
        });
    }
    if let Some(first) = out.first() {
        w.set_default(&first.address)?;
    }
    std::fs::write(path, w.to_json_pretty())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(out)
}

fn read_wallet(path: &Path) -> anyhow::Result<Nep6Wallet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Nep6Wallet::from_json(&text).with_context(|| format!("{} is corrupt", path.display()))
}

/// Decrypts one devnet key (scrypt, off the async runtime); `None` = the file's default account.
async fn devnet_key(path: PathBuf, address: Option<String>) -> anyhow::Result<PrivateKey> {
    tokio::task::spawn_blocking(move || {
        let w = read_wallet(&path)?;
        let address = match address {
            Some(a) => a,
            None => w
                .default_account()
                .ok_or_else(|| anyhow!("{} has no account", path.display()))?
                .address()
                .to_string(),
        };
        Ok(w.decrypt_account(&address, DEVNET_PASSWORD)?)
    })
    .await?
}

/// The validator's public key, read from its verification script (no decryption).
fn validator_public_key(dir: &Path) -> anyhow::Result<PublicKey> {
    read_wallet(&dir.join("validator.json"))?
        .default_account()
        .and_then(|a| a.verification_script())
        .and_then(|s| s.single_key())
        .ok_or_else(|| anyhow!("validator.json has no single-signature account"))
}

fn protocol_yml(dir: &Path, st: &DevnetState, validator: &str) -> String {
    let d = dir.display();
    format!(
        r#"# Written by `krypton devnet up`; regenerated on every start.
ProtocolConfiguration:
  Magic: {magic}
  MaxTraceableBlocks: 200000
  TimePerBlock: 250ms
  MemPoolSize: 1000
  StandbyCommittee:
    - {validator}
  ValidatorsCount: 1
  VerifyTransactions: true
  P2PSigExtensions: false
  Hardforks:
    Aspidochelone: 0
    Basilisk: 0
    Cockatrice: 0
    Domovoi: 0
    Echidna: 0
    Faun: 0
ApplicationConfiguration:
  SkipBlockVerification: false
  DBConfiguration:
    Type: "boltdb"
    BoltDBOptions:
      FilePath: "{d}/chain.bolt"
  P2P:
    Addresses:
      - "127.0.0.1:0"
    DialTimeout: 3s
    ProtoTickInterval: 2s
    PingInterval: 30s
    PingTimeout: 90s
    MinPeers: 0
    MaxPeers: 10
    AttemptConnPeers: 5
  Relay: true
  Consensus:
    Enabled: true
    UnlockWallet:
      Path: "{d}/validator.json"
      Password: "{pw}"
  P2PNotary:
    Enabled: false
  RPC:
    Enabled: true
    MaxGasInvoke: 100
    SessionEnabled: true
    Addresses:
      - "127.0.0.1:{port}"
  Prometheus:
    Enabled: false
  Pprof:
    Enabled: false
  Oracle:
    Enabled: false
"#,
        magic = st.magic,
        port = st.rpc_port,
        pw = DEVNET_PASSWORD,
    )
}

async fn up(dir: &Path, rpc_port: Option<u16>, out: &Output) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut st = match DevnetState::load(dir)? {
        Some(st) => st,
        None => {
            out.note("creating a new devnet: validator key and named test accounts…");
            let validator = PrivateKey::generate();
            new_wallet_file(&dir.join("validator.json"), &[("validator", &validator)])?;
            let keys: Vec<PrivateKey> = NAMED_ACCOUNTS
                .iter()
                .map(|_| PrivateKey::generate())
                .collect();
            let named: Vec<(&str, &PrivateKey)> =
                NAMED_ACCOUNTS.iter().copied().zip(keys.iter()).collect();
            let accounts = new_wallet_file(&dir.join("accounts.json"), &named)?;
            let magic =
                0x4b52_0000 | (rand_core::RngCore::next_u32(&mut rand_core::OsRng) & 0xffff);
            DevnetState {
                rpc_port: 0,
                magic,
                contract: None,
                funded: false,
                accounts,
                unfunded: Vec::new(),
            }
        }
    };
    add_missing_accounts(dir, &mut st)?;
    if running_pid(dir).is_some() {
        if let Some(p) = rpc_port.filter(|p| *p != st.rpc_port) {
            bail!(
                "the devnet is already running on port {}, not {p}: run `krypton devnet down` first",
                st.rpc_port
            );
        }
    } else {
        st.rpc_port = match rpc_port {
            Some(p) => p,
            None if st.rpc_port != 0 && port_is_free(st.rpc_port) => st.rpc_port,
            None => daemon::free_tcp_port()?,
        };
        if !port_is_free(st.rpc_port) {
            bail!(
                "port {} on 127.0.0.1 is taken: choose another with --rpc-port",
                st.rpc_port
            );
        }
        st.save(dir)?;
        let validator = validator_public_key(dir)?.to_hex();
        let cfg = dir.join("protocol.yml");
        std::fs::write(&cfg, protocol_yml(dir, &st, &validator))?;
        let rpc = client(&st)?;
        start_node_and_wait(dir, &cfg, &rpc, out).await?;
    }
    let rpc = client(&st)?;
    // A node left running by an earlier `up` (or the one just started) must answer.
    wait_for_rpc(dir, &rpc, None).await?;
    let version = rpc.get_version().await?;
    if !st.funded || !st.unfunded.is_empty() {
        out.note("funding the named test accounts…");
        let amount = nep17::parse_amount(NAMED_ACCOUNT_GAS, Asset::Gas)?;
        let mut transfers = Vec::new();
        for a in &st.accounts {
            if !st.funded || st.unfunded.contains(&a.address) {
                transfers.push((Asset::Gas, ScriptHash::from_address(&a.address)?, amount));
            }
        }
        fund(dir, &rpc, &transfers, out).await?;
        st.funded = true;
        st.unfunded.clear();
        st.save(dir)?;
    }
    let deployed = match &st.contract {
        Some(h) => rpc
            .get_contract_state(&ScriptHash::from_hex(h)?)
            .await?
            .is_some(),
        None => false,
    };
    if !deployed {
        out.note("deploying the KRYPTON contract…");
        let owner = st
            .accounts
            .iter()
            .find(|a| a.name == "owner")
            .ok_or_else(|| anyhow!("no owner account"))?;
        let key = devnet_key(dir.join("accounts.json"), Some(owner.address.clone())).await?;
        let manifest: serde_json::Value = serde_json::from_str(CONTRACT_MANIFEST)?;
        let script = contract_deployment_script(CONTRACT_NEF, &manifest.to_string());
        let sender = Sender::connect(&rpc).await?;
        let mut p = |p: Progress| out.tx_progress(&p);
        sender
            .invoke(script, &Account::single(&key), 0, &mut p)
            .await?;
        let hash = contract_hash(&key.public_key().script_hash(), CONTRACT_NEF, CONTRACT_NAME)
            .ok_or_else(|| anyhow!("the embedded NEF is malformed"))?;
        KryptonContract::new(hash)
            .version(&rpc)
            .await
            .context("the deployed contract does not answer")?;
        st.contract = Some(hash.to_hex());
        st.save(dir)?;
    }
    Ok(json!({
        "rpc": st.rpc_url(),
        "network_magic": version.protocol.network,
        "ms_per_block": version.protocol.ms_per_block,
        "contract": st.contract,
        "height": rpc.get_block_count().await?,
        "accounts": st.accounts,
        "accounts_file": dir.join("accounts.json"),
        "accounts_password": DEVNET_PASSWORD,
        "data_dir": dir,
        "pid": running_pid(dir),
    }))
}

/// Adds the named accounts that a devnet made by an older `krypton` lacks (provider-c,
/// provider-d) to `accounts.json` and the state; the next funding funds them.
fn add_missing_accounts(dir: &Path, st: &mut DevnetState) -> anyhow::Result<()> {
    let missing: Vec<&str> = NAMED_ACCOUNTS
        .iter()
        .copied()
        .filter(|n| !st.accounts.iter().any(|a| a.name == *n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let path = dir.join("accounts.json");
    let mut w = read_wallet(&path)?;
    for name in missing {
        let address = w.add_account_from_key(&PrivateKey::generate(), DEVNET_PASSWORD, name)?;
        st.unfunded.push(address.clone());
        st.accounts.push(NamedAccount {
            name: name.to_string(),
            address,
        });
    }
    std::fs::write(&path, w.to_json_pretty())
        .with_context(|| format!("cannot write {}", path.display()))?;
    st.save(dir)
}

/// The data dir of the devnet provider `name`.
fn provider_data_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join("providers").join(name)
}

/// The devnet providers that have a data dir, in order.
fn existing_providers(dir: &Path) -> Vec<&'static str> {
    PROVIDERS
        .iter()
        .copied()
        .filter(|n| provider_data_dir(dir, n).join("provider").is_dir())
        .collect()
}

/// Runs this `krypton` binary as `krypton --data-dir DATA_DIR --json [--keystore K] ARGS` with
/// `stdin`, and returns its JSON result (its error as an error).
async fn krypton_json(
    ctx: &Context,
    data_dir: &Path,
    args: &[&str],
    stdin: &str,
) -> anyhow::Result<serde_json::Value> {
    use tokio::io::AsyncWriteExt as _;
    let exe = std::env::current_exe().context("cannot find the krypton binary itself")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--data-dir").arg(data_dir).arg("--json");
    if let Some(k) = ctx.keystore() {
        cmd.args(["--keystore", k]);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `krypton {}`", args.join(" ")))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).await?;
    }
    let o = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let result = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    match result {
        Some(v) if o.status.success() => Ok(v),
        Some(v) if v["error"].is_string() => Err(anyhow!("{}", v["error"].as_str().unwrap_or(""))),
        _ => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "`krypton --data-dir {} {}` failed ({}):\n{}",
                data_dir.display(),
                args.join(" "),
                o.status,
                tail.join("\n")
            )
        }
    }
}

/// Puts the devnet's named accounts into the wallet of a provider's data dir (the keychain
/// store this command uses), unless it already holds `address`.
async fn ensure_provider_wallet(
    ctx: &Context,
    data_dir: &Path,
    accounts_file: &Path,
    address: &str,
) -> anyhow::Result<()> {
    let kind = match ctx.keystore() {
        Some(k) => k.parse::<KeystoreKind>()?,
        None => KeystoreKind::platform_default()
            .ok_or_else(|| anyhow!("no keychain on this platform; pass --keystore"))?,
    };
    let kc = Keychain::open(kind, &keychain_namespace(data_dir))?;
    let json = std::fs::read_to_string(accounts_file)
        .with_context(|| format!("cannot read {}", accounts_file.display()))?;
    let address = address.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if kc.load()?.is_some_and(|w| w.account(&address).is_some()) {
            return Ok(());
        }
        kc.import_nep6(&json, Some(DEVNET_PASSWORD))?;
        Ok(())
    })
    .await?
}

/// `provider up` for the first `n` devnet providers (after `up`: the node runs and the contract
/// is deployed), one after the other, each in its own data dir; returns their `provider status`
/// with `name` and `address`. A provider already running stays as it is, unless its trunk or the
/// devnet's RPC changed: then it is stopped and started again to take them.
async fn up_providers(
    ctx: &Context,
    dir: &Path,
    n: usize,
    trunk: Option<&str>,
    out: &Output,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let st = DevnetState::load(dir)?.ok_or_else(|| anyhow!("the devnet has no state.json"))?;
    let contract = st
        .contract
        .clone()
        .ok_or_else(|| anyhow!("the devnet has no contract yet: run `krypton devnet up`"))?;
    let rpc = st.rpc_url();
    let mut result = Vec::new();
    for name in PROVIDERS.iter().copied().take(n) {
        let address = st
            .accounts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.address.clone())
            .ok_or_else(|| anyhow!("the devnet has no {name} account"))?;
        let data_dir = provider_data_dir(dir, name);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
        ensure_provider_wallet(ctx, &data_dir, &dir.join("accounts.json"), &address)
            .await
            .with_context(|| format!("cannot put the devnet accounts into {name}'s wallet"))?;
        // A running service keeps the trunk and RPC it started with.
        let previous: Option<serde_json::Value> =
            std::fs::read_to_string(data_dir.join("provider/state.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok());
        if let Some(p) = &previous {
            let trunk_changed = trunk.is_some_and(|t| p["trunk"].as_str() != Some(t));
            let rpc_changed = p["rpc"] != json!([rpc]);
            if trunk_changed || rpc_changed {
                let stopped = krypton_json(ctx, &data_dir, &["provider", "down"], "").await?;
                if stopped["stopped"] == true {
                    out.note(&format!(
                        "{name} was running with another {}: restarting it",
                        if trunk_changed { "trunk" } else { "devnet RPC" }
                    ));
                }
            }
        }
        out.note(&format!("provider up: {name} ({address})…"));
        let mut args = vec![
            "--network",
            &rpc,
            "--contract",
            &contract,
            "--account",
            &address,
            "--password-stdin",
            "provider",
            "up",
        ];
        if let Some(t) = trunk {
            args.extend(["--trunk", t]);
        }
        let status = krypton_json(ctx, &data_dir, &args, &format!("{DEVNET_PASSWORD}\n"))
            .await
            .with_context(|| {
                format!(
                    "{name} did not start (its data dir is {}; its logs are in its provider/ folder): fix that, then run `krypton devnet up --providers {n}` again",
                    data_dir.display()
                )
            })?;
        result.push(named(name, &address, &data_dir, status));
    }
    // Providers started earlier beyond the first n keep running: show them too.
    for name in existing_providers(dir).into_iter().skip(n) {
        result.push(provider_status(ctx, dir, name).await?);
    }
    Ok(result)
}

/// `provider status` of a devnet provider, with `name`, `address` and `data_dir`.
async fn provider_status(
    ctx: &Context,
    dir: &Path,
    name: &str,
) -> anyhow::Result<serde_json::Value> {
    let data_dir = provider_data_dir(dir, name);
    let status = krypton_json(ctx, &data_dir, &["provider", "status"], "").await?;
    let address = status["provider"].as_str().unwrap_or_default().to_string();
    Ok(named(name, &address, &data_dir, status))
}

/// `{"name", "address", "data_dir"}` followed by the provider's `provider status`.
fn named(
    name: &str,
    address: &str,
    data_dir: &Path,
    status: serde_json::Value,
) -> serde_json::Value {
    let mut v = json!({"name": name, "address": address, "data_dir": data_dir});
    if let (Some(v), serde_json::Value::Object(status)) = (v.as_object_mut(), status) {
        v.extend(status);
    }
    v
}

async fn providers_status(ctx: &Context, dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut v = Vec::new();
    for name in existing_providers(dir) {
        v.push(provider_status(ctx, dir, name).await?);
    }
    Ok(v)
}

/// `provider down` in every devnet provider's dir: the names of those that were running, and
/// the first error (the others are still stopped).
async fn down_providers(ctx: &Context, dir: &Path) -> (Vec<&'static str>, Option<anyhow::Error>) {
    let (mut stopped, mut failed) = (Vec::new(), None);
    for name in existing_providers(dir) {
        match krypton_json(
            ctx,
            &provider_data_dir(dir, name),
            &["provider", "down"],
            "",
        )
        .await
        {
            Ok(v) if v["stopped"] == true => stopped.push(name),
            Ok(_) => {}
            Err(e) => {
                if failed.is_none() {
                    failed = Some(e.context(format!("{name} did not stop")));
                }
            }
        }
    }
    (stopped, failed)
}

/// Starts the node and waits until its RPC answers. A node that dies before writing a single log
/// line (seen once in CI, cause unknown: no output, no exit message) is started once more; any
/// other early exit is an error carrying the end of its log and its exit status.
async fn start_node_and_wait(
    dir: &Path,
    cfg: &Path,
    rpc: &RpcClient,
    out: &Output,
) -> anyhow::Result<()> {
    for attempt in 1..=2 {
        let log_len_before = log_len(dir);
        let mut child = start_node(dir, cfg)?;
        match wait_for_rpc(dir, rpc, Some(&mut child)).await {
            Err(e)
                if attempt == 1
                    && log_len(dir) == log_len_before
                    && child.try_wait()?.is_some() =>
            {
                tracing::warn!(error = %e, "the neo-go node died silently while starting; starting it again");
                out.note("the neo-go node died while starting without a word; starting it again…");
            }
            r => return r,
        }
    }
    unreachable!("the second attempt returns")
}

fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("node.log"))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn start_node(dir: &Path, cfg: &Path) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let neogo = neogo_path()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    let child = std::process::Command::new(&neogo)
        .arg("node")
        .arg("--config-file")
        .arg(cfg)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: the node outlives this command and ignores the terminal's Ctrl-C.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", neogo.display()))?;
    std::fs::write(dir.join("node.pid"), child.id().to_string())?;
    Ok(child)
}

/// Waits up to 30 s for the RPC to answer. `child` is the node this command started (its exit
/// status is then known exactly); without it, liveness comes from `node.pid`.
async fn wait_for_rpc(
    dir: &Path,
    rpc: &RpcClient,
    mut child: Option<&mut std::process::Child>,
) -> anyhow::Result<()> {
    for _ in 0..300 {
        if rpc.get_block_count().await.is_ok() {
            return Ok(());
        }
        let exit = match child.as_mut() {
            Some(c) => c.try_wait()?.map(|s| s.to_string()),
            None => running_pid(dir)
                .is_none()
                .then(|| "not running".to_string()),
        };
        if let Some(status) = exit {
            let log = std::fs::read(dir.join("node.log")).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "the neo-go node exited while starting ({status}); its log ({}/node.log) ends with:\n{}",
                dir.display(),
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the neo-go node did not answer on its RPC port within 30 s; see {}/node.log",
        dir.display()
    )
}

/// Transfers from the committee (1-of-1 multisig of the validator key), which holds all genesis GAS/NEO.
async fn fund(
    dir: &Path,
    rpc: &RpcClient,
    transfers: &[(Asset, ScriptHash, i128)],
    out: &Output,
) -> anyhow::Result<krypton_chain::TxOutcome> {
    let key = devnet_key(dir.join("validator.json"), None).await?;
    let script =
        VerificationScript::multisig(1, &[key.public_key()]).ok_or_else(|| anyhow!("multisig"))?;
    let committee = Account::with_script(script, vec![&key]);
    let from = committee.script_hash();
    let mut sb = ScriptBuilder::new();
    for (asset, to, amount) in transfers {
        nep17::append_transfer(&mut sb, &asset.hash(), &from, to, *amount);
    }
    let sender = Sender::connect(rpc).await?;
    let mut p = |p: Progress| out.tx_progress(&p);
    Ok(sender
        .invoke(sb.into_bytes(), &committee, 0, &mut p)
        .await?)
}
