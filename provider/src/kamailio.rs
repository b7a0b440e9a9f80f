//! Kamailio for one provider: the configuration (`provider/kamailio/kamailio.cfg` and the KEMI
//! script `krypton.py`, compiled in) rendered into the provider's run directory, and the process.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

const CFG: &str = include_str!("../kamailio/kamailio.cfg");
const KEMI: &str = include_str!("../kamailio/krypton.py");

/// Errors starting Kamailio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KamailioError {
    /// Kamailio (or its Python module) is not installed.
    #[error(
        "kamailio is not installed: run scripts/setup (it installs kamailio, kamailio-python3-modules, kamailio-websocket-modules, kamailio-autheph-modules)"
    )]
    NotInstalled,
    /// Files or process.
    #[error("kamailio: {0}")]
    Io(#[from] std::io::Error),
    /// It exited or did not answer.
    #[error("kamailio did not start: {0} (log: {1})")]
    NotStarted(String, PathBuf),
}

/// What Kamailio needs to know.
#[derive(Clone)]
pub struct KamailioConfig {
    /// Run directory: rendered config, control socket, log.
    pub dir: PathBuf,
    /// SIP address (UDP and TCP/WS on the same port): the on-chain location.
    pub sip: SocketAddr,
    /// Loopback port of the JSON-RPC listener.
    pub rpc_port: u16,
    /// SIP realm (the location string).
    pub realm: String,
    /// The provider service's loopback address.
    pub service: SocketAddr,
    /// Shared with the service (`auth_ephemeral`).
    pub ephemeral_secret: Zeroizing<String>,
    /// SIP worker processes per transport.
    pub children: u32,
}

impl KamailioConfig {
    /// The control socket (`kamcmd -s unix:PATH`): in the run directory, unless that path is
    /// longer than a Unix socket address can be (104 bytes with Kamailio's check), as in a deep
    /// data dir; then in the temp dir, named by a hash of the run directory. Kamailio exits at
    /// start on a path that is too long.
    pub fn control_socket(&self) -> PathBuf {
        let inside = self.dir.join("kamailio_ctl");
        if inside.as_os_str().len() < 100 {
            return inside;
        }
        let id = krypton_wallet::sha256(self.dir.to_string_lossy().as_bytes());
        let id: String = id[..8].iter().map(|b| format!("{b:02x}")).collect();
        std::env::temp_dir().join(format!("krypton-kamailio-{id}.ctl"))
    }

    /// The rendered `kamailio.cfg`.
    pub fn render(&self, nonce_secret: &str) -> String {
        CFG.replace("%SIP_IP%", &self.sip.ip().to_string())
            .replace("%SIP_PORT%", &self.sip.port().to_string())
            .replace("%RPC_PORT%", &self.rpc_port.to_string())
            .replace("%CTL%", &self.control_socket().display().to_string())
            .replace("%DIR%", &self.dir.display().to_string())
            .replace("%REALM%", &self.realm)
            .replace("%CHILDREN%", &self.children.to_string())
            .replace("%NONCE_SECRET%", nonce_secret)
            .replace("%EPHEMERAL_SECRET%", &self.ephemeral_secret)
    }

    /// `krypton.json`, read by the KEMI script.
    pub fn kemi_settings(&self) -> String {
        serde_json::json!({
            "realm": self.realm,
            "service_host": self.service.ip().to_string(),
            "service_port": self.service.port(),
            "rpc_port": self.rpc_port,
        })
        .to_string()
    }

    /// The loopback JSON-RPC URL for [`crate::ServiceConfig::kamailio_rpc`].
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.rpc_port)
    }
}

/// A running Kamailio, stopped on drop.
#[derive(Debug)]
pub struct Kamailio {
    child: Child,
    log: PathBuf,
}

impl Kamailio {
    /// Writes the config (mode 0600: it holds secrets) and starts Kamailio in the foreground
    /// (`-DD -E`), its output in `DIR/kamailio.log`; returns once it answers OPTIONS on UDP.
    pub fn start(cfg: &KamailioConfig, timeout: Duration) -> Result<Self, KamailioError> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::process::CommandExt;
        if Command::new("kamailio").arg("-v").output().is_err() {
            return Err(KamailioError::NotInstalled);
        }
        std::fs::create_dir_all(&cfg.dir)?;
        let mut nonce_secret = Zeroizing::new([0u8; 24]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce_secret[..]);
        let nonce_secret = Zeroizing::new(hex(&nonce_secret[..]));
        let write = |name: &str, text: &str| -> std::io::Result<()> {
            let p = cfg.dir.join(name);
            let _ = std::fs::remove_file(&p);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)?;
            std::io::Write::write_all(&mut f, text.as_bytes())
        };
        write("kamailio.cfg", &cfg.render(&nonce_secret))?;
        write("krypton.py", KEMI)?;
        write("krypton.json", &cfg.kemi_settings())?;
        let log_path = cfg.dir.join("kamailio.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(cfg.dir.join("kamailio.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let mut k = Kamailio {
            child,
            log: log_path,
        };
        k.wait_ready(cfg.sip, timeout)?;
        Ok(k)
    }

    fn wait_ready(&mut self, sip: SocketAddr, timeout: Duration) -> Result<(), KamailioError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait()? {
                return Err(KamailioError::NotStarted(
                    format!("it exited ({st})"),
                    self.log.clone(),
                ));
            }
            if options_ping(sip, Duration::from_millis(200)) {
                return Ok(());
            }
        }
        Err(KamailioError::NotStarted(
            format!("no answer to OPTIONS on {sip} within {timeout:?}"),
            self.log.clone(),
        ))
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves Kamailio running after this handle is gone (it has its own process group); returns
    /// its pid. Stop it later through its process group (it leads one).
    pub fn detach(self) -> u32 {
        let pid = self.child.id();
        std::mem::forget(self);
        pid
    }

    /// Has it exited?
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        if self.exited() {
            return;
        }
        // SAFETY: a plain signal to the process group of the child we started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends one OPTIONS to the proxy itself over UDP; true on any final response.
pub fn options_ping(sip: SocketAddr, wait: Duration) -> bool {
    let Ok(sock) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let Ok(local) = sock.local_addr() else {
        return false;
    };
    let tag: u64 = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
    let msg = format!(
        "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{tag:x};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ping@{local}>;tag={tag:x}\r\nTo: <sip:{sip}>\r\n\
         Call-ID: {tag:x}@krypton\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    if sock.set_read_timeout(Some(wait)).is_err() || sock.send_to(msg.as_bytes(), sip).is_err() {
        return false;
    }
    let mut buf = [0u8; 2048];
    match sock.recv(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"SIP/2.0 2"),
        Err(_) => false,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &str) -> KamailioConfig {
        KamailioConfig {
            dir: PathBuf::from(dir),
            sip: "127.0.0.1:5070".parse().unwrap(),
            rpc_port: 5071,
            realm: "127.0.0.1:5070".into(),
            service: "127.0.0.1:5072".parse().unwrap(),
            ephemeral_secret: Zeroizing::new("s".into()),
            children: 1,
        }
    }

    #[test]
    fn the_control_socket_path_fits_a_unix_socket_address() {
        let short = config("/var/lib/krypton/provider/kamailio");
        assert_eq!(
            short.control_socket(),
            PathBuf::from("/var/lib/krypton/provider/kamailio/kamailio_ctl")
        );
        assert!(
            short
                .render("n")
                .contains("!KP_CTL!/var/lib/krypton/provider/kamailio/kamailio_ctl!")
        );
        let deep = format!(
            "/root/.cache/krypton/target/e2e/run-abcdefgh/data/devnet/providers/{}/provider/kamailio",
            "provider-a"
        );
        let a = config(&deep).control_socket();
        assert!(a.as_os_str().len() < 100, "{}", a.display());
        assert!(
            config(&deep)
                .render("n")
                .contains(&format!("!KP_CTL!{}!", a.display()))
        );
        // Two deep run dirs never share a socket.
        let b = config(&deep.replace("abcdefgh", "ijklmnop")).control_socket();
        assert_ne!(a, b);
    }
}
