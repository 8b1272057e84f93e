//! etcd's snapshot files as `etcdctl snapshot status` reads them: a bbolt database, with the
//! SHA-256 of its bytes appended when it came from the Maintenance.Snapshot RPC (a copy of
//! member/snap/db has none).
//!
//! etcdctl 3.4's status (clientv3/snapshot/v3_snapshot.go): the hash is CRC-32C over every
//! top-level bucket in name order, fed the bucket's name and then each key and value; the revision
//! is the main revision of the last key of the `key` bucket; total keys counts the pairs of every
//! bucket; total size is bbolt's tx.Size().

use std::path::Path;

use super::bbolt::{BoltError, BoltFile};

/// The first bytes of etcdeck's own snapshot image (what an etcdeck node's Maintenance.Snapshot
/// streams, with a SHA-256 after it as etcd's has).
pub const ETCDECK_IMAGE_MAGIC: &[u8] = b"etcdeck-snapshot 1\n";

/// What a snapshot holds, as etcdctl's `snapshot status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub hash: u32,
    pub revision: i64,
    pub total_keys: usize,
    pub total_size: u64,
}

impl SnapshotStatus {
    /// etcdctl's columns: hash in hex, revision, total keys, size as go-humanize prints it.
    pub fn row(&self) -> [String; 4] {
        [
            format!("{:x}", self.hash),
            self.revision.to_string(),
            self.total_keys.to_string(),
            super::format::bytes(i64::try_from(self.total_size).unwrap_or(i64::MAX)),
        ]
    }

    /// etcdctl's `-w json`.
    pub fn json(&self) -> String {
        format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}",
            self.hash, self.revision, self.total_keys, self.total_size
        )
    }
}

/// Whether `size` bytes end with etcd's SHA-256 trailer (etcd's hasChecksum: bbolt's pages are
/// multiples of 512 bytes, so only the 32-byte digest leaves that remainder).
pub fn has_sha256_trailer(size: u64) -> bool {
    size % 512 == 32
}

/// The SHA-256 stored in the last 32 bytes of the file at `path`, and the SHA-256 of what comes
/// before them (read in 1 MiB pieces): equal when the file is whole. The caller has checked that
/// the file has a trailer (`has_sha256_trailer`).
pub fn sha256_trailer(path: &Path) -> std::io::Result<([u8; 32], [u8; 32])> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let body = size.checked_sub(32).ok_or_else(|| std::io::Error::other("shorter than a SHA-256"))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut (&mut file).take(body), &mut hasher)?;
    let mut stored = [0u8; 32];
    file.read_exact(&mut stored)?;
    Ok((stored, hasher.finalize().into()))
}

/// The status of the bbolt snapshot (or db copy) at `path`.
pub fn status(path: &Path) -> Result<SnapshotStatus, BoltError> {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let db = BoltFile::open(path)?;
    let mut digest = CASTAGNOLI.digest();
    let mut revision = 0i64;
    let mut total_keys = 0usize;
    for (name, bucket) in db.buckets()? {
        digest.update(&name);
        let is_key = name == b"key";
        db.for_each(&bucket, |key, value, _nested| {
            digest.update(key);
            digest.update(value);
            if is_key {
                let Some(main) = key.get(..8) else {
                    return Err(BoltError {
                        path: path.to_path_buf(),
                        offset: 0,
                        what: format!("a key of bucket \"key\" is {} bytes, not a revision", key.len()),
                    });
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(main);
                revision = i64::from_be_bytes(be);
            }
            total_keys += 1;
            Ok(())
        })?;
    }
    Ok(SnapshotStatus { hash: digest.finalize(), revision, total_keys, total_size: db.size() })
}
