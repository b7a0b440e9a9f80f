//! Call history and contacts: the phone's call log and the contacts, from the same SQLite
//! database as the phone's messages (`<data dir>/phone/messages.sqlite`, krypton-core's
//! [`MessageStore`]).
//!
//! Each command opens the database on a blocking thread, so they work whether or not the phone
//! runs (SQLite's WAL lets both use it at once) and while the wallet is locked: nothing here is
//! secret.

use krypton_core::store::{CallRecord, Contact, ContactId, MessageStore};
use serde::Deserialize;
use tauri::State;

use super::blocking;
use super::wallet::WalletState;

/// The most calls `calls_history` returns.
const HISTORY_MAX: usize = 1000;

/// A contact as the UI saves it: without `id` a new one, with `id` a change to that one.
#[derive(Debug, Clone, Deserialize)]
pub struct ContactInput {
    /// The contact to change; none to add one.
    pub id: Option<i64>,
    /// The name.
    pub name: String,
    /// A NEO address, a number or a `sip:` URI.
    pub destination: String,
}

/// Runs `f` on the phone's database, on a blocking thread.
async fn with_store<T, F>(wallet: &WalletState, f: F) -> Result<T, String>
where
    F: FnOnce(&MessageStore) -> Result<T, krypton_core::store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    let dir = wallet.config().data_dir.join("phone");
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "cannot create {}: {e}; check that the data directory is writable",
                dir.display()
            )
        })?;
        let store = MessageStore::open(&dir.join("messages.sqlite")).map_err(|e| e.to_string())?;
        f(&store).map_err(|e| e.to_string())
    })
    .await
}

/// The newest `limit` calls (at most 1000), newest first.
#[tauri::command]
pub async fn calls_history(
    wallet: State<'_, WalletState>,
    limit: usize,
) -> Result<Vec<CallRecord>, String> {
    let limit = limit.min(HISTORY_MAX);
    with_store(&wallet, move |s| s.calls(limit)).await
}

/// Every contact, by name.
#[tauri::command]
pub async fn contacts_list(wallet: State<'_, WalletState>) -> Result<Vec<Contact>, String> {
    with_store(&wallet, |s| s.contacts()).await
}

/// Adds a contact (no `id`) or changes one; the name and destination are checked by the core,
/// whose errors say what to change.
#[tauri::command]
pub async fn contacts_save(
    wallet: State<'_, WalletState>,
    contact: ContactInput,
) -> Result<Contact, String> {
    with_store(&wallet, move |s| match contact.id {
        None => s.add_contact(&contact.name, &contact.destination),
        Some(id) => s.update_contact(ContactId(id), &contact.name, &contact.destination),
    })
    .await
}

/// Deletes a contact.
#[tauri::command]
pub async fn contacts_delete(wallet: State<'_, WalletState>, id: i64) -> Result<(), String> {
    with_store(&wallet, move |s| s.delete_contact(ContactId(id))).await
}
