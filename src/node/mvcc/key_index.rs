//! The history of one key, as etcd's keyIndex keeps it: generations of revisions, each generation
//! running from a put that created the key to the tombstone that deleted it.

use std::collections::BTreeSet;

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

/// One life of a key: from its creation to its deletion (the tombstone is the last revision of a
/// generation that is not the newest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Generation {
    /// Versions the key reached in this generation.
    ver: i64,
    /// The revision that created it.
    created: Revision,
    revs: Vec<Revision>,
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
    pub fn restore(created: Revision, modified: Revision, version: i64) -> Self {
        Self { modified, generations: vec![Generation { ver: version, created, revs: vec![modified] }] }
    }

    pub fn put(&mut self, rev: Revision) {
        match self.generations.last_mut() {
            Some(g) => {
                if g.revs.is_empty() {
                    g.created = rev;
                }
                g.revs.push(rev);
                g.ver += 1;
            }
            None => self.generations.push(Generation { ver: 1, created: rev, revs: vec![rev] }),
        }
        self.modified = rev;
    }

    /// Deletes the key at `rev`; false when the key is not alive (nothing to delete).
    pub fn tombstone(&mut self, rev: Revision) -> bool {
        if self.is_deleted() {
            return false;
        }
        self.put(rev);
        self.generations.push(Generation::default());
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
        let n = g.revs.iter().rposition(|r| r.main <= at)?;
        Some(KeyAt {
            modified: g.revs[n],
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
            if i != last && tomb.main <= at {
                // `at` is at or after this generation's tombstone: deleted then.
                return None;
            }
            if first.main <= at {
                return Some(g);
            }
        }
        None
    }

    /// Drops the history older than main revision `at`, keeping the revision that was current at `at`
    /// (it still answers reads at `at`). Revisions that must stay in the backend are added to `keep`.
    pub fn compact(&mut self, at: i64, keep: &mut BTreeSet<Revision>) {
        if self.generations.is_empty() {
            return;
        }
        // The first generation that was still alive at `at`, or created after it.
        let mut gen_idx = 0;
        while gen_idx < self.generations.len() - 1 {
            let g = &self.generations[gen_idx];
            if g.revs.last().is_some_and(|tomb| tomb.main > at) {
                break;
            }
            gen_idx += 1;
        }
        let newest = self.generations.len() - 1;
        let g = &mut self.generations[gen_idx];
        if let Some(n) = g.revs.iter().rposition(|r| r.main <= at) {
            keep.insert(g.revs[n]);
            g.revs.drain(..n);
        }
        // A generation left holding only its tombstone is over: drop it.
        if g.revs.len() == 1 && gen_idx != newest {
            keep.remove(&g.revs[0]);
            gen_idx += 1;
        }
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
        ki.put(rev(2));
        ki.put(rev(4));
        assert!(ki.tombstone(rev(6)));
        ki.put(rev(8));
        ki.put(rev(10));
        assert!(ki.tombstone(rev(12)));
        ki.put(rev(14));
        ki.put(rev(16));
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
        deleted.tombstone(rev(20));
        for ki in [history(), deleted] {
            for at in 0..25 {
                assert_eq!(ki.exists_at(at), ki.get(at).is_some(), "at {at}");
            }
        }
    }

    #[test]
    fn a_deleted_key_cannot_be_deleted_again() {
        let mut ki = KeyIndex::default();
        assert!(!ki.tombstone(rev(2)));
        ki.put(rev(3));
        assert!(ki.tombstone(rev(4)));
        assert!(!ki.tombstone(rev(5)));
        assert!(ki.is_deleted());
    }

    #[test]
    fn compaction_keeps_what_answers_reads_at_and_after_the_compacted_revision() {
        let mut ki = history();
        let mut keep = BTreeSet::new();
        ki.compact(5, &mut keep);
        assert_eq!(keep, BTreeSet::from([rev(4)]));
        assert_eq!(ki.get(5).map(|k| k.version), Some(2), "a read at the compacted revision still works");
        assert_eq!(ki.get(9).map(|k| k.modified), Some(rev(8)));

        let mut keep = BTreeSet::new();
        ki.compact(6, &mut keep);
        assert!(keep.is_empty(), "the generation that ended at 6 is gone: {keep:?}");
        assert_eq!(ki.get(7), None);

        let mut keep = BTreeSet::new();
        ki.compact(15, &mut keep);
        assert_eq!(keep, BTreeSet::from([rev(14)]));
        assert_eq!(ki.get(16).map(|k| (k.version, k.created)), Some((2, rev(14))));
    }

    #[test]
    fn a_key_deleted_before_the_compaction_disappears() {
        let mut ki = KeyIndex::default();
        ki.put(rev(2));
        ki.tombstone(rev(3));
        let mut keep = BTreeSet::new();
        ki.compact(4, &mut keep);
        assert!(ki.is_empty());
        assert!(keep.is_empty());
    }

    #[test]
    fn restore_continues_versions() {
        let mut ki = KeyIndex::restore(rev(3), rev(7), 4);
        ki.put(rev(9));
        assert_eq!(ki.get(9), Some(KeyAt { modified: rev(9), created: rev(3), version: 5 }));
    }
}
