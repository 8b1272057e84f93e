//! etcdeck nodes as a raft cluster: static bootstrap on loopback, writes through any member, a killed
//! leader replaced, a restarted member caught up, and etcd's own IDs for the same configuration.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{etcd_tools, free_port, EtcdeckNode};

/// A cluster of etcdeck processes on loopback, stopped with this handle.
pub(crate) struct NodeCluster {
    pub(crate) nodes: Vec<EtcdeckNode>,
    pub(crate) _dir: tempfile::TempDir,
}

impl NodeCluster {
    /// Starts `n` members named n1.. with --initial-cluster and `token`, then waits until each serves.
    pub(crate) fn start(n: usize, token: &str) -> Self {
        Self::start_with(n, token, &[])
    }

    /// As `start`, with more flags for every member.
    pub(crate) fn start_with(n: usize, token: &str, more: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let peers: Vec<String> = (0..n).map(|_| format!("http://127.0.0.1:{}", free_port())).collect();
        let initial: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("n{}={p}", i + 1)).collect();
        let initial = initial.join(",");
        let nodes: Vec<EtcdeckNode> = (0..n)
            .map(|i| {
                let mut flags =
                    vec![format!("--initial-cluster={initial}"), format!("--initial-cluster-token={token}")];
                flags.extend(more.iter().map(|s| s.to_string()));
                spawn_member(
                    &format!("n{}", i + 1),
                    &dir.path().join(format!("n{}", i + 1)),
                    &peers[i],
                    &flags,
                )
            })
            .collect();
        let mut cluster = NodeCluster { nodes, _dir: dir };
        for node in &mut cluster.nodes {
            node.wait_serving(Duration::from_secs(30));
        }
        cluster
    }

    pub(crate) fn urls(&self, skip: Option<usize>) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, n)| n.client_url.clone())
            .collect()
    }
}

use crate::support::run_etcdctl as etcdctl;

/// `n` puts (`<prefix><i>`, each its own raft entry) from 64 clients at once, through `urls`.
pub(crate) fn put_many(urls: &[String], prefix: &str, n: usize) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = etcd_client::Client::connect(urls.to_vec(), None).await.expect("connect");
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (mut c, next, prefix) = (client.clone(), next.clone(), prefix.to_string());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return;
                        }
                        c.put(format!("{prefix}{i:05}"), "v", None).await.expect("put");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
    });
}

/// Starts a member named `name` on `data` that listens for peers on (and advertises) `peer`, with a
/// fresh client URL on the peer URL's host and `more` flags; does not wait for it to serve.
pub(crate) fn spawn_member(name: &str, data: &Path, peer: &str, more: &[String]) -> EtcdeckNode {
    let host = peer.trim_start_matches("http://").rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
    let client = format!("http://{host}:{}", free_port());
    let mut flags =
        vec![format!("--listen-peer-urls={peer}"), format!("--initial-advertise-peer-urls={peer}")];
    flags.extend_from_slice(more);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    EtcdeckNode::spawn_at(name, data, &client, &flags)
}

/// Starts a member the way `etcdctl member add` printed (its ETCD_INITIAL_CLUSTER, state existing)
/// and waits until it serves.
fn join(name: &str, data: &Path, peer: &str, added: &str) -> EtcdeckNode {
    let env = add_output(added);
    let more = [
        format!("--initial-cluster={}", env.get("ETCD_INITIAL_CLUSTER").cloned().unwrap_or_default()),
        format!(
            "--initial-cluster-state={}",
            env.get("ETCD_INITIAL_CLUSTER_STATE").cloned().unwrap_or_default()
        ),
    ];
    let mut node = spawn_member(name, data, peer, &more);
    node.wait_serving(Duration::from_secs(30));
    node
}

/// (member ID, leader ID, revision) from `etcdctl endpoint status -w json` of one endpoint.
fn status(etcdctl_bin: &Path, endpoint: &str) -> Option<(u64, u64, i64)> {
    let (ok, out, _) = etcdctl(etcdctl_bin, &[endpoint.to_string()], &["endpoint", "status", "-w", "json"]);
    if !ok {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let s = &v.as_array()?.first()?["Status"];
    Some((s["header"]["member_id"].as_u64()?, s["leader"].as_u64()?, s["header"]["revision"].as_i64()?))
}

/// The HashKV of every endpoint at `revision`.
fn hashes(etcdctl_bin: &Path, endpoints: &[String], revision: i64) -> Vec<String> {
    endpoints
        .iter()
        .map(|ep| {
            let rev = revision.to_string();
            let (ok, out, err) =
                etcdctl(etcdctl_bin, std::slice::from_ref(ep), &["endpoint", "hashkv", "--rev", &rev]);
            assert!(ok, "hashkv on {ep}: {err}");
            out.split(", ").nth(1).unwrap_or_default().trim().to_string()
        })
        .collect()
}

#[test]
fn three_members_elect_replicate_survive_a_killed_leader_and_catch_up() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-cluster-test");
    let all = cluster.urls(None);

    // The runbook commands, unchanged.
    let (ok, out, err) = etcdctl(ctl, &all[..1], &["member", "list", "-w", "table"]);
    assert!(ok, "{err}");
    for i in 1..=3 {
        assert!(out.contains(&format!(" n{i} |")), "every member published its name:\n{out}");
    }
    for url in &all {
        assert!(out.contains(url.as_str()), "and its client URL {url}:\n{out}");
    }
    let (ok, out, err) = etcdctl(ctl, &all[..1], &["endpoint", "health", "--cluster"]);
    // etcdctl 3.4 prints health results on stderr.
    assert!(ok, "{err}");
    assert_eq!(format!("{out}{err}").matches("is healthy").count(), 3, "{out}{err}");
    let (ok, out, err) = etcdctl(ctl, &all[..1], &["endpoint", "status", "--cluster", "-w", "table"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches(" true |").count(), 1, "exactly one leader:\n{out}");

    // The console's dashboard reads it as it reads etcd: every member up and healthy, one leader.
    let out =
        crate::support::etcdeck().args(["status", "--endpoints", &all[0]]).output().expect("etcdeck status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for i in 1..=3 {
        assert!(text.contains(&format!("n{i}")), "{text}");
    }

    // Writes through every member (followers forward), read back linearizably from every member.
    for (i, url) in all.iter().enumerate() {
        let (ok, _, err) =
            etcdctl(ctl, std::slice::from_ref(url), &["put", &format!("k{i}"), &format!("v{i}")]);
        assert!(ok, "put through {url}: {err}");
    }
    for url in &all {
        let (ok, out, err) =
            etcdctl(ctl, std::slice::from_ref(url), &["get", "k", "--prefix", "--print-value-only"]);
        assert!(ok, "{err}");
        assert_eq!(out, "v0\nv1\nv2\n", "on {url}");
    }

    // Leadership moves where it is told to (etcdctl finds the leader among the endpoints).
    let before = status(ctl, &all[0]).expect("status").1;
    let target = (0..3)
        .filter_map(|i| status(ctl, &all[i]))
        .map(|s| s.0)
        .find(|id| *id != before)
        .expect("a follower");
    let (ok, out, err) = etcdctl(ctl, &all, &["move-leader", &format!("{target:x}")]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("Leadership transferred"), "{out}");
    assert!(
        all.iter().all(|ep| status(ctl, ep).is_some_and(|s| s.1 == target)),
        "every member follows {target:x}"
    );
    // Asked of a follower, MoveLeader says etcd's "not leader" (etcdctl itself never asks one).
    let follower_url =
        (0..3).find(|i| status(ctl, &all[*i]).is_some_and(|s| s.0 != target)).map(|i| all[i].clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let err = rt.block_on(async {
        let mut c =
            etcd_client::Client::connect([follower_url.expect("a follower")], None).await.expect("connect");
        tokio::time::timeout(Duration::from_secs(5), c.move_leader(before))
            .await
            .expect("in time")
            .expect_err("refused")
    });
    assert!(err.to_string().contains("etcdserver: not leader"), "{err}");

    // Leases through a follower: granted through raft, kept alive and timed by the leader's clock
    // (the follower forwards both, as etcd does), expired by the leader when nobody renews them.
    let leader_id = status(ctl, &all[0]).expect("status").1;
    let follower =
        (0..3).find(|i| status(ctl, &all[*i]).is_some_and(|s| s.0 != leader_id)).expect("a follower");
    let via = std::slice::from_ref(&all[follower]);
    let (ok, out, err) = etcdctl(ctl, via, &["lease", "grant", "2"]);
    assert!(ok, "{err}");
    let lease = out.split_whitespace().nth(1).expect("lease ID").to_string();
    let (ok, _, err) = etcdctl(ctl, via, &["put", "leased", "x", &format!("--lease={lease}")]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(1200));
    let (ok, out, err) = etcdctl(ctl, via, &["lease", "keep-alive", "--once", &lease]);
    assert!(ok && out.contains("TTL(2)"), "a keep-alive through a follower renews it: {out}{err}");
    let (ok, out, err) = etcdctl(ctl, via, &["lease", "timetolive", &lease]);
    assert!(ok && out.contains("granted with TTL(2s)"), "{out}{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = etcdctl(ctl, via, &["get", "leased", "--print-value-only"]);
        if out.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the unrenewed lease never expired");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Kill the leader: the other two elect one and take writes.
    let leader_id = status(ctl, &all[0]).expect("status").1;
    let leader =
        (0..3).find(|i| status(ctl, &all[*i]).is_some_and(|s| s.0 == leader_id)).expect("the leader");
    cluster.nodes[leader].kill();
    let killed = Instant::now();
    let rest = cluster.urls(Some(leader));
    let new_leader = loop {
        let leaders: Vec<u64> = rest.iter().filter_map(|ep| status(ctl, ep)).map(|s| s.1).collect();
        if leaders.len() == 2 && leaders[0] == leaders[1] && leaders[0] != 0 && leaders[0] != leader_id {
            break leaders[0];
        }
        assert!(killed.elapsed() < Duration::from_secs(20), "no new leader: {leaders:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("new leader {new_leader:x} {:?} after the leader was killed", killed.elapsed());
    for i in 0..20 {
        let (ok, _, err) = etcdctl(ctl, &rest, &["put", &format!("after/{i:02}"), "x"]);
        assert!(ok, "a write on the majority: {err}");
    }

    // The killed member comes back and catches up: every member has the same data at the same
    // revision.
    cluster.nodes[leader].restart();
    let revision = status(ctl, &rest[0]).expect("status").2;
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(ctl, &all[leader]).map(|s| s.2) != Some(revision) {
        assert!(Instant::now() < deadline, "the restarted member did not catch up to {revision}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let h = hashes(ctl, &all, revision);
    assert!(h.iter().all(|x| x == &h[0]) && !h[0].is_empty(), "HashKV at {revision}: {h:?}");
    let (ok, out, err) =
        etcdctl(ctl, &all[leader..=leader], &["get", "after/", "--prefix", "--keys-only", "--consistency=s"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| !l.is_empty()).count(),
        20,
        "the restarted member has every write:\n{out}"
    );
}

#[test]
fn five_members_keep_taking_writes_with_two_down() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(5, "etcdeck-five");
    cluster.nodes[3].kill();
    cluster.nodes[4].kill();
    let rest: Vec<String> = cluster.urls(None)[..3].to_vec();
    // A write forwarded to a dead leader is lost until its request times out (as on etcd): wait
    // until the three agree on a live leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s: Vec<(u64, u64, i64)> = rest.iter().filter_map(|ep| status(ctl, ep)).collect();
        let ids: Vec<u64> = s.iter().map(|x| x.0).collect();
        if s.len() == 3 && s.iter().all(|x| x.1 == s[0].1 && ids.contains(&x.1)) {
            break;
        }
        assert!(Instant::now() < deadline, "no leader among the three: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, _, err) = etcdctl(ctl, &rest, &["put", "five", "still"]);
    assert!(ok, "three of five are a quorum: {err}");
    let (ok, out, err) = etcdctl(ctl, &rest[2..], &["get", "five", "--print-value-only"]);
    assert!(ok, "{err}");
    assert_eq!(out, "still\n");

    // The runbook for members that are gone for good: remove them (a member that is down may go;
    // etcd adds nothing while a voter is unreachable), add a replacement as a learner, start it,
    // promote it once it caught up.
    let rows = member_rows(ctl, &rest[..1]);
    for name in ["n4", "n5"] {
        let dead = rows.iter().find(|r| r[2] == name).map(|r| r[0].clone()).expect("listed");
        let (ok, out, err) = etcdctl(ctl, &rest, &["member", "remove", &dead]);
        assert!(ok && out.contains(&format!("Member {dead:>16} removed")), "{out}{err}");
    }
    let peer = format!("http://127.0.0.1:{}", free_port());
    let (ok, out, err) = member_add(ctl, &rest, &["n6", "--learner", &format!("--peer-urls={peer}")]);
    assert!(ok, "{err}");
    let new_id = out.split_whitespace().nth(1).unwrap_or_default().to_string();
    let n6 = join("n6", &cluster._dir.path().join("n6"), &peer, &out);
    let client = n6.client_url.clone();
    eventually(Duration::from_secs(15), "the replacement is promoted", || {
        etcdctl(ctl, &rest, &["member", "promote", &new_id]).0.then_some(())
    });
    let rows = member_rows(ctl, &rest[..1]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r[5] == "false"), "every member votes: {rows:?}");
    // Writes go on, and the replacement has them all.
    let (ok, _, err) = etcdctl(ctl, &rest, &["put", "five", "replaced"]);
    assert!(ok, "{err}");
    let mine = std::slice::from_ref(&client);
    eventually(Duration::from_secs(10), "the replacement has the write", || {
        let (ok, out, _) = etcdctl(ctl, mine, &["get", "five", "--print-value-only"]);
        (ok && out == "replaced\n").then_some(())
    });
}

/// The same --initial-cluster and token give etcd's member and cluster IDs.
#[test]
fn member_and_cluster_ids_are_etcds_for_the_same_configuration() {
    let Some(tools) = etcd_tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let args = |i: usize, data: &Path, peers: &[String], clients: &[String]| -> Vec<String> {
        let initial: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("n{}={p}", i + 1)).collect();
        vec![
            format!("--name=n{}", i + 1),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={}", clients[i]),
            format!("--advertise-client-urls={}", clients[i]),
            format!("--listen-peer-urls={}", peers[i]),
            format!("--initial-advertise-peer-urls={}", peers[i]),
            format!("--initial-cluster={}", initial.join(",")),
            "--initial-cluster-token=same-token".into(),
            "--heartbeat-interval=50".into(),
            "--election-timeout=500".into(),
        ]
    };
    // (cluster ID, member IDs), once `endpoints` answer; None after 20 s.
    let ids = |endpoints: &[String]| -> Option<(u64, Vec<u64>)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (ok, out, _) = etcdctl(&tools.etcdctl, endpoints, &["member", "list", "-w", "json"]);
            if ok {
                let v: serde_json::Value = serde_json::from_str(&out).expect("json");
                let mut ids: Vec<u64> = v["members"]
                    .as_array()
                    .expect("members")
                    .iter()
                    .filter_map(|m| m["ID"].as_u64())
                    .collect();
                ids.sort_unstable();
                return Some((v["header"]["cluster_id"].as_u64().expect("cluster id"), ids));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // A free port can be taken by another test before etcd binds it: then etcd exits, and the
    // cluster is started again on other ports.
    let mut found = None;
    for attempt in 0..3 {
        let peers: Vec<String> = (0..3).map(|_| format!("http://127.0.0.1:{}", free_port())).collect();
        let clients: Vec<String> = (0..3).map(|_| format!("http://127.0.0.1:{}", free_port())).collect();
        let mut etcd: Vec<std::process::Child> = (0..3)
            .map(|i| {
                let data = dir.path().join(format!("etcd{attempt}-{i}"));
                Command::new(&tools.etcd)
                    .args(args(i, &data, &peers, &clients))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("etcd")
            })
            .collect();
        let answer = ids(&clients);
        for child in &mut etcd {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(answer) = answer {
            found = Some((peers, clients, answer));
            break;
        }
    }
    let (peers, clients, from_etcd) = found.expect("etcd never answered member list (three tries)");
    let mut nodes: Vec<EtcdeckNode> = (0..3)
        .map(|i| {
            let a = args(i, &dir.path().join(format!("node{i}")), &peers, &clients);
            let extra: Vec<&str> = a[4..8].iter().map(String::as_str).collect();
            EtcdeckNode::spawn_at(
                &format!("n{}", i + 1),
                &dir.path().join(format!("node{i}")),
                &clients[i],
                &extra,
            )
        })
        .collect();
    for n in &mut nodes {
        n.wait_serving(Duration::from_secs(30));
    }
    assert_eq!(ids(&clients), Some(from_etcd));
}

/// A member down while the others write less than the log keeps after its snapshots
/// (--snapshot-count 1000: snapshots every 1000 entries, each keeping etcd's 5000 catch-up entries)
/// comes back from the log; down while they write more, through a raft snapshot of the leader's
/// store.
#[test]
fn a_member_behind_the_compacted_log_catches_up_from_a_raft_snapshot() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start_with(3, "etcdeck-snap", &["--snapshot-count=1000"]);
    let all = cluster.urls(None);
    let leader_id = status(ctl, &all[0]).expect("status").1;
    let down = (0..3).find(|i| status(ctl, &all[*i]).is_some_and(|s| s.0 != leader_id)).expect("a follower");
    let rest = cluster.urls(Some(down));
    let catch_up = |cluster: &NodeCluster| {
        let revision = status(ctl, &rest[0]).expect("status").2;
        let deadline = Instant::now() + Duration::from_secs(30);
        while status(ctl, &all[down]).map(|s| s.2) != Some(revision) {
            assert!(Instant::now() < deadline, "the member did not catch up to revision {revision}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let h = hashes(ctl, &all, revision);
        assert!(h.iter().all(|x| x == &h[0]) && !h[0].is_empty(), "HashKV at {revision}: {h:?}");
        cluster.nodes[down].log_text()
    };
    // 3000 writes, each its own raft entry, from 64 clients at once: three snapshots on the others,
    // and every entry still in their logs.
    cluster.nodes[down].kill();
    put_many(&rest, "log/", 3000);
    cluster.nodes[down].restart();
    let log = catch_up(&cluster);
    assert!(!log.contains("applied the leader's snapshot"), "caught up from the log:\n{log}");
    // 7000 more: the log the others keep starts after what the member has.
    cluster.nodes[down].kill();
    put_many(&rest, "snap/", 7000);
    cluster.nodes[down].restart();
    let log = catch_up(&cluster);
    assert!(log.contains("applied the leader's snapshot"), "caught up through a snapshot:\n{log}");
    // And it goes on with the cluster after the snapshot.
    let (ok, _, err) = etcdctl(ctl, &rest, &["put", "after-snapshot", "x"]);
    assert!(ok, "{err}");
    let (ok, out, err) = etcdctl(ctl, &all[down..=down], &["get", "after-snapshot", "--print-value-only"]);
    assert!(ok && out == "x\n", "{out}{err}");
}

/// `etcdeck snapshot save` of a member, `snapshot status`, then `snapshot restore` into a new
/// 3-member cluster that starts with the same keys at the same revision.
#[test]
fn a_snapshot_restores_into_a_new_three_member_cluster() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let source = EtcdeckNode::start("source", &[]);
    let src = std::slice::from_ref(&source.client_url);
    for i in 0..50 {
        let (ok, _, err) = etcdctl(ctl, src, &["put", &format!("restored/{i:02}"), &format!("v{i}")]);
        assert!(ok, "{err}");
    }
    let revision = status(ctl, &source.client_url).expect("status").2;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.db");
    let file_arg = file.display().to_string();
    let out = crate::support::etcdeck()
        .args(["snapshot", "save", &file_arg, "--endpoints", &source.client_url])
        .output()
        .expect("snapshot save");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("Snapshot saved at {file_arg}\n"));
    // etcdctl's own save of the same member makes a file etcdeck reads the same way.
    let by_etcdctl = dir.path().join("etcdctl.db").display().to_string();
    let (ok, _, err) = etcdctl(ctl, src, &["snapshot", "save", &by_etcdctl]);
    assert!(ok, "{err}");
    for f in [&file_arg, &by_etcdctl] {
        let out =
            crate::support::etcdeck().args(["snapshot", "status", f, "-w", "json"]).output().expect("status");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("\"revision\":{revision},")), "{text}");
        // The file is etcd's format: etcdctl reads it, and says what etcdeck says.
        let (ok, theirs, err) = etcdctl(ctl, &[], &["snapshot", "status", f, "-w", "json"]);
        assert!(ok && theirs == text, "etcdctl: {theirs}{err}\netcdeck: {text}");
    }
    drop(source);

    let peers: Vec<String> = (0..3).map(|_| format!("http://127.0.0.1:{}", free_port())).collect();
    let initial: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("r{}={p}", i + 1)).collect();
    let initial = initial.join(",");
    let data = |i: usize| dir.path().join(format!("r{}", i + 1));
    for (i, peer) in peers.iter().enumerate() {
        let data_arg = data(i).display().to_string();
        let name = format!("r{}", i + 1);
        let restore = [
            "snapshot",
            "restore",
            &file_arg,
            "--name",
            &name,
            "--data-dir",
            &data_arg,
            "--initial-cluster",
            &initial,
            "--initial-cluster-token",
            "restored",
            "--initial-advertise-peer-urls",
            peer,
        ];
        let out = crate::support::etcdeck().args(restore).output().expect("restore");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        if i == 0 {
            let again = crate::support::etcdeck().args(restore).output().expect("restore");
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(!again.status.success() && err.contains("exists"), "{err}");
        }
    }
    let mut nodes: Vec<EtcdeckNode> =
        (0..3).map(|i| spawn_member(&format!("r{}", i + 1), &data(i), &peers[i], &[])).collect();
    for n in &mut nodes {
        n.wait_serving(Duration::from_secs(30));
    }
    for n in &nodes {
        let s = status(ctl, &n.client_url).expect("status");
        assert_eq!(s.2, revision, "the revision the snapshot was taken at");
        let (ok, out, err) = etcdctl(
            ctl,
            std::slice::from_ref(&n.client_url),
            &["get", "restored/", "--prefix", "--keys-only"],
        );
        assert!(ok, "{err}");
        assert_eq!(out.lines().filter(|l| !l.is_empty()).count(), 50);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.client_url.clone()).collect();
    let (ok, out, err) = etcdctl(ctl, &urls[..1], &["member", "list"]);
    assert!(ok && out.lines().count() == 3, "{out}{err}");
    assert!(!out.contains("source"), "the snapshot's old membership is gone: {out}");
    let (ok, _, err) = etcdctl(ctl, &urls, &["put", "after-restore", "x"]);
    assert!(ok, "the new cluster takes writes: {err}");
}

/// Two of three members lost for good: the survivor restarts with --force-new-cluster as a
/// one-member cluster with all its data, and takes writes.
#[test]
fn force_new_cluster_recovers_a_lone_survivor_with_its_data() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-force");
    let all = cluster.urls(None);
    for i in 0..10 {
        let (ok, _, err) = etcdctl(ctl, &all, &["put", &format!("kept/{i}"), "v"]);
        assert!(ok, "{err}");
    }
    let revision = status(ctl, &all[0]).expect("status").2;
    for node in &mut cluster.nodes {
        node.kill();
    }
    cluster.nodes[0].restart_with(&["--force-new-cluster"]);
    let me = std::slice::from_ref(&all[0]);
    let (ok, out, err) = etcdctl(ctl, me, &["member", "list"]);
    assert!(ok && out.lines().count() == 1, "one member left: {out}{err}");
    let s = status(ctl, &all[0]).expect("status");
    assert_eq!((s.0, s.1, s.2), (s.0, s.0, revision), "it leads, with every revision it had");
    let (ok, out, _) = etcdctl(ctl, me, &["get", "kept/", "--prefix", "--keys-only"]);
    assert!(ok && out.lines().filter(|l| !l.is_empty()).count() == 10, "{out}");
    let (ok, _, err) = etcdctl(ctl, me, &["put", "after-force", "x"]);
    assert!(ok, "{err}");
    let log = cluster.nodes[0].log_text();
    assert!(log.contains("--force-new-cluster: member n1"), "{log}");

    // It grows again with member add: a second member joins with --initial-cluster-state existing.
    let peer = format!("http://127.0.0.1:{}", free_port());
    let (ok, out, err) = etcdctl(ctl, me, &["member", "add", "n2b", &format!("--peer-urls={peer}")]);
    assert!(ok, "adding a second member to a lone one is allowed: {err}");
    let n2b = join("n2b", &cluster._dir.path().join("n2b"), &peer, &out);
    let client = n2b.client_url.clone();
    let both = vec![all[0].clone(), client.clone()];
    let (ok, _, err) = etcdctl(ctl, &both, &["put", "grown", "again"]);
    assert!(ok, "{err}");
    let (ok, out, _) =
        etcdctl(ctl, std::slice::from_ref(&client), &["get", "kept/", "--prefix", "--keys-only"]);
    assert!(ok && out.lines().filter(|l| !l.is_empty()).count() == 10, "the new member has the data: {out}");
    assert_eq!(member_rows(ctl, &both[..1]).len(), 2);

    // And again: a second member joining through the same leader gets a snapshot made for it
    // (one made for n2b carries a membership without it, and it would refuse that one).
    let peer = format!("http://127.0.0.1:{}", free_port());
    let (ok, out, err) = member_add(ctl, &both, &["n3b", "--learner", &format!("--peer-urls={peer}")]);
    assert!(ok, "{err}");
    let n3b = join("n3b", &cluster._dir.path().join("n3b"), &peer, &out);
    let client = n3b.client_url.clone();
    let (ok, out, _) = etcdctl(
        ctl,
        std::slice::from_ref(&client),
        &["get", "grown", "--print-value-only", "--consistency=s"],
    );
    assert!(ok && out == "again\n", "{out}");
}

/// `etcdctl member list` as rows: (ID, started|unstarted, name, peer URLs, client URLs, learner).
fn member_rows(ctl: &Path, endpoints: &[String]) -> Vec<[String; 6]> {
    let (ok, out, err) = etcdctl(ctl, endpoints, &["member", "list"]);
    assert!(ok, "member list: {err}");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<String> = l.split(", ").map(str::to_string).collect();
            assert_eq!(cells.len(), 6, "{l}");
            [0, 1, 2, 3, 4, 5].map(|i| cells[i].clone())
        })
        .collect()
}

/// `etcdctl member add` with `args`, again while etcd's strict check refuses it because this member
/// has not yet been connected to every voter for 5 s ("unhealthy cluster", as etcd answers).
fn member_add(ctl: &Path, endpoints: &[String], args: &[&str]) -> (bool, String, String) {
    let mut cmd = vec!["member", "add"];
    cmd.extend_from_slice(args);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ok, out, err) = etcdctl(ctl, endpoints, &cmd);
        if ok || !err.contains("etcdserver: unhealthy cluster") || Instant::now() > deadline {
            return (ok, out, err);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ETCD_* lines `etcdctl member add` prints, as (variable, value).
fn add_output(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("ETCD_"))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Polls `f` every 100 ms until it returns Some, for at most `limit`.
fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The leader's index in `urls`, once one is known.
fn leader_index(ctl: &Path, urls: &[String]) -> usize {
    eventually(Duration::from_secs(10), "a leader", || {
        let s: Vec<_> = urls.iter().map(|u| status(ctl, u)).collect();
        s.iter().position(|st| st.is_some_and(|(me, leader, _)| me == leader))
    })
}

#[test]
fn a_learner_is_added_started_promoted_and_a_removed_leader_stops_for_good() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-membership");
    let all = cluster.urls(None);
    for i in 0..20 {
        let (ok, _, err) = etcdctl(ctl, &all, &["put", &format!("before/{i}"), "v"]);
        assert!(ok, "{err}");
    }

    // The runbook: member add (as a learner), then start the member with what etcdctl printed.
    let peer = format!("http://127.0.0.1:{}", free_port());
    let (ok, out, err) = member_add(ctl, &all, &["n4", "--learner", &format!("--peer-urls={peer}")]);
    assert!(ok, "member add: {err}");
    assert!(out.starts_with("Member ") && out.contains(" added to cluster "), "{out}");
    let env = add_output(&out);
    assert_eq!(env.get("ETCD_NAME").map(String::as_str), Some("n4"), "{out}");
    assert_eq!(env.get("ETCD_INITIAL_CLUSTER_STATE").map(String::as_str), Some("existing"), "{out}");
    assert_eq!(env.get("ETCD_INITIAL_ADVERTISE_PEER_URLS"), Some(&peer), "{out}");
    let initial = env.get("ETCD_INITIAL_CLUSTER").cloned().unwrap_or_default();
    assert!(initial.contains(&format!("n4={peer}")) && initial.contains("n1="), "{initial}");
    let new_id = out.split_whitespace().nth(1).unwrap_or_default().to_string();
    let rows = member_rows(ctl, &all[..1]);
    let row = rows.iter().find(|r| r[0] == new_id).expect("the new member is listed");
    assert_eq!((row[1].as_str(), row[2].as_str(), row[5].as_str()), ("unstarted", "", "true"), "{rows:?}");

    // Not caught up (not even started): promotion is refused; a second learner too.
    let (ok, _, err) = etcdctl(ctl, &all, &["member", "promote", &new_id]);
    assert!(!ok && err.contains("can only promote a learner member which is in sync with leader"), "{err}");
    let other = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    // (member_add waits out etcd's "unhealthy cluster", which a peer stream reconnecting can give.)
    let (ok, _, err) = member_add(ctl, &all, &["n5", "--learner", &other]);
    assert!(!ok && err.contains("etcdserver: too many learner members in cluster"), "{err}");
    // (Another URL set: the same set within the same second would be the same member ID.)
    let overlapping = format!("--peer-urls={peer},http://127.0.0.1:{}", free_port());
    let (ok, _, err) = member_add(ctl, &all, &["n5", &overlapping]);
    assert!(!ok && err.contains("etcdserver: Peer URLs already exists"), "{err}");

    let n4 = join("n4", &cluster._dir.path().join("n4"), &peer, &out);
    let client = n4.client_url.clone();
    let learner = std::slice::from_ref(&client);
    // A learner serves serializable reads of the data it caught up with, and nothing linearizable.
    let out = eventually(Duration::from_secs(10), "the learner has the data", || {
        let (ok, out, _) =
            etcdctl(ctl, learner, &["get", "before/", "--prefix", "--keys-only", "--consistency=s"]);
        (ok && out.lines().filter(|l| !l.is_empty()).count() == 20).then_some(out)
    });
    assert!(out.contains("before/19"), "{out}");
    let (ok, _, err) = etcdctl(ctl, learner, &["get", "before/0"]);
    assert!(!ok && err.contains("etcdserver: rpc not supported for learner"), "{err}");
    let (ok, _, err) = etcdctl(ctl, learner, &["put", "x", "y"]);
    assert!(!ok && err.contains("etcdserver: rpc not supported for learner"), "{err}");

    // The dashboard shows it as it shows an etcd learner.
    let out =
        crate::support::etcdeck().args(["status", "--endpoints", &all[0]]).output().expect("etcdeck status");
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains("| n4 ")).unwrap_or_default();
    let learner_cell = row.split('|').nth(8).map(str::trim);
    assert_eq!(
        learner_cell,
        Some("true"),
        "the LEARNER column:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Caught up: promoted (through any member: a follower asks the leader).
    let mut last = String::new();
    let promoted = (0..150).any(|_| {
        let (ok, out, err) = etcdctl(ctl, &all[2..], &["member", "promote", &new_id]);
        last = format!("{out}{err}");
        ok || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(promoted && last.contains(&format!("Member {new_id:>16} promoted in cluster")), "{last}");
    let rows = member_rows(ctl, &all[..1]);
    let row = rows.iter().find(|r| r[0] == new_id).expect("listed");
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[4].as_str(), row[5].as_str()),
        ("started", "n4", client.as_str(), "false")
    );
    let (ok, _, err) = etcdctl(ctl, learner, &["put", "through-n4", "v"]);
    assert!(ok, "the promoted member takes writes: {err}");
    let (ok, _, err) = etcdctl(ctl, &all, &["member", "promote", &new_id]);
    assert!(!ok && err.contains("etcdserver: can only promote a learner member"), "{err}");

    // Remove the leader: it stops with etcd's words and exit code 0; the other three go on.
    let four: Vec<String> = all.iter().cloned().chain([client.clone()]).collect();
    let leader = leader_index(ctl, &all);
    let leader_id = format!("{:x}", status(ctl, &all[leader]).expect("status").0);
    // etcd counts a peer toward the quorum only once connected for 5 s ("unhealthy cluster" before).
    let out = eventually(Duration::from_secs(15), "member remove", || {
        let (ok, out, err) = etcdctl(ctl, &all, &["member", "remove", &leader_id]);
        assert!(ok || err.contains("etcdserver: unhealthy cluster"), "{err}");
        ok.then_some(out)
    });
    assert!(out.contains(&format!("Member {leader_id:>16} removed from cluster")), "{out}");
    let code = cluster.nodes[leader].wait_exit(Duration::from_secs(15));
    let log = cluster.nodes[leader].log_text();
    assert_eq!(code, Some(0), "the removed member exits 0:\n{log}");
    assert!(log.contains("the member has been permanently removed from the cluster"), "{log}");
    let rest: Vec<String> = four.iter().filter(|u| **u != all[leader]).cloned().collect();
    let new_leader = leader_index(ctl, &rest);
    assert_ne!(rest[new_leader], all[leader]);
    let (ok, _, err) = etcdctl(ctl, &rest, &["put", "after-remove", "v"]);
    assert!(ok, "{err}");
    assert_eq!(member_rows(ctl, &rest[..1]).len(), 3);
    let revision = status(ctl, &rest[0]).expect("status").2;
    let hashes = eventually(Duration::from_secs(10), "equal HashKV", || {
        let rev = status(ctl, &rest[2]).map(|s| s.2)?;
        (rev >= revision).then(|| hashes(ctl, &rest, revision))
    });
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");

    // Back with its data, it is refused and stops again; removing it twice is "not found".
    cluster.nodes[leader].respawn();
    let code = cluster.nodes[leader].wait_exit(Duration::from_secs(15));
    let log = cluster.nodes[leader].log_text();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(log.matches("the member has been permanently removed from the cluster").count(), 2, "{log}");
    let (ok, _, err) = etcdctl(ctl, &rest, &["member", "remove", &leader_id]);
    assert!(!ok && err.contains("etcdserver: member not found"), "{err}");
    drop(n4);
}

/// Copies a directory tree (a member's data dir, as an operator copies it to another host).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_member_moves_to_another_host_by_copying_its_data_dir() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-move");
    let all = cluster.urls(None);
    for i in 0..20 {
        let (ok, _, err) = etcdctl(ctl, &all, &["put", &format!("moving/{i}"), "v"]);
        assert!(ok, "{err}");
    }
    let id = format!("{:x}", status(ctl, &all[2]).expect("status").0);
    assert_eq!(cluster.nodes[2].terminate(), Some(0));
    let moved = cluster._dir.path().join("n3-on-another-host");
    copy_tree(&cluster.nodes[2].data_dir, &moved);
    // If it led, a request forwarded to it is lost until it times out (as on etcd): wait for a
    // leader among the two.
    leader_index(ctl, &all[..2]);

    // The runbook: member update to the new peer URL, then start the copy there.
    let peer = format!("http://127.0.0.2:{}", free_port());
    let (ok, out, err) = etcdctl(ctl, &all[..2], &["member", "update", &id, &format!("--peer-urls={peer}")]);
    assert!(ok, "member update: {err}");
    assert!(out.contains(&format!("Member {id:>16} updated in cluster")), "{out}");
    for i in 20..30 {
        let (ok, _, err) = etcdctl(ctl, &all[..2], &["put", &format!("moving/{i}"), "v"]);
        assert!(ok, "writes go on while it moves: {err}");
    }
    let mut n3 = spawn_member("n3", &moved, &peer, &[]);
    n3.wait_serving(Duration::from_secs(30));
    let client = n3.client_url.clone();

    let rows = member_rows(ctl, &all[..1]);
    let row = rows.iter().find(|r| r[0] == id).expect("still a member");
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[3].as_str(), row[4].as_str()),
        ("started", "n3", peer.as_str(), client.as_str())
    );
    let (ok, _, err) = etcdctl(ctl, std::slice::from_ref(&client), &["put", "moved", "yes"]);
    assert!(ok, "the moved member takes writes: {err}");
    let now: Vec<String> = vec![all[0].clone(), all[1].clone(), client.clone()];
    let revision = status(ctl, &now[0]).expect("status").2;
    let hashes = eventually(Duration::from_secs(10), "the moved member caught up", || {
        let rev = status(ctl, &client).map(|s| s.2)?;
        (rev >= revision).then(|| hashes(ctl, &now, revision))
    });
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    let (ok, out, _) =
        etcdctl(ctl, std::slice::from_ref(&client), &["get", "moving/", "--prefix", "--keys-only"]);
    assert!(ok && out.lines().filter(|l| !l.is_empty()).count() == 30, "{out}");
}

#[test]
fn operator_mistakes_get_etcds_errors_and_leave_data_dirs_alone() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-mistakes");
    let all = cluster.urls(None);
    let (ok, _, err) = etcdctl(ctl, &all, &["put", "k", "v"]);
    assert!(ok, "{err}");
    let initial = |extra: &str| {
        let mut parts: Vec<String> =
            member_rows(ctl, &all[..1]).iter().map(|r| format!("{}={}", r[2], r[3])).collect();
        parts.push(extra.to_string());
        parts.join(",")
    };

    // Joining without `member add` first: etcd's validation error, exit 1, no data dir left behind.
    let peer = format!("http://127.0.0.1:{}", free_port());
    let data = cluster._dir.path().join("n4");
    let more = [
        format!("--initial-cluster={}", initial(&format!("n4={peer}"))),
        "--initial-cluster-state=existing".into(),
    ];
    let mut n4 = spawn_member("n4", &data, &peer, &more);
    assert_eq!(n4.wait_exit(Duration::from_secs(15)), Some(1), "{}", n4.log_text());
    let log = n4.log_text();
    assert!(
        log.contains("error validating peerURLs {ClusterID:") && log.contains("member count is unequal"),
        "{log}"
    );
    assert!(!data.exists(), "the failed join left {}", data.display());
    // After `member add`, the same command joins.
    let (ok, _, err) = member_add(ctl, &all, &["n4", "--learner", &format!("--peer-urls={peer}")]);
    assert!(ok, "{err}");
    n4.respawn();
    n4.wait_serving(Duration::from_secs(30));

    // A member whose data dir was lost, started again as `new`: refused, the cluster untouched.
    let n2_data = cluster.nodes[1].data_dir.clone();
    assert_eq!(cluster.nodes[1].terminate(), Some(0));
    let aside = n2_data.with_extension("aside");
    std::fs::rename(&n2_data, &aside).expect("move the data dir away");
    cluster.nodes[1].respawn();
    assert_eq!(cluster.nodes[1].wait_exit(Duration::from_secs(15)), Some(1));
    let log = cluster.nodes[1].log_text();
    let n2_id = member_rows(ctl, &all[..1]).iter().find(|r| r[2] == "n2").map(|r| r[0].clone()).expect("n2");
    assert!(log.contains(&format!("member {n2_id} has already been bootstrapped")), "{log}");
    assert!(!n2_data.exists(), "a data dir was left behind");
    std::fs::rename(&aside, &n2_data).expect("put it back");
    // With its data back it rejoins; --initial-cluster-state is ignored over existing data, as in etcd.
    cluster.nodes[1].restart_with(&["--initial-cluster-state=existing"]);
    let (ok, out, err) = etcdctl(ctl, std::slice::from_ref(&all[1]), &["get", "k", "--print-value-only"]);
    assert!(ok && out == "v\n", "{out}{err}");

    // A member of another cluster (another token) is refused at the peer handshake on both sides.
    let stranger_peer = format!("http://127.0.0.1:{}", free_port());
    let n1_peer =
        member_rows(ctl, &all[..1]).iter().find(|r| r[2] == "n1").map(|r| r[3].clone()).expect("n1");
    let more = [
        format!("--initial-cluster=n1={n1_peer},stranger={stranger_peer}"),
        "--initial-cluster-token=another-token".to_string(),
    ];
    let mut stranger = spawn_member("stranger", &cluster._dir.path().join("stranger"), &stranger_peer, &more);
    eventually(Duration::from_secs(10), "cluster ID mismatch on both sides", || {
        let theirs = stranger.log_text().contains("cluster ID mismatch");
        let ours = cluster.nodes[0].log_text().contains("request cluster ID mismatch");
        (theirs && ours).then_some(())
    });
    stranger.kill();
    let (ok, _, err) = etcdctl(ctl, &all, &["put", "k", "still"]);
    assert!(ok, "the cluster is untouched: {err}");
    assert_eq!(member_rows(ctl, &all[..1]).len(), 4);
}

/// A simple token names the raft entry that made it: a member that had not applied that entry yet
/// (frozen while the client signed in elsewhere) waits for it instead of calling the token invalid,
/// as etcd's members do.
#[test]
fn a_token_made_on_one_member_works_on_one_that_was_behind() {
    let Some(tools) = crate::support::etcd_tools() else { return };
    let cluster = NodeCluster::start_with(3, "auth-token-wait", &["--bcrypt-cost=4"]);
    let urls = cluster.urls(None);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(crate::node_auth::setup(&urls[0]));
    // A follower falls behind (the leader frozen would stop the cluster).
    let leader = leader_index(&tools.etcdctl, &urls);
    let behind = (leader + 1) % 3;
    let pid = cluster.nodes[behind].pid().expect("the follower runs") as i32;
    // SAFETY: signals to a child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let token = rt.block_on(async {
        let client = etcd_client::Client::connect([urls[leader].as_str()], None).await.expect("connect");
        let token = client.auth_client().authenticate("u".into(), "upw".into()).await;
        token.map(|t| t.token().to_string())
    });
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            unsafe { libc::kill(pid, libc::SIGCONT) };
            panic!("signed in on the leader while a follower was frozen: {e}");
        }
    };
    // The read reaches the follower before it hears of the entry that made the token: sent while it
    // is frozen, served as soon as it runs again.
    let (url, t) = (urls[behind].clone(), token.clone());
    let pending = rt.spawn(async move { crate::node_auth::range_with_token(&url, &t, "p/a").await });
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let read = rt.block_on(pending).expect("the read finished");
    let log = cluster.nodes[behind].log_text();
    assert_eq!(read.map_err(|s| s.message().to_string()), Ok(0), "the follower's log:\n{log}");
}

/// A leader whose process is gone (its peer port refuses connections) is replaced without waiting
/// out an election timeout, and the member that campaigned says why; a leader paused for less than
/// an election timeout (connections still accepted) is not deposed.
#[test]
fn a_killed_leader_is_replaced_at_once_and_a_paused_one_keeps_leading() {
    let Some(tools) = etcd_tools() else { return };
    let ctl = tools.etcdctl.as_path();
    let mut cluster = NodeCluster::start(3, "etcdeck-early");
    let all = cluster.urls(None);
    let leader = leader_index(ctl, &all);
    let leader_id = status(ctl, &all[leader]).expect("status").0;
    // Paused for 300 ms of the tests' 500 ms election timeout, five times.
    let pid = cluster.nodes[leader].pid().expect("running") as i32;
    for _ in 0..5 {
        // SAFETY: kill(2) on a child this test started and has not reaped.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(300));
    }
    for url in &all {
        assert_eq!(status(ctl, url).map(|s| s.1), Some(leader_id), "{url} follows another leader");
    }
    for node in &cluster.nodes {
        assert!(!node.log_text().contains("campaigning now"), "{}", node.log_text());
    }

    cluster.nodes[leader].kill();
    let rest = cluster.urls(Some(leader));
    let new = eventually(Duration::from_secs(10), "a new leader", || {
        let s: Vec<_> = rest.iter().map(|u| status(ctl, u)).collect();
        s.iter().position(|st| st.is_some_and(|(me, l, _)| me == l))
    });
    let log =
        cluster.nodes.iter().enumerate().filter(|(i, _)| *i != leader).nth(new).expect("member").1.log_text();
    assert!(
        log.contains(&format!(
            "leader {leader_id:x}'s peer URL refuses connections (its process is gone): campaigning now"
        )),
        "{log}"
    );
    let (ok, _, err) = etcdctl(ctl, &rest, &["put", "after", "x"]);
    assert!(ok, "{err}");
}
