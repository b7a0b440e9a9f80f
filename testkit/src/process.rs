//! Child processes that die with the test, and free loopback ports.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A child process killed (SIGTERM, then SIGKILL) when dropped, with its output in a log file.
pub struct Child {
    name: String,
    child: Option<std::process::Child>,
    /// Held open for programs that exit when their stdin closes.
    stdin: Option<std::process::ChildStdin>,
    log: PathBuf,
}

impl Child {
    /// Start `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<Child> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn()?;
        Ok(Child {
            name: name.to_string(),
            child: Some(child),
            stdin: None,
            log: log.to_path_buf(),
        })
    }

    /// Like [`Child::spawn`], with a stdin pipe that stays open (and is returned by
    /// [`Child::stdin`]) until the child is stopped.
    pub fn spawn_with_stdin_pipe(
        name: &str,
        mut cmd: Command,
        log: &Path,
    ) -> std::io::Result<Child> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut child = cmd.stdin(Stdio::piped()).stdout(out).stderr(err).spawn()?;
        let stdin = child.stdin.take();
        Ok(Child {
            name: name.to_string(),
            child: Some(child),
            stdin,
            log: log.to_path_buf(),
        })
    }

    /// The child's stdin, if it was started with a pipe.
    pub fn stdin(&mut self) -> Option<&mut std::process::ChildStdin> {
        self.stdin.as_mut()
    }

    /// Process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stop it: SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.stdin = None;
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on a pid we own; at worst it fails with ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => break,
            }
        }
        tracing::warn!(name = %self.name, "did not stop on SIGTERM; killing");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that is free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// An even UDP port whose successor is free too (RTP + RTCP).
pub fn free_udp_port_pair() -> u16 {
    loop {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback");
        let port = a.local_addr().expect("local addr").port();
        if port.is_multiple_of(2)
            && port < u16::MAX
            && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

/// A temporary directory for one test's files, named `PREFIX…` under the system temp dir.
/// `KRYPTON_KEEP_TEST_FILES=1` keeps it (recordings, configs, logs) for a look afterwards.
pub fn test_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(std::env::var_os("KRYPTON_KEEP_TEST_FILES").is_some())
        .tempdir()
}
