//! The phone's settings: accounts, dial plan, codecs, ports, sound devices and file audio. Read
//! from TOML (`krypton phone --config FILE`) or built by a front end.
//!
//! ```toml
//! codecs = ["opus", "pcmu"]
//! rtp_ports = [16000, 16999]
//!
//! [audio]
//! input = "default"          # the microphone; a device id or name from the `devices` command
//! output = "default"         # the speaker or headset
//! echo_cancellation = true
//!
//! [[account]]
//! id = "provider-a"
//! aor = "sip:alice@a.example"
//! proxy = "sip:127.0.0.1:5060;transport=udp"
//! password_file = "/run/secrets/a"
//!
//! [dial_plan]
//! default = ["provider-a"]
//! [[dial_plan.rules]]
//! match = { prefix = "+31" }
//! accounts = ["provider-a", "provider-b"]
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use krypton_media::codec::CodecKind;
use krypton_media::sdp::SrtpPolicy;
/// A SIP digest user name and password (zeroized, hidden from `Debug`).
pub use krypton_sip::digest::Credentials;
use krypton_sip::{Account, Aor, BearerSigner, ProxyAddr, RegistrationPolicy};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::dialplan::DialPlan;

/// Errors in the phone's settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A setting is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// One account as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Short name used by the dial plan and commands.
    pub id: String,
    /// `sip:user@domain`.
    pub aor: String,
    /// Outbound proxy `sip:host[:port][;transport=udp|tcp|tls|ws|wss]`; default: the AOR's
    /// domain over UDP.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Authentication user name (default: the AOR's user).
    #[serde(default)]
    pub username: Option<String>,
    /// A file whose first line is the password (keeps the secret out of the config).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// REGISTER this account (default true).
    #[serde(default = "yes")]
    pub register: bool,
    /// Requested registration expiry in seconds (default 600).
    #[serde(default)]
    pub expires: Option<u32>,
    /// Keep-alive probe interval in seconds (default 15; 0 = off).
    #[serde(default)]
    pub keepalive: Option<u64>,
    /// This account is the KRYPTON path (calls to NEO addresses).
    #[serde(default)]
    pub krypton: bool,
    /// With `transport=tls`: a PEM file of CA certificates to trust for the proxy besides the
    /// OS trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR` replace the OS store when set).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// RFC 5626 `+sip.instance` (`urn:uuid:…`) for this account; default: the phone's own,
    /// kept in the data dir. A KRYPTON wallet account uses its on-chain uuid.
    #[serde(default)]
    pub instance: Option<String>,
    /// KRYPTON Bearer authentication (provider/AUTH.md §4): the signer that proves the wallet
    /// address to the provider ([`crate::wallet_auth::WalletSigner`]). Set by a front end
    /// that unlocked the wallet, never read from a config file.
    #[serde(skip)]
    pub bearer: Option<Arc<dyn BearerSigner>>,
    /// Digest credentials held in memory by a front end (the desktop app keeps SIP passwords
    /// encrypted and decrypts them only to start the phone); they take precedence over
    /// `password_file`. An empty user name means `username`, else the AOR's user (as with
    /// `password_file`). Never read from a config file; `Debug` does not show the password.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
}

fn yes() -> bool {
    true
}

/// Everything the phone needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    /// Accounts (`[[account]]` in TOML).
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountConfig>,
    /// Routing by destination.
    #[serde(default)]
    pub dial_plan: DialPlan,
    /// Codecs in preference order (`opus`, `pcmu`, `pcma`).
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// Local IP for SIP and RTP.
    #[serde(default = "default_bind")]
    pub bind: IpAddr,
    /// Local SIP UDP port (0 = any).
    #[serde(default)]
    pub sip_port: u16,
    /// RTP port range (inclusive).
    #[serde(default = "default_rtp_ports")]
    pub rtp_ports: (u16, u16),
    /// Answer incoming calls at once.
    #[serde(default)]
    pub auto_answer: bool,
    /// Play this WAV file as the microphone.
    #[serde(default)]
    pub play: Option<PathBuf>,
    /// Record what we hear into this WAV file (`{call}` is replaced by the call number).
    #[serde(default)]
    pub record: Option<PathBuf>,
    /// Hang up this many seconds after a call is established.
    #[serde(default)]
    pub hangup_after: Option<f64>,
    /// Where the message database and the instance id live.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Seconds to wait for an answer before trying the next route (default 60).
    #[serde(default)]
    pub no_answer_timeout: Option<u64>,
    /// SDES-SRTP (RFC 4568): `off` (default), `optional` (offer RTP/AVP with keys, accept
    /// either), `mandatory` (RTP/SAVP only). SDES keys travel in the SDP: use it with TLS
    /// signalling, or anyone who sees the SIP can decrypt the audio.
    #[serde(default)]
    pub srtp: SrtpSetting,
    /// Sound devices for calls (`[audio]`). `play`/`record` take precedence per direction.
    #[serde(default)]
    pub audio: AudioConfig,
    /// Report each established call's live quality ([`crate::PhoneEvent::Quality`]) every this
    /// many milliseconds (default: never; the desktop app draws them as a graph).
    #[serde(default)]
    pub quality_interval_ms: Option<u64>,
}

/// The sound devices calls use (`[audio]` in TOML). With neither device set, calls send
/// silence and play nowhere (unless `play`/`record` name files): a headless phone needs no
/// sound card.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// The microphone: `"default"` (the system's) or a device id or name (`devices` lists
    /// them). `play` takes precedence.
    #[serde(default)]
    pub input: Option<DeviceChoice>,
    /// The speaker or headset, likewise. `record` takes precedence.
    #[serde(default)]
    pub output: Option<DeviceChoice>,
    /// Cancel the speaker's echo from the microphone when both are devices (default on; only
    /// in builds with krypton-media's feature `aec`, which is on by default).
    #[serde(default = "yes")]
    pub echo_cancellation: bool,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            input: None,
            output: None,
            echo_cancellation: true,
        }
    }
}

impl AudioConfig {
    /// Both directions on the system's default devices, echo cancellation on: what a desktop
    /// front end starts with.
    pub fn default_devices() -> Self {
        AudioConfig {
            input: Some(DeviceChoice::Default),
            output: Some(DeviceChoice::Default),
            echo_cancellation: true,
        }
    }
}

/// Which sound device: the system's default, or one by id or name. Written as a string;
/// `"default"` is the default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum DeviceChoice {
    /// The system's default device of the direction (it follows the system's setting).
    Default,
    /// A device id (`"pulseaudio:alsa_output.pci…"`, or without the host: `"alsa_output.pci…"`)
    /// or name.
    Named(String),
}

impl DeviceChoice {
    /// The id or name to look up; `None` for the default.
    pub fn id(&self) -> Option<&str> {
        match self {
            DeviceChoice::Default => None,
            DeviceChoice::Named(n) => Some(n),
        }
    }
}

impl From<String> for DeviceChoice {
    fn from(s: String) -> Self {
        if s.trim().eq_ignore_ascii_case("default") {
            DeviceChoice::Default
        } else {
            DeviceChoice::Named(s)
        }
    }
}

impl From<&str> for DeviceChoice {
    fn from(s: &str) -> Self {
        DeviceChoice::from(s.to_string())
    }
}

impl From<DeviceChoice> for String {
    fn from(c: DeviceChoice) -> Self {
        c.to_string()
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Default => f.write_str("default"),
            DeviceChoice::Named(n) => f.write_str(n),
        }
    }
}

/// The SRTP setting as written in the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrtpSetting {
    /// Plain RTP.
    #[default]
    Off,
    /// Offer keys on RTP/AVP; accept plain or SRTP answers.
    Optional,
    /// RTP/SAVP only; refuse plain calls.
    Mandatory,
}

impl SrtpSetting {
    /// The media layer's policy.
    pub fn policy(self) -> SrtpPolicy {
        match self {
            SrtpSetting::Off => SrtpPolicy::Off,
            SrtpSetting::Optional => SrtpPolicy::Optional,
            SrtpSetting::Mandatory => SrtpPolicy::Mandatory,
        }
    }
}

fn default_codecs() -> Vec<String> {
    vec!["opus".into(), "pcmu".into(), "pcma".into()]
}

fn default_bind() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn default_rtp_ports() -> (u16, u16) {
    (16000, 16999)
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            accounts: Vec::new(),
            dial_plan: DialPlan::default(),
            codecs: default_codecs(),
            bind: default_bind(),
            sip_port: 0,
            rtp_ports: default_rtp_ports(),
            auto_answer: false,
            play: None,
            record: None,
            hangup_after: None,
            data_dir: None,
            no_answer_timeout: None,
            quality_interval_ms: None,
            srtp: SrtpSetting::Off,
            audio: AudioConfig::default(),
        }
    }
}

impl PhoneConfig {
    /// Read a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The codecs, parsed.
    pub fn codec_kinds(&self) -> Result<Vec<CodecKind>, ConfigError> {
        let kinds = self
            .codecs
            .iter()
            .map(|c| {
                CodecKind::from_name(c).ok_or_else(|| {
                    ConfigError::Invalid(format!("unknown codec '{c}': use opus, pcmu or pcma"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if kinds.is_empty() {
            return Err(ConfigError::Invalid("no codecs configured".into()));
        }
        Ok(kinds)
    }

    /// Check accounts and dial plan together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.codec_kinds()?;
        let mut ids: Vec<&str> = Vec::new();
        for a in &self.accounts {
            if ids.contains(&a.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "account id '{}' is used twice",
                    a.id
                )));
            }
            ids.push(&a.id);
        }
        self.dial_plan
            .validate(&ids)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.rtp_ports.0 >= self.rtp_ports.1 {
            return Err(ConfigError::Invalid(
                "rtp_ports must be a range like [16000, 16999]".into(),
            ));
        }
        Ok(())
    }
}

impl AccountConfig {
    /// The SIP layer's account, with the password read from `password_file`.
    pub fn to_account(&self) -> Result<Account, ConfigError> {
        let aor = Aor::parse(&self.aor).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let proxy = match &self.proxy {
            Some(p) => ProxyAddr::parse(p),
            None => ProxyAddr::parse(&format!("sip:{}", aor.domain)),
        }
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let user = || self.username.clone().unwrap_or_else(|| aor.user.clone());
        let credentials = match (&self.credentials, &self.password_file) {
            (Some(c), _) if c.username.is_empty() => {
                Some(Credentials::new(user(), c.password.as_str()))
            }
            (Some(c), _) => Some(c.clone()),
            (None, Some(path)) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                    ConfigError::Read {
                        path: path.clone(),
                        source,
                    }
                })?);
                let password = text.lines().next().unwrap_or("").to_string();
                Some(Credentials::new(user(), password))
            }
            (None, None) => None,
        };
        let mut policy = RegistrationPolicy::default();
        if let Some(e) = self.expires {
            policy.expires = e;
        }
        if let Some(k) = self.keepalive {
            policy.keepalive = (k > 0).then(|| Duration::from_secs(k));
        }
        Ok(Account {
            id: self.id.clone(),
            aor,
            display_name: self.display_name.clone(),
            proxy,
            credentials,
            register: self.register,
            policy,
            tls_ca: self.tls_ca.clone(),
            instance: self.instance.clone(),
            bearer: self.bearer.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_with_two_accounts_and_a_dial_plan() {
        let text = r#"
codecs = ["pcmu", "opus"]
rtp_ports = [20000, 20100]

[[account]]
id = "a"
aor = "sip:alice@a.test"
proxy = "sip:127.0.0.1:5060;transport=tcp"

[[account]]
id = "b"
aor = "sip:alice@b.test"
register = false

[[account]]
id = "c"
aor = "sip:alice@c.test"
proxy = "sip:proxy.c.test;transport=tls"
tls_ca = "/etc/krypton/c-ca.pem"

[dial_plan]
default = ["b"]
[[dial_plan.rules]]
match = { prefix = "+31" }
accounts = ["a", "b"]
"#;
        let c: PhoneConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.codec_kinds().unwrap(), [CodecKind::Pcmu, CodecKind::Opus]);
        let a = c.accounts[0].to_account().unwrap();
        assert_eq!(a.proxy.port, 5060);
        let b = c.accounts[1].to_account().unwrap();
        assert_eq!(b.proxy.host, "b.test");
        assert!(!b.register);
        let c3 = c.accounts[2].to_account().unwrap();
        assert_eq!(
            (c3.proxy.port, c3.proxy.transport),
            (5061, krypton_sip::TransportKind::Tls)
        );
        assert_eq!(
            c3.tls_ca.as_deref(),
            Some(Path::new("/etc/krypton/c-ca.pem"))
        );
        assert_eq!(c.dial_plan.routes("+3120123")[0].account, "a");
    }

    #[test]
    fn audio_devices_from_the_config() {
        let c: PhoneConfig = toml::from_str(
            "[audio]\ninput = \"default\"\noutput = \"pulseaudio:sinkB\"\necho_cancellation = false\n",
        )
        .unwrap();
        assert_eq!(c.audio.input, Some(DeviceChoice::Default));
        assert_eq!(
            c.audio.output,
            Some(DeviceChoice::Named("pulseaudio:sinkB".into()))
        );
        assert_eq!(
            c.audio.output.as_ref().and_then(DeviceChoice::id),
            Some("pulseaudio:sinkB")
        );
        assert!(!c.audio.echo_cancellation);
        // Nothing said: no devices (a headless phone), echo cancellation on for when they are.
        let c: PhoneConfig = toml::from_str("").unwrap();
        assert_eq!(c.audio, AudioConfig::default());
        assert_eq!((c.audio.input, c.audio.output), (None, None));
        assert!(c.audio.echo_cancellation);
        let e = toml::from_str::<PhoneConfig>("[audio]\nmicrophone = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("microphone"), "{e}");
        assert_eq!(DeviceChoice::from("Default"), DeviceChoice::Default);
        assert_eq!(DeviceChoice::from("sinkA").to_string(), "sinkA");
        assert_eq!(DeviceChoice::Default.to_string(), "default");
    }

    #[test]
    fn mistakes_are_named() {
        let c: PhoneConfig =
            toml::from_str("codecs = [\"g729\"]\n[[account]]\nid = \"a\"\naor = \"sip:a@b\"\n")
                .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("g729"));
        let e = toml::from_str::<PhoneConfig>("acount = []").unwrap_err();
        assert!(e.to_string().contains("acount"), "{e}");
        let c: PhoneConfig = toml::from_str(
            "[[account]]\nid = \"a\"\naor = \"sip:a@b\"\n[dial_plan]\ndefault = [\"zz\"]\n",
        )
        .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("zz"));
    }

    #[test]
    fn credentials_from_a_front_end_win_over_a_password_file_and_stay_hidden() {
        let mut a: AccountConfig = toml::from_str::<PhoneConfig>(
            "[[account]]\nid = \"a\"\naor = \"sip:alice@a.test\"\npassword_file = \"/nonexistent\"\n",
        )
        .unwrap()
        .accounts
        .remove(0);
        assert!(a.to_account().is_err(), "the missing file is read");
        a.credentials = Some(Credentials::new("alice", "front end secret"));
        let sip = a.to_account().unwrap();
        let c = sip.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "front end secret")
        );
        assert!(!format!("{a:?}").contains("front end secret"));
        // an empty user name is the AOR's user, as with a password file
        a.credentials = Some(Credentials::new("", "front end secret"));
        assert_eq!(
            a.to_account().unwrap().credentials.unwrap().username,
            "alice"
        );
    }
}
