//! etcdeck nodes with etcd's TLS flags: mutual TLS on client and peer links, with Debian's etcdctl
//! and etcdeck's console as clients; refused certificates; certificates replaced on disk; auto TLS.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::pki::{arg, Pki, Use};
use crate::support::{etcd_tools, etcdeck, free_port, run_etcdctl, EtcdeckNode};

/// Client credentials for etcdctl: CA, cert, key.
struct Creds {
    ca: PathBuf,
    cert: Option<(PathBuf, PathBuf)>,
}

impl Creds {
    fn flags(&self) -> Vec<String> {
        let mut f = vec![format!("--cacert={}", self.ca.display())];
        if let Some((c, k)) = &self.cert {
            f.push(format!("--cert={}", c.display()));
            f.push(format!("--key={}", k.display()));
        }
        f
    }
}

fn ctl(etcdctl: &Path, urls: &[String], creds: &Creds, args: &[&str]) -> (bool, String, String) {
    let flags = creds.flags();
    let all: Vec<&str> = flags.iter().map(String::as_str).chain(args.iter().copied()).collect();
    run_etcdctl(etcdctl, urls, &all)
}

fn wait_healthy(etcdctl: &Path, url: &str, creds: &Creds, node: &EtcdeckNode, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (ok, out, err) = ctl(etcdctl, &[url.to_string()], creds, &["endpoint", "health"]);
        // etcdctl 3.4 prints the health of each endpoint on stderr.
        if ok && (out.contains("is healthy") || err.contains("is healthy")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not healthy after {limit:?}: {out}{err}\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mutual_tls_on_client_and_peer_links_lets_in_only_good_certificates() {
    let Some(tools) = etcd_tools() else { return };
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let other_ca = pki.ca("other-ca");
    let localhost = ["127.0.0.1", "localhost"];
    let (server_crt, server_key) = pki.leaf(&ca, "server", "etcd-server", &localhost, Use::Both, (-1, 2));
    let (peer_crt, peer_key) = pki.leaf(&ca, "peer", "etcd-peer", &localhost, Use::Both, (-1, 2));
    let root = (pki.leaf(&ca, "root", "root", &[], Use::Client, (-1, 2)), "a good client certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let peers: Vec<String> = (0..3).map(|_| format!("https://127.0.0.1:{}", free_port())).collect();
    let initial: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("t{}={p}", i + 1)).collect();
    let mut nodes: Vec<EtcdeckNode> = (0..3)
        .map(|i| {
            let flags = [
                format!("--listen-peer-urls={}", peers[i]),
                format!("--initial-advertise-peer-urls={}", peers[i]),
                format!("--initial-cluster={}", initial.join(",")),
                arg("cert-file", &server_crt),
                arg("key-file", &server_key),
                arg("trusted-ca-file", &ca.cert),
                "--client-cert-auth".into(),
                arg("peer-cert-file", &peer_crt),
                arg("peer-key-file", &peer_key),
                arg("peer-trusted-ca-file", &ca.cert),
                "--peer-client-cert-auth".into(),
                "--peer-cert-allowed-cn=etcd-peer".into(),
            ];
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let client = format!("https://127.0.0.1:{}", free_port());
            EtcdeckNode::spawn_at(
                &format!("t{}", i + 1),
                &dir.path().join(format!("t{}", i + 1)),
                &client,
                &flags,
            )
        })
        .collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.client_url.clone()).collect();
    let good = Creds { ca: ca.cert.clone(), cert: Some(root.0.clone()) };
    for (node, url) in nodes.iter().zip(&urls) {
        wait_healthy(&tools.etcdctl, url, &good, node, Duration::from_secs(30));
    }

    // etcdctl with the CA and a client certificate: writes on one member are read on each.
    let (ok, _, err) = ctl(&tools.etcdctl, &urls[..1], &good, &["put", "tls-key", "over mutual TLS"]);
    assert!(ok, "{err}");
    for url in &urls {
        let (ok, out, err) =
            ctl(&tools.etcdctl, std::slice::from_ref(url), &good, &["get", "tls-key", "--print-value-only"]);
        assert!(ok && out.trim() == "over mutual TLS", "{url}: {out}{err}");
    }
    let (ok, out, err) = ctl(&tools.etcdctl, &urls, &good, &["member", "list"]);
    assert!(ok && out.lines().count() == 3 && out.contains("https://"), "{out}{err}");

    // Lease keep-alives and TTLs are the leader's: followers forward them over the TLS peer links.
    let (ok, out, err) = ctl(&tools.etcdctl, &urls[..1], &good, &["lease", "grant", "60"]);
    assert!(ok, "{err}");
    let lease = out.split_whitespace().nth(1).expect("lease id").to_string();
    for url in &urls {
        let (ok, out, err) =
            ctl(&tools.etcdctl, std::slice::from_ref(url), &good, &["lease", "keep-alive", "--once", &lease]);
        assert!(ok && out.contains("keepalived with TTL(60)"), "{url}: {out}{err}");
        let (ok, out, err) =
            ctl(&tools.etcdctl, std::slice::from_ref(url), &good, &["lease", "timetolive", &lease]);
        assert!(ok && out.contains("granted with TTL(60s)"), "{url}: {out}{err}");
    }

    // The console reads the cluster with the same flags.
    let ca_flag = arg("cacert", &ca.cert);
    let cert_flag = arg("cert", &root.0 .0);
    let key_flag = arg("key", &root.0 .1);
    let out = etcdeck()
        .args(["status", "--endpoints", &urls.join(","), &ca_flag, &cert_flag, &key_flag])
        .output()
        .expect("run etcdeck status");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("3/3 members up") && text.contains("| t1 "), "{text}{err}");

    // Refused: no client certificate, an expired one, one from another CA; and a client that does
    // not trust the server's CA refuses the server.
    let expired = pki.leaf(&ca, "expired", "root", &[], Use::Client, (-3, -1));
    let foreign = pki.leaf(&other_ca, "foreign", "root", &[], Use::Client, (-1, 2));
    for (creds, what) in [
        (Creds { ca: ca.cert.clone(), cert: None }, "no client certificate"),
        (Creds { ca: ca.cert.clone(), cert: Some(expired) }, "an expired certificate"),
        (Creds { ca: ca.cert.clone(), cert: Some(foreign) }, "a certificate from another CA"),
        (Creds { ca: other_ca.cert.clone(), cert: Some(root.0.clone()) }, "a client trusting another CA"),
    ] {
        let (ok, out, _) = ctl(&tools.etcdctl, &urls[..1], &creds, &["--dial-timeout=2s", "get", "tls-key"]);
        assert!(!ok && !out.contains("over mutual TLS"), "{what} got in: {out}");
    }

    // The peer port: a certificate from the cluster's CA with another CN is refused, as is none.
    let (intruder_crt, intruder_key) = pki.leaf(&ca, "intruder", "intruder", &localhost, Use::Both, (-1, 2));
    let peer_addr = peers[0].trim_start_matches("https://").to_string();
    assert!(
        peer_handshake(&peer_addr, &ca.cert, Some((&peer_crt, &peer_key))).is_ok(),
        "the peer CN is let in"
    );
    let refused = peer_handshake(&peer_addr, &ca.cert, Some((&intruder_crt, &intruder_key)));
    assert!(refused.is_err(), "a peer certificate with CN=intruder was let in");
    assert!(peer_handshake(&peer_addr, &ca.cert, None).is_err(), "a peer without a certificate was let in");
    // etcd's SAN check: the right CN, but a certificate for another host than the one connecting.
    let (elsewhere_crt, elsewhere_key) =
        pki.leaf(&ca, "elsewhere", "etcd-peer", &["10.9.9.9"], Use::Both, (-1, 2));
    let refused = peer_handshake(&peer_addr, &ca.cert, Some((&elsewhere_crt, &elsewhere_key)));
    assert!(refused.is_err(), "a peer certificate for 10.9.9.9 was let in from 127.0.0.1");
    let log = nodes[0].wait_log("client certificate authentication failed", Duration::from_secs(5));
    assert!(log.contains("client certificate authentication failed"), "the refusal is logged:\n{log}");
    let san = "x509: certificate is valid for 10.9.9.9, not 127.0.0.1";
    let log = nodes[0].wait_log(san, Duration::from_secs(5));
    assert!(log.contains(san), "{log}");

    // A connection that never starts its handshake is closed.
    let mut idle = std::net::TcpStream::connect(urls[0].trim_start_matches("https://")).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 1];
    let read = std::io::Read::read(&mut idle, &mut buf);
    assert!(
        matches!(read, Ok(0)) && started.elapsed() < Duration::from_secs(29),
        "a silent connection stayed open: {read:?}"
    );

    for node in &mut nodes {
        node.kill();
    }
}

/// A TLS handshake (and one byte of the peer protocol's answer window) with the peer listener.
fn peer_handshake(addr: &str, ca: &Path, cert: Option<(&Path, &Path)>) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).expect("ca").flatten() {
            roots.add(c).expect("root");
        }
        let builder =
            rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots);
        let config = match cert {
            Some((c, k)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(c).expect("cert").flatten().collect(),
                    PrivateKeyDer::from_pem_file(k).expect("key"),
                )
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
        // Under TLS 1.3 the server's verdict on the client certificate arrives after the client's
        // handshake ends: a refused client reads an alert (an error) or the end of the stream.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"EDKM\x02").await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut len))
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Certificates replaced on disk are served from the next connection on, without a restart.
#[test]
fn a_replaced_certificate_is_served_without_a_restart() {
    let Some(tools) = etcd_tools() else { return };
    let pki = Pki::new();
    let old_ca = pki.ca("old-ca");
    let new_ca = pki.ca("new-ca");
    let (crt, key) = pki.leaf(&old_ca, "server", "etcd-server", &["127.0.0.1"], Use::Server, (-1, 2));
    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("https://127.0.0.1:{}", free_port());
    let flags = [arg("cert-file", &crt), arg("key-file", &key)];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let node = EtcdeckNode::spawn_at("r1", &dir.path().join("r1"), &client, &flags);
    let trusts_old = Creds { ca: old_ca.cert.clone(), cert: None };
    let trusts_new = Creds { ca: new_ca.cert.clone(), cert: None };
    wait_healthy(&tools.etcdctl, &client, &trusts_old, &node, Duration::from_secs(20));
    let urls = [client.clone()];
    assert!(
        !ctl(&tools.etcdctl, &urls, &trusts_new, &["--dial-timeout=2s", "get", "k"]).0,
        "the new CA before the swap"
    );

    // Replace both files, as cert-manager or a renewal script does.
    let (new_crt, new_key) =
        pki.leaf(&new_ca, "renewed", "etcd-server", &["127.0.0.1"], Use::Server, (-1, 2));
    std::fs::copy(&new_key, &key).expect("replace key");
    std::fs::copy(&new_crt, &crt).expect("replace cert");
    let (ok, _, err) = ctl(&tools.etcdctl, &urls, &trusts_new, &["put", "k", "renewed"]);
    assert!(ok, "the renewed certificate was not served: {err}\n{}", node.log_text());
    assert!(
        !ctl(&tools.etcdctl, &urls, &trusts_old, &["--dial-timeout=2s", "get", "k"]).0,
        "the old certificate is still served"
    );
}

/// --auto-tls and --peer-auto-tls: self-signed certificates in the data dir, kept across restarts.
#[test]
fn auto_tls_makes_its_own_certificates_and_keeps_them() {
    let Some(tools) = etcd_tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("https://127.0.0.1:{}", free_port());
    let peer = format!("https://127.0.0.1:{}", free_port());
    let flags = [
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=a1={peer}"),
        "--auto-tls".into(),
        "--peer-auto-tls".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let data = dir.path().join("a1");
    let mut node = EtcdeckNode::spawn_at("a1", &data, &client, &flags);
    let urls = [client.clone()];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, _, err) = run_etcdctl(
            &tools.etcdctl,
            &urls,
            &["--insecure-transport=false", "--insecure-skip-tls-verify", "put", "k", "v"],
        );
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "{err}\n{}", node.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let cert = data.join("fixtures/client/cert.pem");
    let peer_cert = data.join("fixtures/peer/cert.pem");
    let first = std::fs::read(&cert).expect("the client certificate");
    assert!(peer_cert.is_file(), "the peer certificate");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("fixtures/client/key.pem")).expect("key").permissions().mode();
    assert_eq!(mode & 0o077, 0, "the key is private");
    // Not trusted without --insecure-skip-tls-verify: it is self-signed.
    assert!(!run_etcdctl(&tools.etcdctl, &urls, &["--dial-timeout=2s", "get", "k"]).0);
    node.kill();
    node.respawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !run_etcdctl(
        &tools.etcdctl,
        &urls,
        &["--insecure-transport=false", "--insecure-skip-tls-verify", "get", "k"],
    )
    .0
    {
        assert!(Instant::now() < deadline, "{}", node.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(std::fs::read(&cert).expect("cert"), first, "the certificate is kept across restarts");
}

/// The console itself (not only `etcdeck status`) over mutual TLS: its dashboard and key browser on
/// an etcdeck node and on a real etcd, each requiring a client certificate.
#[test]
fn the_console_works_over_mutual_tls_on_a_node_and_on_etcd() {
    if crate::support::require_tool("tmux", None).is_none() {
        return;
    }
    let Some(tools) = etcd_tools() else { return };
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let (server_crt, server_key) =
        pki.leaf(&ca, "server", "etcd-server", &["127.0.0.1", "localhost"], Use::Both, (-1, 2));
    let (client_crt, client_key) = pki.leaf(&ca, "client", "ops", &[], Use::Client, (-1, 2));
    let creds = Creds { ca: ca.cert.clone(), cert: Some((client_crt.clone(), client_key.clone())) };
    let flags = format!(
        "--cacert {} --cert {} --key {} --refresh-interval 500ms",
        ca.cert.display(),
        client_crt.display(),
        client_key.display()
    );
    let look = |url: &str| {
        let (ok, _, err) = ctl(&tools.etcdctl, &[url.to_string()], &creds, &["put", "tls/seen", "yes"]);
        assert!(ok, "{err}");
        let tmux =
            crate::support::tmux::Tmux::start(&crate::support::tmux::pane_command(url, &flags), 140, 30);
        tmux.wait_for("the dashboard over TLS", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
        tmux.keys(&["Tab"]);
        tmux.wait_for("the key browser over TLS", Duration::from_secs(10), |s| s.contains("tls/seen"));
        tmux.keys(&["q"]);
        tmux.wait_exited_ok(Duration::from_secs(5));
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("https://127.0.0.1:{}", free_port());
    let node_flags = [
        arg("cert-file", &server_crt),
        arg("key-file", &server_key),
        arg("trusted-ca-file", &ca.cert),
        "--client-cert-auth".to_string(),
    ];
    let node_flags: Vec<&str> = node_flags.iter().map(String::as_str).collect();
    let node = EtcdeckNode::spawn_at("tls-console", &dir.path().join("n"), &client, &node_flags);
    wait_healthy(&tools.etcdctl, &client, &creds, &node, Duration::from_secs(20));
    look(&client);

    let server =
        crate::support::ServerTls { cert: server_crt.clone(), key: server_key.clone(), ca: ca.cert.clone() };
    let etcd = crate::support::EtcdCluster::start_with(&tools, 1, Some(&server));
    let url = etcd.members[0].client_url.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctl(&tools.etcdctl, std::slice::from_ref(&url), &creds, &["endpoint", "health"]).0 {
        assert!(Instant::now() < deadline, "etcd over TLS never healthy:\n{}", etcd.log_tail(0));
        std::thread::sleep(Duration::from_millis(200));
    }
    look(&url);
}
