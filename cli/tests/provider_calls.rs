//! `krypton phone --wallet` through real providers (`krypton provider up`: Kamailio + the
//! provider service) on a real devnet: Alice's phone registers with provider A and Bob's with
//! provider B (Bearer proofs); they call and message each other by NEO address, each provider
//! finding the other through the chain (AUTH.md §6), with speech both ways (PESQ) and hang-up
//! from either side. They follow the chain: an on-chain `unregister` ends a phone's registration
//! at its next refresh, and a provider service restart is ridden out (503, then registered
//! again, and calls and messages go through again, rebuilt from the chain).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Devnet, PW, T, assert_message as message};
use krypton_testkit::{KryptonPhone, SpeechSet, pesq, test_dir};
use serde_json::{Value, json};

fn recorded(dir: &Path, name: &str, call: &Value) -> PathBuf {
    dir.join(format!("{name}-heard-{call}.wav"))
}

/// `caller` calls `to` (the callee's bare address); the speech plays; the callee hangs up. The
/// (name, call id) of each side, for scoring what they heard.
fn call_callee_hangs_up(
    caller: &mut KryptonPhone,
    caller_name: &'static str,
    callee: &mut KryptonPhone,
    callee_name: &'static str,
    to: &str,
) -> [(&'static str, Value); 2] {
    caller.send(json!({"cmd": "call", "to": to})).unwrap();
    let est_caller = caller.wait_any("established", T).unwrap();
    let est_callee = callee.wait_any("established", T).unwrap();
    assert_eq!(est_caller["codec"], "opus", "{est_caller}");
    // The whole speech (11.2 s) plays; the wait is the length of the audio.
    std::thread::sleep(Duration::from_secs(13));
    callee
        .send(json!({"cmd": "hangup", "call": est_callee["call"]}))
        .unwrap();
    assert_eq!(
        callee.wait_any("ended", T).unwrap()["reason"],
        "local_hangup"
    );
    assert_eq!(
        caller.wait_any("ended", T).unwrap()["reason"],
        "remote_hangup"
    );
    [
        (caller_name, est_caller["call"].clone()),
        (callee_name, est_callee["call"].clone()),
    ]
}

fn assert_pesq(reference: &Path, heard: &Path, mode: krypton_testkit::PesqMode, who: &str) {
    let score = pesq(reference, heard, mode).unwrap();
    eprintln!("{who} heard: {}", score.details);
    assert!(score.mos >= 3.5, "{who} heard PESQ {}", score.details);
}

#[test]
fn wallet_phones_call_and_message_by_neo_address_and_follow_the_chain() {
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    let provider = d.provider_up("provider-a", &[]);
    let _provider_b = d.provider_up("provider-b", &[]);
    let pa = &provider.0;
    d.register_on_chain("alice", "provider-a");
    d.register_on_chain("bob", "provider-b");
    let files = test_dir("krypton-provider-calls-").unwrap();
    let speech = SpeechSet::create(files.path()).unwrap();
    let pw = files.path().join("pw");
    std::fs::write(&pw, PW).unwrap();
    let (alice, bob) = (d.account("alice"), d.account("bob"));
    let (ka, kb) = (d.client_with_accounts(), d.client_with_accounts());
    let media = |name: &str| {
        [
            "--codecs".to_string(),
            "opus".to_string(),
            "--play".to_string(),
            speech.ref16k.display().to_string(),
            "--record".to_string(),
            files
                .path()
                .join(format!("{name}-heard-{{call}}.wav"))
                .display()
                .to_string(),
        ]
    };
    let (ma, mb) = (media("alice"), media("bob"));
    let ma: Vec<&str> = ma.iter().map(String::as_str).collect();
    let mut mb: Vec<&str> = mb.iter().map(String::as_str).collect();
    mb.push("--auto-answer");
    let mut ma = ma;
    ma.push("--auto-answer");
    let mut a = d.registered_phone(&ka, "alice", &pw, &ma);
    let mut b = d.registered_phone(&kb, "bob", &pw, &mb);

    // Alice (at A) calls Bob (at B) by his bare NEO address; speech both ways; Bob, the callee,
    // hangs up. Then Bob calls Alice's bare address and Alice, the callee, hangs up.
    let heard = |name: &str, call: &Value| recorded(files.path(), name, call);
    let (reference, mode) = speech.reference("opus");
    for (name, call) in call_callee_hangs_up(&mut a, "alice", &mut b, "bob", &bob) {
        assert_pesq(reference, &heard(name, &call), mode, name);
    }
    for (name, call) in call_callee_hangs_up(&mut b, "bob", &mut a, "alice", &alice) {
        assert_pesq(reference, &heard(name, &call), mode, name);
    }

    // MESSAGE both ways, by NEO address.
    message(&mut a, &mut b, &bob, &alice, "hello Bob");
    message(&mut b, &mut a, &alice, &bob, "hello Alice");

    // The provider service restarts: Kamailio answers 503 meanwhile; Alice's phone retries and
    // is registered again once the service is back (its cache rebuilt from the chain).
    let service = pa.run(&["provider", "status"], "").ok()["service_pid"].clone();
    assert!(
        std::process::Command::new("kill")
            .arg(service.to_string())
            .status()
            .unwrap()
            .success()
    );
    let failed = a
        .wait("registration_failed", Duration::from_secs(30), |_| true)
        .expect("the refresh meets the stopped service");
    assert_eq!(failed["status"], 503, "{failed}");
    assert!(!failed["retry_in"].is_null(), "a 503 is retried: {failed}");
    pa.run(&["provider", "up"], "").ok();
    a.wait_any("registered", Duration::from_secs(30))
        .expect("registered again after the service came back");
    // Calls and messages work again through the restarted service (its route and peer caches
    // rebuilt from the chain): Alice calls Bob at B, hangs up; a message each way.
    a.send(json!({"cmd": "call", "to": bob})).unwrap();
    let est = a.wait_any("established", T).unwrap();
    b.wait_any("established", T).unwrap();
    a.send(json!({"cmd": "hangup", "call": est["call"]}))
        .unwrap();
    assert_eq!(a.wait_any("ended", T).unwrap()["reason"], "local_hangup");
    assert_eq!(b.wait_any("ended", T).unwrap()["reason"], "remote_hangup");
    message(&mut a, &mut b, &bob, &alice, "after the restart");
    message(&mut b, &mut a, &alice, &bob, "still here");

    // Bob leaves the provider on chain: his next refresh is refused with the chain's reason.
    d.run(&["--account", &bob, "--password-stdin", "unregister"], PW)
        .ok();
    let refused = b
        .wait("registration_failed", Duration::from_secs(30), |_| true)
        .expect("Bob's refresh is refused after unregister");
    assert_eq!(refused["status"], 403, "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("not registered with this provider on chain"),
        "{refused}"
    );
    assert!(refused["retry_in"].is_null(), "{refused}");
    a.quit(T);
    b.quit(T);
}
