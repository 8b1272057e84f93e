//! The watch phase: the source's changes from the checkpoint on, applied in revision order in
//! transactions of up to --max-txn-ops operations (the checkpoint one of them). A reader task turns
//! the watch into items on a bounded channel; this loop takes what has arrived, batches it and
//! commits it while the reader goes on receiving.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::mpsc;

use crate::app::client::error_text;
use crate::etcd::mirror::is_reserved;
use crate::mirror::cluster::Backoff;
use crate::mirror::job::{Mirror, MAX_BATCH_BYTES};
use crate::mirror::sink::{Fatal, Op, Position};
use crate::mirror::stats::log;

/// How often the reader asks the source for a progress notification (the revision every event
/// before which has been sent), so the checkpoint and the lag move while the prefix is quiet.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A checkpoint that only moves is written at most this often; one is written this often anyway, so
/// a reader of the destination can tell a running mirror from a stopped one.
const MOVED_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// One source event in the range.
#[derive(Debug)]
pub struct Ev {
    pub revision: i64,
    pub put: bool,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

enum Item {
    Events(Vec<Ev>),
    /// Every event up to this revision has been sent.
    Progress(i64),
    /// The revision the watch asked for is compacted.
    Compacted(i64),
    Failed(String),
}

enum Entry {
    Ev(Ev),
    Progress(i64),
}

/// Follows the source from `revision` (and `sub` events of the next) until the source compacts
/// past what has been applied; returns then, for a reconcile pass.
pub async fn follow(m: &mut Mirror, revision: i64, sub: u64) -> Result<(), Fatal> {
    let mut pos = (revision, sub);
    let mut backoff = Backoff::default();
    loop {
        m.stats.set_doing("watching the source");
        let client = match m.source.client().await {
            Ok(c) => c,
            Err(e) => {
                m.sink.wait("source", e, &mut backoff).await;
                continue;
            }
        };
        let progress = orders_progress(&client, m.source.timeout()).await;
        let (tx, mut rx) = mpsc::channel::<Item>(64);
        let (start, end) = m.map.source_range();
        let reader = tokio::spawn(read(client, start, end, pos.0 + 1, tx, progress));
        let ended = apply(m, &mut rx, &mut pos, &mut backoff).await;
        reader.abort();
        match ended? {
            Ended::Compacted(at) => {
                log(&format!(
                    "the source compacted past the checkpoint (revision {}; compacted at {at}): reconciling",
                    pos.0
                ));
                return Ok(());
            }
            Ended::Failed(e) => {
                m.source.failed();
                m.sink.wait("source", e, &mut backoff).await;
            }
            Ended::Disorder { event, promised } => {
                m.stats.error("source", "an event out of order".into());
                log(&format!(
                    "the source sent an event of revision {event} after saying every event up to {promised} had been sent: the checkpoint cannot be trusted to be exact, reconciling"
                ));
                return Ok(());
            }
        }
    }
}

enum Ended {
    Compacted(i64),
    Failed(String),
    /// An event at or below a revision the source had said was complete.
    Disorder {
        event: i64,
        promised: i64,
    },
}

/// Applies what the reader sends until it ends; `pos` follows what is applied.
async fn apply(
    m: &mut Mirror,
    rx: &mut mpsc::Receiver<Item>,
    pos: &mut (i64, u64),
    backoff: &mut Backoff,
) -> Result<Ended, Fatal> {
    // The first `skip` events of revision pos.0 + 1 were applied before this watch began.
    let (skip_revision, mut skip) = (pos.0 + 1, pos.1);
    // Every event up to this revision has been received (the watch starts after it).
    let mut promised = pos.0;
    let mut carry: VecDeque<Entry> = VecDeque::new();
    let mut ended: Option<Ended> = None;
    let cap = m.max_ops.saturating_sub(1).max(1);
    let mut tick = tokio::time::interval(MOVED_EVERY);
    loop {
        if carry.is_empty() {
            if let Some(end) = ended.take() {
                return Ok(end);
            }
            tokio::select! {
                item = rx.recv() => {
                    let item = item.unwrap_or(Item::Failed("the watch ended".into()));
                    take(m, item, &mut carry, &mut ended, (skip_revision, &mut skip), &mut promised, backoff);
                }
                _ = tick.tick() => {
                    if checkpoint_due(m, *pos) {
                        m.sink.commit(&[], Position::Watch { revision: pos.0, sub: pos.1 }).await?;
                    }
                    continue;
                }
            }
        }
        while ended.is_none() && carry.len() < 4 * cap {
            match rx.try_recv() {
                Ok(item) => {
                    take(m, item, &mut carry, &mut ended, (skip_revision, &mut skip), &mut promised, backoff)
                }
                Err(_) => break,
            }
        }
        // One batch from the front: events in order, a key's later change replacing its earlier one
        // (the transaction applies them all at once).
        let mut ops: Vec<Op> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let (mut bytes, mut events) = (0usize, 0u64);
        let mut at = *pos;
        while let Some(front) = carry.front() {
            match front {
                Entry::Progress(r) => {
                    if *r > at.0 {
                        at = (*r, 0);
                    }
                }
                Entry::Ev(ev) => {
                    // The batch stays under MAX_BATCH_BYTES unless one event alone is larger.
                    let size = ev.key.len() + ev.value.len() + m.map.dest_prefix.len() + 16;
                    if ops.len() >= cap || (!ops.is_empty() && bytes + size > MAX_BATCH_BYTES) {
                        break;
                    }
                    if ev.revision > at.0 + 1 {
                        at = (ev.revision - 1, 0);
                    }
                    at.1 += 1;
                }
            }
            let Some(Entry::Ev(ev)) = carry.pop_front() else { continue };
            if is_reserved(&ev.key) {
                continue;
            }
            let key = m.map.to_dest(&ev.key);
            if is_reserved(&key) {
                log(&format!(
                    "skipped {}: it maps to {}, among the mirrors' own keys",
                    String::from_utf8_lossy(&ev.key),
                    String::from_utf8_lossy(&key)
                ));
                continue;
            }
            let op = if ev.put { Op::Put(key.clone(), ev.value) } else { Op::Delete(key.clone()) };
            bytes += op.size();
            events += 1;
            match index.get(&key) {
                Some(&i) => ops[i] = op,
                None => {
                    index.insert(key, ops.len());
                    ops.push(op);
                }
            }
        }
        // An event of a later revision ahead means every event of this one is in.
        if let Some(Entry::Ev(next)) = carry.front() {
            if next.revision > at.0 + 1 {
                at = (next.revision - 1, 0);
            }
        }
        if !ops.is_empty() || checkpoint_due(m, at) {
            m.sink.commit(&ops, Position::Watch { revision: at.0, sub: at.1 }).await?;
        }
        m.stats.applied_events.fetch_add(events, Relaxed);
        *pos = at;
        m.stats.applied(at.0);
    }
}

/// Whether a checkpoint with no keys should be written at `at`: it moved a while ago, or nothing has
/// been written for the heartbeat's time.
fn checkpoint_due(m: &Mirror, at: (i64, u64)) -> bool {
    let elapsed = m.sink.written_at.elapsed();
    match &m.sink.written {
        Some(Position::Watch { revision, sub }) if (*revision, *sub) == at => elapsed >= HEARTBEAT_EVERY,
        _ => elapsed >= MOVED_EVERY,
    }
}

/// Takes one item from the reader into `carry`. The first `skip.1` events of revision `skip.0`
/// were applied before this watch began; `promised` is the revision through which the source has
/// said every event was sent, and an event at or below it ends the watch for a reconcile.
fn take(
    m: &Mirror,
    item: Item,
    carry: &mut VecDeque<Entry>,
    ended: &mut Option<Ended>,
    (skip_revision, skip): (i64, &mut u64),
    promised: &mut i64,
    backoff: &mut Backoff,
) {
    match item {
        Item::Events(evs) => {
            backoff.reset();
            // etcd (and etcdeck) send a revision's events in one response unless fragments are
            // asked for (they are not): the last revision in a response is complete.
            let complete = evs.last().map(|e| e.revision);
            if let Some(r) = complete {
                m.stats.saw_source(r);
            }
            for ev in evs {
                if ev.revision <= *promised {
                    *ended = Some(Ended::Disorder { event: ev.revision, promised: *promised });
                    return;
                }
                if ev.revision == skip_revision && *skip > 0 {
                    *skip -= 1;
                    continue;
                }
                carry.push_back(Entry::Ev(ev));
            }
            if let Some(r) = complete {
                *promised = (*promised).max(r);
                carry.push_back(Entry::Progress(r));
            }
        }
        Item::Progress(r) => {
            backoff.reset();
            *promised = (*promised).max(r);
            m.stats.saw_source(r);
            carry.push_back(Entry::Progress(r));
        }
        Item::Compacted(r) => *ended = Some(Ended::Compacted(r)),
        Item::Failed(e) => *ended = Some(Ended::Failed(e)),
    }
}

/// Whether the source answers a progress request in order with its events. etcd before 3.4.25 and
/// 3.5.8 answers it on a channel of its own, with its current revision, even while a watcher still
/// catches up (etcd issue 15220): an answer that could move the checkpoint past events not yet
/// received. With such a source (or an unknown one) the position moves with events, and with the
/// watchers' own periodic notifications, which are in order.
async fn orders_progress(client: &Client, timeout: Duration) -> bool {
    let mut maintenance = client.maintenance_client();
    let Ok(Ok(status)) = tokio::time::timeout(timeout, maintenance.status()).await else { return false };
    progress_in_order(status.version())
}

/// etcd versions whose progress notifications are in order: 3.4.25 on, 3.5.8 on, 3.6 and later.
pub fn progress_in_order(version: &str) -> bool {
    let parts: Vec<u64> = version.split('.').map_while(|p| p.parse().ok()).collect();
    match parts[..] {
        [3, 4, patch, ..] => patch >= 25,
        [3, 5, patch, ..] => patch >= 8,
        [3, minor, ..] => minor >= 6,
        [major, ..] => major > 3,
        _ => false,
    }
}

/// Watches [start, end) from `from` and sends what arrives, asking for progress every second when
/// `progress` says the source answers it in order.
async fn read(
    client: Client,
    start: Vec<u8>,
    end: Vec<u8>,
    from: i64,
    tx: mpsc::Sender<Item>,
    progress_requests: bool,
) {
    let options = WatchOptions::new().with_range(end).with_start_revision(from).with_progress_notify();
    let mut watch = client.watch_client().max_decoding_message_size(crate::mirror::cluster::MAX_READ);
    let stream = match watch.watch(start, Some(options)).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Item::Failed(error_text(&e))).await;
            return;
        }
    };
    let (mut sender, mut responses) = stream.split();
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        let resp = tokio::select! {
            r = responses.message() => r,
            _ = progress.tick(), if progress_requests => {
                if let Err(e) = sender.request_progress().await {
                    let _ = tx.send(Item::Failed(error_text(&e))).await;
                    return;
                }
                continue;
            }
        };
        let item = match resp {
            Ok(Some(resp)) if resp.compact_revision() > 0 => Item::Compacted(resp.compact_revision()),
            Ok(Some(resp)) if resp.canceled() => Item::Failed(format!(
                "the source cancelled the watch: {}",
                if resp.cancel_reason().is_empty() { "no reason given" } else { resp.cancel_reason() }
            )),
            Ok(Some(resp)) if resp.created() => continue,
            Ok(Some(resp)) if resp.events().is_empty() => match resp.header() {
                Some(h) => Item::Progress(h.revision()),
                None => continue,
            },
            Ok(Some(resp)) => Item::Events(
                resp.events()
                    .iter()
                    .filter_map(|e| {
                        let kv = e.kv()?;
                        Some(Ev {
                            revision: kv.mod_revision(),
                            put: e.event_type() == EventType::Put,
                            key: kv.key().to_vec(),
                            value: kv.value().to_vec(),
                        })
                    })
                    .collect(),
            ),
            Ok(None) => Item::Failed("the source closed the watch".into()),
            Err(e) => Item::Failed(error_text(&e)),
        };
        let last = matches!(item, Item::Compacted(_) | Item::Failed(_));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::progress_in_order;

    #[test]
    fn progress_requests_only_where_etcd_answers_them_in_order() {
        for (version, ok) in [
            ("3.4.23", false),
            ("3.4.25", true),
            ("3.5.7", false),
            ("3.5.8", true),
            ("3.6.0", true),
            ("3.3.27", false),
            ("4.0.0", true),
            ("", false),
            ("garbage", false),
        ] {
            assert_eq!(progress_in_order(version), ok, "{version}");
        }
    }
}
