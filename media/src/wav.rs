//! WAV files as the audio device of a headless phone: a [`WavSource`] plays a file into the call
//! frame by frame, a [`WavSink`] records what the far end says.
//!
//! Any PCM WAV is accepted (8/16/24/32-bit integer or 32-bit float, any channel count, any rate
//! between 1 kHz and 384 kHz). Channels are averaged to mono and the audio is resampled with
//! rubato's FFT resampler. The source loads and converts the whole file at open (prompts and
//! test files are short); the sink streams to disk, so long recordings need no memory.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use tracing::debug;

/// Lowest sample rate accepted, for files and callers alike.
pub const MIN_RATE: u32 = 1_000;
/// Highest sample rate accepted, for files and callers alike.
pub const MAX_RATE: u32 = 384_000;
/// Longest file a [`WavSource`] loads.
pub const MAX_SOURCE_DURATION: Duration = Duration::from_secs(10 * 60);

/// Chunk size of the streaming resampler, in input frames.
const RESAMPLER_CHUNK: usize = 1024;

/// Errors reading or writing WAV files.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened, read or written.
    #[error("wav i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a WAV file we can read (corrupt, truncated, unsupported encoding).
    #[error("wav format: {0}")]
    Format(String),
    /// A sample rate outside [`MIN_RATE`]..=[`MAX_RATE`].
    #[error("unsupported sample rate {0} Hz")]
    Rate(u32),
    /// The file is longer than [`MAX_SOURCE_DURATION`].
    #[error("wav file longer than {} s", MAX_SOURCE_DURATION.as_secs())]
    TooLong,
    /// The resampler failed.
    #[error("resampling: {0}")]
    Resample(String),
}

impl From<hound::Error> for WavError {
    fn from(e: hound::Error) -> Self {
        match e {
            hound::Error::IoError(io) => WavError::Io(io),
            other => WavError::Format(other.to_string()),
        }
    }
}

fn check_rate(rate: u32) -> Result<u32, WavError> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(rate)
    } else {
        Err(WavError::Rate(rate))
    }
}

/// A WAV file played as mono PCM at a chosen rate, one frame at a time.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Vec<i16>,
    pos: usize,
    rate: u32,
}

impl WavSource {
    /// Loads the whole file, mixes it down to mono and resamples it to `pcm_rate`.
    pub fn open(path: impl AsRef<Path>, pcm_rate: u32) -> Result<Self, WavError> {
        let pcm_rate = check_rate(pcm_rate)?;
        let mut reader = hound::WavReader::open(path.as_ref())?;
        let spec = reader.spec();
        let file_rate = check_rate(spec.sample_rate)?;
        let channels = usize::from(spec.channels.max(1));
        if u64::from(reader.duration()) > MAX_SOURCE_DURATION.as_secs() * u64::from(file_rate) {
            return Err(WavError::TooLong);
        }
        let mono = match spec.sample_format {
            hound::SampleFormat::Float => {
                if spec.bits_per_sample != 32 {
                    return Err(WavError::Format(format!(
                        "{}-bit float samples",
                        spec.bits_per_sample
                    )));
                }
                downmix(reader.samples::<f32>(), channels, |s| s)?
            }
            hound::SampleFormat::Int => {
                let bits = spec.bits_per_sample;
                if !(8..=32).contains(&bits) {
                    return Err(WavError::Format(format!("{bits}-bit integer samples")));
                }
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                downmix(reader.samples::<i32>(), channels, |s| s as f32 * scale)?
            }
        };
        let resampled = if file_rate == pcm_rate {
            mono
        } else {
            let mut rs = StreamResampler::new(file_rate, pcm_rate)?;
            let mut out = Vec::with_capacity(
                (mono.len() as u64 * u64::from(pcm_rate) / u64::from(file_rate)) as usize + 1,
            );
            rs.push(&mono, &mut out)?;
            rs.finish(&mut out)?;
            out
        };
        let samples: Vec<i16> = resampled.into_iter().map(to_i16).collect();
        debug!(
            path = %path.as_ref().display(),
            file_rate,
            channels,
            pcm_rate,
            samples = samples.len(),
            "wav: source loaded"
        );
        Ok(Self {
            samples,
            pos: 0,
            rate: pcm_rate,
        })
    }

    /// Replaces the contents of `out` with the next `samples` mono samples at the source rate
    /// (normally one 20 ms frame). After the end of the file it yields silence and
    /// [`WavSource::is_finished`] is true.
    pub fn read_frame(&mut self, out: &mut Vec<i16>, samples: usize) {
        out.clear();
        let end = self.pos.saturating_add(samples).min(self.samples.len());
        out.extend_from_slice(&self.samples[self.pos..end]);
        out.resize(samples, 0);
        self.pos = end;
    }

    /// Whether every sample of the file has been read.
    pub fn is_finished(&self) -> bool {
        self.pos >= self.samples.len()
    }

    /// Length of the file (after resampling).
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }

    /// The rate of the PCM this source produces.
    pub fn pcm_rate(&self) -> u32 {
        self.rate
    }

    /// Starts again from the beginning (to loop a prompt).
    pub fn rewind(&mut self) {
        self.pos = 0;
    }
}

/// Averages interleaved samples of `channels` channels into mono `f32`.
fn downmix<S, I, F>(samples: I, channels: usize, to_f32: F) -> Result<Vec<f32>, WavError>
where
    I: Iterator<Item = hound::Result<S>>,
    F: Fn(S) -> f32,
{
    let mut mono = Vec::new();
    let mut acc = 0.0f32;
    let mut n = 0usize;
    for s in samples {
        acc += to_f32(s?);
        n += 1;
        if n == channels {
            mono.push(acc / channels as f32);
            acc = 0.0;
            n = 0;
        }
    }
    if n != 0 {
        return Err(WavError::Format("the last frame is incomplete".into()));
    }
    Ok(mono)
}

fn to_i16(x: f32) -> i16 {
    // NaN and infinities from a float file become silence or full scale, never a panic.
    let x = if x.is_nan() { 0.0 } else { x };
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Records mono PCM into a 16-bit mono WAV file, resampling on the way if needed.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    resampler: Option<StreamResampler>,
    scratch: Vec<f32>,
    converted: Vec<f32>,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("spec", &self.writer.spec())
            .field("resampling", &self.resampler.is_some())
            .finish()
    }
}

impl WavSink {
    /// Creates (or truncates) `path`. [`WavSink::write`] takes PCM at `pcm_rate_of_incoming`;
    /// the file is written at `file_rate`.
    pub fn create(
        path: impl AsRef<Path>,
        pcm_rate_of_incoming: u32,
        file_rate: u32,
    ) -> Result<Self, WavError> {
        let in_rate = check_rate(pcm_rate_of_incoming)?;
        let file_rate = check_rate(file_rate)?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: file_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path.as_ref(), spec)?;
        let resampler = if in_rate == file_rate {
            None
        } else {
            Some(StreamResampler::new(in_rate, file_rate)?)
        };
        Ok(Self {
            writer,
            resampler,
            scratch: Vec::new(),
            converted: Vec::new(),
        })
    }

    /// Appends mono PCM at the incoming rate.
    pub fn write(&mut self, pcm: &[i16]) -> Result<(), WavError> {
        let Some(rs) = self.resampler.as_mut() else {
            for &s in pcm {
                self.writer.write_sample(s)?;
            }
            return Ok(());
        };
        self.scratch.clear();
        self.scratch
            .extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
        self.converted.clear();
        rs.push(&self.scratch, &mut self.converted)?;
        for &x in &self.converted {
            self.writer.write_sample(to_i16(x))?;
        }
        Ok(())
    }

    /// Flushes the resampler and completes the WAV header. Dropping the sink without calling
    /// this still leaves a valid file, minus the last few milliseconds and without error
    /// reporting.
    pub fn finish(mut self) -> Result<(), WavError> {
        if let Some(rs) = self.resampler.as_mut() {
            self.converted.clear();
            rs.finish(&mut self.converted)?;
            for &x in &self.converted {
                self.writer.write_sample(to_i16(x))?;
            }
        }
        self.writer.finalize()?;
        Ok(())
    }
}

/// rubato's synchronous FFT resampler fed in arbitrary pieces: buffers input to whole chunks,
/// trims the resampler's start-up delay and, at the end, pads so that exactly
/// `ceil(input × ratio)` samples come out.
struct StreamResampler {
    inner: Fft<f32>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    to_trim: usize,
    total_in: u64,
    total_out: u64,
    ratio: f64,
}

impl StreamResampler {
    fn new(from: u32, to: u32) -> Result<Self, WavError> {
        let inner = Fft::<f32>::new(
            from as usize,
            to as usize,
            RESAMPLER_CHUNK,
            1,
            FixedSync::Input,
        )
        .map_err(|e| WavError::Resample(e.to_string()))?;
        let to_trim = inner.output_delay();
        let out_len = inner.output_frames_max();
        Ok(Self {
            inner,
            pending: Vec::new(),
            out_buf: vec![0.0; out_len],
            to_trim,
            total_in: 0,
            total_out: 0,
            ratio: f64::from(to) / f64::from(from),
        })
    }

    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), WavError> {
        self.total_in += input.len() as u64;
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.inner.input_frames_next() {
            let used = self.process(start, None, out)?;
            start += used;
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), WavError> {
        let expected = (self.total_in as f64 * self.ratio).ceil() as u64;
        if !self.pending.is_empty() {
            let left = self.pending.len();
            self.process(0, Some(left), out)?;
            self.pending.clear();
        }
        // Pump silence through until the delayed tail of the signal is out.
        // Each round yields at least one frame, so this bound is never reached; it only rules
        // out an endless loop.
        let mut rounds = expected - self.total_out.min(expected) + self.to_trim as u64 + 2;
        while self.total_out < expected && rounds > 0 {
            self.process(0, Some(0), out)?;
            rounds -= 1;
        }
        let extra = (self.total_out - expected.min(self.total_out)) as usize;
        out.truncate(out.len().saturating_sub(extra));
        self.total_out -= extra as u64;
        Ok(())
    }

    /// Runs one chunk from `pending[start..]` (`partial` frames of it, if given) and appends the
    /// output minus the start-up delay. Returns the input frames consumed.
    fn process(
        &mut self,
        start: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<usize, WavError> {
        let need = self.inner.input_frames_next();
        let zeros;
        let input: &[f32] = match partial {
            None => &self.pending[start..start + need],
            Some(n) => {
                let mut v = vec![0.0; need];
                let n = n.min(need).min(self.pending.len().saturating_sub(start));
                v[..n].copy_from_slice(&self.pending[start..start + n]);
                zeros = v;
                &zeros
            }
        };
        let resample = |e: &dyn std::fmt::Display| WavError::Resample(e.to_string());
        let adapter_in = InterleavedSlice::new(input, 1, need).map_err(|e| resample(&e))?;
        let out_frames = self.inner.output_frames_next();
        if self.out_buf.len() < out_frames {
            self.out_buf.resize(out_frames, 0.0);
        }
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.out_buf[..], 1, out_frames)
            .map_err(|e| resample(&e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n.min(need)));
        let (used, produced) = self
            .inner
            .process_into_buffer(&adapter_in, &mut adapter_out, indexing.as_ref())
            .map_err(|e| resample(&e))?;
        let produced = produced.min(self.out_buf.len());
        let trim = self.to_trim.min(produced);
        self.to_trim -= trim;
        out.extend_from_slice(&self.out_buf[trim..produced]);
        self.total_out += (produced - trim) as u64;
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scratch directory removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "krypton-wav-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sine(freq: f64, rate: u32, amplitude: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()
            })
            .collect()
    }

    /// Writes interleaved samples in [-1, 1] with hound in the given format.
    fn write_wav(path: &Path, rate: u32, channels: u16, bits: u16, float: bool, x: &[f64]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let full = ((1i64 << (bits - 1)) - 1) as f64;
        for &v in x {
            match (float, bits) {
                (true, _) => w.write_sample(v as f32).unwrap(),
                (false, 8) => w.write_sample((v * full).round() as i8).unwrap(),
                (false, 16) => w.write_sample((v * full).round() as i16).unwrap(),
                (false, _) => w.write_sample((v * full).round() as i32).unwrap(),
            }
        }
        w.finalize().unwrap();
    }

    /// Sign changes between consecutive non-zero samples.
    fn zero_crossings(x: &[i16]) -> usize {
        let nz: Vec<i16> = x.iter().copied().filter(|&s| s != 0).collect();
        nz.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    fn peak(x: &[i16]) -> i16 {
        x.iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
    }

    fn read_all(src: &mut WavSource, frame: usize) -> Vec<i16> {
        let mut all = Vec::new();
        let mut buf = Vec::new();
        while !src.is_finished() {
            src.read_frame(&mut buf, frame);
            assert_eq!(buf.len(), frame);
            all.extend_from_slice(&buf);
        }
        all
    }

    #[test]
    fn resampling_keeps_frequency_and_duration() {
        let dir = TempDir::new();
        let path = dir.path("sine16k.wav");
        write_wav(
            &path,
            16_000,
            1,
            16,
            false,
            &sine(1000.0, 16_000, 0.5, 16_000),
        );
        for rate in [48_000u32, 8_000, 16_000, 44_100] {
            let mut src = WavSource::open(&path, rate).unwrap();
            let frame = (rate / 50) as usize;
            let d = src.duration();
            assert!(
                d.abs_diff(Duration::from_secs(1)) <= Duration::from_millis(20),
                "{rate}: {d:?}"
            );
            let all = read_all(&mut src, frame);
            assert!(src.is_finished());
            let total = all.len() as u32;
            assert!(total.abs_diff(rate) <= rate / 50, "{rate}: {total} samples");
            // 1 kHz for one second: 2000 sign changes (a few lost at the faded edges).
            let zc = zero_crossings(&all);
            assert!((1990..=2002).contains(&zc), "{rate}: {zc} zero crossings");
            let p = peak(&all[all.len() / 4..all.len() / 2]);
            assert!((15_500..=17_200).contains(&p), "{rate}: peak {p}");
            // After the end: silence.
            let mut buf = vec![1; 3];
            src.read_frame(&mut buf, frame);
            assert_eq!(buf, vec![0; frame]);
            src.rewind();
            assert!(!src.is_finished());
            assert_eq!(src.pcm_rate(), rate);
        }
    }

    #[test]
    fn stereo_is_mixed_down_to_mono() {
        let dir = TempDir::new();
        let path = dir.path("stereo.wav");
        // Left: 1 kHz at 0.6, right: silence → mono 1 kHz at 0.3.
        let left = sine(1000.0, 8000, 0.6, 8000);
        let interleaved: Vec<f64> = left.iter().flat_map(|&l| [l, 0.0]).collect();
        write_wav(&path, 8000, 2, 16, false, &interleaved);
        let mut src = WavSource::open(&path, 8000).unwrap();
        let all = read_all(&mut src, 160);
        assert_eq!(all.len(), 8000);
        let p = peak(&all);
        assert!((9_700..=9_900).contains(&p), "peak {p}");
        assert_eq!(zero_crossings(&all), 1999);
    }

    #[test]
    fn every_sample_format_is_read() {
        let dir = TempDir::new();
        let x = sine(500.0, 8000, 0.25, 4000);
        for (bits, float) in [
            (8, false),
            (16, false),
            (24, false),
            (32, false),
            (32, true),
        ] {
            let path = dir.path(&format!("f{bits}{float}.wav"));
            write_wav(&path, 8000, 1, bits, float, &x);
            let mut src = WavSource::open(&path, 8000).unwrap();
            let all = read_all(&mut src, 160);
            assert_eq!(all.len(), 4000);
            let p = peak(&all);
            assert!(
                (8_000..=8_300).contains(&p),
                "{bits} bit float={float}: peak {p}"
            );
            assert_eq!(zero_crossings(&all), 499, "{bits} bit float={float}");
        }
    }

    #[test]
    fn empty_file_is_finished_at_once() {
        let dir = TempDir::new();
        let path = dir.path("empty.wav");
        write_wav(&path, 16_000, 1, 16, false, &[]);
        let mut src = WavSource::open(&path, 48_000).unwrap();
        assert!(src.is_finished());
        assert_eq!(src.duration(), Duration::ZERO);
        let mut buf = Vec::new();
        src.read_frame(&mut buf, 960);
        assert_eq!(buf, vec![0; 960]);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let dir = TempDir::new();
        let good = dir.path("good.wav");
        write_wav(&good, 8000, 2, 16, false, &sine(440.0, 8000, 0.5, 1600));
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path("bad.wav");

        assert!(matches!(
            WavSource::open(dir.path("missing.wav"), 8000),
            Err(WavError::Io(_))
        ));
        std::fs::write(&bad, b"definitely not a wav file").unwrap();
        assert!(matches!(
            WavSource::open(&bad, 8000),
            Err(WavError::Format(_))
        ));
        // Cut in the middle of the data (and mid-frame), and inside the header.
        for cut in [bytes.len() - 1000, bytes.len() - 3, 30, 12, 0] {
            std::fs::write(&bad, &bytes[..cut]).unwrap();
            assert!(WavSource::open(&bad, 8000).is_err(), "cut at {cut}");
        }
        // Rates we refuse, in the file and from the caller.
        let mut odd = bytes.clone();
        odd[24..28].copy_from_slice(&0u32.to_le_bytes());
        odd[28..32].copy_from_slice(&0u32.to_le_bytes());
        std::fs::write(&bad, &odd).unwrap();
        assert!(matches!(
            WavSource::open(&bad, 8000),
            Err(WavError::Rate(0))
        ));
        assert!(matches!(WavSource::open(&good, 0), Err(WavError::Rate(0))));
        // Every single-byte corruption of the header: an error or a file, never a panic.
        for i in 0..44 {
            for v in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut m = bytes.clone();
                m[i] = v;
                std::fs::write(&bad, &m).unwrap();
                let _ = WavSource::open(&bad, 16_000);
            }
        }
    }

    #[test]
    fn sink_at_the_same_rate_is_bit_exact() {
        let dir = TempDir::new();
        let path = dir.path("same.wav");
        let pcm: Vec<i16> = (0..8000)
            .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
            .collect();
        let mut sink = WavSink::create(&path, 8000, 8000).unwrap();
        for chunk in pcm.chunks(160) {
            sink.write(chunk).unwrap();
        }
        sink.finish().unwrap();
        let mut r = hound::WavReader::open(&path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        let back: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(back, pcm);
    }

    #[test]
    fn sink_resamples_and_round_trips_through_the_source() {
        let dir = TempDir::new();
        let path = dir.path("rec.wav");
        let pcm: Vec<i16> = sine(1000.0, 48_000, 0.5, 48_000)
            .into_iter()
            .map(|v| (v * 32767.0).round() as i16)
            .collect();
        let mut sink = WavSink::create(&path, 48_000, 16_000).unwrap();
        for chunk in pcm.chunks(960) {
            sink.write(chunk).unwrap();
        }
        sink.finish().unwrap();
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().sample_rate, 16_000);
        assert_eq!(r.duration(), 16_000);

        let mut src = WavSource::open(&path, 48_000).unwrap();
        let all = read_all(&mut src, 960);
        assert_eq!(all.len(), 48_000);
        let zc = zero_crossings(&all);
        assert!((1990..=2002).contains(&zc), "{zc} zero crossings");
        // Compare with the original in the middle, allowing for resampler ripple.
        let mid = 20_000..28_000;
        let err: f64 = all[mid.clone()]
            .iter()
            .zip(&pcm[mid.clone()])
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let sig: f64 = pcm[mid].iter().map(|&b| f64::from(b).powi(2)).sum();
        let snr = 10.0 * (sig / err).log10();
        assert!(snr > 40.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn sink_rejects_bad_rates_and_paths() {
        let dir = TempDir::new();
        assert!(matches!(
            WavSink::create(dir.path("x.wav"), 8000, 0),
            Err(WavError::Rate(0))
        ));
        assert!(matches!(
            WavSink::create(dir.path("no/such/dir/x.wav"), 8000, 8000),
            Err(WavError::Io(_))
        ));
    }
}
