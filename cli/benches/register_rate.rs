//! Authenticated REGISTERs per second at a real KRYPTON provider (provider/AUTH.md §4): a devnet,
//! one provider (`krypton provider up`: Kamailio + the provider service), a few users registered
//! on chain, and `--concurrency` UDP clients (one socket each) that each do the whole handshake
//! again and again: REGISTER → 401 with a Bearer nonce → mint an ES256 token (the client's own
//! cost; nothing is pre-minted) → REGISTER with `Authorization: Bearer` → 200.
//!
//! ```sh
//! cargo bench -p krypton-cli --bench register_rate
//! cargo bench -p krypton-cli --bench register_rate -- --seconds 5 --concurrency 48
//! ```
//!
//! (Like the tests, it needs the keyutils keychain; inside a session keyring if `krypton` cannot
//! make one: `keyctl session - cargo bench …`.)
//!
//! Phases, each printed as a table and all together as one JSON line (`{"bench":"register_rate",…}`):
//!
//! 1. **client**: how many tokens the client mints per second, alone, on one thread and on all
//!    client threads, so the figures below are known not to be the client's limit;
//! 2. **warm**: `--warmup` s of load, then `--seconds` s measured: completed 200s per second,
//!    p50/p99/max of the whole handshake and of the second leg, failures by status and leg
//!    (timeouts as `timeout`), the provider's own admitted-REGISTER counter as a cross-check, and
//!    the CPU each part used (Kamailio's processes, the service, this client, the rest);
//! 3. **cold**: under load, the provider service is killed and `krypton provider up` starts it
//!    again (it rebuilds its cache from the chain; Kamailio keeps running). Reported: 503s while
//!    it is away, the time from the kill to the first admitted REGISTER, and rate and latency over
//!    the `--cold-seconds` after that first admit. A client that gets a 503 waits 100 ms (a phone
//!    waits `Retry-After`, 5 s) so that the 503s do not starve the restarting service.
//!
//! Options (after `--`): `--seconds S` (5), `--warmup S` (2), `--concurrency N` (48),
//! `--cold-seconds S` (3), `--client-threads N` (2), `--no-cold`, and for experiments with
//! Kamailio: `--children N` (restart Kamailio with N UDP workers instead of `provider up`'s)
//! and `--kemi FILE` (restart it with this KEMI script instead of provider/kamailio/krypton.py).
//! The whole run takes well under a minute besides the devnet's start.
//!
//! Measured on the 2-core dev VM (defaults, client and provider sharing both cores):
//!
//! - before (commit cdd0bba): warm 1,055 REGISTER/s, handshake p50 45 ms / p99 65 ms; CPU per
//!   admitted REGISTER: Kamailio 873 µs, service 595 µs. The costs were two Python `http.client`
//!   calls to the service per handshake and p256's ES256 verify (~370 µs).
//! - after f30140d (Kamailio makes the nonce, raw-socket HTTP in the KEMI script, ring's P-256
//!   verify outside the cache lock): warm 1,932 / 2,707 / 2,207 / 2,314 REGISTER/s in four quiet
//!   runs, p50 18–25 ms / p99 29–40 ms, no failures; provider CPU 465–676 µs per REGISTER. Cold:
//!   first admit 136 ms–1.05 s after the kill (the restarted service refuses nonces dated in its
//!   start second, so the first admit waits for the next second), then 1,953–2,343/s, p99
//!   31–39 ms over 3 s.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Devnet, PW, Provider};
use krypton_auth::{Claims, Expected, mint, verify};
use krypton_wallet::{Nep6Wallet, PrivateKey};
use serde_json::{Value, json};

/// How long a client waits for a final response before it counts a timeout.
const LEG_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client waits after a 503.
const PAUSE_503: Duration = Duration::from_millis(100);
/// The on-chain users (named devnet accounts) the clients register as.
const USERS: [&str; 3] = ["alice", "bob", "owner"];

struct Args {
    seconds: f64,
    warmup: f64,
    concurrency: usize,
    cold_seconds: f64,
    client_threads: usize,
    cold: bool,
    children: Option<u32>,
    kemi: Option<PathBuf>,
}

impl Args {
    fn parse() -> Self {
        let mut a = Args {
            seconds: 5.0,
            warmup: 2.0,
            concurrency: 48,
            cold_seconds: 3.0,
            client_threads: 2,
            cold: true,
            children: None,
            kemi: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut val = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
            match arg.as_str() {
                "--seconds" => a.seconds = val(&arg).parse().expect("--seconds S"),
                "--warmup" => a.warmup = val(&arg).parse().expect("--warmup S"),
                "--concurrency" => a.concurrency = val(&arg).parse().expect("--concurrency N"),
                "--cold-seconds" => a.cold_seconds = val(&arg).parse().expect("--cold-seconds S"),
                "--client-threads" => {
                    a.client_threads = val(&arg).parse().expect("--client-threads N")
                }
                "--children" => a.children = Some(val(&arg).parse().expect("--children N")),
                "--kemi" => a.kemi = Some(val(&arg).into()),
                "--no-cold" => a.cold = false,
                // `cargo bench` passes `--bench`; a filter may follow.
                _ => {}
            }
        }
        assert!(a.concurrency > 0 && a.client_threads > 0 && a.seconds > 0.0);
        a
    }
}

// ------------------------------------------------------------------------------------ the provider

/// The provider under test and what the clients need to know about it.
struct Target {
    sip: SocketAddr,
    realm: String,
    service: SocketAddr,
    users: Vec<User>,
}

struct User {
    address: String,
    instance: String,
    key: PrivateKey,
}

fn status(p: &Provider) -> Value {
    p.0.run(&["provider", "status"], "").ok()
}

fn pid_of(p: &Provider, which: &str) -> i32 {
    status(p)[which]
        .as_i64()
        .unwrap_or_else(|| panic!("no {which}")) as i32
}

/// `GET path` on the provider service: the body.
fn http_get(service: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&service, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}

/// One sample of the service's `/metrics`.
fn metric(service: SocketAddr, name: &str) -> u64 {
    let body = http_get(service, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("krypton_provider_{name} ")))
        .unwrap_or_else(|| panic!("no metric {name} in {body}"))
        .trim()
        .parse()
        .unwrap()
}

/// Is `pid` running (a zombie waiting for its reaper is not)?
fn alive(pid: i32) -> bool {
    stat_fields(Path::new(&format!("/proc/{pid}/stat"))).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

fn terminate(pid: i32) {
    // SAFETY: a plain SIGTERM to a process this bench's provider started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Experiments: restarts the provider's Kamailio from its rendered config with other `children`
/// and/or another KEMI script, and hands the new process to `provider down` (its pid file); the
/// caller reaps it after that.
fn restart_kamailio(
    p: &Provider,
    children: Option<u32>,
    kemi: Option<&Path>,
) -> std::process::Child {
    let dir = p.0.path().join("provider/kamailio");
    terminate(pid_of(p, "kamailio_pid"));
    if let Some(n) = children {
        let cfg = std::fs::read_to_string(dir.join("kamailio.cfg")).unwrap();
        let cfg: String = cfg
            .lines()
            .map(|l| {
                if l.starts_with("children=") {
                    format!("children={n}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(dir.join("kamailio.cfg"), cfg).unwrap();
    }
    if let Some(f) = kemi {
        std::fs::copy(f, dir.join("krypton.py")).unwrap();
    }
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
    let child = std::process::Command::new("kamailio")
        .args(["-DD", "-E", "-f"])
        .arg(dir.join("kamailio.cfg"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("kamailio");
    std::fs::write(
        p.0.path().join("provider/kamailio.pid"),
        child.id().to_string(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(p)["running"], true, "Kamailio did not come back");
    child
}

// ------------------------------------------------------------------------------------ the client

/// One handshake (or its failed first leg).
#[derive(Clone, Copy, Debug)]
struct Rec {
    /// Start and end, µs after the load began.
    start_us: u64,
    end_us: u64,
    /// The second leg (Bearer REGISTER → final response), µs; 0 when there was none.
    leg2_us: u64,
    /// Which leg ended it (1: the challenge did not come, 2: the Bearer REGISTER's answer).
    leg: u8,
    /// Final status; 0 = no answer within [`LEG_TIMEOUT`].
    status: u16,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn register_msg(
    t: &Target,
    u: &User,
    local: SocketAddr,
    call_id: &str,
    cseq: u32,
    auth: Option<&str>,
) -> String {
    let auth = auth.map(|a| format!("Bearer {a}"));
    common::raw_register(
        &t.realm,
        &u.address,
        local,
        call_id,
        cseq,
        &u.instance,
        60,
        auth.as_deref(),
    )
}

/// The final response to (`call_id`, `cseq`): (status, raw text), or None after `LEG_TIMEOUT`.
async fn final_response(
    sock: &tokio::net::UdpSocket,
    buf: &mut [u8],
    call_id: &str,
    cseq: u32,
) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + LEG_TIMEOUT;
    let want_cid = format!("Call-ID: {call_id}\r\n");
    let want_cseq = format!("CSeq: {cseq} REGISTER\r\n");
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(buf))
            .await
            .ok()?
            .ok()?;
        let raw = String::from_utf8_lossy(&buf[..n]);
        let Some(status) = raw.get(8..11).and_then(|s| s.parse::<u16>().ok()) else {
            continue;
        };
        if status >= 200 && raw.contains(&want_cid) && raw.contains(&want_cseq) {
            return Some((status, raw.into_owned()));
        }
    }
}

/// The nonce of the 401's Bearer challenge.
fn bearer_nonce(raw: &str) -> Option<&str> {
    let h = raw
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate: Bearer "))?;
    let (_, rest) = h.split_once("nonce=\"")?;
    Some(rest.split_once('"')?.0)
}

/// One client: its own socket, one handshake at a time, until `stop`.
async fn client(id: usize, t: Arc<Target>, t0: Instant, stop: Arc<AtomicBool>) -> Vec<Rec> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(t.sip).await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::new();
    let mut cseq = 0u32;
    let us = |i: Instant| i.duration_since(t0).as_micros() as u64;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let u = &t.users[(id + n) % t.users.len()];
        let call_id = format!("rr{}-{id}-{n}", std::process::id());
        n += 1;
        let start = Instant::now();
        cseq += 1;
        let mut rec = Rec {
            start_us: us(start),
            end_us: 0,
            leg2_us: 0,
            leg: 1,
            status: 0,
        };
        let m = register_msg(&t, u, local, &call_id, cseq, None);
        if sock.send(m.as_bytes()).await.is_err() {
            tokio::time::sleep(PAUSE_503).await;
            continue;
        }
        let first = final_response(&sock, &mut buf, &call_id, cseq).await;
        let nonce = match &first {
            Some((401, raw)) => bearer_nonce(raw).map(str::to_owned),
            _ => None,
        };
        let Some(nonce) = nonce else {
            rec.status = match first {
                Some((401, _)) => 1, // a 401 without a Bearer challenge
                Some((s, _)) => s,
                None => 0,
            };
            rec.end_us = us(Instant::now());
            out.push(rec);
            if rec.status == 503 {
                tokio::time::sleep(PAUSE_503).await;
            }
            continue;
        };
        let token = mint(
            &u.key,
            &Claims::register(
                &u.address,
                &t.realm,
                &nonce,
                &call_id,
                &u.instance,
                now_unix(),
                60,
            ),
        );
        cseq += 1;
        let m = register_msg(&t, u, local, &call_id, cseq, Some(&token));
        let leg2 = Instant::now();
        let _ = sock.send(m.as_bytes()).await;
        let second = final_response(&sock, &mut buf, &call_id, cseq).await;
        let end = Instant::now();
        rec.leg = 2;
        rec.status = second.map(|(s, _)| s).unwrap_or(0);
        rec.leg2_us = end.duration_since(leg2).as_micros() as u64;
        rec.end_us = us(end);
        out.push(rec);
        if rec.status == 503 {
            tokio::time::sleep(PAUSE_503).await;
        }
    }
    out
}

/// Runs the clients until `stop`; all records, the load's start is `t0`.
fn load(
    rt: &tokio::runtime::Runtime,
    t: &Arc<Target>,
    concurrency: usize,
    t0: Instant,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Rec>> {
    let handles: Vec<_> = (0..concurrency)
        .map(|i| rt.spawn(client(i, t.clone(), t0, stop.clone())))
        .collect();
    rt.spawn(async move {
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.expect("a client panicked"));
        }
        all
    })
}

// ------------------------------------------------------------------------------------ figures

/// Clock ticks of CPU: Kamailio's process group, the service, this process, the whole machine.
#[derive(Clone, Copy, Default)]
struct Cpu {
    kamailio: u64,
    service: u64,
    client: u64,
    busy: u64,
    total: u64,
}

fn stat_fields(path: &Path) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(path).ok()?;
    // comm is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of one /proc/PID/stat (fields 14 and 15, i.e. 11 and 12 after `comm`).
fn ticks(f: &[String]) -> u64 {
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}

fn cpu(kamailio_pgid: i32, service: i32) -> Cpu {
    let mut c = Cpu::default();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Some(f) = stat_fields(&e.path().join("stat")) else {
            continue;
        };
        // f[2] is the process group.
        if f[2].parse::<i32>().ok() == Some(kamailio_pgid) {
            c.kamailio += ticks(&f);
        }
        if pid == service {
            c.service = ticks(&f);
        }
    }
    c.client = stat_fields(Path::new("/proc/self/stat"))
        .map(|f| ticks(&f))
        .unwrap_or(0);
    let all = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = all
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    c.total = v.iter().take(8).sum::<u64>();
    c.busy = c.total - v[3] - v[4]; // minus idle and iowait
    c
}

/// CPU in cores over `secs` between two samples.
fn cores(a: Cpu, b: Cpu, secs: f64) -> Value {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let c = |x: u64, y: u64| ((y.saturating_sub(x)) as f64 / hz / secs * 100.0).round() / 100.0;
    let busy = if b.total > a.total {
        (b.busy - a.busy) as f64 / (b.total - a.total) as f64 * ncpu
    } else {
        0.0
    };
    let (k, s, cl) = (
        c(a.kamailio, b.kamailio),
        c(a.service, b.service),
        c(a.client, b.client),
    );
    json!({
        "cores": ncpu,
        "kamailio": k,
        "service": s,
        "client": cl,
        "other": ((busy - k - s - cl).max(0.0) * 100.0).round() / 100.0,
        "idle": ((ncpu - busy).max(0.0) * 100.0).round() / 100.0,
    })
}

/// CPU µs per admitted REGISTER of each part: what bounds the rate when the cores are busy.
fn per_register(a: Cpu, b: Cpu, admitted: u64) -> Value {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let us =
        |x: u64, y: u64| (y.saturating_sub(x) as f64 / hz * 1e6 / admitted.max(1) as f64).round();
    let (k, s, c) = (
        us(a.kamailio, b.kamailio),
        us(a.service, b.service),
        us(a.client, b.client),
    );
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    json!({
        "kamailio": k,
        "service": s,
        "client": c,
        "provider": k + s,
        // The provider alone on every core of this machine, at this cost.
        "provider_ceiling_per_second_on_all_cores": (ncpu * 1e6 / (k + s).max(1.0)).round(),
    })
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Rate, latencies and failures of the handshakes that ended in [from_us, to_us).
fn summarize(recs: &[Rec], from_us: u64, to_us: u64) -> Value {
    let win: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.end_us >= from_us && r.end_us < to_us)
        .collect();
    let ok: Vec<&&Rec> = win.iter().filter(|r| r.status == 200).collect();
    let mut total: Vec<u64> = ok.iter().map(|r| r.end_us - r.start_us).collect();
    let mut leg2: Vec<u64> = ok.iter().map(|r| r.leg2_us).collect();
    total.sort_unstable();
    leg2.sort_unstable();
    let mut failures = BTreeMap::new();
    for r in win.iter().filter(|r| r.status != 200) {
        let what = match r.status {
            0 => "timeout".to_string(),
            1 => "401 without Bearer".to_string(),
            s => s.to_string(),
        };
        *failures
            .entry(format!("leg{} {what}", r.leg))
            .or_insert(0u64) += 1;
    }
    let secs = (to_us - from_us) as f64 / 1e6;
    let s503 = win.iter().filter(|r| r.status == 503).count();
    json!({
        "seconds": (secs * 100.0).round() / 100.0,
        "admitted": ok.len(),
        "per_second": (ok.len() as f64 / secs).round(),
        "handshake_ms": {"p50": pct(&total, 0.5), "p99": pct(&total, 0.99), "max": pct(&total, 1.0)},
        "leg2_ms": {"p50": pct(&leg2, 0.5), "p99": pct(&leg2, 0.99), "max": pct(&leg2, 1.0)},
        "failures": failures,
        "503": s503,
    })
}

/// Tokens minted per second for `secs` on `threads` threads at once.
fn sign_rate(u: &User, realm: &str, threads: usize, secs: f64) -> f64 {
    let stop = AtomicBool::new(false);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|i| {
                let stop = &stop;
                s.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let nonce = format!("AAAAAGkQ7sBj{i}x{n:0>30}");
                        let cid = format!("rr-sign-{i}-{n}");
                        std::hint::black_box(mint(
                            &u.key,
                            &Claims::register(
                                &u.address,
                                realm,
                                &nonce,
                                &cid,
                                &u.instance,
                                now_unix(),
                                60,
                            ),
                        ));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (counts.iter().sum::<u64>() as f64 / secs).round()
}

/// Tokens verified per second on one thread (`krypton_auth::verify`, what the service does under
/// its lock for every Bearer REGISTER, besides the HTTP and JSON around it).
fn verify_rate(u: &User, realm: &str, secs: f64) -> f64 {
    let token = mint(
        &u.key,
        &Claims::register(&u.address, realm, "n", "c", &u.instance, now_unix(), 60),
    );
    let expect = Expected {
        aud: realm,
        cid: "c",
        nonce: None,
        iss: Some(&u.address),
        inst: Some(&u.instance),
    };
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        verify(std::hint::black_box(&token), &expect, now_unix()).expect("a valid token");
        n += 1;
    }
    (n as f64 / start.elapsed().as_secs_f64()).round()
}

fn ms(v: &Value) -> String {
    format!(
        "{:>7.2} {:>7.2} {:>8.2}",
        v["p50"].as_f64().unwrap_or(0.0),
        v["p99"].as_f64().unwrap_or(0.0),
        v["max"].as_f64().unwrap_or(0.0)
    )
}

fn row(name: &str, s: &Value) {
    println!(
        "{name:<22} {:>8} {:>9} | {} | {} | {}",
        s["admitted"],
        s["per_second"],
        ms(&s["handshake_ms"]),
        ms(&s["leg2_ms"]),
        s["failures"]
    );
}

// ------------------------------------------------------------------------------------ main

fn main() {
    let args = Args::parse();
    eprintln!("register_rate: starting a devnet and a provider…");
    let d = Devnet::up();
    d.k.import_nep6(&d.accounts_file(), PW.trim()).ok();
    let p = d.provider_up("provider-a", &[]);
    for u in USERS {
        d.register_on_chain(u, "provider-a");
    }
    let st = status(&p);
    assert_eq!(st["running"], true, "{st}");
    let wallet =
        Nep6Wallet::from_json(&std::fs::read_to_string(d.accounts_file()).unwrap()).unwrap();
    let users: Vec<User> = USERS
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let address = d.account(n);
            User {
                key: wallet
                    .decrypt_account(&address, PW.trim())
                    .expect("devnet key"),
                instance: format!("urn:uuid:6f1d9a7e-2b4c-4d8e-9a1b-3c5d7e9f1a{i:02x}"),
                address,
            }
        })
        .collect();
    let t = Arc::new(Target {
        sip: st["sip"].as_str().unwrap().parse().unwrap(),
        realm: st["location"].as_str().unwrap().to_string(),
        service: st["service"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .parse()
            .unwrap(),
        users,
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(t.service, "own_users") < USERS.len() as u64 {
        assert!(Instant::now() < deadline, "the service never saw the users");
        std::thread::sleep(Duration::from_millis(100));
    }
    let restarted = (args.children.is_some() || args.kemi.is_some())
        .then(|| restart_kamailio(&p, args.children, args.kemi.as_deref()));
    let mut report = json!({"bench": "register_rate", "concurrency": args.concurrency,
        "client_threads": args.client_threads, "users": USERS.len(),
        "kamailio_children": args.children.unwrap_or(4), "kemi": args.kemi});

    // 1. The client's own signing rate.
    let one = sign_rate(&t.users[0], &t.realm, 1, 1.0);
    let all = sign_rate(&t.users[0], &t.realm, args.client_threads, 1.0);
    report["client_mint_per_second"] = json!({"1_thread": one, "all_threads": all});
    report["verify_per_second_1_thread"] = json!(verify_rate(&t.users[0], &t.realm, 1.0));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .unwrap();

    // 2. Warm.
    let kam = pid_of(&p, "kamailio_pid");
    let svc = pid_of(&p, "service_pid");
    eprintln!(
        "register_rate: warm: {} s warm-up + {} s at concurrency {}…",
        args.warmup, args.seconds, args.concurrency
    );
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let h = load(&rt, &t, args.concurrency, t0, &stop);
    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    let (c0, m0) = (cpu(kam, svc), metric(t.service, "registers_admitted_total"));
    let from = t0.elapsed().as_micros() as u64;
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let to = t0.elapsed().as_micros() as u64;
    let (c1, m1) = (cpu(kam, svc), metric(t.service, "registers_admitted_total"));
    stop.store(true, Ordering::Relaxed);
    let recs = rt.block_on(h).unwrap();
    let mut warm = summarize(&recs, from, to);
    warm["service_admitted_per_second"] =
        json!(((m1 - m0) as f64 / ((to - from) as f64 / 1e6)).round());
    warm["cpu_cores"] = cores(c0, c1, (to - from) as f64 / 1e6);
    warm["cpu_us_per_register"] = per_register(c0, c1, warm["admitted"].as_u64().unwrap_or(0));
    report["warm"] = warm;

    // 3. Cold: kill the service under load, `provider up` again.
    if args.cold {
        eprintln!("register_rate: cold: restarting the provider service under load…");
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let h = load(&rt, &t, args.concurrency, t0, &stop);
        std::thread::sleep(Duration::from_secs(1));
        let kill_us = t0.elapsed().as_micros() as u64;
        terminate(svc);
        let exited_us = t0.elapsed().as_micros() as u64;
        let again = p.0.run(&["provider", "up"], "").ok();
        let up_us = t0.elapsed().as_micros() as u64;
        assert_eq!(again["running"], true, "{again}");
        assert_eq!(again["kamailio_pid"].as_i64(), Some(kam as i64), "{again}");
        std::thread::sleep(Duration::from_secs_f64(args.cold_seconds + 1.0));
        stop.store(true, Ordering::Relaxed);
        let recs = rt.block_on(h).unwrap();
        let first = recs
            .iter()
            .filter(|r| r.status == 200 && r.start_us > kill_us)
            .map(|r| r.end_us)
            .min();
        let mut cold = json!({
            "service_stopped_ms": (exited_us - kill_us) as f64 / 1000.0,
            "provider_up_ms": (up_us - exited_us) as f64 / 1000.0,
            "first_admit_after_kill_ms": first.map(|f| (f - kill_us) as f64 / 1000.0),
            "up_returned_after_kill_ms": (up_us - kill_us) as f64 / 1000.0,
            "down": summarize(&recs, kill_us, first.unwrap_or(up_us)),
        });
        if let Some(f) = first {
            let end = f + (args.cold_seconds * 1e6) as u64;
            cold["first_seconds"] = summarize(&recs, f, end);
            cold["per_second"] = (0..args.cold_seconds.ceil() as u64)
                .map(|i| {
                    let a = f + i * 1_000_000;
                    summarize(&recs, a, (a + 1_000_000).min(end))["per_second"].clone()
                })
                .collect();
        }
        report["cold"] = cold;
    }
    drop(rt);

    // The report.
    let w = &report["warm"];
    println!();
    println!(
        "register_rate: authenticated REGISTERs (401 → Bearer ES256 → 200) at one provider, concurrency {}, {} on-chain users",
        args.concurrency,
        USERS.len()
    );
    println!(
        "client mints {} tokens/s on 1 thread, {} on {} threads (alone)",
        report["client_mint_per_second"]["1_thread"],
        report["client_mint_per_second"]["all_threads"],
        args.client_threads
    );
    println!(
        "krypton_auth::verify: {} tokens/s on 1 thread (the service's signature check alone)",
        report["verify_per_second_1_thread"]
    );
    println!(
        "{:<22} {:>8} {:>9} | {:>7} {:>7} {:>8} | {:>7} {:>7} {:>8} | failures",
        "phase", "admitted", "REG/s", "p50", "p99", "max", "leg2 p50", "p99", "max"
    );
    row("warm", w);
    if let Some(c) = report.get("cold") {
        if let Some(s) = c.get("first_seconds") {
            row(&format!("cold, first {} s", args.cold_seconds), s);
        }
        row("cold, service away", &c["down"]);
        println!(
            "cold: after the kill, the service was gone in {} ms, `provider up` took {} ms (returned at {} ms), the first REGISTER was admitted at {} ms; admitted per second after it: {}; 503s while away: {}",
            c["service_stopped_ms"],
            c["provider_up_ms"],
            c["up_returned_after_kill_ms"],
            c["first_admit_after_kill_ms"],
            c["per_second"],
            c["down"]["503"]
        );
    }
    println!(
        "warm: the service counted {} admitted/s; CPU (cores): {}; CPU µs per admitted REGISTER: {}",
        w["service_admitted_per_second"], w["cpu_cores"], w["cpu_us_per_register"]
    );
    println!("(latencies in ms; target ≥ 2000 REGISTER/s warm)");
    println!("{report}");
    drop(p);
    if let Some(mut k) = restarted {
        let _ = k.wait();
    }
    drop(d);
}
