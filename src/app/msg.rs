//! What a worker reports back. Every reply carries the id of the refresh that asked for it, so `update`
//! can drop a reply that is older than what the screen already shows.

use std::time::Duration;

use crate::app::cluster::{MemberList, StatusInfo};
use crate::app::edit::WriteOutcome;
use crate::app::keys::{KeyHistory, KeyPage, ValueRead};
use crate::app::watch::{Ack, WatchReport};

/// Identifies one refresh round; ids only grow.
pub type RefreshId = u64;

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
    /// A `:space` scan's report so far (`done` at the end), or why it stopped.
    Space { request: u64, result: Result<crate::app::space::SpaceReport, String> },
    /// The backups found in the backup directory, oldest first.
    Backups { request: u64, result: Result<Vec<crate::app::snapshot::FoundBackup>, String> },
    /// The mirror checkpoints `:mirror` read.
    Mirrors { request: u64, result: Result<Vec<crate::app::mirrors::MirrorRow>, String> },
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
