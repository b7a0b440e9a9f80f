//! The media driver: one tokio task per call stream that owns the RTP and RTCP sockets and the
//! 20 ms clock, and moves audio between an [`AudioSource`]/[`AudioSink`] and the network
//! through the sans-IO pieces ([`RtpSession`], [`JitterBuffer`], codecs, DTMF).
//!
//! ```text
//!  source ─ read 20 ms ─ encode ─ RtpSession::packetize ─▶ UDP
//!  UDP ─▶ RtpSession::handle_rtp ─ JitterBuffer::push … every 20 ms: pop ─ decode/conceal ─ sink
//! ```
//!
//! The task does no protocol logic of its own: everything it decides comes from those
//! machines, so the tests of the machines cover the behaviour, and this file stays I/O.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tracing::{debug, warn};

use crate::codec::{self, CodecKind, Decoder, Encoder, OpusSettings, frame_samples};
use crate::dtmf::{DtmfReceiver, DtmfSender};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::rtp::{CallStats, MosParams, RtpConfig, RtpSession};
use crate::sdp::{Direction, Negotiated};
use crate::srtp::SrtpSession;

/// How long without any RTP from the peer (while it should send) before the call is reported
/// as a media failure.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors of the media driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No free RTP/RTCP port pair in the range.
    #[error("no free RTP port pair in {from}-{to} on {ip}: free some ports or widen the range")]
    NoPorts {
        /// Address.
        ip: IpAddr,
        /// First port.
        from: u16,
        /// Last port.
        to: u16,
    },
    /// Codec set-up failed.
    #[error("cannot set up the {0} codec: {1}")]
    Codec(CodecKind, String),
    /// The negotiated SRTP keys are unusable (the call must not fall back to plain RTP).
    #[error("cannot set up SRTP: {0}")]
    Srtp(String),
    /// The stream task has stopped.
    #[error("the media stream has stopped")]
    Stopped,
}

/// Where outgoing audio comes from: 20 ms frames of mono PCM at the codec's rate.
pub trait AudioSource: Send {
    /// Fill `out` with exactly `samples` samples at `rate` Hz.
    fn read(&mut self, out: &mut Vec<i16>, samples: usize, rate: u32);
    /// True once a finite source (a file) has played out.
    fn is_finished(&self) -> bool {
        false
    }
}

/// Where incoming audio goes: 20 ms frames of mono PCM at the codec's rate.
pub trait AudioSink: Send {
    /// Take one frame.
    fn write(&mut self, pcm: &[i16], rate: u32);
    /// The call ended: flush (e.g. finish a WAV file).
    fn finish(&mut self) {}
}

/// Silence in, nothing out.
pub struct Silence;

impl AudioSource for Silence {
    fn read(&mut self, out: &mut Vec<i16>, samples: usize, _rate: u32) {
        out.clear();
        out.resize(samples, 0);
    }
}

impl AudioSink for Silence {
    fn write(&mut self, _pcm: &[i16], _rate: u32) {}
}

/// A bound RTP/RTCP socket pair (RTCP on RTP + 1).
pub struct RtpSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl RtpSockets {
    /// Bind an even port and its successor in `from..=to` on `ip`.
    pub async fn bind(ip: IpAddr, from: u16, to: u16) -> Result<Self, EngineError> {
        let start = from + (from % 2);
        let count = (to.saturating_sub(start) / 2).max(1);
        // Start at a random pair so that two phones on one host do not race for the same one.
        let offset = (rand_u32() % u32::from(count)) as u16;
        for i in 0..count {
            let port = start + 2 * ((offset + i) % count);
            if port >= to {
                continue;
            }
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)).await else {
                continue;
            };
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                return Ok(RtpSockets { rtp, rtcp });
            }
        }
        Err(EngineError::NoPorts { ip, from, to })
    }

    /// The local RTP port.
    pub fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The local RTCP port.
    pub fn rtcp_port(&self) -> u16 {
        self.rtcp.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

/// Settings of one stream.
pub struct StreamConfig {
    /// What offer/answer agreed.
    pub negotiated: Negotiated,
    /// Opus encoder settings (ignored for G.711).
    pub opus: OpusSettings,
    /// Microphone or file.
    pub source: Box<dyn AudioSource>,
    /// Speaker or file.
    pub sink: Box<dyn AudioSink>,
}

/// Something the stream noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// An RFC 4733 digit arrived.
    Dtmf(char),
    /// The file source played out.
    SourceFinished,
    /// No RTP from the peer for [`MEDIA_TIMEOUT`].
    Timeout,
    /// The peer sent RTCP BYE.
    RemoteBye,
}

/// Live figures of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamStats {
    /// RTP/RTCP figures and the MOS estimate.
    pub rtp: CallStats,
    /// Jitter buffer figures.
    pub jitter: Option<JitterStats>,
    /// Frames played out.
    pub frames_played: u64,
    /// Frames concealed (lost or late).
    pub frames_concealed: u64,
    /// Frames dropped because a payload would not decode.
    pub decode_errors: u64,
    /// SRTP/SRTCP packets that failed authentication or replay checks (dropped).
    pub srtp_rejected: u64,
}

enum Cmd {
    Direction(Direction),
    Mute(bool),
    Dtmf(char, Duration),
    Renegotiate(Negotiated),
    Stop(oneshot::Sender<()>),
}

/// A running stream; stop it with [`MediaStream::stop`] (dropping it stops it too).
pub struct MediaStream {
    cmd: mpsc::UnboundedSender<Cmd>,
    stats: watch::Receiver<StreamStats>,
}

impl MediaStream {
    /// Start sending and receiving on `sockets`; events arrive on the returned receiver.
    pub fn start(
        sockets: RtpSockets,
        config: StreamConfig,
    ) -> Result<(MediaStream, mpsc::UnboundedReceiver<MediaEvent>), EngineError> {
        let n = &config.negotiated;
        let encoder = codec::new_encoder(n.codec, &config.opus)
            .map_err(|e| EngineError::Codec(n.codec, e.to_string()))?;
        let decoder =
            codec::new_decoder(n.codec).map_err(|e| EngineError::Codec(n.codec, e.to_string()))?;
        let now = Instant::now();
        let mut rtp_config = RtpConfig::new(
            n.payload_type,
            n.codec.rtp_clock_rate(),
            n.remote_rtp,
            n.remote_rtcp,
        );
        rtp_config.dtmf_payload_type = n.dtmf_payload_type;
        rtp_config.mos = MosParams::for_codec(n.codec);
        let session = RtpSession::new(now, rtp_config);
        let srtp = match n.srtp.as_deref() {
            Some((ours, theirs)) => {
                Some(SrtpSession::new(ours, theirs).map_err(|e| EngineError::Srtp(e.to_string()))?)
            }
            None => None,
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (stats_tx, stats_rx) = watch::channel(StreamStats::default());
        let task = StreamTask {
            jitter: new_jitter(n.codec),
            dtmf_out: DtmfSender::new(n.dtmf_clock_rate.max(8000), Duration::from_millis(20)),
            dtmf_in: DtmfReceiver::new(),
            negotiated: config.negotiated,
            sockets,
            session,
            srtp,
            encoder,
            decoder,
            source: config.source,
            sink: config.sink,
            events: ev_tx,
            stats: stats_tx,
            muted: false,
            source_finished: false,
            counters: StreamStats::default(),
            last_rtp: now,
            timed_out: false,
        };
        tokio::spawn(task.run(cmd_rx));
        Ok((
            MediaStream {
                cmd: cmd_tx,
                stats: stats_rx,
            },
            ev_rx,
        ))
    }

    fn send(&self, c: Cmd) -> Result<(), EngineError> {
        self.cmd.send(c).map_err(|_| EngineError::Stopped)
    }

    /// Change our direction (hold = `SendOnly`/`Inactive`).
    pub fn set_direction(&self, d: Direction) -> Result<(), EngineError> {
        self.send(Cmd::Direction(d))
    }

    /// Mute or unmute the microphone (silence is still sent, so the peer's jitter buffer and
    /// NAT bindings stay warm).
    pub fn set_mute(&self, muted: bool) -> Result<(), EngineError> {
        self.send(Cmd::Mute(muted))
    }

    /// Send a digit as RFC 4733 events (`Err` if the peer did not negotiate them: use SIP INFO).
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), EngineError> {
        self.send(Cmd::Dtmf(digit, duration))
    }

    /// Apply a new offer/answer result (re-INVITE).
    pub fn renegotiate(&self, n: Negotiated) -> Result<(), EngineError> {
        self.send(Cmd::Renegotiate(n))
    }

    /// The latest statistics.
    pub fn stats(&self) -> StreamStats {
        *self.stats.borrow()
    }

    /// Stop: send RTCP BYE, finish the sink, and return when that is done.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Cmd::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn new_jitter(kind: CodecKind) -> JitterBuffer {
    JitterBuffer::new(jitter_config(kind))
}

/// The jitter buffer settings of a call's stream: 20 ms frames, 40–300 ms delay, starting at
/// the minimum. It grows only if the path needs it: shrinking later means cutting a frame out of
/// speech at the start of the call, which P.862 and ears notice. The 40 ms floor (not 20) keeps a
/// frame of slack for the media task being scheduled late on a busy machine: at 20 ms, a 2-core
/// box running other calls made a few packets per call "late" (each a cut).
pub fn jitter_config(kind: CodecKind) -> JitterConfig {
    let clock = kind.rtp_clock_rate();
    JitterConfig {
        clock_rate: clock,
        frame_ts: clock / 1000 * codec::FRAME_MS,
        min_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(300),
        initial_delay: Duration::from_millis(40),
    }
}

struct StreamTask {
    negotiated: Negotiated,
    sockets: RtpSockets,
    session: RtpSession,
    /// SDES-SRTP contexts when the call negotiated them: every packet out is protected, every
    /// packet in is authenticated (with replay protection) before the RTP session sees it.
    srtp: Option<SrtpSession>,
    jitter: JitterBuffer,
    encoder: Box<dyn Encoder>,
    decoder: Box<dyn Decoder>,
    dtmf_out: DtmfSender,
    dtmf_in: DtmfReceiver,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: watch::Sender<StreamStats>,
    muted: bool,
    source_finished: bool,
    counters: StreamStats,
    last_rtp: Instant,
    timed_out: bool,
}

impl StreamTask {
    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut tick = tokio::time::interval(Duration::from_millis(u64::from(codec::FRAME_MS)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut pcm = Vec::with_capacity(960);
        let mut payload = Vec::with_capacity(1500);
        let mut stop_ack = None;
        // Packets that arrived between binding the socket and now (the peer may start sending
        // before our side has processed its answer) are read in one go, so that the jitter
        // buffer sees the whole backlog before its first playout decision and can skip it
        // at once instead of trimming it frame by frame later, in the middle of speech.
        // Their arrival times are unknown (they waited in the socket), so each is entered as if
        // it had arrived on time relative to the newest one: queueing is not network jitter.
        let now = Instant::now();
        let mut backlog = Vec::new();
        while let Ok((len, from)) = self.sockets.rtp.try_recv_from(&mut rtp_buf) {
            let Some(plain) = self.open_rtp(&rtp_buf[..len]) else {
                continue;
            };
            if let Ok(p) = self.session.handle_rtp(now, from, &plain) {
                backlog.push(p);
            }
        }
        if let Some(newest) = backlog.iter().map(|p| p.timestamp).max_by_key(|&ts| {
            // The newest in RTP order (wrap-safe relative to the first).
            ts.wrapping_sub(backlog[0].timestamp) as i32
        }) {
            let clock = u64::from(self.negotiated.codec.rtp_clock_rate().max(1));
            for p in backlog {
                let behind = u64::from(newest.wrapping_sub(p.timestamp).min(u32::MAX / 2));
                let arrival = now
                    .checked_sub(Duration::from_micros(behind * 1_000_000 / clock))
                    .unwrap_or(now);
                self.accept_packet(arrival, p);
            }
        }
        loop {
            let rtcp_at = self.session.poll_timeout();
            tokio::select! {
                // Network input first: a datagram that is already here should be in the jitter
                // buffer before the playout clock asks it for the next frame.
                biased;
                r = self.sockets.rtp.recv_from(&mut rtp_buf) => {
                    if let Ok((len, from)) = r {
                        self.on_rtp(Instant::now(), from, &rtp_buf[..len]);
                    }
                }
                r = self.sockets.rtcp.recv_from(&mut rtcp_buf) => {
                    if let Ok((len, from)) = r {
                        self.on_rtcp(Instant::now(), from, &rtcp_buf[..len]);
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.play_one(now, &mut pcm);
                    self.send_one(now, &mut pcm, &mut payload).await;
                    self.check_timeout(now);
                    self.publish();
                }
                _ = tokio::time::sleep_until(rtcp_at.into()) => {
                    if let Some(report) = self.session.poll_rtcp(Instant::now())
                        && let Some(report) = self.seal_rtcp(report)
                    {
                        let _ = self.sockets.rtcp.send_to(&report, self.session.remote_rtcp()).await;
                    }
                }
                c = cmds.recv() => match c {
                    Some(Cmd::Direction(d)) => self.negotiated.direction = d,
                    Some(Cmd::Mute(m)) => self.muted = m,
                    Some(Cmd::Dtmf(digit, duration)) => {
                        if let Err(e) = self.dtmf_out.start(digit, duration) {
                            warn!(error = %e, "DTMF digit not sent");
                        }
                    }
                    Some(Cmd::Renegotiate(n)) => self.renegotiate(n),
                    Some(Cmd::Stop(ack)) => {
                        stop_ack = Some(ack);
                        break;
                    }
                    None => break,
                },
            }
        }
        let bye = self.session.close(Instant::now());
        if let Some(bye) = self.seal_rtcp(bye) {
            let _ = self
                .sockets
                .rtcp
                .send_to(&bye, self.session.remote_rtcp())
                .await;
        }
        self.sink.finish();
        self.publish();
        if let Some(ack) = stop_ack {
            let _ = ack.send(());
        }
    }

    fn publish(&mut self) {
        let now = Instant::now();
        let mut s = self.counters;
        s.rtp = self.session.stats(now);
        s.jitter = Some(self.jitter.stats());
        self.stats.send_replace(s);
    }

    fn renegotiate(&mut self, n: Negotiated) {
        if n.codec != self.negotiated.codec {
            match (
                codec::new_encoder(n.codec, &OpusSettings::default()),
                codec::new_decoder(n.codec),
            ) {
                (Ok(e), Ok(d)) => {
                    self.encoder = e;
                    self.decoder = d;
                    self.jitter = new_jitter(n.codec);
                }
                _ => {
                    warn!(codec = %n.codec, "cannot switch codec; keeping the old one");
                    return;
                }
            }
        }
        self.session.set_remote(
            n.remote_rtp,
            n.remote_rtcp,
            n.payload_type,
            n.codec.rtp_clock_rate(),
        );
        self.session.set_dtmf_payload_type(n.dtmf_payload_type);
        // Same keys on a re-INVITE (hold/resume): rekey keeps the rollover counters and replay
        // windows; new keys start afresh; SRTP dropped from the SDP drops the contexts.
        match (n.srtp.as_deref(), self.srtp.as_mut()) {
            (Some((ours, theirs)), Some(s)) => {
                if let Err(e) = s.rekey(ours, theirs) {
                    warn!(error = %e, "SRTP rekey failed; keeping the old keys");
                }
            }
            (Some((ours, theirs)), None) => match SrtpSession::new(ours, theirs) {
                Ok(s) => self.srtp = Some(s),
                Err(e) => warn!(error = %e, "cannot start SRTP on re-INVITE"),
            },
            (None, _) => self.srtp = None,
        }
        self.last_rtp = Instant::now();
        self.negotiated = n;
    }

    /// The plain RTP of an incoming datagram: authenticated and decrypted under SRTP.
    fn open_rtp<'a>(&mut self, datagram: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        match self.srtp.as_mut() {
            None => Some(std::borrow::Cow::Borrowed(datagram)),
            Some(s) => match s.unprotect_rtp(datagram) {
                Ok(p) => Some(std::borrow::Cow::Owned(p)),
                Err(e) => {
                    self.counters.srtp_rejected += 1;
                    tracing::trace!(error = %e, "SRTP packet dropped");
                    None
                }
            },
        }
    }

    /// An outgoing RTP datagram, protected under SRTP (None: could not protect; not sent).
    fn seal_rtp(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        match self.srtp.as_mut() {
            None => Some(packet),
            Some(s) => s
                .protect_rtp(&packet)
                .map_err(|e| warn!(error = %e, "SRTP protect failed; packet not sent"))
                .ok(),
        }
    }

    /// An outgoing RTCP datagram, protected under SRTCP.
    fn seal_rtcp(&mut self, packet: Vec<u8>) -> Option<Vec<u8>> {
        match self.srtp.as_mut() {
            None => Some(packet),
            Some(s) => s
                .protect_rtcp(&packet)
                .map_err(|e| warn!(error = %e, "SRTCP protect failed; report not sent"))
                .ok(),
        }
    }

    fn on_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // RFC 7983 demultiplexing: a first byte of 0–3 is STUN (ICE connectivity checks, which
        // linphone sends to our RTP port), not a malformed RTP packet. We do no ICE: ignore it.
        if datagram.first().is_some_and(|b| *b < 4) {
            return;
        }
        let Some(plain) = self.open_rtp(datagram) else {
            return;
        };
        let Ok(packet) = self.session.handle_rtp(now, from, &plain) else {
            return; // counted by the session
        };
        self.accept_packet(now, packet);
    }

    /// A valid packet: DTMF to the receiver, audio to the jitter buffer.
    fn accept_packet(&mut self, now: Instant, packet: crate::rtp::RtpPacketIn) {
        self.last_rtp = now;
        self.timed_out = false;
        if Some(packet.payload_type) == self.negotiated.dtmf_payload_type {
            if let Ok(Some(digit)) = self.dtmf_in.handle(packet.timestamp, &packet.payload) {
                let _ = self.events.send(MediaEvent::Dtmf(digit));
            }
            return;
        }
        self.jitter
            .push(now, packet.sequence, packet.timestamp, packet.payload);
    }

    fn on_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if datagram.first().is_some_and(|b| *b < 4) {
            return; // STUN, see on_rtp
        }
        let plain = match self.srtp.as_mut() {
            None => datagram.to_vec(),
            Some(s) => match s.unprotect_rtcp(datagram) {
                Ok(p) => p,
                Err(_) => {
                    // Includes baresip's unencrypted "PINGPONG" APP packets at call start.
                    self.counters.srtp_rejected += 1;
                    return;
                }
            },
        };
        let left_before = self.session.remote_left();
        if self.session.handle_rtcp(now, from, &plain).is_ok() {
            let loss = self.session.stats(now).loss_fraction_remote;
            // Tell Opus what the peer sees, so it spends bits on FEC only when needed (none on a
            // clean path, at most 30 %).
            let percent = ((loss * 100.0).round() as u8).min(30);
            self.encoder.set_packet_loss(percent);
            if self.session.remote_left() && !left_before {
                let _ = self.events.send(MediaEvent::RemoteBye);
            }
        }
    }

    /// One 20 ms frame from the jitter buffer to the sink.
    fn play_one(&mut self, now: Instant, pcm: &mut Vec<i16>) {
        let kind = self.negotiated.codec;
        let samples = frame_samples(kind);
        pcm.clear();
        match self.jitter.pop(now) {
            Playout::Frame(p) => {
                if self.decoder.decode(&p, pcm).is_err() {
                    self.counters.decode_errors += 1;
                    pcm.clear();
                    self.decoder.conceal(pcm);
                }
            }
            Playout::Missing { next } => {
                self.counters.frames_concealed += 1;
                match next {
                    Some(n) => self.decoder.recover(&n, pcm),
                    None => self.decoder.conceal(pcm),
                }
            }
            Playout::Silence => {}
        }
        pcm.resize(samples, 0);
        self.counters.frames_played += 1;
        self.sink.write(pcm, kind.pcm_rate());
    }

    /// One 20 ms frame from the source to the network (or a DTMF event packet instead).
    async fn send_one(&mut self, now: Instant, pcm: &mut Vec<i16>, payload: &mut Vec<u8>) {
        let kind = self.negotiated.codec;
        let samples = frame_samples(kind);
        let ts_step = kind.rtp_clock_rate() / 1000 * codec::FRAME_MS;
        // The source keeps its own clock even when we do not send (hold), like a microphone.
        pcm.clear();
        self.source.read(pcm, samples, kind.pcm_rate());
        if self.source.is_finished() && !self.source_finished {
            self.source_finished = true;
            let _ = self.events.send(MediaEvent::SourceFinished);
        }
        if !self.negotiated.direction.sends() {
            self.session.skip(ts_step);
            return;
        }
        if self.dtmf_out.is_active()
            && let Some(pt) = self.negotiated.dtmf_payload_type
        {
            let ts = self.session.next_timestamp();
            if let Some(p) = self.dtmf_out.poll(ts) {
                let packet =
                    self.session
                        .packetize_event(now, pt, p.timestamp, &p.payload, p.marker);
                if let Some(packet) = self.seal_rtp(packet) {
                    let _ = self
                        .sockets
                        .rtp
                        .send_to(&packet, self.session.remote_rtp())
                        .await;
                }
            }
            self.session.skip(ts_step);
            return;
        }
        if self.muted {
            pcm.iter_mut().for_each(|s| *s = 0);
        }
        pcm.resize(samples, 0);
        payload.clear();
        if let Err(e) = self.encoder.encode(pcm, payload) {
            debug!(error = %e, "encode failed; frame skipped");
            self.session.skip(ts_step);
            return;
        }
        let packet = self.session.packetize(now, payload, ts_step, false);
        if let Some(packet) = self.seal_rtp(packet) {
            let _ = self
                .sockets
                .rtp
                .send_to(&packet, self.session.remote_rtp())
                .await;
        }
    }

    fn check_timeout(&mut self, now: Instant) {
        if self.negotiated.direction.receives()
            && !self.negotiated.remote_hold
            && !self.timed_out
            && now.duration_since(self.last_rtp) > MEDIA_TIMEOUT
        {
            self.timed_out = true;
            let _ = self.events.send(MediaEvent::Timeout);
        }
    }
}

fn rand_u32() -> u32 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u32()
}
