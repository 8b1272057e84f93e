//! TLS for the node's client and peer listeners and for its own peer connections, as etcd's
//! pkg/transport does it:
//!
//! - the certificate and key are read again whenever their files change, so a renewed certificate
//!   is served from the next handshake on without a restart (etcd reads them on every handshake);
//! - a trusted CA file or client-cert-auth makes a client certificate mandatory, verified against
//!   that CA (the system's store when none is named);
//! - --peer-cert-allowed-cn names the only CN a peer's certificate may carry, and a peer's
//!   certificate that lists IP or DNS names must name the address it connects from (etcd's
//!   checkSAN);
//! - --auto-tls/--peer-auto-tls generate a self-signed certificate under `<data-dir>/fixtures`, and
//!   peer connections then skip verification, as etcd's self-signed TLSInfo does;
//! - --cipher-suites, --tls-min-version and --tls-max-version bound both sides;
//! - a handshake that does not finish in [`HANDSHAKE_TIMEOUT`] is dropped.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::etcd::urls::EtcdUrl;
use crate::node::config::{TlsInfo, TlsPolicy, TlsVersion};

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider with the policy's TLS 1.2 suites (TLS 1.3's are never restricted, as in Go).
pub fn provider(policy: &TlsPolicy) -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if !policy.cipher_suites.is_empty() {
        let wanted = |s: &rustls::SupportedCipherSuite| {
            let ours = format!("{:?}", s.suite());
            matches!(s, rustls::SupportedCipherSuite::Tls13(_))
                || policy.cipher_suites.iter().any(|name| go_name_matches(name, &ours))
        };
        p.cipher_suites.retain(wanted);
    }
    Arc::new(p)
}

/// Go's suite names against rustls's: Go also has the old CHACHA20_POLY1305 names without _SHA256.
fn go_name_matches(go: &str, rustls_name: &str) -> bool {
    go == rustls_name || format!("{go}_SHA256") == rustls_name
}

fn versions(policy: &TlsPolicy) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let max = policy.max_version.unwrap_or(TlsVersion::Tls13);
    let mut v = Vec::new();
    if policy.min_version <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        v.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        v.push(&rustls::version::TLS13);
    }
    v
}

/// A certificate and key on disk, loaded again when either file changes.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    cached: Mutex<Option<(Stamp, Arc<CertifiedKey>)>>,
}

/// What tells a replaced file: modification time, size and inode of both files.
type Stamp = [(Option<SystemTime>, u64, u64); 2];

fn stamp(path: &Path) -> std::io::Result<(Option<SystemTime>, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len(), m.ino()))
}

impl CertFiles {
    /// Loads the pair once, so a bad file is refused at start, with its name.
    pub fn open(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Arc<Self>, String> {
        let files = Arc::new(Self { cert: cert.into(), key: key.into(), provider, cached: Mutex::new(None) });
        files.current()?;
        Ok(files)
    }

    /// The pair as the files hold it now; the last good pair while a replacement is half written.
    pub fn current(&self) -> Result<Arc<CertifiedKey>, String> {
        let stamp_of = |p: &Path| stamp(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let now = stamp_of(&self.cert).and_then(|c| Ok([c, stamp_of(&self.key)?]));
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let (Ok(now), Some((then, key))) = (&now, cached.as_ref()) {
            if now == then {
                return Ok(key.clone());
            }
        }
        let loaded = now.and_then(|now| {
            let key = load_pair(&self.cert, &self.key, &self.provider)?;
            Ok((now, key))
        });
        match loaded {
            Ok((now, key)) => {
                *cached = Some((now, key.clone()));
                Ok(key)
            }
            Err(why) => match cached.as_ref() {
                Some((_, key)) => {
                    eprintln!("etcdeck node: keeping the previous TLS certificate: {why}");
                    Ok(key.clone())
                }
                None => Err(why),
            },
        }
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let chain = read_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    let signer = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("unusable private key in {}: {e}", key.display()))?;
    let pair = CertifiedKey::new(chain, signer);
    pair.keys_match().map_err(|e| {
        format!("the key in {} does not belong to the certificate in {}: {e}", key.display(), cert.display())
    })?;
    Ok(Arc::new(pair))
}

/// Every certificate in a PEM file; none is an error naming the file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
            .map_err(|why| eprintln!("etcdeck node: TLS handshake without a certificate: {why}"))
            .ok()
    }
}

impl ResolvesClientCert for CertFiles {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.current().ok()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The CA file's certificates, or the system's store when none is named (as Go's nil pool).
fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// A listener's TLS: the certificate served, and whom it lets in.
pub fn server_config(
    info: &TlsInfo,
    policy: &TlsPolicy,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, String> {
    let provider = provider(policy);
    let (cert, key) = match (&info.cert_file, &info.key_file) {
        (Some(c), Some(k)) => (c, k),
        _ => return Err("KeyFile and CertFile must both be present".into()),
    };
    let files = CertFiles::open(cert, key, provider.clone())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(policy))
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if info.trusted_ca_file.is_some() || info.client_cert_auth {
        let roots = roots(info.trusted_ca_file.as_deref())?;
        let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client certificate verification: {e}"))?;
        let verifier: Arc<dyn ClientCertVerifier> = match &info.allowed_cn {
            Some(cn) => Arc::new(AllowedCn { inner: webpki, cn: cn.clone() }),
            None => webpki,
        };
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(files);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The peer side's outgoing TLS: the peer certificate as a client certificate, and the peer CA (or
/// nothing, for self-signed certificates) to check the other member's.
pub fn client_config(
    info: &TlsInfo,
    self_signed: bool,
    policy: &TlsPolicy,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider(policy);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(policy))
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if self_signed {
        // Self-signed peers (--peer-auto-tls): encrypted, the certificate not checked, as etcd sets
        // InsecureSkipVerify for them.
        let any = crate::etcd::tls::AcceptAnyServerCert(provider.clone());
        builder.dangerous().with_custom_certificate_verifier(Arc::new(any))
    } else {
        builder.with_root_certificates(roots(info.trusted_ca_file.as_deref())?)
    };
    let config = match (&info.cert_file, &info.key_file) {
        (Some(c), Some(k)) => builder.with_client_cert_resolver(CertFiles::open(c, k, provider)?),
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// etcd's AllowedCN: after the chain checks out, the leaf's CN must be the one named.
#[derive(Debug)]
struct AllowedCn {
    inner: Arc<dyn ClientCertVerifier>,
    cn: String,
}

impl ClientCertVerifier for AllowedCn {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if common_name(end_entity).as_deref() == Some(self.cn.as_str()) {
            Ok(verified)
        } else {
            Err(rustls::Error::General("client certificate authentication failed".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subject's common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// etcd's checkSAN for peer connections: a client certificate that lists IP addresses or DNS names
/// must name the address the connection comes from (a DNS name counts when it resolves to it).
pub async fn check_san(der: &[u8], remote: IpAddr) -> Result<(), String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Err("unparsable client certificate".into());
    };
    let mut ips = Vec::new();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                x509_parser::extensions::GeneralName::DNSName(n) => names.push(n.to_string()),
                _ => {}
            }
        }
    }
    if (ips.is_empty() && names.is_empty()) || ips.contains(&remote) {
        return Ok(());
    }
    for name in &names {
        let lookup =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((name.as_str(), 0)));
        if let Ok(Ok(mut found)) = lookup.await {
            if found.any(|a| a.ip() == remote) {
                return Ok(());
            }
        }
    }
    if names.is_empty() {
        let listed: Vec<String> = ips.iter().map(ToString::to_string).collect();
        return Err(format!("x509: certificate is valid for {}, not {remote}", listed.join(", ")));
    }
    Err(format!("tls: {:?} does not match any of DNSNames {names:?}", remote.to_string()))
}

/// etcd's SelfCert: a certificate for the listen URLs' hosts in `dir` (cert.pem, key.pem), made once
/// and reused by later starts; valid for a year.
pub fn self_cert(dir: &Path, urls: &[EtcdUrl]) -> Result<TlsInfo, String> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let done = |()| TlsInfo {
        cert_file: Some(cert_path.clone()),
        key_file: Some(key_path.clone()),
        ..TlsInfo::default()
    };
    if cert_path.is_file() && key_path.is_file() {
        return Ok(done(()));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create cert directory {}: {e}", dir.display()))?;
    let hosts: Vec<String> = urls.iter().map(|u| u.host.clone()).collect();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("cannot generate x509 certificate: {e}"))?;
    for host in hosts {
        params.subject_alt_names.push(match host.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(
                host.clone().try_into().map_err(|e| format!("cannot put {host:?} in a certificate: {e}"))?,
            ),
        });
    }
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "etcd");
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + Duration::from_secs(365 * 24 * 3600)).into();
    params.key_usages =
        vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot generate ECDSA key: {e}"))?;
    let cert = params.self_signed(&key).map_err(|e| format!("cannot generate x509 certificate: {e}"))?;
    write_private(&key_path, key.serialize_pem().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    crate::node::fsutil::write_durably(&cert_path, cert.pem().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    Ok(done(()))
}

/// Writes a private key readable by its owner only, from the moment the file exists.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(dir: &Path, name: &str, cn: &str, sans: Vec<rcgen::SanType>) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).expect("write");
        std::fs::write(&k, key.serialize_pem()).expect("write");
        (c, k)
    }

    #[test]
    fn cipher_suites_and_versions_follow_the_policy() {
        let all = provider(&TlsPolicy::default());
        let two = TlsPolicy {
            cipher_suites: vec![
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into(),
            ],
            ..TlsPolicy::default()
        };
        let chosen = provider(&two);
        let tls12 = |p: &CryptoProvider| {
            p.cipher_suites
                .iter()
                .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
                .map(|s| format!("{:?}", s.suite()))
                .collect::<Vec<_>>()
        };
        assert!(tls12(&all).len() > 2);
        assert_eq!(
            tls12(&chosen),
            ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        // TLS 1.3's suites are never narrowed, as in Go.
        assert_eq!(chosen.cipher_suites.len() - 2, all.cipher_suites.len() - tls12(&all).len());
        let only13 = TlsPolicy { min_version: TlsVersion::Tls13, ..TlsPolicy::default() };
        assert_eq!(versions(&only13).len(), 1);
        let only12 = TlsPolicy { max_version: Some(TlsVersion::Tls12), ..TlsPolicy::default() };
        assert_eq!(versions(&only12), vec![&rustls::version::TLS12]);
    }

    #[test]
    fn a_replaced_pair_is_loaded_and_a_half_written_one_keeps_the_last_good() {
        let dir = tempfile::tempdir().expect("dir");
        let (c, k) = cert(dir.path(), "a", "first", Vec::new());
        let files = CertFiles::open(&c, &k, provider(&TlsPolicy::default())).expect("open");
        let first = files.current().expect("first");
        assert!(Arc::ptr_eq(&first, &files.current().expect("again")), "unchanged files are not read again");
        let (c2, k2) = cert(dir.path(), "b", "second", Vec::new());
        // Only the certificate replaced: it does not match the key, so the last good pair stays.
        std::fs::copy(&c2, &c).expect("copy");
        assert_eq!(common_name(&files.current().expect("kept").cert[0]).as_deref(), Some("first"));
        std::fs::copy(&k2, &k).expect("copy");
        assert_eq!(common_name(&files.current().expect("second").cert[0]).as_deref(), Some("second"));
        // A bad pair at start is refused, naming the file.
        let err =
            CertFiles::open(&c, &dir.path().join("none.key"), provider(&TlsPolicy::default())).unwrap_err();
        assert!(err.contains("none.key"), "{err}");
    }

    #[tokio::test]
    async fn a_peer_certificate_must_name_the_address_it_comes_from() {
        let dir = tempfile::tempdir().expect("dir");
        let ip = |s: &str| rcgen::SanType::IpAddress(s.parse().expect("ip"));
        let der = |path: &Path| read_certs(path).expect("read")[0].to_vec();
        let (c, _) = cert(dir.path(), "ip", "p", vec![ip("127.0.0.1")]);
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        assert_eq!(check_san(&der(&c), local).await, Ok(()));
        assert_eq!(
            check_san(&der(&c), other).await,
            Err("x509: certificate is valid for 127.0.0.1, not 127.0.0.2".into())
        );
        let (c, _) = cert(dir.path(), "none", "p", Vec::new());
        assert_eq!(check_san(&der(&c), other).await, Ok(()), "no SANs: nothing to check");
        let (c, _) =
            cert(dir.path(), "dns", "p", vec![rcgen::SanType::DnsName("localhost".try_into().expect("dns"))]);
        assert_eq!(check_san(&der(&c), local).await, Ok(()), "localhost resolves to 127.0.0.1");
    }

    #[test]
    fn self_signed_certificates_are_made_once() {
        let dir = tempfile::tempdir().expect("dir");
        let urls = vec![EtcdUrl::parse("https://127.0.0.1:2379").expect("url")];
        let info = self_cert(&dir.path().join("fixtures/client"), &urls).expect("made");
        let cert = info.cert_file.clone().expect("cert");
        let first = std::fs::read(&cert).expect("read");
        let again = self_cert(&dir.path().join("fixtures/client"), &urls).expect("again");
        assert_eq!(again, info);
        assert_eq!(std::fs::read(&cert).expect("read"), first);
        server_config(&info, &TlsPolicy::default(), &[]).expect("usable");
    }
}
