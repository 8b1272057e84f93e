//! What the v2 store answers: events (etcd's v2store Event and NodeExtern, as the v2 API writes
//! them), its errors, and the last 1000 events that watches start from.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::etcd::v2::Node;

/// One change (or a read) of the store, as etcd's v2 API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub action: String,
    pub node: Node,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_node: Option<Node>,
    /// The store's index after the change (for a read, the index it was read at): the
    /// X-Etcd-Index header, not in the JSON.
    #[serde(skip)]
    pub etcd_index: u64,
    /// A TTL refresh: kept in the history, never sent to watchers.
    #[serde(skip)]
    pub refresh: bool,
}

impl Event {
    pub(super) fn new(action: &str, key: &str, modified: u64, created: u64) -> Event {
        Event {
            action: action.to_string(),
            node: Node {
                key: key.to_string(),
                modified_index: modified,
                created_index: created,
                ..Node::default()
            },
            prev_node: None,
            etcd_index: 0,
            refresh: false,
        }
    }

    /// Whether the event is news for a watcher of `key`: a change of the key, of a key under it
    /// (`recursive`), or the deletion or expiry of a directory above it. The last compares the
    /// strings as etcd does, without a path boundary.
    pub fn matches(&self, key: &str, recursive: bool) -> bool {
        let changed = &self.node.key;
        if changed == key {
            return true;
        }
        if recursive && changed.starts_with(key) && changed[key.len()..].starts_with('/') {
            return true;
        }
        if key == "/" && recursive {
            return true;
        }
        matches!(self.action.as_str(), "delete" | "expire")
            && self.node.dir
            && key.starts_with(changed.as_str())
    }

    /// Whether the operation made a new key: 201 Created rather than 200 (etcd's IsCreated).
    pub fn is_created(&self) -> bool {
        match self.action.as_str() {
            "create" => true,
            "set" => self.prev_node.is_none(),
            _ => false,
        }
    }
}

/// etcd's v2 error: its code, the cause (usually a key) and the store's index when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Error {
    pub code: u32,
    pub cause: String,
    pub index: u64,
}

impl V2Error {
    pub fn new(code: u32, cause: impl Into<String>, index: u64) -> V2Error {
        V2Error { code, cause: cause.into(), index }
    }

    /// etcd's message for the code.
    pub fn message(&self) -> &'static str {
        crate::etcd::v2::error_message(self.code)
    }
}

impl std::fmt::Display for V2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({}) [{}]", self.code, self.message(), self.cause, self.index)
    }
}

/// The last events, as etcd keeps them for watches that start at an index (1000).
#[derive(Debug, Clone, Default)]
pub struct History {
    events: VecDeque<Event>,
    capacity: usize,
}

/// An event as a snapshot keeps it: with its index and whether it was a refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    pub index: u64,
    pub refresh: bool,
    pub event: Event,
}

/// etcd's v2 history holds this many events.
pub const HISTORY_EVENTS: usize = 1000;

impl History {
    pub fn new(capacity: usize) -> History {
        History { events: VecDeque::with_capacity(capacity.min(HISTORY_EVENTS)), capacity }
    }

    /// An event with what its JSON leaves out, as a record of the store on disk.
    pub(super) fn kept(event: &Event) -> Kept {
        Kept { index: event.etcd_index, refresh: event.refresh, event: event.clone() }
    }

    /// The history the store's records kept, in index order.
    pub(super) fn from_kept(kept: Vec<Kept>, capacity: usize) -> History {
        let mut h = History::new(capacity);
        for k in kept {
            let mut event = k.event;
            event.etcd_index = k.index;
            event.refresh = k.refresh;
            h.add(event);
        }
        h
    }

    /// The index of the oldest event kept.
    pub(super) fn first(&self) -> Option<u64> {
        self.events.front().map(|e| e.etcd_index)
    }

    /// The events from index `since` on.
    pub(super) fn since(&self, since: u64) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.etcd_index >= since)
    }

    pub(super) fn add(&mut self, event: Event) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The first event from index `since` on that a watcher of `key` sees; None when it is still
    /// to come. Err (etcd's 401) when the history no longer reaches back to `since`.
    pub fn scan(
        &self,
        key: &str,
        recursive: bool,
        since: u64,
        current: u64,
    ) -> Result<Option<Event>, V2Error> {
        let Some(first) = self.events.front().map(|e| e.etcd_index) else {
            return Ok(None);
        };
        if since < first {
            return Err(V2Error::new(
                crate::etcd::v2::EVENT_INDEX_CLEARED,
                format!("the requested history has been cleared [{first}/{since}]"),
                current,
            ));
        }
        let found = self
            .events
            .iter()
            .skip((since - first) as usize)
            .find(|e| !e.refresh && e.matches(key, recursive))
            .cloned();
        Ok(found)
    }
}

/// A time of Unix nanoseconds as Go's JSON writes a UTC time: RFC 3339, the fraction without its
/// trailing zeros.
pub fn go_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let whole = humantime::format_rfc3339_seconds(at).to_string();
    if frac == 0 {
        return whole;
    }
    let digits = format!("{frac:09}");
    format!("{}.{}Z", whole.trim_end_matches('Z'), digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_gos() {
        assert_eq!(go_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(1_500_000_000_120_000_000), "2017-07-14T02:40:00.12Z");
        assert_eq!(go_time(1_500_000_000_000_000_001), "2017-07-14T02:40:00.000000001Z");
    }

    #[test]
    fn an_event_is_etcds_json() {
        let mut e = Event::new("set", "/foo/bar", 4, 4);
        e.node.value = Some("bar".into());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"action":"set","node":{"key":"/foo/bar","value":"bar","modifiedIndex":4,"createdIndex":4}}"#
        );
        assert!(e.is_created());
        let mut d = Event::new("delete", "/d", 9, 3);
        d.node.dir = true;
        d.prev_node = Some(Node { key: "/d".into(), dir: true, ..Node::default() });
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":9,"createdIndex":3},"prevNode":{"key":"/d","dir":true}}"#
        );
        assert!(d.matches("/d/x/y", false), "a directory's deletion reaches the keys under it");
        assert!(!d.matches("/e", true));
    }
}
