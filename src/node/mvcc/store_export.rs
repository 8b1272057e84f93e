//! The store written as etcd 3.4's backend: a bbolt file with etcd's buckets, which
//! `etcdctl snapshot status` and `etcdctl snapshot restore` read and etcd serves. Every record of
//! the key history under its revision (etcd's key bucket), the consistent index and compaction
//! (meta), leases, alarms, members as etcd's JSON, the cluster version, and the auth store (users
//! with their bcrypt hashes, roles, the enabled flag, the revision). Laid out from the lengths the
//! key index keeps (16 bytes a record, for the time it takes; gathered a few thousand keys per hold
//! of the store, so writes wait milliseconds), then made in one pass over the records in key
//! order, handed on page by page.

use std::ops::Bound;
use std::path::Path;

use super::*;
use crate::etcd::backend::{self, Permission, Role, User};
use crate::etcd::bbolt_writer::{BoltWriter, Layout};
use crate::node::mvcc::key_index::RecordLen;

/// The cluster version an etcdeck node reports (etcd's `cluster` bucket).
const CLUSTER_VERSION: &str = "3.4.0";

/// A member as etcd's membership.Member marshals it (Go's field order; empty fields left out).
fn member_json(id: u64, m: &RaftMember, attributes: Option<&(String, Vec<String>)>) -> String {
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let mut out = format!("{{\"id\":{id},\"peerURLs\":{}", list(&m.peer_urls));
    if m.is_learner {
        out.push_str(",\"isLearner\":true");
    }
    if let Some((name, client_urls)) = attributes {
        if !name.is_empty() {
            out.push_str(&format!(",\"name\":{}", serde_json::to_string(name).unwrap_or_default()));
        }
        if !client_urls.is_empty() {
            out.push_str(&format!(",\"clientURLs\":{}", list(client_urls)));
        }
    }
    out.push('}');
    out
}

/// A bucket of etcd's backend: its name and its keys and values in key order.
type Bucket = (&'static [u8], Vec<(Vec<u8>, Vec<u8>)>);

/// The store at one revision, ready to be written as etcd's backend without the store's lock:
/// the small buckets taken whole, the key history read from sled up to the revision (records are
/// never changed once written, and the token keeps them from being removed meanwhile).
pub struct BackendExport {
    tree: sled::Tree,
    pub revision: i64,
    /// The buckets before `key` and after it, by name.
    before: Vec<Bucket>,
    after: Vec<Bucket>,
    /// A compaction under way: the records at or before its revision it does not keep are still
    /// in the tree, and left out (the index, which lays the file out, no longer has them).
    skip: Option<Skips>,
    _token: ExportToken,
}

/// Records handed from the reading thread to the writing one at a time.
const EXPORT_BATCH: usize = 2048;

/// How many exports are reading the records, and a condition signalled when one ends.
#[derive(Default)]
pub(super) struct Exports {
    count: std::sync::Mutex<usize>,
    ended: std::sync::Condvar,
}

/// An export in progress: records it can read are not removed until it is dropped.
pub struct ExportToken(std::sync::Arc<Exports>);

impl Drop for ExportToken {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.0.ended.notify_all();
    }
}

impl Store {
    /// Starts an export: until the token is dropped, no record is removed. Taken under the store's
    /// lock (shared is enough), so nothing that removes records runs between the export's reading
    /// of the revision and the token.
    pub fn begin_export(&self) -> ExportToken {
        *self.exports.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        ExportToken(self.exports.clone())
    }

    /// The records up to revision `at` of at most `keys` keys of the index from `from` on, with
    /// their lengths in etcd's backend, unsorted; and the last key taken if more may follow. What
    /// [`BackendExport::layout`] gathers, a few thousand keys per hold of the store.
    pub fn record_lengths(
        &self,
        at: i64,
        from: &Bound<Vec<u8>>,
        keys: usize,
    ) -> Result<(Vec<RecordLen>, Option<Vec<u8>>), MvccError> {
        let range =
            || self.index.range::<[u8], _>((from.as_ref().map(Vec::as_slice), Bound::Unbounded)).take(keys);
        // Counted first: a vector grown by doubling holds up to twice what it needs.
        let mut out = Vec::with_capacity(range().map(|(_, ki)| ki.record_count()).sum());
        let (mut taken, mut last) = (0, None);
        for (key, ki) in range() {
            if !ki.records(at, &mut out) {
                return Err(MvccError::Corrupt("a revision's sub-revision is past 32 bits".into()));
            }
            taken += 1;
            last = Some(key);
        }
        Ok((out, last.filter(|_| taken == keys).cloned()))
    }

    /// Whether an export is reading the records. Held exclusively, the store starts no new one.
    pub(super) fn exporting(&self) -> bool {
        self.export_count() > 0
    }

    fn export_count(&self) -> usize {
        *self.exports.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses work that removes records while an export reads them. An export lays itself out
    /// under shared holds of the store, so waiting for it with the store held exclusively would
    /// never end: hold the store with [`write_without_exports`], which waits first.
    pub(super) fn check_no_exports(&self, what: &str) -> Result<(), MvccError> {
        if self.exporting() {
            return Err(MvccError::Storage(format!("cannot {what} while a snapshot is being sent")));
        }
        Ok(())
    }
}

/// The store held exclusively once no export reads its records: waits for the running ones with
/// the store let go (they need it shared to go on), then holds it and checks again (an export that
/// began in between is waited for too).
pub fn write_without_exports(
    lock: &std::sync::RwLock<Store>,
) -> Result<std::sync::RwLockWriteGuard<'_, Store>, MvccError> {
    write_with_exports(lock, 0)
}

/// `write_without_exports` for the holder of an export token: every export but its own ended.
pub(super) fn write_with_own_export<'a>(
    lock: &'a std::sync::RwLock<Store>,
    _own: &ExportToken,
) -> Result<std::sync::RwLockWriteGuard<'a, Store>, MvccError> {
    write_with_exports(lock, 1)
}

/// Waits, without the store, until the holder of `_own` is the only export.
pub(super) fn wait_for_other_exports(
    lock: &std::sync::RwLock<Store>,
    _own: &ExportToken,
) -> Result<(), MvccError> {
    wait_for_exports(lock, 1)
}

fn wait_for_exports(lock: &std::sync::RwLock<Store>, allowed: usize) -> Result<(), MvccError> {
    let exports = lock.read().map_err(|_| MvccError::Storage("store lock poisoned".into()))?.exports.clone();
    let mut count = exports.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    while *count > allowed {
        count = exports.ended.wait(count).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    Ok(())
}

fn write_with_exports(
    lock: &std::sync::RwLock<Store>,
    allowed: usize,
) -> Result<std::sync::RwLockWriteGuard<'_, Store>, MvccError> {
    let poisoned = || MvccError::Storage("store lock poisoned".into());
    loop {
        wait_for_exports(lock, allowed)?;
        let store = lock.write().map_err(|_| poisoned())?;
        if store.export_count() <= allowed {
            return Ok(store);
        }
    }
}

impl Store {
    /// The store as it is now, to be written as etcd's backend with [`BackendExport::write`]
    /// after the store's lock is let go.
    pub fn export_etcd_backend(&self) -> Result<BackendExport, MvccError> {
        self.flush_group()?;
        let token = self.begin_export();
        let mut alarms: Vec<(Vec<u8>, Vec<u8>)> = self
            .alarms
            .iter()
            .map(|(m, a)| (backend::encode_alarm_member(*m, i64::from(*a)), Vec::new()))
            .collect();
        alarms.sort();
        let auth = vec![
            (b"authEnabled".to_vec(), vec![u8::from(self.auth.enabled)]),
            (b"authRevision".to_vec(), self.auth.revision.to_be_bytes().to_vec()),
        ];
        let roles = self
            .auth
            .roles
            .iter()
            .map(|(name, perms)| {
                let permissions = perms
                    .iter()
                    .map(|p| Permission {
                        perm_type: i64::from(p.kind.to_pb()),
                        key: p.key.clone(),
                        range_end: p.range_end.clone(),
                    })
                    .collect();
                (name.as_bytes().to_vec(), backend::encode_role(&Role { name: name.clone(), permissions }))
            })
            .collect();
        let users = self
            .auth
            .users
            .iter()
            .map(|(name, u)| {
                let user = User {
                    name: name.clone(),
                    password: u.password.clone().unwrap_or_default().into_bytes(),
                    roles: u.roles.iter().cloned().collect(),
                    no_password: u.password.is_none(),
                };
                (name.as_bytes().to_vec(), backend::encode_user(&user))
            })
            .collect();
        let cluster = vec![(b"clusterVersion".to_vec(), CLUSTER_VERSION.as_bytes().to_vec())];
        let mut leases: Vec<(Vec<u8>, Vec<u8>)> = self
            .leases
            .iter()
            .map(|(id, l)| (id.to_be_bytes().to_vec(), backend::encode_lease(*id, l.ttl)))
            .collect();
        leases.sort();
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = self
            .members
            .iter()
            .map(|(id, m)| {
                (format!("{id:x}").into_bytes(), member_json(*id, m, self.attributes.get(id)).into_bytes())
            })
            .collect();
        members.sort();
        let mut removed: Vec<(Vec<u8>, Vec<u8>)> =
            self.removed.iter().map(|id| (format!("{id:x}").into_bytes(), b"removed".to_vec())).collect();
        removed.sort();
        let mut meta = vec![(b"consistent_index".to_vec(), self.consistent_index.to_be_bytes().to_vec())];
        let key = |main| backend::revision_key(backend::Revision { main, sub: 0, tombstone: false });
        // A compaction deferred while another export ran is scheduled and not finished: its records
        // are in the file, and etcd finishes it when it opens the file.
        if self.compacted_done > 0 {
            meta.push((b"finishedCompactRev".to_vec(), key(self.compacted_done)));
        }
        if self.compacted > 0 {
            meta.push((b"scheduledCompactRev".to_vec(), key(self.compacted)));
        }
        Ok(BackendExport {
            tree: self.tree.clone(),
            revision: self.current,
            before: vec![
                (b"alarm", alarms),
                (b"auth", auth),
                (b"authRoles", roles),
                (b"authUsers", users),
                (b"cluster", cluster),
            ],
            after: vec![
                (b"lease", leases),
                (b"members", members),
                (b"members_removed", removed),
                (b"meta", meta),
            ],
            skip: self.compaction_skips(),
            _token: token,
        })
    }
}

impl BackendExport {
    /// The key bucket's range of records: every revision up to the export's.
    fn range(&self) -> sled::Iter {
        let after = record_key(Revision::new(self.revision + 1, 0), false);
        self.tree.range(&[RECORD][..]..&after[..])
    }

    fn put_buckets(w: &mut BoltWriter, buckets: &[Bucket]) -> std::io::Result<()> {
        for (name, entries) in buckets {
            w.begin_bucket(name)?;
            for (k, v) in entries {
                w.put(k, v)?;
            }
        }
        Ok(())
    }

    /// What the file will be, without making it or reading a record: the records' lengths, from
    /// the key index, in revision order. `gather(revision, from)` is [`Store::record_lengths`] of
    /// the store this export was taken from, each call under its own hold of the store (records
    /// up to the export's revision stay as they are meanwhile: later writes have later revisions,
    /// and nothing removes records while the export lives). 16 bytes a record in memory, in sorted
    /// runs merged as they are laid out, let go at the end.
    pub fn layout(
        &self,
        mut gather: impl FnMut(i64, &Bound<Vec<u8>>) -> Result<(Vec<RecordLen>, Option<Vec<u8>>), MvccError>,
    ) -> Result<Layout, MvccError> {
        use std::cmp::Reverse;
        let io = |e: std::io::Error| MvccError::Storage(format!("laying out the snapshot: {e}"));
        let mut runs = Vec::new();
        let mut from = Bound::Unbounded;
        loop {
            let (mut run, next) = gather(self.revision, &from)?;
            run.sort_unstable();
            runs.push(run);
            match next {
                Some(key) => from = Bound::Excluded(key),
                None => break,
            }
        }
        let mut w = BoltWriter::counting();
        Self::put_buckets(&mut w, &self.before).map_err(io)?;
        w.begin_bucket(b"key").map_err(io)?;
        // The runs merged: the smallest head first.
        let mut heads: std::collections::BinaryHeap<Reverse<(RecordLen, usize, usize)>> =
            runs.iter().enumerate().filter_map(|(i, run)| run.first().map(|r| Reverse((*r, i, 0)))).collect();
        while let Some(Reverse((r, run, at))) = heads.pop() {
            // etcd's revision key: 17 bytes, 18 with a deletion's mark.
            w.put_len(17 + usize::from(r.deleted()), r.bytes()).map_err(io)?;
            if let Some(next) = runs[run].get(at + 1) {
                heads.push(Reverse((*next, run, at + 1)));
            }
        }
        Self::put_buckets(&mut w, &self.after).map_err(io)?;
        w.finish().map_err(io)
    }

    /// Writes the export to `path` (which must not exist); returns its size.
    pub fn write(self, path: &Path) -> Result<u64, MvccError> {
        let w =
            BoltWriter::create(path).map_err(|e| MvccError::Storage(format!("{}: {e}", path.display())))?;
        self.make(w).map(|layout| layout.bytes())
    }

    /// Hands the file to `sink` in order, in pieces of whole pages, as it is made; `layout` is what
    /// [`BackendExport::layout`] gave.
    pub fn stream(
        self,
        layout: Layout,
        sink: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Result<(), MvccError> {
        let w = BoltWriter::streaming(layout, sink).map_err(|e| MvccError::Storage(e.to_string()))?;
        self.make(w).map(|_| ())
    }

    /// Lays out the pages: one thread reads and converts the records while this one lays them out.
    fn make(self, mut w: BoltWriter) -> Result<Layout, MvccError> {
        let io = |e: std::io::Error| MvccError::Storage(format!("writing the snapshot: {e}"));
        Self::put_buckets(&mut w, &self.before).map_err(io)?;
        // The key bucket: the records' keys are etcd's revision keys behind our prefix byte; a
        // batch is the records' keys and values end to end, with their lengths.
        w.begin_bucket(b"key").map_err(io)?;
        type Batch = (Vec<u8>, Vec<(usize, usize)>);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch, MvccError>>(4);
        let range = self.range();
        let touch = self.tree.clone();
        let skip = self.skip.clone();
        let reader = std::thread::spawn(move || {
            let fresh =
                || -> Batch { (Vec::with_capacity(EXPORT_BATCH * 320), Vec::with_capacity(EXPORT_BATCH)) };
            let mut batch = fresh();
            let read = || -> Result<(), MvccError> {
                for item in range {
                    let (k, v) = item?;
                    // sled 0.34 counts a node into its cache's size only when one of its 256
                    // shards has queued 64 accesses, and a scan reads each node once: without
                    // this, up to 16 384 nodes read by the scan sit in memory uncounted (the RSS
                    // grew by 110 MB during a save of a million keys, 40 MB with it). A lookup of
                    // the record just read is an access of its node, which fills the queues.
                    let _ = touch.get(&k);
                    let (rev, deleted) = parse_record_key(&k)?;
                    let r = record_ref(&v)?;
                    if skip.as_ref().is_some_and(|s| s.drops(&rev, r.key)) {
                        continue;
                    }
                    let start = batch.0.len();
                    batch.0.extend_from_slice(&k[1..]);
                    let key_len = batch.0.len() - start;
                    // etcd keeps a deletion as a KeyValue holding the key alone.
                    if deleted {
                        backend::encode_key_value_into(&mut batch.0, r.key, [0; 4], &[]);
                    } else {
                        let numbers = [r.create_revision, r.mod_revision, r.version, r.lease];
                        backend::encode_key_value_into(&mut batch.0, r.key, numbers, r.value);
                    }
                    batch.1.push((key_len, batch.0.len() - start - key_len));
                    if batch.1.len() == EXPORT_BATCH
                        && tx.send(Ok(std::mem::replace(&mut batch, fresh()))).is_err()
                    {
                        return Ok(());
                    }
                }
                Ok(())
            };
            let _ = match read() {
                Ok(()) => tx.send(Ok(std::mem::take(&mut batch))),
                Err(e) => tx.send(Err(e)),
            };
        });
        let mut written = Ok(());
        'batches: for batch in rx.iter() {
            let (bytes, lengths) = match batch {
                Ok(b) => b,
                Err(e) => {
                    written = Err(e);
                    break;
                }
            };
            let mut at = 0;
            for (k, v) in lengths {
                if let Err(e) = w.put(&bytes[at..at + k], &bytes[at + k..at + k + v]) {
                    written = Err(io(e));
                    break 'batches;
                }
                at += k + v;
            }
        }
        drop(rx);
        if reader.join().is_err() && written.is_ok() {
            written = Err(MvccError::Storage("the thread reading the records stopped".into()));
        }
        written?;
        Self::put_buckets(&mut w, &self.after).map_err(io)?;
        w.finish().map_err(io)
    }
}
