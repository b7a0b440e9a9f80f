// No console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    krypton_core::logging::init();
    // Session keyrings are per-thread credentials: the keyutils store needs one before the first
    // thread starts (DEVELOPERS.md, "The keychain in tests"). Harmless for the other stores.
    if let Err(e) = krypton_wallet::init_process_keyring() {
        eprintln!("krypton-desktop: {e}");
    }
    krypton_desktop::run();
}
