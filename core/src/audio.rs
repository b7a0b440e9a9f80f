//! Where a call's audio comes from and goes to: WAV files for headless calls, and the sound
//! devices (microphone, speaker) that all calls share.
//!
//! # Sound devices and several calls
//!
//! One [`AudioDevices`] (one microphone stream, one speaker stream) serves every call; it is
//! opened when the first call's media starts and closed when the last call with media ends, so
//! the microphone is not held between calls. At any time it belongs to at most one call, the
//! *owner*: the call whose media started or was resumed last among those not on hold
//! (`audio_owner`). The other calls, held ones included, send silence and play nowhere. A
//! call's direction that is a file (`play`, `record`) never uses the device.
//!
//! Each call's media task reads and writes its `DeviceSlot`; the phone fills the owner's slot
//! with the devices' endpoints and empties the others. Opening, switching and listing devices
//! block (a round trip to the sound server), so they run on one device thread
//! (`DeviceManager`), in the order they were asked for, and report back as
//! `DeviceReply`s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use krypton_media::device::{
    AudioDevices, DeviceError, DeviceInfo, DeviceKind, DeviceList, DeviceOptions,
    ECHO_CANCELLATION_BUILT, resolve_device,
};
use krypton_media::engine::{AudioSink, AudioSource};
use krypton_media::wav::{WavSink, WavSource};
use tracing::{debug, warn};

use crate::config::{DeviceChoice, PhoneConfig};

/// The sound devices a front end offers in its settings (blocking: asks the sound server).
pub use krypton_media::device::list_devices;
/// What [`list_devices`] found: the host and its inputs and outputs.
pub use krypton_media::device::{DeviceInfo as SoundDevice, DeviceList as SoundDevices};

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

// ------------------------------------------------------------------------------------------
// Sound devices shared by the calls

/// What one direction of every call uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Use {
    /// A WAV file (`play`, `record`): never a device.
    File(PathBuf),
    /// A sound device.
    Device(DeviceChoice),
    /// Nothing: silence in, nothing out (a device can still be chosen with `set_device`).
    Nothing,
}

impl Use {
    fn is_device(&self) -> bool {
        matches!(self, Use::Device(_))
    }
}

/// A call's share of the sound devices: the devices' microphone and speaker ends while the
/// call owns them, nothing (silence) otherwise. The call's media task reads and writes it
/// through [`SlotSource`] and [`SlotSink`]; the phone fills and empties it.
#[derive(Default)]
pub(crate) struct DeviceSlot {
    source: Mutex<Option<Box<dyn AudioSource>>>,
    sink: Mutex<Option<Box<dyn AudioSink>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DeviceSlot {
    /// Hands the call the devices' ends.
    pub(crate) fn fill(&self, source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) {
        *lock(&self.source) = Some(source);
        *lock(&self.sink) = Some(sink);
    }

    /// Takes the devices' ends away (dropping them returns the streams to the devices for the
    /// next owner).
    pub(crate) fn clear(&self) {
        let source = lock(&self.source).take();
        let sink = lock(&self.sink).take();
        drop((source, sink));
    }
}

/// The microphone side of a [`DeviceSlot`]: the device while the call owns it, else silence.
pub(crate) struct SlotSource(pub(crate) Arc<DeviceSlot>);

impl AudioSource for SlotSource {
    fn read(&mut self, out: &mut Vec<i16>, samples: usize, rate: u32) {
        match lock(&self.0.source).as_mut() {
            Some(s) => s.read(out, samples, rate),
            None => {
                out.clear();
                out.resize(samples, 0);
            }
        }
    }
}

/// The speaker side of a [`DeviceSlot`]: the device while the call owns it, else nowhere.
pub(crate) struct SlotSink(pub(crate) Arc<DeviceSlot>);

impl AudioSink for SlotSink {
    fn write(&mut self, pcm: &[i16], rate: u32) {
        if let Some(s) = lock(&self.0.sink).as_mut() {
            s.write(pcm, rate);
        }
    }

    fn finish(&mut self) {
        if let Some(s) = lock(&self.0.sink).as_mut() {
            s.finish();
        }
    }
}

/// A call as far as the devices care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallAudioState {
    /// Call number.
    pub id: u64,
    /// Its media runs.
    pub has_media: bool,
    /// We put it on hold.
    pub held: bool,
    /// When its media started or it was last resumed (a counter: higher is later).
    pub activated: u64,
}

/// The call that owns the devices: among the calls with media that are not on hold, the one
/// started or resumed last. `None` when every call is held (or none has media).
pub(crate) fn audio_owner(calls: impl IntoIterator<Item = CallAudioState>) -> Option<u64> {
    calls
        .into_iter()
        .filter(|c| c.has_media && !c.held)
        .max_by_key(|c| (c.activated, c.id))
        .map(|c| c.id)
}

/// A job for the device thread.
enum DeviceJob {
    /// Open the devices.
    Open(DeviceOptions),
    /// Use `choice` for `kind`: switch the open devices, or (closed) check that it exists.
    Select {
        kind: DeviceKind,
        choice: DeviceChoice,
    },
    /// List the devices.
    List,
    /// Drop the devices (the phone hands over its handle, so the blocking drop happens here).
    Close(Arc<AudioDevices>),
}

/// What the device thread reports back to the phone.
pub(crate) enum DeviceReply {
    /// The devices are open, or why not.
    Opened(Result<Arc<AudioDevices>, DeviceError>),
    /// A `set_device` choice: the device it found, and whether open devices switched to it.
    Selected {
        kind: DeviceKind,
        choice: DeviceChoice,
        result: Result<DeviceInfo, DeviceError>,
        switched: bool,
    },
    /// The device list.
    Listed(Result<DeviceList, DeviceError>),
}

fn device_thread(jobs: std::sync::mpsc::Receiver<DeviceJob>, reply: &dyn Fn(DeviceReply)) {
    let mut devices: Option<Arc<AudioDevices>> = None;
    while let Ok(job) = jobs.recv() {
        match job {
            DeviceJob::Open(options) => {
                let opened = AudioDevices::open(&options).map(Arc::new);
                if let Ok(d) = &opened {
                    debug!(devices = ?d, "sound devices open");
                    devices = Some(Arc::clone(d));
                }
                reply(DeviceReply::Opened(opened));
            }
            DeviceJob::Select { kind, choice } => {
                let (result, switched) = match &devices {
                    Some(d) => (d.switch(kind, choice.id()), true),
                    None => (resolve_device(kind, choice.id()), false),
                };
                reply(DeviceReply::Selected {
                    kind,
                    choice,
                    result,
                    switched,
                });
            }
            DeviceJob::List => reply(DeviceReply::Listed(list_devices())),
            DeviceJob::Close(handle) => {
                if devices.as_ref().is_some_and(|d| Arc::ptr_eq(d, &handle)) {
                    devices = None;
                }
                drop(handle);
                debug!("sound devices closed");
            }
        }
    }
}

/// The phone's side of the sound devices: what each direction uses, the open devices, which
/// call owns them, and the device thread that does the blocking work. It never blocks.
pub(crate) struct DeviceManager {
    input: Use,
    output: Use,
    echo_cancellation: bool,
    jobs: Option<std::sync::mpsc::Sender<DeviceJob>>,
    reply: Arc<dyn Fn(DeviceReply) + Send + Sync>,
    open: Option<Arc<AudioDevices>>,
    opening: bool,
    /// False after a failed open, until something changes (a new call's media, a choice).
    may_open: bool,
    owner: Option<(u64, Arc<DeviceSlot>)>,
}

impl DeviceManager {
    /// From the phone's settings; replies go to `reply` (called on the device thread).
    pub(crate) fn new(
        config: &PhoneConfig,
        reply: impl Fn(DeviceReply) + Send + Sync + 'static,
    ) -> Self {
        let pick = |file: &Option<PathBuf>, device: &Option<DeviceChoice>| match (file, device) {
            (Some(f), _) => Use::File(f.clone()),
            (None, Some(d)) => Use::Device(d.clone()),
            (None, None) => Use::Nothing,
        };
        DeviceManager {
            input: pick(&config.play, &config.audio.input),
            output: pick(&config.record, &config.audio.output),
            echo_cancellation: config.audio.echo_cancellation,
            jobs: None,
            reply: Arc::new(reply),
            open: None,
            opening: false,
            may_open: true,
            owner: None,
        }
    }

    /// What `kind` uses.
    pub(crate) fn uses(&self, kind: DeviceKind) -> &Use {
        match kind {
            DeviceKind::Input => &self.input,
            DeviceKind::Output => &self.output,
        }
    }

    fn uses_mut(&mut self, kind: DeviceKind) -> &mut Use {
        match kind {
            DeviceKind::Input => &mut self.input,
            DeviceKind::Output => &mut self.output,
        }
    }

    /// Whether calls cancel echo: both directions are devices, it is asked for, and the build
    /// has it (and, while the devices are open, they say so).
    pub(crate) fn echo_cancellation(&self) -> bool {
        match &self.open {
            Some(d) => d.echo_cancellation(),
            None => {
                ECHO_CANCELLATION_BUILT
                    && self.echo_cancellation
                    && self.input.is_device()
                    && self.output.is_device()
            }
        }
    }

    /// The device in use for `kind` while open, else the choice (`None`: a file or nothing).
    pub(crate) fn current(&self, kind: DeviceKind) -> Option<String> {
        let open = self.open.as_ref().and_then(|d| match kind {
            DeviceKind::Input => d.input(),
            DeviceKind::Output => d.output(),
        });
        match (open, self.uses(kind)) {
            (Some(info), Use::Device(_)) => Some(info.id),
            (_, Use::Device(choice)) => Some(choice.to_string()),
            _ => None,
        }
    }

    fn send(&mut self, job: DeviceJob) {
        if self.jobs.is_none() {
            let (tx, rx) = std::sync::mpsc::channel();
            let reply = Arc::clone(&self.reply);
            let started = std::thread::Builder::new()
                .name("krypton-devices".into())
                .spawn(move || device_thread(rx, &*reply));
            match started {
                Ok(_) => self.jobs = Some(tx),
                Err(e) => {
                    // Answer the job at once, so nothing waits for a thread that never ran.
                    warn!(error = %e, "cannot start the device thread");
                    let err = DeviceError::Backend {
                        device: "the device thread".into(),
                        detail: e.to_string(),
                    };
                    match job {
                        DeviceJob::Open(_) => (self.reply)(DeviceReply::Opened(Err(err))),
                        DeviceJob::Select { kind, choice } => (self.reply)(DeviceReply::Selected {
                            kind,
                            choice,
                            result: Err(err),
                            switched: false,
                        }),
                        DeviceJob::List => (self.reply)(DeviceReply::Listed(Err(err))),
                        DeviceJob::Close(_) => {}
                    }
                    return;
                }
            }
        }
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// A new call's media started: allow another try at opening the devices.
    pub(crate) fn media_started(&mut self) {
        self.may_open = true;
    }

    /// Gives the devices to `owner` (taking them from the previous owner), opening them first
    /// if needed; `active` says whether any call has media (without, the devices close).
    pub(crate) fn route(&mut self, owner: Option<(u64, Arc<DeviceSlot>)>, active: bool) {
        let wanted = self.input.is_device() || self.output.is_device();
        if !active || !wanted {
            self.release();
            if let Some(d) = self.open.take() {
                self.send(DeviceJob::Close(d));
            }
            self.may_open = true;
            return;
        }
        let Some(devices) = self.open.clone() else {
            if !self.opening && self.may_open {
                self.opening = true;
                let options = DeviceOptions {
                    input: device_id(&self.input),
                    output: device_id(&self.output),
                    open_input: self.input.is_device(),
                    open_output: self.output.is_device(),
                    echo_cancellation: self.echo_cancellation,
                };
                self.send(DeviceJob::Open(options));
            }
            return;
        };
        let same = match (&self.owner, &owner) {
            (Some((a, _)), Some((b, _))) => a == b,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        // The old owner's ends go back to the devices first, so the new owner takes over the
        // running streams instead of making the devices open new ones.
        self.release();
        if let Some((id, slot)) = owner {
            let (source, sink) = devices.endpoints();
            slot.fill(source, sink);
            debug!(call = id, "the call has the sound devices");
            self.owner = Some((id, slot));
        }
    }

    /// Takes the devices from their owner.
    fn release(&mut self) {
        if let Some((id, slot)) = self.owner.take() {
            slot.clear();
            debug!(call = id, "the call gives up the sound devices");
        }
    }

    /// Asks for the device list (answered by [`DeviceReply::Listed`]).
    pub(crate) fn list(&mut self) {
        self.send(DeviceJob::List);
    }

    /// Chooses `choice` for `kind`, now and for later calls (answered by
    /// [`DeviceReply::Selected`]). `Err` says why not (the direction is a file).
    pub(crate) fn select(&mut self, kind: DeviceKind, choice: DeviceChoice) -> Result<(), String> {
        if let Use::File(path) = self.uses(kind) {
            let (what, flag) = match kind {
                DeviceKind::Input => ("microphone", "--play (`play`"),
                DeviceKind::Output => ("speaker", "--record (`record`"),
            };
            return Err(format!(
                "the {what} is the WAV file {} given to {flag} in the config): start the phone without it to use a sound device",
                path.display()
            ));
        }
        self.send(DeviceJob::Select { kind, choice });
        Ok(())
    }

    /// Records the outcome of opening the devices and returns the devices now in use (the
    /// phone then reports them and routes the devices again; if no call needs them any more,
    /// that closes them).
    pub(crate) fn handle_opened(
        &mut self,
        opened: Result<Arc<AudioDevices>, DeviceError>,
    ) -> Result<Vec<(DeviceKind, DeviceInfo)>, DeviceError> {
        self.opening = false;
        let devices = opened.inspect_err(|_| self.may_open = false)?;
        let in_use = [
            (DeviceKind::Input, devices.input()),
            (DeviceKind::Output, devices.output()),
        ]
        .into_iter()
        .filter_map(|(kind, info)| info.map(|i| (kind, i)))
        .collect();
        self.open = Some(devices);
        Ok(in_use)
    }

    /// A `set_device` choice that worked: `kind` uses the device from now on. When open devices
    /// just switched on a direction that had none, the owner gives up its ends, so that the
    /// next [`DeviceManager::route`] hands it a fresh pair (the echo canceller needs a pair made
    /// while both directions are open).
    pub(crate) fn handle_selected(
        &mut self,
        kind: DeviceKind,
        choice: DeviceChoice,
        switched: bool,
    ) {
        let was_device = self.uses(kind).is_device();
        *self.uses_mut(kind) = Use::Device(choice);
        self.may_open = true;
        if switched && !was_device {
            self.release();
        }
    }

    /// Closes everything (the phone stops).
    pub(crate) fn shutdown(&mut self) {
        self.release();
        if let Some(d) = self.open.take() {
            self.send(DeviceJob::Close(d));
        }
        self.jobs = None;
    }
}

impl Drop for DeviceManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn device_id(u: &Use) -> Option<String> {
    match u {
        Use::Device(c) => c.id().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, has_media: bool, held: bool, activated: u64) -> CallAudioState {
        CallAudioState {
            id,
            has_media,
            held,
            activated,
        }
    }

    #[test]
    fn the_devices_follow_the_newest_call_that_is_not_held() {
        assert_eq!(audio_owner([]), None);
        // One call: it owns them once its media runs, not while it rings or is held.
        assert_eq!(audio_owner([call(1, false, false, 0)]), None);
        assert_eq!(audio_owner([call(1, true, false, 1)]), Some(1));
        assert_eq!(audio_owner([call(1, true, true, 1)]), None);
        // Call waiting: the first is held, the second answered: the second has them.
        let both = [call(1, true, true, 1), call(2, true, false, 2)];
        assert_eq!(audio_owner(both), Some(2));
        // Answered without holding the first: the newer call still wins.
        assert_eq!(
            audio_owner([call(1, true, false, 1), call(2, true, false, 2)]),
            Some(2)
        );
        // The first is resumed later (the second held): back to the first.
        assert_eq!(
            audio_owner([call(1, true, false, 3), call(2, true, true, 2)]),
            Some(1)
        );
        // The second ends: the first (not held) gets them back.
        assert_eq!(audio_owner([call(1, true, false, 1)]), Some(1));
    }

    #[test]
    fn a_slot_is_silent_until_filled_and_after_clearing() {
        struct Tone;
        impl AudioSource for Tone {
            fn read(&mut self, out: &mut Vec<i16>, samples: usize, _rate: u32) {
                out.clear();
                out.resize(samples, 1000);
            }
        }
        struct Count(Arc<Mutex<usize>>);
        impl AudioSink for Count {
            fn write(&mut self, pcm: &[i16], _rate: u32) {
                *lock(&self.0) += pcm.len();
            }
        }
        let slot = Arc::new(DeviceSlot::default());
        let mut source = SlotSource(Arc::clone(&slot));
        let mut sink = SlotSink(Arc::clone(&slot));
        let heard = Arc::new(Mutex::new(0));
        let mut frame = vec![7; 3];
        source.read(&mut frame, 160, 8000);
        assert_eq!(frame, vec![0; 160]);
        sink.write(&[1; 160], 8000);
        slot.fill(Box::new(Tone), Box::new(Count(Arc::clone(&heard))));
        source.read(&mut frame, 160, 8000);
        assert_eq!(frame, vec![1000; 160]);
        sink.write(&[1; 160], 8000);
        assert_eq!(*lock(&heard), 160);
        slot.clear();
        source.read(&mut frame, 160, 8000);
        assert_eq!(frame, vec![0; 160]);
        sink.write(&[1; 160], 8000);
        assert_eq!(*lock(&heard), 160);
    }

    #[test]
    fn files_take_precedence_and_cannot_be_switched_to_a_device() {
        let mut config = PhoneConfig::default();
        config.play = Some(PathBuf::from("/tmp/in.wav"));
        config.audio = crate::config::AudioConfig::default_devices();
        let mut m = DeviceManager::new(&config, |_| {});
        assert_eq!(
            m.uses(DeviceKind::Input),
            &Use::File(PathBuf::from("/tmp/in.wav"))
        );
        assert_eq!(
            m.uses(DeviceKind::Output),
            &Use::Device(DeviceChoice::Default)
        );
        // A file on one side: no echo to cancel.
        assert!(!m.echo_cancellation());
        assert_eq!(m.current(DeviceKind::Input), None);
        assert_eq!(m.current(DeviceKind::Output).as_deref(), Some("default"));
        let e = m.select(DeviceKind::Input, "sinkA".into()).unwrap_err();
        assert!(e.contains("--play") && e.contains("without it"), "{e}");
        // Both devices: echo cancellation where the build has it, unless turned off.
        config.play = None;
        let m = DeviceManager::new(&config, |_| {});
        assert_eq!(m.echo_cancellation(), ECHO_CANCELLATION_BUILT);
        config.audio.echo_cancellation = false;
        assert!(!DeviceManager::new(&config, |_| {}).echo_cancellation());
        // Nothing configured: a headless phone uses no device.
        let m = DeviceManager::new(&PhoneConfig::default(), |_| {});
        assert_eq!(m.uses(DeviceKind::Input), &Use::Nothing);
        assert_eq!(m.current(DeviceKind::Output), None);
    }
}
