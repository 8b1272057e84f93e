//! The request codec: what a raft entry carries. A write that changes the store, its answer, and
//! how a write is encoded into an entry's data (and a membership change into raft's configuration
//! change) and decoded back when the entry is applied.

use etcd_client::proto::{
    PbAlarmRequest, PbAlarmResponse, PbCompactionRequest, PbCompactionResponse, PbDeleteRequest,
    PbDeleteResponse, PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse,
    PbMember, PbPutRequest, PbPutResponse, PbTxnOpRequest, PbTxnRequest, PbTxnResponse,
};
use prost::Message;
use raft::eraftpb::{ConfChange, ConfChangeType};

use crate::etcd::raft_request::V2Request;
use crate::node::auth::{AuthOutcome, AuthWrite, Caller};
use crate::node::v2store::{Event, KeyRequest, V2Error};

/// etcd's AlarmType and AlarmRequest.AlarmAction numbers.
pub const ALARM_NONE: i32 = 0;
pub const ALARM_NOSPACE: i32 = 1;
pub(super) const ALARM_GET: i32 = 0;
pub(super) const ALARM_ACTIVATE: i32 = 1;
pub(super) const ALARM_DEACTIVATE: i32 = 2;

/// A request that changes the store, carried in a raft entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put(PbPutRequest),
    Delete(PbDeleteRequest),
    Txn(PbTxnRequest),
    Compact(PbCompactionRequest),
    /// With the ID already chosen (a grant of ID 0 gets one before it is proposed).
    LeaseGrant(PbLeaseGrantRequest),
    LeaseRevoke(PbLeaseRevokeRequest),
    Alarm(PbAlarmRequest),
    /// A member's attributes, published once it serves (etcd's publish): ID, name, client URLs.
    Publish(PbMember),
    /// Membership changes, raft configuration changes but for the update: the member's ID, and
    /// for an add its peer URLs and whether it joins as a learner.
    AddMember(PbMember),
    RemoveMember(PbMember),
    PromoteMember(PbMember),
    /// New peer URLs for a member (an ordinary entry: raft's configuration does not change).
    UpdateMember(PbMember),
    /// A change to users, roles or auth itself (passwords already hashed).
    Auth(AuthWrite),
    /// A client's write with who sent it, checked against the auth store again when applied
    /// (etcd's request header with its username and auth revision; an empty user for a client
    /// that gave none). Writes the node makes itself (lease expiry, publishing, alarms) carry none.
    As(Caller, Box<Write>),
    /// A v2 API request (`--enable-v2`): a write, a quorum read or the leader's expiry sweep.
    V2(KeyRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteResponse {
    Put(PbPutResponse),
    Delete(PbDeleteResponse),
    Txn(PbTxnResponse),
    Compact(PbCompactionResponse),
    LeaseGrant(PbLeaseGrantResponse),
    LeaseRevoke(PbLeaseRevokeResponse),
    Alarm(PbAlarmResponse),
    Published,
    /// The membership changed as asked; the store holds the new one.
    MembershipChanged,
    /// An auth change was applied; `revision` is the KV store's, for the header.
    Auth {
        outcome: AuthOutcome,
        revision: i64,
    },
    /// What the v2 store answered: its events, or its error (an answer, not a failure).
    V2(Result<Vec<Event>, V2Error>),
}

const PUT: u8 = 1;
const DELETE: u8 = 2;
const TXN: u8 = 3;
const COMPACT: u8 = 4;
const LEASE_GRANT: u8 = 5;
const LEASE_REVOKE: u8 = 6;
const ALARM: u8 = 7;
const PUBLISH: u8 = 8;
const MEMBER_ADD: u8 = 9;
const MEMBER_REMOVE: u8 = 10;
const MEMBER_PROMOTE: u8 = 11;
const MEMBER_UPDATE: u8 = 12;
const AUTH: u8 = 13;
const AS_CALLER: u8 = 14;
const V2: u8 = 15;

impl Write {
    /// Whether the write adds data, so is refused while the NOSPACE alarm is raised (etcd's capped
    /// applier: puts, transactions with puts at the top level, and lease grants).
    pub fn adds_data(&self) -> bool {
        // Top-level puts only, as etcd's costTxn counts them.
        fn txn_puts(t: &PbTxnRequest) -> bool {
            t.success
                .iter()
                .chain(&t.failure)
                .any(|op| matches!(&op.request, Some(PbTxnOpRequest::RequestPut(_))))
        }
        match self {
            Write::Put(_) | Write::LeaseGrant(_) => true,
            // A v2 write that may add a node (etcd's v2 store has no quota; the member's disk
            // has room only for so much).
            Write::V2(r) => matches!(r.method.as_str(), "PUT" | "POST"),
            Write::Txn(t) => txn_puts(t),
            Write::As(_, w) => w.adds_data(),
            _ => false,
        }
    }
}

impl Write {
    /// `[kind][proposal id: u64 LE][the request's protobuf]` (an auth change: its JSON). A write
    /// with its caller: `[14][id][auth revision: u64 LE][user's length: u32 LE][user][the write's
    /// kind][its body]`.
    pub(super) fn encode(&self, id: u64) -> Vec<u8> {
        if let Write::As(caller, inner) = self {
            let encoded = inner.encode(id);
            let user = caller.user.as_bytes();
            let mut out = Vec::with_capacity(encoded.len() + 21 + user.len());
            out.push(AS_CALLER);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&caller.revision.to_le_bytes());
            // A user name is at most a request long (--max-request-bytes), far below 4 GiB.
            out.extend_from_slice(&(user.len().min(u32::MAX as usize) as u32).to_le_bytes());
            out.extend_from_slice(user);
            out.push(encoded[0]);
            out.extend_from_slice(&encoded[9..]);
            return out;
        }
        let (kind, body) = match self {
            Write::Put(r) => (PUT, r.encode_to_vec()),
            Write::Delete(r) => (DELETE, r.encode_to_vec()),
            Write::Txn(r) => (TXN, r.encode_to_vec()),
            Write::Compact(r) => (COMPACT, r.encode_to_vec()),
            Write::LeaseGrant(r) => (LEASE_GRANT, r.encode_to_vec()),
            Write::LeaseRevoke(r) => (LEASE_REVOKE, r.encode_to_vec()),
            Write::Alarm(r) => (ALARM, r.encode_to_vec()),
            Write::Publish(m) => (PUBLISH, m.encode_to_vec()),
            Write::AddMember(m) => (MEMBER_ADD, m.encode_to_vec()),
            Write::RemoveMember(m) => (MEMBER_REMOVE, m.encode_to_vec()),
            Write::PromoteMember(m) => (MEMBER_PROMOTE, m.encode_to_vec()),
            Write::UpdateMember(m) => (MEMBER_UPDATE, m.encode_to_vec()),
            Write::Auth(a) => (AUTH, serde_json::to_vec(a).unwrap_or_default()),
            Write::V2(r) => (V2, r.to_raft(id).encode_to_vec()),
            Write::As(..) => unreachable!("encoded above"),
        };
        let mut out = Vec::with_capacity(9 + body.len());
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub(super) fn decode(data: &[u8]) -> Result<(u64, Write), String> {
        if data.len() < 9 {
            return Err("entry shorter than its header".into());
        }
        let id = u64::from_le_bytes(data[1..9].try_into().map_err(|_| "bad id".to_string())?);
        let body = &data[9..];
        if data[0] == AS_CALLER {
            let short = || "caller header cut short".to_string();
            let revision =
                u64::from_le_bytes(body.get(..8).ok_or_else(short)?.try_into().map_err(|_| short())?);
            let len = u32::from_le_bytes(body.get(8..12).ok_or_else(short)?.try_into().map_err(|_| short())?);
            let user = body.get(12..12 + len as usize).ok_or_else(short)?;
            let user = String::from_utf8(user.to_vec()).map_err(|_| "caller is not UTF-8".to_string())?;
            let rest = &body[12 + len as usize..];
            let (&kind, inner_body) = rest.split_first().ok_or_else(short)?;
            if kind == AS_CALLER {
                return Err("a caller inside a caller".into());
            }
            let mut inner = Vec::with_capacity(9 + inner_body.len());
            inner.push(kind);
            inner.extend_from_slice(&id.to_le_bytes());
            inner.extend_from_slice(inner_body);
            let (_, write) = Write::decode(&inner)?;
            return Ok((id, Write::As(Caller { user, revision }, Box::new(write))));
        }
        let err = |e: prost::DecodeError| e.to_string();
        let write = match data[0] {
            PUT => Write::Put(PbPutRequest::decode(body).map_err(err)?),
            DELETE => Write::Delete(PbDeleteRequest::decode(body).map_err(err)?),
            TXN => Write::Txn(PbTxnRequest::decode(body).map_err(err)?),
            COMPACT => Write::Compact(PbCompactionRequest::decode(body).map_err(err)?),
            LEASE_GRANT => Write::LeaseGrant(PbLeaseGrantRequest::decode(body).map_err(err)?),
            LEASE_REVOKE => Write::LeaseRevoke(PbLeaseRevokeRequest::decode(body).map_err(err)?),
            ALARM => Write::Alarm(PbAlarmRequest::decode(body).map_err(err)?),
            PUBLISH => Write::Publish(PbMember::decode(body).map_err(err)?),
            MEMBER_ADD => Write::AddMember(PbMember::decode(body).map_err(err)?),
            MEMBER_REMOVE => Write::RemoveMember(PbMember::decode(body).map_err(err)?),
            MEMBER_PROMOTE => Write::PromoteMember(PbMember::decode(body).map_err(err)?),
            MEMBER_UPDATE => Write::UpdateMember(PbMember::decode(body).map_err(err)?),
            AUTH => Write::Auth(serde_json::from_slice(body).map_err(|e| format!("auth change: {e}"))?),
            V2 => Write::V2(KeyRequest::from_raft(V2Request::decode(body).map_err(err)?)),
            kind => return Err(format!("unknown entry kind {kind}")),
        };
        Ok((id, write))
    }

    /// The raft configuration change a membership change makes (the write rides in its context).
    pub(super) fn conf_change(&self, id: u64) -> Option<ConfChange> {
        let (change_type, node) = match self {
            Write::AddMember(m) if m.is_learner => (ConfChangeType::AddLearnerNode, m.id),
            Write::AddMember(m) | Write::PromoteMember(m) => (ConfChangeType::AddNode, m.id),
            Write::RemoveMember(m) => (ConfChangeType::RemoveNode, m.id),
            _ => return None,
        };
        let mut cc = ConfChange { node_id: node, context: self.encode(id), ..ConfChange::default() };
        cc.set_change_type(change_type);
        Some(cc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_request_rides_an_entry_as_etcds_request() {
        let r = KeyRequest::parse("PUT", "/dir/k", "prevExist=false", Some("value=v&ttl=5"), 1_000).unwrap();
        let caller = Caller { user: "root".into(), revision: 3 };
        for write in [Write::V2(r.clone()), Write::As(caller, Box::new(Write::V2(r.clone())))] {
            let data = write.encode(42);
            assert_eq!(Write::decode(&data), Ok((42, write)));
        }
        let data = Write::V2(r.clone()).encode(42);
        let pb = V2Request::decode(&data[9..]).unwrap();
        assert_eq!((pb.id, pb.method.as_str(), pb.path.as_str()), (42, "PUT", "/1/dir/k"));
        assert_eq!((pb.val.as_str(), pb.prev_exist, pb.expiration), ("v", Some(false), 5_000_001_000));
        let mut cut = data.clone();
        cut.truncate(data.len() - 1);
        assert!(Write::decode(&cut).is_err(), "a cut request is an error, not a panic");
    }
}
