//! Saving a member's backend snapshot, as etcdctl's `snapshot save` does — to `<file>.part`,
//! fsynced, then renamed, so a file at the final name is always whole — for `etcdeck snapshot save`
//! and the console's snapshot dialog. The console's save reports progress and verifies what it
//! saved: the SHA-256 etcd appends, the revision the snapshot holds, and how many keys it has.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::app::client::connect::connect;
use crate::app::client::errors::error_text;
use crate::app::connection::ConnectConfig;
use crate::app::snapshot::SavedSnapshot;

/// Saves the snapshot of the one endpoint configured; returns the bytes written.
pub async fn save(config: &ConnectConfig, path: &Path) -> Result<u64, String> {
    let [endpoint] = &config.endpoints[..] else {
        // etcdctl's wording.
        return Err(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            config.endpoints.join(" ")
        ));
    };
    save_from(config, endpoint, path, |_| {}).await.map(|s| s.bytes)
}

/// A snapshot streamed to a file and checked.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: u64,
    /// The revision the member sent with it, or its revision when the save began (etcd 3.4 sends
    /// none).
    pub revision: i64,
    pub sha256: String,
    pub cluster_id: u64,
    pub member_id: u64,
}

/// Streams `endpoint`'s snapshot into `part`, fsynced, and checks etcd's SHA-256 after it; `part`
/// is removed when anything fails. Returns the client it used, for what the caller asks next.
pub async fn download(
    config: &ConnectConfig,
    endpoint: &str,
    part: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(etcd_client::Client, Downloaded), String> {
    let mut client = connect(config, endpoint).await?;
    let status = tokio::time::timeout(config.command_timeout, client.status())
        .await
        .map_err(|_| format!("{endpoint}: status: timed out"))?
        .map_err(|e| format!("{endpoint}: status: {}", error_text(&e)))?;
    let header = status.header();
    let before = header.map(|h| h.revision()).unwrap_or(0);
    let (cluster_id, member_id) = header.map(|h| (h.cluster_id(), h.member_id())).unwrap_or((0, 0));
    let mut file = std::fs::File::create(part).map_err(|e| format!("{}: {e}", part.display()))?;
    let result = async {
        let mut stream = client.snapshot().await.map_err(|e| error_text(&e))?;
        let mut written = 0u64;
        let mut revision = 0i64;
        let mut hasher = Sha256::new();
        // The last 32 bytes are the checksum: hash everything before them.
        let mut tail: Vec<u8> = Vec::new();
        // A member that stops sending mid-stream fails the save instead of holding it forever.
        let idle = config.command_timeout.max(std::time::Duration::from_secs(60));
        loop {
            let piece = match tokio::time::timeout(idle, stream.message()).await {
                Ok(Ok(Some(piece))) => piece,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(error_text(&e)),
                Err(_) => {
                    return Err(format!(
                        "the member sent nothing for {}: the snapshot is not kept",
                        crate::etcd::duration::format_go_duration(idle)
                    ))
                }
            };
            if let Some(h) = piece.header() {
                revision = revision.max(h.revision());
            }
            let blob = piece.blob();
            file.write_all(blob).map_err(|e| format!("{}: {e}", part.display()))?;
            written += blob.len() as u64;
            tail.extend_from_slice(blob);
            if tail.len() > 32 {
                let cut = tail.len() - 32;
                hasher.update(&tail[..cut]);
                tail.drain(..cut);
            }
            progress(written);
        }
        file.sync_all().map_err(|e| format!("{}: {e}", part.display()))?;
        let digest = hasher.finalize();
        if tail.len() != 32 || !(written - 32).is_multiple_of(512) || digest.as_slice() != tail.as_slice() {
            return Err("the snapshot's SHA-256 does not match its data: the file is not kept".to_string());
        }
        let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok::<_, String>(Downloaded {
            bytes: written,
            revision: if revision > 0 { revision } else { before },
            sha256,
            cluster_id,
            member_id,
        })
    }
    .await;
    match result {
        Ok(got) => Ok((client, got)),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(part);
            Err(e)
        }
    }
}

/// Saves `endpoint`'s snapshot to `path`, calling `progress` with the bytes written so far, then
/// verifies it. Nothing is left at `path` (or `<path>.part`) unless the whole snapshot checked out.
pub async fn save_from(
    config: &ConnectConfig,
    endpoint: &str,
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<SavedSnapshot, String> {
    let started = Instant::now();
    let part = path.with_file_name(format!(
        "{}.part",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let (client, got) = download(config, endpoint, &part, &mut progress).await?;
    finish(config, client, &part, path, got, started).await
}

/// Saves `endpoint`'s snapshot as a backup in `dir`: streamed into `part`, checked (etcd's SHA-256,
/// then every bucket of the bbolt file read through), and only then named for its cluster, member
/// and revision (`etcd::backup`). Nothing gets a backup's name unless it checked out.
pub async fn save_backup(
    config: &ConnectConfig,
    endpoint: &str,
    dir: &Path,
    part: &Path,
    mut progress: impl FnMut(u64),
) -> Result<SavedSnapshot, String> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (client, got) = download(config, endpoint, part, &mut progress).await?;
    let status = match crate::app::snapshot::verify(part, false) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(part);
            return Err(format!("the snapshot from {endpoint} failed verification, not kept: {e}"));
        }
    };
    let name = crate::etcd::backup::BackupName {
        cluster_id: got.cluster_id,
        member_id: got.member_id,
        revision: status.revision,
        taken: std::time::SystemTime::now(),
    };
    let got = Downloaded { revision: status.revision, ..got };
    finish(config, client, part, &dir.join(name.file_name()), got, started).await
}

/// Names a checked part file, and says what it holds.
async fn finish(
    config: &ConnectConfig,
    mut client: etcd_client::Client,
    part: &Path,
    path: &Path,
    got: Downloaded,
    started: Instant,
) -> Result<SavedSnapshot, String> {
    let Downloaded { bytes, revision, sha256, .. } = got;
    if let Err(e) = std::fs::rename(part, path) {
        let _ = std::fs::remove_file(part);
        return Err(format!("{}: {e}", path.display()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    // How many keys the snapshot holds: a count at its revision, on the same member.
    let options = etcd_client::GetOptions::new()
        .with_all_keys()
        .with_count_only()
        .with_serializable()
        .with_revision(revision);
    let keys = match tokio::time::timeout(config.command_timeout, client.get(Vec::<u8>::new(), Some(options)))
        .await
    {
        Ok(Ok(resp)) => Ok(resp.count()),
        Ok(Err(e)) => Err(error_text(&e)),
        Err(_) => Err("timed out".into()),
    };
    // What was saved (its first bytes): which tools restore it.
    let (format, _) = crate::app::snapshot::format_of(path)?;
    Ok(SavedSnapshot {
        path: path.to_path_buf(),
        bytes,
        elapsed: started.elapsed(),
        revision,
        keys,
        sha256,
        format,
    })
}
