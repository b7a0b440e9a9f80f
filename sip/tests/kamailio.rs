//! The user agent against a real Kamailio on loopback: registration (MD5 and SHA-256 digest,
//! UDP/TCP/WS, wrong password), re-registration after a proxy restart, MESSAGE, and a call
//! between two of our user agents through the proxy.

use std::time::Duration;

use krypton_sip::digest::Credentials;
use krypton_sip::{
    Account, Aor, EndReason, ProxyAddr, RegistrationPolicy, SipEvent, UaConfig, UserAgent,
};
use krypton_testkit::{DigestAlgorithm, Kamailio, KamailioConfig};
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

fn account(k: &Kamailio, user: &str, password: &str, transport: &str) -> Account {
    Account {
        id: user.to_string(),
        aor: Aor::parse(&format!("sip:{user}@{}", k.domain())).unwrap(),
        display_name: None,
        proxy: ProxyAddr::parse(&k.proxy_uri(transport)).unwrap(),
        credentials: Some(Credentials::new(user, password)),
        register: true,
        policy: RegistrationPolicy {
            expires: 300,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(2),
            keepalive: Some(Duration::from_secs(1)),
        },
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
    let mut k = kamailio(DigestAlgorithm::Md5);
    let (ua, mut rx) = ua().await;
    ua.add_account(account(&k, "alice", "alice-pw", "udp"))
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
    registered(&mut rx).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "re-registered after {:?}",
        started.elapsed()
    );
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
    let status = next(&mut arx, "message result", |e| match e {
        SipEvent::MessageResult { id: i, status, .. } if *i == id => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(status, Some(200));

    // A MESSAGE to nobody fails with the proxy's 404.
    let id = alice
        .message("alice", "carol", "text/plain", b"?".to_vec())
        .await
        .unwrap();
    let status = next(&mut arx, "message result", |e| match e {
        SipEvent::MessageResult { id: i, status, .. } if *i == id => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(status, Some(404));

    // Call alice → bob; bob rings, answers; alice hangs up.
    let offer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n".to_vec();
    let call = alice.call("alice", "bob", offer.clone()).await.unwrap();
    let (bcall, got_offer) = next(&mut brx, "incoming", |e| match e {
        SipEvent::Incoming { call, offer, .. } => Some((*call, offer.clone())),
        _ => None,
    })
    .await;
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
    let answer = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n".to_vec();
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
