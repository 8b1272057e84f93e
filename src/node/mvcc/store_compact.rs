//! Compaction as etcd schedules it: reads before the compacted revision are refused at once, then
//! the key index is compacted a slice of keys at a time and the records it no longer needs are
//! removed a batch at a time, between the raft loop's other work. Exports skip what a compaction
//! under way drops; it waits while they read.

use std::ops::Bound;

use super::*;

/// Records a compaction looks at per step, and the pause between steps: etcd's compaction batch
/// limit and its pause. A step also ends past `COMPACTION_STEP_BYTES` of records read (etcd reads
/// only their keys; a step over large values would hold the raft thread).
const COMPACTION_BATCH: usize = 1000;
const COMPACTION_STEP_BYTES: usize = 8 << 20;
pub const COMPACTION_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
/// Keys of the index compacted per step (about 5 ms at 0.24 µs a key; a few in tests, so that they
/// see compactions part way through the index).
const INDEX_BATCH: usize = if cfg!(test) { 40 } else { 20_000 };

/// The records a compaction under way drops and has not removed yet: those at or before its
/// revision that reading at it does not need, of the keys whose index it has compacted.
#[derive(Clone)]
pub(super) struct Skips {
    rev: i64,
    keep: std::sync::Arc<Keep>,
    /// While the index is compacted: the first key not yet reached (the records of it and later
    /// keys are all still needed).
    below: Option<Vec<u8>>,
}

impl Skips {
    /// Whether the record of `key` at `r` is dropped.
    pub(super) fn drops(&self, r: &Revision, key: &[u8]) -> bool {
        r.main <= self.rev && self.below.as_ref().is_none_or(|b| key < b.as_slice()) && !self.keep.contains(r)
    }
}

/// A compaction under way.
pub(super) struct Compaction {
    pub(super) rev: i64,
    /// The revisions reading at `rev` needs (etcd's kvindex.Keep); exports skip the others.
    pub(super) keep: std::sync::Arc<Keep>,
    /// While the index is compacted: the first key not yet compacted, and the revisions kept so
    /// far. None once every key is.
    pub(super) indexing: Option<(Vec<u8>, Vec<Revision>)>,
    /// The record key to go on from.
    next: Vec<u8>,
    started: std::time::Instant,
}

impl Store {
    /// Drops the history before `rev` (reads at `rev` and later still work), as etcd's Compact:
    /// reads before `rev` are refused at once, the index is compacted and the records removed a step
    /// at a time after (`compaction_step`).
    pub fn compact(&mut self, rev: i64) -> Result<(), MvccError> {
        self.flush_group()?;
        if rev <= self.compacted {
            return Err(MvccError::Compacted);
        }
        if rev > self.current {
            return Err(MvccError::FutureRev);
        }
        // Recorded first, so a crash mid-way finishes the job at the next open.
        self.apply_ops(vec![(META_COMPACTED.to_vec(), Some(rev.to_be_bytes().to_vec()))])?;
        self.compacted = rev;
        // An export lays its file out from the index and reads the records after: neither may
        // change under it.
        if self.exporting() {
            self.deferred_compaction = Some(rev);
        } else {
            self.start_compaction(rev);
        }
        Ok(())
    }

    /// Schedules the compaction at `rev`: the index is compacted a slice of keys per step, then
    /// the records it no longer needs are removed (from the first: a later compaction takes over
    /// one under way).
    fn start_compaction(&mut self, rev: i64) {
        self.deferred_compaction = None;
        self.compaction = Some(Compaction {
            rev,
            keep: std::sync::Arc::default(),
            indexing: Some((Vec::new(), Vec::new())),
            next: vec![RECORD],
            started: std::time::Instant::now(),
        });
    }

    /// At open: the index compacted as the last compaction left it, and its records' removal
    /// scheduled unless it finished.
    pub(super) fn resume_compaction(&mut self) {
        self.start_compaction(self.compacted);
        if let Some(mut c) = self.compaction.take() {
            while !self.compact_index(&mut c) {}
            self.compaction = (self.compacted_done < self.compacted).then_some(c);
        }
    }

    /// Compacts the next `INDEX_BATCH` keys of the index; true once every key is.
    fn compact_index(&mut self, c: &mut Compaction) -> bool {
        let Some((from, kept)) = c.indexing.as_mut() else { return true };
        let (mut empty, mut seen, mut next) = (Vec::new(), 0, None);
        for (key, ki) in self.index.range_mut::<[u8], _>((Bound::Included(from.as_slice()), Bound::Unbounded))
        {
            if seen == INDEX_BATCH {
                next = Some(key.clone());
                break;
            }
            ki.compact(c.rev, kept);
            if ki.is_empty() {
                empty.push(key.clone());
            }
            seen += 1;
        }
        for key in empty {
            self.index.remove(&key);
        }
        match next {
            Some(key) => {
                *from = key;
                false
            }
            None => {
                c.keep = std::sync::Arc::new(Keep::new(std::mem::take(kept)));
                c.indexing = None;
                true
            }
        }
    }

    /// Whether a compaction's records are still to be removed.
    pub fn compacting(&self) -> bool {
        self.compaction.is_some() || self.deferred_compaction.is_some()
    }

    /// Whether `compaction_step` has work it can do now (none while exports read the records).
    pub fn compaction_ready(&self) -> bool {
        self.compacting() && !self.exporting()
    }

    /// The last compaction whose records are all gone.
    pub fn compaction_finished(&self) -> i64 {
        self.compacted_done
    }

    /// The compaction under way, whose records exports skip: its revision, what it keeps, and
    /// while its index is compacted, the first key it has not reached.
    pub(super) fn compaction_skips(&self) -> Option<Skips> {
        self.compaction.as_ref().map(|c| match &c.indexing {
            None => Skips { rev: c.rev, keep: c.keep.clone(), below: None },
            Some((from, kept)) => Skips {
                rev: c.rev,
                keep: std::sync::Arc::new(Keep::new(kept.clone())),
                below: Some(from.clone()),
            },
        })
    }

    /// The next step of a compaction under way: `INDEX_BATCH` keys of the index compacted, or once
    /// all are, what the next `COMPACTION_BATCH` records drop removed in one batch, as etcd's
    /// scheduled compaction does between its pauses (removing a multi-GB history at once held the
    /// raft thread for seconds, and compacting an index of 1.4 M keys 0.3 s). Nothing while an export reads the records: the
    /// compaction holds already, as reads before `compacted` are refused and hashes skip what it
    /// drops. Returns the compaction's revision and time once its last step is done.
    pub fn compaction_step(&mut self) -> Result<Option<(i64, std::time::Duration)>, MvccError> {
        if self.exporting() {
            return Ok(None);
        }
        if let Some(rev) = self.deferred_compaction {
            self.start_compaction(rev);
            return Ok(None);
        }
        let Some(mut c) = self.compaction.take() else { return Ok(None) };
        if c.indexing.is_some() {
            self.compact_index(&mut c);
            self.compaction = Some(c);
            return Ok(None);
        }
        let result = self.remove_compacted(&mut c);
        match result {
            Ok(true) => {
                self.compacted_done = c.rev;
                Ok(Some((c.rev, c.started.elapsed())))
            }
            Ok(false) => {
                self.compaction = Some(c);
                Ok(None)
            }
            Err(e) => {
                self.compaction = Some(c);
                Err(e)
            }
        }
    }

    /// One step of `compaction_step`; true once the compaction's records are all gone (and that
    /// is recorded).
    fn remove_compacted(&mut self, c: &mut Compaction) -> Result<bool, MvccError> {
        let after = record_key(Revision::new(c.rev + 1, 0), false);
        let mut batch = sled::Batch::default();
        let mut tally = self.tally();
        let (mut seen, mut read, mut freed) = (0, 0, 0);
        let mut last = None;
        let mut done = true;
        for item in self.tree.range(c.next.as_slice()..after.as_slice()) {
            let (k, v) = item?;
            let (r, _) = parse_record_key(&k)?;
            if !c.keep.contains(&r) {
                freed += (k.len() + v.len()) as u64;
                tally.remove(&k, &v);
                batch.remove(k.clone());
            }
            read += k.len() + v.len();
            last = Some(k);
            seen += 1;
            if seen == COMPACTION_BATCH || read >= COMPACTION_STEP_BYTES {
                done = false;
                break;
            }
        }
        self.apply_batch(batch, tally)?;
        if done {
            // After the last removals: a crash between the two takes one more pass at the next open.
            self.apply_ops(vec![(META_COMPACT_FINISHED.to_vec(), Some(c.rev.to_be_bytes().to_vec()))])?;
        }
        // Moved on only once the batch is written: a failed step is taken again.
        self.in_use = self.in_use.saturating_sub(freed);
        if let (false, Some(last)) = (done, last) {
            // The key right after the last one looked at.
            c.next = last.to_vec();
            c.next.push(0);
        }
        Ok(done)
    }

    /// Removes now every record a compaction under way drops (unless an export reads them).
    pub fn finish_compaction(&mut self) -> Result<(), MvccError> {
        while self.compacting() && !self.exporting() {
            self.compaction_step()?;
        }
        Ok(())
    }
}
