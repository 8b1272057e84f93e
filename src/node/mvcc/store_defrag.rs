//! Defragmentation: the database copied compactly to a new directory and swapped in, and what a
//! crash part way leaves finished or undone at the next open.
//!
//! Records never change once written, and an export token keeps them from being removed: they are
//! copied without the store's lock while the member goes on serving, in passes until what was
//! written meanwhile is little. Only that, and the rest of the tree (members, leases, auth, the
//! bookkeeping), is copied with the store held, as etcd holds its backend for the whole copy. At 4
//! GB the copy takes a minute; held throughout, it left every request that reads the store waiting,
//! the gRPC server's threads with them, and clients dropped their connections.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::writes::room_beyond;
use super::{
    db_durable, io_error, open_store_tree, parse_record_key, record_key, record_ref, wait_for_other_exports,
    write_with_own_export, Skips, Store, META_TALLY, RECORD,
};
use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::key_index::Revision;
use crate::node::mvcc::tally::Tally;

/// A batch written to the copy ends after this many records or bytes.
const COPY_BATCH: usize = 10_000;
const COPY_BATCH_BYTES: usize = 8 << 20;
/// Revisions written during a pass that are left to the copy under the store's lock, rather than
/// to one more pass without it (a few in tests, so that they see several passes).
const HELD_REVISIONS: i64 = if cfg!(test) { 50 } else { 10_000 };
/// Room the copy leaves on the disk for the live store's own writes meanwhile.
const LIVE_ROOM: u64 = 256 << 20;
/// Passes without the lock at most: writes faster than the copy would never leave it fewer.
const PASSES: usize = 4;

/// The database being written beside the live one.
struct Copy {
    db: sled::Db,
    tree: sled::Tree,
    dir: PathBuf,
    /// What the copy holds, and what it left out: the records a compaction under way drops.
    copied: Tally,
    left_out: Tally,
    left_out_bytes: u64,
}

impl Copy {
    fn create(dir: PathBuf) -> Result<Self, MvccError> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_error)?;
        }
        let (db, tree) = open_store_tree(&dir)?;
        Ok(Copy { db, tree, dir, copied: Tally::default(), left_out: Tally::default(), left_out_bytes: 0 })
    }

    /// Copies the pairs of `range` from `from`, leaving out the records `skips` drops.
    fn pairs(
        &mut self,
        range: sled::Iter,
        from: &sled::Tree,
        skips: Option<&Skips>,
    ) -> Result<(), MvccError> {
        let mut batch = sled::Batch::default();
        let (mut n, mut bytes) = (0, 0);
        for item in range {
            let (k, v) = item?;
            if k.as_ref() == META_TALLY {
                continue;
            }
            // An access of the node just read, so sled counts it into its cache (see the export's
            // reader): a scan alone leaves what it reads in memory uncounted.
            let _ = from.get(&k);
            if let Some(skips) = skips.filter(|_| k.first() == Some(&RECORD)) {
                let (rev, _) = parse_record_key(&k)?;
                if skips.drops(&rev, record_ref(&v)?.key) {
                    self.left_out.add(&k, &v);
                    self.left_out_bytes += (k.len() + v.len()) as u64;
                    continue;
                }
            }
            self.copied.add(&k, &v);
            bytes += k.len() + v.len();
            n += 1;
            batch.insert(k, v);
            if n == COPY_BATCH || bytes >= COPY_BATCH_BYTES {
                self.write(std::mem::take(&mut batch), bytes)?;
                (n, bytes) = (0, 0);
            }
        }
        self.write(batch, bytes)
    }

    fn write(&self, batch: sled::Batch, bytes: usize) -> Result<(), MvccError> {
        room_beyond(&self.dir, bytes as u64, LIVE_ROOM, "a defragmentation's copy")?;
        Ok(self.tree.apply_batch(batch)?)
    }

    /// The records of revisions after `after` and up to `upto` (all after, without it).
    fn records(
        &mut self,
        from: &sled::Tree,
        after: i64,
        upto: Option<i64>,
        skips: Option<&Skips>,
    ) -> Result<(), MvccError> {
        let start = record_key(Revision::new(after + 1, 0), false);
        let end = match upto {
            Some(upto) => record_key(Revision::new(upto + 1, 0), false),
            None => vec![RECORD + 1],
        };
        self.pairs(from.range(start..end), from, skips)
    }

    fn make_durable(&self) -> Result<(), MvccError> {
        db_durable(&self.db, &self.dir)
    }

    /// Closes the copy and opens it again. sled 0.34 writes the snapshot of its page table only as
    /// it opens a database, and an open reads the log written since: opened once here, the open
    /// after the swap (with the store held) reads only what was copied after this.
    fn reopen(self) -> Result<Self, MvccError> {
        let Copy { db, tree, dir, copied, left_out, left_out_bytes } = self;
        drop((tree, db));
        let (db, tree) = open_store_tree(&dir)?;
        Ok(Copy { db, tree, dir, copied, left_out, left_out_bytes })
    }
}

/// The database a swap put aside: closed and removed after the store is let go.
struct Old {
    db: sled::Db,
    tree: sled::Tree,
    dir: PathBuf,
}

impl Old {
    /// The swap is done whatever happens here: what is left is removed at the next open.
    fn remove(self) {
        let Old { db, tree, dir } = self;
        drop((tree, db));
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into());
        if let Err(e) = std::fs::remove_dir_all(&dir).and_then(|()| crate::node::fsutil::sync_dir(&parent)) {
            eprintln!(
                "etcdeck node: removing the database a defragmentation replaced, {}: {e}",
                dir.display()
            );
        }
    }
}

/// What a defragmentation took: passes over the records without the store's lock, and how long
/// the store was held.
#[derive(Debug)]
pub struct Defragmented {
    pub passes: usize,
    pub held: std::time::Duration,
}

/// Rewrites the store's database compactly: copies it to a new directory, makes the copy durable,
/// then swaps the two with the store held. A crash part way is finished or undone at the next open;
/// a failure part way leaves the store as it was. One at a time. A snapshot being sent is waited for
/// before the last passes, which copy what was written meanwhile.
pub fn defragment(lock: &RwLock<Store>) -> Result<Defragmented, MvccError> {
    let poisoned = || MvccError::Storage("store lock poisoned".into());
    let one_at_a_time = lock.read().map_err(|_| poisoned())?.defragmenting.clone();
    let _only = one_at_a_time.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (token, tree, dir, skips, mut copied_to, in_use) = {
        let store = lock.read().map_err(|_| poisoned())?;
        store.flush_group()?;
        let skips = store.compaction_skips();
        (store.begin_export(), store.tree.clone(), store.dir.clone(), skips, store.current, store.in_use)
    };
    // The copy holds about the records' bytes: refused at once, not once it has filled the disk.
    room_beyond(&dir, in_use / 4, LIVE_ROOM, "a defragmentation's copy of the records")?;
    let mut copy = Copy::create(defrag_path(&dir, "defrag"))?;
    let result = (|| {
        copy.records(&tree, 0, Some(copied_to), skips.as_ref())?;
        let mut passes = 1;
        // Writes made while another export runs are copied in the passes after it ends, not with
        // the store held.
        wait_for_other_exports(lock, &token)?;
        while passes < PASSES {
            let now = {
                let store = lock.read().map_err(|_| poisoned())?;
                store.flush_group()?;
                store.current
            };
            if now - copied_to <= HELD_REVISIONS {
                break;
            }
            copy.records(&tree, copied_to, Some(now), skips.as_ref())?;
            copied_to = now;
            passes += 1;
        }
        copy.make_durable()?;
        copy = copy.reopen()?;
        let mut store = write_with_own_export(lock, &token)?;
        let held = std::time::Instant::now();
        store.flush_group()?;
        copy.records(&tree, copied_to, None, skips.as_ref())?;
        copy.pairs(tree.range(..[RECORD]), &tree, None)?;
        copy.pairs(tree.range([RECORD + 1]..), &tree, None)?;
        let mut counted = copy.copied;
        counted.merge(&copy.left_out);
        let tally = store.tally();
        if counted != tally {
            return Err(MvccError::Corrupt(format!(
                "the defragmentation's copy counts {counted:?} where the store's tally is {tally:?}: not swapped"
            )));
        }
        copy.tree.insert(META_TALLY, copy.copied.encode())?;
        copy.make_durable()?;
        let old = store.swap_in(copy)?;
        let held = held.elapsed();
        drop(store);
        old.remove();
        Ok(Defragmented { passes, held })
    })();
    drop(token);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(defrag_path(&dir, "defrag"));
    }
    result
}

impl Store {
    /// Puts the copy in the database's place: the database is renamed aside, the copy into its
    /// place and opened. The old database goes back if that fails. What was put aside is renamed
    /// to where the copy was (a crash leaves it to be removed at the next open) and handed back.
    fn swap_in(&mut self, copy: Copy) -> Result<Old, MvccError> {
        let Copy { db, tree, dir: fresh, copied, left_out_bytes, .. } = copy;
        drop((tree, db));
        let aside = defrag_path(&self.dir, "old");
        let parent = self.dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into());
        // Left by a switch whose removal of it failed: the live database is whole.
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(io_error)?;
        }
        std::fs::rename(&self.dir, &aside).map_err(io_error)?;
        if let Err(e) = std::fs::rename(&fresh, &self.dir) {
            let _ = std::fs::rename(&aside, &self.dir);
            return Err(io_error(e));
        }
        // Failed, the renames may not last a crash; the store goes on with what the disk holds now,
        // and says so.
        let synced = crate::node::fsutil::sync_dir(&parent).map_err(io_error);
        let (db, tree) = match open_store_tree(&self.dir) {
            Ok(opened) => opened,
            Err(e) => {
                // Back to the old database, which this process still has open.
                let _ = std::fs::rename(&self.dir, &fresh);
                let _ = std::fs::rename(&aside, &self.dir);
                let _ = crate::node::fsutil::sync_dir(&parent);
                return Err(e.into());
            }
        };
        // Where the copy was, unless that rename fails.
        let dir = if std::fs::rename(&aside, &fresh).is_ok() { fresh } else { aside };
        let old = Old {
            db: std::mem::replace(&mut self.db, db),
            tree: std::mem::replace(&mut self.tree, tree),
            dir,
        };
        *self.tally.lock().unwrap_or_else(|e| e.into_inner()) = copied;
        self.in_use = self.in_use.saturating_sub(left_out_bytes);
        // The quota check reads the new size next.
        self.size_cache.at_ms.store(0, std::sync::atomic::Ordering::Relaxed);
        synced?;
        Ok(old)
    }
}

pub(super) fn defrag_path(dir: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Finishes or undoes a defragmentation, or a switch to a staged snapshot, that a crash interrupted:
/// the old copy is complete until the new one has been renamed into place.
pub(super) fn recover_defragmentation(dir: &Path) -> Result<(), MvccError> {
    let fresh = defrag_path(dir, "defrag");
    let old = defrag_path(dir, "old");
    if old.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error)?;
        } else {
            std::fs::rename(&old, dir).map_err(io_error)?;
        }
    }
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(io_error)?;
    }
    Ok(())
}
