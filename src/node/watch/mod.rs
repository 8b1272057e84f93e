//! The watch hub. The raft driver publishes each applied revision's events here; it never waits on a
//! watcher. Every watcher keeps its own position (the next revision it owes its client) and, when the
//! published revision moves past it, reads what it owes: from the recent revisions held in memory if
//! they reach back far enough (a synced watcher), else from the store's history (an unsynced one).
//! So events reach each watcher in revision order, once each, and a slow watcher only falls behind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::store::{Event, Store};

/// The recent revisions the hub keeps in memory for synced watchers: at most this many, and at most
/// this many bytes of keys and values; older ones are read from the store's history.
const RECENT_REVISIONS: usize = 4096;
const RECENT_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Recent {
    revisions: VecDeque<(i64, Arc<Vec<Event>>, usize)>,
    bytes: usize,
}

pub struct Hub {
    recent: Mutex<Recent>,
    published: watch::Sender<i64>,
}

impl Hub {
    /// `current`: the store's revision at start; watchers created now start after it.
    pub fn new(current: i64) -> Self {
        Hub { recent: Mutex::new(Recent::default()), published: watch::Sender::new(current) }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the driver after a revision is applied (events may be empty for writes that changed
    /// bookkeeping only; the revision is published anyway so readers know the store moved).
    pub fn publish(&self, rev: i64, events: Vec<Event>) {
        if !events.is_empty() {
            let size: usize = events.iter().map(|e| e.kv.key.len() + e.kv.value.len() + 64).sum();
            let mut recent = self.recent();
            recent.revisions.push_back((rev, Arc::new(events), size));
            recent.bytes += size;
            while recent.revisions.len() > RECENT_REVISIONS || recent.bytes > RECENT_BYTES {
                match recent.revisions.pop_front() {
                    Some((_, _, gone)) => recent.bytes -= gone,
                    None => break,
                }
            }
        }
        self.advance(rev);
    }

    /// Called after the store was replaced by a raft snapshot at `rev`: the revisions it brought were
    /// never published, so memory can no longer vouch for any range reaching back before them, and
    /// watchers read what they owe from the store's history (or learn it was compacted).
    pub fn restored(&self, rev: i64) {
        {
            let mut recent = self.recent();
            recent.revisions.clear();
            recent.bytes = 0;
        }
        self.advance(rev);
    }

    /// Moves the published revision on to `rev` (never back), waking subscribers if it moved.
    fn advance(&self, rev: i64) {
        self.published.send_if_modified(|r| {
            let moved = rev > *r;
            *r = (*r).max(rev);
            moved
        });
    }

    /// The newest revision published.
    pub fn revision(&self) -> i64 {
        *self.published.borrow()
    }

    /// Wakes when a newer revision is published.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.published.subscribe()
    }

    /// The events of revisions `from..=to` that `wanted` accepts, in order, from memory when it
    /// reaches back to `from`, else from the store's history.
    pub fn events(
        &self,
        store: &Store,
        from: i64,
        to: i64,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Vec<(i64, Event)>, MvccError> {
        if to < from {
            return Ok(Vec::new());
        }
        {
            let recent = self.recent();
            // Memory answers only if no revision in from..=to could be missing from it: revisions
            // without events are never stored, so it must hold something at or before `from`.
            if recent.revisions.front().is_some_and(|(first, _, _)| *first <= from) {
                // Revisions are in order: from the first at or after `from` (a thousand watchers
                // each scanning the whole ring per revision was most of a watch's CPU).
                let start = recent.revisions.partition_point(|(rev, _, _)| *rev < from);
                let mut out = Vec::new();
                for (rev, events, _) in recent.revisions.range(start..) {
                    if *rev > to {
                        break;
                    }
                    out.extend(events.iter().filter(|e| wanted(e)).map(|e| (*rev, e.clone())));
                }
                return Ok(out);
            }
        }
        let history = store.history(from, to)?;
        Ok(history.into_iter().filter(|(_, e)| wanted(e)).map(|(r, e)| (r.main, e)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &mut Store, hub: &Hub, key: &str) -> i64 {
        let mut txn = store.write();
        txn.put(key.as_bytes(), b"v", 0).unwrap();
        let rev = txn.commit(None).unwrap();
        hub.publish(rev, store.take_events());
        rev
    }

    #[test]
    fn memory_and_history_give_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let early = {
            let mut txn = store.write();
            txn.put(b"before-the-hub", b"v", 0).unwrap();
            txn.commit(None).unwrap()
        };
        let _ = store.take_events();
        let hub = Hub::new(early);
        for k in ["a", "b", "c"] {
            put(&mut store, &hub, k);
        }
        assert_eq!(hub.revision(), 5);
        let from_memory = hub.events(&store, 3, 5, |_| true).unwrap();
        let from_history: Vec<_> =
            store.history(3, 5).unwrap().into_iter().map(|(r, e)| (r.main, e)).collect();
        assert_eq!(from_memory, from_history);
        assert_eq!(from_memory.len(), 3);
        let older = hub.events(&store, 2, 5, |_| true).unwrap();
        assert_eq!(older.len(), 4, "revision 2 predates the hub: read from history");
        assert_eq!(older[0].1.kv.key, b"before-the-hub");
        let only_b = hub.events(&store, 3, 5, |e| e.kv.key == b"b").unwrap();
        assert_eq!(only_b.len(), 1);
        // A window inside the ring: from memory, bounded on both sides, as history gives it.
        for (from, to) in [(4, 4), (4, 5), (3, 4), (5, 5), (6, 9)] {
            let window = hub.events(&store, from, to, |_| true).unwrap();
            let history: Vec<_> = store
                .history(from, to.min(5))
                .unwrap_or_default()
                .into_iter()
                .map(|(r, e)| (r.main, e))
                .collect();
            assert_eq!(window, history, "{from}..={to}");
        }
    }

    /// Found by the fault tests: a member that caught up through a raft snapshot answered watches
    /// from before the snapshot out of memory, which lacked every revision the snapshot brought.
    #[test]
    fn after_a_raft_snapshot_watchers_read_the_revisions_it_brought_from_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(1);
        for k in ["a", "b", "c"] {
            put(&mut store, &hub, k);
        }
        // Revisions 5..=7 arrive in a snapshot: in the store, never published one by one.
        for k in ["d", "e", "f"] {
            let mut txn = store.write();
            txn.put(k.as_bytes(), b"v", 0).unwrap();
            txn.commit(None).unwrap();
            let _ = store.take_events();
        }
        hub.restored(7);
        assert_eq!(hub.revision(), 7);
        put(&mut store, &hub, "g");
        let events = hub.events(&store, 3, 8, |_| true).unwrap();
        let keys: Vec<&[u8]> = events.iter().map(|(_, e)| e.kv.key.as_slice()).collect();
        assert_eq!(keys, [&b"b"[..], b"c", b"d", b"e", b"f", b"g"]);
    }

    #[tokio::test]
    async fn subscribers_wake_on_new_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(1);
        let mut rx = hub.subscribe();
        put(&mut store, &hub, "a");
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert_eq!(*rx.borrow(), 2);
    }
}
