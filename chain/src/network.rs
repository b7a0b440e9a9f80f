//! Which chain to talk to: a network name (`devnet`, `testnet`, `mainnet`) or RPC URLs, turned
//! into RPC endpoints and the KRYPTON contract's hash. The command line and the desktop app
//! both resolve their `network` setting here, against the same data directory.
//!
//! The devnet is the local neo-go privnet that `krypton devnet up` runs; it writes
//! `<data dir>/devnet/state.json`, of which this reads the RPC port and the contract hash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use krypton_wallet::ScriptHash;
use serde::Deserialize;

use crate::RpcClient;
use crate::krypton::KryptonContract;

/// Public RPC nodes of N3 TestNet (tried in order, with failover).
pub const TESTNET_RPC: &[&str] = &[
    "https://testnet1.neo.coz.io:443",
    "https://testnet2.neo.coz.io:443",
];
/// Public RPC nodes of N3 MainNet.
pub const MAINNET_RPC: &[&str] = &[
    "https://mainnet1.neo.coz.io:443",
    "https://mainnet2.neo.coz.io:443",
    "https://mainnet3.neo.coz.io:443",
];

/// How long one RPC call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a network setting cannot be used; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// No devnet in this data dir.
    #[error("there is no devnet in {0}: start one with `krypton devnet up`")]
    NoDevnet(PathBuf),
    /// The devnet's state file cannot be read.
    #[error("cannot read the devnet state {path}: {detail}")]
    DevnetState {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The devnet has no contract yet.
    #[error("the devnet has no KRYPTON contract yet: run `krypton devnet up`")]
    NoDevnetContract,
    /// No contract hash is known for this network.
    #[error(
        "the KRYPTON contract is not deployed on {0} yet, so KRYPTON knows no hash for it; give the contract hash"
    )]
    NoContract(String),
    /// A contract hash that does not parse.
    #[error("{0:?} is not a contract hash (0x… or 40 hex digits)")]
    BadContract(String),
    /// An unknown network name.
    #[error("unknown network {0:?}: use devnet, testnet, mainnet or an http(s) RPC URL")]
    Unknown(String),
    /// The RPC client could not be made.
    #[error(transparent)]
    Rpc(#[from] crate::RpcError),
}

/// The part of `devnet/state.json` a client needs.
#[derive(Debug, Clone, Deserialize)]
pub struct DevnetInfo {
    /// RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// The KRYPTON contract's hash once deployed.
    pub contract: Option<String>,
}

impl DevnetInfo {
    /// Reads `dir/state.json`; `None` when there is no devnet.
    pub fn load(dir: &Path) -> Result<Option<Self>, NetworkError> {
        let path = dir.join("state.json");
        let bad = |detail: String| NetworkError::DevnetState {
            path: path.clone(),
            detail,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| bad(format!("it is corrupt ({e})"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }
}

/// A resolved network setting.
#[derive(Debug, Clone)]
pub struct Network {
    name: String,
    data_dir: PathBuf,
    contract: Option<String>,
}

impl Network {
    /// `name` is `devnet`, `testnet`, `mainnet` or comma-separated `http(s)://` RPC URLs; the
    /// devnet is the one in `data_dir`; `contract` overrides the KRYPTON contract's hash.
    pub fn new(name: &str, data_dir: &Path, contract: Option<&str>) -> Self {
        Network {
            name: name.trim().to_string(),
            data_dir: data_dir.to_path_buf(),
            contract: contract.map(str::to_string),
        }
    }

    /// The setting as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The devnet's folder in the data dir.
    pub fn devnet_dir(&self) -> PathBuf {
        self.data_dir.join("devnet")
    }

    fn devnet(&self) -> Result<DevnetInfo, NetworkError> {
        DevnetInfo::load(&self.devnet_dir())?
            .ok_or_else(|| NetworkError::NoDevnet(self.data_dir.clone()))
    }

    /// The RPC endpoints, in the order to try them.
    pub fn rpc_endpoints(&self) -> Result<Vec<String>, NetworkError> {
        Ok(match self.name.as_str() {
            "devnet" => vec![self.devnet()?.rpc_url()],
            "testnet" => TESTNET_RPC.iter().map(|s| s.to_string()).collect(),
            "mainnet" => MAINNET_RPC.iter().map(|s| s.to_string()).collect(),
            urls if urls.starts_with("http://") || urls.starts_with("https://") => urls
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            other => return Err(NetworkError::Unknown(other.to_string())),
        })
    }

    /// An RPC client over [`Self::rpc_endpoints`].
    pub fn rpc(&self) -> Result<RpcClient, NetworkError> {
        Ok(RpcClient::new(self.rpc_endpoints()?, RPC_TIMEOUT)?)
    }

    /// The KRYPTON contract: the override, else the devnet's.
    pub fn contract(&self) -> Result<KryptonContract, NetworkError> {
        if let Some(c) = &self.contract {
            let h = ScriptHash::from_hex(c).map_err(|_| NetworkError::BadContract(c.clone()))?;
            return Ok(KryptonContract::new(h));
        }
        match self.name.as_str() {
            "devnet" => {
                let h = self
                    .devnet()?
                    .contract
                    .ok_or(NetworkError::NoDevnetContract)?;
                let h = ScriptHash::from_hex(&h).map_err(|_| NetworkError::BadContract(h))?;
                Ok(KryptonContract::new(h))
            }
            n => Err(NetworkError::NoContract(n.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_the_devnet_comes_from_its_state_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let n = Network::new("devnet", &dir, None);
        assert!(matches!(n.rpc_endpoints(), Err(NetworkError::NoDevnet(_))));
        std::fs::create_dir_all(dir.join("devnet")).unwrap();
        std::fs::write(dir.join("devnet/state.json"), "{ not json").unwrap();
        let err = n.rpc_endpoints().unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        std::fs::write(
            dir.join("devnet/state.json"),
            r#"{"rpc_port": 40123, "magic": 1, "contract": null, "funded": true, "accounts": []}"#,
        )
        .unwrap();
        assert_eq!(n.rpc_endpoints().unwrap(), ["http://127.0.0.1:40123"]);
        assert!(matches!(n.contract(), Err(NetworkError::NoDevnetContract)));
        let hash = "0x".to_string() + &"ab".repeat(20);
        std::fs::write(
            dir.join("devnet/state.json"),
            format!(r#"{{"rpc_port": 40123, "contract": "{hash}"}}"#),
        )
        .unwrap();
        assert!(n.contract().is_ok());

        assert_eq!(
            Network::new("testnet", &dir, None).rpc_endpoints().unwrap(),
            TESTNET_RPC
        );
        assert!(matches!(
            Network::new("testnet", &dir, None).contract(),
            Err(NetworkError::NoContract(_))
        ));
        assert_eq!(
            Network::new("http://a:1, https://b:2", &dir, None)
                .rpc_endpoints()
                .unwrap(),
            ["http://a:1", "https://b:2"]
        );
        assert!(matches!(
            Network::new("moon", &dir, None).rpc_endpoints(),
            Err(NetworkError::Unknown(_))
        ));
        assert!(matches!(
            Network::new("mainnet", &dir, Some("xyz")).contract(),
            Err(NetworkError::BadContract(_))
        ));
    }
}
