//! `jitter`: `krypton_media::jitter::JitterBuffer` under arbitrary push/pop sequences.
//!
//! The first byte picks the configuration: the engine's G.711 (8000 Hz, 160 per frame) or
//! Opus (48000 Hz, 960) buffer, or, for a quarter of inputs, one built from the next 10 bytes
//! (any clock rate, frame length and delays, which `JitterBuffer::new` promises to repair).
//! Then each op byte either pushes a packet (2-byte sequence number, 4-byte timestamp, 1-byte
//! payload length, payload) or pops, after advancing the virtual clock by 0–126 ms, or, with
//! the top bit, by 0.1–25.5 s taken from the next byte. Checks that nothing panics, that the
//! buffer never plays more frames than were pushed (frames played + still buffered ≤ pushed),
//! that every frame it plays is one that was pushed, and that `stats().received` counts pushes.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krypton_media::jitter::{JitterBuffer, JitterConfig, Playout};
use libfuzzer_sys::fuzz_target;

fn engine_config(clock: u32) -> JitterConfig {
    JitterConfig {
        clock_rate: clock,
        frame_ts: clock / 1000 * 20,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        initial_delay: Duration::from_millis(20),
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let Some(&[mode]) = take(&mut rest, 1) else {
        return;
    };
    let config = match mode & 3 {
        0 | 1 => engine_config(8000),
        2 => engine_config(48000),
        _ => {
            let Some(c) = take(&mut rest, 10) else {
                return;
            };
            JitterConfig {
                clock_rate: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                frame_ts: u32::from(u16::from_be_bytes([c[4], c[5]])),
                min_delay: Duration::from_millis(u64::from(c[6]) * 4),
                max_delay: Duration::from_millis(u64::from(u16::from_be_bytes([c[7], c[8]]))),
                initial_delay: Duration::from_millis(u64::from(c[9]) * 4),
            }
        }
    };
    let mut jb = JitterBuffer::new(config);
    let mut now = Instant::now();
    let (mut pushed, mut played) = (0u64, 0u64);
    // Every payload is tagged with its push number, so a played frame can be traced.
    let mut outstanding: HashSet<u64> = HashSet::new();
    while let Some(&[op]) = take(&mut rest, 1) {
        if op & 0x80 != 0 {
            let Some(&[n]) = take(&mut rest, 1) else {
                break;
            };
            now += Duration::from_millis(100 * u64::from(n));
        } else {
            now += Duration::from_millis(2 * u64::from((op >> 1) & 0x3f));
        }
        if op & 1 == 0 {
            let Some(h) = take(&mut rest, 7) else {
                break;
            };
            let seq = u16::from_be_bytes([h[0], h[1]]);
            let ts = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
            let extra = take(&mut rest, usize::from(h[6] % 64)).unwrap_or_default();
            let mut payload = pushed.to_be_bytes().to_vec();
            payload.extend_from_slice(extra);
            outstanding.insert(pushed);
            pushed += 1;
            jb.push(now, seq, ts, Bytes::from(payload));
            assert_eq!(jb.stats().received, pushed);
        } else {
            match jb.pop(now) {
                Playout::Frame(p) => {
                    played += 1;
                    let id = u64::from_be_bytes(p[..8].try_into().expect("tagged payload"));
                    assert!(
                        outstanding.remove(&id),
                        "frame {id} played twice or never pushed"
                    );
                }
                Playout::Missing { next: Some(p) } => {
                    let id = u64::from_be_bytes(p[..8].try_into().expect("tagged payload"));
                    assert!(
                        outstanding.contains(&id),
                        "FEC peek at a frame not buffered"
                    );
                }
                Playout::Missing { next: None } | Playout::Silence => {}
            }
        }
        assert!(
            played + jb.buffered() as u64 <= pushed,
            "played {played} + buffered {} > pushed {pushed}",
            jb.buffered()
        );
    }
});
