//! `krypton`: the headless front end of KRYPTON.
//!
//! Every command prints its result on stdout (one JSON object per result with `--json`) and, on failure,
//! a message that says what to do next (a JSON `{"error": …}` with `--json`) and a non-zero exit.
//! Passwords and keys are never taken from argv: `--password-stdin` reads them from standard input.

mod chain_cmds;
mod context;
mod credentials_cmd;
mod daemon;
mod devnet;
mod output;
mod phone_cmd;
mod provider_cmd;
mod wallet_cmds;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::context::Context;
use crate::output::Output;

/// KRYPTON — a softphone with a NEO N3 wallet inside (headless front end).
#[derive(Parser, Debug)]
#[command(name = "krypton", version, about)]
struct Cli {
    /// Directory for all local state; also namespaces the keychain entries [default: the OS data dir]
    #[arg(long, global = true, env = "KRYPTON_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// devnet, testnet, mainnet, or an RPC URL (several URLs separated by commas fail over)
    #[arg(long, global = true, default_value = "devnet", env = "KRYPTON_NETWORK")]
    network: String,
    /// The KRYPTON contract hash on a custom network
    #[arg(long, global = true)]
    contract: Option<String>,
    /// Print one JSON object per result
    #[arg(long, global = true)]
    json: bool,
    /// Keychain store: secret-service, keyutils, macos, windows [default: the platform's]
    #[arg(long, global = true, env = "KRYPTON_KEYSTORE")]
    keystore: Option<String>,
    /// Read the password (after any other secret input) from the first line(s) of standard input
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Account that signs (default: the wallet's default account)
    #[arg(long, global = true)]
    account: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A local single-node NEO N3 network (neo-go) with the KRYPTON contract
    Devnet {
        #[command(subcommand)]
        cmd: devnet::DevnetCmd,
    },
    /// The wallet in the OS keychain
    Wallet {
        #[command(subcommand)]
        cmd: wallet_cmds::WalletCmd,
    },
    /// GAS and NEO balances of an address (default: the wallet's account)
    Balance { address: Option<String> },
    /// NEP-17 transfer history of an address (default: the wallet's account)
    History { address: Option<String> },
    /// Send GAS or NEO
    Send {
        /// Recipient N3 address
        #[arg(long)]
        to: String,
        /// Amount, e.g. 1.5
        #[arg(long)]
        amount: String,
        /// GAS or NEO
        #[arg(long, default_value = "GAS")]
        asset: String,
    },
    /// Providers: deploy yourself on chain, and run your provider (Kamailio + provider service) here
    Provider {
        #[command(subcommand)]
        cmd: provider_cmd::ProviderCmd,
    },
    /// Register the account with a provider
    Register {
        /// The provider's address
        #[arg(long)]
        provider: String,
        /// This device's public id (RFC 4122 v4; default: a new random one)
        #[arg(long)]
        uuid: Option<String>,
    },
    /// Remove the account's registration
    Unregister,
    /// Look up a user's uuid, provider, location or device key
    Query {
        /// uuid, provider, location or key
        what: String,
        /// The user's address
        address: String,
    },
    /// List the deployed providers and their locations
    Providers,
    /// The device key a phone uses to sign SIP authentication
    DeviceKey {
        #[command(subcommand)]
        cmd: chain_cmds::DeviceKeyCmd,
    },
    /// The KRYPTON contract itself
    Contract {
        #[command(subcommand)]
        cmd: chain_cmds::ContractCmd,
    },
    /// A softphone without a window: JSON events on stdout, JSON commands on stdin
    /// (--account sip:USER@DOMAIN is the SIP account here)
    Phone(Box<phone_cmd::PhoneArgs>),
    /// SIP digest credentials for a standard SIP client (baresip, linphone) from the account's
    /// on-chain provider, signed for with the wallet key
    Credentials {
        /// The provider's API base [default: http://LOCATION, its on-chain location]
        #[arg(long)]
        provider_url: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    krypton_core::logging::init();
    let out = Output::new(cli.json);
    // Before the runtime starts its threads: they must all share one session keyring.
    if let Err(e) = krypton_wallet::init_process_keyring() {
        tracing::warn!(error = %e, "no session keyring: the keyutils keychain will not work");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&anyhow::anyhow!("cannot start the async runtime: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli, &out));
    // A task may still sit in a blocking read of stdin (`krypton phone`): do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, out: &Output) -> anyhow::Result<()> {
    let ctx = Context::new(&cli)?;
    match cli.command {
        Command::Devnet { cmd } => devnet::run(&ctx, cmd, out).await,
        Command::Wallet { cmd } => wallet_cmds::run(&ctx, cmd, out).await,
        Command::Balance { address } => chain_cmds::balance(&ctx, address, out).await,
        Command::History { address } => chain_cmds::history(&ctx, address, out).await,
        Command::Send { to, amount, asset } => {
            chain_cmds::send(&ctx, &to, &amount, &asset, out).await
        }
        Command::Provider { cmd } => provider_cmd::run(&ctx, cmd, out).await,
        Command::Register { provider, uuid } => {
            chain_cmds::register(&ctx, &provider, uuid, out).await
        }
        Command::Unregister => chain_cmds::unregister(&ctx, out).await,
        Command::Query { what, address } => chain_cmds::query(&ctx, &what, &address, out).await,
        Command::Providers => chain_cmds::providers(&ctx, out).await,
        Command::DeviceKey { cmd } => chain_cmds::device_key(&ctx, cmd, out).await,
        Command::Contract { cmd } => chain_cmds::contract(&ctx, cmd, out).await,
        Command::Phone(args) => phone_cmd::run(&ctx, cli.account.clone(), *args).await,
        Command::Credentials { provider_url } => {
            credentials_cmd::run(&ctx, provider_url, out).await
        }
    }
}
