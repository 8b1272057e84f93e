//! Throwaway certificate authorities and certificates for the TLS tests, made with rcgen.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA whose certificate is `<dir>/<name>.crt`.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub cert: PathBuf,
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Server,
    Client,
    /// Both, as peer certificates are (each member dials and is dialled).
    Both,
}

pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn ca(&self, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, format!("etcdeck test {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + Duration::from_secs(2 * 86_400)).into();
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA");
        let cert = self.path(&format!("{name}.crt"));
        std::fs::write(&cert, issuer.pem()).expect("write CA");
        Ca { issuer, cert }
    }

    /// A certificate for `cn` with `sans` (IPs or DNS names), signed by `ca`, valid from
    /// `from` for `days` (relative to now; negative for one already expired). Returns (cert, key).
    pub fn leaf(
        &self,
        ca: &Ca,
        file: &str,
        cn: &str,
        sans: &[&str],
        purpose: Use,
        days: (i64, i64),
    ) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for san in sans {
            params.subject_alt_names.push(match san.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(san.to_string().try_into().expect("DNS name")),
            });
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = match purpose {
            Use::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Use::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Use::Both => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        };
        let at = |d: i64| {
            let now = SystemTime::now();
            let span = Duration::from_secs(d.unsigned_abs() * 86_400);
            if d < 0 {
                now - span
            } else {
                now + span
            }
        };
        params.not_before = at(days.0).into();
        params.not_after = at(days.1).into();
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca.issuer).expect("sign");
        let (cert_path, key_path) = (self.path(&format!("{file}.crt")), self.path(&format!("{file}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

/// A path as a flag value.
pub fn arg(flag: &str, path: &Path) -> String {
    format!("--{flag}={}", path.display())
}
