//! What one call's media path costs, without devices or sockets: per 20 ms frame, encode →
//! RTP packetize → RTP receive → jitter buffer → decode, for Opus (32 kbit/s, in-band FEC,
//! complexity 9) and PCMU. Also the delay the jitter buffer adds on a clean path, and what one
//! concealed G.711 frame costs (Appendix I: pitch search on the first lost frame of a loss).
//!
//! Run with `cargo bench -p krypton-media --bench media_path`. Figures are medians of several
//! passes over 30 s of audio; "share of a core" = CPU time per frame / 20 ms, so 1 / share is how
//! many calls' media one core could carry (signalling, sockets and devices not included).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use krypton_media::codec::{self, CodecKind, OpusSettings};
use krypton_media::engine::jitter_config;
use krypton_media::jitter::{JitterBuffer, Playout};
use krypton_media::rtp::{RtpConfig, RtpSession};

const FRAMES: usize = 1500; // 30 s

/// A voice-like test signal: two drifting tones with a syllable-rate envelope.
fn signal(rate: u32, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let s = (2.0 * std::f64::consts::PI * (180.0 + 20.0 * t.sin()) * t).sin()
                + 0.5 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin();
            (8000.0 * env * s) as i16
        })
        .collect()
}

/// One pass of the whole path over FRAMES frames; returns CPU time per frame.
fn pass(kind: CodecKind) -> Duration {
    let samples = codec::frame_samples(kind);
    let pcm = signal(kind.pcm_rate(), samples * FRAMES);
    let mut enc = codec::new_encoder(kind, &OpusSettings::default()).expect("encoder");
    let mut dec = codec::new_decoder(kind).expect("decoder");
    let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let pt = kind.static_payload_type().unwrap_or(111);
    let clock = kind.rtp_clock_rate();
    let frame_ts = clock / 50;
    let t0 = Instant::now();
    let mut tx = RtpSession::new(t0, RtpConfig::new(pt, clock, b, b));
    let mut rx = RtpSession::new(t0, RtpConfig::new(pt, clock, a, a));
    let mut jb = JitterBuffer::new(jitter_config(kind));
    let mut payload = Vec::with_capacity(1500);
    let mut out = Vec::with_capacity(samples);
    let start = Instant::now();
    for f in 0..FRAMES {
        // Virtual time: frame f is sent and arrives at f × 20 ms and is played 1 ms later.
        let now = t0 + Duration::from_millis(20 * f as u64);
        payload.clear();
        enc.encode(&pcm[f * samples..(f + 1) * samples], &mut payload)
            .expect("encode");
        let datagram = tx.packetize(now, &payload, frame_ts, f == 0);
        let p = rx.handle_rtp(now, a, &datagram).expect("valid RTP");
        jb.push(now, p.sequence, p.timestamp, p.payload);
        out.clear();
        match jb.pop(now + Duration::from_millis(1)) {
            Playout::Frame(b) => dec.decode(&b, &mut out).expect("decode"),
            Playout::Missing { next: Some(n) } => dec.recover(&n, &mut out),
            Playout::Missing { next: None } => dec.conceal(&mut out),
            Playout::Silence => {}
        }
        black_box(&out);
    }
    start.elapsed() / FRAMES as u32
}

/// CPU time of one concealed PCMU frame (`Decoder::conceal`), for the first frame of a loss
/// (pitch search, two repeat lengths) and for the second and third (one more period each, then
/// the fade), over FRAMES frames of signal with a burst of three losses every ten frames.
fn g711_conceal_cost() -> (Duration, Duration) {
    let kind = CodecKind::Pcmu;
    let samples = codec::frame_samples(kind);
    let pcm = signal(kind.pcm_rate(), samples * FRAMES);
    let mut enc = codec::new_encoder(kind, &OpusSettings::default()).expect("encoder");
    let mut dec = codec::new_decoder(kind).expect("decoder");
    let mut payload = Vec::with_capacity(samples);
    let mut out = Vec::with_capacity(samples);
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for (f, frame) in pcm.chunks(samples).enumerate() {
        out.clear();
        let loss = f % 10;
        if (7..10).contains(&loss) {
            let start = Instant::now();
            dec.conceal(&mut out);
            let took = start.elapsed();
            if loss == 7 { &mut first } else { &mut later }.push(took);
        } else {
            payload.clear();
            enc.encode(frame, &mut payload).expect("encode");
            dec.decode(&payload, &mut out).expect("decode");
        }
        black_box(&out);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    (median(&mut first), median(&mut later))
}

/// The playout delay the buffer settles at on a clean path, for a few arrival phases.
fn clean_path_delay() -> Vec<f64> {
    [1u64, 7, 13, 19]
        .iter()
        .map(|&phase| {
            let t0 = Instant::now();
            let mut jb = JitterBuffer::new(jitter_config(CodecKind::Opus));
            let mut delays = Vec::new();
            for f in 0..1500u32 {
                let arrive = t0 + Duration::from_millis(20 * u64::from(f));
                jb.push(
                    arrive,
                    f as u16,
                    f * 960,
                    bytes::Bytes::from_static(&[1; 80]),
                );
                jb.pop(arrive + Duration::from_millis(phase));
                if f > 500 {
                    delays.push(jb.stats().current_delay.as_secs_f64() * 1000.0);
                }
            }
            delays.iter().sum::<f64>() / delays.len() as f64
        })
        .collect()
}

fn main() {
    for kind in [CodecKind::Opus, CodecKind::Pcmu] {
        let mut times: Vec<Duration> = (0..5).map(|_| pass(kind)).collect();
        times.sort();
        let per_frame = times[2];
        let share = per_frame.as_secs_f64() / 0.020;
        println!(
            "{:<6} media path per 20 ms frame: median {:>8.1} µs  = {:>5.2} % of a core per call  (≈ {:.0} calls per core; min {:.1} µs, max {:.1} µs, 5 passes × 30 s)",
            kind.encoding_name(),
            per_frame.as_secs_f64() * 1e6,
            share * 100.0,
            1.0 / share,
            times[0].as_secs_f64() * 1e6,
            times[4].as_secs_f64() * 1e6,
        );
    }
    let (mut first, mut later): (Vec<Duration>, Vec<Duration>) =
        (0..5).map(|_| g711_conceal_cost()).unzip();
    first.sort();
    later.sort();
    println!(
        "PCMU   concealed frame (G.711 App. I): first of a loss {:.2} µs, 2nd/3rd {:.2} µs  (medians; 5 passes × {} losses of 3 frames)",
        first[2].as_secs_f64() * 1e6,
        later[2].as_secs_f64() * 1e6,
        FRAMES / 10,
    );
    let delays = clean_path_delay();
    println!(
        "jitter buffer delay on a clean path (arrival → playout, by playout phase 1/7/13/19 ms): {}",
        delays
            .iter()
            .map(|d| format!("{d:.1} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
