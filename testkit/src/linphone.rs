//! linphonec (Debian's `linphone-cli`, liblinphone 5.1) as a headless peer: the "files"
//! sound card, a WAV file as microphone (`play`), the decoded far-end audio written to a WAV
//! file (`record`), commands on stdin and its status lines on stdout read as events.
//!
//! linphonec prints lines such as `Call 1 with sip:alice@… connected.`,
//! `Call 1 with sip:alice@… ended (No error).`, `Call 1 has been paused by sip:…`,
//! `Receiving tone 7 from sip:…` and `Message received from sip:…: text`;
//! [`Linphone::wait_for`] waits for a line containing a given text. It prints nothing when it
//! registers: [`Linphone::wait_registered`] asks `status register`.
//!
//! Two things to know when driving it: `chat URI text` sends the rest of the line as it is
//! (quotes included), and a line holding a lone DTMF digit sends that digit (RFC 4733).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::process::free_port;

/// How to set up one linphonec.
#[derive(Debug, Clone)]
pub struct LinphoneConfig {
    /// SIP user.
    pub user: String,
    /// Password.
    pub password: String,
    /// Domain (registrar and realm).
    pub domain: String,
    /// Outbound proxy port on 127.0.0.1 (UDP).
    pub proxy_port: u16,
    /// The only codec it offers and accepts: `opus` or `pcmu`.
    pub codec: String,
    /// Answer calls automatically.
    pub auto_answer: bool,
    /// RTP port range, e.g. (16300, 16399).
    pub rtp_ports: (u16, u16),
}

/// A running linphonec; killed when dropped (call [`Linphone::quit`] first for a clean exit).
pub struct Linphone {
    dir: tempfile::TempDir,
    /// SIP port (UDP).
    pub sip_port: u16,
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

/// The audio codecs liblinphone 5.1 knows, as `(mime, rate, channels)`: all are written to the
/// linphonerc so that none is added behind our back with its default state.
const CODECS: &[(&str, u32, u8)] = &[
    ("opus", 48000, 2),
    ("speex", 16000, 1),
    ("speex", 8000, 1),
    ("PCMU", 8000, 1),
    ("PCMA", 8000, 1),
    ("GSM", 8000, 1),
    ("G722", 8000, 1),
    ("G729", 8000, 1),
    ("speex", 32000, 1),
    ("G726-16", 8000, 1),
    ("G726-24", 8000, 1),
    ("G726-32", 8000, 1),
    ("G726-40", 8000, 1),
    ("AAL2-G726-16", 8000, 1),
    ("AAL2-G726-24", 8000, 1),
    ("AAL2-G726-32", 8000, 1),
    ("AAL2-G726-40", 8000, 1),
    ("L16", 44100, 2),
    ("L16", 44100, 1),
];

impl Linphone {
    /// Write its linphonerc and start it with the file sound card; returns once it has
    /// registered with the proxy.
    pub fn start(c: LinphoneConfig) -> Result<Linphone, TestkitError> {
        if Command::new("linphonec").arg("-v").output().is_err() {
            return Err(TestkitError::Missing("linphonec"));
        }
        if Command::new("stdbuf").arg("--version").output().is_err() {
            return Err(TestkitError::Missing("stdbuf"));
        }
        let dir = crate::test_dir("krypton-linphone-")?;
        let home = dir.path().join("home");
        // liblinphone opens its database there ("Unable to open linphone database" otherwise).
        std::fs::create_dir_all(home.join(".local/share/linphone"))?;
        let sip_port = free_port();
        // A fixed 60 ms jitter buffer: the adaptive one shrinks from 60 to 40 ms a few seconds
        // into a call, cutting 20 ms out of what `record` writes at a moment that varies from
        // run to run (PESQ of the same PCMU stream went from 3.93 to 3.81 that way).
        let mut rc = format!(
            "[sip]\nsip_port={sip_port}\nsip_tcp_port=-1\nsip_tls_port=-1\ndefault_proxy=0\n\
             guess_hostname=1\nregister_only_when_network_is_up=0\nregister_only_when_upnp_is_ok=0\n\
             media_encryption=none\nuse_rfc2833=1\nuse_info=0\n\
             [net]\nfirewall_policy=0\ndownload_bw=0\nupload_bw=0\n\
             [rtp]\naudio_rtp_port={r0}-{r1}\nrtcp_mux=0\naudio_jitt_comp=60\n\
             audio_adaptive_jitt_comp_enabled=0\n\
             [sound]\nechocancellation=0\n\
             [video]\ncapture=0\ndisplay=0\nshow_local=0\n\
             [proxy_0]\nreg_proxy=<sip:127.0.0.1:{proxy};transport=udp>\n\
             reg_route=<sip:127.0.0.1:{proxy};transport=udp;lr>\n\
             reg_identity=\"{user}\" <sip:{user}@{domain}>\nreg_expires=600\nreg_sendregister=1\npublish=0\n\
             [auth_info_0]\nusername={user}\npasswd={pw}\nrealm={domain}\ndomain={domain}\n\
             [misc]\nmax_calls=2\nprefer_basic_chat_room=1\n",
            r0 = c.rtp_ports.0,
            r1 = c.rtp_ports.1,
            proxy = c.proxy_port,
            user = c.user,
            domain = c.domain,
            pw = c.password,
        );
        for (i, (mime, rate, channels)) in CODECS.iter().enumerate() {
            let on = mime.eq_ignore_ascii_case(&c.codec);
            rc.push_str(&format!(
                "[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels={channels}\nenabled={}\n",
                u8::from(on)
            ));
        }
        let rc_path = dir.path().join("linphonerc");
        std::fs::write(&rc_path, rc)?;
        let log = dir.path().join("linphonec.log");
        let stderr = File::create(dir.path().join("linphonec.stderr"))?;
        // linphonec prints call and registration events from callbacks without flushing its
        // stdout, which is block-buffered on a pipe: stdbuf makes it line-buffered.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "linphonec", "-c"])
            .arg(&rc_path)
            .args(["-S", "-d", "2", "-l"])
            .arg(dir.path().join("liblinphone.log"))
            .env("HOME", &home)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        let mut copy = File::create(&log)?;
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                let _ = writeln!(copy, "{:8.3} {line}", start.elapsed().as_secs_f64());
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut l = Linphone {
            dir,
            sip_port,
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            log,
        };
        l.command("soundcard use files")?;
        l.command(if c.auto_answer {
            "autoanswer enable"
        } else {
            "autoanswer disable"
        })?;
        l.wait_registered(Duration::from_secs(15))?;
        Ok(l)
    }

    /// Wait until its account is registered. linphonec prints nothing when a registration
    /// succeeds, so this asks `status register` until it answers `registered, identity=…`.
    pub fn wait_registered(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.command("status register")?;
            // Every answer to `status register` contains "registered" ("registered=-1",
            // "unregistered", "registered, identity=… duration=…").
            let answer = self.wait_until(Duration::from_secs(2), |l| l.contains("registered"));
            if answer.is_ok_and(|a| a.contains("registered, identity=")) {
                return Ok(());
            }
            // Waits for the REGISTER transaction before asking again.
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestkitError::NotReady {
            what: "linphonec registration".into(),
            secs: timeout.as_secs(),
            log: format!(
                "stdout lines not claimed:\n{}\nliblinphone log:\n{}",
                self.unclaimed().join("\n"),
                self.liblinphone_log_tail(30)
            ),
        })
    }

    /// Send one linphonec command line (`call URI`, `answer`, `terminate`, `chat URI "text"`,
    /// `play WAV`, `record WAV`, a lone DTMF digit, `quit` …).
    pub fn command(&mut self, line: &str) -> Result<(), TestkitError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("linphonec's stdin is closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        let _ = File::options()
            .append(true)
            .open(&self.log)
            .and_then(|mut f| writeln!(f, ">>> {line}"));
        Ok(())
    }

    /// Play this WAV file as the microphone of the next calls.
    pub fn play(&mut self, wav: &Path) -> Result<(), TestkitError> {
        self.command(&format!("play {}", wav.display()))
    }

    /// Record what the other side says in the next calls into this WAV file.
    pub fn record(&mut self, wav: &Path) -> Result<(), TestkitError> {
        self.command(&format!("record {}", wav.display()))
    }

    /// Wait for a stdout line containing `needle` (seen before and not yet claimed, or arriving
    /// within `timeout`); returns the line and removes it from the unclaimed ones.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, TestkitError> {
        self.wait_until(timeout, |l| l.contains(needle))
            .map_err(|e| match e {
                TestkitError::NotReady { secs, log, .. } => TestkitError::NotReady {
                    what: format!("linphonec line containing {needle:?}"),
                    secs,
                    log,
                },
                e => e,
            })
    }

    /// Wait for a stdout line for which `pick` returns true; see [`Linphone::wait_for`].
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> bool,
    ) -> Result<String, TestkitError> {
        if let Some(i) = self.seen.iter().position(|l| pick(l)) {
            return Ok(self.seen.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pick(&l) => return Ok(l),
                Ok(l) => self.seen.push(l),
                Err(_) => {
                    return Err(TestkitError::NotReady {
                        what: "linphonec line".into(),
                        secs: timeout.as_secs(),
                        log: format!(
                            "stdout lines not claimed:\n{}\nliblinphone log:\n{}",
                            self.seen.join("\n"),
                            self.liblinphone_log_tail(30)
                        ),
                    });
                }
            }
        }
    }

    /// Forget every line received so far, so that later waits see only what comes after.
    pub fn forget(&mut self) {
        while self.lines.try_recv().is_ok() {}
        self.seen.clear();
    }

    /// Every stdout line received so far that no wait claimed.
    pub fn unclaimed(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.clone()
    }

    /// Send `quit` and wait for the process to exit (killed after `timeout`).
    pub fn quit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = self.command("quit");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            // Polls for the exit of a process we own.
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// The last `n` lines of liblinphone's own log (`-l`).
    pub fn liblinphone_log_tail(&self, n: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("liblinphone.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Its working directory (linphonerc, logs, HOME).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn kill(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        self.kill();
    }
}
