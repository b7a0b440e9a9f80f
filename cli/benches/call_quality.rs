//! Voice quality of real calls through a loopback Kamailio, scored with PESQ (ITU-T P.862):
//!
//! 1. with 0 % and 5 % random loss on the RTP ports (an iptables `statistic` rule on INPUT; no
//!    netem on this kernel — and not on OUTPUT: a packet dropped there makes the sender's
//!    `sendto` fail with EPERM, which no real network does, and baresip then does not advance its
//!    RTP timestamp, so its clock appears to slow down by a frame per loss), krypton ↔ baresip
//!    in both directions next to baresip → baresip, Opus (baresip with its in-band FEC on,
//!    krypton's following the loss RTCP reports) and PCMU;
//! 2. how many concurrent calls one `krypton phone` holds: one phone calls another N times at
//!    once, both play speech, the callee records every call; each call is scored.
//!
//! Run with `cargo bench -p krypton-cli --bench call_quality` (as root for the loss rule;
//! without it the loss rows are skipped). `KRYPTON_BENCH_CALLS=1,4,8,16` sets the concurrency
//! steps, `KRYPTON_BENCH_LOSS=0,5` the loss steps (an empty list skips a part), and
//! `KRYPTON_BENCH_CODECS=opus,pcmu` the codecs of the loss rows, `KRYPTON_BENCH_REPEAT=3` how many calls each lossy row takes the median of, and
//! `KRYPTON_BENCH_VERBOSE=1` prints krypton's call statistics. It takes a few minutes: every call is 13 s of real time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use krypton_testkit::{
    Baresip, BaresipConfig, DigestAlgorithm, Kamailio, KamailioConfig, KryptonPhone, PesqMode,
    SpeechSet, pesq, test_dir,
};
use serde_json::json;

const T: Duration = Duration::from_secs(20);
const CALL_SECONDS: f64 = 13.0;
const RTP_RANGE: &str = "16000:16199";

struct Env {
    dir: tempfile::TempDir,
    k: Kamailio,
    speech: SpeechSet,
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_krypton"))
}

fn env() -> Env {
    let dir = test_dir("krypton-bench-").unwrap();
    if std::env::var_os("KRYPTON_KEEP_TEST_FILES").is_some() {
        println!("files kept in {}", dir.path().display());
    }
    let k = Kamailio::start(KamailioConfig {
        users: ["alice", "bob", "carol"]
            .iter()
            .map(|u| (u.to_string(), format!("{u}-pw")))
            .collect(),
        algorithm: DigestAlgorithm::Md5,
        ..Default::default()
    })
    .unwrap();
    let d = dir.path();
    Env {
        speech: SpeechSet::create(d).unwrap(),
        dir,
        k,
    }
}

fn baresip(e: &Env, user: &str, codec: &str, auto: bool, ports: (u16, u16)) -> Baresip {
    let (source, rate, ch) = e.speech.peer_source(codec);
    let mut b = Baresip::start(BaresipConfig {
        user: user.into(),
        password: format!("{user}-pw"),
        domain: e.k.domain().into(),
        proxy_port: e.k.sip_port,
        codec: codec.into(),
        source,
        rate,
        channels: ch,
        auto_answer: auto,
        rtp_ports: ports,
        opus_fec: true,
        contact: None,
        mediaenc: None,
    })
    .unwrap();
    b.wait_registered().unwrap();
    b
}

fn phone(e: &Env, user: &str, codec: &str, extra: &[&str]) -> KryptonPhone {
    let pw = e.dir.path().join(format!("{user}.pw"));
    std::fs::write(&pw, format!("{user}-pw\n")).unwrap();
    let account = format!("sip:{user}@{}", e.k.domain());
    let proxy = e.k.proxy_uri("udp");
    let mut args = vec![
        "--account",
        &account,
        "--proxy",
        &proxy,
        "--password-file",
        pw.to_str().unwrap(),
        "--codecs",
        codec,
        "--play",
        e.speech.ref16k.to_str().unwrap(),
        "--rtp-ports",
        "16000-16099",
    ];
    args.extend_from_slice(extra);
    let mut p = KryptonPhone::start(bin(), &e.dir.path().join(user), &args).unwrap();
    p.wait_any("registered", T).unwrap();
    p
}

fn reference<'a>(e: &'a Env, codec: &str) -> (&'a Path, PesqMode) {
    e.speech.reference(codec)
}

fn loss(percent: u32) -> bool {
    let _ = Command::new("iptables")
        .args([
            "-D",
            "INPUT",
            "-i",
            "lo",
            "-p",
            "udp",
            "--dport",
            RTP_RANGE,
            "-j",
            "KRYPTONLOSS",
        ])
        .output();
    let _ = Command::new("iptables")
        .args(["-F", "KRYPTONLOSS"])
        .output();
    let _ = Command::new("iptables")
        .args(["-X", "KRYPTONLOSS"])
        .output();
    if percent == 0 {
        return true;
    }
    let p = format!("{:.2}", f64::from(percent) / 100.0);
    let ok = |args: &[&str]| {
        Command::new("iptables")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    ok(&["-N", "KRYPTONLOSS"])
        && ok(&[
            "-A",
            "KRYPTONLOSS",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p,
            "-j",
            "DROP",
        ])
        && ok(&[
            "-I",
            "INPUT",
            "-i",
            "lo",
            "-p",
            "udp",
            "--dport",
            RTP_RANGE,
            "-j",
            "KRYPTONLOSS",
        ])
}

/// krypton (alice) calls baresip (bob); returns (krypton→baresip, baresip→krypton).
fn krypton_and_baresip(e: &Env, codec: &str) -> (f64, f64) {
    let mut b = baresip(e, "bob", codec, true, (16100, 16199));
    let rec = e.dir.path().join(format!("k-{codec}.wav"));
    let mut p = phone(
        e,
        "alice",
        codec,
        &[
            "--record",
            rec.to_str().unwrap(),
            "--hangup-after",
            &CALL_SECONDS.to_string(),
        ],
    );
    p.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    let ended = p.wait_any("ended", Duration::from_secs(40)).unwrap();
    if std::env::var_os("KRYPTON_BENCH_VERBOSE").is_some() {
        println!("    krypton's call stats: {}", ended["stats"]);
    }
    b.wait_for(&["CALL_CLOSED"], T).unwrap();
    let (r, m) = reference(e, codec);
    let to_b = pesq(r, &b.received_audio().unwrap(), m).unwrap().mos;
    let to_k = pesq(r, &rec, m).unwrap().mos;
    p.quit(T);
    (to_b, to_k)
}

fn baresip_and_baresip(e: &Env, codec: &str) -> f64 {
    let mut bob = baresip(e, "bob", codec, true, (16100, 16149));
    let mut carol = baresip(e, "carol", codec, false, (16150, 16199));
    carol
        .command("dial", &format!("sip:bob@{}", e.k.domain()))
        .unwrap();
    carol.wait_for(&["CALL_ESTABLISHED"], T).unwrap();
    // The length of the speech: the call must last that long.
    std::thread::sleep(Duration::from_secs_f64(CALL_SECONDS));
    carol.command("hangup", "").unwrap();
    bob.wait_for(&["CALL_CLOSED"], T).unwrap();
    let (r, m) = reference(e, codec);
    pesq(r, &bob.received_audio().unwrap(), m).unwrap().mos
}

fn concurrent(e: &Env, n: usize) -> Vec<f64> {
    let recs = e.dir.path().join(format!("conc{n}"));
    std::fs::create_dir_all(&recs).unwrap();
    let pattern = recs.join("call-{call}.wav");
    let mut callee = phone(
        e,
        "bob",
        "opus",
        &["--auto-answer", "--record", pattern.to_str().unwrap()],
    );
    let mut caller = phone(
        e,
        "alice",
        "opus",
        &["--hangup-after", &CALL_SECONDS.to_string()],
    );
    for _ in 0..n {
        caller.send(json!({"cmd": "call", "to": "bob"})).unwrap();
    }
    for _ in 0..n {
        caller.wait_any("ended", Duration::from_secs(60)).unwrap();
    }
    for _ in 0..n {
        callee.wait_any("ended", T).unwrap();
    }
    caller.quit(T);
    callee.quit(T);
    let mut scores: Vec<f64> = std::fs::read_dir(&recs)
        .unwrap()
        .filter_map(Result::ok)
        .map(|f| {
            pesq(&e.speech.ref16k, &f.path(), PesqMode::Wide)
                .map(|s| s.mos)
                .unwrap_or(0.0)
        })
        .collect();
    scores.sort_by(f64::total_cmp);
    scores
}

/// "median (all runs)" of the scores, e.g. `3.01 (2.95 3.01 3.20)`.
fn median(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let all: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
    if v.len() == 1 {
        return all[0].clone();
    }
    format!("{:.2} ({})", v[v.len() / 2], all.join(" "))
}

/// Removes the loss rule however the benchmark ends (it is on loopback for the whole machine).
struct NoLossOnExit;

impl Drop for NoLossOnExit {
    fn drop(&mut self) {
        loss(0);
    }
}

fn main() {
    let _cleanup = NoLossOnExit;
    let e = env();
    println!(
        "PESQ (MOS-LQO; Opus wideband, baresip with its in-band FEC on, krypton's FEC following RTCP loss; PCMU narrowband), 11.2 s speech:"
    );
    let loss_steps: Vec<u32> = std::env::var("KRYPTON_BENCH_LOSS")
        .unwrap_or_else(|_| "0,5".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let repeat: usize = std::env::var("KRYPTON_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let codecs: Vec<String> = std::env::var("KRYPTON_BENCH_CODECS")
        .unwrap_or_else(|_| "opus,pcmu".into())
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    for percent in loss_steps {
        if !loss(percent) {
            println!("  {percent} % loss: skipped (needs root and iptables)");
            continue;
        }
        // Random loss hits different frames in every call (speech or pause), so a lossy row
        // is the median of several calls.
        let runs = if percent == 0 { 1 } else { repeat };
        for codec in &codecs {
            let codec = codec.as_str();
            let (mut kb, mut bk, mut bb) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (to_b, to_k) = krypton_and_baresip(&e, codec);
                kb.push(to_b);
                bk.push(to_k);
                bb.push(baresip_and_baresip(&e, codec));
            }
            println!(
                "  {percent} % loss {codec:<5} krypton→baresip {}  baresip→krypton {}  baresip→baresip {}",
                median(&mut kb),
                median(&mut bk),
                median(&mut bb)
            );
        }
    }
    loss(0);
    let steps: Vec<usize> = std::env::var("KRYPTON_BENCH_CALLS")
        .unwrap_or_else(|_| "1,4,8,16".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("concurrent Opus calls between two krypton phones (callee's recordings):");
    for n in steps {
        let s = concurrent(&e, n);
        if s.is_empty() {
            println!("  {n:>3} calls: no recordings");
            continue;
        }
        println!(
            "  {n:>3} calls: PESQ min {:.2}  median {:.2}  max {:.2}  ({} scored)",
            s[0],
            s[s.len() / 2],
            s[s.len() - 1],
            s.len()
        );
    }
}
