//! The raft driver: the only owner of the RawNode. It runs on a thread of its own (fdatasync blocks),
//! takes proposals and read requests from a channel, ticks raft, and handles each Ready in raft-rs's
//! order: apply what is committed, persist new entries and the hard state (one fdatasync), advance,
//! apply what that committed, answer reads whose index is applied. A write is answered only after
//! its entry is durable and applied.
//!
//! This is the single-member path (issue 3); peers, their messages and snapshots arrive with node II.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbPutRequest,
    PbPutResponse, PbResponseHeader, PbTxnRequest, PbTxnResponse,
};
use prost::Message;
use raft::eraftpb::{ConfState, Entry};
use raft::{Config, RawNode, StateRole};
use tokio::sync::oneshot;

use crate::node::error::NodeError;
use crate::node::mvcc::apply::{self, Leases};
use crate::node::mvcc::store::Store;
use crate::node::raft::storage::{LogStore, LogStoreError};

/// A request that changes the store, carried in a raft entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put(PbPutRequest),
    Delete(PbDeleteRequest),
    Txn(PbTxnRequest),
    Compact(PbCompactionRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteResponse {
    Put(PbPutResponse),
    Delete(PbDeleteResponse),
    Txn(PbTxnResponse),
    Compact(PbCompactionResponse),
}

const PUT: u8 = 1;
const DELETE: u8 = 2;
const TXN: u8 = 3;
const COMPACT: u8 = 4;

impl Write {
    /// `[kind][proposal id: u64 LE][the request's protobuf]`.
    fn encode(&self, id: u64) -> Vec<u8> {
        let (kind, body) = match self {
            Write::Put(r) => (PUT, r.encode_to_vec()),
            Write::Delete(r) => (DELETE, r.encode_to_vec()),
            Write::Txn(r) => (TXN, r.encode_to_vec()),
            Write::Compact(r) => (COMPACT, r.encode_to_vec()),
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
        let err = |e: prost::DecodeError| e.to_string();
        let write = match data[0] {
            PUT => Write::Put(PbPutRequest::decode(body).map_err(err)?),
            DELETE => Write::Delete(PbDeleteRequest::decode(body).map_err(err)?),
            TXN => Write::Txn(PbTxnRequest::decode(body).map_err(err)?),
            COMPACT => Write::Compact(PbCompactionRequest::decode(body).map_err(err)?),
            kind => return Err(format!("unknown entry kind {kind}")),
        };
        Ok((id, write))
    }
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

enum Command {
    Propose {
        write: Write,
        reply: Reply<WriteResponse>,
    },
    /// Answered with the applied index once a linearizable read may be served.
    ReadIndex {
        reply: Reply<u64>,
    },
    Stop,
}

/// The handle services use: cheap to clone, never blocks the caller.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Command>,
    pub store: Arc<RwLock<Store>>,
    /// The raft term, for response headers.
    term: Arc<AtomicU64>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Handle {
    /// Proposes a write and waits until it is durable and applied.
    pub async fn write(&self, write: Write) -> Result<WriteResponse, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Propose { write, reply }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub fn raft_term(&self) -> u64 {
        self.term.load(Ordering::Relaxed)
    }

    /// Stops the driver and waits for its thread, so the data dir is free (its files closed).
    pub fn stop(&self) {
        let _ = self.tx.send(Command::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Waits until the store has applied everything committed when the call was made (ReadIndex).
    pub async fn read_index(&self) -> Result<u64, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::ReadIndex { reply }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> NodeError {
    NodeError::Storage("server stopped".into())
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Mvcc(#[from] crate::node::mvcc::store::MvccError),
    #[error("cannot start the raft thread: {0}")]
    Spawn(std::io::Error),
}

pub struct Options {
    pub member_id: u64,
    pub heartbeat: Duration,
    /// In heartbeats, as raft counts it.
    pub election_ticks: usize,
}

/// Opens the log and the store in `data_dir` and starts the driver thread.
pub fn start(data_dir: &std::path::Path, options: Options) -> Result<Handle, DriverError> {
    let store = Store::open(&data_dir.join("member").join("snap").join("db"))?;
    let log = LogStore::open(
        &data_dir.join("member").join("wal"),
        ConfState { voters: vec![options.member_id], ..ConfState::default() },
    )?;
    // The recorded commit may lag what the store applied (it is written without a sync): raft
    // restarts from the lower of the two, and entries the store already holds are skipped.
    let applied = store.consistent_index().min(log.hard_state().commit);
    let config = Config {
        id: options.member_id,
        heartbeat_tick: 1,
        election_tick: options.election_ticks.max(2),
        applied,
        pre_vote: true,
        check_quorum: true,
        ..Config::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut raw = RawNode::new(&config, log, &logger)?;
    // A single member need not wait an election timeout to lead.
    raw.campaign()?;
    let store = Arc::new(RwLock::new(store));
    let term = Arc::new(AtomicU64::new(raw.raft.term));
    let (tx, rx) = mpsc::channel();
    let mut driver = Driver {
        term: term.clone(),
        raw,
        store: store.clone(),
        rx,
        heartbeat: options.heartbeat,
        next_id: 1,
        waiting: Vec::new(),
        pending: HashMap::new(),
        reads: Vec::new(),
        read_waiting: HashMap::new(),
        applied,
    };
    let thread = std::thread::Builder::new()
        .name("raft-driver".into())
        .spawn(move || driver.run())
        .map_err(DriverError::Spawn)?;
    Ok(Handle { tx, store, term, thread: Arc::new(Mutex::new(Some(thread))) })
}

struct Driver {
    term: Arc<AtomicU64>,
    raw: RawNode<LogStore>,
    store: Arc<RwLock<Store>>,
    rx: Receiver<Command>,
    heartbeat: Duration,
    next_id: u64,
    /// Proposals that arrived before this member led.
    waiting: Vec<(Write, Reply<WriteResponse>)>,
    pending: HashMap<u64, Reply<WriteResponse>>,
    /// ReadIndex requests raft answered: (index, reply), served once applied reaches index.
    reads: Vec<(u64, Reply<u64>)>,
    read_waiting: HashMap<u64, Reply<u64>>,
    applied: u64,
}

impl Driver {
    fn run(&mut self) {
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
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick = Instant::now() + self.heartbeat;
            }
            if let Err(e) = self.on_ready() {
                // Storage failed: etcd stops here too. Fail everything waiting, then stop.
                self.fail_all(&e.to_string());
                return;
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Propose { write, reply } => {
                if self.raw.raft.state == StateRole::Leader {
                    self.propose(write, reply);
                } else {
                    self.waiting.push((write, reply));
                }
            }
            Command::ReadIndex { reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.raw.read_index(id.to_le_bytes().to_vec());
                self.read_waiting.insert(id, reply);
            }
            Command::Stop => {}
        }
    }

    fn propose(&mut self, write: Write, reply: Reply<WriteResponse>) {
        let id = self.next_id;
        self.next_id += 1;
        match self.raw.propose(vec![], write.encode(id)) {
            Ok(()) => {
                self.pending.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NodeError::Storage(format!("raft: {e}"))));
            }
        }
    }

    fn on_ready(&mut self) -> Result<(), DriverError> {
        if self.raw.raft.state == StateRole::Leader && !self.waiting.is_empty() {
            for (write, reply) in std::mem::take(&mut self.waiting) {
                self.propose(write, reply);
            }
        }
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        self.term.store(self.raw.raft.term, Ordering::Relaxed);
        for rs in ready.take_read_states() {
            let id = rs.request_ctx.as_slice().try_into().map(u64::from_le_bytes).unwrap_or(0);
            if let Some(reply) = self.read_waiting.remove(&id) {
                self.reads.push((rs.index, reply));
            }
        }
        self.apply(ready.take_committed_entries())?;
        self.raw.mut_store().persist(ready.entries(), ready.hs())?;
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        let applied = self.applied;
        let (ready_reads, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.reads).into_iter().partition(|(i, _)| *i <= applied);
        self.reads = later;
        for (_, reply) in ready_reads {
            let _ = reply.send(Ok(applied));
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), DriverError> {
        for entry in entries {
            let index = entry.index;
            if entry.data.is_empty() {
                // A new leader's empty entry.
                self.applied = index;
                continue;
            }
            let mut store = self
                .store
                .write()
                .map_err(|_| crate::node::mvcc::store::MvccError::Storage("store lock poisoned".into()))?;
            if index <= store.consistent_index() {
                // Already in the store (replayed after a restart).
                self.applied = index;
                continue;
            }
            let (id, result) = match Write::decode(&entry.data) {
                Ok((id, write)) => (id, apply_write(&mut store, &write, index)),
                Err(why) => (0, Err(NodeError::Storage(format!("raft entry {index}: {why}")))),
            };
            drop(store);
            if let Err(NodeError::Storage(why)) = &result {
                return Err(DriverError::Mvcc(crate::node::mvcc::store::MvccError::Storage(why.clone())));
            }
            self.applied = index;
            if let Some(reply) = self.pending.remove(&id) {
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    fn fail_all(&mut self, why: &str) {
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (_, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (_, reply) in self.reads.drain(..) {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
        for (_, reply) in self.read_waiting.drain() {
            let _ = reply.send(Err(NodeError::Storage(why.to_string())));
        }
    }
}

/// No lessor yet: a put naming a lease fails as etcd fails it for an unknown lease.
struct NoLeases;

impl Leases for NoLeases {
    fn exists(&self, _id: i64) -> bool {
        false
    }
}

fn apply_write(store: &mut Store, write: &Write, index: u64) -> Result<WriteResponse, NodeError> {
    let at = Some(index);
    match write {
        Write::Put(r) => apply::apply_put(store, r, &NoLeases, at).map(WriteResponse::Put),
        Write::Delete(r) => apply::apply_delete(store, r, at).map(WriteResponse::Delete),
        Write::Txn(r) => apply::apply_txn(store, r, &NoLeases, at).map(WriteResponse::Txn),
        Write::Compact(r) => {
            // A failed compaction still consumes its entry: record the index.
            let result = store.compact(r.revision).map_err(NodeError::from);
            store.write().commit(at)?;
            result?;
            Ok(WriteResponse::Compact(PbCompactionResponse {
                header: Some(PbResponseHeader {
                    revision: store.current_revision(),
                    ..PbResponseHeader::default()
                }),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbRangeRequest;

    fn options() -> Options {
        Options { member_id: 1, heartbeat: Duration::from_millis(10), election_ticks: 10 }
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
            let h = start(dir.path(), options()).unwrap();
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
        let h = start(dir.path(), options()).unwrap();
        assert_eq!(get(&h, "k"), Some(b"v4".to_vec()));
        match h.write(put("k", "after")).await.unwrap() {
            WriteResponse::Put(r) => assert_eq!(r.header.unwrap().revision, 7, "no entry applied twice"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_batches() {
        let dir = tempfile::tempdir().unwrap();
        let h = start(dir.path(), options()).unwrap();
        let writes = (0..50).map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.write(put(&format!("k{i}"), "v")).await })
        });
        for w in futures::future::join_all(writes).await {
            assert!(matches!(w.unwrap(), Ok(WriteResponse::Put(_))));
        }
        assert_eq!(h.store.read().unwrap().current_revision(), 51);
    }

    #[test]
    fn entries_round_trip() {
        let w = put("k", "v");
        assert_eq!(Write::decode(&w.encode(77)), Ok((77, w)));
        assert!(Write::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Write::decode(&[1]).is_err());
    }
}
