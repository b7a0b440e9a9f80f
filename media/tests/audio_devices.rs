//! The real device path (`krypton_media::device`) against a private PulseAudio server with two
//! null sinks, sinkA and sinkB: nothing needs a sound card.
//!
//! The parent test starts `pulseaudio` (`krypton_testkit::pulse::PulseServer`) and re-runs this
//! test binary as a child in that server's environment (cpal finds the server through the
//! environment, which a test must not change in its own, threaded process). Without
//! `pulseaudio` the test skips with a message; with `KRYPTON_REQUIRE_AUDIO=1` it fails instead.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use krypton_media::device::{AudioDevices, DeviceError, DeviceOptions, list_devices};
use krypton_testkit::pulse::{self, PulseServer, skip_audio_test};

/// Set in the child's environment: only then do the child tests run.
const CHILD_ENV: &str = "KRYPTON_AUDIO_TEST_CHILD";
const RATE: u32 = 48_000;
const FRAME: usize = 960;

/// Runs the child test `name` of this binary with the environment `env`.
fn run_child(name: &str, env: &[(&str, PathBuf)]) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("current_exe: {e}"),
    };
    let out = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("cannot run the child test {name}: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("---- child {name} ----\n{stdout}{stderr}---- end of child ----");
    assert!(out.status.success(), "child test {name} failed");
    assert!(
        stdout.contains("1 passed"),
        "child test {name} did not run: {stdout}"
    );
}

#[test]
fn devices_against_a_pulseaudio_null_sink() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let pulse = match PulseServer::start(&["sinkA", "sinkB"]) {
        Ok(p) => p,
        Err(why) => {
            return skip_audio_test("devices_against_a_pulseaudio_null_sink", &why.to_string());
        }
    };
    run_child("child_null_sink_loopback", &pulse.env());
}

#[test]
fn no_sound_server_is_a_clear_error() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if pulse::has_sound_card() || !cfg!(target_os = "linux") {
        // A real sound card may answer ALSA's default device without any server.
        return skip_audio_test(
            "no_sound_server_is_a_clear_error",
            "this machine has a sound card (/dev/snd)",
        );
    }
    let dir = std::env::temp_dir().join(format!("krypton-audio-noserver-{}", std::process::id()));
    let env = match pulse::dead_server_env(&dir) {
        Ok(env) => env,
        Err(e) => panic!("dead server environment: {e}"),
    };
    run_child("child_no_server", &env);
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------------------------
// Child tests: they run only inside the environment the parent prepared.

fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

#[test]
fn child_no_server() {
    if !in_child() {
        return;
    }
    let err = match AudioDevices::open(&DeviceOptions::default()) {
        Ok(d) => panic!("opened {d:?} with no sound server"),
        Err(e) => e,
    };
    println!("open without a server: {err}");
    assert_eq!(err, DeviceError::ServerNotRunning);
    assert!(
        err.to_string()
            .contains("PulseAudio/PipeWire is not running")
    );
}

/// Goertzel power at `freq` at [`RATE`], a full-scale sine gives 0.25.
fn tone_power(x: &[f32], freq: f64) -> f64 {
    pulse::tone_power(x, freq, RATE)
}

/// One 20 ms tick of a media task: play a 1 kHz frame (amplitude 0.4: power 0.04), read a
/// microphone frame; `window` keeps the last 200 ms of microphone audio.
struct Loop {
    source: Box<dyn krypton_media::engine::AudioSource>,
    sink: Box<dyn krypton_media::engine::AudioSink>,
    pos: usize,
    window: Vec<f32>,
    frame: Vec<i16>,
}

impl Loop {
    fn tick(&mut self) {
        let pcm: Vec<i16> = (self.pos..self.pos + FRAME)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                (0.4 * 32767.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
            })
            .collect();
        self.pos += FRAME;
        self.sink.write(&pcm, RATE);
        self.source.read(&mut self.frame, FRAME, RATE);
        assert_eq!(self.frame.len(), FRAME);
        self.window
            .extend(self.frame.iter().map(|&s| f32::from(s) / 32768.0));
        let keep = RATE as usize / 5;
        if self.window.len() > keep {
            self.window.drain(..self.window.len() - keep);
        }
    }

    /// A clean tone fills (nearly) the whole window.
    fn tone_heard(&self) -> bool {
        self.window.len() == RATE as usize / 5
            && tone_power(&self.window, 1000.0) > 0.03
            && tone_power(&self.window, 3000.0) < 1e-4
    }

    fn silent(&self) -> bool {
        self.window.len() == RATE as usize / 5 && tone_power(&self.window, 1000.0) < 1e-5
    }

    /// Ticks every 20 ms until `done` holds, for at most `limit`; returns the time it took.
    fn until(
        &mut self,
        rt: &tokio::runtime::Runtime,
        limit: Duration,
        what: &str,
        done: impl Fn(&Loop) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let ok = rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while start.elapsed() < limit {
                tick.tick().await;
                self.tick();
                if done(self) {
                    return true;
                }
            }
            false
        });
        assert!(
            ok,
            "{what}: not within {limit:?} (1 kHz power {:.5})",
            tone_power(&self.window, 1000.0)
        );
        start.elapsed()
    }
}

#[test]
fn child_null_sink_loopback() {
    if !in_child() {
        return;
    }
    // Listing: the native PulseAudio host, both null sinks and their monitors.
    let list = match list_devices() {
        Ok(l) => l,
        Err(e) => panic!("list_devices: {e}"),
    };
    println!("{list:#?}");
    assert_eq!(list.host, "PulseAudio");
    let out_ids: Vec<&str> = list.outputs.iter().map(|d| d.id.as_str()).collect();
    let in_ids: Vec<&str> = list.inputs.iter().map(|d| d.id.as_str()).collect();
    for want in ["pulseaudio:sinkA", "pulseaudio:sinkB"] {
        assert!(out_ids.contains(&want), "{want} not in {out_ids:?}");
    }
    for want in ["pulseaudio:sinkA.monitor", "pulseaudio:sinkB.monitor"] {
        assert!(in_ids.contains(&want), "{want} not in {in_ids:?}");
    }
    assert!(
        list.outputs
            .iter()
            .any(|d| d.is_default && d.id == "pulseaudio:sinkA")
    );

    // A device that is not there: a clear error, nothing opened.
    let missing = AudioDevices::open(&DeviceOptions {
        input: Some("no-such-mic".into()),
        ..DeviceOptions::default()
    });
    assert_eq!(
        missing.err(),
        Some(DeviceError::NotFound {
            id: "no-such-mic".into()
        })
    );

    // The tone played into sinkA comes back from sinkA's monitor (echo cancellation off: here
    // the "echo" is the signal under test).
    let devices = match AudioDevices::open(&DeviceOptions {
        input: Some("sinkA.monitor".into()),
        output: Some("pulseaudio:sinkA".into()),
        echo_cancellation: false,
        ..DeviceOptions::default()
    }) {
        Ok(d) => d,
        Err(e) => panic!("open: {e}"),
    };
    let id = |d: Option<krypton_media::device::DeviceInfo>| d.map(|d| d.id).unwrap_or_default();
    assert_eq!(id(devices.input()), "pulseaudio:sinkA.monitor");
    assert_eq!(id(devices.output()), "pulseaudio:sinkA");
    let (source, sink) = devices.endpoints();
    let mut lp = Loop {
        source,
        sink,
        pos: 0,
        window: Vec::new(),
        frame: Vec::new(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let t = lp.until(
        &rt,
        Duration::from_secs(5),
        "tone back from sinkA.monitor",
        Loop::tone_heard,
    );
    println!(
        "tone heard on sinkA.monitor after {t:?}; {:?}",
        devices.stats()
    );

    // Mid-call: the microphone moves to sinkB's monitor; the same source goes quiet (the tone
    // still plays into sinkA).
    // The switch blocks its caller (the phone runs it on a blocking thread); the media task
    // keeps ticking meanwhile.
    let t = std::thread::scope(|scope| {
        let switching = scope.spawn(|| devices.switch_input(Some("sinkB.monitor")));
        let t = lp.until(
            &rt,
            Duration::from_secs(10),
            "silence on sinkB.monitor",
            |l| switching.is_finished() && l.silent(),
        );
        match switching.join() {
            Ok(Ok(info)) => assert_eq!(info.id, "pulseaudio:sinkB.monitor"),
            Ok(Err(e)) => panic!("switch_input: {e}"),
            Err(_) => panic!("switch_input panicked"),
        }
        t
    });
    println!("sinkB.monitor silent after {t:?}; {:?}", devices.stats());

    // The speaker moves to sinkB: the same sink keeps playing, and the tone is back.
    let t = std::thread::scope(|scope| {
        let switching = scope.spawn(|| devices.switch_output(Some("sinkB")));
        let t = lp.until(&rt, Duration::from_secs(10), "tone back from sinkB", |l| {
            switching.is_finished() && l.tone_heard()
        });
        match switching.join() {
            Ok(Ok(info)) => assert_eq!(info.id, "pulseaudio:sinkB"),
            Ok(Err(e)) => panic!("switch_output: {e}"),
            Err(_) => panic!("switch_output panicked"),
        }
        t
    });
    println!(
        "tone heard through sinkB after {t:?}; {:?}",
        devices.stats()
    );
    assert_eq!(id(devices.output()), "pulseaudio:sinkB");
    // And it keeps flowing: over the next second the tone fills at least 80 % of what the
    // microphone hears (the null sink may hiccup once right after a stream change on this
    // shared machine; a stopped speaker would give nothing).
    let start = Instant::now();
    let mut toned = 0;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..50 {
            tick.tick().await;
            lp.tick();
            let frame: Vec<f32> = lp.frame.iter().map(|&s| f32::from(s) / 32768.0).collect();
            // Half the tone's power or more in this 20 ms frame.
            if tone_power(&frame, 1000.0) > 0.02 {
                toned += 1;
            }
        }
    });
    assert!(
        toned >= 40,
        "tone not flowing after the switch: only {toned} of 50 frames carry it; {:?}",
        devices.stats()
    );
    println!(
        "after the switch: {toned} of 50 frames carry the tone ({:?}); {:?}",
        start.elapsed(),
        devices.stats()
    );

    // A failed switch keeps the old device.
    assert!(matches!(
        devices.switch_output(Some("no-such-speaker")),
        Err(DeviceError::NotFound { .. })
    ));
    assert_eq!(id(devices.output()), "pulseaudio:sinkB");
    println!("stats: {:?}", devices.stats());
    drop(lp);
    drop(devices);

    // The speaker alone (a file would be the microphone): no microphone is opened, there is
    // no echo to cancel, and the source is silent until a switch opens one.
    let devices = match AudioDevices::open(&DeviceOptions {
        output: Some("sinkA".into()),
        open_input: false,
        ..DeviceOptions::default()
    }) {
        Ok(d) => d,
        Err(e) => panic!("open the output alone: {e}"),
    };
    assert_eq!(devices.input(), None);
    assert_eq!(id(devices.output()), "pulseaudio:sinkA");
    assert!(!devices.echo_cancellation());
    let (source, sink) = devices.endpoints();
    let mut lp = Loop {
        source,
        sink,
        pos: 0,
        window: Vec::new(),
        frame: Vec::new(),
    };
    lp.until(
        &rt,
        Duration::from_secs(5),
        "silence without a microphone",
        Loop::silent,
    );
    let t = std::thread::scope(|scope| {
        let switching = scope.spawn(|| devices.switch_input(Some("sinkA.monitor")));
        let t = lp.until(
            &rt,
            Duration::from_secs(10),
            "tone once the microphone opens",
            |l| switching.is_finished() && l.tone_heard(),
        );
        match switching.join() {
            Ok(Ok(info)) => assert_eq!(info.id, "pulseaudio:sinkA.monitor"),
            Ok(Err(e)) => panic!("switch_input: {e}"),
            Err(_) => panic!("switch_input panicked"),
        }
        t
    });
    println!("microphone opened by a switch: tone after {t:?}");
    assert_eq!(id(devices.input()), "pulseaudio:sinkA.monitor");
}
