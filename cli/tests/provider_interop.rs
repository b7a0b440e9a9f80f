//! A KRYPTON provider (`krypton provider up`: Kamailio + the provider service) on a real devnet,
//! with clients that are not a UDP `krypton phone`:
//!
//! - a standard SIP client: baresip registers as a KRYPTON user with the digest credentials
//!   `krypton credentials` got for it (AUTH.md §5, the account line it prints, `:` in the digest
//!   user name and all), and calls a `krypton phone --wallet` user with speech (PESQ both ways);
//!   an altered password is refused; `krypton credentials` says what to do when the account is not
//!   registered on chain or the provider cannot be reached;
//! - a wallet phone over WebSocket (the provider's SIP port speaks WS too) calls a wallet phone
//!   over UDP, speech both ways (PESQ).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Devnet, Krypton, PW, T};
use krypton_testkit::{Baresip, BaresipConfig, KryptonPhone, PesqMode, SpeechSet, pesq, test_dir};
use serde_json::{Value, json};

/// Real-time calls run one at a time: on 2 cores, two at once measure the scheduler.
static SCORED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SCORED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The speech (11.2 s) plus set-up: how long a call is held so that all of it is heard.
const CALL_SECONDS: u64 = 13;
const MIN_MOS: f64 = 3.5;

/// `krypton credentials` for the named account.
fn credentials(d: &Devnet, k: &Krypton, user: &str, extra: &[&str]) -> common::Run {
    let address = d.account(user);
    let mut args = vec!["--account", &address, "--password-stdin", "credentials"];
    args.extend_from_slice(extra);
    k.run(&args, PW)
}

/// A baresip with `account` (a `krypton credentials` line), Opus, playing the peer speech.
fn baresip(speech: &SpeechSet, account: &str, auto_answer: bool) -> Baresip {
    let (source, rate, channels) = speech.peer_source("opus");
    Baresip::start_with_account(
        BaresipConfig {
            // Unused with an account line.
            user: String::new(),
            password: String::new(),
            domain: String::new(),
            proxy_port: 0,
            codec: "opus".into(),
            source,
            rate,
            channels,
            auto_answer,
            rtp_ports: (17100, 17199),
            opus_fec: false,
            contact: None,
            mediaenc: None,
        },
        account,
    )
    .expect("baresip")
}

/// Waits until baresip's registration has failed (REGISTER_FAIL, or `reginfo` showing ERR: the
/// event may come before the control connection) and panics if it succeeds instead.
fn wait_refused(b: &mut Baresip) -> String {
    let deadline = std::time::Instant::now() + T;
    while std::time::Instant::now() < deadline {
        if let Ok(e) = b.wait_for(&["REGISTER_FAIL"], Duration::from_millis(500)) {
            return e;
        }
        assert!(
            b.wait_for(&["REGISTER_OK"], Duration::ZERO).is_err(),
            "altered credentials were accepted: {}",
            b.log_tail(40)
        );
        b.command("reginfo", "").unwrap();
        let r = b.wait_for(&["\"response\""], T).unwrap();
        if r.contains("ERR") {
            return r;
        }
        assert!(
            !r.contains("OK") || r.contains("zero"),
            "altered credentials were accepted: {r}"
        );
    }
    panic!(
        "baresip with altered credentials neither failed nor registered: {}",
        b.log_tail(40)
    );
}

fn mos(reference: &Path, heard: &Path, what: &str) -> f64 {
    let score = pesq(reference, heard, PesqMode::Wide).unwrap();
    eprintln!("{what}: {}", score.details);
    assert!(score.mos >= MIN_MOS, "{what}: PESQ {}", score.details);
    score.mos
}

/// The provider's bindings for `address` (Kamailio's `ul.dump`, the `AoR` entry): what the
/// registrar stored, transport included.
fn binding(provider: &common::Provider, address: &str) -> String {
    let ctl = provider.0.path().join("provider/kamailio/kamailio_ctl");
    let out = std::process::Command::new("kamcmd")
        .arg("-s")
        .arg(format!("unix:{}", ctl.display()))
        .arg("ul.dump")
        .output()
        .expect("kamcmd");
    let dump = String::from_utf8_lossy(&out.stdout).to_string();
    dump.split("AoR: ")
        .find(|entry| entry.starts_with(address))
        .unwrap_or_else(|| panic!("no binding for {address} in {dump}"))
        .to_string()
}

/// A wallet phone with Opus, playing the speech and recording what it hears into `record`.
fn wallet_phone(
    d: &Devnet,
    user: &str,
    pw: &Path,
    speech: &SpeechSet,
    record: &Path,
    extra: &[&str],
) -> (Krypton, KryptonPhone) {
    let k = d.client_with_accounts();
    let mut args = vec![
        "--codecs",
        "opus",
        "--play",
        speech.ref16k.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let p = d.registered_phone(&k, user, pw, &args);
    (k, p)
}

#[test]
fn baresip_registers_with_krypton_credentials_and_calls_a_wallet_phone() {
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    let provider = d.provider_up("provider-a", &[]);
    d.register_on_chain("alice", "provider-a");
    d.register_on_chain("bob", "provider-a");
    let (alice, bob) = (d.account("alice"), d.account("bob"));
    let location = d.query("location", &alice).as_str().unwrap().to_string();
    let files = test_dir("krypton-provider-interop-").unwrap();
    let speech = SpeechSet::create(files.path()).unwrap();
    let pw = files.path().join("pw");
    std::fs::write(&pw, PW).unwrap();
    let k = d.client_with_accounts();

    // Errors say what to do next: an account that is not registered on chain (before any
    // password is asked), a provider that does not answer.
    let e = credentials(&d, &k, "owner", &[]).err();
    assert!(e.contains("krypton register --provider"), "{e}");
    let e = credentials(&d, &k, "alice", &["--provider-url", "http://127.0.0.1:9"]).err();
    assert!(
        e.contains("cannot reach") && e.contains("try again later"),
        "{e}"
    );

    let c = credentials(&d, &k, "alice", &[]).ok();
    eprintln!("{c}");
    let username = c["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, alice);
    assert_eq!(expiry.parse::<u64>().ok(), c["expires"].as_u64(), "{c}");
    assert_eq!(c["realm"], location.as_str());
    assert_eq!(c["aor"], format!("sip:{alice}@{location}"));
    assert_eq!(c["proxy"], format!("sip:{location}"));
    let line = c["baresip"].as_str().unwrap();
    let password = c["password"].as_str().unwrap();
    assert!(line.contains(&format!(";auth_pass={password};")), "{line}");

    let _one = one_at_a_time();
    // The same line with an altered password: the provider refuses the REGISTER.
    let mut altered = password.to_string();
    let first = altered.remove(0);
    altered.insert(0, if first == 'A' { 'B' } else { 'A' });
    let bad_line = line.replace(password, &altered);
    let mut bad = baresip(&speech, &bad_line, false);
    let refused = wait_refused(&mut bad);
    eprintln!("altered password: {refused}");
    drop(bad);

    // Bob: a wallet phone (UDP) that answers and records.
    let bob_heard = files.path().join("bob-heard.wav");
    let (_kb, mut b) = wallet_phone(&d, "bob", &pw, &speech, &bob_heard, &["--auto-answer"]);

    // Alice: baresip with the printed line, as a user would paste it.
    let mut a = baresip(&speech, line, false);
    a.wait_registered()
        .expect("baresip registers with the credentials");
    let bound = binding(&provider, &alice);
    assert!(bound.contains("User-Agent: baresip"), "{bound}");
    a.command("dial", &format!("sip:{bob}@{location}")).unwrap();
    let inc = b.wait_any("incoming", T).unwrap();
    assert!(inc["from"].as_str().unwrap().contains(&alice), "{inc}");
    let est = b.wait_any("established", T).unwrap();
    assert_eq!(est["codec"], "opus", "{est}");
    a.wait_for(&["CALL_ESTABLISHED"], T).unwrap();
    // The whole speech plays; the wait is the length of the audio.
    std::thread::sleep(Duration::from_secs(CALL_SECONDS));
    a.command("hangup", "").unwrap();
    let ended = b.wait_any("ended", T).unwrap();
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    a.wait_for(&["CALL_CLOSED"], T).unwrap();
    eprintln!("{ended}");
    assert!(
        ended["stats"]["packets_received"].as_u64().unwrap() > 500,
        "{ended}"
    );
    let reference = &speech.ref16k;
    mos(
        reference,
        &bob_heard,
        "baresip (credentials) → wallet phone",
    );
    let heard_by_baresip = a.received_audio().expect("baresip dumped what it heard");
    mos(reference, &heard_by_baresip, "wallet phone → baresip");
    b.quit(T);
}

#[test]
fn a_websocket_phone_calls_a_udp_phone_through_the_provider() {
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    let provider = d.provider_up("provider-a", &[]);
    d.register_on_chain("alice", "provider-a");
    d.register_on_chain("bob", "provider-a");
    let bob = d.account("bob");
    let location = d.query("location", &bob).as_str().unwrap().to_string();
    let files = test_dir("krypton-provider-ws-").unwrap();
    let speech = SpeechSet::create(files.path()).unwrap();
    let pw = files.path().join("pw");
    std::fs::write(&pw, PW).unwrap();

    let _one = one_at_a_time();
    // Alice over WebSocket on the provider's SIP port, Bob over UDP.
    let ws = format!("sip:{location};transport=ws");
    let (alice_heard, bob_heard) = (
        files.path().join("alice-heard.wav"),
        files.path().join("bob-heard.wav"),
    );
    let (_ka, mut a) = wallet_phone(&d, "alice", &pw, &speech, &alice_heard, &["--proxy", &ws]);
    let (_kb, mut b) = wallet_phone(&d, "bob", &pw, &speech, &bob_heard, &["--auto-answer"]);
    // The registrar holds Alice's binding on the WebSocket connection, Bob's on UDP.
    let (ba, bb) = (
        binding(&provider, &d.account("alice")),
        binding(&provider, &bob),
    );
    assert!(
        ba.contains(";transport=ws") && ba.contains("Socket: tcp:"),
        "{ba}"
    );
    assert!(
        bb.contains("Socket: udp:") && !bb.contains("transport=ws"),
        "{bb}"
    );

    a.send(json!({"cmd": "call", "to": bob})).unwrap();
    let est_a = a.wait_any("established", T).unwrap();
    let est_b = b.wait_any("established", T).unwrap();
    for est in [&est_a, &est_b] {
        assert_eq!(est["codec"], "opus", "{est}");
    }
    // The whole speech plays; the wait is the length of the audio.
    std::thread::sleep(Duration::from_secs(CALL_SECONDS));
    a.send(json!({"cmd": "hangup", "call": est_a["call"]}))
        .unwrap();
    let ended_a: Value = a.wait_any("ended", T).unwrap();
    assert_eq!(ended_a["reason"], "local_hangup", "{ended_a}");
    let ended_b = b.wait_any("ended", T).unwrap();
    assert_eq!(ended_b["reason"], "remote_hangup", "{ended_b}");
    eprintln!("{ended_a}\n{ended_b}");
    let reference = &speech.ref16k;
    mos(reference, &bob_heard, "WS phone → UDP phone");
    mos(reference, &alice_heard, "UDP phone → WS phone");
    a.quit(T);
    b.quit(T);
}
