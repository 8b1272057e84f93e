//! What memory holds of the store (the key index, leases, alarms, members, auth, the v2 store,
//! bookkeeping), rebuilt in one pass over its pairs in key order: at open from the tree, and while a
//! raft snapshot arrives from the leader, pair by pair, so the index is ready when the last one is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{
    be_i64_at, parse_record_key, record_ref, LeaseRecord, RaftMember, Store, ALARM, AUTH_KEY, LEASE, MEMBER,
    META_COMPACTED, META_COMPACT_FINISHED, META_CONSISTENT_INDEX, META_TALLY, RAFT_MEMBER, RECORD, REMOVED,
    V2_EVENT, V2_KEY, V2_NODE,
};
use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::key_index::{backend_len, KeyIndex, Revision};
use crate::node::mvcc::tally::Tally;

/// The store's memory as its pairs describe it.
pub(super) struct Loaded {
    index: BTreeMap<Vec<u8>, KeyIndex>,
    current: i64,
    compacted: i64,
    compact_finished: i64,
    consistent_index: u64,
    leases: BTreeMap<i64, LeaseRecord>,
    leased: HashMap<Vec<u8>, i64>,
    alarms: BTreeSet<(u64, i32)>,
    attributes: BTreeMap<u64, (String, Vec<String>)>,
    members: BTreeMap<u64, RaftMember>,
    removed: BTreeSet<u64>,
    auth: crate::node::auth::AuthState,
    v2: crate::node::v2store::Store,
    in_use: u64,
    /// The tally of every pair but the tally's own.
    pub(super) found: Tally,
}

/// Takes the pairs in key order (`add`), then says what they hold (`finish`).
#[derive(Default)]
pub(super) struct Loader {
    index: BTreeMap<Vec<u8>, KeyIndex>,
    current: i64,
    compacted: Option<i64>,
    compact_finished: i64,
    consistent_index: Option<u64>,
    leases: BTreeMap<i64, LeaseRecord>,
    alarms: BTreeSet<(u64, i32)>,
    attributes: BTreeMap<u64, (String, Vec<String>)>,
    members: BTreeMap<u64, RaftMember>,
    removed: BTreeSet<u64>,
    auth: Option<crate::node::auth::AuthState>,
    v2_index: Option<u64>,
    v2_nodes: Vec<(String, Vec<u8>)>,
    v2_events: Vec<(u64, Vec<u8>)>,
    in_use: u64,
    found: Tally,
    /// Which lease each live key is attached to: its newest record says.
    attached: BTreeMap<Vec<u8>, i64>,
}

fn meta_i64(key: &[u8], v: &[u8]) -> Result<i64, MvccError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| MvccError::Corrupt(format!("{} is not 8 bytes", String::from_utf8_lossy(key))))?;
    Ok(i64::from_be_bytes(bytes))
}

impl Loader {
    pub(super) fn add(&mut self, k: &[u8], v: &[u8]) -> Result<(), MvccError> {
        if k == META_TALLY {
            return Ok(());
        }
        self.found.add(k, v);
        let id_at_1 =
            |what: &str| be_i64_at(k, 1).ok_or_else(|| MvccError::Corrupt(format!("bad {what} {k:?}")));
        match k.first().copied() {
            Some(RECORD) => self.add_record(k, v)?,
            Some(LEASE) => {
                let id = id_at_1("lease key")?;
                let ttl = be_i64_at(v, 0).ok_or_else(|| MvccError::Corrupt(format!("bad lease {id:x}")))?;
                self.leases.insert(id, LeaseRecord { ttl, keys: BTreeSet::new() });
            }
            Some(ALARM) => {
                let member = id_at_1("alarm")?;
                let alarm = k.get(9..13).and_then(|b| b.try_into().ok()).map(i32::from_be_bytes);
                let alarm = alarm.ok_or_else(|| MvccError::Corrupt(format!("bad alarm {k:?}")))?;
                self.alarms.insert((member as u64, alarm));
            }
            Some(MEMBER) => {
                let id = id_at_1("member key")?;
                let (name, urls): (String, Vec<String>) = serde_json::from_slice(v)
                    .map_err(|e| MvccError::Corrupt(format!("bad attributes of member {id:x}: {e}")))?;
                self.attributes.insert(id as u64, (name, urls));
            }
            Some(RAFT_MEMBER) => {
                let id = id_at_1("member key")?;
                let member: RaftMember = serde_json::from_slice(v)
                    .map_err(|e| MvccError::Corrupt(format!("bad raft attributes of member {id:x}: {e}")))?;
                self.members.insert(id as u64, member);
            }
            Some(REMOVED) => {
                self.removed.insert(id_at_1("removed key")? as u64);
            }
            Some(V2_NODE) => {
                let path = String::from_utf8(k[1..].to_vec())
                    .map_err(|_| MvccError::Corrupt(format!("a v2 node's key is not UTF-8: {k:?}")))?;
                self.v2_nodes.push((path, v.to_vec()));
            }
            Some(V2_EVENT) => {
                let i = k[1..]
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| MvccError::Corrupt(format!("a v2 event's key is not 9 bytes: {k:?}")))?;
                self.v2_events.push((i, v.to_vec()));
            }
            _ if k == AUTH_KEY => {
                self.auth = Some(
                    serde_json::from_slice(v)
                        .map_err(|e| MvccError::Corrupt(format!("bad auth store: {e}")))?,
                );
            }
            _ if k == V2_KEY => {
                let index = v.try_into().map(u64::from_be_bytes);
                let index =
                    index.map_err(|_| MvccError::Corrupt("the v2 store's index is not 8 bytes".into()))?;
                self.v2_index = Some(index);
            }
            _ if k == META_COMPACTED => self.compacted = Some(meta_i64(k, v)?),
            _ if k == META_COMPACT_FINISHED => self.compact_finished = meta_i64(k, v)?,
            _ if k == META_CONSISTENT_INDEX => self.consistent_index = Some(meta_i64(k, v)? as u64),
            _ => {}
        }
        Ok(())
    }

    fn add_record(&mut self, k: &[u8], v: &[u8]) -> Result<(), MvccError> {
        let (rev, tombstone) = parse_record_key(k)?;
        let kv = record_ref(v)?;
        self.in_use += (k.len() + v.len()) as u64;
        self.current = self.current.max(rev.main);
        if tombstone || kv.lease == 0 {
            self.attached.remove(kv.key);
        } else {
            self.attached.insert(kv.key.to_vec(), kv.lease);
        }
        let len = if tombstone {
            backend_len(kv.key, [0; 4], &[])?
        } else {
            backend_len(kv.key, [kv.create_revision, kv.mod_revision, kv.version, kv.lease], kv.value)?
        };
        match self.index.get_mut(kv.key) {
            Some(ki) if tombstone => {
                ki.tombstone(rev, len);
            }
            Some(ki) => ki.put(rev, len),
            // A tombstone whose key's history was compacted away says nothing.
            None if tombstone => {}
            None => {
                let ki = KeyIndex::restore(Revision::new(kv.create_revision, 0), rev, kv.version, len);
                self.index.insert(kv.key.to_vec(), ki);
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Loaded, MvccError> {
        let mut leases = self.leases;
        let mut leased = HashMap::new();
        for (key, lease) in self.attached {
            if let Some(l) = leases.get_mut(&lease) {
                l.keys.insert(key.clone());
                leased.insert(key, lease);
            }
        }
        let v2 = match self.v2_index {
            None => crate::node::v2store::Store::new(),
            Some(index) => crate::node::v2store::Store::from_records(self.v2_nodes, self.v2_events, index)
                .map_err(MvccError::Corrupt)?,
        };
        let compacted = self.compacted.unwrap_or(0);
        Ok(Loaded {
            index: self.index,
            // The store starts at revision 1.
            current: self.current.max(1).max(compacted),
            compacted,
            compact_finished: self.compact_finished,
            consistent_index: self.consistent_index.unwrap_or(0),
            leases,
            leased,
            alarms: self.alarms,
            attributes: self.attributes,
            members: self.members,
            removed: self.removed,
            // etcd's auth store starts at revision 1 (NewAuthStore commits one when it finds none).
            auth: self.auth.unwrap_or(crate::node::auth::AuthState { revision: 1, ..Default::default() }),
            v2,
            in_use: self.in_use,
            found: self.found,
        })
    }
}

impl Store {
    /// Rebuilds what memory holds from the tree, and checks the pairs against the tally.
    pub(super) fn load(&mut self) -> Result<(), MvccError> {
        let mut loader = Loader::default();
        for item in self.tree.iter() {
            let (k, v) = item?;
            loader.add(&k, &v)?;
        }
        let loaded = loader.finish()?;
        let found = loaded.found;
        self.take_loaded(loaded);
        self.check_tally(found)?;
        self.finish_loading()
    }

    /// Takes what a loader found as the store's memory (the events of the last write go).
    pub(super) fn take_loaded(&mut self, l: Loaded) {
        self.index = l.index;
        self.current = l.current;
        self.compacted = l.compacted;
        self.consistent_index = l.consistent_index;
        self.leases = l.leases;
        self.leased = l.leased;
        self.alarms = l.alarms;
        self.attributes = l.attributes;
        self.members = l.members;
        self.removed = l.removed;
        self.auth = l.auth;
        self.v2 = l.v2;
        self.in_use = l.in_use;
        self.events.clear();
        self.deferred_compaction = None;
        self.compaction = None;
        self.compacted_done = l.compact_finished;
    }

    /// Compacts the index as the last compaction did, and goes on removing its records if a crash
    /// (or a stop, or the leader's export in a raft snapshot) left some.
    pub(super) fn finish_loading(&mut self) -> Result<(), MvccError> {
        if self.compacted > 0 {
            self.resume_compaction();
        }
        Ok(())
    }
}
