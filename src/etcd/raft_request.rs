//! What etcd 3.4 puts in a normal raft entry (etcdserver/etcdserverpb/raft_internal.proto and
//! etcdserver.proto): an InternalRaftRequest for v3 requests, or a bare v2 Request (the member's
//! publish of its name and client URLs, the cluster version, the v2 store's SYNC, v2 API writes).
//! Decoded as etcd's applyEntryNormal does: as an InternalRaftRequest first, as a v2 Request if
//! that fails. Fields no state depends on (reads, lease checkpoints, tokens) are kept as bytes.

use etcd_client::proto::{
    PbAlarmRequest, PbAuthRoleAddRequest, PbAuthRoleDeleteRequest, PbAuthRoleGrantPermissionRequest,
    PbAuthRoleRevokePermissionRequest, PbAuthUserAddRequest, PbAuthUserChangePasswordRequest,
    PbAuthUserDeleteRequest, PbAuthUserGrantRoleRequest, PbAuthUserRevokeRoleRequest, PbCompactionRequest,
    PbDeleteRequest, PbLeaseGrantRequest, PbLeaseRevokeRequest, PbPutRequest, PbTxnRequest,
};
use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestHeader {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub username: String,
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// etcdserverpb.Request (proto2), the v2 store's request, with etcd's field numbers (an etcd log's
/// v2 entries, and the v2 API's writes in an etcdeck log). `prev_exist` and `refresh` are the two
/// fields etcd leaves out when unset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct V2Request {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(string, tag = "3")]
    pub path: String,
    #[prost(string, tag = "4")]
    pub val: String,
    #[prost(bool, tag = "5")]
    pub dir: bool,
    #[prost(string, tag = "6")]
    pub prev_value: String,
    #[prost(uint64, tag = "7")]
    pub prev_index: u64,
    #[prost(bool, optional, tag = "8")]
    pub prev_exist: Option<bool>,
    #[prost(int64, tag = "9")]
    pub expiration: i64,
    #[prost(bool, tag = "10")]
    pub wait: bool,
    #[prost(uint64, tag = "11")]
    pub since: u64,
    #[prost(bool, tag = "12")]
    pub recursive: bool,
    #[prost(bool, tag = "13")]
    pub sorted: bool,
    #[prost(bool, tag = "14")]
    pub quorum: bool,
    #[prost(int64, tag = "15")]
    pub time: i64,
    #[prost(bool, tag = "16")]
    pub stream: bool,
    #[prost(bool, optional, tag = "17")]
    pub refresh: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InternalRaftRequest {
    #[prost(message, optional, tag = "100")]
    pub header: Option<RequestHeader>,
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, optional, tag = "2")]
    pub v2: Option<V2Request>,
    /// A RangeRequest: reads change nothing.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub range: Option<Vec<u8>>,
    #[prost(message, optional, tag = "4")]
    pub put: Option<PbPutRequest>,
    #[prost(message, optional, tag = "5")]
    pub delete_range: Option<PbDeleteRequest>,
    #[prost(message, optional, tag = "6")]
    pub txn: Option<PbTxnRequest>,
    #[prost(message, optional, tag = "7")]
    pub compaction: Option<PbCompactionRequest>,
    #[prost(message, optional, tag = "8")]
    pub lease_grant: Option<PbLeaseGrantRequest>,
    #[prost(message, optional, tag = "9")]
    pub lease_revoke: Option<PbLeaseRevokeRequest>,
    #[prost(message, optional, tag = "10")]
    pub alarm: Option<PbAlarmRequest>,
    /// LeaseCheckpointRequest: remaining TTLs, which etcd 3.4 keeps in memory only.
    #[prost(bytes = "vec", optional, tag = "11")]
    pub lease_checkpoint: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1000")]
    pub auth_enable: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1011")]
    pub auth_disable: Option<Vec<u8>>,
    /// InternalAuthenticateRequest: a simple token, kept in memory only.
    #[prost(bytes = "vec", optional, tag = "1012")]
    pub authenticate: Option<Vec<u8>>,
    #[prost(message, optional, tag = "1100")]
    pub auth_user_add: Option<PbAuthUserAddRequest>,
    #[prost(message, optional, tag = "1101")]
    pub auth_user_delete: Option<PbAuthUserDeleteRequest>,
    #[prost(bytes = "vec", optional, tag = "1102")]
    pub auth_user_get: Option<Vec<u8>>,
    #[prost(message, optional, tag = "1103")]
    pub auth_user_change_password: Option<PbAuthUserChangePasswordRequest>,
    #[prost(message, optional, tag = "1104")]
    pub auth_user_grant_role: Option<PbAuthUserGrantRoleRequest>,
    #[prost(message, optional, tag = "1105")]
    pub auth_user_revoke_role: Option<PbAuthUserRevokeRoleRequest>,
    #[prost(bytes = "vec", optional, tag = "1106")]
    pub auth_user_list: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1107")]
    pub auth_role_list: Option<Vec<u8>>,
    #[prost(message, optional, tag = "1200")]
    pub auth_role_add: Option<PbAuthRoleAddRequest>,
    #[prost(message, optional, tag = "1201")]
    pub auth_role_delete: Option<PbAuthRoleDeleteRequest>,
    #[prost(bytes = "vec", optional, tag = "1202")]
    pub auth_role_get: Option<Vec<u8>>,
    #[prost(message, optional, tag = "1203")]
    pub auth_role_grant_permission: Option<PbAuthRoleGrantPermissionRequest>,
    #[prost(message, optional, tag = "1204")]
    pub auth_role_revoke_permission: Option<PbAuthRoleRevokePermissionRequest>,
}

/// A normal entry's data, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryRequest {
    /// A new leader's empty entry.
    Empty,
    V3(Box<InternalRaftRequest>),
    V2(V2Request),
}

/// Decodes a normal entry's data as etcd's applyEntryNormal does.
pub fn decode(data: &[u8]) -> Result<EntryRequest, String> {
    if data.is_empty() {
        return Ok(EntryRequest::Empty);
    }
    match InternalRaftRequest::decode(data) {
        Ok(r) => match r.v2 {
            Some(v2) => Ok(EntryRequest::V2(v2)),
            None => Ok(EntryRequest::V3(Box::new(r))),
        },
        Err(_) => V2Request::decode(data)
            .map(EntryRequest::V2)
            .map_err(|e| format!("neither etcd's InternalRaftRequest nor a v2 Request: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_requests_and_v2_publishes_decode_as_etcd_reads_them() {
        let put = InternalRaftRequest {
            header: Some(RequestHeader { id: 7, username: "alice".into(), auth_revision: 3 }),
            put: Some(PbPutRequest { key: b"k".to_vec(), value: b"v".to_vec(), ..Default::default() }),
            ..Default::default()
        };
        match decode(&put.encode_to_vec()).unwrap() {
            EntryRequest::V3(r) => assert_eq!(*r, put),
            other => panic!("{other:?}"),
        }
        // etcd's publish: a bare v2 Request, which does not decode as an InternalRaftRequest.
        let publish = V2Request {
            id: 1,
            method: "PUT".into(),
            path: "/0/members/8e9e05c52164694d/attributes".into(),
            val: r#"{"name":"default","clientURLs":["http://localhost:2379"]}"#.into(),
            ..Default::default()
        };
        assert_eq!(decode(&publish.encode_to_vec()).unwrap(), EntryRequest::V2(publish));
        let sync = V2Request { id: 2, method: "SYNC".into(), ..Default::default() };
        assert_eq!(decode(&sync.encode_to_vec()).unwrap(), EntryRequest::V2(sync));
        assert_eq!(decode(b"").unwrap(), EntryRequest::Empty);
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
    }

    /// Arbitrary bytes, and real requests cut and bit-flipped, decode or give an error: never a panic.
    #[test]
    fn damaged_entries_never_panic() {
        let put = InternalRaftRequest {
            header: Some(RequestHeader { id: 7, username: "alice".into(), auth_revision: 3 }),
            put: Some(PbPutRequest { key: b"key".to_vec(), value: vec![b'v'; 40], ..Default::default() }),
            ..Default::default()
        }
        .encode_to_vec();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in 0..put.len() {
            let _ = decode(&put[..n]);
        }
        for _ in 0..20_000 {
            let mut b = put.clone();
            let at = (next() % b.len() as u64) as usize;
            b[at] ^= 1 << (next() % 8);
            let _ = decode(&b);
            let random: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
            let _ = decode(&random);
        }
    }
}
