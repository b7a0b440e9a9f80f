//! The wallet side of KRYPTON's SIP Bearer authentication (`provider/AUTH.md` §4): a
//! [`BearerSigner`] that holds one decrypted wallet key for the phone's lifetime and mints the
//! ES256 token a provider's 401/407 Bearer challenge asks for (`krypton_auth::mint` over
//! `Claims::register`).
//!
//! It signs only for its own provider: a challenge from another realm is refused, so a proxy
//! that is not the one the chain names cannot collect proofs for another provider. The key is
//! zeroized when the signer is dropped, and `Debug` never shows it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

pub use krypton_sip::{BearerChallenge, BearerSigner};
use krypton_wallet::PrivateKey;

/// Lifetime of a token (`exp − iat`), the most AUTH.md §4 allows.
pub const TOKEN_LIFETIME_SECS: u64 = 60;

/// The scope a KRYPTON provider's challenge names.
const SCOPE: &str = "krypton";

/// Mints Bearer tokens for one NEO address at one provider.
pub struct WalletSigner {
    key: PrivateKey,
    address: String,
    realm: String,
}

impl WalletSigner {
    /// `key` proves `address` (the address's own key, or the device key it set on chain) to
    /// the provider whose realm (its on-chain location, e.g. `127.0.0.1:5070`) is `realm`.
    pub fn new(key: PrivateKey, address: &str, realm: &str) -> Self {
        WalletSigner {
            key,
            address: address.to_string(),
            realm: realm.to_string(),
        }
    }

    /// The address the tokens are issued by.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The only realm this signer signs for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The token for `challenge` at unix time `now` (seconds).
    pub fn token_at(
        &self,
        challenge: &BearerChallenge,
        call_id: &str,
        instance: &str,
        now: u64,
    ) -> Result<String, String> {
        if challenge.realm != self.realm {
            return Err(format!(
                "the proxy asks for a proof for realm '{}', but {}'s provider on chain is '{}': not signing for another provider",
                challenge.realm, self.address, self.realm
            ));
        }
        if !challenge.scope.is_empty() && challenge.scope != SCOPE {
            return Err(format!(
                "the proxy's Bearer challenge has scope '{}', not '{SCOPE}': not a KRYPTON provider",
                challenge.scope
            ));
        }
        if challenge.nonce.is_empty() {
            return Err("the proxy's Bearer challenge has an empty nonce".into());
        }
        let claims = krypton_auth::Claims::register(
            &self.address,
            &self.realm,
            &challenge.nonce,
            call_id,
            instance,
            now,
            TOKEN_LIFETIME_SECS,
        );
        Ok(krypton_auth::mint(&self.key, &claims))
    }
}

impl BearerSigner for WalletSigner {
    fn token(
        &self,
        challenge: &BearerChallenge,
        call_id: &str,
        instance: &str,
    ) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the computer's clock is before 1970: fix it".to_string())?
            .as_secs();
        self.token_at(challenge, call_id, instance, now)
    }
}

impl fmt::Debug for WalletSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletSigner")
            .field("address", &self.address)
            .field("realm", &self.realm)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_auth::{Expected, key_matches_address, verify};

    const REALM: &str = "127.0.0.1:5070";
    const CID: &str = "3f2a-call-id";
    const INST: &str = "urn:uuid:6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

    fn challenge(realm: &str) -> BearerChallenge {
        BearerChallenge {
            realm: realm.into(),
            scope: "krypton".into(),
            nonce: "nonce-1".into(),
        }
    }

    fn signer() -> (WalletSigner, String) {
        let key = PrivateKey::generate();
        let address = key.public_key().address();
        (WalletSigner::new(key, &address, REALM), address)
    }

    #[test]
    fn the_token_verifies_with_the_expected_claims() {
        let (s, address) = signer();
        let now = 1_800_000_000;
        let token = s.token_at(&challenge(REALM), CID, INST, now).unwrap();
        let expect = Expected {
            aud: REALM,
            cid: CID,
            nonce: Some("nonce-1"),
            iss: Some(&address),
            inst: Some(INST),
        };
        let v = verify(&token, &expect, now + 5).expect("verifies");
        assert_eq!(v.iss, address);
        assert_eq!(
            v.claims.sub.as_deref(),
            Some(format!("sip:{address}@{REALM}").as_str())
        );
        assert_eq!((v.claims.iat, v.claims.exp), (now, now + 60));
        key_matches_address(&v.kid, &address, None).expect("signed by the address's key");
        // Through the trait (the real clock), it verifies now too.
        let token = s.token(&challenge(REALM), CID, INST).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        verify(&token, &expect, now).expect("verifies at the real time");
        // Bound to the Call-ID: another one fails.
        assert!(
            verify(
                &token,
                &Expected {
                    cid: "other",
                    ..expect
                },
                now
            )
            .is_err()
        );
    }

    #[test]
    fn another_realm_or_scope_is_refused() {
        let (s, _) = signer();
        let e = s
            .token_at(&challenge("evil.example:5060"), CID, INST, 1)
            .unwrap_err();
        assert!(e.contains("not signing for another provider"), "{e}");
        assert!(e.contains("evil.example:5060") && e.contains(REALM), "{e}");
        let mut c = challenge(REALM);
        c.scope = "openid".into();
        assert!(s.token_at(&c, CID, INST, 1).is_err());
        c.scope = String::new();
        assert!(s.token_at(&c, CID, INST, 1).is_ok(), "no scope is fine");
        c.nonce = String::new();
        assert!(s.token_at(&c, CID, INST, 1).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let key = PrivateKey::generate();
        let wif = key.to_wif();
        let hex_key = hex_of(&key);
        let s = WalletSigner::new(key, "NAddr", REALM);
        let d = format!("{s:?}");
        assert!(d.contains("NAddr") && d.contains("<redacted>"), "{d}");
        assert!(!d.contains(wif.as_str()) && !d.contains(&hex_key), "{d}");
    }

    fn hex_of(key: &PrivateKey) -> String {
        key.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}
