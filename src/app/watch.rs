//! The watch tail: a live list of a key's or a prefix's events. Events arrive in batches from a worker
//! and go into a bounded ring; when the ring is full the oldest leave it and are counted, so a flood of
//! events costs a fixed amount of memory and never holds up the keyboard.

use std::collections::VecDeque;

use crate::app::value_format::display_bytes;

/// Events the tail keeps.
pub const RING: usize = 10_000;
/// Bytes of a value kept for its preview.
pub const PREVIEW: usize = 120;
/// Bytes of a key kept (keys can be 1.5 MiB; a ring of them must stay small).
pub const KEY_PREVIEW: usize = 256;

/// The flow control between a tail's worker and the console: the worker marks it when it sends a
/// batch and sends no other until the console has applied that one and released it. Meanwhile the
/// worker keeps reading etcd's stream into its own bounded batch, so memory stays bounded however
/// long the console is busy (an editor open, say).
#[derive(Debug, Clone, Default)]
pub struct Ack(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Ack {
    /// Marks a batch as sent; false if the previous one is still unapplied.
    pub fn take(&self) -> bool {
        !self.0.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// The console applied the batch.
    pub fn release(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Flow control is not part of what a message says.
impl PartialEq for Ack {
    fn eq(&self, _: &Ack) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

impl EventKind {
    /// etcdctl's names for event types.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Put => "PUT",
            EventKind::Delete => "DELETE",
        }
    }
}

/// One event, as the tail shows it: the value cut to a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEvent {
    pub kind: EventKind,
    /// The key, cut to KEY_PREVIEW bytes.
    pub key: Vec<u8>,
    /// The key's full size.
    pub key_len: usize,
    pub mod_revision: i64,
    pub value: Vec<u8>,
    /// The value's full size (the preview may be cut).
    pub value_len: usize,
    /// The previous value's preview, when etcd sent prev_kv and there was one.
    pub prev: Option<Vec<u8>>,
}

impl TailEvent {
    /// Keeps the first PREVIEW bytes of a value.
    pub fn preview(value: &[u8]) -> Vec<u8> {
        value[..value.len().min(PREVIEW)].to_vec()
    }

    /// Keeps the first KEY_PREVIEW bytes of a key.
    pub fn key_preview(key: &[u8]) -> Vec<u8> {
        key[..key.len().min(KEY_PREVIEW)].to_vec()
    }

    /// Whether the row matches a local filter (case-sensitive substring of key or value preview).
    pub fn matches(&self, filter: &str) -> bool {
        filter.is_empty()
            || display_bytes(&self.key).contains(filter)
            || display_bytes(&self.value).contains(filter)
    }
}

/// Where the tail's watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailStatus {
    /// Asking etcd to start the watch.
    Starting,
    /// Events flow; the watch began at this revision.
    Watching { from: i64 },
    /// The connection failed; the worker tries again from `next` (the revision after the last event
    /// seen), through any endpoint that answers.
    Reconnecting { error: String, next: i64 },
    /// The start revision is compacted away: etcd's error, and the oldest revision still there.
    Compacted { error: String, compact_revision: i64 },
    /// etcd ended the watch for good.
    Failed(String),
}

/// What a watch worker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchReport {
    Status(TailStatus),
    /// Events in revision order; `dropped` more were discarded by the worker while the console was
    /// behind (the batch was full).
    Events {
        events: Vec<TailEvent>,
        dropped: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchTail {
    /// Identifies this tail's watch: reports of an earlier tail are dropped.
    pub id: u64,
    pub prefix: Vec<u8>,
    /// A prefix watch, or a single key's.
    pub is_prefix: bool,
    /// The revision asked to start at (0: now).
    pub start: i64,
    pub status: TailStatus,
    /// Oldest first; each event carries its sequence number (1 for the first received).
    pub events: VecDeque<(u64, TailEvent)>,
    /// Events received in total.
    pub received: u64,
    /// Events the display lost: pushed out of the full ring, or discarded by the worker.
    pub dropped: u64,
    /// The newest revision seen.
    pub last_revision: i64,
    /// While paused, the display stops at this sequence number; events keep arriving.
    pub paused_at: Option<u64>,
    pub filter: String,
    /// Events per second over the last measured second.
    pub rate: f64,
    /// Received count and instant at the start of the current rate window.
    pub rate_window: Option<(u64, std::time::Instant)>,
    /// Rows scrolled up from the newest (0: follow the newest).
    pub scroll: usize,
}

impl WatchTail {
    pub fn new(id: u64, prefix: Vec<u8>, is_prefix: bool, start: i64) -> Self {
        Self {
            id,
            prefix,
            is_prefix,
            start,
            status: TailStatus::Starting,
            events: VecDeque::new(),
            received: 0,
            dropped: 0,
            last_revision: 0,
            paused_at: None,
            filter: String::new(),
            rate: 0.0,
            rate_window: None,
            scroll: 0,
        }
    }

    pub fn on_report(&mut self, report: WatchReport) {
        match report {
            WatchReport::Status(status) => self.status = status,
            WatchReport::Events { events, dropped } => {
                self.dropped += dropped;
                self.received += dropped;
                for e in events {
                    self.received += 1;
                    self.last_revision = self.last_revision.max(e.mod_revision);
                    if self.events.len() == RING {
                        self.events.pop_front();
                        self.dropped += 1;
                    }
                    self.events.push_back((self.received, e));
                }
            }
        }
    }

    /// Updates the events-per-second figure once a second has passed.
    pub fn tick(&mut self, now: std::time::Instant) {
        match self.rate_window {
            None => self.rate_window = Some((self.received, now)),
            Some((count, since)) => {
                let elapsed = now.saturating_duration_since(since).as_secs_f64();
                if elapsed >= 1.0 {
                    self.rate = (self.received - count) as f64 / elapsed;
                    self.rate_window = Some((self.received, now));
                }
            }
        }
    }

    pub fn toggle_pause(&mut self) {
        self.paused_at = match self.paused_at {
            Some(_) => None,
            None => Some(self.received),
        };
    }

    /// The rows shown, newest last: those up to the pause point that pass the filter.
    pub fn visible(&self) -> impl DoubleEndedIterator<Item = &(u64, TailEvent)> {
        let limit = self.paused_at.unwrap_or(u64::MAX);
        self.events.iter().filter(move |(seq, e)| *seq <= limit && e.matches(&self.filter))
    }

    /// Events received since the pause.
    pub fn held_back(&self) -> u64 {
        self.paused_at.map_or(0, |at| self.received - at)
    }

    /// What the tail watches, for titles.
    pub fn target(&self) -> String {
        if self.is_prefix {
            format!("{}*", display_bytes(&self.prefix))
        } else {
            display_bytes(&self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, rev: i64) -> TailEvent {
        TailEvent {
            kind: EventKind::Put,
            key: key.as_bytes().to_vec(),
            key_len: key.len(),
            mod_revision: rev,
            value: b"v".to_vec(),
            value_len: 1,
            prev: None,
        }
    }

    #[test]
    fn a_full_ring_drops_the_oldest_and_counts_them() {
        let mut tail = WatchTail::new(1, b"/a/".to_vec(), true, 0);
        let events: Vec<TailEvent> = (0..RING as i64 + 5).map(|i| put("/a/x", i + 1)).collect();
        tail.on_report(WatchReport::Events { events, dropped: 3 });
        assert_eq!(tail.events.len(), RING);
        assert_eq!(tail.dropped, 8);
        assert_eq!(tail.received, RING as u64 + 8);
        assert_eq!(tail.events.front().map(|(_, e)| e.mod_revision), Some(6));
        assert_eq!(tail.last_revision, RING as i64 + 5);
    }

    #[test]
    fn pause_holds_the_display_and_the_filter_hides_rows() {
        let mut tail = WatchTail::new(1, b"/a/".to_vec(), true, 0);
        tail.on_report(WatchReport::Events { events: vec![put("/a/x", 2), put("/a/y", 3)], dropped: 0 });
        tail.toggle_pause();
        tail.on_report(WatchReport::Events { events: vec![put("/a/z", 4)], dropped: 0 });
        assert_eq!(tail.visible().count(), 2);
        assert_eq!(tail.held_back(), 1);
        tail.filter = "y".into();
        assert_eq!(tail.visible().map(|(_, e)| e.mod_revision).collect::<Vec<_>>(), vec![3]);
        tail.toggle_pause();
        tail.filter.clear();
        assert_eq!(tail.visible().count(), 3);
    }

    #[test]
    fn a_batch_is_sent_only_after_the_one_before_was_applied() {
        let ack = Ack::default();
        assert!(ack.take(), "the first batch goes");
        assert!(!ack.take(), "the next waits");
        ack.release();
        assert!(ack.take());
    }

    #[test]
    fn the_rate_is_measured_over_a_second() {
        let mut tail = WatchTail::new(1, b"k".to_vec(), false, 0);
        let t0 = std::time::Instant::now();
        tail.tick(t0);
        tail.on_report(WatchReport::Events { events: vec![put("k", 2); 50], dropped: 0 });
        tail.tick(t0 + std::time::Duration::from_millis(500));
        assert_eq!(tail.rate, 0.0, "not a second yet");
        tail.tick(t0 + std::time::Duration::from_secs(2));
        assert_eq!(tail.rate, 25.0);
    }
}
