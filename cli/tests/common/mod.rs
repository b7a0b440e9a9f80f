//! Test harness: runs the real `krypton` binary against a real neo-go devnet it starts in a temp dir.
//!
//! Tests need the keyutils keychain: run them inside a session keyring (`scripts/test` does
//! `keyctl session - cargo test`).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Result of one `krypton` run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last JSON line of stdout.
    pub fn json(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON in {self:?}"));
        serde_json::from_str(line).unwrap()
    }
    /// Asserts success and returns the JSON result.
    pub fn ok(self) -> Value {
        assert!(self.ok, "krypton failed: {self:#?}");
        self.json()
    }
    /// Asserts failure and returns the error message.
    pub fn err(self) -> String {
        assert!(!self.ok, "krypton should have failed: {self:#?}");
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {self:?}"))
            .to_string()
    }
}

/// One isolated KRYPTON data dir (its own keychain namespace).
pub struct Krypton {
    pub dir: tempfile::TempDir,
    /// Extra global args, e.g. `--network URL`.
    pub global: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Default for Krypton {
    fn default() -> Self {
        Self::new()
    }
}

/// Tests clean up after themselves: the wallet entry leaves the keychain with the data dir.
impl Drop for Krypton {
    fn drop(&mut self) {
        let _ = self.run(&["wallet", "remove", "--all"], "");
    }
}

impl Krypton {
    pub fn new() -> Self {
        Krypton {
            dir: tempfile::tempdir().unwrap(),
            global: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Runs `krypton --data-dir D --json ARGS` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_krypton"));
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .arg("--json")
            .args(&self.global)
            .args(args);
        cmd.env("KRYPTON_KEYSTORE", "keyutils")
            .env_remove("KRYPTON_NETWORK")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run krypton");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// `wallet import --nep6 FILE` with the file's password on stdin.
    pub fn import_nep6(&self, file: &Path, password: &str) -> Run {
        let f = file.to_str().unwrap();
        self.run(
            &["--password-stdin", "wallet", "import", "--nep6", f],
            &format!("{password}\n"),
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A running devnet in its own data dir; stopped on drop.
pub struct Devnet {
    pub k: Krypton,
    pub info: Value,
}

impl Devnet {
    pub fn up() -> Self {
        let k = Krypton::new();
        let info = k.run(&["devnet", "up"], "").ok();
        Devnet { k, info }
    }

    pub fn rpc(&self) -> String {
        self.info["rpc"].as_str().unwrap().to_string()
    }

    pub fn contract(&self) -> String {
        self.info["contract"].as_str().unwrap().to_string()
    }

    /// Address of a named test account (owner, alice, bob, provider-a, provider-b).
    pub fn account(&self, name: &str) -> String {
        self.info["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no account {name}"))["address"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn accounts_file(&self) -> PathBuf {
        PathBuf::from(self.info["accounts_file"].as_str().unwrap())
    }

    /// A second data dir (its own wallet) pointed at this devnet.
    pub fn client(&self) -> Krypton {
        let mut k = Krypton::new();
        k.global = vec![
            "--network".into(),
            self.rpc(),
            "--contract".into(),
            self.contract(),
        ];
        k
    }

    /// A second data dir pointed at this devnet, holding the devnet's named accounts.
    pub fn client_with_accounts(&self) -> Krypton {
        let k = self.client();
        k.import_nep6(&self.accounts_file(), "devnet").ok();
        k
    }

    /// `krypton phone --wallet ADDRESS --password-file FILE EXTRA…` in `k`'s data dir, on this
    /// devnet (keyutils keychain).
    pub fn wallet_phone(
        &self,
        k: &Krypton,
        address: &str,
        password_file: &str,
        extra: &[&str],
    ) -> krypton_testkit::KryptonPhone {
        let (rpc, contract) = (self.rpc(), self.contract());
        let mut args = vec![
            "--keystore",
            "keyutils",
            "--network",
            &rpc,
            "--contract",
            &contract,
            "--wallet",
            address,
            "--password-file",
            password_file,
        ];
        args.extend_from_slice(extra);
        krypton_testkit::KryptonPhone::start(
            Path::new(env!("CARGO_BIN_EXE_krypton")),
            k.path(),
            &args,
        )
        .expect("krypton phone")
    }

    /// Runs krypton in the devnet's own data dir.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.k.run(args, stdin)
    }

    /// `query WHAT ADDRESS`: the value (null when absent).
    pub fn query(&self, what: &str, address: &str) -> Value {
        self.run(&["query", what, address], "").ok()["value"].clone()
    }

    /// GAS of an address in datoshi.
    pub fn gas(&self, address: &str) -> i128 {
        self.run(&["balance", address], "").ok()["GAS_datoshi"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// The devnet wallets' password (with the newline `--password-stdin` reads).
pub const PW: &str = "devnet\n";
/// How long a test waits for a phone event.
pub const T: std::time::Duration = std::time::Duration::from_secs(20);
/// Wallet phones register for 15 s here (the provider's floor is 10), so a refresh comes every
/// 12 s.
pub const EXPIRES: &str = "15";

/// A provider run by `krypton provider up` in its own data dir; `down` on drop, also when the
/// test fails.
pub struct Provider(pub Krypton);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.run(&["provider", "down"], "");
    }
}

impl Devnet {
    /// `krypton --account NAME provider up EXTRA…` in a fresh data dir holding the named accounts.
    pub fn provider_up(&self, name: &str, extra: &[&str]) -> Provider {
        let k = self.client_with_accounts();
        let address = self.account(name);
        let mut args = vec!["--account", &address, "--password-stdin", "provider", "up"];
        args.extend_from_slice(extra);
        k.run(&args, PW).ok();
        Provider(k)
    }

    /// `user` registers with `provider` on chain (both named accounts).
    pub fn register_on_chain(&self, user: &str, provider: &str) {
        let (u, p) = (self.account(user), self.account(provider));
        self.run(
            &[
                "--account",
                &u,
                "--password-stdin",
                "register",
                "--provider",
                &p,
            ],
            PW,
        )
        .ok();
    }

    /// A wallet phone for the named account in `k`'s data dir (registrations last [`EXPIRES`]),
    /// once it is registered.
    pub fn registered_phone(
        &self,
        k: &Krypton,
        user: &str,
        password_file: &Path,
        extra: &[&str],
    ) -> krypton_testkit::KryptonPhone {
        let address = self.account(user);
        let mut args = vec!["--expires", EXPIRES];
        args.extend_from_slice(extra);
        let mut p = self.wallet_phone(k, &address, password_file.to_str().unwrap(), &args);
        let r = p
            .wait_any("registered", T)
            .unwrap_or_else(|e| panic!("{user} not registered: {e}; see {}", k.path().display()));
        assert_eq!(r["account"], address.as_str(), "{r}");
        p
    }
}

/// A raw REGISTER for `user` at `realm` as a KRYPTON phone sends it (`Supported: krypton`,
/// `+sip.instance`), from `local`; `authorization` is the whole header value, e.g. `Bearer …`.
#[allow(clippy::too_many_arguments)]
pub fn raw_register(
    realm: &str,
    user: &str,
    local: std::net::SocketAddr,
    call_id: &str,
    cseq: u32,
    instance: &str,
    expires: u32,
    authorization: Option<&str>,
) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:{realm} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}.{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{realm}>;tag=t{cseq}\r\n\
         To: <sip:{user}@{realm}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local}>;+sip.instance=\"<{instance}>\";reg-id=1\r\n\
         Expires: {expires}\r\n\
         Supported: krypton\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

/// `from` writes to `to_addr`: delivered, and `to` shows it from `from_addr`.
pub fn assert_message(
    from: &mut krypton_testkit::KryptonPhone,
    to: &mut krypton_testkit::KryptonPhone,
    to_addr: &str,
    from_addr: &str,
    body: &str,
) {
    from.send(serde_json::json!({"cmd": "message", "to": to_addr, "body": body}))
        .unwrap();
    let st = from
        .wait("message_status", T, |v| v["status"] != "pending")
        .unwrap();
    assert_eq!(st["status"], "delivered", "{st}");
    let m = to.wait_any("message", T).unwrap();
    assert_eq!(m["body"], body, "{m}");
    assert!(m["from"].as_str().unwrap().contains(from_addr), "{m}");
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.k.run(&["devnet", "down"], "");
    }
}

/// The neo-go binary the setup script installed.
pub fn neogo() -> PathBuf {
    if let Ok(p) = std::env::var("KRYPTON_NEOGO") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    cache.join("krypton/tools/neogo")
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
