//! The console acts only on what the user saw: pastes are text, keys typed before a question is on
//! screen are not its answer, Backspace never closes a prompt. Run through tmux as a person types.

use std::time::{Duration, Instant};

use crate::console_tmux::{pane_command, Tmux};
use crate::support::{require_tool, EtcdeckNode};

fn client(endpoint: &str) -> (tokio::runtime::Runtime, etcd_client::Client) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let c = rt.block_on(etcd_client::Client::connect([endpoint], None)).expect("connect");
    (rt, c)
}

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
    tmux.wait_for("the value again", Duration::from_secs(10), |s| s.contains("(text detected, 3 bytes)"));
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
    tmux.wait_for("etcdeck to exit", Duration::from_secs(10), |s| s.contains("etcdeck exited 0"));
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
    tmux.wait_for("etcdeck to exit", Duration::from_secs(10), |s| s.contains("etcdeck exited 0"));
}
