//! Call features between `krypton phone`s through a real Kamailio: blind transfer (REFER), a
//! second call arriving while one is up (call waiting), live quality reports.

use std::path::Path;
use std::time::Duration;

use krypton_testkit::{DigestAlgorithm, Kamailio, KamailioConfig, KryptonPhone};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_krypton"))
}

fn phone(dir: &Path, k: &Kamailio, user: &str, extra: &[&str]) -> KryptonPhone {
    let pw = dir.join(format!("{user}.pw"));
    std::fs::write(&pw, format!("{user}-pw\n")).unwrap();
    let account = format!("sip:{user}@{}", k.domain());
    let proxy = k.proxy_uri("udp");
    let mut args = vec![
        "--account",
        &account,
        "--proxy",
        &proxy,
        "--password-file",
        pw.to_str().unwrap(),
        "--codecs",
        "pcmu",
        "--rtp-ports",
        "17000-17999",
    ];
    args.extend_from_slice(extra);
    let mut p = KryptonPhone::start(bin(), &dir.join(user), &args).expect("krypton phone");
    p.wait_any("registered", T).expect("registers");
    p
}

fn kamailio() -> Kamailio {
    Kamailio::start(KamailioConfig {
        users: ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|u| (u.to_string(), format!("{u}-pw")))
            .collect(),
        algorithm: DigestAlgorithm::Md5,
        ..Default::default()
    })
    .expect("kamailio")
}

fn call_id(e: &Value) -> Value {
    e["call"].clone()
}

#[test]
fn blind_transfer_sends_the_caller_on() {
    let dir = tempfile::tempdir().unwrap();
    let k = kamailio();
    let mut alice = phone(dir.path(), &k, "alice", &[]);
    let mut bob = phone(dir.path(), &k, "bob", &["--auto-answer"]);
    let mut carol = phone(dir.path(), &k, "carol", &["--auto-answer"]);

    alice.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    let a1 = call_id(&alice.wait_any("established", T).unwrap());
    let b1 = call_id(&bob.wait_any("established", T).unwrap());

    // Bob sends alice on to carol.
    bob.send(json!({"cmd": "transfer", "call": b1, "to": "carol"}))
        .unwrap();
    let req = alice.wait_any("transfer_requested", T).unwrap();
    assert_eq!(req["call"], a1, "{req}");
    assert!(req["to"].as_str().unwrap().contains("carol"), "{req}");
    let c = carol.wait_any("incoming", T).unwrap();
    assert!(c["from"].as_str().unwrap().contains("alice"), "{c}");
    carol.wait_any("established", T).unwrap();
    let a2 = alice
        .wait("established", T, |e| e["call"] != a1)
        .expect("alice's new call to carol is up");

    // Bob hears that it worked and leaves; alice's first call ends, the new one stays.
    let t = bob.wait_any("transferred", T).unwrap();
    assert_eq!(t["call"], b1, "{t}");
    let ended = bob.wait_any("ended", T).unwrap();
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    let ended = alice.wait("ended", T, |e| e["call"] == a1).unwrap();
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    alice
        .send(json!({"cmd": "hangup", "call": call_id(&a2)}))
        .unwrap();
    alice.wait("ended", T, |e| e["call"] == a2["call"]).unwrap();
    let ended = carol.wait_any("ended", T).unwrap();
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    for p in [&mut alice, &mut bob, &mut carol] {
        assert!(p.quit(T).is_some_and(|s| s.success()));
    }
}

#[test]
fn a_second_call_waits_while_one_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let k = kamailio();
    let mut alice = phone(dir.path(), &k, "alice", &[]);
    let mut bob = phone(dir.path(), &k, "bob", &["--auto-answer"]);
    let mut dave = phone(dir.path(), &k, "dave", &[]);

    alice.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    let first = call_id(&alice.wait_any("established", T).unwrap());

    // Dave calls alice while she talks to bob: it rings, she puts bob on hold and answers.
    dave.send(json!({"cmd": "call", "to": "alice"})).unwrap();
    let inc = alice.wait_any("incoming", T).unwrap();
    assert!(inc["from"].as_str().unwrap().contains("dave"), "{inc}");
    dave.wait_any("ringing", T).unwrap();
    alice.send(json!({"cmd": "hold", "call": first})).unwrap();
    alice.wait("held", T, |e| e["call"] == first).unwrap();
    bob.wait("remote_hold", T, |e| e["on"] == true).unwrap();
    alice
        .send(json!({"cmd": "answer", "call": inc["call"]}))
        .unwrap();
    alice
        .wait("established", T, |e| e["call"] == inc["call"])
        .unwrap();
    dave.wait_any("established", T).unwrap();

    // Dave hangs up; alice goes back to bob.
    let dave_call = dave.unclaimed();
    let dave_call = dave_call
        .iter()
        .find(|e| e["event"] == "calling")
        .map(call_id)
        .unwrap();
    dave.send(json!({"cmd": "hangup", "call": dave_call}))
        .unwrap();
    let ended = alice
        .wait("ended", T, |e| e["call"] == inc["call"])
        .unwrap();
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    alice.send(json!({"cmd": "resume", "call": first})).unwrap();
    alice.wait("resumed", T, |e| e["call"] == first).unwrap();
    bob.wait("remote_hold", T, |e| e["on"] == false).unwrap();
    for p in [&mut alice, &mut bob, &mut dave] {
        assert!(p.quit(T).is_some_and(|s| s.success()));
    }
}

/// Regression: the phone's SIP actor once started a new call's timers at the time it had last
/// woken up, so a call placed after more than 4 s of quiet ended at once with 408 ("the proxy
/// did not answer within 4 s") without waiting for the proxy's answer.
#[test]
fn a_call_placed_after_a_quiet_spell_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let k = kamailio();
    // No keep-alive probes: nothing wakes the phones while they wait.
    let mut alice = phone(dir.path(), &k, "alice", &["--keepalive", "0"]);
    let mut bob = phone(
        dir.path(),
        &k,
        "bob",
        &["--keepalive", "0", "--auto-answer"],
    );
    // The quiet spell is the condition under test: longer than the 4 s no-answer timer.
    std::thread::sleep(Duration::from_secs(5));
    alice.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    let est = alice.wait_any("established", T).unwrap();
    bob.wait_any("established", T).unwrap();
    alice
        .send(json!({"cmd": "hangup", "call": call_id(&est)}))
        .unwrap();
    assert_eq!(
        alice.wait_any("ended", T).unwrap()["reason"],
        "local_hangup"
    );
    for p in [&mut alice, &mut bob] {
        assert!(p.quit(T).is_some_and(|s| s.success()));
    }
}

/// `--quality-every`: an established call reports its live figures on a period (what the
/// desktop app draws), with counters that grow; none before it is up or after it ends.
#[test]
fn an_established_call_reports_its_quality_live() {
    let dir = tempfile::tempdir().unwrap();
    let k = kamailio();
    let mut alice = phone(dir.path(), &k, "alice", &["--quality-every", "200"]);
    let mut bob = phone(dir.path(), &k, "bob", &["--auto-answer"]);
    alice.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    let est = alice.wait_any("established", T).unwrap();
    let first = alice.wait_any("quality", T).unwrap();
    assert_eq!(first["call"], est["call"]);
    // Several reports, each with more packets than the one before.
    let mut last = first["stats"]["packets_received"].as_u64().unwrap();
    for _ in 0..3 {
        let q = alice.wait_any("quality", T).unwrap();
        let got = q["stats"]["packets_received"].as_u64().unwrap();
        assert!(got > last, "{got} after {last}: {q}");
        assert_eq!(q["stats"]["codec"], "pcmu");
        let mos = q["stats"]["mos"].as_f64().unwrap();
        assert!((1.0..=4.5).contains(&mos), "{q}");
        last = got;
    }
    // The callee did not ask for them.
    assert!(bob.unclaimed().iter().all(|e| e["event"] != "quality"));
    alice
        .send(json!({"cmd": "hangup", "call": call_id(&est)}))
        .unwrap();
    alice.wait_any("ended", T).unwrap();
    let quality = |p: &mut KryptonPhone| {
        p.unclaimed()
            .iter()
            .filter(|e| e["event"] == "quality")
            .count()
    };
    let at_end = quality(&mut alice);
    bob.wait_any("ended", T).unwrap();
    // Nothing must happen, so the test waits: three report periods, and none more.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        quality(&mut alice),
        at_end,
        "quality reports after the call ended"
    );
    assert!(alice.quit(T).is_some_and(|s| s.success()));
    assert!(bob.quit(T).is_some_and(|s| s.success()));
}
