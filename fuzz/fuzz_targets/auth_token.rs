//! `auth_token`: the Bearer token verifier (`krypton_auth::verify`) and the nonce checker, on
//! arbitrary input.
//!
//! The input is used twice: as a whole token string (strict parsing must refuse it without
//! panicking), and split at the first NUL into a header and a payload that are *signed with a
//! fixed key*, so that the header and claim checks behind the signature are reached too. Checks
//! that nothing panics and that a token `verify` accepts really satisfies what was expected:
//! the audience, the Call-ID, `now ≤ exp ≤ iat + 60`, `iat ≤ now + 5`, and the signing key.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use krypton_auth::{Expected, NonceIssuer, verify};
use krypton_wallet::PrivateKey;
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_764_070_030;

fuzz_target!(|data: &[u8]| {
    let expect = Expected {
        aud: "provider.test",
        cid: "call-1",
        nonce: None,
        iss: None,
        inst: None,
    };
    let text = String::from_utf8_lossy(data);
    let _ = verify(&text, &expect, NOW);
    let _ = NonceIssuer::new(&[7; 32]).check(&text, NOW, "call-1");

    let key = PrivateKey::from_bytes(&[0x11; 32]).expect("a valid scalar");
    let (header, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&br#"{"alg":"ES256","typ":"JWT","kid":"KID"}"#[..], data),
    };
    let kid = hex::encode(key.public_key().to_compressed());
    let header = String::from_utf8_lossy(header).replace("KID", &kid);
    let mut token = URL_SAFE_NO_PAD.encode(header.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig));
    if let Ok(v) = verify(&token, &expect, NOW) {
        let c = &v.claims;
        assert_eq!(c.aud, expect.aud);
        assert_eq!(c.cid, expect.cid);
        assert!(NOW <= c.exp && c.exp <= c.iat + 60 && c.iat <= NOW + 5, "{c:?}");
        assert_eq!(v.kid, key.public_key().to_compressed());
    }
});
