// Typed wrappers over the app's IPC commands (src-tauri/src/command_list.rs).
// The core answers with display data only; passwords go in, never come back.
function invoke(cmd, args) {
    return window.__TAURI__.core.invoke(cmd, args);
}
export const wallet = {
    status: () => invoke("wallet_status"),
    create: (password) => invoke("wallet_create", { password }),
    unlock: (password) => invoke("wallet_unlock", { password }),
    lock: () => invoke("wallet_lock"),
    backup: (path) => invoke("wallet_backup", { path }),
    importNep6: (path, password) => invoke("wallet_import_nep6", { path, password }),
};
