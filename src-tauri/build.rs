// Declares the app's own commands in an AppManifest. tauri-build then generates an `allow-<cmd>`
// and a `deny-<cmd>` permission for each, and every call from the webview goes through the ACL:
// a command is callable only from windows whose capability (capabilities/*.json) grants it.
// Without the manifest, Tauri lets every local window call every registered app command.
macro_rules! app_commands {
    ($($module:ident :: $name:ident),* $(,)?) => {
        const COMMANDS: &[&str] = &[$(stringify!($name)),*];
    };
}
include!("src/command_list.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/command_list.rs");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
