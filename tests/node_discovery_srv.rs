//! Bootstrapping from DNS SRV records (--discovery-srv), served by dnsmasq on a loopback port of its
//! own that ETCDECK_DNS_SERVER points the members and the clients at: three members find each other
//! in the `_etcd-server._tcp` records and form one cluster, `etcdeck status` and `get` find it in the
//! `_etcd-client._tcp` ones, a member the records do not name gets etcd's error and writes nothing,
//! and a restart asks DNS nothing.
//!
//! etcd 3.4 itself cannot be run beside these: its resolver asks port 53 of /etc/resolv.conf's
//! servers only, and 3.4 drops `_etcd-server` records (etcd-io/etcd#11321; etcdeck reads them as
//! 3.5 does).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{blocking_client, etcdeck, free_port, require_tool, ChildGuard, EtcdeckNode};

const DOMAIN: &str = "etcdeck.test";

/// dnsmasq answering for DOMAIN only (with `records`, its --srv-host values) on 127.0.0.1:port.
struct Dns {
    _process: ChildGuard,
    server: String,
}

fn dnsmasq() -> Option<PathBuf> {
    // Debian puts it in /usr/sbin, which a user's PATH may lack.
    let sbin = PathBuf::from("/usr/sbin/dnsmasq");
    if std::env::var_os("DNSMASQ_BIN").is_none() && sbin.is_file() {
        return Some(sbin);
    }
    require_tool("dnsmasq", Some("DNSMASQ_BIN"))
}

fn start_dns(bin: &Path, dir: &Path, records: &[String]) -> Dns {
    let port = free_port();
    let log = dir.join("dnsmasq.log");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--pid-file=",
        "--log-facility=-",
        "--cache-size=0",
        &format!("--port={port}"),
        &format!("--local=/{DOMAIN}/"),
    ]);
    if nix_root() {
        // As root dnsmasq would switch to the user "nobody", which cannot write its log here.
        cmd.arg("--user=root");
    }
    for r in records {
        cmd.arg(format!("--srv-host={r}"));
    }
    let out = std::fs::File::create(&log).expect("dnsmasq log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("start dnsmasq");
    let process = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("started") {
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Dns { _process: process, server: format!("127.0.0.1:{port}") }
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `etcdeck node` for `name` in `dir` with `flags` and the DNS server `dns`, which must
/// fail: exit 1, the data dir not made; its stderr.
fn refused(dns: &str, name: &str, dir: &Path, flags: &[String]) -> String {
    crate::node_discovery::failed_start_with(name, dir, flags, &[("ETCDECK_DNS_SERVER", dns)])
}

#[test]
fn three_members_bootstrap_from_srv_records_and_clients_find_them_there() {
    let Some(bin) = dnsmasq() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let peers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut records: Vec<String> =
        peers.iter().map(|p| format!("_etcd-server._tcp.{DOMAIN},localhost,{p},0,0")).collect();
    records.extend(clients.iter().map(|p| format!("_etcd-client._tcp.{DOMAIN},localhost,{p},0,0")));
    // A second cluster's records, under --discovery-srv-name c1, name a peer port nobody uses.
    let stray = free_port();
    records.push(format!("_etcd-server-c1._tcp.{DOMAIN},localhost,{stray},0,0"));
    let dns = start_dns(&bin, dir.path(), &records);
    let env = [("ETCDECK_DNS_SERVER", dns.server.as_str())];

    let mut nodes = Vec::new();
    for i in 0..3 {
        let peer = format!("http://127.0.0.1:{}", peers[i]);
        let flags = [
            format!("--discovery-srv={DOMAIN}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--listen-peer-urls={peer}"),
            "--initial-cluster-token=srv-test".to_string(),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let client = format!("http://127.0.0.1:{}", clients[i]);
        let data = dir.path().join(format!("n{}", i + 1));
        nodes.push(EtcdeckNode::spawn_with_env(&format!("n{}", i + 1), &data, &client, &flags, &env));
    }
    for node in &mut nodes {
        node.wait_serving(Duration::from_secs(30));
    }
    // Each member read the three records; the cluster's peer URLs are the records' host names.
    let log = nodes[0].log_text();
    let found: Vec<&str> =
        log.lines().filter(|l| l.contains("got bootstrap from DNS for etcd-server at")).collect();
    assert_eq!(found.len(), 3, "{log}");
    assert!(found.iter().any(|l| l.ends_with(&format!(" at n1=http://localhost:{}", peers[0]))), "{log}");
    let listed = etcdeck()
        .env("ETCDECK_DNS_SERVER", &dns.server)
        .args(["--discovery-srv", DOMAIN, "status", "-w", "json"])
        .output()
        .expect("etcdeck status");
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success(), "{text}{}", String::from_utf8_lossy(&listed.stderr));
    for c in &clients {
        assert!(text.contains(&format!("http://localhost:{c}")), "status finds every client record: {text}");
    }
    let got = etcdeck()
        .env("ETCDECK_DNS_SERVER", &dns.server)
        .args(["-d", DOMAIN, "get", "--prefix", ""])
        .output()
        .expect("etcdeck get");
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    // Secure records only: each http one is dropped, and said so (then --endpoints is used).
    let secure = etcdeck()
        .env("ETCDECK_DNS_SERVER", &dns.server)
        .args(["--insecure-discovery=false", "-d", DOMAIN, "--dial-timeout", "200ms", "status"])
        .output()
        .expect("etcdeck status");
    let err = String::from_utf8_lossy(&secure.stderr);
    for c in &clients {
        assert!(
            err.contains(&format!("ignoring discovered insecure endpoint \"http://localhost.:{c}\"")),
            "{err}"
        );
    }
    let (rt, mut client) = blocking_client(&nodes[0].client_url);
    let members = rt.block_on(client.member_list()).expect("member list");
    let mut urls: Vec<String> = members.members().iter().flat_map(|m| m.peer_urls().to_vec()).collect();
    urls.sort();
    let mut want: Vec<String> = peers.iter().map(|p| format!("http://localhost:{p}")).collect();
    want.sort();
    assert_eq!(urls, want);

    // The console finds the members in the client records, and shows them as any other cluster.
    if require_tool("tmux", None).is_some() {
        let command = format!(
            "env TERM=xterm-256color ETCDECK_DNS_SERVER={} {} -d {DOMAIN} --refresh-interval 500ms; \
             echo \"etcdeck exited $?\"; sleep 60",
            dns.server,
            crate::support::etcdeck_bin()
        );
        let tmux = crate::support::tmux::Tmux::start(&command, 160, 40);
        let screen = tmux.wait_for("the dashboard", Duration::from_secs(15), |s| {
            s.contains("members 3/3 up") && s.contains("★ leader")
        });
        for (i, c) in clients.iter().enumerate() {
            let row = screen.lines().find(|l| l.contains(&format!(" n{} ", i + 1)) && l.contains("http://"));
            assert!(row.is_some_and(|r| r.contains(&c.to_string())), "n{} serving on {c}:\n{screen}", i + 1);
        }
    }

    // A member whose advertised peer URL no record names.
    let n4 = format!("http://127.0.0.1:{}", free_port());
    let flags = [format!("--discovery-srv={DOMAIN}"), format!("--initial-advertise-peer-urls={n4}")];
    let err = refused(&dns.server, "n4", &dir.path().join("n4"), &flags);
    assert!(
        err.contains("error setting up initial cluster: cannot find local etcd member \"n4\" in SRV records"),
        "{err}"
    );
    // With --discovery-srv-name the records of that name count, and they do not name this member.
    let flags = [
        format!("--discovery-srv={DOMAIN}"),
        "--discovery-srv-name=c1".to_string(),
        format!("--initial-advertise-peer-urls={n4}"),
    ];
    let err = refused(&dns.server, "n4", &dir.path().join("n4"), &flags);
    assert!(err.contains("cannot find local etcd member \"n4\" in SRV records"), "{err}");
    // A domain with no records: both lookups' errors, as etcd 3.5 words them.
    let flags = [format!("--discovery-srv=none.{DOMAIN}"), format!("--initial-advertise-peer-urls={n4}")];
    let err = refused(&dns.server, "n4", &dir.path().join("n4"), &flags);
    let want = format!(
        "error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl lookup \
         _etcd-server-ssl._tcp.none.{DOMAIN} on {0}: no such host; error querying DNS SRV records for \
         _etcd-server lookup _etcd-server._tcp.none.{DOMAIN} on {0}: no such host",
        dns.server
    );
    assert!(err.contains(&want), "{err}");
    // etcd's flag conflict, before anything is asked.
    let flags = [format!("--discovery-srv={DOMAIN}"), "--initial-cluster=n4=http://127.0.0.1:1".to_string()];
    let err = refused(&dns.server, "n4", &dir.path().join("n4"), &flags);
    assert!(err.contains("Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\""), "{err}");
    // A bad resolver setting is named.
    let flags = [format!("--discovery-srv={DOMAIN}"), format!("--initial-advertise-peer-urls={n4}")];
    let err = refused("nameserver", "n4", &dir.path().join("n4"), &flags);
    assert!(err.contains("ETCDECK_DNS_SERVER=\"nameserver\": want an IP address"), "{err}");

    // A restart reads its data dir, not DNS: with the DNS server gone it still comes back.
    drop(dns);
    nodes[0].kill();
    nodes[0].respawn();
    nodes[0].wait_serving(Duration::from_secs(30));
}
