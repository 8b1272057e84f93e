//! The whole store as a stream of pairs, both ways: a leader's export at one raft index, read from
//! sled as it goes out (no image in memory), and a follower's staging of what arrives into a new
//! database beside its live one, loaded as it comes, then switched in with two renames.
//!
//! The export is consistent without a copy: records are written once under their revision and
//! removed only by a compaction, which waits while an export reads them (`begin_export`); records
//! past the export's revision are skipped. Everything else (leases, members, alarms, auth, the v2
//! store, bookkeeping) is small and changes in place, so it is copied when the export begins.
//!
//! A switch is crash-safe as a defragmentation is: the staged database is complete and durable
//! before the live one is renamed away, and an open finishes or undoes a switch a crash cut short
//! (`recover_defragmentation`), and removes a staging a crash left.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::defrag::defrag_path;
use super::export::ExportToken;
use super::load::{Loaded, Loader};
use super::writes::room_for;
use super::{
    io_error, open_db_with_cache, open_store_tree, record_key, Store, META_RAFT_SNAPSHOT, META_TALLY, RECORD,
};
use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::key_index::Revision;
use crate::node::mvcc::tally::Tally;

type Pair = (Vec<u8>, Vec<u8>);

/// The store as of one raft index, for a follower behind the log. Cloned for each follower it goes
/// to; records are not removed until every clone is dropped.
#[derive(Clone)]
pub struct RaftExport {
    tree: sled::Tree,
    revision: i64,
    /// The pairs that sort before the records, and after them, as they were when it began.
    before: Arc<Vec<Pair>>,
    after: Arc<Vec<Pair>>,
    /// The bytes of the records up to `revision` (about what goes out).
    bytes: u64,
    _token: Arc<ExportToken>,
}

/// A pair the stream never carries: each database keeps its own tally, and the receiver records
/// the raft snapshot it was given.
fn own_pair(k: &[u8]) -> bool {
    k == META_TALLY || k == META_RAFT_SNAPSHOT
}

impl Store {
    /// Begins an export of the store as it is now. Quick: copies only what is not a record.
    pub fn raft_export(&self) -> Result<RaftExport, MvccError> {
        self.flush_group()?;
        let token = self.begin_export();
        let copy = |range: sled::Iter| -> Result<Vec<Pair>, MvccError> {
            let mut out = Vec::new();
            for item in range {
                let (k, v) = item?;
                if !own_pair(&k) {
                    out.push((k.to_vec(), v.to_vec()));
                }
            }
            Ok(out)
        };
        let before = copy(self.tree.range(..[RECORD].as_slice()))?;
        let after = copy(self.tree.range([RECORD + 1].as_slice()..))?;
        Ok(RaftExport {
            tree: self.tree.clone(),
            revision: self.current,
            before: Arc::new(before),
            after: Arc::new(after),
            bytes: self.in_use,
            _token: Arc::new(token),
        })
    }

    /// A consistent image of the whole database: a magic line, then every pair as (u32 length,
    /// key, u32 length, value), an end mark, and zero padding to a multiple of 512 bytes (etcdctl
    /// expects the checksum the server appends after a 512-byte aligned image).
    pub fn image(&self) -> Result<Vec<u8>, MvccError> {
        let export = self.raft_export()?;
        let mut out = Vec::with_capacity(export.bytes as usize + 4096);
        out.extend_from_slice(crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC);
        for pair in export.pairs() {
            let (k, v) = pair?;
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(&v);
        }
        out.extend_from_slice(&u32::MAX.to_be_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
        Ok(out)
    }

    /// Replaces everything with `image` (as `image()` makes it): staged beside the live database
    /// and switched in, so a crash leaves the old store or the new one, never a mix.
    pub fn restore_image(&mut self, image: &[u8]) -> Result<(), MvccError> {
        let bad = |why: &str| MvccError::Corrupt(format!("snapshot image: {why}"));
        let mut rest = image
            .strip_prefix(crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC)
            .ok_or_else(|| bad("not an etcdeck image"))?;
        let take = |rest: &mut &[u8]| -> Result<Option<Vec<u8>>, MvccError> {
            let len = rest.get(..4).ok_or_else(|| bad("cut short"))?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            if len == u32::MAX {
                return Ok(None);
            }
            let bytes = rest.get(4..4 + len as usize).ok_or_else(|| bad("cut short"))?.to_vec();
            *rest = &rest[4 + len as usize..];
            Ok(Some(bytes))
        };
        let mut stager = Stager::new(&self.dir)?;
        while let Some(k) = take(&mut rest)? {
            let v = take(&mut rest)?.ok_or_else(|| bad("a key without a value"))?;
            stager.add(k, v)?;
        }
        self.switch_to(stager.finish(None)?)
    }

    /// Makes `staged` the store: the live database is renamed away, the staged one into its
    /// place, and what the staging loaded becomes the store's memory.
    pub fn switch_to(&mut self, mut staged: Staged) -> Result<(), MvccError> {
        self.flush_group()?;
        self.check_no_exports("restore a snapshot")?;
        let old = defrag_path(&self.dir, "old");
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error)?;
        }
        let (Some(from), Some(loaded)) = (staged.dir.take(), staged.loaded.take()) else {
            return Err(MvccError::Storage("a staged snapshot was switched in twice".into()));
        };
        let parent = self.dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into());
        std::fs::rename(&self.dir, &old).map_err(io_error)?;
        if let Err(e) = std::fs::rename(&from, &self.dir) {
            let _ = std::fs::rename(&old, &self.dir);
            let _ = std::fs::remove_dir_all(&from);
            return Err(io_error(e));
        }
        crate::node::fsutil::sync_dir(&parent).map_err(io_error)?;
        // From here the staged database is the store, on disk: a failure below is a failed open.
        let (db, tree) = open_store_tree(&self.dir)?;
        // The tree and the memory that describes it change together.
        self.tree = tree;
        self.db = db;
        self.take_loaded(loaded);
        *self.tally.get_mut().unwrap_or_else(|e| e.into_inner()) = staged.tally;
        self.size_cache.at_ms.store(0, std::sync::atomic::Ordering::Relaxed);
        // The old database is no longer the store: one left behind goes at the next open.
        if let Err(e) = std::fs::remove_dir_all(&old).and_then(|()| crate::node::fsutil::sync_dir(&parent)) {
            eprintln!("etcdeck node: removing {} after a snapshot was switched in: {e}", old.display());
        }
        self.finish_loading()
    }
}

impl RaftExport {
    /// The store's revision at the export.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// About how many bytes the export holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Every pair in key order, the records read from sled as the iterator goes.
    pub fn pairs(&self) -> ExportPairs {
        let after = record_key(Revision::new(self.revision + 1, 0), false);
        ExportPairs {
            export: self.clone(),
            part: 0,
            at: 0,
            records: self.tree.range([RECORD].as_slice()..after.as_slice()),
            read: 0,
        }
    }
}

/// The pairs of an export: those before the records, the records, those after.
pub struct ExportPairs {
    export: RaftExport,
    part: u8,
    at: usize,
    records: sled::Iter,
    /// Records read so far.
    read: u64,
}

/// One record in this many is looked up again as the export reads it. sled 0.34 counts a node
/// into its cache's size only once one of its 256 shards has queued 64 accesses, and a scan reads
/// each node once: without lookups, nodes the scan read sit in memory uncounted (see
/// `BackendExport`, which looks up every record).
const TOUCH_EVERY: u64 = 8;

impl Iterator for ExportPairs {
    type Item = Result<Pair, MvccError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let copied = match self.part {
                0 => &self.export.before,
                1 => match self.records.next() {
                    Some(Ok((k, v))) => {
                        self.read += 1;
                        if self.read.is_multiple_of(TOUCH_EVERY) {
                            let _ = self.export.tree.get(&k);
                        }
                        return Some(Ok((k.to_vec(), v.to_vec())));
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {
                        self.part = 2;
                        self.at = 0;
                        continue;
                    }
                },
                2 => &self.export.after,
                _ => return None,
            };
            if let Some(pair) = copied.get(self.at) {
                self.at += 1;
                return Some(Ok(pair.clone()));
            }
            self.part += 1;
            self.at = 0;
        }
    }
}

/// The page cache of a staging database.
const STAGING_CACHE_BYTES: u64 = 4 << 20;

/// A staging's directory is the live one's name, this, and a number.
const STAGING: &str = "incoming.";

/// Removes the stagings beside the database `live` that a crash left (at open, before any begins).
pub(super) fn remove_stagings(live: &Path) -> Result<(), MvccError> {
    let (Some(parent), Some(name)) = (live.parent(), live.file_name()) else { return Ok(()) };
    let mut prefix = name.to_os_string();
    prefix.push(format!(".{STAGING}"));
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })
    else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_dir_all(entry.path()).map_err(io_error)?;
        }
    }
    Ok(())
}

/// The free space is checked after this many bytes were staged.
const STAGE_CHECK_BYTES: u64 = 1 << 20;

/// A new database beside the live one, filled in key order. Dropped unfinished, it is removed.
///
/// Pairs go in one by one, not in batches: a staging is whole only once `finish` writes its tally,
/// and is thrown away otherwise, so sled's atomic batches buy nothing here. They cost: 300 000
/// pairs took sled 3.5 s in 1 MiB batches and 1.9 s one by one, and the node versions a batch
/// replaces are freed only once it is done (in 8 MiB batches a staging grew the process by 380 MB).
pub struct Stager {
    dir: PathBuf,
    db: Option<(sled::Db, sled::Tree)>,
    unchecked: u64,
    loader: Loader,
    tally: Tally,
    last: Option<Vec<u8>>,
}

impl Stager {
    /// Starts staging beside the store whose database is `live`, in a directory of its own.
    pub fn new(live: &Path) -> Result<Stager, MvccError> {
        static STAGINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STAGINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = defrag_path(live, &format!("{STAGING}{n}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_error)?;
        }
        // Only written while it stages: a small cache is enough, and keeps the member's memory
        // from holding two full ones.
        let db = open_db_with_cache(&dir, STAGING_CACHE_BYTES)?;
        let tree = db.open_tree("mvcc")?;
        Ok(Stager {
            dir,
            db: Some((db, tree)),
            unchecked: 0,
            loader: Loader::default(),
            tally: Tally::default(),
            last: None,
        })
    }

    /// The next pair; keys must come in increasing order.
    pub fn add(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<(), MvccError> {
        if self.last.as_ref().is_some_and(|last| *last >= k) {
            return Err(MvccError::Corrupt(format!("snapshot: the pair {k:?} came out of order")));
        }
        if !own_pair(&k) {
            self.loader.add(&k, &v)?;
            self.tally.add(&k, &v);
            self.insert(&k, v)?;
        }
        self.last = Some(k);
        Ok(())
    }

    fn insert(&mut self, k: &[u8], v: Vec<u8>) -> Result<(), MvccError> {
        self.unchecked += (k.len() + v.len()) as u64;
        if self.unchecked >= STAGE_CHECK_BYTES {
            let bytes = std::mem::take(&mut self.unchecked);
            room_for(&self.dir, bytes, &format!("staging a snapshot in {}", self.dir.display()))?;
        }
        let (_, tree) = self.db.as_ref().ok_or_else(|| MvccError::Storage("staging closed".into()))?;
        tree.insert(k, v)?;
        Ok(())
    }

    /// Ends the staging: records the raft snapshot (index, term) it is, writes the tally, makes the
    /// database durable and closes it. What arrived is loaded as the store's memory.
    pub fn finish(mut self, raft: Option<(u64, u64)>) -> Result<Staged, MvccError> {
        if let Some((index, term)) = raft {
            let mut v = index.to_be_bytes().to_vec();
            v.extend_from_slice(&term.to_be_bytes());
            self.tally.add(META_RAFT_SNAPSHOT, &v);
            self.insert(META_RAFT_SNAPSHOT, v)?;
        }
        // The tally of every other pair, as each batch of the store writes it.
        self.insert(META_TALLY, self.tally.encode())?;
        if let Some((db, tree)) = self.db.take() {
            db.flush()?;
            drop(tree);
            drop(db);
        }
        crate::node::fsutil::sync_tree(&self.dir).map_err(io_error)?;
        let loaded = std::mem::take(&mut self.loader).finish()?;
        Ok(Staged { dir: Some(std::mem::take(&mut self.dir)), loaded: Some(loaded), tally: self.tally })
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.db = None;
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A staged database, complete and durable, with its memory loaded: `Store::switch_to` takes it.
/// Dropped without that, it is removed.
pub struct Staged {
    dir: Option<PathBuf>,
    loaded: Option<Loaded>,
    tally: Tally,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
