//! `rtp_rtcp`: `krypton_media::rtp::RtpSession` on arbitrary datagrams, in virtual time.
//!
//! The input is a sequence of operations: an op byte, a length byte (255: the rest of the
//! input) and that many bytes. The op byte's low two bits choose `handle_rtp`, `handle_rtcp`,
//! `poll_rtcp` + `stats`, or sending a packet (`packetize`, so SRs get written); its high six
//! bits advance the virtual clock (63: by an hour). Checks that nothing panics and that:
//! * every `Err` of `handle_rtp`/`handle_rtcp` grows `malformed + discarded` by exactly one
//!   (the right one of the two), and every `Ok` grows neither;
//! * datagrams that an independent check finds malformed (too short, version not 2, CSRC list,
//!   extension or padding past the end; RTCP lengths that do not add up) are refused as
//!   malformed;
//! * an accepted RTP packet has a negotiated payload type and a payload inside the datagram;
//! * the RTCP reports we write are accepted by a fresh peer session;
//! * the statistics stay in range (loss fractions 0–1, MOS 1–4.5).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use krypton_media::rtp::{CallStats, RtpConfig, RtpError, RtpSession};
use libfuzzer_sys::fuzz_target;

const PT: u8 = 0;
const DTMF_PT: u8 = 101;

fn config(ssrc: u32) -> RtpConfig {
    let mut c = RtpConfig::new(
        PT,
        8000,
        "198.51.100.2:5000".parse().unwrap(),
        "198.51.100.2:5001".parse().unwrap(),
    );
    c.ssrc = Some(ssrc);
    c.cname = Some("fuzz@krypton".into());
    c.dtmf_payload_type = Some(DTMF_PT);
    c
}

/// RFC 3550 §5.1 checks, independent of `rtp.rs`: `Some(true)` malformed, `Some(false)` an
/// RTCP payload type on the RTP port (RFC 5761), `None` no objection.
fn rtp_malformed(d: &[u8]) -> Option<bool> {
    if d.len() < 12 || d[0] >> 6 != 2 {
        return Some(true);
    }
    if (72..=76).contains(&(d[1] & 0x7f)) {
        return Some(false);
    }
    let mut header = 12 + 4 * usize::from(d[0] & 0x0f);
    if d[0] & 0x10 != 0 {
        if d.len() < header + 4 {
            return Some(true);
        }
        header += 4 + 4 * usize::from(u16::from_be_bytes([d[header + 2], d[header + 3]]));
    }
    if header > d.len() {
        return Some(true);
    }
    if d[0] & 0x20 != 0 {
        let pad = usize::from(d[d.len() - 1]);
        if pad == 0 || header + pad > d.len() {
            return Some(true);
        }
    }
    None
}

/// RFC 3550 A.2 compound-packet checks: every sub-packet is version 2, the lengths add up to
/// the datagram, and only the last one may be padded.
fn rtcp_malformed(d: &[u8]) -> bool {
    if d.len() < 4 {
        return true;
    }
    let mut rest = d;
    while !rest.is_empty() {
        if rest.len() < 4 || rest[0] >> 6 != 2 {
            return true;
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() || (rest[0] & 0x20 != 0 && len < rest.len()) {
            return true;
        }
        rest = &rest[len..];
    }
    false
}

fn counters(s: &CallStats) -> (u64, u64) {
    (s.malformed, s.discarded)
}

fn check_stats(s: &CallStats) {
    assert!((0.0..=1.0).contains(&s.loss_fraction_local), "{s:?}");
    assert!((0.0..=1.0).contains(&s.loss_fraction_remote), "{s:?}");
    assert!((1.0..=4.5).contains(&s.mos), "{s:?}");
    assert!(s.jitter_ms.is_finite() && s.jitter_ms >= 0.0, "{s:?}");
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut session = RtpSession::new(start, config(0x1111_1111));
    let from: SocketAddr = "203.0.113.7:30000".parse().unwrap();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let len = if len == 255 {
            tail.len()
        } else {
            usize::from(len).min(tail.len())
        };
        let (d, tail) = tail.split_at(len);
        rest = tail;
        now += match op >> 2 {
            63 => Duration::from_secs(3600),
            n => Duration::from_millis(5 * u64::from(n)),
        };
        let before = counters(&session.stats(now));
        match op & 3 {
            0 => {
                let r = session.handle_rtp(now, from, d);
                let after = counters(&session.stats(now));
                match &r {
                    Ok(p) => {
                        assert_eq!(after, before);
                        assert!(p.payload_type == PT || p.payload_type == DTMF_PT);
                        assert!(p.payload.len() + 12 <= d.len());
                    }
                    Err(e) if e.is_malformed() => assert_eq!(after, (before.0 + 1, before.1)),
                    Err(_) => assert_eq!(after, (before.0, before.1 + 1)),
                }
                match rtp_malformed(d) {
                    Some(true) => assert!(
                        matches!(&r, Err(e) if e.is_malformed()),
                        "malformed RTP not refused as such: {r:?}"
                    ),
                    Some(false) => assert!(matches!(r, Err(RtpError::UnexpectedPayloadType(_)))),
                    None => {}
                }
            }
            1 => {
                let r = session.handle_rtcp(now, from, d);
                let after = counters(&session.stats(now));
                match r {
                    Ok(()) => assert_eq!(after, before),
                    Err(_) => assert_eq!(after, (before.0 + 1, before.1)),
                }
                if rtcp_malformed(d) {
                    assert!(r.is_err(), "malformed RTCP accepted");
                }
            }
            2 => {
                if let Some(report) = session.poll_rtcp(now) {
                    let mut peer = RtpSession::new(now, config(0x2222_2222));
                    let r = peer.handle_rtcp(now, from, &report);
                    assert_eq!(r, Ok(()), "our own RTCP report {report:02x?}");
                }
                check_stats(&session.stats(now));
            }
            _ => {
                let marker = d.first().is_some_and(|b| b & 1 == 1);
                let out = session.packetize(now, d, 160, marker);
                assert_eq!(out.len(), 12 + d.len());
            }
        }
    }
    check_stats(&session.stats(now));
});
