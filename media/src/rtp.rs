//! One RTP/RTCP session ([RFC 3550]) for one audio stream, sans-IO, with symmetric RTP.
//!
//! [`RtpSession`] takes datagrams and `Instant`s and returns datagrams and deadlines; the
//! engine owns the sockets and the clock. Sending: [`RtpSession::packetize`] wraps one encoded
//! frame, [`RtpSession::packetize_event`] an RFC 4733 event packet. Receiving:
//! [`RtpSession::handle_rtp`] validates a datagram and tracks the source as in RFC 3550
//! appendix A.1 (extended sequence numbers, probation, large jumps), A.3 (loss) and A.8
//! (interarrival jitter); [`RtpSession::handle_rtcp`] reads SR/RR/BYE for the round-trip time
//! and what the peer reports about our stream. [`RtpSession::poll_rtcp`] produces an SR or RR
//! plus SDES CNAME at the RTCP interval, [`RtpSession::close`] the final BYE.
//!
//! Packets are (un)marshalled with `rtc-rtp`/`rtc-rtcp`, but every datagram is first checked
//! here (version, lengths, padding), and only SR, RR, SDES and BYE sub-packets of a compound
//! RTCP packet are handed to `rtc-rtcp`; other RTCP types are skipped unparsed.
//!
//! [RFC 3550]: https://www.rfc-editor.org/rfc/rfc3550

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand_core::{OsRng, RngCore};
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};
use tracing::{debug, trace};

use crate::codec::CodecKind;

/// The RTP version we speak.
pub const RTP_VERSION: u8 = 2;
/// The minimum (and, for a two-party audio call, nominal) RTCP report interval.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Sequential packets a new source must send before it counts (RFC 3550 A.1).
const MIN_SEQUENTIAL: u16 = 2;
/// Largest forward sequence jump still taken as loss (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// Largest backward sequence jump still taken as reordering (RFC 3550 A.1).
const MAX_MISORDER: u16 = 100;
/// Remote sources tracked at once; the least recently heard is forgotten first.
const MAX_SOURCES: usize = 4;
/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// RTCP packet types (RFC 3550 §12.1).
const RTCP_SR: u8 = 200;
const RTCP_RR: u8 = 201;
const RTCP_BYE: u8 = 203;

/// Why a datagram was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the fixed header.
    #[error("datagram of {0} bytes is too short")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("RTP/RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list or header extension runs past the end of the datagram.
    #[error("header longer than the datagram")]
    BadHeaderLength,
    /// The padding count is zero or larger than the payload.
    #[error("invalid padding")]
    BadPadding,
    /// An RTCP compound packet whose lengths do not add up, or a report we could not parse.
    #[error("malformed RTCP: {0}")]
    BadRtcp(&'static str),
    /// A payload type that was not negotiated (or an RTCP type on the RTP port).
    #[error("unexpected payload type {0}")]
    UnexpectedPayloadType(u8),
    /// A new source that has not yet sent enough packets in sequence, while another source is
    /// current (RFC 3550 A.1 probation).
    #[error("source {0:#010x} is on probation")]
    Probation(u32),
    /// A sequence number far outside the expected window (RFC 3550 A.1); two such packets in
    /// sequence restart the source.
    #[error("sequence number jump in source {0:#010x}")]
    SequenceJump(u32),
}

impl RtpError {
    /// Whether this is a malformed datagram (as opposed to a well-formed one we do not want).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            RtpError::TooShort(_)
                | RtpError::BadVersion(_)
                | RtpError::BadHeaderLength
                | RtpError::BadPadding
                | RtpError::BadRtcp(_)
        )
    }
}

/// The parameters of a simplified ITU-T G.107 E-model for one codec.
///
/// `ie` is the equipment impairment factor, `bpl` the packet-loss robustness factor
/// (ITU-T G.113 Appendix I). Values used:
/// * G.711 with packet-loss concealment: `Ie = 0`, `Bpl = 25.1` (G.113 App. I).
/// * G.711 without concealment: `Ie = 0`, `Bpl = 4.3` (G.113 App. I).
/// * Opus: G.113 has no entry. We assume `Ie = 0` (at the ≥ 24 kbit/s we use, Opus is
///   transparent on the narrow-band scale this model measures) and `Bpl = 20` (its concealment
///   is good, but in-band FEC helps only when the peer's encoder enables it) — an assumption,
///   between G.711's 4.3 and 25.1, not a measured value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MosParams {
    /// Equipment impairment factor `Ie`.
    pub ie: f32,
    /// Packet-loss robustness factor `Bpl`.
    pub bpl: f32,
}

impl MosParams {
    /// G.711 with packet-loss concealment.
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };
    /// G.711 without packet-loss concealment.
    pub const G711: Self = Self { ie: 0.0, bpl: 4.3 };
    /// Opus (assumed values, see the type's documentation).
    pub const OPUS: Self = Self { ie: 0.0, bpl: 20.0 };

    /// The parameters we use for a codec (G.711 is decoded with concealment).
    pub fn for_codec(kind: CodecKind) -> Self {
        match kind {
            CodecKind::Opus => Self::OPUS,
            _ => Self::G711_PLC,
        }
    }
}

impl Default for MosParams {
    fn default() -> Self {
        Self::G711_PLC
    }
}

/// Estimates the listening MOS with a simplified ITU-T G.107 E-model:
/// `R = 93.2 − Id − Ie_eff` with `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)` (Cole and
/// Rosenbluth's fit of G.107's delay impairment, `d` the one-way mouth-to-ear delay in ms) and
/// `Ie_eff = Ie + (95 − Ie)·Ppl/(Ppl + Bpl)` (random loss, `BurstR = 1`, `Ppl` in percent);
/// `MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶`, clamped to 1.0–4.5.
pub fn estimate_mos(params: MosParams, one_way_delay_ms: f32, loss_fraction: f32) -> f32 {
    let d = if one_way_delay_ms.is_finite() {
        one_way_delay_ms.max(0.0)
    } else {
        0.0
    };
    let ppl = if loss_fraction.is_finite() {
        loss_fraction.clamp(0.0, 1.0) * 100.0
    } else {
        0.0
    };
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie = params.ie.clamp(0.0, 95.0);
    let bpl = params.bpl.max(0.1);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let r = 93.2 - id - ie_eff;
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}

/// How to set up an [`RtpSession`].
#[derive(Debug, Clone, PartialEq)]
pub struct RtpConfig {
    /// Our SSRC; random when `None`.
    pub ssrc: Option<u32>,
    /// The negotiated audio payload type.
    pub payload_type: u8,
    /// Its RTP clock rate (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// The negotiated telephone-event payload type, also accepted on receive.
    pub dtmf_payload_type: Option<u8>,
    /// Where to send RTP (from the SDP).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP (from the SDP).
    pub remote_rtcp: SocketAddr,
    /// Symmetric RTP (RFC 4961): send to where the peer's RTP and RTCP come from.
    pub symmetric: bool,
    /// Our RTCP CNAME; a random one (RFC 7022) when `None`.
    pub cname: Option<String>,
    /// E-model parameters for [`CallStats::mos`].
    pub mos: MosParams,
}

impl RtpConfig {
    /// A configuration with a random SSRC and CNAME, symmetric RTP and G.711 MOS parameters.
    pub fn new(
        payload_type: u8,
        clock_rate: u32,
        remote_rtp: SocketAddr,
        remote_rtcp: SocketAddr,
    ) -> Self {
        Self {
            ssrc: None,
            payload_type,
            clock_rate,
            dtmf_payload_type: None,
            remote_rtp,
            remote_rtcp,
            symmetric: true,
            cname: None,
            mos: MosParams::default(),
        }
    }
}

/// An accepted RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacketIn {
    /// Payload type (the audio or the telephone-event one).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit (start of a talkspurt or of a telephone event).
    pub marker: bool,
    /// The sender's SSRC.
    pub ssrc: u32,
    /// The payload without padding.
    pub payload: Bytes,
}

/// Call-quality figures, as for a statistics screen or a call record.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallStats {
    /// RTP packets we sent.
    pub packets_sent: u64,
    /// RTP packets we accepted.
    pub packets_received: u64,
    /// Cumulative packets lost from the current source (RFC 3550 A.3: expected − received,
    /// negative with duplicates).
    pub packets_lost: i64,
    /// Cumulative fraction of the current source's packets we did not receive (0–1).
    pub loss_fraction_local: f32,
    /// The fraction lost the peer reported in its last report about our stream (0–1).
    pub loss_fraction_remote: f32,
    /// Interarrival jitter of the stream we receive, in ms (RFC 3550 A.8).
    pub jitter_ms: f32,
    /// The jitter the peer reported about our stream, in ms.
    pub remote_jitter_ms: f32,
    /// Round-trip time from the peer's last report block (LSR/DLSR), in ms.
    pub rtt_ms: Option<f32>,
    /// Malformed datagrams (RTP and RTCP) dropped.
    pub malformed: u64,
    /// Well-formed RTP packets dropped (payload type not negotiated, probation, jumps).
    pub discarded: u64,
    /// Estimated listening MOS ([`estimate_mos`]) from our loss, the jitter and half the RTT,
    /// with an assumed 20 ms packet and a playout buffer of 40 ms or twice the jitter.
    pub mos: f32,
}

/// Reception state of one remote source (RFC 3550 A.1).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    probation: u16,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Last relative transit time in RTP units, for the jitter (A.8).
    transit: Option<u32>,
    /// Jitter in RTP units, unrounded.
    jitter: f64,
    last_seen: Instant,
}

enum SeqOutcome {
    Valid,
    Probation,
    Jump,
}

impl Source {
    fn new(ssrc: u32, seq: u16, now: Instant) -> Self {
        Self {
            ssrc,
            probation: MIN_SEQUENTIAL,
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: seq as u32,
            bad_seq: (1 << 16) + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_seen: now,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = (1 << 16) + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
    }

    /// RFC 3550 A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqOutcome::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // A very large jump: restart if the sender did (two packets in sequence).
            if seq as u32 == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (seq as u32 + 1) & 0xffff;
                return SeqOutcome::Jump;
            }
        }
        // else: duplicate or reordered packet.
        self.received += 1;
        SeqOutcome::Valid
    }

    fn extended_max(&self) -> u64 {
        self.cycles as u64 + self.max_seq as u64
    }

    fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(self.base_seq as u64)
    }

    fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }
}

/// A small PRNG (SplitMix64) for the RTCP interval, seeded from the OS.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0.5, 1.5).
    fn factor(&mut self) -> f64 {
        0.5 + (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One RTP session: our outgoing stream, the peer's incoming one and the RTCP between them.
#[derive(Debug)]
pub struct RtpSession {
    ssrc: u32,
    cname: String,
    payload_type: u8,
    clock_rate: u32,
    dtmf_payload_type: Option<u8>,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    symmetric: bool,
    latched_rtp: bool,
    latched_rtcp: bool,
    mos: MosParams,

    epoch: Instant,
    epoch_ntp: u64,

    sequence: u16,
    timestamp: u32,
    packets_sent: u64,
    octets_sent: u64,
    last_sent: Option<(Instant, u32)>,
    sent_this_interval: bool,
    sent_last_interval: bool,

    sources: Vec<Source>,
    current: Option<u32>,
    packets_received: u64,
    malformed: u64,
    discarded: u64,
    last_received: Option<Instant>,
    /// The peer's last SR: its SSRC, the middle 32 bits of its NTP time, when we got it.
    last_sr: Option<(u32, u32, Instant)>,

    rtt: Option<Duration>,
    remote_fraction_lost: f32,
    remote_jitter: u32,
    remote_bye: bool,

    rng: SplitMix,
    next_rtcp: Instant,
    closed: bool,
}

impl RtpSession {
    /// A new session at `now`; the first RTCP report is due after half the interval.
    pub fn new(now: Instant, config: RtpConfig) -> Self {
        let mut os = OsRng;
        let ssrc = config.ssrc.unwrap_or_else(|| os.next_u32());
        let cname = config.cname.unwrap_or_else(|| {
            use base64::Engine as _;
            let mut raw = [0u8; 12];
            os.fill_bytes(&mut raw);
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
        });
        let mut rng = SplitMix(os.next_u64());
        let first = RTCP_INTERVAL.mul_f64(0.5 * rng.factor());
        // Below 2^15 so that an SRTP rollover-counter guess is never needed early on.
        let sequence = (os.next_u32() & 0x7fff) as u16;
        let timestamp = os.next_u32();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let epoch_ntp = ((wall.as_secs() + NTP_UNIX_OFFSET) << 32)
            | ((u64::from(wall.subsec_nanos()) << 32) / 1_000_000_000);
        debug!(ssrc, remote = %config.remote_rtp, "RTP session");
        Self {
            ssrc,
            cname,
            payload_type: config.payload_type & 0x7f,
            clock_rate: config.clock_rate.max(1),
            dtmf_payload_type: config.dtmf_payload_type,
            remote_rtp: config.remote_rtp,
            remote_rtcp: config.remote_rtcp,
            symmetric: config.symmetric,
            latched_rtp: false,
            latched_rtcp: false,
            mos: config.mos,
            epoch: now,
            epoch_ntp,
            sequence,
            timestamp,
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
            sent_this_interval: false,
            sent_last_interval: false,
            sources: Vec::new(),
            current: None,
            packets_received: 0,
            malformed: 0,
            discarded: 0,
            last_received: None,
            last_sr: None,
            rtt: None,
            remote_fraction_lost: 0.0,
            remote_jitter: 0,
            remote_bye: false,
            rng,
            next_rtcp: now + first,
            closed: false,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Where RTP goes: the SDP address, or where the peer's RTP comes from once latched.
    pub fn remote_rtp(&self) -> SocketAddr {
        self.remote_rtp
    }

    /// Where RTCP goes (SDP, or latched like [`remote_rtp`](Self::remote_rtp)).
    pub fn remote_rtcp(&self) -> SocketAddr {
        self.remote_rtcp
    }

    /// The timestamp the next audio packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// When the last RTP packet was accepted (for a media timeout).
    pub fn last_received(&self) -> Option<Instant> {
        self.last_received
    }

    /// Whether the peer sent an RTCP BYE for its current source.
    pub fn remote_left(&self) -> bool {
        self.remote_bye
    }

    /// Advances the audio timestamp by `samples` without sending (silence, a DTMF event).
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Wraps one encoded audio frame of `samples` samples into an RTP datagram, then advances
    /// the sequence number and the timestamp.
    pub fn packetize(
        &mut self,
        now: Instant,
        payload: &[u8],
        samples: u32,
        marker: bool,
    ) -> Vec<u8> {
        let timestamp = self.timestamp;
        let out = self.packetize_event(now, self.payload_type, timestamp, payload, marker);
        self.timestamp = self.timestamp.wrapping_add(samples);
        out
    }

    /// Wraps a packet with an explicit payload type and timestamp, as RFC 4733 event packets
    /// need (every packet of one event carries the event's start timestamp). Advances only the
    /// sequence number.
    pub fn packetize_event(
        &mut self,
        now: Instant,
        payload_type: u8,
        timestamp: u32,
        payload: &[u8],
        marker: bool,
    ) -> Vec<u8> {
        let packet = rtc_rtp::Packet {
            header: rtc_rtp::Header {
                version: RTP_VERSION,
                marker,
                payload_type: payload_type & 0x7f,
                sequence_number: self.sequence,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        let mut out = vec![0u8; packet.marshal_size()];
        let out = match packet.marshal_to(&mut out) {
            Ok(n) => {
                out.truncate(n);
                out
            }
            Err(e) => {
                // Cannot happen with a plain header and a buffer of marshal_size(); fall back
                // to writing the 12 bytes ourselves rather than dropping audio.
                debug!(error = %e, "rtc-rtp marshal failed");
                let mut raw = Vec::with_capacity(12 + payload.len());
                raw.push(RTP_VERSION << 6);
                raw.push((u8::from(marker) << 7) | (payload_type & 0x7f));
                raw.extend_from_slice(&self.sequence.to_be_bytes());
                raw.extend_from_slice(&timestamp.to_be_bytes());
                raw.extend_from_slice(&self.ssrc.to_be_bytes());
                raw.extend_from_slice(payload);
                raw
            }
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent += 1;
        self.octets_sent += payload.len() as u64;
        self.sent_this_interval = true;
        if payload_type & 0x7f == self.payload_type {
            self.last_sent = Some((now, timestamp));
        }
        out
    }

    /// Validates and accounts one RTP datagram from `from`.
    ///
    /// Errors for malformed datagrams are counted in [`CallStats::malformed`]; well-formed
    /// packets we drop (unexpected payload type, a second source on probation, a sequence
    /// jump) in [`CallStats::discarded`].
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<RtpPacketIn, RtpError> {
        let result = self.accept_rtp(now, from, datagram);
        if let Err(e) = &result {
            if e.is_malformed() {
                self.malformed += 1;
            } else {
                self.discarded += 1;
            }
            trace!(error = %e, %from, "RTP datagram dropped");
        }
        result
    }

    fn accept_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<RtpPacketIn, RtpError> {
        check_rtp(datagram)?;
        let mut buf = Bytes::copy_from_slice(datagram);
        let packet = rtc_rtp::Packet::unmarshal(&mut buf).map_err(|_| RtpError::BadHeaderLength)?;
        let h = &packet.header;
        let pt = h.payload_type;
        if pt != self.payload_type && Some(pt) != self.dtmf_payload_type {
            return Err(RtpError::UnexpectedPayloadType(pt));
        }
        let ssrc = h.ssrc;
        let index = match self.sources.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                if self.sources.len() >= MAX_SOURCES
                    && let Some(oldest) = self
                        .sources
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| Some(s.ssrc) != self.current)
                        .min_by_key(|(_, s)| s.last_seen)
                        .map(|(i, _)| i)
                {
                    self.sources.swap_remove(oldest);
                }
                self.sources.push(Source::new(ssrc, h.sequence_number, now));
                self.sources.len() - 1
            }
        };
        let arrival = self.rtp_units(now);
        let clock_is_audio = pt == self.payload_type;
        let source = self
            .sources
            .get_mut(index)
            .ok_or(RtpError::Probation(ssrc))?;
        source.last_seen = now;
        match source.update_seq(h.sequence_number) {
            SeqOutcome::Jump => return Err(RtpError::SequenceJump(ssrc)),
            SeqOutcome::Probation => {
                // Deliver the first packets of the only source (no audio is lost at call
                // start), but not a newcomer while another source is current.
                if self.current.is_some_and(|c| c != ssrc) {
                    return Err(RtpError::Probation(ssrc));
                }
            }
            SeqOutcome::Valid => {
                if clock_is_audio {
                    // RFC 3550 A.8, in RTP timestamp units, modulo 2^32.
                    let transit = arrival.wrapping_sub(h.timestamp);
                    if let Some(last) = source.transit {
                        let d = (transit.wrapping_sub(last) as i32).unsigned_abs() as f64;
                        source.jitter += (d - source.jitter) / 16.0;
                    }
                    source.transit = Some(transit);
                }
                if self.current != Some(ssrc) {
                    debug!(ssrc, %from, "RTP source is now current");
                    self.current = Some(ssrc);
                    self.remote_bye = false;
                }
                if self.symmetric && !self.latched_rtp {
                    self.latched_rtp = true;
                    if self.remote_rtp != from {
                        debug!(old = %self.remote_rtp, new = %from, "symmetric RTP: latched");
                        self.remote_rtp = from;
                    }
                    if !self.latched_rtcp
                        && let Some(port) = from.port().checked_add(1)
                    {
                        self.remote_rtcp = SocketAddr::new(from.ip(), port);
                    }
                }
            }
        }
        self.packets_received += 1;
        self.last_received = Some(now);
        Ok(RtpPacketIn {
            payload_type: pt,
            sequence: h.sequence_number,
            timestamp: h.timestamp,
            marker: h.marker,
            ssrc,
            payload: packet.payload,
        })
    }

    /// Reads one (compound) RTCP datagram: the round-trip time and the peer's view of our
    /// stream from report blocks about our SSRC, the peer's SR time for our own reports, BYE.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), RtpError> {
        let result = self.accept_rtcp(now, datagram);
        match &result {
            Err(e) => {
                self.malformed += 1;
                trace!(error = %e, %from, "RTCP datagram dropped");
            }
            Ok(()) => {
                if self.symmetric && !self.latched_rtcp {
                    self.latched_rtcp = true;
                    if self.remote_rtcp != from {
                        debug!(old = %self.remote_rtcp, new = %from, "symmetric RTCP: latched");
                        self.remote_rtcp = from;
                    }
                }
            }
        }
        result
    }

    fn accept_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtpError> {
        // Split and check the whole compound packet before using any of it (RFC 3550 A.2).
        let mut parts: Vec<(u8, &[u8])> = Vec::new();
        let mut rest = datagram;
        if rest.len() < 4 {
            return Err(RtpError::TooShort(datagram.len()));
        }
        while !rest.is_empty() {
            let (&[b0, pt, l0, l1], _) = rest.split_first_chunk::<4>().ok_or(RtpError::BadRtcp(
                "trailing bytes after the last RTCP packet",
            ))?;
            if b0 >> 6 != RTP_VERSION {
                return Err(RtpError::BadVersion(b0 >> 6));
            }
            let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
            let (part, tail) = rest
                .split_at_checked(len)
                .ok_or(RtpError::BadRtcp("length beyond the datagram"))?;
            if b0 & 0x20 != 0 && !tail.is_empty() {
                return Err(RtpError::BadRtcp("padding before the last packet"));
            }
            parts.push((pt, part));
            rest = tail;
        }
        // Parse what we use first, apply after: a bad sub-packet rejects the datagram.
        let mut reports: Vec<ReceptionReport> = Vec::new();
        let mut sender: Option<(u32, u64)> = None;
        let mut bye: Vec<u32> = Vec::new();
        for (pt, part) in parts {
            let mut buf = Bytes::copy_from_slice(part);
            match pt {
                RTCP_SR => {
                    let sr = SenderReport::unmarshal(&mut buf)
                        .map_err(|_| RtpError::BadRtcp("sender report"))?;
                    sender = Some((sr.ssrc, sr.ntp_time));
                    reports.extend(sr.reports);
                }
                RTCP_RR => {
                    let rr = ReceiverReport::unmarshal(&mut buf)
                        .map_err(|_| RtpError::BadRtcp("receiver report"))?;
                    reports.extend(rr.reports);
                }
                RTCP_BYE => {
                    let b =
                        Goodbye::unmarshal(&mut buf).map_err(|_| RtpError::BadRtcp("goodbye"))?;
                    bye.extend(b.sources);
                }
                // SDES (202), feedback, XR, APP, unknown: not needed, not parsed.
                _ => {}
            }
        }
        if let Some((ssrc, ntp)) = sender {
            self.last_sr = Some((ssrc, (ntp >> 16) as u32, now));
        }
        for r in reports.iter().filter(|r| r.ssrc == self.ssrc) {
            self.remote_fraction_lost = f32::from(r.fraction_lost) / 256.0;
            self.remote_jitter = r.jitter;
            if r.last_sender_report != 0 {
                // RFC 3550 §6.4.1: RTT = A − LSR − DLSR, in 1/65536 s.
                let a = (self.ntp(now) >> 16) as u32;
                let rtt = a.wrapping_sub(r.last_sender_report).wrapping_sub(r.delay);
                if rtt < 1 << 31 {
                    self.rtt = Some(Duration::from_nanos(
                        u64::from(rtt) * 1_000_000_000 / 65_536,
                    ));
                }
            }
        }
        if let Some(current) = self.current
            && bye.contains(&current)
        {
            debug!(ssrc = current, "RTCP BYE");
            self.remote_bye = true;
        }
        Ok(())
    }

    /// The next RTCP compound packet (SR if we sent RTP in the last two intervals, else RR,
    /// plus SDES CNAME) when the report interval has elapsed, else `None`. The interval is
    /// [`RTCP_INTERVAL`] randomised by a factor 0.5–1.5 (RFC 3550 §6.3; the minimum interval
    /// governs any two-party audio call, and without timer reconsideration the e−3/2
    /// compensation is not applied), the first one after half of it.
    pub fn poll_rtcp(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.closed || now < self.next_rtcp {
            return None;
        }
        let out = self.report(now, None);
        self.next_rtcp = now + RTCP_INTERVAL.mul_f64(self.rng.factor());
        self.sent_last_interval = self.sent_this_interval;
        self.sent_this_interval = false;
        Some(out)
    }

    /// When [`poll_rtcp`](Self::poll_rtcp) next has something to do.
    pub fn poll_timeout(&self) -> Instant {
        self.next_rtcp
    }

    /// Ends the session: returns the final compound RTCP packet with a BYE; no further
    /// reports are scheduled. A second call returns the BYE again.
    pub fn close(&mut self, now: Instant) -> Vec<u8> {
        if !self.closed {
            debug!(ssrc = self.ssrc, "RTP session closed");
        }
        self.closed = true;
        self.next_rtcp = now + Duration::from_secs(24 * 3600);
        self.report(
            now,
            Some(Goodbye {
                sources: vec![self.ssrc],
                reason: Bytes::new(),
            }),
        )
    }

    /// Points the session at a new remote (re-INVITE): new addresses, payload type and clock
    /// rate. Symmetric latching starts over; the SSRC and sequence numbers continue.
    pub fn set_remote(
        &mut self,
        rtp: SocketAddr,
        rtcp: SocketAddr,
        payload_type: u8,
        clock_rate: u32,
    ) {
        self.remote_rtp = rtp;
        self.remote_rtcp = rtcp;
        self.latched_rtp = false;
        self.latched_rtcp = false;
        self.payload_type = payload_type & 0x7f;
        let clock_rate = clock_rate.max(1);
        if clock_rate != self.clock_rate {
            self.clock_rate = clock_rate;
            for s in &mut self.sources {
                s.transit = None;
                s.jitter = 0.0;
            }
        }
    }

    /// Sets the telephone-event payload type accepted on receive.
    pub fn set_dtmf_payload_type(&mut self, payload_type: Option<u8>) {
        self.dtmf_payload_type = payload_type;
    }

    /// Current statistics.
    pub fn stats(&self, _now: Instant) -> CallStats {
        let source = self.current_source();
        let (lost, loss_local, jitter_ms) = match source {
            Some(s) => {
                let expected = s.expected();
                let loss = if expected > 0 {
                    (s.lost().max(0) as f64 / expected as f64) as f32
                } else {
                    0.0
                };
                (
                    s.lost(),
                    loss,
                    (s.jitter * 1000.0 / f64::from(self.clock_rate)) as f32,
                )
            }
            None => (0, 0.0, 0.0),
        };
        let rtt_ms = self.rtt.map(|d| d.as_secs_f32() * 1000.0);
        let one_way = rtt_ms.unwrap_or(0.0) / 2.0 + 20.0 + (2.0 * jitter_ms).max(40.0);
        CallStats {
            packets_sent: self.packets_sent,
            packets_received: self.packets_received,
            packets_lost: lost,
            loss_fraction_local: loss_local,
            loss_fraction_remote: self.remote_fraction_lost,
            jitter_ms,
            remote_jitter_ms: self.remote_jitter as f32 * 1000.0 / self.clock_rate as f32,
            rtt_ms,
            malformed: self.malformed,
            discarded: self.discarded,
            mos: estimate_mos(self.mos, one_way, loss_local),
        }
    }

    fn current_source(&self) -> Option<&Source> {
        let current = self.current?;
        self.sources.iter().find(|s| s.ssrc == current)
    }

    /// `now` as a 64-bit NTP timestamp.
    fn ntp(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.epoch);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.epoch_ntp
            .wrapping_add(d.as_secs() << 32)
            .wrapping_add(frac)
    }

    /// `now` in RTP timestamp units since the session started, modulo 2^32.
    fn rtp_units(&self, now: Instant) -> u32 {
        let d = now.saturating_duration_since(self.epoch);
        (d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32
    }

    /// The reception report block about the current source, updating the interval counters.
    fn report_block(&mut self, now: Instant) -> Option<ReceptionReport> {
        let current = self.current?;
        let last_sr = self.last_sr;
        let s = self.sources.iter_mut().find(|s| s.ssrc == current)?;
        let expected = s.expected();
        let expected_interval = expected.saturating_sub(s.expected_prior);
        let received_interval = s.received.saturating_sub(s.received_prior);
        s.expected_prior = expected;
        s.received_prior = s.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let total_lost = (s.lost().clamp(-0x80_0000, 0x7f_ffff) as i32 as u32) & 0xff_ffff;
        let (lsr, dlsr) = match last_sr {
            Some((ssrc, lsr, at)) if ssrc == current => {
                let d = now.saturating_duration_since(at);
                (
                    lsr,
                    (d.as_nanos() * 65_536 / 1_000_000_000).min(u32::MAX as u128) as u32,
                )
            }
            _ => (0, 0),
        };
        Some(ReceptionReport {
            ssrc: current,
            fraction_lost,
            total_lost,
            last_sequence_number: s.extended_max() as u32,
            jitter: s.jitter.round() as u32,
            last_sender_report: lsr,
            delay: dlsr,
        })
    }

    fn report(&mut self, now: Instant, bye: Option<Goodbye>) -> Vec<u8> {
        let reports: Vec<ReceptionReport> = self.report_block(now).into_iter().collect();
        let mut packets: Vec<Box<dyn rtc_rtcp::Packet>> = Vec::with_capacity(3);
        if self.sent_this_interval || self.sent_last_interval {
            let rtp_time = match self.last_sent {
                Some((at, ts)) => {
                    let d = now.saturating_duration_since(at);
                    let elapsed = d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
                    ts.wrapping_add(elapsed as u32)
                }
                None => self.timestamp,
            };
            packets.push(Box::new(SenderReport {
                ssrc: self.ssrc,
                ntp_time: self.ntp(now),
                rtp_time,
                packet_count: self.packets_sent as u32,
                octet_count: self.octets_sent as u32,
                reports,
                profile_extensions: Bytes::new(),
            }));
        } else {
            packets.push(Box::new(ReceiverReport {
                ssrc: self.ssrc,
                reports,
                profile_extensions: Bytes::new(),
            }));
        }
        packets.push(Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::copy_from_slice(self.cname.as_bytes()),
                }],
            }],
        }));
        if let Some(bye) = bye {
            packets.push(Box::new(bye));
        }
        match rtc_rtcp::packet::marshal(&packets) {
            Ok(b) => b.to_vec(),
            Err(e) => {
                // Only a CNAME over 255 bytes could do this; send the report without SDES.
                debug!(error = %e, "RTCP marshal failed");
                packets.remove(1);
                rtc_rtcp::packet::marshal(&packets)
                    .map(|b| b.to_vec())
                    .unwrap_or_default()
            }
        }
    }
}

/// Checks the fixed header, CSRC list, extension and padding of an RTP datagram, so that
/// nothing past this point depends on `rtc-rtp`'s own bounds checks.
fn check_rtp(d: &[u8]) -> Result<(), RtpError> {
    let Some(&[b0, b1, ..]) = d.first_chunk::<12>() else {
        return Err(RtpError::TooShort(d.len()));
    };
    if b0 >> 6 != RTP_VERSION {
        return Err(RtpError::BadVersion(b0 >> 6));
    }
    // Payload types 72–76 with the marker bit are RTCP SR/RR/SDES/BYE/APP (RFC 5761 §4).
    let pt = b1 & 0x7f;
    if (72..=76).contains(&pt) {
        return Err(RtpError::UnexpectedPayloadType(pt));
    }
    let mut header = 12 + usize::from(b0 & 0x0f) * 4;
    if b0 & 0x10 != 0 {
        let Some(&[hi, lo]) = d.get(header + 2..header + 4) else {
            return Err(RtpError::BadHeaderLength);
        };
        header += 4 + usize::from(u16::from_be_bytes([hi, lo])) * 4;
    }
    if header > d.len() {
        return Err(RtpError::BadHeaderLength);
    }
    if b0 & 0x20 != 0 {
        let pad = usize::from(*d.last().ok_or(RtpError::BadPadding)?);
        if pad == 0 || header + pad > d.len() {
            return Err(RtpError::BadPadding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn session(now: Instant, ssrc: u32, remote: &str) -> RtpSession {
        let rtp = addr(remote);
        let rtcp = SocketAddr::new(rtp.ip(), rtp.port() + 1);
        let mut cfg = RtpConfig::new(0, 8000, rtp, rtcp);
        cfg.ssrc = Some(ssrc);
        cfg.dtmf_payload_type = Some(101);
        RtpSession::new(now, cfg)
    }

    /// One direction of the simulated network.
    #[derive(Clone, Copy)]
    struct Link {
        loss: f64,
        delay_ms: u64,
        /// RTP packets get an extra uniform 0..jitter_ms delay (RTCP does not).
        jitter_ms: u64,
    }

    struct InFlight {
        at: Instant,
        to_b: bool,
        rtcp: bool,
        data: Vec<u8>,
    }

    struct Outcome {
        /// B's jitter estimate sampled every second.
        b_jitter: Vec<f32>,
        a: RtpSession,
        b: RtpSession,
        dropped_a_to_b: u64,
        end: Instant,
    }

    const A_RTP: &str = "192.0.2.1:4000";
    const B_RTP: &str = "198.51.100.2:5000";

    /// Two sessions sending 20 ms G.711 packets to each other for `seconds` of virtual time.
    fn simulate(seconds: u64, ab: Link, ba: Link, seed: u64) -> Outcome {
        let start = Instant::now();
        let mut a = session(start, 0xaaaa_0001, B_RTP);
        let mut b = session(start, 0xbbbb_0002, A_RTP);
        let mut rng = XorShift(seed);
        let mut flight: Vec<InFlight> = Vec::new();
        let mut dropped = 0;
        let total_ms = seconds * 1000;
        let payload = [0xffu8; 160];
        let mut b_jitter = Vec::new();
        for ms in 0..=total_ms {
            let now = start + Duration::from_millis(ms);
            if ms % 1000 == 0 && ms > 0 {
                b_jitter.push(b.stats(now).jitter_ms);
            }
            if ms % 20 == 0 && ms + 100 < total_ms {
                let last_few = ms + 200 >= total_ms;
                let pa = a.packetize(now, &payload, 160, false);
                if !last_few && ms >= 100 && rng.unit() < ab.loss {
                    dropped += 1;
                } else {
                    let extra = rng.unit() * ab.jitter_ms as f64;
                    flight.push(InFlight {
                        at: now
                            + Duration::from_millis(ab.delay_ms)
                            + Duration::from_secs_f64(extra / 1000.0),
                        to_b: true,
                        rtcp: false,
                        data: pa,
                    });
                }
                let pb = b.packetize(now, &payload, 160, false);
                if rng.unit() >= ba.loss {
                    let extra = rng.unit() * ba.jitter_ms as f64;
                    flight.push(InFlight {
                        at: now
                            + Duration::from_millis(ba.delay_ms)
                            + Duration::from_secs_f64(extra / 1000.0),
                        to_b: false,
                        rtcp: false,
                        data: pb,
                    });
                }
            }
            if let Some(r) = a.poll_rtcp(now) {
                flight.push(InFlight {
                    at: now + Duration::from_millis(ab.delay_ms),
                    to_b: true,
                    rtcp: true,
                    data: r,
                });
            }
            if let Some(r) = b.poll_rtcp(now) {
                flight.push(InFlight {
                    at: now + Duration::from_millis(ba.delay_ms),
                    to_b: false,
                    rtcp: true,
                    data: r,
                });
            }
            let (due, later): (Vec<InFlight>, Vec<InFlight>) =
                flight.into_iter().partition(|f| f.at <= now);
            flight = later;
            for f in due {
                let (rx, from) = if f.to_b {
                    (
                        &mut b,
                        if f.rtcp {
                            addr("192.0.2.1:4001")
                        } else {
                            addr(A_RTP)
                        },
                    )
                } else {
                    (
                        &mut a,
                        if f.rtcp {
                            addr("198.51.100.2:5001")
                        } else {
                            addr(B_RTP)
                        },
                    )
                };
                if f.rtcp {
                    rx.handle_rtcp(f.at, from, &f.data).expect("valid RTCP");
                } else {
                    rx.handle_rtp(f.at, from, &f.data).expect("valid RTP");
                }
            }
        }
        Outcome {
            b_jitter,
            a,
            b,
            dropped_a_to_b: dropped,
            end: start + Duration::from_millis(total_ms),
        }
    }

    #[test]
    fn simulated_call_statistics_match_the_network() {
        let lossy = Link {
            loss: 0.05,
            delay_ms: 30,
            jitter_ms: 20,
        };
        let clean = Link {
            loss: 0.0,
            delay_ms: 30,
            jitter_ms: 0,
        };
        let o = simulate(60, lossy, clean, 0x1234_5678_9abc_def1);
        let sb = o.b.stats(o.end);
        let sa = o.a.stats(o.end);
        assert!(
            o.dropped_a_to_b > 50,
            "the simulator dropped {}",
            o.dropped_a_to_b
        );
        // B lost exactly what the network dropped (reordering is not loss).
        assert_eq!(sb.packets_lost, o.dropped_a_to_b as i64);
        assert_eq!(sb.packets_received + o.dropped_a_to_b, sa.packets_sent);
        let expected = sa.packets_sent - 1; // the first packet is the source's probation
        let loss = o.dropped_a_to_b as f32 / expected as f32;
        assert!(
            (sb.loss_fraction_local - loss).abs() < 1e-4,
            "{} vs {loss}",
            sb.loss_fraction_local
        );
        assert_eq!(sa.packets_lost, 0);
        // Uniform 0–20 ms extra delay: E|U1 − U2| = 20/3 ms. The estimate itself is a
        // noisy 1/16 average, so compare its mean over the call.
        let mean = o.b_jitter.iter().skip(2).sum::<f32>() / (o.b_jitter.len() - 2) as f32;
        assert!((6.0..7.3).contains(&mean), "mean jitter {mean}");
        assert!(
            (2.0..12.0).contains(&sb.jitter_ms),
            "jitter {}",
            sb.jitter_ms
        );
        assert!(
            sa.jitter_ms < 0.5,
            "clean direction jitter {}",
            sa.jitter_ms
        );
        // A hears about B's view through RTCP (B's estimate when it last reported).
        assert!(
            (sa.remote_jitter_ms - mean).abs() < 4.0 && sa.remote_jitter_ms > 1.0,
            "{} vs {mean}",
            sa.remote_jitter_ms
        );
        assert!(
            (0.005..0.15).contains(&sa.loss_fraction_remote),
            "{}",
            sa.loss_fraction_remote
        );
        assert_eq!(sb.loss_fraction_remote, 0.0);
        // RTCP takes 30 ms each way: RTT 60 ms from both ends.
        for s in [&sa, &sb] {
            let rtt = s.rtt_ms.expect("RTT measured");
            assert!((rtt - 60.0).abs() < 1.0, "rtt {rtt}");
        }
        // 5 % random loss on G.711+PLC with ~90 ms one-way: MOS around 3.8.
        assert!((3.6..4.0).contains(&sb.mos), "mos {}", sb.mos);
        assert!(sa.mos > 4.2, "mos {}", sa.mos);
        assert_eq!(
            (sa.malformed, sb.malformed, sa.discarded, sb.discarded),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn longer_delay_gives_longer_rtt_and_lower_mos() {
        let slow = Link {
            loss: 0.0,
            delay_ms: 150,
            jitter_ms: 0,
        };
        let o = simulate(
            30,
            slow,
            Link {
                delay_ms: 100,
                ..slow
            },
            7,
        );
        let sa = o.a.stats(o.end);
        let rtt = sa.rtt_ms.unwrap();
        assert!((rtt - 250.0).abs() < 1.0, "rtt {rtt}");
        assert!(sa.mos < estimate_mos(MosParams::G711_PLC, 60.0, 0.0));
    }

    #[test]
    fn symmetric_rtp_latches_to_the_actual_source() {
        let now = Instant::now();
        // The SDP said 10.0.0.5 (a private address behind NAT).
        let mut b = session(now, 2, "10.0.0.5:4000");
        let mut a = session(now, 1, B_RTP);
        let nat = addr("203.0.113.5:30000");
        let p1 = a.packetize(now, &[1; 160], 160, true);
        b.handle_rtp(now, nat, &p1).unwrap();
        assert_eq!(
            b.remote_rtp(),
            addr("10.0.0.5:4000"),
            "not on probation's first packet"
        );
        let p2 = a.packetize(now, &[1; 160], 160, false);
        b.handle_rtp(now, nat, &p2).unwrap();
        assert_eq!(b.remote_rtp(), nat);
        assert_eq!(b.remote_rtcp(), addr("203.0.113.5:30001"));
        // RTCP from yet another NAT port re-points RTCP.
        let rtcp_from = addr("203.0.113.5:30077");
        let r = a.close(now);
        b.handle_rtcp(now, rtcp_from, &r).unwrap();
        assert_eq!(b.remote_rtcp(), rtcp_from);
        assert!(b.remote_left());
        // Latched once: a later packet from elsewhere does not move it.
        let p3 = a.packetize(now, &[1; 160], 160, false);
        b.handle_rtp(now, addr("198.18.0.1:1"), &p3).unwrap();
        assert_eq!(b.remote_rtp(), nat);
        // A re-INVITE re-arms latching.
        b.set_remote(addr("10.0.0.6:4000"), addr("10.0.0.6:4001"), 0, 8000);
        assert_eq!(b.remote_rtp(), addr("10.0.0.6:4000"));
        let p4 = a.packetize(now, &[1; 160], 160, false);
        b.handle_rtp(now, nat, &p4).unwrap();
        assert_eq!(b.remote_rtp(), nat);

        // Without symmetric RTP the SDP address stays.
        let mut cfg = RtpConfig::new(0, 8000, addr("10.0.0.5:4000"), addr("10.0.0.5:4001"));
        cfg.symmetric = false;
        let mut c = RtpSession::new(now, cfg);
        for _ in 0..3 {
            let p = a.packetize(now, &[1; 160], 160, false);
            c.handle_rtp(now, nat, &p).unwrap();
        }
        assert_eq!(c.remote_rtp(), addr("10.0.0.5:4000"));
    }

    fn valid_packet() -> Vec<u8> {
        let now = Instant::now();
        let mut a = session(now, 1, B_RTP);
        a.packetize(now, &[7; 160], 160, false)
    }

    #[test]
    fn malformed_and_unexpected_packets_are_counted() {
        let now = Instant::now();
        let mut b = session(now, 2, A_RTP);
        let from = addr(A_RTP);
        let good = valid_packet();
        let mut bad_version = good.clone();
        bad_version[0] = (bad_version[0] & 0x3f) | 0x40;
        let mut csrc_overflow = good[..20].to_vec();
        csrc_overflow[0] |= 0x0f; // 15 CSRCs need 72 bytes
        let mut ext_overflow = good.clone();
        ext_overflow[0] |= 0x10;
        ext_overflow[14] = 0xff; // extension length 65535 words
        ext_overflow[15] = 0xff;
        let mut zero_padding = good.clone();
        zero_padding[0] |= 0x20;
        *zero_padding.last_mut().unwrap() = 0;
        let mut big_padding = good.clone();
        big_padding[0] |= 0x20;
        *big_padding.last_mut().unwrap() = 200;
        let cases: Vec<(Vec<u8>, RtpError)> = vec![
            (vec![], RtpError::TooShort(0)),
            (good[..11].to_vec(), RtpError::TooShort(11)),
            (bad_version, RtpError::BadVersion(1)),
            (csrc_overflow, RtpError::BadHeaderLength),
            (ext_overflow, RtpError::BadHeaderLength),
            (zero_padding, RtpError::BadPadding),
            (big_padding, RtpError::BadPadding),
        ];
        let n = cases.len() as u64;
        for (bytes, want) in cases {
            assert_eq!(b.handle_rtp(now, from, &bytes), Err(want));
        }
        assert_eq!(b.stats(now).malformed, n);
        // Well-formed but not wanted: counted apart.
        let mut other_pt = good.clone();
        other_pt[1] = 96;
        assert_eq!(
            b.handle_rtp(now, from, &other_pt),
            Err(RtpError::UnexpectedPayloadType(96))
        );
        let mut rtcp_like = good.clone();
        rtcp_like[1] = 0x80 | 72;
        assert_eq!(
            b.handle_rtp(now, from, &rtcp_like),
            Err(RtpError::UnexpectedPayloadType(72))
        );
        let s = b.stats(now);
        assert_eq!((s.malformed, s.discarded, s.packets_received), (n, 2, 0));
        // Padding and CSRCs that fit are accepted and stripped.
        let mut padded = good.clone();
        padded[0] |= 0x20;
        padded.extend_from_slice(&[0, 0, 3]);
        let p = b.handle_rtp(now, from, &padded).unwrap();
        assert_eq!(p.payload.len(), 160);
        assert_eq!(p.payload_type, 0);
        // RTCP garbage.
        for bad in [
            &[0x80u8, 0xc9][..],
            &[0x80, 0xc9, 0, 9, 0, 0, 0, 0],
            &[0x40, 0xc9, 0, 0],
        ] {
            assert!(b.handle_rtcp(now, from, bad).is_err());
        }
        assert_eq!(b.stats(now).malformed, n + 3);
    }

    #[test]
    fn sequence_wrap_jumps_and_reordering() {
        let now = Instant::now();
        let mut a = session(now, 1, B_RTP);
        let mut b = session(now, 2, A_RTP);
        let from = addr(A_RTP);
        a.sequence = 65530;
        for _ in 0..20 {
            let p = a.packetize(now, &[0; 160], 160, false);
            b.handle_rtp(now, from, &p).unwrap();
        }
        let s = b.stats(now);
        assert_eq!((s.packets_received, s.packets_lost), (20, 0));
        let src = b.current_source().unwrap();
        assert_eq!(src.extended_max(), 65536 + 13);
        // The RR carries the extended sequence number.
        let rr = b.report(now, None);
        let parsed = rtc_rtcp::packet::unmarshal(&mut Bytes::from(rr)).unwrap();
        let report = parsed[0].as_any().downcast_ref::<ReceiverReport>().unwrap();
        assert_eq!(report.reports[0].last_sequence_number, 65536 + 13);
        assert_eq!(report.reports[0].ssrc, 1);

        // Skip 5 packets, then deliver two of them late.
        let held: Vec<Vec<u8>> = (0..5)
            .map(|_| a.packetize(now, &[0; 160], 160, false))
            .collect();
        let p = a.packetize(now, &[0; 160], 160, false);
        b.handle_rtp(now, from, &p).unwrap();
        assert_eq!(b.stats(now).packets_lost, 5);
        b.handle_rtp(now, from, &held[1]).unwrap();
        b.handle_rtp(now, from, &held[3]).unwrap();
        assert_eq!(b.stats(now).packets_lost, 3);

        // A jump of 10000: dropped once, accepted when the sender continues from there.
        a.sequence = a.sequence.wrapping_add(10_000);
        let j1 = a.packetize(now, &[0; 160], 160, false);
        assert_eq!(b.handle_rtp(now, from, &j1), Err(RtpError::SequenceJump(1)));
        let j2 = a.packetize(now, &[0; 160], 160, false);
        assert!(b.handle_rtp(now, from, &j2).is_ok());
        let s = b.stats(now);
        assert_eq!((s.packets_lost, s.discarded), (0, 1), "restarted source");
    }

    #[test]
    fn new_ssrc_goes_through_probation() {
        let now = Instant::now();
        let mut a = session(now, 1, B_RTP);
        let mut a2 = session(now, 9, B_RTP);
        let mut b = session(now, 2, A_RTP);
        let from = addr(A_RTP);
        for _ in 0..3 {
            b.handle_rtp(now, from, &a.packetize(now, &[0; 160], 160, false))
                .unwrap();
        }
        let first = a2.packetize(now, &[0; 160], 160, false);
        assert_eq!(b.handle_rtp(now, from, &first), Err(RtpError::Probation(9)));
        let p = b
            .handle_rtp(now, from, &a2.packetize(now, &[0; 160], 160, false))
            .unwrap();
        assert_eq!(p.ssrc, 9);
        assert_eq!(b.current, Some(9));
        // Still accepts the old source's packets (e.g. a few in flight).
        assert!(
            b.handle_rtp(now, from, &a.packetize(now, &[0; 160], 160, false))
                .is_ok()
        );
    }

    #[test]
    fn rtcp_interval_is_randomised_around_five_seconds() {
        let start = Instant::now();
        let mut s = session(start, 1, B_RTP);
        let first = s.poll_timeout() - start;
        assert!(
            first >= Duration::from_millis(1250) && first <= Duration::from_millis(3750),
            "{first:?}"
        );
        assert_eq!(
            s.poll_rtcp(s.poll_timeout() - Duration::from_millis(1)),
            None
        );
        let mut at = s.poll_timeout();
        assert!(s.poll_rtcp(at).is_some());
        assert_eq!(s.poll_rtcp(at), None, "one report per interval");
        let mut total = Duration::ZERO;
        let n = 400;
        for _ in 0..n {
            let next = s.poll_timeout();
            let gap = next - at;
            assert!(
                gap >= Duration::from_millis(2500) && gap < Duration::from_millis(7500),
                "{gap:?}"
            );
            total += gap;
            at = next;
            assert!(s.poll_rtcp(at).is_some());
        }
        let mean = total.as_secs_f64() / n as f64;
        assert!((mean - 5.0).abs() < 0.25, "mean interval {mean}");
        // After close: BYE, nothing more scheduled soon.
        let bye = s.close(at);
        let parsed = rtc_rtcp::packet::unmarshal(&mut Bytes::from(bye)).unwrap();
        assert!(parsed.iter().any(|p| {
            p.as_any()
                .downcast_ref::<Goodbye>()
                .is_some_and(|g| g.sources == vec![1])
        }));
        assert!(
            parsed[0]
                .as_any()
                .downcast_ref::<ReceiverReport>()
                .is_some(),
            "RR first, nothing sent"
        );
        assert_eq!(s.poll_rtcp(at + Duration::from_secs(60)), None);
        assert!(s.poll_timeout() > at + Duration::from_secs(3600));
    }

    #[test]
    fn sender_report_and_sdes() {
        let now = Instant::now();
        let mut cfg = RtpConfig::new(0, 8000, addr(B_RTP), addr("198.51.100.2:5001"));
        cfg.ssrc = Some(77);
        cfg.cname = Some("alice@krypton".into());
        let mut a = RtpSession::new(now, cfg);
        let ts0 = a.next_timestamp();
        for i in 0..50 {
            a.packetize(now + Duration::from_millis(20 * i), &[0; 160], 160, false);
        }
        let at = a.poll_timeout().max(now + Duration::from_secs(2));
        let report = loop {
            if let Some(r) = a.poll_rtcp(at) {
                break r;
            }
        };
        let parsed = rtc_rtcp::packet::unmarshal(&mut Bytes::from(report)).unwrap();
        let sr = parsed[0]
            .as_any()
            .downcast_ref::<SenderReport>()
            .expect("SR");
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (77, 50, 8000));
        assert!(sr.reports.is_empty());
        // RTP time advances with wall time since the last packet (sent at 980 ms).
        let elapsed = (at - (now + Duration::from_millis(980))).as_secs_f64();
        let want = ts0
            .wrapping_add(49 * 160)
            .wrapping_add((elapsed * 8000.0).round() as u32);
        assert!(
            sr.rtp_time.wrapping_sub(want).wrapping_add(1) <= 2,
            "{} vs {want}",
            sr.rtp_time
        );
        let sdes = parsed[1]
            .as_any()
            .downcast_ref::<SourceDescription>()
            .expect("SDES");
        assert_eq!(&sdes.chunks[0].items[0].text[..], b"alice@krypton");
    }

    #[test]
    fn event_packets_keep_their_timestamp() {
        let now = Instant::now();
        let mut a = session(now, 1, B_RTP);
        let mut b = session(now, 2, A_RTP);
        let from = addr(A_RTP);
        b.handle_rtp(now, from, &a.packetize(now, &[0; 160], 160, false))
            .unwrap();
        let ts = a.next_timestamp();
        for i in 0..3 {
            let p = a.packetize_event(now, 101, ts, &[1, 10, 0, 80 * (i + 1)], i == 0);
            let got = b.handle_rtp(now, from, &p).unwrap();
            assert_eq!(
                (got.payload_type, got.timestamp, got.marker),
                (101, ts, i == 0)
            );
            a.skip(160);
        }
        assert_eq!(a.next_timestamp(), ts.wrapping_add(480));
        let p = b
            .handle_rtp(now, from, &a.packetize(now, &[0; 160], 160, true))
            .unwrap();
        assert_eq!(p.timestamp, ts.wrapping_add(480));
        assert_eq!(b.stats(now).packets_lost, 0);
    }

    #[test]
    fn mos_model_values() {
        let perfect = estimate_mos(MosParams::G711_PLC, 0.0, 0.0);
        assert!((perfect - 4.41).abs() < 0.01, "{perfect}");
        // G.107 example figures: R = 93.2 − 95·2/(2 + 4.3) ≈ 63.0 for 2 % loss without PLC.
        let r = 93.2 - 95.0 * 2.0 / 6.3;
        let want = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;
        assert!((estimate_mos(MosParams::G711, 0.0, 0.02) - want).abs() < 0.01);
        assert!(
            estimate_mos(MosParams::G711_PLC, 0.0, 0.02) > estimate_mos(MosParams::G711, 0.0, 0.02)
        );
        assert!(
            estimate_mos(MosParams::G711_PLC, 300.0, 0.0)
                < estimate_mos(MosParams::G711_PLC, 100.0, 0.0)
        );
        assert_eq!(estimate_mos(MosParams::G711, 5000.0, 1.0), 1.0);
        assert!(estimate_mos(MosParams::OPUS, f32::NAN, f32::INFINITY).is_finite());
        assert_eq!(MosParams::for_codec(CodecKind::Opus), MosParams::OPUS);
    }

    #[test]
    fn random_and_mutated_datagrams_never_panic() {
        let now = Instant::now();
        let mut a = session(now, 1, B_RTP);
        let mut b = session(now, 2, A_RTP);
        let from = addr(A_RTP);
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        for i in 0..5 {
            seeds.push(a.packetize(now, &[i; 40], 160, i == 0));
        }
        b.handle_rtp(now, from, &seeds[0]).unwrap();
        seeds.push(b.poll_rtcp(now + Duration::from_secs(4)).unwrap());
        seeds.push(a.close(now));
        let mut rng = XorShift(0x00c0_ffee_1234_5678);
        for i in 0..50_000 {
            let mut d: Vec<u8> = if i % 8 == 0 {
                (0..rng.below(80)).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            for _ in 0..rng.below(4) {
                if d.is_empty() {
                    break;
                }
                let at = rng.below(d.len());
                match rng.below(3) {
                    0 => d[at] = rng.next() as u8,
                    1 => d.truncate(at),
                    _ => d[at] ^= 1 << rng.below(8),
                }
            }
            let _ = b.handle_rtp(now, from, &d);
            let _ = b.handle_rtcp(now, from, &d);
        }
        let s = b.stats(now);
        assert!(s.malformed > 10_000, "{}", s.malformed);
        let _ = b.poll_rtcp(now + Duration::from_secs(10));
    }
}
