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

use prost_011::Message as _;
use raft::eraftpb::{ConfChange, Entry, EntryType, Message as RaftMessage, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::oneshot;

use crate::node::auth::Tokens;
use crate::node::error::NodeError;
use crate::node::idutil::IdGen;
use crate::node::lease::Lessor;
use crate::node::metrics::{inc, Metrics};
use crate::node::mvcc::store::{RaftMember, Store, COMPACTION_PAUSE};
use crate::node::raft::storage::LogStore;
use crate::node::raft::transport::{Peer, Transport};
use crate::node::watch::Hub;

use super::apply::apply_write;
use super::bootstrap::{open, Opened};
use super::membership::validate_member_change;
use super::options::{DriverError, Options};
use super::write::{Write, WriteResponse};

/// Applied entries are written to the store's database together, at most this long after the first
/// of them (etcd's --backend-batch-interval default) or once this many sled writes wait. etcd's
/// limit is 10 000; sled's batch runs on the raft thread and takes about 1 ms per 1 000 writes
/// here, so a 10 000-write batch held up every request for up to 30 ms (txn-put p99).
const BACKEND_BATCH_INTERVAL: Duration = Duration::from_millis(100);
const BACKEND_BATCH_LIMIT: usize = 1_000;
/// And at most this many bytes of keys and values: sled writes a batch on the raft thread, and
/// 100 ms of 32 KiB values (12 MB) took it 60 ms: the p99 of every request.
const BACKEND_BATCH_BYTES: u64 = 4 << 20;

/// etcd's maxSizePerMsg and maxInflightMsgs (4096 / 8).
const MAX_SIZE_PER_MSG: u64 = 1 << 20;
const MAX_INFLIGHT_MSGS: usize = 512;

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
    /// The peer's address refused a connection (see `Transport`'s `peer_refused`).
    PeerRefused(u64),
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
    /// Woken when the v2 store changed (a v2 write applied, or a snapshot replaced the store), for
    /// the v2 API's watches.
    pub v2_changed: tokio::sync::Notify,
    /// The v2 API's watches open now.
    pub v2_watchers: AtomicU64,
    /// What /v2/stats/self and /v2/stats/leader report.
    pub v2_stats: crate::node::v2stats::Stats,
    /// Raft snapshots this member sends and receives, between the driver and the transport.
    pub snapshots: Arc<crate::node::raft::snapshots::Shelf>,
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
    /// The store's bytes not yet written to sled (`Store::pending_gauge`), read without its lock.
    pub store_pending: Arc<std::sync::atomic::AtomicU64>,
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

    /// --max-request-bytes.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
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

    /// Says that peer `id`'s address refused a connection: its process is gone.
    pub fn peer_refused(&self, id: u64) {
        let _ = self.tx.send(Command::PeerRefused(id));
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

/// Opens the log and the store where `options` says and starts the driver thread.
pub fn start(mut options: Options) -> Result<Handle, DriverError> {
    let opening = Instant::now();
    let Opened { log, store, db_dir, conf_state, snapshot_index } = open(&options)?;
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
        election,
        ids: IdGen::new(options.member_id),
        transport: options.transport.clone(),
        request_timeout: options.request_timeout,
        waiting: Vec::new(),
        pending: HashMap::new(),
        compaction_due: None,
        reads: Vec::new(),
        read_waiting: HashMap::new(),
        reads_before_commit: Vec::new(),
        early: None,
        snapshot_count: options.snapshot_count.max(1),
        snapshot_index,
        applied,
        membership_changed: true,
        known_peers: options.known_peers.clone(),
        store_dir: db_dir,
    };
    let (sled_ms, index_ms, store_pending) = {
        let s = store.read().map_err(|_| poisoned())?;
        let (a, b) = s.opening_time();
        (a.as_millis(), b.as_millis(), s.pending_gauge())
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
        store_pending,
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
    /// The election timeout: a heartbeat unanswered for as long counts as failed in the v2 stats.
    election: Duration,
    /// Proposal and read IDs, unique across the cluster (the member ID is in them).
    ids: IdGen,
    transport: Option<Arc<dyn Transport>>,
    request_timeout: Duration,
    /// Proposals that arrived while no leader was known, with when they arrived.
    waiting: Vec<(Write, Reply<WriteResponse>, Instant)>,
    pending: HashMap<u64, (Reply<WriteResponse>, Instant)>,
    /// When a compaction under way may take its next step (None while none can).
    compaction_due: Option<Instant>,
    /// ReadIndex requests raft answered: (index, reply), served once applied reaches index.
    reads: Vec<(u64, Reply<u64>)>,
    /// ReadIndex requests raft was asked for, each for every read that was waiting then (one
    /// round of heartbeats serves them all).
    read_waiting: HashMap<u64, Vec<(Reply<u64>, Instant)>>,
    reads_before_commit: Vec<(Reply<u64>, Instant)>,
    /// A campaign due early (`leader_refused`): the gone leader, and when.
    early: Option<(u64, Instant)>,
    snapshot_count: u64,
    /// The applied index of the last snapshot (etcd's snapi): the next comes --snapshot-count
    /// entries later. At open, where the log starts.
    snapshot_index: u64,
    applied: u64,
    me: u64,
    /// An applied entry changed the membership: peers and roles are to be brought up to date.
    membership_changed: bool,
    known_peers: Vec<(u64, Vec<String>)>,
    /// Where the store lives (for its errors).
    store_dir: std::path::PathBuf,
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
            let due = self.compaction_due.map_or(next_tick, |at| at.min(next_tick));
            let wait = due.saturating_duration_since(Instant::now());
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
                self.campaign_early();
                self.expire_requests();
                if let Err(e) = self.flush_store_if_due() {
                    return self.run_failed(e);
                }
            }
            if let Err(e) =
                self.prepare_snapshot().and_then(|()| self.on_ready()).and_then(|()| self.compaction_step())
            {
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
                Ok(
                    Command::Step(_)
                    | Command::TransferLeader(_)
                    | Command::SnapshotSent { .. }
                    | Command::PeerRefused(_),
                ) => {}
            }
        }
    }

    /// Writes the store's batch of applied entries to sled once it is due, also when no entry
    /// comes to push it out.
    fn flush_store_if_due(&self) -> Result<(), DriverError> {
        let store = self.store.read().map_err(|_| poisoned())?;
        self.flush_if_due(&store)
    }

    /// The next step of a compaction's removal of records, at most every `COMPACTION_PAUSE` (as
    /// etcd pauses between its batches, so writes and heartbeats go on meanwhile).
    fn compaction_step(&mut self) -> Result<(), DriverError> {
        if self.compaction_due.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        if !self.store.read().map_err(|_| poisoned())?.compaction_ready() {
            self.compaction_due = None;
            return Ok(());
        }
        let finished = self.store.write().map_err(|_| poisoned())?.compaction_step()?;
        self.compaction_due = Some(Instant::now() + COMPACTION_PAUSE);
        if let Some((rev, took)) = finished {
            eprintln!("etcdeck node: finished scheduled compaction at {rev} (took {took:?})");
        }
        Ok(())
    }

    /// `store`'s batch to sled if due, timed as etcd's backend commit.
    fn flush_if_due(&self, store: &Store) -> Result<(), DriverError> {
        let started = Instant::now();
        if store.flush_group_if_due(BACKEND_BATCH_INTERVAL, BACKEND_BATCH_LIMIT, BACKEND_BATCH_BYTES)? {
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
                let stats = &self.status.v2_stats;
                match message.get_msg_type() {
                    MessageType::MsgAppend => stats.append_received(message.from, message.encoded_len()),
                    MessageType::MsgHeartbeatResponse => stats.heartbeat_answered(message.from),
                    _ => {}
                }
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
                self.status.snapshots.withdraw();
            }
            Command::PeerRefused(id) => self.leader_refused(id),
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
        let ids: Vec<u64> = store.members().keys().copied().collect();
        self.status.v2_stats.set_followers(self.me, &ids);
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
        let stats = &self.status.v2_stats;
        for m in &messages {
            match m.get_msg_type() {
                MessageType::MsgAppend => stats.append_sent(self.me, m.encoded_len()),
                MessageType::MsgHeartbeat => stats.heartbeat_sent(m.to, self.election),
                _ => {}
            }
        }
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
            if leader == self.me {
                self.status.v2_stats.became_leader(self.me);
            }
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
        // A staged snapshot raft did not take (its entries were here already) is let go.
        self.status.snapshots.drop_received_upto(self.raw.raft.raft_log.committed);
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.refresh_membership();
        let applied = self.applied;
        if applied > self.snapshot_index + self.snapshot_count {
            self.snapshot()?;
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
        let mut v2_changed = false;
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
                    v2_changed |= matches!(&result, Ok(WriteResponse::V2(Ok(events))) if !events.is_empty());
                    if matches!(write, Write::UpdateMember(_)) && result.is_ok() {
                        self.membership_changed = true;
                    }
                    (id, result)
                }
                Err(why) => (0, Err(NodeError::Storage(format!("raft entry {index}: {why}")))),
            };
            inc(&self.metrics.proposals_applied);
            if let Err(NodeError::Storage(why)) = &result {
                return Err(DriverError::Mvcc(crate::node::mvcc::error::MvccError::Storage(why.clone())));
            }
            done.push((id, store.current_revision(), store.take_events(), result));
        }
        self.flush_if_due(&store)?;
        drop(store);
        if v2_changed {
            self.status.v2_changed.notify_waiters();
        }
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
                return Err(DriverError::Mvcc(crate::node::mvcc::error::MvccError::Corrupt(format!(
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
    DriverError::Mvcc(crate::node::mvcc::error::MvccError::Storage("store lock poisoned".into()))
}

#[path = "driver_snapshot.rs"]
mod snapshot;

#[path = "driver_failover.rs"]
mod failover;

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
