//! etcdctl's TLS and auth flags against real etcd: client certificates, users and passwords.

use std::time::Duration;

use crate::support::{etcd_tools, etcdeck, EtcdCluster, TestPki};

fn status(endpoint: &str, flags: &[&str]) -> (i32, String) {
    let out = etcdeck()
        .args(["status", "--endpoints", endpoint, "--dial-timeout", "2s", "--command-timeout", "3s"])
        .args(flags)
        .output()
        .expect("run etcdeck");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn tls_flags_work_as_etcdctls() {
    let Some(tools) = etcd_tools() else { return };
    let pki = TestPki::create();
    let cluster = EtcdCluster::start_with(&tools, 1, Some(&pki.server()));
    let endpoint = cluster.client_urls()[0].clone();
    let (ca, cert, key) = (pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key"));
    let (ca, cert, key) =
        (ca.to_str().unwrap_or(""), cert.to_str().unwrap_or(""), key.to_str().unwrap_or(""));

    // The member needs a moment to elect itself; the verified path must then pass.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, err) = status(&endpoint, &["--cacert", ca, "--cert", cert, "--key", key]);
        if code == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "verified TLS never passed: {err}\n{}",
            cluster.log_tail(0)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // host:port without a scheme becomes https when TLS files are given, as in etcdctl.
    let bare = endpoint.trim_start_matches("https://");
    assert_eq!(status(bare, &["--cacert", ca, "--cert", cert, "--key", key]).0, 0);

    // Without the CA, the server's certificate is refused...
    let (code, err) = status(&endpoint, &["--cert", cert, "--key", key]);
    assert_ne!(code, 0, "an unknown CA must not pass");
    assert!(err.contains("UnknownIssuer"), "the reason names the certificate problem: {err}");
    // ...unless the system's CA store holds the CA (rustls-native-certs reads SSL_CERT_FILE)...
    let out = etcdeck()
        .args(["status", "--endpoints", &endpoint, "--cert", cert, "--key", key])
        .env("SSL_CERT_FILE", ca)
        .output()
        .expect("run etcdeck");
    assert!(out.status.success(), "system CA store: {}", String::from_utf8_lossy(&out.stderr));
    // ...or verification is skipped on purpose.
    let (code, err) = status(&endpoint, &["--insecure-skip-tls-verify", "--cert", cert, "--key", key]);
    assert_eq!(code, 0, "--insecure-skip-tls-verify: {err}");

    // The server requires a client certificate. Under TLS 1.3 the client learns of the refusal after
    // its side of the handshake, either as the server's alert or as a closed stream, so only the
    // outcome is checked, not the wording.
    let (code, _) = status(&endpoint, &["--cacert", ca]);
    assert_ne!(code, 0, "no client certificate must not pass");
    let (code, _) = status(&endpoint, &["--insecure-skip-tls-verify"]);
    assert_ne!(code, 0, "no client certificate must not pass, verified or not");
}

#[test]
fn user_and_password_authenticate_as_etcdctls() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    for args in
        [&["user", "add", "root:s3cret"][..], &["user", "grant-role", "root", "root"], &["auth", "enable"]]
    {
        let (ok, _, err) = cluster.etcdctl(args);
        assert!(ok, "etcdctl {args:?}: {err}");
    }
    let endpoint = cluster.client_urls()[0].clone();
    let (code, err) = status(&endpoint, &["--user", "root:s3cret"]);
    assert_eq!(code, 0, "--user name:password: {err}");
    let (code, err) = status(&endpoint, &["--user", "root", "--password", "s3cret"]);
    assert_eq!(code, 0, "--user with --password: {err}");
    let out = etcdeck()
        .args(["status", "--endpoints", &endpoint])
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", "s3cret")
        .output()
        .expect("run etcdeck");
    assert!(
        out.status.success(),
        "ETCDCTL_USER and ETCDCTL_PASSWORD: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, err) = status(&endpoint, &["--user", "root:wrong"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("etcdserver: authentication failed, invalid user ID or password"),
        "etcd's words: {err}"
    );
    assert!(!err.contains("wrong"), "the password never reaches the output: {err}");
}
