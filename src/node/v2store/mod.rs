//! etcd 3.4's v2 store (etcdserver/api/v2store): a tree of keys and directories with an index of its
//! own, times to live, and the last 1000 events that watches start from. The v2 API (`--enable-v2`)
//! serves the user's keys under `/1`; etcd keeps its membership under `/0`.
//!
//! The operations are etcd's, with its errors and its quirks: a set replaces the node (a new
//! created index), an update or compare-and-swap without a TTL makes the key permanent, an update of
//! a directory answers a new modified index but keeps the old one, every change (each expired key
//! too) moves the index on by one and is one event in the history.

mod event;
mod request;
mod stats;
mod tree;

pub use event::{go_time, Event, History, V2Error, HISTORY_EVENTS};
pub use request::{parse_form, KeyRequest, KEYS_PREFIX};
pub use stats::{Op, StoreStats};
pub use tree::{clean, depth, Store, Ttl, MAX_DEPTH};

/// The clock the v2 store's TTLs count by: Unix nanoseconds.
pub fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}
