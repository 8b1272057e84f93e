//! `etcdeck bench`: every subcommand against an etcdeck node and against etcd, read back as JSON.

use crate::support::{etcd_tools, etcdeck, EtcdCluster, EtcdeckNode};

/// Runs `etcdeck bench <args> -w json` against `endpoint`; returns its reports.
fn bench(endpoint: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let out = etcdeck()
        .arg(format!("--endpoints={endpoint}"))
        .arg("bench")
        .args(args)
        .args(["-w", "json"])
        .output()
        .expect("run etcdeck bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench {args:?}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_str(&stdout).expect("JSON") {
        serde_json::Value::Array(reports) => reports,
        report => vec![report],
    }
}

fn requests(report: &serde_json::Value) -> u64 {
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    report["requests"].as_u64().expect("requests")
}

/// Each workload, small, with its request counts checked.
fn every_workload(endpoint: &str) {
    let put = bench(
        endpoint,
        &["put", "--clients=8", "--conns=2", "--total=400", "--key-space-size=100", "--val-size=64"],
    );
    assert_eq!(requests(&put[0]), 400);
    let p99 = put[0]["percentiles"][6]["latency"].as_f64().expect("p99");
    assert!(p99 > 0.0 && p99 <= put[0]["slowest"].as_f64().expect("slowest"), "{}", put[0]);
    let txn =
        bench(endpoint, &["txn-put", "--clients=4", "--total=100", "--txn-ops=4", "--key-space-size=1000"]);
    assert_eq!(requests(&txn[0]), 100);
    for consistency in ["l", "s"] {
        let range = bench(
            endpoint,
            &["range", "a", "z", "--clients=4", "--total=200", &format!("--consistency={consistency}")],
        );
        assert_eq!(requests(&range[0]), 200);
    }
    let keepalive = bench(endpoint, &["lease-keepalive", "--clients=4", "--total=200"]);
    assert_eq!(requests(&keepalive[0]), 200);
    // 2 streams x 5 watchers on 2 keys, 20 puts: each put reaches the 5 watchers of its key.
    let watch = bench(
        endpoint,
        &[
            "watch",
            "--clients=2",
            "--conns=2",
            "--streams=2",
            "--watch-per-stream=5",
            "--watched-key-total=2",
            "--sequential-keys",
            "--key-space-size=2",
            "--put-total=20",
        ],
    );
    assert_eq!(watch.len(), 2, "creation and events");
    assert_eq!(requests(&watch[0]), 10, "{}", watch[0]);
    assert_eq!(requests(&watch[1]), 100, "{}", watch[1]);
    let latency = bench(endpoint, &["watch-latency", "--clients=3", "--total=20", "--put-rate=200"]);
    assert_eq!(requests(&latency[0]), 60, "a watcher per client, an event per put");
}

#[test]
fn every_benchmark_runs_against_an_etcdeck_node() {
    let node = EtcdeckNode::start("bench", &[]);
    every_workload(&node.client_url);
    // The text is etcd benchmark's.
    let out = etcdeck()
        .args([&format!("--endpoints={}", node.client_url), "bench", "put", "--total=50", "--precise"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for part in [
        "\nSummary:\n  Total:\t",
        "  Requests/sec:\t",
        "\nResponse time histogram:\n",
        "\nLatency distribution:\n  10% in ",
    ] {
        assert!(text.contains(part), "{part:?} in:\n{text}");
    }
    // A key size too small for the key space is refused before anything is written.
    let out = etcdeck()
        .args([
            &format!("--endpoints={}", node.client_url),
            "bench",
            "put",
            "--key-size=1",
            "--key-space-size=1000",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key-size 1 is too small"), "{out:?}");
}

#[test]
fn every_benchmark_runs_against_etcd() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(std::time::Duration::from_secs(30));
    let endpoints = cluster.client_urls().join(",");
    every_workload(&endpoints);
    // --target-leader: every connection to the leader.
    let put = bench(&endpoints, &["--target-leader", "put", "--clients=4", "--conns=2", "--total=50"]);
    assert_eq!(requests(&put[0]), 50);
}
