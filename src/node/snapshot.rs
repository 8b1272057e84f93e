//! etcdeck's own snapshot image, which an etcdeck node's Maintenance.Snapshot streams: its status,
//! checked against its SHA-256 and reported as etcdctl reports a snapshot, and its restore.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::etcd::snapshot::SnapshotStatus;
use crate::node::mvcc::store::{RaftMember, Store};

/// The snapshot's image with its trailing SHA-256 checked.
pub fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !crate::etcd::snapshot::has_sha256_trailer(bytes.len() as u64) {
        return Err(format!(
            "{}: not an etcdeck snapshot (no 512-aligned image with a SHA-256 after it)",
            path.display()
        ));
    }
    let (image, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(image).as_slice() != sum {
        return Err(format!(
            "{}: snapshot file integrity check failed: the SHA-256 does not match",
            path.display()
        ));
    }
    Ok(image.to_vec())
}

pub fn status(path: &Path) -> Result<SnapshotStatus, String> {
    let image = read_checked(path)?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let mut store = Store::open(dir.path()).map_err(|e| e.to_string())?;
    store.restore_image(&image).map_err(|e| format!("{}: {e}", path.display()))?;
    let total_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(SnapshotStatus {
        hash: store.hash().map_err(|e| e.to_string())?,
        revision: store.current_revision(),
        total_keys: store.key_count(),
        total_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_or_foreign_files_are_named_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::fs::write(&path, b"bbolt stuff").unwrap();
        assert!(status(&path).unwrap_err().contains("not an etcdeck snapshot"));
        let mut bytes = vec![0u8; 512];
        bytes.extend_from_slice(&[1u8; 32]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(status(&path).unwrap_err().contains("integrity check failed"));
    }
}

/// Whether `file` starts as etcdeck's own snapshot image does.
fn is_etcdeck_image(file: &Path) -> Result<bool, String> {
    use crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC;
    use std::io::Read;
    let mut head = Vec::with_capacity(ETCDECK_IMAGE_MAGIC.len());
    std::fs::File::open(file)
        .and_then(|f| f.take(ETCDECK_IMAGE_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(head == ETCDECK_IMAGE_MAGIC)
}

/// etcdctl snapshot restore's check of an etcd snapshot: a file whose size leaves 32 bytes over
/// the 512-byte blocks ends with the SHA-256 of what comes before it, which must match; a file
/// without one (a copy of member/snap/db) needs --skip-hash-check. In etcdctl's words.
fn check_etcd_snapshot(file: &Path, skip_hash_check: bool) -> Result<(), String> {
    use crate::etcd::snapshot::{has_sha256_trailer, sha256_trailer};
    let size = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
    if skip_hash_check {
        return Ok(());
    }
    if !has_sha256_trailer(size) {
        return Err("snapshot missing hash but --skip-hash-check=false".into());
    }
    let (stored, got) = sha256_trailer(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if got != stored {
        // Go prints byte slices as [1 2 3].
        let go = |b: &[u8]| format!("[{}]", b.iter().map(u8::to_string).collect::<Vec<_>>().join(" "));
        return Err(format!("expected sha256 {}, got {}", go(&stored), go(&got)));
    }
    Ok(())
}

/// What `etcdeck snapshot restore` is told: etcdctl snapshot restore's flags.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub name: String,
    pub data_dir: std::path::PathBuf,
    pub wal_dir: Option<std::path::PathBuf>,
    pub initial_cluster: String,
    pub initial_cluster_token: String,
    pub initial_advertise_peer_urls: String,
    pub skip_hash_check: bool,
}

/// Makes a fresh member data dir from a snapshot, as etcdctl snapshot restore does: the store is
/// the snapshot's, the member and cluster IDs come from the new --initial-cluster and token, and
/// the raft log starts after the snapshot, so every member restored from the same file starts the
/// new cluster from the same state. Nothing is written unless everything checks out. Returns what
/// an import of etcd's backend brought in, for the caller to show (nothing is printed here: the
/// console runs this too).
pub fn restore(file: &Path, o: &RestoreOptions) -> Result<Option<String>, String> {
    use crate::etcd::urls::EtcdUrl;
    use crate::node::config::parse_initial_cluster;
    use crate::node::fsutil::write_durably;
    use crate::node::identity::{initial_members, MemberIdentity, IDENTITY_FILE};
    use crate::node::idutil::member_id;
    use crate::node::raft::wal::{HardState, SnapshotMark, Wal};

    if o.data_dir.exists() {
        return Err(format!("data-dir {:?} exists", o.data_dir.display().to_string()));
    }
    if let Some(wal) = o.wal_dir.as_ref().filter(|w| w.exists()) {
        return Err(format!("wal-dir {:?} exists", wal.display().to_string()));
    }
    // etcdeck's own image, or etcd's bbolt backend (a snapshot, or a member's db with
    // --skip-hash-check), checked as etcdctl checks it.
    let image = if is_etcdeck_image(file)? {
        Some(if o.skip_hash_check {
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            bytes[..bytes.len() - bytes.len() % 512].to_vec()
        } else {
            read_checked(file)?
        })
    } else {
        check_etcd_snapshot(file, o.skip_hash_check)?;
        None
    };
    let cluster = parse_initial_cluster(&o.initial_cluster).map_err(|e| e.to_string())?;
    let own: Vec<String> = o
        .initial_advertise_peer_urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| EtcdUrl::parse(u).map(|u| u.to_string()))
        .collect::<Result<_, _>>()?;
    let Some(listed) = cluster.get(&o.name) else {
        return Err(format!("couldn't find local name {:?} in the initial cluster configuration", o.name));
    };
    let mut listed: Vec<String> = listed.iter().map(ToString::to_string).collect();
    let mut advertised = own.clone();
    listed.sort();
    advertised.sort();
    if listed != advertised {
        return Err(format!(
            "--initial-cluster has {} for {:?} but --initial-advertise-peer-urls is {}",
            listed.join(","),
            o.name,
            advertised.join(",")
        ));
    }
    let (members, cluster_id) = initial_members(&cluster, &o.initial_cluster_token);
    let identity = MemberIdentity {
        name: o.name.clone(),
        member_id: format!("{:x}", member_id(&own, &o.initial_cluster_token)),
        cluster_id: format!("{cluster_id:x}"),
        initial_cluster_token: o.initial_cluster_token.clone(),
        peer_urls: own,
        members,
        joined: false,
        beside_etcd: false,
    };

    let member = o.data_dir.join("member");
    let fail = |e: &dyn std::fmt::Display| {
        // A half-made data dir must not be mistaken for a member: take it away (and the WAL dir
        // made for it, which did not exist before).
        let _ = std::fs::remove_dir_all(&o.data_dir);
        if let Some(wal) = &o.wal_dir {
            let _ = std::fs::remove_dir_all(wal);
        }
        format!("restoring into {}: {e}", o.data_dir.display())
    };
    std::fs::create_dir_all(&member).map_err(|e| fail(&e))?;
    let mut summary = None;
    let index = {
        let mut store = Store::open(&member.join("snap").join("db")).map_err(|e| fail(&e))?;
        match &image {
            Some(image) => store.restore_image(image).map_err(|e| fail(&e))?,
            None => {
                let i = store.import_etcd(file).map_err(|e| fail(&e))?;
                summary = Some(format!(
                    "imported etcd's backend from {}: revision {} (compacted at {}), {} keys \
                     in {} records, {} leases, {} users, {} roles, consistent index {}",
                    file.display(),
                    i.revision,
                    i.compacted,
                    i.keys,
                    i.records,
                    i.leases,
                    i.users,
                    i.roles,
                    i.consistent_index
                ));
            }
        }
        // The new cluster's membership replaces the old one's (as etcdutl rewrites the members),
        // every member unstarted until it publishes; the log starts after index 1 at least.
        let index = store.consistent_index().max(1);
        let mut txn = store.write();
        txn.clear_membership();
        for m in &identity.members {
            let id = u64::from_str_radix(&m.id, 16).map_err(|e| fail(&e))?;
            txn.set_member(id, RaftMember { peer_urls: m.peer_urls.clone(), is_learner: false });
        }
        txn.commit(Some(index)).map_err(|e| fail(&e))?;
        store.make_durable().map_err(|e| fail(&e))?;
        index
    };
    let wal_dir = o.wal_dir.clone().unwrap_or_else(|| member.join("wal"));
    let (mut wal, _) = Wal::open(&wal_dir).map_err(|e| fail(&e))?;
    wal.save_snapshot(SnapshotMark { index, term: 1 }).map_err(|e| fail(&e))?;
    wal.save(&[], Some(HardState { term: 1, vote: 0, commit: index })).map_err(|e| fail(&e))?;
    drop(wal);
    // The identity last: a data dir without it is not taken for a member.
    let text = serde_json::to_string_pretty(&identity).map_err(|e| fail(&e))?;
    write_durably(&member.join(IDENTITY_FILE), text.as_bytes()).map_err(|e| fail(&e))?;
    Ok(summary)
}
