//! The provider's cache of the KRYPTON contract: deployed providers, registered users, device keys.
//!
//! Sans-IO: built from a storage snapshot ([`Registry::from_storage`]) and kept fresh by applying
//! contract events in chain order ([`Registry::apply`]). Every event sets an absolute value, so
//! replaying events that the snapshot already contains is harmless: that is how the follower closes
//! the gap between the height it read and the snapshot it took.

use std::collections::HashMap;

use krypton_chain::krypton::KryptonEvent;
use krypton_wallet::{PublicKey, ScriptHash};

/// Storage prefixes of `contract/krypton.py`.
pub mod prefix {
    /// `+ provider → location (str)`.
    pub const PROVIDER: u8 = 0x10;
    /// `+ user → provider (UInt160)`.
    pub const USER_PROVIDER: u8 = 0x20;
    /// `+ user → uuid (str)`.
    pub const USER_UUID: u8 = 0x21;
    /// `+ user → device key (33 bytes)`.
    pub const USER_KEY: u8 = 0x22;
}

/// A user as the chain records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The provider the user registered with.
    pub provider: ScriptHash,
    /// The public device id (RFC 5626 `+sip.instance` uuid).
    pub uuid: String,
}

/// What an applied event changed that a running proxy must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The user may no longer register here (unregistered, moved to another provider, or their
    /// device key changed): drop their bindings now instead of waiting for the refresh.
    UserLeft(ScriptHash),
    /// Nothing the proxy must act on.
    None,
}

/// The cache.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: HashMap<ScriptHash, String>,
    users: HashMap<ScriptHash, User>,
    device_keys: HashMap<ScriptHash, PublicKey>,
}

/// One storage entry: full key (prefix + 20 bytes) and value.
pub type StorageEntry<'a> = (&'a [u8], &'a [u8]);

impl Registry {
    /// Builds the cache from `findstorage` entries of the four prefixes. Entries that do not
    /// parse are skipped and counted in the second value (the contract never writes such).
    pub fn from_storage<'a>(entries: impl IntoIterator<Item = StorageEntry<'a>>) -> (Self, usize) {
        let mut r = Registry::default();
        let mut uuids: HashMap<ScriptHash, String> = HashMap::new();
        let mut skipped = 0;
        for (key, value) in entries {
            let (Some(&p), Some(who)) = (
                key.first(),
                key.get(1..).and_then(ScriptHash::from_le_slice),
            ) else {
                skipped += 1;
                continue;
            };
            let ok = match p {
                prefix::PROVIDER => String::from_utf8(value.to_vec())
                    .map(|loc| r.providers.insert(who, loc))
                    .is_ok(),
                prefix::USER_PROVIDER => ScriptHash::from_le_slice(value)
                    .map(|provider| {
                        r.users.insert(
                            who,
                            User {
                                provider,
                                uuid: String::new(),
                            },
                        )
                    })
                    .is_some(),
                prefix::USER_UUID => String::from_utf8(value.to_vec())
                    .map(|u| uuids.insert(who, u))
                    .is_ok(),
                prefix::USER_KEY => PublicKey::from_bytes(value)
                    .map(|k| r.device_keys.insert(who, k))
                    .is_ok(),
                _ => false,
            };
            if !ok {
                skipped += 1;
            }
        }
        for (who, uuid) in uuids {
            if let Some(u) = r.users.get_mut(&who) {
                u.uuid = uuid;
            }
        }
        (r, skipped)
    }

    /// Applies one contract event. `me` is this provider: the returned [`Change`] says whether one
    /// of our users just lost the right to register here.
    pub fn apply(&mut self, event: &KryptonEvent, me: &ScriptHash) -> Change {
        let ours = |r: &Registry, u: &ScriptHash| r.users.get(u).is_some_and(|x| x.provider == *me);
        match event {
            KryptonEvent::ProviderDeployed { provider, location } => {
                self.providers.insert(*provider, location.clone());
                Change::None
            }
            KryptonEvent::ProviderUndeployed { provider } => {
                self.providers.remove(provider);
                Change::None
            }
            KryptonEvent::UserRegistered {
                user,
                provider,
                uuid,
            } => {
                let was_ours = ours(self, user);
                self.users.insert(
                    *user,
                    User {
                        provider: *provider,
                        uuid: uuid.clone(),
                    },
                );
                if was_ours && provider != me {
                    Change::UserLeft(*user)
                } else {
                    Change::None
                }
            }
            KryptonEvent::UserUnregistered { user } => {
                let was_ours = ours(self, user);
                self.users.remove(user);
                if was_ours {
                    Change::UserLeft(*user)
                } else {
                    Change::None
                }
            }
            KryptonEvent::DeviceKeyChanged { user, key } => {
                match key {
                    Some(k) => self.device_keys.insert(*user, *k),
                    None => self.device_keys.remove(user),
                };
                if ours(self, user) {
                    Change::UserLeft(*user)
                } else {
                    Change::None
                }
            }
        }
    }

    /// The user's registration, if any.
    pub fn user(&self, user: &ScriptHash) -> Option<&User> {
        self.users.get(user)
    }

    /// The user's device key, if one is set.
    pub fn device_key(&self, user: &ScriptHash) -> Option<&PublicKey> {
        self.device_keys.get(user)
    }

    /// The provider's location if it is deployed.
    pub fn location(&self, provider: &ScriptHash) -> Option<&str> {
        self.providers.get(provider).map(String::as_str)
    }

    /// Number of deployed providers and registered users.
    pub fn counts(&self) -> (usize, usize) {
        (self.providers.len(), self.users.len())
    }

    /// Users registered with `provider`.
    pub fn users_of<'a>(
        &'a self,
        provider: &'a ScriptHash,
    ) -> impl Iterator<Item = &'a ScriptHash> {
        self.users
            .iter()
            .filter(move |(_, u)| u.provider == *provider)
            .map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> ScriptHash {
        ScriptHash::from_le_slice(&[b; 20]).unwrap()
    }

    fn entry(p: u8, who: &ScriptHash, v: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut k = vec![p];
        k.extend_from_slice(who.as_bytes());
        (k, v.to_vec())
    }

    #[test]
    fn snapshot_reads_every_prefix_and_skips_junk() {
        let key = krypton_wallet::PrivateKey::generate().public_key();
        let raw = [
            entry(prefix::PROVIDER, &h(1), b"127.0.0.1:5070"),
            entry(prefix::USER_PROVIDER, &h(2), h(1).as_bytes()),
            entry(
                prefix::USER_UUID,
                &h(2),
                b"0b0e5f43-5b8c-4a53-9d1e-3c6f1f0a0c11",
            ),
            entry(prefix::USER_KEY, &h(2), &key.to_compressed()),
            entry(prefix::USER_PROVIDER, &h(3), b"short"),
            (vec![0x10, 1, 2], b"x".to_vec()),
            (vec![0x99; 21], b"x".to_vec()),
        ];
        let (r, skipped) = Registry::from_storage(raw.iter().map(|(k, v)| (&k[..], &v[..])));
        assert_eq!(skipped, 3);
        assert_eq!(r.location(&h(1)), Some("127.0.0.1:5070"));
        let u = r.user(&h(2)).unwrap();
        assert_eq!(u.provider, h(1));
        assert_eq!(u.uuid, "0b0e5f43-5b8c-4a53-9d1e-3c6f1f0a0c11");
        assert_eq!(r.device_key(&h(2)), Some(&key));
        assert!(r.user(&h(3)).is_none());
        assert_eq!(r.counts(), (1, 1));
    }

    #[test]
    fn events_keep_the_cache_and_report_who_left() {
        let me = h(1);
        let other = h(9);
        let alice = h(2);
        let mut r = Registry::default();
        let deployed = KryptonEvent::ProviderDeployed {
            provider: me,
            location: "a:1".into(),
        };
        assert_eq!(r.apply(&deployed, &me), Change::None);
        let reg = |p| KryptonEvent::UserRegistered {
            user: alice,
            provider: p,
            uuid: "u".into(),
        };
        assert_eq!(r.apply(&reg(me), &me), Change::None);
        assert_eq!(r.user(&alice).unwrap().provider, me);
        // Replaying an event already in the snapshot changes nothing.
        assert_eq!(r.apply(&reg(me), &me), Change::None);
        assert_eq!(r.users_of(&me).count(), 1);
        // Moving to another provider removes her from us.
        assert_eq!(r.apply(&reg(other), &me), Change::UserLeft(alice));
        assert_eq!(r.users_of(&me).count(), 0);
        // Unregistering from another provider is not our business.
        let unreg = KryptonEvent::UserUnregistered { user: alice };
        assert_eq!(r.apply(&unreg, &me), Change::None);
        r.apply(&reg(me), &me);
        assert_eq!(r.apply(&unreg, &me), Change::UserLeft(alice));
        assert!(r.user(&alice).is_none());
        // A device key change of one of ours drops her bindings (the old key may be lost).
        r.apply(&reg(me), &me);
        let key = krypton_wallet::PrivateKey::generate().public_key();
        let set = KryptonEvent::DeviceKeyChanged {
            user: alice,
            key: Some(key),
        };
        assert_eq!(r.apply(&set, &me), Change::UserLeft(alice));
        assert_eq!(r.device_key(&alice), Some(&key));
        let clear = KryptonEvent::DeviceKeyChanged {
            user: alice,
            key: None,
        };
        r.apply(&clear, &me);
        assert_eq!(r.device_key(&alice), None);
        r.apply(&KryptonEvent::ProviderUndeployed { provider: me }, &me);
        assert_eq!(r.location(&me), None);
    }
}
