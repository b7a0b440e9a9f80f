//! `krypton phone` as a child process: JSON commands in on stdin, JSON events out on stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TestkitError;

/// A running `krypton phone`; killed when dropped (send `quit` first for a clean exit).
pub struct KryptonPhone {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    log: std::path::PathBuf,
}

impl KryptonPhone {
    /// Start `bin phone ARGS…` with `data_dir` as `--data-dir`; stderr goes to `data_dir/phone.log`.
    pub fn start(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<Self, TestkitError> {
        Self::start_with_env(bin, data_dir, args, &[])
    }

    /// Like [`KryptonPhone::start`], with extra environment variables (e.g. `SSL_CERT_FILE`).
    pub fn start_with_env(
        bin: &Path,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Result<Self, TestkitError> {
        std::fs::create_dir_all(data_dir)?;
        let log = data_dir.join("phone.log");
        let err = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("phone")
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "unparsed", "line": line}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Ok(KryptonPhone {
            child,
            stdin,
            events: rx,
            seen: Vec::new(),
            log,
        })
    }

    /// Send one command, e.g. `json!({"cmd":"call","to":"sip:bob@x"})`.
    pub fn send(&mut self, command: Value) -> Result<(), TestkitError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin closed"))?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        Ok(())
    }

    /// The first event (seen before or arriving within `timeout`) named `name` for which
    /// `pick` returns true; earlier unrelated events stay available.
    pub fn wait(
        &mut self,
        name: &str,
        timeout: Duration,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Result<Value, TestkitError> {
        let matches = |v: &Value, pick: &mut dyn FnMut(&Value) -> bool| {
            v.get("event").and_then(Value::as_str) == Some(name) && pick(v)
        };
        if let Some(i) = self.seen.iter().position(|v| matches(v, &mut pick)) {
            return Ok(self.seen.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if matches(&v, &mut pick) => return Ok(v),
                Ok(v) => self.seen.push(v),
                Err(_) => {
                    return Err(TestkitError::NotReady {
                        what: format!("krypton phone event '{name}'"),
                        secs: timeout.as_secs(),
                        log: format!(
                            "events so far: {}\nstderr:\n{}",
                            self.seen
                                .iter()
                                .map(Value::to_string)
                                .collect::<Vec<_>>()
                                .join("\n"),
                            self.log_tail(30)
                        ),
                    });
                }
            }
        }
    }

    /// Like [`KryptonPhone::wait`] with any event of that name.
    pub fn wait_any(&mut self, name: &str, timeout: Duration) -> Result<Value, TestkitError> {
        self.wait(name, timeout, |_| true)
    }

    /// Every event received so far that nobody waited for.
    pub fn unclaimed(&mut self) -> Vec<Value> {
        while let Ok(v) = self.events.try_recv() {
            self.seen.push(v);
        }
        self.seen.clone()
    }

    /// Send `quit` and wait for the process to exit (killed after `timeout`).
    pub fn quit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = self.send(serde_json::json!({"cmd": "quit"}));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Kill the process at once (no unregister): a crash, as far as the network can tell.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of its stderr log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for KryptonPhone {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
