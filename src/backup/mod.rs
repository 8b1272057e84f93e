//! `etcdeck backup`: a member's snapshot streamed to a temporary file, fsynced, verified (etcd's
//! SHA-256 and a full read of the bbolt file, as `etcdctl snapshot status` reads it), then renamed
//! to a name carrying the cluster, the member and the revision; retention by count and age that
//! never removes a cluster's newest backup; uploads to object storage. One-shot, or a service
//! (`--every`) with systemd's readiness and watchdog notifications. A client of the etcd API.

pub mod remote;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::app::client::snapshot::download;
use crate::app::connection::ConnectConfig;
use crate::etcd::backup::{expired, BackupName, Retention};
use crate::etcd::snapshot::SnapshotStatus;
use remote::Remote;

pub struct Options {
    /// The members to take the snapshot from, tried in order.
    pub config: ConnectConfig,
    pub dir: PathBuf,
    /// None: one backup, then exit.
    pub every: Option<Duration>,
    pub retention: Retention,
    pub remote: Option<Remote>,
}

/// A backup that was taken and verified.
#[derive(Debug, Clone)]
pub struct Saved {
    pub path: PathBuf,
    pub name: BackupName,
    pub status: SnapshotStatus,
    pub bytes: u64,
    pub elapsed: Duration,
}

pub fn log(text: &str) {
    eprintln!("{} etcdeck backup: {text}", crate::etcd::format::rfc3339_now());
}

/// The part file a backup is written to before it is verified: hidden, never a backup's name.
fn part_path(dir: &Path) -> PathBuf {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    dir.join(format!(".etcd-snapshot-{nanos}.db.part"))
}

fn is_part(name: &str) -> bool {
    name.starts_with(".etcd-snapshot-") && name.ends_with(".db.part")
}

/// Removes part files a killed backup left (they never had a backup's name).
pub fn clean_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_part(&name) && std::fs::remove_file(entry.path()).is_ok() {
            log(&format!("removed {}, left by a backup that did not finish", entry.path().display()));
        }
    }
}

/// Reads a snapshot file through: etcd's SHA-256 after the data (when `check_sha` asks), and every
/// bucket of the bbolt file. The status is what `etcdctl snapshot status` prints.
pub fn verify(path: &Path, check_sha: bool) -> Result<SnapshotStatus, String> {
    use crate::etcd::snapshot::{has_sha256_trailer, sha256_trailer, status};
    let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if check_sha {
        if !has_sha256_trailer(size) {
            return Err(format!(
                "{}: no SHA-256 after the data ({size} bytes): not a whole snapshot",
                path.display()
            ));
        }
        let (stored, computed) = sha256_trailer(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if stored != computed {
            return Err(format!("{}: the SHA-256 after the data does not match it", path.display()));
        }
    }
    status(path).map_err(|e| e.to_string())
}

/// Takes one backup into the directory. `inflight` names the part file while it exists.
pub async fn take(options: &Options, inflight: &Mutex<Option<PathBuf>>) -> Result<Saved, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("--dir {}: {e}", options.dir.display()))?;
    let mut errors = Vec::new();
    for endpoint in &options.config.endpoints {
        let part = part_path(&options.dir);
        *lock(inflight) = Some(part.clone());
        let got = download(&options.config, endpoint, &part, |_| {}).await;
        let got = match got {
            Ok((_, got)) => got,
            Err(e) => {
                *lock(inflight) = None;
                errors.push(format!("{endpoint}: {e}"));
                continue;
            }
        };
        let checked = verify(&part, false);
        let status = match checked {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                *lock(inflight) = None;
                return Err(format!("the snapshot from {endpoint} failed verification, not kept: {e}"));
            }
        };
        let name = BackupName {
            cluster_id: got.cluster_id,
            member_id: got.member_id,
            revision: status.revision,
            taken: SystemTime::now(),
        };
        let path = options.dir.join(name.file_name());
        let renamed = std::fs::rename(&part, &path);
        *lock(inflight) = None;
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&part);
            return Err(format!("{}: {e}", path.display()));
        }
        if let Ok(d) = std::fs::File::open(&options.dir) {
            let _ = d.sync_all();
        }
        return Ok(Saved { path, name, status, bytes: got.bytes, elapsed: started.elapsed() });
    }
    Err(format!("no member gave a snapshot: {}", errors.join("; ")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The backups in a directory: path, name and size, oldest first.
pub fn local(dir: &Path) -> Result<Vec<(PathBuf, BackupName, u64)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(name) = BackupName::parse(&file.to_string_lossy()) else { continue };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push((entry.path(), name, size));
    }
    out.sort_by_key(|(_, n, _)| (n.taken, n.revision));
    Ok(out)
}

/// One round: a backup, local retention, uploads of what the remote lacks, remote retention.
/// An upload that fails makes the round fail (after the local backup is kept).
pub async fn round(options: &Options, inflight: &Mutex<Option<PathBuf>>) -> Result<Saved, String> {
    let saved = take(options, inflight).await?;
    log(&format!(
        "saved {} ({} bytes, revision {}, {} keys, hash {:x}) in {:.1} s",
        saved.path.display(),
        saved.bytes,
        saved.status.revision,
        saved.status.total_keys,
        saved.status.hash,
        saved.elapsed.as_secs_f64()
    ));
    let now = SystemTime::now();
    let backups = local(&options.dir)?;
    let names: Vec<BackupName> = backups.iter().map(|(_, n, _)| n.clone()).collect();
    for i in expired(&names, options.retention, now) {
        match std::fs::remove_file(&backups[i].0) {
            Ok(()) => log(&format!("retention: removed {}", backups[i].0.display())),
            Err(e) => log(&format!("retention: cannot remove {}: {e}", backups[i].0.display())),
        }
    }
    let Some(remote) = &options.remote else { return Ok(saved) };
    let stored: Vec<String> = remote.list().await?.into_iter().map(|o| o.name).collect();
    for (path, name, _) in local(&options.dir)? {
        let file = name.file_name();
        if stored.contains(&file) {
            continue;
        }
        remote.upload_retrying(&path, &file, log).await?;
        log(&format!("uploaded {}", remote.shown(&file)));
    }
    let objects = remote.list().await?;
    let parsed: Vec<(String, BackupName)> =
        objects.into_iter().filter_map(|o| BackupName::parse(&o.name).map(|n| (o.name, n))).collect();
    let names: Vec<BackupName> = parsed.iter().map(|(_, n)| n.clone()).collect();
    for i in expired(&names, options.retention, now) {
        match remote.delete(&parsed[i].0).await {
            Ok(()) => log(&format!("retention: removed {}", remote.shown(&parsed[i].0))),
            Err(e) => log(&format!("retention: cannot remove {e}")),
        }
    }
    Ok(saved)
}

/// Runs backups: once, or every `options.every` until SIGTERM or SIGINT (which remove a backup in
/// flight). Tells systemd when it is ready and feeds its watchdog.
pub async fn run(options: Options) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("--dir {}: {e}", options.dir.display()))?;
    clean_parts(&options.dir);
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_micros(usec / 2)).await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
    let inflight = Arc::new(Mutex::new(None::<PathBuf>));
    loop {
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            r = round(&options, &inflight) => r,
            _ = term.recv() => return stopped(&inflight, "SIGTERM"),
            _ = int.recv() => return stopped(&inflight, "SIGINT"),
        };
        let Some(every) = options.every else {
            return result.map(drop);
        };
        let status = match &result {
            Ok(saved) => format!("last backup {}", saved.name.file_name()),
            Err(e) => {
                log(&format!("backup failed: {e}"));
                format!("last backup failed: {e}")
            }
        };
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&status)]);
        tokio::select! {
            _ = tokio::time::sleep_until(started + every) => {}
            _ = term.recv() => return stopped(&inflight, "SIGTERM"),
            _ = int.recv() => return stopped(&inflight, "SIGINT"),
        }
    }
}

/// Removes the backup in flight, if any: a stop is a success.
fn stopped(inflight: &Mutex<Option<PathBuf>>, signal: &str) -> Result<(), String> {
    if let Some(part) = lock(inflight).take() {
        let _ = std::fs::remove_file(&part);
        log(&format!("{signal}: removed the backup in flight ({})", part.display()));
    }
    log(&format!("{signal}: stopped"));
    Ok(())
}

/// Downloads the uploaded backup `name` into `dir`, verified (SHA-256 and bbolt) before it gets its
/// name there.
pub async fn fetch(remote: &Remote, name: &str, dir: &Path) -> Result<(PathBuf, SnapshotStatus), String> {
    if BackupName::parse(name).is_none() {
        return Err(format!(
            "{name} is not a backup's name (etcd-snapshot-<cluster>-<member>-r<revision>-<time>.db)"
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let part = part_path(dir);
    let result = async {
        remote.download(name, &part).await?;
        verify(&part, true)
    }
    .await;
    let status = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let path = dir.join(name);
    std::fs::rename(&part, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, status))
}
