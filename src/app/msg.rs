//! What a worker reports back. Every reply carries the id of the refresh that asked for it, so `update`
//! can drop a reply that is older than what the screen already shows.

use std::time::Duration;

use crate::app::edit::WriteOutcome;
use crate::app::keys::{KeyHistory, KeyPage, ValueRead};
use crate::app::watch::{Ack, WatchReport};

/// Identifies one refresh round; ids only grow.
pub type RefreshId = u64;

/// A member as MemberList reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    /// Empty until the member has started and published its attributes.
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Empty until the member has started.
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl MemberInfo {
    /// etcd publishes a member's name and client URLs once it has started; until then etcdctl prints
    /// "unstarted".
    pub fn is_started(&self) -> bool {
        !self.name.is_empty() && !self.client_urls.is_empty()
    }
}

/// A MemberList answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberList {
    pub cluster_id: u64,
    pub members: Vec<MemberInfo>,
}

/// Maintenance.Status from one member's own client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// The member that answered (from the response header).
    pub member_id: u64,
    pub cluster_id: u64,
    /// The store revision in the response header.
    pub revision: i64,
    pub version: String,
    pub db_size: i64,
    pub db_size_in_use: i64,
    /// The member this member believes is leader; 0 when it knows none.
    pub leader: u64,
    pub raft_term: u64,
    /// The raft committed index.
    pub raft_index: u64,
    pub raft_applied_index: u64,
    /// Errors the member reports, other than alarms (for example "etcdserver: no leader").
    pub errors: Vec<String>,
    /// The cluster's active alarms, as this member's Status lists them.
    pub alarms: Vec<Alarm>,
    pub is_learner: bool,
    /// Round-trip time of the Status call.
    pub rtt: Duration,
}

/// An alarm raised on a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alarm {
    pub member_id: u64,
    pub kind: AlarmKind,
}

/// etcd's alarm types, named as etcd prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlarmKind {
    Nospace,
    Corrupt,
    Other(i32),
}

impl Alarm {
    /// Reads an alarm from a Status error string. etcd's Status lists every active alarm among its
    /// errors as the alarm's protobuf text, "memberID:10276657743932975437 alarm:NOSPACE ", so the
    /// dashboard learns alarms without calling the Alarm RPC, which etcd puts through raft.
    pub fn parse_status_error(text: &str) -> Option<Alarm> {
        let mut member_id = None;
        let mut kind = None;
        for field in text.split_whitespace() {
            let (name, value) = field.split_once(':')?;
            match name {
                "memberID" | "member_id" => member_id = Some(value.parse::<u64>().ok()?),
                "alarm" => {
                    kind = Some(match value {
                        "NOSPACE" => AlarmKind::Nospace,
                        "CORRUPT" => AlarmKind::Corrupt,
                        other => AlarmKind::Other(other.parse().ok()?),
                    })
                }
                _ => return None,
            }
        }
        Some(Alarm { member_id: member_id?, kind: kind? })
    }
}

impl std::fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlarmKind::Nospace => f.write_str("NOSPACE"),
            AlarmKind::Corrupt => f.write_str("CORRUPT"),
            AlarmKind::Other(n) => write!(f, "ALARM({n})"),
        }
    }
}

/// A worker's report.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The cluster's member list, from the first endpoint that answered.
    Members { refresh: RefreshId, result: Result<MemberList, String> },
    /// What the Auth API listed (see `Effect::LoadAuth`).
    Auth { request: u64, result: Result<crate::app::auth::AuthListing, String> },
    /// Maintenance.Status of one member.
    Status { refresh: RefreshId, member_id: u64, endpoint: String, result: Result<StatusInfo, String> },
    /// The health probe of one member: a linearizable Get, as `etcdctl endpoint health` does; Ok
    /// carries how long it took.
    Health { refresh: RefreshId, member_id: u64, endpoint: String, result: Result<Duration, String> },
    /// A page of the key browser's listing.
    KeyPage { request: u64, result: Result<KeyPage, String> },
    /// How many keys the browser's prefix holds.
    KeyCount { request: u64, result: Result<i64, String> },
    /// A key's value; Ok(None) when the key does not exist.
    Value { request: u64, result: Result<Option<ValueRead>, String> },
    /// A key's earlier versions.
    History { request: u64, result: Result<KeyHistory, String> },
    /// How a write went.
    Written { request: u64, result: Result<WriteOutcome, String> },
    /// (keys under the prefix, the revision they were counted at).
    PrefixCount { request: u64, result: Result<(i64, i64), String> },
    /// News from a tail's watch; `ack` is released once it is applied.
    Watch { tail: u64, report: WatchReport, ack: Ack },
    /// Bytes of a snapshot saved so far.
    SnapshotProgress { request: u64, bytes: u64 },
    /// The saved snapshot, verified; or why not.
    SnapshotSaved { request: u64, result: Result<crate::app::snapshot::SavedSnapshot, String> },
    /// How a membership change went.
    Member { request: u64, result: Result<crate::app::members::MemberOutcome, String> },
    /// A step of a long change done, for its dialog.
    MemberProgress { request: u64, text: String },
    /// How killing or starting a demo member's process went.
    Process { result: Result<String, String> },
    /// The demo's answer to a step of a member's replacement.
    ReplaceProcess { request: u64, result: Result<String, String> },
    /// What the check of a snapshot file found: its format and a description, or why it is no good.
    SnapshotFile { request: u64, result: Result<crate::app::snapshot::CheckedSnapshot, String> },
    /// The restore's new data dirs (member name, dir), or why there are none.
    RestoreDirs { request: u64, result: Result<Vec<(String, std::path::PathBuf)>, String> },
    /// The demo's members run again after a restore: what was done, or what failed.
    Restored { request: u64, result: Result<String, String> },
}
