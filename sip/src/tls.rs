//! SIP over TLS to the outbound proxy (RFC 3261 §26): which certificates we trust, and what a
//! failed handshake means for the user.
//!
//! rsipstack's TLS transport verifies the proxy's certificate with rustls against the trust
//! anchors its transport layer is given — it has none of its own — and checks it against the
//! proxy's host (the SNI name: the host name, or the IP literal of an address). We give it the
//! OS trust store, read by `rustls-native-certs` (which reads only `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` when either is set), plus the CA file an account may name
//! ([`crate::Account::tls_ca`]). rsipstack keeps one TLS configuration per transport layer, so
//! the anchors are the union over every TLS account of the user agent.
//!
//! [`certificate_problem`] turns a rustls error into a reason a user can act on; the driver
//! treats such a failure as permanent (no retry until the settings change).

use std::path::{Path, PathBuf};

use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, RootCertStore};

/// The trust anchors given to rsipstack so far.
#[derive(Debug, Default)]
pub(crate) struct TrustAnchors {
    /// The OS trust store has been read.
    os_loaded: bool,
    /// CA files of accounts, already added.
    files: Vec<PathBuf>,
    /// Every anchor (OS store and account files), DER.
    certs: Vec<CertificateDer<'static>>,
}

impl TrustAnchors {
    /// True once the OS store has been read and `ca_file` (if any) added: nothing to do.
    pub(crate) fn covers(&self, ca_file: Option<&Path>) -> bool {
        self.os_loaded && ca_file.is_none_or(|f| self.files.iter().any(|g| g == f))
    }

    /// Add the anchors read from the OS trust store.
    pub(crate) fn add_os_store(&mut self, certs: Vec<CertificateDer<'static>>) {
        self.os_loaded = true;
        self.certs.extend(usable_anchors(certs));
    }

    /// Add the certificates of an account's CA file (`pem` is its content).
    pub(crate) fn add_ca_file(&mut self, path: &Path, pem: &[u8]) -> Result<(), String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
        let usable = usable_anchors(certs);
        if usable.is_empty() {
            return Err(format!(
                "the CA file {} holds no usable CA certificate (PEM, -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        self.certs.extend(usable);
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Number of anchors.
    pub(crate) fn len(&self) -> usize {
        self.certs.len()
    }

    /// All anchors as one PEM bundle (what rsipstack's `TlsConfig::ca_certs` takes).
    pub(crate) fn pem(&self) -> Vec<u8> {
        let mut out = String::new();
        for c in &self.certs {
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
            for line in b64.as_bytes().chunks(64) {
                // Base64 output is ASCII.
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out.into_bytes()
    }
}

/// The certificates rustls accepts as trust anchors. rsipstack fails the whole connection on
/// one it cannot use, and an OS bundle may hold such oddities, so they are dropped here.
fn usable_anchors(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    certs
        .into_iter()
        .filter(|c| RootCertStore::empty().add(c.clone()).is_ok())
        .collect()
}

/// If a TLS failure is about the proxy's certificate — something retrying will not fix — the
/// reason for the user, saying what to do; `None` for other failures (refused, reset, …).
pub(crate) fn certificate_problem(error: &rustls::Error, host: &str) -> Option<String> {
    let rustls::Error::InvalidCertificate(e) = error else {
        return None;
    };
    const TRUST: &str = "add the CA that issued it to the OS trust store, or name it in the \
                         account's tls_ca (or SSL_CERT_FILE)";
    Some(match e {
        CertificateError::UnknownIssuer => format!(
            "the proxy's TLS certificate is not trusted: it was not issued by a CA in the trust \
             store; {TRUST}"
        ),
        CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
            format!(
                "the proxy's TLS certificate is not valid for '{host}' (it names {}); use a host \
                 name the certificate was issued for in the proxy address",
                presented.join(", ")
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the proxy's TLS certificate is not valid for '{host}'; use a host name the \
                 certificate was issued for in the proxy address"
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => format!(
            "the proxy's TLS certificate is outside its validity period ({e}); check this \
             computer's clock, or ask the provider to renew the certificate"
        ),
        CertificateError::Revoked => {
            "the proxy's TLS certificate has been revoked; ask the provider for a new one".into()
        }
        other => format!("the proxy's TLS certificate is not trusted: {other}; {TRUST}"),
    })
}

/// The rustls error inside an rsipstack transport error, if it is one (a failed handshake
/// surfaces as an I/O error wrapping it).
pub(crate) fn rustls_error(error: &rsipstack::Error) -> Option<&rustls::Error> {
    match error {
        rsipstack::Error::IoError(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway EC P-256 CA certificate (openssl req -x509, CA:TRUE, no key kept).
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBojCCAUmgAwIBAgIUMq9PsRsD6S41YgmwwPBrXtx8vA8wCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUS1JZUFRPTiB1bml0LXRlc3QgQ0EwHhcNMjYxMTI1MTc0MDI4
WhcNMzYxMTIyMTc0MDI4WjAfMR0wGwYDVQQDDBRLUllQVE9OIHVuaXQtdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKx+tcd89lEPPtLAV8aE+bUJAmee
u3CDxtAkm7IVX87iu1iTzYgJh37Di1uwX7vdqIerIOV3SFRhiBxUqBfOrN6jYzBh
MB0GA1UdDgQWBBQobx3LDet1Vfo3s1W2I3geJYvzHDAfBgNVHSMEGDAWgBQobx3L
Det1Vfo3s1W2I3geJYvzHDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB
BjAKBggqhkjOPQQDAgNHADBEAiBMjRgj1faosYMb2WIygFlSmFYR1AsscIEly4hC
EjPpygIgL9UCkc9aVtFl5z9pdCj/jmpU/q8p5Aiwe/Y681heMlg=
-----END CERTIFICATE-----
";

    #[test]
    fn certificate_errors_become_reasons_to_act_on() {
        let r = certificate_problem(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "127.0.0.1",
        )
        .unwrap();
        assert!(
            r.starts_with("the proxy's TLS certificate is not trusted"),
            "{r}"
        );
        assert!(r.contains("tls_ca"), "{r}");
        let r = certificate_problem(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "proxy.example",
        )
        .unwrap();
        assert!(r.contains("not valid for 'proxy.example'"), "{r}");
        let r = certificate_problem(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("10.0.0.1").unwrap(),
                presented: vec!["DnsName(\"sip.example\")".into()],
            }),
            "10.0.0.1",
        )
        .unwrap();
        assert!(
            r.contains("not valid for '10.0.0.1' (it names DnsName(\"sip.example\"))"),
            "{r}"
        );
        let r = certificate_problem(
            &rustls::Error::InvalidCertificate(CertificateError::Expired),
            "x",
        )
        .unwrap();
        assert!(r.contains("clock"), "{r}");
        assert_eq!(
            certificate_problem(&rustls::Error::HandshakeNotComplete, "x"),
            None
        );
    }

    #[test]
    fn handshake_errors_are_found_inside_transport_errors() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let e = rsipstack::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            inner.clone(),
        ));
        assert_eq!(rustls_error(&e), Some(&inner));
        let refused = rsipstack::Error::IoError(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(rustls_error(&refused), None);
    }

    #[test]
    fn ca_files_add_anchors_and_round_trip_as_pem() {
        let mut t = TrustAnchors::default();
        assert!(!t.covers(None));
        t.add_os_store(Vec::new());
        assert!(t.covers(None));
        let path = Path::new("/etc/krypton/ca.pem");
        assert!(!t.covers(Some(path)));
        let e = t.add_ca_file(path, b"not a certificate").unwrap_err();
        assert!(
            e.contains("/etc/krypton/ca.pem") && e.contains("no usable"),
            "{e}"
        );
        assert!(!t.covers(Some(path)));
        t.add_ca_file(path, CA_PEM.as_bytes()).unwrap();
        assert!(t.covers(Some(path)));
        assert_eq!(t.len(), 1);
        // What rsipstack gets parses back to the same certificate.
        let pem = t.pem();
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        let orig: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CA_PEM.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, orig);
        assert_eq!(pem, CA_PEM.as_bytes(), "64-column PEM like openssl writes");
    }

    #[test]
    fn certificates_that_are_no_trust_anchor_are_dropped() {
        let t = usable_anchors(vec![CertificateDer::from(vec![
            0x30, 0x03, 0x02, 0x01, 0x00,
        ])]);
        assert!(t.is_empty());
    }
}
