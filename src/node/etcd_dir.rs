//! Starting on an etcd 3.4 member's data dir (a member's own, or one `etcdctl snapshot restore`
//! made): its backend (member/snap/db) is imported into a store of this node's, the WAL's entries
//! after the backend's consistent index become this node's raft log at the same indexes and terms,
//! and the member carries on with the same member and cluster IDs and membership.
//!
//! etcd's files are only read: the node's own live beside them in member/etcdeck/ (store and log),
//! so the operator can still start etcd on the dir as it was. Everything is checked before anything
//! is written (a dir a running etcd holds, a damaged file, an entry the node cannot apply are
//! refused, naming the file); the import is made in member/etcdeck.tmp and renamed into place, and
//! the identity file, written last, is what makes the dir this node's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::etcd::{backend, snap, wal};
use crate::node::config::NodeConfig;
use crate::node::identity::{InitialMember, MemberIdentity, ETCDECK_HOME as HOME};
use crate::node::mvcc::store::{RaftMember, Store};
use crate::node::raft::etcd_log::{member_change, translate, MemberChange};
use crate::node::raft::storage::LogStore;

/// Whether `member` (a data dir's member/) is etcd's: it holds etcd's backend.
pub fn is_etcd_member_dir(member: &Path) -> bool {
    member.join("snap").join("db").is_file()
}

/// The advice every refusal ends with.
const WAY_OUT: &str =
    "etcd's files were left as they are; start etcd on them and take `etcdctl snapshot save`, then \
                       `etcdeck snapshot restore` it";

fn refuse(what: impl std::fmt::Display) -> String {
    format!("{what}; {WAY_OUT}")
}

/// A member as the import found it.
#[derive(Debug, Clone, Default)]
struct Member {
    peer_urls: Vec<String>,
    is_learner: bool,
    name: String,
    client_urls: Vec<String>,
}

/// What was read and checked, before anything is written.
struct Plan {
    db: PathBuf,
    metadata: wal::Metadata,
    consistent_index: u64,
    term: u64,
    members: BTreeMap<u64, Member>,
    removed: BTreeSet<u64>,
    entries: Vec<raft::eraftpb::Entry>,
    hard_state: wal::HardState,
    torn_tail: Option<String>,
}

/// Holds a shared lock on etcd's backend for as long as it lives: a running etcd holds bbolt's
/// exclusive one, so this fails while etcd runs, and etcd cannot start while the import reads.
fn lock_backend(db: &Path) -> Result<std::fs::File, String> {
    let file = std::fs::File::open(db).map_err(|e| refuse(format!("{}: {e}", db.display())))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{} is locked: a running etcd holds this data dir. Stop it first (or take `etcdctl snapshot save` \
             from it and start from `etcdeck snapshot restore`); nothing was written",
            db.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(refuse(format!("{}: cannot lock: {e}", db.display()))),
    }
}

fn plan(
    c: &NodeConfig,
    member: &Path,
    hash: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Plan, String> {
    let db = member.join("snap").join("db");
    let consistent_index = backend::consistent_index(&db).map_err(refuse)?;
    let snapshot = snap::newest(&member.join("snap")).map_err(refuse)?;
    let mark = snapshot.as_ref().map(|s| s.mark).unwrap_or_default();
    let wal_dir = c.wal_dir();
    if !wal_dir.is_dir() {
        return Err(refuse(format!(
            "etcd's WAL is not at {} (give --wal-dir as etcd was given it)",
            wal_dir.display()
        )));
    }
    let log = wal::read(&wal_dir, mark).map_err(refuse)?;
    if consistent_index < mark.index {
        return Err(refuse(format!(
            "{}: the backend's consistent index {consistent_index} is behind the raft snapshot's index {} ({})",
            db.display(),
            mark.index,
            snapshot.as_ref().map(|s| s.path.display().to_string()).unwrap_or_default()
        )));
    }
    // The membership at the consistent index: the snapshot's, then the log's changes up to it.
    let mut members: BTreeMap<u64, Member> = snapshot
        .iter()
        .flat_map(|s| s.members.iter())
        .map(|m| {
            let member = Member {
                peer_urls: m.peer_urls.clone(),
                is_learner: m.is_learner,
                name: m.name.clone(),
                client_urls: m.client_urls.clone(),
            };
            (m.id, member)
        })
        .collect();
    let mut removed = BTreeSet::new();
    let mut term = mark.term;
    let mut entries = Vec::new();
    for e in &log.entries {
        let at = |why: String| {
            refuse(format!("{}: at offset {}: entry {}: {why}", e.file.display(), e.offset, e.entry.index))
        };
        if e.entry.index <= consistent_index {
            term = e.entry.term;
            match member_change(&e.entry).map_err(at)? {
                Some(MemberChange::Add { id, peer_urls, is_learner, name, client_urls }) => {
                    members.insert(id, Member { peer_urls, is_learner, name, client_urls });
                }
                Some(MemberChange::Promote(id)) => {
                    if let Some(m) = members.get_mut(&id) {
                        m.is_learner = false;
                    }
                }
                Some(MemberChange::Remove(id)) => {
                    members.remove(&id);
                    removed.insert(id);
                }
                Some(MemberChange::Update { id, peer_urls }) => {
                    if let Some(m) = members.get_mut(&id) {
                        m.peer_urls = peer_urls;
                    }
                }
                Some(MemberChange::Attributes { id, name, client_urls }) => {
                    if let Some(m) = members.get_mut(&id) {
                        m.name = name;
                        m.client_urls = client_urls;
                    }
                }
                None => {}
            }
        } else {
            entries.push(translate(&e.entry, hash).map_err(at)?);
        }
    }
    let me = log.metadata.node_id;
    let Some(own) = members.get(&me) else {
        return Err(refuse(format!(
            "{}: the WAL was written by member {me:x}, which is not in the membership it holds ({})",
            wal_dir.display(),
            members.keys().map(|id| format!("{id:x}")).collect::<Vec<_>>().join(",")
        )));
    };
    if !own.name.is_empty() && own.name != c.name {
        return Err(format!(
            "data dir {}: belongs to etcd member {:?} (ID {me:x}) of cluster {:x}, not to --name={:?}; nothing was written",
            c.data_dir.display(),
            own.name,
            log.metadata.cluster_id,
            c.name
        ));
    }
    Ok(Plan {
        db,
        metadata: log.metadata,
        consistent_index,
        term,
        members,
        removed,
        entries,
        hard_state: log.hard_state,
        torn_tail: log.torn_tail,
    })
}

/// Imports the etcd member dir `member` for `c`, and returns the identity to record. Nothing is
/// left written on an error.
pub fn import(c: &NodeConfig, member: &Path) -> Result<MemberIdentity, String> {
    let db = member.join("snap").join("db");
    let _held = lock_backend(&db)?;
    let cost = c.bcrypt_cost;
    let hash = move |p: &str| crate::node::auth::hash_password(p, cost).map_err(|e| e.to_string());
    let plan = plan(c, member, &hash)?;
    let tmp = member.join(format!("{HOME}.tmp"));
    let home = member.join(HOME);
    // A crash in an earlier import left these half made (the identity, written last, is not
    // there): they are only ever ours.
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&home);
    let written = write(&plan, &tmp).and_then(|summary| {
        crate::node::fsutil::sync_dir(&tmp).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &home).map_err(|e| format!("{}: {e}", home.display()))?;
        crate::node::fsutil::sync_dir(member).map_err(|e| e.to_string())?;
        Ok(summary)
    });
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(format!("importing {}: {e}; nothing was kept", db.display()));
        }
    };
    eprintln!("etcdeck node: {summary}");
    if let Some(torn) = &plan.torn_tail {
        eprintln!(
            "etcdeck node: etcd's WAL ended in a torn write, left out as etcd's repair would cut it: {torn}"
        );
    }
    let me = plan.metadata.node_id;
    let members: Vec<InitialMember> = plan
        .members
        .iter()
        .map(|(id, m)| InitialMember {
            name: m.name.clone(),
            id: format!("{id:x}"),
            peer_urls: m.peer_urls.clone(),
        })
        .collect();
    Ok(MemberIdentity {
        name: c.name.clone(),
        member_id: format!("{me:x}"),
        cluster_id: format!("{:x}", plan.metadata.cluster_id),
        initial_cluster_token: c.initial_cluster_token.clone(),
        peer_urls: plan.members.get(&me).map(|m| m.peer_urls.clone()).unwrap_or_default(),
        members,
        joined: false,
        beside_etcd: true,
    })
}

/// Writes the store and the log into `dir`; returns what to log.
fn write(plan: &Plan, dir: &Path) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut store = Store::open(&dir.join("db")).map_err(|e| e.to_string())?;
    let imported = store.import_etcd(&plan.db)?;
    if imported.consistent_index != plan.consistent_index {
        return Err(format!(
            "the backend's consistent index changed while it was read ({} then {})",
            plan.consistent_index, imported.consistent_index
        ));
    }
    let at = plan.consistent_index.max(1);
    let mut txn = store.write();
    txn.clear_membership();
    for (id, m) in &plan.members {
        txn.set_member(*id, RaftMember { peer_urls: m.peer_urls.clone(), is_learner: m.is_learner });
        if !m.name.is_empty() || !m.client_urls.is_empty() {
            txn.set_attributes(*id, &m.name, &m.client_urls);
        }
    }
    for id in &plan.removed {
        txn.remove_member(*id);
    }
    txn.commit(Some(at)).map_err(|e| e.to_string())?;
    store.make_durable().map_err(|e| e.to_string())?;
    drop(store);

    let mut log =
        LogStore::open(&dir.join("wal"), raft::eraftpb::ConfState::default()).map_err(|e| e.to_string())?;
    log.bootstrap(at, plan.term.max(1)).map_err(|e| e.to_string())?;
    let last = plan.entries.last().map_or(at, |e| e.index);
    let hs = raft::eraftpb::HardState {
        term: plan.hard_state.term.max(plan.term).max(1),
        vote: plan.hard_state.vote,
        commit: plan.hard_state.commit.clamp(at, last),
    };
    log.persist(&plan.entries, Some(&hs)).map_err(|e| e.to_string())?;
    Ok(format!(
        "imported etcd member {:x} of cluster {:x} from {}: revision {} (compacted at {}), {} keys in {} records, {} leases, \
         {} users, {} roles, {} members, consistent index {}; {} WAL entries after it (term {}, commit {})",
        plan.metadata.node_id,
        plan.metadata.cluster_id,
        plan.db.display(),
        imported.revision,
        imported.compacted,
        imported.keys,
        imported.records,
        imported.leases,
        imported.users,
        imported.roles,
        plan.members.len(),
        plan.consistent_index,
        plan.entries.len(),
        hs.term,
        hs.commit
    ))
}
