//! A cluster of `etcdeck node` processes on loopback, for `etcdeck demo`: each member on free ports,
//! its data dir and log in one directory (temporary unless kept). Members can be killed (SIGKILL, as a
//! crash) and started again on their data. Every member process dies with the process that started
//! it (Linux's parent-death signal), so none outlives the demo, whatever ends it; dropping the cluster
//! stops them and removes a temporary directory.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalMember {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl LocalMember {
    /// The process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

pub struct LocalCluster {
    pub dir: PathBuf,
    pub members: Vec<LocalMember>,
    /// Removed on drop unless the directory is kept.
    temp: Option<tempfile::TempDir>,
    /// The members the last restore stopped, to start again if it fails.
    pub stopped_for_restore: Vec<String>,
    program: PathBuf,
}

/// A free port on 127.0.0.1 for a server to bind later. It is chosen below the kernel's ephemeral
/// range (net.ipv4.ip_local_port_range), from which every outgoing connection on the machine takes
/// its port, so a client connecting meanwhile cannot take it; one process never gets the same port
/// twice. Another server could still bind it first: the demo then starts again on other ports (see
/// `lost_a_port`). When nothing below the range is free, the kernel picks one.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = ephemeral_low().unwrap_or(32_768).min(65_536);
    if low > FIRST + 1_000 {
        let span = low - FIRST;
        // Processes start at different places in the span, so two at once rarely meet.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let start = (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % span;
        let _ = NEXT.compare_exchange(0, start | 1, Ordering::Relaxed, Ordering::Relaxed);
        for _ in 0..256 {
            let port = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % span;
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return Ok(port as u16);
            }
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range, where outgoing connections take theirs.
fn ephemeral_low() -> Option<u32> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

impl LocalCluster {
    /// Starts `n` members (n1, n2, ...) of a new cluster with `program node`, in a new temporary
    /// directory (kept when `keep`), and returns without waiting for them to serve.
    pub fn start(program: &Path, n: usize, keep: bool) -> std::io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("etcdeck-demo-").tempdir()?;
        // Kept, the directory outlives the demo; otherwise it goes when the cluster is dropped.
        let (dir, temp) = if keep { (temp.keep(), None) } else { (temp.path().to_path_buf(), Some(temp)) };
        let mut urls = Vec::new();
        for _ in 0..n {
            urls.push((
                format!("http://127.0.0.1:{}", free_port()?),
                format!("http://127.0.0.1:{}", free_port()?),
            ));
        }
        let initial: Vec<String> =
            urls.iter().enumerate().map(|(i, (_, peer))| format!("n{}={peer}", i + 1)).collect();
        let initial = initial.join(",");
        let token = format!("etcdeck-demo-{}", std::process::id());
        let members = urls
            .into_iter()
            .enumerate()
            .map(|(i, (client_url, peer_url))| {
                let name = format!("n{}", i + 1);
                let data_dir = dir.join(format!("{name}.etcd"));
                let args = vec![
                    format!("--name={name}"),
                    format!("--data-dir={}", data_dir.display()),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster={initial}"),
                    format!("--initial-cluster-token={token}"),
                ];
                LocalMember {
                    log: dir.join(format!("{name}.log")),
                    name,
                    client_url,
                    peer_url,
                    data_dir,
                    args,
                    child: None,
                }
            })
            .collect();
        let mut cluster = LocalCluster {
            dir,
            members,
            temp,
            program: program.to_path_buf(),
            stopped_for_restore: Vec::new(),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let program = self.program.clone();
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log)?;
        let mut cmd = Command::new(program);
        // The demo's members are configured by their flags alone.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(name);
            }
        }
        cmd.arg("node").args(&m.args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // Its own process group: a Ctrl-C typed at the terminal is the demo's to handle, not theirs.
        cmd.process_group(0);
        let parent = std::process::id();
        // Linux sends the parent-death signal when the *thread* that forked ends: members are started
        // from the demo's main thread (the console's loop runs there), which lives as long as it.
        // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid, kill).
        unsafe {
            cmd.pre_exec(move || {
                // The member dies with the demo, even if the demo is killed with SIGKILL.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The demo may have died before the signal was armed.
                if libc::getppid() as u32 != parent {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                Ok(())
            });
        }
        m.child = Some(cmd.spawn()?);
        Ok(())
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    fn index(&self, name: &str) -> Result<usize, String> {
        self.members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| format!("no demo member named {name:?}"))
    }

    /// Kills a member's process with SIGKILL, as a crash; its data stays.
    pub fn kill(&mut self, name: &str) -> Result<u32, String> {
        let i = self.index(name)?;
        let Some(mut child) = self.members[i].child.take() else {
            return Err(format!("{name} is not running"));
        };
        let pid = child.id();
        child.kill().map_err(|e| format!("cannot kill {name}: {e}"))?;
        let _ = child.wait();
        Ok(pid)
    }

    /// Starts a stopped member again on its data dir.
    pub fn start_member(&mut self, name: &str) -> Result<u32, String> {
        let i = self.index(name)?;
        if let Some(child) = self.members[i].child.as_mut() {
            // One that exited on its own (removed, say) may start again.
            if child.try_wait().map(|s| s.is_none()).unwrap_or(true) {
                return Err(format!("{name} is running"));
            }
        }
        self.spawn(i).map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(self.members[i].pid().unwrap_or_default())
    }

    /// Stops every member for a restore and returns the restore options of each of `names` (the
    /// new cluster's voters, all of them this cluster's members): `token`, their peer URLs as the
    /// new --initial-cluster, and a new data dir beside the old one, which is kept. Checks the names
    /// before it stops anything.
    pub fn stop_for_restore(
        &mut self,
        names: &[String],
        token: &str,
    ) -> Result<Vec<crate::node::snapshot::RestoreOptions>, String> {
        let mut chosen = Vec::new();
        for name in names {
            let i = self.index(name).map_err(|e| {
                format!("{e}: the demo restores only its own members (restore the others with the commands shown)")
            })?;
            chosen.push(i);
        }
        if chosen.is_empty() {
            return Err("no member to restore".into());
        }
        let initial: Vec<String> = chosen
            .iter()
            .map(|&i| format!("{}={}", self.members[i].name, self.members[i].peer_url))
            .collect();
        let options = chosen
            .iter()
            .map(|&i| {
                let m = &self.members[i];
                let data_dir = (1..)
                    .map(|k| self.dir.join(format!("{}.restored-{k}.etcd", m.name)))
                    .find(|d| !d.exists())
                    .unwrap_or_default();
                crate::node::snapshot::RestoreOptions {
                    name: m.name.clone(),
                    data_dir,
                    wal_dir: None,
                    initial_cluster: initial.join(","),
                    initial_cluster_token: token.to_string(),
                    initial_advertise_peer_urls: m.peer_url.clone(),
                    skip_hash_check: false,
                }
            })
            .collect();
        let running: Vec<String> =
            self.running().into_iter().filter(|(_, up)| *up).map(|(name, _)| name).collect();
        self.stopped_for_restore.clear();
        for name in running {
            self.kill(&name)?;
            self.stopped_for_restore.push(name);
        }
        Ok(options)
    }

    /// Starts `name` on a new data dir (a restored one) from now on.
    pub fn start_on(&mut self, name: &str, data_dir: &Path) -> Result<u32, String> {
        let i = self.index(name)?;
        let m = &mut self.members[i];
        m.data_dir = data_dir.to_path_buf();
        for arg in &mut m.args {
            if arg.starts_with("--data-dir=") {
                *arg = format!("--data-dir={}", data_dir.display());
            }
        }
        self.start_member(name)
    }

    /// Stops a member for its replacement; one that is not running (a removed member stops by
    /// itself) is left as it is.
    pub fn stop(&mut self, name: &str) -> Result<String, String> {
        let i = self.index(name)?;
        let Some(mut child) = self.members[i].child.take() else {
            return Ok(format!("{name} was not running"));
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(format!("{name} had stopped ({status})"));
        }
        let pid = child.id();
        child.kill().map_err(|e| format!("cannot stop {name}: {e}"))?;
        let _ = child.wait();
        Ok(format!("stopped {name} (kill -9 {pid})"))
    }

    /// Moves a stopped member's data dir aside (kept, for a look at the damage) so it starts on an
    /// empty one; says where it went.
    pub fn wipe(&mut self, name: &str) -> Result<String, String> {
        let i = self.index(name)?;
        if self.members[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
            return Err(format!("{name} is running: stop it first"));
        }
        let dir = self.members[i].data_dir.clone();
        if !dir.exists() {
            return Ok(format!("{} does not exist: nothing to move", dir.display()));
        }
        let file = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = (1..)
            .map(|k| dir.with_file_name(format!("{file}.damaged-{k}")))
            .find(|d| !d.exists())
            .unwrap_or_default();
        std::fs::rename(&dir, &aside)
            .map_err(|e| format!("cannot move {} to {}: {e}", dir.display(), aside.display()))?;
        Ok(format!("moved {file} to {}", aside.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()))
    }

    /// Starts a member on its (empty) data dir as a new member of the running cluster: etcd's
    /// --initial-cluster-state existing, with the cluster as the add answered it.
    pub fn start_existing(&mut self, name: &str, initial_cluster: &str) -> Result<u32, String> {
        let i = self.index(name)?;
        if initial_cluster.is_empty() {
            return Err(format!("no --initial-cluster for {name}: it was not added"));
        }
        let m = &mut self.members[i];
        m.args.retain(|a| !a.starts_with("--initial-cluster=") && !a.starts_with("--initial-cluster-state="));
        m.args.push(format!("--initial-cluster={initial_cluster}"));
        m.args.push("--initial-cluster-state=existing".into());
        self.start_member(name)
    }

    /// Which members run: (name, running).
    pub fn running(&mut self) -> Vec<(String, bool)> {
        self.members
            .iter_mut()
            .map(|m| {
                let up = m.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                (m.name.clone(), up)
            })
            .collect()
    }

    /// Whether every member answers GET /health with true; an error (with the end of its log) if one
    /// has exited.
    pub fn health(&mut self) -> Result<bool, String> {
        let mut all = true;
        for m in &mut self.members {
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                return Err(format!("{} exited ({status}):\n{}", m.name, log_tail(&m.log)));
            }
            all &= healthy(&m.client_url);
        }
        Ok(all)
    }

    /// Whether a member exited because another process took one of its ports between the choice
    /// (see `free_port`) and its bind; a new start on other ports then succeeds.
    pub fn lost_a_port(&mut self) -> bool {
        self.members.iter_mut().any(|m| {
            let exited = m.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            exited
                && std::fs::read_to_string(&m.log).is_ok_and(|log| {
                    log.contains("cannot listen on") && log.contains("Address already in use")
                })
        })
    }

    /// Stops every member: SIGTERM, then SIGKILL for any still running after 5 s.
    pub fn shutdown(&mut self) {
        for m in &self.members {
            if let Some(pid) = m.pid() {
                // SAFETY: kill(2) on a child this process started and has not reaped.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for m in &mut self.members {
            let Some(mut child) = m.child.take() else { continue };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Whether the directory is kept after the demo.
    pub fn kept(&self) -> bool {
        self.temp.is_none()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
        // The temporary directory goes with `temp`.
    }
}

/// Restores `file` with each of `options` (a member's new data dir each). All or nothing: when one
/// fails, the data dirs already written are removed again (they are new; the old ones are never
/// touched). Returns (member name, data dir).
pub fn restore_all(
    file: &Path,
    options: &[crate::node::snapshot::RestoreOptions],
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut written: Vec<(String, PathBuf)> = Vec::new();
    for o in options {
        if let Err(e) = crate::node::snapshot::restore(file, o) {
            for (_, dir) in &written {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(format!("restoring {}: {e}", o.name));
        }
        written.push((o.name.clone(), o.data_dir.clone()));
    }
    Ok(written)
}

/// GET /health on a client URL: whether it answered {"health":"true"}.
fn healthy(client_url: &str) -> bool {
    let addr = client_url.trim_start_matches("http://");
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else { return false };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the etcdeck program: a script that prints `message` as a node would and exits 1.
    fn failing_program(dir: &Path, message: &str) -> PathBuf {
        let path = dir.join("fake-etcdeck");
        std::fs::write(&path, format!("#!/bin/sh\necho '{message}' >&2\nexit 1\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn wait_exited(cluster: &mut LocalCluster) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.running().iter().any(|(_, up)| *up) {
            assert!(Instant::now() < deadline, "the fake member did not exit within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_never_repeat() {
        let low = ephemeral_low().unwrap();
        let ports: Vec<u16> = (0..500).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
        if low > 11_000 {
            assert!(ports.iter().all(|&p| (10_000..low).contains(&u32::from(p))), "{ports:?}");
        }
        for p in ports.iter().take(20) {
            std::net::TcpListener::bind(("127.0.0.1", *p)).unwrap();
        }
    }

    #[test]
    fn a_member_that_lost_its_port_is_told_from_one_that_failed_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let taken = failing_program(
            dir.path(),
            "etcdeck node: cannot listen on http://127.0.0.1:41495: Address already in use (os error 98)",
        );
        let mut cluster = LocalCluster::start(&taken, 2, false).unwrap();
        wait_exited(&mut cluster);
        assert!(cluster.lost_a_port());
        let err = cluster.health().unwrap_err();
        assert!(err.contains("n1 exited") && err.contains("Address already in use"), "{err}");

        let other = failing_program(dir.path(), "etcdeck node: --data-dir: permission denied");
        let mut cluster = LocalCluster::start(&other, 1, false).unwrap();
        wait_exited(&mut cluster);
        assert!(!cluster.lost_a_port());
    }
}
