//! SDP offer/answer for plain SIP audio ([RFC 3264], [RFC 4566]).
//!
//! [`create_offer`] writes our offer, [`answer_offer`] answers a remote offer and
//! [`apply_answer`] reads the answer to our offer. Both negotiating functions return a
//! [`Negotiated`] description of the one audio stream the call uses.
//!
//! # Why not `rtc-sdp` for parsing
//!
//! `rtc-sdp` 0.21.1 is a strict RFC 8866 state machine. It fails the *whole* description on
//! anything out of order or unknown: a missing `t=` line, `b=`/`c=` after `t=`, a session `a=`
//! before `t=`, an unknown line letter, an `o=` line without exactly six fields or with a
//! non-numeric session id, an unparsable `u=` URL, an unregistered media type. Any of those
//! would turn a call we can handle into a 488. It also does not know the static payload
//! types of [RFC 3551] (an `m=audio … 0 8` line without `a=rtpmap` yields no codecs). So this
//! module parses with a small line-oriented parser that only requires `v=0` first and
//! well-formed `m=`/`c=` lines, ignores what it does not understand, and bounds its input.
//! Our own output is checked against `rtc-sdp`'s strict parser in the tests.
//!
//!
//! # SDES-SRTP
//!
//! With [`SrtpPolicy::Optional`] or [`SrtpPolicy::Mandatory`], offers carry our `a=crypto`
//! keys ([RFC 4568]) and answers pick the first acceptable `a=crypto` line of an offer; the
//! [`Negotiated::srtp`] keys then go into a [`crate::srtp::SrtpSession`].
//!
//! [RFC 3264]: https://www.rfc-editor.org/rfc/rfc3264
//! [RFC 4566]: https://www.rfc-editor.org/rfc/rfc4566
//! [RFC 3551]: https://www.rfc-editor.org/rfc/rfc3551
//! [RFC 4568]: https://www.rfc-editor.org/rfc/rfc4568

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use tracing::debug;

use crate::codec::CodecKind;
use crate::srtp::CryptoAttribute;

/// The largest SDP body we look at, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// The most `m=` lines we accept in one description.
pub const MAX_MEDIA: usize = 64;
/// The most formats we accept on one `m=` line.
const MAX_FORMATS: usize = 128;
/// Our dynamic payload type for Opus.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Our dynamic payload type for RFC 4733 telephone events.
pub const DTMF_PAYLOAD_TYPE: u8 = 101;
/// The packet time we ask for and assume when the peer says nothing, in milliseconds.
pub const DEFAULT_PTIME_MS: u32 = 20;

/// Why an SDP body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not SDP, or a line we need is malformed.
    #[error("malformed SDP (line {line}): {reason}")]
    Malformed {
        /// The 1-based line number, or 0 for the whole body.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// There is no enabled `m=audio` stream over RTP (`RTP/AVP` or `RTP/AVPF`; also
    /// `RTP/SAVP` or `RTP/SAVPF` unless our [`SrtpPolicy`] is `Off`).
    #[error("no usable audio stream")]
    NoAudio,
    /// SRTP was offered or answered, but with no `a=crypto` line we can use: no supported
    /// suite, parameters we cannot honour, no key of ours for the suite, or an answer whose
    /// tag or suite is not one we offered (the caller answers 488).
    #[error("no acceptable a=crypto line")]
    NoAcceptableCrypto,
    /// Our policy is [`SrtpPolicy::Mandatory`] and the peer offers or answers plain RTP.
    #[error("SRTP is required but the peer does not offer it")]
    SrtpRequired,
    /// The audio stream has no codec we support (the caller answers 488).
    #[error("no codec in common")]
    NoCommonCodec,
    /// The answer rejected our audio stream (port 0).
    #[error("the audio stream was rejected")]
    Rejected,
    /// The connection address is not an IP literal (host names are not resolved here).
    #[error("unsupported connection address")]
    UnsupportedAddress,
    /// The offer uses another address family than our local address (RFC 6157 §3.1 wants
    /// the answer in the offer's family).
    #[error("the offer's address family differs from ours")]
    AddressFamily,
}

/// The direction of a media stream, from the point of view of whoever wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Send and receive (`a=sendrecv`, the default).
    #[default]
    SendRecv,
    /// Send only (`a=sendonly`), as when putting the peer on hold.
    SendOnly,
    /// Receive only (`a=recvonly`).
    RecvOnly,
    /// Neither (`a=inactive`).
    Inactive,
}

impl Direction {
    /// The direction seen from the other end: `sendonly` ↔ `recvonly`.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// What both directions allow.
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// Whether this direction includes sending.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this direction includes receiving.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The attribute name (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    fn from_attr(key: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(key))
    }
}

/// Whether a call uses SDES-SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP: offers carry no `a=crypto`; `RTP/SAVP` offers are refused and `a=crypto`
    /// lines in `RTP/AVP` offers are ignored.
    #[default]
    Off,
    /// "Best effort" SRTP: offers are `RTP/AVP` with our `a=crypto` lines, so peers without
    /// SRTP still answer in plain RTP (baresip's `mediaenc=srtp`). Offers with acceptable
    /// `a=crypto` (`RTP/AVP` or `RTP/SAVP`) are answered with SRTP, plain ones with RTP.
    Optional,
    /// SRTP only: offers are `RTP/SAVP` with our `a=crypto` lines (baresip's
    /// `mediaenc=srtp-mand`); plain offers and answers are refused
    /// ([`SdpError::SrtpRequired`]).
    Mandatory,
}

/// A codec with the payload type it is offered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecOffer {
    /// The codec.
    pub kind: CodecKind,
    /// Its RTP payload type.
    pub payload_type: u8,
}

/// What we put into an offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address we receive RTP on (written into `c=` and `o=`).
    pub address: IpAddr,
    /// Our RTP port; 0 offers a disabled stream.
    pub rtp_port: u16,
    /// Our RTCP port, normally `rtp_port + 1` (written as `a=rtcp`).
    pub rtcp_port: u16,
    /// The codecs we support, most preferred first. An empty list offers PCMU and PCMA.
    pub codecs: Vec<CodecKind>,
    /// Whether we offer/accept RFC 4733 telephone events.
    pub dtmf: bool,
    /// The direction we want (`SendOnly` to put the peer on hold).
    pub direction: Direction,
    /// The `o=` session id; keep it for the whole dialog.
    pub session_id: u64,
    /// The `o=` session version; increment it for every new offer or answer that changes.
    pub session_version: u64,
    /// Whether we offer/accept SDES-SRTP.
    pub srtp: SrtpPolicy,
    /// Our keys, one per suite we offer (tags 1, 2 … in preference order), made with
    /// [`CryptoAttribute::generate`]; unused when `srtp` is `Off`. An answer uses the key of
    /// the chosen suite under the offer's tag. Keep them for the dialog (re-offers repeat
    /// them) unless re-keying on purpose.
    pub crypto: Vec<CryptoAttribute>,
}

/// The outcome of an offer/answer exchange for the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec we send and expect.
    pub codec: CodecKind,
    /// The payload type used for it.
    pub payload_type: u8,
    /// The codec's `a=fmtp` parameters as the peer wrote them (e.g. Opus `useinbandfec=1`).
    pub fmtp: Option<String>,
    /// The telephone-event payload type, if both sides do RFC 4733.
    pub dtmf_payload_type: Option<u8>,
    /// The telephone-event clock rate (meaningful when `dtmf_payload_type` is set).
    pub dtmf_clock_rate: u32,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` if present, else the RTP port + 1.
    pub remote_rtcp: SocketAddr,
    /// OUR direction: whether we send and/or receive.
    pub direction: Direction,
    /// The packet time the peer wants to receive (`a=ptime`, default 20 ms).
    pub ptime_ms: u32,
    /// The peer put us on hold: it wrote `sendonly`/`inactive` or the legacy `c=0.0.0.0`.
    pub remote_hold: bool,
    /// SDES-SRTP keys if the stream is secured: (ours, for what we send; theirs, for what we
    /// receive), both under the negotiated tag. `None` is plain RTP. Boxed to keep
    /// `Negotiated` small for the common plain case.
    pub srtp: Option<Box<(CryptoAttribute, CryptoAttribute)>>,
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Our payload type for a codec: its static one (RFC 3551), or ours for Opus.
fn our_payload_type(kind: CodecKind) -> u8 {
    kind.static_payload_type().unwrap_or(OPUS_PAYLOAD_TYPE)
}

/// Our `a=rtpmap` value for a codec (`opus/48000/2`, `PCMU/8000`, …).
fn rtpmap(kind: CodecKind) -> String {
    let channels = if kind == CodecKind::Opus { "/2" } else { "" };
    format!(
        "{}/{}{}",
        kind.encoding_name(),
        kind.rtp_clock_rate(),
        channels
    )
}

fn addr_line(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("IN IP4 {a}"),
        IpAddr::V6(a) => format!("IN IP6 {a}"),
    }
}

/// Session-level lines, up to and including `t=`.
fn write_session(out: &mut String, local: &LocalMedia) {
    let addr = addr_line(local.address);
    let _ = write!(
        out,
        "v=0\r\no=- {} {} {addr}\r\ns=-\r\nc={addr}\r\nt=0 0\r\n",
        local.session_id, local.session_version
    );
}

/// One enabled audio stream with the given codecs (payload type, kind) and telephone-event
/// entries (payload type, clock rate).
fn write_audio(
    out: &mut String,
    local: &LocalMedia,
    proto: &str,
    codecs: &[(u8, CodecKind)],
    dtmf: &[(u8, u32)],
    direction: Direction,
    crypto: &[&CryptoAttribute],
) {
    let _ = write!(out, "m=audio {} {proto}", local.rtp_port);
    for (pt, _) in codecs {
        let _ = write!(out, " {pt}");
    }
    for (pt, _) in dtmf {
        let _ = write!(out, " {pt}");
    }
    out.push_str("\r\n");
    // No `a=fmtp` with `useinbandfec=1` for Opus (RFC 7587: it asks the *peer's* encoder for
    // in-band FEC; we decode FEC whenever it comes). linphone 5.1 answers it by coding FEC for a
    // fixed assumed loss on every call: linphone→krypton scored 3.65 with it and 4.34 without on
    // a clean path (PESQ, cli/tests/phone_linphone.rs). Our own encoder turns FEC on when RTCP
    // reports loss (engine), which is where the protection pays for its bits.
    for &(pt, kind) in codecs {
        let _ = write!(out, "a=rtpmap:{pt} {}\r\n", rtpmap(kind));
    }
    for (pt, rate) in dtmf {
        let _ = write!(
            out,
            "a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    let _ = write!(
        out,
        "a=rtcp:{}\r\na=ptime:{DEFAULT_PTIME_MS}\r\na={}\r\n",
        local.rtcp_port,
        direction.as_str()
    );
    for attr in crypto {
        let _ = write!(out, "a=crypto:{attr}\r\n");
    }
}

/// Writes our offer: one `m=audio` line over `RTP/AVP` with our codecs in preference order
/// (Opus as payload type 111, PCMU 0, PCMA 8, each with an `a=rtpmap`), when `local.dtmf`
/// telephone-event at the clock rate of each codec (101 for the first codec's rate, then 100,
/// 99 …) plus 8000 Hz, `a=rtcp`, `a=ptime:20` and the direction.
///
/// RFC 4733 §2.1 has the event clock rate match the audio codec's: linphone, for one, drops a
/// telephone-event/8000 offered next to Opus alone from its answer, so an Opus call needs
/// telephone-event/48000. The 8000 Hz entry stays for peers that only know that one (baresip).
///
/// With [`SrtpPolicy::Optional`] the profile stays `RTP/AVP` and every key of `local.crypto`
/// is offered as an `a=crypto` line; with [`SrtpPolicy::Mandatory`] the profile is
/// `RTP/SAVP`. The caller fills `local.crypto`: a `Mandatory` offer without keys is one no
/// peer can accept.
pub fn create_offer(local: &LocalMedia) -> String {
    let mut kinds = local.codecs.clone();
    if kinds.is_empty() {
        kinds = vec![CodecKind::Pcmu, CodecKind::Pcma];
    }
    let mut codecs: Vec<(u8, CodecKind)> = Vec::new();
    for kind in kinds {
        if !codecs.iter().any(|&(_, k)| k == kind) {
            codecs.push((our_payload_type(kind), kind));
        }
    }
    let mut out = String::with_capacity(512);
    write_session(&mut out, local);
    let mut dtmf: Vec<(u8, u32)> = Vec::new();
    if local.dtmf {
        let rates = codecs
            .iter()
            .map(|&(_, k)| k.rtp_clock_rate())
            .chain([8000]);
        for rate in rates {
            if !dtmf.iter().any(|&(_, r)| r == rate) {
                // 101, 100, 99 …: below the dynamic types of our codecs (111) and above the
                // static ones (0, 8).
                dtmf.push((DTMF_PAYLOAD_TYPE - dtmf.len() as u8, rate));
            }
        }
    }
    let (proto, crypto) = match local.srtp {
        SrtpPolicy::Off => ("RTP/AVP", Vec::new()),
        SrtpPolicy::Optional => ("RTP/AVP", local.crypto.iter().collect()),
        SrtpPolicy::Mandatory => ("RTP/SAVP", local.crypto.iter().collect()),
    };
    write_audio(
        &mut out,
        local,
        proto,
        &codecs,
        &dtmf,
        local.direction,
        &crypto,
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A `c=` line: the address if it is an IP literal.
#[derive(Debug, Clone, Copy)]
struct Connection {
    ip: Option<IpAddr>,
    ip6: bool,
}

#[derive(Debug, Default)]
struct Media {
    media: String,
    port: u16,
    proto: String,
    formats: Vec<String>,
    connection: Option<Connection>,
    attrs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Default)]
struct Description {
    connection: Option<Connection>,
    attrs: Vec<(String, Option<String>)>,
    media: Vec<Media>,
}

fn malformed(line: usize, reason: &'static str) -> SdpError {
    SdpError::Malformed { line, reason }
}

fn parse_connection(value: &str, line: usize) -> Result<Connection, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(net), Some(family), Some(addr)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(line, "c= needs three fields"));
    };
    if !net.eq_ignore_ascii_case("IN") {
        return Err(malformed(line, "c= network type is not IN"));
    }
    let ip6 = if family.eq_ignore_ascii_case("IP4") {
        false
    } else if family.eq_ignore_ascii_case("IP6") {
        true
    } else {
        return Err(malformed(line, "c= address type is not IP4/IP6"));
    };
    // Multicast addresses may carry /ttl/range; we only want the address.
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip = addr.parse::<IpAddr>().ok();
    Ok(Connection { ip, ip6 })
}

fn parse_media(value: &str, line: usize) -> Result<Media, SdpError> {
    let mut fields = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed(line, "m= needs media, port and proto"));
    };
    let printable = |t: &str| t.bytes().all(|b| b.is_ascii_graphic());
    if !printable(media) || !printable(proto) {
        return Err(malformed(line, "m= media or proto is not printable ASCII"));
    }
    let port = port.split('/').next().unwrap_or(port);
    let port: u16 = port
        .parse()
        .map_err(|_| malformed(line, "m= port is not a number"))?;
    let formats: Vec<String> = fields
        .filter(|f| printable(f))
        .take(MAX_FORMATS)
        .map(str::to_owned)
        .collect();
    Ok(Media {
        media: media.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        attrs: Vec::new(),
    })
}

fn parse(sdp: &str) -> Result<Description, SdpError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(malformed(0, "SDP too large"));
    }
    let mut desc = Description::default();
    let mut seen_version = false;
    for (index, raw) in sdp.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end_matches('\r').trim_end();
        if line.is_empty() {
            continue;
        }
        let bytes = line.as_bytes();
        let (Some(&kind), Some(b'=')) = (bytes.first(), bytes.get(1)) else {
            return Err(malformed(line_no, "not a <type>=<value> line"));
        };
        if !kind.is_ascii_alphabetic() {
            return Err(malformed(line_no, "not a <type>=<value> line"));
        }
        // Both bytes are ASCII, so index 2 is a char boundary.
        let value = line.get(2..).unwrap_or("").trim();
        if !seen_version {
            if kind != b'v' || value != "0" {
                return Err(malformed(line_no, "SDP must start with v=0"));
            }
            seen_version = true;
            continue;
        }
        match kind {
            b'm' => {
                if desc.media.len() >= MAX_MEDIA {
                    return Err(malformed(line_no, "too many m= lines"));
                }
                desc.media.push(parse_media(value, line_no)?);
            }
            b'c' => {
                let conn = parse_connection(value, line_no)?;
                match desc.media.last_mut() {
                    Some(m) => m.connection = Some(conn),
                    None => desc.connection = Some(conn),
                }
            }
            b'a' => {
                let (key, val) = match value.split_once(':') {
                    Some((k, v)) => (k.trim(), Some(v.trim().to_owned())),
                    None => (value, None),
                };
                let attr = (key.to_owned(), val);
                match desc.media.last_mut() {
                    Some(m) => m.attrs.push(attr),
                    None => desc.attrs.push(attr),
                }
            }
            // o=, s=, t=, b=, i=, k=, … and unknown letters: not needed, ignored.
            _ => {}
        }
    }
    if !seen_version {
        return Err(malformed(0, "empty SDP"));
    }
    Ok(desc)
}

/// A format as described by `a=rtpmap` or the static table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    pt: u8,
    name: String,
    clock_rate: u32,
}

/// Static payload types of RFC 3551 that we can recognise without `a=rtpmap`.
fn static_format(pt: u8) -> Option<(&'static str, u32)> {
    match pt {
        0 => Some(("PCMU", 8000)),
        3 => Some(("GSM", 8000)),
        8 => Some(("PCMA", 8000)),
        9 => Some(("G722", 8000)),
        18 => Some(("G729", 8000)),
        _ => None,
    }
}

impl Media {
    fn attr_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attrs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .filter_map(|(_, v)| v.as_deref())
    }

    /// The formats of this `m=` line in order, with their rtpmap (or static) description.
    fn formats(&self) -> Vec<Format> {
        let mut out = Vec::new();
        for f in &self.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            if pt > 127 {
                continue;
            }
            let mapped = self.attr_values("rtpmap").find_map(|v| {
                let (p, rest) = v.split_once(char::is_whitespace)?;
                if p.trim().parse::<u8>().ok()? != pt {
                    return None;
                }
                let mut parts = rest.trim().split('/');
                let name = parts.next()?.trim();
                let rate = parts.next()?.trim().parse::<u32>().ok()?;
                Some((name.to_owned(), rate))
            });
            let (name, clock_rate) = match mapped {
                Some(m) => m,
                None => match static_format(pt) {
                    Some((n, r)) => (n.to_owned(), r),
                    None => continue,
                },
            };
            out.push(Format {
                pt,
                name,
                clock_rate,
            });
        }
        out
    }

    fn fmtp(&self, pt: u8) -> Option<String> {
        self.attr_values("fmtp").find_map(|v| {
            let (p, rest) = v.split_once(char::is_whitespace)?;
            (p.trim().parse::<u8>().ok()? == pt).then(|| rest.trim().to_owned())
        })
    }

    /// An enabled audio stream over RTP, plain or secure.
    fn is_rtp_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
            && self.port != 0
            && ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
                .iter()
                .any(|p| self.proto.eq_ignore_ascii_case(p))
    }

    /// `RTP/SAVP` or `RTP/SAVPF`: SRTP required by the profile.
    fn is_secure(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// The first `a=crypto` line of this offer we can use, with our key for its suite under
    /// its tag: (ours, theirs).
    fn pick_crypto(&self, local: &LocalMedia) -> Option<Box<(CryptoAttribute, CryptoAttribute)>> {
        self.attr_values("crypto").find_map(|value| {
            let theirs = match CryptoAttribute::parse(value) {
                Ok(attr) => attr,
                Err(e) => {
                    debug!(%e, "SDP offer: a=crypto line skipped");
                    return None;
                }
            };
            let ours = local.crypto.iter().find(|c| c.suite == theirs.suite)?;
            Some(Box::new((ours.with_tag(theirs.tag), theirs)))
        })
    }
}

fn format_kind(f: &Format) -> Option<CodecKind> {
    let kind = CodecKind::from_name(&f.name)?;
    (kind.rtp_clock_rate() == f.clock_rate).then_some(kind)
}

/// The telephone-event format to use with a codec of `clock_rate`: the one with the same
/// rate if offered, else 8000 Hz, else the first.
fn pick_dtmf(formats: &[Format], clock_rate: u32) -> Option<(u8, u32)> {
    let events: Vec<&Format> = formats
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("telephone-event"))
        .collect();
    events
        .iter()
        .find(|f| f.clock_rate == clock_rate)
        .or_else(|| events.iter().find(|f| f.clock_rate == 8000))
        .or_else(|| events.first())
        .map(|f| (f.pt, f.clock_rate))
}

/// Remote RTP/RTCP addresses, direction and hold state of one media section.
struct Remote {
    rtp: SocketAddr,
    rtcp: SocketAddr,
    direction: Direction,
    hold: bool,
    ptime_ms: u32,
}

fn remote_of(desc: &Description, m: &Media) -> Result<Remote, SdpError> {
    let conn = m
        .connection
        .or(desc.connection)
        .ok_or(malformed(0, "no c= line for the audio stream"))?;
    let ip = conn.ip.ok_or(SdpError::UnsupportedAddress)?;
    if ip.is_ipv6() != conn.ip6 {
        // "IN IP6 1.2.3.4" and "IN IP4 ::1" are nonsense.
        return Err(SdpError::UnsupportedAddress);
    }
    let rtp = SocketAddr::new(ip, m.port);
    // a=rtcp (RFC 3605) if it parses, else the RTP port + 1 (RFC 3550 §11). A broken
    // a=rtcp is ignored rather than failing the call.
    let explicit = m.attr_values("rtcp").next().and_then(|v| {
        let mut fields = v.split_ascii_whitespace();
        let port: u16 = fields.next()?.parse().ok().filter(|&p| p != 0)?;
        let addr = match (fields.next(), fields.next(), fields.next()) {
            (Some(_), Some(_), Some(a)) => a.parse::<IpAddr>().unwrap_or(ip),
            _ => ip,
        };
        Some(SocketAddr::new(addr, port))
    });
    let rtcp = match explicit {
        Some(a) => a,
        None => SocketAddr::new(
            ip,
            m.port
                .checked_add(1)
                .ok_or(malformed(0, "RTP port 65535 leaves no RTCP port"))?,
        ),
    };
    let direction = m
        .attrs
        .iter()
        .rev()
        .find_map(|(k, _)| Direction::from_attr(k))
        .or_else(|| {
            desc.attrs
                .iter()
                .rev()
                .find_map(|(k, _)| Direction::from_attr(k))
        })
        .unwrap_or_default();
    let zero_addr = ip.is_unspecified();
    let hold = zero_addr || !direction.receives();
    let ptime_ms = m
        .attr_values("ptime")
        .next()
        .or_else(|| {
            desc.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("ptime"))
                .and_then(|(_, v)| v.as_deref())
        })
        .and_then(|v| v.trim().parse::<f32>().ok())
        .filter(|p| p.is_finite())
        .map(|p| (p.round() as u32).clamp(10, 120))
        .unwrap_or(DEFAULT_PTIME_MS);
    // Legacy hold (RFC 3264 §8.4): never send to 0.0.0.0.
    let direction = if zero_addr {
        direction.intersect(Direction::SendOnly)
    } else {
        direction
    };
    Ok(Remote {
        rtp,
        rtcp,
        direction,
        hold,
        ptime_ms,
    })
}

/// Answers a remote offer.
///
/// The first enabled `m=audio` stream over RTP that has a codec in common (and is acceptable
/// for SRTP, below) is used;
/// every other `m=` line is answered with port 0. The codec is the first of OUR preference
/// that the offer contains, under the offer's payload type number (RFC 3264 §6.1); static
/// payload types 0 and 8 are recognised without `a=rtpmap`, encoding names case-insensitively.
/// Telephone-event is answered with the offer's payload type. Our direction is the reverse of
/// the offered one intersected with `local.direction`.
///
/// SRTP (RFC 4568 §7.1.2): with [`SrtpPolicy::Off`], `RTP/SAVP(F)` streams are answered
/// with port 0 and `a=crypto` in `RTP/AVP` offers is ignored. Otherwise the first `a=crypto`
/// line of the stream that parses, is supported and has a suite we hold a key for in
/// `local.crypto` is answered with the same tag and suite and our key, in the offer's
/// profile. An `RTP/SAVP(F)` stream without such a line, or a plain one under
/// [`SrtpPolicy::Mandatory`], is not acceptable.
///
/// Errors: [`SdpError::NoCommonCodec`] (the caller answers 488), [`SdpError::NoAudio`],
/// [`SdpError::NoAcceptableCrypto`], [`SdpError::SrtpRequired`] (488 as well),
/// [`SdpError::AddressFamily`], [`SdpError::UnsupportedAddress`], [`SdpError::Malformed`].
pub fn answer_offer(offer: &str, local: &LocalMedia) -> Result<(String, Negotiated), SdpError> {
    let desc = parse(offer)?;
    let mut wanted = local.codecs.clone();
    if wanted.is_empty() {
        wanted = vec![CodecKind::Pcmu, CodecKind::Pcma];
    }
    let mut saw_audio = false;
    let (mut crypto_refused, mut plain_refused) = (false, false);
    let mut chosen: Option<(usize, u8, CodecKind, Option<_>)> = None;
    for (index, m) in desc.media.iter().enumerate() {
        if !m.is_rtp_audio() || (m.is_secure() && local.srtp == SrtpPolicy::Off) {
            continue;
        }
        saw_audio = true;
        let formats = m.formats();
        let Some((payload_type, codec)) = wanted.iter().find_map(|&kind| {
            formats
                .iter()
                .find(|f| format_kind(f) == Some(kind))
                .map(|f| (f.pt, kind))
        }) else {
            continue;
        };
        let srtp = match local.srtp {
            SrtpPolicy::Off => None,
            _ => m.pick_crypto(local),
        };
        if srtp.is_none() && m.is_secure() {
            crypto_refused = true;
            continue;
        }
        if srtp.is_none() && local.srtp == SrtpPolicy::Mandatory {
            plain_refused = true;
            continue;
        }
        chosen = Some((index, payload_type, codec, srtp));
        break;
    }
    let Some((index, payload_type, codec, srtp)) = chosen else {
        debug!(
            saw_audio,
            crypto_refused, plain_refused, "SDP offer: nothing to answer"
        );
        return Err(if crypto_refused {
            SdpError::NoAcceptableCrypto
        } else if plain_refused {
            SdpError::SrtpRequired
        } else if saw_audio {
            SdpError::NoCommonCodec
        } else {
            SdpError::NoAudio
        });
    };
    let media = desc.media.get(index).ok_or(SdpError::NoAudio)?;
    let remote = remote_of(&desc, media)?;
    if remote.rtp.is_ipv6() != local.address.is_ipv6() {
        return Err(SdpError::AddressFamily);
    }
    let formats = media.formats();
    let dtmf = if local.dtmf {
        pick_dtmf(&formats, codec.rtp_clock_rate())
    } else {
        None
    };
    let our_direction = remote.direction.reverse().intersect(local.direction);

    let mut out = String::with_capacity(512);
    write_session(&mut out, local);
    for (i, m) in desc.media.iter().enumerate() {
        if i == index {
            write_audio(
                &mut out,
                local,
                &media.proto,
                &[(payload_type, codec)],
                dtmf.as_slice(),
                our_direction,
                &srtp.iter().map(|keys| &keys.0).collect::<Vec<_>>(),
            );
        } else {
            let format = m.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(out, "m={} 0 {} {format}\r\n", m.media, m.proto);
        }
    }
    let negotiated = Negotiated {
        codec,
        payload_type,
        fmtp: media.fmtp(payload_type),
        dtmf_payload_type: dtmf.map(|d| d.0),
        dtmf_clock_rate: dtmf.map_or(8000, |d| d.1),
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        direction: our_direction,
        ptime_ms: remote.ptime_ms,
        remote_hold: remote.hold,
        srtp,
    };
    debug!(?negotiated, "SDP offer answered");
    Ok((out, negotiated))
}

/// The SRTP keys of an answer to our offer: its `a=crypto` line must carry the tag and suite
/// of one we offered (RFC 4568 §7.1.3 / §7.5).
fn answered_crypto(
    media: &Media,
    offered: &LocalMedia,
) -> Result<Option<Box<(CryptoAttribute, CryptoAttribute)>>, SdpError> {
    let ours: &[CryptoAttribute] = match offered.srtp {
        SrtpPolicy::Off => &[],
        _ => &offered.crypto,
    };
    let mut lines = media.attr_values("crypto").peekable();
    if lines.peek().is_none() {
        return if media.is_secure() {
            Err(SdpError::NoAcceptableCrypto)
        } else if offered.srtp == SrtpPolicy::Mandatory {
            Err(SdpError::SrtpRequired)
        } else {
            Ok(None)
        };
    }
    lines
        .find_map(|value| {
            let theirs = CryptoAttribute::parse(value).ok()?;
            let ours = ours
                .iter()
                .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)?;
            Some(Box::new((ours.clone(), theirs)))
        })
        .map(Some)
        .ok_or(SdpError::NoAcceptableCrypto)
}

/// Reads the answer to the offer we made from `offered`.
///
/// The answer's first `m=audio` line is our stream; port 0 there is [`SdpError::Rejected`].
/// The codec is the first format of the answer that we offered, under the answer's payload
/// type; telephone-event is used if we offered it and the answer has it. Our direction is the
/// reverse of the answered one intersected with what we offered.
///
/// SRTP: an `a=crypto` line in the answer must have the tag and suite of one we offered
/// ([`SdpError::NoAcceptableCrypto`] otherwise, also for `RTP/SAVP` without one); a plain
/// answer to a [`SrtpPolicy::Mandatory`] offer is [`SdpError::SrtpRequired`].
pub fn apply_answer(answer: &str, offered: &LocalMedia) -> Result<Negotiated, SdpError> {
    let desc = parse(answer)?;
    let media = desc
        .media
        .iter()
        .find(|m| m.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudio)?;
    if media.port == 0 {
        return Err(SdpError::Rejected);
    }
    if !media.is_rtp_audio() {
        return Err(SdpError::NoAudio);
    }
    let srtp = answered_crypto(media, offered)?;
    let mut ours = offered.codecs.clone();
    if ours.is_empty() {
        ours = vec![CodecKind::Pcmu, CodecKind::Pcma];
    }
    let formats = media.formats();
    let (payload_type, codec) = formats
        .iter()
        .find_map(|f| {
            let kind = format_kind(f)?;
            ours.contains(&kind).then_some((f.pt, kind))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let remote = remote_of(&desc, media)?;
    let dtmf = if offered.dtmf {
        pick_dtmf(&formats, codec.rtp_clock_rate())
    } else {
        None
    };
    let negotiated = Negotiated {
        codec,
        payload_type,
        fmtp: media.fmtp(payload_type),
        dtmf_payload_type: dtmf.map(|d| d.0),
        dtmf_clock_rate: dtmf.map_or(8000, |d| d.1),
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        direction: remote.direction.reverse().intersect(offered.direction),
        ptime_ms: remote.ptime_ms,
        remote_hold: remote.hold,
        srtp,
    };
    debug!(?negotiated, "SDP answer applied");
    Ok(negotiated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::{CryptoSuite, SrtpSession};
    use crate::test_rng::XorShift;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const BARESIP: &str = "v=0\r\n\
o=- 2039286497 1063693891 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 9410 RTP/AVP 111 0 8 101\r\n\
b=AS:96\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 stereo=1;sprop-stereo=1;maxaveragebitrate=32000;useinbandfec=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:9411\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:3117391337 cname:ce4cd2e1-46b3-4a36-8aa5-5b7e7e3fe5c1\r\n\
a=ptime:20\r\n";

    const LINPHONE: &str = "v=0\r\n\
o=alice 2787 1563 IN IP4 10.0.0.5\r\n\
s=Talk\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp:7079\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n\
a=record:off\r\n";

    /// A terse offer with static payload types only and no a=rtpmap (RFC 3551 allows it).
    const PCMU_ONLY: &str = "v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=call\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";

    /// Kamailio/rtpengine-style: media-level c=, no t= line, LF line ends, session-level
    /// direction overridden at media level.
    const PROXIED: &str = "v=0\no=- 3 4 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\na=sendonly\nm=audio 30000 RTP/AVP 8 0 101\nc=IN IP4 198.51.100.77\na=rtpmap:101 telephone-event/8000\na=sendrecv\n";

    fn local(codecs: Vec<CodecKind>) -> LocalMedia {
        LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            rtp_port: 4000,
            rtcp_port: 4001,
            codecs,
            dtmf: true,
            direction: Direction::SendRecv,
            session_id: 42,
            session_version: 7,
            srtp: SrtpPolicy::Off,
            crypto: Vec::new(),
        }
    }

    /// baresip 1.0 with `;mediaenc=srtp`: best-effort SRTP, `RTP/AVP` with one a=crypto line.
    const BARESIP_SRTP: &str = "v=0\r\n\
o=- 1649108798 1466416777 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 16152 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:1920129174 cname:sip:a@127.0.0.1:25060\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP\r\n\
a=minptime:20\r\n\
a=ptime:20\r\n";

    /// baresip 1.0's answer with `;mediaenc=srtp-mand` (`RTP/SAVP`, a=crypto last).
    const BARESIP_SRTP_MAND_ANSWER: &str = "v=0\r\n\
o=- 3426512224 1810768208 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 16170 RTP/SAVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:3479087016 cname:sip:b@127.0.0.1:25070\r\n\
a=minptime:20\r\n\
a=ptime:20\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:HaFguv9qrprrj/ODeguMAwvbFOIX6v+I1lQIoBUv\r\n";

    fn key(tag: u32, suite: CryptoSuite, fill: u8) -> CryptoAttribute {
        CryptoAttribute::new(tag, suite, [fill; 30])
    }

    /// `local` with SRTP: keys for both suites (tag 1: _80, tag 2: _32).
    fn secure(codecs: Vec<CodecKind>, srtp: SrtpPolicy, fill: u8) -> LocalMedia {
        let mut l = local(codecs);
        l.srtp = srtp;
        l.crypto = vec![
            key(1, CryptoSuite::AesCm128HmacSha1_80, fill),
            key(2, CryptoSuite::AesCm128HmacSha1_32, fill.wrapping_add(1)),
        ];
        l
    }

    fn crypto_lines(sdp: &str) -> Vec<&str> {
        lines(sdp)
            .into_iter()
            .filter(|l| l.starts_with("a=crypto:"))
            .collect()
    }

    fn strict_parse(sdp: &str) -> rtc_sdp::SessionDescription {
        rtc_sdp::SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes()))
            .expect("rtc-sdp accepts our SDP")
    }

    fn lines(sdp: &str) -> Vec<&str> {
        sdp.split("\r\n").filter(|l| !l.is_empty()).collect()
    }

    #[test]
    fn offer_lists_codecs_in_preference_order_with_rtpmaps() {
        let sdp = create_offer(&local(vec![
            CodecKind::Opus,
            CodecKind::Pcmu,
            CodecKind::Pcma,
        ]));
        assert_eq!(
            lines(&sdp),
            vec![
                "v=0",
                "o=- 42 7 IN IP4 192.0.2.10",
                "s=-",
                "c=IN IP4 192.0.2.10",
                "t=0 0",
                "m=audio 4000 RTP/AVP 111 0 8 101 100",
                "a=rtpmap:111 opus/48000/2",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/48000",
                "a=fmtp:101 0-16",
                "a=rtpmap:100 telephone-event/8000",
                "a=fmtp:100 0-16",
                "a=rtcp:4001",
                "a=ptime:20",
                "a=sendrecv",
            ]
        );
        assert!(sdp.ends_with("\r\n"));
        let parsed = strict_parse(&sdp);
        assert_eq!(parsed.media_descriptions.len(), 1);
    }

    #[test]
    fn opus_offer_has_telephone_event_at_48000_and_8000() {
        let offer = create_offer(&local(vec![CodecKind::Opus]));
        assert!(
            offer.contains("m=audio 4000 RTP/AVP 111 101 100\r\n"),
            "{offer}"
        );
        assert!(
            offer.contains("a=rtpmap:101 telephone-event/48000\r\n"),
            "{offer}"
        );
        assert!(
            offer.contains("a=rtpmap:100 telephone-event/8000\r\n"),
            "{offer}"
        );
        strict_parse(&offer);
        // PCMU alone: one entry, as before.
        let offer = create_offer(&local(vec![CodecKind::Pcmu]));
        assert!(offer.contains("m=audio 4000 RTP/AVP 0 101\r\n"), "{offer}");
        assert!(
            offer.contains("a=rtpmap:101 telephone-event/8000\r\n"),
            "{offer}"
        );

        // linphone 5.1 answers an Opus offer with the event rate that matches Opus only (it
        // dropped a lone telephone-event/8000, leaving us without RFC 4733 DTMF).
        let linphone = "v=0\r\no=linphone 103 2707 IN IP4 127.0.0.1\r\ns=Talk\r\n\
                        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 16334 RTP/AVP 111 101\r\n\
                        a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
                        a=rtpmap:101 telephone-event/48000\r\n";
        let n = apply_answer(linphone, &local(vec![CodecKind::Opus])).unwrap();
        assert_eq!((n.dtmf_payload_type, n.dtmf_clock_rate), (Some(101), 48000));
        // baresip 1.0 answers with its only rate, 8000.
        let baresip = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                       t=0 0\r\nm=audio 16100 RTP/AVP 111 100\r\na=rtpmap:111 opus/48000/2\r\n\
                       a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n";
        let n = apply_answer(baresip, &local(vec![CodecKind::Opus])).unwrap();
        assert_eq!((n.dtmf_payload_type, n.dtmf_clock_rate), (Some(100), 8000));
    }

    #[test]
    fn offer_hold_ipv6_and_empty_codec_list() {
        let mut l = local(vec![]);
        l.address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        l.direction = Direction::SendOnly;
        l.dtmf = false;
        let sdp = create_offer(&l);
        assert!(sdp.contains("c=IN IP6 2001:db8::1\r\n"), "{sdp}");
        assert!(sdp.contains("m=audio 4000 RTP/AVP 0 8\r\n"), "{sdp}");
        assert!(sdp.contains("a=sendonly\r\n"));
        assert!(!sdp.contains("telephone-event"));
        strict_parse(&sdp);
    }

    #[test]
    fn answers_baresip_with_opus_keeping_its_payload_types() {
        let (answer, n) =
            answer_offer(BARESIP, &local(vec![CodecKind::Opus, CodecKind::Pcmu])).expect("answer");
        assert_eq!(n.codec, CodecKind::Opus);
        assert_eq!(n.payload_type, 111);
        assert_eq!(
            n.fmtp.as_deref(),
            Some("stereo=1;sprop-stereo=1;maxaveragebitrate=32000;useinbandfec=1")
        );
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.dtmf_clock_rate, 8000);
        assert_eq!(n.remote_rtp, "192.168.1.20:9410".parse().unwrap());
        assert_eq!(n.remote_rtcp, "192.168.1.20:9411".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        assert_eq!(n.ptime_ms, 20);
        assert!(!n.remote_hold);
        assert!(
            answer.contains("m=audio 4000 RTP/AVP 111 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(answer.contains("a=sendrecv\r\n"));
        assert_eq!(strict_parse(&answer).media_descriptions.len(), 1);
    }

    #[test]
    fn our_preference_wins_over_the_offer_order() {
        let (answer, n) =
            answer_offer(BARESIP, &local(vec![CodecKind::Pcma, CodecKind::Opus])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Pcma, 8));
        assert!(
            answer.contains("m=audio 4000 RTP/AVP 8 101\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn answers_linphone_with_static_types_and_matching_event_rate() {
        let (answer, n) = answer_offer(LINPHONE, &local(vec![CodecKind::Opus])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
        assert_eq!((n.dtmf_payload_type, n.dtmf_clock_rate), (Some(101), 48000));
        assert_eq!(n.remote_rtcp, "10.0.0.5:7079".parse().unwrap());
        assert!(
            answer.contains("m=audio 4000 RTP/AVP 96 101\r\n"),
            "{answer}"
        );

        // PCMU is offered as a bare "0" (no rtpmap); telephone-event/8000 goes with it.
        let (answer, n) = answer_offer(LINPHONE, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Pcmu, 0));
        assert_eq!((n.dtmf_payload_type, n.dtmf_clock_rate), (Some(100), 8000));
        assert!(
            answer.contains("m=audio 4000 RTP/AVP 0 100\r\n"),
            "{answer}"
        );
        strict_parse(&answer);
    }

    #[test]
    fn accepts_static_payload_type_without_rtpmap() {
        let (answer, n) =
            answer_offer(PCMU_ONLY, &local(vec![CodecKind::Opus, CodecKind::Pcmu])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Pcmu, 0));
        assert_eq!(n.dtmf_payload_type, None, "no telephone-event offered");
        assert_eq!(n.remote_rtp, "203.0.113.9:5004".parse().unwrap());
        assert_eq!(n.remote_rtcp, "203.0.113.9:5005".parse().unwrap());
        assert!(answer.contains("m=audio 4000 RTP/AVP 0\r\n"), "{answer}");
        assert!(answer.contains("a=rtpmap:0 PCMU/8000\r\n"));
    }

    #[test]
    fn no_common_codec_is_an_error() {
        assert_eq!(
            answer_offer(PCMU_ONLY, &local(vec![CodecKind::Opus])).unwrap_err(),
            SdpError::NoCommonCodec
        );
        // opus at the wrong clock rate is not opus.
        let offer = PCMU_ONLY.replace("RTP/AVP 0\r\n", "RTP/AVP 96\r\na=rtpmap:96 opus/8000\r\n");
        assert_eq!(
            answer_offer(&offer, &local(vec![CodecKind::Opus])).unwrap_err(),
            SdpError::NoCommonCodec
        );
    }

    #[test]
    fn encoding_names_are_case_insensitive() {
        let offer = PCMU_ONLY.replace(
            "RTP/AVP 0\r\n",
            "RTP/AVP 97 8\r\na=rtpmap:97 OPUS/48000/2\r\na=rtpmap:8 pcma/8000\r\n",
        );
        let (_, n) = answer_offer(&offer, &local(vec![CodecKind::Opus])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 97));
        let (_, n) = answer_offer(&offer, &local(vec![CodecKind::Pcma])).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Pcma, 8));
    }

    #[test]
    fn hold_offers_are_answered_with_the_reverse_direction() {
        let sendonly = BARESIP.replace("a=sendrecv", "a=sendonly");
        let (answer, n) = answer_offer(&sendonly, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote_hold);
        assert!(answer.contains("a=recvonly\r\n"), "{answer}");

        let inactive = BARESIP.replace("a=sendrecv", "a=inactive");
        let (answer, n) = answer_offer(&inactive, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert!(n.remote_hold);
        assert!(answer.contains("a=inactive\r\n"));

        // Legacy RFC 2543 hold: c=0.0.0.0 with sendrecv: we must not send to 0.0.0.0.
        let legacy = BARESIP.replace("c=IN IP4 192.168.1.20", "c=IN IP4 0.0.0.0");
        let (answer, n) = answer_offer(&legacy, &local(vec![CodecKind::Pcmu])).unwrap();
        assert!(n.remote_hold);
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(answer.contains("a=recvonly\r\n"));

        // recvonly from them (they answer our hold) is not a hold by them.
        let recvonly = BARESIP.replace("a=sendrecv", "a=recvonly");
        let (_, n) = answer_offer(&recvonly, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        assert!(!n.remote_hold);

        // Our own hold: we only send.
        let mut l = local(vec![CodecKind::Pcmu]);
        l.direction = Direction::SendOnly;
        let (answer, n) = answer_offer(BARESIP, &l).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        assert!(answer.contains("a=sendonly\r\n"));
    }

    #[test]
    fn media_level_connection_and_direction_override_session_level() {
        let (answer, n) = answer_offer(PROXIED, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.remote_rtp, "198.51.100.77:30000".parse().unwrap());
        assert_eq!(n.direction, Direction::SendRecv);
        assert!(!n.remote_hold);
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.dtmf_payload_type, Some(101));
        strict_parse(&answer);
        // Without the media-level a=sendrecv, the session-level a=sendonly applies.
        let session_hold = PROXIED.replace("a=sendrecv\n", "");
        let (_, n) = answer_offer(&session_hold, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote_hold);
    }

    #[test]
    fn rtcp_attribute_with_address_and_ptime() {
        let offer = PCMU_ONLY.replace(
            "RTP/AVP 0\r\n",
            "RTP/AVP 0\r\na=rtcp:6000 IN IP4 203.0.113.50\r\na=ptime:30\r\n",
        );
        let (_, n) = answer_offer(&offer, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.remote_rtcp, "203.0.113.50:6000".parse().unwrap());
        assert_eq!(n.ptime_ms, 30);
        // A broken a=rtcp falls back to port + 1; a silly ptime is clamped.
        let broken = offer
            .replace("a=rtcp:6000 IN IP4 203.0.113.50", "a=rtcp:x")
            .replace("ptime:30", "ptime:5000");
        let (_, n) = answer_offer(&broken, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.remote_rtcp, "203.0.113.9:5005".parse().unwrap());
        assert_eq!(n.ptime_ms, 120);
    }

    #[test]
    fn other_streams_are_rejected_with_port_zero() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n\
m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 5008 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
m=audio 5010 RTP/AVP 8 0\r\n\
m=audio 5012 RTP/AVP 0\r\n";
        let (answer, n) = answer_offer(offer, &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(n.remote_rtp, "10.1.1.1:5010".parse().unwrap());
        assert_eq!(n.payload_type, 0);
        let m_lines: Vec<&str> = lines(&answer)
            .into_iter()
            .filter(|l| l.starts_with("m="))
            .collect();
        assert_eq!(
            m_lines,
            vec![
                "m=video 0 RTP/AVP 96",
                "m=audio 0 RTP/SAVP 0",
                "m=audio 4000 RTP/AVP 0",
                "m=audio 0 RTP/AVP 0",
            ]
        );
        assert_eq!(strict_parse(&answer).media_descriptions.len(), 4);
    }

    #[test]
    fn disabled_or_missing_audio_is_no_audio() {
        let disabled = PCMU_ONLY.replace("m=audio 5004", "m=audio 0");
        assert_eq!(
            answer_offer(&disabled, &local(vec![CodecKind::Pcmu])).unwrap_err(),
            SdpError::NoAudio
        );
        let srtp_only = PCMU_ONLY.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(
            answer_offer(&srtp_only, &local(vec![CodecKind::Pcmu])).unwrap_err(),
            SdpError::NoAudio
        );
    }

    #[test]
    fn ipv6_offers() {
        let offer = PCMU_ONLY.replace("IN IP4 203.0.113.9", "IN IP6 2001:db8::9");
        let mut l = local(vec![CodecKind::Pcmu]);
        assert_eq!(
            answer_offer(&offer, &l).unwrap_err(),
            SdpError::AddressFamily
        );
        l.address = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
        let (answer, n) = answer_offer(&offer, &l).unwrap();
        assert_eq!(n.remote_rtp, "[2001:db8::9]:5004".parse().unwrap());
        assert!(answer.contains("c=IN IP6 2001:db8::2\r\n"));
        // A host name cannot be used without a resolver.
        let named = PCMU_ONLY.replace("c=IN IP4 203.0.113.9", "c=IN IP4 media.example.com");
        assert_eq!(
            answer_offer(&named, &local(vec![CodecKind::Pcmu])).unwrap_err(),
            SdpError::UnsupportedAddress
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "hello world",
            "v=1\r\n",
            "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",
            "v=0\r\nm=audio\r\n",
            "v=0\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4\r\nm=audio 1 RTP/AVP 0\r\n",
            "v=0\r\nc=XX IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n",
            "v=0\r\n=x\r\n",
            "v=0\r\n\u{1F600}=x\r\n",
        ] {
            assert!(
                matches!(
                    answer_offer(bad, &local(vec![CodecKind::Pcmu])),
                    Err(SdpError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        // No c= anywhere.
        assert!(matches!(
            answer_offer(
                "v=0\r\nm=audio 1 RTP/AVP 0\r\n",
                &local(vec![CodecKind::Pcmu])
            ),
            Err(SdpError::Malformed { .. })
        ));
        assert!(matches!(
            answer_offer(&"v=0\r\n".repeat(20_000), &local(vec![CodecKind::Pcmu])),
            Err(SdpError::Malformed { line: 0, .. })
        ));
    }

    #[test]
    fn offer_answer_round_trip() {
        let alice = local(vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma]);
        let mut bob = local(vec![CodecKind::Pcma, CodecKind::Pcmu]);
        bob.address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));
        bob.rtp_port = 7000;
        bob.rtcp_port = 7001;
        let offer = create_offer(&alice);
        let (answer, at_bob) = answer_offer(&offer, &bob).unwrap();
        let at_alice = apply_answer(&answer, &alice).unwrap();
        assert_eq!((at_bob.codec, at_bob.payload_type), (CodecKind::Pcma, 8));
        assert_eq!(
            (at_alice.codec, at_alice.payload_type),
            (CodecKind::Pcma, 8)
        );
        // PCMA won: the 8000 Hz telephone-event (100) goes with it, on both sides.
        assert_eq!(
            (at_bob.dtmf_payload_type, at_bob.dtmf_clock_rate),
            (Some(DTMF_PAYLOAD_TYPE - 1), 8000)
        );
        assert_eq!(
            (at_alice.dtmf_payload_type, at_alice.dtmf_clock_rate),
            (Some(DTMF_PAYLOAD_TYPE - 1), 8000)
        );
        assert_eq!(at_alice.remote_rtp, "192.0.2.20:7000".parse().unwrap());
        assert_eq!(at_alice.remote_rtcp, "192.0.2.20:7001".parse().unwrap());
        assert_eq!(at_bob.remote_rtp, "192.0.2.10:4000".parse().unwrap());
        assert_eq!(at_alice.direction, Direction::SendRecv);

        // Alice holds; Bob answers recvonly; Alice only sends and is not held herself.
        let mut held = alice.clone();
        held.direction = Direction::SendOnly;
        held.session_version += 1;
        let (answer, at_bob) = answer_offer(&create_offer(&held), &bob).unwrap();
        assert!(at_bob.remote_hold);
        assert_eq!(at_bob.direction, Direction::RecvOnly);
        let at_alice = apply_answer(&answer, &held).unwrap();
        assert_eq!(at_alice.direction, Direction::SendOnly);
        assert!(!at_alice.remote_hold);
    }

    #[test]
    fn apply_answer_cases() {
        let offered = local(vec![CodecKind::Opus, CodecKind::Pcmu]);
        let rejected = PCMU_ONLY.replace("m=audio 5004", "m=audio 0");
        assert_eq!(
            apply_answer(&rejected, &offered).unwrap_err(),
            SdpError::Rejected
        );
        let n = apply_answer(PCMU_ONLY, &offered).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Pcmu, 0, None)
        );
        let pcma = PCMU_ONLY.replace("RTP/AVP 0", "RTP/AVP 8");
        assert_eq!(
            apply_answer(&pcma, &offered).unwrap_err(),
            SdpError::NoCommonCodec,
            "PCMA was not offered"
        );
        // An answer that uses another PT number for a codec we offered: use theirs.
        let renumbered = PCMU_ONLY.replace(
            "RTP/AVP 0\r\n",
            "RTP/AVP 98 96\r\na=rtpmap:98 opus/48000/2\r\na=rtpmap:96 telephone-event/8000\r\na=inactive\r\n",
        );
        let n = apply_answer(&renumbered, &offered).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (CodecKind::Opus, 98, Some(96))
        );
        assert_eq!(n.direction, Direction::Inactive);
        assert!(n.remote_hold);
    }

    #[test]
    fn srtp_offers_carry_our_keys_in_the_policy_profile() {
        let mut l = secure(vec![CodecKind::Pcmu], SrtpPolicy::Optional, 7);
        let offer = create_offer(&l);
        assert!(offer.contains("m=audio 4000 RTP/AVP 0 101\r\n"), "{offer}");
        assert_eq!(
            crypto_lines(&offer),
            vec![
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH",
                "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI",
            ]
        );
        strict_parse(&offer);
        l.srtp = SrtpPolicy::Mandatory;
        let offer = create_offer(&l);
        assert!(offer.contains("m=audio 4000 RTP/SAVP 0 101\r\n"), "{offer}");
        assert_eq!(crypto_lines(&offer).len(), 2);
        strict_parse(&offer);
        l.srtp = SrtpPolicy::Off;
        let offer = create_offer(&l);
        assert!(offer.contains("RTP/AVP"));
        assert!(crypto_lines(&offer).is_empty(), "{offer}");
    }

    #[test]
    fn answers_baresip_best_effort_srtp() {
        for policy in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
            let l = secure(vec![CodecKind::Pcmu], policy, 7);
            let (answer, n) = answer_offer(BARESIP_SRTP, &l).unwrap();
            assert!(
                answer.contains("m=audio 4000 RTP/AVP 0 101\r\n"),
                "{answer}"
            );
            assert_eq!(
                crypto_lines(&answer),
                vec![
                    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
                ]
            );
            let (ours, theirs) = *n.srtp.clone().expect("SRTP negotiated");
            assert_eq!(ours, key(1, CryptoSuite::AesCm128HmacSha1_80, 7));
            assert_eq!(
                theirs.to_string(),
                "1 AES_CM_128_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP"
            );
            assert_eq!(n.remote_rtp, "127.0.0.1:16152".parse().unwrap());
            SrtpSession::new(&ours, &theirs).unwrap();
            strict_parse(&answer);
            // The keys never show in the logs' Debug output.
            assert!(!format!("{n:?}").contains("zphGkHZRa0iz"));
        }
        // Without SRTP we answer in plain RTP and baresip falls back to it.
        let (answer, n) = answer_offer(BARESIP_SRTP, &local(vec![CodecKind::Pcmu])).unwrap();
        assert!(
            answer.contains("m=audio 4000 RTP/AVP 0 101\r\n"),
            "{answer}"
        );
        assert!(crypto_lines(&answer).is_empty());
        assert_eq!(n.srtp, None);
        // Plain offers: plain answer when optional, refused when mandatory.
        let (_, n) = answer_offer(
            BARESIP,
            &secure(vec![CodecKind::Pcmu], SrtpPolicy::Optional, 7),
        )
        .unwrap();
        assert_eq!(n.srtp, None);
        assert_eq!(
            answer_offer(
                BARESIP,
                &secure(vec![CodecKind::Pcmu], SrtpPolicy::Mandatory, 7)
            )
            .unwrap_err(),
            SdpError::SrtpRequired
        );
    }

    #[test]
    fn answers_savp_offers_only_with_acceptable_crypto() {
        let savp = BARESIP_SRTP.replace("RTP/AVP", "RTP/SAVP");
        let l = secure(vec![CodecKind::Pcmu], SrtpPolicy::Optional, 7);
        let (answer, n) = answer_offer(&savp, &l).unwrap();
        assert!(
            answer.contains("m=audio 4000 RTP/SAVP 0 101\r\n"),
            "{answer}"
        );
        assert_eq!(n.srtp.unwrap().0.tag, 1);
        strict_parse(&answer);
        // SRTP off: the secure stream is refused.
        assert_eq!(
            answer_offer(&savp, &local(vec![CodecKind::Pcmu])).unwrap_err(),
            SdpError::NoAudio
        );
        // Nothing but suites or parameters we cannot honour.
        let crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP\r\n";
        for unusable in [
            "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjPzphGkHZRa0iz+zLy9mz7TQ==\r\n",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP UNENCRYPTED_SRTP\r\n",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n",
            "",
        ] {
            let offer = savp.replace(crypto, unusable);
            assert_eq!(
                answer_offer(&offer, &l).unwrap_err(),
                SdpError::NoAcceptableCrypto,
                "{unusable}"
            );
            // In a best-effort (RTP/AVP) offer the same lines just mean plain RTP.
            let offer = BARESIP_SRTP.replace(crypto, unusable);
            assert_eq!(answer_offer(&offer, &l).unwrap().1.srtp, None);
        }
        // The first acceptable line wins; its tag and suite are answered with our key.
        let offer = savp.replace(
            crypto,
            "a=crypto:1 AEAD_AES_256_GCM inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjPzphGkHZRa0iz+w==\r\n\
             a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP|2^31\r\n\
             a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP\r\n",
        );
        let (answer, n) = answer_offer(&offer, &l).unwrap();
        assert_eq!(
            crypto_lines(&answer),
            vec![
                "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"
            ]
        );
        let (ours, theirs) = *n.srtp.unwrap();
        assert_eq!(
            (ours.tag, ours.suite),
            (5, CryptoSuite::AesCm128HmacSha1_32)
        );
        assert_eq!(
            theirs.to_string(),
            "5 AES_CM_128_HMAC_SHA1_32 inline:zphGkHZRa0iz+zLy9mz7TSTWYZPAgefFUMjudOjP|2^31"
        );
        // No key of ours for the offered suite.
        let mut only_80 = l.clone();
        only_80.crypto.truncate(1);
        let offer_32 = savp.replace("SHA1_80", "SHA1_32");
        assert_eq!(
            answer_offer(&offer_32, &only_80).unwrap_err(),
            SdpError::NoAcceptableCrypto
        );
        // A plain stream next to a refused secure one is taken (the secure one gets port 0).
        let two = format!("{}m=audio 5000 RTP/AVP 0\r\n", offer_32);
        let (answer, n) = answer_offer(&two, &only_80).unwrap();
        assert_eq!(n.srtp, None);
        assert_eq!(n.remote_rtp, "127.0.0.1:5000".parse().unwrap());
        assert!(answer.contains("m=audio 0 RTP/SAVP 0\r\n"), "{answer}");
    }

    #[test]
    fn srtp_offer_answer_round_trip_secures_both_directions() {
        for policy in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
            let alice = secure(vec![CodecKind::Opus, CodecKind::Pcmu], policy, 1);
            let bob = secure(vec![CodecKind::Pcmu], policy, 50);
            let offer = create_offer(&alice);
            let (answer, at_bob) = answer_offer(&offer, &bob).unwrap();
            let at_alice = apply_answer(&answer, &alice).unwrap();
            let (a_ours, a_theirs) = *at_alice.srtp.clone().unwrap();
            let (b_ours, b_theirs) = *at_bob.srtp.clone().unwrap();
            assert_eq!(
                (a_ours.tag, a_ours.suite),
                (1, CryptoSuite::AesCm128HmacSha1_80)
            );
            assert_eq!(a_ours, b_theirs);
            assert_eq!(b_ours, a_theirs);
            let mut a = SrtpSession::new(&a_ours, &a_theirs).unwrap();
            let mut b = SrtpSession::new(&b_ours, &b_theirs).unwrap();
            let packet = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0xff, 0xfe];
            assert_eq!(
                b.unprotect_rtp(&a.protect_rtp(&packet).unwrap()).unwrap(),
                packet
            );
            assert_eq!(
                a.unprotect_rtp(&b.protect_rtp(&packet).unwrap()).unwrap(),
                packet
            );
        }
        // Best effort towards a peer without SRTP: a plain answer is plain RTP.
        let alice = secure(vec![CodecKind::Pcmu], SrtpPolicy::Optional, 1);
        let (answer, _) =
            answer_offer(&create_offer(&alice), &local(vec![CodecKind::Pcmu])).unwrap();
        assert_eq!(apply_answer(&answer, &alice).unwrap().srtp, None);
    }

    #[test]
    fn apply_answer_checks_the_crypto_tag_and_suite() {
        let mut ours = secure(vec![CodecKind::Pcmu], SrtpPolicy::Mandatory, 1);
        ours.crypto[0] = CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, [9; 30]);
        // baresip's srtp-mand answer to our offer (its tag 1 is our AES_CM_128_HMAC_SHA1_80).
        let n = apply_answer(BARESIP_SRTP_MAND_ANSWER, &ours).unwrap();
        let (mine, theirs) = *n.srtp.unwrap();
        assert_eq!(mine, ours.crypto[0]);
        assert_eq!(theirs.tag, 1);
        assert_eq!(n.remote_rtp, "127.0.0.1:16170".parse().unwrap());

        for (answer, want) in [
            // A tag we never offered.
            (BARESIP_SRTP_MAND_ANSWER.replace("crypto:1", "crypto:3"), SdpError::NoAcceptableCrypto),
            // Our tag 1 was _80, not _32.
            (BARESIP_SRTP_MAND_ANSWER.replace("SHA1_80", "SHA1_32"), SdpError::NoAcceptableCrypto),
            (BARESIP_SRTP_MAND_ANSWER.replace("inline:", "inline:x"), SdpError::NoAcceptableCrypto),
            // RTP/SAVP without a key.
            (
                BARESIP_SRTP_MAND_ANSWER
                    .replace("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:HaFguv9qrprrj/ODeguMAwvbFOIX6v+I1lQIoBUv\r\n", ""),
                SdpError::NoAcceptableCrypto,
            ),
            // Plain RTP to our mandatory offer.
            (BARESIP.to_owned(), SdpError::SrtpRequired),
        ] {
            assert_eq!(apply_answer(&answer, &ours).unwrap_err(), want, "{answer}");
        }
        // Plain RTP to our best-effort offer is fine.
        ours.srtp = SrtpPolicy::Optional;
        assert_eq!(apply_answer(BARESIP, &ours).unwrap().srtp, None);
        // Keys in an answer to an offer without any are an error, not silently ignored.
        ours.srtp = SrtpPolicy::Off;
        let avp_with_key = BARESIP_SRTP_MAND_ANSWER.replace("RTP/SAVP", "RTP/AVP");
        assert_eq!(
            apply_answer(&avp_with_key, &ours).unwrap_err(),
            SdpError::NoAcceptableCrypto
        );
    }

    #[test]
    fn direction_algebra() {
        use Direction::*;
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(d.reverse().reverse(), d);
            assert_eq!(d.intersect(SendRecv), d);
            assert_eq!(d.intersect(Inactive), Inactive);
        }
        assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
        assert_eq!(SendOnly.reverse(), RecvOnly);
    }

    #[test]
    fn random_and_mutated_sdp_never_panics() {
        let mut rng = XorShift(0x5eed_05d9_u64);
        let plain = local(vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma]);
        let best_effort = secure(
            vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma],
            SrtpPolicy::Optional,
            3,
        );
        let samples = [
            BARESIP,
            LINPHONE,
            PCMU_ONLY,
            PROXIED,
            BARESIP_SRTP,
            BARESIP_SRTP_MAND_ANSWER,
        ];
        let tokens: [&[u8]; 15] = [
            b"\r\n",
            b"=",
            b":",
            b"/",
            b" ",
            b"0",
            b"65535",
            b"m=audio ",
            b"a=rtpmap:",
            b"c=IN IP6 ",
            b"\xff",
            b"a=rtcp:",
            b"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:",
            b"|2^31|1:4",
            b"RTP/SAVP",
        ];
        let mut ok = 0;
        for i in 0..20_000 {
            let mut bytes: Vec<u8> = if i % 10 == 0 {
                (0..rng.below(300)).map(|_| rng.next() as u8).collect()
            } else {
                samples[rng.below(samples.len())].as_bytes().to_vec()
            };
            for _ in 0..1 + rng.below(6) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(5) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes.truncate(at),
                    2 => {
                        let t = tokens[rng.below(tokens.len())];
                        bytes.splice(at..at, t.iter().copied());
                    }
                    3 => {
                        let end = (at + rng.below(40)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        let end = (at + rng.below(60)).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let l = if i % 2 == 0 { &plain } else { &best_effort };
            if let Ok((answer, n)) = answer_offer(&text, l) {
                ok += 1;
                // Whatever we answer is again something we can read, with the same keys.
                if let Ok(again) = apply_answer(&answer, l)
                    && let Some((ours, _)) = n.srtp.as_deref()
                {
                    assert!(l.crypto.iter().any(|c| c.key_salt() == ours.key_salt()));
                    assert!(again.srtp.is_some() || !answer.contains("a=crypto"));
                }
            }
            let _ = apply_answer(&text, l);
        }
        assert!(ok > 1000, "mutations should often stay answerable ({ok})");
    }
}
