//! The MVCC key-value store on sled, with etcd's semantics: the store starts at revision 1, each write
//! transaction adds one revision, every key carries its create and mod revision and version, deletions
//! are tombstones, and history stays readable until it is compacted.
//!
//! Layout (one sled tree, so one batch covers data and bookkeeping atomically):
//! - `k` + main (8 bytes, big-endian) + `_` + sub (8 bytes) [+ `t` for a tombstone] -> encoded KeyValue,
//!   as etcd lays out its bbolt "key" bucket, so a scan in key order replays history in order;
//! - `l` + lease ID (8 bytes, big-endian) -> the lease's granted TTL in seconds;
//! - `a` + member ID (8 bytes) + alarm type (4 bytes) -> an active alarm;
//! - `p` + member ID (8 bytes) -> the attributes the member published (JSON: name, client URLs);
//! - `r` + member ID (8 bytes) -> the member's raft attributes (JSON: peer URLs, learner or not), as
//!   etcd's members bucket: the cluster's membership, changed only by applied raft entries;
//! - `x` + member ID (8 bytes) -> a member removed from the cluster (etcd's members_removed);
//! - `uauth` -> the auth store (JSON: users with bcrypt hashes, roles and their permissions);
//! - the v2 store (`--enable-v2`): `v` + path -> a node (JSON), `w` + index (8 bytes) -> an event of
//!   its history (JSON), `uv2` -> its index;
//! - `m` + name -> bookkeeping: the compacted revision and the applied raft index.
//!
//! The key index (every key's generations of revisions) lives in memory and is rebuilt from the
//! records at open, as etcd's treeIndex is.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;

use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::key_index::{backend_len, Keep, KeyIndex, Revision};
use crate::node::mvcc::tally::Tally;

const RECORD: u8 = b'k';
const LEASE: u8 = b'l';
const ALARM: u8 = b'a';
const MEMBER: u8 = b'p';
const RAFT_MEMBER: u8 = b'r';
const REMOVED: u8 = b'x';
// Bookkeeping keys start with `m`, after every record key (`k`).
const META_COMPACTED: &[u8] = b"mcompacted";
/// The last compaction whose records are all gone (etcd's finishedCompactRev).
const META_COMPACT_FINISHED: &[u8] = b"mcompact_finished";
const META_CONSISTENT_INDEX: &[u8] = b"mconsistent_index";
/// The raft index and term of the leader's snapshot the store was last replaced with, in the same
/// batch as the image: a crash before the log records that snapshot is then finished at the next
/// open instead of being taken for a lost log.
const META_RAFT_SNAPSHOT: &[u8] = b"mraft_snapshot";
/// The tally of every other pair in the tree (see `tally`), written in every batch.
const META_TALLY: &[u8] = b"mtally";
const AUTH_KEY: &[u8] = b"uauth";
const V2_KEY: &[u8] = b"uv2";
const V2_NODE: u8 = b'v';
const V2_EVENT: u8 = b'w';
const ENCODING_VERSION: u8 = 1;

/// A member as raft knows it: where its peers reach it, and whether it votes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RaftMember {
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
}

/// A key-value pair as etcd's mvccpb.KeyValue describes it (etcd's vocabulary, shared with the
/// backend reader and writer).
pub use crate::etcd::backend::KeyValue;

impl From<KeyValue> for etcd_client::proto::PbKeyValue {
    fn from(kv: KeyValue) -> Self {
        etcd_client::proto::PbKeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

/// One change as a watcher sees it. A deletion carries the key and the deleting revision only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub deleted: bool,
    pub kv: KeyValue,
}

/// A granted lease: its TTL and the keys attached to it now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    pub ttl: i64,
    pub keys: BTreeSet<Vec<u8>>,
}

/// What a range read found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResult {
    /// At most `limit` pairs, in key order.
    pub kvs: Vec<KeyValue>,
    /// How many keys matched, before the limit.
    pub count: usize,
    /// The store's revision at the read (what etcd puts in the header, whichever revision was read).
    pub rev: i64,
}

pub struct Store {
    dir: std::path::PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    index: BTreeMap<Vec<u8>, KeyIndex>,
    current: i64,
    compacted: i64,
    consistent_index: u64,
    leases: BTreeMap<i64, LeaseRecord>,
    /// The lease each live key attached to an existing lease has (the inverse of the leases' key
    /// sets), so that a put learns what it replaces from memory alone, as etcd's lessor tells it.
    leased: std::collections::HashMap<Vec<u8>, i64>,
    alarms: BTreeSet<(u64, i32)>,
    /// What each member published once it started: (name, client URLs).
    attributes: BTreeMap<u64, (String, Vec<String>)>,
    /// The cluster's members and the IDs removed from it.
    members: BTreeMap<u64, RaftMember>,
    removed: BTreeSet<u64>,
    auth: crate::node::auth::AuthState,
    v2: crate::node::v2store::Store,
    /// Bytes of keys and values stored, history included (what a defragmentation would keep).
    in_use: u64,
    /// The changes of the last committed transaction, for the watch hub.
    events: Vec<Event>,
    /// Transactions committed since `begin_group` and not yet written to sled (see `flush_group`).
    /// Behind a mutex so that readers holding the store shared can write it out before reading
    /// sled directly (history, hashes, images, flushes).
    group: std::sync::Mutex<Option<Group>>,
    /// The group's bytes, readable without the store's lock (see `pending_gauge`).
    pending: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The database's size for the quota check in front of every write: sled sums its files'
    /// sizes, too slow to ask for each write, so it is asked at most every 100 ms.
    size_cache: SizeCache,
    /// How long opening took: sled's own recovery, then rebuilding the index from the records.
    opening: (std::time::Duration, std::time::Duration),
    /// Exports reading the records without the store's lock (snapshots): what removes records
    /// (compaction, defragmentation, a leader's image) waits for them to end.
    exports: std::sync::Arc<export::Exports>,
    /// A compaction taken while exports read the records: the index is compacted, and the
    /// records removed, once none does (`compaction_step`).
    deferred_compaction: Option<i64>,
    /// A compaction whose records are being removed, a step at a time (`compaction_step`).
    compaction: Option<Compaction>,
    /// The last compaction whose records are gone (`compacted` unless one is under way).
    compacted_done: i64,
    /// The tally of what sled holds (after the last batch written to it).
    tally: std::sync::Mutex<Tally>,
    /// Why a group of committed transactions could not be written (see `write_group`).
    group_lost: std::sync::OnceLock<MvccError>,
    /// Held through a defragmentation, which copies without the store's lock: one at a time.
    defragmenting: std::sync::Arc<std::sync::Mutex<()>>,
}

#[derive(Default)]
struct SizeCache {
    bytes: std::sync::atomic::AtomicU64,
    /// When `bytes` was read, in ms after `opened` (0: never).
    at_ms: std::sync::atomic::AtomicU64,
    opened: Option<std::time::Instant>,
}

/// Committed transactions not yet in sled: their writes in order, and the records they wrote (for
/// reads until they are in sled).
#[derive(Default)]
struct Group {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    records: BTreeMap<Revision, KeyValue>,
    /// When the oldest of `ops` was committed.
    since: Option<std::time::Instant>,
    /// The bytes of keys and values in `ops`.
    bytes: u64,
}

/// sled's page cache holds about this much. Its default (1 GiB) made the node's RSS grow with the
/// data far past etcd's; the key index is in memory anyway, and reads of values past the cache go to
/// the OS's page cache. A full read (a snapshot) turns the whole cache over, and the memory of the
/// nodes it evicts goes back to the heaps of the threads that read them in, which are idle then: the
/// RSS grows by about the cache's size once. At 64 MB that was most of a save's growth.
const SLED_CACHE_BYTES: u64 = 32 << 20;

fn sled_config(dir: &Path, cache_bytes: u64) -> sled::Config {
    sled::Config::new().path(dir).cache_capacity(cache_bytes)
}

/// How long an open waits for the lock a database of this process has just let go of.
const RELOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the database in `dir`. When this process has just closed a database there (a
/// defragmentation opens the copy it wrote, a restore's store is reopened), sled's flusher thread
/// can hold the file's lock a little longer: the open is tried again for up to RELOCK_WAIT. A lock
/// held past that (another process has the data dir open) is the error.
/// What sled wrote to the database `db` in `dir` made durable as fsync does (see `make_durable`).
fn db_durable(db: &sled::Db, dir: &Path) -> Result<(), MvccError> {
    db.flush()?;
    crate::node::fsutil::sync_tree(dir).map_err(io_error)
}

/// The store's database in `dir` and its tree, opened as `open_db` does.
fn open_store_tree(dir: &Path) -> sled::Result<(sled::Db, sled::Tree)> {
    let db = open_db(dir)?;
    let tree = db.open_tree("mvcc")?;
    Ok((db, tree))
}

fn open_db(dir: &Path) -> sled::Result<sled::Db> {
    open_db_with_cache(dir, SLED_CACHE_BYTES)
}

/// `open_db` with a page cache of `cache_bytes`.
fn open_db_with_cache(dir: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + RELOCK_WAIT;
    loop {
        match sled_config(dir, cache_bytes).open() {
            Err(sled::Error::Io(e)) if is_lock_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Whether sled's open failed because the database's file lock is held. sled 0.34 reports the
/// flock's EWOULDBLOCK only as text in an `Other` error (its wording is pinned by Cargo.lock, and
/// the store's lock test fails if it changes).
fn is_lock_busy(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || (e.kind() == std::io::ErrorKind::Other && e.to_string().starts_with("could not acquire lock on"))
}

impl Store {
    /// Opens (or creates) the store in `dir` and rebuilds the key index from its records.
    pub fn open(dir: &Path) -> Result<Self, MvccError> {
        recover_defragmentation(dir)?;
        stream::remove_stagings(dir)?;
        let started = std::time::Instant::now();
        let (db, tree) = open_store_tree(dir)?;
        let sled_opened = started.elapsed();
        let mut store = Store {
            dir: dir.to_path_buf(),
            db,
            tree,
            index: BTreeMap::new(),
            current: 1,
            compacted: 0,
            consistent_index: 0,
            leases: BTreeMap::new(),
            leased: std::collections::HashMap::new(),
            alarms: BTreeSet::new(),
            attributes: BTreeMap::new(),
            members: BTreeMap::new(),
            removed: BTreeSet::new(),
            auth: Default::default(),
            v2: Default::default(),
            in_use: 0,
            events: Vec::new(),
            group: std::sync::Mutex::new(None),
            pending: std::sync::Arc::default(),
            size_cache: SizeCache { opened: Some(std::time::Instant::now()), ..SizeCache::default() },
            opening: (sled_opened, std::time::Duration::ZERO),
            exports: std::sync::Arc::default(),
            deferred_compaction: None,
            compaction: None,
            compacted_done: 0,
            tally: std::sync::Mutex::default(),
            group_lost: std::sync::OnceLock::new(),
            defragmenting: std::sync::Arc::default(),
        };
        let loading = std::time::Instant::now();
        store.load()?;
        store.opening.1 = loading.elapsed();
        Ok(store)
    }

    pub fn current_revision(&self) -> i64 {
        self.current
    }

    pub fn compact_revision(&self) -> i64 {
        self.compacted
    }

    /// The raft index of the last applied entry, stored in the same batch as its changes.
    /// The raft snapshot (index, term) the store was last replaced with, if any.
    pub fn raft_snapshot(&self) -> Result<Option<(u64, u64)>, MvccError> {
        Ok(self.tree.get(META_RAFT_SNAPSHOT)?.and_then(|v| {
            let index = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
            let term = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
            Some((index, term))
        }))
    }

    pub fn consistent_index(&self) -> u64 {
        self.consistent_index
    }

    pub fn leases(&self) -> &BTreeMap<i64, LeaseRecord> {
        &self.leases
    }

    /// What members published: (name, client URLs) by member ID.
    pub fn attributes(&self) -> &BTreeMap<u64, (String, Vec<String>)> {
        &self.attributes
    }

    /// Users, roles and whether auth is enabled.
    pub fn auth(&self) -> &crate::node::auth::AuthState {
        &self.auth
    }

    /// The cluster's members (empty until the membership is first recorded).
    pub fn members(&self) -> &BTreeMap<u64, RaftMember> {
        &self.members
    }

    /// IDs removed from the cluster: they may never come back.
    pub fn removed(&self) -> &BTreeSet<u64> {
        &self.removed
    }

    /// Active alarms: (member ID, alarm type as etcd numbers them).
    pub fn alarms(&self) -> &BTreeSet<(u64, i32)> {
        &self.alarms
    }

    /// The changes the last committed transaction made.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Bytes the database takes on disk.
    pub fn db_size(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// `db_size` as read at most 100 ms ago: for the quota check in front of each write.
    pub fn db_size_recent(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.size_cache;
        let now = c.opened.map_or(0, |o| o.elapsed().as_millis() as u64) + 1;
        let at = c.at_ms.load(Relaxed);
        if at == 0 || now.saturating_sub(at) >= 100 {
            c.bytes.store(self.db_size(), Relaxed);
            c.at_ms.store(now, Relaxed);
        }
        c.bytes.load(Relaxed)
    }

    /// How long opening took: (sled's recovery, rebuilding the index).
    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn opening_time(&self) -> (std::time::Duration, std::time::Duration) {
        self.opening
    }

    /// Bytes of the stored records: what the database would hold after a defragmentation.
    pub fn db_size_in_use(&self) -> u64 {
        self.in_use
    }

    /// The events of revisions `from..=to`, in order; `Compacted` if part of that history is gone.
    pub fn history(&self, from: i64, to: i64) -> Result<Vec<(Revision, Event)>, MvccError> {
        if from < self.compacted {
            return Err(MvccError::Compacted);
        }
        self.flush_group()?;
        let mut out = Vec::new();
        if to < from {
            return Ok(out);
        }
        let start = record_key(Revision::new(from, 0), false);
        let end = record_key(Revision::new(to.saturating_add(1), 0), false);
        for item in self.tree.range(start..end) {
            let (k, v) = item?;
            let (rev, deleted) = parse_record_key(&k)?;
            let mut kv = decode(&v)?;
            if deleted {
                kv = KeyValue { key: kv.key, mod_revision: rev.main, ..KeyValue::default() };
            }
            out.push((rev, Event { deleted, kv }));
        }
        Ok(out)
    }

    /// etcd's HashKV: CRC-32C over the key bucket's records up to `rev` (0: now), with the record keys
    /// and values laid out as etcd lays them out, so equal histories hash equal on etcd and here.
    /// Returns (hash, revision hashed, compacted revision).
    pub fn hash_kv(&self, rev: i64) -> Result<(u32, i64, i64), MvccError> {
        if rev > 0 && rev <= self.compacted {
            return Err(MvccError::Compacted);
        }
        if rev > self.current {
            return Err(MvccError::FutureRev);
        }
        let rev = if rev <= 0 { self.current } else { rev };
        self.flush_group()?;
        // What compacting at `rev` would keep, as etcd's kvindex.Keep.
        let keep = Keep::new(self.index.values().filter_map(|ki| ki.get(rev)).map(|k| k.modified).collect());
        const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = CASTAGNOLI.digest();
        digest.update(b"key");
        // Records a compaction (deferred, or under way) has not removed yet are hashed as if gone.
        let unindexed = self.deferred_compaction.or(self
            .compaction
            .as_ref()
            .filter(|c| c.indexing.is_some())
            .map(|c| c.rev));
        let deferred: Option<Keep> = unindexed.map(|at| {
            Keep::new(self.index.values().filter_map(|ki| ki.get(at)).map(|k| k.modified).collect())
        });
        let compaction_keeps = deferred.as_ref().or(self.compaction.as_ref().map(|c| &*c.keep));
        let end = record_key(Revision::new(rev.saturating_add(1), 0), false);
        for item in self.tree.range(&[RECORD][..]..&end[..]) {
            let (k, v) = item?;
            let (r, deleted) = parse_record_key(&k)?;
            if r.main <= self.compacted && !keep.is_empty() && !keep.contains(&r) {
                continue;
            }
            if r.main <= self.compacted && compaction_keeps.as_ref().is_some_and(|kept| !kept.contains(&r)) {
                continue;
            }
            let kv = decode(&v)?;
            // etcd stores a tombstone as a KeyValue holding the key alone.
            let pb = if deleted {
                etcd_client::proto::PbKeyValue { key: kv.key, ..Default::default() }
            } else {
                etcd_client::proto::PbKeyValue::from(kv)
            };
            digest.update(&k[1..]);
            digest.update(&prost::Message::encode_to_vec(&pb));
        }
        let compacted = if self.compacted == 0 { -1 } else { self.compacted };
        Ok((digest.finalize(), rev, compacted))
    }

    /// CRC-32C of everything the database holds (etcd's Hash covers its whole backend the same way).
    pub fn hash(&self) -> Result<u32, MvccError> {
        const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = CASTAGNOLI.digest();
        self.flush_group()?;
        for item in self.tree.iter() {
            let (k, v) = item?;
            digest.update(&k);
            digest.update(&v);
        }
        Ok(digest.finalize())
    }

    /// Number of keys alive now.
    pub fn key_count(&self) -> usize {
        self.index.values().filter(|ki| !ki.is_deleted()).count()
    }

    /// Keys in [key, end) as they were at `rev` (0 or less: now). An empty `end` reads one key; an
    /// `end` of "\0" reads every key from `key` on. `limit` 0 means no limit.
    pub fn range(&self, key: &[u8], end: &[u8], limit: usize, rev: i64) -> Result<RangeResult, MvccError> {
        self.range_at(key, end, limit, rev, self.current, &BTreeMap::new(), true)
    }

    /// As `range`, for a request that wants no values (keys_only, count_only): a key's newest
    /// version is answered from memory (the key index and the leases' keys), as etcd answers a
    /// put's previous version, so listings cost no disk read and go on when the database cannot
    /// be read (a full disk); older versions are read as `range` reads them.
    pub fn range_keys_only(
        &self,
        key: &[u8],
        end: &[u8],
        limit: usize,
        rev: i64,
    ) -> Result<RangeResult, MvccError> {
        self.range_at(key, end, limit, rev, self.current, &BTreeMap::new(), false)
    }

    #[allow(clippy::too_many_arguments)]
    fn range_at(
        &self,
        key: &[u8],
        end: &[u8],
        limit: usize,
        rev: i64,
        current: i64,
        pending: &BTreeMap<Revision, KeyValue>,
        values: bool,
    ) -> Result<RangeResult, MvccError> {
        let at = if rev <= 0 { current } else { rev };
        if at > current {
            return Err(MvccError::FutureRev);
        }
        if at < self.compacted {
            return Err(MvccError::Compacted);
        }
        let mut count = 0;
        let mut kvs = Vec::new();
        for (k, ki) in self.index_range(key, end) {
            if limit != 0 && kvs.len() >= limit {
                // Past the limit only the count is left to make.
                count += usize::from(ki.exists_at(at));
                continue;
            }
            let Some(found) = ki.get(at) else { continue };
            count += 1;
            let mut kv = match pending.get(&found.modified) {
                Some(kv) => kv.clone(),
                None if !values && found.modified == ki.modified => KeyValue {
                    key: k.clone(),
                    create_revision: found.created.main,
                    mod_revision: found.modified.main,
                    version: found.version,
                    value: Vec::new(),
                    lease: self.leased.get(k).copied().unwrap_or(0),
                },
                None => self.read(found.modified)?,
            };
            if !values {
                kv.value.clear();
            }
            kvs.push(kv);
        }
        Ok(RangeResult { kvs, count, rev: current })
    }

    fn index_range<'a>(
        &'a self,
        key: &'a [u8],
        end: &'a [u8],
    ) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a KeyIndex)> + 'a> {
        if end.is_empty() {
            return Box::new(self.index.get_key_value(key).into_iter());
        }
        let upper = if end == [0] { Bound::Unbounded } else { Bound::Excluded(end) };
        if let Bound::Excluded(e) = upper {
            if e <= key {
                return Box::new(std::iter::empty());
            }
        }
        Box::new(self.index.range::<[u8], _>((Bound::Included(key), upper)))
    }

    fn read(&self, rev: Revision) -> Result<KeyValue, MvccError> {
        if let Some(kv) = self.group().as_ref().and_then(|g| g.records.get(&rev).cloned()) {
            return Ok(kv);
        }
        let value = self.tree.get(record_key(rev, false))?.ok_or_else(|| {
            MvccError::Corrupt(format!("revision {}_{} is indexed but not stored", rev.main, rev.sub))
        })?;
        decode(&value)
    }

    /// Starts a write transaction; its changes all get the next revision.
    pub fn write(&mut self) -> WriteTxn<'_> {
        let main = self.current + 1;
        WriteTxn { store: self, main, sub: 0, pending: BTreeMap::new(), ops: Vec::new(), events: Vec::new() }
    }

    /// From now on, committed transactions are kept in memory and written to sled together, in one
    /// atomic batch with the last one's applied index, by `flush_group` (as etcd's backend commits
    /// its batch transaction every so often, not each write). Reads see them meanwhile. A crash
    /// loses only what the raft log still holds: the store's applied index in sled is older, so
    /// those entries are applied again at the next start. Keeps a group already begun.
    pub fn begin_group(&mut self) {
        let group = self.group.get_mut().unwrap_or_else(|e| e.into_inner());
        if group.is_none() {
            *group = Some(Group::default());
        }
    }

    fn group(&self) -> std::sync::MutexGuard<'_, Option<Group>> {
        self.group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the group's transactions to sled in one atomic batch (sled makes it durable within
    /// its flush interval; `make_durable` at once). The group stays open.
    pub fn flush_group(&self) -> Result<(), MvccError> {
        let mut group = self.group();
        match group.as_mut() {
            Some(g) => self.write_group(g),
            None => Ok(()),
        }
    }

    /// `flush_group` once the group's oldest write is `max_age` old or it holds `max_ops` writes;
    /// whether it wrote.
    pub fn flush_group_if_due(
        &self,
        max_age: std::time::Duration,
        max_ops: usize,
        max_bytes: u64,
    ) -> Result<bool, MvccError> {
        let mut group = self.group();
        match group.as_mut() {
            Some(g)
                if g.ops.len() >= max_ops
                    || g.bytes >= max_bytes
                    || g.since.is_some_and(|t| t.elapsed() >= max_age) =>
            {
                self.write_group(g)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The records stay readable from the group until sled holds them (the lock is held throughout).
    ///
    /// A group that could not be written is gone from memory while the index, the revision and
    /// the applied index still count it: from then on no group is written, whichever thread asks
    /// (the raft loop stops taking part; a later group, carrying a later applied index, would
    /// otherwise make the lost one unrecoverable from the log at the next start). A full disk is
    /// found before the group is taken, and loses nothing.
    fn write_group(&self, g: &mut Group) -> Result<(), MvccError> {
        if let Some(e) = self.group_lost.get() {
            return Err(e.clone());
        }
        if g.ops.is_empty() {
            g.records.clear();
            return Ok(());
        }
        self.check_ops_room(&g.ops)?;
        let ops = std::mem::take(&mut g.ops);
        g.since = None;
        g.bytes = 0;
        self.pending.store(0, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = self.write_ops(ops) {
            let _ = self.group_lost.set(e.clone());
            return Err(e);
        }
        g.records.clear();
        Ok(())
    }

    /// Makes everything written so far durable (sled's flush).
    pub fn flush(&self) -> Result<(), MvccError> {
        self.flush_group()?;
        self.db.flush()?;
        Ok(())
    }

    /// Makes everything written so far durable as fsync does: sled's flush writes with
    /// sync_file_range, which leaves file metadata and the disk cache unflushed, so the database's
    /// files and directory are fsynced too. Needed before raft log entries the store holds may go.
    pub fn make_durable(&self) -> Result<(), MvccError> {
        self.flush_group()?;
        db_durable(&self.db, &self.dir)
    }
}

#[path = "store_compact.rs"]
mod compact;
pub use compact::COMPACTION_PAUSE;
use compact::{Compaction, Skips};

#[path = "store_export.rs"]
mod export;
pub use export::write_without_exports;
use export::{wait_for_other_exports, write_with_own_export};

#[path = "store_tally.rs"]
mod writes;

#[path = "store_defrag.rs"]
mod defrag;
pub use defrag::defragment;
use defrag::recover_defragmentation;

#[path = "store_import.rs"]
mod import;
pub use import::Imported;

#[path = "store_txn.rs"]
mod txn;

#[path = "store_load.rs"]
mod load;

#[path = "store_stream.rs"]
mod stream;
pub use stream::{RaftExport, Staged, Stager};
pub use txn::WriteTxn;

fn member_key(prefix: u8, id: u64) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn be_i64_at(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(i64::from_be_bytes)
}

fn io_error(e: std::io::Error) -> MvccError {
    MvccError::Storage(e.to_string())
}

fn record_key(rev: Revision, tombstone: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(RECORD);
    k.extend_from_slice(&rev.main.to_be_bytes());
    k.push(b'_');
    k.extend_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        k.push(b't');
    }
    k
}

fn parse_record_key(k: &[u8]) -> Result<(Revision, bool), MvccError> {
    let bad = || MvccError::Corrupt(format!("bad record key {k:?}"));
    if k.len() < 18 || k[0] != RECORD || k[9] != b'_' {
        return Err(bad());
    }
    let main = i64::from_be_bytes(k[1..9].try_into().map_err(|_| bad())?);
    let sub = i64::from_be_bytes(k[10..18].try_into().map_err(|_| bad())?);
    let tombstone = match &k[18..] {
        [] => false,
        [b't'] => true,
        _ => return Err(bad()),
    };
    Ok((Revision::new(main, sub), tombstone))
}

fn encode(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 4 + kv.key.len() + 32 + 4 + kv.value.len());
    out.push(ENCODING_VERSION);
    out.extend_from_slice(&(kv.key.len() as u32).to_be_bytes());
    out.extend_from_slice(&kv.key);
    for n in [kv.create_revision, kv.mod_revision, kv.version, kv.lease] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(&(kv.value.len() as u32).to_be_bytes());
    out.extend_from_slice(&kv.value);
    out
}

/// A record's fields, borrowed from its bytes.
pub(super) struct RecordRef<'a> {
    pub key: &'a [u8],
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub value: &'a [u8],
}

fn decode(bytes: &[u8]) -> Result<KeyValue, MvccError> {
    let r = record_ref(bytes)?;
    Ok(KeyValue {
        key: r.key.to_vec(),
        create_revision: r.create_revision,
        mod_revision: r.mod_revision,
        version: r.version,
        value: r.value.to_vec(),
        lease: r.lease,
    })
}

pub(super) fn record_ref(bytes: &[u8]) -> Result<RecordRef<'_>, MvccError> {
    let bad = |what: &str| MvccError::Corrupt(format!("record: {what}"));
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], MvccError> {
        if rest.len() < n {
            return Err(bad("truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(1)? != [ENCODING_VERSION] {
        return Err(bad("unknown encoding version"));
    }
    let be_u32 = |b: &[u8]| -> Result<usize, MvccError> {
        Ok(u32::from_be_bytes(b.try_into().map_err(|_| bad("length"))?) as usize)
    };
    let be_i64 = |b: &[u8]| -> Result<i64, MvccError> {
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| bad("number"))?))
    };
    let key_len = be_u32(take(4)?)?;
    let key = take(key_len)?;
    let create_revision = be_i64(take(8)?)?;
    let mod_revision = be_i64(take(8)?)?;
    let version = be_i64(take(8)?)?;
    let lease = be_i64(take(8)?)?;
    let value_len = be_u32(take(4)?)?;
    let value = take(value_len)?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(RecordRef { key, create_revision, mod_revision, version, lease, value })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
