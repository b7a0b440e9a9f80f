//! Stateless provider nonces (AUTH.md §4): `b64url(ts ‖ HMAC-SHA256(secret, ts ‖ Call-ID))`.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::AuthError;

/// How long a nonce is valid after issue, seconds.
pub const NONCE_LIFETIME_SECS: u64 = 30;
/// 8-byte big-endian timestamp + 32-byte MAC.
const NONCE_BYTES: usize = 40;
/// 40 bytes in unpadded base64url.
const NONCE_B64_LEN: usize = 54;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks nonces without storing them, and remembers the ones used by accepted tokens
/// until they would have expired anyway. The secret is zeroized on drop and never shown by `Debug`.
///
/// The used set lives in memory only. When the secret outlives the process (the provider derives
/// it from its long-lived secret so that Kamailio can make the nonces itself, AUTH.md §4), set
/// [`NonceIssuer::not_before`] to a time after every nonce an earlier process could have spent:
/// older nonces are refused, so a token admitted before a restart cannot be replayed after it.
pub struct NonceIssuer {
    secret: Zeroizing<[u8; 32]>,
    /// Nonces issued before this (unix seconds) are refused.
    not_before: u64,
    /// `(ts, nonce)` of consumed nonces, ordered by issue time so old ones are cut off cheaply.
    used: BTreeSet<(u64, String)>,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("secret", &"<redacted>")
            .field("not_before", &self.not_before)
            .field("used", &self.used.len())
            .finish()
    }
}

impl NonceIssuer {
    /// A nonce issuer keyed with `secret` (32 random bytes; copied into a zeroizing buffer).
    pub fn new(secret: &[u8; 32]) -> Self {
        NonceIssuer {
            secret: Zeroizing::new(*secret),
            not_before: 0,
            used: BTreeSet::new(),
        }
    }

    /// Refuses (as [`AuthError::StaleNonce`]) nonces issued before `t`, unix seconds: pass a
    /// second after the process started, as a nonce dated within the start second may already have
    /// been spent by the process before.
    pub fn not_before(mut self, t: u64) -> Self {
        self.not_before = t;
        self
    }

    fn mac(&self, ts: u64, call_id: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&*self.secret).expect("HMAC takes any key length");
        m.update(&ts.to_be_bytes());
        m.update(call_id.as_bytes());
        m
    }

    /// A nonce for the request with `call_id`, issued at `now` (unix seconds).
    pub fn issue(&self, now: u64, call_id: &str) -> String {
        let tag = self.mac(now, call_id).finalize().into_bytes();
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks that `nonce` is ours, for `call_id`, at most [`NONCE_LIFETIME_SECS`] old at `now`
    /// and not issued before [`NonceIssuer::not_before`]. Returns its issue time. Does not look at the used set (see [`NonceIssuer::consume`]).
    pub fn check(&self, nonce: &str, now: u64, call_id: &str) -> Result<u64, AuthError> {
        if nonce.len() != NONCE_B64_LEN {
            return Err(AuthError::UnknownNonce);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| AuthError::UnknownNonce)?;
        if raw.len() != NONCE_BYTES {
            return Err(AuthError::UnknownNonce);
        }
        let ts = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        self.mac(ts, call_id)
            .verify_slice(&raw[8..])
            .map_err(|_| AuthError::UnknownNonce)?;
        if ts > now || now - ts > NONCE_LIFETIME_SECS || ts < self.not_before {
            return Err(AuthError::StaleNonce);
        }
        Ok(ts)
    }

    /// [`NonceIssuer::check`]s `nonce`, then marks it used: a second `consume` of the same nonce
    /// fails with [`AuthError::ReplayedNonce`]. Call it only for tokens that passed
    /// [`crate::verify`], so that the set holds only verified entries. Entries older than the
    /// nonce lifetime are forgotten here.
    pub fn consume(&mut self, nonce: &str, now: u64, call_id: &str) -> Result<(), AuthError> {
        let ts = self.check(nonce, now, call_id)?;
        self.forget_expired(now);
        if self.used.insert((ts, nonce.to_owned())) {
            Ok(())
        } else {
            Err(AuthError::ReplayedNonce)
        }
    }

    /// Drops used nonces that can no longer pass [`NonceIssuer::check`] at `now`.
    pub fn forget_expired(&mut self, now: u64) {
        let cutoff = now.saturating_sub(NONCE_LIFETIME_SECS);
        self.used = self.used.split_off(&(cutoff, String::new()));
    }

    /// How many used nonces are remembered.
    pub fn used_len(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7u8; 32];
    const T0: u64 = 1_800_000_000;

    #[test]
    fn issue_then_check_within_lifetime() {
        let n = NonceIssuer::new(&SECRET);
        let nonce = n.issue(T0, "call-1");
        assert_eq!(nonce.len(), NONCE_B64_LEN);
        assert_eq!(n.check(&nonce, T0, "call-1"), Ok(T0));
        assert_eq!(n.check(&nonce, T0 + 30, "call-1"), Ok(T0));
    }

    #[test]
    fn expires_in_virtual_time() {
        let n = NonceIssuer::new(&SECRET);
        let nonce = n.issue(T0, "c");
        assert_eq!(n.check(&nonce, T0 + 31, "c"), Err(AuthError::StaleNonce));
        // Dated after "now": not ours to accept either.
        assert_eq!(n.check(&nonce, T0 - 1, "c"), Err(AuthError::StaleNonce));
    }

    #[test]
    fn bound_to_call_id_and_secret() {
        let n = NonceIssuer::new(&SECRET);
        let nonce = n.issue(T0, "c");
        assert_eq!(n.check(&nonce, T0, "d"), Err(AuthError::UnknownNonce));
        let other = NonceIssuer::new(&[8u8; 32]);
        assert_eq!(other.check(&nonce, T0, "c"), Err(AuthError::UnknownNonce));
    }

    #[test]
    fn forged_or_garbled_nonces_are_unknown() {
        let n = NonceIssuer::new(&SECRET);
        let nonce = n.issue(T0, "c");
        // Move the timestamp forward without the MAC: refused.
        let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        raw[7] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(n.check(&forged, T0, "c"), Err(AuthError::UnknownNonce));
        for bad in ["", "x", &nonce[1..], &format!("{nonce}A"), &"!".repeat(54)] {
            assert_eq!(n.check(bad, T0, "c"), Err(AuthError::UnknownNonce), "{bad}");
        }
    }

    #[test]
    fn consume_refuses_replay_and_forgets_old_entries() {
        let mut n = NonceIssuer::new(&SECRET);
        let a = n.issue(T0, "c");
        assert_eq!(n.consume(&a, T0 + 1, "c"), Ok(()));
        assert_eq!(n.consume(&a, T0 + 2, "c"), Err(AuthError::ReplayedNonce));
        let b = n.issue(T0 + 20, "c");
        assert_eq!(n.consume(&b, T0 + 20, "c"), Ok(()));
        assert_eq!(n.used_len(), 2);
        // At T0 + 31, `a` is stale anyway and is dropped; `b` stays.
        assert_eq!(n.consume(&a, T0 + 31, "c"), Err(AuthError::StaleNonce));
        n.forget_expired(T0 + 31);
        assert_eq!(n.used_len(), 1);
        assert_eq!(n.consume(&b, T0 + 31, "c"), Err(AuthError::ReplayedNonce));
        n.forget_expired(T0 + 51);
        assert_eq!(n.used_len(), 0);
    }

    #[test]
    fn a_nonce_spent_before_a_restart_is_refused_after_it() {
        // The process before the restart spends `a`; the new one, with the same secret and an
        // empty used set, would take it again without the floor.
        let mut before = NonceIssuer::new(&SECRET);
        let a = before.issue(T0, "c");
        assert_eq!(before.consume(&a, T0, "c"), Ok(()));
        let restarted_at = T0 + 2;
        assert_eq!(NonceIssuer::new(&SECRET).consume(&a, T0 + 3, "c"), Ok(()));
        let mut after = NonceIssuer::new(&SECRET).not_before(restarted_at + 1);
        assert_eq!(after.consume(&a, T0 + 3, "c"), Err(AuthError::StaleNonce));
        // Dated within the start second: refused too; from the next second on: fine.
        let b = after.issue(restarted_at, "c");
        assert_eq!(
            after.check(&b, restarted_at, "c"),
            Err(AuthError::StaleNonce)
        );
        let c = after.issue(restarted_at + 1, "c");
        assert_eq!(after.consume(&c, restarted_at + 1, "c"), Ok(()));
        // A forged one stays unknown (the MAC is checked first).
        let other = NonceIssuer::new(&[8u8; 32]).issue(T0, "c");
        assert_eq!(
            after.check(&other, T0 + 3, "c"),
            Err(AuthError::UnknownNonce)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let n = NonceIssuer::new(&[0xabu8; 32]);
        let s = format!("{n:?}");
        assert!(s.contains("redacted"));
        assert!(!s.contains("171") && !s.to_lowercase().contains("abab"));
    }
}
