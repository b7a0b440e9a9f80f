//! `digest_challenge`: our HTTP Digest challenge parser and response builder
//! (`krypton_sip::digest`), on arbitrary `WWW-Authenticate` / `Proxy-Authenticate` values.
//!
//! The input is split at the first NUL byte: the first part is the header value (lossily
//! UTF-8, as header values reach us), the rest the message body (hashed for `qop=auth-int`).
//! Checks that `parse_challenges`, `choose`, `choose_per_realm` and
//! `DigestClient::authorize_with_cnonce` on every parsed challenge never panic; that a
//! challenge `choose` picks is `is_supported`; and that answering a supported challenge fails
//! only for a value with control characters (`InvalidValue`), never for the algorithm or qop
//! that `is_supported` approved.
#![no_main]

use krypton_sip::digest::{self, Credentials, DigestClient, DigestError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (value, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let value = String::from_utf8_lossy(value);
    let Ok(challenges) = digest::parse_challenges(&value) else {
        return;
    };
    let creds = Credentials::new("alice", "secret");
    let mut client = DigestClient::new();
    if let Some(ch) = digest::choose(&challenges) {
        assert!(ch.is_supported(), "choose picked an unsupported challenge");
    }
    let _ = digest::choose_per_realm(&challenges);
    for ch in &challenges {
        let r = client.authorize_with_cnonce(
            ch,
            &creds,
            "INVITE",
            "sip:bob@example.org",
            body,
            "0a4f113b",
        );
        if ch.is_supported() {
            match r {
                Ok(h) => assert!(h.starts_with("Digest "), "{h}"),
                Err(DigestError::InvalidValue(_)) => {}
                Err(e) => panic!("supported challenge {ch:?} refused: {e}"),
            }
        } else {
            assert!(r.is_err(), "unsupported challenge {ch:?} answered");
        }
    }
});
