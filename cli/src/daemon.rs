//! Background processes that outlive the `krypton` command that started them (the devnet's neo-go
//! node, the provider service, the provider's Kamailio). Each is started in its own process group
//! and found again through a pid file, checked against `/proc` so that a stale pid file or a
//! reused pid never makes us signal a stranger.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

/// The pid in `pid_file` if that process is alive (not a zombie) and its command line passes
/// `is_ours`.
pub fn live_pid(pid_file: &Path, is_ours: impl Fn(&str) -> bool) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (state != 'Z' && is_ours(&String::from_utf8_lossy(&cmdline))).then_some(pid)
}

/// Stops the process of `pid_file` and its process group: SIGTERM, SIGKILL after 5 s, gives up
/// after 10 s. `Ok(false)` when it was not running. The pid file goes once it has stopped.
pub async fn stop(
    pid_file: &Path,
    is_ours: impl Fn(&str) -> bool,
    what: &str,
) -> anyhow::Result<bool> {
    let Some(pid) = live_pid(pid_file, &is_ours) else {
        return Ok(false);
    };
    // SAFETY: plain signals to the process group of a process we started (`live_pid` checked its
    // command line); each daemon leads its own group.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    for i in 0..200 {
        if live_pid(pid_file, &is_ours) != Some(pid) {
            let _ = std::fs::remove_file(pid_file);
            return Ok(true);
        }
        if i == 100 {
            // SAFETY: as above.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} (pid {pid}) does not stop: end it with `kill -9 -{pid}`")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
