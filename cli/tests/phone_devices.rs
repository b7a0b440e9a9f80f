//! Calls on real sound devices: two `krypton phone`s through a real Kamailio, alice on the
//! devices of a private PulseAudio server (null sinks, no sound card needed), bob on WAV files.
//!
//! - alice's microphone is the monitor of the null sink `micA`, into which the test plays a
//!   600 Hz tone; her speaker is the null sink `spkA1` (later `spkA2`), whose monitor the test
//!   records. bob plays a 1000 Hz tone (`--play`) and records what he hears (`--record`).
//! - With no sound server (PULSE_SERVER names a dead socket) alice gets a clear `audio_error`
//!   and the call still goes on.
//!
//! Without `pulseaudio`/`pulseaudio-utils` the device test skips with a message; with
//! `KRYPTON_REQUIRE_AUDIO=1` (as `scripts/test` runs it) it fails instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use krypton_testkit::pulse::{self, PulseServer, Recording, skip_audio_test};
use krypton_testkit::{DigestAlgorithm, Kamailio, KamailioConfig, KryptonPhone};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(15);
/// alice's microphone tone and bob's file tone.
const ALICE_HZ: f64 = 600.0;
const BOB_HZ: f64 = 1000.0;
/// How the test listens to the monitors.
const MONITOR_RATE: u32 = 8000;
const WINDOW: Duration = Duration::from_millis(400);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_krypton"))
}

fn kamailio() -> Kamailio {
    Kamailio::start(KamailioConfig {
        users: ["alice", "bob"]
            .iter()
            .map(|u| (u.to_string(), format!("{u}-pw")))
            .collect(),
        algorithm: DigestAlgorithm::Md5,
        ..Default::default()
    })
    .expect("kamailio")
}

/// A registered phone for `user` with `extra` flags and environment.
fn phone(
    dir: &Path,
    k: &Kamailio,
    user: &str,
    extra: &[&str],
    env: &[(&'static str, PathBuf)],
) -> KryptonPhone {
    let pw = dir.join(format!("{user}.pw"));
    std::fs::write(&pw, format!("{user}-pw\n")).expect("password file");
    let account = format!("sip:{user}@{}", k.domain());
    let proxy = k.proxy_uri("udp");
    let pw = pw.to_string_lossy().into_owned();
    let mut args = vec![
        "--account",
        &account,
        "--proxy",
        &proxy,
        "--password-file",
        &pw,
        "--codecs",
        "pcmu",
        "--rtp-ports",
        "17000-17999",
    ];
    args.extend_from_slice(extra);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut p =
        KryptonPhone::start_with_env(bin(), &dir.join(user), &args, &env).expect("krypton phone");
    p.wait_any("registered", T).expect("registers");
    p
}

/// The ids in a `devices` event's `inputs` or `outputs`.
fn ids(devices: &Value, which: &str) -> Vec<String> {
    devices[which]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_tone(rec: &Recording, freq: f64, what: &str) -> Duration {
    rec.wait_until(WINDOW, T, what, |x, rate| {
        pulse::has_tone(x, freq, 0.1, rate)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn wait_quiet(rec: &Recording, what: &str) -> Duration {
    rec.wait_until(WINDOW, T, what, |x, _| pulse::rms(x) < 0.005)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_call_on_sound_devices_and_a_switch_of_speaker_mid_call() {
    let pulse = match PulseServer::start(&["spkA1", "spkA2", "micA"]) {
        Ok(p) => p,
        Err(e) => {
            return skip_audio_test(
                "a_call_on_sound_devices_and_a_switch_of_speaker_mid_call",
                &e.to_string(),
            );
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let alice_tone = dir.path().join("alice-600.wav");
    let bob_tone = dir.path().join("bob-1000.wav");
    pulse::write_tone_wav(&alice_tone, ALICE_HZ, 0.5, 60.0, 48_000).expect("tone");
    pulse::write_tone_wav(&bob_tone, BOB_HZ, 0.5, 60.0, 8000).expect("tone");
    // The tone into micA (alice's microphone is its monitor) and ears on both speakers. An
    // idle null sink renders in 2 s blocks and takes a new client's low latency only at the
    // end of the block: wait until each one streams, or alice's microphone would open up to
    // 2 s late (a sound card's microphone has no such delay).
    let mic_check = match pulse.record("micA.monitor", MONITOR_RATE) {
        Ok(r) => r,
        Err(e) => {
            return skip_audio_test(
                "a_call_on_sound_devices_and_a_switch_of_speaker_mid_call",
                &e.to_string(),
            );
        }
    };
    let _mic = pulse.play("micA", &alice_tone).expect("paplay");
    wait_tone(&mic_check, ALICE_HZ, "the test tone on micA.monitor");
    let spk1 = pulse.record("spkA1.monitor", MONITOR_RATE).expect("parec");
    let spk2 = pulse.record("spkA2.monitor", MONITOR_RATE).expect("parec");
    for rec in [&spk1, &spk2] {
        rec.wait_until(WINDOW, T, "the speaker monitor streams", |_, _| true)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    let k = kamailio();
    let bob_rec = dir.path().join("bob-heard.wav");
    let mut alice = phone(
        dir.path(),
        &k,
        "alice",
        &["--input", "micA.monitor", "--output", "spkA1"],
        &pulse.env(),
    );
    let bob_play = bob_tone.to_string_lossy().into_owned();
    let bob_record = bob_rec.to_string_lossy().into_owned();
    let mut bob = phone(
        dir.path(),
        &k,
        "bob",
        &[
            "--auto-answer",
            "--play",
            &bob_play,
            "--record",
            &bob_record,
        ],
        &[],
    );

    // The device list: the null sinks and their monitors; what calls will use.
    alice.send(json!({"cmd": "devices"})).expect("send");
    let devices = alice.wait_any("devices", T).expect("devices");
    assert_eq!(devices["host"], "PulseAudio", "{devices}");
    let outputs = ids(&devices, "outputs");
    let inputs = ids(&devices, "inputs");
    for want in ["pulseaudio:spkA1", "pulseaudio:spkA2", "pulseaudio:micA"] {
        assert!(outputs.iter().any(|i| i == want), "{want} not in {devices}");
    }
    for want in ["pulseaudio:spkA1.monitor", "pulseaudio:micA.monitor"] {
        assert!(inputs.iter().any(|i| i == want), "{want} not in {devices}");
    }
    let defaults = devices["outputs"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|d| d["is_default"] == true).count());
    assert_eq!(defaults, 1, "one default output: {devices}");
    assert_eq!(devices["input"], "micA.monitor", "{devices}");
    assert_eq!(devices["output"], "spkA1", "{devices}");
    assert_eq!(devices["echo_cancellation"], true, "{devices}");

    alice
        .send(json!({"cmd": "call", "to": "bob"}))
        .expect("send");
    let up = alice.wait_any("established", T).expect("alice established");
    assert_eq!(up["echo_cancellation"], true, "both ends are devices: {up}");
    let call = up["call"].clone();
    let bob_up = bob.wait_any("established", T).expect("bob established");
    assert_eq!(
        bob_up["echo_cancellation"], false,
        "bob uses files: {bob_up}"
    );
    // The devices open for the call.
    let opened = alice
        .wait("device_changed", T, |e| e["direction"] == "output")
        .expect("output opened");
    assert_eq!(opened["device"]["id"], "pulseaudio:spkA1", "{opened}");
    let opened = alice
        .wait("device_changed", T, |e| e["direction"] == "input")
        .expect("input opened");
    assert_eq!(
        opened["device"]["id"], "pulseaudio:micA.monitor",
        "{opened}"
    );

    // bob's tone comes out of alice's speaker; spkA2 stays silent.
    let t = wait_tone(&spk1, BOB_HZ, "bob's tone on spkA1");
    eprintln!("bob's tone on spkA1 after {t:?}");
    assert!(
        pulse::rms(&spk2.last(WINDOW)) < 0.005,
        "spkA2 is not silent"
    );

    // Mid-call the speaker moves to spkA2: the tone follows, spkA1 goes quiet.
    alice
        .send(json!({"cmd": "set_device", "output": "pulseaudio:spkA2"}))
        .expect("send");
    let changed = alice
        .wait("device_changed", T, |e| e["direction"] == "output")
        .expect("device_changed");
    assert_eq!(changed["device"]["id"], "pulseaudio:spkA2", "{changed}");
    let t = wait_tone(&spk2, BOB_HZ, "bob's tone on spkA2 after the switch");
    eprintln!("bob's tone on spkA2 {t:?} after device_changed");
    let t = wait_quiet(&spk1, "spkA1 quiet after the switch");
    eprintln!("spkA1 quiet {t:?} later");
    // A device that is not there: a clear error, and the old one keeps playing.
    alice
        .send(json!({"cmd": "set_device", "output": "no-such-speaker"}))
        .expect("send");
    let err = alice.wait_any("error", T).expect("error");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no-such-speaker") && message.contains("not found"),
        "{err}"
    );
    // The call goes on for 2 s more with bob's tone on spkA2 all along.
    spk2.wait_until(
        Duration::from_secs(2),
        T,
        "2 s of bob's tone on spkA2",
        |x, rate| {
            x.chunks(rate as usize / 5)
                .all(|b| pulse::has_tone(b, BOB_HZ, 0.1, rate))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    alice
        .send(json!({"cmd": "hangup", "call": call}))
        .expect("send");
    alice.wait_any("ended", T).expect("alice ended");
    let ended = bob.wait_any("ended", T).expect("bob ended");
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");

    // alice's microphone tone reached bob: count 200 ms blocks of his recording that carry it.
    let (heard, rate) = pulse::read_wav(&bob_rec).expect("bob's recording");
    let block = rate as usize / 5;
    let blocks: Vec<&[f32]> = heard.chunks_exact(block).collect();
    let with_tone = blocks
        .iter()
        .filter(|b| pulse::has_tone(b, ALICE_HZ, 0.1, rate))
        .count();
    let with_bob = blocks
        .iter()
        .filter(|b| pulse::dominant_frequency(b, rate) == BOB_HZ)
        .count();
    eprintln!(
        "bob's recording: {:.1} s, {with_tone} of {} blocks carry alice's {ALICE_HZ} Hz",
        heard.len() as f64 / f64::from(rate),
        blocks.len()
    );
    assert!(
        with_tone * 200 >= 1500,
        "alice's tone in only {with_tone} of {} 200 ms blocks of bob's recording",
        blocks.len()
    );
    assert_eq!(with_bob, 0, "bob hears his own tone");
    for p in [&mut alice, &mut bob] {
        assert!(p.quit(T).is_some_and(|s| s.success()));
    }
}

#[test]
fn no_sound_server_is_a_clear_error_and_the_call_goes_on() {
    if pulse::has_sound_card() {
        // A real sound card may answer ALSA's default device without any server.
        return skip_audio_test(
            "no_sound_server_is_a_clear_error_and_the_call_goes_on",
            "this machine has a sound card (/dev/snd)",
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env = pulse::dead_server_env(&dir.path().join("nosound")).expect("environment");
    let k = kamailio();
    let mut alice = phone(
        dir.path(),
        &k,
        "alice",
        &["--input", "default", "--output", "default"],
        &env,
    );
    let mut bob = phone(dir.path(), &k, "bob", &["--auto-answer"], &[]);

    alice
        .send(json!({"cmd": "call", "to": "bob"}))
        .expect("send");
    let up = alice.wait_any("established", T).expect("alice established");
    bob.wait_any("established", T).expect("bob established");
    let err = alice.wait_any("audio_error", T).expect("audio_error");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("PulseAudio/PipeWire is not running") && message.contains("start"),
        "{err}"
    );
    // The call goes on (silence from alice): bob receives her packets.
    alice
        .send(json!({"cmd": "hangup", "call": up["call"]}))
        .expect("send");
    let ended = alice.wait_any("ended", T).expect("alice ended");
    assert_eq!(ended["reason"], "local_hangup", "{ended}");
    let ended = bob.wait_any("ended", T).expect("bob ended");
    assert!(
        ended["stats"]["packets_received"].as_u64().unwrap_or(0) > 0,
        "{ended}"
    );
    assert!(
        !alice
            .unclaimed()
            .iter()
            .any(|e| e["event"] == "device_changed"),
        "no device opened"
    );
    for p in [&mut alice, &mut bob] {
        assert!(p.quit(T).is_some_and(|s| s.success()));
    }
}
