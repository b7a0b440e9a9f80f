//! A SIP account: who we are, where the outbound proxy is, how to authenticate.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::bearer::BearerSigner;
use crate::digest::Credentials;
use crate::registration::RegistrationPolicy;

/// Errors in account settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The address of record is not `sip:user@domain`.
    #[error("account '{0}' is not a SIP address of the form sip:user@domain")]
    BadAor(String),
    /// The proxy is not `sip:host[:port][;transport=udp|tcp|tls|ws|wss]`.
    #[error("proxy '{0}' is not of the form sip:HOST[:PORT][;transport=udp|tcp|tls|ws|wss]")]
    BadProxy(String),
}

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP (RFC 3261).
    Udp,
    /// TCP (RFC 3261).
    Tcp,
    /// TLS over TCP (RFC 3261 §26).
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
}

impl TransportKind {
    /// The `transport=` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }

    /// Parse a `transport=` value (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "udp" => TransportKind::Udp,
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            "ws" => TransportKind::Ws,
            "wss" => TransportKind::Wss,
            _ => return None,
        })
    }

    /// True for connection-oriented transports (a broken connection means a lost flow).
    pub fn is_stream(self) -> bool {
        self != TransportKind::Udp
    }

    fn default_port(self) -> u16 {
        match self {
            TransportKind::Udp | TransportKind::Tcp => 5060,
            TransportKind::Tls => 5061,
            TransportKind::Ws => 80,
            TransportKind::Wss => 443,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where requests go first: the outbound proxy (usually the registrar too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddr {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: TransportKind,
}

impl ProxyAddr {
    /// Parse `sip:HOST[:PORT][;transport=T]` (the `sip:` is optional; `sips:` means TLS).
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let bad = || AccountError::BadProxy(s.to_string());
        let t = s.trim();
        let (rest, mut transport) = if let Some(r) = strip_prefix_ci(t, "sips:") {
            (r, TransportKind::Tls)
        } else {
            (strip_prefix_ci(t, "sip:").unwrap_or(t), TransportKind::Udp)
        };
        let mut parts = rest.split(';');
        let hostport = parts.next().ok_or_else(bad)?;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            if k.trim().eq_ignore_ascii_case("transport") {
                transport = TransportKind::parse(v.trim()).ok_or_else(bad)?;
            }
        }
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        if host.is_empty() || host.contains(['@', ' ', '/']) {
            return Err(bad());
        }
        Ok(ProxyAddr {
            host,
            port: port.unwrap_or(transport.default_port()),
            transport,
        })
    }
}

impl fmt::Display for ProxyAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "sip:[{}]:{};transport={}",
                self.host, self.port, self.transport
            )
        } else {
            write!(
                f,
                "sip:{}:{};transport={}",
                self.host, self.port, self.transport
            )
        }
    }
}

/// `sip:user@domain`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aor {
    /// User part.
    pub user: String,
    /// Domain (may carry a port).
    pub domain: String,
}

impl Aor {
    /// Parse `sip:user@domain` (the `sip:` is optional).
    pub fn parse(s: &str) -> Result<Self, AccountError> {
        let t = s.trim();
        let rest = strip_prefix_ci(t, "sip:").unwrap_or(t);
        let rest = rest.split(';').next().unwrap_or("");
        let (user, domain) = rest
            .split_once('@')
            .ok_or_else(|| AccountError::BadAor(s.to_string()))?;
        if user.is_empty() || domain.is_empty() || domain.contains(['@', ' ']) {
            return Err(AccountError::BadAor(s.to_string()));
        }
        Ok(Aor {
            user: user.to_string(),
            domain: domain.to_string(),
        })
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sip:{}@{}", self.user, self.domain)
    }
}

/// One SIP account the phone uses.
#[derive(Debug, Clone)]
pub struct Account {
    /// Short name the dial plan and the user refer to.
    pub id: String,
    /// Our address of record.
    pub aor: Aor,
    /// Display name in From.
    pub display_name: Option<String>,
    /// Outbound proxy and registrar.
    pub proxy: ProxyAddr,
    /// Digest credentials (user name may differ from the AOR's user).
    pub credentials: Option<Credentials>,
    /// Whether to REGISTER at all (a trunk-style account may not).
    pub register: bool,
    /// Timing of registration refreshes, retries and keep-alives.
    pub policy: RegistrationPolicy,
    /// For a TLS proxy: a PEM file with CA certificates to trust besides the OS trust store
    /// (which is always used; `SSL_CERT_FILE`/`SSL_CERT_DIR` replace it when set). rsipstack
    /// keeps one TLS configuration per user agent, so these anchors count for every TLS
    /// account of the same user agent.
    pub tls_ca: Option<PathBuf>,
    /// RFC 5626 `+sip.instance` of this account (`urn:uuid:…`); `None`: the user agent's
    /// ([`crate::UaConfig::instance`]). A KRYPTON wallet account uses its on-chain uuid.
    pub instance: Option<String>,
    /// KRYPTON Bearer authentication (`provider/AUTH.md` §4): with a signer, REGISTER, INVITE
    /// and MESSAGE carry `Supported: krypton`, and a Bearer challenge is answered with a token
    /// the signer mints (preferred over digest). Its `Debug` shows no secret.
    pub bearer: Option<Arc<dyn BearerSigner>>,
}

impl Account {
    /// The `+sip.instance` this account uses: its own, else `default` (the user agent's).
    pub fn instance_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.instance.as_deref().unwrap_or(default)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None => Some((s.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse() {
        let p = ProxyAddr::parse("sip:127.0.0.1:15060;transport=tcp").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.transport),
            ("127.0.0.1", 15060, TransportKind::Tcp)
        );
        let p = ProxyAddr::parse("sip:proxy.example").unwrap();
        assert_eq!((p.port, p.transport), (5060, TransportKind::Udp));
        let p = ProxyAddr::parse("sips:proxy.example").unwrap();
        assert_eq!((p.port, p.transport), (5061, TransportKind::Tls));
        let p = ProxyAddr::parse("sip:[::1]:5070;transport=WS").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.transport),
            ("::1", 5070, TransportKind::Ws)
        );
        assert_eq!(p.to_string(), "sip:[::1]:5070;transport=ws");
        for bad in [
            "sip:host:99999",
            "sip:host;transport=carrier-pigeon",
            "sip:",
            "sip:a@b",
        ] {
            assert!(ProxyAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aors_parse() {
        let a = Aor::parse("sip:alice@provider.test").unwrap();
        assert_eq!(a.to_string(), "sip:alice@provider.test");
        assert!(Aor::parse("sip:provider.test").is_err());
        assert!(Aor::parse("sip:@x").is_err());
    }
}
