//! The console as a person uses it: tmux runs it, send-keys types, capture-pane reads the screen.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::tmux::{demo_pane, leader_name, pane_command, pane_command_env, Tmux};
use crate::support::{
    blocking_client as client, etcd_tools, etcdeck_bin, free_port, require_tool, EtcdCluster, EtcdeckNode,
};

#[test]
fn dashboard_keys_resize_and_quit_restore_the_terminal() {
    let Some(tools) = etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let tmux = Tmux::start(&pane_command(&cluster.client_urls()[0], "--refresh-interval 500ms"), 80, 24);

    let screen = tmux.wait_for("a complete dashboard", Duration::from_secs(15), |s| {
        s.contains("members 3/3 up") && s.contains("★ leader") && s.contains("cluster healthy")
    });
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        assert!(screen.contains(name), "{name} missing:\n{screen}");
    }
    assert!(screen.contains("quorum ok"), "{screen}");

    tmux.keys(&["?"]);
    tmux.wait_for("the help overlay", Duration::from_secs(5), |s| s.contains("row above"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("help closed", Duration::from_secs(5), |s| !s.contains("row above"));

    tmux.keys(&["j", "Enter"]);
    let detail = tmux.wait_for("the detail pane", Duration::from_secs(5), |s| s.contains("(decimal "));
    assert!(detail.contains("member etcd-2"), "j then Enter opens etcd-2:\n{detail}");
    tmux.keys(&["Escape"]);

    tmux.resize(160, 48);
    tmux.wait_for("the wide layout", Duration::from_secs(5), |s| {
        s.contains("CLIENT URLS") && s.contains("VERSION")
    });
    tmux.resize(80, 24);
    tmux.wait_for("the narrow layout", Duration::from_secs(5), |s| {
        !s.contains("CLIENT URLS") && s.contains("LAG")
    });

    tmux.keys(&["q"]);
    let after = tmux.wait_exited_ok(Duration::from_secs(5));
    assert!(!after.contains("members 3/3"), "the alternate screen was left:\n{after}");
}

#[test]
fn ctrl_c_quits_even_while_every_endpoint_is_dead() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    // Nothing listens here: the console must still draw, show the error and quit at once.
    let port = free_port();
    let tmux = Tmux::start(&pane_command(&format!("127.0.0.1:{port}"), ""), 80, 24);
    tmux.wait_for("the error on screen", Duration::from_secs(10), |s| s.contains("cannot list members"));
    tmux.keys(&["C-c"]);
    let after = tmux.wait_exited_ok(Duration::from_secs(5));
    assert!(!after.contains("cannot list members"), "the alternate screen was left:\n{after}");
}

#[test]
fn a_user_keymap_in_the_xdg_config_dir_rebinds_keys() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("etcdeck")).expect("mkdir");
    std::fs::write(dir.path().join("etcdeck/keymap.toml"), "[keys]\nquit = [\"Z\"]\nhelp = [\"h\"]\n")
        .expect("write");
    let port = free_port();
    let env = format!("XDG_CONFIG_HOME={}", dir.path().display());
    let tmux = Tmux::start(&pane_command_env(&format!("127.0.0.1:{port}"), "", &env), 80, 24);
    tmux.wait_for("the footer with the user's keys", Duration::from_secs(10), |s| {
        s.contains("h help  Z quit")
    });
    tmux.keys(&["q"]);
    tmux.keys(&["h"]);
    let help = tmux.wait_for("help on h", Duration::from_secs(5), |s| s.contains("row above"));
    assert!(!help.contains("etcdeck exited"), "q no longer quits:\n{help}");
    tmux.keys(&["Z"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
}

#[test]
fn sigterm_quits_and_restores_the_terminal() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let tmux = Tmux::start(&pane_command(&endpoint, ""), 80, 24);
    tmux.wait_for("the dashboard", Duration::from_secs(10), |s| s.contains("cannot list members"));
    let pattern = format!("^{} --endpoints {endpoint}", etcdeck_bin());
    let out = Command::new("pkill").args(["-TERM", "-f", &pattern]).status().expect("pkill");
    assert!(out.success(), "etcdeck's process was not found");
    let after = tmux.wait_exited_ok(Duration::from_secs(5));
    assert!(!after.contains("cannot list members"), "the alternate screen was left:\n{after}");
}

/// examples/panic_in_console, which `cargo test` builds next to this test binary.
fn panic_fixture() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/main-<hash> -> target/<profile>/examples/panic_in_console
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    profile_dir.join("examples").join("panic_in_console")
}

#[test]
fn a_panic_restores_the_terminal_before_its_message() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let fixture = panic_fixture();
    if !fixture.is_file() {
        // A plain `cargo test` builds examples; `cargo test --test main` alone does not.
        let msg = format!("{} is not built (cargo build --examples)", fixture.display());
        if std::env::var(crate::support::REQUIRE_INTEROP).as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let command = format!(
        "env TERM=xterm-256color RUST_BACKTRACE=0 {}; echo \"fixture exited $?\"; stty -a | tr ' ' '\\n' | grep -x -- '-*icanon'; sleep 60",
        fixture.display()
    );
    let tmux = Tmux::start(&command, 100, 24);
    let after = tmux.wait_for("the fixture to exit and stty to answer", Duration::from_secs(10), |s| {
        s.contains("fixture exited") && s.lines().any(|l| l.trim().ends_with("icanon"))
    });
    assert!(after.contains("fixture exited 101"), "the panic's exit status: {after}");
    assert!(
        after.contains("deliberate panic inside the console's terminal mode"),
        "the panic message is printed on the normal screen, after the restore:\n{after}"
    );
    let icanon = after.lines().find(|l| l.trim().ends_with("icanon")).expect("stty line").trim();
    assert_eq!(icanon, "icanon", "raw mode is left (canonical input is back):\n{after}");
}

/// Writes `n` keys k/0000.. (and one JSON and one binary value) with etcd-client, in transactions.
fn seed_keys(endpoint: &str, n: usize) {
    let (rt, mut c) = client(endpoint);
    rt.block_on(async {
        let keys: Vec<String> = (0..n).map(|i| format!("k/{i:04}")).collect();
        for chunk in keys.chunks(100) {
            let ops: Vec<etcd_client::TxnOp> =
                chunk.iter().map(|k| etcd_client::TxnOp::put(k.as_str(), "v", None)).collect();
            let txn = etcd_client::Txn::new().and_then(ops);
            tokio::time::timeout(Duration::from_secs(5), c.txn(txn)).await.expect("in time").expect("txn");
        }
        let json = r#"{"spec":{"replicas":3,"image":"nginx"}}"#;
        tokio::time::timeout(Duration::from_secs(5), c.put("a/json", json, None))
            .await
            .expect("in time")
            .expect("put");
        tokio::time::timeout(Duration::from_secs(5), c.put("a/bin", vec![0u8, 1, 0xff, b'A'], None))
            .await
            .expect("in time")
            .expect("put");
    });
}

fn seed_value(endpoint: &str, key: &str, value: &str) {
    let (rt, mut c) = client(endpoint);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), c.put(key, value, None))
            .await
            .expect("in time")
            .expect("put");
    });
}

#[test]
fn the_key_browser_pages_through_keys_and_shows_values_on_an_etcdeck_node() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let node = crate::support::EtcdeckNode::start("browser", &[]);
    browse(&node.client_url);
}

#[test]
fn the_key_browser_pages_through_keys_and_shows_values_on_etcd() {
    let Some(tools) = etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    browse(&cluster.client_urls()[0]);
}

/// 1202 keys: the browser's first page, a JSON and a binary value, the next pages at one revision.
fn browse(endpoint: &str) {
    seed_keys(endpoint, 1200);
    // The editor a person would use, scripted: it changes nginx to httpd in the file it is given.
    let dir = tempfile::tempdir().expect("temp dir");
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i s/nginx/httpd/ \"$1\"\n").expect("editor script");
    std::process::Command::new("chmod").arg("+x").arg(&editor).status().expect("chmod");
    let env = format!("EDITOR={} XDG_CONFIG_HOME={}", editor.display(), dir.path().display());
    let tmux = Tmux::start(&pane_command_env(endpoint, "", &env), 100, 30);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));

    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("the first page", Duration::from_secs(10), |s| {
        s.contains("1202 keys at revision 15, 500 loaded")
    });
    assert!(screen.contains("▶ a/bin"), "{screen}");

    // Down to the JSON value: pretty-printed.
    tmux.keys(&["j", "Enter"]);
    let screen = tmux.wait_for("the JSON value", Duration::from_secs(10), |s| s.contains("\"replicas\": 3"));
    assert!(screen.contains("a/json (json detected, 39 bytes)"), "{screen}");
    tmux.keys(&["v"]);
    let screen =
        tmux.wait_for("the value as YAML", Duration::from_secs(5), |s| s.contains("(yaml, 39 bytes)"));
    assert!(screen.contains("  replicas: 3") && screen.contains("  image: nginx"), "{screen}");
    tmux.keys(&["k", "Enter"]);
    let screen =
        tmux.wait_for("the binary value", Duration::from_secs(10), |s| s.contains("(hex detected, 4 bytes)"));
    assert!(screen.contains("00 01 ff 41"), "{screen}");
    tmux.keys(&["Escape"]);
    // A key right after Escape would read as Alt+key: wait for the pane to close first.
    tmux.wait_for("the value pane to close", Duration::from_secs(5), |s| !s.contains("00 01 ff 41"));

    // The tree: one level at a time.
    tmux.keys(&["t"]);
    let screen = tmux.wait_for("the tree's top", Duration::from_secs(10), |s| {
        s.contains("(tree by \"/\")") && s.contains("row 1 of 2, 1202 keys")
    });
    assert!(screen.contains("▶ a/") && screen.contains("  k/"), "{screen}");
    tmux.keys(&["Enter"]);
    // The title changes before the level's keys arrive ("loading…"): wait for the rows.
    let screen = tmux.wait_for("the a/ level", Duration::from_secs(10), |s| {
        s.contains("keys: a/ (tree") && !s.contains("loading…")
    });
    assert!(screen.contains("▶ bin") && screen.contains("  json"), "{screen}");
    tmux.keys(&["Left"]);
    tmux.wait_for("the top again", Duration::from_secs(10), |s| s.contains("keys: all keys (tree"));
    tmux.keys(&["t"]);
    tmux.wait_for("the flat listing", Duration::from_secs(10), |s| s.contains("keys: all keys (flat)"));

    // To the end of what is loaded: the next pages come in, at the same revision.
    tmux.keys(&["G"]);
    tmux.wait_for("the second page", Duration::from_secs(10), |s| s.contains("1000 loaded"));
    tmux.keys(&["G"]);
    tmux.wait_for("the last page", Duration::from_secs(10), |s| {
        s.contains("1202 loaded") && !s.contains("more below")
    });
    tmux.keys(&["G"]);
    tmux.wait_for("the last key", Duration::from_secs(10), |s| s.contains("▶ k/1199"));

    // A prefix search lists only the keys under it, from the server.
    tmux.keys(&["/", "k/11", "Enter"]);
    let screen = tmux.wait_for("the prefix listing", Duration::from_secs(10), |s| {
        s.contains("keys: k/11") && s.contains("100 keys at revision 15, 100 loaded")
    });
    assert!(screen.contains("▶ k/1100"), "{screen}");
    tmux.keys(&[":", "bogus", "Enter"]);
    tmux.wait_for("the unknown command", Duration::from_secs(5), |s| s.contains("unknown command :bogus"));
    tmux.keys(&[":", "members", "Enter"]);
    tmux.wait_for("the dashboard again", Duration::from_secs(5), |s| s.contains("members 1/1 up"));
    tmux.keys(&[":", "keys a/", "Enter"]);
    tmux.wait_for("the a/ listing", Duration::from_secs(10), |s| s.contains("2 keys at revision 15"));

    // A local filter over the loaded rows.
    tmux.keys(&["f", "jso"]);
    let screen =
        tmux.wait_for("the filter", Duration::from_secs(5), |s| s.contains("1 of 2 loaded rows match"));
    assert!(screen.contains("▶ a/json") && !screen.contains("a/bin"), "{screen}");
    tmux.keys(&["Enter"]);

    // Copy the key: tmux takes OSC 52 into its paste buffer.
    let status = tmux.cmd().args(["set", "-g", "set-clipboard", "on"]).status().expect("tmux set");
    assert!(status.success());
    tmux.keys(&["y"]);
    tmux.wait_for("the copy", Duration::from_secs(5), |s| s.contains("copied key a/json to the clipboard"));
    let buffer = tmux.cmd().args(["show-buffer"]).output().expect("show-buffer");
    assert_eq!(String::from_utf8_lossy(&buffer.stdout), "a/json");

    // Edit the JSON value in $EDITOR: the diff is shown first, then the write.
    tmux.keys(&["E"]);
    let screen = tmux.wait_for("the confirmation", Duration::from_secs(10), |s| s.contains("Update a/json?"));
    assert!(
        screen.contains("-     \"image\": \"nginx\"") && screen.contains("+     \"image\": \"httpd\""),
        "{screen}"
    );
    tmux.keys(&["y"]);
    let screen =
        tmux.wait_for("the write", Duration::from_secs(10), |s| s.contains("✓ update a/json at revision 16"));
    assert!(screen.contains("etcdctl put --ignore-lease a/json"), "{screen}");

    // A tail of a/: a put shows as an event with its previous value.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the value pane to close", Duration::from_secs(5), |s| !s.contains("(json detected"));
    tmux.keys(&["W"]);
    tmux.wait_for("the tail", Duration::from_secs(10), |s| s.contains("watching since revision 17"));
    seed_value(endpoint, "a/json", "{}");
    let screen = tmux.wait_for("the event", Duration::from_secs(10), |s| s.contains("1 events"));
    assert!(screen.contains("PUT") && screen.contains("a/json = {}  (was {\"spec\""), "{screen}");
    tmux.keys(&["Tab"]);
    tmux.wait_for("the dashboard again", Duration::from_secs(5), |s| s.contains("members 1/1 up"));
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
}

/// PIDs of the etcdeck node processes whose data dir is under `dir` (read from /proc).
fn nodes_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = format!("--data-dir={}", dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(" node ") && cmdline.contains(&needle)
        })
        .collect()
}

/// The demo directories (etcdeck-demo-*) under `dir`.
fn demo_dirs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("etcdeck-demo-")))
                .collect()
        })
        .unwrap_or_default()
}

/// `etcdeck demo` in a pane, once its dashboard shows three members up, a leader and a healthy
/// cluster; and that screen.
fn healthy_demo(tmp: &std::path::Path) -> (Tmux, String) {
    let tmux = demo_pane(tmp, "");
    let screen = tmux.wait_for("the demo's dashboard", Duration::from_secs(60), |s| {
        s.contains("members 3/3 up") && s.contains("★ leader") && s.contains("cluster healthy")
    });
    (tmux, screen)
}

/// Waits until no member process under `tmp` is left, for at most `limit`.
fn wait_no_nodes(tmp: &std::path::Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !nodes_under(tmp).is_empty() {
        assert!(Instant::now() < deadline, "member processes left: {:?}", nodes_under(tmp));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Selects demo member `name` (n1, n2, …), kills it with x and answers the question with y.
fn kill_demo_member(tmux: &Tmux, name: &str) {
    let row: usize = name.trim_start_matches('n').parse().expect("n<number>");
    tmux.keys(&["g"]);
    for _ in 1..row {
        tmux.keys(&["j"]);
    }
    tmux.keys(&["x"]);
    tmux.wait_for("the kill question", Duration::from_secs(10), |s| {
        s.contains(&format!("kill member {name} ("))
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the kill", Duration::from_secs(10), |s| s.contains(&format!("killed {name} (kill -9")));
}

#[test]
fn the_demo_fails_over_from_the_console_and_leaves_nothing_behind() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let (tmux, screen) = healthy_demo(tmp.path());
    assert_eq!(nodes_under(tmp.path()).len(), 3, "three member processes");
    assert!(
        screen.contains("x kill") && screen.contains("s start"),
        "the demo's keys are offered:\n{screen}"
    );

    // Kill the leader from the console: another member leads, two of three are up.
    let leader = leader_name(&screen).expect("a leader in the header");
    let row: usize = leader.trim_start_matches('n').parse().expect("n<number>");
    for _ in 1..row {
        tmux.keys(&["j"]);
    }
    // x asks first, naming the member and the quorum; a y typed before the question is on screen
    // does not answer it.
    tmux.keys(&["x", "y"]);
    let question = tmux.wait_for("the kill question", Duration::from_secs(10), |s| {
        s.contains(&format!("kill member {leader} (")) && s.contains("before this question was on screen")
    });
    assert!(question.contains("quorum holds: 2 of 3 voting members stay up, 2 needed"), "{question}");
    assert!(question.contains("THIS IS THE LEADER"), "{question}");
    assert_eq!(nodes_under(tmp.path()).len(), 3, "nothing is killed before the answer");
    tmux.keys(&["y"]);
    let after = tmux.wait_for("a new leader", Duration::from_secs(20), |s| {
        s.contains("members 2/3 up") && leader_name(s).is_some_and(|l| l != leader) && s.contains("★ leader")
    });
    assert!(after.contains(&format!("killed {leader} (kill -9")), "{after}");
    assert_eq!(nodes_under(tmp.path()).len(), 2);
    // Two of three up with a leader: quorum holds, as etcd counts it; the survivors are healthy.
    let after = tmux.wait_for("quorum with 2 of 3", Duration::from_secs(20), |s| {
        s.contains("quorum ok") && s.contains("cluster") && s.matches(" healthy").count() >= 2
    });
    let row = member_row(&after, &leader).expect("the killed member's row");
    assert!(row.split_whitespace().any(|w| w == "down"), "{after}");

    // It falls behind: writes go on without it.
    let urls: Vec<String> = after
        .lines()
        .filter(|l| l.contains("http://") && !l.contains("endpoints") && !l.contains(&format!(" {leader} ")))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string))
        .collect();
    assert_eq!(urls.len(), 2, "{after}");
    let (rt, mut writer) = client(&urls[0]);
    for i in 0..100 {
        rt.block_on(writer.put(format!("/zz/behind/{i:03}"), "v", None))
            .expect("a write with two of three up");
    }

    // Start it again: it rejoins on its data and catches up.
    tmux.keys(&["s"]);
    let back = tmux.wait_for("all three up again", Duration::from_secs(20), |s| {
        s.contains("members 3/3 up") && s.contains(&format!("started {leader} again"))
    });
    let own = member_row(&back, &leader)
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string))
        .expect("its client URL");
    let (rt2, mut own_client) = client(&own);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let options = etcd_client::GetOptions::new().with_serializable();
        let got = rt2.block_on(own_client.get("/zz/behind/099", Some(options)));
        if got.is_ok_and(|r| r.count() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "{leader} never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Two of three down: the quorum is lost; one back, and it is regained.
    let screen = tmux.wait_for("a leader", Duration::from_secs(20), |s| {
        s.contains("★ leader") && s.contains("members 3/3 up")
    });
    let current = leader_name(&screen).expect("a leader");
    let others: Vec<String> =
        ["n1", "n2", "n3"].iter().filter(|n| **n != current).map(|n| n.to_string()).collect();
    for name in &others {
        kill_demo_member(&tmux, name);
    }
    // One of three: no quorum, and the survivor, without a leader, is not healthy (etcd's /health
    // says false).
    let lost = tmux.wait_for("the quorum lost", Duration::from_secs(20), |s| {
        s.contains("members 1/3 up")
            && s.contains("quorum LOST")
            && member_row(s, &current).is_some_and(|r| r.contains("no leader") || r.contains("unhealthy"))
    });
    let row = member_row(&lost, &current).expect("the survivor's row");
    assert!(!row.split_whitespace().any(|w| w == "healthy"), "{lost}");
    tmux.keys(&["s"]);
    tmux.wait_for("the quorum regained", Duration::from_secs(20), |s| {
        s.contains("members 2/3 up") && s.contains("quorum ok") && s.contains("★ leader")
    });

    // The sample data is there.
    tmux.keys(&["Tab"]);
    tmux.wait_for("the sample keys", Duration::from_secs(10), |s| {
        s.contains("services") && s.contains("config")
    });

    tmux.keys(&["q"]);
    let end = tmux.wait_for("the demo to exit", Duration::from_secs(20), |s| s.contains("etcdeck exited"));
    assert!(end.contains("etcdeck exited 0") && end.contains("members stopped and"), "{end}");
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
    assert!(demo_dirs(tmp.path()).is_empty(), "the demo's directory is removed: {:?}", demo_dirs(tmp.path()));
}

#[test]
fn ctrl_c_or_a_killed_demo_leaves_no_member_running() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    // Five members; Ctrl-C quits, stops them and removes the directory.
    let tmux = demo_pane(tmp.path(), "--nodes 5");
    tmux.wait_for("five members", Duration::from_secs(60), |s| {
        s.contains("members 5/5 up") && s.contains("★ leader")
    });
    assert_eq!(nodes_under(tmp.path()).len(), 5);
    tmux.keys(&["C-c"]);
    tmux.wait_exited_ok(Duration::from_secs(20));
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
    assert!(demo_dirs(tmp.path()).is_empty());
    drop(tmux);

    // Killed with SIGKILL (no chance to clean up): its members die with it; --keep kept the data.
    let tmux = demo_pane(tmp.path(), "--keep");
    tmux.wait_for("three members", Duration::from_secs(60), |s| s.contains("members 3/3 up"));
    let nodes = nodes_under(tmp.path());
    assert_eq!(nodes.len(), 3);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", nodes[0])).expect("stat");
    // The fourth field of /proc/<pid>/stat, after the command in parentheses, is the parent's PID.
    let demo_pid =
        stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).expect("ppid").to_string();
    let status = Command::new("kill").args(["-KILL", &demo_pid]).status().expect("kill");
    assert!(status.success());
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
    let kept = demo_dirs(tmp.path());
    assert_eq!(kept.len(), 1, "--keep keeps the directory: {kept:?}");
    assert!(kept[0].join("n1.etcd").join("member").is_dir(), "with the members' data dirs");
}

/// Closes the member dialog and waits until it is gone (a key sent right after Escape would reach the
/// console as Alt+key).
fn close_dialog(tmux: &Tmux) {
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("┌ members ─"));
}

/// C, the current revision offered, y: the history compacted through the console.
fn compact_to_current(tmux: &Tmux) {
    tmux.keys(&["C"]);
    tmux.wait_for("the compact prompt", Duration::from_secs(5), |s| {
        s.contains("compact the history before revision:")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the compact dialog", Duration::from_secs(5), |s| s.contains("compaction "));
    tmux.keys(&["y"]);
    tmux.wait_for("the compaction", Duration::from_secs(15), |s| {
        s.contains("done: compact the history before revision")
    });
    close_dialog(tmux);
}

/// Saves the selected member's snapshot from the console into `dir` (replacing the suggested file
/// name) and returns the dialog's verdict.
fn save_snapshot(tmux: &Tmux, dir: &std::path::Path) -> (String, std::path::PathBuf) {
    tmux.keys(&["S"]);
    let prompt = tmux
        .wait_for("the snapshot prompt", Duration::from_secs(5), |s| s.contains("snapshot to: snapshot-"));
    let line = prompt.lines().find(|l| l.contains("snapshot to: ")).expect("the prompt line");
    let suggested =
        line.split("snapshot to: ").nth(1).expect("a suggestion").trim().trim_end_matches('█').trim();
    assert!(suggested.ends_with(".db"), "{suggested}");
    let backspaces = vec!["BSpace"; suggested.chars().count()];
    tmux.keys(&backspaces);
    let path = dir.join("console.db");
    tmux.keys(&[&path.display().to_string(), "Enter"]);
    let done = tmux.wait_for("the verified snapshot", Duration::from_secs(30), |s| {
        s.contains("saved and verified") || s.contains("snapshot failed")
    });
    (done, path)
}

/// Selects the first member row of `screen` that `pred` picks (from the top, with j); returns it.
fn select_row(tmux: &Tmux, screen: &str, pred: impl Fn(&str) -> bool) -> String {
    let rows: Vec<&str> =
        screen.lines().filter(|l| l.contains("http://") && !l.contains("endpoints")).collect();
    let at = rows.iter().position(|l| pred(l)).expect("a matching row");
    tmux.keys(&["g"]);
    for _ in 0..at {
        tmux.keys(&["j"]);
    }
    rows[at].to_string()
}

/// Adds learner `name` with `peer` through the member dialog (the client URL offered, or `client`);
/// the screen with the cluster's answer.
fn add_learner(tmux: &Tmux, name: &str, peer: &str, client: Option<&str>) -> String {
    tmux.keys(&["n"]);
    tmux.wait_for("the name prompt", Duration::from_secs(5), |s| s.contains("add member, name:"));
    tmux.keys(&[name, "Enter"]);
    tmux.wait_for("the peer URL prompt", Duration::from_secs(5), |s| {
        s.contains(&format!("peer URLs of {name}"))
    });
    tmux.keys(&[peer, "Enter"]);
    tmux.wait_for("the client URL prompt", Duration::from_secs(5), |s| {
        s.contains(&format!("client URLs {name} will serve on"))
    });
    if let Some(client) = client {
        // The prompt offers the peer port less one: typed over.
        tmux.keys(&["BSpace"; 40]);
        tmux.keys(&[client]);
    }
    tmux.keys(&["Enter"]);
    tmux.wait_for("the add dialog", Duration::from_secs(5), |s| s.contains(&format!("add learner {name}")));
    tmux.keys(&["y"]);
    tmux.wait_for("the answer", Duration::from_secs(15), |s| {
        s.contains("start it with these settings") || s.contains("failed:")
    })
}

/// The dashboard row of member `name`.
fn member_row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(&format!(" {name} ")) && l.contains("http://"))
}

#[test]
fn a_learner_is_added_started_promoted_and_removed_through_the_demo_dialogs() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let tmux = demo_pane(tmp.path(), "");
    tmux.wait_for("the demo's dashboard", Duration::from_secs(60), |s| {
        s.contains("members 3/3 up") && s.contains("cluster healthy")
    });
    let status = tmux.cmd().args(["set", "-g", "set-clipboard", "on"]).status().expect("tmux set");
    assert!(status.success());
    // etcd adds a member only once it has been connected to every voter for 5 s.
    std::thread::sleep(Duration::from_secs(6));

    let peer_port = free_port();
    let peer = format!("http://127.0.0.1:{peer_port}");
    let client = format!("http://127.0.0.1:{}", free_port());
    tmux.keys(&["n"]);
    tmux.wait_for("the name prompt", Duration::from_secs(5), |s| s.contains("add member, name:"));
    tmux.keys(&["n4", "Enter"]);
    tmux.wait_for("the peer URL prompt", Duration::from_secs(5), |s| s.contains("peer URLs of n4"));
    tmux.keys(&[&peer, "Enter"]);
    let guess = format!("http://127.0.0.1:{}", peer_port - 1);
    tmux.wait_for("the client URL prompt", Duration::from_secs(5), |s| s.contains(&guess));
    let backspaces = vec!["BSpace"; guess.len()];
    tmux.keys(&backspaces);
    tmux.keys(&[&client, "Enter"]);
    let confirm =
        tmux.wait_for("the add dialog", Duration::from_secs(5), |s| s.contains("the same with etcdctl:"));
    assert!(confirm.contains(&format!("add learner n4 with peer URLs {peer}?")), "{confirm}");
    // (The etcdctl line may wrap before its last flag.)
    assert!(
        confirm.contains("member add n4 --learner") && confirm.contains(&format!("--peer-urls={peer}")),
        "{confirm}"
    );
    tmux.keys(&["y"]);
    let done = tmux.wait_for("the start commands", Duration::from_secs(15), |s| {
        s.contains("start it with these settings") || s.contains("failed:")
    });
    assert!(done.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), "{done}");
    tmux.keys(&["y"]);
    tmux.wait_for("the copy", Duration::from_secs(5), |s| s.contains("copied the etcdeck start command"));
    let buffer = tmux.cmd().args(["show-buffer"]).output().expect("show-buffer");
    let command = String::from_utf8_lossy(&buffer.stdout).to_string();
    assert!(command.contains(" etcdeck node --listen-peer-urls"), "{command}");

    // Start it exactly as shown (with this build's binary), in a directory of its own.
    let command = command.replace(" etcdeck node ", &format!(" {} node ", etcdeck_bin()));
    let mut n4 = Command::new("sh")
        .args(["-c", &format!("exec env {command}")])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("n4.log")).expect("log"))
        .spawn()
        .expect("start n4");
    let killer = scopeguard(n4.id());
    close_dialog(&tmux);
    tmux.wait_for("n4 caught up", Duration::from_secs(30), |s| {
        member_row(s, "n4").is_some_and(|r| r.contains("learner, ready"))
    });

    // Promote it.
    tmux.keys(&["G", "P"]);
    tmux.wait_for("the promote dialog", Duration::from_secs(5), |s| s.contains("promote learner n4"));
    tmux.keys(&["y"]);
    tmux.wait_for("the promotion", Duration::from_secs(15), |s| s.contains("done: promote learner n4"));
    close_dialog(&tmux);
    tmux.wait_for("n4 votes", Duration::from_secs(15), |s| {
        s.contains("members 4/4 up")
            && member_row(s, "n4").is_some_and(|r| r.contains("follower") || r.contains("leader"))
    });

    // Remove it: it stops by itself (exit status 0).
    tmux.keys(&["d"]);
    let dialog =
        tmux.wait_for("the remove dialog", Duration::from_secs(5), |s| s.contains("remove member n4"));
    assert!(dialog.contains("4 voting members now, 3 after"), "{dialog}");
    tmux.keys(&["y"]);
    tmux.wait_for("the removal", Duration::from_secs(15), |s| s.contains("done: remove member n4"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let code = loop {
        if let Ok(Some(status)) = n4.try_wait() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "n4 still runs after its removal");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    drop(killer);
    close_dialog(&tmux);
    tmux.wait_for("three members again", Duration::from_secs(15), |s| {
        s.contains("members 3/3 up") && member_row(s, "n4").is_none()
    });

    // A snapshot of a member, saved and verified: the demo's 11 sample keys.
    let (done, path) = save_snapshot(&tmux, tmp.path());
    assert!(done.contains("checksum  SHA-256") && done.contains("keys      11"), "{done}");
    let status = Command::new(etcdeck_bin())
        .args(["snapshot", "status", "-w", "json"])
        .arg(&path)
        .output()
        .expect("status");
    // etcdctl's status of the same file: the revision the dialog showed (its total counts every
    // bucket of etcd's backend, not just the keys).
    let revision = done
        .lines()
        .find_map(|l| {
            l.split("revision").nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string)
        })
        .expect("the revision in the dialog");
    assert!(
        status.status.success()
            && String::from_utf8_lossy(&status.stdout).contains(&format!("\"revision\":{revision},")),
        "{status:?}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("saved and verified"));
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(20));
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
}

/// Kills a process on drop (a test's own child, should the test fail half way).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn scopeguard(pid: u32) -> KillOnDrop {
    KillOnDrop(pid)
}

#[test]
fn member_dialogs_add_remove_and_move_the_leader_on_a_real_etcd() {
    let Some(tools) = etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    // etcd adds a member only once it has been connected to every voter for 5 s.
    std::thread::sleep(Duration::from_secs(6));
    let urls = cluster.client_urls();
    for i in 0..3 {
        let (ok, _, err) =
            crate::support::run_etcdctl(&tools.etcdctl, &urls, &["put", &format!("k{i}"), "v"]);
        assert!(ok, "{err}");
    }
    let tmux = Tmux::start(&pane_command(&urls.join(","), "--refresh-interval 500ms"), 160, 48);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| {
        s.contains("members 3/3 up") && s.contains("★ leader")
    });

    // Add a learner: etcd's answer, with the commands that would start it.
    let peer_port = free_port();
    let peer = format!("http://127.0.0.1:{peer_port}");
    let done = add_learner(&tmux, "e4", &peer, None);
    assert!(done.contains("etcd:    ETCD_NAME=e4"), "{done}");
    close_dialog(&tmux);
    let (ok, out, err) = crate::support::run_etcdctl(&tools.etcdctl, &urls, &["member", "list"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.contains(&peer)).expect("the learner in etcd's member list");
    assert!(row.contains("unstarted") && row.ends_with("true"), "{row}");
    let id = row.split(", ").next().expect("id").to_string();

    // Remove it: a learner, so the dialog says the quorum stays as it is.
    let screen =
        tmux.wait_for("the unstarted learner", Duration::from_secs(10), |s| s.contains("(unstarted)"));
    select_row(&tmux, &screen, |l| l.contains("(unstarted)"));
    tmux.keys(&["d"]);
    let dialog = tmux.wait_for("the remove dialog", Duration::from_secs(5), |s| {
        s.contains(&format!("remove member {id}"))
    });
    assert!(dialog.contains("a learner does not vote: the quorum stays as it is"), "{dialog}");
    tmux.keys(&["y"]);
    tmux.wait_for("the removal", Duration::from_secs(15), |s| {
        s.contains(&format!("done: remove member {id}"))
    });
    close_dialog(&tmux);
    let (ok, out, _) = crate::support::run_etcdctl(&tools.etcdctl, &urls, &["member", "list"]);
    assert!(ok && out.lines().count() == 3 && !out.contains(&peer), "{out}");

    // Move the leadership to a follower.
    let screen = tmux.wait_for("three members", Duration::from_secs(10), |s| !s.contains("(unstarted)"));
    let row = select_row(&tmux, &screen, |l| l.contains("follower"));
    let name = row.split_whitespace().find(|w| w.starts_with("etcd-")).expect("its name").to_string();
    tmux.keys(&["L"]);
    let dialog = tmux.wait_for("the move dialog", Duration::from_secs(5), |s| {
        s.contains(&format!("move the leadership to {name}"))
    });
    assert!(dialog.contains("move-leader"), "the etcdctl equivalent:\n{dialog}");
    tmux.keys(&["y"]);
    tmux.wait_for("the move", Duration::from_secs(15), |s| {
        s.contains(&format!("done: move the leadership to {name}"))
    });
    close_dialog(&tmux);
    tmux.wait_for("the new leader", Duration::from_secs(15), |s| s.contains(&format!("leader {name} (")));

    // Maintenance: compact to the current revision, defragment the selected member, no alarm.
    compact_to_current(&tmux);
    tmux.keys(&["F"]);
    let dialog = tmux.wait_for("the defragment dialog", Duration::from_secs(5), |s| {
        s.contains(&format!("defragment {name}"))
    });
    assert!(dialog.contains("defrag") && dialog.contains("followers first"), "{dialog}");
    tmux.keys(&["y"]);
    tmux.wait_for("the defragmentation", Duration::from_secs(30), |s| {
        s.contains(&format!("done: defragment {name}"))
    });
    close_dialog(&tmux);
    tmux.keys(&["A"]);
    tmux.wait_for("no alarm", Duration::from_secs(5), |s| s.contains("no alarm is raised"));

    // Save the new leader's snapshot and verify it: etcd's checksum, its revision, its 3 keys.
    let dir = tempfile::tempdir().expect("temp dir");
    let (done, path) = save_snapshot(&tmux, dir.path());
    assert!(done.contains("checksum  SHA-256") && done.contains("keys      3"), "{done}");
    let (ok, out, err) =
        crate::support::run_etcdctl(&tools.etcdctl, &urls, &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{err}");
    let revision: i64 = out
        .split("\"revision\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.parse().ok())
        .expect("revision");
    assert!(done.contains(&format!("revision  {revision}")), "{done}");
    assert!(path.is_file(), "{}", path.display());

    // The restore wizard: etcd 3.4's commands for every member; the console runs none itself.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("saved and verified"));
    tmux.keys(&["R"]);
    tmux.wait_for("the restore prompt", Duration::from_secs(5), |s| {
        s.contains(&format!("snapshot file: {}", path.display()))
    });
    tmux.keys(&["Enter"]);
    let wizard = tmux.wait_for("the wizard", Duration::from_secs(10), |s| s.contains("SHA-256 checks out"));
    assert!(wizard.contains("the runbook, for etcd 3.4 (etcdctl)"), "{wizard}");
    for name in ["etcd-1", "etcd-2", "etcd-3"] {
        assert!(wizard.contains(&format!("--name {name} --initial-cluster")), "{wizard}");
    }
    assert!(!wizard.contains("r: run it"), "{wizard}");
    tmux.keys(&["r"]);
    tmux.wait_for("the refusal", Duration::from_secs(5), |s| {
        s.contains("only etcdeck demo runs a restore itself")
    });
}

/// The restore wizard on the demo: a snapshot saved, a write after it, then the wizard's runbook
/// (etcdeck's commands for each member), and its run: every member stopped, restored into a new
/// data dir (the old kept), started; the cluster is new and holds the snapshot's data, not the
/// later write.
#[test]
fn the_restore_wizard_rebuilds_the_demo_cluster_from_a_snapshot() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let tmux = demo_pane(tmp.path(), "");
    let screen = tmux.wait_for("the demo's dashboard", Duration::from_secs(60), |s| {
        s.contains("members 3/3 up") && s.contains("cluster healthy")
    });
    let cluster_before =
        screen.split("cluster ").nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string);
    let endpoints: Vec<String> = screen
        .lines()
        .find_map(|l| l.split("endpoints ").nth(1))
        .expect("the endpoints in the header")
        .split(|c: char| c == ',' || c.is_whitespace() || c == '│')
        .filter(|e| e.starts_with("http://"))
        .map(str::to_string)
        .collect();
    assert_eq!(endpoints.len(), 3, "{screen}");
    let (rt, mut writer) = client(&endpoints[0]);
    rt.block_on(writer.put("/restore/before", "kept", None)).expect("put");

    let (done, path) = save_snapshot(&tmux, tmp.path());
    assert!(done.contains("saved and verified"), "{done}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("saved and verified"));
    rt.block_on(writer.put("/restore/after", "gone after the restore", None)).expect("put");

    // R offers the file just saved; the wizard checks it and shows etcdeck's commands.
    tmux.keys(&["R"]);
    tmux.wait_for("the restore prompt", Duration::from_secs(5), |s| {
        s.contains(&format!("restore the cluster from the snapshot file: {}", path.display()))
    });
    tmux.keys(&["Enter"]);
    let wizard = tmux.wait_for("the wizard", Duration::from_secs(10), |s| s.contains("SHA-256 checks out"));
    for name in ["n1", "n2", "n3"] {
        assert!(
            wizard.contains(&format!(
                "etcdeck snapshot restore {} --name {name} --initial-cluster",
                path.display()
            )) && wizard.contains(&format!("--data-dir {name}.restored.etcd")),
            "{wizard}"
        );
    }
    assert!(
        wizard.contains("--initial-cluster-token etcd-cluster-restored-") && wizard.contains("r: run it"),
        "{wizard}"
    );
    // The file's format is shown: a node's snapshot is etcd's, so etcd's tools are offered too.
    assert!(wizard.contains("file: etcd snapshot (bbolt database + SHA-256)"), "{wizard}");
    assert!(wizard.contains("t: for etcd 3.4, etcd 3.5+"), "{wizard}");
    tmux.keys(&["t"]);
    tmux.wait_for("etcdctl's", Duration::from_secs(5), |s| {
        s.contains("ETCDCTL_API=3 etcdctl snapshot restore")
    });
    tmux.keys(&["t", "t"]);
    tmux.wait_for("etcdeck's again", Duration::from_secs(5), |s| {
        s.contains("etcdeck snapshot restore") && s.contains("r: run it")
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the confirmation", Duration::from_secs(5), |s| s.contains("THE DEMO'S MEMBERS STOP"));
    tmux.keys(&["y"]);
    let done = tmux.wait_for("the restore", Duration::from_secs(60), |s| {
        s.contains("restored: the cluster runs on the snapshot's data") || s.contains("the restore failed")
    });
    assert!(done.contains("started n1 on n1.restored-1.etcd"), "{done}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the wizard to close", Duration::from_secs(5), |s| !s.contains("┌ restore ─"));

    // A new cluster, healthy, on the snapshot's data.
    let screen = tmux.wait_for("the restored cluster", Duration::from_secs(60), |s| {
        s.contains("members 3/3 up")
            && s.contains("cluster healthy")
            && s.split("cluster ").nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string)
                != cluster_before
    });
    assert!(screen.contains("leader n"), "{screen}");
    let get = |key: &str| {
        let (rt, mut client) = client(&endpoints[0]);
        rt.block_on(client.get(key, None)).expect("get").kvs().first().map(|kv| kv.value().to_vec())
    };
    assert_eq!(get("/restore/before").as_deref(), Some(&b"kept"[..]));
    assert_eq!(get("/restore/after"), None, "the write after the snapshot is not in it");
    assert!(get("/demo/README").is_some());
    let demo_dir = demo_dirs(tmp.path()).pop().expect("the demo's directory");
    for name in ["n1", "n2", "n3"] {
        assert!(demo_dir.join(format!("{name}.etcd")).is_dir(), "the old data dir of {name} is kept");
        assert!(demo_dir.join(format!("{name}.restored-1.etcd")).is_dir());
    }
    assert_eq!(
        nodes_under(&demo_dir.join("n2.restored-1.etcd")).len(),
        1,
        "n2 runs on its restored data dir"
    );

    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(20));
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
}

/// etcd's NOSPACE recovery, as an operator follows it in the console: the alarm listed, the history
/// compacted, every member defragmented in turn (the leader last), the alarm disarmed, writes back.
#[test]
fn a_nospace_alarm_is_recovered_from_through_the_console_on_a_real_etcd() {
    let Some(tools) = etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    // A 2 MiB quota: a few 130 KB values fill it.
    let cluster = EtcdCluster::start_full(&tools, 3, None, &["--quota-backend-bytes=2097152"]);
    cluster.wait_healthy(Duration::from_secs(30));
    let urls = cluster.client_urls();
    let value = "x".repeat(130_000);
    let (rt, mut client) = client(&urls[0]);
    let mut refused = None;
    for i in 0..60 {
        let put = rt.block_on(client.put(format!("big{}", i % 3), value.clone(), None));
        if let Err(e) = put {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("the quota was never reached");
    assert!(refused.contains("etcdserver: mvcc: database space exceeded"), "{refused}");

    let tmux = Tmux::start(&pane_command(&urls.join(","), "--refresh-interval 500ms"), 160, 48);
    tmux.wait_for("the alarm on the dashboard", Duration::from_secs(15), |s| {
        s.contains("members 3/3 up") && s.contains("NOSPACE")
    });

    // A lists what is raised, with etcd's recovery steps; first free the space.
    tmux.keys(&["A"]);
    // The whole dialog (a capture can catch a frame half written).
    tmux.wait_for("the alarm dialog", Duration::from_secs(5), |s| {
        s.contains("raised: NOSPACE on etcd-")
            && s.contains("alarm disarm")
            && s.contains("C compacts the history")
            && s.contains("y/enter: do it")
    });
    close_dialog(&tmux);
    compact_to_current(&tmux);

    // Every member defragmented in turn, the leader last.
    tmux.keys(&["F"]);
    tmux.wait_for("the defragment dialog", Duration::from_secs(5), |s| {
        s.contains("a: the whole cluster instead")
    });
    tmux.keys(&["a"]);
    let first = urls[0].clone();
    let dialog = tmux.wait_for("the rolling dialog", Duration::from_secs(5), |s| {
        // Its last line too: a capture can catch a frame half written.
        s.contains("defragment every member in turn") && s.contains(&first) && s.contains("y/enter: do it")
    });
    let leader = dialog
        .split("leader ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|name| name.starts_with("etcd-"))
        .expect("the leader in the header")
        .to_string();
    let order = dialog
        .split("defragment every member in turn: ")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .expect("the order")
        .to_string();
    let last = order.split(", then ").last().expect("a last member");
    assert!(last.starts_with(&leader), "the leader ({leader}) goes last: {order}");
    assert!(dialog.contains("defrag") && dialog.contains(&urls[0]), "{dialog}");
    tmux.keys(&["y"]);
    let done = tmux.wait_for("the rolling defragmentation", Duration::from_secs(90), |s| {
        s.contains("done: defragment every member") || s.contains("failed:")
    });
    assert!(done.contains("done: defragment every member"), "{done}");
    assert_eq!(done.matches(" later").count(), 3, "a line per member:\n{done}");
    close_dialog(&tmux);
    let (ok, out, err) =
        crate::support::run_etcdctl(&tools.etcdctl, &urls, &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{err}");
    for size in out.split("\"dbSize\":").skip(1) {
        let size: u64 = size.split(',').next().and_then(|s| s.parse().ok()).expect("dbSize");
        assert!(size < 1_000_000, "every member shrank below its quota: {out}");
    }

    // Then the alarm goes, and writes are taken again.
    tmux.keys(&["A"]);
    tmux.wait_for("the alarm dialog", Duration::from_secs(5), |s| s.contains("raised: NOSPACE on etcd-"));
    tmux.keys(&["y"]);
    tmux.wait_for("the disarm", Duration::from_secs(15), |s| s.contains("done: disarm NOSPACE of "));
    close_dialog(&tmux);
    tmux.wait_for("no alarm on the dashboard", Duration::from_secs(15), |s| s.contains("alarms none"));
    let (ok, out, err) = crate::support::run_etcdctl(&tools.etcdctl, &urls, &["alarm", "list"]);
    assert!(ok && out.trim().is_empty(), "{out}{err}");
    rt.block_on(client.put("after", "ok", None)).expect("writes are taken again");
}

#[test]
fn a_panic_in_the_demo_stops_its_members_and_removes_its_directory() {
    let fixture = panic_fixture().with_file_name("panic_in_demo");
    if !fixture.is_file() {
        // A plain `cargo test` builds examples; `cargo test --test main` alone does not.
        let msg = format!("{} is not built (cargo build --examples)", fixture.display());
        if std::env::var(crate::support::REQUIRE_INTEROP).as_deref() == Ok("1") {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = Command::new(&fixture)
        .arg(etcdeck_bin())
        .env("TMPDIR", tmp.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the fixture");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("serving"), "the members served first: {stdout}{stderr}");
    assert!(stderr.contains("deliberate panic"), "{stderr}");
    assert_eq!(out.status.code(), Some(101));
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
    assert!(
        demo_dirs(tmp.path()).is_empty(),
        "the directory is removed while unwinding: {:?}",
        demo_dirs(tmp.path())
    );
}

#[test]
fn saved_contexts_mark_the_header_and_ctx_switches_clusters() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let one = crate::support::EtcdeckNode::start("one", &[]);
    let two = crate::support::EtcdeckNode::start("two", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("etcdeck")).expect("mkdir");
    std::fs::write(
        dir.path().join("etcdeck/config.toml"),
        format!(
            "[contexts.prod]\nendpoints = [\"{}\"]\nread-only = true\ncolor = \"red\"\nbanner = \"PRODUCTION\"\n\n\
             [contexts.lab]\nendpoints = [\"{}\"]\n",
            one.client_url, two.client_url
        ),
    )
    .expect("write");
    // --endpoints points nowhere: the context's endpoints replace it.
    let env = format!("XDG_CONFIG_HOME={}", dir.path().display());
    let port = free_port();
    let tmux = Tmux::start(
        &pane_command_env(&format!("127.0.0.1:{port}"), "--context prod --refresh-interval 500ms", &env),
        140,
        30,
    );
    let screen = tmux.wait_for("the prod context", Duration::from_secs(15), |s| {
        s.contains("PRODUCTION · ctx prod") && s.contains("members 1/1 up") && s.contains("leader one (")
    });
    assert!(screen.contains("READ-ONLY (context prod is read-only)"), "{screen}");
    assert!(screen.contains(&one.client_url), "{screen}");

    tmux.keys(&[":", "ctx", "Enter"]);
    tmux.wait_for("the list of contexts", Duration::from_secs(5), |s| {
        s.contains("contexts: lab, prod (current) (:ctx NAME switches)")
    });
    tmux.keys(&[":", "ctx nowhere", "Enter"]);
    tmux.wait_for("an unknown context", Duration::from_secs(5), |s| {
        s.contains("unknown context \"nowhere\"")
    });

    tmux.keys(&[":", "ctx lab", "Enter"]);
    let screen = tmux.wait_for("the lab context", Duration::from_secs(15), |s| {
        s.contains(" ctx lab ") && s.contains("members 1/1 up") && s.contains("leader two (")
    });
    assert!(!screen.contains("READ-ONLY") && !screen.contains("PRODUCTION"), "{screen}");
    assert!(screen.contains(&two.client_url) && !screen.contains(&one.client_url), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
}

#[test]
fn an_unknown_context_is_refused_naming_the_saved_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("etcdeck")).expect("mkdir");
    std::fs::write(dir.path().join("etcdeck/config.toml"), "[contexts.a]\nendpoints = [\"127.0.0.1:1\"]\n")
        .expect("write");
    let out = crate::support::etcdeck()
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["status", "--context", "b"])
        .output()
        .expect("run etcdeck");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "Error: unknown context \"b\"; config.toml defines a");
}

/// A member whose log is destroyed refuses to start; the replace dialog brings it back as a new
/// member, step by step, and the cluster keeps every write.
#[test]
fn the_replace_dialog_brings_back_a_damaged_demo_member() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let (tmux, screen) = healthy_demo(tmp.path());
    let leader = leader_name(&screen).expect("a leader");
    let victim = ["n1", "n2", "n3"].into_iter().find(|n| *n != leader).expect("a follower").to_string();
    let old_row = member_row(&screen, &victim).expect("its row").to_string();
    let url = |row: &str| row.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string);
    let victim_url = url(&old_row).expect("its client URL");
    let leader_url = url(member_row(&screen, &leader).expect("the leader's row")).expect("a URL");
    let (rt, mut writer) = client(&leader_url);
    for i in 0..200 {
        rt.block_on(writer.put(format!("/replace/{i:03}"), "v", None)).expect("put");
    }

    // Kill it and destroy its log: it refuses to start.
    kill_demo_member(&tmux, &victim);
    let demo_dir = demo_dirs(tmp.path()).pop().expect("the demo's directory");
    let wal = demo_dir.join(format!("{victim}.etcd")).join("member").join("wal");
    for entry in std::fs::read_dir(&wal).expect("its wal dir").flatten() {
        let len = entry.metadata().expect("metadata").len();
        std::fs::write(entry.path(), vec![0u8; len as usize]).expect("zero-fill");
    }
    tmux.keys(&["s"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while nodes_under(&demo_dir.join(format!("{victim}.etcd"))).len() == 1 {
        assert!(Instant::now() < deadline, "{victim} started on a destroyed log");
        std::thread::sleep(Duration::from_millis(100));
    }

    // X: the plan with each step's command, then each step done in turn.
    tmux.keys(&["X"]);
    let plan = tmux.wait_for("the replace plan", Duration::from_secs(10), |s| {
        s.contains(&format!("replace member {victim} ("))
    });
    assert!(
        plan.contains("member remove ") && plan.contains(&format!("member add {victim} --peer-urls=")),
        "{plan}"
    );
    assert!(plan.contains("y: replace it (enter is not enough)"), "{plan}");
    tmux.keys(&["y"]);
    let done = tmux.wait_for("the replacement", Duration::from_secs(90), |s| {
        s.contains(&format!("done: {victim} replaced and healthy")) || s.contains("stopped at a failed step")
    });
    assert!(done.contains(&format!("done: {victim} replaced and healthy")), "{done}");
    for step in ["✓ 1. stop", "✓ 2. remove", "✓ 3. move", "✓ 4. add", "✓ 5. start", "✓ 6. wait"] {
        assert!(done.contains(step), "{step}:\n{done}");
    }
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("three healthy members", Duration::from_secs(30), |s| {
        s.contains("members 3/3 up") && s.contains("cluster healthy")
    });
    let new_row = member_row(&screen, &victim).expect("its new row").to_string();
    let id = |row: &str| {
        let words: Vec<&str> = row.split_whitespace().collect();
        let at = words.iter().position(|w| *w == victim)?;
        words.get(at + 1).map(|w| w.to_string())
    };
    assert_ne!(id(&new_row), id(&old_row), "a new member ID:\n{screen}");
    assert!(demo_dir.join(format!("{victim}.etcd.damaged-1")).is_dir(), "the damaged data is kept aside");
    // Every write is on the new member.
    let (rt2, mut own) = client(&victim_url);
    let options = etcd_client::GetOptions::new().with_prefix().with_count_only().with_serializable();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = rt2.block_on(own.get("/replace/", Some(options.clone()))).map(|r| r.count()).unwrap_or(0);
        if count == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{victim} has {count} of 200 keys");
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(20));
    wait_no_nodes(tmp.path(), Duration::from_secs(5));
}

/// A cluster bootstrapped through a discovery URL (an etcdeck node with --enable-v2 serving it): the
/// console shows its three members and leader; a member added through the dialog, started with the
/// etcdeck command the dialog copies, joins it.
#[test]
fn a_member_added_through_the_dialog_joins_a_cluster_bootstrapped_through_discovery() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    use crate::node_discovery::{discovery_members, new_token};
    let service = EtcdeckNode::start("service", &["--enable-v2"]);
    let url = new_token(&service.client_url, "/v2/keys/discovery/console", "3");
    let root = tempfile::tempdir().expect("temp dir");
    let nodes = discovery_members(&url, root.path(), &["d0", "d1", "d2"]);
    // A member is added only once every voter has been connected for 5 s (etcd's rule).
    std::thread::sleep(Duration::from_secs(6));
    let urls: Vec<String> = nodes.iter().map(|n| n.client_url.clone()).collect();
    let tmux = Tmux::start(&pane_command(&urls.join(","), "--refresh-interval 500ms"), 250, 48);
    // The console's copies reach tmux's buffer (OSC 52).
    assert!(tmux.cmd().args(["set", "-s", "set-clipboard", "on"]).status().expect("tmux set").success());
    let screen = tmux.wait_for("the dashboard", Duration::from_secs(15), |s| {
        s.contains("members 3/3 up") && s.contains("★ leader")
    });
    for name in ["d0", "d1", "d2"] {
        assert!(member_row(&screen, name).is_some(), "{name} in the member table:\n{screen}");
    }

    let peer = format!("http://127.0.0.1:{}", free_port());
    let client = format!("http://127.0.0.1:{}", free_port());
    let done = add_learner(&tmux, "d3", &peer, Some(&client));
    assert!(done.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""), "{done}");
    tmux.keys(&["y"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let command = loop {
        let out = tmux.cmd().args(["show-buffer"]).output().expect("show-buffer");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("etcdeck node") {
            break text;
        }
        assert!(Instant::now() < deadline, "the copied command: {text:?}\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(command.contains("ETCD_INITIAL_CLUSTER_STATE=existing") && command.contains(&peer), "{command}");
    close_dialog(&tmux);

    // Started as printed (in its own directory, with this build for `etcdeck`), it joins.
    let dir = root.path().join("d3-home");
    std::fs::create_dir(&dir).expect("dir");
    let command = command.trim().replacen("etcdeck node", &format!("{} node", etcdeck_bin()), 1);
    let log = std::fs::File::create(root.path().join("d3.log")).expect("log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec env {command} --heartbeat-interval 50 --election-timeout 500"))
        .current_dir(&dir)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start d3");
    let d3 = scopeguard(child.id());
    tmux.wait_for("d3 serving as a learner", Duration::from_secs(30), |s| {
        s.contains("members 4/4 up")
            && member_row(s, "d3").is_some_and(|row| row.contains("learner") && !row.contains("unstarted"))
    });
    assert!(dir.join("d3.etcd").is_dir(), "the data dir the command named");
    drop(d3);
    let _ = child.wait();
}
