//! The command line as a user meets it: flags, help and errors.

use crate::support::etcdeck;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = etcdeck().args(args).output().expect("run etcdeck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_only_working_commands_and_etcdctls_flags() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--endpoints",
        "--dial-timeout",
        "--command-timeout",
        "--cacert",
        "--cert",
        "--key",
        "--insecure-skip-tls-verify",
        "--user",
        "--password",
        "ETCDCTL_ENDPOINTS",
    ] {
        assert!(out.contains(flag), "{flag} missing from --help");
    }
    let commands: Vec<&str> = out
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .expect("a Commands section")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "console", "status", "demo", "bench", "snapshot", "get", "decode", "mirror", "backup", "node",
            "help"
        ]
    );
}

#[test]
fn bad_flags_get_one_clear_line_and_exit_1() {
    let (code, _, err) = run(&["status", "--endpoints", "localhost"]);
    assert_eq!(code, 1);
    assert_eq!(err, "Error: --endpoints: invalid endpoint \"localhost\": expected host:port\n");
    let (code, _, err) = run(&["status", "--dial-timeout", "5"]);
    assert_eq!(code, 2, "clap's usage error");
    assert!(err.contains("time: missing unit in duration \"5\""), "{err}");
    let (code, _, err) = run(&["status", "--cacert", "/nonexistent/ca.crt"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error: --cacert: cannot read /nonexistent/ca.crt"), "{err}");
    let (code, _, err) = run(&["--user", "root", "status"]);
    assert_eq!(code, 1, "no terminal to prompt on");
    assert!(err.contains("password is required for user \"root\""), "{err}");
    let (code, _, err) = run(&["--refresh-interval", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be at least 100ms"), "{err}");
    let (code, _, err) = run(&["--timings", "status"]);
    assert_eq!(code, 1);
    assert!(err.contains("console options"), "{err}");
}

#[test]
fn endpoints_come_from_etcdctls_environment_variable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let out = etcdeck()
        .args(["status", "-w", "json"])
        .env("ETCDCTL_ENDPOINTS", format!("127.0.0.1:{port}"))
        .env("ETCDCTL_DIAL_TIMEOUT", "500ms")
        .output()
        .expect("run");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["endpoints"][0], format!("http://127.0.0.1:{port}"));
    assert_eq!(report["healthy"], false);
}

#[test]
fn a_broken_user_keymap_or_theme_is_named_before_the_terminal_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("etcdeck")).expect("mkdir");
    let keymap = dir.path().join("etcdeck/keymap.toml");
    std::fs::write(&keymap, "[keys]\nfly = [\"f\"]\n").expect("write");
    let out = etcdeck().env("XDG_CONFIG_HOME", dir.path()).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("Error: {}: unknown action \"fly\"", keymap.display())), "{err}");

    std::fs::remove_file(&keymap).expect("rm");
    std::fs::write(dir.path().join("etcdeck/theme.toml"), "[colors]\ndown = \"blurple\"\n").expect("write");
    let out = etcdeck().env("XDG_CONFIG_HOME", dir.path()).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour \"down\": cannot read \"blurple\" as a colour"), "{err}");
}

#[test]
fn the_console_without_a_terminal_points_to_status() {
    let (code, _, err) = run(&["--endpoints", "127.0.0.1:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("the console needs a terminal") && err.contains("etcdeck status"), "{err}");
}
