//! Admission decisions (provider/AUTH.md §3–§5, §7), sans-IO: the registry cache and `now` come in,
//! a decision goes out. The HTTP layer ([`crate::api`]) only moves these to and from Kamailio.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use krypton_auth::{
    AuthError, CREDENTIALS_CID, Expected, NonceIssuer, Verified, key_matches_address, verify,
};
use krypton_wallet::ScriptHash;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::registry::Registry;

/// Lifetime of credentials for standard SIP clients (AUTH.md §5).
pub const CREDENTIALS_LIFETIME_SECS: u64 = 12 * 3600;

/// A refusal with the SIP status and the text the phone shows (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// SIP status: 403 for every refusal of a proof.
    pub code: u16,
    /// Reason text.
    pub reason: String,
}

impl Rejection {
    fn forbidden(reason: impl Into<String>) -> Self {
        Rejection {
            code: 403,
            reason: reason.into(),
        }
    }
}

impl From<AuthError> for Rejection {
    fn from(e: AuthError) -> Self {
        Rejection::forbidden(e.to_string())
    }
}

/// Digest credentials for a standard SIP client, checked by Kamailio's `auth_ephemeral`
/// (`username_format` 1, `sha_algorithm` 1 = HMAC-SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Credentials {
    /// `<expiry unix s>:<address>`.
    pub username: String,
    /// base64(HMAC-SHA-256(secret, username)).
    pub password: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// The realm to configure in the client.
    pub realm: String,
}

/// What a Bearer token on a REGISTER (or a request answering a 407) must say, §4: for our
/// `realm`, the request's Call-ID, issued by the AOR `user`, for the Contact's `instance` if any.
/// The nonce is checked afterwards ([`Checker::admit_verified`]).
pub fn bearer_expected<'a>(
    realm: &'a str,
    user: &'a str,
    call_id: &'a str,
    instance: Option<&'a str>,
) -> Expected<'a> {
    Expected {
        aud: realm,
        cid: call_id,
        nonce: None,
        iss: Some(user),
        inst: instance,
    }
}

/// The admission logic of one provider.
pub struct Checker {
    me: ScriptHash,
    realm: String,
    nonces: NonceIssuer,
    ephemeral_secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("me", &self.me.to_address())
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// `me`: this provider's address; `realm`: its SIP domain (the on-chain location);
    /// `nonce_secret`: the Bearer nonce key, shared with Kamailio's script (which makes the
    /// REGISTER/407 nonces); `ephemeral_secret`: shared with Kamailio's `auth_ephemeral`. With a
    /// nonce secret that outlives the process, set [`Checker::nonces_not_before`].
    pub fn new(
        me: ScriptHash,
        realm: impl Into<String>,
        nonce_secret: &[u8; 32],
        ephemeral_secret: &[u8],
    ) -> Self {
        Checker {
            me,
            realm: realm.into(),
            nonces: NonceIssuer::new(nonce_secret),
            ephemeral_secret: Zeroizing::new(ephemeral_secret.to_vec()),
        }
    }

    /// Refuses nonces issued before `t` (unix seconds; see [`NonceIssuer::not_before`]): the
    /// used-nonce set starts empty, so nonces an earlier process may have spent must not pass.
    pub fn nonces_not_before(mut self, t: u64) -> Self {
        self.nonces = self.nonces.not_before(t);
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A fresh nonce for a request with this Call-ID.
    pub fn nonce(&self, now: u64, call_id: &str) -> String {
        self.nonces.issue(now, call_id)
    }

    /// §4: may `user` register (or send a request) with this Bearer token? The nonce is spent only
    /// when every other check passed.
    pub fn check_bearer(
        &mut self,
        reg: &Registry,
        token: &str,
        user: &str,
        call_id: &str,
        instance: Option<&str>,
        now: u64,
    ) -> Result<ScriptHash, Rejection> {
        let v = verify(
            token,
            &bearer_expected(&self.realm, user, call_id, instance),
            now,
        )?;
        self.admit_verified(reg, &v, call_id, now)
    }

    /// The rest of [`Checker::check_bearer`] for a token that already passed [`verify`] with
    /// [`bearer_expected`] for this request (the costly signature check, which the service runs
    /// without holding its cache lock): key-to-address, membership, then the nonce is spent.
    /// Never call it with a [`Verified`] that did not come from `verify`.
    pub fn admit_verified(
        &mut self,
        reg: &Registry,
        v: &Verified,
        call_id: &str,
        now: u64,
    ) -> Result<ScriptHash, Rejection> {
        let who = self.authorised(reg, &v.iss, &v.kid)?;
        let nonce = v.claims.nonce.as_deref().ok_or(AuthError::WrongNonce)?;
        self.nonces.consume(nonce, now, call_id)?;
        Ok(who)
    }

    /// §5: credentials for a standard client, for a token with `cid` = `credentials` and a nonce
    /// from [`Checker::nonce`] issued for that Call-ID.
    pub fn credentials(
        &mut self,
        reg: &Registry,
        token: &str,
        now: u64,
    ) -> Result<Credentials, Rejection> {
        let expect = Expected {
            aud: &self.realm,
            cid: CREDENTIALS_CID,
            nonce: None,
            iss: None,
            inst: None,
        };
        let v = verify(token, &expect, now)?;
        let who = self.authorised(reg, &v.iss, &v.kid)?;
        let nonce = v.claims.nonce.as_deref().ok_or(AuthError::WrongNonce)?;
        self.nonces.consume(nonce, now, CREDENTIALS_CID)?;
        let expires = now + CREDENTIALS_LIFETIME_SECS;
        let username = format!("{expires}:{}", who.to_address());
        Ok(Credentials {
            password: self.ephemeral_password(&username),
            username,
            expires,
            realm: self.realm.clone(),
        })
    }

    /// For a standard client that passed `auth_ephemeral`: is the address in its user name still
    /// one of ours (checked at every REGISTER, so an on-chain `unregister` locks it out too)?
    pub fn check_member(&self, reg: &Registry, address: &str) -> Result<ScriptHash, Rejection> {
        let who = ScriptHash::from_address(address)
            .map_err(|_| Rejection::forbidden("the user name is not a NEO address"))?;
        self.is_ours(reg, &who)?;
        Ok(who)
    }

    /// The auth_ephemeral password of a user name.
    pub fn ephemeral_password(&self, username: &str) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.ephemeral_secret)
            .expect("HMAC takes any key length");
        m.update(username.as_bytes());
        STANDARD.encode(m.finalize().into_bytes())
    }

    /// Drops used nonces that can no longer be presented.
    pub fn forget_expired(&mut self, now: u64) {
        self.nonces.forget_expired(now);
    }

    fn authorised(
        &self,
        reg: &Registry,
        address: &str,
        kid: &[u8; 33],
    ) -> Result<ScriptHash, Rejection> {
        let who = ScriptHash::from_address(address).map_err(|_| AuthError::KeyNotAddress)?;
        let device = reg.device_key(&who).map(|k| k.to_compressed());
        key_matches_address(kid, address, device.as_ref())?;
        self.is_ours(reg, &who)?;
        Ok(who)
    }

    fn is_ours(&self, reg: &Registry, who: &ScriptHash) -> Result<(), Rejection> {
        match reg.user(who) {
            Some(u) if u.provider == self.me => Ok(()),
            Some(u) => Err(Rejection::forbidden(format!(
                "registered with provider {} on chain, not with this one",
                u.provider.to_address()
            ))),
            None => Err(Rejection::forbidden(format!(
                "not registered with this provider on chain: run krypton register --provider {}",
                self.me.to_address()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_auth::{Claims, mint};
    use krypton_chain::krypton::KryptonEvent;
    use krypton_wallet::PrivateKey;

    const REALM: &str = "127.0.0.1:5070";
    const INST: &str = "urn:uuid:0b0e5f43-5b8c-4a53-9d1e-3c6f1f0a0c11";
    const NOW: u64 = 1_800_000_000;

    struct World {
        me: ScriptHash,
        other: ScriptHash,
        alice: PrivateKey,
        reg: Registry,
        checker: Checker,
    }

    fn world() -> World {
        let me = PrivateKey::generate().public_key().script_hash();
        let other = PrivateKey::generate().public_key().script_hash();
        let alice = PrivateKey::generate();
        let mut reg = Registry::default();
        for (p, loc) in [(me, REALM), (other, "127.0.0.1:5080")] {
            reg.apply(
                &KryptonEvent::ProviderDeployed {
                    provider: p,
                    location: loc.into(),
                },
                &me,
            );
        }
        reg.apply(
            &KryptonEvent::UserRegistered {
                user: alice.public_key().script_hash(),
                provider: me,
                uuid: "x".into(),
            },
            &me,
        );
        World {
            me,
            other,
            alice,
            reg,
            checker: Checker::new(me, REALM, &[7; 32], b"eph-secret"),
        }
    }

    fn addr(k: &PrivateKey) -> String {
        k.public_key().script_hash().to_address()
    }

    fn token(w: &World, key: &PrivateKey, iss: &str, cid: &str, at: u64) -> String {
        let nonce = w.checker.nonce(at, cid);
        mint(
            key,
            &Claims::register(iss, REALM, &nonce, cid, INST, at, 60),
        )
    }

    #[test]
    fn a_member_is_admitted_once_per_nonce() {
        let mut w = world();
        let a = addr(&w.alice);
        let t = token(&w, &w.alice, &a, "cid-1", NOW);
        let ok = w
            .checker
            .check_bearer(&w.reg, &t, &a, "cid-1", Some(INST), NOW + 1);
        assert_eq!(ok, Ok(w.alice.public_key().script_hash()));
        let replay = w
            .checker
            .check_bearer(&w.reg, &t, &a, "cid-1", Some(INST), NOW + 2)
            .unwrap_err();
        assert!(replay.reason.starts_with("stale proof"), "{replay:?}");
    }

    #[test]
    fn every_refusal_names_its_reason() {
        let mut w = world();
        let a = addr(&w.alice);
        let check = |w: &mut World, t: &str, user: &str| {
            let reg = w.reg.clone();
            w.checker
                .check_bearer(&reg, t, user, "cid", Some(INST), NOW)
                .unwrap_err()
                .reason
        };
        // Not registered on chain at all.
        let stranger = PrivateKey::generate();
        let s = addr(&stranger);
        let t = token(&w, &stranger, &s, "cid", NOW);
        assert!(check(&mut w, &t, &s).starts_with("not registered with this provider on chain"));
        // Registered with the other provider.
        let bob = PrivateKey::generate();
        w.reg.apply(
            &KryptonEvent::UserRegistered {
                user: bob.public_key().script_hash(),
                provider: w.other,
                uuid: "x".into(),
            },
            &w.me,
        );
        let b = addr(&bob);
        let t = token(&w, &bob, &b, "cid", NOW);
        let r = check(&mut w, &t, &b);
        assert!(
            r.contains(&w.other.to_address()) && r.contains("not with this one"),
            "{r}"
        );
        // Signed by another key than the address's.
        let t = token(&w, &stranger, &a, "cid", NOW);
        assert_eq!(check(&mut w, &t, &a), AuthError::KeyNotAddress.to_string());
        // A forged signature.
        // (A character inside the signature: the last one has 4 unused bits, and a change
        // there may only make the base64url non-canonical.)
        let mut t = token(&w, &w.alice, &a, "cid", NOW);
        let i = t.len() - 10;
        let c = if &t[i..=i] == "A" { "B" } else { "A" };
        t.replace_range(i..=i, c);
        assert_eq!(check(&mut w, &t, &a), AuthError::BadSignature.to_string());
        // A proof for another address than the one registering.
        let t = token(&w, &bob, &b, "cid", NOW);
        assert_eq!(check(&mut w, &t, &a), AuthError::WrongIssuer.to_string());
        // Expired.
        let t = token(&w, &w.alice, &a, "cid", NOW - 120);
        assert!(check(&mut w, &t, &a).starts_with("expired proof"));
        // Another Call-ID than the one the token names.
        let t = token(&w, &w.alice, &a, "other-cid", NOW);
        assert_eq!(check(&mut w, &t, &a), AuthError::WrongCallId.to_string());
        // A nonce we never issued (another secret).
        let foreign = Checker::new(w.me, REALM, &[8; 32], b"");
        let t = mint(
            &w.alice,
            &Claims::register(&a, REALM, &foreign.nonce(NOW, "cid"), "cid", INST, NOW, 60),
        );
        assert!(check(&mut w, &t, &a).starts_with("stale proof"));
        // The device key on chain replaces the account key.
        let device = PrivateKey::generate();
        w.reg.apply(
            &KryptonEvent::DeviceKeyChanged {
                user: w.alice.public_key().script_hash(),
                key: Some(device.public_key()),
            },
            &w.me,
        );
        let t = token(&w, &w.alice, &a, "cid", NOW);
        assert_eq!(check(&mut w, &t, &a), AuthError::KeyNotAddress.to_string());
        let t = token(&w, &device, &a, "cid", NOW);
        let reg = w.reg.clone();
        assert!(
            w.checker
                .check_bearer(&reg, &t, &a, "cid", Some(INST), NOW)
                .is_ok()
        );
    }

    #[test]
    fn admit_verified_checks_membership_and_spends_the_nonce() {
        let mut w = world();
        let a = addr(&w.alice);
        let verified = |w: &World, key: &PrivateKey, iss: &str, cid: &str| {
            let t = token(w, key, iss, cid, NOW);
            verify(&t, &bearer_expected(REALM, iss, cid, Some(INST)), NOW).unwrap()
        };
        let v = verified(&w, &w.alice, &a, "cid-1");
        let reg = w.reg.clone();
        assert_eq!(
            w.checker.admit_verified(&reg, &v, "cid-1", NOW + 1),
            Ok(w.alice.public_key().script_hash())
        );
        // The same verified token again: its nonce is spent.
        let again = w.checker.admit_verified(&reg, &v, "cid-1", NOW + 2);
        assert!(again.unwrap_err().reason.starts_with("stale proof"));
        // Presented with another Call-ID than its nonce's: refused.
        let v = verified(&w, &w.alice, &a, "cid-2");
        assert!(w.checker.admit_verified(&reg, &v, "cid-3", NOW).is_err());
        // A validly signed token of someone not registered with us: refused, nonce not spent.
        let stranger = PrivateKey::generate();
        let s = addr(&stranger);
        let v = verified(&w, &stranger, &s, "cid-4");
        let r = w
            .checker
            .admit_verified(&reg, &v, "cid-4", NOW)
            .unwrap_err();
        assert!(
            r.reason.starts_with("not registered with this provider"),
            "{r:?}"
        );
        assert_eq!(w.checker.nonces.used_len(), 1);
        // Signed by a key that is not the address's.
        let v = verified(&w, &stranger, &a, "cid-5");
        let r = w
            .checker
            .admit_verified(&reg, &v, "cid-5", NOW)
            .unwrap_err();
        assert_eq!(r.reason, AuthError::KeyNotAddress.to_string());
        // The same decisions as check_bearer, which it completes.
        let t = token(&w, &w.alice, &a, "cid-6", NOW);
        assert!(
            w.checker
                .check_bearer(&reg, &t, &a, "cid-6", Some(INST), NOW)
                .is_ok()
        );
    }

    #[test]
    fn nonces_from_before_the_start_are_refused() {
        let mut w = world();
        let a = addr(&w.alice);
        // A token on a nonce of the previous process (same derived secret).
        let old = token(&w, &w.alice, &a, "cid", NOW);
        w.checker = Checker::new(w.me, REALM, &[7; 32], b"eph-secret").nonces_not_before(NOW + 1);
        let reg = w.reg.clone();
        let r = w
            .checker
            .check_bearer(&reg, &old, &a, "cid", Some(INST), NOW + 2)
            .unwrap_err();
        assert!(r.reason.starts_with("stale proof"), "{r:?}");
        let fresh = token(&w, &w.alice, &a, "cid", NOW + 1);
        assert!(
            w.checker
                .check_bearer(&reg, &fresh, &a, "cid", Some(INST), NOW + 2)
                .is_ok()
        );
    }

    #[test]
    fn credentials_are_auth_ephemeral_and_follow_the_chain() {
        let mut w = world();
        let a = addr(&w.alice);
        let nonce = w.checker.nonce(NOW, CREDENTIALS_CID);
        let t = mint(&w.alice, &Claims::credentials(&a, REALM, &nonce, NOW, 60));
        let c = w.checker.credentials(&w.reg, &t, NOW).unwrap();
        assert_eq!(
            c.username,
            format!("{}:{a}", NOW + CREDENTIALS_LIFETIME_SECS)
        );
        assert_eq!(c.realm, REALM);
        // base64(HMAC-SHA-256("eph-secret", username)), computed independently.
        let mut m = Hmac::<Sha256>::new_from_slice(b"eph-secret").unwrap();
        m.update(c.username.as_bytes());
        assert_eq!(c.password, STANDARD.encode(m.finalize().into_bytes()));
        assert!(
            w.checker.credentials(&w.reg, &t, NOW).is_err(),
            "nonce reused"
        );
        assert!(w.checker.check_member(&w.reg, &a).is_ok());
        w.reg.apply(
            &KryptonEvent::UserUnregistered {
                user: w.alice.public_key().script_hash(),
            },
            &w.me,
        );
        let r = w.checker.check_member(&w.reg, &a).unwrap_err();
        assert!(r.reason.starts_with("not registered"), "{r:?}");
        assert!(w.checker.check_member(&w.reg, "not-an-address").is_err());
    }
}
