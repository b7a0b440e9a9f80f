//! Decrypted keys in memory, with an idle auto-lock.
//!
//! Sans-IO: nothing here reads a clock. Callers pass `now` and drive the timer with
//! [`UnlockedWallet::poll_timeout`] / [`UnlockedWallet::handle_timeout`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::hash::ScriptHash;
use crate::keys::PrivateKey;
use crate::nep6::{Nep6Error, Nep6Wallet};

/// Why a key is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockedError {
    /// The wallet was locked (by hand or after the idle timeout); its keys are gone from memory.
    #[error("the wallet is locked; unlock it again with its password")]
    Locked,
    /// The account is not in the wallet, or is watch-only.
    #[error("no private key for account {0}; it is not in the wallet or is watch-only")]
    NoKey(String),
}

/// The plaintext keys of a [`Nep6Wallet`], held only in memory and dropped (zeroized) when locked.
pub struct UnlockedWallet {
    keys: HashMap<ScriptHash, PrivateKey>,
    idle: Duration,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for UnlockedWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedWallet")
            .field("accounts", &self.keys.len())
            .field("idle", &self.idle)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl UnlockedWallet {
    /// Decrypts every account that has a key. Any failure (such as a wrong password) is returned and
    /// nothing stays decrypted. The wallet locks itself after `idle` without a [`Self::key`] call.
    pub fn unlock(
        wallet: &Nep6Wallet,
        password: &str,
        now: Instant,
        idle: Duration,
    ) -> Result<Self, Nep6Error> {
        let mut keys = HashMap::new();
        // neo-go stores the same NEP-2 string on a key's single-sig and multisig accounts: decrypt it once.
        let mut by_nep2: HashMap<&str, ScriptHash> = HashMap::new();
        for a in wallet.accounts() {
            let Some(nep2) = a.nep2_key() else { continue };
            let key = match by_nep2.get(nep2).and_then(|h| keys.get(h)) {
                Some(k) => {
                    let k: &PrivateKey = k;
                    // Still checks the key belongs to this account.
                    let pk = k.public_key();
                    let ok = a.verification_script().is_none_or(|s| {
                        s.single_key() == Some(pk)
                            || s.as_multisig().is_ok_and(|m| m.keys.contains(&pk))
                    });
                    if !ok {
                        return Err(Nep6Error::KeyMismatch {
                            address: a.address().to_owned(),
                        });
                    }
                    PrivateKey::from_bytes(&*k.to_bytes()).map_err(|_| Nep6Error::KeyMismatch {
                        address: a.address().to_owned(),
                    })?
                }
                None => wallet.decrypt_account(a.address(), password)?,
            };
            by_nep2.insert(nep2, a.script_hash());
            keys.insert(a.script_hash(), key);
        }
        tracing::info!(accounts = keys.len(), ?idle, "wallet unlocked");
        Ok(UnlockedWallet {
            keys,
            idle,
            deadline: Some(now + idle),
        })
    }

    /// The key of an account (address or `0x…` script hash). Restarts the idle timer; after the
    /// timeout every key is dropped and [`LockedError::Locked`] is returned.
    pub fn key(&mut self, account: &str, now: Instant) -> Result<&PrivateKey, LockedError> {
        match ScriptHash::parse_any(account) {
            Ok(h) => self.key_for(h, now),
            Err(_) => {
                self.handle_timeout(now);
                if self.is_locked() {
                    return Err(LockedError::Locked);
                }
                Err(LockedError::NoKey(account.trim().to_owned()))
            }
        }
    }

    /// Like [`Self::key`], by script hash.
    pub fn key_for(&mut self, hash: ScriptHash, now: Instant) -> Result<&PrivateKey, LockedError> {
        self.handle_timeout(now);
        let Some(deadline) = self.deadline.as_mut() else {
            return Err(LockedError::Locked);
        };
        match self.keys.get(&hash) {
            Some(k) => {
                *deadline = now + self.idle;
                Ok(k)
            }
            None => Err(LockedError::NoKey(hash.to_address())),
        }
    }

    /// When the wallet will lock itself if unused; `None` once locked.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Locks the wallet if its idle time ran out by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            tracing::info!("wallet locked after idle timeout");
            self.lock();
        }
    }

    /// Drops (zeroizes) every key now.
    pub fn lock(&mut self) {
        self.keys.clear();
        self.deadline = None;
    }

    /// True once locked; a locked wallet never unlocks again (call [`Self::unlock`]).
    pub fn is_locked(&self) -> bool {
        self.deadline.is_none()
    }

    /// Script hashes of the unlocked accounts (empty once locked).
    pub fn accounts(&self) -> impl Iterator<Item = ScriptHash> + '_ {
        self.keys.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nep6::tests::weak_wallet_json;

    const SINGLE: &str = "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn";
    const MULTI: &str = "NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP";
    const IDLE: Duration = Duration::from_secs(300);

    fn wallet() -> Nep6Wallet {
        Nep6Wallet::from_json(&weak_wallet_json()).unwrap()
    }

    #[test]
    fn unlock_use_and_idle_lock_with_virtual_time() {
        let t0 = Instant::now();
        let mut u = UnlockedWallet::unlock(&wallet(), "one", t0, IDLE).unwrap();
        assert_eq!(u.accounts().count(), 2);
        assert_eq!(u.poll_timeout(), Some(t0 + IDLE));
        let pk = u
            .key(SINGLE, t0 + Duration::from_secs(100))
            .unwrap()
            .public_key();
        assert_eq!(pk.address(), SINGLE);
        // Use refreshes the timer.
        assert_eq!(u.poll_timeout(), Some(t0 + Duration::from_secs(100) + IDLE));
        let t1 = t0 + Duration::from_secs(399);
        u.handle_timeout(t1);
        assert!(!u.is_locked());
        assert_eq!(u.key(MULTI, t1).unwrap().public_key(), pk);
        // Idle past the deadline: locked, and it stays locked.
        let t2 = t1 + IDLE;
        assert_eq!(u.key(SINGLE, t2).unwrap_err(), LockedError::Locked);
        assert!(u.is_locked());
        assert_eq!(u.poll_timeout(), None);
        assert_eq!(u.accounts().count(), 0);
        assert_eq!(u.key(SINGLE, t2).unwrap_err(), LockedError::Locked);
    }

    #[test]
    fn handle_timeout_locks_without_a_key_call() {
        let t0 = Instant::now();
        let mut u = UnlockedWallet::unlock(&wallet(), "one", t0, IDLE).unwrap();
        u.handle_timeout(t0 + IDLE - Duration::from_nanos(1));
        assert!(!u.is_locked());
        u.handle_timeout(t0 + IDLE);
        assert!(u.is_locked());
        assert_eq!(u.key(SINGLE, t0).unwrap_err(), LockedError::Locked);
    }

    #[test]
    fn manual_lock_and_unknown_accounts() {
        let t0 = Instant::now();
        let mut u = UnlockedWallet::unlock(&wallet(), "one", t0, IDLE).unwrap();
        assert!(matches!(
            u.key("NVieniq1rBXU2XZziwcrhG3b3oVRdnS2ej", t0).unwrap_err(),
            LockedError::NoKey(_)
        ));
        assert!(matches!(
            u.key("garbage", t0).unwrap_err(),
            LockedError::NoKey(_)
        ));
        // A failed lookup does not refresh the timer.
        assert_eq!(u.poll_timeout(), Some(t0 + IDLE));
        let h = ScriptHash::from_address(SINGLE).unwrap();
        assert!(u.key_for(h, t0).is_ok());
        u.lock();
        assert_eq!(u.key_for(h, t0).unwrap_err(), LockedError::Locked);
        assert_eq!(u.key("garbage", t0).unwrap_err(), LockedError::Locked);
    }

    #[test]
    fn wrong_password_unlocks_nothing() {
        let err = UnlockedWallet::unlock(&wallet(), "two", Instant::now(), IDLE).unwrap_err();
        assert!(matches!(err, Nep6Error::WrongPassword { .. }));
    }

    #[test]
    fn watch_only_accounts_are_skipped() {
        let mut w = wallet();
        w.add_watch_only(ScriptHash([3; 20]), "watch").unwrap();
        let t0 = Instant::now();
        let mut u = UnlockedWallet::unlock(&w, "one", t0, IDLE).unwrap();
        assert_eq!(u.accounts().count(), 2);
        assert!(matches!(
            u.key_for(ScriptHash([3; 20]), t0),
            Err(LockedError::NoKey(_))
        ));
    }

    #[test]
    fn debug_shows_no_keys() {
        let u = UnlockedWallet::unlock(&wallet(), "one", Instant::now(), IDLE).unwrap();
        let s = format!("{u:?}");
        assert!(s.contains("accounts: 2") && !s.contains("PrivateKey"));
    }
}
