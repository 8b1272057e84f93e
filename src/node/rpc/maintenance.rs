//! The Maintenance service: Status, Alarm, Hash, HashKV, Defragment, Snapshot and MoveLeader.

use std::pin::Pin;

use etcd_client::proto::{
    PbAlarmMember, PbAlarmRequest, PbAlarmResponse, PbDefragmentRequest, PbDefragmentResponse,
    PbDowngradeRequest, PbDowngradeResponse, PbHashKvRequest, PbHashKvResponse, PbHashRequest,
    PbHashResponse, PbMaintenanceService, PbMoveLeaderRequest, PbMoveLeaderResponse, PbSnapshotRequest,
    PbSnapshotResponse, PbStatusRequest, PbStatusResponse,
};
use futures::Stream;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::node::error::NodeError;
use crate::node::mvcc::error::MvccError;
use crate::node::raft::write::{Write, WriteResponse};
use crate::node::rpc::ctx::{mismatched, Ctx};

/// The etcd version whose API the node speaks, reported where etcd reports its own version.
pub const ETCD_VERSION: &str = "3.4.0";
/// etcd sends a snapshot in pieces of this size.
/// What one Snapshot message carries. etcd sends 32 KiB; clients take up to 4 MiB (gRPC's default
/// limit), and 1 MiB pieces cost both sides far less per byte (measured in bench/snapshot.sh).
const SNAPSHOT_CHUNK: usize = 1024 * 1024;

/// Keys whose record lengths one hold of the store gathers while a snapshot is laid out: about 6 ms
/// of waiting for writes at a time (a million keys in one hold took 240–350 ms).
const LAYOUT_KEYS: usize = 20_000;

pub struct MaintenanceService {
    pub ctx: Ctx,
}

/// etcd's NOSPACE alarm (AlarmType).
pub const NOSPACE: i32 = 1;

/// etcd's alarm names (AlarmType).
pub fn alarm_name(alarm: i32) -> &'static str {
    match alarm {
        0 => "NONE",
        1 => "NOSPACE",
        2 => "CORRUPT",
        _ => "UNKNOWN",
    }
}

/// Status as etcd answers it; also used by /health and /metrics.
pub fn status(ctx: &Ctx) -> Result<PbStatusResponse, NodeError> {
    let h = &ctx.handle;
    let store = h.read_store()?;
    let leader = h.leader();
    let mut errors = Vec::new();
    if leader == 0 {
        errors.push(NodeError::NoLeader.to_string());
    }
    let mut alarms: Vec<(u64, i32)> = store.alarms().iter().copied().collect();
    if ctx.disk_low() {
        alarms.push((ctx.identity.member_id, NOSPACE));
        alarms.sort();
        alarms.dedup();
    }
    for (member, alarm) in alarms {
        // etcd prints the alarm with protobuf's compact text form.
        errors.push(format!("memberID:{member} alarm:{} ", alarm_name(alarm)));
    }
    Ok(PbStatusResponse {
        header: ctx.header(store.current_revision()),
        version: ETCD_VERSION.to_string(),
        db_size: store.db_size() as i64,
        leader,
        raft_index: h.status.commit.load(std::sync::atomic::Ordering::Relaxed),
        raft_term: h.raft_term(),
        raft_applied_index: h.status.applied.load(std::sync::atomic::Ordering::Relaxed),
        errors,
        db_size_in_use: store.db_size_in_use() as i64,
        is_learner: h.status.is_learner.load(std::sync::atomic::Ordering::Relaxed),
        ..PbStatusResponse::default()
    })
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<PbSnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbMaintenanceService for MaintenanceService {
    async fn alarm(&self, req: Request<PbAlarmRequest>) -> Result<Response<PbAlarmResponse>, Status> {
        // etcd 3.4 answers anyone; once auth is on, this node lists alarms to its users and lets
        // only the root role raise or clear one.
        if req.get_ref().action == 0 {
            self.ctx.check_user(&req)?;
        } else {
            self.ctx.check_admin(&req)?;
        }
        let failed = self.ctx.handle.status.disk_failure();
        if req.get_ref().action == 0 && (failed.is_some() || self.ctx.disk_low()) {
            // Raft is no longer run here (writing to disk failed), or the disk is full: the list is
            // the one this member last applied, with its own NOSPACE.
            let wanted = req.get_ref().alarm;
            let store = self.ctx.handle.read_store()?;
            let mut alarms: Vec<(u64, i32)> = store.alarms().iter().copied().collect();
            if self.ctx.disk_low() {
                alarms.push((self.ctx.identity.member_id, NOSPACE));
            }
            alarms.sort();
            alarms.dedup();
            let alarms = alarms
                .into_iter()
                .filter(|(_, a)| wanted == 0 || *a == wanted)
                .map(|(member_id, alarm)| PbAlarmMember { member_id, alarm })
                .collect();
            let header = self.ctx.header(store.current_revision());
            return Ok(Response::new(PbAlarmResponse { header, alarms }));
        }
        match self.ctx.write(Write::Alarm(req.into_inner())).await? {
            WriteResponse::Alarm(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn status(&self, _: Request<PbStatusRequest>) -> Result<Response<PbStatusResponse>, Status> {
        Ok(Response::new(status(&self.ctx)?))
    }

    async fn defragment(
        &self,
        req: Request<PbDefragmentRequest>,
    ) -> Result<Response<PbDefragmentResponse>, Status> {
        // etcd's authMaintenanceServer: defragment, snapshot, hash, hash-kv and move-leader are
        // the root role's.
        self.ctx.check_admin(&req)?;
        let handle = self.ctx.handle.clone();
        // The records are copied while the member serves; the rest, with the store held (writes
        // wait for it, as they do in etcd) once any snapshot being sent has ended.
        tokio::task::spawn_blocking(move || -> Result<(), NodeError> {
            let started = std::time::Instant::now();
            let (dir, size) = handle.read_store().map(|s| (s.dir().to_path_buf(), s.db_size()))?;
            let done = crate::node::mvcc::store::defragment(&handle.store)?;
            // etcd's "defragmented".
            eprintln!(
                "etcdeck node: defragmented {}: {size} bytes before, {} after (took {:?}, {} passes, writes held {:?})",
                dir.display(),
                handle.read_store()?.db_size(),
                started.elapsed(),
                done.passes,
                done.held
            );
            Ok(())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(PbDefragmentResponse { header: None }))
    }

    async fn hash(&self, req: Request<PbHashRequest>) -> Result<Response<PbHashResponse>, Status> {
        self.ctx.check_admin(&req)?;
        let store = self.ctx.handle.read_store()?;
        let hash = store.hash().map_err(NodeError::from)?;
        Ok(Response::new(PbHashResponse { header: self.ctx.header(store.current_revision()), hash }))
    }

    async fn hash_kv(&self, req: Request<PbHashKvRequest>) -> Result<Response<PbHashKvResponse>, Status> {
        self.ctx.check_admin(&req)?;
        let store = self.ctx.handle.read_store()?;
        let (hash, rev, compact_revision) =
            store.hash_kv(req.into_inner().revision).map_err(NodeError::from)?;
        Ok(Response::new(PbHashKvResponse {
            header: self.ctx.header(store.current_revision()),
            hash,
            compact_revision,
            hash_revision: rev,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        req: Request<PbSnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.ctx.check_admin(&req)?;
        let handle = self.ctx.handle.clone();
        // The backend is sent as etcd's (a bbolt file, which etcdctl snapshot status and restore
        // read) at one revision: what is small is taken under the store's read lock, the key
        // history is read from sled after the lock is let go (writes go on meanwhile; nothing
        // removes records until the export ends). The records' lengths, which the key index
        // keeps, gathered LAYOUT_KEYS keys per hold of the store, lay the file out (the metas at
        // its start name its size and root); then one pass over the records makes the pages and
        // sends them as they come, in 1 MiB messages (a few in flight), with the SHA-256 after
        // them. Nothing is written to disk.
        let started = std::time::Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<PbSnapshotResponse, Status>>(4);
        tokio::task::spawn_blocking(move || {
            let failed = |tx: &tokio::sync::mpsc::Sender<_>, e: MvccError| {
                let _ = tx.blocking_send(Err(Status::from(NodeError::from(e))));
            };
            let export = match handle.read_store() {
                Ok(store) => store.export_etcd_backend(),
                Err(e) => {
                    let _ = tx.blocking_send(Err(Status::from(e)));
                    return;
                }
            };
            let gather = |at, from: &_| {
                let store = handle.read_store().map_err(|e| MvccError::Storage(e.to_string()))?;
                store.record_lengths(at, from, LAYOUT_KEYS)
            };
            let (export, layout) = match export.and_then(|x| x.layout(gather).map(|l| (x, l))) {
                Ok(x) => x,
                Err(e) => return failed(&tx, e),
            };
            let total = layout.bytes();
            // etcd's "sending database snapshot to client".
            eprintln!(
                "etcdeck node: sending database snapshot to client: {total} bytes at revision {} (laid out in {} ms)",
                export.revision,
                started.elapsed().as_millis()
            );
            let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
            let mut sent = 0u64;
            let (sink_tx, sink_hasher) = (tx.clone(), hasher.clone());
            let sink = move |bytes: &[u8]| -> std::io::Result<()> {
                sink_hasher.lock().unwrap_or_else(std::sync::PoisonError::into_inner).update(bytes);
                for piece in bytes.chunks(SNAPSHOT_CHUNK) {
                    sent += piece.len() as u64;
                    let message = PbSnapshotResponse {
                        remaining_bytes: total.saturating_sub(sent),
                        blob: piece.to_vec(),
                        ..PbSnapshotResponse::default()
                    };
                    if sink_tx.blocking_send(Ok(message)).is_err() {
                        return Err(std::io::Error::other("the client went away"));
                    }
                }
                Ok(())
            };
            if let Err(e) = export.stream(layout, sink) {
                return failed(&tx, e);
            }
            // Last, etcd's SHA-256 of everything sent.
            let digest =
                std::mem::take(&mut *hasher.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            let blob = digest.finalize().to_vec();
            if tx
                .blocking_send(Ok(PbSnapshotResponse {
                    remaining_bytes: 0,
                    blob,
                    ..PbSnapshotResponse::default()
                }))
                .is_ok()
            {
                eprintln!(
                    "etcdeck node: sent database snapshot to client: {total} bytes in {} ms",
                    started.elapsed().as_millis()
                );
            }
        });
        let pieces = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(pieces)))
    }

    async fn move_leader(
        &self,
        req: Request<PbMoveLeaderRequest>,
    ) -> Result<Response<PbMoveLeaderResponse>, Status> {
        self.ctx.check_admin(&req)?;
        // etcd's order: only the leader moves leadership; the target must be a voting member; then
        // wait (ticking) until it leads, for at most the request timeout.
        let me = self.ctx.identity.member_id;
        if self.ctx.handle.leader() != me {
            return Err(NodeError::NotLeader.into());
        }
        let target = req.into_inner().target_id;
        let voter = self.ctx.handle.read_store()?.members().get(&target).is_some_and(|m| !m.is_learner);
        if !voter {
            return Err(NodeError::BadLeaderTransferee.into());
        }
        self.ctx.handle.transfer_leader(target);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(7);
        while self.ctx.handle.leader() != target {
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::LeaderTransferTimeout.into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let revision = self.ctx.handle.read_store()?.current_revision();
        Ok(Response::new(PbMoveLeaderResponse { header: self.ctx.header(revision) }))
    }

    async fn downgrade(
        &self,
        _: Request<PbDowngradeRequest>,
    ) -> Result<Response<PbDowngradeResponse>, Status> {
        // Not in etcd 3.4, whose API the node speaks: answered as 3.4 answers a method it lacks.
        Err(Status::unimplemented("unknown method Downgrade for service etcdserverpb.Maintenance"))
    }
}
