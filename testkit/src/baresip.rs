//! baresip 1.0 (Debian's `baresip-core`) as a headless peer: a WAV file as microphone, the
//! decoded far-end audio dumped to a WAV file, driven over its `ctrl_tcp` JSON netstrings.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::process::{Child, free_port};

/// How to set up one baresip.
#[derive(Debug, Clone)]
pub struct BaresipConfig {
    /// SIP user.
    pub user: String,
    /// Password.
    pub password: String,
    /// Domain (registrar).
    pub domain: String,
    /// Outbound proxy port on 127.0.0.1 (UDP).
    pub proxy_port: u16,
    /// `opus` or `pcmu`.
    pub codec: String,
    /// WAV played as the microphone; its rate and channels must be `rate`/`channels`.
    pub source: PathBuf,
    /// Audio rate of source and dump.
    pub rate: u32,
    /// Channels of source and dump (2 for Opus: baresip 1.0 offers opus/48000/1 otherwise).
    pub channels: u16,
    /// Answer calls automatically.
    pub auto_answer: bool,
    /// RTP port range, e.g. (16100, 16199).
    pub rtp_ports: (u16, u16),
    /// Opus in-band FEC (with a 5 % loss hint) or not.
    pub opus_fec: bool,
    /// The contact that `message` sends to.
    pub contact: Option<String>,
    /// Media encryption: `Some("srtp")` (SDES keys on RTP/AVP) or `Some("srtp-mand")`
    /// (RTP/SAVP only); loads baresip's `srtp` module.
    pub mediaenc: Option<String>,
}

/// A running baresip; stopped when dropped.
pub struct Baresip {
    dir: tempfile::TempDir,
    /// SIP port.
    pub sip_port: u16,
    ctrl: TcpStream,
    events: mpsc::Receiver<String>,
    seen: Vec<String>,
    child: Child,
}

impl Baresip {
    /// Write its config and start it; returns once ctrl_tcp answers.
    pub fn start(c: BaresipConfig) -> Result<Baresip, TestkitError> {
        let base = format!(
            "<sip:{user}@{domain}>;auth_pass={pw};outbound=\"sip:127.0.0.1:{port}\"",
            user = c.user,
            domain = c.domain,
            pw = c.password,
            port = c.proxy_port,
        );
        Self::start_inner(c, &[base], 600)
    }

    /// A stand-in PSTN gateway (a provider's SIP trunk): no registration, one local account per
    /// phone `number` it answers (`<sip:NUMBER@127.0.0.1>`; baresip 1.0 matches an incoming
    /// request's user to an account's), answer mode and codec from `c`.
    pub fn start_gateway(c: BaresipConfig, numbers: &[&str]) -> Result<Baresip, TestkitError> {
        let bases: Vec<String> = numbers
            .iter()
            .map(|n| format!("<sip:{n}@127.0.0.1>"))
            .collect();
        Self::start_inner(c, &bases, 0)
    }

    /// As [`Baresip::start`], with a ready-made `accounts` line (`<sip:…>;auth_user=…;
    /// auth_pass=…;outbound=…`, e.g. the one `krypton credentials` prints) instead of `user`,
    /// `password`, `domain` and `proxy_port`; answer mode, codec and media encryption from `c`
    /// are appended.
    pub fn start_with_account(c: BaresipConfig, account: &str) -> Result<Baresip, TestkitError> {
        Self::start_inner(c, &[account.trim().to_string()], 600)
    }

    fn start_inner(
        c: BaresipConfig,
        bases: &[String],
        regint: u32,
    ) -> Result<Baresip, TestkitError> {
        if Command::new("baresip").arg("-h").output().is_err() {
            return Err(TestkitError::Missing("baresip"));
        }
        let dir = tempfile::Builder::new()
            .prefix("krypton-baresip-")
            .tempdir()?;
        // baresip binds port+1 for TLS too.
        let mut sip_port = free_port();
        while std::net::TcpListener::bind(("127.0.0.1", sip_port + 1)).is_err() {
            sip_port = free_port();
        }
        let ctrl_port = free_port();
        std::fs::create_dir_all(dir.path().join("dump"))?;
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\ncall_local_timeout 120\ncall_max_calls 4\n\
             audio_source aufile,{src}\naudio_player aubridge,null{sip_port}\naudio_alert aubridge,null{sip_port}\n\
             ausrc_srate {rate}\nausrc_channels {ch}\nauplay_srate {rate}\nauplay_channels {ch}\n\
             ausrc_format s16\nauplay_format s16\naudio_buffer 20-160\nrtp_ports {r0}-{r1}\n\
             net_interface 127.0.0.1\nrtp_stats yes\nrtcp_mux no\njitter_buffer_delay 5-10\n\
             module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule opus.so\n\
             module aufile.so\nmodule aubridge.so\nmodule sndfile.so\n{srtp_module}module_tmp uuid.so\nmodule_tmp account.so\n\
             module_app contact.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
             snd_path {dump}\nopus_bitrate 32000\nopus_inbandfec {fec}\nopus_packet_loss {ploss}\n",
            src = c.source.display(),
            rate = c.rate,
            ch = c.channels,
            r0 = c.rtp_ports.0,
            r1 = c.rtp_ports.1,
            dump = dir.path().join("dump").display(),
            fec = if c.opus_fec { "yes" } else { "no" },
            ploss = if c.opus_fec { 5 } else { 0 },
            srtp_module = if c.mediaenc.is_some() {
                "module srtp.so\n"
            } else {
                ""
            },
        );
        std::fs::write(dir.path().join("config"), config)?;
        let codec = if c.codec == "opus" {
            "opus/48000/2"
        } else {
            "PCMU/8000/1"
        };
        let accounts: String = bases
            .iter()
            .map(|base| {
                format!(
                    "{base};answermode={mode};audio_codecs={codec};regint={regint}{menc}\n",
                    mode = if c.auto_answer { "auto" } else { "manual" },
                    menc = c
                        .mediaenc
                        .as_deref()
                        .map(|m| format!(";mediaenc={m}"))
                        .unwrap_or_default(),
                )
            })
            .collect();
        std::fs::write(dir.path().join("accounts"), accounts)?;
        std::fs::write(
            dir.path().join("contacts"),
            c.contact
                .as_deref()
                .map(|x| format!("<{x}>\n"))
                .unwrap_or_default(),
        )?;
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir.path()).arg("-v");
        // stdin must stay open for the stdio UI: give it a pipe we never write to.
        let child = Child::spawn_with_stdin_pipe("baresip", cmd, &dir.path().join("baresip.log"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    // Waits for baresip to open its control port.
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(_) => {
                    return Err(TestkitError::NotReady {
                        what: "baresip".into(),
                        secs: 10,
                        log: child.log_tail(30),
                    });
                }
            }
        };
        let (tx, rx) = mpsc::channel();
        let reader = ctrl.try_clone()?;
        std::thread::spawn(move || read_netstrings(reader, tx));
        Ok(Baresip {
            dir,
            sip_port,
            ctrl,
            events: rx,
            seen: Vec::new(),
            child,
        })
    }

    /// Send a ctrl_tcp command (`dial`, `hangup`, `accept`, `message`, `sndcode`, `reginfo` …).
    pub fn command(&mut self, command: &str, params: &str) -> Result<(), TestkitError> {
        let body = format!(
            "{{\"command\":\"{}\",\"params\":\"{}\",\"token\":\"t\"}}",
            command,
            params.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl.write_all(frame.as_bytes())?;
        Ok(())
    }

    /// Wait for an event or response whose JSON contains all of `needles`; returns it.
    pub fn wait_for(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<String, TestkitError> {
        if let Some(i) = self
            .seen
            .iter()
            .position(|e| needles.iter().all(|n| e.contains(n)))
        {
            return Ok(self.seen.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if needles.iter().all(|n| e.contains(n)) => return Ok(e),
                Ok(e) => self.seen.push(e),
                Err(_) => {
                    return Err(TestkitError::NotReady {
                        what: format!("baresip event {needles:?}"),
                        secs: timeout.as_secs(),
                        log: format!("events: {:?}\nlog:\n{}", self.seen, self.child.log_tail(40)),
                    });
                }
            }
        }
    }

    /// Wait until registered. (REGISTER_OK may fire before our ctrl_tcp connection exists, so
    /// this asks `reginfo` until it shows the binding.)
    pub fn wait_registered(&mut self) -> Result<(), TestkitError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.seen.iter().any(|e| e.contains("REGISTER_OK")) {
                return Ok(());
            }
            self.command("reginfo", "")?;
            let r = self.wait_for(&["\"response\""], Duration::from_secs(2))?;
            if r.contains("OK") && !r.contains("zero") {
                return Ok(());
            }
            // Waits for the registration to complete before asking again.
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestkitError::NotReady {
            what: "baresip registration".into(),
            secs: 10,
            log: self.child.log_tail(30),
        })
    }

    /// The decoded far-end audio of the last call (sndfile's `*-dec.wav`).
    pub fn received_audio(&self) -> Option<PathBuf> {
        newest(&self.dir.path().join("dump"), "-dec.wav")
    }

    /// The last lines of baresip's log (its stdout/stderr).
    pub fn log_tail(&self, n: usize) -> String {
        self.child.log_tail(n)
    }

    /// Its config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn newest(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// ctrl_tcp frames are netstrings: `LEN:JSON,`.
fn read_netstrings(stream: TcpStream, tx: mpsc::Sender<String>) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = Vec::new();
        let mut b = [0u8; 1];
        loop {
            if r.read_exact(&mut b).is_err() {
                return;
            }
            if b[0] == b':' {
                break;
            }
            len.push(b[0]);
        }
        let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
            return;
        };
        let mut body = vec![0u8; n + 1];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        body.pop();
        if tx.send(String::from_utf8_lossy(&body).to_string()).is_err() {
            return;
        }
    }
}
