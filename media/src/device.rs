//! Sound devices: the microphone and the speaker of a call, through cpal.
//!
//! [`list_devices`] lists what can be chosen; [`AudioDevices::open`] opens the chosen (or
//! default) input and output at their native rate, sample format and channel count, and
//! [`AudioDevices::endpoints`] hands out the [`AudioSource`]/[`AudioSink`] pair that a call's
//! media task reads and writes (20 ms mono frames at the codec's rate). A direction can stay
//! closed ([`DeviceOptions::open_input`], e.g. while a file is the microphone), and
//! [`resolve_device`] checks a choice without opening anything.
//!
//! ```text
//!  mic ─ cpal callback ─ downmix ─▶ ring ─▶ DeviceSource: resample ─ [AEC] ─ resample ─▶ encoder
//!  decoder ─▶ DeviceSink: resample ─▶ ring ─▶ cpal callback ─ upmix ─ speaker
//!                  └─ resample to 48 kHz ─▶ render ring ─▶ [AEC reference] (feature `aec`)
//! ```
//!
//! # Threads and the realtime rule
//!
//! cpal runs the data callbacks on its own realtime threads. They **never allocate, lock or
//! block**: they only convert samples, move them through a wait-free single-producer
//! single-consumer ring ([`rtrb`]) and bump atomic counters. A callback that finds its ring empty
//! plays silence and counts an underrun ([`DeviceStats`]); one that finds it full drops the
//! samples and counts an overflow.
//!
//! Streams are built and dropped on one audio thread owned by [`AudioDevices`] (some platforms'
//! streams are not `Send`), so the handle itself is `Send + Sync`. Opening and switching devices
//! block for a moment (a round trip to the sound server): from async code call them through
//! `tokio::task::spawn_blocking`. The source and the sink never block: the media task's 20 ms
//! tick reads and writes the rings, and re-attaches to a new stream after
//! [`AudioDevices::switch_input`]/[`AudioDevices::switch_output`] without being replaced, so a
//! call survives a device switch.
//!
//! # Hosts
//!
//! On Linux cpal's native PulseAudio host is used when a PulseAudio (or PipeWire's
//! `pipewire-pulse`) server is reachable: it names every sink and source and opens them with
//! 10 ms buffers. Without a server cpal falls back to ALSA; ALSA's `default` then fails, and
//! [`DeviceError::ServerNotRunning`] says so.
//!
//! # Echo cancellation
//!
//! With the cargo feature `aec` (on by default) the source runs WebRTC's AEC3 (the pure-Rust
//! `aec3` port) at 48 kHz in 10 ms blocks: what the sink sends to the speaker is the render
//! (reference) signal, the microphone is the capture signal. Without the feature, or with
//! [`DeviceOptions::echo_cancellation`] off, the microphone passes through unchanged.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use rtrb::{Consumer, Producer, RingBuffer};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use tracing::{debug, warn};

use crate::engine::{AudioSink, AudioSource};

/// Whether this build has echo cancellation (the cargo feature `aec`, on by default).
pub const ECHO_CANCELLATION_BUILT: bool = cfg!(feature = "aec");

/// The rate the echo canceller runs at (and the render reference is kept at).
pub const AEC_RATE: u32 = 48_000;

/// Samples in one 10 ms block at [`AEC_RATE`].
const AEC_BLOCK: usize = (AEC_RATE / 100) as usize;

/// Length of the rings between the callbacks and the media task.
const RING_MS: u32 = 500;

/// The callback buffer asked of the device.
const DEVICE_BUFFER_MS: u32 = 10;

/// Audio the speaker ring must hold before playback starts (again), so the 20 ms tick's jitter
/// does not starve the callback.
const PLAYBACK_PRIME_MS: u32 = 30;

/// Most audio queued for the speaker; above this the sink drops frames (the device's clock
/// is slower than ours) so the delay cannot grow.
const PLAYBACK_MAX_MS: u32 = 120;

/// Errors of the sound devices, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No input device at all.
    #[error("no microphone found: connect one or choose one in Settings")]
    NoInput,
    /// No output device at all.
    #[error("no speaker or headset found: connect one or choose one in Settings")]
    NoOutput,
    /// The chosen device is not (or no longer) there.
    #[error(
        "audio device \"{id}\" not found: it may have been unplugged; choose another one in Settings (the `devices` command of `krypton phone` lists them)"
    )]
    NotFound {
        /// What was asked for.
        id: String,
    },
    /// Neither a sound server nor a usable sound card.
    #[error(
        "PulseAudio/PipeWire is not running and no sound card answers: start the sound server (`systemctl --user start pipewire-pulse` or `pulseaudio --start`) or connect a sound card"
    )]
    ServerNotRunning,
    /// The system refused access.
    #[error(
        "access to the audio device \"{device}\" was denied: allow microphone access for this program, or add your user to the `audio` group"
    )]
    PermissionDenied {
        /// The device.
        device: String,
    },
    /// Another program holds the device.
    #[error(
        "the audio device \"{device}\" is busy: close the other program that uses it, or choose another device in Settings"
    )]
    Busy {
        /// The device.
        device: String,
    },
    /// The device offers nothing we can use.
    #[error(
        "the audio device \"{device}\" cannot be used ({detail}): choose another device in Settings"
    )]
    Unsupported {
        /// The device.
        device: String,
        /// What is missing.
        detail: String,
    },
    /// Any other failure of the audio system.
    #[error("audio device \"{device}\": {detail}")]
    Backend {
        /// The device (or the host, when listing).
        device: String,
        /// The audio system's message.
        detail: String,
    },
    /// The echo canceller could not be set up.
    #[error("echo canceller: {0}")]
    EchoCanceller(String),
    /// The audio thread has stopped (the [`AudioDevices`] are being dropped).
    #[error("the audio thread has stopped")]
    Stopped,
}

/// One input or output device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable identifier to save in settings and pass back (`"pulseaudio:alsa_output.pci…"`,
    /// `"alsa:default"`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The system's default device of its direction.
    pub is_default: bool,
}

/// What [`list_devices`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceList {
    /// The audio host in use (`"PulseAudio"`, `"ALSA"`, `"CoreAudio"`, `"WASAPI"` …).
    pub host: String,
    /// Microphones (and monitors of outputs).
    pub inputs: Vec<DeviceInfo>,
    /// Speakers and headsets.
    pub outputs: Vec<DeviceInfo>,
}

/// Which devices [`AudioDevices::open`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOptions {
    /// Input device: an id or name from [`list_devices`]; `None` is the system default.
    pub input: Option<String>,
    /// Output device, likewise.
    pub output: Option<String>,
    /// Open the input device. `false` needs no microphone at all (e.g. a file is the
    /// microphone): the sources handed out are silent until [`AudioDevices::switch_input`]
    /// opens one.
    pub open_input: bool,
    /// Open the output device; `false` likewise: the sinks handed out play nowhere until
    /// [`AudioDevices::switch_output`] opens one.
    pub open_output: bool,
    /// Cancel the speaker's echo from the microphone (only with the cargo feature `aec`, and
    /// only while both devices are open; otherwise this is ignored).
    pub echo_cancellation: bool,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        Self {
            input: None,
            output: None,
            open_input: true,
            open_output: true,
            echo_cancellation: cfg!(feature = "aec"),
        }
    }
}

/// The two directions of sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A microphone (or the monitor of an output).
    Input,
    /// A speaker or headset.
    Output,
}

impl DeviceKind {
    /// `"input"` or `"output"`.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Input => "input",
            DeviceKind::Output => "output",
        }
    }

    fn supports(self, d: &cpal::Device) -> bool {
        match self {
            DeviceKind::Input => d.supports_input(),
            DeviceKind::Output => d.supports_output(),
        }
    }

    fn default_device(self, host: &cpal::Host) -> Option<cpal::Device> {
        match self {
            DeviceKind::Input => host.default_input_device(),
            DeviceKind::Output => host.default_output_device(),
        }
    }

    fn default_config(self, d: &cpal::Device) -> Result<cpal::SupportedStreamConfig, cpal::Error> {
        match self {
            DeviceKind::Input => d.default_input_config(),
            DeviceKind::Output => d.default_output_config(),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of the audio path since [`AudioDevices::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Microphone callbacks that found the ring full (nobody reading, e.g. between calls).
    pub capture_overflows: u64,
    /// Frames the source padded with silence because the microphone had not delivered enough.
    pub capture_underruns: u64,
    /// Speaker callbacks that ran out of audio mid-playback and played silence.
    pub playback_underruns: u64,
    /// Frames the sink dropped because the speaker queue was full or too long.
    pub playback_overflows: u64,
    /// Errors reported by the streams (device lost, xruns of the backend …).
    pub stream_errors: u64,
}

#[derive(Default)]
struct Counters {
    capture_overflows: AtomicU64,
    capture_underruns: AtomicU64,
    playback_underruns: AtomicU64,
    playback_overflows: AtomicU64,
    stream_errors: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DeviceStats {
        DeviceStats {
            capture_overflows: self.capture_overflows.load(Ordering::Relaxed),
            capture_underruns: self.capture_underruns.load(Ordering::Relaxed),
            playback_underruns: self.playback_underruns.load(Ordering::Relaxed),
            playback_overflows: self.playback_overflows.load(Ordering::Relaxed),
            stream_errors: self.stream_errors.load(Ordering::Relaxed),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Errors

/// What we know about the host when an error happens, to word it.
#[derive(Debug, Clone, Copy)]
struct HostContext {
    /// The platform normally has a sound server (Linux) and the host in use is not one.
    server_expected: bool,
    /// The user chose this device (rather than the default).
    chosen: bool,
}

impl HostContext {
    fn of(host: &cpal::Host) -> Self {
        let name = host.id().name();
        let server = matches!(name, "PulseAudio" | "PipeWire" | "JACK");
        Self {
            server_expected: cfg!(target_os = "linux") && !server,
            chosen: false,
        }
    }
}

/// Turns a cpal error for `device` into words for the user.
fn map_error(err: &cpal::Error, device: &str, ctx: HostContext) -> DeviceError {
    use cpal::ErrorKind as K;
    let device = device.to_owned();
    match err.kind() {
        K::HostUnavailable => DeviceError::ServerNotRunning,
        K::DeviceNotAvailable if ctx.server_expected && !ctx.chosen => {
            DeviceError::ServerNotRunning
        }
        K::DeviceNotAvailable => DeviceError::NotFound { id: device },
        K::PermissionDenied => DeviceError::PermissionDenied { device },
        K::DeviceBusy => DeviceError::Busy { device },
        K::UnsupportedConfig | K::UnsupportedOperation => DeviceError::Unsupported {
            device,
            detail: err.to_string(),
        },
        _ => DeviceError::Backend {
            device,
            detail: err.to_string(),
        },
    }
}

/// The error for "no device of this direction".
fn no_device(kind: DeviceKind, ctx: HostContext) -> DeviceError {
    match kind {
        _ if ctx.server_expected => DeviceError::ServerNotRunning,
        DeviceKind::Input => DeviceError::NoInput,
        DeviceKind::Output => DeviceError::NoOutput,
    }
}

// ------------------------------------------------------------------------------------------
// Listing and finding devices

fn device_id(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.to_string())
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_owned())
        .unwrap_or_else(|_| device_id(d).unwrap_or_default())
}

fn info(d: &cpal::Device, default: Option<&str>) -> DeviceInfo {
    let id = device_id(d).unwrap_or_default();
    DeviceInfo {
        is_default: default == Some(id.as_str()),
        name: device_name(d),
        id,
    }
}

/// Lists the input and output devices of the default audio host (blocking: it asks the sound
/// server).
pub fn list_devices() -> Result<DeviceList, DeviceError> {
    let host = cpal::default_host();
    let ctx = HostContext::of(&host);
    let default_in = host.default_input_device().and_then(|d| device_id(&d));
    let default_out = host.default_output_device().and_then(|d| device_id(&d));
    let devices = host
        .devices()
        .map_err(|e| map_error(&e, host.id().name(), ctx))?;
    let mut list = DeviceList {
        host: host.id().name().to_owned(),
        ..DeviceList::default()
    };
    for d in devices {
        if d.supports_input() {
            list.inputs.push(info(&d, default_in.as_deref()));
        }
        if d.supports_output() {
            list.outputs.push(info(&d, default_out.as_deref()));
        }
    }
    Ok(list)
}

/// The device [`AudioDevices::open`] (or a switch) would use for `id` (`None`: the system
/// default), without opening it (blocking: it asks the sound server). `id` may be a full id
/// (`"pulseaudio:sinkA"`), an id without its host (`"sinkA"`) or a name.
pub fn resolve_device(kind: DeviceKind, id: Option<&str>) -> Result<DeviceInfo, DeviceError> {
    let host = cpal::default_host();
    let ctx = HostContext {
        chosen: id.is_some(),
        ..HostContext::of(&host)
    };
    let device = pick_device(&host, id, kind, ctx)?;
    let default = kind.default_device(&host).and_then(|d| device_id(&d));
    Ok(info(&device, default.as_deref()))
}

/// Finds a device by full id (`"pulseaudio:nullsink"`), host-less id (`"nullsink"`) or name.
fn find_device(
    host: &cpal::Host,
    want: &str,
    kind: DeviceKind,
    ctx: HostContext,
) -> Result<cpal::Device, DeviceError> {
    if let Ok(id) = cpal::DeviceId::from_str(want) {
        if id.host() != host.id() {
            if let Ok(other) = cpal::host_from_id(id.host())
                && let Some(d) = other.device_by_id(&id)
                && kind.supports(&d)
            {
                return Ok(d);
            }
        } else if let Some(d) = host.device_by_id(&id)
            && kind.supports(&d)
        {
            return Ok(d);
        }
    }
    let devices = host.devices().map_err(|e| map_error(&e, want, ctx))?;
    for d in devices {
        let bare = d.id().ok().map(|id| id.id().to_owned());
        if (bare.as_deref() == Some(want) || device_name(&d) == want) && kind.supports(&d) {
            return Ok(d);
        }
    }
    Err(DeviceError::NotFound {
        id: want.to_owned(),
    })
}

fn pick_device(
    host: &cpal::Host,
    want: Option<&str>,
    kind: DeviceKind,
    ctx: HostContext,
) -> Result<cpal::Device, DeviceError> {
    match want {
        Some(w) => find_device(host, w, kind, ctx),
        None => kind
            .default_device(host)
            .ok_or_else(|| no_device(kind, ctx)),
    }
}

// ------------------------------------------------------------------------------------------
// Ports: hand a new ring end to whoever owns the source or sink

/// The capture ring's reading end, and the device rate of what is in it.
struct CaptureEnd {
    ring: Consumer<f32>,
    rate: u32,
}

/// The playback ring's writing end, and the device rate it expects.
struct PlaybackEnd {
    ring: Producer<f32>,
    rate: u32,
}

/// A mailbox for the newest ring end of one direction. The audio thread publishes a new end
/// after every (re)built stream; the current owner (the newest source or sink) takes it. The
/// lock is only taken by non-realtime threads.
struct Port<E> {
    end: Mutex<Option<E>>,
    generation: AtomicU64,
    owner: AtomicU64,
    next_claim: AtomicU64,
}

impl<E> Port<E> {
    fn new() -> Self {
        Self {
            end: Mutex::new(None),
            generation: AtomicU64::new(0),
            owner: AtomicU64::new(0),
            next_claim: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<E>> {
        self.end.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, end: E) {
        *self.lock() = Some(end);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes a new owner; older owners stop taking ends.
    fn claim(&self) -> u64 {
        let c = self.next_claim.fetch_add(1, Ordering::AcqRel) + 1;
        self.owner.store(c, Ordering::Release);
        c
    }

    fn is_owner(&self, claim: u64) -> bool {
        self.owner.load(Ordering::Acquire) == claim
    }

    fn has_end(&self) -> bool {
        self.lock().is_some()
    }

    /// A newer end for `claim`, if one was published since `seen`.
    fn take(&self, claim: u64, seen: &mut u64) -> Option<E> {
        let generation = self.generation.load(Ordering::Acquire);
        if generation == *seen || !self.is_owner(claim) {
            return None;
        }
        let end = self.lock().take()?;
        *seen = generation;
        Some(end)
    }

    /// A dropped owner returns its end for the next one (unless a newer end is waiting).
    fn give_back(&self, claim: u64, end: E) {
        if self.is_owner(claim) {
            let mut slot = self.lock();
            if slot.is_none() {
                *slot = Some(end);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// The realtime callbacks (no allocation, no lock)

/// Microphone callback body: mixes `data` (interleaved, `channels`) down to mono f32 and
/// pushes it into the ring. Realtime-safe.
fn capture_callback<T>(data: &[T], channels: usize, ring: &mut Producer<f32>, counters: &Counters)
where
    T: Sample,
    f32: FromSample<T>,
{
    if ring.is_abandoned() {
        // The source moved on to a newer stream; this one is being torn down.
        return;
    }
    let channels = channels.max(1);
    let frames = data.len() / channels;
    let n = frames.min(ring.slots());
    if n > 0
        && let Ok(chunk) = ring.write_chunk_uninit(n)
    {
        let scale = 1.0 / channels as f32;
        chunk.fill_from_iter(data.chunks_exact(channels).map(|frame| {
            frame
                .iter()
                .map(|&s| f32::from_sample_(s))
                .fold(0.0, |a, b| a + b)
                * scale
        }));
    }
    if n < frames {
        Counters::bump(&counters.capture_overflows);
    }
}

/// State of one speaker callback.
struct PlaybackState {
    /// Playing (as opposed to waiting for the ring to fill to `prime` samples).
    primed: bool,
    prime: usize,
}

/// Speaker callback body: fills `out` (interleaved, `channels`) from the mono ring, with
/// silence when it runs dry (counted). Realtime-safe.
fn playback_callback<T>(
    out: &mut [T],
    channels: usize,
    ring: &mut Consumer<f32>,
    state: &mut PlaybackState,
    counters: &Counters,
) where
    T: Sample + FromSample<f32>,
{
    let channels = channels.max(1);
    let frames = out.len() / channels;
    let available = ring.slots();
    if !state.primed && available >= state.prime.max(1) {
        state.primed = true;
    }
    let n = if state.primed {
        frames.min(available)
    } else {
        0
    };
    let mut written = 0;
    if n > 0
        && let Ok(chunk) = ring.read_chunk(n)
    {
        let (a, b) = chunk.as_slices();
        for (frame, &s) in out.chunks_exact_mut(channels).zip(a.iter().chain(b)) {
            frame.fill(T::from_sample_(s));
            written += 1;
        }
        chunk.commit_all();
    }
    for frame in out.chunks_exact_mut(channels).skip(written) {
        frame.fill(T::EQUILIBRIUM);
    }
    if state.primed && written < frames {
        Counters::bump(&counters.playback_underruns);
        state.primed = false;
    }
}

// ------------------------------------------------------------------------------------------
// Opening streams

/// A running stream and what it is.
struct OpenStream {
    stream: cpal::Stream,
    info: DeviceInfo,
}

fn buffer_size(range: &cpal::SupportedBufferSize, rate: u32) -> cpal::BufferSize {
    let want = (rate * DEVICE_BUFFER_MS / 1000).max(1);
    match *range {
        cpal::SupportedBufferSize::Range { min, max } if min <= max => {
            cpal::BufferSize::Fixed(want.clamp(min, max))
        }
        _ => cpal::BufferSize::Default,
    }
}

fn ring_len(rate: u32) -> usize {
    (rate as usize * RING_MS as usize / 1000).max(1024)
}

/// What differs between opening the microphone and opening the speaker: the ring end handed
/// to the source or sink, where it is published, and the realtime callback. Everything else
/// ([`open_stream`]) is the same for both.
trait Flow {
    /// The end of the ring that the source or sink takes over.
    type End: Send + 'static;
    /// Which direction this is.
    const KIND: DeviceKind;
    /// Where new ends of this direction are published.
    fn port(shared: &Shared) -> &Port<Self::End>;
    /// Builds a stream of sample type `T` with a fresh ring.
    fn build<T>(
        device: &cpal::Device,
        config: cpal::StreamConfig,
        counters: &Arc<Counters>,
        rate: u32,
    ) -> Result<(cpal::Stream, Self::End), cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
        f32: FromSample<T>;
}

/// The microphone direction.
struct Capture;

impl Flow for Capture {
    type End = CaptureEnd;
    const KIND: DeviceKind = DeviceKind::Input;

    fn port(shared: &Shared) -> &Port<CaptureEnd> {
        &shared.capture
    }

    fn build<T>(
        device: &cpal::Device,
        config: cpal::StreamConfig,
        counters: &Arc<Counters>,
        rate: u32,
    ) -> Result<(cpal::Stream, CaptureEnd), cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
        f32: FromSample<T>,
    {
        let (mut producer, consumer) = RingBuffer::<f32>::new(ring_len(rate));
        let channels = usize::from(config.channels);
        let c = Arc::clone(counters);
        let e = Arc::clone(counters);
        let stream = device.build_input_stream::<T, _, _>(
            config,
            move |data: &[T], _| capture_callback(data, channels, &mut producer, &c),
            move |err| stream_error(&e, &err, DeviceKind::Input),
            None,
        )?;
        let end = CaptureEnd {
            ring: consumer,
            rate,
        };
        Ok((stream, end))
    }
}

/// The speaker direction.
struct Playback;

impl Flow for Playback {
    type End = PlaybackEnd;
    const KIND: DeviceKind = DeviceKind::Output;

    fn port(shared: &Shared) -> &Port<PlaybackEnd> {
        &shared.playback
    }

    fn build<T>(
        device: &cpal::Device,
        config: cpal::StreamConfig,
        counters: &Arc<Counters>,
        rate: u32,
    ) -> Result<(cpal::Stream, PlaybackEnd), cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
        f32: FromSample<T>,
    {
        let (producer, mut consumer) = RingBuffer::<f32>::new(ring_len(rate));
        let channels = usize::from(config.channels);
        let mut state = PlaybackState {
            primed: false,
            prime: (rate * PLAYBACK_PRIME_MS / 1000) as usize,
        };
        let c = Arc::clone(counters);
        let e = Arc::clone(counters);
        let stream = device.build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _| {
                playback_callback(data, channels, &mut consumer, &mut state, &c)
            },
            move |err| stream_error(&e, &err, DeviceKind::Output),
            None,
        )?;
        let end = PlaybackEnd {
            ring: producer,
            rate,
        };
        Ok((stream, end))
    }
}

/// Builds a stream of direction `F` in the device's own sample format.
fn build_stream<F: Flow>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    format: SampleFormat,
    counters: &Arc<Counters>,
    rate: u32,
) -> Result<(cpal::Stream, F::End), cpal::Error> {
    match format {
        SampleFormat::I8 => F::build::<i8>(device, config, counters, rate),
        SampleFormat::I16 => F::build::<i16>(device, config, counters, rate),
        SampleFormat::I32 => F::build::<i32>(device, config, counters, rate),
        SampleFormat::U8 => F::build::<u8>(device, config, counters, rate),
        SampleFormat::U16 => F::build::<u16>(device, config, counters, rate),
        SampleFormat::U32 => F::build::<u32>(device, config, counters, rate),
        SampleFormat::F32 => F::build::<f32>(device, config, counters, rate),
        SampleFormat::F64 => F::build::<f64>(device, config, counters, rate),
        other => Err(cpal::Error::with_message(
            cpal::ErrorKind::UnsupportedConfig,
            format!("sample format {other:?}"),
        )),
    }
}

/// Opens the device `want` (`None`: the default) of direction `F` at its native rate, format
/// and channels with a 10 ms buffer (the backend's default if it refuses that), starts it and
/// publishes its ring end.
fn open_stream<F: Flow>(
    host: &cpal::Host,
    want: Option<&str>,
    shared: &Shared,
) -> Result<OpenStream, DeviceError> {
    let kind = F::KIND;
    let ctx = HostContext {
        chosen: want.is_some(),
        ..HostContext::of(host)
    };
    let device = pick_device(host, want, kind, ctx)?;
    let default = kind.default_device(host).and_then(|d| device_id(&d));
    let info = info(&device, default.as_deref());
    let supported = kind
        .default_config(&device)
        .map_err(|e| map_error(&e, &info.id, ctx))?;
    let rate = supported.sample_rate();
    let format = supported.sample_format();
    let mut config = supported.config();
    config.buffer_size = buffer_size(supported.buffer_size(), rate);
    let counters = &shared.counters;
    let (stream, end) = match build_stream::<F>(&device, config, format, counters, rate) {
        Err(e) if config.buffer_size != cpal::BufferSize::Default => {
            debug!(%kind, device = %info.id, error = %e, "fixed buffer refused, using the default");
            config.buffer_size = cpal::BufferSize::Default;
            build_stream::<F>(&device, config, format, counters, rate)
        }
        other => other,
    }
    .map_err(|e| map_error(&e, &info.id, ctx))?;
    stream.play().map_err(|e| map_error(&e, &info.id, ctx))?;
    // Only a running stream replaces the old one (a new record stream can take a while to
    // deliver its first block; until then the source keeps reading the old one).
    F::port(shared).publish(end);
    debug!(%kind, device = %info.id, rate, channels = config.channels, ?format, "stream open");
    Ok(OpenStream { stream, info })
}

/// The error callback (not the realtime data callback): count and log.
fn stream_error(counters: &Counters, err: &cpal::Error, kind: DeviceKind) {
    Counters::bump(&counters.stream_errors);
    if err.kind() != cpal::ErrorKind::Xrun {
        warn!(%kind, error = %err, "audio stream error");
    }
}

// ------------------------------------------------------------------------------------------
// The audio thread and the handle

enum Cmd {
    Switch {
        kind: DeviceKind,
        want: Option<String>,
        reply: mpsc::Sender<Result<DeviceInfo, DeviceError>>,
    },
    /// Build the stream again on the same device (a new source or sink needs a fresh ring).
    Reopen(DeviceKind),
}

/// The devices in use: (input, output); `None` while a direction is closed.
type Current = (Option<DeviceInfo>, Option<DeviceInfo>);

struct Shared {
    capture: Port<CaptureEnd>,
    playback: Port<PlaybackEnd>,
    counters: Arc<Counters>,
    current: Mutex<Current>,
}

impl Shared {
    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_current(&self, kind: DeviceKind, info: Option<DeviceInfo>) {
        let mut current = self.current();
        match kind {
            DeviceKind::Input => current.0 = info,
            DeviceKind::Output => current.1 = info,
        }
    }
}

/// The open microphone and speaker, shared by the calls that use them.
///
/// Dropping it stops both streams; sources and sinks handed out then play silence.
pub struct AudioDevices {
    cmd: Option<mpsc::Sender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    echo_cancellation: bool,
}

impl std::fmt::Debug for AudioDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (input, output) = self.shared.current().clone();
        f.debug_struct("AudioDevices")
            .field("input", &input)
            .field("output", &output)
            .field("echo_cancellation", &self.echo_cancellation())
            .finish()
    }
}

impl AudioDevices {
    /// Opens the input and output devices of `options` (blocking; see the module docs).
    pub fn open(options: &DeviceOptions) -> Result<Self, DeviceError> {
        let shared = Arc::new(Shared {
            capture: Port::new(),
            playback: Port::new(),
            counters: Arc::new(Counters::default()),
            current: Mutex::new((None, None)),
        });
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let (init_tx, init_rx) = mpsc::channel::<Result<(), DeviceError>>();
        let opts = options.clone();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("krypton-audio".into())
            .spawn(move || audio_thread(&opts, &thread_shared, &cmd_rx, &init_tx))
            .map_err(|e| DeviceError::Backend {
                device: "audio thread".into(),
                detail: e.to_string(),
            })?;
        let opened = init_rx.recv().unwrap_or(Err(DeviceError::Stopped));
        if let Err(e) = opened {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Self {
            cmd: Some(cmd_tx),
            thread: Some(thread),
            shared,
            echo_cancellation: options.echo_cancellation && cfg!(feature = "aec"),
        })
    }

    /// The input device in use (`None` while it is closed).
    pub fn input(&self) -> Option<DeviceInfo> {
        self.shared.current().0.clone()
    }

    /// The output device in use (`None` while it is closed).
    pub fn output(&self) -> Option<DeviceInfo> {
        self.shared.current().1.clone()
    }

    /// Whether the sources handed out now cancel echo: asked for in [`DeviceOptions`], built
    /// with the feature `aec`, and both devices open.
    pub fn echo_cancellation(&self) -> bool {
        let (input, output) = &*self.shared.current();
        self.echo_cancellation && input.is_some() && output.is_some()
    }

    /// Counters of underruns, overflows and stream errors.
    pub fn stats(&self) -> DeviceStats {
        self.shared.counters.snapshot()
    }

    /// The microphone and speaker ends for one call's media task (non-blocking).
    ///
    /// The newest pair owns the devices: an older pair still alive goes silent. Both keep
    /// working across [`AudioDevices::switch_input`] and [`AudioDevices::switch_output`]. To
    /// hand the devices from one pair to a new one without reopening the streams, drop the old
    /// pair first.
    pub fn endpoints(&self) -> (Box<dyn AudioSource>, Box<dyn AudioSink>) {
        let capture_claim = self.shared.capture.claim();
        let playback_claim = self.shared.playback.claim();
        // An end still held by an older source or sink cannot be shared: ask for fresh ones.
        if !self.shared.capture.has_end() {
            self.send(Cmd::Reopen(DeviceKind::Input));
        }
        if !self.shared.playback.has_end() {
            self.send(Cmd::Reopen(DeviceKind::Output));
        }
        let (render_tx, render_rx) = if self.echo_cancellation() {
            let (p, c) = RingBuffer::<f32>::new(ring_len(AEC_RATE));
            (Some(p), Some(c))
        } else {
            (None, None)
        };
        let source = DeviceSource::new(
            Attachment::Port(Arc::clone(&self.shared), capture_claim),
            Arc::clone(&self.shared.counters),
            render_rx,
        );
        let sink = DeviceSink::new(
            Attachment::Port(Arc::clone(&self.shared), playback_claim),
            Arc::clone(&self.shared.counters),
            render_tx,
        );
        (Box::new(source), Box::new(sink))
    }

    /// Moves the microphone to another device (`None`: the default), or opens it if it was
    /// closed, without interrupting the call (blocking). On failure the old device stays in
    /// use.
    pub fn switch_input(&self, id: Option<&str>) -> Result<DeviceInfo, DeviceError> {
        self.switch(DeviceKind::Input, id)
    }

    /// Moves the speaker to another device (`None`: the default), or opens it if it was
    /// closed, without interrupting the call (blocking). On failure the old device stays in
    /// use.
    pub fn switch_output(&self, id: Option<&str>) -> Result<DeviceInfo, DeviceError> {
        self.switch(DeviceKind::Output, id)
    }

    /// [`AudioDevices::switch_input`] or [`AudioDevices::switch_output`] by `kind`.
    pub fn switch(&self, kind: DeviceKind, id: Option<&str>) -> Result<DeviceInfo, DeviceError> {
        let (reply, rx) = mpsc::channel();
        self.send(Cmd::Switch {
            kind,
            want: id.map(str::to_owned),
            reply,
        });
        rx.recv().map_err(|_| DeviceError::Stopped)?
    }

    fn send(&self, cmd: Cmd) {
        if let Some(tx) = &self.cmd {
            let _ = tx.send(cmd);
        }
    }
}

impl Drop for AudioDevices {
    fn drop(&mut self) {
        self.cmd = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The streams the audio thread owns.
struct Streams {
    host: cpal::Host,
    input: Option<OpenStream>,
    output: Option<OpenStream>,
}

impl Streams {
    /// Switches (or opens) the input: make before break, the old stream runs until the new one
    /// is up.
    fn switch_input(
        &mut self,
        want: Option<&str>,
        shared: &Shared,
    ) -> Result<DeviceInfo, DeviceError> {
        let new = open_stream::<Capture>(&self.host, want, shared)?;
        let info = new.info.clone();
        shared.set_current(DeviceKind::Input, Some(info.clone()));
        if let Some(old) = self.input.replace(new) {
            retire(old);
        }
        Ok(info)
    }

    /// Switches (or opens) the output: break before make. PulseAudio keeps all playback
    /// streams of one connection in one sync group, which cannot span two sinks (the new
    /// stream would be refused with "Invalid argument"). The gap is a few milliseconds; if the
    /// new device fails, the old one is opened again.
    fn switch_output(
        &mut self,
        want: Option<&str>,
        shared: &Shared,
    ) -> Result<DeviceInfo, DeviceError> {
        let ctx = HostContext {
            chosen: want.is_some(),
            ..HostContext::of(&self.host)
        };
        // Refuse a missing device before stopping the one that plays.
        pick_device(&self.host, want, DeviceKind::Output, ctx)?;
        let old_id = self.output.take().map(|old| old.info.id.clone());
        match open_stream::<Playback>(&self.host, want, shared) {
            Ok(new) => {
                let info = new.info.clone();
                shared.set_current(DeviceKind::Output, Some(info.clone()));
                self.output = Some(new);
                Ok(info)
            }
            Err(e) => {
                if let Some(id) = old_id {
                    self.output = open_stream::<Playback>(&self.host, Some(&id), shared)
                        .map_err(|e| warn!(device = %id, error = %e, "cannot reopen the output"))
                        .ok();
                    if self.output.is_none() {
                        shared.set_current(DeviceKind::Output, None);
                    }
                }
                Err(e)
            }
        }
    }

    /// Builds the stream of `kind` again on the same device (if it is open).
    fn reopen(&mut self, kind: DeviceKind, shared: &Shared) {
        let current = match kind {
            DeviceKind::Input => self.input.as_ref(),
            DeviceKind::Output => self.output.as_ref(),
        };
        let Some(id) = current.map(|s| s.info.id.clone()) else {
            return;
        };
        let reopened = match kind {
            DeviceKind::Input => self.switch_input(Some(&id), shared),
            DeviceKind::Output => self.switch_output(Some(&id), shared),
        };
        if let Err(e) = reopened {
            warn!(%kind, device = %id, error = %e, "cannot reopen the stream");
        }
    }
}

fn audio_thread(
    options: &DeviceOptions,
    shared: &Shared,
    cmd_rx: &mpsc::Receiver<Cmd>,
    init: &mpsc::Sender<Result<(), DeviceError>>,
) {
    let host = cpal::default_host();
    debug!(host = host.id().name(), "audio host");
    let mut streams = Streams {
        host,
        input: None,
        output: None,
    };
    let mut opened = Ok(());
    if options.open_output {
        opened = streams
            .switch_output(options.output.as_deref(), shared)
            .map(drop);
    }
    if options.open_input && opened.is_ok() {
        opened = streams
            .switch_input(options.input.as_deref(), shared)
            .map(drop);
    }
    let failed = opened.is_err();
    if init.send(opened).is_err() || failed {
        return;
    }
    // Ends when the handle drops its sender.
    while let Ok(cmd) = cmd_rx.recv() {
        match cmd {
            Cmd::Switch { kind, want, reply } => {
                let result = match kind {
                    DeviceKind::Input => streams.switch_input(want.as_deref(), shared),
                    DeviceKind::Output => streams.switch_output(want.as_deref(), shared),
                };
                let _ = reply.send(result);
            }
            Cmd::Reopen(kind) => streams.reopen(kind, shared),
        }
    }
    drop(streams);
    debug!("audio thread stops");
}

/// Stops an input stream that was replaced. cpal 0.18.2's PulseAudio host does not delete a
/// record stream when it is dropped (the server would keep sending to it until the connection
/// closes), so it is corked first.
fn retire(old: OpenStream) {
    if let Err(e) = old.stream.pause() {
        debug!(device = %old.info.id, error = %e, "cannot pause the old input stream");
    }
}

// ------------------------------------------------------------------------------------------
// Streaming resampler (media task side)

/// rubato's FFT resampler fed with arbitrary pieces of mono audio; passes through when the
/// rates are equal.
struct Resample {
    from: u32,
    to: u32,
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
}

impl Resample {
    fn new(from: u32, to: u32) -> Self {
        let inner = if from == to || from == 0 || to == 0 {
            None
        } else {
            let chunk = (from as usize / 100).max(1);
            match Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(from, to, error = %e, "resampler unavailable: audio passes unresampled");
                    None
                }
            }
        };
        let out_len = inner.as_ref().map_or(0, |r| r.output_frames_max());
        Self {
            from,
            to,
            inner,
            pending: Vec::new(),
            out_buf: vec![0.0; out_len],
        }
    }

    fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// Appends the resampled `input` to `out`.
    fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let frames_out = inner.output_frames_next();
            if self.out_buf.len() < frames_out {
                self.out_buf.resize(frames_out, 0.0);
            }
            let Ok(adapter_in) = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
            else {
                break;
            };
            let Ok(mut adapter_out) =
                InterleavedSlice::new_mut(&mut self.out_buf[..frames_out], 1, frames_out)
            else {
                break;
            };
            match inner.process_into_buffer(&adapter_in, &mut adapter_out, None) {
                Ok((used, produced)) => {
                    out.extend_from_slice(&self.out_buf[..produced.min(frames_out)]);
                    start += used.max(1);
                }
                Err(e) => {
                    warn!(error = %e, "resampling failed: dropping audio");
                    start = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..start);
    }
}

fn i16_to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

fn f32_to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

// ------------------------------------------------------------------------------------------
// Echo cancellation

#[cfg(feature = "aec")]
mod echo {
    use super::{AEC_RATE, DeviceError};
    use aec3::api::config::EchoCanceller3Config;
    use aec3::api::control::EchoControl;
    use aec3::audio_processing::aec3::echo_canceller3::EchoCanceller3;
    use aec3::audio_processing::audio_buffer::AudioBuffer;
    use aec3::audio_processing::stream_config::StreamConfig;

    /// WebRTC's AEC3 on mono 10 ms blocks at [`AEC_RATE`] (no noise suppression or gain
    /// control, so the near-end voice keeps its level).
    pub(super) struct Canceller {
        echo: EchoCanceller3,
        config: StreamConfig,
        render: AudioBuffer,
        capture: AudioBuffer,
        out: Vec<f32>,
    }

    // SAFETY: `EchoCanceller3` is `!Send` only because it keeps its block processor (and the
    // suppressor its near-end detector) as `Box<dyn Trait>` without a `Send` bound. The only
    // implementations outside aec3's own tests are plain owned data: aec3 0.4.0 has no `Rc`,
    // `Cell`, raw pointer or thread-local outside `#[cfg(test)]` in `audio_processing`/`api`
    // (checked when pinning `=0.4.0`). A `Canceller` is owned by one `DeviceSource` and used
    // by one thread at a time (`&mut self`), so moving it to another thread is sound.
    unsafe impl Send for Canceller {}

    impl Canceller {
        pub(super) fn new() -> Result<Self, DeviceError> {
            let rate = AEC_RATE as usize;
            let buffer = || AudioBuffer::from_sample_rates(rate, 1, rate, 1, rate);
            Ok(Self {
                echo: EchoCanceller3::with_multichannel_config(
                    EchoCanceller3Config::default(),
                    None,
                    AEC_RATE as i32,
                    1,
                    1,
                ),
                config: StreamConfig::new(rate, 1, false),
                render: buffer(),
                capture: buffer(),
                out: vec![0.0; super::AEC_BLOCK],
            })
        }

        pub(super) fn render(&mut self, block: &[f32]) {
            self.render.copy_from(&[block], &self.config);
            self.render.split_into_frequency_bands();
            self.echo.analyze_render(&mut self.render);
        }

        pub(super) fn capture(&mut self, block: &[f32], out: &mut Vec<f32>) {
            self.capture.copy_from(&[block], &self.config);
            self.echo.analyze_capture(&mut self.capture);
            self.capture.split_into_frequency_bands();
            self.echo.process_capture(&mut self.capture, false);
            self.capture.merge_frequency_bands();
            self.capture
                .copy_to_stream(&self.config, &mut [&mut self.out[..]]);
            out.extend_from_slice(&self.out);
        }
    }
}

#[cfg(not(feature = "aec"))]
mod echo {
    use super::DeviceError;

    /// Without the `aec` feature: passes the microphone through.
    pub(super) struct Canceller;

    impl Canceller {
        pub(super) fn new() -> Result<Self, DeviceError> {
            Ok(Self)
        }

        pub(super) fn render(&mut self, _block: &[f32]) {}

        pub(super) fn capture(&mut self, block: &[f32], out: &mut Vec<f32>) {
            out.extend_from_slice(block);
        }
    }
}

/// The echo canceller fed in arbitrary pieces at [`AEC_RATE`]: cuts render and capture into
/// 10 ms blocks and runs all pending render blocks before each capture block.
pub(crate) struct EchoProcessor {
    canceller: echo::Canceller,
    render_ring: Consumer<f32>,
    render_block: Vec<f32>,
    capture_pending: Vec<f32>,
}

impl EchoProcessor {
    fn new(render_ring: Consumer<f32>) -> Result<Self, DeviceError> {
        Ok(Self {
            canceller: echo::Canceller::new()?,
            render_ring,
            render_block: vec![0.0; AEC_BLOCK],
            capture_pending: Vec::with_capacity(4 * AEC_BLOCK),
        })
    }

    /// Cancels echo from `capture` (at [`AEC_RATE`]) and appends whole processed blocks to `out`.
    fn process(&mut self, capture: &[f32], out: &mut Vec<f32>) {
        self.capture_pending.extend_from_slice(capture);
        let mut start = 0;
        while self.capture_pending.len() - start >= AEC_BLOCK {
            while self.render_ring.slots() >= AEC_BLOCK {
                let (a, b) = self.render_ring.pop_partial_slice(&mut self.render_block);
                debug_assert_eq!(a.len() + b.len(), AEC_BLOCK);
                self.canceller.render(&self.render_block);
            }
            let block = &self.capture_pending[start..start + AEC_BLOCK];
            self.canceller.capture(block, out);
            start += AEC_BLOCK;
        }
        self.capture_pending.drain(..start);
    }
}

// ------------------------------------------------------------------------------------------
// Source and sink

/// Where a source or sink gets its ring ends: the devices' ports, or (in tests) a fixed end.
enum Attachment {
    Port(Arc<Shared>, u64),
    /// A ring end set once (tests): no switching.
    #[cfg(test)]
    Fixed,
}

/// The microphone as an [`AudioSource`].
struct DeviceSource {
    attachment: Attachment,
    seen: u64,
    end: Option<CaptureEnd>,
    counters: Arc<Counters>,
    echo: Option<EchoProcessor>,
    to_proc: Resample,
    to_codec: Resample,
    raw: Vec<f32>,
    proc: Vec<f32>,
    cancelled: Vec<f32>,
    fifo: VecDeque<f32>,
    codec_rate: u32,
    primed: bool,
}

impl DeviceSource {
    fn new(attachment: Attachment, counters: Arc<Counters>, render: Option<Consumer<f32>>) -> Self {
        let echo = render.and_then(|r| match EchoProcessor::new(r) {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(error = %e, "no echo cancellation");
                None
            }
        });
        Self {
            attachment,
            seen: 0,
            end: None,
            counters,
            echo,
            to_proc: Resample::new(0, 0),
            to_codec: Resample::new(0, 0),
            raw: Vec::new(),
            proc: Vec::new(),
            cancelled: Vec::new(),
            fifo: VecDeque::new(),
            codec_rate: 0,
            primed: false,
        }
    }

    /// Takes a newer ring end if the audio thread published one; drops ours if we lost
    /// ownership.
    fn refresh(&mut self) {
        let (shared, claim) = match &self.attachment {
            Attachment::Port(shared, claim) => (shared, claim),
            #[cfg(test)]
            Attachment::Fixed => return,
        };
        if !shared.capture.is_owner(*claim) {
            self.end = None;
            return;
        }
        if let Some(end) = shared.capture.take(*claim, &mut self.seen) {
            self.end = Some(end);
        }
    }

    fn fill(&mut self, samples: usize, rate: u32) {
        if rate != self.codec_rate {
            self.codec_rate = rate;
            self.fifo.clear();
            self.primed = false;
        }
        let Some(end) = self.end.as_mut() else {
            return;
        };
        let proc_rate = if self.echo.is_some() { AEC_RATE } else { rate };
        if self.to_proc.rates() != (end.rate, proc_rate) {
            self.to_proc = Resample::new(end.rate, proc_rate);
        }
        if self.to_codec.rates() != (proc_rate, rate) {
            self.to_codec = Resample::new(proc_rate, rate);
        }
        self.raw.clear();
        let n = end.ring.slots();
        if let Ok(chunk) = end.ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            self.raw.extend_from_slice(a);
            self.raw.extend_from_slice(b);
            chunk.commit_all();
        }
        self.proc.clear();
        self.to_proc.process(&self.raw, &mut self.proc);
        let ready: &[f32] = match self.echo.as_mut() {
            Some(echo) => {
                self.cancelled.clear();
                echo.process(&self.proc, &mut self.cancelled);
                &self.cancelled
            }
            None => &self.proc,
        };
        self.raw.clear();
        self.to_codec.process(ready, &mut self.raw);
        self.fifo.extend(self.raw.iter().copied());
        // Bound the delay: the microphone's clock may run faster than our 20 ms tick.
        if self.fifo.len() > 4 * samples {
            let excess = self.fifo.len() - 2 * samples;
            self.fifo.drain(..excess);
        }
    }
}

impl AudioSource for DeviceSource {
    fn read(&mut self, out: &mut Vec<i16>, samples: usize, rate: u32) {
        self.refresh();
        self.fill(samples, rate);
        out.clear();
        if !self.primed {
            // Start (again) with a cushion of half a frame against the tick's jitter.
            if self.fifo.len() >= samples + samples / 2 {
                self.primed = true;
            } else {
                out.resize(samples, 0);
                return;
            }
        }
        let n = samples.min(self.fifo.len());
        out.extend(self.fifo.drain(..n).map(f32_to_i16));
        if n < samples {
            Counters::bump(&self.counters.capture_underruns);
            self.primed = false;
            out.resize(samples, 0);
        }
    }
}

impl Drop for DeviceSource {
    fn drop(&mut self) {
        if let (Attachment::Port(shared, claim), Some(end)) = (&self.attachment, self.end.take()) {
            shared.capture.give_back(*claim, end);
        }
    }
}

/// The speaker as an [`AudioSink`].
struct DeviceSink {
    attachment: Attachment,
    seen: u64,
    end: Option<PlaybackEnd>,
    counters: Arc<Counters>,
    render: Option<(Producer<f32>, Resample)>,
    to_device: Resample,
    pcm: Vec<f32>,
    out: Vec<f32>,
}

impl DeviceSink {
    fn new(attachment: Attachment, counters: Arc<Counters>, render: Option<Producer<f32>>) -> Self {
        Self {
            attachment,
            seen: 0,
            end: None,
            counters,
            render: render.map(|p| (p, Resample::new(0, 0))),
            to_device: Resample::new(0, 0),
            pcm: Vec::new(),
            out: Vec::new(),
        }
    }

    fn refresh(&mut self) {
        let (shared, claim) = match &self.attachment {
            Attachment::Port(shared, claim) => (shared, claim),
            #[cfg(test)]
            Attachment::Fixed => return,
        };
        if !shared.playback.is_owner(*claim) {
            self.end = None;
            return;
        }
        if let Some(end) = shared.playback.take(*claim, &mut self.seen) {
            self.end = Some(end);
        }
    }
}

impl AudioSink for DeviceSink {
    fn write(&mut self, pcm: &[i16], rate: u32) {
        self.refresh();
        let Some(end) = self.end.as_mut() else {
            return;
        };
        self.pcm.clear();
        self.pcm.extend(pcm.iter().copied().map(i16_to_f32));
        if self.to_device.rates() != (rate, end.rate) {
            self.to_device = Resample::new(rate, end.rate);
        }
        self.out.clear();
        self.to_device.process(&self.pcm, &mut self.out);
        let capacity = end.ring.buffer().capacity();
        let queued = capacity - end.ring.slots();
        let max = (end.rate * PLAYBACK_MAX_MS / 1000) as usize;
        if queued + self.out.len() > max.min(capacity) {
            // The speaker is behind (or stopped): drop this frame rather than grow the delay.
            Counters::bump(&self.counters.playback_overflows);
            return;
        }
        let (_, rest) = end.ring.push_partial_slice(&self.out);
        if !rest.is_empty() {
            Counters::bump(&self.counters.playback_overflows);
        }
        // What goes to the speaker is the echo canceller's reference.
        if let Some((ring, resample)) = self.render.as_mut() {
            if resample.rates() != (rate, AEC_RATE) {
                *resample = Resample::new(rate, AEC_RATE);
            }
            self.out.clear();
            resample.process(&self.pcm, &mut self.out);
            let _ = ring.push_partial_slice(&self.out);
        }
    }
}

impl Drop for DeviceSink {
    fn drop(&mut self) {
        if let (Attachment::Port(shared, claim), Some(end)) = (&self.attachment, self.end.take()) {
            shared.playback.give_back(*claim, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Power of `x` at `freq` (Goertzel), normalised so a full-scale sine gives 0.25.
    fn tone_power(x: &[f32], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        p / (x.len() as f64 * x.len() as f64)
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    fn sine(freq: f64, rate: u32, amp: f64, start: usize, n: usize) -> impl Iterator<Item = f64> {
        (start..start + n).map(move |i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin())
    }

    fn fixed_source(end: CaptureEnd, counters: Arc<Counters>) -> DeviceSource {
        let mut s = DeviceSource::new(Attachment::Fixed, counters, None);
        s.end = Some(end);
        s
    }

    #[test]
    fn capture_path_downmixes_and_resamples_to_the_codec_rate() {
        let counters = Arc::new(Counters::default());
        let (mut producer, consumer) = RingBuffer::<f32>::new(ring_len(48_000));
        let mut source = fixed_source(
            CaptureEnd {
                ring: consumer,
                rate: 48_000,
            },
            Arc::clone(&counters),
        );
        // A stereo i16 device at 48 kHz delivering 10 ms callbacks, read as 16 kHz frames.
        let mut got = Vec::new();
        let mut frame = Vec::new();
        let mut pos = 0;
        for _ in 0..100 {
            for _ in 0..2 {
                let data: Vec<i16> = sine(1000.0, 48_000, 0.5, pos, 480)
                    .flat_map(|v| {
                        let s = (v * 32767.0) as i16;
                        [s, s]
                    })
                    .collect();
                pos += 480;
                capture_callback(&data, 2, &mut producer, &counters);
            }
            source.read(&mut frame, 320, 16_000);
            assert_eq!(frame.len(), 320);
            got.extend(frame.iter().map(|&s| i16_to_f32(s)));
        }
        let tail = &got[got.len() - 16_000..];
        assert!(
            (rms(tail) - 0.5 / 2f64.sqrt()).abs() < 0.02,
            "rms {}",
            rms(tail)
        );
        let at = tone_power(tail, 1000.0, 16_000);
        let off = tone_power(tail, 3000.0, 16_000);
        assert!(at > 0.05 && off < at * 1e-4, "1 kHz {at}, 3 kHz {off}");
        assert_eq!(counters.snapshot().capture_overflows, 0);
        // After priming, a steady device never leaves the source short.
        let underruns = counters.snapshot().capture_underruns;
        assert_eq!(underruns, 0, "underruns {underruns}");
        // The device stops: the source pads with silence and counts it.
        for _ in 0..5 {
            source.read(&mut frame, 320, 16_000);
            assert_eq!(frame.len(), 320);
        }
        assert!(counters.snapshot().capture_underruns >= 1);
        assert!(frame.iter().all(|&s| s == 0));
    }

    #[test]
    fn playback_path_resamples_upmixes_and_counts_underruns() {
        let counters = Arc::new(Counters::default());
        let rate = 44_100;
        let (producer, mut consumer) = RingBuffer::<f32>::new(ring_len(rate));
        let mut sink = DeviceSink::new(Attachment::Fixed, Arc::clone(&counters), None);
        sink.end = Some(PlaybackEnd {
            ring: producer,
            rate,
        });
        let mut state = PlaybackState {
            primed: false,
            prime: (rate * PLAYBACK_PRIME_MS / 1000) as usize,
        };
        // 8 kHz frames of 440 Hz in; a stereo f32 device pulling 441 frames (10 ms) per callback.
        let mut out = vec![0.0f32; 2 * 441];
        let mut played = Vec::new();
        for i in 0..100 {
            let pcm: Vec<i16> = sine(440.0, 8000, 0.5, i * 160, 160)
                .map(|v| (v * 32767.0) as i16)
                .collect();
            sink.write(&pcm, 8000);
            for _ in 0..2 {
                playback_callback(&mut out, 2, &mut consumer, &mut state, &counters);
                assert!(out.chunks_exact(2).all(|f| f[0] == f[1]));
                played.extend(out.chunks_exact(2).map(|f| f[0]));
            }
        }
        let tail = &played[played.len() - rate as usize..];
        let at = tone_power(tail, 440.0, rate);
        let off = tone_power(tail, 1320.0, rate);
        assert!(at > 0.05 && off < at * 1e-4, "440 Hz {at}, 1320 Hz {off}");
        assert!(
            (rms(tail) - 0.5 / 2f64.sqrt()).abs() < 0.02,
            "rms {}",
            rms(tail)
        );
        assert_eq!(counters.snapshot().playback_underruns, 0);
        // The far end stops sending: the callback plays silence and counts one underrun.
        for _ in 0..10 {
            playback_callback(&mut out, 2, &mut consumer, &mut state, &counters);
        }
        assert_eq!(counters.snapshot().playback_underruns, 1);
        assert!(out.iter().all(|&s| s == 0.0));
        // A sink nobody drains stops at the delay bound instead of growing it.
        for _ in 0..20 {
            sink.write(&[1000; 160], 8000);
        }
        assert!(counters.snapshot().playback_overflows > 0);
        assert!(consumer.slots() <= (rate * PLAYBACK_MAX_MS / 1000) as usize);
    }

    #[test]
    fn integer_and_unsigned_device_formats_convert() {
        let counters = Counters::default();
        let (mut p, mut c) = RingBuffer::<f32>::new(16);
        capture_callback(&[u8::MAX, 128, 0, 128], 2, &mut p, &counters);
        let a = c.pop().unwrap_or(f32::NAN);
        let b = c.pop().unwrap_or(f32::NAN);
        assert!((a - 0.5).abs() < 0.01 && (b + 0.5).abs() < 0.01, "{a} {b}");
        // Ring full: the callback drops and counts instead of blocking.
        capture_callback(&[0i16; 64], 1, &mut p, &counters);
        assert_eq!(counters.snapshot().capture_overflows, 1);
    }

    #[test]
    fn errors_tell_the_user_what_to_do() {
        use cpal::ErrorKind as K;
        let linux_alsa = HostContext {
            server_expected: true,
            chosen: false,
        };
        let server = HostContext {
            server_expected: false,
            chosen: false,
        };
        let e = |k| cpal::Error::new(k);
        assert_eq!(
            map_error(&e(K::DeviceNotAvailable), "alsa:default", linux_alsa),
            DeviceError::ServerNotRunning
        );
        assert!(
            DeviceError::ServerNotRunning
                .to_string()
                .starts_with("PulseAudio/PipeWire is not running")
        );
        assert_eq!(
            map_error(&e(K::HostUnavailable), "x", server),
            DeviceError::ServerNotRunning
        );
        let chosen = HostContext {
            chosen: true,
            ..linux_alsa
        };
        assert_eq!(
            map_error(&e(K::DeviceNotAvailable), "alsa:hw:1,0", chosen),
            DeviceError::NotFound {
                id: "alsa:hw:1,0".into()
            }
        );
        assert!(matches!(
            map_error(&e(K::PermissionDenied), "m", server),
            DeviceError::PermissionDenied { .. }
        ));
        assert!(matches!(
            map_error(&e(K::DeviceBusy), "m", server),
            DeviceError::Busy { .. }
        ));
        assert!(matches!(
            map_error(&e(K::UnsupportedConfig), "m", server),
            DeviceError::Unsupported { .. }
        ));
        assert!(matches!(
            map_error(&e(K::BackendError), "m", server),
            DeviceError::Backend { .. }
        ));
        assert_eq!(no_device(DeviceKind::Input, server), DeviceError::NoInput);
        assert_eq!(no_device(DeviceKind::Output, server), DeviceError::NoOutput);
        assert_eq!(
            no_device(DeviceKind::Input, linux_alsa),
            DeviceError::ServerNotRunning
        );
        assert_eq!(
            DeviceError::NoInput.to_string(),
            "no microphone found: connect one or choose one in Settings"
        );
        assert!(
            DeviceError::NoOutput
                .to_string()
                .contains("choose one in Settings")
        );
    }

    #[test]
    fn port_hands_new_ends_to_the_newest_owner_only() {
        let port = Port::<u32>::new();
        let old = port.claim();
        let (mut seen_old, mut seen_new) = (0, 0);
        port.publish(1);
        assert_eq!(port.take(old, &mut seen_old), Some(1));
        assert_eq!(port.take(old, &mut seen_old), None);
        // A switch publishes a new end; the owner picks it up.
        port.publish(2);
        assert_eq!(port.take(old, &mut seen_old), Some(2));
        // A new call's endpoint takes over: the old one gets nothing more.
        let new = port.claim();
        port.publish(3);
        assert_eq!(port.take(old, &mut seen_old), None);
        assert_eq!(port.take(new, &mut seen_new), Some(3));
        // The old one's end is not given back over the new owner's.
        port.give_back(old, 2);
        assert!(!port.has_end());
        port.give_back(new, 3);
        let newest = port.claim();
        let mut seen = 0;
        assert_eq!(port.take(newest, &mut seen), Some(3));
    }

    /// A speech-like far-end signal: coloured noise in syllables with pauses.
    fn speech_like(n: usize, rate: u32, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut lp1 = 0.0f64;
        let mut lp2 = 0.0f64;
        (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let white = ((state >> 33) as f64 / (1u64 << 31) as f64) - 1.0;
                lp1 += 0.3 * (white - lp1);
                lp2 += 0.3 * (lp1 - lp2);
                let t = i as f64 / f64::from(rate);
                // ~4 syllables a second, a pause every 1.5 s.
                let syllable = (PI * 4.0 * t).sin().abs().powf(0.7);
                let pause = if t % 1.5 > 1.2 { 0.0 } else { 1.0 };
                let voiced =
                    0.5 * (2.0 * PI * 140.0 * t).sin() + 0.25 * (2.0 * PI * 280.0 * t).sin();
                (0.8 * (3.0 * lp2 + 0.4 * voiced) * syllable * pause) as f32
            })
            .collect()
    }

    #[cfg(feature = "aec")]
    /// RBJ notch at `f0` (Q 5): removes the near-end tone to measure the echo alone.
    fn notch(x: &[f32], f0: f64, rate: u32) -> Vec<f32> {
        let w = 2.0 * PI * f0 / f64::from(rate);
        let alpha = w.sin() / (2.0 * 5.0);
        let (b0, b1, b2) = (1.0, -2.0 * w.cos(), 1.0);
        let (a0, a1, a2) = (1.0 + alpha, -2.0 * w.cos(), 1.0 - alpha);
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        x.iter()
            .map(|&v| {
                let v = f64::from(v);
                let y = (b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
                x2 = x1;
                x1 = v;
                y2 = y1;
                y1 = y;
                y as f32
            })
            .collect()
    }

    #[cfg(feature = "aec")]
    fn power_db(x: &[f32]) -> f64 {
        10.0 * (rms(x).powi(2) + 1e-20).log10()
    }

    /// Runs far-end `render` and microphone `capture` (both at [`AEC_RATE`]) through the
    /// processor in 10 ms steps, as the media task does.
    fn run_echo(render: &[f32], capture: &[f32]) -> Vec<f32> {
        let (mut tx, rx) = RingBuffer::<f32>::new(ring_len(AEC_RATE));
        let mut processor = match EchoProcessor::new(rx) {
            Ok(p) => p,
            Err(e) => panic!("echo processor: {e}"),
        };
        let mut out = Vec::with_capacity(capture.len());
        for (r, c) in render
            .chunks_exact(AEC_BLOCK)
            .zip(capture.chunks_exact(AEC_BLOCK))
        {
            let (_, rest) = tx.push_partial_slice(r);
            assert!(rest.is_empty());
            processor.process(c, &mut out);
        }
        out
    }

    #[cfg(feature = "aec")]
    #[test]
    fn echo_canceller_removes_a_delayed_echo_and_keeps_the_near_end() {
        let rate = AEC_RATE;
        let n = 10 * rate as usize;
        let far = speech_like(n, rate, 7);
        let delay = (rate / 1000 * 40) as usize; // 40 ms acoustic + device delay
        let echo: Vec<f32> = (0..n)
            .map(|i| {
                let d = |k: usize| if i >= k { far[i - k] } else { 0.0 };
                0.4 * d(delay) + 0.15 * d(delay + 96) - 0.05 * d(delay + 300)
            })
            .collect();
        let tone_hz = 700.0;
        let near: Vec<f32> = sine(tone_hz, rate, 0.05, 0, n).map(|v| v as f32).collect();
        let capture: Vec<f32> = echo.iter().zip(&near).map(|(e, t)| e + t).collect();

        let out = run_echo(&far, &capture);
        assert_eq!(out.len(), n);
        // After 6 s of convergence: echo power before vs after, with the tone notched out.
        let from = 6 * rate as usize;
        let before = notch(&capture, tone_hz, rate);
        let after = notch(&out, tone_hz, rate);
        let erle = power_db(&before[from..]) - power_db(&after[from..]);
        let tone_in = tone_power(&near[from..], tone_hz, rate);
        let tone_out = tone_power(&out[from..], tone_hz, rate);
        let tone_db = 10.0 * (tone_out / tone_in).log10();
        // Where the far end pauses (no echo), the near-end talker alone.
        let quiet: Vec<(usize, usize)> = [7.3, 8.8]
            .iter()
            .map(|&t: &f64| {
                (
                    (t * f64::from(rate)) as usize,
                    (0.2 * f64::from(rate)) as usize,
                )
            })
            .collect();
        let alone_db = quiet
            .iter()
            .map(|&(at, len)| {
                let tin = tone_power(&near[at..at + len], tone_hz, rate);
                let tout = tone_power(&out[at..at + len], tone_hz, rate);
                10.0 * (tout / tin).log10()
            })
            .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        eprintln!(
            "ERLE {erle:.1} dB; near-end tone {tone_db:+.1} dB in double talk, {alone_db:+.1} dB alone"
        );
        assert!(erle > 20.0, "ERLE {erle:.1} dB");
        // Alone it passes untouched; under a 15 dB louder echo AEC3's residual suppressor takes
        // a few dB off it (measured -4.2 dB), but it is never cancelled.
        assert!(
            alone_db.abs() < 1.0,
            "near-end tone alone changed by {alone_db:.1} dB"
        );
        assert!(
            tone_db.abs() < 6.0,
            "near-end tone in double talk changed by {tone_db:.1} dB"
        );
    }

    #[cfg(not(feature = "aec"))]
    #[test]
    fn without_the_aec_feature_the_microphone_passes_through() {
        let far = speech_like(48_000, AEC_RATE, 7);
        let capture: Vec<f32> = sine(700.0, AEC_RATE, 0.2, 0, 48_000)
            .map(|v| v as f32)
            .collect();
        assert_eq!(run_echo(&far, &capture), capture);
    }
}
