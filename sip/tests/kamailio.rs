//! The user agent against a real Kamailio on loopback: registration (MD5 and SHA-256 digest,
//! UDP/TCP/WS/TLS, wrong password), re-registration after a proxy restart, MESSAGE, and a call
//! between two of our user agents through the proxy (UDP↔TCP, TLS, WebSocket↔UDP both ways
//! with a hold re-INVITE); over TLS also an untrusted certificate and
//! one for another name, which fail registration once with a reason.

use std::time::Duration;

use krypton_sip::digest::Credentials;
use krypton_sip::{
    Account, Aor, CallId, EndReason, ProxyAddr, RegistrationPolicy, SipEvent, UaConfig, UserAgent,
};
use krypton_testkit::{DigestAlgorithm, Kamailio, KamailioConfig, KamailioTls, TestCa};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(15);

fn kamailio(algorithm: DigestAlgorithm) -> Kamailio {
    Kamailio::start(KamailioConfig {
        users: vec![
            ("alice".into(), "alice-pw".into()),
            ("bob".into(), "bob-pw".into()),
        ],
        algorithm,
        ..Default::default()
    })
    .expect("start kamailio")
}

fn tls_kamailio(algorithm: DigestAlgorithm, tls: KamailioTls) -> Kamailio {
    Kamailio::start_tls(
        KamailioConfig {
            users: vec![
                ("alice".into(), "alice-pw".into()),
                ("bob".into(), "bob-pw".into()),
            ],
            algorithm,
            ..Default::default()
        },
        tls,
    )
    .expect("start kamailio with TLS")
}

fn account(k: &Kamailio, user: &str, password: &str, transport: &str) -> Account {
    account_via(k, user, password, &k.proxy_uri(transport))
}

/// An account over TLS to `host` (the proxy is on 127.0.0.1) that trusts Kamailio's test CA.
fn tls_account(k: &Kamailio, user: &str, host: &str) -> Account {
    Account {
        tls_ca: k.tls_ca().map(Into::into),
        ..account_via(k, user, &format!("{user}-pw"), &k.proxy_uri_at(host, "tls"))
    }
}

fn account_via(k: &Kamailio, user: &str, password: &str, proxy: &str) -> Account {
    Account {
        id: user.to_string(),
        aor: Aor::parse(&format!("sip:{user}@{}", k.domain())).unwrap(),
        display_name: None,
        proxy: ProxyAddr::parse(proxy).unwrap(),
        credentials: Some(Credentials::new(user, password)),
        register: true,
        policy: RegistrationPolicy {
            expires: 300,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(2),
            keepalive: Some(Duration::from_secs(1)),
        },
        tls_ca: None,
        instance: None,
        bearer: None,
    }
}

async fn ua() -> (UserAgent, UnboundedReceiver<SipEvent>) {
    UserAgent::start(UaConfig {
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        user_agent: "krypton-test".into(),
        instance: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
    })
    .await
    .expect("start UA")
}

/// The next event that `pick` accepts; others are skipped. Panics after `WAIT`.
async fn next<T>(
    rx: &mut UnboundedReceiver<SipEvent>,
    what: &str,
    mut pick: impl FnMut(&SipEvent) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(e) = rx.recv().await {
            if let Some(t) = pick(&e) {
                return t;
            }
        }
        panic!("event stream ended while waiting for {what}");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

/// The final status of the MESSAGE `id`.
async fn message_result(rx: &mut UnboundedReceiver<SipEvent>, id: u64) -> Option<u16> {
    next(rx, "message result", |e| match e {
        SipEvent::MessageResult { id: i, status, .. } if *i == id => Some(*status),
        _ => None,
    })
    .await
}

/// The next incoming call and its offer.
async fn incoming(rx: &mut UnboundedReceiver<SipEvent>) -> (CallId, Option<Vec<u8>>) {
    next(rx, "incoming", |e| match e {
        SipEvent::Incoming { call, offer, .. } => Some((*call, offer.clone())),
        _ => None,
    })
    .await
}

/// A minimal PCMU SDP with session version `v` and audio on `port`.
fn sdp(v: u32, port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- {v} {v} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
    )
    .into_bytes()
}

async fn registered(rx: &mut UnboundedReceiver<SipEvent>) -> u32 {
    next(rx, "registered", |e| match e {
        SipEvent::Registered { expires, .. } => Some(*expires),
        SipEvent::RegistrationFailed { reason, .. } => panic!("registration failed: {reason}"),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn registers_with_md5_and_sha256_over_udp_tcp_and_ws() {
    for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let k = kamailio(algorithm);
        for transport in ["udp", "tcp", "ws"] {
            let (ua, mut rx) = ua().await;
            ua.add_account(account(&k, "alice", "alice-pw", transport))
                .unwrap();
            let expires = registered(&mut rx).await;
            assert!(
                expires > 0 && expires <= 300,
                "{algorithm:?}/{transport}: {expires}"
            );
            ua.shutdown().await;
            next(&mut rx, "unregistered", |e| {
                matches!(e, SipEvent::Unregistered { .. }).then_some(())
            })
            .await;
        }
    }
}

#[tokio::test]
async fn a_wrong_password_fails_with_a_reason() {
    let k = kamailio(DigestAlgorithm::Sha256);
    let (ua, mut rx) = ua().await;
    ua.add_account(account(&k, "alice", "not-her-password", "udp"))
        .unwrap();
    let (status, reason, retry) = next(&mut rx, "registration_failed", |e| match e {
        SipEvent::RegistrationFailed {
            status,
            reason,
            retry_in,
            ..
        } => Some((*status, reason.clone(), *retry_in)),
        SipEvent::Registered { .. } => panic!("registered with a wrong password"),
        _ => None,
    })
    .await;
    assert_eq!(status, Some(401));
    assert!(reason.contains("password"), "{reason}");
    assert_eq!(retry, None, "a wrong password is not retried in a loop");
}

#[tokio::test]
async fn registers_again_after_the_proxy_restarts() {
    // Over TCP the keep-alive is an OPTIONS on the flow too: rsipstack 0.7.14 swallows the CRLF
    // pong of an RFC 5626 ping (see `Registration`), so a ping could not tell a dead flow.
    for transport in ["udp", "tcp"] {
        let mut k = kamailio(DigestAlgorithm::Md5);
        let (ua, mut rx) = ua().await;
        ua.add_account(account(&k, "alice", "alice-pw", transport))
            .unwrap();
        registered(&mut rx).await;
        k.stop();
        // The keep-alive notices the dead proxy.
        next(&mut rx, "registration_failed", |e| {
            matches!(e, SipEvent::RegistrationFailed { .. }).then_some(())
        })
        .await;
        k.restart().expect("restart kamailio");
        let started = std::time::Instant::now();
        next(&mut rx, "registered", |e| match e {
            SipEvent::Registered { .. } => Some(()),
            SipEvent::RegistrationFailed {
                retry_in, reason, ..
            } => {
                assert!(
                    retry_in.is_some(),
                    "{transport}: gave up while the proxy was down: {reason}"
                );
                None
            }
            _ => None,
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{transport}: re-registered after {:?}",
            started.elapsed()
        );
        let bindings = k.bindings().expect("ul.dump");
        if transport == "tcp" {
            assert!(bindings.contains("transport=tcp"), "{bindings}");
        }
        ua.shutdown().await;
    }
}

#[tokio::test]
async fn messages_and_a_call_between_two_user_agents() {
    let k = kamailio(DigestAlgorithm::Md5);
    let (alice, mut arx) = ua().await;
    let (bob, mut brx) = ua().await;
    alice
        .add_account(account(&k, "alice", "alice-pw", "udp"))
        .unwrap();
    bob.add_account(account(&k, "bob", "bob-pw", "tcp"))
        .unwrap();
    registered(&mut arx).await;
    registered(&mut brx).await;

    // MESSAGE alice → bob (proxy-authenticated), delivered with status 200.
    let id = alice
        .message("alice", "bob", "text/plain", b"hello bob".to_vec())
        .await
        .unwrap();
    let (from, body) = next(&mut brx, "message", |e| match e {
        SipEvent::MessageReceived { from, body, .. } => Some((from.clone(), body.clone())),
        _ => None,
    })
    .await;
    assert_eq!(body, b"hello bob");
    assert!(from.starts_with("sip:alice@"), "{from}");
    let status = message_result(&mut arx, id).await;
    assert_eq!(status, Some(200));

    // A MESSAGE to nobody fails with the proxy's 404.
    let id = alice
        .message("alice", "carol", "text/plain", b"?".to_vec())
        .await
        .unwrap();
    let status = message_result(&mut arx, id).await;
    assert_eq!(status, Some(404));

    // Call alice → bob; bob rings, answers; alice hangs up.
    let offer = sdp(1, 40000);
    let call = alice.call("alice", "bob", offer.clone()).await.unwrap();
    let (bcall, got_offer) = incoming(&mut brx).await;
    assert_eq!(got_offer.as_deref(), Some(offer.as_slice()));
    bob.ringing(bcall).unwrap();
    next(&mut arx, "ringing", |e| match e {
        SipEvent::Progress {
            call: c,
            status: 180,
            ..
        } if *c == call => Some(()),
        _ => None,
    })
    .await;
    let answer = sdp(2, 40002);
    bob.answer(bcall, answer.clone()).unwrap();
    let sdp = next(&mut arx, "answered", |e| match e {
        SipEvent::Answered { call: c, sdp } if *c == call => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(sdp, answer);
    next(&mut brx, "confirmed", |e| {
        matches!(e, SipEvent::Confirmed { call } if *call == bcall).then_some(())
    })
    .await;

    // Hold by re-INVITE from bob, answered by alice.
    bob.reoffer(bcall, answer.clone()).unwrap();
    let reoffer = next(&mut arx, "remote offer", |e| match e {
        SipEvent::RemoteOffer { call: c, sdp } if *c == call => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reoffer, answer);
    alice.answer_reoffer(call, Ok(offer.clone())).unwrap();
    let result = next(&mut brx, "reoffer result", |e| match e {
        SipEvent::ReofferResult { call: c, result } if *c == bcall => Some(result.clone()),
        _ => None,
    })
    .await;
    assert_eq!(result, Ok(offer.clone()));

    alice.hangup(call).unwrap();
    let a_reason = next(&mut arx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == call => Some(reason.clone()),
        _ => None,
    })
    .await;
    let b_reason = next(&mut brx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == bcall => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(a_reason, EndReason::LocalHangup);
    assert_eq!(b_reason, EndReason::RemoteHangup);

    // A call to someone busy: bob rejects with 486.
    let call = alice.call("alice", "bob", offer.clone()).await.unwrap();
    let bcall = next(&mut brx, "incoming", |e| match e {
        SipEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    bob.reject(bcall, 486).unwrap();
    let reason = next(&mut arx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == call => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::Busy);

    // Alice cancels while bob's phone rings.
    let call = alice.call("alice", "bob", offer).await.unwrap();
    let bcall = next(&mut brx, "incoming", |e| match e {
        SipEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
    .await;
    bob.ringing(bcall).unwrap();
    next(&mut arx, "ringing", |e| match e {
        SipEvent::Progress { call: c, .. } if *c == call => Some(()),
        _ => None,
    })
    .await;
    alice.hangup(call).unwrap();
    let reason = next(&mut brx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == bcall => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, EndReason::RemoteHangup);
}

#[tokio::test]
async fn registers_over_tls_with_md5_and_sha256() {
    for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let k = tls_kamailio(algorithm, KamailioTls::default());
        // By address (the certificate's IP name) and by host name (SNI and a DNS name).
        for host in ["127.0.0.1", "localhost"] {
            let (ua, mut rx) = ua().await;
            ua.add_account(tls_account(&k, "alice", host)).unwrap();
            let expires = registered(&mut rx).await;
            assert!(
                expires > 0 && expires <= 300,
                "{algorithm:?}/{host}: {expires}"
            );
            // The binding is a TLS flow: Contact with transport=tls, on Kamailio's TLS socket.
            let bindings = k.bindings().expect("ul.dump");
            let tls_socket = format!("tls:127.0.0.1:{}", k.tls_port.unwrap());
            assert!(
                bindings.contains("transport=tls") && bindings.contains(&tls_socket),
                "{algorithm:?}/{host}: {bindings}"
            );
            // RFC 5626 as over TCP: our instance id and reg-id.
            assert!(
                bindings.contains("Instance: <urn:uuid:00000000-0000-4000-8000-000000000001>")
                    && bindings.contains("Reg-Id: 1"),
                "{bindings}"
            );
            ua.shutdown().await;
            next(&mut rx, "unregistered", |e| {
                matches!(e, SipEvent::Unregistered { .. }).then_some(())
            })
            .await;
        }
    }
}

#[tokio::test]
async fn registers_again_over_a_new_tls_connection_after_the_proxy_restarts() {
    let mut k = tls_kamailio(DigestAlgorithm::Md5, KamailioTls::default());
    let (ua, mut rx) = ua().await;
    ua.add_account(tls_account(&k, "alice", "127.0.0.1"))
        .unwrap();
    registered(&mut rx).await;
    k.stop();
    // The keep-alive notices the dead proxy; retries fail (connection refused) while it is down.
    next(&mut rx, "registration_failed", |e| {
        matches!(e, SipEvent::RegistrationFailed { .. }).then_some(())
    })
    .await;
    k.restart().expect("restart kamailio");
    // Refused connections (retried with backoff, capped at 2 s here) until it is back.
    next(&mut rx, "registered", |e| match e {
        SipEvent::Registered { .. } => Some(()),
        SipEvent::RegistrationFailed {
            retry_in, reason, ..
        } => {
            assert!(
                retry_in.is_some(),
                "gave up while the proxy was down: {reason}"
            );
            None
        }
        _ => None,
    })
    .await;
    let bindings = k.bindings().expect("ul.dump");
    assert!(bindings.contains("transport=tls"), "{bindings}");
}

#[tokio::test]
async fn a_message_and_a_call_over_tls() {
    let k = tls_kamailio(DigestAlgorithm::Sha256, KamailioTls::default());
    let (alice, mut arx) = ua().await;
    let (bob, mut brx) = ua().await;
    alice
        .add_account(tls_account(&k, "alice", "127.0.0.1"))
        .unwrap();
    bob.add_account(tls_account(&k, "bob", "localhost"))
        .unwrap();
    registered(&mut arx).await;
    registered(&mut brx).await;

    // MESSAGE alice → bob: proxy-authenticated on alice's TLS flow, delivered on bob's.
    let id = alice
        .message("alice", "bob", "text/plain", b"hello over TLS".to_vec())
        .await
        .unwrap();
    let body = next(&mut brx, "message", |e| match e {
        SipEvent::MessageReceived { body, .. } => Some(body.clone()),
        _ => None,
    })
    .await;
    assert_eq!(body, b"hello over TLS");
    let status = message_result(&mut arx, id).await;
    assert_eq!(status, Some(200));

    // A call alice → bob, answered, then hung up by bob.
    let offer = sdp(1, 40000);
    let answer = sdp(2, 40002);
    let call = alice.call("alice", "bob", offer.clone()).await.unwrap();
    let (bcall, got_offer) = incoming(&mut brx).await;
    assert_eq!(got_offer.as_deref(), Some(offer.as_slice()));
    bob.answer(bcall, answer.clone()).unwrap();
    let sdp = next(&mut arx, "answered", |e| match e {
        SipEvent::Answered { call: c, sdp } if *c == call => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(sdp, answer);
    next(&mut brx, "confirmed", |e| {
        matches!(e, SipEvent::Confirmed { call } if *call == bcall).then_some(())
    })
    .await;
    bob.hangup(bcall).unwrap();
    let a_reason = next(&mut arx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == call => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(a_reason, EndReason::RemoteHangup);
    let b_reason = next(&mut brx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == bcall => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(b_reason, EndReason::LocalHangup);

    // Every request went over the flows that registered: rsipstack reused one TLS connection
    // per user agent, and Kamailio reached bob on his.
    let connections = k.kamcmd("tls.list").expect("tls.list");
    assert_eq!(
        connections.matches("state: established").count(),
        2,
        "{connections}"
    );
}

/// The one `registration_failed` an account gets when the proxy's certificate is refused: no
/// status (no SIP answer), no retry; nothing more follows.
async fn refused_once(rx: &mut UnboundedReceiver<SipEvent>) -> String {
    let (status, reason, retry) = next(rx, "registration_failed", |e| match e {
        SipEvent::RegistrationFailed {
            status,
            reason,
            retry_in,
            ..
        } => Some((*status, reason.clone(), *retry_in)),
        SipEvent::Registered { .. } => panic!("registered with a proxy we must not trust"),
        _ => None,
    })
    .await;
    assert_eq!(status, None, "{reason}");
    assert_eq!(
        retry, None,
        "a certificate problem is not retried: {reason}"
    );
    // The test policy would retry after 0.5 s; nothing may come in three times that.
    let more = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(e) = rx.recv().await {
            if matches!(
                e,
                SipEvent::RegistrationFailed { .. } | SipEvent::Registered { .. }
            ) {
                return e;
            }
        }
        std::future::pending().await
    })
    .await;
    assert!(more.is_err(), "another registration event: {more:?}");
    reason
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_fails_registration_once_with_the_reason() {
    let k = tls_kamailio(DigestAlgorithm::Md5, KamailioTls::default());
    // Trust the OS store and another throwaway CA, not the one that issued Kamailio's certificate.
    let other = tempfile::tempdir().unwrap();
    let other_ca = TestCa::create(other.path(), "other").unwrap();
    let (ua, mut rx) = ua().await;
    ua.add_account(Account {
        tls_ca: Some(other_ca.cert().to_path_buf()),
        ..tls_account(&k, "alice", "127.0.0.1")
    })
    .unwrap();
    let reason = refused_once(&mut rx).await;
    assert!(
        reason.starts_with("the proxy's TLS certificate is not trusted"),
        "{reason}"
    );
    assert!(reason.contains("tls_ca"), "says what to do: {reason}");
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_registration_once_with_the_reason() {
    let k = tls_kamailio(
        DigestAlgorithm::Md5,
        KamailioTls {
            server_names: vec!["sip.elsewhere.test".into()],
        },
    );
    let (ua, mut rx) = ua().await;
    ua.add_account(tls_account(&k, "alice", "127.0.0.1"))
        .unwrap();
    let reason = refused_once(&mut rx).await;
    assert!(
        reason.contains("not valid for '127.0.0.1'") && reason.contains("sip.elsewhere.test"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_unreadable_ca_file_fails_registration_with_the_reason() {
    let k = tls_kamailio(DigestAlgorithm::Md5, KamailioTls::default());
    let (ua, mut rx) = ua().await;
    ua.add_account(Account {
        tls_ca: Some("/nonexistent/krypton-ca.pem".into()),
        ..tls_account(&k, "alice", "127.0.0.1")
    })
    .unwrap();
    let reason = refused_once(&mut rx).await;
    assert!(
        reason.contains("cannot read the CA file /nonexistent/krypton-ca.pem"),
        "{reason}"
    );
}

/// One call `from` → `to` through the proxy: 180, 200, ACK; a hold re-INVITE from the
/// caller, answered; the callee hangs up. Both sides see the right reasons.
async fn call_with_hold(
    (from, frx, from_id): (&UserAgent, &mut UnboundedReceiver<SipEvent>, &str),
    (to, trx, to_id): (&UserAgent, &mut UnboundedReceiver<SipEvent>, &str),
) {
    let offer = sdp(1, 40000);
    let answer = sdp(2, 40002);
    let hold = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendonly\r\n".to_vec();
    let held = b"v=0\r\no=- 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=recvonly\r\n".to_vec();

    let call = from.call(from_id, to_id, offer.clone()).await.unwrap();
    let (tcall, got_offer) = next(trx, "incoming", |e| match e {
        SipEvent::Incoming { call, offer, .. } => Some((*call, offer.clone())),
        _ => None,
    })
    .await;
    assert_eq!(got_offer.as_deref(), Some(offer.as_slice()));
    to.ringing(tcall).unwrap();
    next(frx, "ringing", |e| match e {
        SipEvent::Progress {
            call: c,
            status: 180,
            ..
        } if *c == call => Some(()),
        _ => None,
    })
    .await;
    to.answer(tcall, answer.clone()).unwrap();
    let sdp = next(frx, "answered", |e| match e {
        SipEvent::Answered { call: c, sdp } if *c == call => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(sdp, answer);
    next(trx, "confirmed", |e| {
        matches!(e, SipEvent::Confirmed { call } if *call == tcall).then_some(())
    })
    .await;

    // Hold: the caller's re-INVITE follows the dialog's route set back to the callee.
    from.reoffer(call, hold.clone()).unwrap();
    let reoffer = next(trx, "remote offer", |e| match e {
        SipEvent::RemoteOffer { call: c, sdp } if *c == tcall => Some(sdp.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reoffer, hold);
    to.answer_reoffer(tcall, Ok(held.clone())).unwrap();
    let result = next(frx, "reoffer result", |e| match e {
        SipEvent::ReofferResult { call: c, result } if *c == call => Some(result.clone()),
        _ => None,
    })
    .await;
    assert_eq!(result, Ok(held));

    to.hangup(tcall).unwrap();
    let f_reason = next(frx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == call => Some(reason.clone()),
        _ => None,
    })
    .await;
    let t_reason = next(trx, "ended", |e| match e {
        SipEvent::Ended { call: c, reason } if *c == tcall => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(f_reason, EndReason::RemoteHangup);
    assert_eq!(t_reason, EndReason::LocalHangup);
}

/// A MESSAGE `from` → `to`, delivered and answered 200.
async fn message_between(
    (from, frx, from_id): (&UserAgent, &mut UnboundedReceiver<SipEvent>, &str),
    (trx, to_id): (&mut UnboundedReceiver<SipEvent>, &str),
    text: &str,
) {
    let id = from
        .message(from_id, to_id, "text/plain", text.as_bytes().to_vec())
        .await
        .unwrap();
    let (sender, body) = next(trx, "message", |e| match e {
        SipEvent::MessageReceived { from, body, .. } => Some((from.clone(), body.clone())),
        _ => None,
    })
    .await;
    assert_eq!(body, text.as_bytes());
    assert!(sender.starts_with(&format!("sip:{from_id}@")), "{sender}");
    let status = next(frx, "message result", |e| match e {
        SipEvent::MessageResult { id: i, status, .. } if *i == id => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(status, Some(200));
}

#[tokio::test]
async fn calls_and_messages_between_websocket_and_udp() {
    let k = kamailio(DigestAlgorithm::Md5);
    let (alice, mut arx) = ua().await;
    let (bob, mut brx) = ua().await;
    alice
        .add_account(account(&k, "alice", "alice-pw", "ws"))
        .unwrap();
    bob.add_account(account(&k, "bob", "bob-pw", "udp"))
        .unwrap();
    registered(&mut arx).await;
    registered(&mut brx).await;
    // Alice's WS contact is the flow's own local address (Kamailio saw the request come from
    // there), not an unresolvable `*.invalid` host.
    let bindings = k.bindings().expect("ul.dump");
    let field = |name: &str| {
        bindings
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name).filter(|v| v.contains(";transport=ws")))
            .unwrap_or_else(|| panic!("no WS {name}: {bindings}"))
            .to_string()
    };
    let contact = field("Address: sip:alice@");
    assert_eq!(format!("sip:{contact}"), field("Received: "), "{bindings}");

    message_between(
        (&alice, &mut arx, "alice"),
        (&mut brx, "bob"),
        "hello from WebSocket",
    )
    .await;
    message_between(
        (&bob, &mut brx, "bob"),
        (&mut arx, "alice"),
        "hello to WebSocket",
    )
    .await;
    call_with_hold((&alice, &mut arx, "alice"), (&bob, &mut brx, "bob")).await;
    call_with_hold((&bob, &mut brx, "bob"), (&alice, &mut arx, "alice")).await;
}

#[tokio::test]
async fn a_message_we_cannot_show_gets_415_and_text_still_200() {
    let k = kamailio(DigestAlgorithm::Md5);
    let (alice, mut arx) = ua().await;
    let (bob, mut brx) = ua().await;
    alice
        .add_account(account(&k, "alice", "alice-pw", "udp"))
        .unwrap();
    bob.add_account(account(&k, "bob", "bob-pw", "tcp"))
        .unwrap();
    registered(&mut arx).await;
    registered(&mut brx).await;

    let composing = br#"<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>"#;
    let id = alice
        .message(
            "alice",
            "bob",
            "application/im-iscomposing+xml",
            composing.to_vec(),
        )
        .await
        .unwrap();
    let status = message_result(&mut arx, id).await;
    assert_eq!(status, Some(415));

    message_between((&alice, &mut arx, "alice"), (&mut brx, "bob"), "plain text").await;
    // Bob was told about the text only.
    while let Ok(e) = brx.try_recv() {
        assert!(!matches!(e, SipEvent::MessageReceived { .. }), "{e:?}");
    }
}
