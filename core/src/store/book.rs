//! The call log and the contacts, in the message database (schema version 2).
//!
//! The call log has one row per call, written when it ends ([`MessageStore::record_call`]); it
//! keeps the newest [`CALL_LOG_KEEP`] calls. Contacts are a name and a destination (a NEO
//! address, a number or a `sip:` URI), one contact per destination.

use std::fmt;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Direction, MessageStore, StoreError};
use crate::dialplan::{self, Kind};

/// How many calls the call log keeps; older ones are deleted as new ones are recorded.
pub const CALL_LOG_KEEP: usize = 1000;
/// The longest contact name accepted, in characters.
pub const NAME_MAX_CHARS: usize = 64;
/// The longest contact destination accepted, in characters.
pub const DESTINATION_MAX_CHARS: usize = 256;
/// Remote parties and reasons longer than this are cut when a call is logged (they come from
/// the network; a call is logged anyway).
const LOGGED_TEXT_MAX_CHARS: usize = 512;

/// A call as the phone reports it when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    /// The account id the call used.
    pub account: String,
    /// We called ([`Direction::Out`]) or were called ([`Direction::In`]).
    pub direction: Direction,
    /// The other party: what was dialled (normalised) or the caller as shown.
    pub remote: String,
    /// When the call started (dialled or rang here), ms since the Unix epoch.
    pub started_ms: i64,
    /// When it was answered, if it was.
    pub answered_ms: Option<i64>,
    /// When it ended.
    pub ended_ms: i64,
    /// How it ended (`local_hangup`, `remote_hangup`, `busy`, `declined`, `timeout`, …).
    pub end_reason: String,
    /// The codec, if media was negotiated.
    pub codec: Option<String>,
    /// The final MOS estimate, if media ran.
    pub mos: Option<f32>,
}

/// A call in the call log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The row id.
    pub id: i64,
    /// The account id the call used.
    pub account: String,
    /// In or out.
    pub direction: Direction,
    /// The other party.
    pub remote: String,
    /// When the call started, ms since the Unix epoch.
    pub started_ms: i64,
    /// When it was answered (none: never answered).
    pub answered_ms: Option<i64>,
    /// When it ended.
    pub ended_ms: i64,
    /// How it ended.
    pub end_reason: String,
    /// The codec, if media was negotiated.
    pub codec: Option<String>,
    /// The final MOS estimate, if media ran.
    pub mos: Option<f32>,
}

impl CallRecord {
    /// How long the call was answered, in ms (0 if it never was).
    pub fn talk_ms(&self) -> i64 {
        self.answered_ms
            .map(|a| (self.ended_ms - a).max(0))
            .unwrap_or(0)
    }
}

/// The row id of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactId(pub i64);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A contact: a name for a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The row id.
    pub id: ContactId,
    /// The name, trimmed.
    pub name: String,
    /// The destination, normalised as the dialler does ([`dialplan::normalize`]).
    pub destination: String,
}

/// Cuts `s` to at most `max` characters.
fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Checks a contact's name and destination; gives them trimmed and normalised.
fn validate_contact(name: &str, destination: &str) -> Result<(String, String), StoreError> {
    let bad = |m: String| Err(StoreError::InvalidContact(m));
    let name = name.trim();
    if name.is_empty() {
        return bad("the contact has no name: type one".into());
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return bad(format!(
            "the contact's name is too long: use at most {NAME_MAX_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return bad("the contact's name holds control characters: type it again".into());
    }
    let destination = dialplan::normalize(destination);
    if destination.is_empty() {
        return bad(
            "the contact has no destination: type a NEO address, a number or a sip: URI".into(),
        );
    }
    if destination.chars().count() > DESTINATION_MAX_CHARS {
        return bad(format!(
            "the destination is too long: use at most {DESTINATION_MAX_CHARS} characters"
        ));
    }
    if destination
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return bad(format!(
            "\"{destination}\" is not a destination: type a NEO address, a number or a sip: URI, without spaces"
        ));
    }
    match dialplan::kind(&destination) {
        Kind::SipUri => {
            let rest = destination.split_once(':').map_or("", |(_, r)| r);
            if rest.is_empty() {
                return bad(format!(
                    "\"{destination}\" is an empty SIP URI: add the user and host, e.g. sip:bob@example.org"
                ));
            }
        }
        Kind::NeoAddress => {}
        Kind::Number => {
            // Looks like a NEO address (N + 33 base58 characters) but is not one: a typo.
            let base58 = |c: char| c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l');
            if destination.len() == 34
                && destination.starts_with('N')
                && destination.chars().all(base58)
            {
                return bad(format!(
                    "{destination} is not a valid NEO address (its checksum does not match): check it for a typo"
                ));
            }
        }
    }
    Ok((name.to_owned(), destination))
}

impl MessageStore {
    /// Records an ended call and deletes the oldest ones beyond [`CALL_LOG_KEEP`].
    pub fn record_call(&self, call: &NewCall) -> Result<i64, StoreError> {
        self.record_call_keeping(call, CALL_LOG_KEEP)
    }

    fn record_call_keeping(&self, call: &NewCall, keep: usize) -> Result<i64, StoreError> {
        let direction = match call.direction {
            Direction::In => "in",
            Direction::Out => "out",
        };
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO calls (account, direction, remote, started_ms, answered_ms, ended_ms,
                                    end_reason, codec, mos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    cut(&call.account, LOGGED_TEXT_MAX_CHARS),
                    direction,
                    cut(&call.remote, LOGGED_TEXT_MAX_CHARS),
                    call.started_ms,
                    call.answered_ms,
                    call.ended_ms,
                    cut(&call.end_reason, LOGGED_TEXT_MAX_CHARS),
                    call.codec.as_deref().map(|s| cut(s, LOGGED_TEXT_MAX_CHARS)),
                    call.mos.filter(|m| m.is_finite()).map(f64::from),
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM calls WHERE id NOT IN
                    (SELECT id FROM calls ORDER BY id DESC LIMIT ?1)",
                [keep],
            )?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// The newest `limit` calls, newest first.
    pub fn calls(&self, limit: usize) -> Result<Vec<CallRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.run(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, account, direction, remote, started_ms, answered_ms, ended_ms,
                        end_reason, codec, mos
                 FROM calls ORDER BY id DESC LIMIT ?1",
            )?;
            st.query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<f64>>(9)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter()
            .map(
                |(
                    id,
                    account,
                    dir,
                    remote,
                    started_ms,
                    answered_ms,
                    ended_ms,
                    end_reason,
                    codec,
                    mos,
                )| {
                    let direction = match dir.as_str() {
                        "in" => Direction::In,
                        "out" => Direction::Out,
                        _ => {
                            return Err(StoreError::BadCallRow {
                                id,
                                what: "direction",
                            });
                        }
                    };
                    Ok(CallRecord {
                        id,
                        account,
                        direction,
                        remote,
                        started_ms,
                        answered_ms,
                        ended_ms,
                        end_reason,
                        codec,
                        mos: mos.map(|m| m as f32),
                    })
                },
            )
            .collect()
    }

    /// Every contact, by name (case-insensitive), then id.
    pub fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        self.run(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, name, destination FROM contacts ORDER BY name COLLATE NOCASE, id",
            )?;
            st.query_map([], |r| {
                Ok(Contact {
                    id: ContactId(r.get(0)?),
                    name: r.get(1)?,
                    destination: r.get(2)?,
                })
            })?
            .collect()
        })
    }

    /// One contact by id.
    pub fn contact(&self, id: ContactId) -> Result<Contact, StoreError> {
        self.run(|c| {
            c.query_row(
                "SELECT id, name, destination FROM contacts WHERE id = ?1",
                [id.0],
                |r| {
                    Ok(Contact {
                        id: ContactId(r.get(0)?),
                        name: r.get(1)?,
                        destination: r.get(2)?,
                    })
                },
            )
            .optional()
        })?
        .ok_or(StoreError::ContactNotFound(id))
    }

    /// Adds a contact (name trimmed, destination normalised and checked); a destination that
    /// another contact has is refused with [`StoreError::DuplicateContact`].
    pub fn add_contact(&self, name: &str, destination: &str) -> Result<Contact, StoreError> {
        let (name, destination) = validate_contact(name, destination)?;
        self.refuse_duplicate(&destination, None)?;
        let id = self
            .run(|c| {
                c.execute(
                    "INSERT INTO contacts (name, destination) VALUES (?1, ?2)",
                    params![name, destination],
                )?;
                Ok(ContactId(c.last_insert_rowid()))
            })
            .map_err(|e| self.duplicate_or(e, &destination))?;
        Ok(Contact {
            id,
            name,
            destination,
        })
    }

    /// Changes a contact's name and destination (checked as for [`Self::add_contact`]).
    pub fn update_contact(
        &self,
        id: ContactId,
        name: &str,
        destination: &str,
    ) -> Result<Contact, StoreError> {
        let (name, destination) = validate_contact(name, destination)?;
        self.refuse_duplicate(&destination, Some(id))?;
        let changed = self
            .run(|c| {
                c.execute(
                    "UPDATE contacts SET name = ?2, destination = ?3 WHERE id = ?1",
                    params![id.0, name, destination],
                )
            })
            .map_err(|e| self.duplicate_or(e, &destination))?;
        if changed == 0 {
            return Err(StoreError::ContactNotFound(id));
        }
        Ok(Contact {
            id,
            name,
            destination,
        })
    }

    /// Deletes a contact.
    pub fn delete_contact(&self, id: ContactId) -> Result<(), StoreError> {
        let n = self.run(|c| c.execute("DELETE FROM contacts WHERE id = ?1", [id.0]))?;
        if n == 0 {
            return Err(StoreError::ContactNotFound(id));
        }
        Ok(())
    }

    /// [`StoreError::DuplicateContact`] when a contact other than `except` has `destination`.
    fn refuse_duplicate(
        &self,
        destination: &str,
        except: Option<ContactId>,
    ) -> Result<(), StoreError> {
        let other = self.run(|c| {
            c.query_row(
                "SELECT name FROM contacts WHERE destination = ?1 AND (?2 IS NULL OR id != ?2)",
                params![destination, except.map(|i| i.0)],
                |r| r.get::<_, String>(0),
            )
            .optional()
        })?;
        match other {
            Some(name) => Err(StoreError::DuplicateContact {
                destination: destination.to_owned(),
                name,
            }),
            None => Ok(()),
        }
    }

    /// A UNIQUE violation (another process added the destination meanwhile) as a duplicate.
    fn duplicate_or(&self, e: StoreError, destination: &str) -> StoreError {
        let unique = matches!(&e, StoreError::Sqlite(s)
            if s.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation));
        if unique {
            return self.refuse_duplicate(destination, None).err().unwrap_or(e);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::MIGRATIONS;
    use super::*;

    fn call(remote: &str, ended_ms: i64) -> NewCall {
        NewCall {
            account: "krypton".into(),
            direction: Direction::Out,
            remote: remote.into(),
            started_ms: ended_ms - 5_000,
            answered_ms: Some(ended_ms - 4_000),
            ended_ms,
            end_reason: "local_hangup".into(),
            codec: Some("opus".into()),
            mos: Some(4.3),
        }
    }

    fn bob() -> String {
        let key = krypton_wallet::PrivateKey::generate();
        key.public_key().address().to_string()
    }

    #[test]
    fn the_call_log_is_newest_first_and_bounded() {
        let s = MessageStore::open_in_memory().unwrap();
        for i in 0..5 {
            s.record_call_keeping(&call(&format!("r{i}"), 10_000 + i), 3)
                .unwrap();
        }
        let remotes: Vec<String> = s.calls(10).unwrap().into_iter().map(|c| c.remote).collect();
        assert_eq!(remotes, ["r4", "r3", "r2"]);
        assert_eq!(s.calls(1).unwrap().len(), 1);
        assert!(s.calls(0).unwrap().is_empty());
        let c = &s.calls(1).unwrap()[0];
        assert_eq!(c.direction, Direction::Out);
        assert_eq!((c.talk_ms(), c.codec.as_deref()), (4_000, Some("opus")));
        assert!((c.mos.unwrap() - 4.3).abs() < 1e-5);
    }

    #[test]
    fn the_call_log_keeps_the_newest_thousand() {
        let s = MessageStore::open_in_memory().unwrap();
        for i in 0..(CALL_LOG_KEEP as i64 + 5) {
            s.record_call(&call(&format!("r{i}"), i)).unwrap();
        }
        let all = s.calls(usize::MAX).unwrap();
        assert_eq!(all.len(), CALL_LOG_KEEP);
        assert_eq!(all[0].remote, format!("r{}", CALL_LOG_KEEP + 4));
        assert_eq!(all.last().unwrap().remote, "r5");
    }

    #[test]
    fn unanswered_and_media_less_calls_are_logged_as_such() {
        let s = MessageStore::open_in_memory().unwrap();
        let long = "x".repeat(10_000);
        s.record_call(&NewCall {
            direction: Direction::In,
            answered_ms: None,
            codec: None,
            mos: Some(f32::NAN),
            end_reason: "declined".into(),
            ..call(&long, 9)
        })
        .unwrap();
        let c = &s.calls(5).unwrap()[0];
        assert_eq!(
            (c.direction, c.answered_ms, c.talk_ms()),
            (Direction::In, None, 0)
        );
        assert_eq!((c.codec.clone(), c.mos), (None, None));
        assert_eq!(c.remote.len(), LOGGED_TEXT_MAX_CHARS);
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(v["direction"], "in");
        assert_eq!(v["answered_ms"], serde_json::Value::Null);
        assert_eq!(v["end_reason"], "declined");
    }

    #[test]
    fn a_bad_call_row_is_an_error_not_a_panic() {
        let s = MessageStore::open_in_memory().unwrap();
        let id = s.record_call(&call("r", 1)).unwrap();
        s.conn
            .execute_batch("PRAGMA ignore_check_constraints = ON")
            .unwrap();
        s.conn
            .execute(
                "UPDATE calls SET direction = 'sideways' WHERE id = ?1",
                [id],
            )
            .unwrap();
        assert!(matches!(
            s.calls(5),
            Err(StoreError::BadCallRow {
                what: "direction",
                ..
            })
        ));
    }

    #[test]
    fn contacts_add_update_delete_list() {
        let s = MessageStore::open_in_memory().unwrap();
        let bob = bob();
        let b = s.add_contact("  Bob ", &bob).unwrap();
        assert_eq!(
            (b.name.as_str(), b.destination.as_str()),
            ("Bob", bob.as_str())
        );
        let a = s.add_contact("alice", "+31 (0)20 123-4567").unwrap();
        assert_eq!(a.destination, "+31201234567");
        let c = s.add_contact("Carol", "sip:carol@example.org").unwrap();
        let names: Vec<String> = s.contacts().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["alice", "Bob", "Carol"]);

        let a2 = s.update_contact(a.id, "Alice", "0612345678").unwrap();
        assert_eq!(s.contact(a.id).unwrap(), a2);
        // Saving a contact with its own destination is not a duplicate.
        s.update_contact(c.id, "Carol W.", "sip:carol@example.org")
            .unwrap();

        s.delete_contact(b.id).unwrap();
        assert_eq!(s.contacts().unwrap().len(), 2);
        assert!(
            matches!(s.delete_contact(b.id), Err(StoreError::ContactNotFound(id)) if id == b.id)
        );
        assert!(matches!(
            s.update_contact(b.id, "Bob", &bob),
            Err(StoreError::ContactNotFound(_))
        ));
        assert!(matches!(
            s.contact(b.id),
            Err(StoreError::ContactNotFound(_))
        ));
        assert_eq!(
            serde_json::to_value(s.contact(a.id).unwrap()).unwrap(),
            serde_json::json!({ "id": a.id.0, "name": "Alice", "destination": "0612345678" })
        );
    }

    #[test]
    fn one_contact_per_destination() {
        let s = MessageStore::open_in_memory().unwrap();
        let bob = bob();
        s.add_contact("Bob", &bob).unwrap();
        let err = s.add_contact("Robert", &format!(" {bob} ")).unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateContact { name, .. } if name == "Bob"),
            "{err:?}"
        );
        assert!(err.to_string().contains("edit that contact"), "{err}");
        let other = s.add_contact("Other", "123").unwrap();
        assert!(matches!(
            s.update_contact(other.id, "Other", &bob),
            Err(StoreError::DuplicateContact { .. })
        ));
        assert_eq!(s.contacts().unwrap().len(), 2);
    }

    #[test]
    fn malformed_contacts_are_refused_with_what_to_do() {
        let s = MessageStore::open_in_memory().unwrap();
        let bob = bob();
        let mut typo = bob.clone();
        let last = if typo.ends_with('a') { "b" } else { "a" };
        typo.replace_range(33.., last);
        let cases: Vec<(String, String, &str)> = vec![
            ("".into(), bob.clone(), "no name"),
            ("   ".into(), bob.clone(), "no name"),
            ("x".repeat(NAME_MAX_CHARS + 1), bob.clone(), "too long"),
            ("Bob\u{7}".into(), bob.clone(), "control characters"),
            ("Bob".into(), "  ".into(), "no destination"),
            (
                "Bob".into(),
                "9".repeat(DESTINATION_MAX_CHARS + 1),
                "too long",
            ),
            ("Bob".into(), "bob smith".into(), "without spaces"),
            ("Bob".into(), "sip:<bob>".into(), "without spaces"),
            ("Bob".into(), "sip:".into(), "empty SIP URI"),
            ("Bob".into(), typo, "checksum"),
        ];
        for (name, dest, want) in cases {
            let err = s.add_contact(&name, &dest).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidContact(_)),
                "{name:?} {dest:?}: {err:?}"
            );
            assert!(err.to_string().contains(want), "{name:?} {dest:?}: {err}");
        }
        // Exactly at the limits is fine.
        s.add_contact(
            &"é".repeat(NAME_MAX_CHARS),
            &"1".repeat(DESTINATION_MAX_CHARS),
        )
        .unwrap();
        assert_eq!(s.contacts().unwrap().len(), 1);
    }

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.sqlite");
        {
            // The schema as KRYPTON wrote it before the call log existed.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute(
                "INSERT INTO messages (direction, account, peer, body, status, created_ms, updated_ms)
                 VALUES ('out', 'a', 'bob', 'kept', 'pending', 1, 1)",
                [],
            )
            .unwrap();
        }
        let s = MessageStore::open(&path).unwrap();
        let version: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
        assert_eq!(s.outbox(None).unwrap()[0].body, "kept");
        s.record_call(&call("bob", 5)).unwrap();
        s.add_contact("Bob", &bob()).unwrap();
        drop(s);
        // Reopening a current database runs no migration again and keeps everything.
        let s = MessageStore::open(&path).unwrap();
        assert_eq!(s.calls(10).unwrap().len(), 1);
        assert_eq!(s.contacts().unwrap().len(), 1);
        assert_eq!(s.outbox(None).unwrap().len(), 1);
    }
}
