//! `sdp`: our SDP offer/answer (`krypton_media::sdp`), on arbitrary session descriptions.
//!
//! The first byte picks one of two fixed `LocalMedia` (IPv4 with Opus, PCMU, PCMA and DTMF;
//! IPv6 with PCMU only, send-only, no DTMF); the rest is the SDP body, lossily UTF-8 as a SIP
//! body reaches us. Checks that `answer_offer` and `apply_answer` never panic, that a
//! negotiated codec is one we offered, that telephone-event is negotiated only when we asked
//! for it, and that the answer we write parses again (`apply_answer` on it does not panic).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use krypton_media::codec::CodecKind;
use krypton_media::sdp::{self, Direction, LocalMedia, Negotiated, SrtpPolicy};
use krypton_media::srtp::{CryptoAttribute, CryptoSuite};
use libfuzzer_sys::fuzz_target;

fn local(v6: bool) -> LocalMedia {
    if v6 {
        LocalMedia {
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            rtp_port: 40000,
            rtcp_port: 40001,
            codecs: vec![CodecKind::Pcmu],
            dtmf: false,
            direction: Direction::SendOnly,
            session_id: 1,
            session_version: 1,
            srtp: SrtpPolicy::Off,
            crypto: Vec::new(),
        }
    } else {
        LocalMedia {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            rtp_port: 4000,
            rtcp_port: 4001,
            codecs: vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma],
            dtmf: true,
            direction: Direction::SendRecv,
            session_id: 42,
            session_version: 7,
            // Offers with a=crypto exercise the SDES parser and crypto negotiation.
            srtp: SrtpPolicy::Optional,
            crypto: CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80)
                .into_iter()
                .collect(),
        }
    }
}

fn check(n: &Negotiated, local: &LocalMedia) {
    assert!(local.codecs.contains(&n.codec), "negotiated {:?}", n.codec);
    assert!(local.dtmf || n.dtmf_payload_type.is_none(), "{n:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let local = local(first & 1 == 1);
    let text = String::from_utf8_lossy(body);
    if let Ok((answer, n)) = sdp::answer_offer(&text, &local) {
        check(&n, &local);
        if let Ok(again) = sdp::apply_answer(&answer, &local) {
            check(&again, &local);
        }
    }
    if let Ok(n) = sdp::apply_answer(&text, &local) {
        check(&n, &local);
    }
});
