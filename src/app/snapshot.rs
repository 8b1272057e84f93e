//! Snapshot files: what a save found (`SavedSnapshot`), and the check of a file on disk (its
//! format, etcd's appended SHA-256) that the restore wizard and `etcdeck snapshot` use. The save
//! itself, over the network, is a worker's: `client/snapshot.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// What the file is, so which tools restore it.
    pub format: SnapshotFormat,
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

/// Where a backup is written before it is checked: hidden in its directory, never a backup's name.
pub fn backup_part_path(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!(".etcd-snapshot-{nanos}.db.part"))
}

/// Whether a file name is a backup's part file.
pub fn is_backup_part(name: &str) -> bool {
    name.starts_with(".etcd-snapshot-") && name.ends_with(".db.part")
}

/// Reads a snapshot file through: etcd's SHA-256 after the data (when `check_sha` asks), and every
/// bucket of the bbolt file. The status is what `etcdctl snapshot status` prints.
pub fn verify(path: &Path, check_sha: bool) -> Result<crate::etcd::snapshot::SnapshotStatus, String> {
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

/// A backup found in a directory: its file, what its name says, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundBackup {
    pub path: PathBuf,
    pub name: crate::etcd::backup::BackupName,
    pub size: u64,
}

/// The backups in `dir` (files with a backup's name), oldest first.
pub fn list_backups(dir: &Path) -> Result<Vec<FoundBackup>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(name) = crate::etcd::backup::BackupName::parse(&file.to_string_lossy()) else { continue };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(FoundBackup { path: entry.path(), name, size });
    }
    out.sort_by_key(|b| (b.name.taken, b.name.revision));
    Ok(out)
}

/// A snapshot file that checked out: its format and a line about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSnapshot {
    pub format: SnapshotFormat,
    pub summary: String,
}

/// The format of the file at `path`, from its first bytes and its size, with a line naming it.
pub fn format_of(path: &Path) -> Result<(SnapshotFormat, String), String> {
    use std::io::Read;
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
    let mut head = [0u8; 64];
    let got = file.read(&mut head).map_err(|e| format!("{shown}: {e}"))?;
    let head = &head[..got];
    let word = |at: usize| head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let (format, what) = if head.starts_with(crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC) {
        (SnapshotFormat::Etcdeck, "etcdeck snapshot (format 1)".to_string())
    } else if word(16) == Some(crate::etcd::bbolt::MAGIC) {
        let version = word(20).unwrap_or(0);
        let page = word(24).unwrap_or(0);
        if page < 512 || !page.is_power_of_two() {
            return Err(format!("{shown}: a bbolt database with a bad page size ({page}): damaged"));
        }
        let format = if crate::etcd::snapshot::has_sha256_trailer(size) {
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
    Ok((format, what))
}

/// Checks a snapshot file as a restore does before it touches anything, and says which format it
/// is: etcdeck's image or etcd's bbolt database, with its SHA-256 checked where it has one.
pub fn check_file(path: &Path) -> Result<CheckedSnapshot, String> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?.len();
    let (format, what) = format_of(path)?;
    if format == SnapshotFormat::EtcdDbCopy {
        return Ok(CheckedSnapshot {
            format,
            summary: format!(
                "{what}, {}; restores need --skip-hash-check",
                crate::app::format::bytes(size as i64)
            ),
        });
    }
    if !crate::etcd::snapshot::has_sha256_trailer(size) {
        return Err(format!(
            "{shown} ({size} bytes) has no SHA-256 after its data: not a snapshot saved from a member"
        ));
    }
    let (stored, got) = crate::etcd::snapshot::sha256_trailer(path).map_err(|e| format!("{shown}: {e}"))?;
    if got != stored {
        return Err(format!(
            "{shown}: the SHA-256 at its end does not match its data (damaged or cut short)"
        ));
    }
    Ok(CheckedSnapshot {
        format,
        summary: format!("{what}, {}, SHA-256 checks out", crate::app::format::bytes(size as i64)),
    })
}

/// The snapshot dialog: progress while saving, then what the verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDialog {
    /// `expected`: the member's database size, for the progress bar (the snapshot is about as big).
    Saving {
        request: u64,
        name: String,
        path: std::path::PathBuf,
        expected: u64,
        bytes: u64,
        started: Option<std::time::Instant>,
    },
    Saved {
        name: String,
        result: Result<SavedSnapshot, String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bbolt file's first page: the page header, then the meta's magic, version and page size.
    fn bolt(pages: usize, page: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; pages * page as usize];
        bytes[8..10].copy_from_slice(&4u16.to_le_bytes());
        bytes[16..20].copy_from_slice(&crate::etcd::bbolt::MAGIC.to_le_bytes());
        bytes[20..24].copy_from_slice(&2u32.to_le_bytes());
        bytes[24..28].copy_from_slice(&page.to_le_bytes());
        bytes
    }

    fn hashed(mut bytes: Vec<u8>) -> Vec<u8> {
        let sum = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
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
        let mut image = crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC.to_vec();
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
