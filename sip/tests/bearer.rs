//! KRYPTON Bearer authentication (provider/AUTH.md §4, §7) through the real user agent, against a
//! scripted registrar/proxy on loopback UDP: what goes on the wire (`Supported: krypton`,
//! `Authorization`/`Proxy-Authorization: Bearer`, same Call-ID and CSeq + 1, the account's
//! `+sip.instance`), the one fresh try after a `403 stale proof`, a refusal's `Reason` text in
//! `registration_failed`, a `503` with `Retry-After`, a signer that refuses another realm, and
//! the 407 of a MESSAGE and of an INVITE.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use krypton_sip::{
    Account, Aor, BearerChallenge, BearerSigner, CallId, EndReason, ProxyAddr, RegistrationPolicy,
    SipEvent, UaConfig, UserAgent,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(10);
const ADDRESS: &str = "NUVPACMnKFhpuHjsRjhUvXz1XhqfGZYVtY";
const INSTANCE: &str = "urn:uuid:11111111-2222-4333-8444-555555555555";

/// Signs `tok.NONCE.CALL-ID.INSTANCE` for its realm only.
#[derive(Debug)]
struct TestSigner {
    realm: String,
}

impl BearerSigner for TestSigner {
    fn token(&self, ch: &BearerChallenge, call_id: &str, instance: &str) -> Result<String, String> {
        if ch.realm != self.realm {
            return Err(format!("not signing for realm {}", ch.realm));
        }
        Ok(format!("tok.{}.{call_id}.{instance}", ch.nonce))
    }
}

/// One request as the fake proxy got it.
#[derive(Debug, Clone)]
struct Req {
    from: SocketAddr,
    method: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn cseq(&self) -> u32 {
        self.header("CSeq")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("")
    }

    fn supports_krypton(&self) -> bool {
        self.all("Supported")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "krypton")
    }
}

/// A registrar/proxy on loopback UDP that the test answers request by request.
struct Fake {
    socket: UdpSocket,
    seen: HashSet<(String, u32, String)>,
}

impl Fake {
    async fn start() -> Fake {
        Fake {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            seen: HashSet::new(),
        }
    }

    fn domain(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// The next new request (ACKs and retransmissions skipped).
    async fn next(&mut self) -> Req {
        let wait = async {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from) = self.socket.recv_from(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                let head = text.split("\r\n\r\n").next().unwrap_or("");
                let mut lines = head.split("\r\n");
                let method = lines
                    .next()
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("")
                    .to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                let req = Req {
                    from,
                    method,
                    headers,
                };
                if req.method == "ACK" || req.method.starts_with("SIP/") {
                    continue;
                }
                let key = (req.call_id().to_string(), req.cseq(), req.method.clone());
                if self.seen.insert(key) {
                    return req;
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("a request within the wait")
    }

    async fn reply(&self, req: &Req, status: u16, phrase: &str, extra: &[String]) {
        let mut out = format!("SIP/2.0 {status} {phrase}\r\n");
        for v in req.all("Via") {
            out.push_str(&format!("Via: {v}\r\n"));
        }
        let to = req.header("To").unwrap_or("");
        let to = if to.contains(";tag=") {
            to.to_string()
        } else {
            format!("{to};tag=fake")
        };
        out.push_str(&format!(
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
            req.header("From").unwrap_or(""),
            req.call_id(),
            req.header("CSeq").unwrap_or("")
        ));
        for h in extra {
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        self.socket.send_to(out.as_bytes(), req.from).await.unwrap();
    }
}

fn challenge(header: &str, realm: &str, nonce: &str) -> Vec<String> {
    vec![
        format!(r#"{header}: Bearer realm="{realm}", scope="krypton", nonce="{nonce}""#),
        format!(r#"{header}: Digest realm="{realm}", nonce="digest-{nonce}", qop="auth""#),
    ]
}

fn reason(text: &str) -> String {
    format!(r#"Reason: SIP;cause=403;text="{text}""#)
}

fn account(fake: &Fake, register: bool) -> Account {
    let domain = fake.domain();
    Account {
        id: "wallet".into(),
        aor: Aor::parse(&format!("sip:{ADDRESS}@{domain}")).unwrap(),
        display_name: None,
        proxy: ProxyAddr::parse(&format!("sip:{domain};transport=udp")).unwrap(),
        credentials: None,
        register,
        policy: RegistrationPolicy {
            expires: 60,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(2),
            keepalive: None,
        },
        tls_ca: None,
        instance: Some(INSTANCE.into()),
        bearer: Some(Arc::new(TestSigner { realm: domain })),
    }
}

async fn start_ua() -> (UserAgent, UnboundedReceiver<SipEvent>) {
    UserAgent::start(UaConfig {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        user_agent: "krypton-test".into(),
        instance: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
    })
    .await
    .expect("start UA")
}

/// The next registration outcome: `Ok(expires)` or `Err((status, reason, retry_in))`.
async fn registration(
    rx: &mut UnboundedReceiver<SipEvent>,
) -> Result<u32, (Option<u16>, String, Option<Duration>)> {
    let wait = async {
        while let Some(e) = rx.recv().await {
            match e {
                SipEvent::Registered { expires, .. } => return Ok(expires),
                SipEvent::RegistrationFailed {
                    status,
                    reason,
                    retry_in,
                    ..
                } => return Err((status, reason, retry_in)),
                _ => {}
            }
        }
        panic!("the event stream ended");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("a registration outcome")
}

/// The token in a request's `header`, which must be `Bearer tok.NONCE.CALL-ID.INSTANCE`.
fn assert_token(req: &Req, header: &str, nonce: &str) {
    let v = req
        .header(header)
        .unwrap_or_else(|| panic!("no {header} in {req:?}"));
    assert_eq!(
        v,
        format!("Bearer tok.{nonce}.{}.{INSTANCE}", req.call_id()),
        "{req:?}"
    );
}

#[tokio::test]
async fn a_bearer_registration_with_one_stale_proof() {
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();

    let r1 = fake.next().await;
    assert_eq!(r1.method, "REGISTER");
    assert!(r1.supports_krypton(), "{r1:?}");
    assert!(
        r1.all("Supported").iter().any(|v| v.contains("outbound")),
        "the other option tags stay: {r1:?}"
    );
    assert!(r1.header("Authorization").is_none());
    assert_eq!(r1.header("Expires"), Some("60"));
    let contact = r1.header("Contact").unwrap().to_string();
    assert!(
        contact.contains(&format!("+sip.instance=\"<{INSTANCE}>\"")),
        "{contact}"
    );
    assert!(
        contact.starts_with(&format!("<sip:{ADDRESS}@")),
        "{contact}"
    );
    fake.reply(
        &r1,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n1"),
    )
    .await;

    // Bearer, not digest; same Call-ID, next CSeq.
    let r2 = fake.next().await;
    assert_eq!((r2.call_id(), r2.cseq()), (r1.call_id(), r1.cseq() + 1));
    assert!(r2.supports_krypton());
    assert_token(&r2, "Authorization", "n1");
    fake.reply(&r2, 403, "Stale proof", &[reason("stale proof: retry")])
        .await;

    // One fresh REGISTER without credentials, for a new nonce.
    let r3 = fake.next().await;
    assert_eq!((r3.call_id(), r3.cseq()), (r1.call_id(), r2.cseq() + 1));
    assert!(r3.header("Authorization").is_none(), "{r3:?}");
    fake.reply(
        &r3,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n2"),
    )
    .await;
    let r4 = fake.next().await;
    assert_eq!(r4.cseq(), r3.cseq() + 1);
    assert_token(&r4, "Authorization", "n2");
    fake.reply(
        &r4,
        200,
        "OK",
        &[
            format!("Contact: {contact};expires=60"),
            "Expires: 60".into(),
        ],
    )
    .await;

    // The stale proof never reached the user.
    assert_eq!(registration(&mut rx).await, Ok(60));
}

#[tokio::test]
async fn refusals_reach_registration_failed_with_the_providers_text() {
    // A 403 after the token: its Reason text, no retry.
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    let r = fake.next().await;
    fake.reply(
        &r,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n1"),
    )
    .await;
    let r = fake.next().await;
    let text = "registered with provider NXYZ on chain, not with this one";
    fake.reply(&r, 403, "Not this provider", &[reason(text)])
        .await;
    assert_eq!(
        registration(&mut rx).await,
        Err((Some(403), text.to_string(), None))
    );

    // A second stale proof is a rejection too.
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    for nonce in ["n1", "n2"] {
        let r = fake.next().await;
        fake.reply(
            &r,
            401,
            "Unauthorized",
            &challenge("WWW-Authenticate", &realm, nonce),
        )
        .await;
        let r = fake.next().await;
        assert_token(&r, "Authorization", nonce);
        fake.reply(&r, 403, "Stale", &[reason("stale proof: retry")])
            .await;
    }
    assert_eq!(
        registration(&mut rx).await,
        Err((Some(403), "stale proof: retry".to_string(), None))
    );

    // A second 401 after the token: rejected with its text.
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    let r = fake.next().await;
    fake.reply(
        &r,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n1"),
    )
    .await;
    let r = fake.next().await;
    let mut again = challenge("WWW-Authenticate", &realm, "n2");
    again.push(reason("the proof is not signed by this address's key"));
    fake.reply(&r, 401, "Unauthorized", &again).await;
    assert_eq!(
        registration(&mut rx).await,
        Err((
            Some(401),
            "the proof is not signed by this address's key".to_string(),
            None
        ))
    );

    // A 403 without a Reason: its phrase.
    let mut fake = Fake::start().await;
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    let r = fake.next().await;
    fake.reply(&r, 403, "Forbidden", &[]).await;
    assert_eq!(
        registration(&mut rx).await,
        Err((Some(403), "403 Forbidden".to_string(), None))
    );
}

#[tokio::test]
async fn a_challenge_for_another_realm_is_not_signed() {
    let mut fake = Fake::start().await;
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    let r = fake.next().await;
    fake.reply(
        &r,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", "other.provider.test", "n1"),
    )
    .await;
    let (status, reason, retry) = registration(&mut rx).await.unwrap_err();
    assert_eq!(status, Some(401));
    assert_eq!(reason, "not signing for realm other.provider.test");
    assert_eq!(retry, None);
}

#[tokio::test]
async fn a_503_is_retried_after_its_retry_after() {
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, true)).unwrap();
    let r = fake.next().await;
    fake.reply(
        &r,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n1"),
    )
    .await;
    let r = fake.next().await;
    fake.reply(
        &r,
        503,
        "Service Unavailable",
        &[
            r#"Reason: SIP;cause=503;text="provider service unavailable""#.into(),
            "Retry-After: 1".into(),
        ],
    )
    .await;
    assert_eq!(
        registration(&mut rx).await,
        Err((
            Some(503),
            "provider service unavailable".to_string(),
            Some(Duration::from_secs(1))
        ))
    );
    // The retry is a new transaction: a new challenge, a new token, and it works.
    let r = fake.next().await;
    assert!(r.header("Authorization").is_none());
    fake.reply(
        &r,
        401,
        "Unauthorized",
        &challenge("WWW-Authenticate", &realm, "n2"),
    )
    .await;
    let r = fake.next().await;
    assert_token(&r, "Authorization", "n2");
    fake.reply(&r, 200, "OK", &["Expires: 60".into()]).await;
    assert_eq!(registration(&mut rx).await, Ok(60));
}

#[tokio::test]
async fn message_and_invite_answer_a_407_with_a_bearer_token() {
    let mut fake = Fake::start().await;
    let realm = fake.domain();
    let (ua, mut rx) = start_ua().await;
    ua.add_account(account(&fake, false)).unwrap();

    // MESSAGE: 407 → Proxy-Authorization: Bearer → 202.
    let id = ua
        .message("wallet", "NBob", "text/plain", b"hi".to_vec())
        .await
        .unwrap();
    let m1 = fake.next().await;
    assert_eq!(m1.method, "MESSAGE");
    assert!(m1.supports_krypton(), "{m1:?}");
    fake.reply(
        &m1,
        407,
        "Proxy Authentication Required",
        &challenge("Proxy-Authenticate", &realm, "m1"),
    )
    .await;
    let m2 = fake.next().await;
    assert_eq!((m2.call_id(), m2.cseq()), (m1.call_id(), m1.cseq() + 1));
    assert_token(&m2, "Proxy-Authorization", "m1");
    fake.reply(&m2, 202, "Accepted", &[]).await;

    // INVITE: 407 → INVITE with Proxy-Authorization: Bearer → 403 with a Reason.
    let call = ua
        .call("wallet", "NBob", b"v=0\r\n".to_vec())
        .await
        .unwrap();
    let i1 = fake.next().await;
    assert_eq!(i1.method, "INVITE");
    assert!(i1.supports_krypton(), "{i1:?}");
    assert!(
        i1.all("Supported").iter().any(|v| v.contains("replaces")),
        "{i1:?}"
    );
    fake.reply(
        &i1,
        407,
        "Proxy Authentication Required",
        &challenge("Proxy-Authenticate", &realm, "i1"),
    )
    .await;
    let i2 = fake.next().await;
    assert_eq!(i2.method, "INVITE");
    assert_eq!((i2.call_id(), i2.cseq()), (i1.call_id(), i1.cseq() + 1));
    assert_token(&i2, "Proxy-Authorization", "i1");
    fake.reply(&i2, 403, "Forbidden", &[reason("NBob is not reachable")])
        .await;

    let (mut message, mut ended) = (None, None);
    let wait = async {
        while message.is_none() || ended.is_none() {
            match rx.recv().await.expect("events") {
                SipEvent::MessageResult { id: i, status, .. } if i == id => message = Some(status),
                SipEvent::Ended { call: c, reason } if c == call => ended = Some(reason),
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("both outcomes");
    assert_eq!(message, Some(Some(202)));
    assert_eq!(
        ended,
        Some(EndReason::Failed {
            status: Some(403),
            reason: "NBob is not reachable".into()
        })
    );
    let _: CallId = call;
}
