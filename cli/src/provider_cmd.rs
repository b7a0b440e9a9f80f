//! `krypton provider …`: deploy/undeploy on chain, and run one provider on this machine: the
//! provider service (`serve`, a process of its own) and Kamailio. `up` starts whichever of the two
//! is not running (so a stopped service comes back without touching Kamailio's bindings), `down`
//! stops both.
//!
//! Everything lives in `<data dir>/provider`: `state.json` (location, ports, chain), `secret`
//! (the `auth_ephemeral` secret shared by the service and Kamailio, mode 0600), `service.pid`,
//! `service.log`, `kamailio.pid`, and `kamailio/` (rendered config and `kamailio.log`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use krypton_chain::krypton::{QueryKind, QueryValue};
use krypton_provider::kamailio::{Kamailio, KamailioConfig};
use krypton_provider::{ServiceConfig, run as run_service};
use krypton_wallet::{PrivateKey, ScriptHash};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use crate::chain_cmds;
use crate::context::Context;
use crate::daemon;
use crate::output::Output;

/// `krypton provider …`.
#[derive(Subcommand, Debug)]
pub enum ProviderCmd {
    /// Deploy the signing account as a provider with its outbound SIP proxy location
    Deploy {
        /// host[:port] or a DNS SRV name such as _sip._udp.example.org
        #[arg(long)]
        location: String,
    },
    /// Remove the signing account's provider entry
    Undeploy,
    /// Run this provider here: deploy on chain if needed, start Kamailio and the provider service
    Up {
        /// SIP address IP:PORT (UDP, TCP and WebSocket) [default: the on-chain location, else 127.0.0.1 and a free port]
        #[arg(long)]
        sip: Option<String>,
        /// PSTN gateway HOST:PORT for phone numbers (`+31…`) [default: the previous run's, else none]
        #[arg(long, value_name = "HOST:PORT")]
        trunk: Option<String>,
    },
    /// Stop Kamailio and the provider service
    Down,
    /// Is the provider running, and what does its service see of the chain?
    Status,
    /// Run the provider service and Kamailio in the foreground (what `up` starts)
    #[command(hide = true)]
    Serve,
}

/// Runs a provider subcommand.
pub async fn run(ctx: &Context, cmd: ProviderCmd, out: &Output) -> anyhow::Result<()> {
    let dir = ctx.data_dir.join("provider");
    match cmd {
        ProviderCmd::Deploy { location } => {
            out.result(chain_cmds::provider_tx(ctx, Some(&location), None, out).await?)
        }
        ProviderCmd::Undeploy => out.result(chain_cmds::provider_tx(ctx, None, None, out).await?),
        ProviderCmd::Up { sip, trunk } => up(ctx, &dir, sip, trunk, out).await?,
        ProviderCmd::Down => {
            let stopped = stop(&dir).await?;
            out.result(json!({"stopped": stopped}));
        }
        ProviderCmd::Status => out.result(status(&dir).await),
        ProviderCmd::Serve => serve(&dir).await?,
    }
    Ok(())
}

/// What `up` decided; read by `serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProviderState {
    provider: String,
    location: String,
    sip: SocketAddr,
    service_port: u16,
    rpc_port: u16,
    rpc: Vec<String>,
    contract: String,
    /// PSTN gateway `host:port`.
    #[serde(default)]
    trunk: Option<String>,
}

impl ProviderState {
    fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        match std::fs::read_to_string(dir.join("state.json")) {
            Ok(s) => Ok(Some(serde_json::from_str(&s).with_context(|| {
                format!(
                    "{}/state.json is damaged: run `krypton provider up` again",
                    dir.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn service_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.service_port)
    }
}

async fn up(
    ctx: &Context,
    dir: &Path,
    sip: Option<String>,
    trunk: Option<String>,
    out: &Output,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The provider this directory already runs, unless --account names another.
    let me = match (&ctx.account, ProviderState::load(dir)?) {
        (None, Some(st)) => ScriptHash::from_address(&st.provider)?,
        _ => {
            let wallet = ctx.wallet().await?;
            ctx.signing_account(&wallet)?.script_hash()
        }
    };
    let rpc = ctx.rpc()?;
    let contract = ctx.contract()?;
    let on_chain = contract
        .providers(&rpc)
        .await?
        .into_iter()
        .find(|p| p.provider == me)
        .map(|p| p.location);
    let location = match (on_chain, sip) {
        (Some(loc), Some(s)) if loc != s => bail!(
            "{} is deployed at {loc} on chain: run `krypton provider undeploy` first to move to {s}",
            me.to_address()
        ),
        (Some(loc), _) => loc,
        (None, requested) => {
            let loc = match requested {
                Some(s) => s,
                None => format!("127.0.0.1:{}", free_sip_port()?),
            };
            out.note(&format!("deploying {} at {loc} on chain…", me.to_address()));
            setup_on_chain(ctx, dir, &me, Some(&loc), out).await?;
            loc
        }
    };
    let sip: SocketAddr = location.parse().map_err(|_| {
        anyhow!("`krypton provider up` runs a provider at an IP:PORT location, and {location} is not one: deploy with --location IP:PORT")
    })?;
    // Keep the ports of a previous run: a running half (service or Kamailio) still uses them.
    let previous = ProviderState::load(dir)?.filter(|p| p.location == location);
    let st = ProviderState {
        provider: me.to_address(),
        location,
        sip,
        service_port: match &previous {
            Some(p) => p.service_port,
            None => daemon::free_tcp_port()?,
        },
        rpc_port: match &previous {
            Some(p) => p.rpc_port,
            None => daemon::free_tcp_port()?,
        },
        rpc: ctx.rpc_endpoints()?,
        contract: contract.hash.to_hex(),
        trunk: trunk.or_else(|| previous.and_then(|p| p.trunk)),
    };
    std::fs::write(dir.join("state.json"), serde_json::to_string_pretty(&st)?)?;
    ensure_secret(dir)?;
    setup_on_chain(ctx, dir, &me, None, out).await?;
    let mut started = None;
    if running_pid(dir, Part::Service).is_none() {
        out.note("starting the provider service…");
        started = Some(start_serve(dir)?);
    }
    wait_for_service(dir, &st, started.as_mut()).await?;
    if running_pid(dir, Part::Kamailio).is_none() {
        out.note("starting Kamailio…");
        let kcfg = kamailio_config(dir, &st, read_secret(dir)?);
        let k =
            tokio::task::spawn_blocking(move || Kamailio::start(&kcfg, Duration::from_secs(20)))
                .await??;
        std::fs::write(Part::Kamailio.pid_file(dir), k.detach().to_string())?;
    }
    out.result(status(dir).await);
    Ok(())
}

fn kamailio_config(dir: &Path, st: &ProviderState, secret: Zeroizing<String>) -> KamailioConfig {
    KamailioConfig {
        dir: dir.join("kamailio"),
        sip: st.sip,
        rpc_port: st.rpc_port,
        realm: st.location.clone(),
        service: SocketAddr::from(([127, 0, 0, 1], st.service_port)),
        ephemeral_secret: secret,
        children: 4,
    }
}

fn read_secret(dir: &Path) -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(
        std::fs::read_to_string(dir.join("secret"))
            .context("the provider's secret file is missing: run `krypton provider up`")?
            .trim()
            .to_string(),
    ))
}

/// Starts `krypton provider serve` as a daemon; the handle only tells whether it exited while
/// starting (dropping it leaves the daemon running).
fn start_serve(dir: &Path) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("service.log"))?;
    let data_dir = dir.parent().ok_or_else(|| anyhow!("bad data dir"))?;
    let child = std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["provider", "serve"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this command and ignores the terminal's Ctrl-C.
        .process_group(0)
        .spawn()
        .context("cannot start the provider service")?;
    std::fs::write(Part::Service.pid_file(dir), child.id().to_string())?;
    Ok(child)
}

/// Waits until the service answers `/health`. `started` is the process this command started
/// (its exit is certain from its handle); otherwise the pid file says whether one runs.
async fn wait_for_service(
    dir: &Path,
    st: &ProviderState,
    mut started: Option<&mut std::process::Child>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        let exited = match started.as_deref_mut() {
            Some(child) => child.try_wait()?.map(|s| s.to_string()),
            None => running_pid(dir, Part::Service)
                .is_none()
                .then(|| "not running".to_string()),
        };
        if let Some(status) = exited {
            bail!(
                "the provider service exited while starting ({status}): see {}/service.log",
                dir.display()
            );
        }
        match http
            .get(format!("{}/health", st.service_url()))
            .timeout(Duration::from_secs(1))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = r.text().await.unwrap_or_default(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the provider service did not load the chain within 40 s ({last}): see {}/service.log",
        dir.display()
    )
}

async fn status(dir: &Path) -> serde_json::Value {
    let st = ProviderState::load(dir).ok().flatten();
    let service = running_pid(dir, Part::Service);
    let kamailio = running_pid(dir, Part::Kamailio);
    let mut v = json!({
        "running": service.is_some() && kamailio.is_some(),
        "service_pid": service,
        "kamailio_pid": kamailio,
    });
    if let Some(st) = st {
        v["provider"] = json!(st.provider);
        v["location"] = json!(st.location);
        v["sip"] = json!(st.sip.to_string());
        v["service"] = json!(st.service_url());
        v["service_log"] = json!(dir.join("service.log"));
        v["kamailio_log"] = json!(dir.join("kamailio/kamailio.log"));
        if service.is_some()
            && let Ok(r) = reqwest::Client::new()
                .get(format!("{}/health", st.service_url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            && let Ok(h) = r.json::<serde_json::Value>().await
        {
            v["health"] = h;
        }
    }
    v
}

/// Deploys the provider at `deploy` (when given) and authorises its peer key on chain, in one
/// transaction signed by the provider's wallet key; nothing is sent when both are already so.
///
/// The peer key (AUTH.md §6) is a P-256 key kept in `peer.key` (hex, mode 0600) that signs the
/// `Krypton-Provider` tokens of requests to other providers. Other providers know it as this
/// provider's device key on chain (`setDeviceKey`), so the wallet key that controls the
/// provider's deployment and funds never has to stay unlocked.
async fn setup_on_chain(
    ctx: &Context,
    dir: &Path,
    me: &ScriptHash,
    deploy: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let key = match read_peer_key(dir) {
        Ok(k) => k,
        Err(_) => {
            let k = PrivateKey::generate();
            write_private(&dir.join("peer.key"), &hex::encode(*k.to_bytes()))?;
            k
        }
    };
    let public = key.public_key();
    let on_chain = ctx
        .contract()?
        .query(&ctx.rpc()?, QueryKind::Key, me)
        .await?;
    let key_set = matches!(&on_chain, Some(QueryValue::Key(k)) if k.to_compressed() == public.to_compressed());
    if key_set && deploy.is_none() {
        return Ok(());
    }
    let wallet = ctx.wallet().await?;
    if ctx.signing_account(&wallet)?.script_hash() != *me {
        bail!(
            "the provider must be set up on chain by {0}: run `krypton --account {0} provider up`",
            me.to_address()
        );
    }
    if !key_set {
        out.note("authorising the provider's peer key on chain (setDeviceKey)…");
    }
    let peer = (!key_set).then_some(&public);
    chain_cmds::provider_tx(ctx, deploy, peer, out).await?;
    Ok(())
}

fn read_peer_key(dir: &Path) -> anyhow::Result<PrivateKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(dir.join("peer.key"))
            .context("the provider's peer key is missing: run `krypton provider up`")?,
    );
    let raw = Zeroizing::new(hex::decode(text.trim()).context("peer.key is damaged")?);
    PrivateKey::from_bytes(&raw).context("peer.key is damaged")
}

/// Writes a new secret file readable only by its owner.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

/// The `auth_ephemeral` secret, created once (mode 0600).
fn ensure_secret(dir: &Path) -> anyhow::Result<()> {
    let p = dir.join("secret");
    if p.exists() {
        return Ok(());
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut raw[..]);
    let hex = Zeroizing::new(hex::encode(&raw[..]));
    write_private(&p, &hex)
}

/// The `serve` process: the provider service until SIGTERM/SIGINT.
async fn serve(dir: &Path) -> anyhow::Result<()> {
    let st = ProviderState::load(dir)?
        .ok_or_else(|| anyhow!("no provider here: run `krypton provider up`"))?;
    let secret = read_secret(dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", st.service_port))
        .await
        .with_context(|| format!("port {} is taken", st.service_port))?;
    let cfg = ServiceConfig {
        rpc: st.rpc.clone(),
        contract: ScriptHash::from_hex(&st.contract)?,
        provider: ScriptHash::from_address(&st.provider)?,
        realm: st.location.clone(),
        ephemeral_secret: Zeroizing::new(secret.as_bytes().to_vec()),
        kamailio_rpc: Some(kamailio_config(dir, &st, secret).rpc_url()),
        poll: Duration::from_millis(250),
        peer_key: Some(std::sync::Arc::new(read_peer_key(dir)?)),
        trunk: st.trunk.clone(),
    };
    tracing::info!(?cfg, "provider service starting");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        r = run_service(cfg, listener) => Err(anyhow!("the provider service stopped: {r:?}")),
    }
}

/// The two processes of a running provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Service,
    Kamailio,
}

impl Part {
    fn pid_file(self, dir: &Path) -> PathBuf {
        dir.join(match self {
            Part::Service => "service.pid",
            Part::Kamailio => "kamailio.pid",
        })
    }

    /// Does this command line belong to this part?
    fn is(self, cmdline: &str) -> bool {
        match self {
            Part::Service => cmdline.contains("provider") && cmdline.contains("serve"),
            Part::Kamailio => cmdline.contains("kamailio"),
        }
    }
}

/// The part's pid if it is alive (not a zombie) and is what we started.
fn running_pid(dir: &Path, part: Part) -> Option<i32> {
    daemon::live_pid(&part.pid_file(dir), |c| part.is(c))
}

/// Stops both parts (Kamailio first: it must not ask a service that is gone); true if anything
/// was running.
async fn stop(dir: &Path) -> anyhow::Result<bool> {
    let kamailio = daemon::stop(
        &Part::Kamailio.pid_file(dir),
        |c| Part::Kamailio.is(c),
        "Kamailio",
    )
    .await?;
    let service = daemon::stop(
        &Part::Service.pid_file(dir),
        |c| Part::Service.is(c),
        "the provider service",
    )
    .await?;
    Ok(kamailio || service)
}

/// A port free for both UDP and TCP on loopback.
fn free_sip_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let p = daemon::free_tcp_port()?;
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return Ok(p);
        }
    }
    bail!("no free port for SIP on 127.0.0.1")
}
