//! Importing etcd 3.4's backend (a bbolt snapshot or member/snap/db) into an empty store: every
//! record of etcd's key bucket under the same revision, with the same create and mod revisions,
//! versions and leases; the compaction point; the consistent index; leases, alarms and the auth
//! store (users with their bcrypt hashes, roles, permissions, the enabled flag, the revision).
//! The records go in sled batches as they are read, so memory stays bounded by a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;
use crate::etcd::backend;

/// Records written per sled batch.
const BATCH: usize = 10_000;

/// What an import brought in, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub revision: i64,
    pub compacted: i64,
    pub records: u64,
    pub keys: usize,
    pub leases: usize,
    pub users: usize,
    pub roles: usize,
    pub consistent_index: u64,
}

impl Store {
    /// Fills this store, which must be empty, from the etcd backend at `path`. On an error the
    /// store is left for the caller to throw away (a restore writes into a new dir).
    pub fn import_etcd(&mut self, path: &Path) -> Result<Imported, String> {
        self.flush_group().map_err(|e| e.to_string())?;
        if self.tree.first().map_err(|e| e.to_string())?.is_some() {
            return Err("the store to import into is not empty".into());
        }
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        let mut records = 0u64;
        let tree = self.tree.clone();
        let data = backend::read(path, |rev, kv| {
            // etcd keeps a deletion as the key alone; this store's deletions carry their revision.
            let mod_revision = if rev.tombstone { rev.main } else { kv.mod_revision };
            let kv = KeyValue { mod_revision, ..kv };
            batch.insert(record_key(Revision::new(rev.main, rev.sub), rev.tombstone), encode(&kv));
            records += 1;
            pending += 1;
            if pending == BATCH {
                pending = 0;
                tree.apply_batch(std::mem::take(&mut batch)).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if data.compacted > 0 {
            // etcd's finished compaction: its records are gone from the file.
            batch.insert(META_COMPACTED, &data.compacted.to_be_bytes());
            batch.insert(META_COMPACT_FINISHED, &data.compacted.to_be_bytes());
        }
        tree.apply_batch(batch).map_err(|e| e.to_string())?;
        // The tally of what was written, counted by the load, is written down with it.
        self.load().map_err(|e| e.to_string())?;
        self.apply_ops(Vec::new()).map_err(|e| e.to_string())?;

        let mut auth = crate::node::auth::AuthState {
            enabled: data.auth_enabled,
            revision: data.auth_revision.max(1),
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        };
        for u in &data.users {
            let password = (!u.no_password && !u.password.is_empty())
                .then(|| String::from_utf8(u.password.clone()))
                .transpose()
                .map_err(|_| format!("user {:?}: the password hash is not text", u.name))?;
            let roles: BTreeSet<String> = u.roles.iter().cloned().collect();
            auth.users.insert(u.name.clone(), crate::node::auth::User { password, roles });
        }
        for r in &data.roles {
            let mut perms = Vec::new();
            for p in &r.permissions {
                let kind = i32::try_from(p.perm_type)
                    .ok()
                    .and_then(crate::node::auth::PermKind::from_pb)
                    .ok_or_else(|| format!("role {:?}: permission type {}", r.name, p.perm_type))?;
                perms.push(crate::node::auth::Perm {
                    kind,
                    key: p.key.clone(),
                    range_end: p.range_end.clone(),
                });
            }
            auth.roles.insert(r.name.clone(), perms);
        }
        let mut txn = self.write();
        for (id, ttl) in &data.leases {
            txn.grant(*id, *ttl);
        }
        for (member, alarm) in &data.alarms {
            let alarm = i32::try_from(*alarm).map_err(|_| format!("alarm type {alarm}"))?;
            txn.set_alarm(*member, alarm, true);
        }
        txn.set_auth(auth);
        txn.commit(Some(data.consistent_index)).map_err(|e| e.to_string())?;
        self.make_durable().map_err(|e| e.to_string())?;
        // Leases found their keys as the index was rebuilt before they were granted: rebuild again.
        self.load().map_err(|e| e.to_string())?;
        Ok(Imported {
            revision: self.current,
            compacted: self.compacted,
            records,
            keys: self.key_count(),
            leases: data.leases.len(),
            users: data.users.len(),
            roles: data.roles.len(),
            consistent_index: data.consistent_index,
        })
    }
}
