//! Where the app keeps its state: the data dir and the keychain store, chosen the way `krypton`
//! chooses them, so the desktop app and the command line share one wallet per data dir.

use std::path::{Path, PathBuf};

use krypton_wallet::{KeystoreKind, sha256};

/// The data dir and the keychain store.
#[derive(Debug, Clone)]
pub struct DesktopConfig {
    /// All local state; the keychain namespace is derived from it.
    pub data_dir: PathBuf,
    /// The keychain store that holds the wallet.
    pub keystore: KeystoreKind,
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
        Ok(DesktopConfig { data_dir, keystore })
    }

    /// From `--data-dir DIR` / `--keystore KIND` (also `--x=y`), else `KRYPTON_DATA_DIR` /
    /// `KRYPTON_KEYSTORE`, else the OS data dir + `krypton` and the platform's keychain.
    pub fn from_env_and_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut data_dir = std::env::var_os("KRYPTON_DATA_DIR").map(PathBuf::from);
        let mut keystore = std::env::var("KRYPTON_KEYSTORE").ok();
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
        Self::new(&data_dir, keystore)
    }

    /// The keychain namespace of this data dir: the same as `krypton`'s
    /// (`cli/src/context.rs` `keychain_namespace`), so both find the same wallet.
    pub fn keychain_namespace(&self) -> String {
        hex_prefix(&sha256(self.data_dir.to_string_lossy().as_bytes())[..8])
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
