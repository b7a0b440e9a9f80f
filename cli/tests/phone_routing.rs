//! `krypton phone` with several accounts on two real Kamailio providers: the dial plan routes by
//! prefix, a stopped provider makes the call fail over, a restarted one gets our registration
//! back within seconds, and a message written while the proxy is down is delivered once it is
//! back — also across a restart of the phone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use krypton_testkit::{DigestAlgorithm, Kamailio, KamailioConfig, KryptonPhone};
use serde_json::json;

const T: Duration = Duration::from_secs(15);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_krypton"))
}

fn provider(domain: &str, users: &[&str]) -> Kamailio {
    Kamailio::start(KamailioConfig {
        domain: domain.into(),
        users: users
            .iter()
            .map(|u| (u.to_string(), format!("{u}-pw")))
            .collect(),
        algorithm: DigestAlgorithm::Sha256,
    })
    .expect("kamailio")
}

fn account(dir: &Path, id: &str, user: &str, k: &Kamailio) -> String {
    let pw = dir.join(format!("{id}.pw"));
    std::fs::write(&pw, format!("{user}-pw\n")).unwrap();
    format!(
        "[[account]]\nid = \"{id}\"\naor = \"sip:{user}@{domain}\"\nproxy = \"{proxy}\"\npassword_file = \"{pw}\"\nkeepalive = 1\nexpires = 60\n",
        domain = k.domain(),
        proxy = k.proxy_uri("udp"),
        pw = pw.display(),
    )
}

fn write_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("codecs = [\"pcmu\"]\nrtp_ports = [17000, 17999]\n{body}"),
    )
    .unwrap();
    path
}

fn start(dir: &Path, name: &str, config: &Path, extra: &[&str]) -> KryptonPhone {
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    KryptonPhone::start(bin(), &dir.join(name), &args).expect("krypton phone")
}

fn registered(p: &mut KryptonPhone, account: &str) {
    p.wait("registered", T, |e| e["account"] == account)
        .unwrap_or_else(|e| panic!("{account} not registered: {e}"));
}

/// Call `to` from alice; returns (the account bob's phone took it on, whether alice saw a
/// failover event); both hang up.
fn call(alice: &mut KryptonPhone, bob: &mut KryptonPhone, to: &str) -> (String, bool) {
    alice.send(json!({"cmd": "call", "to": to})).unwrap();
    let inc = bob.wait_any("incoming", Duration::from_secs(20)).unwrap();
    let est = alice.wait_any("established", T).unwrap();
    let failed_over = alice
        .unclaimed()
        .iter()
        .any(|e| e["event"] == "failover" && e["call"] == est["call"]);
    alice
        .send(json!({"cmd": "hangup", "call": est["call"]}))
        .unwrap();
    let ended = alice.wait_any("ended", T).unwrap();
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    let ended = bob.wait_any("ended", T).unwrap();
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    (inc["account"].as_str().unwrap().to_string(), failed_over)
}

#[test]
fn dial_plan_routes_by_prefix_and_fails_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut a = provider("a.test", &["alice", "+31201234567"]);
    let b = provider("b.test", &["alice", "+31201234567", "+44201234567"]);

    let alice_cfg = write_config(
        d,
        "alice.toml",
        &format!(
            "{}{}[dial_plan]\ndefault = [\"a\"]\n[[dial_plan.rules]]\nmatch = {{ prefix = \"+31\" }}\naccounts = [\"a\", \"b\"]\n[[dial_plan.rules]]\nmatch = {{ prefix = \"+44\" }}\naccounts = [\"b\"]\n",
            account(d, "a", "alice", &a),
            account(d, "b", "alice", &b),
        ),
    );
    let bob_cfg = write_config(
        d,
        "bob.toml",
        &format!(
            "{}{}{}",
            account(d, "a31", "+31201234567", &a),
            account(d, "b31", "+31201234567", &b),
            account(d, "b44", "+44201234567", &b),
        ),
    );
    let mut alice = start(d, "alice", &alice_cfg, &[]);
    let mut bob = start(d, "bob", &bob_cfg, &["--auto-answer"]);
    for acc in ["a", "b"] {
        registered(&mut alice, acc);
    }
    for acc in ["a31", "b31", "b44"] {
        registered(&mut bob, acc);
    }

    // Domestic through A, foreign through B; spaces and dashes in the number do not matter.
    assert_eq!(
        call(&mut alice, &mut bob, "+31 20-123 4567"),
        ("a31".to_string(), false)
    );
    assert_eq!(
        call(&mut alice, &mut bob, "+44201234567"),
        ("b44".to_string(), false)
    );

    // Provider A goes away: the +31 call fails over to B.
    a.stop();
    assert_eq!(
        call(&mut alice, &mut bob, "+31201234567"),
        ("b31".to_string(), true)
    );

    // A comes back (with no bindings): both phones register there again within 10 s.
    alice
        .wait("registration_failed", T, |e| e["account"] == "a")
        .expect("the keep-alive notices that A is gone");
    let restarted = Instant::now();
    a.restart().unwrap();
    registered(&mut alice, "a");
    registered(&mut bob, "a31");
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "re-registered after {took:?}"
    );
    assert_eq!(
        call(&mut alice, &mut bob, "+31201234567"),
        ("a31".to_string(), false)
    );

    assert!(alice.quit(T).is_some_and(|s| s.success()));
    assert!(bob.quit(T).is_some_and(|s| s.success()));
}

#[test]
fn a_message_waits_in_the_outbox_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut k = provider("p.test", &["alice", "bob"]);
    let alice_cfg = write_config(
        d,
        "alice.toml",
        &format!(
            "{}[dial_plan]\ndefault = [\"a\"]\n",
            account(d, "a", "alice", &k)
        ),
    );
    let bob_cfg = write_config(d, "bob.toml", &account(d, "b", "bob", &k));
    let mut bob = start(d, "bob", &bob_cfg, &[]);
    registered(&mut bob, "b");
    let mut alice = start(d, "alice", &alice_cfg, &[]);
    registered(&mut alice, "a");

    k.stop();
    alice
        .send(json!({"cmd": "message", "to": "bob", "body": "written while the proxy was down"}))
        .unwrap();
    let queued = alice.wait_any("message_status", T).unwrap();
    assert_eq!(queued["status"], "pending", "{queued}");
    let id = queued["id"].clone();
    // The first attempt finds no proxy: still pending, nothing lost.
    let attempt = alice
        .wait("message_status", Duration::from_secs(20), |e| e["id"] == id)
        .unwrap();
    assert_eq!(attempt["status"], "pending", "{attempt}");
    assert!(alice.quit(T).is_some(), "alice quits");

    k.restart().unwrap();
    registered(&mut bob, "b");
    let mut alice = start(d, "alice", &alice_cfg, &[]);
    let delivered = alice
        .wait("message_status", Duration::from_secs(30), |e| {
            e["id"] == id && e["status"] == "delivered"
        })
        .expect("the restarted phone delivers the queued message");
    assert_eq!(delivered["code"], 200);
    let m = bob.wait_any("message", T).unwrap();
    assert_eq!(m["body"], "written while the proxy was down");
    // Delivered once: no second copy on a later flush.
    assert!(alice.quit(T).is_some());
    assert!(
        !bob.unclaimed().iter().any(|e| e["event"] == "message"),
        "the message arrived twice"
    );
}
