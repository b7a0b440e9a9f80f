//! A private PulseAudio server with null sinks, for tests of the real sound-device path on a
//! machine without a sound card, and the tones such a test plays and listens for.
//!
//! [`PulseServer::start`] runs `pulseaudio` in a temporary HOME/XDG_RUNTIME_DIR with one null
//! sink per name; a process started with [`PulseServer::env`] (a `krypton phone`, a child test)
//! sees only that server. What a test plays into a sink comes back from the sink's monitor
//! (`NAME.monitor`, an input device): [`PulseServer::play`] plays a WAV file into a sink
//! (`paplay`) and [`PulseServer::record`] records a monitor as it goes (`parec`), so a test can
//! wait until a tone arrives or stops ([`Recording::wait_until`]).
//!
//! Without `pulseaudio` (or `pulseaudio-utils`) a test skips with a message
//! ([`skip_audio_test`]); with `KRYPTON_REQUIRE_AUDIO=1` (as `scripts/test` sets it) it fails
//! instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// True when `KRYPTON_REQUIRE_AUDIO` is set (not empty, not `0`): audio tests must run.
pub fn audio_required() -> bool {
    std::env::var_os("KRYPTON_REQUIRE_AUDIO").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Reports that `test` cannot run because `why`: a message on stderr, or a panic when
/// [`audio_required`].
pub fn skip_audio_test(test: &str, why: &str) {
    assert!(
        !audio_required(),
        "KRYPTON_REQUIRE_AUDIO is set but the audio test environment is missing: {why}"
    );
    eprintln!("SKIPPED {test}: {why} (set KRYPTON_REQUIRE_AUDIO=1 to make this a failure)");
}

/// Whether this machine has a sound card of its own (ALSA's default device may then answer
/// without any sound server, so "no server" cannot be tested here).
pub fn has_sound_card() -> bool {
    Path::new("/dev/snd").exists()
}

/// A private PulseAudio daemon; killed (by its own pid) and its directory removed on drop
/// (kept with `KRYPTON_KEEP_TEST_FILES`).
pub struct PulseServer {
    child: std::process::Child,
    dir: PathBuf,
}

impl PulseServer {
    /// Starts `pulseaudio` with one null sink (48 kHz) per name in `sinks`; the first is the
    /// default sink and its monitor the default source. Returns once the daemon says it is
    /// ready. `Err` says what is missing (for [`skip_audio_test`]).
    pub fn start(sinks: &[&str]) -> Result<PulseServer, TestkitError> {
        match Command::new("pulseaudio").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            _ => return Err(TestkitError::Missing("pulseaudio")),
        }
        let dir = std::env::temp_dir().join(format!(
            "krypton-pulse-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let runtime = dir.join("run");
        std::fs::create_dir_all(dir.join("home"))?;
        std::fs::create_dir_all(&runtime)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut args: Vec<String> = [
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "--use-pid-file=no",
            "--log-target=stderr",
            "--log-level=info",
            "--load=module-native-protocol-unix auth-anonymous=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for sink in sinks {
            args.push(format!(
                "--load=module-null-sink sink_name={sink} rate=48000"
            ));
        }
        args.push("--load=module-always-sink".into());
        let mut child = Command::new("pulseaudio")
            .args(&args)
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("PULSE_SERVER")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let log_path = dir.join("pulseaudio.log");
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log_path = log_path.clone();
            std::thread::spawn(move || {
                let mut log = std::fs::File::create(&log_path).ok();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    if line.contains("Daemon startup complete") {
                        let _ = tx.send(());
                    }
                }
            });
        }
        let pulse = PulseServer { child, dir };
        // The daemon says when it is ready; the channel closes if it dies first.
        let secs = 20;
        match rx.recv_timeout(Duration::from_secs(secs)) {
            Ok(()) => Ok(pulse),
            Err(_) => Err(TestkitError::NotReady {
                what: "pulseaudio".into(),
                secs,
                log: std::fs::read_to_string(&log_path).unwrap_or_default(),
            }),
        }
    }

    /// Its temporary HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// Its XDG_RUNTIME_DIR.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// `unix:<socket>`, the value of `PULSE_SERVER` for this server.
    pub fn server(&self) -> String {
        format!("unix:{}", self.runtime_dir().join("pulse/native").display())
    }

    /// The environment that makes a child process use this server (and no other): `HOME`,
    /// `XDG_RUNTIME_DIR` and `PULSE_SERVER`.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.home()),
            ("XDG_RUNTIME_DIR", self.runtime_dir()),
            ("PULSE_SERVER", PathBuf::from(self.server())),
        ]
    }

    /// `program` with [`PulseServer::env`] set.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env());
        cmd
    }

    /// Plays `wav` into `sink` (`paplay`, 20 ms latency) until the file ends or the returned
    /// process is dropped.
    pub fn play(&self, sink: &str, wav: &Path) -> Result<Client, TestkitError> {
        let mut cmd = self.command("paplay");
        // Low latency, as a call would ask for: a null sink renders in blocks of the
        // latency its clients request (2 s when nobody asks), and a record stream on its
        // monitor waits up to one block for its first audio.
        cmd.arg(format!("--device={sink}"))
            .arg("--latency-msec=20")
            .arg(wav)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|_| missing_utils())?;
        Ok(Client { child })
    }

    /// Records `source` (e.g. `spk.monitor`) as mono 16-bit at `rate` Hz from now on
    /// (`parec`), until the returned recording is dropped.
    pub fn record(&self, source: &str, rate: u32) -> Result<Recording, TestkitError> {
        let mut cmd = self.command("parec");
        cmd.args([
            &format!("--device={source}"),
            "--raw",
            "--format=s16le",
            &format!("--rate={rate}"),
            "--channels=1",
            // Small fragments: the test sees the sound within tens of milliseconds.
            "--latency-msec=20",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|_| missing_utils())?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("parec has no stdout"))?;
        let shared = Arc::new((Mutex::new(Vec::<f32>::new()), Condvar::new()));
        let writer = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut buf = [0u8; 4096];
            let mut odd: Option<u8> = None;
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut bytes: Vec<u8> = odd.take().into_iter().collect();
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() % 2 == 1 {
                    odd = bytes.pop();
                }
                let (lock, ready) = &*writer;
                let mut samples = lock.lock().unwrap_or_else(|e| e.into_inner());
                samples.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
                );
                ready.notify_all();
            }
        });
        Ok(Recording {
            _child: Client { child },
            samples: shared,
            rate,
            source: source.to_string(),
        })
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("KRYPTON_KEEP_TEST_FILES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn missing_utils() -> TestkitError {
    TestkitError::Missing("pulseaudio-utils (paplay, parec)")
}

/// The environment of a process that finds no sound server: `PULSE_SERVER` names a socket in
/// `dir` that nobody listens on (a server that died), and HOME/XDG_RUNTIME_DIR are empty
/// directories in `dir`.
pub fn dead_server_env(dir: &Path) -> Result<Vec<(&'static str, PathBuf)>, TestkitError> {
    let runtime = dir.join("run");
    std::fs::create_dir_all(&runtime)?;
    std::fs::create_dir_all(dir.join("home"))?;
    let socket = runtime.join("dead-pulse-socket");
    let _ = std::fs::remove_file(&socket);
    // Bound and closed: the file stays, connecting to it is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket)?);
    Ok(vec![
        ("HOME", dir.join("home")),
        ("XDG_RUNTIME_DIR", runtime),
        (
            "PULSE_SERVER",
            PathBuf::from(format!("unix:{}", socket.display())),
        ),
    ])
}

/// A PulseAudio client process (`paplay`, `parec`); killed when dropped.
pub struct Client {
    child: std::process::Child,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a monitor has delivered since [`PulseServer::record`], growing as it plays; `parec`
/// stops when it is dropped (and its reader thread with it).
pub struct Recording {
    _child: Client,
    samples: Arc<(Mutex<Vec<f32>>, Condvar)>,
    rate: u32,
    source: String,
}

impl Recording {
    /// The sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The newest `window` of the recording (shorter at the start).
    pub fn last(&self, window: Duration) -> Vec<f32> {
        let samples = self.samples.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = (window.as_secs_f64() * f64::from(self.rate)) as usize;
        samples[samples.len().saturating_sub(n)..].to_vec()
    }

    /// Waits until `done` holds for the newest `window` of audio (checked each time new audio
    /// arrives), at most `timeout`; returns how long that took, or an error that names `what`
    /// and what the window held.
    pub fn wait_until(
        &self,
        window: Duration,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[f32], u32) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let n = (window.as_secs_f64() * f64::from(self.rate)) as usize;
        let (lock, ready) = &*self.samples;
        let mut samples = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if samples.len() >= n && done(&samples[samples.len() - n..], self.rate) {
                return Ok(start.elapsed());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                let tail = &samples[samples.len().saturating_sub(n)..];
                return Err(format!(
                    "{what}: not within {timeout:?} on {} ({:.2} s recorded; last {window:?}: rms {:.4}, dominant {:.0} Hz)",
                    self.source,
                    samples.len() as f64 / f64::from(self.rate),
                    rms(tail),
                    dominant_frequency(tail, self.rate),
                ));
            }
            samples = ready
                .wait_timeout(samples, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Tones

/// Writes `secs` seconds of a sine at `freq` Hz (peak `amplitude`, 0–1) as a mono 16-bit WAV
/// file at `rate` Hz.
pub fn write_tone_wav(
    path: &Path,
    freq: f64,
    amplitude: f64,
    secs: f64,
    rate: u32,
) -> Result<(), TestkitError> {
    let n = (secs * f64::from(rate)) as usize;
    let data_len = u32::try_from(n * 2).map_err(|_| std::io::Error::other("tone too long"))?;
    let mut out = Vec::with_capacity(44 + n * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let v = amplitude * (2.0 * std::f64::consts::PI * freq * t).sin();
        out.extend_from_slice(&((v * 32767.0).round() as i16).to_le_bytes());
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// Reads a 16-bit PCM WAV file (the first channel) as samples in [-1, 1], and its rate.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32), TestkitError> {
    let bytes = std::fs::read(path)?;
    let bad =
        |why: &str| TestkitError::Io(std::io::Error::other(format!("{}: {why}", path.display())));
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("not a WAV file"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut pos = 12;
    let mut format: Option<(u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32_at(pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            format = Some((u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (channels, rate, bits) = format.ok_or_else(|| bad("data before fmt"))?;
            if bits != 16 {
                return Err(bad("not 16-bit PCM"));
            }
            let end = (body + len).min(bytes.len());
            let frame = 2 * usize::from(channels.max(1));
            let samples = bytes[body..end]
                .chunks_exact(frame)
                .map(|f| f32::from(i16::from_le_bytes([f[0], f[1]])) / 32768.0)
                .collect();
            return Ok((samples, rate));
        }
        pos = body + len + (len & 1);
    }
    Err(bad("no data chunk"))
}

/// Power of `x` at `freq` Hz (Goertzel), normalised so that a sine of peak amplitude `a`
/// gives `a² / 4` (a full-scale sine 0.25).
pub fn tone_power(x: &[f32], freq: f64, rate: u32) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (x.len() as f64).powi(2)
}

/// Root mean square of `x`.
pub fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The strongest frequency of `x` between 100 Hz and 3900 Hz (10 Hz steps: telephone band,
/// so narrowband and wideband recordings compare alike).
pub fn dominant_frequency(x: &[f32], rate: u32) -> f64 {
    let top = 3900.min(rate / 2 - 100);
    (10..=top / 10)
        .map(|k| f64::from(k * 10))
        .map(|f| (f, tone_power(x, f, rate)))
        .fold(
            (0.0, -1.0),
            |best, (f, p)| if p > best.1 { (f, p) } else { best },
        )
        .0
}

/// True when `x` is a tone at `freq` (±20 Hz) of at least `min_amplitude` peak.
pub fn has_tone(x: &[f32], freq: f64, min_amplitude: f64, rate: u32) -> bool {
    (dominant_frequency(x, rate) - freq).abs() <= 20.0
        && tone_power(x, freq, rate) >= min_amplitude * min_amplitude / 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_are_written_read_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        write_tone_wav(&path, 700.0, 0.5, 0.5, 8000).unwrap();
        let (x, rate) = read_wav(&path).unwrap();
        assert_eq!((x.len(), rate), (4000, 8000));
        assert_eq!(dominant_frequency(&x, rate), 700.0);
        assert!((tone_power(&x, 700.0, rate) - 0.0625).abs() < 0.002);
        assert!(has_tone(&x, 700.0, 0.4, rate));
        assert!(!has_tone(&x, 700.0, 0.6, rate));
        assert!(!has_tone(&x, 1000.0, 0.1, rate));
        assert!(!has_tone(&[0.0; 4000], 700.0, 0.01, rate));
        assert!((rms(&x) - 0.5 / 2f64.sqrt()).abs() < 0.01);
    }
}
