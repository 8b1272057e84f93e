//! etcd 3.4's log entries as this node's: each entry of an etcd WAL after the backend's consistent
//! index becomes the entry this node would have written for the same request, at the same index
//! and term, so raft carries on where etcd stopped and the node applies them as its own. Requests
//! that change no state this node keeps (reads, the v2 store's SYNC and cluster version, lease
//! checkpoints, tokens) become empty entries; ones it cannot apply (v2 API writes) are refused.

use etcd_client::proto::PbMember;
use prost_011::Message as _;
use raft::eraftpb::{Entry, EntryType};

use crate::etcd::raft_request::{self, EntryRequest, InternalRaftRequest, V2Request};
use crate::etcd::snap::conf_change_member;
use crate::etcd::wal::{self, ConfChange};
use crate::node::auth::{AuthWrite, Caller, Perm, PermKind};
use crate::node::raft::write::Write;

/// What a configuration change does to the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add {
        id: u64,
        peer_urls: Vec<String>,
        is_learner: bool,
        name: String,
        client_urls: Vec<String>,
    },
    Promote(u64),
    Remove(u64),
    Update {
        id: u64,
        peer_urls: Vec<String>,
    },
    /// A member's name and client URLs (its publish).
    Attributes {
        id: u64,
        name: String,
        client_urls: Vec<String>,
    },
}

/// The membership change in an etcd entry, if it holds one.
pub fn member_change(e: &wal::Entry) -> Result<Option<MemberChange>, String> {
    use prost::Message as _;
    if e.kind == wal::ENTRY_CONF_CHANGE {
        let cc =
            ConfChange::decode(e.data.as_slice()).map_err(|err| format!("a configuration change: {err}"))?;
        let member = || conf_change_member(&cc.context);
        return Ok(Some(match cc.kind {
            wal::CONF_ADD | wal::CONF_ADD_LEARNER => {
                let m = member()?;
                if m.id != cc.node_id {
                    return Err(format!(
                        "a configuration change for {:x} carries member {:x}",
                        cc.node_id, m.id
                    ));
                }
                if m.is_promote {
                    MemberChange::Promote(m.id)
                } else {
                    MemberChange::Add {
                        id: m.id,
                        peer_urls: m.peer_urls,
                        is_learner: cc.kind == wal::CONF_ADD_LEARNER,
                        name: m.name,
                        client_urls: m.client_urls,
                    }
                }
            }
            wal::CONF_REMOVE => MemberChange::Remove(cc.node_id),
            wal::CONF_UPDATE => MemberChange::Update { id: cc.node_id, peer_urls: member()?.peer_urls },
            other => return Err(format!("configuration change type {other}")),
        }));
    }
    if e.kind != wal::ENTRY_NORMAL {
        return Err(format!("entry type {} (etcd 3.4 writes 0 and 1)", e.kind));
    }
    match raft_request::decode(&e.data)? {
        EntryRequest::V2(r) => Ok(published(&r)?.map(|(id, name, client_urls)| MemberChange::Attributes {
            id,
            name,
            client_urls,
        })),
        _ => Ok(None),
    }
}

/// A member's publish (a v2 PUT of /0/members/<hex id>/attributes): its ID, name and client URLs.
fn published(r: &V2Request) -> Result<Option<(u64, String, Vec<String>)>, String> {
    let Some(hex) = r.path.strip_prefix("/0/members/").and_then(|p| p.strip_suffix("/attributes")) else {
        return Ok(None);
    };
    if r.method != "PUT" {
        return Ok(None);
    }
    let id = u64::from_str_radix(hex, 16).map_err(|_| format!("a publish for member {hex:?}"))?;
    let m = conf_change_member(r.val.as_bytes())?;
    Ok(Some((id, m.name, m.client_urls)))
}

/// The node's entry for etcd's entry `e`. `hash` makes a bcrypt hash of a password etcd 3.4 kept
/// in the entry (it hashed passwords when applying them).
pub fn translate(e: &wal::Entry, hash: &dyn Fn(&str) -> Result<String, String>) -> Result<Entry, String> {
    let mut out = Entry { index: e.index, term: e.term, ..Entry::default() };
    if e.kind == wal::ENTRY_CONF_CHANGE {
        let change = member_change(e)?.ok_or("a configuration change without a change")?;
        let member = |id: u64, peer_urls: Vec<String>, is_learner: bool| PbMember {
            id,
            peer_ur_ls: peer_urls,
            is_learner,
            ..PbMember::default()
        };
        let write = match change {
            MemberChange::Add { id, peer_urls, is_learner, .. } => {
                Write::AddMember(member(id, peer_urls, is_learner))
            }
            MemberChange::Promote(id) => Write::PromoteMember(member(id, Vec::new(), false)),
            MemberChange::Remove(id) => Write::RemoveMember(member(id, Vec::new(), false)),
            MemberChange::Update { id, peer_urls } => {
                // An ordinary entry here: raft's configuration does not change.
                out.data = Write::UpdateMember(member(id, peer_urls, false)).encode(0);
                return Ok(out);
            }
            MemberChange::Attributes { .. } => return Err("a publish in a configuration change".into()),
        };
        let cc = write.conf_change(0).ok_or("a configuration change this node cannot make")?;
        out.data = cc.encode_to_vec();
        out.set_entry_type(EntryType::EntryConfChange);
        return Ok(out);
    }
    if e.kind != wal::ENTRY_NORMAL {
        return Err(format!("entry type {} (etcd 3.4 writes 0 and 1)", e.kind));
    }
    match raft_request::decode(&e.data)? {
        EntryRequest::Empty => {}
        EntryRequest::V2(r) => {
            if let Some((id, name, client_urls)) = published(&r)? {
                let m = PbMember { id, name, client_ur_ls: client_urls, ..PbMember::default() };
                out.data = Write::Publish(m).encode(r.id);
            } else if !(r.method == "SYNC"
                || r.method == "QGET"
                || r.method == "GET"
                || (r.method == "PUT" && r.path == "/0/version"))
            {
                return Err(format!(
                    "a v2 API request ({} {}), from etcd's --enable-v2, which etcdeck does not serve",
                    r.method, r.path
                ));
            }
        }
        EntryRequest::V3(r) => {
            if let Some(write) = v3_write(&r, hash)? {
                let id = if r.id != 0 { r.id } else { r.header.as_ref().map_or(0, |h| h.id) };
                let write = match &r.header {
                    Some(h) => Write::As(
                        Caller { user: h.username.clone(), revision: h.auth_revision },
                        Box::new(write),
                    ),
                    None => write,
                };
                out.data = write.encode(id);
            }
        }
    }
    Ok(out)
}

/// The write an InternalRaftRequest makes, or None for one that changes nothing kept.
fn v3_write(
    r: &InternalRaftRequest,
    hash: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<Write>, String> {
    let auth = |a: AuthWrite| Ok(Some(Write::Auth(a)));
    if let Some(x) = &r.put {
        return Ok(Some(Write::Put(x.clone())));
    }
    if let Some(x) = &r.delete_range {
        return Ok(Some(Write::Delete(x.clone())));
    }
    if let Some(x) = &r.txn {
        return Ok(Some(Write::Txn(x.clone())));
    }
    if let Some(x) = &r.compaction {
        return Ok(Some(Write::Compact(*x)));
    }
    if let Some(x) = &r.lease_grant {
        return Ok(Some(Write::LeaseGrant(*x)));
    }
    if let Some(x) = &r.lease_revoke {
        return Ok(Some(Write::LeaseRevoke(*x)));
    }
    if let Some(x) = &r.alarm {
        return Ok(Some(Write::Alarm(*x)));
    }
    if r.auth_enable.is_some() {
        return auth(AuthWrite::Enable);
    }
    if r.auth_disable.is_some() {
        return auth(AuthWrite::Disable);
    }
    let password = |plain: &str, hashed: &str| -> Result<String, String> {
        if plain.is_empty() && !hashed.is_empty() {
            // etcd 3.5's entries carry the hash (base64 of bcrypt's text).
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(hashed)
                .map_err(|_| "a hashed password that is not base64".to_string())?;
            return String::from_utf8(bytes).map_err(|_| "a hashed password that is not text".to_string());
        }
        hash(plain)
    };
    if let Some(x) = &r.auth_user_add {
        let no_password = x.options.as_ref().is_some_and(|o| o.no_password);
        let hash = if no_password { None } else { Some(password(&x.password, &x.hashed_password)?) };
        return auth(AuthWrite::UserAdd { name: x.name.clone(), hash });
    }
    if let Some(x) = &r.auth_user_delete {
        return auth(AuthWrite::UserDelete { name: x.name.clone() });
    }
    if let Some(x) = &r.auth_user_change_password {
        let hash = password(&x.password, &x.hashed_password)?;
        return auth(AuthWrite::UserChangePassword { name: x.name.clone(), hash });
    }
    if let Some(x) = &r.auth_user_grant_role {
        return auth(AuthWrite::UserGrantRole { user: x.user.clone(), role: x.role.clone() });
    }
    if let Some(x) = &r.auth_user_revoke_role {
        return auth(AuthWrite::UserRevokeRole { name: x.name.clone(), role: x.role.clone() });
    }
    if let Some(x) = &r.auth_role_add {
        return auth(AuthWrite::RoleAdd { name: x.name.clone() });
    }
    if let Some(x) = &r.auth_role_delete {
        return auth(AuthWrite::RoleDelete { role: x.role.clone() });
    }
    if let Some(x) = &r.auth_role_grant_permission {
        let p = x.perm.clone().unwrap_or_default();
        let kind =
            PermKind::from_pb(p.perm_type).ok_or_else(|| format!("permission type {}", p.perm_type))?;
        let perm = Perm { kind, key: p.key, range_end: p.range_end };
        return auth(AuthWrite::RoleGrantPermission { name: x.name.clone(), perm });
    }
    if let Some(x) = &r.auth_role_revoke_permission {
        return auth(AuthWrite::RoleRevokePermission {
            role: x.role.clone(),
            key: x.key.clone(),
            range_end: x.range_end.clone(),
        });
    }
    let reads = [
        &r.range,
        &r.lease_checkpoint,
        &r.authenticate,
        &r.auth_user_get,
        &r.auth_user_list,
        &r.auth_role_list,
        &r.auth_role_get,
    ];
    if reads.iter().any(|f| f.is_some()) {
        return Ok(None);
    }
    Err("an InternalRaftRequest with no request etcd 3.4 knows".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::raft_request::RequestHeader;
    use etcd_client::proto::PbPutRequest;
    use prost::Message as _;

    fn normal(index: u64, data: Vec<u8>) -> wal::Entry {
        wal::Entry { kind: wal::ENTRY_NORMAL, term: 3, index, data }
    }

    #[test]
    fn etcds_entries_become_the_nodes_own() {
        let no_hash = |_: &str| -> Result<String, String> { Err("no".into()) };
        let put = InternalRaftRequest {
            header: Some(RequestHeader { id: 9, username: String::new(), auth_revision: 1 }),
            put: Some(PbPutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }),
            ..Default::default()
        };
        let e = translate(&normal(5, put.encode_to_vec()), &no_hash).unwrap();
        assert_eq!((e.index, e.term), (5, 3));
        let (id, write) = Write::decode(&e.data).unwrap();
        assert_eq!(id, 9);
        assert_eq!(
            write,
            Write::As(
                Caller { user: String::new(), revision: 1 },
                Box::new(Write::Put(put.put.clone().unwrap()))
            )
        );
        // A read changes nothing: an empty entry keeps the index.
        let read = InternalRaftRequest { range: Some(vec![]), ..Default::default() };
        assert!(translate(&normal(6, read.encode_to_vec()), &no_hash).unwrap().data.is_empty());
        // v2: the publish is the node's publish; SYNC is nothing; a v2 write is refused.
        let publish = V2Request {
            id: 4,
            method: "PUT".into(),
            path: "/0/members/1a/attributes".into(),
            val: r#"{"name":"m1","clientURLs":["http://127.0.0.1:2379"]}"#.into(),
            ..Default::default()
        };
        let e = translate(&normal(7, publish.encode_to_vec()), &no_hash).unwrap();
        let (_, write) = Write::decode(&e.data).unwrap();
        assert!(matches!(write, Write::Publish(m) if m.id == 0x1a && m.name == "m1"));
        let sync = V2Request { method: "SYNC".into(), ..Default::default() };
        assert!(translate(&normal(8, sync.encode_to_vec()), &no_hash).unwrap().data.is_empty());
        let v2 = V2Request { method: "PUT".into(), path: "/1/foo".into(), ..Default::default() };
        assert!(translate(&normal(9, v2.encode_to_vec()), &no_hash)
            .unwrap_err()
            .contains("v2 API request (PUT /1/foo)"));
        // A learner added, in etcd's numbering (3), is raft-rs's AddLearnerNode.
        let cc = ConfChange {
            id: 0,
            kind: wal::CONF_ADD_LEARNER,
            node_id: 0x1b,
            context: br#"{"id":27,"peerURLs":["http://127.0.0.1:2380"],"isLearner":true}"#.to_vec(),
        };
        let e = translate(&wal::Entry { kind: 1, term: 3, index: 10, data: cc.encode_to_vec() }, &no_hash)
            .unwrap();
        assert_eq!(e.get_entry_type(), EntryType::EntryConfChange);
        let decoded = raft::eraftpb::ConfChange::decode(e.data.as_slice()).unwrap();
        assert_eq!(decoded.get_change_type(), raft::eraftpb::ConfChangeType::AddLearnerNode);
        assert_eq!(decoded.node_id, 0x1b);
    }
}
