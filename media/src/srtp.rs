//! SDES-SRTP: `a=crypto` attributes ([RFC 4568]) and SRTP/SRTCP protection ([RFC 3711]).
//!
//! [`CryptoAttribute`] is one `a=crypto` line: parsed from what follows `a=crypto:`, written
//! back with [`Display`](fmt::Display), or generated with fresh random keys. [`SrtpSession`]
//! protects what we send with our key and unprotects what we receive with the peer's key,
//! with replay protection on for both RTP and RTCP.
//!
//! The cipher work is done by `rtc-srtp` (ring provider). What this module adds on top:
//!
//! - the `a=crypto` grammar, including lifetimes, a single master key index (MKI, which
//!   `rtc-srtp` does not know: we splice it in and out next to the authentication tag) and
//!   session parameters. Attributes we cannot honour are rejected as RFC 4568 §6.3 wants:
//!   several master keys, `KDR`, `UNENCRYPTED_SRTP`/`UNENCRYPTED_SRTCP`/`UNAUTHENTICATED_SRTP`,
//!   `FEC_KEY`, and any unknown session parameter not prefixed with `-`;
//! - replay protection (a 128-packet window, wider if the peer's `WSH` asks for it; off by
//!   default in `rtc-srtp`);
//! - key lifetimes: a key is not used past its `lifetime` ([`SrtpError::KeyExpired`]);
//! - a guard against per-SSRC state growth: `rtc-srtp` creates state for every SSRC it sees,
//!   authenticated or not, so a stream of forged packets with random SSRCs would grow memory
//!   without bound. A packet from an SSRC not yet authenticated is first checked by a
//!   separate, regularly rebuilt context and only reaches the long-lived one once genuine.
//!
//! Nothing here panics on input; every failure is an [`SrtpError`].
//!
//! [RFC 4568]: https://www.rfc-editor.org/rfc/rfc4568
//! [RFC 3711]: https://www.rfc-editor.org/rfc/rfc3711

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore};
use rtc_shared::error::Error as RtcError;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::{RTCCryptoProvider, constant_time_eq, default_provider};
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use zeroize::Zeroizing;

/// The length of the `inline:` key material of our suites: a 16-byte master key followed by
/// a 14-byte master salt.
pub const KEY_SALT_LEN: usize = 30;
/// The replay window we use when the peer does not ask for a wider one (as libsrtp).
pub const REPLAY_WINDOW: usize = 128;
/// The widest replay window a peer's `WSH` can ask for.
const MAX_REPLAY_WINDOW: usize = 4096;
/// The largest `tag` of RFC 4568's grammar (`1*9DIGIT`).
const MAX_TAG: u32 = 999_999_999;
/// The longest MKI RFC 4568 allows, in bytes.
const MAX_MKI_LEN: u8 = 128;
/// SRTP keys may protect at most 2^48 packets (RFC 3711 §9.2).
const MAX_SRTP_PACKETS: u64 = 1 << 48;
/// SRTCP keys may protect at most 2^31 packets (RFC 3711 §9.2).
const MAX_SRTCP_PACKETS: u64 = 1 << 31;
/// The most remote SSRCs we keep SRTP/SRTCP state for.
pub const MAX_REMOTE_SSRCS: usize = 64;
/// How many unauthenticated SSRCs the probe context may collect before it is rebuilt.
const PROBE_REBUILD: usize = 256;
/// The SRTCP authentication tag is 80 bits for both suites (RFC 4568 §6.2).
const SRTCP_AUTH_TAG_LEN: usize = 10;

/// Why an `a=crypto` attribute or an SRTP packet could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The `a=crypto` value does not follow RFC 4568's grammar.
    #[error("malformed a=crypto: {0}")]
    Malformed(&'static str),
    /// The crypto suite is well-formed but not one we do (e.g. `AES_256_CM_HMAC_SHA1_80`).
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// The attribute asks for something we cannot honour (RFC 4568 §6.3: the attribute is
    /// then invalid), such as several master keys or `UNENCRYPTED_SRTP`.
    #[error("unsupported a=crypto parameter: {0}")]
    Unsupported(&'static str),
    /// Our key and the peer's are for different suites.
    #[error("local and remote crypto suites differ")]
    SuiteMismatch,
    /// No secure random numbers for a key.
    #[error("no random numbers for an SRTP key")]
    Random,
    /// `rtc-srtp` refused to build a context.
    #[error("SRTP context: {0}")]
    Context(String),
    /// The packet is not RTP/RTCP or is too short to carry what SRTP/SRTCP needs.
    #[error("invalid SRTP/SRTCP packet")]
    InvalidPacket,
    /// The authentication tag does not match: tampered, or another key.
    #[error("SRTP/SRTCP authentication failed")]
    Authentication,
    /// The packet was already received (or is older than the replay window).
    #[error("replayed SRTP/SRTCP packet")]
    Replay,
    /// The packet's MKI is not the one of the peer's key.
    #[error("unknown SRTP master key index")]
    UnknownMki,
    /// The key has protected as many packets as its lifetime allows; new keys are needed
    /// (a re-INVITE).
    #[error("SRTP key lifetime exceeded")]
    KeyExpired,
    /// Packets from more than [`MAX_REMOTE_SSRCS`] sources.
    #[error("too many SRTP sources")]
    TooManySsrcs,
}

/// An SRTP crypto suite of RFC 4568 §6.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit authentication tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: as above with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Every suite we support, most preferred first.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of that name (ASCII case-insensitive), if we support it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The length of the SRTP authentication tag, in bytes.
    pub fn rtp_auth_tag_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
        }
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key lifetime (`|2^31` or `|1048576`): how many packets the key may protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLifetime {
    /// Written as `2^n`.
    PowerOfTwo(u8),
    /// Written as a plain packet count.
    Packets(u64),
}

impl KeyLifetime {
    /// The number of packets.
    pub fn packets(self) -> u64 {
        match self {
            KeyLifetime::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
            KeyLifetime::Packets(n) => n,
        }
    }

    fn parse(s: &str) -> Result<Self, SrtpError> {
        let lifetime = match s.strip_prefix("2^") {
            Some(exp) => KeyLifetime::PowerOfTwo(
                digits(exp, 2)
                    .and_then(|e| u8::try_from(e).ok())
                    .ok_or(SrtpError::Malformed("lifetime"))?,
            ),
            None => KeyLifetime::Packets(digits(s, 20).ok_or(SrtpError::Malformed("lifetime"))?),
        };
        // RFC 4568 §6.1: at most 2^48 packets for SRTP; a lifetime of 0 is meaningless.
        if lifetime.packets() == 0 || lifetime.packets() > MAX_SRTP_PACKETS {
            return Err(SrtpError::Malformed("lifetime out of range"));
        }
        Ok(lifetime)
    }
}

impl fmt::Display for KeyLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLifetime::PowerOfTwo(n) => write!(f, "2^{n}"),
            KeyLifetime::Packets(n) => write!(f, "{n}"),
        }
    }
}

/// A master key index (`|1:4`): its value and its length on the wire in bytes (1–128).
///
/// Every SRTP/SRTCP packet then carries the value, big-endian in `length` bytes, between
/// the (encrypted) payload and the authentication tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    /// The index.
    pub value: u64,
    /// Its length in packets, in bytes.
    pub length: u8,
}

impl Mki {
    /// The MKI as it appears in packets.
    pub fn to_bytes(self) -> Vec<u8> {
        let len = usize::from(self.length);
        let mut out = vec![0u8; len];
        let be = self.value.to_be_bytes();
        let n = len.min(be.len());
        if let (Some(dst), Some(src)) = (out.get_mut(len - n..), be.get(be.len() - n..)) {
            dst.copy_from_slice(src);
        }
        out
    }

    fn parse(s: &str) -> Result<Self, SrtpError> {
        let (value, length) = s.split_once(':').ok_or(SrtpError::Malformed("MKI"))?;
        let value = digits(value, 20).ok_or(SrtpError::Malformed("MKI value"))?;
        let length = digits(length, 3)
            .and_then(|l| u8::try_from(l).ok())
            .filter(|l| (1..=MAX_MKI_LEN).contains(l))
            .ok_or(SrtpError::Malformed("MKI length"))?;
        // The value must fit into `length` bytes.
        if length < 8 && value >> (8 * u32::from(length)) != 0 {
            return Err(SrtpError::Malformed("MKI value does not fit its length"));
        }
        Ok(Mki { value, length })
    }
}

impl fmt::Display for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.value, self.length)
    }
}

/// At most `max` ASCII digits as a number.
fn digits(s: &str, max: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One `a=crypto` attribute of RFC 4568 for SRTP with an inline key.
///
/// The key material is zeroized on drop, and `Debug` never shows it. [`Display`](fmt::Display)
/// writes the attribute value (what follows `a=crypto:`), key included, for an SDP body.
#[derive(Clone)]
pub struct CryptoAttribute {
    /// The tag that answers refer to (0–999999999).
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// The master key lifetime, if the attribute states one.
    pub lifetime: Option<KeyLifetime>,
    /// The master key index, if packets carry one.
    pub mki: Option<Mki>,
    key_salt: Zeroizing<[u8; KEY_SALT_LEN]>,
    /// Session parameters we accept and write back as they came (`WSH=…`, `FEC_ORDER=…`,
    /// `-…`).
    session_params: Vec<String>,
}

impl CryptoAttribute {
    /// An attribute with this key material (master key ‖ master salt) and nothing else.
    pub fn new(tag: u32, suite: CryptoSuite, key_salt: [u8; KEY_SALT_LEN]) -> Self {
        CryptoAttribute {
            tag: tag.min(MAX_TAG),
            suite,
            lifetime: None,
            mki: None,
            key_salt: Zeroizing::new(key_salt),
            session_params: Vec::new(),
        }
    }

    /// A fresh random key (from the operating system's generator) for `suite`.
    pub fn generate(tag: u32, suite: CryptoSuite) -> Result<Self, SrtpError> {
        let mut attr = Self::new(tag, suite, [0; KEY_SALT_LEN]);
        OsRng
            .try_fill_bytes(&mut attr.key_salt[..])
            .map_err(|_| SrtpError::Random)?;
        Ok(attr)
    }

    /// The same key under another tag (to answer an offer's tag with our key).
    pub fn with_tag(&self, tag: u32) -> Self {
        let mut attr = self.clone();
        attr.tag = tag.min(MAX_TAG);
        attr
    }

    /// The master key ‖ master salt.
    pub fn key_salt(&self) -> &[u8; KEY_SALT_LEN] {
        &self.key_salt
    }

    /// The session parameters, as written.
    pub fn session_params(&self) -> &[String] {
        &self.session_params
    }

    /// The window size hint (`WSH=`, RFC 4568 §6.3.5), if present.
    pub fn window_size_hint(&self) -> Option<u64> {
        self.session_params
            .iter()
            .find_map(|p| p.strip_prefix("WSH=").and_then(|v| digits(v, 10)))
    }

    /// Parses an attribute value: what follows `a=crypto:`, e.g.
    /// `1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4`.
    ///
    /// Errors: [`SrtpError::Malformed`] for a value that breaks the grammar,
    /// [`SrtpError::UnsupportedSuite`] for a suite other than `AES_CM_128_HMAC_SHA1_80/32`,
    /// [`SrtpError::Unsupported`] for parameters we cannot honour.
    pub fn parse(value: &str) -> Result<Self, SrtpError> {
        let mut fields = value.split_ascii_whitespace();
        let (Some(tag), Some(suite), Some(key_params)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(SrtpError::Malformed("needs tag, suite and key parameters"));
        };
        let tag = digits(tag, 9)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or(SrtpError::Malformed("tag"))?;
        if !suite
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(SrtpError::Malformed("suite"));
        }
        let suite = CryptoSuite::from_name(suite).ok_or_else(|| {
            SrtpError::UnsupportedSuite(suite.chars().take(64).collect::<String>())
        })?;
        if key_params.contains(';') {
            return Err(SrtpError::Unsupported("several master keys"));
        }
        let (method, info) = key_params
            .split_once(':')
            .ok_or(SrtpError::Malformed("key parameter"))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(SrtpError::Unsupported("key method other than inline"));
        }
        let mut parts = info.split('|');
        let key = parts.next().unwrap_or("");
        let mut key_salt = Zeroizing::new([0u8; KEY_SALT_LEN]);
        // 30 bytes are exactly 40 base64 characters, without padding.
        if key.len() != 40 {
            return Err(SrtpError::Malformed("key||salt is not 30 bytes"));
        }
        match STANDARD.decode_slice(key, &mut key_salt[..]) {
            Ok(KEY_SALT_LEN) => {}
            _ => return Err(SrtpError::Malformed("key||salt is not 30 bytes of base64")),
        }
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            // lifetime and MKI are told apart by the ':' of the MKI (RFC 4568 §9.2).
            if part.contains(':') {
                if mki.is_some() {
                    return Err(SrtpError::Malformed("two MKIs"));
                }
                mki = Some(Mki::parse(part)?);
            } else {
                if lifetime.is_some() || mki.is_some() {
                    return Err(SrtpError::Malformed("lifetime out of place"));
                }
                lifetime = Some(KeyLifetime::parse(part)?);
            }
        }
        let mut session_params = Vec::new();
        for param in fields {
            session_params.push(check_session_param(param)?.to_owned());
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            lifetime,
            mki,
            key_salt,
            session_params,
        })
    }
}

/// Accepts a session parameter we can honour (RFC 4568 §6.3), or says why not.
fn check_session_param(param: &str) -> Result<&str, SrtpError> {
    if !param.bytes().all(|b| b.is_ascii_graphic()) || param.len() > 256 {
        return Err(SrtpError::Malformed("session parameter"));
    }
    let name = param.split('=').next().unwrap_or(param);
    match name {
        "WSH" => {
            // The window size hint is at least 64 (RFC 4568 §6.3.5).
            let ok = param
                .strip_prefix("WSH=")
                .and_then(|v| digits(v, 10))
                .is_some_and(|w| w >= 64);
            if ok {
                Ok(param)
            } else {
                Err(SrtpError::Malformed("WSH"))
            }
        }
        // We do no RFC 2733 FEC, so the order of FEC and SRTP does not matter.
        "FEC_ORDER" => match param.strip_prefix("FEC_ORDER=") {
            Some("FEC_SRTP" | "SRTP_FEC") => Ok(param),
            _ => Err(SrtpError::Malformed("FEC_ORDER")),
        },
        "KDR" => Err(SrtpError::Unsupported("KDR (key derivation rate)")),
        "UNENCRYPTED_SRTP" => Err(SrtpError::Unsupported("UNENCRYPTED_SRTP")),
        "UNENCRYPTED_SRTCP" => Err(SrtpError::Unsupported("UNENCRYPTED_SRTCP")),
        "UNAUTHENTICATED_SRTP" => Err(SrtpError::Unsupported("UNAUTHENTICATED_SRTP")),
        "FEC_KEY" => Err(SrtpError::Unsupported("FEC_KEY")),
        // A '-' marks an optional extension we may ignore (RFC 4568 §6.3.7).
        _ if param.len() > 1 && param.starts_with('-') => Ok(param),
        _ => Err(SrtpError::Unsupported(
            "unknown mandatory session parameter",
        )),
    }
}

impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b64 = Zeroizing::new([0u8; 40]);
        let key = match STANDARD.encode_slice(&self.key_salt[..], &mut b64[..]) {
            Ok(40) => std::str::from_utf8(&b64[..]).map_err(|_| fmt::Error)?,
            _ => return Err(fmt::Error),
        };
        write!(f, "{} {} inline:{key}", self.tag, self.suite)?;
        if let Some(lifetime) = self.lifetime {
            write!(f, "|{lifetime}")?;
        }
        if let Some(mki) = self.mki {
            write!(f, "|{mki}")?;
        }
        for param in &self.session_params {
            write!(f, " {param}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_salt", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .field("session_params", &self.session_params)
            .finish()
    }
}

impl PartialEq for CryptoAttribute {
    fn eq(&self, other: &Self) -> bool {
        // The key last, in constant time.
        self.tag == other.tag
            && self.suite == other.suite
            && self.lifetime == other.lifetime
            && self.mki == other.mki
            && self.session_params == other.session_params
            && constant_time_eq(&self.key_salt[..], &other.key_salt[..])
    }
}

impl Eq for CryptoAttribute {}

// ---------------------------------------------------------------------------------------------
// The session

/// SRTP and SRTCP for one call: what we send is protected with our key, what we receive is
/// checked and decrypted with the peer's key. Replay protection is on both ways.
///
/// Sans-IO: it takes and returns packets and never reads a clock.
pub struct SrtpSession {
    suite: CryptoSuite,
    provider: Arc<dyn RTCCryptoProvider>,
    outbound_key: Zeroizing<[u8; KEY_SALT_LEN]>,
    remote_key: Zeroizing<[u8; KEY_SALT_LEN]>,
    replay_window: usize,
    outbound: Context,
    inbound: Context,
    /// Checks packets from SSRCs not yet authenticated, so that forgeries never create state
    /// in `inbound`; rebuilt after [`PROBE_REBUILD`] uses.
    probe: Context,
    probe_uses: usize,
    rtp_sources: HashSet<u32>,
    rtcp_sources: HashSet<u32>,
    local_mki: Option<Vec<u8>>,
    remote_mki: Option<Vec<u8>>,
    local_limit: u64,
    remote_limit: u64,
    sent_rtp: u64,
    sent_rtcp: u64,
    received_rtp: u64,
    received_rtcp: u64,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("replay_window", &self.replay_window)
            .field("sent_rtp", &self.sent_rtp)
            .field("sent_rtcp", &self.sent_rtcp)
            .field("received_rtp", &self.received_rtp)
            .field("received_rtcp", &self.received_rtcp)
            .finish_non_exhaustive()
    }
}

fn map_rtc(e: RtcError) -> SrtpError {
    match e {
        RtcError::SrtpSsrcDuplicated(..) | RtcError::SrtcpSsrcDuplicated(..) => SrtpError::Replay,
        RtcError::RtpFailedToVerifyAuthTag
        | RtcError::RtcpFailedToVerifyAuthTag
        | RtcError::ErrFailedToVerifyAuthTag => SrtpError::Authentication,
        RtcError::ErrExceededMaxPackets => SrtpError::KeyExpired,
        _ => SrtpError::InvalidPacket,
    }
}

impl SrtpSession {
    /// A session that sends with `local` (our `a=crypto`) and receives with `remote` (the
    /// peer's). Both must be for the same suite (RFC 4568 §7.1.2: the answer echoes it).
    pub fn new(local: &CryptoAttribute, remote: &CryptoAttribute) -> Result<Self, SrtpError> {
        if local.suite != remote.suite {
            return Err(SrtpError::SuiteMismatch);
        }
        let provider = default_provider().map_err(|e| SrtpError::Context(e.to_string()))?;
        let replay_window = remote
            .window_size_hint()
            .and_then(|w| usize::try_from(w).ok())
            .map_or(REPLAY_WINDOW, |w| w.clamp(REPLAY_WINDOW, MAX_REPLAY_WINDOW));
        let suite = local.suite;
        let outbound = context(&provider, suite, &local.key_salt, None)?;
        let inbound = context(&provider, suite, &remote.key_salt, Some(replay_window))?;
        let probe = context(&provider, suite, &remote.key_salt, None)?;
        let limit = |a: &CryptoAttribute| a.lifetime.map_or(u64::MAX, KeyLifetime::packets);
        Ok(SrtpSession {
            suite,
            replay_window,
            outbound,
            inbound,
            probe,
            probe_uses: 0,
            outbound_key: local.key_salt.clone(),
            remote_key: remote.key_salt.clone(),
            provider,
            rtp_sources: HashSet::new(),
            rtcp_sources: HashSet::new(),
            local_mki: local.mki.map(Mki::to_bytes),
            remote_mki: remote.mki.map(Mki::to_bytes),
            local_limit: limit(local),
            remote_limit: limit(remote),
            sent_rtp: 0,
            sent_rtcp: 0,
            received_rtp: 0,
            received_rtcp: 0,
        })
    }

    /// Takes the keys of a new offer/answer (a re-INVITE) without losing the state of a
    /// direction whose key stayed the same: its rollover counter and replay window carry on,
    /// as the peer's do. A direction with a new key starts afresh.
    ///
    /// Errors as [`Self::new`]; on error the session is unchanged.
    pub fn rekey(
        &mut self,
        local: &CryptoAttribute,
        remote: &CryptoAttribute,
    ) -> Result<(), SrtpError> {
        if local.suite != remote.suite {
            return Err(SrtpError::SuiteMismatch);
        }
        if local.suite != self.suite {
            *self = Self::new(local, remote)?;
            return Ok(());
        }
        let fresh = Self::new(local, remote)?;
        let local_mki = local.mki.map(Mki::to_bytes);
        let remote_mki = remote.mki.map(Mki::to_bytes);
        let limit = |a: &CryptoAttribute| a.lifetime.map_or(u64::MAX, KeyLifetime::packets);
        if !constant_time_eq(&self.outbound_key[..], &local.key_salt[..])
            || self.local_mki != local_mki
        {
            self.outbound = fresh.outbound;
            self.outbound_key = fresh.outbound_key;
            self.local_mki = local_mki;
            self.sent_rtp = 0;
            self.sent_rtcp = 0;
        }
        self.local_limit = limit(local);
        if !constant_time_eq(&self.remote_key[..], &remote.key_salt[..])
            || self.remote_mki != remote_mki
            || self.replay_window != fresh.replay_window
        {
            self.inbound = fresh.inbound;
            self.probe = fresh.probe;
            self.probe_uses = 0;
            self.remote_key = fresh.remote_key;
            self.remote_mki = remote_mki;
            self.replay_window = fresh.replay_window;
            self.rtp_sources.clear();
            self.rtcp_sources.clear();
            self.received_rtp = 0;
            self.received_rtcp = 0;
        }
        self.remote_limit = limit(remote);
        Ok(())
    }

    /// The negotiated suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The replay window used for received packets.
    pub fn replay_window(&self) -> usize {
        self.replay_window
    }

    /// Bytes SRTP adds to an RTP packet (tag and MKI).
    pub fn rtp_overhead(&self) -> usize {
        self.suite.rtp_auth_tag_len() + self.local_mki.as_ref().map_or(0, Vec::len)
    }

    /// Encrypts and authenticates an RTP packet of ours.
    ///
    /// Errors: [`SrtpError::InvalidPacket`] if it is not RTP, [`SrtpError::KeyExpired`] after
    /// the key's lifetime.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if self.sent_rtp >= self.local_limit.min(MAX_SRTP_PACKETS) {
            return Err(SrtpError::KeyExpired);
        }
        rtp_ssrc(packet)?;
        let out = self.outbound.encrypt_rtp(packet).map_err(map_rtc)?;
        self.sent_rtp += 1;
        Ok(insert_mki(
            &out,
            self.local_mki.as_deref(),
            self.suite.rtp_auth_tag_len(),
        ))
    }

    /// Checks and decrypts a received SRTP packet.
    ///
    /// Errors: [`SrtpError::Authentication`] (tampered or another key),
    /// [`SrtpError::Replay`], [`SrtpError::InvalidPacket`], [`SrtpError::UnknownMki`],
    /// [`SrtpError::KeyExpired`], [`SrtpError::TooManySsrcs`].
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if self.received_rtp >= self.remote_limit.min(MAX_SRTP_PACKETS) {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = rtp_ssrc(packet)?;
        let tag_len = self.suite.rtp_auth_tag_len();
        let packet = strip_mki(packet, self.remote_mki.as_deref(), tag_len)?;
        if !self.rtp_sources.contains(&ssrc) {
            if self.rtp_sources.len() >= MAX_REMOTE_SSRCS {
                return Err(SrtpError::TooManySsrcs);
            }
            self.probe()?.decrypt_rtp(&packet).map_err(map_rtc)?;
            self.rtp_sources.insert(ssrc);
        }
        let out = self.inbound.decrypt_rtp(&packet).map_err(map_rtc)?;
        self.received_rtp += 1;
        Ok(out.to_vec())
    }

    /// Encrypts and authenticates an RTCP (compound) packet of ours.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if self.sent_rtcp >= self.local_limit.min(MAX_SRTCP_PACKETS - 1) {
            return Err(SrtpError::KeyExpired);
        }
        rtcp_ssrc(packet)?;
        let out = self.outbound.encrypt_rtcp(packet).map_err(map_rtc)?;
        self.sent_rtcp += 1;
        Ok(insert_mki(
            &out,
            self.local_mki.as_deref(),
            SRTCP_AUTH_TAG_LEN,
        ))
    }

    /// Checks and decrypts a received SRTCP packet. Errors as [`Self::unprotect_rtp`].
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if self.received_rtcp >= self.remote_limit.min(MAX_SRTCP_PACKETS) {
            return Err(SrtpError::KeyExpired);
        }
        let ssrc = rtcp_ssrc(packet)?;
        let packet = strip_mki(packet, self.remote_mki.as_deref(), SRTCP_AUTH_TAG_LEN)?;
        if !self.rtcp_sources.contains(&ssrc) {
            if self.rtcp_sources.len() >= MAX_REMOTE_SSRCS {
                return Err(SrtpError::TooManySsrcs);
            }
            self.probe()?.decrypt_rtcp(&packet).map_err(map_rtc)?;
            self.rtcp_sources.insert(ssrc);
        }
        let out = self.inbound.decrypt_rtcp(&packet).map_err(map_rtc)?;
        self.received_rtcp += 1;
        Ok(out.to_vec())
    }

    /// The probe context, rebuilt when it has seen many packets of unknown sources.
    fn probe(&mut self) -> Result<&mut Context, SrtpError> {
        self.probe_uses += 1;
        if self.probe_uses > PROBE_REBUILD {
            self.probe = context(&self.provider, self.suite, &self.remote_key, None)?;
            self.probe_uses = 1;
        }
        Ok(&mut self.probe)
    }
}

fn context(
    provider: &Arc<dyn RTCCryptoProvider>,
    suite: CryptoSuite,
    key_salt: &[u8; KEY_SALT_LEN],
    replay_window: Option<usize>,
) -> Result<Context, SrtpError> {
    let (key, salt) = key_salt.split_at(16);
    let (srtp_opt, srtcp_opt) = match replay_window {
        Some(w) => (
            Some(srtp_replay_protection(w)),
            Some(srtcp_replay_protection(w)),
        ),
        None => (None, None),
    };
    Context::new(
        key,
        salt,
        suite.profile(),
        srtp_opt,
        srtcp_opt,
        provider.crypto(),
    )
    .map_err(|e| SrtpError::Context(e.to_string()))
}

/// The SSRC of something that looks like an RTP packet (version 2, 12-byte header).
fn rtp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    match packet {
        [b0, _, _, _, _, _, _, _, a, b, c, d, ..] if b0 >> 6 == 2 => {
            Ok(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => Err(SrtpError::InvalidPacket),
    }
}

/// The sender SSRC of something that looks like an RTCP packet (version 2, 8 bytes).
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    match packet {
        [b0, _, _, _, a, b, c, d, ..] if b0 >> 6 == 2 => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(SrtpError::InvalidPacket),
    }
}

/// `protected` with the MKI inserted before its `tag_len`-byte authentication tag.
fn insert_mki(protected: &[u8], mki: Option<&[u8]>, tag_len: usize) -> Vec<u8> {
    let Some(mki) = mki else {
        return protected.to_vec();
    };
    let at = protected.len().saturating_sub(tag_len);
    let (body, tag) = protected.split_at(at);
    let mut out = Vec::with_capacity(protected.len() + mki.len());
    out.extend_from_slice(body);
    out.extend_from_slice(mki);
    out.extend_from_slice(tag);
    out
}

/// `packet` without the MKI before its `tag_len`-byte tag, which must be `mki`.
fn strip_mki<'a>(
    packet: &'a [u8],
    mki: Option<&[u8]>,
    tag_len: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, SrtpError> {
    let Some(mki) = mki else {
        return Ok(std::borrow::Cow::Borrowed(packet));
    };
    let tag_at = packet
        .len()
        .checked_sub(tag_len)
        .ok_or(SrtpError::InvalidPacket)?;
    let mki_at = tag_at
        .checked_sub(mki.len())
        .ok_or(SrtpError::InvalidPacket)?;
    let (body, rest) = packet.split_at(mki_at);
    let (found, tag) = rest.split_at(mki.len());
    if found != mki {
        return Err(SrtpError::UnknownMki);
    }
    let mut out = Vec::with_capacity(body.len() + tag.len());
    out.extend_from_slice(body);
    out.extend_from_slice(tag);
    Ok(std::borrow::Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    /// baresip 1.0 (`mediaenc=srtp`) offers lines like this one.
    const BARESIP_80: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON";

    fn attr(tag: u32, suite: CryptoSuite, fill: u8) -> CryptoAttribute {
        let mut key = [0u8; KEY_SALT_LEN];
        for (i, b) in key.iter_mut().enumerate() {
            *b = fill.wrapping_add(i as u8);
        }
        CryptoAttribute::new(tag, suite, key)
    }

    /// A PCMU packet: seq, timestamp 160 per packet, SSRC.
    fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
        p
    }

    /// A receiver report with one report block.
    fn rtcp_rr(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x81, 201, 0x00, 0x07];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x11; 24]);
        p
    }

    /// Sessions for both ends: A sends with `a` and receives with `b`, B the other way.
    fn pair(a: &CryptoAttribute, b: &CryptoAttribute) -> (SrtpSession, SrtpSession) {
        (
            SrtpSession::new(a, b).unwrap(),
            SrtpSession::new(b, a).unwrap(),
        )
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn real_crypto_lines_parse_and_serialise_identically() {
        for line in [
            BARESIP_80,
            "2 AES_CM_128_HMAC_SHA1_32 inline:2KeyoMgwTo1sfQk6dtgUJGdF8x25WcWnDQnQqVsm",
            // RFC 4568 §8.1's example: lifetime 2^20, MKI 1 in 4 bytes.
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
            // linphone, Asterisk and Cisco write the lifetime as 2^31.
            "1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31",
            "3 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|1048576 WSH=128 FEC_ORDER=FEC_SRTP -x-vendor=1",
        ] {
            let a = CryptoAttribute::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(a.to_string(), line);
            assert_eq!(CryptoAttribute::parse(&a.to_string()).unwrap(), a);
        }
        let a = CryptoAttribute::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
        )
        .unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(a.lifetime, Some(KeyLifetime::PowerOfTwo(20)));
        assert_eq!(a.lifetime.unwrap().packets(), 1 << 20);
        assert_eq!(
            a.mki,
            Some(Mki {
                value: 1,
                length: 4
            })
        );
        assert_eq!(a.mki.unwrap().to_bytes(), vec![0, 0, 0, 1]);
        assert_eq!(&a.key_salt()[..4], b"YS__");
        // Extra blanks between fields are tolerated; what we write is canonical.
        let spaced = CryptoAttribute::parse(
            "  7\tAES_CM_128_HMAC_SHA1_32  inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON ",
        )
        .unwrap();
        assert_eq!(
            spaced.to_string(),
            "7 AES_CM_128_HMAC_SHA1_32 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON"
        );
        assert_eq!(
            CryptoAttribute::parse(&BARESIP_80.replace("inline:ENLR", "INLINE:ENLR"))
                .unwrap()
                .to_string(),
            BARESIP_80
        );
    }

    #[test]
    fn unsupported_and_malformed_lines_are_rejected_cleanly() {
        let key = "inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON";
        for suite in [
            "AES_256_CM_HMAC_SHA1_80",
            "AES_192_CM_HMAC_SHA1_32",
            "F8_128_HMAC_SHA1_80",
            "AEAD_AES_128_GCM",
            "AEAD_AES_256_GCM",
        ] {
            assert_eq!(
                CryptoAttribute::parse(&format!("1 {suite} {key}")).unwrap_err(),
                SrtpError::UnsupportedSuite(suite.to_owned())
            );
        }
        for (line, want) in [
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
                SrtpError::Unsupported("UNENCRYPTED_SRTP"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTCP"),
                SrtpError::Unsupported("UNENCRYPTED_SRTCP"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNAUTHENTICATED_SRTP"),
                SrtpError::Unsupported("UNAUTHENTICATED_SRTP"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=1"),
                SrtpError::Unsupported("KDR (key derivation rate)"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} FEC_KEY={key}"),
                SrtpError::Unsupported("FEC_KEY"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} NEW_PARAM=1"),
                SrtpError::Unsupported("unknown mandatory session parameter"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4;{key}|2^20|2:4"),
                SrtpError::Unsupported("several master keys"),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key".to_owned(),
                SrtpError::Unsupported("key method other than inline"),
            ),
        ] {
            assert_eq!(CryptoAttribute::parse(&line).unwrap_err(), want, "{line}");
        }
        for bad in [
            "",
            "1",
            "1 AES_CM_128_HMAC_SHA1_80",
            "x AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON",
            "1234567890 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON",
            "-1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON",
            "1 AES-CM inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON",
            "1 AES_CM_128_HMAC_SHA1_80 ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOe",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOe==",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOe!N",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|2^49",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|0",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|2^",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|1:0",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|1:129",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|256:1",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|1:4|2^20",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON|1:4|2:4",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON WSH=32",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON FEC_ORDER=X",
            "1 AES_CM_128_HMAC_SHA1_80 inline:ENLRJq9CqkmuYTsDFyvb5rG6FYZdlNHTmeOuOeON\u{e9}",
        ] {
            assert!(
                matches!(
                    CryptoAttribute::parse(bad),
                    Err(SrtpError::Malformed(_) | SrtpError::Unsupported(_))
                ),
                "{bad:?}: {:?}",
                CryptoAttribute::parse(bad)
            );
        }
    }

    #[test]
    fn keys_are_redacted_and_generated_at_random() {
        let a = CryptoAttribute::parse(BARESIP_80).unwrap();
        let debug = format!("{a:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("ENLR"), "{debug}");
        assert!(
            !debug.contains(&format!("{:?}", &a.key_salt()[..4])),
            "{debug}"
        );

        let x = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80).unwrap();
        let y = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80).unwrap();
        assert_ne!(x, y);
        assert_ne!(x.key_salt(), &[0; KEY_SALT_LEN]);
        assert_eq!(CryptoAttribute::parse(&x.to_string()).unwrap(), x);
        let z = x.with_tag(5);
        assert_eq!((z.tag, z.key_salt()), (5, x.key_salt()));
        assert_eq!(
            CryptoSuite::from_name("aes_cm_128_hmac_sha1_32"),
            Some(CryptoSuite::AesCm128HmacSha1_32)
        );
        let session = SrtpSession::new(&x, &y).unwrap();
        assert!(!format!("{session:?}").contains("key"));
    }

    /// libsrtp's `srtp_validate()` reference packets (test/srtp_driver.c, also in libsrtp
    /// 2.5.0). The master key and salt are those of RFC 3711 Appendix B.3, so this checks
    /// the key derivation (B.3), AES-CM (B.2) and HMAC-SHA1 end to end against libsrtp's
    /// output.
    #[test]
    fn libsrtp_reference_packets() {
        let key_salt: [u8; KEY_SALT_LEN] =
            unhex("e1f97a0d3e018be0d64fa32c06de4139 0ec675ad498afeebb6960b3aabe6")
                .try_into()
                .unwrap();
        let rtp_plain = unhex("800f1234decafbadcafebabe abababababababababababababababab");
        let srtp_80 =
            unhex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
        let rtcp_plain = unhex("81c8000bcafebabe abababababababababababababababab");
        let srtcp = unhex(
            "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798",
        );
        for (suite, want) in [
            (CryptoSuite::AesCm128HmacSha1_80, &srtp_80[..]),
            // The 32-bit tag is the first 4 bytes of the 80-bit one.
            (CryptoSuite::AesCm128HmacSha1_32, &srtp_80[..32]),
        ] {
            let ours = CryptoAttribute::new(1, suite, key_salt);
            let mut sender = SrtpSession::new(&ours, &ours).unwrap();
            assert_eq!(sender.protect_rtp(&rtp_plain).unwrap(), want, "{suite}");
            assert_eq!(sender.protect_rtcp(&rtcp_plain).unwrap(), srtcp, "{suite}");
            let mut receiver = SrtpSession::new(&ours, &ours).unwrap();
            assert_eq!(receiver.unprotect_rtp(want).unwrap(), rtp_plain);
            assert_eq!(receiver.unprotect_rtcp(&srtcp).unwrap(), rtcp_plain);
        }
    }

    #[test]
    fn round_trip_between_two_sessions() {
        for suite in CryptoSuite::ALL {
            let a_key = CryptoAttribute::generate(1, suite).unwrap();
            let b_key = CryptoAttribute::generate(1, suite).unwrap();
            let (mut alice, mut bob) = pair(&a_key, &b_key);
            assert_eq!(alice.suite(), suite);
            for seq in 0..50u16 {
                let packet = rtp(seq, 0x1234_5678, 160);
                let protected = alice.protect_rtp(&packet).unwrap();
                assert_eq!(protected.len(), packet.len() + suite.rtp_auth_tag_len());
                assert_eq!(protected.len(), packet.len() + alice.rtp_overhead());
                assert_eq!(
                    protected[..12],
                    packet[..12],
                    "the header stays in the clear"
                );
                assert_ne!(protected[12..172], packet[12..], "the payload is encrypted");
                assert_eq!(bob.unprotect_rtp(&protected).unwrap(), packet);

                let back = rtp(seq.wrapping_mul(7), 0x9abc_def0, 80);
                let protected = bob.protect_rtp(&back).unwrap();
                assert_eq!(alice.unprotect_rtp(&protected).unwrap(), back);
            }
            let rr = rtcp_rr(0x1234_5678);
            for _ in 0..3 {
                let protected = alice.protect_rtcp(&rr).unwrap();
                // E flag + index (4) and an 80-bit tag for both suites.
                assert_eq!(protected.len(), rr.len() + 4 + 10);
                assert_eq!(bob.unprotect_rtcp(&protected).unwrap(), rr);
                let protected = bob.protect_rtcp(&rtcp_rr(0x9abc_def0)).unwrap();
                assert_eq!(
                    alice.unprotect_rtcp(&protected).unwrap(),
                    rtcp_rr(0x9abc_def0)
                );
            }
        }
    }

    #[test]
    fn sequence_numbers_wrap_and_reordering_within_the_window_is_fine() {
        let (mut alice, mut bob) = pair(
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 1),
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 2),
        );
        let sent: Vec<(Vec<u8>, Vec<u8>)> = (0..40u16)
            .map(|i| {
                let plain = rtp(65_520u16.wrapping_add(i), 7, 20);
                (alice.protect_rtp(&plain).unwrap(), plain)
            })
            .collect();
        // Deliver in pairs swapped: 1 0 3 2 … across the wrap from 65535 to 0.
        for two in sent.chunks(2) {
            for (protected, plain) in two.iter().rev() {
                assert_eq!(&bob.unprotect_rtp(protected).unwrap(), plain);
            }
        }
        // Every one again: all replays now.
        for (p, _) in &sent {
            assert_eq!(bob.unprotect_rtp(p).unwrap_err(), SrtpError::Replay);
        }
    }

    #[test]
    fn tampered_packets_are_rejected() {
        let (mut alice, mut bob) = pair(
            &attr(1, CryptoSuite::AesCm128HmacSha1_32, 1),
            &attr(1, CryptoSuite::AesCm128HmacSha1_32, 2),
        );
        let protected = alice.protect_rtp(&rtp(1, 42, 160)).unwrap();
        for at in [
            1,
            3,
            7,
            11,
            12,
            100,
            protected.len() - 5,
            protected.len() - 1,
        ] {
            let mut bad = protected.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                bob.unprotect_rtp(&bad).unwrap_err(),
                SrtpError::Authentication,
                "byte {at}"
            );
        }
        // A truncated tag is no packet; the genuine one still goes through afterwards.
        assert!(
            bob.unprotect_rtp(&protected[..protected.len() - 2])
                .is_err()
        );
        assert_eq!(bob.unprotect_rtp(&protected).unwrap(), rtp(1, 42, 160));

        let protected = alice.protect_rtcp(&rtcp_rr(42)).unwrap();
        for at in [1, 9, protected.len() - 12, protected.len() - 1] {
            let mut bad = protected.clone();
            bad[at] ^= 0x80;
            assert_eq!(
                bob.unprotect_rtcp(&bad).unwrap_err(),
                SrtpError::Authentication,
                "byte {at}"
            );
        }
        assert_eq!(bob.unprotect_rtcp(&protected).unwrap(), rtcp_rr(42));
    }

    #[test]
    fn replayed_packets_are_rejected() {
        let (mut alice, mut bob) = pair(
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 1),
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 2),
        );
        let first = alice.protect_rtp(&rtp(100, 42, 160)).unwrap();
        let second = alice.protect_rtp(&rtp(101, 42, 160)).unwrap();
        assert!(bob.unprotect_rtp(&first).is_ok());
        assert_eq!(bob.unprotect_rtp(&first).unwrap_err(), SrtpError::Replay);
        assert!(bob.unprotect_rtp(&second).is_ok());
        assert_eq!(bob.unprotect_rtp(&second).unwrap_err(), SrtpError::Replay);
        assert_eq!(bob.unprotect_rtp(&first).unwrap_err(), SrtpError::Replay);
        // Far older than the window: refused too.
        let mut old = Vec::new();
        for seq in 102..400u16 {
            let p = alice.protect_rtp(&rtp(seq, 42, 10)).unwrap();
            if seq == 102 {
                old = p.clone();
            } else {
                bob.unprotect_rtp(&p).unwrap();
            }
        }
        assert_eq!(bob.unprotect_rtp(&old).unwrap_err(), SrtpError::Replay);

        let rr = alice.protect_rtcp(&rtcp_rr(42)).unwrap();
        assert!(bob.unprotect_rtcp(&rr).is_ok());
        assert_eq!(bob.unprotect_rtcp(&rr).unwrap_err(), SrtpError::Replay);
    }

    #[test]
    fn wrong_key_or_suite_is_rejected() {
        let a = attr(1, CryptoSuite::AesCm128HmacSha1_80, 1);
        let b = attr(1, CryptoSuite::AesCm128HmacSha1_80, 2);
        let c = attr(1, CryptoSuite::AesCm128HmacSha1_80, 3);
        let mut alice = SrtpSession::new(&a, &b).unwrap();
        // Eve expects Alice to use c.
        let mut eve = SrtpSession::new(&b, &c).unwrap();
        let p = alice.protect_rtp(&rtp(1, 5, 160)).unwrap();
        assert_eq!(
            eve.unprotect_rtp(&p).unwrap_err(),
            SrtpError::Authentication
        );
        let p = alice.protect_rtcp(&rtcp_rr(5)).unwrap();
        assert_eq!(
            eve.unprotect_rtcp(&p).unwrap_err(),
            SrtpError::Authentication
        );
        // Same key, one byte of salt differs.
        let mut salt = *a.key_salt();
        salt[29] ^= 1;
        let mut off = SrtpSession::new(&b, &CryptoAttribute::new(1, a.suite, salt)).unwrap();
        let p = alice.protect_rtp(&rtp(2, 5, 160)).unwrap();
        assert_eq!(
            off.unprotect_rtp(&p).unwrap_err(),
            SrtpError::Authentication
        );

        let d = attr(1, CryptoSuite::AesCm128HmacSha1_32, 4);
        assert_eq!(
            SrtpSession::new(&a, &d).unwrap_err(),
            SrtpError::SuiteMismatch
        );
    }

    #[test]
    fn master_key_index_travels_before_the_tag() {
        let line =
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4";
        let with_mki = CryptoAttribute::parse(line).unwrap();
        let mut plain_key = with_mki.clone();
        plain_key.mki = None;
        let other = attr(1, CryptoSuite::AesCm128HmacSha1_80, 9);
        let mut a = SrtpSession::new(&with_mki, &other).unwrap();
        let mut a_no_mki = SrtpSession::new(&plain_key, &other).unwrap();
        let mut b = SrtpSession::new(&other, &with_mki).unwrap();
        let packet = rtp(1, 77, 160);
        let p = a.protect_rtp(&packet).unwrap();
        let q = a_no_mki.protect_rtp(&packet).unwrap();
        assert_eq!(p.len(), q.len() + 4);
        assert_eq!(a.rtp_overhead(), 14);
        let tag_at = q.len() - 10;
        assert_eq!(p[..tag_at], q[..tag_at]);
        assert_eq!(p[tag_at..tag_at + 4], [0, 0, 0, 1]);
        assert_eq!(p[tag_at + 4..], q[tag_at..]);
        assert_eq!(b.unprotect_rtp(&p).unwrap(), packet);

        let mut wrong = a.protect_rtp(&rtp(2, 77, 160)).unwrap();
        let at = wrong.len() - 11;
        wrong[at] = 2;
        assert_eq!(b.unprotect_rtp(&wrong).unwrap_err(), SrtpError::UnknownMki);
        assert_eq!(
            b.unprotect_rtp(&q[..8]).unwrap_err(),
            SrtpError::InvalidPacket
        );

        let r = a.protect_rtcp(&rtcp_rr(77)).unwrap();
        assert_eq!(b.unprotect_rtcp(&r).unwrap(), rtcp_rr(77));
    }

    #[test]
    fn rekeying_keeps_the_state_of_unchanged_directions() {
        let a = attr(1, CryptoSuite::AesCm128HmacSha1_80, 1);
        let b = attr(1, CryptoSuite::AesCm128HmacSha1_80, 2);
        let (mut alice, mut bob) = pair(&a, &b);
        let old = alice.protect_rtp(&rtp(1, 5, 20)).unwrap();
        bob.unprotect_rtp(&old).unwrap();
        // A re-INVITE with the same keys (hold): the replay window survives.
        bob.rekey(&b.with_tag(2), &a.with_tag(2)).unwrap();
        assert_eq!(bob.unprotect_rtp(&old).unwrap_err(), SrtpError::Replay);
        // Alice re-keys her direction; Bob's direction and its state are untouched.
        let a2 = attr(1, CryptoSuite::AesCm128HmacSha1_80, 3);
        alice.rekey(&a2, &b).unwrap();
        bob.rekey(&b, &a2).unwrap();
        let p = alice.protect_rtp(&rtp(2, 5, 20)).unwrap();
        assert_eq!(bob.unprotect_rtp(&p).unwrap(), rtp(2, 5, 20));
        let q = bob.protect_rtp(&rtp(9, 6, 20)).unwrap();
        assert_eq!(alice.unprotect_rtp(&q).unwrap(), rtp(9, 6, 20));
        // A different suite is a new session; mixed suites are refused.
        let c = attr(1, CryptoSuite::AesCm128HmacSha1_32, 4);
        assert_eq!(bob.rekey(&b, &c).unwrap_err(), SrtpError::SuiteMismatch);
        bob.rekey(&c, &c).unwrap();
        assert_eq!(bob.suite(), CryptoSuite::AesCm128HmacSha1_32);
    }

    #[test]
    fn keys_are_not_used_past_their_lifetime() {
        let mut short = attr(1, CryptoSuite::AesCm128HmacSha1_80, 1);
        short.lifetime = Some(KeyLifetime::Packets(3));
        let long = attr(1, CryptoSuite::AesCm128HmacSha1_80, 2);
        let (mut a, mut b) = pair(&short, &long);
        let sent: Vec<Vec<u8>> = (0..3u16)
            .map(|s| a.protect_rtp(&rtp(s, 1, 10)).unwrap())
            .collect();
        assert_eq!(
            a.protect_rtp(&rtp(3, 1, 10)).unwrap_err(),
            SrtpError::KeyExpired
        );
        for p in &sent {
            b.unprotect_rtp(p).unwrap();
        }
        // B's view of A's key: the fourth packet is one too many whoever made it.
        let mut forged_a = SrtpSession::new(&short, &long).unwrap();
        forged_a.local_limit = u64::MAX;
        let fourth = forged_a.protect_rtp(&rtp(3, 1, 10)).unwrap();
        assert_eq!(b.unprotect_rtp(&fourth).unwrap_err(), SrtpError::KeyExpired);
    }

    #[test]
    fn forged_sources_create_no_state_and_do_not_block_the_real_one() {
        let (mut alice, mut bob) = pair(
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 1),
            &attr(1, CryptoSuite::AesCm128HmacSha1_80, 2),
        );
        let mut rng = XorShift(77);
        for i in 0..5_000u32 {
            let mut forged = rtp(i as u16, rng.next() as u32, 160);
            forged.extend_from_slice(&[0u8; 10]);
            assert_eq!(
                bob.unprotect_rtp(&forged).unwrap_err(),
                SrtpError::Authentication
            );
            let mut forged = rtcp_rr(rng.next() as u32);
            forged.extend_from_slice(&[0x80, 0, 0, 1]);
            forged.extend_from_slice(&[0u8; 10]);
            assert_eq!(
                bob.unprotect_rtcp(&forged).unwrap_err(),
                SrtpError::Authentication
            );
        }
        assert!(bob.rtp_sources.is_empty() && bob.rtcp_sources.is_empty());
        assert!(bob.probe_uses <= PROBE_REBUILD);
        let p = alice.protect_rtp(&rtp(9, 1, 160)).unwrap();
        assert_eq!(bob.unprotect_rtp(&p).unwrap(), rtp(9, 1, 160));
        // Authenticated sources are capped.
        for ssrc in 2..=MAX_REMOTE_SSRCS as u32 {
            let p = alice.protect_rtp(&rtp(1, ssrc, 10)).unwrap();
            bob.unprotect_rtp(&p).unwrap();
        }
        let p = alice.protect_rtp(&rtp(1, 100_000, 10)).unwrap();
        assert_eq!(bob.unprotect_rtp(&p).unwrap_err(), SrtpError::TooManySsrcs);
        let p = alice.protect_rtp(&rtp(10, 1, 160)).unwrap();
        assert_eq!(bob.unprotect_rtp(&p).unwrap(), rtp(10, 1, 160));
    }

    fn mutate(rng: &mut XorShift, mut bytes: Vec<u8>) -> Vec<u8> {
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes.truncate(at),
                2 => {
                    let n = rng.below(20);
                    bytes.splice(at..at, (0..n).map(|_| rng.next() as u8));
                }
                _ => {
                    let end = (at + rng.below(20)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        bytes
    }

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x5eed_5a7f);
        let mut mki_key = attr(3, CryptoSuite::AesCm128HmacSha1_32, 3);
        mki_key.mki = Some(Mki {
            value: 7,
            length: 2,
        });
        for (local, remote) in [
            (
                attr(1, CryptoSuite::AesCm128HmacSha1_80, 1),
                attr(1, CryptoSuite::AesCm128HmacSha1_80, 2),
            ),
            (attr(1, CryptoSuite::AesCm128HmacSha1_32, 1), mki_key),
        ] {
            let (mut a, mut b) = pair(&local, &remote);
            for i in 0..20_000u32 {
                let seed = match rng.below(4) {
                    0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
                    1 => rtp(i as u16, rng.below(3) as u32, rng.below(200)),
                    2 => rtcp_rr(rng.below(3) as u32),
                    _ => {
                        let plain = rtp(i as u16, 1, 40);
                        a.protect_rtp(&plain).unwrap_or_default()
                    }
                };
                let input = mutate(&mut rng, seed);
                let _ = b.unprotect_rtp(&input);
                let _ = b.unprotect_rtcp(&input);
                let _ = b.protect_rtp(&input);
                let _ = b.protect_rtcp(&input);
            }
        }
        for _ in 0..20_000 {
            let len = rng.below(120);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = CryptoAttribute::parse(&text);
            let line = mutate(&mut rng, BARESIP_80.as_bytes().to_vec());
            if let Ok(a) = CryptoAttribute::parse(&String::from_utf8_lossy(&line)) {
                assert_eq!(CryptoAttribute::parse(&a.to_string()).unwrap(), a);
            }
        }
    }
}
