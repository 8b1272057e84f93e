//! `etcdeck backup`: a member's snapshot streamed to a temporary file, fsynced, verified (etcd's
//! SHA-256 and a full read of the bbolt file, as `etcdctl snapshot status` reads it), then renamed
//! to a name carrying the cluster, the member and the revision; retention by count and age that
//! never removes a cluster's newest backup; uploads to object storage. One-shot, or a service
//! (`--every`) with systemd's readiness and watchdog notifications. A client of the etcd API.

pub mod remote;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::app::client::snapshot::save_backup;
use crate::app::connection::ConnectConfig;
use crate::app::snapshot::{backup_part_path, is_backup_part, list_backups, verify, SavedSnapshot};
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

pub fn log(text: &str) {
    eprintln!("{} etcdeck backup: {text}", crate::etcd::format::rfc3339_now());
}

/// Removes part files a killed backup left (they never had a backup's name).
pub fn clean_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_backup_part(&name) && std::fs::remove_file(entry.path()).is_ok() {
            log(&format!("removed {}, left by a backup that did not finish", entry.path().display()));
        }
    }
}

/// Takes one backup into the directory, from the first member that gives one. `inflight` names the
/// part file while it exists.
pub async fn take(options: &Options, inflight: &Mutex<Option<PathBuf>>) -> Result<SavedSnapshot, String> {
    let mut errors = Vec::new();
    for endpoint in &options.config.endpoints {
        let part = backup_part_path(&options.dir);
        *lock(inflight) = Some(part.clone());
        let saved = save_backup(&options.config, endpoint, &options.dir, &part, |_| {}).await;
        *lock(inflight) = None;
        match saved {
            Ok(saved) => return Ok(saved),
            // A backup that failed its checks is not tried elsewhere: say so.
            Err(e) if e.contains("failed verification") => return Err(e),
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    Err(format!("no member gave a snapshot: {}", errors.join("; ")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The backups in a directory: path, name and size, oldest first.
pub fn local(dir: &Path) -> Result<Vec<(PathBuf, BackupName, u64)>, String> {
    Ok(list_backups(dir)?.into_iter().map(|b| (b.path, b.name, b.size)).collect())
}

/// One round: a backup, local retention, uploads of what the remote lacks, remote retention.
/// An upload that fails makes the round fail (after the local backup is kept).
pub async fn round(options: &Options, inflight: &Mutex<Option<PathBuf>>) -> Result<SavedSnapshot, String> {
    let saved = take(options, inflight).await?;
    log(&format!(
        "saved {} ({} bytes, revision {}, {} keys, sha256 {}) in {:.1} s",
        saved.path.display(),
        saved.bytes,
        saved.revision,
        saved.keys.as_ref().map(|k| k.to_string()).unwrap_or_else(|e| format!("? ({e})")),
        saved.sha256,
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
            Ok(saved) => format!("last backup {}", saved.path.display()),
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
    let part = backup_part_path(dir);
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
