//! Bootstrapping through a discovery URL, etcd's v2 discovery protocol, with etcd 3.4 started with
//! --enable-v2 as the discovery service (as the runbooks set one up with curl): three etcdeck members
//! find each other and form one cluster; a fourth gets etcd's "cluster is full" and writes nothing; a
//! restart ignores the URL; --discovery beside --initial-cluster is etcd's flag conflict.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{etcd_tools, etcdeck, free_port, run_etcdctl, EtcdCluster, EtcdeckNode};

/// A bare HTTP/1.0 request with a form body; (status, body).
fn http(addr: &str, method: &str, path: &str, form: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the discovery service");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// etcd 3.4 with the v2 API, to serve as the discovery service, and its client URL.
fn discovery_service(tools: &crate::support::EtcdTools) -> (EtcdCluster, String) {
    let service = EtcdCluster::start_full(tools, 1, None, &["--enable-v2=true"]);
    let url = service.client_urls()[0].clone();
    (service, url)
}

/// A discovery token for `size` members on `service_url`, made as the runbooks make one (curl -X
/// PUT .../_config/size -d value=N); its discovery URL.
pub(crate) fn new_token(service_url: &str, token: &str, size: &str) -> String {
    let addr = service_url.trim_start_matches("http://");
    let (status, body) = http(addr, "PUT", &format!("{token}/_config/size"), &format!("value={size}"));
    assert_eq!(status, 201, "{body}");
    format!("{service_url}{token}")
}

/// Starts member `name` on the new data dir `dir` (on a fresh client port) with `flags`, which
/// must fail: its stderr, once it has exited 1 and written nothing.
fn failed_start(name: &str, dir: &std::path::Path, flags: &[String]) -> String {
    failed_start_with(name, dir, flags, &[])
}

/// As `failed_start`, with `env` set for the node.
pub(crate) fn failed_start_with(
    name: &str,
    dir: &std::path::Path,
    flags: &[String],
    env: &[(&str, &str)],
) -> String {
    let client = format!("http://127.0.0.1:{}", free_port());
    let out = etcdeck()
        .envs(env.iter().copied())
        .arg("node")
        .arg(format!("--name={name}"))
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
        .args(flags)
        .output()
        .expect("run etcdeck node");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!dir.exists(), "a failed start wrote {}", dir.display());
    err
}

/// Members `names` started with the discovery URL `url` (data dirs under `root`), once they serve.
pub(crate) fn discovery_members(url: &str, root: &std::path::Path, names: &[&str]) -> Vec<EtcdeckNode> {
    let mut nodes: Vec<EtcdeckNode> = names
        .iter()
        .map(|name| {
            let (client, flags) = member_flags(url);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            EtcdeckNode::spawn_at(name, &root.join(format!("{name}.etcd")), &client, &flags)
        })
        .collect();
    for n in &mut nodes {
        n.wait_serving(Duration::from_secs(60));
    }
    nodes
}

pub(crate) fn member_flags(url: &str) -> (String, Vec<String>) {
    let peer = format!("http://127.0.0.1:{}", free_port());
    let client = format!("http://127.0.0.1:{}", free_port());
    let flags = vec![
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--discovery={url}"),
    ];
    (client, flags)
}

#[test]
fn three_members_bootstrap_through_an_etcd_discovery_url_and_a_fourth_is_refused() {
    let Some(tools) = etcd_tools() else { return };
    let (_service, service_url) = discovery_service(&tools);
    bootstrap_three_and_refuse_a_fourth(&tools, &service_url);
}

/// The same with an etcdeck node started with --enable-v2 as the discovery service.
#[test]
fn three_members_bootstrap_through_an_etcdeck_discovery_url_and_a_fourth_is_refused() {
    let Some(tools) = etcd_tools() else { return };
    let service = EtcdeckNode::start("service", &["--enable-v2"]);
    let service_url = service.client_url.clone();
    bootstrap_three_and_refuse_a_fourth(&tools, &service_url);
}

fn bootstrap_three_and_refuse_a_fourth(tools: &crate::support::EtcdTools, service_url: &str) {
    let addr = service_url.trim_start_matches("http://").to_string();
    let token = "/v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83";
    let url = new_token(service_url, token, "3");

    let root = tempfile::tempdir().expect("temp dir");
    let mut nodes = discovery_members(&url, root.path(), &["d0", "d1", "d2"]);
    let log = nodes[0].log_text();
    assert!(
        log.contains("discovery: found self") && log.contains("discovery: found 3 needed peer(s)"),
        "{log}"
    );

    // One cluster of three, the same from every member.
    let endpoints: Vec<String> = nodes.iter().map(|n| n.client_url.clone()).collect();
    let mut seen = Vec::new();
    for ep in &endpoints {
        let (ok, out, err) =
            run_etcdctl(&tools.etcdctl, std::slice::from_ref(ep), &["member", "list", "-w", "json"]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        let mut names: Vec<String> = v["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        seen.push((v["header"]["cluster_id"].as_u64().expect("cluster id"), names));
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    // Names are published once each member has started: wait for them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = run_etcdctl(&tools.etcdctl, &endpoints[..1], &["member", "list"]);
        if ["d0", "d1", "d2"].iter().all(|n| out.contains(&format!(", {n}, "))) {
            break;
        }
        assert!(Instant::now() < deadline, "member names: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, _, err) = run_etcdctl(&tools.etcdctl, &endpoints[..1], &["put", "found", "each-other"]);
    assert!(ok, "{err}");
    let (ok, out, err) =
        run_etcdctl(&tools.etcdctl, &endpoints[2..], &["get", "found", "--print-value-only"]);
    assert!(ok && out.trim() == "each-other", "{out}{err}");
    // The service holds the three registrations.
    let (status, body) = http(&addr, "GET", token, "");
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(listed["node"]["nodes"].as_array().map(Vec::len), Some(3), "{body}");

    // A fourth: the cluster is full. etcd's message, exit 1, and no data dir left behind; with the
    // default fallback (a v2 proxy in etcd) it says there is none.
    for fallback in ["exit", "proxy"] {
        let dir = root.path().join(format!("d3-{fallback}.etcd"));
        let (_, mut flags) = member_flags(&url);
        flags.push(format!("--discovery-fallback={fallback}"));
        let err = failed_start("d3", &dir, &flags);
        assert!(err.contains("failed to join discovery cluster (discovery: cluster is full)"), "{err}");
        assert!(
            err.contains(&format!("discovery token {url} was used, but failed to bootstrap the cluster.")),
            "{err}"
        );
        assert_eq!(err.contains("no v2 proxy"), fallback == "proxy", "{err}");
    }

    // A restart on its data dir does not ask the service again.
    assert_eq!(nodes[1].terminate(), Some(0));
    nodes[1].restart();
    let log = nodes[1].log_text();
    assert!(log.contains("discovery token ignored since a cluster has already been initialized"), "{log}");
    let (ok, out, err) =
        run_etcdctl(&tools.etcdctl, &endpoints[1..2], &["get", "found", "--print-value-only"]);
    assert!(ok && out.trim() == "each-other", "{out}{err}");

    // --discovery beside --initial-cluster: etcd's conflict, before anything is written.
    let dir = root.path().join("conflict.etcd");
    let err = failed_start(
        "c",
        &dir,
        &[format!("--discovery={url}"), "--initial-cluster=c=http://localhost:2380".into()],
    );
    assert!(
        err.contains(
            r#"multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv""#
        ),
        "{err}"
    );
}

/// A service that is not a discovery service (it answers plain text), a token without a size, and
/// a bad size each end the start with etcd's error, writing nothing.
#[test]
fn a_bad_discovery_service_or_token_is_etcds_error_and_writes_nothing() {
    let Some(tools) = etcd_tools() else { return };
    let (_service, service_url) = discovery_service(&tools);
    new_token(&service_url, "/v2/keys/discovery/bad", "three");
    let root = tempfile::tempdir().expect("temp dir");
    for (path, said) in [
        (
            "/v2/keys/discovery/nosize",
            "failed to join discovery cluster (100: Key not found (/discovery/nosize",
        ),
        ("/v2/keys/discovery/bad", "failed to join discovery cluster (discovery: size key is bad)"),
        // A path etcd does not serve: a plain-text 404, not the v2 API.
        ("/nothing/here", "failed to join discovery cluster (discovery: bad discovery endpoint)"),
    ] {
        let dir = root.path().join("m.etcd");
        let (_, flags) = member_flags(&format!("{service_url}{path}"));
        let err = failed_start("m", &dir, &flags);
        assert!(err.contains(said), "{path}: {err}");
    }
}

/// A forward HTTP proxy on loopback: takes absolute-form requests, passes them on, and records each
/// request line. Stopped when dropped.
struct ForwardProxy {
    addr: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ForwardProxy {
    fn start() -> ForwardProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let seen = seen2.clone();
                        std::thread::spawn(move || Self::forward(client, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ForwardProxy { addr, seen, stop }
    }

    fn forward(mut client: TcpStream, seen: &std::sync::Mutex<Vec<String>>) -> Option<()> {
        client.set_nonblocking(false).ok()?;
        client.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if client.read(&mut byte).ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let line = head.lines().next()?.to_string();
        seen.lock().ok()?.push(line.clone());
        let mut parts = line.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        let (authority, path) = target.strip_prefix("http://")?.split_once('/')?;
        let mut upstream = TcpStream::connect(authority).ok()?;
        upstream
            .write_all(head.replacen(&line, &format!("{method} /{path} {version}"), 1).as_bytes())
            .ok()?;
        let (mut from_client, mut to_upstream) = (client.try_clone().ok()?, upstream.try_clone().ok()?);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_upstream);
            let _ = to_upstream.shutdown(std::net::Shutdown::Write);
        });
        let _ = std::io::copy(&mut upstream, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Both);
        Some(())
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// --discovery-proxy: every request to the discovery service goes through the proxy (a bare
/// host:port is taken as http://, as etcd takes it).
#[test]
fn a_member_reaches_the_discovery_service_through_its_proxy() {
    let Some(tools) = etcd_tools() else { return };
    let (_service, service_url) = discovery_service(&tools);
    let token = "/v2/keys/discovery/through-a-proxy";
    let url = new_token(&service_url, token, "1");
    let proxy = ForwardProxy::start();
    let root = tempfile::tempdir().expect("temp dir");
    let (client, mut flags) = member_flags(&url);
    flags.push(format!("--discovery-proxy={}", proxy.addr));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = EtcdeckNode::spawn_at("p0", &root.path().join("p0.etcd"), &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    let seen = proxy.seen();
    let size =
        format!("GET {service_url}{token}/_config/size?quorum=false&recursive=false&sorted=false HTTP/1.1");
    assert!(seen.contains(&size), "{seen:#?}");
    let put = format!("PUT {service_url}{token}/");
    assert!(seen.iter().any(|l| l.starts_with(&put) && l.contains("?prevExist=false")), "{seen:#?}");
    assert!(node.log_text().contains(&format!("discovery: using proxy {:?}", proxy.addr)));
    let (ok, out, err) =
        run_etcdctl(&tools.etcdctl, std::slice::from_ref(&node.client_url), &["put", "k", "v"]);
    assert!(ok, "{out}{err}");
}

/// A member stopped (SIGTERM) while it waits for the others leaves its data dir as it was. Started
/// again on the same token, it is refused as registered before, with etcd's message, and writes
/// nothing.
#[test]
fn a_member_stopped_while_waiting_writes_nothing_and_is_then_refused_as_registered() {
    let Some(tools) = etcd_tools() else { return };
    let (_service, service_url) = discovery_service(&tools);
    let url = new_token(&service_url, "/v2/keys/discovery/stopped-early", "3");
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("w.etcd");
    let (client, flags) = member_flags(&url);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut n = EtcdeckNode::spawn_at("w", &dir, &client, &flag_refs);
    let log = n.wait_log("waiting for 2 more", Duration::from_secs(20));
    assert!(log.contains("found 1 peer(s), waiting for 2 more"), "{log}");
    let pid = n.pid().expect("running").to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    assert_eq!(n.wait_exit(Duration::from_secs(5)), Some(1), "{}", n.log_text());
    assert!(n.log_text().contains("stopped by SIGTERM before the discovery cluster was complete"));
    assert!(!dir.exists(), "a stopped start wrote {}", dir.display());

    let err = failed_start("w", &dir, &flags);
    assert!(
        err.contains(&format!(
            "member \"w\" has previously registered with discovery service token ({url})."
        )),
        "{err}"
    );
}
