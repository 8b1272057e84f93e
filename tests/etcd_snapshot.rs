//! etcd's snapshot files read by etcdeck: `etcdeck snapshot status` of a snapshot saved from real
//! etcd 3.4 (and of a copy of a member's db) prints what `etcdctl snapshot status` prints, and
//! damaged files give an error naming the offset, never a panic.

use std::path::Path;
use std::time::Duration;

use crate::support::{
    etcd_tools, etcdeck, free_port, run_etcdctl, EtcdCluster, EtcdTools, EtcdeckNode, RestoredEtcd,
};

/// `etcdctl snapshot status` and `etcdeck snapshot status` of `file`, in one output format.
fn both(etcdctl: &Path, file: &Path, format: &str) -> (String, String) {
    let (ok, theirs, err) =
        run_etcdctl(etcdctl, &[], &["snapshot", "status", &file.display().to_string(), "-w", format]);
    assert!(ok, "etcdctl snapshot status -w {format}: {err}");
    let out = etcdeck()
        .args(["snapshot", "status", &file.display().to_string(), "-w", format])
        .output()
        .expect("run etcdeck snapshot status");
    let ours = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "etcdeck snapshot status -w {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (theirs, ours)
}

/// etcdctl against one endpoint: (success, stdout, stderr).
pub(crate) type Ctl<'a> = dyn Fn(&[&str]) -> (bool, String, String) + 'a;

/// Data enough to need branch pages, overflow pages and every bucket etcd keeps: keys, tombstones,
/// a large value, a lease with a key, users and roles, a compaction. Returns the lease's ID.
pub(crate) fn fill(ctl: &Ctl) -> String {
    for i in 0..600 {
        let (ok, _, err) =
            ctl(&["put", &format!("/registry/pods/ns-{}/pod-{i:04}", i % 7), &"v".repeat(i % 300)]);
        assert!(ok, "{err}");
    }
    let (ok, _, err) = ctl(&["del", "--prefix", "/registry/pods/ns-3/"]);
    assert!(ok, "{err}");
    let big = "b".repeat(100_000);
    assert!(ctl(&["put", "big", &big]).0);
    let (ok, out, err) = ctl(&["lease", "grant", "600"]);
    assert!(ok, "{err}");
    let lease = out.split_whitespace().nth(1).expect("lease id").to_string();
    assert!(ctl(&["put", "--lease", &lease, "leased", "x"]).0);
    assert!(ctl(&["role", "add", "reader"]).0);
    assert!(ctl(&["role", "grant-permission", "reader", "read", "/registry/", "--prefix"]).0);
    assert!(ctl(&["user", "add", "alice:secret"]).0);
    assert!(ctl(&["user", "grant-role", "alice", "reader"]).0);
    assert!(ctl(&["compact", "100"]).0);
    assert!(ctl(&["put", "after-compaction", "y"]).0);

    lease
}

/// A one-member etcd filled by `fill`, and `etcdctl snapshot save` of it: the cluster, the lease's
/// ID, the temporary dir and the saved file in it.
pub(crate) fn filled_and_saved(
    tools: &EtcdTools,
) -> (EtcdCluster, String, tempfile::TempDir, std::path::PathBuf) {
    let cluster = EtcdCluster::start(tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let lease = fill(&|args| cluster.etcdctl(args));
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("etcd.snapshot");
    let (ok, _, err) = cluster.etcdctl(&["snapshot", "save", &saved.display().to_string()]);
    assert!(ok, "{err}");
    (cluster, lease, dir, saved)
}

#[test]
fn status_of_etcds_snapshots_and_db_copies_reads_as_etcdctls() {
    let Some(tools) = etcd_tools() else { return };
    let (mut cluster, _, dir, saved) = filled_and_saved(&tools);
    for format in ["simple", "table", "json"] {
        let (theirs, ours) = both(&cluster.etcdctl, &saved, format);
        assert_eq!(ours, theirs, "-w {format} of a saved snapshot");
    }

    // A copy of the member's db (no SHA-256 trailer, a preallocated tail, no freelist page), taken
    // after kill -9.
    cluster.kill(0);
    let copy = dir.path().join("db");
    std::fs::copy(cluster.dir().join("etcd-1.etcd/member/snap/db"), &copy).expect("copy the member's db");
    for format in ["simple", "json"] {
        let (theirs, ours) = both(&cluster.etcdctl, &copy, format);
        assert_eq!(ours, theirs, "-w {format} of a member's db");
    }

    damaged_files_are_refused_by_name_and_offset(&saved, dir.path());
}

/// Truncated and bit-flipped copies of a real snapshot: each gives the status or an error naming
/// the file, never a panic. (The reader is called in-process, so a panic fails the test.)
fn damaged_files_are_refused_by_name_and_offset(saved: &Path, dir: &Path) {
    let bytes = std::fs::read(saved).expect("read the snapshot");
    let damaged = dir.join("damaged.db");
    let (read, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let check = |what: &str, data: &[u8]| {
        std::fs::write(&damaged, data).expect("write");
        let result = std::panic::catch_unwind(|| etcdeck::etcd::snapshot::status(&damaged));
        match result {
            Ok(Ok(_)) => read.set(read.get() + 1),
            Ok(Err(e)) => {
                refused.set(refused.get() + 1);
                let text = e.to_string();
                assert!(
                    text.starts_with(&damaged.display().to_string()) && text.contains("at offset"),
                    "{what}: {text}"
                );
            }
            Err(_) => panic!("{what}: the reader panicked"),
        }
    };
    // Cut anywhere: at every page boundary and in between.
    for cut in (0..bytes.len()).step_by(1531).chain([0, 15, 16, 4095, 4096, 8191]) {
        check(&format!("cut at {cut}"), &bytes[..cut.min(bytes.len())]);
    }
    // Bits flipped: about 1500 bytes spread over the file, one at a time, a different bit each;
    // and 0x7fffffff written at pseudo-random places (oversized counts, lengths and page ids).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let step = (bytes.len() / 1500).max(97);
    for at in (0..bytes.len()).step_by(step) {
        let mut copy = bytes.clone();
        copy[at] ^= 1 << (at % 8);
        check(&format!("bit {} of byte {at}", at % 8), &copy);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut wild = bytes.clone();
        let at = (seed as usize) % bytes.len().saturating_sub(4).max(1);
        wild[at..at + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
        check(&format!("0x7fffffff at {at}"), &wild);
    }
    // A file that is not bbolt at all.
    check("text", b"hello, this is not a database");
    // Damage in a free page or a value still reads; damage in the structure must be caught.
    eprintln!(
        "damaged copies of a {} byte snapshot: {} read, {} refused",
        bytes.len(),
        read.get(),
        refused.get()
    );
    assert!(
        refused.get() > read.get() / 10 && read.get() > 0,
        "{} read, {} refused",
        read.get(),
        refused.get()
    );
    let out = etcdeck()
        .args(["snapshot", "status", &dir.join("nothing").display().to_string()])
        .output()
        .expect("run");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("No such file"),
        "{out:?}"
    );
}

/// What a client sees of a member's data, to compare etcd with the etcdeck node restored from its
/// snapshot: every key with its revisions, version and lease; the KV hash at the revision; the
/// lease; the users and roles.
pub(crate) fn seen(etcdctl: &Path, url: &str, lease: &str) -> Vec<String> {
    let ctl = |args: &[&str]| {
        let (ok, out, err) = run_etcdctl(etcdctl, &[url.to_string()], args);
        assert!(ok, "etcdctl {args:?} at {url}: {err}");
        out
    };
    let all: serde_json::Value =
        serde_json::from_str(&ctl(&["get", "", "--from-key", "-w", "json"])).expect("json");
    let revision = all["header"]["revision"].as_i64().expect("revision");
    let hash: serde_json::Value =
        serde_json::from_str(&ctl(&["endpoint", "hashkv", "--rev", &revision.to_string(), "-w", "json"]))
            .expect("json");
    let ttl = ctl(&["lease", "timetolive", lease]);
    vec![
        format!("revision {revision}"),
        format!("kvs {}", all["kvs"]),
        format!("count {}", all["count"]),
        format!("hashkv {} compact {}", hash[0]["HashKV"]["hash"], hash[0]["HashKV"]["compact_revision"]),
        ttl.split(", remaining").next().unwrap_or_default().to_string(),
        ctl(&["user", "get", "alice"]),
        ctl(&["role", "get", "reader"]),
        ctl(&["user", "list"]),
    ]
}

#[test]
fn an_etcd_snapshot_restores_into_a_node_that_serves_what_etcd_served() {
    let Some(tools) = etcd_tools() else { return };
    let (mut cluster, lease, dir, saved) = filled_and_saved(&tools);
    let before = seen(&cluster.etcdctl, &cluster.members[0].client_url, &lease);

    let peer = format!("http://127.0.0.1:{}", free_port());
    let data = dir.path().join("n1.etcd");
    let restore = |file: &Path, extra: &[&str]| {
        let mut cmd = etcdeck();
        cmd.args(["snapshot", "restore", &file.display().to_string(), "--name", "n1"]);
        cmd.args(["--data-dir", &data.display().to_string(), "--initial-cluster", &format!("n1={peer}")]);
        cmd.args(["--initial-advertise-peer-urls", &peer]).args(extra);
        cmd.output().expect("run etcdeck snapshot restore")
    };
    // A snapshot whose SHA-256 does not match is refused in etcdctl's words, and nothing is written.
    let mut bytes = std::fs::read(&saved).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let bad = dir.path().join("bad.snapshot");
    std::fs::write(&bad, &bytes).expect("write");
    let out = restore(&bad, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expected sha256 ["), "{err}");
    assert!(!data.exists(), "a refused restore wrote {}", data.display());

    let out = restore(&saved, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("imported etcd's backend"), "{err}");
    let client = format!("http://127.0.0.1:{}", free_port());
    let flags = [
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=n1={peer}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut node = EtcdeckNode::spawn_at("n1", &data, &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    let after = seen(&cluster.etcdctl, &client, &lease);
    eprintln!(
        "etcd: {} · {} · {}; restored node: {} · {}",
        before[0], before[3], before[4], after[0], after[3]
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, b, "etcd served the first, the restored node the second");
    }
    let (ok, _, err) =
        run_etcdctl(&cluster.etcdctl, std::slice::from_ref(&client), &["put", "after-restore", "z"]);
    assert!(ok, "the restored node takes writes: {err}");
    node.kill();

    // A copy of the member's db (kill -9, no SHA-256): refused without --skip-hash-check, in
    // etcdctl's words and writing nothing; restored with it, the node serves the same.
    let etcdctl = cluster.etcdctl.clone();
    cluster.kill(0);
    let copy = dir.path().join("db");
    std::fs::copy(cluster.dir().join("etcd-1.etcd/member/snap/db"), &copy).expect("copy the member's db");
    std::fs::remove_dir_all(&data).expect("remove the first restore");
    let out = restore(&copy, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("snapshot missing hash but --skip-hash-check=false"),
        "{err}"
    );
    assert!(!data.exists(), "a refused restore wrote {}", data.display());
    let out = restore(&copy, &["--skip-hash-check"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut node = EtcdeckNode::spawn_at("n1", &data, &client, &flags);
    node.wait_serving(Duration::from_secs(30));
    let from_copy = seen(&etcdctl, &client, &lease);
    for (b, a) in before.iter().zip(&from_copy) {
        assert_eq!(a, b, "etcd served the first, the node restored from its db copy the second");
    }
    node.kill();
}

#[test]
fn a_nodes_snapshot_is_etcds_format_and_etcd_restores_and_serves_it() {
    let Some(tools) = etcd_tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let client = format!("http://127.0.0.1:{}", free_port());
    let mut node = EtcdeckNode::spawn_at("n1", &dir.path().join("node"), &client, &[]);
    node.wait_serving(Duration::from_secs(30));
    let url = [client.clone()];
    let lease = fill(&|args| run_etcdctl(&tools.etcdctl, &url, args));
    let before = seen(&tools.etcdctl, &client, &lease);

    // etcdctl saves it and checks its SHA-256; its status reads the bbolt file (bbolt's own
    // integrity check included) and agrees with etcdeck's.
    let saved = dir.path().join("node.snapshot");
    let (ok, _, err) = run_etcdctl(&tools.etcdctl, &url, &["snapshot", "save", &saved.display().to_string()]);
    assert!(ok, "{err}");
    for format in ["simple", "json"] {
        let (theirs, ours) = both(&tools.etcdctl, &saved, format);
        assert_eq!(ours, theirs, "-w {format} of a node's snapshot");
    }

    // etcdctl restores it and etcd serves what the node served.
    let peer = format!("http://127.0.0.1:{}", free_port());
    let data = dir.path().join("etcd.etcd");
    let etcd_client = format!("http://127.0.0.1:{}", free_port());
    let initial_cluster = format!("e1={peer}");
    let member = RestoredEtcd {
        name: "e1",
        data_dir: &data,
        client_url: &etcd_client,
        peer_url: &peer,
        initial_cluster: &initial_cluster,
        token: None,
    };
    member.restore(&tools.etcdctl, &saved);
    node.kill();
    let log = dir.path().join("etcd.log");
    let etcd = member.start(&tools.etcd, &log, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !run_etcdctl(&tools.etcdctl, std::slice::from_ref(&etcd_client), &["endpoint", "health"]).0 {
        assert!(
            std::time::Instant::now() < deadline,
            "etcd did not come up on the restored dir:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = seen(&tools.etcdctl, &etcd_client, &lease);
    eprintln!("node: {} · {}; etcd restored from it: {} · {}", before[0], before[3], after[0], after[3]);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, b, "the node served the first, etcd restored from its snapshot the second");
    }
    drop(etcd);
}
