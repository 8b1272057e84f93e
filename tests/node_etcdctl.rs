//! Parity: one scripted etcdctl 3.4 session, run against real etcd and against `etcdeck node`, must
//! print the same thing once IDs, ports, timings and sizes are masked. The session covers KV, MVCC
//! history and compaction, Txn, leases (grant, attach, keepalive, time-to-live, list, revoke, expiry),
//! watch with history replay, Maintenance and Cluster.

use std::path::Path;
use std::time::Duration;

use regex::Regex;

use crate::support::{
    etcd_tools, etcdctl_command as etcdctl, record_step, transcript_step, words, EtcdCluster, EtcdeckNode,
};

enum Step {
    /// etcdctl arguments; `{lease}` is replaced with the lease the last `lease grant` printed.
    Run(&'static str),
    /// The same, with this on stdin.
    Stdin(&'static str, String),
    /// A watch left running until it printed this many lines (or 10 s passed), then stopped.
    Watch(&'static str, usize),
    Sleep(u64),
}

use Step::*;

fn session() -> Vec<Step> {
    vec![
        Run("put foo bar"),
        Run("put foo baz --prev-kv"),
        Run("get foo"),
        Run("get foo -w json"),
        Run("put a 1"),
        Run("put b 2"),
        Run("put c 3"),
        Run("put a/x 4"),
        Run("get a c"),
        Run("get --prefix a"),
        Run("get --from-key b"),
        Run("get --prefix --limit 2 -w json \"\""),
        Run("get --prefix --order DESCEND --sort-by MODIFY \"\""),
        Run("get --prefix --order ASCEND --sort-by VALUE --keys-only \"\""),
        Run("get --prefix --count-only -w json \"\""),
        Run("get --prefix --print-value-only a"),
        Run("get --prefix --min-mod-rev 5 --max-mod-rev 6 \"\""),
        Run("get --prefix --min-create-rev 6 \"\""),
        Run("get foo --rev 2"),
        Run("get foo --rev 99"),
        Run("get foo --consistency s"),
        Run("get missing"),
        Run("put \"\" v"),
        Run("put foo --ignore-value"),
        Run("get foo"),
        Run("del foo --prev-kv"),
        Run("del missing"),
        Run("del --prefix a"),
        Run("get --prefix \"\" -w json"),
        Stdin("txn", "mod(\"b\") > \"0\"\nvalue(\"c\") = \"3\"\n\nput t1 yes\nget b\n\nput t1 no\n\n".into()),
        Stdin("txn", "version(\"b\") = \"5\"\n\nput t2 yes\n\nput t2 no\ndel c\n\n".into()),
        Stdin("txn -w json", "create(\"t1\") != \"0\"\n\nget t1\n\n\n".into()),
        Stdin("txn", "\nput dup 1\nput dup 2\n\n\n".into()),
        Run("get --prefix t"),
        Run("compaction 5"),
        Run("get foo --rev 4"),
        Run("get b --rev 5"),
        Run("compaction 3"),
        Run("compaction --physical 8"),
        Watch("watch --rev 8 --prefix \"\" --prev-kv", 8),
        Watch("watch --rev 2 foo", 3),
        Run("endpoint hashkv"),
        Run("lease grant 100"),
        Run("put lk lv --lease={lease}"),
        Run("get lk -w json"),
        Run("lease timetolive {lease} --keys"),
        Run("lease list"),
        Run("lease keep-alive --once {lease}"),
        Run("put lk lv2 --ignore-lease"),
        Run("lease revoke {lease}"),
        Run("get lk"),
        Run("lease timetolive {lease}"),
        Run("lease revoke {lease}"),
        Run("lease keep-alive --once {lease}"),
        Run("put lk lv --lease=1234"),
        Run("lease grant 1"),
        Run("put short v --lease={lease}"),
        Sleep(3500),
        Run("get short"),
        Run("lease list"),
        Run("endpoint hashkv --rev 12"),
        Run("endpoint status -w json"),
        Run("endpoint health"),
        Run("member list"),
        Run("member list -w json"),
        Run("alarm list"),
        Run("alarm disarm"),
        Run("defrag"),
        Run("get --prefix --keys-only \"\""),
        Run("endpoint hashkv --rev 12"),
        Run("snapshot save {dir}/snap.db"),
        Stdin("put big", "x".repeat(2 * 1024 * 1024 - 4096)),
        Run("move-leader 1"),
    ]
}

/// Runs the session; returns the transcript with what differs by nature masked.
fn transcript(tool: &Path, endpoint: &str, dir: &Path) -> String {
    let mut out = String::new();
    let mut lease = String::new();
    // With the scheme, as runbooks write it: etcdctl's per-endpoint commands then send it in the
    // HTTP/2 :authority (see node/rpc/authority.rs).
    let host = endpoint.trim_start_matches("http://").to_string();
    for step in session() {
        let (text, stdin, watch_lines) = match step {
            Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                continue;
            }
            Run(t) => (t, None, None),
            Stdin(t, input) => (t, Some(input), None),
            Watch(t, n) => (t, None, Some(n)),
        };
        let args: Vec<String> = words(text)
            .into_iter()
            .map(|w| w.replace("{lease}", &lease).replace("{dir}", &dir.display().to_string()))
            .collect();
        let mut cmd = etcdctl(tool, endpoint);
        cmd.args(&args);
        let answer =
            transcript_step(cmd, stdin.as_deref(), watch_lines.map(|n| (n, Duration::from_secs(10))));
        record_step(&mut out, &mut lease, text, answer);
    }
    mask(&out.replace(&host, "<endpoint>").replace(&dir.display().to_string(), "<dir>"))
}

/// Masks what legitimately differs between two servers: IDs, raft terms and indexes, sizes, versions,
/// timings.
fn mask(text: &str) -> String {
    let rules = [
        // etcdctl prints IDs with %x: a leading zero nibble makes them shorter than 16 digits.
        (r"\b[0-9a-f]{12,16}\b", "<id>"),
        (r#""(cluster_id|member_id|ID|leader|lease)":\d+"#, "\"$1\":<id>"),
        (r#""(raft_term|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":\d+"#, "\"$1\":<n>"),
        (r#""version":"[0-9.]+""#, "\"version\":\"<v>\""),
        (r#""name":"[^"]*""#, "\"name\":\"<name>\""),
        (r#""peerURLs":\["[^"]*"\]"#, "\"peerURLs\":[<peer>]"),
        (r"took = \S+", "took = <t>"),
        (r"remaining\(\d+s\)", "remaining(<n>s)"),
        (r"http://(localhost|127\.0\.0\.1):\d+", "<url>"),
        (r", (etcd-1|parity), ", ", <name>, "),
    ];
    let mut out = text.to_string();
    for (pattern, with) in rules {
        out = Regex::new(pattern).expect("mask pattern").replace_all(&out, with).into_owned();
    }
    out
}

#[test]
fn an_etcdctl_session_prints_the_same_against_etcd_and_etcdeck() {
    let Some(tools) = etcd_tools() else { return };
    let etcd_dir = tempfile::tempdir().expect("temp dir");
    let etcd = EtcdCluster::start(&tools, 1);
    etcd.wait_healthy(Duration::from_secs(20));
    let expected = transcript(&tools.etcdctl, &etcd.members[0].client_url, etcd_dir.path());
    drop(etcd);

    let node_dir = tempfile::tempdir().expect("temp dir");
    let node = EtcdeckNode::start("parity", &[]);
    let got = transcript(&tools.etcdctl, &node.client_url, node_dir.path());
    if expected != got {
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(20)
            .map(|(a, b)| format!("etcd:    {a}\netcdeck: {b}"))
            .collect();
        panic!(
            "transcripts differ:\n{}\n\n--- etcd ---\n{expected}\n--- etcdeck ---\n{got}\n--- node log ---\n{}",
            diff.join("\n"),
            node.log_text()
        );
    }
}
