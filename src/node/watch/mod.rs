//! The watch hub. The raft driver publishes each applied revision's events here; it never waits on a
//! watcher. Every watcher keeps its own position (the next revision it owes its client) and, when the
//! published revision moves past it, reads what it owes: from the recent revisions held in memory if
//! they reach back far enough (a synced watcher), else from the store's history (an unsynced one).
//! So events reach each watcher in revision order, once each, and a slow watcher only falls behind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::node::mvcc::store::{Event, MvccError, Store};

/// How many recent revisions the hub keeps in memory for synced watchers.
const RECENT_REVISIONS: usize = 4096;

pub struct Hub {
    recent: Mutex<VecDeque<(i64, Arc<Vec<Event>>)>>,
    published: watch::Sender<i64>,
}

impl Hub {
    /// `current`: the store's revision at start; watchers created now start after it.
    pub fn new(current: i64) -> Self {
        Hub { recent: Mutex::new(VecDeque::new()), published: watch::Sender::new(current) }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<(i64, Arc<Vec<Event>>)>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the driver after a revision is applied (events may be empty for writes that changed
    /// bookkeeping only; the revision is published anyway so readers know the store moved).
    pub fn publish(&self, rev: i64, events: Vec<Event>) {
        if !events.is_empty() {
            let mut recent = self.recent();
            recent.push_back((rev, Arc::new(events)));
            while recent.len() > RECENT_REVISIONS {
                recent.pop_front();
            }
        }
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

    /// The events of revisions `from..=to` in order, from memory when it reaches back to `from`,
    /// else from the store's history.
    pub fn events(&self, store: &Store, from: i64, to: i64) -> Result<Vec<(i64, Event)>, MvccError> {
        if to < from {
            return Ok(Vec::new());
        }
        {
            let recent = self.recent();
            // Memory answers only if no revision in from..=to could be missing from it: revisions
            // without events are never stored, so it must hold something at or before `from`.
            if recent.front().is_some_and(|(first, _)| *first <= from) {
                let mut out = Vec::new();
                for (rev, events) in recent.iter() {
                    if *rev >= from && *rev <= to {
                        out.extend(events.iter().map(|e| (*rev, e.clone())));
                    }
                }
                return Ok(out);
            }
        }
        Ok(store.history(from, to)?.into_iter().map(|(r, e)| (r.main, e)).collect())
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
        let from_memory = hub.events(&store, 3, 5).unwrap();
        let from_history: Vec<_> =
            store.history(3, 5).unwrap().into_iter().map(|(r, e)| (r.main, e)).collect();
        assert_eq!(from_memory, from_history);
        assert_eq!(from_memory.len(), 3);
        let older = hub.events(&store, 2, 5).unwrap();
        assert_eq!(older.len(), 4, "revision 2 predates the hub: read from history");
        assert_eq!(older[0].1.kv.key, b"before-the-hub");
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
