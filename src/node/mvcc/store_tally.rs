//! Every sled batch the store writes, checked for room first and written with the tally of the
//! whole tree it leads to (see `tally`); the tally counted again at open.

use std::collections::BTreeMap;

use super::{Store, META_TALLY};
use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::tally::Tally;

/// sled is handed no batch while less than this, and four times the batch's size, is free where it
/// lives (sled writes a value again as it reorganises its pages and its segments). After a write of
/// its own failed for want of space, sled 0.34 can come back with batches mixed (see `tally`): the
/// store says the disk is full before sled finds out.
const STORE_FLOOR_BYTES: u64 = 4 << 20;

/// The bytes of the keys and values `ops` write.
pub(super) fn ops_bytes(ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> u64 {
    ops.iter().map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64).sum()
}

/// Refuses, as a full disk, writing `bytes` more to the sled database in `dir` (`what` says what)
/// where that would leave it short of room.
pub(super) fn room_for(dir: &std::path::Path, bytes: u64, what: &str) -> Result<(), MvccError> {
    room_beyond(dir, bytes, 0, what)
}

/// `room_for`, leaving `reserve` bytes more free for other writes.
pub(super) fn room_beyond(
    dir: &std::path::Path,
    bytes: u64,
    reserve: u64,
    what: &str,
) -> Result<(), MvccError> {
    let need = STORE_FLOOR_BYTES + 4 * bytes + reserve;
    match crate::node::fsutil::free_bytes(dir) {
        Some(free) if free < need => Err(MvccError::DiskFull(format!(
            "{free} bytes free, under the {need} {what} needs: not written (No space left on device)"
        ))),
        _ => Ok(()),
    }
}

impl Store {
    /// The bytes of keys and values committed and not yet written to sled.
    pub fn group_bytes(&self) -> u64 {
        self.group().as_ref().map_or(0, |g| g.bytes)
    }

    /// `group_bytes` as it moves, for whoever must know it without taking the store's lock: a
    /// thread that holds the lock shared and asks for it again waits behind a writer that waits for
    /// it (the status call once hung a member so, with the raft driver waiting to apply).
    pub fn pending_gauge(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.pending.clone()
    }

    /// Refuses, as a full disk, a batch of `bytes` that would leave sled short of room.
    pub(super) fn check_room(&self, bytes: u64) -> Result<(), MvccError> {
        room_for(&self.dir, bytes, &format!("a write of {bytes} bytes to the store"))
    }

    /// The tally of what sled holds now.
    pub(super) fn tally(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `ops` (the last one for a key wins) in one sled batch, with the tally they lead to.
    pub(super) fn apply_ops(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), MvccError> {
        self.check_ops_room(&ops)?;
        self.write_ops(ops)
    }

    /// Refuses, as a full disk, `ops` that would leave sled short of room.
    pub(super) fn check_ops_room(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), MvccError> {
        self.check_room(ops_bytes(ops))
    }

    /// `apply_ops` once `check_ops_room` has passed.
    pub(super) fn write_ops(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), MvccError> {
        let last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = ops.into_iter().collect();
        let mut tally = self.tally();
        let mut batch = sled::Batch::default();
        for (k, v) in last {
            if let Some(old) = self.tree.get(&k)? {
                tally.remove(&k, &old);
            }
            match v {
                Some(v) => {
                    tally.add(&k, &v);
                    batch.insert(k, v);
                }
                None => batch.remove(k),
            }
        }
        self.apply_batch(batch, tally)
    }

    /// Writes `batch`, which leaves the tree's pairs adding up to `tally`, with that tally.
    pub(super) fn apply_batch(&self, mut batch: sled::Batch, tally: Tally) -> Result<(), MvccError> {
        batch.insert(META_TALLY, tally.encode());
        self.tree.apply_batch(batch)?;
        *self.tally.lock().unwrap_or_else(|e| e.into_inner()) = tally;
        Ok(())
    }

    /// Compares what `load` counted with the tally written with it. A store without one (made
    /// before tallies were kept) takes what was counted.
    pub(super) fn check_tally(&mut self, found: Tally) -> Result<(), MvccError> {
        if let Some(bytes) = self.tree.get(META_TALLY)? {
            let recorded = Tally::decode(&bytes)
                .ok_or_else(|| MvccError::Corrupt(format!("the tally is {} bytes, not 16", bytes.len())))?;
            if recorded != found {
                return Err(MvccError::Lost(format!(
                    "it holds {} pairs where its last write left {}, and their checksum differs from \
                     the one written with them ({:016x}, {:016x} written): records were lost or \
                     changed outside the store (sled can come back so after a write to it failed, on \
                     a full disk), so writes this member acknowledged may be missing",
                    found.pairs, recorded.pairs, found.sum, recorded.sum
                )));
            }
        }
        *self.tally.get_mut().unwrap_or_else(|e| e.into_inner()) = found;
        Ok(())
    }
}
