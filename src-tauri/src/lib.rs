//! The KRYPTON desktop app: a Tauri 2 shell over the KRYPTON crates.
//!
//! The Rust side owns every secret; the web UI (`../ui`) asks and shows. Commands live in
//! `commands/`, one module per domain, as thin wrappers over the library crates. They return
//! display data only: the one secret that crosses IPC is a password on its way in (create,
//! unlock, import forms). The list of commands is `src/command_list.rs`.

pub mod commands;
pub mod config;
pub mod settings;

use config::DesktopConfig;

macro_rules! app_commands {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// The name of every IPC command, as registered (from `src/command_list.rs`).
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        fn invoke_handler<R: tauri::Runtime>()
        -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(commands::$module::$name),*]
        }
    };
}
include!("command_list.rs");

/// The app on any runtime: state and commands (shared by [`run`] and the mock-runtime tests).
pub fn builder<R: tauri::Runtime>(
    builder: tauri::Builder<R>,
    config: DesktopConfig,
) -> tauri::Builder<R> {
    builder
        .manage(commands::wallet::WalletState::new(config))
        .manage(commands::phone::PhoneState::default())
        .manage(commands::chain::SendState::default())
        .invoke_handler(invoke_handler())
}

/// Runs the desktop app (`--data-dir DIR`, `--keystore KIND`, `--network NET`, `--contract
/// HASH`, or `KRYPTON_DATA_DIR`, `KRYPTON_KEYSTORE`, `KRYPTON_NETWORK`, `KRYPTON_CONTRACT`, as
/// `krypton` takes them).
pub fn run() {
    let config = match DesktopConfig::from_env_and_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("krypton-desktop: {e}");
            std::process::exit(2);
        }
    };
    builder(tauri::Builder::default(), config)
        .run(tauri::generate_context!())
        .expect("the desktop app failed to start");
}

#[cfg(test)]
mod tests;
