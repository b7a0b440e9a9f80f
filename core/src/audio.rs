//! File audio for headless calls: a WAV file as the microphone, a WAV file as the speaker.

use std::path::{Path, PathBuf};

use krypton_media::engine::{AudioSink, AudioSource};
use krypton_media::wav::{WavSink, WavSource};
use tracing::warn;

/// Plays a WAV file (resampled to the codec's rate), then silence.
pub struct WavFileSource {
    path: PathBuf,
    source: Option<WavSource>,
    rate: u32,
    failed: bool,
}

impl WavFileSource {
    /// A source that opens `path` at the first read (when the codec's rate is known).
    pub fn new(path: &Path) -> Self {
        WavFileSource {
            path: path.to_path_buf(),
            source: None,
            rate: 0,
            failed: false,
        }
    }

    /// Open (decode and resample) the file now for `rate`, so that the 20 ms media clock never
    /// waits for it: loading a long file can take longer than a frame.
    pub fn open(path: &Path, rate: u32) -> Self {
        let mut s = WavFileSource::new(path);
        match WavSource::open(path, rate) {
            Ok(w) => {
                s.source = Some(w);
                s.rate = rate;
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot play the WAV file; sending silence");
                s.failed = true;
            }
        }
        s
    }
}

impl AudioSource for WavFileSource {
    fn read(&mut self, out: &mut Vec<i16>, samples: usize, rate: u32) {
        if (self.source.is_none() || self.rate != rate) && !self.failed {
            match WavSource::open(&self.path, rate) {
                Ok(s) => {
                    self.source = Some(s);
                    self.rate = rate;
                }
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "cannot play the WAV file; sending silence");
                    self.failed = true;
                }
            }
        }
        match &mut self.source {
            Some(s) => s.read_frame(out, samples),
            None => {
                out.clear();
                out.resize(samples, 0);
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.failed || self.source.as_ref().is_some_and(WavSource::is_finished)
    }
}

/// Records what we hear into a 16-bit mono WAV file at the codec's rate.
pub struct WavFileSink {
    path: PathBuf,
    sink: Option<WavSink>,
    failed: bool,
}

impl WavFileSink {
    /// A sink that creates `path` at the first frame.
    pub fn new(path: &Path) -> Self {
        WavFileSink {
            path: path.to_path_buf(),
            sink: None,
            failed: false,
        }
    }
}

impl AudioSink for WavFileSink {
    fn write(&mut self, pcm: &[i16], rate: u32) {
        if self.sink.is_none() && !self.failed {
            match WavSink::create(&self.path, rate, rate) {
                Ok(s) => self.sink = Some(s),
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "cannot record to the WAV file");
                    self.failed = true;
                }
            }
        }
        if let Some(s) = &mut self.sink
            && let Err(e) = s.write(pcm)
        {
            warn!(error = %e, "recording stopped");
            self.sink = None;
            self.failed = true;
        }
    }

    fn finish(&mut self) {
        if let Some(s) = self.sink.take()
            && let Err(e) = s.finish()
        {
            warn!(path = %self.path.display(), error = %e, "cannot finish the WAV file");
        }
    }
}
