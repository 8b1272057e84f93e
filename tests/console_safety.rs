//! The console acts only on what the user saw: pastes are text, keys typed before a question is on
//! screen are not its answer, Backspace never closes a prompt. Run through tmux as a person types.

use std::time::{Duration, Instant};

use crate::support::tmux::{pane_command, Tmux};
use crate::support::{blocking_client as client, require_tool, EtcdeckNode};

fn value_of(endpoint: &str, key: &str) -> Option<Vec<u8>> {
    let (rt, mut c) = client(endpoint);
    let resp = rt.block_on(c.get(key, None)).expect("get");
    resp.kvs().first().map(|kv| kv.value().to_vec())
}

#[test]
fn pastes_are_text_and_keys_typed_before_a_question_are_not_its_answer() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let node = EtcdeckNode::start("paste", &[]);
    let endpoint = node.client_url.clone();
    {
        let (rt, mut c) = client(&endpoint);
        rt.block_on(c.put("/p/k", "old", None)).expect("put");
    }
    let tmux = Tmux::start(&pane_command(&endpoint, ""), 120, 30);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    tmux.keys(&["Tab"]);
    tmux.wait_for("the key", Duration::from_secs(10), |s| s.contains("▶ /p/k"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the value", Duration::from_secs(10), |s| s.contains("(text detected, 3 bytes)"));

    // A paste with no prompt open: nothing runs (not q, not :, not Enter).
    tmux.paste("\r:q\ryy\rdy\r");
    let screen = tmux.wait_for("the paste refused", Duration::from_secs(5), |s| s.contains("paste ignored"));
    assert!(!screen.contains("etcdeck exited") && !screen.contains("Delete /p/k?"), "{screen}");

    // Backspace on an empty prompt keeps it open: the letters after it are text, not commands.
    tmux.keys(&[":"]);
    tmux.wait_for("the prompt", Duration::from_secs(5), |s| {
        s.lines().last().is_some_and(|l| l.starts_with(":"))
    });
    tmux.keys(&["BSpace", "BSpace", "q"]);
    let screen = tmux.wait_for("q typed into the prompt", Duration::from_secs(5), |s| {
        s.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with(":q█"))
    });
    assert!(!screen.contains("etcdeck exited"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the prompt closed", Duration::from_secs(5), |s| !s.contains(":q█"));

    // 1 MB pasted into the value editor: one insertion, its Enters, y's and :'s only text.
    let mut pasted = String::with_capacity(1 << 20);
    let mut i = 0;
    while pasted.len() < (1 << 20) - 100 {
        pasted.push_str(&format!("line {i:06} y : q\r"));
        i += 1;
    }
    pasted.push_str("END-OF-PASTE");
    tmux.keys(&["e"]);
    tmux.wait_for("the edit prompt", Duration::from_secs(5), |s| s.contains("new value of /p/k: old█"));
    let started = Instant::now();
    tmux.paste(&pasted);
    let screen = tmux.wait_for("the whole paste", Duration::from_secs(30), |s| s.contains("END-OF-PASTE█"));
    let took = started.elapsed();
    println!("1 MB paste ({} bytes) into the value editor on screen in {took:?}", pasted.len());
    assert!(!screen.contains("y/enter"), "no question was opened by the paste:\n{screen}");
    assert_eq!(value_of(&endpoint, "/p/k").as_deref(), Some(&b"old"[..]), "nothing written by a paste");
    // Entered on purpose, and confirmed after the question is on screen: exactly what was pasted.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the confirmation", Duration::from_secs(10), |s| s.contains("Update /p/k?"));
    tmux.keys(&["y"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Terminals send a pasted line break as CR; the value gets the line feed that was copied.
    let expected = format!("old{}", pasted.replace('\r', "\n")).into_bytes();
    while value_of(&endpoint, "/p/k").as_deref() != Some(&expected[..]) {
        assert!(Instant::now() < deadline, "the pasted value was not written whole");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Keys typed ahead of a question (Enter then y in one burst, as a paste without brackets
    // would send them) never answer it: the question stays, nothing is written.
    {
        let (rt, mut c) = client(&endpoint);
        rt.block_on(c.put("/p/k", "old", None)).expect("put");
    }
    tmux.keys(&["Escape"]);
    tmux.wait_for("the browser", Duration::from_secs(5), |s| s.contains("▶ /p/k"));
    tmux.keys(&["Enter"]);
    // Under a loaded CI run the debug console took over 10 s here, after the 1 MB value.
    tmux.wait_for("the value again", Duration::from_secs(30), |s| s.contains("(text detected, 3 bytes)"));
    for round in 0..3 {
        tmux.keys(&["e"]);
        tmux.wait_for("the edit prompt", Duration::from_secs(5), |s| s.contains("new value of /p/k: old█"));
        tmux.keys(&["BSpace", "BSpace", "BSpace", "n", "e", "w", "Enter", "y", "Enter", "y"]);
        let screen = tmux.wait_for("the question, unanswered", Duration::from_secs(10), |s| {
            s.contains("Update /p/k?") && s.contains("before this question was on screen")
        });
        assert!(screen.contains("y/enter"), "round {round}: the question is still open:\n{screen}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(value_of(&endpoint, "/p/k").as_deref(), Some(&b"old"[..]), "round {round}: written");
        tmux.keys(&["Escape"]);
        tmux.wait_for("cancelled", Duration::from_secs(5), |s| s.contains("cancelled"));
    }

    // A delete's question, the same.
    tmux.keys(&["d", "y"]);
    tmux.wait_for("the delete question, unanswered", Duration::from_secs(10), |s| {
        s.contains("Delete /p/k?") && s.contains("before this question was on screen")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(value_of(&endpoint, "/p/k").is_some(), "deleted by a key typed ahead");
    tmux.keys(&["y"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while value_of(&endpoint, "/p/k").is_some() {
        assert!(Instant::now() < deadline, "a y typed after the question did not delete");
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(10));
}

#[test]
fn the_value_pane_follows_the_cursor_and_the_browser_recovers_when_its_endpoint_returns() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let mut node = EtcdeckNode::start("follow", &[]);
    let endpoint = node.client_url.clone();
    {
        let (rt, mut c) = client(&endpoint);
        for (k, v) in [("/v/a", "value-of-a"), ("/v/b", "value-of-b"), ("/v/c", "value-of-c")] {
            rt.block_on(c.put(k, v, None)).expect("put");
        }
    }
    let tmux = Tmux::start(&pane_command(&endpoint, "--refresh-interval 500ms"), 120, 30);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    tmux.keys(&["Tab"]);
    tmux.wait_for("the keys", Duration::from_secs(10), |s| s.contains("▶ /v/a"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("a's value", Duration::from_secs(10), |s| s.contains("value-of-a"));

    // The cursor moves: the pane shows the key under it, never the one before.
    tmux.keys(&["j"]);
    let screen = tmux.wait_for("b's value", Duration::from_secs(10), |s| s.contains("value-of-b"));
    assert!(screen.contains("▶ /v/b") && !screen.contains("value-of-a"), "{screen}");
    tmux.keys(&["j"]);
    tmux.wait_for("c's value", Duration::from_secs(10), |s| s.contains("value-of-c") && s.contains("▶ /v/c"));
    tmux.keys(&["k"]);
    tmux.wait_for("b's value again", Duration::from_secs(10), |s| s.contains("value-of-b"));

    // Deleted elsewhere: the pane says so within a refresh.
    {
        let (rt, mut c) = client(&endpoint);
        rt.block_on(c.delete("/v/b", None)).expect("delete");
    }
    let screen = tmux.wait_for("b deleted", Duration::from_secs(10), |s| {
        s.contains("deleted: this key does not exist any more")
    });
    assert!(!screen.contains("value-of-b"), "{screen}");

    // Deleted here: the pane does not keep showing it.
    tmux.keys(&["k"]);
    tmux.wait_for("a's value", Duration::from_secs(10), |s| s.contains("value-of-a") && s.contains("▶ /v/a"));
    tmux.keys(&["d"]);
    tmux.wait_for("the delete question", Duration::from_secs(10), |s| s.contains("Delete /v/a?"));
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("a deleted", Duration::from_secs(10), |s| {
        s.contains("✓ delete /v/a") && !s.contains("/v/b")
    });
    assert!(!screen.contains("value-of-a"), "{screen}");

    // The endpoint goes away: the browser says so, with when it last worked, and comes back by
    // itself once the endpoint does.
    node.kill();
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("the browser's error", Duration::from_secs(20), |s| {
        s.contains("last listed ") && s.contains("trying again")
    });
    assert!(screen.contains("✗ "), "{screen}");
    node.restart();
    let screen = tmux.wait_for("the browser back", Duration::from_secs(40), |s| {
        s.contains("/v/c") && !s.contains("last listed ") && s.contains("1 keys at revision")
    });
    assert!(!screen.contains("✗ "), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(10));
}

/// The restore wizard on a real etcd's snapshot: the format is shown, only etcd's tools are
/// offered, and the command shown restores the file.
#[test]
fn the_restore_wizard_offers_only_the_tools_that_restore_an_etcd_snapshot() {
    let Some(tools) = crate::support::etcd_tools() else { return };
    if require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = crate::support::EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("etcd.db");
    let (ok, _, err) = cluster.etcdctl(&["snapshot", "save", &file.display().to_string()]);
    assert!(ok, "etcdctl snapshot save: {err}");
    let tmux = Tmux::start(&pane_command(&cluster.client_urls()[0], ""), 250, 40);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    tmux.keys(&["R"]);
    tmux.wait_for("the restore prompt", Duration::from_secs(5), |s| s.contains("from the snapshot file:"));
    tmux.keys(&[&file.display().to_string(), "Enter"]);
    let wizard = tmux.wait_for("the wizard", Duration::from_secs(10), |s| s.contains("SHA-256 checks out"));
    assert!(
        wizard.contains("file: etcd snapshot (bbolt database + SHA-256) (bbolt version 2, page size 4096)"),
        "{wizard}"
    );
    assert!(wizard.contains("ETCDCTL_API=3 etcdctl snapshot restore"), "{wizard}");
    // etcdeck restores etcd's snapshots too: offered after etcd's own tools.
    assert!(wizard.contains("t: for etcd 3.5+, etcdeck"), "{wizard}");
    assert!(!wizard.contains("etcdeck snapshot restore"), "{wizard}");
    tmux.keys(&["t"]);
    tmux.wait_for("etcdutl's", Duration::from_secs(5), |s| s.contains("   etcdutl snapshot restore"));
    tmux.keys(&["t"]);
    tmux.wait_for("etcdeck's", Duration::from_secs(5), |s| s.contains("   etcdeck snapshot restore"));
    tmux.keys(&["t"]);
    tmux.wait_for("etcdctl's again", Duration::from_secs(5), |s| {
        s.contains("   ETCDCTL_API=3 etcdctl snapshot restore") && !s.contains("etcdeck snapshot restore")
    });
    // The command offered, copied as the user copies it (OSC 52, which tmux keeps as a buffer),
    // works on this file.
    tmux.run(&["set-option", "-g", "set-clipboard", "on"]);
    tmux.keys(&["y"]);
    tmux.wait_for("the copy", Duration::from_secs(5), |s| s.contains("copied the restore commands"));
    let command = tmux.run(&["show-buffer"]);
    assert!(command.starts_with("ETCDCTL_API=3 etcdctl snapshot restore "), "{command}");
    let etcdctl = tools.etcdctl.display().to_string();
    let command = command.replacen(" etcdctl ", &format!(" {etcdctl} "), 1);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(dir.path())
        .output()
        .expect("run the command");
    assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    let restored = std::fs::read_dir(dir.path()).expect("dir").flatten().any(|e| {
        e.file_name().to_string_lossy().ends_with(".restored.etcd") && e.path().join("member").is_dir()
    });
    assert!(restored, "the restore made a member data dir");
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(10));
}
