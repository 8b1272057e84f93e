//! The raft driver: the only owner of the RawNode. It runs on a thread of its own (fdatasync blocks),
//! takes proposals and read requests from a channel, ticks raft, and handles each Ready in raft-rs's
//! order: apply what is committed, persist new entries and the hard state (one fdatasync), advance,
//! apply what that committed, answer reads whose index is applied. A write is answered only after
//! its entry is durable and applied.
//!
//! With peers, raft's messages go out through the transport (those raft allows before the
//! fdatasync, then the rest after it) and peers' messages come in as commands. A follower hands
//! proposals and read requests to the leader through raft; every member applies every entry, and
//! the member a write was proposed on answers it when it applies it. Proposals and reads that no
//! leader takes fail with etcd's "request timed out" after the request timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use etcd_client::proto::{
    PbAlarmMember, PbAlarmRequest, PbAlarmResponse, PbCompactionRequest, PbCompactionResponse,
    PbDeleteRequest, PbDeleteResponse, PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseRevokeRequest,
    PbLeaseRevokeResponse, PbMember, PbPutRequest, PbPutResponse, PbTxnOpRequest, PbTxnRequest,
    PbTxnResponse,
};
use prost::Message;
use prost_011::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message as RaftMessage};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::oneshot;

use crate::node::auth::{AuthOutcome, AuthWrite, Caller, Op, Tokens};
use crate::node::error::NodeError;
use crate::node::idutil::IdGen;
use crate::node::lease::{Lessor, MAX_LEASE_TTL};
use crate::node::metrics::{inc, Metrics};
use crate::node::mvcc::apply::{self, header};
use crate::node::mvcc::store::{RaftMember, Store};
use crate::node::raft::storage::{LogStore, LogStoreError};
use crate::node::raft::transport::{Peer, Transport};
use crate::node::watch::Hub;

/// Applied entries are written to the store's database together, at most this long after the first
/// of them (etcd's --backend-batch-interval default) or once this many sled writes wait. etcd's
/// limit is 10 000; sled's batch runs on the raft thread and takes about 1 ms per 1 000 writes
/// here, so a 10 000-write batch held up every request for up to 30 ms (txn-put p99).
const BACKEND_BATCH_INTERVAL: Duration = Duration::from_millis(100);
const BACKEND_BATCH_LIMIT: usize = 1_000;

/// etcd's maxSizePerMsg and maxInflightMsgs (4096 / 8).
const MAX_SIZE_PER_MSG: u64 = 1 << 20;
const MAX_INFLIGHT_MSGS: usize = 512;

/// etcd's AlarmType and AlarmRequest.AlarmAction numbers.
pub const ALARM_NONE: i32 = 0;
pub const ALARM_NOSPACE: i32 = 1;
const ALARM_GET: i32 = 0;
const ALARM_ACTIVATE: i32 = 1;
const ALARM_DEACTIVATE: i32 = 2;

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
    fn encode(&self, id: u64) -> Vec<u8> {
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
            Write::As(..) => unreachable!("encoded above"),
        };
        let mut out = Vec::with_capacity(9 + body.len());
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(data: &[u8]) -> Result<(u64, Write), String> {
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
            kind => return Err(format!("unknown entry kind {kind}")),
        };
        Ok((id, write))
    }

    /// The raft configuration change a membership change makes (the write rides in its context).
    fn conf_change(&self, id: u64) -> Option<ConfChange> {
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

/// The raft membership the store's members make: voters and learners.
pub fn conf_state_of(store: &Store) -> ConfState {
    let mut cs = ConfState::default();
    for (id, m) in store.members() {
        if m.is_learner {
            cs.learners.push(*id);
        } else {
            cs.voters.push(*id);
        }
    }
    cs
}

/// etcd's checks of a membership change against the membership it applies to (its cluster's
/// ValidateConfigurationChange); made before proposing, and again when the entry is applied.
pub fn validate_member_change(store: &Store, write: &Write) -> Result<(), NodeError> {
    let members = store.members();
    let urls_taken = |m: &PbMember| {
        members
            .iter()
            .any(|(id, other)| *id != m.id && other.peer_urls.iter().any(|u| m.peer_ur_ls.contains(u)))
    };
    match write {
        Write::AddMember(m) => {
            if store.removed().contains(&m.id) {
                return Err(NodeError::MemberNotFound); // etcd: ErrIDRemoved, sent as "member not found"
            }
            if members.contains_key(&m.id) {
                return Err(NodeError::MemberExists);
            }
            if urls_taken(m) {
                return Err(NodeError::PeerUrlExists);
            }
            if m.is_learner && members.values().filter(|m| m.is_learner).count() >= MAX_LEARNERS {
                return Err(NodeError::TooManyLearners);
            }
        }
        Write::RemoveMember(m) | Write::PromoteMember(m) | Write::UpdateMember(m) => {
            if store.removed().contains(&m.id) {
                return Err(NodeError::MemberNotFound); // etcd: ErrIDRemoved, sent as "member not found"
            }
            let Some(current) = members.get(&m.id) else { return Err(NodeError::MemberNotFound) };
            if matches!(write, Write::PromoteMember(_)) && !current.is_learner {
                return Err(NodeError::MemberNotLearner);
            }
            if matches!(write, Write::UpdateMember(_)) && urls_taken(m) {
                return Err(NodeError::PeerUrlExists);
            }
        }
        _ => {}
    }
    Ok(())
}

/// etcd 3.4 allows one learner at a time (membership's maxLearners).
const MAX_LEARNERS: usize = 1;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Entries kept after a snapshot for slow followers (etcd's snapshotCatchUpEntries).
const CATCH_UP_ENTRIES: u64 = 5000;

enum Command {
    Propose {
        write: Write,
        reply: Reply<WriteResponse>,
    },
    /// Answered with the applied index once a linearizable read may be served.
    ReadIndex {
        reply: Reply<u64>,
    },
    /// A message from a peer.
    Step(RaftMessage),
    /// Hand leadership to this member (MoveLeader).
    TransferLeader(u64),
    /// How far each member's log matches the leader's (None unless this member leads).
    Progress {
        reply: oneshot::Sender<Option<HashMap<u64, u64>>>,
    },
    /// How a snapshot sent to a peer went.
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    Stop,
}

/// What the driver tells the rest of the node about raft, for headers, Status and metrics.
#[derive(Default)]
pub struct RaftStatus {
    pub term: AtomicU64,
    pub leader: AtomicU64,
    pub commit: AtomicU64,
    pub applied: AtomicU64,
    /// ReadIndex rounds asked of raft (each serves every read waiting when it was asked).
    pub read_rounds: AtomicU64,
    /// Whether this member is a learner now.
    pub is_learner: std::sync::atomic::AtomicBool,
    /// IDs removed from the cluster, for the peer listener (which must not wait for the store's
    /// lock on every message).
    pub removed_ids: RwLock<std::collections::BTreeSet<u64>>,
    /// Set once this member learns it was removed from the cluster; `removed_notify` wakes whoever
    /// waits for it.
    pub removed: std::sync::atomic::AtomicBool,
    pub removed_notify: tokio::sync::Notify,
    /// Set when writing to disk failed: the member then takes no writes (with etcd's NOSPACE
    /// alarm, for a full disk) and serves reads.
    pub disk_failed: RwLock<Option<DiskFailure>>,
    /// Whether the disk was last seen under the free space writes need (said once each way).
    pub disk_low: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone)]
pub struct DiskFailure {
    pub why: String,
    pub no_space: bool,
}

impl RaftStatus {
    /// How writing to disk failed, if it did.
    pub fn disk_failure(&self) -> Option<DiskFailure> {
        self.disk_failed.read().ok().and_then(|f| f.clone())
    }

    /// Records that this member was removed from the cluster (it applied its own removal, or a
    /// peer refused it as removed).
    pub fn mark_removed(&self) {
        if !self.removed.swap(true, Ordering::Relaxed) {
            self.removed_notify.notify_one();
        }
    }
}

/// The handle services use: cheap to clone, never blocks the caller.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Command>,
    pub store: Arc<RwLock<Store>>,
    pub hub: Arc<Hub>,
    pub lessor: Arc<Lessor>,
    /// Simple auth tokens this member knows.
    pub tokens: Arc<Tokens>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<RaftStatus>,
    pub member_id: u64,
    max_request_bytes: usize,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Handle {
    /// Proposes a write and waits until it is durable and applied.
    pub async fn write(&self, write: Write) -> Result<WriteResponse, NodeError> {
        if write.encode(0).len() > self.max_request_bytes {
            return Err(NodeError::RequestTooLarge);
        }
        let (reply, rx) = oneshot::channel();
        self.metrics.proposals_pending.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.send(Command::Propose { write, reply });
        let result = match sent {
            Ok(()) => rx.await.unwrap_or(Err(NodeError::Stopped)),
            Err(_) => Err(NodeError::Stopped),
        };
        self.metrics.proposals_pending.fetch_sub(1, Ordering::Relaxed);
        if result.is_err() {
            inc(&self.metrics.proposals_failed);
        }
        result
    }

    pub fn raft_term(&self) -> u64 {
        self.status.term.load(Ordering::Relaxed)
    }

    pub fn leader(&self) -> u64 {
        self.status.leader.load(Ordering::Relaxed)
    }

    /// The store, for reading. A poisoned lock means a writer panicked: a bug, reported as such.
    pub fn read_store(&self) -> Result<std::sync::RwLockReadGuard<'_, Store>, NodeError> {
        self.store.read().map_err(|_| NodeError::Storage("store lock poisoned".into()))
    }

    pub fn write_store(&self) -> Result<std::sync::RwLockWriteGuard<'_, Store>, NodeError> {
        self.store.write().map_err(|_| NodeError::Storage("store lock poisoned".into()))
    }

    /// Stops the driver and waits for its thread, so the data dir is free (its files closed).
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Asks raft to hand leadership to `target`; MoveLeader then waits for it to take over.
    pub fn transfer_leader(&self, target: u64) {
        let _ = self.tx.send(Command::TransferLeader(target));
    }

    /// Hands a peer's message to raft.
    pub fn step(&self, message: RaftMessage) {
        let _ = self.tx.send(Command::Step(message));
    }

    /// Tells raft how a snapshot sent to `to` went.
    pub fn snapshot_sent(&self, to: u64, ok: bool) {
        let _ = self.tx.send(Command::SnapshotSent { to, ok });
    }

    /// The leader's view of how far each member's log matches its own; None on a follower.
    pub async fn leader_progress(&self) -> Result<Option<HashMap<u64, u64>>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Progress { reply }).map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Waits until the store has applied everything committed when the call was made (ReadIndex).
    pub async fn read_index(&self) -> Result<u64, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::ReadIndex { reply }).map_err(|_| NodeError::Stopped)?;
        rx.await.unwrap_or(Err(NodeError::Stopped))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Mvcc(#[from] crate::node::mvcc::store::MvccError),
    #[error("{}: {source}", path.display())]
    Store { path: std::path::PathBuf, source: crate::node::mvcc::store::MvccError },
    #[error("cannot start the raft thread: {0}")]
    Spawn(std::io::Error),
}

impl DriverError {
    /// Whether the disk refused a write for want of space (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        use crate::node::mvcc::store::MvccError;
        match self {
            DriverError::Log(LogStoreError::Wal(w)) => w.is_no_space(),
            DriverError::Mvcc(MvccError::DiskFull(_)) => true,
            DriverError::Store { source: MvccError::DiskFull(_), .. } => true,
            _ => false,
        }
    }
}

pub struct Options {
    pub member_id: u64,
    pub heartbeat: Duration,
    /// In heartbeats, as raft counts it.
    pub election_ticks: usize,
    /// Where the raft log lives (etcd's --wal-dir, by default <data-dir>/member/wal).
    pub wal_dir: std::path::PathBuf,
    pub max_request_bytes: usize,
    /// Applied entries between snapshots (etcd's --snapshot-count): then the store is made durable
    /// and the raft log entries it holds are dropped.
    pub snapshot_count: u64,
    /// The members a new cluster starts with (recorded at the first start); empty for a member
    /// joining a running cluster, which learns the membership from the leader's snapshot.
    pub bootstrap: Vec<(u64, RaftMember)>,
    /// Where peers are while the store holds no membership (a joining member, before the
    /// leader's snapshot): the members the running cluster listed.
    pub known_peers: Vec<(u64, Vec<String>)>,
    /// etcd's --force-new-cluster: every other member is removed by entries appended to the log.
    pub force_new_cluster: bool,
    /// Where messages to peers go (None: a single member).
    pub transport: Option<Arc<dyn Transport>>,
    /// How long a proposal or a read may wait for raft before etcd's "request timed out".
    pub request_timeout: Duration,
    /// How long a simple auth token lives unused (etcd's --auth-token-ttl).
    pub token_ttl: Duration,
    /// --auth-token jwt,...: the keys JWTs are signed and checked with (simple tokens without).
    pub jwt: Option<crate::node::auth::JwtKeys>,
    /// Bytes the log may still write before its disk answers ENOSPC (tests inject a full disk
    /// with it; None in a running node).
    pub log_space: Option<u64>,
}

impl Options {
    /// A member with etcd's defaults, its log in the data dir.
    pub fn new(member_id: u64, data_dir: &std::path::Path) -> Self {
        Options {
            member_id,
            heartbeat: Duration::from_millis(100),
            election_ticks: 10,
            wal_dir: data_dir.join("member").join("wal"),
            max_request_bytes: 1536 * 1024,
            snapshot_count: 100_000,
            bootstrap: vec![(member_id, RaftMember::default())],
            known_peers: Vec::new(),
            force_new_cluster: false,
            transport: None,
            request_timeout: Duration::from_secs(7),
            token_ttl: Duration::from_secs(crate::node::auth::DEFAULT_TOKEN_TTL),
            jwt: None,
            log_space: None,
        }
    }
}

/// Opens the log and the store in `data_dir` and starts the driver thread.
pub fn start(data_dir: &std::path::Path, mut options: Options) -> Result<Handle, DriverError> {
    let opening = Instant::now();
    // The log first: reading it changes nothing, so a damaged log is reported before the store (whose
    // opening writes) is touched.
    let mut log = LogStore::open(&options.wal_dir, ConfState::default())?;
    let db_dir = data_dir.join("member").join("snap").join("db");
    let mut store =
        Store::open(&db_dir).map_err(|e| DriverError::Store { path: db_dir.clone(), source: e })?;
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
        return Err(DriverError::Mvcc(crate::node::mvcc::store::MvccError::Corrupt(format!(
            "the store holds entries up to {} but the raft log starts after {snapshot_index}",
            store.consistent_index()
        ))));
    }
    let applied = store.consistent_index().min(log.hard_state().commit).max(snapshot_index);
    let config = Config {
        id: options.member_id,
        heartbeat_tick: 1,
        election_tick: options.election_ticks.max(2),
        applied,
        pre_vote: true,
        check_quorum: true,
        // etcd's (raft.go): appends of up to 1 MiB of entries, 512 of them in flight per follower.
        // raft-rs's defaults (one entry per append, 256 in flight) cap what a follower can be sent
        // per round trip at 256 entries, so under load one falls behind the compacted log.
        max_size_per_msg: MAX_SIZE_PER_MSG,
        max_inflight_msgs: MAX_INFLIGHT_MSGS,
        ..Config::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut raw = RawNode::new(&config, log, &logger)?;
    if conf_state.voters == [options.member_id] && conf_state.learners.is_empty() {
        // A single member need not wait an election timeout to lead.
        raw.campaign()?;
    }
    let hub = Arc::new(Hub::new(store.current_revision()));
    let election = options.heartbeat * options.election_ticks as u32;
    let lessor = Arc::new(Lessor::new(election));
    let tokens = Arc::new(match options.jwt.take() {
        Some(keys) => Tokens::new(crate::node::auth::TokenConfig::Jwt(keys)),
        None => Tokens::simple(options.token_ttl),
    });
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(RwLock::new(store));
    let status = Arc::new(RaftStatus::default());
    status.term.store(raw.raft.term, Ordering::Relaxed);
    status.is_learner.store(conf_state.learners.contains(&options.member_id), Ordering::Relaxed);
    if store.read().map_err(|_| poisoned())?.removed().contains(&options.member_id) {
        // It applied its own removal before it last stopped.
        status.mark_removed();
    }
    status.applied.store(applied, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    let mut driver = Driver {
        me: options.member_id,
        status: status.clone(),
        hub: hub.clone(),
        lessor: lessor.clone(),
        tokens: tokens.clone(),
        metrics: metrics.clone(),
        raw,
        store: store.clone(),
        rx,
        heartbeat: options.heartbeat,
        ids: IdGen::new(options.member_id),
        transport: options.transport.clone(),
        request_timeout: options.request_timeout,
        waiting: Vec::new(),
        pending: HashMap::new(),
        reads: Vec::new(),
        read_waiting: HashMap::new(),
        reads_before_commit: Vec::new(),
        snapshot_count: options.snapshot_count.max(1),
        snapshot_index,
        applied,
        membership_changed: true,
        known_peers: options.known_peers.clone(),
        store_dir: db_dir,
    };
    let (sled_ms, index_ms) = {
        let s = store.read().map_err(|_| poisoned())?;
        let (a, b) = s.opening_time();
        (a.as_millis(), b.as_millis())
    };
    driver.refresh_membership();
    eprintln!(
        "etcdeck node: opened the store at raft index {applied} (sled {sled_ms} ms, index {index_ms} ms) and the log in {} ms",
        opening.elapsed().as_millis()
    );
    let thread = std::thread::Builder::new()
        .name("raft-driver".into())
        .spawn(move || driver.run())
        .map_err(DriverError::Spawn)?;
    Ok(Handle {
        tx,
        store,
        hub,
        lessor,
        tokens,
        metrics,
        status,
        member_id: options.member_id,
        max_request_bytes: options.max_request_bytes,
        thread: Arc::new(Mutex::new(Some(thread))),
    })
}

struct Driver {
    status: Arc<RaftStatus>,
    hub: Arc<Hub>,
    lessor: Arc<Lessor>,
    tokens: Arc<Tokens>,
    metrics: Arc<Metrics>,
    raw: RawNode<LogStore>,
    store: Arc<RwLock<Store>>,
    rx: Receiver<Command>,
    heartbeat: Duration,
    /// Proposal and read IDs, unique across the cluster (the member ID is in them).
    ids: IdGen,
    transport: Option<Arc<dyn Transport>>,
    request_timeout: Duration,
    /// Proposals that arrived while no leader was known, with when they arrived.
    waiting: Vec<(Write, Reply<WriteResponse>, Instant)>,
    pending: HashMap<u64, (Reply<WriteResponse>, Instant)>,
    /// ReadIndex requests raft answered: (index, reply), served once applied reaches index.
    reads: Vec<(u64, Reply<u64>)>,
    /// ReadIndex requests raft was asked for, each for every read that was waiting then (one
    /// round of heartbeats serves them all).
    read_waiting: HashMap<u64, Vec<(Reply<u64>, Instant)>>,
    reads_before_commit: Vec<(Reply<u64>, Instant)>,
    snapshot_count: u64,
    /// The log holds entries after this index.
    snapshot_index: u64,
    applied: u64,
    me: u64,
    /// An applied entry changed the membership: peers and roles are to be brought up to date.
    membership_changed: bool,
    known_peers: Vec<(u64, Vec<String>)>,
    /// Where the store lives (for its errors).
    store_dir: std::path::PathBuf,
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

impl Driver {
    fn run(&mut self) {
        self.run_loop();
        // What was applied but is still in the store's batch goes to sled (the raft log has it
        // anyway: a crash here only means applying it again at the next start).
        if let Ok(store) = self.store.read() {
            let _ = store.flush_group();
        }
    }

    fn run_loop(&mut self) {
        let mut next_tick = Instant::now() + self.heartbeat;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Command::Stop) => {
                    self.fail_all("server stopped");
                    return;
                }
                Ok(cmd) => {
                    self.handle(cmd);
                    // Everything already queued joins this Ready: one fdatasync for all of it.
                    while let Ok(cmd) = self.rx.try_recv() {
                        if matches!(cmd, Command::Stop) {
                            self.fail_all("server stopped");
                            return;
                        }
                        self.handle(cmd);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.issue_reads();
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick = Instant::now() + self.heartbeat;
                self.expire_requests();
                if let Err(e) = self.flush_store_if_due() {
                    return self.run_failed(e);
                }
            }
            if let Err(e) = self.prepare_snapshot().and_then(|()| self.on_ready()) {
                return self.run_failed(e);
            }
        }
    }

    /// Writing to disk failed (etcd exits here). This member stops taking part in raft: what it
    /// had not written cannot be vouched for, and nothing more is written. It says so once, raises
    /// its NOSPACE alarm when the disk is full, refuses writes with etcd's error, serves reads
    /// (linearizable ones only as the sole voter, when no other member can have moved on), and
    /// stops at once when told to. Restarted with space, it reads its log back as after a crash.
    fn run_failed(&mut self, e: DriverError) {
        // The store's errors do not know its path.
        let e = match e {
            DriverError::Mvcc(source) => DriverError::Store { path: self.store_dir.clone(), source },
            other => other,
        };
        let no_space = e.is_no_space();
        let why = e.to_string();
        let alarm = if no_space { " (alarm NOSPACE raised)" } else { "" };
        eprintln!(
            "etcdeck node: writing to disk failed: {why}; this member takes no writes{alarm} and serves \
             reads until it is restarted"
        );
        if let Ok(mut failed) = self.status.disk_failed.write() {
            *failed = Some(DiskFailure { why: why.clone(), no_space });
        }
        self.status.leader.store(0, Ordering::Relaxed);
        let refusal = || if no_space { NodeError::NoSpace } else { NodeError::Storage(why.clone()) };
        // Proposed but not answered: they may be in the log and be applied after a restart, so
        // their outcome is unknown, never a failure.
        for (_, (reply, _)) in self.pending.drain() {
            let _ = reply.send(Err(NodeError::Timeout));
        }
        for (_, reply, _) in self.waiting.drain(..) {
            let _ = reply.send(Err(refusal()));
        }
        let alone = self
            .store
            .read()
            .map(|s| s.members().len() == 1 && s.members().contains_key(&self.me))
            .unwrap_or(false);
        let applied = self.applied;
        let read = || if alone { Ok(applied) } else { Err(NodeError::Timeout) };
        let reads: Vec<Reply<u64>> = self
            .reads
            .drain(..)
            .map(|(_, r)| r)
            .chain(self.reads_before_commit.drain(..).map(|(r, _)| r))
            .chain(self.read_waiting.drain().flat_map(|(_, batch)| batch).map(|(r, _)| r))
            .collect();
        for reply in reads {
            let _ = reply.send(read());
        }
        loop {
            match self.rx.recv() {
                Ok(Command::Stop) | Err(_) => return,
                Ok(Command::Propose { reply, .. }) => {
                    let _ = reply.send(Err(refusal()));
                }
                Ok(Command::ReadIndex { reply }) => {
                    let _ = reply.send(read());
                }
                Ok(Command::Progress { reply }) => {
                    let _ = reply.send(None);
                }
                Ok(Command::Step(_) | Command::TransferLeader(_) | Command::SnapshotSent { .. }) => {}
            }
        }
    }

    /// Writes the store's batch of applied entries to sled once it is due, also when no entry
    /// comes to push it out.
    fn flush_store_if_due(&self) -> Result<(), DriverError> {
        let store = self.store.read().map_err(|_| poisoned())?;
        self.flush_if_due(&store)
    }

    /// `store`'s batch to sled if due, timed as etcd's backend commit.
    fn flush_if_due(&self, store: &Store) -> Result<(), DriverError> {
        let started = Instant::now();
        if store.flush_group_if_due(BACKEND_BATCH_INTERVAL, BACKEND_BATCH_LIMIT)? {
            self.metrics.backend_commit.observe(started.elapsed());
        }
        Ok(())
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Propose { write, reply } => {
                if self.raw.raft.leader_id != 0 {
                    self.propose(write, reply, Instant::now());
                } else {
                    self.waiting.push((write, reply, Instant::now()));
                }
            }
            // Issued once everything queued is in (`run`): one ReadIndex round for all of them.
            Command::ReadIndex { reply } => self.reads_before_commit.push((reply, Instant::now())),
            Command::Step(message) => {
                // A message raft cannot take (from an unknown member, say) is dropped.
                let _ = self.raw.step(message);
            }
            Command::TransferLeader(target) => self.raw.transfer_leader(target),
            Command::Progress { reply } => {
                let view = (self.raw.raft.state == StateRole::Leader)
                    .then(|| self.raw.raft.prs().iter().map(|(id, pr)| (*id, pr.matched)).collect());
                let _ = reply.send(view);
            }
            Command::SnapshotSent { to, ok } => {
                let status = if ok { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                self.raw.report_snapshot(to, status);
                self.raw.mut_store().drop_prepared();
            }
            Command::Stop => {}
        }
    }

    /// Fails proposals and reads that waited longer than the request timeout (no leader took them,
    /// or a leader change lost them), with etcd's error.
    fn expire_requests(&mut self) {
        let limit = self.request_timeout;
        let old = |at: &Instant| at.elapsed() >= limit;
        let expired: Vec<u64> =
            self.pending.iter().filter(|(_, (_, at))| old(at)).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some((reply, _)) = self.pending.remove(&id) {
                let _ = reply.send(Err(NodeError::Timeout));
            }
        }
        let (gone, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| old(&w.2));
        self.waiting = keep;
        for (_, reply, _) in gone {
            let _ = reply.send(Err(NodeError::Timeout));
        }
        let (gone, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.reads_before_commit).into_iter().partition(|r| old(&r.1));
        self.reads_before_commit = keep;
        for (reply, _) in gone {
            let _ = reply.send(Err(NodeError::Timeout));
        }
        for batch in self.read_waiting.values_mut() {
            let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(batch).into_iter().partition(|r| old(&r.1));
            *batch = keep;
            for (reply, _) in gone {
                let _ = reply.send(Err(NodeError::Timeout));
            }
        }
        self.read_waiting.retain(|_, batch| !batch.is_empty());
    }

    /// raft-rs drops a ReadIndex until the leader has committed an entry of its own term: hold
    /// reads until then. A follower passes them to the leader it knows.
    fn issue_reads(&mut self) {
        let r = &self.raw.raft;
        let ready = match r.state {
            StateRole::Leader => r.commit_to_current_term(),
            _ => r.leader_id != 0,
        };
        if !ready {
            return;
        }
        if self.reads_before_commit.is_empty() {
            return;
        }
        let id = self.ids.next() as u64;
        self.raw.read_index(id.to_le_bytes().to_vec());
        self.status.read_rounds.fetch_add(1, Ordering::Relaxed);
        self.read_waiting.insert(id, std::mem::take(&mut self.reads_before_commit));
    }

    fn propose(&mut self, write: Write, reply: Reply<WriteResponse>, at: Instant) {
        let id = self.ids.next() as u64;
        let proposed = match write.conf_change(id) {
            Some(cc) => self.raw.propose_conf_change(vec![], cc),
            None => self.raw.propose(vec![], write.encode(id)),
        };
        match proposed {
            Ok(()) => {
                self.pending.insert(id, (reply, at));
            }
            // No leader after all (it just went): wait for the next one.
            Err(raft::Error::ProposalDropped) => self.waiting.push((write, reply, at)),
            Err(e) => {
                let _ = reply.send(Err(NodeError::Storage(format!("raft: {e}"))));
            }
        }
    }

    /// Raft asked for a snapshot for a follower behind the log's start: make one of the store.
    fn prepare_snapshot(&mut self) -> Result<(), DriverError> {
        if self.raw.store().snapshot_wanted().is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let (image, index, conf_state) = {
            let store = self.store.read().map_err(|_| poisoned())?;
            (store.image()?, store.consistent_index(), conf_state_of(&store))
        };
        eprintln!(
            "etcdeck node: made a snapshot of the store at raft index {index} for a member behind the log \
             ({} bytes in {} ms)",
            image.len(),
            started.elapsed().as_millis()
        );
        self.raw.mut_store().prepare_snapshot(image, index, conf_state)?;
        Ok(())
    }

    /// A snapshot from the leader: the store becomes the leader's, and the log starts after it.
    fn apply_snapshot(&mut self, snapshot: &raft::eraftpb::Snapshot) -> Result<(), DriverError> {
        let metadata = snapshot.get_metadata();
        let started = Instant::now();
        let revision = {
            let mut store = self.store.write().map_err(|_| poisoned())?;
            store.restore_raft_image(&snapshot.data, Some((metadata.index, metadata.term)))?;
            store.current_revision()
        };
        self.raw.mut_store().apply_snapshot(metadata)?;
        eprintln!(
            "etcdeck node: applied the leader's snapshot at raft index {} (revision {revision}, {} bytes in {} ms)",
            metadata.index,
            snapshot.data.len(),
            started.elapsed().as_millis()
        );
        self.applied = metadata.index;
        self.snapshot_index = metadata.index;
        // Watchers go on from the store's history: the hub's memory lacks what the snapshot brought.
        self.hub.restored(revision);
        self.membership_changed = true;
        Ok(())
    }

    /// Brings the transport's peers and this member's role up to date with the store's membership.
    fn refresh_membership(&mut self) {
        if !std::mem::take(&mut self.membership_changed) {
            return;
        }
        let Ok(store) = self.store.read() else { return };
        let members: Vec<(u64, &Vec<String>)> = if store.members().is_empty() {
            self.known_peers.iter().map(|(id, urls)| (*id, urls)).collect()
        } else {
            store.members().iter().map(|(id, m)| (*id, &m.peer_urls)).collect()
        };
        let peers: Vec<Peer> = members
            .into_iter()
            .filter(|(id, _)| *id != self.me)
            .filter_map(|(id, urls)| {
                let url = crate::etcd::urls::EtcdUrl::parse(urls.first()?).ok()?;
                Some(Peer { id, addr: url.host_port(), tls: url.scheme == "https" })
            })
            .collect();
        let learner = store.members().get(&self.me).is_some_and(|m| m.is_learner);
        if let Ok(mut removed) = self.status.removed_ids.write() {
            removed.clone_from(store.removed());
        }
        let alone =
            store.members().len() == 1 && store.members().get(&self.me).is_some_and(|m| !m.is_learner);
        drop(store);
        if alone && self.raw.raft.state != StateRole::Leader {
            // Left the only voter (--force-new-cluster): lead at once.
            let _ = self.raw.campaign();
        }
        self.status.is_learner.store(learner, Ordering::Relaxed);
        if let Some(t) = &self.transport {
            t.set_peers(peers);
        }
    }

    fn send(&self, messages: Vec<RaftMessage>) {
        if let (Some(t), false) = (&self.transport, messages.is_empty()) {
            t.send(messages);
        }
    }

    fn on_ready(&mut self) -> Result<(), DriverError> {
        if self.raw.raft.leader_id != 0 && !self.waiting.is_empty() {
            for (write, reply, at) in std::mem::take(&mut self.waiting) {
                self.propose(write, reply, at);
            }
        }
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.status.term.store(self.raw.raft.term, Ordering::Relaxed);
        let leader = self.raw.raft.leader_id;
        if self.status.leader.swap(leader, Ordering::Relaxed) != leader && leader != 0 {
            inc(&self.metrics.leader_changes);
        }
        // What raft lets go before the fdatasync (a leader's appends) goes now.
        self.send(ready.take_messages());
        if *ready.snapshot() != raft::eraftpb::Snapshot::default() {
            let snapshot = ready.snapshot().clone();
            self.apply_snapshot(&snapshot)?;
        }
        for rs in ready.take_read_states() {
            let id = rs.request_ctx.as_slice().try_into().map(u64::from_le_bytes).unwrap_or(0);
            for (reply, _) in self.read_waiting.remove(&id).unwrap_or_default() {
                self.reads.push((rs.index, reply));
            }
        }
        self.apply(ready.take_committed_entries())?;
        if !ready.entries().is_empty() || ready.hs().is_some() {
            let started = Instant::now();
            self.raw.mut_store().persist(ready.entries(), ready.hs())?;
            self.metrics.wal_fsync.observe(started.elapsed());
        }
        // Votes and acknowledgements go only once what they vouch for is durable.
        self.send(ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        self.send(light.take_messages());
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.status.commit.store(self.raw.raft.raft_log.committed, Ordering::Relaxed);
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.refresh_membership();
        let applied = self.applied;
        if applied >= self.snapshot_index + self.snapshot_count {
            let store = self.store.read().map_err(|_| poisoned())?;
            store.make_durable()?;
            // Only what the store holds may leave the log; with peers, etcd's 5000 entries stay
            // for followers a little behind, so they catch up from the log, not a snapshot.
            let catch_up = if store.members().len() > 1 { CATCH_UP_ENTRIES } else { 0 };
            let upto = applied.min(store.consistent_index()).saturating_sub(catch_up);
            drop(store);
            if upto > self.snapshot_index {
                self.raw.mut_store().compact_to(upto)?;
                self.snapshot_index = upto;
            }
        }
        self.status.applied.store(applied, Ordering::Relaxed);
        let (ready_reads, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.reads).into_iter().partition(|(i, _)| *i <= applied);
        self.reads = later;
        for (_, reply) in ready_reads {
            let _ = reply.send(Ok(applied));
        }
        if !self.reads_before_commit.is_empty() {
            self.issue_reads();
            if self.reads_before_commit.is_empty() {
                return self.on_ready();
            }
        }
        Ok(())
    }

    /// Applies committed entries: all of them under one hold of the store's lock and in one sled
    /// batch; then publishes their events and answers their proposers.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), DriverError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut done: Vec<Applied> = Vec::new();
        let store_lock = self.store.clone();
        let mut store = store_lock.write().map_err(|_| poisoned())?;
        store.begin_group();
        for entry in entries {
            let index = entry.index;
            inc(&self.metrics.proposals_committed);
            self.applied = index;
            if entry.get_entry_type() == EntryType::EntryConfChange {
                if index <= store.consistent_index() {
                    // Already in the store, and so in the membership raft started with.
                    continue;
                }
                let (id, result) = self.apply_conf_change(&mut store, &entry.data, index)?;
                inc(&self.metrics.proposals_applied);
                done.push((id, store.current_revision(), Vec::new(), result));
                continue;
            }
            if entry.data.is_empty() {
                // A new leader's empty entry: from now on its clock decides lease expiry, and every
                // lease gets a full TTL (etcd's Promote).
                if self.raw.raft.state == StateRole::Leader {
                    for (id, lease) in store.leases() {
                        self.lessor.start(*id, lease.ttl);
                    }
                }
                // Recorded like any entry, so the store's applied index never trails the log.
                if index > store.consistent_index() {
                    store.write().commit(Some(index))?;
                }
                continue;
            }
            if index <= store.consistent_index() {
                // Already in the store (replayed after a restart).
                continue;
            }
            let (id, result) = match Write::decode(&entry.data) {
                Ok((id, write)) => {
                    let result = apply_write(&mut store, &write, index, &self.lessor, &self.tokens);
                    if matches!(write, Write::UpdateMember(_)) && result.is_ok() {
                        self.membership_changed = true;
                    }
                    (id, result)
                }
                Err(why) => (0, Err(NodeError::Storage(format!("raft entry {index}: {why}")))),
            };
            inc(&self.metrics.proposals_applied);
            if let Err(NodeError::Storage(why)) = &result {
                return Err(DriverError::Mvcc(crate::node::mvcc::store::MvccError::Storage(why.clone())));
            }
            done.push((id, store.current_revision(), store.take_events(), result));
        }
        self.flush_if_due(&store)?;
        drop(store);
        for (id, revision, events, result) in done {
            self.hub.publish(revision, events);
            if let Some((reply, _)) = self.pending.remove(&id) {
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    /// Applies a membership change: checked against the membership it applies to (a change that
    /// is no longer valid is refused, its entry consumed), then made to raft's configuration and
    /// the store's members together.
    fn apply_conf_change(
        &mut self,
        store: &mut Store,
        data: &[u8],
        index: u64,
    ) -> Result<(u64, Result<WriteResponse, NodeError>), DriverError> {
        let decoded = ConfChange::decode(data)
            .map_err(|e| e.to_string())
            .and_then(|cc| Write::decode(&cc.context).map(|(id, w)| (cc, id, w)));
        let (cc, id, write) = match decoded {
            Ok(d) => d,
            Err(why) => {
                return Err(DriverError::Mvcc(crate::node::mvcc::store::MvccError::Corrupt(format!(
                    "raft entry {index}: bad configuration change: {why}"
                ))))
            }
        };
        let refuse = |store: &mut Store, e: NodeError| -> Result<_, DriverError> {
            store.write().commit(Some(index))?;
            Ok((id, Err(e)))
        };
        if let Err(e) = validate_member_change(store, &write) {
            return refuse(store, e);
        }
        let conf_state = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(e) => return refuse(store, NodeError::Storage(format!("raft refused the change: {e}"))),
        };
        let current = store.members().clone();
        let mut txn = store.write();
        match &write {
            Write::AddMember(m) => {
                txn.set_member(m.id, RaftMember { peer_urls: m.peer_ur_ls.clone(), is_learner: m.is_learner })
            }
            Write::PromoteMember(m) => {
                let mut member = current.get(&m.id).cloned().unwrap_or_default();
                member.is_learner = false;
                txn.set_member(m.id, member);
            }
            Write::RemoveMember(m) => txn.remove_member(m.id),
            _ => {}
        }
        txn.commit(Some(index))?;
        self.raw.mut_store().set_conf_state(conf_state);
        self.membership_changed = true;
        match &write {
            Write::RemoveMember(m) if m.id == self.me => {
                eprintln!("etcdeck node: this member ({:x}) was removed from the cluster", self.me);
                self.status.mark_removed();
                if self.raw.raft.state == StateRole::Leader {
                    // A leader without itself in the membership must not go on leading (raft-rs
                    // would look for its own progress); the others elect a new one.
                    let term = self.raw.raft.term;
                    self.raw.raft.become_follower(term, raft::INVALID_ID);
                }
            }
            Write::AddMember(m) => eprintln!(
                "etcdeck node: added {} {:x} {:?} to the cluster",
                if m.is_learner { "learner" } else { "member" },
                m.id,
                m.peer_ur_ls
            ),
            Write::PromoteMember(m) => {
                eprintln!("etcdeck node: promoted learner {:x} to voting member", m.id)
            }
            Write::RemoveMember(m) => eprintln!("etcdeck node: removed member {:x} from the cluster", m.id),
            _ => {}
        }
        Ok((id, Ok(WriteResponse::MembershipChanged)))
    }

    fn fail_all(&mut self, why: &str) {
        self.status.leader.store(0, Ordering::Relaxed);
        for (_, (reply, _)) in self.pending.drain() {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (_, reply, _) in self.waiting.drain(..) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (_, reply) in self.reads.drain(..) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (reply, _) in self.reads_before_commit.drain(..) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (reply, _) in self.read_waiting.drain().flat_map(|(_, batch)| batch) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
    }
}

/// An applied entry: its proposal, the revision after it, its events and its answer.
type Applied = (u64, i64, Vec<crate::node::mvcc::store::Event>, Result<WriteResponse, NodeError>);

fn poisoned() -> DriverError {
    DriverError::Mvcc(crate::node::mvcc::store::MvccError::Storage("store lock poisoned".into()))
}

/// Applies one committed write. Every outcome, refusals included, records `index` in the store, so
/// a replay after a crash skips the entry.
fn apply_write(
    store: &mut Store,
    write: &Write,
    index: u64,
    lessor: &Lessor,
    tokens: &Tokens,
) -> Result<WriteResponse, NodeError> {
    let result = apply_write_once(store, write, index, lessor, tokens);
    if matches!(&result, Err(e) if !matches!(e, NodeError::Storage(_))) && store.consistent_index() < index {
        // A refusal found before anything was written (an unknown lease, a compacted revision in a
        // txn, ...) still consumes its entry.
        store.write().commit(Some(index))?;
    }
    result
}

fn apply_write_once(
    store: &mut Store,
    write: &Write,
    index: u64,
    lessor: &Lessor,
    tokens: &Tokens,
) -> Result<WriteResponse, NodeError> {
    let at = Some(index);
    let refuse = |store: &mut Store, e: NodeError| -> Result<WriteResponse, NodeError> {
        store.write().commit(at)?;
        Err(e)
    };
    if write.adds_data() && store.alarms().iter().any(|(_, a)| *a == ALARM_NOSPACE) {
        return refuse(store, NodeError::NoSpace);
    }
    match write {
        Write::As(caller, inner) => {
            if let Err(e) = check_permissions(store, caller, inner) {
                return refuse(store, e);
            }
            apply_write_once(store, inner, index, lessor, tokens)
        }
        Write::Auth(w) => {
            let mut auth = store.auth().clone();
            match auth.apply(w, index, tokens) {
                Ok(outcome) => {
                    let changed = auth != *store.auth();
                    let mut txn = store.write();
                    if changed {
                        txn.set_auth(auth);
                    }
                    let revision = txn.commit(at)?;
                    Ok(WriteResponse::Auth { outcome, revision })
                }
                Err(e) => refuse(store, e),
            }
        }
        Write::Put(r) => {
            let known = store.leases().contains_key(&r.lease);
            apply::apply_put(store, r, &|_: i64| known, at).map(WriteResponse::Put)
        }
        Write::Delete(r) => apply::apply_delete(store, r, at).map(WriteResponse::Delete),
        Write::Txn(r) => {
            let known: std::collections::BTreeSet<i64> = store.leases().keys().copied().collect();
            apply::apply_txn(store, r, &|id: i64| known.contains(&id), at).map(WriteResponse::Txn)
        }
        Write::LeaseGrant(r) => {
            if store.leases().contains_key(&r.id) {
                return refuse(store, NodeError::LeaseExists);
            }
            if r.ttl > MAX_LEASE_TTL {
                return refuse(store, NodeError::LeaseTtlTooLarge);
            }
            let ttl = lessor.effective_ttl(r.ttl);
            let mut txn = store.write();
            txn.grant(r.id, ttl);
            let revision = txn.commit(at)?;
            lessor.start(r.id, ttl);
            Ok(WriteResponse::LeaseGrant(PbLeaseGrantResponse {
                header: header(revision),
                id: r.id,
                ttl,
                error: String::new(),
            }))
        }
        Write::LeaseRevoke(r) => {
            let mut txn = store.write();
            let found = txn.revoke(r.id)?;
            let revision = txn.commit(at)?;
            lessor.forget(r.id);
            if !found {
                return Err(NodeError::LeaseNotFound);
            }
            Ok(WriteResponse::LeaseRevoke(PbLeaseRevokeResponse { header: header(revision) }))
        }
        Write::Alarm(r) => {
            let member = |m: u64, alarm: i32| PbAlarmMember { member_id: m, alarm };
            let mut alarms = Vec::new();
            let mut txn = store.write();
            match r.action {
                ALARM_GET => {
                    for (m, a) in txn.alarms() {
                        if r.alarm == ALARM_NONE || r.alarm == a {
                            alarms.push(member(m, a));
                        }
                    }
                }
                ALARM_ACTIVATE if r.alarm != ALARM_NONE => {
                    txn.set_alarm(r.member_id, r.alarm, true);
                    alarms.push(member(r.member_id, r.alarm));
                }
                ALARM_DEACTIVATE if txn.alarms().contains(&(r.member_id, r.alarm)) => {
                    txn.set_alarm(r.member_id, r.alarm, false);
                    alarms.push(member(r.member_id, r.alarm));
                }
                _ => {}
            }
            txn.commit(at)?;
            Ok(WriteResponse::Alarm(PbAlarmResponse { header: None, alarms }))
        }
        Write::Publish(m) if !store.members().is_empty() && !store.members().contains_key(&m.id) => {
            // etcd skips the attributes of a member that is gone.
            refuse(store, NodeError::MemberNotFound)
        }
        Write::UpdateMember(m) => {
            if let Err(e) = validate_member_change(store, write) {
                return refuse(store, e);
            }
            let learner = store.members().get(&m.id).is_some_and(|m| m.is_learner);
            let mut txn = store.write();
            txn.set_member(m.id, RaftMember { peer_urls: m.peer_ur_ls.clone(), is_learner: learner });
            txn.commit(at)?;
            Ok(WriteResponse::MembershipChanged)
        }
        Write::AddMember(_) | Write::RemoveMember(_) | Write::PromoteMember(_) => {
            // Only ever proposed as configuration changes.
            refuse(store, NodeError::Storage("a membership change in an ordinary entry".into()))
        }
        Write::Publish(m) => {
            let mut txn = store.write();
            txn.set_attributes(m.id, &m.name, &m.client_ur_ls);
            txn.commit(at)?;
            Ok(WriteResponse::Published)
        }
        Write::Compact(r) => {
            // A failed compaction still consumes its entry: record the index.
            let result = store.compact(r.revision).map_err(NodeError::from);
            store.write().commit(at)?;
            result?;
            Ok(WriteResponse::Compact(PbCompactionResponse { header: header(store.current_revision()) }))
        }
    }
}

/// etcd's checks when it applies a client's write (its authApplierV3): the keys a put, a delete
/// or a transaction touches (nested transactions included), the keys attached to a lease a put
/// uses or a revoke ends, and the root role for auth changes.
fn check_permissions(store: &Store, caller: &Caller, write: &Write) -> Result<(), NodeError> {
    let auth = store.auth();
    if !auth.enabled {
        return Ok(());
    }
    let who = Some(caller);
    let lease_keys = |lease: i64| -> Result<(), NodeError> {
        if auth.admin_permitted(who).is_ok() {
            return Ok(());
        }
        for key in store.leases().get(&lease).map(|l| &l.keys).into_iter().flatten() {
            auth.permitted(who, key, &[], Op::Write)?;
        }
        Ok(())
    };
    fn txn(
        auth: &crate::node::auth::AuthState,
        who: Option<&Caller>,
        t: &PbTxnRequest,
    ) -> Result<(), NodeError> {
        for c in &t.compare {
            auth.permitted(who, &c.key, &c.range_end, Op::Read)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match &op.request {
                Some(PbTxnOpRequest::RequestRange(r)) => {
                    auth.permitted(who, &r.key, &r.range_end, Op::Read)?
                }
                Some(PbTxnOpRequest::RequestPut(p)) => auth.permitted(who, &p.key, &[], Op::Write)?,
                Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                    if d.prev_kv {
                        auth.permitted(who, &d.key, &d.range_end, Op::Read)?;
                    }
                    auth.permitted(who, &d.key, &d.range_end, Op::Write)?;
                }
                Some(PbTxnOpRequest::RequestTxn(inner)) => txn(auth, who, inner)?,
                None => {}
            }
        }
        Ok(())
    }
    match write {
        Write::Put(p) => {
            auth.permitted(who, &p.key, &[], Op::Write)?;
            lease_keys(p.lease)?;
            if p.prev_kv {
                auth.permitted(who, &p.key, &[], Op::Read)?;
            }
            Ok(())
        }
        Write::Delete(d) => {
            auth.permitted(who, &d.key, &d.range_end, Op::Write)?;
            if d.prev_kv {
                auth.permitted(who, &d.key, &d.range_end, Op::Read)?;
            }
            Ok(())
        }
        Write::Txn(t) => txn(auth, who, t),
        Write::LeaseRevoke(r) => lease_keys(r.id),
        Write::Auth(w) if w.needs_admin() => auth.admin_permitted(who),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbRangeRequest;

    fn options(dir: &std::path::Path) -> Options {
        Options { heartbeat: Duration::from_millis(10), ..Options::new(1, dir) }
    }

    fn put(key: &str, value: &str) -> Write {
        Write::Put(PbPutRequest { key: key.into(), value: value.into(), ..PbPutRequest::default() })
    }

    fn get(h: &Handle, key: &str) -> Option<Vec<u8>> {
        let store = h.store.read().unwrap();
        let r = apply::apply_range(&store, &PbRangeRequest { key: key.into(), ..PbRangeRequest::default() })
            .unwrap();
        r.kvs.into_iter().next().map(|kv| kv.value)
    }

    #[tokio::test]
    async fn writes_are_applied_in_order_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = start(dir.path(), options(dir.path())).unwrap();
            let mut revs = Vec::new();
            for i in 0..5 {
                match h.write(put("k", &format!("v{i}"))).await.unwrap() {
                    WriteResponse::Put(r) => revs.push(r.header.unwrap().revision),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(revs, vec![2, 3, 4, 5, 6]);
            let applied = h.read_index().await.unwrap();
            assert!(applied >= 6, "a linearizable read waits for the writes: {applied}");
            assert_eq!(get(&h, "k"), Some(b"v4".to_vec()));
            let err = h
                .write(Write::Put(PbPutRequest {
                    lease: 5,
                    ..PbPutRequest { key: b"x".to_vec(), ..PbPutRequest::default() }
                }))
                .await;
            assert_eq!(err, Err(NodeError::LeaseNotFound));
            h.store.read().unwrap().flush().unwrap();
            h.stop();
        }
        let h = start(dir.path(), options(dir.path())).unwrap();
        assert_eq!(get(&h, "k"), Some(b"v4".to_vec()));
        match h.write(put("k", "after")).await.unwrap() {
            WriteResponse::Put(r) => assert_eq!(r.header.unwrap().revision, 7, "no entry applied twice"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_full_disk_under_the_log_refuses_writes_serves_reads_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = Vec::new();
        {
            let h = start(dir.path(), Options { log_space: Some(20_000), ..options(dir.path()) }).unwrap();
            let value = "v".repeat(1000);
            let failed = loop {
                let key = format!("k{}", acked.len());
                match h.write(put(&key, &value)).await {
                    Ok(_) => acked.push(key),
                    Err(e) => break e,
                }
                assert!(acked.len() < 100, "the disk never filled");
            };
            assert!(acked.len() > 5, "{} acknowledged", acked.len());
            // The write in flight when the disk filled may be in the log: its outcome is unknown.
            assert_eq!(failed, NodeError::Timeout);
            let failure = h.status.disk_failure().expect("recorded");
            assert!(failure.no_space && failure.why.contains("os error 28"), "{failure:?}");
            assert_eq!(h.write(put("later", "v")).await, Err(NodeError::NoSpace));
            // Reads go on; linearizable ones too, as this member is the only voter.
            assert_eq!(get(&h, "k0"), Some(value.into_bytes()));
            assert!(h.read_index().await.is_ok());
            let stopping = Instant::now();
            h.stop();
            assert!(stopping.elapsed() < Duration::from_secs(1), "stopped in {:?}", stopping.elapsed());
        }
        // With space again (the torn end of the failed write is cut), every acknowledged write is there.
        let h = start(dir.path(), options(dir.path())).unwrap();
        for key in &acked {
            assert!(get(&h, key).is_some(), "{key} lost");
        }
        assert!(h.write(put("later", "v")).await.is_ok());
    }

    #[tokio::test]
    async fn concurrent_writes_share_batches() {
        let dir = tempfile::tempdir().unwrap();
        let h = start(dir.path(), options(dir.path())).unwrap();
        let writes = (0..50).map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.write(put(&format!("k{i}"), "v")).await })
        });
        for w in futures::future::join_all(writes).await {
            assert!(matches!(w.unwrap(), Ok(WriteResponse::Put(_))));
        }
        assert_eq!(h.store.read().unwrap().current_revision(), 51);
    }

    #[tokio::test]
    async fn snapshots_drop_applied_log_entries_and_a_restart_still_has_everything() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || Options { snapshot_count: 10, ..options(dir.path()) };
        {
            let h = start(dir.path(), opts()).unwrap();
            for i in 0..50 {
                h.write(put(&format!("k{i}"), "v")).await.unwrap();
            }
            h.stop();
        }
        let log = LogStore::open(&dir.path().join("member").join("wal"), ConfState::default()).unwrap();
        assert!(log.first_index_before() >= 40, "snapshot at {}", log.first_index_before());
        let h = start(dir.path(), opts()).unwrap();
        assert_eq!(get(&h, "k0"), Some(b"v".to_vec()));
        assert_eq!(get(&h, "k49"), Some(b"v".to_vec()));
        match h.write(put("after", "v")).await.unwrap() {
            WriteResponse::Put(r) => assert_eq!(r.header.unwrap().revision, 52),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn refused_writes_and_leader_entries_count_as_applied_so_a_snapshot_never_outruns_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || Options { snapshot_count: 1, ..options(dir.path()) };
        {
            let h = start(dir.path(), opts()).unwrap();
            h.write(put("a", "1")).await.unwrap();
            let refused = Write::Put(PbPutRequest {
                lease: 99,
                ..PbPutRequest { key: b"b".to_vec(), ..Default::default() }
            });
            assert_eq!(h.write(refused).await, Err(NodeError::LeaseNotFound));
            h.stop();
        }
        for _ in 0..2 {
            let h = start(dir.path(), opts()).expect("restarts after a snapshot taken at a refused entry");
            assert_eq!(get(&h, "a"), Some(b"1".to_vec()));
            h.write(put("c", "1")).await.unwrap();
            h.stop();
        }
    }

    #[tokio::test]
    async fn concurrent_linearizable_reads_share_read_index_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let h = start(dir.path(), options(dir.path())).unwrap();
        h.write(put("k", "v")).await.unwrap();
        let before = h.status.read_rounds.load(Ordering::Relaxed);
        let reads = futures::future::join_all((0..200).map(|_| h.read_index())).await;
        assert!(reads.iter().all(|r| matches!(r, Ok(i) if *i >= 2)), "{reads:?}");
        let rounds = h.status.read_rounds.load(Ordering::Relaxed) - before;
        assert!(rounds <= 50, "200 reads took {rounds} ReadIndex rounds");
    }

    #[test]
    fn force_new_cluster_is_ignored_without_a_log_and_removes_the_others_with_one() {
        let dir = tempfile::tempdir().unwrap();
        let member = |urls: &str| RaftMember { peer_urls: vec![urls.to_string()], is_learner: false };
        let three = vec![(1, member("http://a:1")), (2, member("http://b:1")), (3, member("http://c:1"))];
        let opts = |force| Options {
            bootstrap: three.clone(),
            force_new_cluster: force,
            election_ticks: 2,
            ..options(dir.path())
        };
        {
            // A fresh data dir: nothing to recover, so the flag changes nothing (as in etcd).
            let h = start(dir.path(), opts(true)).unwrap();
            let store = h.store.read().unwrap();
            assert_eq!(store.members().len(), 3);
            assert!(store.removed().is_empty());
            drop(store);
            h.stop();
        }
        // With a log: the other two are removed and this member leads alone.
        let h = start(dir.path(), opts(true)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while h.leader() != 1 {
            assert!(Instant::now() < deadline, "never led alone");
            std::thread::sleep(Duration::from_millis(10));
        }
        let store = h.store.read().unwrap();
        assert_eq!(store.members().keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(store.removed().iter().copied().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn entries_round_trip() {
        let w = put("k", "v");
        assert_eq!(Write::decode(&w.encode(77)), Ok((77, w)));
        assert!(Write::decode(&[99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Write::decode(&[1]).is_err());
        let auth = Write::Auth(AuthWrite::UserAdd { name: "u".into(), hash: Some("$2b$04$x".into()) });
        assert_eq!(Write::decode(&auth.encode(5)), Ok((5, auth.clone())));
        let caller = Caller { user: "ü".into(), revision: 9 };
        let wrapped = Write::As(caller.clone(), Box::new(put("k", "v")));
        assert_eq!(Write::decode(&wrapped.encode(6)), Ok((6, wrapped)));
        let anonymous = Write::As(Caller::default(), Box::new(auth));
        assert_eq!(Write::decode(&anonymous.encode(7)), Ok((7, anonymous)));
        // Cut short anywhere, or a caller inside a caller: refused, never a panic.
        let bytes = Write::As(caller.clone(), Box::new(put("k", "v"))).encode(1);
        for len in 9..bytes.len() - 2 {
            let _ = Write::decode(&bytes[..len]);
        }
        // A name longer than 64 KiB, multi-byte: whole, never cut.
        let long = Caller { user: "é".repeat(40_000), revision: 1 };
        let wrapped = Write::As(long, Box::new(put("k", "v")));
        assert_eq!(Write::decode(&wrapped.encode(8)), Ok((8, wrapped)));
        let nested = Write::As(caller.clone(), Box::new(Write::As(caller, Box::new(put("k", "v")))));
        assert!(Write::decode(&nested.encode(1)).is_err());
    }

    #[tokio::test]
    async fn writes_are_checked_against_the_auth_store_when_applied() {
        let dir = tempfile::tempdir().unwrap();
        let h = start(dir.path(), options(dir.path())).unwrap();
        let admin = |w: AuthWrite| Write::Auth(w);
        for w in [
            AuthWrite::UserAdd { name: "root".into(), hash: Some("h".into()) },
            AuthWrite::UserGrantRole { user: "root".into(), role: "root".into() },
            AuthWrite::UserAdd { name: "u".into(), hash: Some("h".into()) },
            AuthWrite::RoleAdd { name: "r".into() },
            AuthWrite::RoleGrantPermission {
                name: "r".into(),
                perm: crate::node::auth::Perm {
                    kind: crate::node::auth::PermKind::ReadWrite,
                    key: b"p/".to_vec(),
                    range_end: b"p0".to_vec(),
                },
            },
            AuthWrite::UserGrantRole { user: "u".into(), role: "r".into() },
        ] {
            h.write(admin(w)).await.unwrap();
        }
        // Before auth is enabled anyone writes, even without a user.
        h.write(Write::As(Caller::default(), Box::new(put("x", "1")))).await.unwrap();
        h.write(admin(AuthWrite::Enable)).await.unwrap();
        let rev = h.read_store().unwrap().auth().revision;
        let u = Caller { user: "u".into(), revision: rev };
        let as_u = |w: Write| Write::As(u.clone(), Box::new(w));
        h.write(as_u(put("p/1", "v"))).await.unwrap();
        assert_eq!(h.write(as_u(put("x", "2"))).await, Err(NodeError::PermissionDenied));
        assert_eq!(
            h.write(Write::As(Caller::default(), Box::new(put("p/1", "v")))).await,
            Err(NodeError::UserEmpty)
        );
        let add = admin(AuthWrite::RoleAdd { name: "r2".into() });
        assert_eq!(h.write(as_u(add)).await, Err(NodeError::PermissionDenied));
        // A change to the auth store between the check and the apply: the old revision is refused.
        let root = Caller { user: "root".into(), revision: rev };
        h.write(Write::As(root, Box::new(admin(AuthWrite::RoleAdd { name: "r3".into() })))).await.unwrap();
        assert_eq!(h.write(as_u(put("p/2", "v"))).await, Err(NodeError::AuthOldRevision));
        assert_eq!(get(&h, "x"), Some(b"1".to_vec()), "refused writes change nothing");
        // The auth store survives a restart.
        h.store.read().unwrap().flush().unwrap();
        h.stop();
        drop(h);
        let h = start(dir.path(), options(dir.path())).unwrap();
        let store = h.read_store().unwrap();
        assert!(store.auth().enabled);
        assert!(store.auth().roles.contains_key("r3"));
        drop(store);
        h.stop();
    }
}
