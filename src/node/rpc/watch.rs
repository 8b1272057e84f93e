//! The Watch service: many watchers per stream, each a task that follows the hub from its own
//! revision (see node/watch). Responses of one stream go out through one bounded channel, so a client
//! that does not read holds up only its own watchers, never the writes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::proto::{
    PbEvent, PbKeyValue, PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::node::auth::Op;
use crate::node::metrics::Metrics;
use crate::node::mvcc::error::MvccError;
use crate::node::mvcc::store::Event;
use crate::node::rpc::conn::ClientConn;
use crate::node::rpc::ctx::Ctx;

/// etcd's progressReportInterval.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(600);
/// At most this many revisions in one response to a watcher catching up (etcd's watchBatchMaxRevs).
const BATCH_REVISIONS: i64 = 1000;
const FILTER_NOPUT: i32 = 0;
const FILTER_NODELETE: i32 = 1;

pub struct WatchService {
    pub ctx: Ctx,
    pub progress_interval: Duration,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<PbWatchResponse, Status>> + Send>>;
type Out = mpsc::Sender<Result<PbWatchResponse, Status>>;

/// What one watcher follows.
#[derive(Clone)]
struct Spec {
    id: i64,
    key: Vec<u8>,
    end: Vec<u8>,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
}

impl Spec {
    fn matches(&self, e: &Event) -> bool {
        if (e.deleted && self.no_delete) || (!e.deleted && self.no_put) {
            return false;
        }
        let k = e.kv.key.as_slice();
        if self.end.is_empty() {
            k == self.key.as_slice()
        } else if self.end == [0] {
            k >= self.key.as_slice()
        } else {
            k >= self.key.as_slice() && k < self.end.as_slice()
        }
    }
}

/// Decrements a gauge when dropped, so a watcher counted is uncounted however it ends.
struct Counted<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn counted(m: &std::sync::atomic::AtomicU64) -> Counted<'_> {
    m.fetch_add(1, Ordering::Relaxed);
    Counted(m)
}

/// A watcher's task, and the revision up to which it has sent every event (its matching events
/// up to there are on the stream ahead of anything sent after).
struct Watcher {
    task: tokio::task::JoinHandle<()>,
    sent: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// Follows the hub from `next` on, sending what matches, until the stream goes or it is aborted;
/// `sent` follows what it has sent.
async fn run_watcher(
    ctx: Ctx,
    spec: Spec,
    mut next: i64,
    out: Out,
    progress_every: Duration,
    sent: std::sync::Arc<std::sync::atomic::AtomicI64>,
) {
    let metrics: std::sync::Arc<Metrics> = ctx.handle.metrics.clone();
    let _gauge = counted(&metrics.watchers);
    let hub = ctx.handle.hub.clone();
    let mut published = hub.subscribe();
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + progress_every, progress_every);
    let mut sent_since_progress = false;
    loop {
        let current = *published.borrow_and_update();
        if current >= next {
            let to = current.min(next.saturating_add(BATCH_REVISIONS - 1));
            let gathered = {
                let Ok(store) = ctx.handle.read_store() else { return };
                if next < store.compact_revision() {
                    Err(MvccError::Compacted)
                } else {
                    hub.events(&store, next, to, |e| spec.matches(e)).map(|events| {
                        events
                            .into_iter()
                            .map(|(rev, e)| {
                                let prev = if spec.prev_kv && (e.deleted || e.kv.create_revision != rev) {
                                    store
                                        .range(&e.kv.key, &[], 1, rev - 1)
                                        .ok()
                                        .and_then(|r| r.kvs.into_iter().next())
                                        .map(PbKeyValue::from)
                                } else {
                                    None
                                };
                                PbEvent { r#type: i32::from(e.deleted), kv: Some(e.kv.into()), prev_kv: prev }
                            })
                            .collect::<Vec<_>>()
                    })
                }
            };
            let events = match gathered {
                Ok(events) => events,
                Err(MvccError::Compacted) => {
                    let compacted = ctx.handle.read_store().map(|s| s.compact_revision()).unwrap_or(0);
                    let resp = PbWatchResponse {
                        header: ctx.header(0),
                        watch_id: spec.id,
                        canceled: true,
                        compact_revision: compacted,
                        ..PbWatchResponse::default()
                    };
                    let _ = out.send(Ok(resp)).await;
                    return;
                }
                Err(e) => {
                    let _ = out.send(Err(crate::node::error::NodeError::from(e).into())).await;
                    return;
                }
            };
            next = to + 1;
            if !events.is_empty() {
                sent_since_progress = true;
                let resp = PbWatchResponse {
                    header: ctx.header(current),
                    watch_id: spec.id,
                    events,
                    ..Default::default()
                };
                if out.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
            sent.store(to, Ordering::Relaxed);
            continue;
        }
        tokio::select! {
            changed = published.changed() => if changed.is_err() { return },
            _ = progress.tick(), if spec.progress_notify => {
                if !sent_since_progress {
                    let resp = PbWatchResponse { header: ctx.header(current), watch_id: spec.id, ..Default::default() };
                    if out.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
                sent_since_progress = false;
            }
        }
    }
}

/// etcd's isWatchPermitted, checked as each watch is created with the stream's credentials: a
/// refusal is the cancel reason etcd gives (the gRPC error as Go prints it).
fn watch_permitted(
    ctx: &Ctx,
    who: &(tonic::metadata::MetadataMap, Option<ClientConn>),
    key: &[u8],
    range_end: &[u8],
) -> Result<(), String> {
    let checked = ctx.caller_from(&who.0, who.1.as_ref()).and_then(|caller| {
        let store = ctx.handle.read_store()?;
        Ok(store.auth().permitted(caller.as_ref(), key, range_end, Op::Read)?)
    });
    checked.map_err(|status| {
        let code = match status.code() {
            tonic::Code::Unauthenticated => "Unauthenticated",
            tonic::Code::InvalidArgument => "InvalidArgument",
            _ => {
                return "rpc error: code = PermissionDenied desc = etcdserver: permission denied".to_string()
            }
        };
        format!("rpc error: code = {code} desc = {}", status.message())
    })
}

/// Serves one Watch stream's requests.
async fn serve_stream(
    ctx: Ctx,
    mut requests: Streaming<PbWatchRequest>,
    out: Out,
    progress_every: Duration,
    who: (tonic::metadata::MetadataMap, Option<ClientConn>),
) {
    let metrics = ctx.handle.metrics.clone();
    let _gauge = counted(&metrics.watch_streams);
    let mut watchers: HashMap<i64, Watcher> = HashMap::new();
    let mut next_id = 0i64;
    loop {
        let req = match requests.next().await {
            Some(Ok(req)) => req,
            // The client closed its side: as etcd, go on sending until it goes away.
            None => {
                out.closed().await;
                break;
            }
            Some(Err(_)) => break,
        };
        watchers.retain(|_, w| !w.task.is_finished());
        // The store's revision, not the hub's: a read may already have seen a revision the hub has
        // not published yet, and a watch from now must not replay it.
        let current = match ctx.handle.read_store() {
            Ok(store) => store.current_revision(),
            Err(_) => break,
        };
        let resp = match req.request_union {
            Some(PbWatchRequestUnion::CreateRequest(c)) => {
                let refuse = |why: &str| PbWatchResponse {
                    header: ctx.header(current),
                    watch_id: -1,
                    created: true,
                    canceled: true,
                    cancel_reason: why.to_string(),
                    ..Default::default()
                };
                if let Err(denied) = watch_permitted(&ctx, &who, &c.key, &c.range_end) {
                    refuse(&denied)
                } else if !c.range_end.is_empty() && c.range_end != [0] && c.key >= c.range_end {
                    refuse("mvcc: watcher range is empty")
                } else if c.watch_id != 0 && watchers.contains_key(&c.watch_id) {
                    refuse("mvcc: duplicate watch ID provided on the WatchStream")
                } else if c.start_revision < 0 {
                    refuse("etcdserver: mvcc: required revision has been compacted")
                } else {
                    let id = if c.watch_id != 0 {
                        c.watch_id
                    } else {
                        while watchers.contains_key(&next_id) {
                            next_id += 1;
                        }
                        // IDs are not handed out twice on a stream, as etcd's nextID.
                        next_id += 1;
                        next_id - 1
                    };
                    let spec = Spec {
                        id,
                        key: c.key,
                        end: c.range_end,
                        no_put: c.filters.contains(&FILTER_NOPUT),
                        no_delete: c.filters.contains(&FILTER_NODELETE),
                        prev_kv: c.prev_kv,
                        progress_notify: c.progress_notify,
                    };
                    let start = if c.start_revision == 0 { current + 1 } else { c.start_revision };
                    let created = PbWatchResponse {
                        header: ctx.header(current),
                        watch_id: id,
                        created: true,
                        ..Default::default()
                    };
                    // Created goes out before the watcher exists, so before any of its events.
                    if out.send(Ok(created)).await.is_err() {
                        break;
                    }
                    let sent = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(start - 1));
                    let task = tokio::spawn(run_watcher(
                        ctx.clone(),
                        spec,
                        start,
                        out.clone(),
                        progress_every,
                        sent.clone(),
                    ));
                    watchers.insert(id, Watcher { task, sent });
                    continue;
                }
            }
            Some(PbWatchRequestUnion::CancelRequest(c)) => match watchers.remove(&c.watch_id) {
                Some(Watcher { task, .. }) => {
                    // Wait for it to stop, so nothing of it can follow the cancel response.
                    task.abort();
                    let _ = task.await;
                    PbWatchResponse {
                        header: ctx.header(current),
                        watch_id: c.watch_id,
                        canceled: true,
                        ..Default::default()
                    }
                }
                None => continue,
            },
            Some(PbWatchRequestUnion::ProgressRequest(_)) => {
                // A progress notification says every event up to its revision has been sent: the
                // revision every watcher of the stream has sent through (etcd answers only once
                // all are synced, with the current one). Sent after those events, on one channel.
                let through =
                    watchers.values().map(|w| w.sent.load(Ordering::Relaxed)).min().unwrap_or(current);
                PbWatchResponse {
                    header: ctx.header(through.min(current)),
                    watch_id: -1,
                    ..Default::default()
                }
            }
            None => continue,
        };
        if out.send(Ok(resp)).await.is_err() {
            break;
        }
    }
    for (_, Watcher { task, .. }) in watchers {
        task.abort();
    }
}

#[tonic::async_trait]
impl PbWatchService for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<Streaming<PbWatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let guard = self.ctx.leader_guard(&req)?;
        let (tx, rx) = mpsc::channel(256);
        let who = (req.metadata().clone(), req.extensions().get::<ClientConn>().cloned());
        tokio::spawn(serve_stream(self.ctx.clone(), req.into_inner(), tx, self.progress_interval, who));
        let out = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Response::new(crate::node::rpc::ctx::until_no_leader(out, guard)))
    }
}
