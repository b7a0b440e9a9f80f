//! Kamailio 5.6 as a test registrar and proxy (config: `testkit/kamailio/kamailio.cfg`).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::process::{Child, free_port};
use crate::tls::TestCa;

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

/// A TLS listener (RFC 3261 §26) for the test Kamailio. Its server certificate is issued at
/// start by a throwaway CA ([`TestCa`]) in Kamailio's temp dir; clients trust that CA through
/// [`Kamailio::tls_ca`] (e.g. `SSL_CERT_FILE`).
#[derive(Debug, Clone)]
pub struct KamailioTls {
    /// Names the server certificate is valid for (subjectAltName): DNS names or IP literals.
    pub server_names: Vec<String>,
}

impl Default for KamailioTls {
    fn default() -> Self {
        KamailioTls {
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
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
    /// TLS port, if started with [`Kamailio::start_tls`].
    pub tls_port: Option<u16>,
    tls_ca: Option<TestCa>,
    child: Option<Child>,
}

impl Kamailio {
    /// Write the config and start Kamailio; returns once it answers an OPTIONS.
    pub fn start(config: KamailioConfig) -> Result<Kamailio, TestkitError> {
        Self::start_with(config, None)
    }

    /// Like [`Kamailio::start`], with a TLS listener too: a CA and a server certificate for
    /// `tls.server_names` are made first (`openssl`), and the `tls` module serves them.
    pub fn start_tls(config: KamailioConfig, tls: KamailioTls) -> Result<Kamailio, TestkitError> {
        Self::start_with(config, Some(tls))
    }

    fn start_with(
        config: KamailioConfig,
        tls: Option<KamailioTls>,
    ) -> Result<Kamailio, TestkitError> {
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
        let (defines, tls_port, tls_ca) = match &tls {
            Some(tls) => {
                let mut port = free_port();
                while port == sip_port || port == ws_port {
                    port = free_port();
                }
                let ca = TestCa::create(&dir.path().join("tls"), "kamailio")?;
                let (cert, key) = ca.issue_server("server", &tls.server_names)?;
                // The tls module's own file: one server profile for every TLS listener; we ask
                // for no client certificate.
                std::fs::write(
                    dir.path().join("tls.cfg"),
                    format!(
                        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                         require_certificate = no\nprivate_key = {}\ncertificate = {}\n\n\
                         [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                         require_certificate = no\n",
                        key.display(),
                        cert.display()
                    ),
                )?;
                ("#!define WITH_TLS", Some(port), Some(ca))
            }
            None => ("", None, None),
        };
        let template = include_str!("../kamailio/kamailio.cfg");
        let cfg = template
            .replace("%DEFINES%", defines)
            .replace("%SIP_PORT%", &sip_port.to_string())
            .replace("%WS_PORT%", &ws_port.to_string())
            .replace("%TLS_PORT%", &tls_port.unwrap_or(0).to_string())
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
            tls_port,
            tls_ca,
            child: None,
        };
        k.restart()?;
        Ok(k)
    }

    /// `sip:127.0.0.1:PORT;transport=T` for `transport` in udp, tcp, ws, tls (tls only after
    /// [`Kamailio::start_tls`]).
    pub fn proxy_uri(&self, transport: &str) -> String {
        self.proxy_uri_at("127.0.0.1", transport)
    }

    /// Like [`Kamailio::proxy_uri`] with another host for the same loopback proxy, e.g.
    /// `localhost` (a TLS client then checks the certificate for that name).
    pub fn proxy_uri_at(&self, host: &str, transport: &str) -> String {
        let port = match transport {
            "ws" => self.ws_port,
            "tls" => self
                .tls_port
                .expect("Kamailio::proxy_uri(\"tls\") needs Kamailio::start_tls"),
            _ => self.sip_port,
        };
        format!("sip:{host}:{port};transport={transport}")
    }

    /// The registrar's bindings as `kamcmd ul.dump` prints them (contacts, sockets, flags).
    pub fn bindings(&self) -> Result<String, TestkitError> {
        self.kamcmd("ul.dump")
    }

    /// Run an RPC command on the control socket (`kamcmd -s … CMD`, e.g. `tls.list`) and return
    /// what it prints.
    pub fn kamcmd(&self, cmd: &str) -> Result<String, TestkitError> {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!(
                "unix:{}",
                self.dir.path().join("run/kamailio_ctl").display()
            ))
            .arg(cmd)
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "kamcmd {cmd} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The CA certificate (PEM file) that issued the TLS listener's certificate.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_ref().map(TestCa::cert)
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
