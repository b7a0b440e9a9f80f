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
    /** The text of a NEP-6 file read by the file chooser (NEP-2 encrypted keys only). */
    importNep6Json: (json, name, password) => invoke("wallet_import_nep6_json", { json, name, password }),
    /** A WIF private key typed by the user, on its way to the core (never sent back). */
    importWif: (wif, password) => invoke("wallet_import_wif", { wif, password }),
    /** A new key encrypted with the wallet's password (which goes in, never out). */
    addAccount: (password, label) => invoke("wallet_add_account", { password, label }),
    setDefault: (address) => invoke("wallet_set_default", { address }),
    receive: (address, amount) => invoke("wallet_receive", { address, amount }),
};
function channel(onmessage) {
    const c = new window.__TAURI__.core.Channel();
    c.onmessage = onmessage;
    return c;
}
export const chain = {
    status: () => invoke("chain_status"),
    balances: () => invoke("chain_balances"),
    history: () => invoke("chain_history"),
    providers: () => invoke("chain_providers"),
    registration: () => invoke("chain_registration"),
    register: (provider, onStep) => invoke("chain_register", { provider, progress: channel(onStep) }),
    unregister: (onStep) => invoke("chain_unregister", { progress: channel(onStep) }),
    sendPrepare: (to, amount) => invoke("chain_send_prepare", { to, amount }),
    sendConfirm: (id, onStep) => invoke("chain_send_confirm", { id, progress: channel(onStep) }),
    sendCancel: () => invoke("chain_send_cancel"),
};
export const phone = {
    start: (onEvent) => invoke("phone_start", { events: channel(onEvent) }),
    send: (command) => invoke("phone_send", { command }),
    stop: () => invoke("phone_stop"),
};
export const settings = {
    get: () => invoke("settings_get"),
    save: (s) => invoke("settings_save", { settings: s }),
    audioDevices: () => invoke("audio_devices"),
};
export const book = {
    history: (limit) => invoke("calls_history", { limit }),
    contacts: () => invoke("contacts_list"),
    save: (contact) => invoke("contacts_save", { contact }),
    remove: (id) => invoke("contacts_delete", { id }),
};
