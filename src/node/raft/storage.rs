//! raft-rs's `Storage` over the write-ahead log: entries after the last snapshot are kept in memory
//! for raft to read, and entries and term/vote changes are on disk (one fdatasync per `persist`)
//! before the driver acknowledges anything.
//!
//! As in etcd, a commit index that moved on its own is written without a sync, so after a crash the
//! recorded commit may lag what the state machine applied. The driver restarts raft with
//! `applied = min(state machine's applied index, hard_state().commit)` and the apply layer skips
//! entries at or below the index the state machine already holds.
//!
//! The membership (ConfState) is the caller's: the state machine records the cluster's members in
//! the same batch as the entries that change them, and the driver tells the log what they are.

use std::path::Path;

use prost_011::Message;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use crate::node::raft::wal::{self, LogEntry, SnapshotMark, Wal, WalError};

pub struct LogStore {
    wal: Wal,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: SnapshotMetadata,
    /// Entries after `snapshot.index`, contiguous.
    entries: Vec<Entry>,
    /// A snapshot of the state machine made for a follower that needs one (raft asks through
    /// `snapshot`, the driver makes it, raft asks again).
    prepared: Option<Snapshot>,
    /// Raft asked for a snapshot at or after this index and there was none.
    wanted: std::sync::atomic::AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("raft log: entry {index} cannot be decoded: {why}")]
    Decode { index: u64, why: String },
}

impl LogStore {
    /// Opens the log in `dir`, replaying what the WAL holds.
    pub fn open(dir: &Path, conf_state: ConfState) -> Result<Self, LogStoreError> {
        let (wal, rec) = Wal::open(dir)?;
        let entries = rec
            .entries
            .iter()
            .map(|e| {
                Entry::decode(e.data.as_slice())
                    .map_err(|err| LogStoreError::Decode { index: e.index, why: err.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut hs = rec.hard_state;
        // The mark of an applied snapshot is fsynced before the commit index that goes with it, so a
        // crash between the two leaves a commit behind the mark: everything up to the mark was
        // committed (raft-rs refuses to start otherwise).
        hs.commit = hs.commit.max(rec.snapshot.index);
        let snapshot = SnapshotMetadata {
            conf_state: Some(conf_state.clone()),
            index: rec.snapshot.index,
            term: rec.snapshot.term,
        };
        Ok(Self {
            wal,
            hard_state: HardState { term: hs.term, vote: hs.vote, commit: hs.commit },
            conf_state,
            snapshot,
            entries,
            prepared: None,
            wanted: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Refuses a log that ends before what the store applied or what the log itself recorded as
    /// committed: entries that were acknowledged are gone from it (etcd panics with the same words
    /// when raft meets such a log; this says it before anything starts, naming the file).
    pub fn check_reaches(&self, applied: u64) -> Result<(), LogStoreError> {
        let last = self.last();
        let commit = self.hard_state.commit;
        let needed = commit.max(applied);
        if needed <= last {
            return Ok(());
        }
        Err(LogStoreError::Wal(WalError::Lost {
            path: self.wal.newest_path().to_path_buf(),
            why: format!(
                "the store applied entries through {applied} and the log recorded commit {commit}, but the \
                 log ends at {last}: tocommit({needed}) is out of range [lastIndex({last})]"
            ),
        }))
    }

    /// Makes the disk hold only `bytes` more of the log (tests inject a full disk with it).
    pub fn limit_space(&mut self, bytes: u64) {
        self.wal.limit_space(bytes);
    }

    /// The index of the log's last entry (or of its snapshot, when it holds none after it).
    pub fn last_index_value(&self) -> u64 {
        self.last()
    }

    /// The index raft wants a snapshot at (or after), if it asked for one that was not there.
    pub fn snapshot_wanted(&self) -> Option<u64> {
        match self.wanted.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            index => Some(index),
        }
    }

    /// The membership as of the state machine's applied index.
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        if conf_state != self.conf_state {
            // A prepared snapshot carries the old membership: a new member would refuse it.
            self.prepared = None;
        }
        self.snapshot.conf_state = Some(conf_state.clone());
        self.conf_state = conf_state;
    }

    /// Whether a snapshot is prepared.
    pub fn has_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// Drops a prepared snapshot once it went out (the next member that needs one gets a fresh one).
    pub fn drop_prepared(&mut self) {
        self.prepared = None;
    }

    /// Whether nothing was ever written: no entry, no snapshot, no vote.
    pub fn is_empty(&self) -> bool {
        self.snapshot.index == 0 && self.entries.is_empty() && self.hard_state == HardState::default()
    }

    /// Starts a new member's log after `index` (the state machine's bootstrap records), committed
    /// in `term`, as raft-rs's examples start a cluster: every log then starts past index 1, so a
    /// member joining later with an empty log gets a snapshot, which carries the membership.
    pub fn bootstrap(&mut self, index: u64, term: u64) -> Result<(), LogStoreError> {
        self.wal.save_snapshot(SnapshotMark { index, term })?;
        self.snapshot.index = index;
        self.snapshot.term = term;
        self.persist(&[], Some(&HardState { term, vote: 0, commit: index }))
    }

    /// Appends entries and marks them committed (--force-new-cluster's membership entries), after
    /// dropping whatever was not committed.
    pub fn append_committed(&mut self, entries: Vec<Entry>) -> Result<(), LogStoreError> {
        let last = entries.last().map_or(self.hard_state.commit, |e| e.index);
        let hs = HardState { commit: last, ..self.hard_state.clone() };
        self.persist(&entries, Some(&hs))
    }

    /// The entries after the state machine's `applied` index up to the commit index.
    pub fn committed_after(&self, applied: u64) -> Vec<Entry> {
        let commit = self.hard_state.commit;
        // The entries are consecutive: slice by subtraction rather than scanning the whole log.
        let Some(head) = self.entries.first().map(|e| e.index) else { return Vec::new() };
        let from = (applied + 1).saturating_sub(head) as usize;
        let to = ((commit + 1).saturating_sub(head) as usize).min(self.entries.len());
        if from >= to {
            return Vec::new();
        }
        self.entries[from..to].to_vec()
    }

    /// Offers `data`, the state machine as of `index` with the membership `conf_state`, for
    /// followers that need a snapshot.
    pub fn prepare_snapshot(
        &mut self,
        data: Vec<u8>,
        index: u64,
        conf_state: ConfState,
    ) -> Result<(), raft::Error> {
        let term = raft::Storage::term(self, index)?;
        let metadata = SnapshotMetadata { conf_state: Some(conf_state), index, term };
        self.prepared = Some(Snapshot { data, metadata: Some(metadata) });
        self.wanted.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A snapshot from the leader replaced the state machine: the log starts after it. Durable
    /// (the mark is fsynced) before raft is told.
    pub fn apply_snapshot(&mut self, metadata: &SnapshotMetadata) -> Result<(), LogStoreError> {
        self.wal.save_snapshot(SnapshotMark { index: metadata.index, term: metadata.term })?;
        self.entries.retain(|e| e.index > metadata.index);
        if self.entries.first().is_some_and(|e| e.index != metadata.index + 1) {
            self.entries.clear();
        }
        self.snapshot.index = metadata.index;
        self.snapshot.term = metadata.term;
        if let Some(cs) = &metadata.conf_state {
            self.set_conf_state(cs.clone());
        }
        if self.hard_state.commit < metadata.index {
            let mut hs = self.hard_state.clone();
            hs.commit = metadata.index;
            self.persist(&[], Some(&hs))?;
        }
        Ok(())
    }

    /// Appends a Ready's entries (replacing any conflicting suffix) and hard state, durably: returns
    /// after one fdatasync.
    pub fn persist(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), LogStoreError> {
        let records: Vec<LogEntry> = entries
            .iter()
            .map(|e| LogEntry { index: e.index, term: e.term, data: e.encode_to_vec() })
            .collect();
        let hs = hard_state.map(|h| wal::HardState { term: h.term, vote: h.vote, commit: h.commit });
        self.wal.save(&records, hs)?;
        if let Some(first) = entries.first() {
            // The entries are consecutive: the first one at or after `first` is found by subtraction.
            let keep = match self.entries.first() {
                Some(head) => (first.index.saturating_sub(head.index) as usize).min(self.entries.len()),
                None => 0,
            };
            self.entries.truncate(keep);
            self.entries.extend_from_slice(entries);
        }
        if let Some(h) = hard_state {
            self.hard_state = h.clone();
        }
        Ok(())
    }

    /// Raft's commit index can move without a Ready carrying a hard state (a light ready); record it
    /// (written, not synced: see the module notes).
    pub fn set_commit(&mut self, commit: u64) -> Result<(), LogStoreError> {
        if commit > self.hard_state.commit {
            let mut hs = self.hard_state.clone();
            hs.commit = commit;
            self.persist(&[], Some(&hs))?;
        }
        Ok(())
    }

    /// Entries up to `index` are in the state machine: drop them from the log.
    pub fn compact_to(&mut self, index: u64) -> Result<(), LogStoreError> {
        let Some(term) = self.entries.iter().find(|e| e.index == index).map(|e| e.term) else {
            return Ok(());
        };
        self.wal.save_snapshot(SnapshotMark { index, term })?;
        self.entries.retain(|e| e.index > index);
        self.snapshot.index = index;
        self.snapshot.term = term;
        self.prepared = None;
        Ok(())
    }

    /// The index of the last entry dropped into a snapshot (0 if none): the log starts after it.
    pub fn first_index_before(&self) -> u64 {
        self.snapshot.index
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    fn first(&self) -> u64 {
        self.snapshot.index + 1
    }

    fn last(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState { hard_state: self.hard_state.clone(), conf_state: self.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.first();
        let range = &self.entries[(low - offset) as usize..(high - offset) as usize];
        // raft-rs's rule: at least one entry, then as many as fit in max bytes. Only those are
        // copied: a follower far behind is sent its entries a message at a time, and copying all
        // it lacks for every message cost the leader a third of its raft thread.
        let keep = match max_size.into() {
            Some(max) => {
                let mut size = 0u64;
                range
                    .iter()
                    .take_while(|e| {
                        size += e.encoded_len() as u64;
                        size <= max
                    })
                    .count()
                    .max(1)
            }
            None => range.len(),
        };
        Ok(range[..keep.min(range.len())].to_vec())
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // Making one reads the whole state machine, which the log does not own: the driver makes
        // it when asked, and raft asks again.
        // A snapshot older than the log's start would leave the follower short of entries.
        // ... and one whose membership lacks the recipient is refused by it.
        let usable = |s: &&Snapshot| {
            let m = s.get_metadata();
            let cs = m.get_conf_state();
            m.index >= request_index
                && m.index >= self.snapshot.index
                && (cs.voters.contains(&to) || cs.learners.contains(&to))
        };
        if let Some(s) = self.prepared.as_ref().filter(usable) {
            return Ok(s.clone());
        }
        self.wanted.store(request_index.max(1), std::sync::atomic::Ordering::Relaxed);
        Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Config, RawNode, Storage};

    fn logger() -> slog::Logger {
        slog::Logger::root(slog::Discard, slog::o!())
    }

    fn one_member() -> ConfState {
        ConfState { voters: vec![1], ..ConfState::default() }
    }

    fn node(store: LogStore, applied: u64) -> RawNode<LogStore> {
        let config = Config { id: 1, election_tick: 10, heartbeat_tick: 1, applied, ..Config::default() };
        RawNode::new(&config, store, &logger()).expect("raft node")
    }

    /// The Ready loop in raft-rs's order for one member: apply committed, persist, advance, apply.
    fn drive(raw: &mut RawNode<LogStore>, applied: &mut Vec<Vec<u8>>) {
        while raw.has_ready() {
            let mut ready = raw.ready();
            let apply = |entries: Vec<Entry>, applied: &mut Vec<Vec<u8>>| {
                applied.extend(entries.into_iter().filter(|e| !e.data.is_empty()).map(|e| e.data));
            };
            apply(ready.take_committed_entries(), applied);
            raw.mut_store().persist(ready.entries(), ready.hs()).expect("persist");
            let mut light = raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                raw.mut_store().set_commit(commit).expect("commit");
            }
            apply(light.take_committed_entries(), applied);
            raw.advance_apply();
        }
    }

    #[test]
    fn a_single_member_elects_itself_commits_and_keeps_it_all_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut applied = Vec::new();
        let (term, last) = {
            let mut raw = node(LogStore::open(dir.path(), one_member()).unwrap(), 0);
            raw.campaign().unwrap();
            drive(&mut raw, &mut applied);
            assert_eq!(raw.raft.state, raft::StateRole::Leader);
            for i in 0..3 {
                raw.propose(vec![], format!("put k{i}").into_bytes()).unwrap();
            }
            drive(&mut raw, &mut applied);
            assert_eq!(applied, vec![b"put k0".to_vec(), b"put k1".to_vec(), b"put k2".to_vec()]);
            (raw.raft.term, raw.raft.raft_log.last_index())
        };

        let store = LogStore::open(dir.path(), one_member()).unwrap();
        assert_eq!(store.last_index().unwrap(), last);
        assert_eq!(store.hard_state().commit, last, "every entry was committed and recorded");
        assert_eq!(store.hard_state().term, term);
        let mut raw = node(store, last);
        raw.campaign().unwrap();
        drive(&mut raw, &mut applied);
        raw.propose(vec![], b"put k3".to_vec()).unwrap();
        drive(&mut raw, &mut applied);
        assert_eq!(applied.last(), Some(&b"put k3".to_vec()));
        assert_eq!(applied.len(), 4, "nothing applied twice after the restart");
        assert!(raw.raft.term > term);
    }

    #[test]
    fn a_commit_behind_the_snapshot_mark_is_taken_up_to_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[], Some(wal::HardState { term: 3, vote: 1, commit: 2 })).unwrap();
            // A crash after the mark of an applied snapshot, before its commit index was written.
            wal.save_snapshot(SnapshotMark { index: 7, term: 3 }).unwrap();
        }
        let store = LogStore::open(dir.path(), one_member()).unwrap();
        assert_eq!(store.hard_state().commit, 7);
        node(store, 7);
    }

    #[test]
    fn a_prepared_snapshot_goes_only_to_members_of_its_membership() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), one_member()).unwrap();
        let e = |index| Entry { index, term: 1, ..Entry::default() };
        store.persist(&[e(1), e(2)], None).unwrap();
        let with =
            |voters: Vec<u64>, learners: Vec<u64>| ConfState { voters, learners, ..ConfState::default() };
        store.set_conf_state(with(vec![1], vec![2]));
        assert!(store.snapshot(0, 2).is_err(), "none prepared yet");
        assert_eq!(store.snapshot_wanted(), Some(1));
        store.prepare_snapshot(b"image".to_vec(), 2, with(vec![1], vec![2])).unwrap();
        assert_eq!(store.snapshot(0, 2).unwrap().data, b"image".to_vec());
        assert!(store.snapshot(0, 3).is_err(), "member 3 is not in it: it would refuse it");
        // The membership changes: the old image would carry the old one.
        store.set_conf_state(with(vec![1, 2], vec![3]));
        assert!(store.snapshot(0, 2).is_err());
        store.prepare_snapshot(b"image 2".to_vec(), 2, with(vec![1, 2], vec![3])).unwrap();
        assert_eq!(store.snapshot(0, 3).unwrap().data, b"image 2".to_vec());
        store.drop_prepared();
        assert!(store.snapshot(0, 3).is_err(), "dropped once sent");
    }

    #[test]
    fn entries_and_terms_follow_raft_rs_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), one_member()).unwrap();
        let e = |index, term| Entry { index, term, data: vec![index as u8; 10], ..Entry::default() };
        store.persist(&[e(1, 1), e(2, 1), e(3, 2)], None).unwrap();
        assert_eq!(store.first_index().unwrap(), 1);
        assert_eq!(store.last_index().unwrap(), 3);
        assert_eq!(store.term(3).unwrap(), 2);
        assert_eq!(store.term(0).unwrap(), 0);
        assert!(matches!(store.term(4), Err(raft::Error::Store(StorageError::Unavailable))));
        let ctx = GetEntriesContext::empty(false);
        assert_eq!(store.entries(1, 4, None, ctx).unwrap().len(), 3);
        let ctx = GetEntriesContext::empty(false);
        assert_eq!(store.entries(1, 4, Some(1), ctx).unwrap().len(), 1, "at least one entry");
        // As many as fit: each of these entries encodes to the same size.
        let one = e(1, 1).encoded_len() as u64;
        let ctx = GetEntriesContext::empty(false);
        let two = store.entries(1, 4, Some(2 * one + 1), ctx).unwrap();
        assert_eq!(two.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 2]);
        let ctx = GetEntriesContext::empty(false);
        assert_eq!(store.entries(2, 4, Some(u64::MAX), ctx).unwrap().len(), 2);
        let ctx = GetEntriesContext::empty(false);
        assert!(store.entries(2, 2, Some(0), ctx).unwrap().is_empty(), "an empty range stays empty");
        // A conflicting suffix from a new leader replaces the old one.
        store.persist(&[e(2, 3)], None).unwrap();
        assert_eq!(store.last_index().unwrap(), 2);
        assert_eq!(store.term(2).unwrap(), 3);
        store.compact_to(1).unwrap();
        assert_eq!(store.first_index().unwrap(), 2);
        assert_eq!(store.term(1).unwrap(), 1, "the snapshot's term is still known");
        let ctx = GetEntriesContext::empty(false);
        assert!(matches!(store.entries(1, 2, None, ctx), Err(raft::Error::Store(StorageError::Compacted))));
        drop(store);
        let store = LogStore::open(dir.path(), one_member()).unwrap();
        assert_eq!((store.first_index().unwrap(), store.last_index().unwrap()), (2, 2));
        assert_eq!(store.term(2).unwrap(), 3);
    }
}
