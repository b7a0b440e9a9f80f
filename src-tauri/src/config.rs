//! Where the app keeps its state: the data dir and the keychain store, chosen the way `krypton`
//! chooses them, so the desktop app and the command line share one wallet per data dir.

use std::path::{Path, PathBuf};

use krypton_chain::Network;
use krypton_wallet::{Keychain, KeystoreKind};

/// The chain when none is chosen: the local devnet, as `krypton` defaults to.
pub const DEFAULT_NETWORK: &str = "devnet";

/// The data dir and the keychain store.
#[derive(Debug, Clone)]
pub struct DesktopConfig {
    /// All local state; the keychain namespace is derived from it.
    pub data_dir: PathBuf,
    /// The keychain store that holds the wallet.
    pub keystore: KeystoreKind,
    /// The chain: `devnet` (the local one `krypton devnet up` runs in this data dir),
    /// `testnet`, `mainnet` or RPC URLs.
    pub network: String,
    /// The KRYPTON contract's hash, where the network has none built in.
    pub contract: Option<String>,
    /// The network was given on the command line or in the environment: it overrides the
    /// settings, and the Settings panel shows it as fixed.
    pub network_fixed: bool,
}

impl DesktopConfig {
    /// A config for `data_dir` (created if missing) and `keystore`.
    pub fn new(data_dir: &Path, keystore: KeystoreKind) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}; choose another with --data-dir",
                data_dir.display()
            )
        })?;
        // As `krypton` does: the namespace hashes the canonical path.
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        Ok(DesktopConfig {
            data_dir,
            keystore,
            network: DEFAULT_NETWORK.into(),
            contract: None,
            network_fixed: false,
        })
    }

    /// The chain this app talks to.
    pub fn network(&self) -> Network {
        Network::new(&self.network, &self.data_dir, self.contract.as_deref())
    }

    /// From `--data-dir DIR` / `--keystore KIND` / `--network NET` / `--contract HASH` (also
    /// `--x=y`), else `KRYPTON_DATA_DIR` / `KRYPTON_KEYSTORE` / `KRYPTON_NETWORK` /
    /// `KRYPTON_CONTRACT`, else the OS data dir + `krypton`, the platform's keychain, devnet.
    pub fn from_env_and_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut data_dir = std::env::var_os("KRYPTON_DATA_DIR").map(PathBuf::from);
        let mut keystore = std::env::var("KRYPTON_KEYSTORE").ok();
        let mut network = std::env::var("KRYPTON_NETWORK").ok();
        let mut contract = std::env::var("KRYPTON_CONTRACT").ok();
        while let Some(a) = args.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
                "--keystore" => keystore = Some(value()?),
                "--network" => network = Some(value()?),
                "--contract" => contract = Some(value()?),
                _ => eprintln!("krypton-desktop: ignoring the argument {a:?}"),
            }
        }
        let data_dir = match data_dir {
            Some(d) => d,
            None => dirs::data_dir()
                .map(|d| d.join("krypton"))
                .ok_or("cannot find the OS data directory; pass --data-dir DIR")?,
        };
        let keystore = match keystore {
            Some(k) => k.parse::<KeystoreKind>().map_err(|e| e.to_string())?,
            None => KeystoreKind::platform_default()
                .ok_or("no keychain on this platform; pass --keystore")?,
        };
        let mut config = Self::new(&data_dir, keystore)?;
        if let Some(n) = network {
            config.network = n;
            config.network_fixed = true;
        }
        config.contract = contract;
        Ok(config)
    }

    /// The keychain namespace of this data dir: the same as `krypton`'s
    /// ([`Keychain::namespace_of`]), so both find the same wallet.
    pub fn keychain_namespace(&self) -> String {
        Keychain::namespace_of(&self.data_dir)
    }
}
