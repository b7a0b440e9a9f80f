//! Throwaway certificate authorities for TLS tests, made with the `openssl` command line tool:
//! EC P-256 keys, valid for two days, written into the test's temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestkitError;

/// A certificate authority that exists for one test run.
#[derive(Debug, Clone)]
pub struct TestCa {
    cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

impl TestCa {
    /// Create a CA named `name` in `dir` (`<name>-ca.pem` and its key).
    pub fn create(dir: &Path, name: &str) -> Result<TestCa, TestkitError> {
        if Command::new("openssl").arg("version").output().is_err() {
            return Err(TestkitError::Missing("openssl"));
        }
        std::fs::create_dir_all(dir)?;
        let cert = dir.join(format!("{name}-ca.pem"));
        let key = dir.join(format!("{name}-ca.key"));
        openssl(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec"])
                .args([
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                ])
                .args(["-subj", &format!("/CN=KRYPTON test CA {name}")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )?;
        Ok(TestCa {
            cert,
            key,
            dir: dir.to_path_buf(),
        })
    }

    /// The CA certificate (PEM): what a client trusts, e.g. through `SSL_CERT_FILE`.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// Issue a server certificate for `names` (DNS names or IP literals, as subjectAltName);
    /// returns the certificate and key files (`<stem>.pem`, `<stem>.key`).
    pub fn issue_server(
        &self,
        stem: &str,
        names: &[String],
    ) -> Result<(PathBuf, PathBuf), TestkitError> {
        let cert = self.dir.join(format!("{stem}.pem"));
        let key = self.dir.join(format!("{stem}.key"));
        let csr = self.dir.join(format!("{stem}.csr"));
        let ext = self.dir.join(format!("{stem}.ext"));
        let san: Vec<String> = names
            .iter()
            .map(|n| {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    format!("IP:{n}")
                } else {
                    format!("DNS:{n}")
                }
            })
            .collect();
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                san.join(",")
            ),
        )?;
        let cn = names.first().map(String::as_str).unwrap_or("server");
        openssl(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "ec"])
                .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .args(["-subj", &format!("/CN={cn}")])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        )?;
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        openssl(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", &serial])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&self.cert)
                .arg("-CAkey")
                .arg(&self.key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
        )?;
        Ok((cert, key))
    }
}

fn openssl(cmd: &mut Command) -> Result<(), TestkitError> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
        .into())
    }
}
