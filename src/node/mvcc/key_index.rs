//! The history of one key, as etcd's keyIndex keeps it: generations of revisions, each generation
//! running from a put that created the key to the tombstone that deleted it.

use crate::node::mvcc::error::MvccError;

/// A store revision: `main` is the write transaction, `sub` the change within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }
}

/// A change of the key: its revision, and the length of its record as etcd's backend holds it (an
/// mvccpb.KeyValue; a deletion's holds the key alone). The lengths lay out a snapshot without
/// reading the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    rev: Revision,
    len: u32,
}

/// One life of a key: from its creation to its deletion (the tombstone is the last change of a
/// generation that is not the newest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Generation {
    /// Versions the key reached in this generation.
    ver: i64,
    /// The revision that created it.
    created: Revision,
    revs: Vec<Change>,
}

/// A record of the key history as a snapshot lays it out: its revision (`sub` fits 32 bits: a
/// transaction holds far fewer changes), its length in etcd's backend, and whether it is a
/// deletion. 16 bytes, so a million of them take 16 MB while a snapshot is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordLen {
    pub main: i64,
    pub sub: u32,
    /// The length, with the top bit set for a deletion.
    len: u32,
}

impl RecordLen {
    const DELETED: u32 = 1 << 31;

    /// Its length in etcd's backend.
    pub fn bytes(&self) -> usize {
        (self.len & !Self::DELETED) as usize
    }

    pub fn deleted(&self) -> bool {
        self.len & Self::DELETED != 0
    }
}

/// A record's length as the key index keeps it: below 2 GiB (etcd's requests are far smaller).
pub fn record_len(len: usize) -> Option<u32> {
    u32::try_from(len).ok().filter(|l| l & RecordLen::DELETED == 0)
}

/// The length of a record in etcd's backend (an mvccpb.KeyValue of the key, the numbers [create
/// revision, mod revision, version, lease] and the value), as the key index keeps it.
pub fn backend_len(key: &[u8], numbers: [i64; 4], value: &[u8]) -> Result<u32, MvccError> {
    let len = crate::etcd::backend::key_value_len(key.len(), numbers, value.len());
    record_len(len).ok_or_else(|| MvccError::Corrupt(format!("a record of {len} bytes (2 GiB at most)")))
}

/// The revisions a compaction keeps (etcd's kvindex.Keep), sorted. Built by sorting once: inserting
/// a million revisions into a tree one at a time took most of a second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep(Vec<Revision>);

impl Keep {
    pub fn new(mut revs: Vec<Revision>) -> Self {
        revs.sort_unstable();
        revs.dedup();
        Keep(revs)
    }

    pub fn contains(&self, rev: &Revision) -> bool {
        self.0.binary_search(rev).is_ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where the key stood at some revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAt {
    pub modified: Revision,
    pub created: Revision,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyIndex {
    /// The latest modification.
    pub modified: Revision,
    generations: Vec<Generation>,
}

impl KeyIndex {
    /// A key first seen after a compaction: its oldest surviving revision, with the creation and
    /// version that revision recorded.
    pub fn restore(created: Revision, modified: Revision, version: i64, len: u32) -> Self {
        let revs = vec![Change { rev: modified, len }];
        Self { modified, generations: vec![Generation { ver: version, created, revs }] }
    }

    /// A put at `rev`, its record `len` bytes long in etcd's backend.
    pub fn put(&mut self, rev: Revision, len: u32) {
        let change = Change { rev, len };
        match self.generations.last_mut() {
            Some(g) => {
                if g.revs.is_empty() {
                    g.created = rev;
                }
                g.revs.push(change);
                g.ver += 1;
            }
            None => self.generations.push(Generation { ver: 1, created: rev, revs: vec![change] }),
        }
        self.modified = rev;
    }

    /// Deletes the key at `rev` (its record `len` bytes long in etcd's backend); false when the
    /// key is not alive (nothing to delete).
    pub fn tombstone(&mut self, rev: Revision, len: u32) -> bool {
        if self.is_deleted() {
            return false;
        }
        self.put(rev, len);
        self.generations.push(Generation::default());
        true
    }

    /// How many records the key's history has (what [`KeyIndex::records`] adds at most).
    pub fn record_count(&self) -> usize {
        self.generations.iter().map(|g| g.revs.len()).sum()
    }

    /// Adds every record of the key's history up to main revision `at` to `out`; false if a
    /// revision's `sub` does not fit 32 bits.
    pub fn records(&self, at: i64, out: &mut Vec<RecordLen>) -> bool {
        let newest = self.generations.len().saturating_sub(1);
        for (i, g) in self.generations.iter().enumerate() {
            let tombstone = g.revs.len().checked_sub(1).filter(|_| i != newest);
            for (n, c) in g.revs.iter().enumerate().take_while(|(_, c)| c.rev.main <= at) {
                let Ok(sub) = u32::try_from(c.rev.sub) else {
                    return false;
                };
                let flag = if Some(n) == tombstone { RecordLen::DELETED } else { 0 };
                out.push(RecordLen { main: c.rev.main, sub, len: c.len | flag });
            }
        }
        true
    }

    /// No live generation: the key does not exist now.
    pub fn is_deleted(&self) -> bool {
        self.generations.last().is_none_or(|g| g.revs.is_empty())
    }

    /// Nothing left at all (after compaction).
    pub fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].revs.is_empty()
    }

    /// Whether the key existed at main revision `at`: what a Range counts. At or after the key's
    /// latest change this needs only the last generation, which keeps counting a large range (etcd
    /// counts every key in a Range, limit or not) to one memory access per key.
    pub fn exists_at(&self, at: i64) -> bool {
        if at >= self.modified.main {
            !self.is_deleted()
        } else {
            self.get(at).is_some()
        }
    }

    /// The key as it was at main revision `at`, if it existed then.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        let g = self.find_generation(at)?;
        let n = g.revs.iter().rposition(|c| c.rev.main <= at)?;
        Some(KeyAt {
            modified: g.revs[n].rev,
            created: g.created,
            version: g.ver - (g.revs.len() - n - 1) as i64,
        })
    }

    fn find_generation(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(tomb)) = (g.revs.first(), g.revs.last()) else {
                continue;
            };
            if i != last && tomb.rev.main <= at {
                // `at` is at or after this generation's tombstone: deleted then.
                return None;
            }
            if first.rev.main <= at {
                return Some(g);
            }
        }
        None
    }

    /// Drops the history older than main revision `at`, keeping the revision that was current at `at`
    /// (it still answers reads at `at`). Revisions that must stay in the backend are added to `keep`.
    pub fn compact(&mut self, at: i64, keep: &mut Vec<Revision>) {
        if self.generations.is_empty() {
            return;
        }
        // The first generation that was still alive at `at`, or created after it.
        let mut gen_idx = 0;
        while gen_idx < self.generations.len() - 1 {
            let g = &self.generations[gen_idx];
            if g.revs.last().is_some_and(|tomb| tomb.rev.main > at) {
                break;
            }
            gen_idx += 1;
        }
        let newest = self.generations.len() - 1;
        let g = &mut self.generations[gen_idx];
        let mut kept = None;
        if let Some(n) = g.revs.iter().rposition(|c| c.rev.main <= at) {
            kept = Some(g.revs[n].rev);
            g.revs.drain(..n);
        }
        // A generation left holding only its tombstone is over: drop it.
        if g.revs.len() == 1 && gen_idx != newest {
            kept = None;
            gen_idx += 1;
        }
        keep.extend(kept);
        self.generations.drain(..gen_idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// put 2, put 4, tombstone 6, put 8, put 10, tombstone 12, put 14, put 16.
    fn history() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(rev(2), 9);
        ki.put(rev(4), 9);
        assert!(ki.tombstone(rev(6), 3));
        ki.put(rev(8), 9);
        ki.put(rev(10), 9);
        assert!(ki.tombstone(rev(12), 3));
        ki.put(rev(14), 9);
        ki.put(rev(16), 9);
        ki
    }

    #[test]
    fn get_answers_for_any_revision() {
        let ki = history();
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(2), Some(KeyAt { modified: rev(2), created: rev(2), version: 1 }));
        assert_eq!(ki.get(5), Some(KeyAt { modified: rev(4), created: rev(2), version: 2 }));
        assert_eq!(ki.get(6), None, "deleted at 6");
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(9), Some(KeyAt { modified: rev(8), created: rev(8), version: 1 }));
        assert_eq!(ki.get(13), None);
        assert_eq!(ki.get(99), Some(KeyAt { modified: rev(16), created: rev(14), version: 2 }));
        assert!(!ki.is_deleted());
    }

    #[test]
    fn existence_for_counting_agrees_with_reads_at_every_revision() {
        let mut deleted = history();
        deleted.tombstone(rev(20), 3);
        for ki in [history(), deleted] {
            for at in 0..25 {
                assert_eq!(ki.exists_at(at), ki.get(at).is_some(), "at {at}");
            }
        }
    }

    #[test]
    fn a_deleted_key_cannot_be_deleted_again() {
        let mut ki = KeyIndex::default();
        assert!(!ki.tombstone(rev(2), 3));
        ki.put(rev(3), 9);
        assert!(ki.tombstone(rev(4), 3));
        assert!(!ki.tombstone(rev(5), 3));
        assert!(ki.is_deleted());
    }

    #[test]
    fn compaction_keeps_what_answers_reads_at_and_after_the_compacted_revision() {
        let mut ki = history();
        let mut keep = Vec::new();
        ki.compact(5, &mut keep);
        assert_eq!(keep, [rev(4)]);
        assert_eq!(ki.get(5).map(|k| k.version), Some(2), "a read at the compacted revision still works");
        assert_eq!(ki.get(9).map(|k| k.modified), Some(rev(8)));

        let mut keep = Vec::new();
        ki.compact(6, &mut keep);
        assert!(keep.is_empty(), "the generation that ended at 6 is gone: {keep:?}");
        assert_eq!(ki.get(7), None);

        let mut keep = Vec::new();
        ki.compact(15, &mut keep);
        assert_eq!(keep, [rev(14)]);
        assert_eq!(ki.get(16).map(|k| (k.version, k.created)), Some((2, rev(14))));
    }

    #[test]
    fn a_key_deleted_before_the_compaction_disappears() {
        let mut ki = KeyIndex::default();
        ki.put(rev(2), 9);
        ki.tombstone(rev(3), 3);
        let mut keep = Vec::new();
        ki.compact(4, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty());
    }

    #[test]
    fn records_are_every_change_with_its_length_and_the_tombstones_marked() {
        let mut ki = history();
        ki.put(Revision::new(16, 2), 9);
        let mut out = Vec::new();
        assert!(ki.records(12, &mut out));
        let got: Vec<_> = out.iter().map(|r| (r.main, r.sub, r.bytes(), r.deleted())).collect();
        let want = [(2, 0, 9, false), (4, 0, 9, false), (6, 0, 3, true), (8, 0, 9, false), (10, 0, 9, false)]
            .into_iter()
            .chain([(12, 0, 3, true)])
            .collect::<Vec<_>>();
        assert_eq!(got, want);
        let mut out = Vec::new();
        assert!(ki.records(i64::MAX, &mut out));
        assert_eq!(out.len(), 9);
        assert_eq!(ki.record_count(), 9);
        assert_eq!(
            (out[8].main, out[8].sub, out[8].deleted()),
            (16, 2, false),
            "the newest generation has no tombstone"
        );

        ki.tombstone(Revision::new(17, 0), 3);
        let mut out = Vec::new();
        ki.records(i64::MAX, &mut out);
        assert!(out.last().is_some_and(|r| r.deleted() && r.main == 17));
        ki.put(Revision::new(18, 1 << 32), 9);
        assert!(!ki.records(i64::MAX, &mut Vec::new()), "a sub past 32 bits is refused");
        assert_eq!(record_len(5), Some(5));
        assert_eq!(record_len(1 << 31), None);
    }

    #[test]
    fn restore_continues_versions() {
        let mut ki = KeyIndex::restore(rev(3), rev(7), 4, 9);
        ki.put(rev(9), 9);
        assert_eq!(ki.get(9), Some(KeyAt { modified: rev(9), created: rev(3), version: 5 }));
    }
}
