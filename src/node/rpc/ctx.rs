//! What every service shares: the member's identity for response headers, the handle to the raft
//! driver, and the checks every request passes (auth, the member's own alarms, the leader) before
//! a service answers it.

use etcd_client::proto::{PbAlarmRequest, PbPutRequest, PbResponseHeader, PbTxnOpRequest, PbTxnRequest};
use std::sync::Arc;

use tonic::Status;

use crate::node::auth::{Caller, Op};
use crate::node::error::NodeError;
use crate::node::fsutil::FreeSpace;
use crate::node::raft::driver::Handle;
use crate::node::raft::write::{Write, WriteResponse, ALARM_NOSPACE};
use crate::node::rpc::conn::ClientConn;

/// What every response header says about the member that answered.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
}

impl Identity {
    /// Completes a header the apply layer filled with the revision.
    pub fn fill(&self, header: &mut Option<PbResponseHeader>, raft_term: u64) {
        let h = header.get_or_insert_with(PbResponseHeader::default);
        h.cluster_id = self.cluster_id;
        h.member_id = self.member_id;
        h.raft_term = raft_term;
    }
}

/// What one member's services share.
#[derive(Clone)]
pub struct Ctx {
    pub handle: Handle,
    pub identity: Identity,
    pub max_txn_ops: usize,
    /// The backend quota, None when disabled.
    pub quota_bytes: Option<u64>,
    /// The member's name and URLs, for MemberList.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// etcd's --strict-reconfig-check: refuse membership changes that would risk the quorum.
    pub strict_reconfig_check: bool,
    /// --enable-v2: the v2 API is served.
    pub enable_v2: bool,
    /// The peer transport, for how long each peer has been connected.
    pub transport: Option<Arc<dyn crate::node::raft::transport::Transport>>,
    /// How this member reaches the others' peer URLs, for what etcd forwards to the leader.
    pub dialer: crate::node::raft::transport::Dialer,
    /// Moves on each time this member has been without a leader for three election timeouts: the
    /// streams that require a leader then end (etcd's monitorLeader).
    pub no_leader: tokio::sync::watch::Receiver<u64>,
    /// --client-cert-auth: a request without a token is its client certificate's CN.
    pub client_cert_auth: bool,
    /// --bcrypt-cost.
    pub bcrypt_cost: u32,
    /// The data dir and the WAL dir: writes stop while either has less than `LOW_DISK_BYTES` free.
    pub disk_dirs: Arc<Vec<FreeSpace>>,
}

/// Below this much free space where the log or the store lives (and four times what the store has
/// not yet written to sled: the room sled's batch will need, as the store checks it before handing
/// sled a batch), writes that add data are refused with
/// NOSPACE (as etcd refuses them past its quota) before a write to disk fails: a disk that fills
/// under the store as well as the log would leave it unable to serve reads.
pub const LOW_DISK_BYTES: u64 = 8 * 1024 * 1024;

/// etcd's metadata keys for the auth token (gRPC clients, then the gateway's).
const TOKEN_KEYS: [&str; 2] = ["token", "authorization"];

/// etcd's metadata for "this stream requires a leader" (clientv3.WithRequireLeader; etcdctl's
/// watch and the console's watch tails set it).
const REQUIRE_LEADER_KEY: &str = "hasleader";

/// How many election timeouts without a leader end the streams that require one (etcd's
/// maxNoLeaderCnt).
pub const NO_LEADER_ELECTIONS: u32 = 3;

type GuardedStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

/// Ends `stream` with etcd's "etcdserver: no leader" when `guard` moves; passes it on untouched
/// without a guard.
pub fn until_no_leader<T, S>(stream: S, guard: Option<tokio::sync::watch::Receiver<u64>>) -> GuardedStream<T>
where
    T: Send + 'static,
    S: futures::Stream<Item = Result<T, Status>> + Send + 'static,
{
    use futures::StreamExt as _;
    let Some(guard) = guard else {
        return Box::pin(stream);
    };
    let state = (Box::pin(stream), guard, false);
    Box::pin(futures::stream::unfold(state, |(mut stream, mut guard, done)| async move {
        if done {
            return None;
        }
        let lost = async {
            // A dropped sender means the node is stopping: its streams end otherwise.
            if guard.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        };
        tokio::select! {
            item = stream.next() => item.map(|i| (i, (stream, guard, false))),
            _ = lost => Some((Err(NodeError::NoLeader.into()), (stream, guard, true))),
        }
    }))
}

/// etcd's per-request quota cost: what a put adds besides its key and value (etcd's quota.go).
const KV_OVERHEAD: u64 = 256;
const LEASE_OVERHEAD: u64 = 64;

fn put_cost(p: &PbPutRequest) -> u64 {
    KV_OVERHEAD + p.key.len() as u64 + p.value.len() as u64
}

/// The larger of the two branches' puts, top level only, as etcd counts a transaction.
fn txn_cost(t: &PbTxnRequest) -> u64 {
    let branch = |ops: &[etcd_client::proto::PbTxnRequestOp]| -> u64 {
        ops.iter()
            .map(|op| match &op.request {
                Some(PbTxnOpRequest::RequestPut(p)) => put_cost(p),
                _ => 0,
            })
            .sum()
    };
    branch(&t.success).max(branch(&t.failure))
}

impl Ctx {
    /// Who sent a request (etcd's AuthInfoFromCtx): the user of its token, else with
    /// --client-cert-auth the CN of its certificate, else nobody. A token this member does not
    /// know (or one that expired) is etcd's "invalid auth token".
    pub fn caller<T>(&self, req: &tonic::Request<T>) -> Result<Option<Caller>, Status> {
        self.caller_from(req.metadata(), req.extensions().get::<ClientConn>())
    }

    pub fn caller_from(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        conn: Option<&ClientConn>,
    ) -> Result<Option<Caller>, Status> {
        let revision = || self.handle.read_store().map(|s| s.auth().revision);
        let token = TOKEN_KEYS.iter().find_map(|k| metadata.get(*k)).and_then(|v| v.to_str().ok());
        if let Some(token) = token {
            let Some(caller) = self.handle.tokens.info(token, revision()?) else {
                return Err(NodeError::InvalidAuthToken.into());
            };
            return Ok(Some(caller));
        }
        if self.client_cert_auth {
            if let Some(cn) = conn.and_then(|c| c.common_name.clone()) {
                let store = self.handle.read_store()?;
                if store.auth().enabled {
                    return Ok(Some(Caller { user: cn, revision: store.auth().revision }));
                }
            }
        }
        Ok(None)
    }

    /// etcd's IsRangePermitted for the sender of `req`.
    pub fn check_read<T>(&self, req: &tonic::Request<T>, key: &[u8], range_end: &[u8]) -> Result<(), Status> {
        let who = self.caller(req)?;
        Ok(self.handle.read_store()?.auth().permitted(who.as_ref(), key, range_end, Op::Read)?)
    }

    /// etcd's IsAdminPermitted for the sender of `req`: the root role once auth is enabled.
    pub fn check_admin<T>(&self, req: &tonic::Request<T>) -> Result<(), Status> {
        let who = self.caller(req)?;
        Ok(self.handle.read_store()?.auth().admin_permitted(who.as_ref())?)
    }

    /// For what etcd leaves to any client but this node keeps to known users once auth is enabled
    /// (member list, status, alarm list): a user it knows, with any role.
    pub fn check_user<T>(&self, req: &tonic::Request<T>) -> Result<(), Status> {
        let who = self.caller(req)?;
        let store = self.handle.read_store()?;
        let auth = store.auth();
        if !auth.enabled {
            return Ok(());
        }
        match who {
            None => Err(NodeError::UserEmpty.into()),
            Some(c) if auth.users.contains_key(&c.user) => Ok(()),
            Some(_) => Err(NodeError::PermissionDenied.into()),
        }
    }

    /// A client's write with its sender, for the member applying it to check (see Write::As);
    /// `write` makes it from the request's message, which is moved, not copied.
    pub fn as_caller<T>(
        &self,
        req: tonic::Request<T>,
        write: impl FnOnce(T) -> Write,
    ) -> Result<Write, Status> {
        let who = self.caller(&req)?.unwrap_or_default();
        Ok(Write::As(who, Box::new(write(req.into_inner()))))
    }

    /// For a stream that asks to require a leader: refused at once while this member has none,
    /// else the guard that ends it once it has had none for a while (see `until_no_leader`).
    pub fn leader_guard<T>(
        &self,
        req: &tonic::Request<T>,
    ) -> Result<Option<tokio::sync::watch::Receiver<u64>>, Status> {
        let required = req.metadata().get(REQUIRE_LEADER_KEY).is_some_and(|v| v.as_bytes() == b"true");
        if !required {
            return Ok(None);
        }
        if self.handle.leader() == 0 {
            return Err(NodeError::NoLeader.into());
        }
        let mut guard = self.no_leader.clone();
        guard.borrow_and_update();
        Ok(Some(guard))
    }

    /// A header for a read served at `revision`.
    pub fn header(&self, revision: i64) -> Option<PbResponseHeader> {
        let mut h = Some(PbResponseHeader { revision, ..PbResponseHeader::default() });
        self.identity.fill(&mut h, self.handle.raft_term());
        h
    }

    /// etcd's quota check in front of raft: a write that would take the database past the quota
    /// raises the NOSPACE alarm and is refused.
    async fn check_quota(&self, write: &Write) -> Result<(), Status> {
        let write = match write {
            Write::As(_, inner) => inner,
            other => other,
        };
        let cost = match write {
            Write::Put(p) => put_cost(p),
            Write::Txn(t) => txn_cost(t),
            Write::LeaseGrant(_) => LEASE_OVERHEAD,
            _ => return Ok(()),
        };
        if cost == 0 {
            return Ok(());
        }
        if self.disk_low() {
            return Err(NodeError::NoSpace.into());
        }
        let Some(quota) = self.quota_bytes else { return Ok(()) };
        let size = self.handle.read_store()?.db_size_recent();
        if size + cost < quota {
            return Ok(());
        }
        let raise = PbAlarmRequest { action: 1, member_id: self.identity.member_id, alarm: ALARM_NOSPACE };
        self.handle.write(Write::Alarm(raise)).await?;
        Err(NodeError::NoSpace.into())
    }

    /// Whether this member's NOSPACE stands for its disk: a write to it failed for want of space,
    /// or less than `LOW_DISK_BYTES` are left where the log or the store lives.
    pub fn disk_low(&self) -> bool {
        if self.handle.status.disk_failure().is_some_and(|f| f.no_space) {
            return true;
        }
        // The store's writes not yet in sled will need four times their size there when they are
        // written (the store's own check before a batch): refused here first, so that what was
        // taken can always be written.
        let pending = self.handle.store_pending.load(std::sync::atomic::Ordering::Relaxed);
        let need = LOW_DISK_BYTES + 4 * pending;
        let low =
            self.disk_dirs.iter().find_map(|d| d.free(need).filter(|f| *f < need).map(|f| (d.dir(), f)));
        let was = self.handle.status.disk_low.swap(low.is_some(), std::sync::atomic::Ordering::Relaxed);
        match low {
            Some((dir, free)) if !was => eprintln!(
                "etcdeck node: {}: {free} bytes free, under the {need} writes need ({} MiB, and four times the \
                 {pending} bytes not yet in the store): writes that add data are refused (alarm NOSPACE) \
                 until there is space",
                dir.display(),
                LOW_DISK_BYTES >> 20
            ),
            None if was => eprintln!("etcdeck node: disk space is back: writes are taken again"),
            _ => {}
        }
        low.is_some()
    }

    /// Proposes a write (after the quota check) and completes its response header.
    pub async fn write(&self, write: Write) -> Result<WriteResponse, Status> {
        self.check_quota(&write).await?;
        let mut resp = self.handle.write(write).await?;
        let header = match &mut resp {
            WriteResponse::Put(r) => &mut r.header,
            WriteResponse::Delete(r) => &mut r.header,
            WriteResponse::Txn(r) => &mut r.header,
            WriteResponse::Compact(r) => &mut r.header,
            WriteResponse::LeaseGrant(r) => &mut r.header,
            WriteResponse::LeaseRevoke(r) => &mut r.header,
            // etcd answers alarms without a header; publishing is internal.
            WriteResponse::Alarm(_)
            | WriteResponse::Published
            | WriteResponse::MembershipChanged
            | WriteResponse::Auth { .. }
            | WriteResponse::V2(_) => return Ok(resp),
        };
        self.identity.fill(header, self.handle.raft_term());
        Ok(resp)
    }
}

pub(crate) fn mismatched() -> Status {
    Status::internal("mismatched response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbTxnRequestOp;

    #[test]
    fn quota_costs_are_etcds() {
        let p = PbPutRequest { key: b"k".to_vec(), value: vec![0; 10], ..PbPutRequest::default() };
        assert_eq!(put_cost(&p), 267);
        let op = |p: &PbPutRequest| PbTxnRequestOp { request: Some(PbTxnOpRequest::RequestPut(p.clone())) };
        let t =
            PbTxnRequest { success: vec![op(&p), op(&p)], failure: vec![op(&p)], ..PbTxnRequest::default() };
        assert_eq!(txn_cost(&t), 534, "the larger branch");
    }
}
