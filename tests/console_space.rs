//! `:space` against a real etcd 3.4, in tmux: where the space goes under /registry/ (per resource,
//! then per namespace), the history kept since the last compaction, progress, and cancel.

use std::time::Duration;

use crate::support::tmux::{pane_command, Tmux};
use crate::support::{etcd_tools, require_tool, EtcdCluster};

const PODS: usize = 50_000;
const VALUE: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_shows_where_the_bytes_and_the_history_go_and_cancels() {
    let Some(tools) = etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(30));
    let endpoint = cluster.client_urls()[0].clone();
    let mut client = etcd_client::Client::connect([endpoint.as_str()], None).await.expect("connect");
    let value = "x".repeat(VALUE);
    let keys: Vec<String> = (0..PODS).map(|i| format!("/registry/pods/ns{}/pod-{i:05}", i % 4)).collect();
    for chunk in keys.chunks(100) {
        let ops: Vec<etcd_client::TxnOp> =
            chunk.iter().map(|k| etcd_client::TxnOp::put(k.as_str(), value.as_str(), None)).collect();
        client.txn(etcd_client::Txn::new().and_then(ops)).await.expect("txn");
    }
    // A first version of a ConfigMap, then a compaction: what is before it is gone.
    client.put("/registry/configmaps/kube-system/big", "v0", None).await.expect("put");
    let compacted = client
        .put("/registry/namespaces/ns0", "ns", None)
        .await
        .expect("put")
        .header()
        .expect("header")
        .revision();
    client.compact(compacted, None).await.expect("compact");
    // Three more versions of the ConfigMap after it. etcd keeps them and the version that was live at
    // the compaction: three revisions besides the live one.
    for v in ["v1", "v2", "v3-live"] {
        client.put("/registry/configmaps/kube-system/big", v.repeat(100), None).await.expect("put");
    }

    let tmux = Tmux::start(&pane_command(&endpoint, ""), 150, 40);
    tmux.wait_for("the dashboard", Duration::from_secs(20), |s| s.contains("members 1/1 up"));
    tmux.command("space /registry/");
    let screen = tmux.wait_for("the scan to finish", Duration::from_secs(60), |s| s.contains("read in"));
    let total = PODS + 2;
    assert!(screen.contains(&format!("{total} keys,")), "{screen}");
    assert!(screen.contains(&format!("since the compaction at revision {compacted}")), "{screen}");
    // A row's words, without the selection marker and the subgroup's branch.
    let row = |screen: &str, name: &str| -> Vec<String> {
        let words = |l: &str| -> Vec<String> {
            let l = l.replace(['│', '▶', '└'], " ");
            l.split_whitespace().map(str::to_owned).collect()
        };
        screen
            .lines()
            .map(words)
            .find(|w| w.first().map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("a row for {name}:\n{screen}"))
    };
    // NAME KEYS LIVE(2 words) % HISTORY(2 words) REVS
    let pods = row(&screen, "pods");
    assert_eq!(pods[1], PODS.to_string(), "{pods:?}");
    assert_eq!(pods.last().map(String::as_str), Some("0"), "no pod changed since the compaction: {pods:?}");
    let cms = row(&screen, "configmaps");
    assert_eq!((cms[1].as_str(), cms.last().map(String::as_str)), ("1", Some("3")), "{cms:?}");
    // The largest first: pods, with its namespaces under it on Enter.
    assert!(screen.find("pods").unwrap_or(usize::MAX) < screen.find("configmaps").unwrap_or(0), "{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("pods' namespaces", Duration::from_secs(5), |s| s.contains("└ ns3"));
    assert_eq!(row(&screen, "ns0")[1], (PODS / 4).to_string(), "{screen}");

    // Again, cancelled while it runs: it says so, and what it had is kept.
    tmux.keys(&["r"]);
    tmux.wait_for("the progress bar", Duration::from_secs(10), |s| s.contains("Esc cancels"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the cancel", Duration::from_secs(5), |s| s.contains("✗ stopped (cancelled)"));
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(10));
}
