//! Audio codecs behind one small interface: G.711 µ-law (PCMU), G.711 A-law (PCMA) and Opus.
//!
//! PCM is always mono `i16` at [`CodecKind::pcm_rate`], one 20 ms frame ([`frame_samples`]) per
//! call. Encoders and decoders *append* to the output vector; callers clear it between frames.
//!
//! G.711 is implemented here (ITU-T G.711, the classic segment/quantisation bit manipulation).
//! Its decoder conceals lost packets with [`crate::plc::G711Plc`] (G.711 Appendix I), which
//! delays all G.711 output by [`crate::plc::DELAY_SAMPLES`] (3.75 ms).
//! Opus uses the bundled libopus through the `opus` crate. Decoders treat the payload as hostile:
//! garbage gives [`CodecError`], never a panic.

use std::fmt;

use tracing::debug;

use crate::plc::G711Plc;

/// Packet duration of every frame we send and expect, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Largest Opus packet duration (120 ms) in samples at 48 kHz.
const OPUS_MAX_FRAME: usize = 5760;
/// Largest Opus packet we ever produce (RFC 6716 §3.4: at most 1275 bytes per frame).
const OPUS_MAX_PACKET: usize = 1500;

/// Errors from encoding or decoding audio.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// libopus rejected a call (invalid packet, bad argument, …).
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A payload without any bytes cannot be decoded.
    #[error("empty payload")]
    EmptyPayload,
    /// The PCM frame handed to the encoder has a length the codec cannot encode.
    #[error("cannot encode a frame of {0} samples")]
    FrameSize(usize),
}

/// The audio codecs KRYPTON speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// Opus (RFC 7587), dynamic payload type, always `opus/48000/2` in SDP.
    Opus,
}

impl CodecKind {
    /// RTP timestamp clock rate (8000 for G.711, 48000 for Opus).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// Sample rate of the PCM the encoder takes and the decoder produces.
    pub fn pcm_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// Static RTP payload type (RFC 3551), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::Opus => None,
        }
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::Opus => "opus",
        }
    }

    /// Parses an `a=rtpmap` encoding name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::Opus]
            .into_iter()
            .find(|k| k.encoding_name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// PCM samples in one [`FRAME_MS`] mono frame at the codec's [`CodecKind::pcm_rate`]
/// (160 for G.711, 960 for Opus).
pub fn frame_samples(kind: CodecKind) -> usize {
    (kind.pcm_rate() / 1000 * FRAME_MS) as usize
}

/// Opus encoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusSettings {
    /// Target bitrate in bits per second.
    pub bitrate: i32,
    /// Put in-band forward error correction (LBRR) into the packets.
    pub fec: bool,
    /// Expected packet loss in percent; libopus spends FEC bits only when this is above 0.
    pub packet_loss_percent: u8,
    /// Encoder complexity, 0 (cheapest) to 10 (best).
    pub complexity: i32,
    /// Discontinuous transmission: send almost nothing during silence.
    pub dtx: bool,
}

impl Default for OpusSettings {
    /// 32 kbit/s, FEC on with a 5 % loss hint (so the first losses, before any RTCP report, are
    /// already protected; the engine then follows the loss RTCP reports, down to no FEC at 0 %),
    /// complexity 9, no DTX.
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            fec: true,
            packet_loss_percent: 5,
            complexity: 9,
            dtx: false,
        }
    }
}

/// Turns PCM frames into RTP payloads.
pub trait Encoder: Send {
    /// Which codec this is.
    fn kind(&self) -> CodecKind;
    /// Encodes one frame of mono PCM at [`CodecKind::pcm_rate`] and appends the payload to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Hint from RTCP receiver reports: the loss the far end currently sees, in percent.
    fn set_packet_loss(&mut self, _percent: u8) {}
}

/// Turns RTP payloads into PCM frames.
pub trait Decoder: Send {
    /// Which codec this is.
    fn kind(&self) -> CodecKind;
    /// Decodes one payload and appends mono PCM at [`CodecKind::pcm_rate`] to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Appends one frame of concealment for a packet that never arrived.
    fn conceal(&mut self, out: &mut Vec<i16>);
    /// Appends the missing frame recovered from the in-band FEC of the *next* packet (Opus).
    /// Codecs without FEC, or a next packet without FEC data, fall back to [`Decoder::conceal`].
    fn recover(&mut self, next_payload: &[u8], out: &mut Vec<i16>) {
        let _ = next_payload;
        self.conceal(out);
    }
}

/// Creates an encoder. `opus` is used only for [`CodecKind::Opus`].
pub fn new_encoder(kind: CodecKind, opus: &OpusSettings) -> Result<Box<dyn Encoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcmu | CodecKind::Pcma => Box::new(G711Encoder { kind }),
        CodecKind::Opus => Box::new(OpusEncoder::new(opus)?),
    })
}

/// Creates a decoder.
pub fn new_decoder(kind: CodecKind) -> Result<Box<dyn Decoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcmu | CodecKind::Pcma => Box::new(G711Decoder {
            kind,
            plc: G711Plc::new(),
        }),
        CodecKind::Opus => Box::new(OpusDecoder::new()?),
    })
}

// ---------------------------------------------------------------------------------------------
// G.711

const QUANT_MASK: u8 = 0x0F;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
const SIGN_BIT: u8 = 0x80;
/// µ-law bias (0x84) in 14-bit units.
const ULAW_BIAS: i32 = 0x84;
/// Largest 14-bit magnitude µ-law can represent before the bias.
const ULAW_CLIP: i32 = 8159;
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(value: i32, ends: &[i32; 8]) -> u8 {
    ends.iter().position(|&end| value <= end).unwrap_or(8) as u8
}

/// Encodes one 16-bit linear sample as G.711 µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 2; // 14-bit magnitude range
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    let v = v.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(v, &SEG_UEND);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let code = (seg << 4) | ((v >> (seg + 1)) as u8 & QUANT_MASK);
    code ^ mask
}

/// Decodes one G.711 µ-law byte to a 16-bit linear sample.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = (i32::from(u & QUANT_MASK) << 3) + ULAW_BIAS;
    t <<= u32::from(u & SEG_MASK) >> SEG_SHIFT;
    let v = if u & SIGN_BIT != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    };
    v as i16 // |v| <= 32124
}

/// Encodes one 16-bit linear sample as G.711 A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 3; // 13-bit range
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &SEG_AEND);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mut code = seg << SEG_SHIFT;
    code |= if seg < 2 {
        (v >> 1) as u8 & QUANT_MASK
    } else {
        (v >> seg) as u8 & QUANT_MASK
    };
    code ^ mask
}

/// Decodes one G.711 A-law byte to a 16-bit linear sample.
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & QUANT_MASK) << 4;
    let seg = u32::from(a & SEG_MASK) >> SEG_SHIFT;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    let v = if a & SIGN_BIT != 0 { t } else { -t };
    v as i16 // |v| <= 32256
}

struct G711Encoder {
    kind: CodecKind,
}

impl Encoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let f = if self.kind == CodecKind::Pcmu {
            linear_to_ulaw
        } else {
            linear_to_alaw
        };
        out.extend(pcm.iter().map(|&s| f(s)));
        Ok(())
    }
}

struct G711Decoder {
    kind: CodecKind,
    /// Sees every frame; synthesises lost ones from the pitch of the history (Appendix I). It
    /// delays the output by 3.75 ms, so a loss can start with a cross-fade (see [`crate::plc`]).
    plc: G711Plc,
}

impl Decoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let f = if self.kind == CodecKind::Pcmu {
            ulaw_to_linear
        } else {
            alaw_to_linear
        };
        let start = out.len();
        out.extend(payload.iter().map(|&c| f(c)));
        self.plc.good_frame(&mut out[start..]);
        Ok(())
    }

    /// One 20 ms frame of G.711 Appendix I concealment: the last pitch period(s) repeated,
    /// full level for 10 ms, then −20 % per 10 ms, silent from 60 ms (three frames) on.
    fn conceal(&mut self, out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + frame_samples(self.kind), 0);
        self.plc.lost_frame(&mut out[start..]);
    }
}

// ---------------------------------------------------------------------------------------------
// Opus

/// Valid Opus frame sizes at 48 kHz (2.5, 5, 10, 20, 40, 60 ms).
const OPUS_FRAME_SIZES: [usize; 6] = [120, 240, 480, 960, 1920, 2880];

struct OpusEncoder {
    inner: opus::Encoder,
    buf: Vec<u8>,
}

impl OpusEncoder {
    fn new(s: &OpusSettings) -> Result<Self, CodecError> {
        let mut inner = opus::Encoder::new(48000, opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_bitrate(opus::Bitrate::Bits(s.bitrate))?;
        inner.set_inband_fec(s.fec)?;
        inner.set_packet_loss_perc(i32::from(s.packet_loss_percent.min(100)))?;
        inner.set_complexity(s.complexity.clamp(0, 10))?;
        inner.set_dtx(s.dtx)?;
        inner.set_signal(opus::Signal::Voice)?;
        Ok(Self {
            inner,
            buf: vec![0; OPUS_MAX_PACKET],
        })
    }
}

impl Encoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !OPUS_FRAME_SIZES.contains(&pcm.len()) {
            return Err(CodecError::FrameSize(pcm.len()));
        }
        let n = self.inner.encode(pcm, &mut self.buf)?;
        out.extend_from_slice(&self.buf[..n.min(self.buf.len())]);
        Ok(())
    }

    fn set_packet_loss(&mut self, percent: u8) {
        if let Err(e) = self.inner.set_packet_loss_perc(i32::from(percent.min(100))) {
            debug!(error = %e, "opus: cannot set the packet loss hint");
        }
    }
}

struct OpusDecoder {
    inner: opus::Decoder,
    buf: Vec<i16>,
    /// Samples in the last decoded packet: the size of a concealed or recovered frame.
    last_frame: usize,
}

impl OpusDecoder {
    fn new() -> Result<Self, CodecError> {
        // Mono even when the far end sends stereo: libopus downmixes (RFC 7587 §3.4).
        let inner = opus::Decoder::new(48000, opus::Channels::Mono)?;
        Ok(Self {
            inner,
            buf: vec![0; OPUS_MAX_FRAME],
            last_frame: frame_samples(CodecKind::Opus),
        })
    }

    /// Decodes `input` (empty = packet loss) into `out` with `frame` samples of room.
    fn run(
        &mut self,
        input: &[u8],
        frame: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let frame = frame.min(self.buf.len());
        let n = self.inner.decode(input, &mut self.buf[..frame], fec)?;
        let n = n.min(frame);
        out.extend_from_slice(&self.buf[..n]);
        Ok(n)
    }
}

impl Decoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let n = self.run(payload, OPUS_MAX_FRAME, false, out)?;
        if n > 0 {
            self.last_frame = n;
        }
        Ok(())
    }

    fn conceal(&mut self, out: &mut Vec<i16>) {
        let frame = self.last_frame;
        if let Err(e) = self.run(&[], frame, false, out) {
            debug!(error = %e, "opus: concealment failed, playing silence");
            out.extend(std::iter::repeat_n(0, frame));
        }
    }

    fn recover(&mut self, next_payload: &[u8], out: &mut Vec<i16>) {
        if next_payload.is_empty() {
            return self.conceal(out);
        }
        let frame = self.last_frame;
        if let Err(e) = self.run(next_payload, frame, true, out) {
            debug!(error = %e, "opus: FEC decode failed, concealing");
            self.conceal(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, amplitude: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
    }

    fn snr_db(reference: &[i16], decoded: &[i16]) -> f64 {
        assert_eq!(reference.len(), decoded.len());
        let noise: f64 = reference
            .iter()
            .zip(decoded)
            .map(|(&a, &b)| {
                let d = f64::from(a) - f64::from(b);
                d * d
            })
            .sum();
        10.0 * (energy(reference) / noise.max(1e-9)).log10()
    }

    #[test]
    fn codec_kind_metadata() {
        assert_eq!(CodecKind::Pcmu.rtp_clock_rate(), 8000);
        assert_eq!(CodecKind::Opus.rtp_clock_rate(), 48000);
        assert_eq!(CodecKind::Pcma.pcm_rate(), 8000);
        assert_eq!(CodecKind::Pcmu.static_payload_type(), Some(0));
        assert_eq!(CodecKind::Pcma.static_payload_type(), Some(8));
        assert_eq!(CodecKind::Opus.static_payload_type(), None);
        assert_eq!(CodecKind::from_name("pcmu"), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_name("PCMA"), Some(CodecKind::Pcma));
        assert_eq!(CodecKind::from_name("OPUS"), Some(CodecKind::Opus));
        assert_eq!(CodecKind::from_name("G722"), None);
        assert_eq!(CodecKind::Opus.to_string(), "opus");
        assert_eq!(frame_samples(CodecKind::Pcmu), 160);
        assert_eq!(frame_samples(CodecKind::Opus), 960);
    }

    #[test]
    fn g711_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn g711_every_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            // 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "µ-law code {code:#04x}");
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn g711_quantisation_error_is_bounded_and_monotonic() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            let mag = i32::from(s).abs();
            // Step size doubles per segment: error stays below ~1/16 of the magnitude + bias.
            let bound = mag / 16 + 130;
            assert!((i32::from(u) - i32::from(s)).abs() <= bound, "µ {s} -> {u}");
            assert!((i32::from(a) - i32::from(s)).abs() <= bound, "A {s} -> {a}");
            assert!(u >= prev_u && a >= prev_a, "monotonic at {s}");
            prev_u = u;
            prev_a = a;
        }
    }

    #[test]
    fn g711_sine_round_trip_snr_above_30_db() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut enc = new_encoder(kind, &OpusSettings::default()).unwrap();
            let mut dec = new_decoder(kind).unwrap();
            let pcm = sine(1000.0, 8000, 12000.0, 8000);
            let mut decoded = Vec::new();
            let mut payload = Vec::new();
            for frame in pcm.chunks(frame_samples(kind)) {
                payload.clear();
                enc.encode(frame, &mut payload).unwrap();
                assert_eq!(payload.len(), 160);
                let before = decoded.len();
                dec.decode(&payload, &mut decoded).unwrap();
                assert_eq!(decoded.len() - before, 160);
            }
            // The concealment's look-ahead delays everything by a constant 3.75 ms.
            let d = crate::plc::DELAY_SAMPLES;
            assert!(decoded[..d].iter().all(|&s| s == 0));
            let snr = snr_db(&pcm[..pcm.len() - d], &decoded[d..]);
            assert!(snr > 30.0, "{kind}: SNR {snr:.1} dB");
        }
    }

    /// The decoder conceals with G.711 Appendix I (the algorithm is tested in `plc`): one frame
    /// per call, silence before anything was heard, the pitch continued at full level for the
    /// first 10 ms instead of −6 dB, fading until silent after three frames, and a real packet
    /// ends the loss.
    #[test]
    fn g711_concealment_continues_the_signal_and_fades_to_silence() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut dec = new_decoder(kind).unwrap();
            let mut out = Vec::new();
            dec.conceal(&mut out);
            assert_eq!(out, vec![0; 160], "nothing heard yet: silence");

            let mut enc = new_encoder(kind, &OpusSettings::default()).unwrap();
            let pcm = sine(200.0, 8000, 8000.0, 160 * 6); // a 5 ms period
            let mut payload = Vec::new();
            for frame in pcm.chunks(160) {
                payload.clear();
                enc.encode(frame, &mut payload).unwrap();
                out.clear();
                dec.decode(&payload, &mut out).unwrap();
            }
            let e0 = energy(&out);
            let concealed: Vec<Vec<i16>> = (0..5)
                .map(|_| {
                    let mut frame = Vec::new();
                    dec.conceal(&mut frame);
                    assert_eq!(frame.len(), 160);
                    frame
                })
                .collect();
            let energies: Vec<f64> = concealed.iter().map(|f| energy(f)).collect();
            // 3.75 ms of real signal and 10 ms at full level, then 6.25 ms fading to 0.875.
            let db = 10.0 * (energies[0] / e0).log10();
            assert!(db > -1.0, "{kind}: first lost frame at {db:.2} dB");
            assert!(
                energies[0] > energies[1] && energies[1] > energies[2] && energies[2] > 0.0,
                "{kind}: {energies:?}"
            );
            // Silent after three frames (60 ms); the output is 3.75 ms late, so the fade's last
            // samples open the fourth frame.
            let d = crate::plc::DELAY_SAMPLES;
            assert!(energies[3] < e0 / 1000.0, "{kind}: {energies:?}");
            assert!(concealed[3][d..].iter().all(|&s| s == 0), "{kind}");
            assert_eq!(concealed[4], vec![0; 160], "{kind}");
            // A real packet ends the loss: the next loss starts at full level again.
            for _ in 0..2 {
                out.clear();
                dec.decode(&payload, &mut out).unwrap();
                assert_eq!(out.len(), 160);
            }
            out.clear();
            dec.conceal(&mut out);
            let db = 10.0 * (energy(&out) / e0).log10();
            assert!(db > -1.0, "{kind}: after recovery {db:.2} dB");
        }
    }

    #[test]
    fn g711_empty_payload_is_an_error() {
        let mut dec = new_decoder(CodecKind::Pcma).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            dec.decode(&[], &mut out),
            Err(CodecError::EmptyPayload)
        ));
    }

    fn opus_round_trip(settings: &OpusSettings, frames: usize) -> (Vec<i16>, Vec<Vec<u8>>) {
        let pcm = sine(440.0, 48000, 10000.0, 960 * frames);
        let mut enc = new_encoder(CodecKind::Opus, settings).unwrap();
        let packets = pcm
            .chunks(960)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                assert!(!p.is_empty() && p.len() <= OPUS_MAX_PACKET);
                p
            })
            .collect();
        (pcm, packets)
    }

    #[test]
    fn opus_sine_round_trip_keeps_energy_and_shape() {
        let (pcm, packets) = opus_round_trip(&OpusSettings::default(), 50);
        let mut dec = new_decoder(CodecKind::Opus).unwrap();
        let mut out = Vec::new();
        for p in &packets {
            let before = out.len();
            dec.decode(p, &mut out).unwrap();
            assert_eq!(out.len() - before, 960);
        }
        // Skip the start-up, then find the codec delay by cross-correlation.
        let skip = 960 * 10;
        let len = 960 * 30;
        let reference = &pcm[skip..skip + len];
        let (best_lag, best_corr) = (0..600)
            .map(|lag| {
                let d = &out[skip + lag..skip + lag + len];
                let num: f64 = reference
                    .iter()
                    .zip(d)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                (lag, num / (energy(reference) * energy(d)).sqrt().max(1.0))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(
            best_corr > 0.95,
            "correlation {best_corr:.3} at lag {best_lag}"
        );
        let decoded = &out[skip + best_lag..skip + best_lag + len];
        let ratio_db = 10.0 * (energy(decoded) / energy(reference)).log10();
        assert!(ratio_db.abs() < 3.0, "energy ratio {ratio_db:.2} dB");
        let snr = snr_db(reference, decoded);
        assert!(snr > 10.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn opus_recover_uses_fec_of_the_next_packet() {
        let settings = OpusSettings {
            packet_loss_percent: 20,
            ..OpusSettings::default()
        };
        // 20 frames of silence, then a tone starting exactly in the frame that gets lost: only
        // the FEC copy in the next packet can know about it, concealment cannot.
        let mut pcm = vec![0i16; 960 * 20];
        pcm.extend(sine(440.0, 48000, 10000.0, 960 * 10));
        let mut enc = new_encoder(CodecKind::Opus, &settings).unwrap();
        let packets: Vec<Vec<u8>> = pcm
            .chunks(960)
            .map(|f| {
                let mut p = Vec::new();
                enc.encode(f, &mut p).unwrap();
                p
            })
            .collect();
        let mut with_fec = new_decoder(CodecKind::Opus).unwrap();
        let mut plc_only = new_decoder(CodecKind::Opus).unwrap();
        let mut out = Vec::new();
        for p in &packets[..20] {
            with_fec.decode(p, &mut out).unwrap();
            plc_only.decode(p, &mut out).unwrap();
        }
        let mut fec = Vec::new();
        with_fec.recover(&packets[21], &mut fec);
        let mut plc = Vec::new();
        plc_only.conceal(&mut plc);
        assert_eq!((fec.len(), plc.len()), (960, 960));
        let (e_fec, e_plc) = (energy(&fec), energy(&plc));
        assert!(
            e_fec > 100.0 * e_plc.max(1.0),
            "FEC frame energy {e_fec} vs concealment {e_plc}"
        );
        out.clear();
        with_fec.decode(&packets[21], &mut out).unwrap();
        assert_eq!(out.len(), 960);
        // Recovering from garbage falls back to concealment instead of failing.
        out.clear();
        with_fec.recover(&[0x03, 0x00], &mut out);
        assert_eq!(out.len(), 960);
    }

    #[test]
    fn opus_decodes_stereo_packets_as_mono() {
        let mut enc =
            opus::Encoder::new(48000, opus::Channels::Stereo, opus::Application::Voip).unwrap();
        let mono = sine(440.0, 48000, 8000.0, 960);
        let stereo: Vec<i16> = mono.iter().flat_map(|&s| [s, s]).collect();
        let mut buf = vec![0u8; 1500];
        let n = enc.encode(&stereo, &mut buf).unwrap();
        let mut dec = new_decoder(CodecKind::Opus).unwrap();
        let mut out = Vec::new();
        dec.decode(&buf[..n], &mut out).unwrap();
        assert_eq!(out.len(), 960);
    }

    #[test]
    fn opus_rejects_bad_frame_sizes() {
        let mut enc = new_encoder(CodecKind::Opus, &OpusSettings::default()).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            enc.encode(&[0; 100], &mut out),
            Err(CodecError::FrameSize(100))
        ));
        enc.set_packet_loss(250); // clamped, must not fail
        enc.encode(&[0; 960], &mut out).unwrap();
    }

    #[test]
    fn opus_garbage_payloads_are_errors_not_panics() {
        let mut dec = new_decoder(CodecKind::Opus).unwrap();
        let mut out = Vec::new();
        // Code 3 packet with zero frames; code 3 with 63 × 20 ms (> 120 ms); empty.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
        assert!(dec.decode(&[0xFF, 0xFF, 0xFF], &mut out).is_err());
        assert!(dec.decode(&[], &mut out).is_err());
        // Code 1 (two equal frames) with an odd body length is malformed.
        assert!(dec.decode(&[0x01, 0x00, 0x01, 0x02], &mut out).is_err());
        // Pseudo-random garbage of every length: Ok or Err, never a panic or overlong output.
        let mut x: u32 = 0x1234_5678;
        for len in 1..400 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            out.clear();
            if dec.decode(&p, &mut out).is_ok() {
                assert!(out.len() <= OPUS_MAX_FRAME);
            }
        }
        // The decoder is still usable afterwards.
        out.clear();
        dec.conceal(&mut out);
        assert!(!out.is_empty());
    }
}
