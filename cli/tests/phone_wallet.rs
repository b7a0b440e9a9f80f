//! `krypton phone --wallet` on a real neo-go devnet, with a stand-in provider: a scripted UDP
//! registrar at the provider's on-chain location that challenges with Bearer (AUTH.md §4) and
//! checks the phone's token with `krypton_auth::verify`. The real provider (Kamailio + the
//! provider service) is tested in `provider_register.rs`; here the phone side: what it looks up
//! on chain, what it signs, and the errors that say what to do when the chain says no.

mod common;

use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Devnet;
use krypton_auth::{Expected, key_matches_address, verify};
use krypton_wallet::{Nep6Wallet, PrivateKey};

const PW: &str = "devnet\n";
const T: Duration = Duration::from_secs(20);
const UUID: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

/// What the stand-in provider saw in a REGISTER whose token verified.
#[derive(Debug)]
struct Admitted {
    iss: String,
    sub: Option<String>,
    inst: Option<String>,
    contact: String,
    supported: String,
    expires: String,
    key_is_the_address: bool,
    /// The signing key (`kid`), hex.
    kid: String,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A registrar for `realm` that answers REGISTERs without a token with a Bearer (and a Digest)
/// challenge, and with a token: 200 if it verifies for `user`, else 403 with the error.
fn stand_in_provider(socket: UdpSocket, realm: String, user: String, tx: mpsc::Sender<Admitted>) {
    socket
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut nonces = 0u32;
    let mut issued: Vec<(String, String)> = Vec::new(); // (Call-ID, nonce)
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
        let mut lines = head.split("\r\n");
        let method = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let reply = |status: &str, extra: &[String]| {
            let mut out = format!("SIP/2.0 {status}\r\n");
            for (n, v) in &headers {
                if n.eq_ignore_ascii_case("Via") {
                    out.push_str(&format!("Via: {v}\r\n"));
                }
            }
            let to = header(&headers, "To").unwrap_or("");
            out.push_str(&format!(
                "From: {}\r\nTo: {to};tag=standin\r\nCall-ID: {}\r\nCSeq: {}\r\n",
                header(&headers, "From").unwrap_or(""),
                header(&headers, "Call-ID").unwrap_or(""),
                header(&headers, "CSeq").unwrap_or("")
            ));
            for h in extra {
                out.push_str(&format!("{h}\r\n"));
            }
            out.push_str("Content-Length: 0\r\n\r\n");
            let _ = socket.send_to(out.as_bytes(), from);
        };
        match method.as_str() {
            "REGISTER" => {}
            "OPTIONS" => {
                reply("200 OK", &[]);
                continue;
            }
            _ => continue,
        }
        let call_id = header(&headers, "Call-ID").unwrap_or("").to_string();
        let token = header(&headers, "Authorization").and_then(|a| a.strip_prefix("Bearer "));
        let Some(token) = token else {
            nonces += 1;
            let nonce = format!("nonce-{nonces}");
            issued.push((call_id, nonce.clone()));
            reply(
                "401 Unauthorized",
                &[
                    format!(
                        r#"WWW-Authenticate: Bearer realm="{realm}", scope="krypton", nonce="{nonce}""#
                    ),
                    format!(r#"WWW-Authenticate: Digest realm="{realm}", nonce="d{nonce}""#),
                ],
            );
            continue;
        };
        let nonce = issued
            .iter()
            .rev()
            .find(|(c, _)| *c == call_id)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        let contact = header(&headers, "Contact").unwrap_or("").to_string();
        let inst = format!("urn:uuid:{UUID}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expect = Expected {
            aud: &realm,
            cid: &call_id,
            nonce: Some(&nonce),
            iss: Some(&user),
            inst: Some(&inst),
        };
        match verify(token, &expect, now) {
            Ok(v) => {
                let expires = header(&headers, "Expires").unwrap_or("").to_string();
                let _ = tx.send(Admitted {
                    key_is_the_address: key_matches_address(&v.kid, &user, None).is_ok(),
                    kid: hex::encode(v.kid),
                    iss: v.iss,
                    sub: v.claims.sub,
                    inst: v.claims.inst,
                    contact: contact.clone(),
                    supported: header(&headers, "Supported").unwrap_or("").to_string(),
                    expires: expires.clone(),
                });
                reply("200 OK", &[format!("Contact: {contact};expires={expires}")]);
            }
            Err(e) => reply(
                "403 Forbidden",
                &[format!(r#"Reason: SIP;cause=403;text="{e}""#)],
            ),
        }
    }
}

#[test]
fn the_wallet_account_registers_with_its_on_chain_provider_or_says_why_not() {
    let d = Devnet::up();
    let k = d.client_with_accounts();
    let (alice, bob, pa) = (
        d.account("alice"),
        d.account("bob"),
        d.account("provider-a"),
    );
    let pw = k.path().join("wallet.pw");
    std::fs::write(&pw, PW).unwrap();
    let pw = pw.to_str().unwrap();
    let as_ = |who: &str, args: &[&str]| {
        let mut a = vec!["--account", who, "--password-stdin"];
        a.extend_from_slice(args);
        k.run(&a, PW)
    };

    // Not registered on chain: says what to run, before asking for any password.
    for args in [
        vec!["phone", "--wallet", bob.as_str(), "--password-file", pw],
        vec!["--account", bob.as_str(), "phone", "--wallet"],
    ] {
        let e = k.run(&args, "").err();
        assert!(
            e.contains("not registered with a provider on chain")
                && e.contains("krypton register --provider"),
            "{e}"
        );
    }

    // A provider whose location is the stand-in registrar; alice registers with it.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let location = socket.local_addr().unwrap().to_string();
    as_(&pa, &["provider", "deploy", "--location", &location]).ok();
    as_(&alice, &["register", "--provider", &pa, "--uuid", UUID]).ok();
    let (tx, rx) = mpsc::channel();
    {
        let (realm, user) = (location.clone(), alice.clone());
        std::thread::spawn(move || stand_in_provider(socket, realm, user, tx));
    }

    let mut phone = d.wallet_phone(&k, &alice, pw, &[]);
    let r = phone
        .wait_any("registered", T)
        .unwrap_or_else(|e| panic!("not registered: {e}; log in {}", k.path().display()));
    assert_eq!(r["account"], alice.as_str(), "{r}");
    assert!(r["expires"].as_u64().unwrap() <= 60, "{r}");
    let admitted = rx.recv_timeout(T).expect("a verified token");
    assert_eq!(admitted.iss, alice);
    assert_eq!(admitted.sub, Some(format!("sip:{alice}@{location}")));
    assert_eq!(admitted.inst, Some(format!("urn:uuid:{UUID}")));
    assert!(admitted.key_is_the_address, "{admitted:?}");
    assert!(
        admitted
            .contact
            .contains(&format!("+sip.instance=\"<urn:uuid:{UUID}>\"")),
        "{admitted:?}"
    );
    assert!(
        admitted.contact.starts_with(&format!("<sip:{alice}@")),
        "{admitted:?}"
    );
    assert!(admitted.supported.contains("krypton"), "{admitted:?}");
    assert_eq!(admitted.expires, "60", "{admitted:?}");
    assert!(phone.quit(T).expect("quits").success());
    while rx.try_recv().is_ok() {}

    // alice authorises a device key that this wallet holds (bob's): the phone signs with it.
    let accounts =
        Nep6Wallet::from_json(&std::fs::read_to_string(d.accounts_file()).unwrap()).unwrap();
    let bob_key = accounts
        .account(&bob)
        .and_then(|a| a.verification_script())
        .and_then(|s| s.single_key())
        .expect("bob's public key")
        .to_hex();
    as_(&alice, &["device-key", "set", "--key", &bob_key]).ok();
    let mut phone = d.wallet_phone(&k, &alice, pw, &[]);
    phone
        .wait_any("registered", T)
        .unwrap_or_else(|e| panic!("not registered with the device key: {e}"));
    let admitted = rx.recv_timeout(T).expect("a verified token");
    assert_eq!(admitted.iss, alice);
    assert_eq!(admitted.kid, bob_key, "signed with the device key");
    assert!(!admitted.key_is_the_address);
    assert!(phone.quit(T).expect("quits").success());

    // A device key this wallet does not hold: a clear error.
    let elsewhere = PrivateKey::generate().public_key().to_hex();
    as_(&alice, &["device-key", "set", "--key", &elsewhere]).ok();
    let e = k
        .run(&["phone", "--wallet", &alice, "--password-file", pw], "")
        .err();
    assert!(
        e.contains("device key on chain") && e.contains("does not hold") && e.contains(&elsewhere),
        "{e}"
    );
    as_(&alice, &["device-key", "clear"]).ok();

    // The provider leaves the chain: the phone says so.
    as_(&pa, &["provider", "undeploy"]).ok();
    let e = k
        .run(&["phone", "--wallet", &alice, "--password-file", pw], "")
        .err();
    assert!(e.contains("is not deployed on chain any more"), "{e}");

    // An address that is not in the wallet.
    let stranger = PrivateKey::generate().public_key().address();
    let e = k
        .run(&["phone", "--wallet", &stranger, "--password-file", pw], "")
        .err();
    assert!(e.contains("is not in this wallet"), "{e}");
}
