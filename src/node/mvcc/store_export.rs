//! The store written as etcd 3.4's backend: a bbolt file with etcd's buckets, which
//! `etcdctl snapshot status` and `etcdctl snapshot restore` read and etcd serves. Every record of
//! the key history under its revision (etcd's key bucket), the consistent index and compaction
//! (meta), leases, alarms, members as etcd's JSON, the cluster version, and the auth store (users
//! with their bcrypt hashes, roles, the enabled flag, the revision). Written in one pass in key
//! order, so memory stays small whatever the store's size.

use std::path::Path;

use super::*;
use crate::etcd::backend::{self, Permission, Role, User};
use crate::etcd::bbolt_writer::BoltWriter;

/// The cluster version an etcdeck node reports (etcd's `cluster` bucket).
const CLUSTER_VERSION: &str = "3.4.0";

/// A member as etcd's membership.Member marshals it (Go's field order; empty fields left out).
fn member_json(id: u64, m: &RaftMember, attributes: Option<&(String, Vec<String>)>) -> String {
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let mut out = format!("{{\"id\":{id},\"peerURLs\":{}", list(&m.peer_urls));
    if m.is_learner {
        out.push_str(",\"isLearner\":true");
    }
    if let Some((name, client_urls)) = attributes {
        if !name.is_empty() {
            out.push_str(&format!(",\"name\":{}", serde_json::to_string(name).unwrap_or_default()));
        }
        if !client_urls.is_empty() {
            out.push_str(&format!(",\"clientURLs\":{}", list(client_urls)));
        }
    }
    out.push('}');
    out
}

impl Store {
    /// Writes the store to `path` (which must not exist) as etcd's backend; returns its size.
    pub fn write_etcd_backend(&self, path: &Path) -> Result<u64, MvccError> {
        self.flush_group()?;
        let io = |e: std::io::Error| MvccError::Storage(format!("{}: {e}", path.display()));
        let mut w = BoltWriter::create(path).map_err(io)?;

        w.begin_bucket(b"alarm").map_err(io)?;
        let mut alarms: Vec<Vec<u8>> =
            self.alarms.iter().map(|(m, a)| backend::encode_alarm_member(*m, i64::from(*a))).collect();
        alarms.sort();
        for k in &alarms {
            w.put(k, &[]).map_err(io)?;
        }
        w.begin_bucket(b"auth").map_err(io)?;
        w.put(b"authEnabled", &[u8::from(self.auth.enabled)]).map_err(io)?;
        w.put(b"authRevision", &self.auth.revision.to_be_bytes()).map_err(io)?;
        w.begin_bucket(b"authRoles").map_err(io)?;
        for (name, perms) in &self.auth.roles {
            let permissions = perms
                .iter()
                .map(|p| Permission {
                    perm_type: i64::from(p.kind.to_pb()),
                    key: p.key.clone(),
                    range_end: p.range_end.clone(),
                })
                .collect();
            w.put(name.as_bytes(), &backend::encode_role(&Role { name: name.clone(), permissions }))
                .map_err(io)?;
        }
        w.begin_bucket(b"authUsers").map_err(io)?;
        for (name, u) in &self.auth.users {
            let user = User {
                name: name.clone(),
                password: u.password.clone().unwrap_or_default().into_bytes(),
                roles: u.roles.iter().cloned().collect(),
                no_password: u.password.is_none(),
            };
            w.put(name.as_bytes(), &backend::encode_user(&user)).map_err(io)?;
        }
        w.begin_bucket(b"cluster").map_err(io)?;
        w.put(b"clusterVersion", CLUSTER_VERSION.as_bytes()).map_err(io)?;

        // The key bucket: the records' keys are etcd's revision keys behind our prefix byte.
        w.begin_bucket(b"key").map_err(io)?;
        for item in self.tree.scan_prefix([RECORD]) {
            let (k, v) = item?;
            let (_, deleted) = parse_record_key(&k)?;
            let kv = decode(&v)?;
            // etcd keeps a deletion as a KeyValue holding the key alone.
            let kv = if deleted { KeyValue { key: kv.key, ..KeyValue::default() } } else { kv };
            w.put(&k[1..], &backend::encode_key_value(&kv)).map_err(io)?;
        }
        w.begin_bucket(b"lease").map_err(io)?;
        let mut leases: Vec<(i64, i64)> = self.leases.iter().map(|(id, l)| (*id, l.ttl)).collect();
        leases.sort_by_key(|(id, _)| id.to_be_bytes());
        for (id, ttl) in leases {
            w.put(&id.to_be_bytes(), &backend::encode_lease(id, ttl)).map_err(io)?;
        }
        w.begin_bucket(b"members").map_err(io)?;
        let mut members: Vec<(String, String)> = self
            .members
            .iter()
            .map(|(id, m)| (format!("{id:x}"), member_json(*id, m, self.attributes.get(id))))
            .collect();
        members.sort();
        for (id, json) in &members {
            w.put(id.as_bytes(), json.as_bytes()).map_err(io)?;
        }
        w.begin_bucket(b"members_removed").map_err(io)?;
        let mut removed: Vec<String> = self.removed.iter().map(|id| format!("{id:x}")).collect();
        removed.sort();
        for id in &removed {
            w.put(id.as_bytes(), b"removed").map_err(io)?;
        }
        w.begin_bucket(b"meta").map_err(io)?;
        w.put(b"consistent_index", &self.consistent_index.to_be_bytes()).map_err(io)?;
        if self.compacted > 0 {
            let rev =
                backend::revision_key(backend::Revision { main: self.compacted, sub: 0, tombstone: false });
            w.put(b"finishedCompactRev", &rev).map_err(io)?;
            w.put(b"scheduledCompactRev", &rev).map_err(io)?;
        }
        w.finish().map_err(io)
    }
}
