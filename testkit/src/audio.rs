//! Test speech and its score: a speech WAV from espeak-ng, PESQ (ITU-T P.862) of a recording.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestkitError;

/// The sentences every call plays (Harvard sentences, as in the P.862 literature).
pub const SPEECH_TEXT: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// Write the test speech as `name` in `dir` at `rate` Hz with `channels` channels (16-bit),
/// about 11.2 s with half a second of silence in front and `tail` seconds behind; returns its
/// path.
pub fn speech_wav(
    dir: &Path,
    name: &str,
    rate: u32,
    channels: u16,
    tail: f32,
) -> Result<PathBuf, TestkitError> {
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(name);
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(SPEECH_TEXT)
        .status()
        .map_err(|_| TestkitError::Missing("espeak-ng"))?;
    if !status.success() {
        return Err(TestkitError::Io(std::io::Error::other("espeak-ng failed")));
    }
    let status = Command::new("sox")
        .arg(&raw)
        .args([
            "-r",
            &rate.to_string(),
            "-c",
            &channels.to_string(),
            "-b",
            "16",
        ])
        .arg(&out)
        .args(["gain", "-n", "-3", "pad", "0.5", &tail.to_string()])
        .status()
        .map_err(|_| TestkitError::Missing("sox"))?;
    if !status.success() {
        return Err(TestkitError::Io(std::io::Error::other("sox failed")));
    }
    let _ = std::fs::remove_file(raw);
    Ok(out)
}

/// P.862 mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PesqMode {
    /// Wideband (16 kHz), for Opus.
    Wide,
    /// Narrowband (8 kHz), for G.711.
    Narrow,
}

/// A PESQ result.
#[derive(Debug, Clone, PartialEq)]
pub struct PesqScore {
    /// MOS-LQO.
    pub mos: f64,
    /// The whole JSON line from the scorer (delay, correlation, durations).
    pub details: String,
}

/// The Python with `pesq` installed (scripts/setup makes it).
pub fn pesq_python() -> PathBuf {
    if let Ok(p) = std::env::var("KRYPTON_PESQ_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("krypton/pesq-venv/bin/python")
}

/// Score `degraded` against `reference`.
pub fn pesq(reference: &Path, degraded: &Path, mode: PesqMode) -> Result<PesqScore, TestkitError> {
    // The script is compiled in rather than found by path: a test binary built in one checkout
    // and found fresh by cargo in another (a shared target dir) would otherwise run a path that
    // no longer exists.
    let script = include_str!("../tools/pesq_score.py");
    let python = pesq_python();
    if !python.exists() {
        return Err(TestkitError::Missing("the PESQ venv (scripts/setup)"));
    }
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(reference)
        .arg(degraded)
        .args(["--mode", if mode == PesqMode::Wide { "wb" } else { "nb" }])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(TestkitError::Io(std::io::Error::other(format!(
            "pesq_score.py failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ))));
    }
    let mos = text
        .split("\"mos\": ")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| TestkitError::Io(std::io::Error::other(format!("no mos in {text}"))))?;
    Ok(PesqScore { mos, details: text })
}

/// The speech files every scored call uses: narrowband and wideband references, and the copies
/// a peer plays (baresip ends a call when its file ends, so those carry 10 s of silence).
#[derive(Debug, Clone)]
pub struct SpeechSet {
    /// 8 kHz mono reference (PCMU, narrowband PESQ).
    pub ref8k: PathBuf,
    /// 16 kHz mono reference (Opus, wideband PESQ); also what `krypton phone --play` sends.
    pub ref16k: PathBuf,
    /// 8 kHz mono with a 10 s tail, for a peer's PCMU microphone.
    pub peer8k: PathBuf,
    /// 48 kHz stereo with a 10 s tail, for a peer's Opus microphone.
    pub peer48k2: PathBuf,
}

impl SpeechSet {
    /// Write the four files into `dir`.
    pub fn create(dir: &Path) -> Result<Self, TestkitError> {
        Ok(SpeechSet {
            ref8k: speech_wav(dir, "speech8k.wav", 8000, 1, 0.0)?,
            ref16k: speech_wav(dir, "speech16k.wav", 16000, 1, 0.0)?,
            peer8k: speech_wav(dir, "peer8k.wav", 8000, 1, 10.0)?,
            peer48k2: speech_wav(dir, "peer48k2.wav", 48000, 2, 10.0)?,
        })
    }

    /// The reference and PESQ mode for `codec` (`opus` → wideband, else narrowband).
    pub fn reference(&self, codec: &str) -> (&Path, PesqMode) {
        if codec == "opus" {
            (&self.ref16k, PesqMode::Wide)
        } else {
            (&self.ref8k, PesqMode::Narrow)
        }
    }

    /// A peer's microphone file for `codec`, with its rate and channels.
    pub fn peer_source(&self, codec: &str) -> (PathBuf, u32, u16) {
        if codec == "opus" {
            (self.peer48k2.clone(), 48000, 2)
        } else {
            (self.peer8k.clone(), 8000, 1)
        }
    }
}
