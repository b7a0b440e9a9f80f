//! `krypton phone`: the phone without a window, for testers and scripts.
//!
//! Prints one JSON object per line on stdout for every event (`registered`, `incoming`,
//! `ringing`, `established`, `dtmf`, `message`, `devices`, `device_changed`, `audio_error`,
//! `ended` …) and reads one JSON command per line on stdin (`call`, `answer`, `hangup`, `hold`,
//! `resume`, `mute`, `dtmf`, `message`, `devices`, `set_device`, `quit`). Logs go to stderr.
//! SIGINT/SIGTERM hang up, unregister and exit.
//!
//! Without `--input`/`--output` (or `[audio]` in the config) calls use no sound device at all:
//! silence out, nothing played, so the phone runs on machines without sound.
//!
//! `--wallet [ADDRESS]` registers the wallet account (default: `--account`, else the wallet's
//! default) with its provider as the chain names it, proving the address with a KRYPTON Bearer
//! token instead of a password (provider/AUTH.md §4; see [`phone_wallet`]). `--password-file`
//! then holds the wallet password.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use krypton_core::{AccountConfig, DeviceChoice, Phone, PhoneCommand, PhoneConfig, PhoneEvent};
use tokio::io::AsyncBufReadExt;

use crate::context::Context;

#[path = "phone_wallet.rs"]
pub(crate) mod phone_wallet;

/// Options of `krypton phone`.
#[derive(clap::Args, Debug)]
pub struct PhoneArgs {
    /// TOML file with accounts, dial plan and the options below
    #[arg(long)]
    config: Option<PathBuf>,
    /// Outbound proxy for --account: sip:HOST[:PORT][;transport=udp|tcp|tls|ws]
    #[arg(long)]
    proxy: Option<String>,
    /// File whose first line is the password of --account (with --wallet: the wallet password)
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Register the wallet account ADDRESS (default: --account, else the wallet's default) with
    /// its on-chain provider, proving the address with the wallet key (no SIP password); repeat
    /// for several accounts (each at its own provider; the dial plan names them by address)
    #[arg(long, value_name = "ADDRESS", num_args = 0..=1, default_missing_value = "")]
    wallet: Vec<String>,
    /// Answer incoming calls at once
    #[arg(long)]
    auto_answer: bool,
    /// Play this WAV file as the microphone
    #[arg(long)]
    play: Option<PathBuf>,
    /// Record what the other side says into this WAV file ({call} = call number)
    #[arg(long)]
    record: Option<PathBuf>,
    /// Codecs in preference order: opus,pcmu,pcma
    #[arg(long, value_delimiter = ',')]
    codecs: Option<Vec<String>>,
    /// Call this destination once the account is registered
    #[arg(long)]
    call: Option<String>,
    /// Hang up calls this many seconds after they are established
    #[arg(long)]
    hangup_after: Option<f64>,
    /// Exit when the call started with --call has ended
    #[arg(long)]
    quit_after_call: bool,
    /// Report each established call's live quality (a `quality` event) every this many
    /// milliseconds
    #[arg(long, value_name = "MS")]
    quality_every: Option<u64>,
    /// Local IP for SIP and RTP [default: 127.0.0.1]
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Local SIP port [default: any free port]
    #[arg(long)]
    sip_port: Option<u16>,
    /// RTP port range, e.g. 16000-16999
    #[arg(long)]
    rtp_ports: Option<String>,
    /// Keep-alive probe interval in seconds for --account (0 = off)
    #[arg(long)]
    keepalive: Option<u64>,
    /// Registration expiry in seconds for --account
    #[arg(long)]
    expires: Option<u32>,
    /// SDES-SRTP: off, optional or mandatory (keys travel in the SDP: use TLS signalling)
    #[arg(long, value_parser = ["off", "optional", "mandatory"])]
    srtp: Option<String>,
    /// Sound devices (last: their help heading applies to the flags after them)
    #[command(flatten)]
    sound: SoundArgs,
}

/// The sound device flags of `krypton phone`.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Sound devices (none by default: calls are silent)")]
pub struct SoundArgs {
    /// Microphone for calls: `default` or a device id or name (the `devices` command lists
    /// them); --play takes precedence
    #[arg(long, value_name = "NAME|default")]
    input: Option<String>,
    /// Speaker or headset for calls: `default` or a device id or name; --record takes
    /// precedence
    #[arg(long, value_name = "NAME|default")]
    output: Option<String>,
}

/// Run the phone until `quit`, a signal, or the end of the --call call (--quit-after-call).
pub async fn run(ctx: &Context, account: Option<String>, args: PhoneArgs) -> anyhow::Result<()> {
    let (account, wallet) = if args.wallet.is_empty() {
        (account, Vec::new())
    } else {
        // With --wallet, a global --account names the wallet account, not a SIP AOR.
        let opts = phone_wallet::WalletOptions {
            proxy: args.proxy.as_deref(),
            password_file: args.password_file.as_deref(),
            expires: args.expires,
            keepalive: args.keepalive,
        };
        let addresses: Vec<Option<&str>> = args
            .wallet
            .iter()
            .map(|a| Some(a.as_str()).filter(|a| !a.is_empty()))
            .collect();
        (
            None,
            phone_wallet::wallet_accounts(ctx, &addresses, &opts).await?,
        )
    };
    let config = build_config(ctx, account, wallet, &args)?;
    let auto_call = args.call.clone();
    let (phone, mut events) = Phone::start(config)
        .await
        .context("cannot start the phone")?;

    // Commands from stdin, one JSON object per line. EOF leaves the phone running.
    let input = phone.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_str::<PhoneCommand>(line) {
                Ok(c) => {
                    input.send(c);
                }
                Err(e) => print_event(&PhoneEvent::Error {
                    message: format!("cannot read the command {line:?}: {e}"),
                }),
            }
        }
    });
    let signals = phone.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.send(PhoneCommand::Quit);
    });

    let mut pending_call = auto_call;
    let mut auto_call_id: Option<u64> = None;
    while let Some(e) = events.recv().await {
        print_event(&e);
        match &e {
            PhoneEvent::Registered { .. } | PhoneEvent::Ready { .. } => {
                // Dial once registered (or at once when no account registers).
                let ready = matches!(e, PhoneEvent::Registered { .. }) || !any_registering(&args);
                if ready && let Some(to) = pending_call.take() {
                    phone.send(PhoneCommand::Call { to, account: None });
                }
            }
            PhoneEvent::Calling { call, .. } if auto_call_id.is_none() => {
                auto_call_id = Some(*call);
            }
            PhoneEvent::Ended { call, .. }
                if args.quit_after_call && auto_call_id == Some(*call) =>
            {
                phone.send(PhoneCommand::Quit);
            }
            _ => {}
        }
    }
    Ok(())
}

fn any_registering(args: &PhoneArgs) -> bool {
    args.config.is_some()
        || args.proxy.is_some()
        || args.password_file.is_some()
        || !args.wallet.is_empty()
}

fn print_event(e: &PhoneEvent) {
    let mut out = std::io::stdout().lock();
    if let Ok(line) = serde_json::to_string(e) {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn build_config(
    ctx: &Context,
    account: Option<String>,
    wallet: Vec<AccountConfig>,
    args: &PhoneArgs,
) -> anyhow::Result<PhoneConfig> {
    let mut config = match &args.config {
        Some(path) => PhoneConfig::load(path)?,
        None => PhoneConfig::default(),
    };
    if !wallet.is_empty() {
        // Destinations no rule takes: the wallet accounts in the order given (failover).
        if config.dial_plan.default.is_empty() {
            config.dial_plan.default = wallet.iter().map(|w| w.id.clone()).collect();
        }
        config.accounts.extend(wallet);
    } else if let Some(aor) = account {
        let id = aor_id(&aor);
        config.accounts.push(AccountConfig {
            id: id.clone(),
            aor,
            proxy: args.proxy.clone(),
            username: None,
            password_file: args.password_file.clone(),
            display_name: None,
            register: true,
            expires: args.expires,
            keepalive: args.keepalive,
            krypton: false,
            tls_ca: None,
            instance: None,
            bearer: None,
            credentials: None,
        });
        if config.dial_plan.default.is_empty() {
            config.dial_plan.default.push(id);
        }
    } else if args.proxy.is_some() || args.password_file.is_some() {
        anyhow::bail!("--proxy and --password-file belong to --account sip:USER@DOMAIN");
    }
    if let Some(c) = &args.codecs {
        config.codecs = c.clone();
    }
    if let Some(b) = args.bind {
        config.bind = b;
    }
    if let Some(p) = args.sip_port {
        config.sip_port = p;
    }
    if let Some(r) = &args.rtp_ports {
        config.rtp_ports = parse_range(r)?;
    }
    config.auto_answer |= args.auto_answer;
    if let Some(s) = &args.srtp {
        config.srtp = match s.as_str() {
            "optional" => krypton_core::SrtpSetting::Optional,
            "mandatory" => krypton_core::SrtpSetting::Mandatory,
            _ => krypton_core::SrtpSetting::Off,
        };
    }
    if args.play.is_some() {
        config.play = args.play.clone();
    }
    if args.record.is_some() {
        config.record = args.record.clone();
    }
    if let Some(i) = &args.sound.input {
        config.audio.input = Some(DeviceChoice::from(i.as_str()));
    }
    if let Some(o) = &args.sound.output {
        config.audio.output = Some(DeviceChoice::from(o.as_str()));
    }
    if args.hangup_after.is_some() {
        config.hangup_after = args.hangup_after;
    }
    if args.quality_every.is_some() {
        config.quality_interval_ms = args.quality_every;
    }
    if let Some(p) = &config.play {
        check_readable(p)?;
    }
    if config.data_dir.is_none() {
        config.data_dir = Some(ctx.data_dir.join("phone"));
    }
    config.validate()?;
    Ok(config)
}

/// A short account id from an AOR: `sip:alice@a.test` → `alice@a.test`.
fn aor_id(aor: &str) -> String {
    aor.trim()
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .to_string()
}

fn parse_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .with_context(|| format!("--rtp-ports '{s}' is not a range like 16000-16999"))?;
    Ok((
        a.trim()
            .parse()
            .with_context(|| format!("bad port '{a}'"))?,
        b.trim()
            .parse()
            .with_context(|| format!("bad port '{b}'"))?,
    ))
}

fn check_readable(p: &Path) -> anyhow::Result<()> {
    std::fs::File::open(p)
        .map(|_| ())
        .with_context(|| format!("cannot read the WAV file {} given to --play", p.display()))
}
