//! The copy phase: the source prefix as it was at one revision, compared key by key with the
//! destination (both read in pages, in key order) and made equal: what differs is put, what the
//! source does not have is deleted. Into an empty destination this is etcdctl make-mirror's initial
//! copy; after the source compacted past the checkpoint it is the reconcile pass.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use crate::etcd::mirror::is_reserved;
use crate::etcd::range::key_after;
use crate::mirror::cluster::{is_compacted, Backoff};
use crate::mirror::job::{Mirror, MAX_BATCH_BYTES};
use crate::mirror::sink::{Fatal, Op, Position};
use crate::mirror::stats::log;

/// Keys per page, as etcdctl's mirror reads them.
pub const PAGE: i64 = 1000;
/// A pass writes its checkpoint at least this often, changes or not.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
/// Changed keys a reconcile pass names in the log before it only counts them.
const LOGGED_CHANGES: u64 = 100;

pub enum SyncEnd {
    /// The destination equals the source at the revision: watch from the next one.
    Done,
    /// The source compacted the revision away before the pass ended.
    Compacted,
}

/// One side's keys, read a page at a time, in the source's key space.
struct Pages {
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Keys a page asks for: PAGE, halved while answers are too large (large values).
    page: i64,
    /// The last key read (the next page starts after it).
    last: Option<Vec<u8>>,
    done: bool,
}

impl Pages {
    fn new(after: Option<Vec<u8>>) -> Self {
        Self { buffer: VecDeque::new(), page: PAGE, last: after, done: false }
    }
}

/// What a pass changed.
#[derive(Default)]
struct Changes {
    new: u64,
    changed: u64,
    deleted: u64,
    same: u64,
}

/// Makes the destination equal to the source at `revision`, from the key after `after` on.
/// `reconcile` passes name what they change in the log.
pub async fn sync(
    m: &mut Mirror,
    revision: i64,
    after: Option<Vec<u8>>,
    reconcile: bool,
) -> Result<SyncEnd, Fatal> {
    let started = std::time::Instant::now();
    let what = if reconcile { "reconciling" } else { "copying" };
    m.stats.set_doing(format!("{what} the source at revision {revision}"));
    log(&format!(
        "{what} {} at source revision {revision}{}",
        shown_prefix(&m.map.prefix),
        match &after {
            Some(k) => format!(", resuming after {}", String::from_utf8_lossy(k)),
            None => String::new(),
        }
    ));
    let mut src = Pages::new(after.clone());
    let mut dst = Pages::new(after);
    let mut changes = Changes::default();
    let mut ops: Vec<Op> = Vec::new();
    let mut bytes = 0usize;
    // Every key up to here is decided, and the batch holds what that needs.
    let mut done: Option<Vec<u8>> = None;
    let cap = m.max_ops.saturating_sub(1).max(1);
    loop {
        // A page can hold nothing to compare (only the mirrors' own keys): read on until one does
        // or the side ends, so that no key is decided against a side not yet read.
        while src.buffer.is_empty() && !src.done {
            if !read_source(m, &mut src, revision).await? {
                return Ok(SyncEnd::Compacted);
            }
        }
        while dst.buffer.is_empty() && !dst.done {
            read_destination(m, &mut dst).await?;
        }
        let decision = match (src.buffer.front(), dst.buffer.front()) {
            (None, None) => break,
            (Some((sk, _)), Some((dk, _))) if sk < dk => Side::Source,
            (Some(_), None) => Side::Source,
            (Some((sk, _)), Some((dk, _))) if sk == dk => Side::Both,
            _ => Side::Destination,
        };
        let (decided, op) = match decision {
            Side::Source => {
                let (key, value) = src.buffer.pop_front().unwrap_or_default();
                changes.new += 1;
                note(reconcile, &changes, "put", &key, "new");
                (key.clone(), Some(Op::Put(m.map.to_dest(&key), value)))
            }
            Side::Both => {
                let (key, value) = src.buffer.pop_front().unwrap_or_default();
                let (_, theirs) = dst.buffer.pop_front().unwrap_or_default();
                if value == theirs {
                    changes.same += 1;
                    (key, None)
                } else {
                    changes.changed += 1;
                    note(reconcile, &changes, "put", &key, "changed");
                    (key.clone(), Some(Op::Put(m.map.to_dest(&key), value)))
                }
            }
            Side::Destination => {
                let (key, _) = dst.buffer.pop_front().unwrap_or_default();
                changes.deleted += 1;
                note(reconcile, &changes, "delete", &key, "not on the source");
                (key.clone(), Some(Op::Delete(m.map.to_dest(&key))))
            }
        };
        if let Some(op) = op {
            // Under MAX_BATCH_BYTES unless one key alone is larger.
            if !ops.is_empty() && bytes + op.size() > MAX_BATCH_BYTES {
                m.sink.commit(&ops, Position::Copy { revision, after: done.clone() }).await?;
                ops.clear();
                bytes = 0;
            }
            bytes += op.size();
            ops.push(op);
        }
        done = Some(decided);
        // A full batch, or a checkpoint that has not moved for the heartbeat's time (a long pass
        // over equal keys still shows it runs).
        if ops.len() >= cap || m.sink.written_at.elapsed() >= HEARTBEAT {
            m.sink.commit(&ops, Position::Copy { revision, after: done.clone() }).await?;
            ops.clear();
            bytes = 0;
        }
    }
    m.sink.commit(&ops, Position::Watch { revision, sub: 0 }).await?;
    m.stats.applied(revision);
    if reconcile {
        m.stats.reconcile_puts.fetch_add(changes.new + changes.changed, Relaxed);
        m.stats.reconcile_deletes.fetch_add(changes.deleted, Relaxed);
    }
    log(&format!(
        "{} at source revision {revision} in {:.1} s: {} put ({} new, {} changed), {} deleted, {} unchanged",
        if reconcile { "reconciled" } else { "copied" },
        started.elapsed().as_secs_f64(),
        changes.new + changes.changed,
        changes.new,
        changes.changed,
        changes.deleted,
        changes.same
    ));
    Ok(SyncEnd::Done)
}

enum Side {
    Source,
    Both,
    Destination,
}

fn note(reconcile: bool, changes: &Changes, op: &str, key: &[u8], why: &str) {
    if !reconcile {
        return;
    }
    let n = changes.new + changes.changed + changes.deleted;
    if n <= LOGGED_CHANGES {
        log(&format!("reconcile: {op} {} ({why})", String::from_utf8_lossy(key)));
    } else if n == LOGGED_CHANGES + 1 {
        log("reconcile: more changes: counted, not named");
    }
}

pub fn shown_prefix(prefix: &[u8]) -> String {
    if prefix.is_empty() {
        "every key".to_string()
    } else {
        format!("prefix {}", String::from_utf8_lossy(prefix))
    }
}

/// Reads the next page of the source at `revision`; false when the revision is compacted.
async fn read_source(m: &mut Mirror, pages: &mut Pages, revision: i64) -> Result<bool, Fatal> {
    let (start, end) = m.map.source_range();
    let from = pages.last.as_deref().map(key_after).unwrap_or(start);
    let mut backoff = Backoff::default();
    loop {
        match m.source.page(&from, &end, revision, &mut pages.page).await {
            Ok(mut resp) => {
                if let Some(h) = resp.header() {
                    m.stats.saw_source(h.revision());
                }
                let kvs = resp.take_kvs();
                pages.done = !resp.more() || kvs.is_empty();
                for kv in kvs {
                    let (key, value) = kv.into_key_value();
                    pages.last = Some(key.clone());
                    // The mirrors' own keys, and keys that would land among them, are not copied.
                    if !is_reserved(&key) && !is_reserved(&m.map.to_dest(&key)) {
                        pages.buffer.push_back((key, value));
                    }
                }
                return Ok(true);
            }
            Err(e) if is_compacted(&e) => return Ok(false),
            Err(e) => m.sink.wait("source", e, &mut backoff).await,
        }
    }
}

/// Reads the next page of the destination (its latest revision), keys mapped to the source's.
async fn read_destination(m: &mut Mirror, pages: &mut Pages) -> Result<(), Fatal> {
    let (start, end) = m.map.dest_range();
    let from = pages.last.as_deref().map(|k| key_after(&m.map.to_dest(k))).unwrap_or(start);
    let mut backoff = Backoff::default();
    loop {
        match m.sink.dest.page(&from, &end, 0, &mut pages.page).await {
            Ok(mut resp) => {
                let kvs = resp.take_kvs();
                pages.done = !resp.more() || kvs.is_empty();
                for kv in kvs {
                    let (key, value) = kv.into_key_value();
                    let source_key = m.map.to_source(&key);
                    pages.last = Some(source_key.clone());
                    if !is_reserved(&key) && !is_reserved(&source_key) {
                        pages.buffer.push_back((source_key, value));
                    }
                }
                return Ok(());
            }
            Err(e) => m.sink.wait("destination", e, &mut backoff).await,
        }
    }
}
