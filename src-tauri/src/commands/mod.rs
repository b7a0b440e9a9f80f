//! The IPC commands, one module per domain. Each is a thin wrapper over a library crate; blocking
//! work (keychain, scrypt) runs on a blocking thread so the UI never freezes.

pub mod book;
pub mod chain;
pub mod phone;
pub mod settings;
pub mod wallet;

/// Runs blocking work (keychain calls, scrypt) off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, String>
where
    F: FnOnce() -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}; restart KRYPTON"))?
}
