//! `sip_message`: rsipstack's SIP parser, as our user agent runs it on every datagram.
//!
//! Checks that `rsipstack::sip::SipMessage::try_from(&[u8])` never panics on arbitrary bytes,
//! and that on a message it accepts, the accessors `krypton_sip::ua` uses (To/From with their
//! URI and tag, Call-ID, CSeq number and method, Via, Contact and Record-Route lists, every
//! header's name and value, `header_value`, the status line, serialisation) do not panic
//! either. The `WWW-Authenticate`/`Proxy-Authenticate` values go on to our digest parser, as
//! in the UA's 401/407 handling.
#![no_main]

use krypton_sip::digest::{self, Credentials, DigestClient};
use libfuzzer_sys::fuzz_target;
use rsipstack::sip::{HasHeaders, HeadersExt, SipMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = SipMessage::try_from(data) else {
        return;
    };
    match &msg {
        SipMessage::Request(r) => {
            let _ = r.uri.user();
            let _ = r.uri.host_with_port.to_string();
            let _ = r.uri.to_string();
            let _ = r.method.to_string();
        }
        SipMessage::Response(r) => {
            let _ = r.status_code.code();
            let _ = r.status_code.text();
        }
    }
    headers(&msg);
    let _ = msg.to_bytes();
    let _ = msg.to_string();
});

/// The accessors the user agent calls on incoming requests and responses.
fn headers<M: HeadersExt + HasHeaders>(m: &M) {
    if let Ok(to) = m.to_header() {
        let _ = to.tag();
        if let Ok(uri) = to.uri() {
            let _ = uri.user();
            let _ = uri.host_with_port.to_string();
            let _ = uri.to_string();
        }
    }
    if let Ok(from) = m.from_header() {
        let _ = from.tag();
        if let Ok(uri) = from.uri() {
            let _ = uri.user();
            let _ = uri.to_string();
        }
    }
    if let Ok(call_id) = m.call_id_header() {
        let _ = call_id.value().to_string();
    }
    if let Ok(cseq) = m.cseq_header() {
        let _ = cseq.seq();
        let _ = cseq.method();
    }
    let _ = m.top_via_header();
    let _ = m.has_multiple_vias();
    let _ = m.typed_contact_headers();
    let _ = m.typed_record_route_headers();
    let _ = m.header_value("Content-Type");
    let mut client = DigestClient::new();
    let creds = Credentials::new("alice", "secret");
    for h in m.headers().iter() {
        let name = h.name();
        let value = h.value();
        if name.eq_ignore_ascii_case("WWW-Authenticate")
            || name.eq_ignore_ascii_case("Proxy-Authenticate")
        {
            if let Ok(challenges) = digest::parse_challenges(value)
                && let Some(ch) = digest::choose(&challenges)
            {
                let _ = client.authorize_with_cnonce(ch, &creds, "REGISTER", "sip:r", b"", "c");
            }
        }
    }
}
