//! Raft snapshots between the driver and the peer transport.
//!
//! A leader's driver, asked by raft for a snapshot, offers an export of its store at the applied
//! index (`offer`): quick, on the raft thread, with no image made. The transport reads the export's
//! pairs from the store as the snapshot goes out (`pairs`), on a thread of its own.
//!
//! A follower's transport stages what arrives in a new database beside the live one, loading the
//! key index as it comes (`sink`), and leaves the finished staging here before raft gets the
//! message; the driver switches the store to it when raft applies the snapshot (`take_received`).
//! A transfer cut short leaves the live store as it was, and its staging is removed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use raft::eraftpb::Message;

use crate::node::mvcc::store::{RaftExport, Staged, Stager};
use crate::node::raft::transport::{SnapshotPairs, SnapshotSink};

/// Staged snapshots kept for raft at most (a retried transfer can finish before raft took the
/// first).
const RECEIVED_KEPT: usize = 2;

#[derive(Default)]
pub struct Shelf {
    /// The export offered for the snapshot raft sends now, by its raft index.
    offered: Mutex<Option<(u64, RaftExport)>>,
    /// Finished stagings by raft index, until raft applies one or a later one.
    received: Mutex<BTreeMap<u64, Staged>>,
    /// Whether a snapshot is arriving (one at a time).
    receiving: AtomicBool,
}

impl Shelf {
    /// Offers `export`, the store at raft index `index`, to the snapshots raft sends from now on.
    pub fn offer(&self, index: u64, export: RaftExport) {
        *self.offered.lock().unwrap_or_else(|e| e.into_inner()) = Some((index, export));
    }

    /// Withdraws the offered export (transfers under way keep reading theirs).
    pub fn withdraw(&self) {
        self.offered.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Whether an export is offered.
    pub fn offering(&self) -> bool {
        self.offered.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// The pairs of the export the snapshot message `m` stands for.
    pub fn pairs(&self, m: &Message) -> Option<SnapshotPairs> {
        let index = m.get_snapshot().get_metadata().index;
        let offered = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        let export = offered.as_ref().filter(|(i, _)| *i == index).map(|(_, e)| e.clone())?;
        Some(Box::new(export.pairs().map(|pair| pair.map_err(|e| e.to_string()))))
    }

    /// Where the pairs of the snapshot message `m` go, staged beside the store in `live`.
    pub fn sink(shelf: &Arc<Shelf>, live: &Path, m: &Message) -> Result<Box<dyn SnapshotSink>, String> {
        if shelf.receiving.swap(true, Ordering::AcqRel) {
            return Err("another snapshot is arriving".into());
        }
        let stager = Stager::new(live).map_err(|e| {
            shelf.receiving.store(false, Ordering::Release);
            format!("staging beside {}: {e}", live.display())
        })?;
        let metadata = m.get_snapshot().get_metadata();
        Ok(Box::new(Receiving {
            stager: Some(stager),
            index: metadata.index,
            term: metadata.term,
            shelf: shelf.clone(),
        }))
    }

    /// Drops the staged snapshots at or below `committed`: raft refuses those (it has the entries).
    pub fn drop_received_upto(&self, committed: u64) {
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        if received.first_key_value().is_some_and(|(i, _)| *i <= committed) {
            received.retain(|i, _| *i > committed);
        }
    }

    /// The staged snapshot at raft index `index`; older ones go.
    pub fn take_received(&self, index: u64) -> Option<Staged> {
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        let staged = received.remove(&index);
        received.retain(|i, _| *i > index);
        staged
    }
}

/// A snapshot arriving: its staging, and what raft will call it.
struct Receiving {
    stager: Option<Stager>,
    index: u64,
    term: u64,
    shelf: Arc<Shelf>,
}

impl SnapshotSink for Receiving {
    fn add(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        match self.stager.as_mut() {
            Some(stager) => stager.add(key, value).map_err(|e| e.to_string()),
            None => Err("the staging is closed".into()),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        let stager = self.stager.take().ok_or("the staging is closed")?;
        let staged = stager.finish(Some((self.index, self.term))).map_err(|e| e.to_string())?;
        let mut received = self.shelf.received.lock().unwrap_or_else(|e| e.into_inner());
        received.insert(self.index, staged);
        while received.len() > RECEIVED_KEPT {
            received.pop_first();
        }
        Ok(())
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        // The staging goes first (an unfinished one is removed), then the next may begin.
        self.stager = None;
        self.shelf.receiving.store(false, Ordering::Release);
    }
}
