//! A watch tail's worker: one long-running task per tail. It reads etcd's watch stream as fast as it
//! comes and hands events to the console in batches: at most every FLUSH, and only once the console
//! has applied the batch before (see `Ack`). While the console is busy the worker goes on reading
//! into a batch that keeps the newest RING events and counts the rest as dropped — from the display
//! only: the revision to resume from is tracked here, so a reconnect loses and repeats nothing.
//!
//! After a failure it reconnects through the endpoints in turn and resumes at the revision after the
//! last event (or progress notification) it saw. Its client requires a leader, so a member cut off
//! from the cluster ends the watch ("etcdserver: no leader") and the tail moves on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc;

use super::errors::error_text;
use super::pool::{Pool, AUTH_OLD_REVISION};
use crate::app::edit::prefix_range;
use crate::app::msg::Msg;
use crate::app::watch::{Ack, EventKind, TailEvent, TailStatus, WatchReport, RING};

/// How often a batch of events can go to the console.
const FLUSH: Duration = Duration::from_millis(20);
/// The wait before reconnecting grows from the first to the last of these.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// A watch that ran this long before failing starts the backoff over.
const STABLE: Duration = Duration::from_secs(5);

/// Events waiting to go to the console, bounded.
#[derive(Default)]
struct Batch {
    events: VecDeque<TailEvent>,
    dropped: u64,
}

impl Batch {
    fn push(&mut self, e: TailEvent) {
        if self.events.len() == RING {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(e);
    }

    fn take(&mut self) -> Option<WatchReport> {
        if self.events.is_empty() && self.dropped == 0 {
            return None;
        }
        let events = std::mem::take(&mut self.events).into();
        Some(WatchReport::Events { events, dropped: std::mem::take(&mut self.dropped) })
    }
}

/// The worker's line to the console.
struct Line {
    tx: mpsc::UnboundedSender<Msg>,
    tail: u64,
    ack: Ack,
}

impl Line {
    /// A status report; false when the console is gone.
    fn status(&self, status: TailStatus) -> bool {
        self.tx
            .send(Msg::Watch { tail: self.tail, report: WatchReport::Status(status), ack: Ack::default() })
            .is_ok()
    }

    /// Sends the batch if the console took the one before (or `force`: before a status change, so
    /// the events come first). False when the console is gone.
    fn flush(&self, batch: &mut Batch, force: bool) -> bool {
        if batch.events.is_empty() && batch.dropped == 0 {
            return true;
        }
        if !self.ack.take() && !force {
            return true;
        }
        match batch.take() {
            Some(report) => {
                self.tx.send(Msg::Watch { tail: self.tail, report, ack: self.ack.clone() }).is_ok()
            }
            None => true,
        }
    }
}

pub async fn run(
    pool: Arc<Pool>,
    tx: mpsc::UnboundedSender<Msg>,
    tail: u64,
    prefix: Vec<u8>,
    is_prefix: bool,
    start: i64,
) {
    let line = Line { tx, tail, ack: Ack::default() };
    // The next revision the tail needs; 0 until the first watch says where "now" is.
    let mut next = start;
    let mut failures = 0usize;
    let endpoints = pool.config.endpoints.clone();
    let mut endpoint = 0usize;
    let mut batch = Batch::default();
    loop {
        let ep = &endpoints[endpoint % endpoints.len()];
        let error = match watch_once(&pool, &line, &mut batch, ep, &prefix, is_prefix, &mut next).await {
            Outcome::Stop => return,
            Outcome::Failed { error, stable } => {
                if stable {
                    failures = 0;
                }
                error
            }
        };
        // Try the next endpoint.
        endpoint += 1;
        let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
        failures += 1;
        if !line.flush(&mut batch, true)
            || !line.status(TailStatus::Reconnecting { error: format!("{ep}: {error}"), next })
        {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

enum Outcome {
    /// The tail is over (compacted start, a refusal that will not change, console gone).
    Stop,
    /// The connection failed; try again from `next`. `stable`: the watch had run a while.
    Failed { error: String, stable: bool },
}

async fn watch_once(
    pool: &Pool,
    line: &Line,
    batch: &mut Batch,
    endpoint: &str,
    prefix: &[u8],
    is_prefix: bool,
    next: &mut i64,
) -> Outcome {
    let mut established: Option<Instant> = None;
    let failed = |error: String, established: Option<Instant>| Outcome::Failed {
        error,
        stable: established.is_some_and(|t| t.elapsed() >= STABLE),
    };
    let mut client = match pool.watch_client(endpoint).await {
        Ok(c) => c,
        Err(e) => return failed(e, None),
    };
    // Progress notifications move `next` on while nothing changes, so a quiet tail that reconnects
    // after a compaction resumes instead of finding its revision compacted.
    let mut options = WatchOptions::new().with_prev_key().with_progress_notify();
    let key = if is_prefix {
        let (start, end) = prefix_range(prefix);
        options = options.with_range(end);
        start
    } else {
        prefix.to_vec()
    };
    if *next > 0 {
        options = options.with_start_revision(*next);
    }
    let limit = pool.config.dial_timeout + pool.config.command_timeout;
    let mut stream = match tokio::time::timeout(limit, client.watch(key, Some(options))).await {
        Err(_) => return failed(format!("context deadline exceeded (after {limit:?})"), None),
        Ok(Err(e)) => return failed(error_text(&e), None),
        Ok(Ok(stream)) => stream,
    };
    let mut flush = tokio::time::interval(FLUSH);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if !line.flush(batch, false) {
                    return Outcome::Stop;
                }
            }
            message = stream.message() => {
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return failed("the watch stream ended".into(), established),
                    Err(e) => return failed(error_text(&e), established),
                };
                if resp.compact_revision() > 0 {
                    line.flush(batch, true);
                    let error = "etcdserver: mvcc: required revision has been compacted".to_string();
                    line.status(TailStatus::Compacted { error, compact_revision: resp.compact_revision() });
                    return Outcome::Stop;
                }
                if resp.canceled() {
                    let reason = resp.cancel_reason();
                    // A member without a leader ends watches that require one: another member may
                    // have one. Anything else (permission denied, say) will not change by retrying.
                    // A token older than the auth store (a JWT after an auth change): sign in
                    // again and reconnect, as etcd's own clients do.
                    if reason.contains(AUTH_OLD_REVISION) && pool.config.user().is_some() {
                        let _ = tokio::time::timeout(pool.config.command_timeout, client.refresh_token()).await;
                        return failed(reason.to_string(), established);
                    }
                    if reason.is_empty() || reason.contains("no leader") {
                        let reason = if reason.is_empty() { "etcd cancelled the watch" } else { reason };
                        return failed(reason.to_string(), established);
                    }
                    line.flush(batch, true);
                    line.status(TailStatus::Failed(reason.to_string()));
                    return Outcome::Stop;
                }
                let revision = resp.header().map_or(0, |h| h.revision());
                if resp.created() {
                    established = Some(Instant::now());
                    // A watch from now starts after the revision in the created response's header.
                    if *next == 0 {
                        *next = revision + 1;
                    }
                    if !line.status(TailStatus::Watching { from: *next }) {
                        return Outcome::Stop;
                    }
                    continue;
                }
                if resp.events().is_empty() {
                    // A progress notification: every event up to its revision has been sent.
                    *next = (*next).max(revision + 1);
                    continue;
                }
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    let kind = match e.event_type() {
                        EventType::Put => EventKind::Put,
                        EventType::Delete => EventKind::Delete,
                    };
                    batch.push(TailEvent {
                        kind,
                        key: TailEvent::key_preview(kv.key()),
                        key_len: kv.key().len(),
                        mod_revision: kv.mod_revision(),
                        value: TailEvent::preview(kv.value()),
                        value_len: kv.value().len(),
                        prev: e.prev_kv().map(|p| TailEvent::preview(p.value())),
                    });
                    // A revision's events come in one response, so after it the next is safe.
                    *next = (*next).max(kv.mod_revision() + 1);
                }
            }
        }
    }
}
