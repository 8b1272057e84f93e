//! The store's write transaction: every change of one transaction gets the same main revision,
//! and its reads see its own writes, as in etcd.

use std::collections::BTreeMap;

use super::*;

/// One write transaction: every change gets revision `main`, with `sub` counting changes. Reads in
/// the transaction see its own writes, as in etcd.
pub struct WriteTxn<'a> {
    pub(super) store: &'a mut Store,
    pub(super) main: i64,
    pub(super) sub: i64,
    pub(super) pending: BTreeMap<Revision, KeyValue>,
    pub(super) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub(super) events: Vec<Event>,
}

impl WriteTxn<'_> {
    /// The revision this transaction's reads see: its own once it has changed something.
    fn read_rev(&self) -> i64 {
        if self.sub > 0 {
            self.main
        } else {
            self.store.current
        }
    }

    pub fn range(&self, key: &[u8], end: &[u8], limit: usize, rev: i64) -> Result<RangeResult, MvccError> {
        let current = self.read_rev();
        self.store.range_at(key, end, limit, rev, current, &self.pending, true)
    }

    /// Writes `key`. What it replaces (creation, version, lease) comes from memory, as in etcd: the
    /// key index and the leases' keys; no stored record is read.
    pub fn put(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<(), MvccError> {
        let rev = Revision::new(self.main, self.sub);
        let live = self.store.index.get(key).filter(|ki| !ki.is_deleted()).and_then(|ki| ki.get(i64::MAX));
        let (create_revision, version) = match live {
            Some(at) => (at.created.main, at.version + 1),
            None => (self.main, 1),
        };
        let prev_lease = if live.is_some() { self.store.leased.get(key).copied().unwrap_or(0) } else { 0 };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: self.main,
            version,
            value: value.to_vec(),
            lease,
        };
        let numbers = [kv.create_revision, kv.mod_revision, kv.version, kv.lease];
        let len = backend_len(key, numbers, value)?;
        let record = encode(&kv);
        self.store.in_use += (18 + record.len()) as u64;
        self.ops.push((record_key(rev, false), Some(record)));
        self.store.index.entry(key.to_vec()).or_default().put(rev, len);
        if prev_lease != 0 {
            if let Some(l) = self.store.leases.get_mut(&prev_lease) {
                l.keys.remove(key);
            }
            self.store.leased.remove(key);
        }
        if lease != 0 {
            if let Some(l) = self.store.leases.get_mut(&lease) {
                l.keys.insert(key.to_vec());
                self.store.leased.insert(key.to_vec(), lease);
            }
        }
        self.events.push(Event { deleted: false, kv: kv.clone() });
        self.pending.insert(rev, kv);
        self.sub += 1;
        Ok(())
    }

    /// Records a lease (a grant); its keys attach as puts name it.
    pub fn grant(&mut self, id: i64, ttl: i64) {
        let mut key = vec![LEASE];
        key.extend_from_slice(&id.to_be_bytes());
        self.ops.push((key, Some(ttl.to_be_bytes().to_vec())));
        self.store.leases.insert(id, LeaseRecord { ttl, keys: BTreeSet::new() });
    }

    /// Removes a lease and deletes every key attached to it, in this transaction's one revision.
    /// Returns false if there was no such lease.
    pub fn revoke(&mut self, id: i64) -> Result<bool, MvccError> {
        let Some(lease) = self.store.leases.remove(&id) else { return Ok(false) };
        let mut key = vec![LEASE];
        key.extend_from_slice(&id.to_be_bytes());
        self.ops.push((key, None));
        for k in &lease.keys {
            self.delete_range(k, &[])?;
        }
        Ok(true)
    }

    pub fn alarms(&self) -> Vec<(u64, i32)> {
        self.store.alarms.iter().copied().collect()
    }

    /// Records what a member published (etcd's publish: its name and client URLs).
    pub fn set_attributes(&mut self, member: u64, name: &str, client_urls: &[String]) {
        let key = member_key(MEMBER, member);
        let value = serde_json::to_vec(&(name, client_urls)).unwrap_or_default();
        self.ops.push((key, Some(value)));
        self.store.attributes.insert(member, (name.to_string(), client_urls.to_vec()));
    }

    /// Records a member (added, promoted or given new peer URLs).
    pub fn set_member(&mut self, id: u64, member: RaftMember) {
        let value = serde_json::to_vec(&member).unwrap_or_default();
        self.ops.push((member_key(RAFT_MEMBER, id), Some(value)));
        self.store.members.insert(id, member);
    }

    /// Removes a member for good: its records go and its ID is remembered as removed.
    pub fn remove_member(&mut self, id: u64) {
        self.ops.push((member_key(RAFT_MEMBER, id), None));
        self.ops.push((member_key(MEMBER, id), None));
        self.ops.push((member_key(REMOVED, id), Some(Vec::new())));
        self.store.members.remove(&id);
        self.store.attributes.remove(&id);
        self.store.removed.insert(id);
    }

    /// Forgets every member, removed ones and published attributes included (a restore into a new
    /// cluster starts its membership afresh).
    pub fn clear_membership(&mut self) {
        let ids: Vec<(u8, u64)> = (self.store.members.keys().map(|id| (RAFT_MEMBER, *id)))
            .chain(self.store.attributes.keys().map(|id| (MEMBER, *id)))
            .chain(self.store.removed.iter().map(|id| (REMOVED, *id)))
            .collect();
        for (prefix, id) in ids {
            self.ops.push((member_key(prefix, id), None));
        }
        self.store.members.clear();
        self.store.attributes.clear();
        self.store.removed.clear();
    }

    /// Records the auth store as a change left it.
    pub fn set_auth(&mut self, auth: crate::node::auth::AuthState) {
        let value = serde_json::to_vec(&auth).unwrap_or_default();
        self.ops.push((AUTH_KEY.to_vec(), Some(value)));
        self.store.auth = auth;
    }

    /// Applies a v2 request to the v2 store; what it changed (nodes, history events, the index) is
    /// written with the transaction.
    pub fn apply_v2(
        &mut self,
        request: &crate::node::v2store::KeyRequest,
        now: i64,
    ) -> Result<Vec<crate::node::v2store::Event>, crate::node::v2store::V2Error> {
        let before = self.store.v2.index();
        let result = request.apply(&mut self.store.v2, now);
        if self.store.v2.index() != before {
            let changes = self.store.v2.take_changes();
            for (path, record) in changes.nodes {
                let mut key = vec![V2_NODE];
                key.extend_from_slice(path.as_bytes());
                self.ops.push((key, record));
            }
            for (index, record) in changes.events {
                let mut key = vec![V2_EVENT];
                key.extend_from_slice(&index.to_be_bytes());
                self.ops.push((key, record));
            }
            self.ops.push((V2_KEY.to_vec(), Some(changes.index.to_be_bytes().to_vec())));
        }
        result
    }

    /// Raises or clears an alarm.
    pub fn set_alarm(&mut self, member: u64, alarm: i32, active: bool) {
        let mut key = vec![ALARM];
        key.extend_from_slice(&member.to_be_bytes());
        key.extend_from_slice(&alarm.to_be_bytes());
        if active {
            self.ops.push((key, Some(Vec::new())));
            self.store.alarms.insert((member, alarm));
        } else {
            self.ops.push((key, None));
            self.store.alarms.remove(&(member, alarm));
        }
    }

    /// Deletes the keys in [key, end) (same forms as `range`); returns the deleted pairs.
    pub fn delete_range(&mut self, key: &[u8], end: &[u8]) -> Result<Vec<KeyValue>, MvccError> {
        let found = self.range(key, end, 0, 0)?.kvs;
        for kv in &found {
            let rev = Revision::new(self.main, self.sub);
            let tomb = KeyValue { key: kv.key.clone(), mod_revision: self.main, ..KeyValue::default() };
            let record = encode(&tomb);
            self.store.in_use += (19 + record.len()) as u64;
            self.ops.push((record_key(rev, true), Some(record)));
            let len = backend_len(&kv.key, [0; 4], &[])?;
            if let Some(ki) = self.store.index.get_mut(&kv.key) {
                ki.tombstone(rev, len);
            }
            if kv.lease != 0 {
                if let Some(l) = self.store.leases.get_mut(&kv.lease) {
                    l.keys.remove(&kv.key);
                }
                self.store.leased.remove(&kv.key);
            }
            self.events.push(Event { deleted: true, kv: tomb });
            self.sub += 1;
        }
        Ok(found)
    }

    /// Writes the changes in one sled batch, with `applied_index` (the raft entry they came from)
    /// in the same batch; returns the store's revision after the transaction.
    pub fn commit(self, applied_index: Option<u64>) -> Result<i64, MvccError> {
        let WriteTxn { store, main, sub, mut ops, events, pending, .. } = self;
        if let Some(index) = applied_index {
            ops.push((META_CONSISTENT_INDEX.to_vec(), Some(index.to_be_bytes().to_vec())));
            store.consistent_index = index;
        }
        match store.group.get_mut().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(g) => {
                if g.since.is_none() {
                    g.since = Some(std::time::Instant::now());
                }
                g.bytes += super::writes::ops_bytes(&ops);
                store.pending.store(g.bytes, std::sync::atomic::Ordering::Relaxed);
                g.ops.extend(ops);
                g.records.extend(pending);
            }
            None => store.apply_ops(ops)?,
        }
        store.events = events;
        if sub > 0 {
            store.current = main;
        }
        Ok(store.current)
    }
}

/// The v2 store the tree holds: an empty one when it holds none.
impl Store {
    /// The v2 store (`--enable-v2`).
    pub fn v2(&self) -> &crate::node::v2store::Store {
        &self.v2
    }
}
