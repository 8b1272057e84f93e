//! The dashboard against a real 3-member etcd cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcdeck::app::connection::ConnectConfig;
use etcdeck::app::runtime::Runtime;
use etcdeck::app::state::State;

use crate::support::{etcd_tools, etcdeck, free_port, EtcdCluster};

/// What etcdctl and the dashboard must agree on, per member ID.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct RaftView {
    leader: u64,
    term: u64,
    index: u64,
    applied: u64,
}

fn etcdctl_endpoint_status(cluster: &EtcdCluster) -> BTreeMap<u64, RaftView> {
    let (ok, out, err) = cluster.etcdctl(&["endpoint", "status", "--cluster", "-w", "json"]);
    assert!(ok, "etcdctl endpoint status failed: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("etcdctl prints JSON");
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|ep| {
            let s = &ep["Status"];
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("number expected: {v}"));
            (
                n(&s["header"]["member_id"]),
                RaftView {
                    leader: n(&s["leader"]),
                    term: n(&s["raftTerm"]),
                    index: n(&s["raftIndex"]),
                    applied: n(&s["raftAppliedIndex"]),
                },
            )
        })
        .collect()
}

fn dashboard_view(state: &State) -> BTreeMap<u64, RaftView> {
    state
        .members
        .iter()
        .filter_map(|m| {
            let s = m.status_ok()?;
            Some((
                m.info.id,
                RaftView {
                    leader: s.leader,
                    term: s.raft_term,
                    index: s.raft_index,
                    applied: s.raft_applied_index,
                },
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_agrees_with_etcdctl_endpoint_status() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    // Only the first endpoint is given: the dashboard finds the others through MemberList.
    let config = ConnectConfig::plain(&cluster.client_urls()[..1]).expect("config");

    // Members publish attributes through raft shortly after start, so indexes may still move; compare
    // only a dashboard taken between two identical etcdctl answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = etcdctl_endpoint_status(&cluster);
        let state = Runtime::refresh_once(config.clone()).await;
        let after = etcdctl_endpoint_status(&cluster);
        if before == after {
            assert_eq!(before.len(), 3, "etcdctl sees three members: {before:?}");
            assert_eq!(dashboard_view(&state), before, "dashboard and etcdctl disagree");
            let leader = before.values().next().map(|v| v.leader).expect("a leader");
            assert_eq!(state.leader_id(), Some(leader));
            assert!(state.problems().is_empty(), "healthy cluster, but: {:?}", state.problems());
            assert_eq!(state.members_up(), (3, 3));
            assert!(state.quorum_holds());
            let names: Vec<&str> = state.members.iter().map(|m| m.info.name.as_str()).collect();
            assert_eq!(names, ["etcd-1", "etcd-2", "etcd-3"]);
            return;
        }
        assert!(Instant::now() < deadline, "etcd's raft indexes never settled: {before:?} then {after:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_shows_it_down_and_the_new_leader_within_two_refreshes() {
    let Some(tools) = etcd_tools() else { return };
    let mut cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let interval = Duration::from_secs(2);
    let config = ConnectConfig::plain(&cluster.client_urls()).expect("config");
    let mut rt = Runtime::new(config, interval);
    let settled = rt
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |s| {
            s.has_complete_view() && s.problems().is_empty()
        })
        .await;
    assert!(settled, "dashboard never saw a healthy cluster: {:?}", rt.state.problems());
    let old_leader = rt.state.leader_id().expect("a leader");
    let old_name = rt.state.member(old_leader).expect("leader is a member").info.name.clone();

    cluster.kill(cluster.index_of(&old_name));
    let killed_at = Instant::now();
    // Rounds with this id or later started after the kill.
    let first_round_after_kill = rt.state.refresh.next_id;
    let shows_failover = |s: &State| {
        let old_down = s.member(old_leader).is_some_and(|m| matches!(m.status, Some(Err(_))));
        let new_leader = s.leader_id().is_some_and(|id| id != old_leader);
        old_down && new_leader
    };
    let mut seen_at = None;
    rt.run_until(Duration::from_secs(30), Duration::from_millis(100), |s| {
        if seen_at.is_none() && shows_failover(s) {
            seen_at = Some(killed_at.elapsed());
        }
        // Done when the second round started after the kill has completed.
        s.refresh.completed_id.is_some_and(|id| id > first_round_after_kill)
    })
    .await;
    let rounds_done =
        rt.state.refresh.completed_id.map_or(0, |id| (id + 1).saturating_sub(first_round_after_kill));
    assert!(rounds_done >= 2, "two refresh rounds did not complete: {:?}", rt.state.refresh);
    assert!(
        shows_failover(&rt.state),
        "after two refreshes the dashboard does not show {old_name} down and a new leader: {:?}",
        rt.state.problems()
    );
    let new_leader = rt.state.leader_id().expect("new leader");
    let problems = rt.state.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("member {old_name} ({old_leader:x}) is unreachable: "))),
        "the down member's error is shown: {problems:?}"
    );
    eprintln!(
        "failover seen on the dashboard {:.2}s after the kill (refresh every {interval:?}); new leader {new_leader:x}",
        seen_at.unwrap_or_default().as_secs_f64()
    );
}

fn etcdeck_status(endpoints: &str, json: bool) -> (i32, String, String) {
    let mut cmd = etcdeck();
    cmd.args(["status", "--endpoints", endpoints, "--dial-timeout", "1s", "--command-timeout", "2s"]);
    if json {
        cmd.args(["-w", "json"]);
    }
    let out = cmd.output().expect("run etcdeck status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn status_exits_nonzero_while_a_member_is_down_and_zero_once_it_is_back() {
    let Some(tools) = etcd_tools() else { return };
    let mut cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let endpoints = cluster.client_urls().join(",");

    let (code, out, err) = etcdeck_status(&endpoints, false);
    assert_eq!(code, 0, "healthy cluster: stdout {out}\nstderr {err}");
    assert!(out.contains("3/3 members up"), "{out}");
    assert!(out.contains("| etcd-1 "), "{out}");

    cluster.kill(2);
    let (code, out, err) = etcdeck_status(&endpoints, false);
    assert_ne!(code, 0, "a member is down, yet status passed: {out}");
    assert!(err.contains("member etcd-3 (") && err.contains("is unreachable"), "reason on stderr: {err}");
    assert!(err.trim_end().ends_with("Error: unhealthy cluster"), "{err}");
    let (code, out, _) = etcdeck_status(&endpoints, true);
    assert_ne!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).expect("-w json prints JSON");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["members_up"], 2);
    assert_eq!(report["members_total"], 3);
    let down: Vec<&serde_json::Value> =
        report["members"].as_array().expect("members").iter().filter(|m| m["health"] == "down").collect();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0]["name"], "etcd-3");

    cluster.restart(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, err) = etcdeck_status(&endpoints, true);
        if code == 0 {
            let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
            assert_eq!(report["healthy"], true);
            assert_eq!(report["members_up"], 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never passed after the restart: {err}\n{}",
            cluster.log_tail(2)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn status_against_nothing_fails_fast_with_the_reason() {
    // A port nobody listens on: refused at once, no etcd needed.
    let port = free_port();
    let started = Instant::now();
    let (code, _, err) = etcdeck_status(&format!("127.0.0.1:{port}"), false);
    assert_ne!(code, 0);
    assert!(err.contains("cannot list members: "), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "bounded by its timeouts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_member_shows_down_after_its_timeout_while_the_rest_keeps_refreshing() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let mut config = ConnectConfig::plain(&cluster.client_urls()).expect("config");
    config.command_timeout = Duration::from_secs(2);
    let mut rt = Runtime::new(config, Duration::from_millis(500));
    let settled = rt
        .run_until(Duration::from_secs(30), Duration::from_millis(50), |s| {
            s.has_complete_view() && s.problems().is_empty()
        })
        .await;
    assert!(settled, "{:?}", rt.state.problems());
    let leader = rt.state.leader_id().expect("leader");
    let frozen = rt.state.members.iter().position(|m| m.info.id != leader).expect("a follower");
    let frozen_id = rt.state.members[frozen].info.id;
    let frozen_name = rt.state.members[frozen].info.name.clone();

    cluster.signal(cluster.index_of(&frozen_name), "STOP");
    let rounds_before = rt.state.refresh.completed;
    let shows_timeout = |s: &State| {
        s.member(frozen_id)
            .and_then(|m| m.status.clone())
            .is_some_and(|r| r.is_err_and(|e| e.starts_with("context deadline exceeded")))
    };
    let seen = rt.run_until(Duration::from_secs(15), Duration::from_millis(50), shows_timeout).await;
    cluster.signal(cluster.index_of(&frozen_name), "CONT");
    assert!(seen, "the frozen member never showed its timeout: {:?}", rt.state.problems());
    // Rounds kept completing without it: each round skips a member whose request is still in flight.
    assert!(
        rt.state.refresh.completed >= rounds_before + 2,
        "rounds stalled behind the frozen member: {} then {}",
        rounds_before,
        rt.state.refresh.completed
    );
    // Once it is thawed it comes back.
    let back =
        rt.run_until(Duration::from_secs(15), Duration::from_millis(50), |s| s.problems().is_empty()).await;
    assert!(back, "after SIGCONT: {:?}", rt.state.problems());
}

/// The restore wizard's commands for etcd 3.4, run as an operator would paste them: every member
/// restored from one `etcdctl snapshot save` into its new data dir, then etcd started on those dirs
/// forms a new cluster holding the snapshot's keys.
#[test]
fn the_restore_wizards_etcdctl_commands_rebuild_a_real_etcd_cluster() {
    use etcdeck::app::restore::{RestorePlan, Tool};
    use std::process::{Command, Stdio};
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    for i in 0..3 {
        let (ok, _, err) = cluster.etcdctl(&["put", &format!("k{i}"), "before"]);
        assert!(ok, "{err}");
    }
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("backup.db");
    let first = cluster.client_urls()[0].clone();
    let (ok, _, err) = crate::support::run_etcdctl(
        &tools.etcdctl,
        std::slice::from_ref(&first),
        &["snapshot", "save", &file.display().to_string()],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cluster.etcdctl(&["put", "k-after", "not in the snapshot"]);
    assert!(ok, "{err}");

    // The new cluster on new ports, beside the old one.
    let ports: Vec<(u16, u16)> =
        (0..3).map(|_| (crate::support::free_port(), crate::support::free_port())).collect();
    let plan = RestorePlan {
        file: file.clone(),
        token: "etcd-cluster-restored-test".into(),
        members: ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| (format!("etcd-{}", i + 1), vec![format!("http://127.0.0.1:{peer}")]))
            .collect(),
        left_out: Vec::new(),
    };
    let bin_dir = tools.etcdctl.parent().expect("etcdctl's directory").display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let checked = etcdeck::app::snapshot::check_file(&file).expect("the snapshot checks out");
    assert_eq!(checked.format, etcdeck::app::snapshot::SnapshotFormat::EtcdSnapshot, "{}", checked.summary);
    for command in plan.commands(Tool::Etcdctl, Some(checked.format)) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(work.path())
            .env("PATH", &path)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let mut running = Vec::new();
    let mut clients = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let name = format!("etcd-{}", i + 1);
        let client_url = format!("http://127.0.0.1:{client}");
        let log = std::fs::File::create(work.path().join(format!("{name}.log"))).expect("log");
        let child = Command::new(&tools.etcd)
            .current_dir(work.path())
            .args([
                format!("--name={name}"),
                format!("--data-dir={}", RestorePlan::data_dir(&name)),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                "--heartbeat-interval=50".into(),
                "--election-timeout=500".into(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        running.push(crate::support::ChildGuard(child));
        clients.push(client_url);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let keys = loop {
        let (ok, out, err) =
            crate::support::run_etcdctl(&tools.etcdctl, &clients, &["get", "k", "--prefix", "--keys-only"]);
        if ok {
            break out;
        }
        assert!(Instant::now() < deadline, "the restored cluster never served: {err}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys, ["k0", "k1", "k2"], "the snapshot's keys, not the later one");
    let (ok, out, err) = crate::support::run_etcdctl(&tools.etcdctl, &clients, &["member", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    for (_, peer) in &ports {
        assert!(out.contains(&format!("http://127.0.0.1:{peer}")), "{out}");
    }
}
