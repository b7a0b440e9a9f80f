//! Phone numbers through the providers' PSTN trunks (`krypton provider up --trunk`), with a
//! baresip gateway standing in for each trunk. Alice's wallet holds two addresses: `alice`, a
//! customer of provider A, and `owner`, a customer of provider B; her phone registers both
//! (`--wallet` twice) and its dial plan sends `+31…` through A and `+44…` through B. With A
//! stopped, `+31…` fails over to B.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Devnet, PW, T};
use krypton_testkit::{Baresip, BaresipConfig, KryptonPhone, SpeechSet, test_dir};
use serde_json::json;

const DOMESTIC: &str = "+31201234567";
const FOREIGN: &str = "+442071234567";

fn gateway(source: &Path, numbers: &[&str], rtp: (u16, u16)) -> Baresip {
    Baresip::start_gateway(
        BaresipConfig {
            user: String::new(),
            password: String::new(),
            domain: String::new(),
            proxy_port: 0,
            codec: "pcmu".into(),
            source: source.to_path_buf(),
            rate: 8000,
            channels: 1,
            auto_answer: true,
            rtp_ports: rtp,
            opus_fec: false,
            contact: None,
            mediaenc: None,
        },
        numbers,
    )
    .expect("baresip gateway")
}

/// Alice calls `number`; `gw` answers it on the account for that number, from `caller` (the
/// address whose provider carried the call); Alice hangs up. Whether Alice saw a failover.
fn call_number(alice: &mut KryptonPhone, gw: &mut Baresip, number: &str, caller: &str) -> bool {
    alice.send(json!({"cmd": "call", "to": number})).unwrap();
    let est = alice
        .wait_any("established", Duration::from_secs(30))
        .unwrap();
    let e = gw
        .wait_for(&["CALL_ESTABLISHED"], T)
        .expect("the gateway answers");
    assert!(e.contains(&format!("sip:{number}@")), "{e}");
    assert!(e.contains(caller), "carried for {caller}: {e}");
    let failed_over = alice
        .unclaimed()
        .iter()
        .any(|x| x["event"] == "failover" && x["call"] == est["call"]);
    alice
        .send(json!({"cmd": "hangup", "call": est["call"]}))
        .unwrap();
    assert_eq!(
        alice.wait_any("ended", T).unwrap()["reason"],
        "local_hangup"
    );
    gw.wait_for(&["CALL_CLOSED"], T).unwrap();
    failed_over
}

#[test]
fn numbers_go_through_the_trunks_by_dial_plan_and_fail_over() {
    let files = test_dir("krypton-provider-pstn-").unwrap();
    let speech = SpeechSet::create(files.path()).unwrap();
    let mut gw_a = gateway(&speech.peer8k, &[DOMESTIC], (17200, 17299));
    let mut gw_b = gateway(&speech.peer8k, &[DOMESTIC, FOREIGN], (17300, 17399));
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), "devnet").ok();
    let trunk_a = format!("127.0.0.1:{}", gw_a.sip_port);
    let trunk_b = format!("127.0.0.1:{}", gw_b.sip_port);
    let pa = d.provider_up("provider-a", &["--trunk", &trunk_a]);
    let _pb = d.provider_up("provider-b", &["--trunk", &trunk_b]);
    d.register_on_chain("alice", "provider-a");
    d.register_on_chain("owner", "provider-b");
    let (alice, owner) = (d.account("alice"), d.account("owner"));

    let pw = files.path().join("pw");
    std::fs::write(&pw, PW).unwrap();
    let config = files.path().join("alice.toml");
    std::fs::write(
        &config,
        format!(
            "codecs = [\"pcmu\"]\n[dial_plan]\ndefault = [\"{alice}\"]\n\
             [[dial_plan.rules]]\nmatch = {{ prefix = \"+31\" }}\naccounts = [\"{alice}\", \"{owner}\"]\n\
             [[dial_plan.rules]]\nmatch = {{ prefix = \"+44\" }}\naccounts = [\"{owner}\"]\n"
        ),
    )
    .unwrap();
    let k = d.client_with_accounts();
    let mut phone = d.wallet_phone(
        &k,
        &alice,
        pw.to_str().unwrap(),
        &[
            "--wallet",
            &owner,
            "--config",
            config.to_str().unwrap(),
            "--play",
            speech.ref8k.to_str().unwrap(),
        ],
    );
    for address in [&alice, &owner] {
        phone
            .wait("registered", T, |e| e["account"] == address.as_str())
            .unwrap_or_else(|e| panic!("{address} not registered: {e}"));
    }

    // Domestic through A's trunk, foreign through B's.
    assert!(!call_number(&mut phone, &mut gw_a, DOMESTIC, &alice));
    assert!(!call_number(&mut phone, &mut gw_b, FOREIGN, &owner));

    // A stops: the domestic number fails over to B's trunk.
    pa.0.run(&["provider", "down"], "").ok();
    assert!(
        call_number(&mut phone, &mut gw_b, DOMESTIC, &owner),
        "the call reached B after A failed"
    );
    phone.quit(T);
}
