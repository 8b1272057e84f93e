//! The console under the same faults: its dashboard and a watch tail keep working, say what is
//! wrong, reconnect, and never stop answering keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{wait_leader, workload, Cluster};
use crate::support::require_tool;
use crate::support::tmux::{leader_name, pane_command, Tmux};

/// The highest /tail/ number on the screen.
fn newest_tail(screen: &str) -> Option<u64> {
    screen.split("/tail/").skip(1).filter_map(|rest| rest.get(..6).and_then(|d| d.parse().ok())).max()
}

/// The revision in the tail's "watching since revision N".
fn watching_since(screen: &str) -> Option<i64> {
    let rest = screen.split("watching since revision ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The console answers a key at once: the help overlay opens and closes.
fn answers_keys(tmux: &Tmux, when: &str) {
    tmux.keys(&["?"]);
    tmux.wait_for(&format!("the help overlay ({when})"), Duration::from_secs(3), |s| s.contains("row above"));
    tmux.keys(&["Escape"]);
    tmux.wait_for(&format!("the help closed ({when})"), Duration::from_secs(3), |s| !s.contains("row above"));
}

/// Waits until the tail shows a write acknowledged after this call began.
fn tail_is_current(tmux: &Tmux, acked: &AtomicU64, when: &str) -> String {
    let target = acked.load(Relaxed) + 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.load(Relaxed) < target {
        assert!(Instant::now() < deadline, "no write was acknowledged for 20 s ({when})");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.wait_for(&format!("the tail to show /tail/{target:06} ({when})"), Duration::from_secs(20), |s| {
        newest_tail(s).is_some_and(|n| n >= target)
    })
}

#[test]
fn the_console_keeps_its_dashboard_and_watch_tail_working_through_faults() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut cluster = Cluster::start(&rt, 3, 11);
    let urls = cluster.client_urls.clone();

    // A writer puts /tail/000001, /tail/000002, ... every 50 ms through whichever member answers.
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, urls) = (acked.clone(), stop.clone(), urls.clone());
        rt.spawn(async move {
            let mut ep = 0;
            let mut client = None;
            let mut n = 1u64;
            while !stop.load(Relaxed) {
                if client.is_none() {
                    client = workload::connect(&urls[ep % urls.len()]).await;
                }
                let ok = match client.as_mut() {
                    Some(c) => matches!(
                        tokio::time::timeout(
                            Duration::from_secs(2),
                            c.put(format!("/tail/{n:06}"), "v", None)
                        )
                        .await,
                        Ok(Ok(_))
                    ),
                    None => false,
                };
                if ok {
                    acked.store(n, Relaxed);
                    n += 1;
                } else {
                    client = None;
                    ep += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let endpoints = urls.join(",");
    let tmux =
        Tmux::start(&pane_command(&endpoints, "--refresh-interval 500ms --command-timeout 2s"), 120, 30);
    let screen = tmux.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("members 3/3 up") && s.contains("★ leader")
    });

    // A frozen leader (SIGSTOP): the dashboard goes on without it and names the new leader.
    let old = leader_name(&screen).expect("a leader on the dashboard");
    let paused: usize = old.trim_start_matches('n').parse::<usize>().expect("n<number>") - 1;
    cluster.signal(paused, true);
    answers_keys(&tmux, "a member frozen");
    let during = tmux.wait_for("the frozen leader replaced", Duration::from_secs(20), |s| {
        s.contains("members 2/3 up")
            && leader_name(s).is_some_and(|l| l != old)
            && s.contains("★ leader")
            && s.contains("quorum ok")
    });
    assert!(during.contains(&format!("member {old} (")), "the frozen member is named:\n{during}");
    cluster.signal(paused, false);
    tmux.wait_for("the frozen member back", Duration::from_secs(20), |s| s.contains("members 3/3 up"));

    // A watch tail on the writes, current.
    tmux.keys(&[":", "watch /tail/", "Enter"]);
    let screen = tail_is_current(&tmux, &acked, "a new tail");
    let mut since = watching_since(&screen).expect("the tail's status");

    // Each member cut off in turn: the one the tail reads from ends its watch ("no leader"), the
    // tail reconnects through another member from where it was, and stays current.
    let mut reconnected = 0;
    for i in 0..3 {
        cluster.net.isolate(&[i]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let s = tmux.screen();
            if let Some(now) = watching_since(&s).filter(|n| *n != since) {
                since = now;
                reconnected += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        answers_keys(&tmux, &format!("n{} cut off", i + 1));
        tail_is_current(&tmux, &acked, &format!("n{} cut off", i + 1));
        cluster.net.heal();
        wait_leader(&rt, &urls, &[], Duration::from_secs(10)).expect("a leader after healing");
    }
    assert!(reconnected >= 1, "the tail never moved to another member");
    let screen = tmux.screen();
    if let Some(now) = watching_since(&screen) {
        since = now;
    }

    // Two members killed: the quorum is lost; the tail says it is reconnecting (no member has a
    // leader to serve it), the console still answers keys; both back, the same tail catches up.
    let leader = wait_leader(&rt, &urls, &[], Duration::from_secs(10)).expect("a leader");
    let victims = [leader, (leader + 1) % 3];
    for &v in &victims {
        cluster.nodes[v].kill();
    }
    tmux.wait_for("the tail reconnecting", Duration::from_secs(20), |s| {
        s.contains("reconnecting (resumes at revision")
    });
    answers_keys(&tmux, "quorum lost");
    for &v in &victims {
        cluster.nodes[v].respawn();
    }
    let screen = tail_is_current(&tmux, &acked, "after the quorum came back");
    assert!(watching_since(&screen).is_some_and(|n| n > since), "the tail resumed later on:\n{screen}");
    tmux.keys(&[":members", "Enter"]);
    tmux.wait_for("the members view, healthy", Duration::from_secs(30), |s| {
        s.contains("members 3/3 up") && s.contains("quorum ok") && s.contains("★ leader")
    });

    tmux.keys(&["q"]);
    let end = tmux.wait_for("the console to exit", Duration::from_secs(10), |s| s.contains("etcdeck exited"));
    assert!(end.contains("etcdeck exited 0"), "{end}");
    stop.store(true, Relaxed);
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), writer).await });
}
