//! Test support: a real etcd cluster on free loopback ports, stopped by its own handle.

#![allow(dead_code)]

pub mod pki;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REQUIRE_INTEROP: &str = "ETCDECK_REQUIRE_INTEROP";

/// Path of the etcdeck binary under test.
pub fn etcdeck_bin() -> &'static str {
    env!("CARGO_BIN_EXE_etcdeck")
}

/// A command for the etcdeck binary with no ETCDCTL_* variables from the caller's environment, so an
/// operator's own ETCDCTL_USER or ETCDCTL_CACERT cannot change what a test sees.
pub fn etcdeck() -> Command {
    let mut cmd = Command::new(etcdeck_bin());
    without_etcdctl_env(&mut cmd);
    cmd
}

pub fn without_etcdctl_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(name);
        }
    }
}

fn find_in_path(name: &str, env_override: Option<&str>) -> Option<PathBuf> {
    if let Some(p) = env_override.and_then(std::env::var_os) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A tool a test needs, from `env_override` or PATH; `None` means skip (the reason is printed).
/// Panics when ETCDECK_REQUIRE_INTEROP=1, so CI cannot pass by skipping.
pub fn require_tool(name: &str, env_override: Option<&str>) -> Option<PathBuf> {
    match find_in_path(name, env_override) {
        Some(p) => Some(p),
        None => {
            let msg = match env_override {
                Some(var) => format!("{name} not found on PATH (nor in ${var})"),
                None => format!("{name} not found on PATH"),
            };
            if std::env::var(REQUIRE_INTEROP).as_deref() == Ok("1") {
                panic!("{msg}, and {REQUIRE_INTEROP}=1 makes that a failure");
            }
            eprintln!("SKIP: {msg}; install it (Debian: apt-get install etcd-server etcd-client tmux) to run this test");
            None
        }
    }
}

pub struct EtcdTools {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
}

pub fn etcd_tools() -> Option<EtcdTools> {
    let etcd = require_tool("etcd", Some("ETCD_BIN"));
    let etcdctl = require_tool("etcdctl", Some("ETCDCTL_BIN"));
    Some(EtcdTools { etcd: etcd?, etcdctl: etcdctl? })
}

/// Runs etcdctl (v3 API, 5 s command timeout) against `endpoints`; returns (success, stdout, stderr).
pub fn run_etcdctl(etcdctl: &Path, endpoints: &[String], args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(etcdctl);
    without_etcdctl_env(&mut cmd);
    let out = cmd
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .expect("run etcdctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A free loopback port, below the ephemeral range so that no client connection takes it before the
/// server binds it (see etcdeck's own `free_port`).
pub fn free_port() -> u16 {
    etcdeck::node::local::free_port().expect("a free loopback port")
}

/// Server certificate, key and the CA that signs client certificates.
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A throwaway CA (ca.crt) with a server certificate for 127.0.0.1 and localhost (server.crt,
/// server.key) and a client certificate with CN=root (client.crt, client.key).
pub struct TestPki {
    pki: pki::Pki,
}

impl TestPki {
    pub fn create() -> Self {
        let pki = pki::Pki::new();
        let ca = pki.ca("ca");
        pki.leaf(&ca, "server", "localhost", &["127.0.0.1", "localhost"], pki::Use::Both, (-1, 2));
        pki.leaf(&ca, "client", "root", &[], pki::Use::Client, (-1, 2));
        Self { pki }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.pki.path(file)
    }

    pub fn server(&self) -> ServerTls {
        ServerTls { cert: self.path("server.crt"), key: self.path("server.key"), ca: self.path("ca.crt") }
    }
}

pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

/// A real etcd cluster whose processes die with this handle.
pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    etcd: PathBuf,
    pub etcdctl: PathBuf,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members with short raft timers (heartbeat 50 ms, election 500 ms) so elections in
    /// tests take about a second.
    pub fn start(tools: &EtcdTools, n: usize) -> Self {
        Self::start_with(tools, n, None)
    }

    /// As `start`; with `tls`, clients must connect over https with a certificate signed by its CA.
    pub fn start_with(tools: &EtcdTools, n: usize, tls: Option<&ServerTls>) -> Self {
        Self::start_full(tools, n, tls, &[])
    }

    /// As `start_with`, with `extra` flags for every member. A free port can be taken by another
    /// test before etcd binds it; etcd then exits at once, and the cluster starts again on other
    /// ports (up to three times).
    pub fn start_full(tools: &EtcdTools, n: usize, tls: Option<&ServerTls>, extra: &[&str]) -> Self {
        for _ in 0..2 {
            let mut cluster = Self::start_once(tools, n, tls, extra);
            if !cluster.lost_a_port() {
                return cluster;
            }
            eprintln!("an etcd member lost its port to another process; starting the cluster on other ports");
        }
        Self::start_once(tools, n, tls, extra)
    }

    /// Waits (up to 10 s) until every member accepts connections on its client port; true when one
    /// exited because its address was in use.
    fn lost_a_port(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut listening = 0;
            for m in &mut self.members {
                if let Some(Ok(Some(_))) = m.child.as_mut().map(|c| c.try_wait()) {
                    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                    if log.contains("address already in use") {
                        return true;
                    }
                }
                let addr = m.client_url.rsplit("//").next().unwrap_or_default();
                if addr.parse().is_ok_and(|a| {
                    std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_ok()
                }) {
                    listening += 1;
                }
            }
            if listening == self.members.len() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn start_once(tools: &EtcdTools, n: usize, tls: Option<&ServerTls>, extra: &[&str]) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let token = format!("etcdeck-test-{}-{}", std::process::id(), ports[0].0);
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("etcd-{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let name = format!("etcd-{}", i + 1);
                let client_url = format!("{scheme}://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let data_dir = dir.path().join(format!("{name}.etcd"));
                let args = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", data_dir.display()),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster={initial_cluster}"),
                    format!("--initial-cluster-token={token}"),
                    "--initial-cluster-state=new".into(),
                    "--heartbeat-interval=50".into(),
                    "--election-timeout=500".into(),
                    "--logger=zap".into(),
                    "--log-outputs=stderr".into(),
                ];
                let mut args = args;
                args.extend(extra.iter().map(|a| a.to_string()));
                if let Some(tls) = tls {
                    args.push(format!("--cert-file={}", tls.cert.display()));
                    args.push(format!("--key-file={}", tls.key.display()));
                    args.push(format!("--trusted-ca-file={}", tls.ca.display()));
                    args.push("--client-cert-auth".into());
                }
                let log = dir.path().join(format!("{name}.log"));
                EtcdMember { name, client_url, peer_url, args, log, child: None }
            })
            .collect();
        let mut cluster = Self { members, etcd: tools.etcd.clone(), etcdctl: tools.etcdctl.clone(), dir };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log).expect("log file");
        let child = Command::new(&self.etcd)
            .args(&m.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        m.child = Some(child);
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as `systemctl stop` does, and waits (up to 10 s, then SIGKILL) for the exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name (STOP, CONT) with the kill command.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.members[i].child.as_ref().expect("member is running").id();
        let ok = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill");
        assert!(ok.success(), "kill -{signal} {pid}");
    }

    /// Starts a killed member again on its data dir.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].child.is_none(), "member {i} is running");
        self.spawn(i);
    }

    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.members.iter().position(|m| m.name == name).expect("member by name")
    }

    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Runs etcdctl against the first member; returns (success, stdout, stderr).
    pub fn etcdctl(&self, args: &[&str]) -> (bool, String, String) {
        run_etcdctl(&self.etcdctl, std::slice::from_ref(&self.members[0].client_url), args)
    }

    /// Waits until `etcdctl endpoint health --cluster` passes for every member.
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let endpoints = self.client_urls().join(",");
            let mut cmd = Command::new(&self.etcdctl);
            without_etcdctl_env(&mut cmd);
            let out = cmd
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={endpoints}"))
                .args(["--command-timeout=2s", "endpoint", "health"])
                .output()
                .expect("run etcdctl");
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "etcd cluster not healthy after {limit:?}: {}\nlog of etcd-1:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.log_tail(0)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// An `etcdeck node` process on free loopback ports, killed with this handle.
pub struct EtcdeckNode {
    pub client_url: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    pub etcdctl: Option<PathBuf>,
    /// Variables set for the node (after every ETCD* one of the tests' own is removed).
    env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl EtcdeckNode {
    /// Starts a node named `name` with the test raft timers (heartbeat 50 ms, election 500 ms) and
    /// `extra` flags, in a fresh temporary data dir.
    pub fn start(name: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join(format!("{name}.etcd"));
        let mut node = Self::start_in(name, &data_dir, extra);
        node._dir = Some(dir);
        node
    }

    /// As `start`, on a data dir the caller keeps.
    pub fn start_in(name: &str, data_dir: &Path, extra: &[&str]) -> Self {
        let client_url = format!("http://127.0.0.1:{}", free_port());
        let mut node = Self::spawn_at(name, data_dir, &client_url, extra);
        node.wait_serving(Duration::from_secs(20));
        node
    }

    /// Starts a node serving clients on `client_url` without waiting for it to serve (a cluster's
    /// members serve once a quorum of them runs).
    pub fn spawn_at(name: &str, data_dir: &Path, client_url: &str, extra: &[&str]) -> Self {
        Self::spawn_with_env(name, data_dir, client_url, extra, &[])
    }

    /// As `spawn_at`, with `env` set for the node (and for its restarts).
    pub fn spawn_with_env(
        name: &str,
        data_dir: &Path,
        client_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let client_url = client_url.to_string();
        let mut args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            "--heartbeat-interval=50".into(),
            "--election-timeout=500".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        if !extra.iter().any(|a| a.starts_with("--listen-peer-urls")) {
            // The node always listens for peers, as etcd does: a free port, not etcd's 2380.
            args.push("--listen-peer-urls=http://127.0.0.1:0".into());
        }
        let log = data_dir.with_extension("log");
        let mut node = Self {
            client_url,
            data_dir: data_dir.to_path_buf(),
            args,
            log,
            child: None,
            etcdctl: find_in_path("etcdctl", Some("ETCDCTL_BIN")),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            _dir: None,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(etcdeck_bin());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .arg("node")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start etcdeck node");
        self.child = Some(child);
    }

    /// Waits until the node answers GET /health with true.
    pub fn wait_serving(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let addr = self.client_url.trim_start_matches("http://").to_string();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("etcdeck node exited ({status}) before serving:\n{}", self.log_text());
            }
            if http_get(&addr, "/health").is_some_and(|body| body.contains("\"true\"")) {
                return;
            }
            if Instant::now() > deadline {
                panic!("etcdeck node not serving after {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the node's log contains `needle`, and returns the log. A line the
    /// node writes after answering (a refused handshake is logged after the alert is sent) can
    /// arrive after the client has seen the answer.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log_text();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running process's ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (bounded) for the node to exit on its own; returns its exit code, None if it still
    /// runs after `limit` (it is then killed).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited, and how (None while it runs).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Starts the node again without waiting for it to serve.
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "node is running");
        self.spawn();
    }

    /// SIGTERM, and waits (bounded) for a clean exit; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.as_ref()?.id();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        self.wait_exit(Duration::from_secs(10))
    }

    /// Starts the node again with more flags.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.restart();
    }

    /// Starts the node again on its data dir and the same client URL.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node is running");
        self.spawn();
        self.wait_serving(Duration::from_secs(20));
    }
}

impl Drop for EtcdeckNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bare HTTP/1.1 GET on loopback; the response body, or None if the server did not answer.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A test's own child process, killed and reaped when dropped (also when the test fails).
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Splits like a shell for our simple step texts: spaces separate, double quotes group.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// etcdctl (v3 API, 5 s command timeout) on one endpoint, without the caller's ETCDCTL_* variables.
pub fn etcdctl_command(tool: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(tool);
    without_etcdctl_env(&mut cmd);
    cmd.env("ETCDCTL_API", "3").arg(format!("--endpoints={endpoint}")).arg("--command-timeout=5s");
    cmd
}

/// Runs one etcdctl command of a transcript: `stdin` is fed to it (none: an empty stdin); with
/// `watch`, its output is read until that many lines or that long (`watch_output`). The exit code,
/// stdout and stderr.
pub fn transcript_step(
    mut cmd: Command,
    stdin: Option<&str>,
    watch: Option<(usize, Duration)>,
) -> (Option<i32>, String, String) {
    use std::io::Write as _;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run etcdctl");
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(input.as_bytes());
        }
    }
    match watch {
        Some((lines, limit)) => watch_output(child, lines, limit),
        None => {
            let o = child.wait_with_output().expect("etcdctl output");
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into(),
                String::from_utf8_lossy(&o.stderr).into(),
            )
        }
    }
}

/// Appends one command and its answer to a transcript, as the recorded transcripts read: the
/// command as `$ etcdctl <shown>`, its stdout, its stderr lines (not etcd's JSON log lines) and its
/// exit code. A lease the command granted is remembered in `lease`, and masked as <lease>.
pub fn record_step(out: &mut String, lease: &mut String, shown: &str, answer: (Option<i32>, String, String)) {
    let (code, stdout, stderr) = answer;
    if let Some(id) = stdout.strip_prefix("lease ").and_then(|r| r.split(' ').next()) {
        if stdout.contains(" granted with TTL") {
            *lease = id.to_string();
        }
    }
    out.push_str(&format!("$ etcdctl {shown}\n{stdout}"));
    for line in stderr.lines().filter(|l| !l.starts_with('{')) {
        out.push_str(&format!("stderr: {line}\n"));
    }
    out.push_str(&format!("exit: {code:?}\n"));
    if !lease.is_empty() {
        *out = out.replace(lease.as_str(), "<lease>");
    }
}

/// Collects a watch's output until it printed `lines` lines or `limit` passed (a refused watch
/// prints nothing and waits), then stops it: (exit code if it ended on its own, stdout, stderr).
pub fn watch_output(
    mut child: std::process::Child,
    lines: usize,
    limit: Duration,
) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut stdout_closed = false;
    while got.len() < lines {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => got.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                stdout_closed = true;
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
        }
    }
    // A watch that ended on its own (stdout closed) is reaped before its exit status is read, so the
    // status never depends on how fast the process goes after closing its output.
    let mut exited = child.try_wait().ok().flatten().and_then(|s| s.code());
    let reap_by = Instant::now() + Duration::from_secs(5);
    while stdout_closed && exited.is_none() && Instant::now() < reap_by {
        std::thread::sleep(Duration::from_millis(10));
        exited = child.try_wait().ok().flatten().and_then(|s| s.code());
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let text: String = got.iter().map(|l| format!("{l}\n")).collect();
    (exited, text, stderr)
}

/// A client of `endpoint` on a runtime of its own, for a synchronous test (seeding, checking).
pub fn blocking_client(endpoint: &str) -> (tokio::runtime::Runtime, etcd_client::Client) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let c = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), etcd_client::Client::connect([endpoint], None))
            .await
            .expect("connect in time")
            .expect("connect")
    });
    (rt, c)
}

/// A process killed with this handle.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An etcd member made by `etcdctl snapshot restore` of a snapshot file: its name, URLs and the
/// cluster it belongs to (`--initial-cluster` and token, etcdctl's default token when None).
pub struct RestoredEtcd<'a> {
    pub name: &'a str,
    pub data_dir: &'a Path,
    pub client_url: &'a str,
    pub peer_url: &'a str,
    pub initial_cluster: &'a str,
    pub token: Option<&'a str>,
}

impl RestoredEtcd<'_> {
    /// `etcdctl snapshot restore` of `file` into the member's data dir; panics if it fails.
    pub fn restore(&self, etcdctl: &Path, file: &Path) {
        let file = file.display().to_string();
        let data = self.data_dir.display().to_string();
        let mut args = vec!["snapshot", "restore", &file, "--name", self.name, "--data-dir", &data];
        args.extend([
            "--initial-cluster",
            self.initial_cluster,
            "--initial-advertise-peer-urls",
            self.peer_url,
        ]);
        if let Some(token) = self.token {
            args.extend(["--initial-cluster-token", token]);
        }
        let (ok, _, err) = run_etcdctl(etcdctl, &[], &args);
        assert!(ok, "etcdctl snapshot restore {file} for {}: {err}", self.name);
    }

    /// Starts etcd on the restored dir (its output to `log`), killed with the handle; `extra` flags
    /// after the member's own.
    pub fn start(&self, etcd: &Path, log: &Path, extra: &[&str]) -> Killed {
        let out = std::fs::File::create(log).expect("etcd log");
        let mut cmd = Command::new(etcd);
        without_etcdctl_env(&mut cmd);
        cmd.args(["--name", self.name, "--data-dir", &self.data_dir.display().to_string()])
            .args(["--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url])
            .args(["--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url])
            .args(["--initial-cluster", self.initial_cluster]);
        if let Some(token) = self.token {
            cmd.args(["--initial-cluster-token", token]);
        }
        let child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("etcd log"))
            .stderr(out)
            .spawn()
            .expect("start etcd");
        Killed(child)
    }
}

/// Waits (up to `limit`) until `etcdctl endpoint health` passes for every endpoint; panics with
/// `what` and etcdctl's error otherwise.
pub fn wait_endpoints_healthy(etcdctl: &Path, endpoints: &[String], what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let joined = endpoints.join(",");
        let (ok, _, err) = run_etcdctl(etcdctl, &[joined], &["endpoint", "health", "--command-timeout=2s"]);
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{what} not healthy after {limit:?}: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
