//! Message history and outbox, call log and contacts, in SQLite.
//!
//! Outgoing pager-mode messages (RFC 3428 MESSAGE) are queued with [`MessageStore::enqueue`] and
//! stay in the outbox until [`MessageStore::mark_delivered`] or [`MessageStore::mark_failed`], so
//! a message typed while offline, or while the phone is restarted, is still sent. Incoming
//! messages are recorded with a de-duplication key, so a retransmitted MESSAGE is stored once.
//!
//! The store is synchronous (rusqlite) and is neither `Sync` nor async: async callers run it on
//! a dedicated thread or wrap it in a `Mutex` and call it from `tokio::task::spawn_blocking`.
//! Nothing here reads a clock; callers pass `now_ms` (milliseconds since the Unix epoch).
//!
//! The call log and the contacts live in the same database (see [`CallRecord`] and [`Contact`]).
//!
//! The database uses WAL mode and a `PRAGMA user_version` schema version (currently 2). Opening
//! a database written by a newer KRYPTON, or a damaged file, gives a [`StoreError`] that tells the
//! user what to do; it never panics.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::Serialize;

mod book;

pub use book::{
    CALL_LOG_KEEP, CallRecord, Contact, ContactId, DESTINATION_MAX_CHARS, NAME_MAX_CHARS, NewCall,
};

/// The row id of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Whether we sent or received a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received from the peer.
    In,
    /// Sent (or to be sent) to the peer.
    Out,
}

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// Outgoing, in the outbox: not yet accepted by the server.
    Pending,
    /// Outgoing, accepted with a 2xx: 200 means delivered, 202 accepted for later delivery.
    Delivered {
        /// The final SIP status code.
        code: u16,
    },
    /// Outgoing, failed for good (e.g. 404); it left the outbox.
    Failed {
        /// The final SIP status code (0 when there was none, e.g. no route).
        code: u16,
        /// A reason for the user (reason phrase or our own explanation).
        reason: String,
    },
    /// Incoming.
    Received,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    /// The row id.
    pub id: MessageId,
    /// In or out.
    pub direction: Direction,
    /// The account id it was sent or received on.
    pub account: String,
    /// The other party (URI or NEO address, as the caller normalised it).
    pub peer: String,
    /// The text.
    pub body: String,
    /// Where it stands.
    pub status: Status,
    /// When it was queued or received (ms since the Unix epoch).
    pub created_ms: i64,
    /// When it last changed (attempt, delivery, failure).
    pub updated_ms: i64,
    /// How many send attempts were made (0 for incoming messages).
    pub attempts: u32,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the message database {}: {source}; check that the directory exists and is writable", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file is damaged or not a SQLite database.
    #[error("the message database {} is damaged or is not a KRYPTON message database ({source}); quit KRYPTON, move the file aside (e.g. rename it to {}.broken) and start again to begin with an empty message history", path.display(), path.display())]
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// The SQLite error, or the integrity check's first finding.
        source: rusqlite::Error,
    },
    /// Another process holds the database.
    #[error("the message database {} is locked by another process; is KRYPTON already running?", path.display())]
    Locked {
        /// The database path.
        path: PathBuf,
    },
    /// The file was written by a newer KRYPTON with a schema we do not know.
    #[error("the message database {} has schema version {found}, but this KRYPTON only knows up to {supported}; update KRYPTON, or move the file aside to start an empty history", path.display())]
    TooNew {
        /// The database path.
        path: PathBuf,
        /// The file's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// No message has this id.
    #[error("no message {0}")]
    NotFound(MessageId),
    /// The message is not an outgoing message in the outbox.
    #[error("message {0} is not waiting in the outbox")]
    NotPending(MessageId),
    /// A stored row holds a value this version cannot interpret.
    #[error("message {id} holds an invalid {what}")]
    BadRow {
        /// The row id.
        id: MessageId,
        /// Which column.
        what: &'static str,
    },
    /// A call-log row holds a value this version cannot interpret.
    #[error("call {id} in the call log holds an invalid {what}")]
    BadCallRow {
        /// The row id.
        id: i64,
        /// Which column.
        what: &'static str,
    },
    /// A contact's name or destination is not acceptable; the text says what to change.
    #[error("{0}")]
    InvalidContact(String),
    /// Another contact has this destination already.
    #[error("{destination} is already saved as the contact \"{name}\"; edit that contact instead")]
    DuplicateContact {
        /// The destination, normalised.
        destination: String,
        /// The existing contact's name.
        name: String,
    },
    /// No contact has this id.
    #[error("no contact {0}; it may have been deleted — reload the contacts")]
    ContactNotFound(ContactId),
    /// Any other SQLite error.
    #[error("message database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The schema migrations; `user_version` = how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: one table for both directions; simple, no foreign keys.
    "CREATE TABLE messages (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        direction   TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
        account     TEXT    NOT NULL,
        peer        TEXT    NOT NULL,
        body        TEXT    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'received')),
        status_code INTEGER,
        reason      TEXT,
        created_ms  INTEGER NOT NULL,
        updated_ms  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        dedupe_key  TEXT
    );
    CREATE INDEX messages_peer ON messages (peer, created_ms);
    CREATE INDEX messages_status ON messages (status, created_ms);
    CREATE UNIQUE INDEX messages_dedupe ON messages (account, dedupe_key)
        WHERE dedupe_key IS NOT NULL;",
    // 2: the call log (one row per ended call, bounded) and the contacts.
    "CREATE TABLE calls (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        account     TEXT    NOT NULL,
        direction   TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
        remote      TEXT    NOT NULL,
        started_ms  INTEGER NOT NULL,
        answered_ms INTEGER,
        ended_ms    INTEGER NOT NULL,
        end_reason  TEXT    NOT NULL,
        codec       TEXT,
        mos         REAL
    );
    CREATE TABLE contacts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT    NOT NULL,
        destination TEXT    NOT NULL UNIQUE
    );",
];

const COLUMNS: &str = "id, direction, account, peer, body, status, status_code, reason, created_ms, updated_ms, attempts";

/// The message history and outbox. See the module docs for threading.
#[derive(Debug)]
pub struct MessageStore {
    conn: Connection,
    /// For error messages; `:memory:` for in-memory stores.
    path: PathBuf,
}

impl MessageStore {
    /// Opens (or creates) the database file, migrates it to the current schema and checks it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path.to_owned())
    }

    /// A store that lives in memory only (tests, or when no data dir is writable).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, StoreError> {
        let mut store = MessageStore { conn, path };
        store.setup().map_err(|e| store.classify(e))?;
        Ok(store)
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        self.conn.busy_timeout(Duration::from_secs(5))?;
        // The first real read: a non-database file fails here with "file is not a database".
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported,
            });
        }
        let _mode: String =
            self.conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let check: String = self
            .conn
            .pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(check),
                ),
            });
        }
        let start = usize::try_from(version).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "message database migrated");
        }
        Ok(())
    }

    /// Turns SQLite's corruption and locking errors into ones that name the file.
    fn classify(&self, e: StoreError) -> StoreError {
        let StoreError::Sqlite(source) = e else {
            return e;
        };
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                path: self.path.clone(),
                source,
            },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: self.path.clone(),
            },
            _ => StoreError::Sqlite(source),
        }
    }

    fn run<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        f(&self.conn).map_err(|e| self.classify(StoreError::Sqlite(e)))
    }

    /// Queues an outgoing message; it stays in the outbox until `mark_delivered` or
    /// `mark_failed`.
    pub fn enqueue(
        &self,
        account: &str,
        peer: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<MessageId, StoreError> {
        self.run(|c| {
            c.execute(
                "INSERT INTO messages (direction, account, peer, body, status, created_ms, updated_ms)
                 VALUES ('out', ?1, ?2, ?3, 'pending', ?4, ?4)",
                params![account, peer, body, now_ms],
            )?;
            Ok(MessageId(c.last_insert_rowid()))
        })
    }

    /// The pending outgoing messages, oldest first, of one account or of all.
    pub fn outbox(&self, account: Option<&str>) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = self.run(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages
                 WHERE direction = 'out' AND status = 'pending' AND (?1 IS NULL OR account = ?1)
                 ORDER BY created_ms, id"
            ))?;
            st.query_map(params![account], RawRow::read)?
                .collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter().map(RawRow::into_message).collect()
    }

    /// Records a send attempt: increments `attempts` and sets `updated_ms`.
    pub fn mark_attempt(&self, id: MessageId, now_ms: i64) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "UPDATE messages SET attempts = attempts + 1, updated_ms = ?2
             WHERE id = ?1 AND direction = 'out' AND status = 'pending'",
            params![id.0, now_ms],
        )
    }

    /// The server accepted the message with a 2xx `status_code`; it leaves the outbox.
    pub fn mark_delivered(
        &self,
        id: MessageId,
        status_code: u16,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "UPDATE messages SET status = 'delivered', status_code = ?2, updated_ms = ?3
             WHERE id = ?1 AND direction = 'out' AND status = 'pending'",
            params![id.0, status_code, now_ms],
        )
    }

    /// The message failed for good (e.g. 404, or every route failed); it leaves the outbox.
    pub fn mark_failed(
        &self,
        id: MessageId,
        status_code: u16,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "UPDATE messages SET status = 'failed', status_code = ?2, reason = ?3, updated_ms = ?4
             WHERE id = ?1 AND direction = 'out' AND status = 'pending'",
            params![id.0, status_code, reason, now_ms],
        )
    }

    fn update_pending(
        &self,
        id: MessageId,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<(), StoreError> {
        let changed = self.run(|c| c.execute(sql, params))?;
        if changed == 1 {
            return Ok(());
        }
        let exists = self.run(|c| {
            c.query_row("SELECT 1 FROM messages WHERE id = ?1", [id.0], |_| Ok(()))
                .optional()
        })?;
        Err(match exists {
            Some(()) => StoreError::NotPending(id),
            None => StoreError::NotFound(id),
        })
    }

    /// Records an incoming message. `dedupe_key` identifies the SIP request (e.g. Call-ID and
    /// CSeq): a retransmission with the same key on the same account is not stored again and
    /// gives `None`. An empty key disables de-duplication for this message.
    pub fn record_incoming(
        &self,
        account: &str,
        peer: &str,
        body: &str,
        now_ms: i64,
        dedupe_key: &str,
    ) -> Result<Option<MessageId>, StoreError> {
        let key = (!dedupe_key.is_empty()).then_some(dedupe_key);
        self.run(|c| {
            let n = c.execute(
                "INSERT INTO messages
                    (direction, account, peer, body, status, created_ms, updated_ms, dedupe_key)
                 VALUES ('in', ?1, ?2, ?3, 'received', ?4, ?4, ?5)
                 ON CONFLICT (account, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
                params![account, peer, body, now_ms, key],
            )?;
            Ok((n == 1).then(|| MessageId(c.last_insert_rowid())))
        })
    }

    /// The latest `limit` messages (both directions) with one peer, or with everyone, returned
    /// oldest first so a conversation view can show them as they are.
    pub fn history(
        &self,
        peer: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.run(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE (?1 IS NULL OR peer = ?1)
                 ORDER BY created_ms DESC, id DESC LIMIT ?2"
            ))?;
            st.query_map(params![peer, limit], RawRow::read)?
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut out = rows
            .into_iter()
            .map(RawRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// One message by id.
    pub fn get(&self, id: MessageId) -> Result<StoredMessage, StoreError> {
        let row = self.run(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
                [id.0],
                RawRow::read,
            )
            .optional()
        })?;
        row.ok_or(StoreError::NotFound(id))?.into_message()
    }
}

/// A row as SQLite has it, before checking the values.
struct RawRow {
    id: i64,
    direction: String,
    account: String,
    peer: String,
    body: String,
    status: String,
    status_code: Option<i64>,
    reason: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    attempts: i64,
}

impl RawRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawRow {
            id: r.get(0)?,
            direction: r.get(1)?,
            account: r.get(2)?,
            peer: r.get(3)?,
            body: r.get(4)?,
            status: r.get(5)?,
            status_code: r.get(6)?,
            reason: r.get(7)?,
            created_ms: r.get(8)?,
            updated_ms: r.get(9)?,
            attempts: r.get(10)?,
        })
    }

    fn into_message(self) -> Result<StoredMessage, StoreError> {
        let id = MessageId(self.id);
        let bad = |what| StoreError::BadRow { id, what };
        let code = || {
            self.status_code
                .and_then(|c| u16::try_from(c).ok())
                .ok_or(bad("status code"))
        };
        let status = match self.status.as_str() {
            "pending" => Status::Pending,
            "delivered" => Status::Delivered { code: code()? },
            "failed" => Status::Failed {
                code: code()?,
                reason: self.reason.clone().unwrap_or_default(),
            },
            "received" => Status::Received,
            _ => return Err(bad("status")),
        };
        let direction = match self.direction.as_str() {
            "in" => Direction::In,
            "out" => Direction::Out,
            _ => return Err(bad("direction")),
        };
        Ok(StoredMessage {
            id,
            direction,
            account: self.account,
            peer: self.peer,
            body: self.body,
            status,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            attempts: u32::try_from(self.attempts).map_err(|_| bad("attempt count"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(v: &[StoredMessage]) -> Vec<&str> {
        v.iter().map(|m| m.body.as_str()).collect()
    }

    #[test]
    fn outbox_lifecycle() {
        let s = MessageStore::open_in_memory().unwrap();
        let a = s.enqueue("acct1", "sip:bob@x", "first", 1_000).unwrap();
        let b = s.enqueue("acct2", "sip:carol@y", "second", 2_000).unwrap();
        s.enqueue("acct1", "sip:bob@x", "third", 3_000).unwrap();
        assert_eq!(
            bodies(&s.outbox(None).unwrap()),
            ["first", "second", "third"]
        );
        assert_eq!(
            bodies(&s.outbox(Some("acct1")).unwrap()),
            ["first", "third"]
        );
        assert!(s.outbox(Some("nobody")).unwrap().is_empty());

        s.mark_attempt(a, 1_500).unwrap();
        s.mark_attempt(a, 1_600).unwrap();
        let m = s.get(a).unwrap();
        assert_eq!((m.attempts, m.updated_ms, m.created_ms), (2, 1_600, 1_000));
        assert_eq!(m.status, Status::Pending);
        assert_eq!(m.direction, Direction::Out);

        s.mark_delivered(a, 202, 1_700).unwrap();
        s.mark_failed(b, 404, "Not Found", 2_500).unwrap();
        assert_eq!(bodies(&s.outbox(None).unwrap()), ["third"]);
        assert_eq!(s.get(a).unwrap().status, Status::Delivered { code: 202 });
        assert_eq!(
            s.get(b).unwrap().status,
            Status::Failed {
                code: 404,
                reason: "Not Found".into()
            }
        );
        // Finished messages cannot be marked again; unknown ids are reported as such.
        assert!(matches!(s.mark_delivered(a, 200, 9), Err(StoreError::NotPending(id)) if id == a));
        assert!(matches!(
            s.mark_attempt(b, 9),
            Err(StoreError::NotPending(_))
        ));
        assert!(matches!(
            s.mark_failed(MessageId(999), 500, "x", 9),
            Err(StoreError::NotFound(MessageId(999)))
        ));
        assert_eq!(s.get(a).unwrap().updated_ms, 1_700);
    }

    #[test]
    fn incoming_is_deduplicated_per_account() {
        let s = MessageStore::open_in_memory().unwrap();
        let id = s
            .record_incoming("acct1", "sip:bob@x", "hi", 10, "call-1;1")
            .unwrap();
        assert!(id.is_some());
        // Retransmission: same key, not stored again.
        assert_eq!(
            s.record_incoming("acct1", "sip:bob@x", "hi", 11, "call-1;1")
                .unwrap(),
            None
        );
        // Same key on another account, and a new key: stored.
        assert!(
            s.record_incoming("acct2", "sip:bob@x", "hi", 12, "call-1;1")
                .unwrap()
                .is_some()
        );
        assert!(
            s.record_incoming("acct1", "sip:bob@x", "again", 13, "call-1;2")
                .unwrap()
                .is_some()
        );
        // No key: never de-duplicated.
        assert!(
            s.record_incoming("acct1", "sip:bob@x", "k", 14, "")
                .unwrap()
                .is_some()
        );
        assert!(
            s.record_incoming("acct1", "sip:bob@x", "k", 15, "")
                .unwrap()
                .is_some()
        );
        let h = s.history(Some("sip:bob@x"), 100).unwrap();
        assert_eq!(h.len(), 5);
        let m = s.get(id.unwrap()).unwrap();
        assert_eq!(
            (m.direction, m.status, m.attempts),
            (Direction::In, Status::Received, 0)
        );
        // Incoming messages are never in the outbox and cannot be marked.
        assert!(s.outbox(None).unwrap().is_empty());
        assert!(matches!(
            s.mark_delivered(m.id, 200, 1),
            Err(StoreError::NotPending(_))
        ));
    }

    #[test]
    fn history_is_the_latest_n_oldest_first() {
        let s = MessageStore::open_in_memory().unwrap();
        s.enqueue("a", "bob", "1", 100).unwrap();
        s.record_incoming("a", "bob", "2", 200, "k2").unwrap();
        s.enqueue("a", "carol", "c", 250).unwrap();
        s.enqueue("a", "bob", "3", 300).unwrap();
        // Same timestamp: insertion order decides.
        s.record_incoming("a", "bob", "4", 300, "k4").unwrap();
        assert_eq!(bodies(&s.history(Some("bob"), 3).unwrap()), ["2", "3", "4"]);
        assert_eq!(
            bodies(&s.history(Some("bob"), 100).unwrap()),
            ["1", "2", "3", "4"]
        );
        assert_eq!(bodies(&s.history(None, 2).unwrap()), ["3", "4"]);
        assert_eq!(bodies(&s.history(None, usize::MAX).unwrap()).len(), 5);
        assert!(s.history(Some("bob"), 0).unwrap().is_empty());
        assert!(s.history(Some("dave"), 10).unwrap().is_empty());
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.sqlite");
        let id = {
            let s = MessageStore::open(&path).unwrap();
            let id = s
                .enqueue("acct1", "sip:bob@x", "offline hello", 42)
                .unwrap();
            s.mark_attempt(id, 43).unwrap();
            s.record_incoming("acct1", "sip:bob@x", "in", 44, "key")
                .unwrap();
            id
        };
        let s = MessageStore::open(&path).unwrap();
        let out = s.outbox(None).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].id, out[0].body.as_str(), out[0].attempts),
            (id, "offline hello", 1)
        );
        // The de-duplication key survives too.
        assert_eq!(
            s.record_incoming("acct1", "sip:bob@x", "in", 45, "key")
                .unwrap(),
            None
        );
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.sqlite");
        std::fs::write(
            &path,
            b"this is not a database, it is a text file\n".repeat(200),
        )
        .unwrap();
        let err = MessageStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("move the file aside"), "{msg}");

        // A real database whose pages were damaged after the header.
        let path = dir.path().join("damaged.sqlite");
        {
            let s = MessageStore::open(&path).unwrap();
            for i in 0..500 {
                s.enqueue("a", "bob", &"x".repeat(200), i).unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 8192, "{}", bytes.len());
        for b in &mut bytes[4096..8192] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("damaged.sqlite-wal"));
        let err = MessageStore::open(&path)
            .and_then(|s| s.outbox(None).map(|_| s))
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = MessageStore::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 99,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("update KRYPTON"), "{err}");
    }

    #[test]
    fn an_unopenable_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/messages.sqlite");
        let err = MessageStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }

    #[test]
    fn bad_rows_are_errors_not_panics() {
        let s = MessageStore::open_in_memory().unwrap();
        let id = s.enqueue("a", "bob", "x", 1).unwrap();
        s.conn
            .execute("UPDATE messages SET attempts = -1 WHERE id = ?1", [id.0])
            .unwrap();
        assert!(matches!(
            s.get(id),
            Err(StoreError::BadRow {
                what: "attempt count",
                ..
            })
        ));
        s.conn
            .execute(
                "UPDATE messages SET attempts = 0, status = 'delivered', status_code = 70000 WHERE id = ?1",
                [id.0],
            )
            .unwrap();
        assert!(matches!(s.outbox(None), Ok(v) if v.is_empty()));
        assert!(matches!(
            s.history(None, 5),
            Err(StoreError::BadRow {
                what: "status code",
                ..
            })
        ));
    }

    #[test]
    fn serializes_for_the_ui() {
        let s = MessageStore::open_in_memory().unwrap();
        let id = s.enqueue("a", "bob", "hi \"there\"", 5).unwrap();
        s.mark_failed(id, 404, "Not Found", 6).unwrap();
        let v = serde_json::to_value(s.get(id).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": id.0, "direction": "out", "account": "a", "peer": "bob",
                "body": "hi \"there\"",
                "status": { "state": "failed", "code": 404, "reason": "Not Found" },
                "created_ms": 5, "updated_ms": 6, "attempts": 0
            })
        );
    }
}
