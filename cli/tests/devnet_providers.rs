//! `krypton devnet up --providers N`: the devnet plus N KRYPTON providers on loopback, each run as
//! `krypton provider up` would in its own data dir. Deployed on chain at their locations, both
//! answer SIP OPTIONS and their service's /health, a second `up` changes nothing, `status` shows
//! them, and `devnet down` leaves no Kamailio, provider service or node behind.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::{Devnet, Krypton};
use serde_json::Value;

const T: Duration = Duration::from_secs(5);

/// An OPTIONS without a user to `sip`: the status code of the answer.
fn options(sip: SocketAddr) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let local = sock.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKdevnetprobe{port};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=p1\r\n\
         To: <sip:{sip}>\r\n\
         Call-ID: devnet-probe-{port}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        port = local.port()
    );
    sock.send_to(msg.as_bytes(), sip).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer to OPTIONS");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.get(8..11)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a SIP response: {text}"))
}

/// `GET /health` on a provider service: (status code, JSON body).
fn health(service: &str) -> (u16, Value) {
    let addr: SocketAddr = service.trim_start_matches("http://").parse().unwrap();
    let mut s = TcpStream::connect_timeout(&addr, T).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "GET /health HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let code = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Is process `pid` alive (a zombie counts as gone)?
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|x| x.1.chars().next()))
        .is_some_and(|state| state != 'Z')
}

/// Pids of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && alive(pid) {
            found.push((pid, cmd));
        }
    }
    found
}

/// (name, address, location, service pid, Kamailio pid) of each provider in a result.
fn summary(v: &Value) -> Vec<(String, String, String, i64, i64)> {
    v["providers"]
        .as_array()
        .unwrap_or_else(|| panic!("no providers in {v}"))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["address"].as_str().unwrap().to_string(),
                p["location"].as_str().unwrap().to_string(),
                p["service_pid"].as_i64().unwrap_or(0),
                p["kamailio_pid"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// The providers' wallets (the devnet accounts `devnet up` imported into each provider's data
/// dir) leave the keychain with the test.
struct ProviderWallets(std::path::PathBuf);

impl Drop for ProviderWallets {
    fn drop(&mut self) {
        for name in ["provider-a", "provider-b"] {
            let _ = std::process::Command::new(env!("CARGO_BIN_EXE_krypton"))
                .arg("--data-dir")
                .arg(self.0.join(name))
                .args(["--keystore", "keyutils", "wallet", "remove", "--all"])
                .output();
        }
    }
}

#[test]
fn devnet_up_runs_providers_idempotently_and_down_stops_them() {
    let k = Krypton::new();
    let info = k.run(&["devnet", "up", "--providers", "2"], "").ok();
    // Dropping the Devnet runs `devnet down` (providers too), also when an assertion fails.
    let d = Devnet { k, info };
    let _wallets = ProviderWallets(d.k.path().join("devnet/providers"));
    let first = summary(&d.info);
    assert_eq!(first.len(), 2, "{}", d.info);
    for ((name, address, _, service, kamailio), want) in
        first.iter().zip(["provider-a", "provider-b"])
    {
        assert_eq!(name, want);
        assert_eq!(*address, d.account(want));
        assert!(*service > 0 && *kamailio > 0, "{}", d.info);
    }
    assert_ne!(first[0].2, first[1].2, "two locations");

    // On chain, at their locations.
    let on_chain = d.run(&["providers"], "").ok();
    for (name, address, location, ..) in &first {
        let listed = on_chain["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["address"] == address.as_str())
            .unwrap_or_else(|| panic!("{name} is not deployed: {on_chain}"));
        assert_eq!(listed["location"], location.as_str(), "{on_chain}");
    }

    // Both answer SIP and their service is synced with the chain.
    for p in d.info["providers"].as_array().unwrap() {
        let sip: SocketAddr = p["sip"].as_str().unwrap().parse().unwrap();
        assert_eq!(options(sip), 200, "OPTIONS to {p}");
        let (code, h) = health(p["service"].as_str().unwrap());
        assert_eq!(code, 200, "{h}");
        assert_eq!(h["synced"], true, "{h}");
        assert_eq!(h["provider"], p["address"], "{h}");
        assert_eq!(h["providers"], 2, "each sees both providers: {h}");
    }

    // Idempotent: the same processes at the same locations.
    let again = d.run(&["devnet", "up", "--providers", "2"], "").ok();
    assert_eq!(summary(&again), first, "{again}");
    let status = d.run(&["devnet", "status"], "").ok();
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(summary(&status), first, "{status}");
    assert!(
        status["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["running"] == true),
        "{status}"
    );

    // Above the named provider accounts: a clear error, nothing changed.
    let e = d.run(&["devnet", "up", "--providers", "5"], "").err();
    assert!(e.contains("at most 4"), "{e}");

    // Down stops the providers, then the node: none of their processes is left.
    let node = d.info["pid"].as_i64().unwrap();
    let down = d.run(&["devnet", "down"], "").ok();
    assert_eq!(down["stopped"], true, "{down}");
    assert_eq!(
        down["providers_stopped"],
        serde_json::json!(["provider-a", "provider-b"]),
        "{down}"
    );
    for (name, _, _, service, kamailio) in &first {
        assert!(!alive(*service), "{name}'s service {service} still runs");
        assert!(!alive(*kamailio), "{name}'s Kamailio {kamailio} still runs");
    }
    assert!(!alive(node), "the node {node} still runs");
    let left = processes_mentioning(&d.k.path().to_string_lossy());
    assert!(left.is_empty(), "left behind: {left:?}");
    let status = d.run(&["devnet", "status"], "").ok();
    assert_eq!(status["running"], false, "{status}");
    assert!(
        status["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["running"] == false),
        "{status}"
    );
}
