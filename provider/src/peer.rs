//! Where a request from one of our users goes, and which requests from other providers we take
//! (provider/AUTH.md §6), sans-IO: the registry cache and `now` come in, a decision goes out.
//!
//! - [`Peering::route`]: a call or message from one of our users to a NEO address goes to the
//!   provider the chain registers that address with, at its on-chain location, with a
//!   `Krypton-Provider` token signed by our peer key; a phone number goes to our PSTN trunk;
//!   anything else is for our own registrar.
//! - [`Peering::admit`]: a request from outside is taken only with a token that a deployed
//!   provider signed for us, for this Call-ID and for one of our users, once.
//!
//! The peer key is the provider's on-chain device key (`setDeviceKey`): a hot key the service
//! holds, separate from the wallet key that controls the provider's funds and its deployment.

use std::collections::HashMap;
use std::sync::Arc;

use krypton_auth::{Claims, Expected, key_matches_address, mint, verify};
use krypton_wallet::{PrivateKey, ScriptHash};

use crate::check::Rejection;
use crate::registry::Registry;

/// Lifetime of a `Krypton-Provider` token (AUTH.md §6).
pub const PEER_TOKEN_LIFETIME_SECS: u64 = 60;

/// The SIP header that carries the provider-to-provider token.
pub const PEER_HEADER: &str = "Krypton-Provider";

/// Where a request from one of our users goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// One of our users, or a user name that is not a NEO address or a number: our registrar.
    Local {
        /// The request URI to look up (`sip:USER@OUR-REALM`).
        uri: String,
    },
    /// A user of another provider.
    Peer {
        /// `sip:ADDRESS@THEIR-LOCATION` (an SRV location becomes its domain and a transport).
        uri: String,
        /// The `Krypton-Provider` token.
        token: String,
    },
    /// A phone number, to our PSTN trunk.
    Trunk {
        /// `sip:NUMBER@TRUNK`.
        uri: String,
    },
}

/// Routing and peer admission of one provider.
pub struct Peering {
    me: ScriptHash,
    realm: String,
    key: Option<Arc<PrivateKey>>,
    trunk: Option<String>,
    /// Token ids (`nonce` claim) already admitted, with their expiry.
    seen: HashMap<String, u64>,
}

impl std::fmt::Debug for Peering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peering")
            .field("me", &self.me.to_address())
            .field(
                "peer_key",
                &self.key.as_ref().map(|k| k.public_key().to_hex()),
            )
            .field("trunk", &self.trunk)
            .finish_non_exhaustive()
    }
}

fn not_found(reason: String) -> Rejection {
    Rejection { code: 404, reason }
}

fn not_a_peer(why: impl std::fmt::Display) -> Rejection {
    Rejection {
        code: 403,
        reason: format!("not from a deployed KRYPTON provider: {why}"),
    }
}

/// `+31 20 …` style: an optional `+`, then digits (and `*`, `#`).
fn is_phone_number(user: &str) -> bool {
    let digits = user.strip_prefix('+').unwrap_or(user);
    !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// The host part of a SIP URI for an on-chain location: `host[:port]` as is; a DNS SRV name
/// (`_sip._udp.example.org`) becomes its domain with the transport (the proxy then does the SRV
/// lookup, RFC 3263).
pub fn location_host(location: &str) -> String {
    for (prefix, transport) in [
        ("_sip._udp.", "udp"),
        ("_sip._tcp.", "tcp"),
        ("_sips._tcp.", "tls"),
    ] {
        if let Some(domain) = location.strip_prefix(prefix) {
            return format!("{domain};transport={transport}");
        }
    }
    location.to_string()
}

impl Peering {
    /// `me`: this provider's address; `realm`: its location; `key`: the peer key (its on-chain
    /// device key), without which no request leaves for another provider; `trunk`: the PSTN
    /// gateway `host:port`, if any.
    pub fn new(
        me: ScriptHash,
        realm: impl Into<String>,
        key: Option<Arc<PrivateKey>>,
        trunk: Option<String>,
    ) -> Self {
        Peering {
            me,
            realm: realm.into(),
            key,
            trunk,
            seen: HashMap::new(),
        }
    }

    /// Where a request from our user `from` for the user part `to` goes.
    pub fn route(
        &self,
        reg: &Registry,
        from: &str,
        to: &str,
        call_id: &str,
        now: u64,
    ) -> Result<Route, Rejection> {
        if is_phone_number(to) {
            return match &self.trunk {
                Some(t) => Ok(Route::Trunk {
                    uri: format!("sip:{to}@{t}"),
                }),
                None => Err(not_found(format!(
                    "{to}: this provider has no PSTN trunk; call NEO addresses, or route numbers through another provider in the dial plan"
                ))),
            };
        }
        let local = || Route::Local {
            uri: format!("sip:{to}@{}", self.realm),
        };
        let Ok(callee) = ScriptHash::from_address(to) else {
            return Ok(local());
        };
        let Some(user) = reg.user(&callee) else {
            return Err(not_found(format!(
                "{to} is not registered with any KRYPTON provider on chain"
            )));
        };
        if user.provider == self.me {
            return Ok(local());
        }
        let Some(location) = reg.location(&user.provider) else {
            return Err(not_found(format!(
                "{to}'s provider {} is not deployed on chain any more",
                user.provider.to_address()
            )));
        };
        let Some(key) = &self.key else {
            return Err(Rejection {
                code: 503,
                reason: "this provider has no peer key yet: run `krypton provider up` again".into(),
            });
        };
        let mut claims = Claims::provider(
            &self.me.to_address(),
            &user.provider.to_address(),
            call_id,
            from,
            to,
            now,
            PEER_TOKEN_LIFETIME_SECS,
        );
        let mut id = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        claims.nonce = Some(hex::encode(id));
        Ok(Route::Peer {
            uri: format!("sip:{to}@{}", location_host(location)),
            token: mint(key.as_ref(), &claims),
        })
    }

    /// A request from outside for our user `to`, carrying the `Krypton-Provider` token `token`:
    /// the sending provider's address when it may pass. A token is taken once.
    pub fn admit(
        &mut self,
        reg: &Registry,
        token: &str,
        call_id: &str,
        to: &str,
        now: u64,
    ) -> Result<ScriptHash, Rejection> {
        if token.is_empty() {
            return Err(not_a_peer(format!("no {PEER_HEADER} token")));
        }
        let me = self.me.to_address();
        let expect = Expected {
            aud: &me,
            cid: call_id,
            nonce: None,
            iss: None,
            inst: None,
        };
        let v = verify(token, &expect, now).map_err(not_a_peer)?;
        let sender = ScriptHash::from_address(&v.iss)
            .map_err(|_| not_a_peer("the issuer is not a NEO address"))?;
        if reg.location(&sender).is_none() {
            return Err(not_a_peer(format!("{} is not deployed on chain", v.iss)));
        }
        let device = reg.device_key(&sender).map(|k| k.to_compressed());
        key_matches_address(&v.kid, &v.iss, device.as_ref())
            .map_err(|_| not_a_peer("the token is not signed with the provider's key on chain"))?;
        if v.claims.to.as_deref() != Some(to) {
            return Err(not_a_peer("the token is for another user"));
        }
        let Some(id) = v.claims.nonce.clone() else {
            return Err(not_a_peer("the token has no id"));
        };
        let callee = ScriptHash::from_address(to)
            .map_err(|_| not_found(format!("{to} is not a NEO address")))?;
        match reg.user(&callee) {
            Some(u) if u.provider == self.me => {}
            _ => {
                return Err(not_found(format!(
                    "{to} is not registered with this provider on chain"
                )));
            }
        }
        if self.seen.contains_key(&id) {
            return Err(not_a_peer("the token was used before (replay)"));
        }
        self.seen.insert(id, v.claims.exp);
        Ok(sender)
    }

    /// Forgets token ids that can no longer be presented.
    pub fn forget_expired(&mut self, now: u64) {
        self.seen.retain(|_, exp| *exp >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krypton_chain::krypton::KryptonEvent;

    const NOW: u64 = 1_800_000_000;

    struct World {
        reg: Registry,
        a: Peering,
        b: Peering,
        b_addr: ScriptHash,
        alice: String,
        bob: String,
    }

    fn deploy(reg: &mut Registry, p: ScriptHash, loc: &str) {
        reg.apply(
            &KryptonEvent::ProviderDeployed {
                provider: p,
                location: loc.into(),
            },
            &p,
        );
    }

    fn register(reg: &mut Registry, user: ScriptHash, p: ScriptHash) {
        reg.apply(
            &KryptonEvent::UserRegistered {
                user,
                provider: p,
                uuid: "u".into(),
            },
            &p,
        );
    }

    /// Providers A and B with peer keys set on chain as device keys; Alice at A, Bob at B.
    fn world() -> World {
        let (a_key, b_key) = (PrivateKey::generate(), PrivateKey::generate());
        let (a_peer, b_peer) = (PrivateKey::generate(), PrivateKey::generate());
        let (a, b) = (
            a_key.public_key().script_hash(),
            b_key.public_key().script_hash(),
        );
        let (alice, bob) = (
            PrivateKey::generate().public_key().script_hash(),
            PrivateKey::generate().public_key().script_hash(),
        );
        let mut reg = Registry::default();
        deploy(&mut reg, a, "127.0.0.1:5070");
        deploy(&mut reg, b, "127.0.0.1:5080");
        register(&mut reg, alice, a);
        register(&mut reg, bob, b);
        for (p, k) in [(a, &a_peer), (b, &b_peer)] {
            reg.apply(
                &KryptonEvent::DeviceKeyChanged {
                    user: p,
                    key: Some(k.public_key()),
                },
                &p,
            );
        }
        World {
            reg,
            a: Peering::new(
                a,
                "127.0.0.1:5070",
                Some(Arc::new(a_peer)),
                Some("127.0.0.1:6000".into()),
            ),
            b: Peering::new(b, "127.0.0.1:5080", Some(Arc::new(b_peer)), None),
            b_addr: b,
            alice: alice.to_address(),
            bob: bob.to_address(),
        }
    }

    fn peer_token(w: &World, to: &str, cid: &str) -> String {
        match w.a.route(&w.reg, &w.alice, to, cid, NOW).unwrap() {
            Route::Peer { token, .. } => token,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_by_the_chain() {
        let w = world();
        let r = w.a.route(&w.reg, &w.alice, &w.bob, "c1", NOW).unwrap();
        let Route::Peer { uri, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(uri, format!("sip:{}@127.0.0.1:5080", w.bob));
        assert_eq!(
            w.a.route(&w.reg, &w.alice, &w.alice, "c1", NOW).unwrap(),
            Route::Local {
                uri: format!("sip:{}@127.0.0.1:5070", w.alice)
            }
        );
        assert_eq!(
            w.a.route(&w.reg, &w.alice, "+31201234567", "c1", NOW)
                .unwrap(),
            Route::Trunk {
                uri: "sip:+31201234567@127.0.0.1:6000".into()
            }
        );
        let e =
            w.b.route(&w.reg, &w.bob, "+31201234567", "c1", NOW)
                .unwrap_err();
        assert_eq!(e.code, 404);
        assert!(e.reason.contains("no PSTN trunk"), "{e:?}");
        assert_eq!(
            w.a.route(&w.reg, &w.alice, "voicemail", "c1", NOW).unwrap(),
            Route::Local {
                uri: "sip:voicemail@127.0.0.1:5070".to_string()
            }
        );
        let stranger = PrivateKey::generate().public_key().address();
        let e =
            w.a.route(&w.reg, &w.alice, &stranger, "c1", NOW)
                .unwrap_err();
        assert_eq!(e.code, 404);
        assert!(e.reason.contains("not registered with any"), "{e:?}");
    }

    #[test]
    fn takes_a_deployed_providers_token_once() {
        let mut w = world();
        let t = peer_token(&w, &w.bob.clone(), "c1");
        let bob = w.bob.clone();
        let from = w.b.admit(&w.reg, &t, "c1", &bob, NOW + 1).unwrap();
        assert_eq!(from, w.a.me);
        let e = w.b.admit(&w.reg, &t, "c1", &bob, NOW + 2).unwrap_err();
        assert!(e.reason.contains("replay"), "{e:?}");
    }

    #[test]
    fn refuses_everything_else() {
        let mut w = world();
        let bob = w.bob.clone();
        let t = peer_token(&w, &bob, "c1");
        let refused = |w: &mut World, token: &str, cid: &str, to: &str, now: u64| {
            let reg = w.reg.clone();
            let e = w.b.admit(&reg, token, cid, to, now).unwrap_err();
            assert!(
                e.reason.starts_with("not from a deployed KRYPTON provider") || e.code == 404,
                "{e:?}"
            );
            e
        };
        refused(&mut w, "", "c1", &bob, NOW);
        refused(&mut w, &t, "c2", &bob, NOW); // another call
        refused(&mut w, &t, "c1", &bob, NOW + 61); // expired
        let alice = w.alice.clone();
        refused(&mut w, &t, "c1", &alice, NOW); // another user
        // For another provider (audience): C receives B's token.
        let mut c = Peering::new(w.b_addr, "x", None, None);
        c.me = PrivateKey::generate().public_key().script_hash();
        assert!(c.admit(&w.reg, &t, "c1", &bob, NOW).is_err());
        let b_address = w.b_addr.to_address();
        let signed_by = |k: &PrivateKey, iss: &str| {
            let mut claims = Claims::provider(iss, &b_address, "c1", &alice, &bob, NOW, 60);
            claims.nonce = Some("n".into());
            mint(k, &claims)
        };
        // Signed by an address that is not a deployed provider.
        let stranger = PrivateKey::generate();
        let undeployed = signed_by(&stranger, &stranger.public_key().address());
        let e = refused(&mut w, &undeployed, "c1", &bob, NOW);
        assert!(e.reason.contains("is not deployed"), "{e:?}");
        // A deployed provider's address with a key that is not its device key.
        let forged = signed_by(&PrivateKey::generate(), &w.a.me.to_address());
        let e = refused(&mut w, &forged, "c1", &bob, NOW);
        assert!(
            e.reason.contains("not signed with the provider's key"),
            "{e:?}"
        );
        // Still admitted once after all that.
        assert!(w.b.admit(&w.reg.clone(), &t, "c1", &bob, NOW).is_ok());
    }

    #[test]
    fn srv_locations_become_domains() {
        assert_eq!(location_host("127.0.0.1:5080"), "127.0.0.1:5080");
        assert_eq!(
            location_host("_sip._udp.example.org"),
            "example.org;transport=udp"
        );
        assert_eq!(
            location_host("_sips._tcp.example.org"),
            "example.org;transport=tls"
        );
    }
}
