//! The provider kit on a real devnet: two providers (`krypton provider up`: Kamailio + the
//! provider service), users registered on chain, and SIP REGISTERs carrying Bearer proofs, good and
//! bad (provider/AUTH.md). The SIP client here is a raw UDP one so that it can send the proofs a
//! phone never would (forged, replayed, expired, for another address).

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Devnet, Krypton};
use krypton_auth::{Claims, mint};
use krypton_wallet::{Nep6Wallet, PrivateKey};
use serde_json::Value;

const PW: &str = "devnet\n";
const T: Duration = Duration::from_secs(5);

/// One provider run by `krypton provider up` in its own data dir; `down` on drop.
struct Provider {
    k: Krypton,
    address: String,
    status: Value,
}

impl Provider {
    fn up(d: &Devnet, name: &str) -> Self {
        let k = d.client_with_accounts();
        let address = d.account(name);
        let status = k
            .run(
                &["--account", &address, "--password-stdin", "provider", "up"],
                PW,
            )
            .ok();
        assert_eq!(status["running"], true, "{status}");
        Provider { k, address, status }
    }

    fn sip(&self) -> SocketAddr {
        self.status["sip"].as_str().unwrap().parse().unwrap()
    }

    fn realm(&self) -> String {
        self.status["location"].as_str().unwrap().to_string()
    }

    fn service(&self) -> SocketAddr {
        self.status["service"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .parse()
            .unwrap()
    }

    /// `GET path` on the provider service: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect_timeout(&self.service(), T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let code = raw[9..12].parse().unwrap();
        let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        (code, body.to_string())
    }

    /// One Prometheus sample of `/metrics`.
    fn metric(&self, name: &str) -> u64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("krypton_provider_{name} ")))
            .unwrap_or_else(|| panic!("no metric {name} in {body}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until the service's cache holds `users` registered users in all.
    fn wait_users(&self, users: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.metric("users") != users {
            assert!(
                Instant::now() < deadline,
                "the service never saw {users} users"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kamcmd ul.lookup location ADDRESS` on this provider's Kamailio: is there a binding?
    fn has_binding(&self, address: &str) -> bool {
        let ctl = self.k.path().join("provider/kamailio/kamailio_ctl");
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}", ctl.display()))
            .args(["ul.lookup", "location", address])
            .output()
            .expect("kamcmd");
        String::from_utf8_lossy(&out.stdout).contains("Contact")
    }

    fn pid(&self, which: &str) -> i64 {
        self.k.run(&["provider", "status"], "").ok()[which]
            .as_i64()
            .unwrap_or(0)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.k.run(&["provider", "down"], "");
    }
}

/// A SIP response: status line and headers.
#[derive(Debug)]
struct Response {
    status: u16,
    raw: String,
}

impl Response {
    fn headers(&self, name: &str) -> Vec<String> {
        self.raw
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The `text` of the `Reason` header.
    fn reason(&self) -> String {
        let r = self.headers("Reason").join(" ");
        r.split_once("text=\"")
            .and_then(|(_, t)| t.split_once('"'))
            .map(|(t, _)| t.to_string())
            .unwrap_or_default()
    }

    /// The nonce of the Bearer challenge.
    fn bearer_nonce(&self) -> Option<String> {
        self.headers("WWW-Authenticate")
            .into_iter()
            .find(|h| h.starts_with("Bearer "))
            .and_then(|h| {
                let (_, rest) = h.split_once("nonce=\"")?;
                Some(rest.split_once('"')?.0.to_string())
            })
    }
}

/// A raw UDP SIP client registering `user` at one provider.
struct Registrar {
    sock: UdpSocket,
    to: SocketAddr,
    realm: String,
    cseq: u32,
}

const INSTANCE: &str = "urn:uuid:6f1d9a7e-2b4c-4d8e-9a1b-3c5d7e9f1a2b";

impl Registrar {
    fn new(p: &Provider) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(T)).unwrap();
        Registrar {
            sock,
            to: p.sip(),
            realm: p.realm(),
            cseq: 0,
        }
    }

    /// Sends one REGISTER and returns its final response.
    fn register(&mut self, user: &str, call_id: &str, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let local = self.sock.local_addr().unwrap();
        let msg = common::raw_register(
            &self.realm,
            user,
            local,
            call_id,
            self.cseq,
            INSTANCE,
            3600,
            authorization,
        );
        self.sock.send_to(msg.as_bytes(), self.to).unwrap();
        let mut buf = vec![0u8; 65535];
        loop {
            let n = self.sock.recv(&mut buf).expect("a response to REGISTER");
            let raw = String::from_utf8_lossy(&buf[..n]).to_string();
            let status: u16 = raw[8..11].parse().unwrap();
            if status >= 200 && raw.contains(&format!("CSeq: {} REGISTER", self.cseq)) {
                return Response { status, raw };
            }
        }
    }

    /// REGISTER, answer the Bearer challenge with `sign(nonce)`, return the final response.
    fn register_with(
        &mut self,
        user: &str,
        call_id: &str,
        sign: impl FnOnce(&str) -> String,
    ) -> Response {
        let challenge = self.register(user, call_id, None);
        assert_eq!(challenge.status, 401, "{challenge:?}");
        assert!(
            challenge
                .headers("WWW-Authenticate")
                .iter()
                .any(|h| h.starts_with("Digest ")),
            "standard clients get a digest challenge too: {challenge:?}"
        );
        let nonce = challenge.bearer_nonce().expect("a Bearer challenge");
        let token = sign(&nonce);
        self.register(user, call_id, Some(&format!("Bearer {token}")))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The devnet's named test keys.
struct Keys(Vec<(String, PrivateKey)>);

impl Keys {
    fn of(d: &Devnet) -> Self {
        let w =
            Nep6Wallet::from_json(&std::fs::read_to_string(d.accounts_file()).unwrap()).unwrap();
        Keys(
            ["alice", "bob", "owner", "provider-a"]
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        w.decrypt_account(&d.account(n), "devnet").unwrap(),
                    )
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &PrivateKey {
        &self.0.iter().find(|(n, _)| n == name).unwrap().1
    }
}

fn register_on_chain(d: &Devnet, user: &str, provider: &Provider) {
    d.run(
        &[
            "--account",
            &d.account(user),
            "--password-stdin",
            "register",
            "--provider",
            &provider.address,
        ],
        PW,
    )
    .ok();
}

#[test]
fn registration_matrix() {
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    let keys = Keys::of(&d);
    let key = |n: &str| keys.get(n);
    let (alice, bob, owner) = (d.account("alice"), d.account("bob"), d.account("owner"));
    let a = Provider::up(&d, "provider-a");
    let b = Provider::up(&d, "provider-b");
    register_on_chain(&d, "alice", &a);
    register_on_chain(&d, "bob", &b);
    a.wait_users(2);
    let realm = a.realm();
    let mut sip = Registrar::new(&a);
    let token = |who: &str, iss: &str, nonce: &str, cid: &str, iat: u64| {
        mint(
            key(who),
            &Claims::register(iss, &realm, nonce, cid, INSTANCE, iat, 60),
        )
    };

    // Alice, registered with A on chain, proves her key: admitted, for at most 60 s.
    let mut alice_token = String::new();
    let ok = sip.register_with(&alice, "c-alice", |n| {
        alice_token = token("alice", &alice, n, "c-alice", now());
        alice_token.clone()
    });
    assert_eq!(ok.status, 200, "{ok:?}");
    let expires = ok.headers("Contact").join(" ");
    assert!(expires.contains("expires=60"), "{expires}");
    assert!(a.has_binding(&alice));

    // Each refusal is a 403 with the reason the phone shows.
    let refused = |r: Response, want: &str| {
        assert_eq!(r.status, 403, "{r:?}");
        assert!(r.reason().contains(want), "{:?} lacks {want:?}", r.reason());
    };
    // The same token again: its nonce is spent.
    refused(
        sip.register(&alice, "c-alice", Some(&format!("Bearer {alice_token}"))),
        "stale proof",
    );
    // Not registered on chain (owner never registered).
    refused(
        sip.register_with(&owner, "c-owner", |n| {
            token("owner", &owner, n, "c-owner", now())
        }),
        "not registered with this provider on chain: run krypton register",
    );
    // Registered with B, not with A.
    refused(
        sip.register_with(&bob, "c-bob", |n| token("bob", &bob, n, "c-bob", now())),
        &format!("registered with provider {} on chain", b.address),
    );
    // A forged signature: Alice's claims signed by another key, with her key's id.
    refused(
        sip.register_with(&alice, "c-forged", |n| {
            let genuine = token("alice", &alice, n, "c-forged", now());
            let forged = token("bob", &alice, n, "c-forged", now());
            let (head, _) = genuine.rsplit_once('.').unwrap();
            let (_, sig) = forged.rsplit_once('.').unwrap();
            format!("{head}.{sig}")
        }),
        "not signed by this address",
    );
    // Bob's own key, claiming to be Alice.
    refused(
        sip.register_with(&alice, "c-claim", |n| {
            token("bob", &alice, n, "c-claim", now())
        }),
        "not signed by this address",
    );
    // A proof for another address than the one registering (Bob's proof, Alice's AOR).
    refused(
        sip.register_with(&alice, "c-other", |n| {
            token("bob", &bob, n, "c-other", now())
        }),
        "proof is for another address",
    );
    // Expired.
    refused(
        sip.register_with(&alice, "c-old", |n| {
            token("alice", &alice, n, "c-old", now() - 120)
        }),
        "expired proof",
    );
    // A proof made for another request (another Call-ID).
    refused(
        sip.register_with(&alice, "c-x", |n| token("alice", &alice, n, "c-y", now())),
        "proof is for another call",
    );
    assert!(
        a.has_binding(&alice),
        "refusals leave Alice's binding alone"
    );

    // Alice leaves A on chain: her binding goes at once and her next refresh fails.
    let left = Instant::now();
    d.run(&["--account", &alice, "--password-stdin", "unregister"], PW)
        .ok();
    a.wait_users(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.has_binding(&alice) {
        assert!(Instant::now() < deadline, "the binding was not removed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.metric("bindings_removed_total"), 1);
    refused(
        sip.register_with(&alice, "c-after", |n| {
            token("alice", &alice, n, "c-after", now())
        }),
        "not registered with this provider on chain",
    );
    assert!(left.elapsed() < Duration::from_secs(60));

    // B's service stops: its Kamailio answers a proof with 503 + Retry-After; back up, Bob
    // registers again (the cache rebuilt from the chain) and Kamailio kept running throughout.
    let mut sip_b = Registrar::new(&b);
    let realm_b = b.realm();
    let token_b = |nonce: &str, cid: &str| {
        mint(
            key("bob"),
            &Claims::register(&bob, &realm_b, nonce, cid, INSTANCE, now(), 60),
        )
    };
    let r = sip_b.register_with(&bob, "c-b1", |n| token_b(n, "c-b1"));
    assert_eq!(r.status, 200, "{r:?}");
    let kamailio = b.pid("kamailio_pid");
    let service = b.pid("service_pid");
    assert!(
        Command::new("kill")
            .arg(service.to_string())
            .status()
            .unwrap()
            .success()
    );
    // Kamailio makes the Bearer challenge itself (AUTH.md §4), so the 401 still comes; the
    // proof, which only the service can check, is what gets the 503 (fail closed).
    let deadline = Instant::now() + T;
    let down = loop {
        let r = sip_b.register_with(&bob, "c-b2", |n| token_b(n, "c-b2"));
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(down.headers("Retry-After"), vec!["5".to_string()]);
    let again = b.k.run(&["provider", "up"], "").ok();
    assert_eq!(again["kamailio_pid"].as_i64().unwrap(), kamailio);
    assert_ne!(again["service_pid"].as_i64().unwrap(), service);
    let r = sip_b.register_with(&bob, "c-b3", |n| token_b(n, "c-b3"));
    assert_eq!(r.status, 200, "{r:?}");

    // Requests from outside (AUTH.md §6): B takes a MESSAGE for Bob only with a token that a
    // deployed provider signed with its peer key (its device key on chain), once. Bob's binding
    // is `sip_b`'s socket, so a message B lets in arrives there.
    let peer_key = {
        let hex_key = std::fs::read_to_string(a.k.path().join("provider/peer.key")).unwrap();
        PrivateKey::from_bytes(&hex::decode(hex_key.trim()).unwrap()).unwrap()
    };
    assert_eq!(
        d.query("key", &a.address),
        Value::String(peer_key.public_key().to_hex()),
        "`provider up` authorised its peer key on chain"
    );
    let peer_token = |signer: &PrivateKey, iss: &str, cid: &str| {
        let mut c = Claims::provider(iss, &b.address, cid, &alice, &bob, now(), 60);
        c.nonce = Some(format!("id-{cid}"));
        mint(signer, &c)
    };
    let mut outside = Outside::new(&b);
    let refused_from_outside = |r: Response, want: &str| {
        assert_eq!(r.status, 403, "{r:?}");
        let reason = r.reason();
        assert!(
            reason.starts_with("not from a deployed KRYPTON provider") && reason.contains(want),
            "{reason:?} lacks {want:?}"
        );
    };
    refused_from_outside(
        outside.message(&bob, "p-none", None),
        "no Krypton-Provider token",
    );
    refused_from_outside(
        outside.message(
            &bob,
            "p-owner",
            Some(&peer_token(key("owner"), &owner, "p-owner")),
        ),
        "is not deployed",
    );
    refused_from_outside(
        outside.message(
            &bob,
            "p-wallet",
            Some(&peer_token(key("provider-a"), &a.address, "p-wallet")),
        ),
        "not signed with the provider's key",
    );
    let genuine = peer_token(&peer_key, &a.address, "p-ok");
    let delivered = outside.message_answered(&bob, "p-ok", Some(&genuine), &sip_b.sock);
    assert_eq!(delivered.status, 200, "{delivered:?}");
    refused_from_outside(outside.message(&bob, "p-ok", Some(&genuine)), "replay");
}

/// A raw UDP SIP sender outside every provider, sending MESSAGEs to one provider's user.
struct Outside {
    sock: UdpSocket,
    to: SocketAddr,
    realm: String,
    cseq: u32,
}

impl Outside {
    fn new(p: &Provider) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(T)).unwrap();
        Outside {
            sock,
            to: p.sip(),
            realm: p.realm(),
            cseq: 0,
        }
    }

    fn send(&mut self, user: &str, call_id: &str, token: Option<&str>) {
        self.cseq += 1;
        let local = self.sock.local_addr().unwrap();
        let token = token
            .map(|t| format!("Krypton-Provider: {t}\r\n"))
            .unwrap_or_default();
        let body = "hello from outside";
        let msg = format!(
            "MESSAGE sip:{user}@{realm} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKo{cid}{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@elsewhere.example>;tag=o{cseq}\r\n\
             To: <sip:{user}@{realm}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} MESSAGE\r\n\
             {token}Content-Type: text/plain\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            realm = self.realm,
            cid = call_id,
            cseq = self.cseq,
            len = body.len(),
        );
        self.sock.send_to(msg.as_bytes(), self.to).unwrap();
    }

    fn final_response(&self) -> Response {
        let mut buf = vec![0u8; 65535];
        loop {
            let n = self.sock.recv(&mut buf).expect("a response to MESSAGE");
            let raw = String::from_utf8_lossy(&buf[..n]).to_string();
            let status: u16 = raw[8..11].parse().unwrap();
            if status >= 200 && raw.contains(&format!("CSeq: {} MESSAGE", self.cseq)) {
                return Response { status, raw };
            }
        }
    }

    /// Sends a MESSAGE for `user`; its final response.
    fn message(&mut self, user: &str, call_id: &str, token: Option<&str>) -> Response {
        self.send(user, call_id, token);
        self.final_response()
    }

    /// Sends a MESSAGE for `user`, expects the provider to deliver it to `binding` (without the
    /// token) and answers 200 there; the final response the sender gets.
    fn message_answered(
        &mut self,
        user: &str,
        call_id: &str,
        token: Option<&str>,
        binding: &UdpSocket,
    ) -> Response {
        self.send(user, call_id, token);
        let mut buf = vec![0u8; 65535];
        let (n, from) = binding
            .recv_from(&mut buf)
            .expect("the MESSAGE is delivered");
        let req = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(req.starts_with("MESSAGE "), "{req}");
        assert!(req.ends_with("hello from outside"), "{req}");
        assert!(
            !req.to_ascii_lowercase().contains("krypton-provider"),
            "the token is not passed on: {req}"
        );
        let copy = ["Via", "From", "To", "Call-ID", "CSeq"];
        let headers: String = req
            .lines()
            .filter(|l| {
                l.split_once(':')
                    .is_some_and(|(k, _)| copy.iter().any(|c| k.eq_ignore_ascii_case(c)))
            })
            .map(|l| format!("{l}\r\n"))
            .collect();
        let ok = format!("SIP/2.0 200 OK\r\n{headers}Content-Length: 0\r\n\r\n");
        binding.send_to(ok.as_bytes(), from).unwrap();
        self.final_response()
    }
}
