//! Saving a member's backend snapshot, as etcdctl's `snapshot save` does — to `<file>.part`,
//! fsynced, then renamed, so a file at the final name is always whole — for `etcdeck snapshot save`
//! and the console's snapshot dialog. The console's save reports progress and verifies what it
//! saved: the SHA-256 etcd appends, the revision the snapshot holds, and how many keys it has.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::app::client::{connect, error_text};
use crate::app::connection::ConnectConfig;

/// What a verified save found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSnapshot {
    pub path: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    /// The store revision the snapshot holds: what the member sent with it (etcdeck nodes), or its
    /// revision when the save began (etcd 3.4 sends none; a write during the save is then missed).
    pub revision: i64,
    /// Keys alive at that revision (a count on the same member), or why they could not be counted.
    pub keys: Result<i64, String>,
    /// The SHA-256 etcd appended, checked against the data.
    pub sha256: String,
}

/// What a snapshot file is, which decides the tools that can restore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFormat {
    /// etcdeck's own image (what an etcdeck node's Snapshot call sends): `etcdeck snapshot restore`.
    Etcdeck,
    /// etcd's bbolt database with the SHA-256 `snapshot save` appends: etcdctl (3.4) and etcdutl
    /// (3.5+) restore it.
    EtcdSnapshot,
    /// etcd's bbolt database with no SHA-256 after it (a db file copied out of a data dir): etcdctl
    /// and etcdutl restore it with --skip-hash-check.
    EtcdDbCopy,
}

impl SnapshotFormat {
    pub fn describe(self) -> &'static str {
        match self {
            SnapshotFormat::Etcdeck => "etcdeck snapshot",
            SnapshotFormat::EtcdSnapshot => "etcd snapshot (bbolt database + SHA-256)",
            SnapshotFormat::EtcdDbCopy => {
                "etcd db file (bbolt database, no SHA-256: a copy of member/snap/db)"
            }
        }
    }
}

/// A snapshot file that checked out: its format and a line about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSnapshot {
    pub format: SnapshotFormat,
    pub summary: String,
}

/// How an etcdeck image starts (the node's store writes it; see node::mvcc::store).
const ETCDECK_IMAGE_MAGIC: &[u8] = b"etcdeck-snapshot 1\n";
/// bbolt's magic number, in the meta page after the 16-byte page header (bbolt's page.go, db.go).
const BOLT_MAGIC: u32 = 0xED0C_DAED;

/// Checks a snapshot file as a restore does before it touches anything, and says which format it
/// is: etcdeck's image or etcd's bbolt database, with its SHA-256 checked where it has one.
pub fn check_file(path: &Path) -> Result<CheckedSnapshot, String> {
    use std::io::Read;
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
    let mut head = [0u8; 64];
    let got = file.read(&mut head).map_err(|e| format!("{shown}: {e}"))?;
    let head = &head[..got];
    let word = |at: usize| head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let (format, what) = if head.starts_with(ETCDECK_IMAGE_MAGIC) {
        (SnapshotFormat::Etcdeck, "etcdeck snapshot (format 1)".to_string())
    } else if word(16) == Some(BOLT_MAGIC) {
        let version = word(20).unwrap_or(0);
        let page = word(24).unwrap_or(0);
        if page < 512 || !page.is_power_of_two() {
            return Err(format!("{shown}: a bbolt database with a bad page size ({page}): damaged"));
        }
        let format = if size % 512 == 32 {
            SnapshotFormat::EtcdSnapshot
        } else if size.is_multiple_of(page as u64) {
            SnapshotFormat::EtcdDbCopy
        } else {
            return Err(format!(
                "{shown} ({size} bytes) is neither whole pages of {page} bytes nor pages plus a SHA-256: cut short or damaged"
            ));
        };
        (format, format!("{} (bbolt version {version}, page size {page})", format.describe()))
    } else {
        return Err(format!(
            "{shown}: not a snapshot: neither etcd's (a bbolt database) nor etcdeck's format"
        ));
    };
    if format == SnapshotFormat::EtcdDbCopy {
        return Ok(CheckedSnapshot {
            format,
            summary: format!(
                "{what}, {}; restores need --skip-hash-check",
                crate::app::format::bytes(size as i64)
            ),
        });
    }
    if size < 32 || !(size - 32).is_multiple_of(512) {
        return Err(format!(
            "{shown} ({size} bytes) has no SHA-256 after its data: not a snapshot saved from a member"
        ));
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(|e| format!("{shown}: {e}"))?;
    let mut hasher = Sha256::new();
    let mut left = size - 32;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..n]).map_err(|e| format!("{shown}: {e}"))?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let mut tail = [0u8; 32];
    file.read_exact(&mut tail).map_err(|e| format!("{shown}: {e}"))?;
    if hasher.finalize().as_slice() != tail {
        return Err(format!(
            "{shown}: the SHA-256 at its end does not match its data (damaged or cut short)"
        ));
    }
    Ok(CheckedSnapshot {
        format,
        summary: format!("{what}, {}, SHA-256 checks out", crate::app::format::bytes(size as i64)),
    })
}

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
    let mut client = connect(config, endpoint).await?;
    let before = tokio::time::timeout(config.command_timeout, client.status())
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|s| s.header().map(|h| h.revision()))
        .unwrap_or(0);
    let mut file = std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    let result = async {
        let mut stream = client.snapshot().await.map_err(|e| error_text(&e))?;
        let mut written = 0u64;
        let mut revision = 0i64;
        let mut hasher = Sha256::new();
        // The last 32 bytes are the checksum: hash everything before them.
        let mut tail: Vec<u8> = Vec::new();
        while let Some(piece) = stream.message().await.map_err(|e| error_text(&e))? {
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
        Ok::<_, String>((written, if revision > 0 { revision } else { before }, sha256))
    }
    .await;
    let (bytes, revision, sha256) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, path).map_err(|e| format!("{}: {e}", path.display()))?;
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
    Ok(SavedSnapshot { path: path.to_path_buf(), bytes, elapsed: started.elapsed(), revision, keys, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bbolt file's first page: the page header, then the meta's magic, version and page size.
    fn bolt(pages: usize, page: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; pages * page as usize];
        bytes[8..10].copy_from_slice(&4u16.to_le_bytes());
        bytes[16..20].copy_from_slice(&BOLT_MAGIC.to_le_bytes());
        bytes[20..24].copy_from_slice(&2u32.to_le_bytes());
        bytes[24..28].copy_from_slice(&page.to_le_bytes());
        bytes
    }

    fn hashed(mut bytes: Vec<u8>) -> Vec<u8> {
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        bytes
    }

    #[test]
    fn the_format_of_a_snapshot_is_told_from_its_first_bytes_and_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let check = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            check_file(&path)
        };
        let etcd = check("etcd.db", &hashed(bolt(4, 4096))).expect("an etcd snapshot");
        assert_eq!(etcd.format, SnapshotFormat::EtcdSnapshot);
        assert!(
            etcd.summary.contains("bbolt version 2, page size 4096") && etcd.summary.contains("checks out")
        );
        let copy = check("db", &bolt(4, 4096)).expect("a copied db");
        assert_eq!(copy.format, SnapshotFormat::EtcdDbCopy);
        assert!(copy.summary.ends_with("restores need --skip-hash-check"), "{}", copy.summary);
        let mut image = ETCDECK_IMAGE_MAGIC.to_vec();
        image.resize(1024, 0);
        let ours = check("ours.db", &hashed(image.clone())).expect("an etcdeck snapshot");
        assert_eq!(ours.format, SnapshotFormat::Etcdeck);
        // Damage is refused, naming the file.
        let mut bad = hashed(bolt(4, 4096));
        bad[5000] ^= 1;
        assert!(check("bad.db", &bad).unwrap_err().contains("does not match"));
        assert!(check("cut.db", &bolt(4, 4096)[..9000]).unwrap_err().contains("cut short"));
        assert!(check("image-no-hash", &image).unwrap_err().contains("no SHA-256"));
        assert!(check("text", b"hello").unwrap_err().contains("not a snapshot"));
        assert!(check("empty", b"").unwrap_err().contains("not a snapshot"));
    }
}
