//! `dtmf`: RFC 4733 telephone-event payloads (`krypton_media::dtmf`).
//!
//! Checks that `DtmfEvent::decode` never panics, fails exactly for payloads shorter than four
//! bytes or events above 15, and round-trips through `encode` (less the reserved R bit); then
//! feeds the input as a sequence of packets (4-byte RTP timestamp, 1 length byte, payload) to
//! one `DtmfReceiver` and checks that it never panics, reports the digit of the packet that
//! starts an event, errs exactly when `decode` does, and never reports a second digit for the
//! timestamp it has just reported.
#![no_main]

use krypton_media::dtmf::{DtmfEvent, DtmfReceiver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match DtmfEvent::decode(data) {
        Ok(ev) => {
            assert!(data.len() >= 4 && data[0] <= 15);
            let enc = ev.encode().expect("a decoded digit encodes");
            assert_eq!(enc, [data[0], data[1] & 0xbf, data[2], data[3]]);
        }
        Err(_) => assert!(data.len() < 4 || data[0] > 15),
    }

    let mut rx = DtmfReceiver::new();
    let mut rest = data;
    let mut last_reported: Option<u32> = None;
    while let Some((ts, tail)) = rest.split_first_chunk::<4>() {
        let ts = u32::from_be_bytes(*ts);
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let len = usize::from(len % 8).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let decoded = DtmfEvent::decode(payload);
        match rx.handle(ts, payload) {
            Ok(Some(digit)) => {
                assert_eq!(Some(digit), decoded.as_ref().ok().map(|e| e.digit));
                assert_ne!(last_reported, Some(ts), "two digits for one event");
                last_reported = Some(ts);
            }
            Ok(None) => assert!(decoded.is_ok()),
            Err(e) => assert_eq!(Err(e), decoded),
        }
    }
});
