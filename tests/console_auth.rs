//! The console's users and roles view, as an operator uses it: root adds a role, a permission, a
//! user (its password masked) and grants the role, all through confirmed dialogs; then that
//! limited user's console works, starts its key browser where its role may read, and says
//! "permission denied" where it may not.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::support::tmux::{pane_command, Tmux};
use crate::support::{etcd_tools, require_tool, EtcdCluster, EtcdeckNode};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// Types a command, waits for its dialog, says yes, waits for the answer, closes the dialog.
fn change(tmux: &Tmux, command: &str, done: &str) {
    tmux.keys(&[":", command, "Enter"]);
    tmux.wait_for(&format!("the dialog of :{command}"), Duration::from_secs(5), |s| {
        s.contains("the same with etcdctl:")
    });
    tmux.keys(&["y"]);
    tmux.wait_for(&format!("the answer to :{command}"), Duration::from_secs(10), |s| s.contains(done));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("┌ users and roles ─"));
}

#[test]
fn root_manages_users_and_roles_and_a_limited_user_gets_a_working_console() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let node = EtcdeckNode::start("console-auth", &["--bcrypt-cost=4"]);
    scenario(&node.client_url);
}

#[test]
fn the_users_and_roles_view_works_the_same_on_a_real_etcd() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let Some(tools) = etcd_tools() else { return };
    let etcd = EtcdCluster::start(&tools, 1);
    etcd.wait_healthy(Duration::from_secs(20));
    scenario(&etcd.members[0].client_url);
}

fn scenario(url: &str) {
    let url = url.to_string();
    block_on(async {
        let mut c = Client::connect([url.as_str()], None).await.expect("connect");
        c.put("app/config", "v1", None).await.expect("put");
        c.put("other/secret", "s", None).await.expect("put");
        let mut auth = c.auth_client();
        auth.user_add("root", "rootpw", None).await.expect("root");
        auth.user_grant_role("root", "root").await.expect("grant");
        auth.auth_enable().await.expect("enable");
    });

    let tmux = Tmux::start(&pane_command(&url, "--user root:rootpw --refresh-interval 500ms"), 150, 36);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    tmux.keys(&[":", "auth", "Enter"]);
    tmux.wait_for("the users view", Duration::from_secs(10), |s| {
        s.contains("┌ users ") && s.contains(" root ")
    });
    change(&tmux, "role add app", "done: add role app");
    change(
        &tmux,
        "grant app readwrite app/ --prefix",
        "done: grant readwrite on [app/, app0) (prefix app/) to role app",
    );
    tmux.keys(&[":", "user add ops", "Enter"]);
    tmux.wait_for("the password prompt", Duration::from_secs(5), |s| s.contains("password of new user ops"));
    tmux.keys(&["opspw"]);
    let screen = tmux.wait_for("the masked password", Duration::from_secs(5), |s| s.contains("•••••"));
    assert!(!screen.contains("opspw"), "the password is never shown:\n{screen}");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the add dialog", Duration::from_secs(5), |s| s.contains("add user ops?"));
    assert!(screen.contains("user add ops") && !screen.contains("opspw"), "{screen}");
    tmux.keys(&["y"]);
    tmux.wait_for("the add", Duration::from_secs(10), |s| s.contains("done: add user ops"));
    tmux.keys(&["Escape"]);
    // Typed before the dialog is seen closed, the command's letters would reach the dashboard as
    // its keys (under CI's load `a`, `d`, `Enter` once made an empty `:user add`).
    tmux.wait_for("the dialog to close", Duration::from_secs(5), |s| !s.contains("┌ users and roles ─"));
    change(&tmux, "grant-role ops app", "done: grant role app to user ops");
    let screen = tmux.wait_for("the new user, role and permission", Duration::from_secs(10), |s| {
        s.contains(" ops ") && s.contains("readwrite") && s.contains("[app/, app0) (prefix app/)")
    });
    assert!(screen.lines().any(|l| l.contains(" ops ") && l.contains("app")), "{screen}");
    if std::env::var_os("ETCDECK_SHOW_SCREENS").is_some() {
        eprintln!("{screen}");
    }
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
    drop(tmux);

    // The user works from etcd's point of view.
    let got = block_on(async {
        let mut c = Client::connect([url.as_str()], Some(ConnectOptions::new().with_user("ops", "opspw")))
            .await
            .expect("ops signs in");
        c.get("app/config", None).await.map(|r| r.kvs().len())
    });
    assert_eq!(got.expect("ops reads app/"), 1);

    // ops's console: the dashboard works, the key browser starts at app/, other keys and the users
    // list say permission denied.
    let tmux = Tmux::start(&pane_command(&url, "--user ops:opspw --refresh-interval 500ms"), 150, 36);
    tmux.wait_for("ops's dashboard", Duration::from_secs(15), |s| {
        s.contains("members 1/1 up") && s.contains("ops may read from: app/")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the key browser at app/", Duration::from_secs(10), |s| s.contains("config"));
    tmux.keys(&[":", "keys other/", "Enter"]);
    tmux.wait_for("permission denied for other/", Duration::from_secs(10), |s| {
        s.contains("permission denied")
    });
    tmux.keys(&[":", "auth", "Enter"]);
    let screen = tmux.wait_for("ops's users view", Duration::from_secs(10), |s| {
        s.contains("your roles: app") && s.contains("[app/, app0) (prefix app/)")
    });
    assert!(screen.contains("permission denied"), "the user list is refused:\n{screen}");
    if std::env::var_os("ETCDECK_SHOW_SCREENS").is_some() {
        eprintln!("{screen}");
    }
    change(&tmux, "role add mine", "add role mine failed:");
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
}

/// Under JWT tokens, every change to users or roles outdates the console's token for reads and
/// writes of keys (etcd's "revision of auth store is old": a JWT carries the auth revision it was
/// signed at): the console signs in again and retries once, as etcd's own clients do.
#[test]
fn under_jwt_tokens_the_console_signs_in_again_after_an_auth_change() {
    if require_tool("tmux", None).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let private = dir.path().join("jwt.key");
    std::fs::write(&private, key.serialize_pem()).expect("write");
    let flag = format!("--auth-token=jwt,priv-key={},sign-method=ES256", private.display());
    let node = EtcdeckNode::start("console-jwt", &[flag.as_str(), "--bcrypt-cost=4"]);
    let url = node.client_url.clone();
    block_on(async {
        let c = Client::connect([url.as_str()], None).await.expect("connect");
        let mut auth = c.auth_client();
        auth.user_add("root", "rootpw", None).await.expect("root");
        auth.user_grant_role("root", "root").await.expect("grant");
        auth.auth_enable().await.expect("enable");
    });
    block_on(async {
        let mut c = Client::connect([url.as_str()], Some(ConnectOptions::new().with_user("root", "rootpw")))
            .await
            .expect("root");
        c.put("jwt/seen", "yes", None).await.expect("put");
    });
    let tmux = Tmux::start(&pane_command(&url, "--user root:rootpw --refresh-interval 500ms"), 150, 36);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    // A watch tail before the change: its connection signs in now, with the auth store as it is.
    tmux.keys(&[":", "watch jwt/", "Enter"]);
    tmux.wait_for("the first tail", Duration::from_secs(15), |s| s.contains("watching since revision"));
    tmux.keys(&[":", "auth", "Enter"]);
    tmux.wait_for("the users view", Duration::from_secs(10), |s| {
        s.contains("┌ users ") && s.contains(" root ")
    });
    change(&tmux, "role add first", "done: add role first");
    change(&tmux, "grant first read k", "done: grant read on k to role first");
    // The console's token is now older than the auth store: reading keys needs a new one.
    tmux.keys(&[":", "keys jwt/", "Enter"]);
    let screen = tmux.wait_for("the key listing", Duration::from_secs(10), |s| {
        s.contains("seen") || s.contains("revision of auth store")
    });
    assert!(screen.contains("seen") && !screen.contains("revision of auth store"), "{screen}");
    // A tail opened now, on that connection and its outdated token, reconnects signed in again.
    tmux.keys(&[":", "watch jwt/l", "Enter"]);
    tmux.wait_for("the tail", Duration::from_secs(15), |s| s.contains("watching since revision"));
    block_on(async {
        let mut c = Client::connect([url.as_str()], Some(ConnectOptions::new().with_user("root", "rootpw")))
            .await
            .expect("root");
        c.put("jwt/later", "v", None).await.expect("put");
    });
    tmux.wait_for("the event", Duration::from_secs(10), |s| s.contains("jwt/later"));
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(5));
}
