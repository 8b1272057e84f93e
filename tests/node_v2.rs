//! The v2 API (`--enable-v2`): ETCDCTL_API=2 etcdctl and curl's requests answered by a 3-member
//! etcdeck cluster as by a 3-member etcd 3.4 cluster (the transcripts diffed after masking IDs,
//! indexes, ports and times); without the flag, Go's 404; the v2 store through kill -9 and a
//! member's catch-up from a snapshot.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::node_cluster::NodeCluster;
use crate::support::{etcd_tools, free_port, EtcdCluster, EtcdeckNode};

/// A bare HTTP/1.0 request: the status line, the headers a v2 client reads (names lowercased,
/// sorted) and the body.
fn http(url: &str, method: &str, path: &str, content_type: Option<&str>, body: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let ctype = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    // One write: `write!` on the stream sends each piece as its own segment, and a server that
    // answers after the head may close before the rest arrives (a reset).
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    // Go's server may reset a connection it has answered and closed (an HTTP/1.0 request's body
    // still unread when it closes): the answer read before the reset is the answer.
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !bytes.is_empty() => break,
            Err(e) => panic!("read the answer to {method} {path}: {e}"),
        }
    }
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().replacen("HTTP/1.1", "HTTP/1.0", 1);
    let mut headers: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                .filter(|(k, _)| {
            matches!(k.as_str(), "content-type" | "x-etcd-index" | "x-etcd-cluster-id" | "allow" | "x-raft-term" | "location")
                // A HEAD's length is the GET's body's (Go's).
                || (k == "content-length" && method == "HEAD")
        })
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    headers.sort();
    format!("{status}\n{}\n{body}", headers.join("\n"))
}

fn etcdctl(tool: &Path, endpoints: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .env("ETCDCTL_API", "2")
        .arg(format!("--endpoints={endpoints}"))
        .args(args)
        .output()
        .expect("run etcdctl");
    format!(
        "exit {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The steps both clusters get, and what each answered.
fn transcript(tool: &Path, endpoints: &[String]) -> String {
    let eps = endpoints.join(",");
    let url = endpoints[0].as_str();
    let mut out = String::new();
    let mut step = |name: String, answer: String| {
        out.push_str(&format!("$ {name}\n{answer}\n"));
    };
    for args in [
        &["set", "/greeting", "hello"][..],
        &["get", "/greeting"],
        &["mk", "/greeting", "again"],
        &["mk", "/made", "m"],
        &["mkdir", "/dir"],
        &["mkdir", "/dir"],
        &["set", "/dir/a", "1"],
        &["set", "/dir/sub/b", "2"],
        &["ls", "--sort", "--recursive", "-p", "/"],
        &["ls", "--sort", "/dir"],
        &["update", "/greeting", "hi"],
        &["update", "/missing", "x"],
        &["get", "/missing"],
        &["get", "/dir"],
        &["-o", "extended", "get", "/greeting"],
        &["-o", "json", "get", "/greeting"],
        &["set", "--ttl", "100", "/ttl", "t"],
        &["-o", "extended", "get", "/ttl"],
        &["updatedir", "--ttl", "100", "/dir"],
        &["rmdir", "/dir"],
        &["rm", "/dir"],
        &["rm", "--recursive", "/dir"],
        &["mkdir", "/empty"],
        &["rmdir", "/empty"],
        &["rm", "/greeting"],
        &["rm", "--with-value", "x", "/made"],
        &["rm", "--with-value", "m", "/made"],
        &["set", "/watched", "seen"],
        &["watch", "--after-index", "1", "/watched"],
        &["member", "list"],
        &["cluster-health"],
    ] {
        step(format!("etcdctl {}", args.join(" ")), etcdctl(tool, &eps, args));
    }
    // etcd adds a member only once every member has been connected for its health interval (5 s).
    std::thread::sleep(Duration::from_secs(6));
    let peer = format!("http://127.0.0.1:{}", free_port());
    let added = etcdctl(tool, &eps, &["member", "add", "extra", &peer]);
    let id =
        added.split("with ID ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("").to_string();
    step("etcdctl member add extra <peer>".into(), added);
    step("etcdctl member list".into(), etcdctl(tool, &eps, &["member", "list"]));
    step("etcdctl member remove <id>".into(), etcdctl(tool, &eps, &["member", "remove", &id]));
    step("etcdctl member remove <id>".into(), etcdctl(tool, &eps, &["member", "remove", &id]));
    let form = Some("application/x-www-form-urlencoded");
    let json = Some("application/json");
    for (method, path, ctype, body) in [
        ("PUT", "/v2/keys/c/k", form, "value=one"),
        ("PUT", "/v2/keys/c/k", form, "value=two"),
        ("GET", "/v2/keys/c/k", None, ""),
        ("GET", "/v2/keys/c?recursive=true&sorted=true", None, ""),
        ("GET", "/v2/keys/?sorted=true", None, ""),
        ("HEAD", "/v2/keys/c/k", None, ""),
        ("HEAD", "/v2/keys/c/k?quorum=true", None, ""),
        ("HEAD", "/v2/keys/c/missing", None, ""),
        ("GET", "/v2/keys//c/./k?sorted=true", None, ""),
        ("PUT", "/v2/keys/c/../c/k", form, "value=x"),
        ("PUT", "/v2/keys/c/k?prevValue=one", form, "value=three"),
        ("PUT", "/v2/keys/c/k?prevValue=two", form, "value=three"),
        ("PUT", "/v2/keys/c/k?prevExist=false", form, "value=four"),
        ("PUT", "/v2/keys/c/new?prevExist=false", form, "value=%3Cfour%3E"),
        ("PUT", "/v2/keys/c/k?noValueOnSuccess=true", form, "value=five"),
        ("POST", "/v2/keys/queue", form, "value=job1"),
        ("POST", "/v2/keys/queue", form, "value=job2"),
        ("GET", "/v2/keys/queue?sorted=true", None, ""),
        ("GET", "/v2/keys/c/k?wait=true&waitIndex=1", None, ""),
        ("PUT", "/v2/keys/c/k", form, "value=x&ttl=ten"),
        ("PUT", "/v2/keys/c/k?refresh=true", form, "value=x&ttl=5"),
        ("PUT", "/v2/keys/c/k?refresh=true", form, ""),
        ("GET", "/v2/keys/c/k?recursive=maybe", None, ""),
        ("PUT", "/v2/keys/c/k?wait=true", form, "value=x"),
        ("PUT", "/v2/keys/c/k/under", form, "value=x"),
        ("PUT", "/v2/keys/", form, "value=x"),
        ("DELETE", "/v2/keys/c?dir=true", None, ""),
        ("DELETE", "/v2/keys/c/k?prevValue=nope", None, ""),
        ("DELETE", "/v2/keys/c/k?prevValue=five", None, ""),
        ("DELETE", "/v2/keys/c?recursive=true", None, ""),
        ("GET", "/v2/keys/c/k", None, ""),
        ("PATCH", "/v2/keys/c/k", None, ""),
        ("GET", "/v2/members/nope", None, ""),
        ("POST", "/v2/members", form, "peerURLs=x"),
        ("POST", "/v2/members", json, "{\"peerURLs\":[\"ftp://127.0.0.1:1\"]}"),
        ("POST", "/v2/members", json, "{\"peerURLs\":[]}"),
        ("POST", "/v2/members", json, ""),
        ("DELETE", "/v2/members/ffff", None, ""),
        ("DELETE", "/v2/members/+ab", None, ""),
        ("DELETE", "/v2/members", None, ""),
        ("HEAD", "/v2/members", None, ""),
        ("GET", "/v2/stats", None, ""),
        ("GET", "/v2/machines/", None, ""),
        ("GET", "/v2", None, ""),
    ] {
        step(format!("curl -X {method} {path} {body}"), http(url, method, path, ctype, body));
    }
    // The stats: their fields (values differ from any cluster to another), and who answers what.
    let leader = http(url, "GET", "/v2/members/leader", None, "");
    let leader_url = endpoints
        .iter()
        .find(|e| leader.contains(&format!("\"clientURLs\":[\"{e}\"]")))
        .expect("the leader is one of the endpoints");
    let follower_url = endpoints.iter().find(|e| *e != leader_url).expect("a follower");
    for (name, at, path) in [
        ("leader", leader_url, "/v2/stats/self"),
        ("follower", follower_url, "/v2/stats/self"),
        ("first member", &endpoints[0], "/v2/stats/store"),
        ("leader", leader_url, "/v2/stats/leader"),
    ] {
        step(format!("curl {path} on the {name} (its fields)"), fields(&http(at, "GET", path, None, "")));
    }
    step(
        "curl /v2/stats/leader on a follower".into(),
        http(follower_url, "GET", "/v2/stats/leader", None, ""),
    );
    step("curl -X PUT /v2/stats/self".into(), http(url, "PUT", "/v2/stats/self", None, ""));
    let removed = &id;
    step(
        "curl -X DELETE /v2/members/<removed>".into(),
        http(url, "DELETE", &format!("/v2/members/{removed}"), None, ""),
    );
    out
}

/// An answer's status line and its JSON body's fields with the kind of each value (the followers'
/// IDs masked, the rates left out: they are there only while appends flow).
fn fields(answer: &str) -> String {
    fn walk(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let k = if at == ".followers" { "<id>" } else { k.as_str() };
                    if !k.ends_with("Rate") {
                        walk(v, &format!("{at}.{k}"), out);
                    }
                }
            }
            serde_json::Value::String(s) if at == ".state" => {
                out.push(format!("{at}: {}", s.starts_with("State")))
            }
            serde_json::Value::String(_) => out.push(format!("{at}: string")),
            serde_json::Value::Number(_) => out.push(format!("{at}: number")),
            other => out.push(format!("{at}: {other}")),
        }
    }
    let status = answer.lines().next().unwrap_or_default();
    let body = answer.lines().last().unwrap_or_default();
    let mut out = Vec::new();
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => walk(&v, "", &mut out),
        Err(e) => out.push(format!("not JSON ({e}): {body}")),
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    format!("{status}\n{}", out.join("\n"))
}

/// IDs, indexes, ports, member names and times differ between any two clusters: masked, and the
/// lines of a member listing sorted (they come in ID order).
fn masked(text: &str) -> String {
    let rules = [
        (r"\b\d{20}\b", "<seq>"),
        (r"\b[0-9a-f]{12,16}\b", "<id>"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r#""(modifiedIndex|createdIndex|index)":\d+"#, "\"$1\":<n>"),
        (r"(Created-Index|Modified-Index|Index|TTL): \d+", "$1: <n>"),
        (r"\[\d+\]", "[<n>]"),
        (r"(x-etcd-index|x-raft-term): \d+", "$1: <n>"),
        (r#""expiration":"[^"]+""#, "\"expiration\":<time>"),
        (r#""ttl":\d+"#, "\"ttl\":<n>"),
        (r"\b(etcd-\d|n\d)\b", "<name>"),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        text = regex::Regex::new(pattern).expect("pattern").replace_all(&text, with).into_owned();
    }
    // Each step's lines that name members come in ID order: sort them.
    let mut out = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let sorted_cluster: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix("ETCD_INITIAL_CLUSTER=\"") {
            // Listed in ID order too.
            Some(list) => {
                let mut parts: Vec<&str> = list.trim_end_matches('"').split(',').collect();
                parts.sort();
                format!("ETCD_INITIAL_CLUSTER=\"{}\"", parts.join(","))
            }
            None => line.to_string(),
        })
        .collect();
    for line in sorted_cluster.iter().map(String::as_str) {
        if line.starts_with("<id>") || line.starts_with("member <id>") {
            run.push(line);
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(line);
    }
    run.sort();
    out.append(&mut run);
    out.join("\n")
}

#[test]
fn etcdctl_v2_and_curl_answer_as_etcd_does() {
    let Some(tools) = etcd_tools() else { return };
    let etcd = EtcdCluster::start_full(&tools, 3, None, &["--enable-v2=true"]);
    etcd.wait_healthy(Duration::from_secs(30));
    let ours = NodeCluster::start_with(3, "v2-transcript", &["--enable-v2"]);
    wait_published(&tools.etcdctl, &ours.urls(None));
    let theirs = masked(&transcript(&tools.etcdctl, &etcd.client_urls()));
    let mine = masked(&transcript(&tools.etcdctl, &ours.urls(None)));
    if theirs != mine {
        let diff: Vec<String> = theirs
            .lines()
            .zip(mine.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("etcd:    {a}\netcdeck: {b}"))
            .collect();
        panic!("the transcripts differ:\n{}\n\netcd's:\n{theirs}\n\netcdeck's:\n{mine}", diff.join("\n"));
    }
    assert!(mine.contains("\"action\":\"compareAndSwap\""), "{mine}");
}

/// Waits until every member published its name (etcdctl v2 reaches members by their published
/// client URLs).
fn wait_published(tool: &Path, endpoints: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = etcdctl(tool, &endpoints.join(","), &["member", "list"]);
        if list.matches("name=").count() == endpoints.len() && !list.contains("unstarted") {
            return;
        }
        assert!(Instant::now() < deadline, "members not published: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_enable_v2_the_v2_paths_are_not_there() {
    let node = EtcdeckNode::start("plain", &[]);
    for path in ["/v2/keys/k", "/v2/members", "/v2/stats/self", "/v2/machines"] {
        let answer = http(&node.client_url, "GET", path, None, "");
        assert_eq!(
            answer,
            "HTTP/1.0 404 Not Found\ncontent-type: text/plain; charset=utf-8\n404 page not found\n"
        );
    }
}

/// Acknowledged v2 writes survive kill -9 of every member, and a member that was down while the
/// log moved past what it keeps (--snapshot-count 1000 and etcd's 5000 catch-up entries, moved on
/// by v3 writes) gets them in the leader's snapshot.
#[test]
fn the_v2_store_survives_kill_9_and_snapshot_catch_up() {
    let mut cluster = NodeCluster::start_with(3, "v2-durable", &["--enable-v2", "--snapshot-count=1000"]);
    let urls = cluster.urls(None);
    let put = |url: &str, i: usize| {
        let form = Some("application/x-www-form-urlencoded");
        let answer = http(url, "PUT", &format!("/v2/keys/d/k{i}"), form, &format!("value=v{i}"));
        assert!(answer.starts_with("HTTP/1.0 20"), "{answer}");
    };
    for i in 0..50 {
        put(&urls[i % 3], i);
    }
    // A key that expires while the members are down, and a directory removed with what it holds.
    let form = Some("application/x-www-form-urlencoded");
    for (path, body) in
        [("/v2/keys/ttl", "value=t&ttl=2"), ("/v2/keys/gone/a", "value=1"), ("/v2/keys/gone/b/c", "value=2")]
    {
        assert!(http(&urls[0], "PUT", path, form, body).starts_with("HTTP/1.0 201"));
    }
    assert!(http(&urls[1], "DELETE", "/v2/keys/gone?recursive=true", None, "").starts_with("HTTP/1.0 200"));
    // A member goes down; the others write on, far past what the log keeps.
    // A follower: writes racing a leader's death may be lost unanswered, in etcd as here.
    let leader = http(&urls[0], "GET", "/v2/members/leader", None, "");
    let down =
        (0..3).find(|i| !leader.contains(&format!("\"clientURLs\":[\"{}\"]", urls[*i]))).expect("a follower");
    cluster.nodes[down].kill();
    let rest = cluster.urls(Some(down));
    crate::node_cluster::put_many(&rest, "v3/", 7000);
    for i in 50..100 {
        put(&rest[i % 2], i);
    }
    // More than the history's 1000 events: its oldest records go.
    for i in 0..1100 {
        let answer = http(&rest[i % 2], "PUT", "/v2/keys/many", form, &format!("value={i}"));
        assert!(answer.starts_with("HTTP/1.0 20"), "{answer}");
    }
    // Everyone dies at once, then all come back.
    for (i, n) in cluster.nodes.iter_mut().enumerate() {
        if i != down {
            n.kill();
        }
    }
    for n in &mut cluster.nodes {
        n.respawn();
    }
    for n in &mut cluster.nodes {
        n.wait_serving(Duration::from_secs(30));
    }
    // Every acknowledged key is on every member, read where it is asked.
    for url in &cluster.urls(None) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = http(url, "GET", "/v2/keys/d?sorted=true", None, "");
            let count = (0..100)
                .filter(|i| answer.contains(&format!("\"key\":\"/d/k{i}\",\"value\":\"v{i}\"")))
                .count();
            if count == 100 {
                break;
            }
            assert!(Instant::now() < deadline, "{url} has {count} of 100 keys: {answer}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for url in &cluster.urls(None) {
        // The removed directory stays removed, the key with a TTL is swept once a leader leads.
        assert!(http(url, "GET", "/v2/keys/gone", None, "").starts_with("HTTP/1.0 404"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !http(url, "GET", "/v2/keys/ttl", None, "").starts_with("HTTP/1.0 404") {
            assert!(Instant::now() < deadline, "{url} still has the expired key");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The history came back with the store: a watch 500 events back is answered at once.
        let answer = http(url, "GET", "/v2/keys/many", None, "");
        let index: u64 = answer
            .lines()
            .find_map(|l| l.strip_prefix("x-etcd-index: "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no index: {answer}"));
        let watched =
            http(url, "GET", &format!("/v2/keys/many?wait=true&waitIndex={}", index - 500), None, "");
        assert!(watched.contains("\"action\":\"set\""), "{url}: {watched}");
        let cleared =
            http(url, "GET", &format!("/v2/keys/many?wait=true&waitIndex={}", index - 1100), None, "");
        assert!(cleared.contains("\"errorCode\":401"), "{url}: {cleared}");
    }
    let log = cluster.nodes[down].log_text();
    assert!(
        log.contains("applied the leader's snapshot"),
        "the member that was down did not catch up from a snapshot:\n{log}"
    );
}
