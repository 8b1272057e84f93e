//! A watch tail's worker: one long-running task per tail. It reads etcd's watch stream as fast as it
//! comes and hands events to the console in batches at most every FLUSH, so the console's loop sees a
//! bounded number of messages however fast events arrive. When the console falls behind, a batch
//! keeps only the newest RING events and counts the rest as dropped (from the display only: the
//! revision to resume from is tracked here, so a reconnect loses and repeats nothing).
//!
//! After a failure it reconnects through the endpoints in turn and resumes at the revision after the
//! last event it saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::mpsc;

use super::{error_text, Pool};

use crate::app::msg::Msg;
use crate::app::watch::{EventKind, TailEvent, TailStatus, WatchReport, RING};

/// How often a batch of events goes to the console.
const FLUSH: Duration = Duration::from_millis(20);
/// The wait before reconnecting grows from the first to the last of these.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

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

fn send(tx: &mpsc::UnboundedSender<Msg>, tail: u64, report: WatchReport) -> bool {
    tx.send(Msg::Watch { tail, report }).is_ok()
}

pub async fn run(
    pool: Arc<Pool>,
    tx: mpsc::UnboundedSender<Msg>,
    tail: u64,
    prefix: Vec<u8>,
    is_prefix: bool,
    start: i64,
) {
    // The next revision the tail needs; 0 until the first watch says where "now" is.
    let mut next = start;
    let mut failures = 0usize;
    let endpoints = pool.config.endpoints.clone();
    let mut endpoint = 0usize;
    loop {
        let ep = &endpoints[endpoint % endpoints.len()];
        let outcome = watch_once(&pool, &tx, tail, ep, &prefix, is_prefix, &mut next).await;
        let error = match outcome {
            Outcome::Stop => return,
            Outcome::Failed { error, established } => {
                // A watch that ran resets the backoff: this failure is the first in a row.
                if established {
                    failures = 0;
                }
                error
            }
        };
        // Try the next endpoint.
        endpoint += 1;
        let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
        failures += 1;
        if !send(
            &tx,
            tail,
            WatchReport::Status(TailStatus::Reconnecting { error: format!("{ep}: {error}"), next }),
        ) {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

enum Outcome {
    /// The tail is over (compacted start, cancelled by etcd for good, console gone).
    Stop,
    /// The connection failed (after the watch was `established`, or before); try again from `next`.
    Failed { error: String, established: bool },
}

async fn watch_once(
    pool: &Pool,
    tx: &mpsc::UnboundedSender<Msg>,
    tail: u64,
    endpoint: &str,
    prefix: &[u8],
    is_prefix: bool,
    next: &mut i64,
) -> Outcome {
    let failed = |error: String, established: bool| Outcome::Failed { error, established };
    let mut client = match pool.client(endpoint).await {
        Ok(c) => c,
        Err(e) => return failed(e, false),
    };
    let mut options = WatchOptions::new().with_prev_key();
    if is_prefix {
        let (start, end) = crate::app::edit::prefix_range(prefix);
        options = options.with_key(start).with_range(end);
    }
    if *next > 0 {
        options = options.with_start_revision(*next);
    }
    let key = if is_prefix { crate::app::edit::prefix_range(prefix).0 } else { prefix.to_vec() };
    let limit = pool.config.dial_timeout + pool.config.command_timeout;
    let mut stream = match tokio::time::timeout(limit, client.watch(key, Some(options))).await {
        Err(_) => return failed(format!("context deadline exceeded (after {limit:?})"), false),
        Ok(Err(e)) => return failed(error_text(&e), false),
        Ok(Ok(stream)) => stream,
    };
    let mut batch = Batch::default();
    let mut established = false;
    let mut flush = tokio::time::interval(FLUSH);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Some(report) = batch.take() {
                    if !send(tx, tail, report) {
                        return Outcome::Stop;
                    }
                }
            }
            message = stream.message() => {
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => {
                        flush_now(tx, tail, &mut batch);
                        return failed("the watch stream ended".into(), established);
                    }
                    Err(e) => {
                        flush_now(tx, tail, &mut batch);
                        return failed(error_text(&e), established);
                    }
                };
                if resp.compact_revision() > 0 {
                    flush_now(tx, tail, &mut batch);
                    let error = "etcdserver: mvcc: required revision has been compacted".to_string();
                    let status = TailStatus::Compacted { error, compact_revision: resp.compact_revision() };
                    send(tx, tail, WatchReport::Status(status));
                    return Outcome::Stop;
                }
                if resp.canceled() {
                    flush_now(tx, tail, &mut batch);
                    let reason = resp.cancel_reason();
                    let reason = if reason.is_empty() { "etcd cancelled the watch" } else { reason };
                    return failed(reason.to_string(), established);
                }
                if resp.created() {
                    established = true;
                    // A watch from now starts after the revision in the created response's header.
                    if *next == 0 {
                        *next = resp.header().map_or(0, |h| h.revision()) + 1;
                    }
                    if !send(tx, tail, WatchReport::Status(TailStatus::Watching { from: *next })) {
                        return Outcome::Stop;
                    }
                }
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    let kind = match e.event_type() {
                        EventType::Put => EventKind::Put,
                        EventType::Delete => EventKind::Delete,
                    };
                    batch.push(TailEvent {
                        kind,
                        key: kv.key().to_vec(),
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

fn flush_now(tx: &mpsc::UnboundedSender<Msg>, tail: u64, batch: &mut Batch) {
    if let Some(report) = batch.take() {
        send(tx, tail, report);
    }
}
