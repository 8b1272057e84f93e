//! `etcdeck backup` against real etcd 3.4 and etcdeck nodes: a service run every 2 s keeps exactly
//! the 3 newest verified backups, each read by `etcdctl snapshot status`; a backup killed -9 (or
//! stopped with SIGTERM) in flight leaves no file with a backup's name; uploads to a real
//! S3-compatible server (moto, started here), listed and fetched back, restore into etcd.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, etcd_tools, etcdeck, run_etcdctl, ChildGuard, EtcdCluster, EtcdeckNode};

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    out.sort();
    out
}

fn is_backup(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    etcdeck::etcd::backup::BackupName::parse(&name).is_some()
}

fn fill(endpoint: &str, keys: usize, value_bytes: usize) {
    let (rt, mut c) = support::blocking_client(endpoint);
    let value = "v".repeat(value_bytes);
    for chunk in (0..keys).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<etcd_client::TxnOp> = chunk
            .iter()
            .map(|i| etcd_client::TxnOp::put(format!("/b/k{i:06}"), value.clone(), None))
            .collect();
        rt.block_on(c.txn(etcd_client::Txn::new().and_then(ops))).expect("fill");
    }
}

fn etcdctl_status(etcdctl: &Path, file: &Path) -> String {
    let (ok, out, err) =
        run_etcdctl(etcdctl, &[], &["snapshot", "status", &file.display().to_string(), "-w", "json"]);
    assert!(ok, "etcdctl snapshot status {}: {err}", file.display());
    out
}

#[test]
fn backup_every_2s_keeps_exactly_the_3_newest_verified_files() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let url = cluster.members[0].client_url.clone();
    fill(&url, 300, 100);
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("backups");
    let log = dir.path().join("backup.log");
    let mut child = ChildGuard(
        etcdeck()
            .args(["backup", "--endpoints", &url, "--dir", &bdir.display().to_string()])
            .args(["--every", "2s", "--keep", "3"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let (rt, mut c) = support::blocking_client(&url);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut written = 0;
    while std::fs::read_to_string(&log).unwrap_or_default().matches(" saved ").count() < 5 {
        assert!(
            Instant::now() < deadline,
            "5 backups not taken in 40 s:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        rt.block_on(c.put(format!("/b/more{written}"), "x", None)).unwrap();
        written += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "SIGTERM: {status}\n{text}");
    assert!(text.contains("SIGTERM: stopped"), "{text}");
    let files = backups(&bdir);
    assert_eq!(files.len(), 3, "{files:?}\n{text}");
    assert!(files.iter().all(|f| is_backup(f)), "only backups in the directory: {files:?}");
    assert!(text.matches("retention: removed").count() >= 2, "{text}");
    let mut revisions = Vec::new();
    for f in &files {
        let json = etcdctl_status(&tools.etcdctl, f);
        let name =
            etcdeck::etcd::backup::BackupName::parse(&f.file_name().unwrap().to_string_lossy()).unwrap();
        assert!(json.contains(&format!("\"revision\":{}", name.revision)), "{json} for {}", f.display());
        revisions.push(name.revision);
    }
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "the newest three, in order: {revisions:?}");
    // etcdeck backup list reads the same three.
    let out = etcdeck()
        .args(["backup", "list", "--dir", &bdir.display().to_string(), "-w", "json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
}

#[test]
fn a_backup_killed_or_stopped_in_flight_leaves_no_backup_named_file() {
    let Some(tools) = etcd_tools() else { return };
    let node = EtcdeckNode::start("b", &[]);
    fill(&node.client_url, 20_000, 1000);
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("backups");
    let start = || {
        ChildGuard(
            etcdeck()
                .args(["backup", "--endpoints", &node.client_url, "--dir", &bdir.display().to_string()])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    // Waits for a part file other than `old` (the one a killed run left).
    let wait_part = |what: &str, old: &[PathBuf]| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let files = backups(&bdir);
            if files.iter().any(|f| f.to_string_lossy().ends_with(".db.part") && !old.contains(f)) {
                return;
            }
            assert!(
                files.iter().all(|f| !is_backup(f)),
                "{what}: the backup finished before it could be cut"
            );
            assert!(Instant::now() < deadline, "{what}: no part file in 20 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // kill -9 in flight: a part file, never a backup's name.
    let mut child = start();
    wait_part("kill -9", &[]);
    let _ = child.0.kill();
    let _ = child.0.wait();
    let files = backups(&bdir);
    assert!(files.iter().all(|f| !is_backup(f)), "a killed backup left {files:?}");
    assert_eq!(files.len(), 1, "{files:?}");
    // SIGTERM in flight: the part file is removed, exit 0.
    let left = backups(&bdir);
    let mut child = start();
    wait_part("SIGTERM", &left);
    let _ = Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status();
    let status = child.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(
        err.contains("left by a backup that did not finish"),
        "the kill -9's part file is cleaned up: {err}"
    );
    assert!(err.contains("SIGTERM: removed the backup in flight"), "{err}");
    assert!(backups(&bdir).is_empty(), "{:?}", backups(&bdir));
    // The next run finishes, and etcdctl reads what it wrote.
    let out = etcdeck()
        .args(["backup", "--endpoints", &node.client_url, "--dir", &bdir.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = backups(&bdir);
    assert_eq!(files.len(), 1);
    let json = etcdctl_status(&tools.etcdctl, &files[0]);
    assert!(json.contains("\"totalKey\""), "{json}");
    // A directory that cannot be one: a clear error, exit 1, nothing written.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let out = etcdeck()
        .args([
            "backup",
            "--endpoints",
            &node.client_url,
            "--dir",
            &blocker.join("sub").display().to_string(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--dir") && err.contains("a-file/sub") && err.contains("Not a directory"), "{err}");
}

/// A moto S3 server on a free loopback port, killed with the handle.
struct S3 {
    endpoint: String,
    _child: ChildGuard,
}

impl S3 {
    fn start() -> Option<Self> {
        let moto = support::require_tool("moto_server", Some("MOTO_SERVER_BIN"))?;
        let port = support::free_port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while support::http_get(&addr, "/").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not answer in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self { endpoint: format!("http://{addr}"), _child: ChildGuard(child) })
    }

    fn create_bucket(&self, name: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "etcdeck-test")
            .env("AWS_SECRET_ACCESS_KEY", "etcdeck-test")
            .env("AWS_REGION", "us-east-1");
    }
}

#[test]
fn backups_upload_to_s3_list_and_fetch_back_and_restore_into_etcd() {
    let Some(tools) = etcd_tools() else { return };
    let Some(s3) = S3::start() else { return };
    s3.create_bucket("backups");
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let url = cluster.members[0].client_url.clone();
    fill(&url, 500, 200);
    let (ok, _, err) = cluster.etcdctl(&["put", "/restored/marker", "from the uploaded backup"]);
    assert!(ok, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("backups");
    let target = "s3://backups/etcd/prod";
    let run = |args: &[&str]| {
        let mut cmd = etcdeck();
        s3.env(&mut cmd);
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let bd = bdir.display().to_string();
    let (code, _, err) = run(&["backup", "--endpoints", &url, "--dir", &bd, "--upload", target]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("uploaded s3://backups/etcd/prod/etcd-snapshot-"), "{err}");
    // Listed where it is, then only there once the local copy is gone.
    let (code, out, err) = run(&["backup", "list", "--dir", &bd, "--upload", target, "-w", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["name"], rows[1]["name"]);
    let name = rows[0]["name"].as_str().unwrap().to_string();
    std::fs::remove_dir_all(&bdir).unwrap();
    let (code, out, _) = run(&["backup", "list", "--upload", target]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("s3://backups/etcd/prod/{name}")), "{out}");
    // A damaged name is refused before anything is fetched.
    let (code, _, err) = run(&["backup", "fetch", "notes.txt", "--upload", target, "--dir", &bd]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not a backup's name"), "{err}");
    let (code, out, err) = run(&["backup", "fetch", &name, "--upload", target, "--dir", &bd]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verified"), "{out}");
    let fetched = bdir.join(&name);
    // Restored by etcdctl into a new member, which serves what the cluster had.
    let restored = dir.path().join("restored.etcd");
    let (client, peer) = (support::free_port(), support::free_port());
    let member = support::RestoredEtcd {
        name: "restored",
        data_dir: &restored,
        client_url: &format!("http://127.0.0.1:{client}"),
        peer_url: &format!("http://127.0.0.1:{peer}"),
        initial_cluster: &format!("restored=http://127.0.0.1:{peer}"),
        token: None,
    };
    member.restore(&tools.etcdctl, &fetched);
    let _etcd = member.start(&tools.etcd, &dir.path().join("restored.log"), &[]);
    let endpoint = vec![member.client_url.to_string()];
    support::wait_endpoints_healthy(
        &tools.etcdctl,
        &endpoint,
        "the restored member",
        Duration::from_secs(20),
    );
    let (ok, out, err) =
        run_etcdctl(&tools.etcdctl, &endpoint, &["get", "/restored/marker", "--print-value-only"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "from the uploaded backup");
    let (rt, mut c) = support::blocking_client(member.client_url);
    let count =
        rt.block_on(c.get("/b/", Some(etcd_client::GetOptions::new().with_prefix().with_count_only())));
    assert_eq!(count.unwrap().count(), 500);
}

/// The console with --backup-dir: the snapshot dialog backs up into it (a named, verified backup),
/// and the restore wizard lists the backups there to pick by number.
#[test]
fn the_console_backs_up_into_the_backup_dir_and_the_wizard_lists_its_backups() {
    use crate::support::tmux::{pane_command, Tmux};
    let Some(tools) = etcd_tools() else { return };
    if support::require_tool("tmux", None).is_none() {
        return;
    }
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    let url = cluster.members[0].client_url.clone();
    fill(&url, 100, 100);
    let dir = tempfile::tempdir().unwrap();
    let bdir = dir.path().join("backups");
    // One backup taken beforehand by the service's one-shot run.
    let out = etcdeck()
        .args(["backup", "--endpoints", &url, "--dir", &bdir.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = backups(&bdir);
    assert_eq!(first.len(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    let (ok, _, err) = cluster.etcdctl(&["put", "/b/after", "x"]);
    assert!(ok, "{err}");
    let tmux = Tmux::start(&pane_command(&url, &format!("--backup-dir {}", bdir.display())), 200, 40);
    tmux.wait_for("the dashboard", Duration::from_secs(15), |s| s.contains("members 1/1 up"));
    tmux.keys(&["S"]);
    tmux.wait_for("the backup offered", Duration::from_secs(5), |s| {
        s.contains(&format!("snapshot to: {}/", bdir.display()))
            && s.contains("enter: back up into the backup directory")
    });
    tmux.keys(&["Enter"]);
    let done = tmux.wait_for("the verified backup", Duration::from_secs(30), |s| {
        s.contains("and verified") || s.contains("snapshot of")
    });
    let now = backups(&bdir);
    assert_eq!(now.len(), 2, "{now:?}\n{done}");
    let newest = now.iter().find(|f| !first.contains(f)).unwrap().clone();
    assert!(is_backup(&newest), "{newest:?}");
    let flat = done.replace(['│', '\n'], "");
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    assert!(flat.contains(&name[..40]), "the dialog names the backup {name}:\n{done}");
    let json = etcdctl_status(&tools.etcdctl, &newest);
    assert!(json.contains("\"revision\""), "{json}");
    tmux.keys(&["Escape"]);
    // R: the backups, newest first; 2 picks the older one.
    tmux.keys(&["R"]);
    let list = tmux.wait_for("the backups listed", Duration::from_secs(10), |s| {
        s.contains("2 backups in the backup directory")
    });
    let at = |name: &str| list.find(name).unwrap_or(usize::MAX);
    let older = first[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(at(&name) < at(&older), "newest first:\n{list}");
    assert!(
        list.contains(&format!("from the snapshot file: {}", newest.display())),
        "the newest is offered:\n{list}"
    );
    let typed = newest.display().to_string().chars().count();
    tmux.keys(&vec!["BSpace"; typed]);
    tmux.keys(&["2", "Enter"]);
    let wizard = tmux.wait_for("the wizard on the older backup", Duration::from_secs(10), |s| {
        s.contains("restore the cluster from") && s.contains("SHA-256 checks out")
    });
    assert!(wizard.contains(&older[..30]), "{wizard}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the wizard closed", Duration::from_secs(5), |s| !s.contains("restore the cluster from"));
    tmux.keys(&["q"]);
    tmux.wait_exited_ok(Duration::from_secs(10));
}

/// As a systemd Type=notify service: READY=1 on $NOTIFY_SOCKET once it runs, WATCHDOG=1 at half
/// of $WATCHDOG_USEC, and a status line after each round.
#[test]
fn the_backup_service_tells_systemd_it_is_ready_and_feeds_the_watchdog() {
    let node = EtcdeckNode::start("b", &[]);
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // systemd names the service's PID in WATCHDOG_PID: a shell that execs etcdeck keeps its own.
    let command = format!(
        "WATCHDOG_PID=$$ exec {} backup --endpoints {} --every 1h --dir {}",
        support::etcdeck_bin(),
        node.client_url,
        dir.path().join("backups").display()
    );
    let mut child = ChildGuard(
        Command::new("sh")
            .args(["-c", &command])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok(n) = socket.recv(&mut buf) else { break };
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        let ready = seen.iter().any(|m| m.contains("READY=1"));
        let watchdog = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2;
        let status = seen.iter().any(|m| m.contains("STATUS=last backup "));
        if ready && watchdog && status {
            break;
        }
    }
    let _ = child.0.kill();
    let _ = child.0.wait();
    assert!(seen.iter().any(|m| m.contains("READY=1")), "{seen:?}");
    assert!(seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2, "{seen:?}");
    assert!(
        seen.iter().any(|m| m.contains("STATUS=last backup ") && m.contains("etcd-snapshot-")),
        "{seen:?}"
    );
}
