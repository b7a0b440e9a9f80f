//! The phone: one actor that joins the SIP user agent, the media streams, the dial plan and the
//! message store behind one API — [`PhoneCommand`]s in, [`PhoneEvent`]s out. The headless
//! `krypton phone` prints the events as JSON lines and reads commands the same way; the desktop
//! app maps them to Tauri commands and events. Both get every feature from here.
//!
//! Calls use the sound devices of [`PhoneConfig::audio`] (or WAV files, `play`/`record`); one
//! microphone and one speaker stream serve all calls, and belong to the newest call that is not
//! on hold (see [`crate::audio`]). A device that cannot be opened is reported
//! ([`PhoneEvent::AudioError`]) and the call goes on with silence.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use krypton_media::codec::{CodecKind, OpusSettings};
use krypton_media::device::{DeviceInfo, DeviceKind};
use krypton_media::engine::{
    AudioSink, AudioSource, MediaEvent, MediaStream, RtpSockets, StreamConfig,
};
use krypton_media::sdp::{self, Direction, LocalMedia, Negotiated};
use krypton_sip::{CallId, EndReason, SipEvent, UaConfig, UserAgent};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::audio::{
    CallAudioState, DeviceManager, DeviceReply, DeviceSlot, SlotSink, SlotSource, WavFileSink,
    WavFileSource, audio_owner,
};
use crate::config::{ConfigError, DeviceChoice, PhoneConfig};
use crate::dialplan::{self, Route};
use crate::store::{self, MessageId, MessageStore, NewCall};

/// Errors starting the phone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// SIP could not start.
    #[error(transparent)]
    Sip(#[from] krypton_sip::UaError),
    /// The message database could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// File system error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the user (or a tester) asks the phone to do. JSON: `{"cmd":"call","to":"…"}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum PhoneCommand {
    /// Call a number, SIP URI or NEO address (routed by the dial plan unless `account` is
    /// given).
    Call {
        /// Destination.
        to: String,
        /// Force an account.
        #[serde(default)]
        account: Option<String>,
    },
    /// Answer an incoming call.
    Answer {
        /// Call number.
        call: u64,
    },
    /// Hang up (or decline) a call.
    Hangup {
        /// Call number.
        call: u64,
    },
    /// Put a call on hold.
    Hold {
        /// Call number.
        call: u64,
    },
    /// Take a call off hold.
    Resume {
        /// Call number.
        call: u64,
    },
    /// Mute or unmute the microphone in a call.
    Mute {
        /// Call number.
        call: u64,
        /// Mute on or off.
        on: bool,
    },
    /// Blind transfer: ask the other side of `call` to call `to` instead (REFER); our side
    /// hangs up once the other side reports that the new call is answered.
    Transfer {
        /// Call number.
        call: u64,
        /// Where to send the other side (number, user or SIP URI).
        to: String,
    },
    /// Send DTMF digits (RFC 4733, or SIP INFO when the peer has no telephone events).
    Dtmf {
        /// Call number.
        call: u64,
        /// Digits `0-9*#A-D`.
        digits: String,
    },
    /// Send a text message (kept in the outbox until the proxy accepts it).
    Message {
        /// Destination.
        to: String,
        /// Text.
        body: String,
        /// Force an account.
        #[serde(default)]
        account: Option<String>,
    },
    /// List the sound devices (answered by [`PhoneEvent::Devices`]).
    Devices,
    /// Use another sound device, now (also in a call) and for later calls: `"default"` or an
    /// id or name from [`PhoneEvent::Devices`]. Answered by [`PhoneEvent::DeviceChanged`], or
    /// [`PhoneEvent::Error`] (then the old device stays in use).
    SetDevice {
        /// The microphone.
        #[serde(default)]
        input: Option<String>,
        /// The speaker or headset.
        #[serde(default)]
        output: Option<String>,
    },
    /// Hang up everything, unregister and stop.
    Quit,
}

/// A sound device in [`PhoneEvent::Devices`] and [`PhoneEvent::DeviceChanged`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SoundDevice {
    /// Stable id to pass to `set_device` or keep in the config (`"pulseaudio:alsa_output…"`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The system's default device of its direction.
    pub is_default: bool,
}

impl From<DeviceInfo> for SoundDevice {
    fn from(d: DeviceInfo) -> Self {
        SoundDevice {
            id: d.id,
            name: d.name,
            is_default: d.is_default,
        }
    }
}

/// Call-quality figures in `quality` and `ended` events.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CallSummary {
    /// Codec used.
    pub codec: String,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets lost (RFC 3550 cumulative).
    pub packets_lost: i64,
    /// Fraction lost (0–1) of what we should have received.
    pub loss: f32,
    /// Interarrival jitter, ms.
    pub jitter_ms: f32,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f32>,
    /// Jitter buffer delay at the end, ms.
    pub buffer_ms: Option<f32>,
    /// Frames concealed.
    pub concealed: u64,
    /// Frames the jitter buffer dropped to shrink its delay, or because they came too late.
    pub dropped: u64,
    /// Malformed packets dropped.
    pub malformed: u64,
    /// MOS estimate (E-model).
    pub mos: f32,
}

/// What happened. JSON: `{"event":"registered","account":"a","expires":600}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PhoneEvent {
    /// The phone runs; SIP listens on `sip`.
    Ready {
        /// Local SIP address.
        sip: String,
    },
    /// An account is registered.
    Registered {
        /// Account id.
        account: String,
        /// Seconds granted.
        expires: u32,
    },
    /// A registration failed.
    RegistrationFailed {
        /// Account id.
        account: String,
        /// SIP status, if any.
        status: Option<u16>,
        /// What happened and what to do.
        reason: String,
        /// Seconds until the next try (none: fix the account first).
        retry_in: Option<f64>,
    },
    /// An account was unregistered.
    Unregistered {
        /// Account id.
        account: String,
    },
    /// We are calling out (also after a failover to the next route).
    Calling {
        /// Call number.
        call: u64,
        /// Account used.
        account: String,
        /// What is dialled on it.
        to: String,
    },
    /// A call comes in.
    Incoming {
        /// Call number.
        call: u64,
        /// Account.
        account: String,
        /// Caller.
        from: String,
    },
    /// The far end rings.
    Ringing {
        /// Call number.
        call: u64,
    },
    /// The call is up; audio flows.
    Established {
        /// Call number.
        call: u64,
        /// Codec.
        codec: String,
        /// The call's device audio is echo-cancelled (microphone and speaker are both sound
        /// devices, `echo_cancellation` is on and the build has it).
        echo_cancellation: bool,
    },
    /// The route failed; trying the next account.
    Failover {
        /// Call number.
        call: u64,
        /// Account that failed.
        from_account: String,
        /// Why.
        reason: String,
    },
    /// The other side took our transfer and its call to the target is answered; our call ends.
    Transferred {
        /// Call number.
        call: u64,
    },
    /// Our transfer did not happen; the call goes on.
    TransferFailed {
        /// Call number.
        call: u64,
        /// SIP status, if any.
        status: Option<u16>,
    },
    /// The other side transfers us: we call `to` (as call `new_call`) and report how it goes.
    TransferRequested {
        /// The call that asked.
        call: u64,
        /// Where we are sent.
        to: String,
    },
    /// We put the call on hold.
    Held {
        /// Call number.
        call: u64,
    },
    /// We took the call off hold.
    Resumed {
        /// Call number.
        call: u64,
    },
    /// The other side put us on hold (`on`) or took us off it.
    RemoteHold {
        /// Call number.
        call: u64,
        /// On hold now.
        on: bool,
    },
    /// A DTMF digit arrived.
    Dtmf {
        /// Call number.
        call: u64,
        /// Digit.
        digit: char,
    },
    /// A text message arrived.
    Message {
        /// Account.
        account: String,
        /// Sender.
        from: String,
        /// Text.
        body: String,
    },
    /// Where one of our messages stands.
    MessageStatus {
        /// Message id (stable across restarts).
        id: i64,
        /// Destination.
        to: String,
        /// `pending` (will retry), `delivered` or `failed`.
        status: String,
        /// SIP status, if any.
        code: Option<u16>,
        /// Reason phrase or explanation.
        reason: String,
    },
    /// Live quality of an established call, every [`PhoneConfig::quality_interval_ms`].
    Quality {
        /// Call number.
        call: u64,
        /// The figures so far (cumulative counters; jitter, loss, buffer and MOS as of now).
        stats: CallSummary,
    },
    /// The call is over.
    Ended {
        /// Call number.
        call: u64,
        /// `local_hangup`, `remote_hangup`, `busy`, `declined`, `timeout`, `failed`,
        /// `media_failure`.
        reason: String,
        /// SIP status, when one explains it.
        status: Option<u16>,
        /// Details for `failed`.
        detail: Option<String>,
        /// Seconds since established (0 if it never was).
        duration: f64,
        /// Quality figures, if media ran.
        stats: Option<CallSummary>,
    },
    /// The sound devices (answer to `devices`).
    Devices {
        /// The audio system in use (`"PulseAudio"`, `"ALSA"`, `"CoreAudio"`, `"WASAPI"` …).
        host: String,
        /// Microphones (and monitors of outputs).
        inputs: Vec<SoundDevice>,
        /// Speakers and headsets.
        outputs: Vec<SoundDevice>,
        /// The microphone calls use: the device's id while a call has it open, else the
        /// choice (`"default"` or as given); none when it is a file (`--play`) or not set.
        input: Option<String>,
        /// The speaker calls use, likewise (none for `--record` or not set).
        output: Option<String>,
        /// Calls cancel echo (both are devices, it is on, and the build has it).
        echo_cancellation: bool,
    },
    /// A sound device is in use now: the devices opened for a call, or `set_device` switched
    /// (during a call) or chose one (for the next call).
    DeviceChanged {
        /// `input` or `output`.
        direction: String,
        /// The device.
        device: SoundDevice,
        /// Calls cancel echo now.
        echo_cancellation: bool,
    },
    /// The sound devices could not be opened for a call: the message says what to do. The call
    /// goes on without them (silence); the next call tries again.
    AudioError {
        /// What went wrong and what to do.
        message: String,
    },
    /// A command could not be carried out.
    Error {
        /// What went wrong and what to do.
        message: String,
    },
}

/// Handle to a running phone.
#[derive(Clone)]
pub struct Phone {
    commands: mpsc::UnboundedSender<PhoneCommand>,
}

impl Phone {
    /// Start the phone: SIP socket, accounts (registering), message outbox.
    pub async fn start(
        config: PhoneConfig,
    ) -> Result<(Phone, mpsc::UnboundedReceiver<PhoneEvent>), PhoneError> {
        config.validate()?;
        let codecs = config.codec_kinds()?;
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("krypton-phone"));
        std::fs::create_dir_all(&data_dir)?;
        let instance = instance_id(&data_dir)?;
        let store = MessageStore::open(&data_dir.join("messages.sqlite"))?;
        let (ua, sip_events) = UserAgent::start(UaConfig {
            bind: config.bind,
            port: config.sip_port,
            user_agent: format!("KRYPTON/{}", env!("CARGO_PKG_VERSION")),
            instance,
        })
        .await?;
        let mut accounts = Vec::new();
        for a in &config.accounts {
            accounts.push(a.to_account()?);
        }
        for a in accounts {
            ua.add_account(a)?;
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (int_tx, int_rx) = mpsc::unbounded_channel();
        let _ = ev_tx.send(PhoneEvent::Ready {
            sip: ua.local_addr().to_string(),
        });
        let replies = int_tx.clone();
        let devices = DeviceManager::new(&config, move |r| {
            let _ = replies.send(Internal::Devices(r));
        });
        let actor = Actor {
            ua,
            devices,
            next_audio_seq: 1,
            config,
            codecs,
            store: std::sync::Mutex::new(store),
            events: ev_tx,
            internal: int_tx,
            calls: HashMap::new(),
            next_call: 1,
            in_flight: HashMap::new(),
            next_outbox_try: None,
            next_quality: None,
        };
        tokio::spawn(actor.run(cmd_rx, sip_events, int_rx));
        Ok((Phone { commands: cmd_tx }, ev_rx))
    }

    /// Ask the phone to do something; the outcome arrives as events.
    pub fn send(&self, command: PhoneCommand) -> bool {
        self.commands.send(command).is_ok()
    }
}

/// `urn:uuid:…` for RFC 5626, kept in the data directory so it survives restarts.
fn instance_id(dir: &std::path::Path) -> std::io::Result<String> {
    let path = dir.join("instance-id");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().starts_with("urn:uuid:")
    {
        return Ok(s.trim().to_string());
    }
    let id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    std::fs::write(&path, &id)?;
    Ok(id)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The figures of `call`'s media so far (none before its media runs).
fn call_summary(call: &PhoneCall) -> Option<CallSummary> {
    let s = call.stream.as_ref()?.stats();
    Some(CallSummary {
        codec: call
            .negotiated
            .as_ref()
            .map(|n| n.codec.encoding_name().to_ascii_lowercase())
            .unwrap_or_default(),
        packets_sent: s.rtp.packets_sent,
        packets_received: s.rtp.packets_received,
        packets_lost: s.rtp.packets_lost,
        loss: s.rtp.loss_fraction_local,
        jitter_ms: s.rtp.jitter_ms,
        rtt_ms: s.rtp.rtt_ms,
        buffer_ms: s.jitter.map(|j| j.current_delay.as_secs_f32() * 1000.0),
        concealed: s.frames_concealed,
        dropped: s.jitter.map(|j| j.dropped + j.late).unwrap_or(0),
        malformed: s.rtp.malformed,
        mos: s.rtp.mos,
    })
}

/// Sleeps until `t`, or forever when there is none.
async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

enum Internal {
    Media(u64, MediaEvent),
    Devices(DeviceReply),
    HangupTimer(u64),
    NoAnswer(u64, CallId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Dialing,
    Ringing,
    IncomingRinging,
    Answering,
    Established,
}

struct PhoneCall {
    sip: CallId,
    account: String,
    state: State,
    /// Outgoing: the routes not tried yet.
    routes: VecDeque<Route>,
    local: LocalMedia,
    sockets: Option<RtpSockets>,
    stream: Option<MediaStream>,
    negotiated: Option<Negotiated>,
    /// Incoming: our answer to the offer, sent when the user answers.
    answer: Option<Vec<u8>>,
    held: bool,
    remote_hold: bool,
    established_at: Option<Instant>,
    muted: bool,
    /// This call was placed because call N's peer transferred us (REFER): report its progress
    /// there.
    transfer_for: Option<u64>,
    /// Its share of the sound devices (once its media runs).
    slot: Option<Arc<DeviceSlot>>,
    /// When its media started or it was last resumed (for who owns the devices).
    audio_seq: u64,
    /// For the call log: who it is with (as dialled or as shown) and when it started.
    log: CallLog,
}

/// What the call log needs beyond the call's state.
struct CallLog {
    direction: store::Direction,
    remote: String,
    started_ms: i64,
    answered_ms: Option<i64>,
}

struct Actor {
    ua: UserAgent,
    /// The sound devices all calls share.
    devices: DeviceManager,
    /// Next value of [`PhoneCall::audio_seq`].
    next_audio_seq: u64,
    config: PhoneConfig,
    codecs: Vec<CodecKind>,
    store: std::sync::Mutex<MessageStore>,
    events: mpsc::UnboundedSender<PhoneEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    calls: HashMap<u64, PhoneCall>,
    next_call: u64,
    /// SIP message id → stored message id and destination.
    in_flight: HashMap<u64, (MessageId, String)>,
    next_outbox_try: Option<Instant>,
    /// When the next [`PhoneEvent::Quality`] reports are due (while a call has media).
    next_quality: Option<Instant>,
}

/// How often pending messages are retried while the proxy does not take them.
const OUTBOX_RETRY: Duration = Duration::from_secs(3);

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<PhoneCommand>,
        mut sip: mpsc::UnboundedReceiver<SipEvent>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        // Messages left in the outbox by an earlier run go out as soon as an account registers
        // (or at the first retry tick).
        self.next_outbox_try = Some(Instant::now() + OUTBOX_RETRY);
        loop {
            let wake = self
                .next_outbox_try
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let quality = self.quality_due();
            tokio::select! {
                c = commands.recv() => match c {
                    Some(PhoneCommand::Quit) | None => break,
                    Some(c) => self.command(c).await,
                },
                Some(e) = sip.recv() => self.sip_event(e).await,
                Some(i) = internal.recv() => self.internal(i).await,
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.next_outbox_try = None;
                    self.flush_outbox(None).await;
                }
                _ = sleep_until_opt(quality) => self.report_quality(),
            }
        }
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            self.hangup(id).await;
        }
        self.ua.shutdown().await;
        // Drain what the shutdown produced (unregistered, ended) so front ends see it.
        while let Ok(e) = sip.try_recv() {
            self.sip_event(e).await;
        }
        self.devices.shutdown();
        info!("phone stopped");
    }

    /// When quality reports are due: while reports are on and an established call has media.
    fn quality_due(&mut self) -> Option<Instant> {
        let every = Duration::from_millis(self.config.quality_interval_ms?.max(100));
        let any = self
            .calls
            .values()
            .any(|c| c.stream.is_some() && c.established_at.is_some());
        if !any {
            self.next_quality = None;
            return None;
        }
        Some(
            *self
                .next_quality
                .get_or_insert_with(|| Instant::now() + every),
        )
    }

    /// One [`PhoneEvent::Quality`] per established call with media.
    fn report_quality(&mut self) {
        self.next_quality = None;
        let mut ids: Vec<u64> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let call = &self.calls[&id];
            if call.established_at.is_none() {
                continue;
            }
            if let Some(stats) = call_summary(call) {
                self.emit(PhoneEvent::Quality { call: id, stats });
            }
        }
    }

    /// The message store (synchronous SQLite; each call is a short local transaction).
    fn store(&self) -> std::sync::MutexGuard<'_, MessageStore> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, e: PhoneEvent) {
        let _ = self.events.send(e);
    }

    fn error(&self, message: impl Into<String>) {
        self.emit(PhoneEvent::Error {
            message: message.into(),
        });
    }

    fn call_by_sip(&self, sip: CallId) -> Option<u64> {
        self.calls
            .iter()
            .find(|(_, c)| c.sip == sip)
            .map(|(id, _)| *id)
    }

    fn local_media(&self, sockets: &RtpSockets) -> LocalMedia {
        LocalMedia {
            address: self.config.bind,
            rtp_port: sockets.rtp_port(),
            rtcp_port: sockets.rtcp_port(),
            codecs: self.codecs.clone(),
            dtmf: true,
            direction: Direction::SendRecv,
            session_id: u64::from(rand_u32()),
            session_version: 1,
            srtp: self.config.srtp.policy(),
            crypto: self.crypto_keys(),
        }
    }

    /// Fresh SDES keys for one call (both suites baresip and linphone offer), when SRTP is on.
    fn crypto_keys(&self) -> Vec<krypton_media::srtp::CryptoAttribute> {
        use krypton_media::srtp::{CryptoAttribute, CryptoSuite};
        if self.config.srtp == crate::config::SrtpSetting::Off {
            return Vec::new();
        }
        [
            (1, CryptoSuite::AesCm128HmacSha1_80),
            (2, CryptoSuite::AesCm128HmacSha1_32),
        ]
        .into_iter()
        .filter_map(|(tag, suite)| CryptoAttribute::generate(tag, suite).ok())
        .collect()
    }

    async fn bind_sockets(&self) -> Result<RtpSockets, String> {
        let (from, to) = self.config.rtp_ports;
        RtpSockets::bind(self.config.bind, from, to)
            .await
            .map_err(|e| e.to_string())
    }

    fn routes_for(&self, to: &str, account: Option<&str>) -> Vec<Route> {
        let target = dialplan::normalize(to);
        if let Some(a) = account {
            return vec![Route {
                account: a.to_string(),
                target,
            }];
        }
        let routes = self.config.dial_plan.routes(&target);
        if routes.is_empty() && self.config.accounts.len() == 1 {
            return vec![Route {
                account: self.config.accounts[0].id.clone(),
                target,
            }];
        }
        routes
    }

    // ------------------------------------------------------------------ commands

    async fn command(&mut self, c: PhoneCommand) {
        match c {
            PhoneCommand::Call { to, account } => {
                let routes: VecDeque<Route> = self.routes_for(&to, account.as_deref()).into();
                if routes.is_empty() {
                    self.error(format!(
                        "no account routes '{to}': add a dial plan rule or a default account"
                    ));
                    return;
                }
                let sockets = match self.bind_sockets().await {
                    Ok(s) => s,
                    Err(e) => return self.error(e),
                };
                let id = self.next_call;
                self.next_call += 1;
                let local = self.local_media(&sockets);
                let call = PhoneCall {
                    sip: CallId(0),
                    account: String::new(),
                    state: State::Dialing,
                    routes,
                    local,
                    sockets: Some(sockets),
                    stream: None,
                    negotiated: None,
                    answer: None,
                    held: false,
                    remote_hold: false,
                    established_at: None,
                    muted: false,
                    transfer_for: None,
                    slot: None,
                    audio_seq: 0,
                    log: CallLog {
                        direction: store::Direction::Out,
                        remote: dialplan::normalize(&to),
                        started_ms: now_ms(),
                        answered_ms: None,
                    },
                };
                self.calls.insert(id, call);
                self.dial_next(id, None).await;
            }
            PhoneCommand::Answer { call } => self.answer(call).await,
            PhoneCommand::Hangup { call } => {
                if !self.calls.contains_key(&call) {
                    return self.error(format!("no call {call}"));
                }
                self.hangup(call).await;
            }
            PhoneCommand::Transfer { call, to } => match self.calls.get(&call) {
                Some(c) if c.state == State::Established => {
                    let target = dialplan::normalize(&to);
                    if let Err(e) = self.ua.refer(c.sip, &target) {
                        self.error(e.to_string());
                    }
                }
                Some(_) => self.error(format!("call {call} is not established")),
                None => self.error(format!("no call {call}")),
            },
            PhoneCommand::Hold { call } => self.set_hold(call, true),
            PhoneCommand::Resume { call } => self.set_hold(call, false),
            PhoneCommand::Mute { call, on } => match self.calls.get_mut(&call) {
                Some(c) => {
                    c.muted = on;
                    if let Some(s) = &c.stream {
                        let _ = s.set_mute(on);
                    }
                }
                None => self.error(format!("no call {call}")),
            },
            PhoneCommand::Dtmf { call, digits } => self.dtmf(call, &digits),
            PhoneCommand::Devices => self.devices.list(),
            PhoneCommand::SetDevice { input, output } => {
                if input.is_none() && output.is_none() {
                    return self.error(
                        "set_device needs \"input\" or \"output\": \"default\" or a device id or name from the `devices` command",
                    );
                }
                let chosen = [(DeviceKind::Input, input), (DeviceKind::Output, output)];
                for (kind, want) in chosen {
                    if let Some(want) = want
                        && let Err(e) = self.devices.select(kind, DeviceChoice::from(want))
                    {
                        self.error(e);
                    }
                }
            }
            PhoneCommand::Message { to, body, account } => {
                let Some(route) = self.routes_for(&to, account.as_deref()).into_iter().next()
                else {
                    return self.error(format!("no account routes '{to}'"));
                };
                let queued = self
                    .store()
                    .enqueue(&route.account, &route.target, &body, now_ms());
                match queued {
                    Ok(id) => {
                        self.emit(PhoneEvent::MessageStatus {
                            id: id.0,
                            to: route.target.clone(),
                            status: "pending".into(),
                            code: None,
                            reason: "queued".into(),
                        });
                        self.flush_outbox(Some(id)).await;
                    }
                    Err(e) => self.error(e.to_string()),
                }
            }
            PhoneCommand::Quit => {}
        }
    }

    /// Place the call on its next route; `failed` says why the previous one failed.
    async fn dial_next(&mut self, id: u64, failed: Option<(String, String)>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(route) = call.routes.pop_front() else {
            return;
        };
        if let Some((from_account, reason)) = failed {
            let _ = self.events.send(PhoneEvent::Failover {
                call: id,
                from_account,
                reason,
            });
        }
        call.account = route.account.clone();
        call.state = State::Dialing;
        let offer = sdp::create_offer(&call.local).into_bytes();
        match self.ua.call(&route.account, &route.target, offer).await {
            Ok(sip) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.sip = sip;
                }
                self.emit(PhoneEvent::Calling {
                    call: id,
                    account: route.account.clone(),
                    to: route.target,
                });
                if let Some(t) = self.config.no_answer_timeout {
                    let tx = self.internal.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(t)).await;
                        let _ = tx.send(Internal::NoAnswer(id, sip));
                    });
                }
            }
            Err(e) => {
                let reason = e.to_string();
                if self.calls.get(&id).is_some_and(|c| !c.routes.is_empty()) {
                    Box::pin(self.dial_next(id, Some((route.account, reason)))).await;
                } else {
                    self.finish(id, "failed", None, Some(reason)).await;
                }
            }
        }
    }

    async fn answer(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return self.error(format!("no call {id}"));
        };
        if call.state != State::IncomingRinging {
            return self.error(format!("call {id} is not ringing here"));
        }
        let Some(answer) = call.answer.take() else {
            return;
        };
        call.state = State::Answering;
        let sip = call.sip;
        if let Err(e) = self.ua.answer(sip, answer) {
            return self.error(e.to_string());
        }
        self.start_media(id);
    }

    fn set_hold(&mut self, id: u64, hold: bool) {
        let Some(call) = self.calls.get_mut(&id) else {
            return self.error(format!("no call {id}"));
        };
        if call.state != State::Established || call.held == hold {
            return;
        }
        call.held = hold;
        call.local.direction = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        call.local.session_version += 1;
        if !hold {
            call.audio_seq = self.next_audio_seq;
            self.next_audio_seq += 1;
        }
        let offer = sdp::create_offer(&call.local).into_bytes();
        if let Err(e) = self.ua.reoffer(call.sip, offer) {
            self.error(e.to_string());
        }
        self.route_audio();
    }

    fn dtmf(&mut self, id: u64, digits: &str) {
        let Some(call) = self.calls.get(&id) else {
            return self.error(format!("no call {id}"));
        };
        let rfc4733 = call
            .negotiated
            .as_ref()
            .is_some_and(|n| n.dtmf_payload_type.is_some());
        for d in digits.chars() {
            if krypton_media::dtmf::event_code(d).is_none() {
                self.error(format!("'{d}' is not a DTMF digit (0-9 * # A-D)"));
                continue;
            }
            if rfc4733 && let Some(s) = &call.stream {
                let _ = s.send_dtmf(d, Duration::from_millis(100));
            } else {
                let body = format!("Signal={d}\r\nDuration=100\r\n").into_bytes();
                let _ = self.ua.info(call.sip, "application/dtmf-relay", body);
            }
        }
    }

    async fn hangup(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let _ = self.ua.hangup(call.sip);
        // The SIP layer reports Ended(LocalHangup); finish() runs then.
    }

    // ------------------------------------------------------------------ media

    fn start_media(&mut self, id: u64) {
        let play = self.config.play.clone();
        let record = self
            .config
            .record
            .as_ref()
            .map(|p| PathBuf::from(p.to_string_lossy().replace("{call}", &id.to_string())));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(n) = call.negotiated.clone() else {
            return;
        };
        if let Some(s) = &call.stream {
            let _ = s.renegotiate(n);
            return;
        }
        let Some(sockets) = call.sockets.take() else {
            return;
        };
        // A file where one is given; otherwise the call's share of the sound devices (silent
        // while it does not own them, or when no device is chosen).
        let slot = Arc::new(DeviceSlot::default());
        let source: Box<dyn AudioSource> = match &play {
            Some(p) => Box::new(WavFileSource::open(p, n.codec.pcm_rate())),
            None => Box::new(SlotSource(Arc::clone(&slot))),
        };
        let sink: Box<dyn AudioSink> = match &record {
            Some(p) => Box::new(WavFileSink::new(p)),
            None => Box::new(SlotSink(Arc::clone(&slot))),
        };
        let config = StreamConfig {
            negotiated: n,
            opus: OpusSettings::default(),
            source,
            sink,
        };
        match MediaStream::start(sockets, config) {
            Ok((stream, mut events)) => {
                if call.muted {
                    let _ = stream.set_mute(true);
                }
                call.stream = Some(stream);
                call.slot = Some(slot);
                call.audio_seq = self.next_audio_seq;
                self.next_audio_seq += 1;
                let tx = self.internal.clone();
                tokio::spawn(async move {
                    while let Some(e) = events.recv().await {
                        if tx.send(Internal::Media(id, e)).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => {
                let sip = call.sip;
                warn!(error = %e, "media did not start");
                self.error(format!("call {id}: {e}"));
                let _ = self.ua.hangup(sip);
                return;
            }
        }
        self.devices.media_started();
        self.route_audio();
    }

    /// Gives the sound devices to the call that should have them now (see [`audio_owner`]),
    /// opening them for the first call and closing them after the last.
    fn route_audio(&mut self) {
        let states = self.calls.iter().map(|(&id, c)| CallAudioState {
            id,
            has_media: c.stream.is_some(),
            held: c.held,
            activated: c.audio_seq,
        });
        let owner = audio_owner(states)
            .and_then(|id| Some((id, Arc::clone(self.calls.get(&id)?.slot.as_ref()?))));
        let active = self.calls.values().any(|c| c.stream.is_some());
        self.devices.route(owner, active);
    }

    /// A reply of the device thread.
    fn device_reply(&mut self, reply: DeviceReply) {
        match reply {
            DeviceReply::Opened(opened) => {
                match self.devices.handle_opened(opened) {
                    Ok(in_use) => {
                        let echo_cancellation = self.devices.echo_cancellation();
                        for (kind, info) in in_use {
                            self.emit(PhoneEvent::DeviceChanged {
                                direction: kind.name().into(),
                                device: info.into(),
                                echo_cancellation,
                            });
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "sound devices not opened; calls go on with silence");
                        self.emit(PhoneEvent::AudioError {
                            message: e.to_string(),
                        });
                    }
                }
                self.route_audio();
            }
            DeviceReply::Selected {
                kind,
                choice,
                result,
                switched,
            } => match result {
                Ok(info) => {
                    self.devices.handle_selected(kind, choice, switched);
                    self.emit(PhoneEvent::DeviceChanged {
                        direction: kind.name().into(),
                        device: info.into(),
                        echo_cancellation: self.devices.echo_cancellation(),
                    });
                    self.route_audio();
                }
                Err(e) => self.error(format!("cannot use \"{choice}\" as the {kind}: {e}")),
            },
            DeviceReply::Listed(Ok(list)) => self.emit(PhoneEvent::Devices {
                host: list.host,
                inputs: list.inputs.into_iter().map(Into::into).collect(),
                outputs: list.outputs.into_iter().map(Into::into).collect(),
                input: self.devices.current(DeviceKind::Input),
                output: self.devices.current(DeviceKind::Output),
                echo_cancellation: self.devices.echo_cancellation(),
            }),
            DeviceReply::Listed(Err(e)) => {
                self.error(format!("cannot list the sound devices: {e}"))
            }
        }
    }

    fn established(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.state == State::Established {
            return;
        }
        call.state = State::Established;
        call.established_at = Some(Instant::now());
        call.log.answered_ms = Some(now_ms());
        if let Some(from) = call.transfer_for
            && let Some(original) = self.calls.get(&from)
        {
            let _ = self.ua.notify_transfer(original.sip, 200, "OK");
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codec = call
            .negotiated
            .as_ref()
            .map(|n| n.codec.encoding_name().to_ascii_lowercase())
            .unwrap_or_default();
        let echo_cancellation = self.devices.echo_cancellation();
        self.emit(PhoneEvent::Established {
            call: id,
            codec,
            echo_cancellation,
        });
        if let Some(secs) = self.config.hangup_after {
            let tx = self.internal.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
                let _ = tx.send(Internal::HangupTimer(id));
            });
        }
    }

    /// Forget a call and tell the user how it ended.
    async fn finish(&mut self, id: u64, reason: &str, status: Option<u16>, detail: Option<String>) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if call.established_at.is_none()
            && let Some(from) = call.transfer_for
            && let Some(original) = self.calls.get(&from)
        {
            let code = status.unwrap_or(487);
            let _ = self
                .ua
                .notify_transfer(original.sip, code.max(300), "Transfer failed");
        }
        let mut stats = None;
        if let Some(stream) = &call.stream {
            stream.stop().await;
            stats = call_summary(&call);
        }
        let logged = self.store().record_call(&NewCall {
            account: call.account.clone(),
            direction: call.log.direction,
            remote: call.log.remote.clone(),
            started_ms: call.log.started_ms,
            answered_ms: call.log.answered_ms,
            ended_ms: now_ms(),
            end_reason: reason.to_string(),
            codec: stats
                .as_ref()
                .map(|s| s.codec.clone())
                .filter(|c| !c.is_empty()),
            mos: stats.as_ref().map(|s| s.mos),
        });
        if let Err(e) = logged {
            warn!(call = id, error = %e, "call not written to the call log");
        }
        self.emit(PhoneEvent::Ended {
            call: id,
            reason: reason.to_string(),
            status,
            detail,
            duration: call
                .established_at
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0),
            stats,
        });
        self.route_audio();
    }

    async fn internal(&mut self, i: Internal) {
        match i {
            Internal::Media(id, MediaEvent::Dtmf(digit)) => {
                self.emit(PhoneEvent::Dtmf { call: id, digit })
            }
            Internal::Media(id, MediaEvent::Timeout) => {
                if let Some(c) = self.calls.get(&id) {
                    warn!(call = id, "no RTP from the peer; hanging up");
                    let _ = self.ua.hangup(c.sip);
                    self.finish(
                        id,
                        "media_failure",
                        None,
                        Some("no audio from the other side".into()),
                    )
                    .await;
                }
            }
            Internal::Media(_, _) => {}
            Internal::Devices(reply) => self.device_reply(reply),
            Internal::HangupTimer(id) => self.hangup(id).await,
            Internal::NoAnswer(id, sip) => {
                let pending = self.calls.get(&id).is_some_and(|c| {
                    c.sip == sip && matches!(c.state, State::Dialing | State::Ringing)
                });
                if pending {
                    let _ = self.ua.hangup(sip);
                    let account = self
                        .calls
                        .get(&id)
                        .map(|c| c.account.clone())
                        .unwrap_or_default();
                    if self.calls.get(&id).is_some_and(|c| !c.routes.is_empty()) {
                        self.dial_next(id, Some((account, "no answer".into())))
                            .await;
                    } else {
                        self.finish(id, "timeout", None, None).await;
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ SIP events

    async fn sip_event(&mut self, e: SipEvent) {
        match e {
            SipEvent::Registered { account, expires } => {
                self.emit(PhoneEvent::Registered {
                    account: account.clone(),
                    expires,
                });
                self.flush_outbox(None).await;
            }
            SipEvent::RegistrationFailed {
                account,
                status,
                reason,
                retry_in,
            } => self.emit(PhoneEvent::RegistrationFailed {
                account,
                status,
                reason,
                retry_in: retry_in.map(|d| d.as_secs_f64()),
            }),
            SipEvent::Unregistered { account } => self.emit(PhoneEvent::Unregistered { account }),
            SipEvent::Incoming {
                call: sip,
                account,
                from,
                offer,
            } => self.incoming(sip, account, from, offer).await,
            SipEvent::Progress {
                call: sip,
                status,
                sdp,
            } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                if let Some(call) = self.calls.get_mut(&id)
                    && call.state == State::Dialing
                    && (status == 180 || status == 183)
                {
                    call.state = State::Ringing;
                    self.emit(PhoneEvent::Ringing { call: id });
                }
                // Early media: play what the network sends before the answer.
                if let Some(sdp) = sdp
                    && let Some(call) = self.calls.get_mut(&id)
                    && let Ok(n) = sdp::apply_answer(&String::from_utf8_lossy(&sdp), &call.local)
                {
                    call.negotiated = Some(n);
                    self.start_media(id);
                }
            }
            SipEvent::Answered { call: sip, sdp } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                match sdp::apply_answer(&String::from_utf8_lossy(&sdp), &call.local) {
                    Ok(n) => {
                        call.negotiated = Some(n);
                        self.start_media(id);
                        self.established(id);
                    }
                    Err(e) => {
                        let _ = self.ua.hangup(sip);
                        self.finish(
                            id,
                            "failed",
                            Some(488),
                            Some(format!("the answer's SDP is unusable: {e}")),
                        )
                        .await;
                    }
                }
            }
            SipEvent::Confirmed { call: sip } => {
                if let Some(id) = self.call_by_sip(sip) {
                    self.established(id);
                }
            }
            SipEvent::RemoteOffer { call: sip, sdp } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                call.local.session_version += 1;
                match sdp::answer_offer(&String::from_utf8_lossy(&sdp), &call.local) {
                    Ok((answer, n)) => {
                        let hold = n.remote_hold;
                        let changed = hold != call.remote_hold;
                        call.remote_hold = hold;
                        call.negotiated = Some(n.clone());
                        if let Some(s) = &call.stream {
                            let _ = s.renegotiate(n);
                        }
                        let _ = self.ua.answer_reoffer(sip, Ok(answer.into_bytes()));
                        if changed {
                            self.emit(PhoneEvent::RemoteHold { call: id, on: hold });
                        }
                    }
                    Err(_) => {
                        let _ = self.ua.answer_reoffer(sip, Err(488));
                    }
                }
            }
            SipEvent::ReofferResult { call: sip, result } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                match result {
                    Ok(sdp) => {
                        if let Ok(n) =
                            sdp::apply_answer(&String::from_utf8_lossy(&sdp), &call.local)
                        {
                            call.negotiated = Some(n.clone());
                            if let Some(s) = &call.stream {
                                let _ = s.renegotiate(n);
                            }
                        }
                        let held = call.held;
                        self.emit(if held {
                            PhoneEvent::Held { call: id }
                        } else {
                            PhoneEvent::Resumed { call: id }
                        });
                    }
                    Err(status) => {
                        call.held = !call.held;
                        call.local.direction = if call.held {
                            Direction::SendOnly
                        } else {
                            Direction::SendRecv
                        };
                        self.error(format!(
                            "call {id}: the other side refused the change ({status})"
                        ));
                        self.route_audio();
                    }
                }
            }
            SipEvent::Info {
                call: sip,
                content_type,
                body,
            } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                if content_type.to_ascii_lowercase().contains("dtmf")
                    && let Some(digit) = parse_dtmf_info(&String::from_utf8_lossy(&body))
                {
                    self.emit(PhoneEvent::Dtmf { call: id, digit });
                }
            }
            SipEvent::Ended { call: sip, reason } => self.sip_ended(sip, reason).await,
            SipEvent::TransferAccepted {
                call: sip,
                accepted,
                status,
            } => {
                if !accepted && let Some(id) = self.call_by_sip(sip) {
                    self.emit(PhoneEvent::TransferFailed { call: id, status });
                }
            }
            SipEvent::TransferProgress { call: sip, status } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                if (200..300).contains(&status) {
                    self.emit(PhoneEvent::Transferred { call: id });
                    self.hangup(id).await;
                } else if status >= 300 {
                    self.emit(PhoneEvent::TransferFailed {
                        call: id,
                        status: Some(status),
                    });
                }
            }
            SipEvent::TransferRequested { call: sip, target } => {
                let Some(id) = self.call_by_sip(sip) else {
                    return;
                };
                self.emit(PhoneEvent::TransferRequested {
                    call: id,
                    to: target.clone(),
                });
                let _ = self.ua.notify_transfer(sip, 100, "Trying");
                let account = self.calls.get(&id).map(|c| c.account.clone());
                let before = self.next_call;
                self.command(PhoneCommand::Call {
                    to: target,
                    account,
                })
                .await;
                match self.calls.get_mut(&before) {
                    Some(new_call) if self.next_call > before => new_call.transfer_for = Some(id),
                    _ => {
                        let _ = self.ua.notify_transfer(sip, 503, "Service Unavailable");
                    }
                }
            }
            SipEvent::MessageReceived {
                account,
                from,
                content_type,
                body,
                dedupe_key,
            } => {
                // Only text is a message for the user: linphone, for one, answers each of our
                // messages with a deflate-compressed `message/imdn+xml` delivery notification
                // (RFC 5438) and may send `application/im-iscomposing+xml` (RFC 3994).
                if !is_text_message(&content_type) {
                    info!(%from, %content_type, "MESSAGE that is not text ignored");
                    return;
                }
                let body = String::from_utf8_lossy(&body).to_string();
                let recorded =
                    self.store()
                        .record_incoming(&account, &from, &body, now_ms(), &dedupe_key);
                match recorded {
                    Ok(Some(_)) => self.emit(PhoneEvent::Message {
                        account,
                        from,
                        body,
                    }),
                    Ok(None) => {} // a retransmission we already have
                    Err(e) => {
                        warn!(error = %e, "incoming message not stored");
                        self.emit(PhoneEvent::Message {
                            account,
                            from,
                            body,
                        });
                    }
                }
            }
            SipEvent::MessageResult { id, status, reason } => {
                let Some((mid, to)) = self.in_flight.remove(&id) else {
                    return;
                };
                let now = now_ms();
                let (state, code) = match status {
                    Some(code @ 200..=299) => {
                        let _ = self.store().mark_delivered(mid, code, now);
                        ("delivered", Some(code))
                    }
                    Some(code @ (408 | 500..=599)) | Some(code @ 0) => {
                        self.next_outbox_try
                            .get_or_insert(Instant::now() + OUTBOX_RETRY);
                        ("pending", Some(code))
                    }
                    None => {
                        self.next_outbox_try
                            .get_or_insert(Instant::now() + OUTBOX_RETRY);
                        ("pending", None)
                    }
                    Some(code) => {
                        let _ = self.store().mark_failed(mid, code, &reason, now);
                        ("failed", Some(code))
                    }
                };
                self.emit(PhoneEvent::MessageStatus {
                    id: mid.0,
                    to,
                    status: state.into(),
                    code,
                    reason,
                });
            }
            _ => {}
        }
    }

    async fn incoming(
        &mut self,
        sip: CallId,
        account: String,
        from: String,
        offer: Option<Vec<u8>>,
    ) {
        let sockets = match self.bind_sockets().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "incoming call refused: no RTP ports");
                let _ = self.ua.reject(sip, 503);
                return;
            }
        };
        let local = self.local_media(&sockets);
        let Some(offer) = offer else {
            // Offer-less INVITEs (the offer would come in our 200) are rare; refuse cleanly.
            let _ = self.ua.reject(sip, 488);
            return;
        };
        let (answer, n) = match sdp::answer_offer(&String::from_utf8_lossy(&offer), &local) {
            Ok(a) => a,
            Err(e) => {
                info!(error = %e, "incoming call refused: SDP");
                let _ = self.ua.reject(sip, 488);
                return;
            }
        };
        let id = self.next_call;
        self.next_call += 1;
        self.calls.insert(
            id,
            PhoneCall {
                sip,
                account: account.clone(),
                state: State::IncomingRinging,
                routes: VecDeque::new(),
                remote_hold: n.remote_hold,
                local,
                sockets: Some(sockets),
                stream: None,
                negotiated: Some(n),
                answer: Some(answer.into_bytes()),
                held: false,
                established_at: None,
                muted: false,
                transfer_for: None,
                slot: None,
                audio_seq: 0,
                log: CallLog {
                    direction: store::Direction::In,
                    remote: from.clone(),
                    started_ms: now_ms(),
                    answered_ms: None,
                },
            },
        );
        self.emit(PhoneEvent::Incoming {
            call: id,
            account,
            from,
        });
        let _ = self.ua.ringing(sip);
        if self.config.auto_answer {
            self.answer(id).await;
        }
    }

    async fn sip_ended(&mut self, sip: CallId, reason: EndReason) {
        let Some(id) = self.call_by_sip(sip) else {
            return;
        };
        let (status, detail) = match &reason {
            EndReason::Failed { status, reason } => (*status, Some(reason.clone())),
            _ => (None, None),
        };
        // Fail over to the next route when the provider (not the callee) failed.
        let failover = self.calls.get(&id).is_some_and(|c| {
            matches!(c.state, State::Dialing | State::Ringing)
                && !c.routes.is_empty()
                && match &reason {
                    EndReason::Failed {
                        status: Some(s), ..
                    } => dialplan::should_fail_over(*s),
                    EndReason::Failed { status: None, .. } => true,
                    EndReason::Timeout => true,
                    _ => false,
                }
        });
        if failover {
            let account = self
                .calls
                .get(&id)
                .map(|c| c.account.clone())
                .unwrap_or_default();
            self.dial_next(id, Some((account, reason.to_string())))
                .await;
            return;
        }
        self.finish(id, reason.as_str(), status, detail).await;
    }

    // ------------------------------------------------------------------ outbox

    /// Send pending messages that are not in flight (all, or just `only`).
    async fn flush_outbox(&mut self, only: Option<MessageId>) {
        let outbox = self.store().outbox(None);
        let pending = match outbox {
            Ok(p) => p,
            Err(e) => return self.error(e.to_string()),
        };
        for m in pending {
            if only.is_some_and(|o| o != m.id) || self.in_flight.values().any(|(id, _)| *id == m.id)
            {
                continue;
            }
            let _ = self.store().mark_attempt(m.id, now_ms());
            match self
                .ua
                .message(
                    &m.account,
                    &m.peer,
                    "text/plain;charset=UTF-8",
                    m.body.clone().into_bytes(),
                )
                .await
            {
                Ok(sip_id) => {
                    self.in_flight.insert(sip_id, (m.id, m.peer.clone()));
                }
                Err(e) => {
                    let _ = self.store().mark_failed(m.id, 0, &e.to_string(), now_ms());
                    self.emit(PhoneEvent::MessageStatus {
                        id: m.id.0,
                        to: m.peer,
                        status: "failed".into(),
                        code: None,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
}

/// `Signal=5` (application/dtmf-relay) → '5'.
fn parse_dtmf_info(body: &str) -> Option<char> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("signal") {
            let d = v.trim().chars().next()?;
            krypton_media::dtmf::event_code(d).map(|_| d)
        } else {
            None
        }
    })
}

/// True for the Content-Type of a MESSAGE the user should see: `text/plain` with any
/// parameters, in any case (a MESSAGE without a Content-Type is text/plain too).
fn is_text_message(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.is_empty() || media.eq_ignore_ascii_case("text/plain")
}

fn rand_u32() -> u32 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_messages_reach_the_user() {
        assert!(is_text_message("text/plain"));
        assert!(is_text_message("text/plain;charset=UTF-8"));
        assert!(is_text_message(" Text/Plain ; charset=utf-8"));
        assert!(is_text_message(""));
        // What linphone 5.1 sends besides text: delivery notifications (deflate-compressed
        // in its case) and typing notifications.
        assert!(!is_text_message("message/imdn+xml"));
        assert!(!is_text_message("application/im-iscomposing+xml"));
        assert!(!is_text_message("message/cpim"));
    }

    #[test]
    fn commands_parse_from_json_lines() {
        let c: PhoneCommand = serde_json::from_str(r#"{"cmd":"call","to":"sip:bob@x"}"#).unwrap();
        assert_eq!(
            c,
            PhoneCommand::Call {
                to: "sip:bob@x".into(),
                account: None
            }
        );
        let c: PhoneCommand =
            serde_json::from_str(r#"{"cmd":"dtmf","call":2,"digits":"12#"}"#).unwrap();
        assert_eq!(
            c,
            PhoneCommand::Dtmf {
                call: 2,
                digits: "12#".into()
            }
        );
        assert!(serde_json::from_str::<PhoneCommand>(r#"{"cmd":"fly"}"#).is_err());
        assert!(serde_json::from_str::<PhoneCommand>(r#"{"cmd":"answer"}"#).is_err());
    }

    #[test]
    fn device_commands_parse_from_json_lines() {
        let c: PhoneCommand = serde_json::from_str(r#"{"cmd":"devices"}"#).unwrap();
        assert_eq!(c, PhoneCommand::Devices);
        let c: PhoneCommand =
            serde_json::from_str(r#"{"cmd":"set_device","output":"pulseaudio:sinkB"}"#).unwrap();
        assert_eq!(
            c,
            PhoneCommand::SetDevice {
                input: None,
                output: Some("pulseaudio:sinkB".into())
            }
        );
        let c: PhoneCommand =
            serde_json::from_str(r#"{"cmd":"set_device","input":"default","output":"x"}"#).unwrap();
        assert!(
            matches!(c, PhoneCommand::SetDevice { input: Some(i), output: Some(_) } if i == "default")
        );
        // A misspelt direction is refused, not ignored.
        assert!(
            serde_json::from_str::<PhoneCommand>(r#"{"cmd":"set_device","speaker":"x"}"#).is_err()
        );
    }

    #[test]
    fn device_events_serialise() {
        let device = SoundDevice {
            id: "pulseaudio:sinkA".into(),
            name: "Null Output".into(),
            is_default: true,
        };
        let e = PhoneEvent::DeviceChanged {
            direction: "output".into(),
            device: device.clone(),
            echo_cancellation: true,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"device_changed","direction":"output","device":{"id":"pulseaudio:sinkA","name":"Null Output","is_default":true},"echo_cancellation":true}"#
        );
        let e = PhoneEvent::Devices {
            host: "PulseAudio".into(),
            inputs: vec![],
            outputs: vec![device],
            input: None,
            output: Some("default".into()),
            echo_cancellation: false,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "devices");
        assert_eq!(v["outputs"][0]["id"], "pulseaudio:sinkA");
        assert_eq!(v["input"], serde_json::Value::Null);
        assert_eq!(v["output"], "default");
        let e = PhoneEvent::AudioError {
            message: "start the sound server".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"audio_error","message":"start the sound server"}"#
        );
    }

    #[test]
    fn events_serialise_with_their_name() {
        let e = PhoneEvent::Registered {
            account: "a".into(),
            expires: 60,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"registered","account":"a","expires":60}"#
        );
    }

    #[test]
    fn dtmf_info_bodies() {
        assert_eq!(parse_dtmf_info("Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(parse_dtmf_info("signal = #\n"), Some('#'));
        assert_eq!(parse_dtmf_info("Signal=x"), None);
        assert_eq!(parse_dtmf_info(""), None);
    }
}
