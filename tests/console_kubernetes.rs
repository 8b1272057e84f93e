//! The console on `etcdeck demo --kubernetes`, as a person uses it in tmux: `:k8s` lists /registry/ as
//! kube-apiserver's resources; the value pane shows a Pod as YAML, a Secret masked until `u`, an
//! encrypted Secret named as such, and refuses to edit what the apiserver owns.

use std::time::Duration;

use crate::support::require_tool;
use crate::support::tmux::{demo_pane, Tmux};

/// Filters the loaded rows down to `text` (f, then the text in place of the last filter) and opens
/// the first match.
fn open_matching(tmux: &Tmux, text: &str) -> String {
    tmux.keys(&["f"]);
    tmux.wait_for("the filter prompt", Duration::from_secs(5), |s| s.contains("filter"));
    // The prompt starts with the filter in force: clear it.
    let clear = vec!["BSpace"; 64];
    tmux.keys(&clear);
    tmux.keys(&["-l", text]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filtered rows", Duration::from_secs(5), |s| s.contains(&format!("filter {text:?}")));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the value", Duration::from_secs(10), |s| s.contains("kubernetes ") && s.contains(text))
}

#[test]
fn the_kubernetes_demo_reads_as_resources_and_objects() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let tmux = demo_pane(tmp.path(), "--kubernetes --nodes 1");
    tmux.wait_for("the demo's dashboard", Duration::from_secs(60), |s| s.contains("members 1/1 up"));

    tmux.command("k8s");
    let screen = tmux.wait_for("the resources", Duration::from_secs(10), |s| {
        s.contains("kubernetes: /registry/ (flat)") && s.contains("services/specs")
    });
    let header = screen.lines().find(|l| l.contains("RESOURCE")).expect("the column names");
    for column in ["NAMESPACE", "NAME", "KIND", "SIZE", "REV", "AGE"] {
        assert!(header.contains(column), "{header}");
    }
    let pod =
        screen.lines().find(|l| l.contains("web-6d9f7c8b5d-4kq7z") && l.contains("Pod")).expect("a Pod row");
    assert!(pod.contains("pods") && pod.contains("shop") && pod.contains("1.6kB"), "{pod}");
    let sealed = screen.lines().find(|l| l.contains("payment-api-key")).expect("the encrypted Secret");
    assert!(sealed.contains("encrypted:aescbc"), "{sealed}");
    assert!(screen.lines().any(|l| l.contains("blue-widget") && l.contains("Widget")), "{screen}");

    // A Pod, as the API prints it.
    let screen = open_matching(&tmux, "pods/shop/web-6d9f7c8b5d-9xw2m");
    for line in ["kind: Pod", "  namespace: shop", "  resourceVersion: \"16\""] {
        assert!(screen.contains(line), "{line}:\n{screen}");
    }
    // Paging down reaches its status.
    let screen = tmux.wait_for("the lines shown", Duration::from_secs(5), |s| s.contains(" lines 1-"));
    assert!(!screen.contains("podIP: 10.244.0.12"), "{screen}");
    tmux.keys(&["C-d"]);
    tmux.keys(&["C-d"]);
    tmux.wait_for("the Pod's container", Duration::from_secs(5), |s| {
        s.contains("    image: registry.example.com/shop/web:2.14.1") && s.contains(" lines 41-")
    });
    for _ in 0..6 {
        tmux.keys(&["C-d"]);
    }
    tmux.wait_for("the Pod's status", Duration::from_secs(5), |s| s.contains("podIP: 10.244.0.12"));
    // The apiserver owns it: no edit until the pane shows the stored bytes.
    tmux.keys(&["e"]);
    tmux.wait_for("the refusal", Duration::from_secs(5), |s| s.contains("the apiserver owns it"));

    // A Secret: masked until u.
    tmux.keys(&["Escape"]);
    let screen = open_matching(&tmux, "db-credentials");
    assert!(screen.contains("password: \"<hidden: 15 bytes>\""), "{screen}");
    assert!(screen.contains("data hidden (u shows it)"), "{screen}");
    assert!(!screen.contains("czNjcjN0LXBAc3N3MHJk"), "{screen}");
    tmux.keys(&["u"]);
    tmux.wait_for("the Secret's data", Duration::from_secs(5), |s| {
        s.contains("password: czNjcjN0LXBAc3N3MHJk")
    });
    tmux.keys(&["u"]);
    tmux.wait_for("the Secret masked again", Duration::from_secs(5), |s| s.contains("<hidden: 15 bytes>"));

    // An encrypted Secret is named with its provider and key.
    tmux.keys(&["Escape"]);
    let screen = open_matching(&tmux, "payment-api-key");
    assert!(screen.contains("encrypted at rest by aescbc (v1) with key \"key1\""), "{screen}");

    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(20));
}
