//! Kamailio 5.6 as a test registrar and proxy (config: `testkit/kamailio/kamailio.cfg`).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::process::{Child, free_port};

/// Digest algorithm of the registrar's challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5`.
    Md5,
    /// `algorithm=SHA-256` (RFC 8760).
    Sha256,
}

/// What the test registrar knows.
#[derive(Debug, Clone)]
pub struct KamailioConfig {
    /// SIP domain (realm).
    pub domain: String,
    /// Accounts: (user, password).
    pub users: Vec<(String, String)>,
    /// Challenge algorithm.
    pub algorithm: DigestAlgorithm,
}

impl Default for KamailioConfig {
    fn default() -> Self {
        KamailioConfig {
            domain: "provider.test".into(),
            users: Vec::new(),
            algorithm: DigestAlgorithm::Md5,
        }
    }
}

/// A running Kamailio on loopback; stopped when dropped.
pub struct Kamailio {
    dir: tempfile::TempDir,
    config: KamailioConfig,
    /// UDP and TCP SIP port.
    pub sip_port: u16,
    /// WebSocket port (ws://127.0.0.1:PORT/).
    pub ws_port: u16,
    child: Option<Child>,
}

impl Kamailio {
    /// Write the config and start Kamailio; returns once it answers an OPTIONS.
    pub fn start(config: KamailioConfig) -> Result<Kamailio, TestkitError> {
        if Command::new("kamailio").arg("-v").output().is_err() {
            return Err(TestkitError::Missing("kamailio"));
        }
        let dir = tempfile::Builder::new()
            .prefix("krypton-kamailio-")
            .tempdir()?;
        let sip_port = free_port();
        let mut ws_port = free_port();
        while ws_port == sip_port {
            ws_port = free_port();
        }
        std::fs::create_dir_all(dir.path().join("run"))?;
        std::fs::create_dir_all(dir.path().join("db"))?;
        let template = include_str!("../kamailio/kamailio.cfg");
        let cfg = template
            .replace("%SIP_PORT%", &sip_port.to_string())
            .replace("%WS_PORT%", &ws_port.to_string())
            .replace("%DIR%", &dir.path().display().to_string())
            .replace("%DOMAIN%", &config.domain)
            .replace(
                "%ALGORITHM%",
                match config.algorithm {
                    DigestAlgorithm::Md5 => "MD5",
                    DigestAlgorithm::Sha256 => "SHA-256",
                },
            );
        std::fs::write(dir.path().join("kamailio.cfg"), cfg)?;
        std::fs::write(
            dir.path().join("db/version"),
            "id(int,auto) table_name(string) table_version(int)\n0:version:1\n1:subscriber:7\n",
        )?;
        let mut subscriber = String::from(
            "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)\n",
        );
        for (i, (user, pass)) in config.users.iter().enumerate() {
            subscriber.push_str(&format!(
                "{}:{}:{}:{}::\n",
                i + 1,
                user,
                config.domain,
                pass
            ));
        }
        std::fs::write(dir.path().join("db/subscriber"), subscriber)?;
        let mut k = Kamailio {
            dir,
            config,
            sip_port,
            ws_port,
            child: None,
        };
        k.restart()?;
        Ok(k)
    }

    /// `sip:127.0.0.1:PORT;transport=T` for `transport` in udp, tcp, ws.
    pub fn proxy_uri(&self, transport: &str) -> String {
        let port = if transport == "ws" {
            self.ws_port
        } else {
            self.sip_port
        };
        format!("sip:127.0.0.1:{port};transport={transport}")
    }

    /// The SIP domain.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// Directory with the config, database and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    /// Stop Kamailio (it forgets every registration).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.stop();
        }
    }

    /// Start (again) on the same ports; returns once it answers an OPTIONS.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        let mut cmd = Command::new("kamailio");
        cmd.args(["-DD", "-E", "-f"])
            .arg(self.dir.path().join("kamailio.cfg"));
        let child = Child::spawn("kamailio", cmd, &self.log_path())?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(15))
    }

    /// The last lines of Kamailio's log.
    pub fn log_tail(&self, n: usize) -> String {
        self.child
            .as_ref()
            .map(|c| c.log_tail(n))
            .unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let local = sock.local_addr()?;
        let deadline = Instant::now() + timeout;
        let mut n = 0u32;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && !c.is_running()
            {
                break;
            }
            n += 1;
            let options = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-tk{n};rport\r\n\
                 From: <sip:probe@127.0.0.1>;tag=tk{n}\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: tk-probe-{n}@{local}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                port = self.sip_port
            );
            let _ = sock.send_to(options.as_bytes(), ("127.0.0.1", self.sip_port));
            let mut buf = [0u8; 2048];
            // Waits for the answer (200 ms per probe): an event, not a guess.
            if let Ok((len, _)) = sock.recv_from(&mut buf)
                && buf[..len].starts_with(b"SIP/2.0 200")
            {
                return Ok(());
            }
        }
        Err(TestkitError::NotReady {
            what: "kamailio".into(),
            secs: timeout.as_secs(),
            log: self.log_tail(30),
        })
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
    }
}
