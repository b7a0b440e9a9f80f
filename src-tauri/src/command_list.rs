// The one list of the app's IPC commands, as `module::command` (the module under `commands/`).
//
// It is read three times, so a command cannot be added in one place and forgotten in another:
// build.rs declares each in the app's ACL manifest (permission `allow-<command>`, `_` → `-`),
// lib.rs registers each with `generate_handler!` and exports the names as `COMMANDS`, and the
// tests call every one of them (the secret-leak test) and check `capabilities/main.json` grants
// exactly these. The webview may call a command only if a capability grants it.
app_commands! {
    wallet::wallet_status,
    wallet::wallet_create,
    wallet::wallet_unlock,
    wallet::wallet_lock,
    wallet::wallet_backup,
    wallet::wallet_import_nep6,
    wallet::wallet_import_nep6_json,
    wallet::wallet_import_wif,
    wallet::wallet_receive,
    wallet::wallet_add_account,
    wallet::wallet_set_default,
    chain::chain_status,
    chain::chain_balances,
    chain::chain_history,
    chain::chain_providers,
    chain::chain_registration,
    chain::chain_register,
    chain::chain_unregister,
    chain::chain_send_prepare,
    chain::chain_send_confirm,
    chain::chain_send_cancel,
    phone::phone_start,
    phone::phone_send,
    phone::phone_stop,
    book::calls_history,
    book::contacts_list,
    book::contacts_save,
    book::contacts_delete,
    settings::settings_get,
    settings::settings_save,
    settings::audio_devices,
}
