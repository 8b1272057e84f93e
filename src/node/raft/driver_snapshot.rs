//! The driver's raft snapshots: offered to a follower behind the log, applied from the leader,
//! and taken every --snapshot-count entries (with what the log then keeps), as etcd takes them.

use std::time::Instant;

use super::{poisoned, Driver, CATCH_UP_ENTRIES};
use crate::node::raft::membership::conf_state_of;
use crate::node::raft::options::DriverError;

impl Driver {
    /// Raft asked for a snapshot for a follower behind the log's start: offer an export of the
    /// store as it is now (the transport reads it as it sends), with the membership it holds.
    pub(super) fn prepare_snapshot(&mut self) -> Result<(), DriverError> {
        if self.raw.raft.state != raft::StateRole::Leader && self.raw.store().has_prepared() {
            // No longer the leader: nothing will send it, and its export would keep compaction
            // waiting (and a snapshot this member must apply, forever).
            self.raw.mut_store().drop_prepared();
        }
        if self.raw.store().snapshot_wanted().is_none() {
            if !self.raw.store().has_prepared() && self.status.snapshots.offering() {
                // The prepared snapshot went stale (the membership changed, or leadership went):
                // so did its export.
                self.status.snapshots.withdraw();
            }
            return Ok(());
        }
        let started = Instant::now();
        let (export, index, conf_state) = {
            let store = self.store.read().map_err(|_| poisoned())?;
            (store.raft_export()?, store.consistent_index(), conf_state_of(&store))
        };
        eprintln!(
            "etcdeck node: offered a snapshot of the store at raft index {index} (revision {}, about {} \
             bytes) for a member behind the log, in {} ms",
            export.revision(),
            export.bytes(),
            started.elapsed().as_millis()
        );
        self.raw.mut_store().prepare_snapshot(Vec::new(), index, conf_state)?;
        self.status.snapshots.offer(index, export);
        Ok(())
    }

    /// A snapshot from the leader, staged by the transport as it arrived: the store switches to
    /// it, and the log starts after it.
    pub(super) fn apply_snapshot(&mut self, snapshot: &raft::eraftpb::Snapshot) -> Result<(), DriverError> {
        let metadata = snapshot.get_metadata();
        let started = Instant::now();
        let staged = self.status.snapshots.take_received(metadata.index).ok_or_else(|| {
            DriverError::from(crate::node::mvcc::error::MvccError::Storage(format!(
                "raft applied the snapshot at raft index {} without its data staged",
                metadata.index
            )))
        })?;
        // An export this member offered as a leader must not be waited for below.
        self.raw.mut_store().drop_prepared();
        self.status.snapshots.withdraw();
        let revision = {
            // A snapshot being sent to a client reads the records the switch replaces: it ends first.
            let mut store = crate::node::mvcc::store::write_without_exports(&self.store)?;
            store.switch_to(staged)?;
            store.current_revision()
        };
        self.raw.mut_store().apply_snapshot(metadata)?;
        eprintln!(
            "etcdeck node: applied the leader's snapshot at raft index {} (revision {revision}), switched \
             to it in {} ms",
            metadata.index,
            started.elapsed().as_millis()
        );
        self.applied = metadata.index;
        self.snapshot_index = metadata.index;
        // Watchers go on from the store's history: the hub's memory lacks what the snapshot brought.
        self.hub.restored(revision);
        self.status.v2_changed.notify_waiters();
        self.membership_changed = true;
        Ok(())
    }

    /// etcd's snapshot, every --snapshot-count entries applied: the store is made durable up to
    /// there, and the log drops what comes before it but etcd's 5000 catch-up entries (none for a
    /// lone member), so a follower a little behind catches up from the log. As etcd, it keeps the
    /// whole log while a raft snapshot is being sent: the member receiving it needs the entries
    /// right after it.
    pub(super) fn snapshot(&mut self) -> Result<(), DriverError> {
        let store = self.store.read().map_err(|_| poisoned())?;
        store.make_durable()?;
        // Only what the store holds may leave the log.
        let snapi = self.applied.min(store.consistent_index());
        let catch_up = if store.members().len() > 1 { CATCH_UP_ENTRIES } else { 0 };
        drop(store);
        self.snapshot_index = snapi;
        let sending = self.raw.raft.prs().iter().any(|(_, pr)| pr.state == raft::ProgressState::Snapshot);
        let upto = snapi.saturating_sub(catch_up);
        if sending {
            eprintln!("etcdeck node: skip compaction since there is an inflight snapshot");
        } else if upto > self.raw.store().first_index_before() {
            self.raw.mut_store().compact_to(upto)?;
        }
        Ok(())
    }
}
