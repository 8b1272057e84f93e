//! `:mirror` in tmux: the console on a mirror's destination shows the mirror's checkpoint (what it
//! mirrors, from which cluster, how far it is), and marks it not running once it stops writing.

use std::process::Stdio;
use std::time::Duration;

use crate::support::tmux::{pane_command, Tmux};
use crate::support::{etcdeck, require_tool, ChildGuard, EtcdeckNode};

#[test]
fn mirror_view_shows_a_running_mirror_from_the_destination() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let source = EtcdeckNode::start("src", &[]);
    let dest = EtcdeckNode::start("dst", &[]);
    let (rt, mut c) = crate::support::blocking_client(&source.client_url);
    for i in 0..20 {
        rt.block_on(c.put(format!("/app/k{i}"), "v", None)).unwrap();
    }
    let mut mirror = ChildGuard(
        etcdeck()
            .args(["mirror", "--from", &source.client_url, "--to", &dest.client_url])
            .args(["--prefix", "/app/", "--dest-prefix", "/standby/app/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tmux = Tmux::start(&pane_command(&dest.client_url, ""), 150, 30);
    tmux.wait_for("the dashboard", Duration::from_secs(20), |s| s.contains("members 1/1 up"));
    tmux.command("mirror");
    let head = rt.block_on(c.put("/app/last", "v", None)).unwrap().header().unwrap().revision();
    let screen = tmux.wait_for("the mirror, caught up", Duration::from_secs(20), |s| {
        s.contains("caught up") && s.contains(&format!("every source revision up to {head} is here"))
    });
    assert!(screen.contains("mirrors into this cluster (1)"), "{screen}");
    assert!(screen.contains("/standby/app/") && screen.contains("/app/"), "{screen}");
    assert!(screen.contains(&format!("at {}", source.client_url)), "{screen}");
    assert!(screen.contains("checkpoint __etcdeck_mirror//standby/app/"), "{screen}");
    let _ = mirror.0.kill();
    let _ = mirror.0.wait();
    // No heartbeat for 30 s: the row says the mirror may not be running.
    let screen = tmux.wait_for("the stopped mirror", Duration::from_secs(45), |s| s.contains("not running?"));
    assert!(screen.contains("a running mirror writes it at least every 10 s"), "{screen}");
}
