//! A member's state at start: the log and the store opened and checked against each other (the log
//! must reach what the store applied), a new cluster's members recorded, a crash between a leader's
//! snapshot and the log's mark finished, and --force-new-cluster's rewrite of the membership.

use std::path::PathBuf;

use etcd_client::proto::PbMember;
use prost_011::Message as _;
use raft::eraftpb::{ConfChange, ConfState, Entry, EntryType};

use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::store::Store;
use crate::node::raft::membership::conf_state_of;
use crate::node::raft::options::{DriverError, Options};
use crate::node::raft::storage::LogStore;
use crate::node::raft::write::Write;

/// What `open` found and made ready for the RawNode.
pub(super) struct Opened {
    pub log: LogStore,
    pub store: Store,
    pub db_dir: PathBuf,
    pub conf_state: ConfState,
    /// The index the log's first entry follows (its last snapshot's).
    pub snapshot_index: u64,
}

/// Opens the log, then the store, checks one against the other and bootstraps what a first start
/// needs. Refuses (naming the file) a log that does not reach what the store applied.
pub(super) fn open(options: &Options) -> Result<Opened, DriverError> {
    // The log first: reading it changes nothing, so a damaged log is reported before the store (whose
    // opening writes) is touched.
    let mut log = LogStore::open(&options.wal_dir, ConfState::default())?;
    let db_dir = options.db_dir.clone();
    let mut store = Store::open(&db_dir).map_err(|e| {
        let source = match e {
            MvccError::Lost(why) => MvccError::Lost(format!(
                "{why}. In a cluster, remove this member (etcdctl member remove) and \
                 add it back with an empty data dir; alone, restore the newest snapshot (etcdctl snapshot \
                 restore)"
            )),
            other => other,
        };
        DriverError::Store { path: db_dir.clone(), source }
    })?;
    // A crash after the leader's snapshot replaced the store and before the log recorded it: the
    // log starts after it now, as it would have.
    let applied = store.consistent_index();
    if let Some((index, term)) = store.raft_snapshot()? {
        if index == applied && log.last_index_value() < index {
            let metadata = raft::eraftpb::SnapshotMetadata { index, term, conf_state: None };
            log.apply_snapshot(&metadata)?;
            eprintln!("etcdeck node: recorded the leader's snapshot at raft index {index} in the log (a crash had come between)");
        }
    }
    // Checked before anything below writes. A new member's bootstrap records (index 1) may be in
    // the store before its log starts.
    if !(log.is_empty() && store.consistent_index() <= 1) {
        log.check_reaches(store.consistent_index())?;
    }
    // etcd ignores --force-new-cluster when there is no log yet: nothing to recover.
    let fresh = log.is_empty() && store.consistent_index() == 0;
    if store.members().is_empty() && !options.bootstrap.is_empty() {
        // A new cluster's first start (or a data dir from before members were recorded): the
        // bootstrap members are recorded as of index 1, and the log starts after it.
        let at = store.consistent_index().max(1);
        let mut txn = store.write();
        for (id, member) in &options.bootstrap {
            txn.set_member(*id, member.clone());
        }
        txn.commit(Some(at))?;
        store.make_durable()?;
        if !fresh && log.first_index_before() == 0 {
            // A data dir from before members were recorded: its log starts at index 1 without
            // them. Drop what the store holds, so a member joining later gets a snapshot (with the
            // membership), never the log from its start.
            log.compact_to(store.consistent_index())?;
        }
    }
    if log.is_empty() && store.consistent_index() == 1 {
        log.bootstrap(1, 1)?;
    }
    if options.force_new_cluster && !fresh {
        force_new_cluster(&mut log, &store, options.member_id)?;
    }
    let conf_state = conf_state_of(&store);
    log.set_conf_state(conf_state.clone());
    if let Some(bytes) = options.log_space {
        log.limit_space(bytes);
    }
    // The recorded commit may lag what the store applied (it is written without a sync): raft
    // restarts from the lower of the two, and entries the store already holds are skipped.
    let snapshot_index = log.first_index_before();
    if store.consistent_index() < snapshot_index {
        return Err(DriverError::Mvcc(MvccError::Corrupt(format!(
            "the store holds entries up to {} but the raft log starts after {snapshot_index}",
            store.consistent_index()
        ))));
    }
    Ok(Opened { log, store, db_dir, conf_state, snapshot_index })
}

/// etcd's --force-new-cluster: after what the log committed, entries that remove every other
/// member, committed, so this member applies them at start and is left alone, with its data.
/// What was not committed is dropped.
fn force_new_cluster(log: &mut LogStore, store: &Store, me: u64) -> Result<(), DriverError> {
    let mut others: std::collections::BTreeSet<u64> = store.members().keys().copied().collect();
    for e in log.committed_after(store.consistent_index()) {
        if e.get_entry_type() == EntryType::EntryConfChange {
            if let Ok(cc) = ConfChange::decode(e.data.as_ref()) {
                others.insert(cc.node_id);
            }
        }
    }
    others.remove(&me);
    let hs = log.hard_state().clone();
    let term = hs.term.max(1);
    // The recorded commit may trail what the store applied: the entries go after both, or the
    // store would take them for applied already.
    let base = hs.commit.max(store.consistent_index());
    let entries: Vec<Entry> = others
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let write = Write::RemoveMember(PbMember { id: *id, ..PbMember::default() });
            let cc = write.conf_change(0)?;
            let mut e =
                Entry { index: base + 1 + i as u64, term, data: cc.encode_to_vec(), ..Entry::default() };
            e.set_entry_type(EntryType::EntryConfChange);
            Some(e)
        })
        .collect();
    if !entries.is_empty() {
        eprintln!(
            "etcdeck node: --force-new-cluster: removing {} other member(s) from the membership",
            entries.len()
        );
        log.append_committed(entries)?;
    }
    Ok(())
}
