//! `krypton phone` registers at a real Kamailio with digest over UDP, TCP, WebSocket and TLS, with
//! MD5 and SHA-256 challenges; a wrong password, or a TLS certificate from a CA the phone does not
//! trust, is a `registration_failed` with the reason and no retry; quit unregisters. The phone
//! trusts the test CA the way a user would a private one: through the OS trust store's
//! `SSL_CERT_FILE`.

use std::path::Path;
use std::time::Duration;

use krypton_testkit::{
    DigestAlgorithm, Kamailio, KamailioConfig, KamailioTls, KryptonPhone, TestCa,
};

const T: Duration = Duration::from_secs(15);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_krypton"))
}

fn phone(dir: &Path, k: &Kamailio, transport: &str, password: &str) -> KryptonPhone {
    phone_trusting(dir, k, transport, password, None)
}

/// A phone whose OS trust store is the PEM file `ca` (`SSL_CERT_FILE`), if given.
fn phone_trusting(
    dir: &Path,
    k: &Kamailio,
    transport: &str,
    password: &str,
    ca: Option<&Path>,
) -> KryptonPhone {
    let pw = dir.join(format!("{transport}.pw"));
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let account = format!("sip:alice@{}", k.domain());
    let proxy = k.proxy_uri(transport);
    let env: Vec<(&str, &Path)> = ca.map(|ca| ("SSL_CERT_FILE", ca)).into_iter().collect();
    KryptonPhone::start_with_env(
        bin(),
        &dir.join(transport),
        &[
            "--account",
            &account,
            "--proxy",
            &proxy,
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &env,
    )
    .expect("krypton phone")
}

#[test]
fn registers_over_udp_tcp_ws_and_tls_with_md5_and_sha256() {
    for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        let dir = tempfile::tempdir().unwrap();
        let k = Kamailio::start_tls(
            KamailioConfig {
                users: vec![("alice".into(), "alice-pw".into())],
                algorithm,
                ..Default::default()
            },
            KamailioTls::default(),
        )
        .expect("kamailio");
        for transport in ["udp", "tcp", "ws", "tls"] {
            let mut p = phone_trusting(dir.path(), &k, transport, "alice-pw", k.tls_ca());
            let r = p
                .wait_any("registered", T)
                .unwrap_or_else(|e| panic!("{algorithm:?}/{transport}: {e}"));
            assert!(r["expires"].as_u64().unwrap() > 0, "{r}");
            let status = p.quit(T).expect("quits");
            assert!(status.success());
            assert!(
                p.unclaimed().iter().any(|e| e["event"] == "unregistered"),
                "{algorithm:?}/{transport}: no unregistered event on quit"
            );
        }
    }
}

#[test]
fn a_wrong_password_is_reported_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let k = Kamailio::start(KamailioConfig {
        users: vec![("alice".into(), "alice-pw".into())],
        algorithm: DigestAlgorithm::Sha256,
        ..Default::default()
    })
    .expect("kamailio");
    let mut p = phone(dir.path(), &k, "udp", "wrong");
    let e = p.wait_any("registration_failed", T).unwrap();
    assert_eq!(e["status"], 401, "{e}");
    assert!(e["reason"].as_str().unwrap().contains("password"), "{e}");
    assert!(
        e["retry_in"].is_null(),
        "a wrong password is not retried: {e}"
    );
    assert!(
        !p.unclaimed().iter().any(|e| e["event"] == "registered"),
        "registered with a wrong password"
    );
}

#[test]
fn an_unreachable_proxy_is_retried_and_bad_commands_get_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = krypton_testkit::free_port();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x\n").unwrap();
    let proxy = format!("sip:127.0.0.1:{port};transport=udp");
    let mut p = KryptonPhone::start(
        bin(),
        dir.path(),
        &[
            "--account",
            "sip:alice@nowhere.test",
            "--proxy",
            &proxy,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    )
    .unwrap();
    let e = p.wait_any("registration_failed", T).unwrap();
    assert!(e["retry_in"].as_f64().unwrap() > 0.0, "{e}");
    assert!(e["reason"].as_str().unwrap().contains("proxy"), "{e}");
    // Garbage on stdin is an error event, not a crash.
    p.send(serde_json::json!("not a command")).unwrap();
    p.send(serde_json::json!({"cmd": "hangup", "call": 99}))
        .unwrap();
    let first = p.wait_any("error", T).unwrap();
    assert!(
        first["message"].as_str().unwrap().contains("command"),
        "{first}"
    );
    let second = p.wait_any("error", T).unwrap();
    assert!(
        second["message"].as_str().unwrap().contains("99"),
        "{second}"
    );
    assert!(p.quit(T).is_some_and(|s| s.success()));
}

#[test]
fn a_tls_certificate_from_an_untrusted_ca_is_reported_once_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let k = Kamailio::start_tls(
        KamailioConfig {
            users: vec![("alice".into(), "alice-pw".into())],
            ..Default::default()
        },
        KamailioTls::default(),
    )
    .expect("kamailio");
    // The phone's trust store is another CA: Kamailio's certificate is not trusted.
    let other = TestCa::create(&dir.path().join("other"), "other").unwrap();
    let mut p = phone_trusting(dir.path(), &k, "tls", "alice-pw", Some(other.cert()));
    let e = p.wait_any("registration_failed", T).unwrap();
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the proxy's TLS certificate is not trusted"),
        "{e}"
    );
    assert!(e["status"].is_null(), "no SIP answer: {e}");
    assert!(e["retry_in"].is_null(), "not retried: {e}");
    // No retry loop: the phone's first retry would come after 1 s.
    assert!(
        p.wait_any("registration_failed", Duration::from_secs(3))
            .is_err(),
        "registration was tried again"
    );
    assert!(
        !p.unclaimed().iter().any(|e| e["event"] == "registered"),
        "registered with an untrusted certificate"
    );
    assert!(p.quit(T).is_some_and(|s| s.success()));
}
