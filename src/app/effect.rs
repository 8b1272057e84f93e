//! What `update` asks the workers to do. Effects are plain data; only workers do I/O.

use crate::app::edit::Write;
use crate::app::keys::KeyRequest;
use crate::app::msg::RefreshId;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// MemberList through the configured endpoints; the first answer wins.
    ListMembers { refresh: RefreshId },
    /// Maintenance.Status on one member's own client URL.
    FetchStatus { refresh: RefreshId, member_id: u64, endpoint: String },
    /// A Get of key "health" on one member's own client URL: linearizable, as `etcdctl endpoint
    /// health` does, or serializable for a learner, which refuses linearizable reads.
    CheckHealth { refresh: RefreshId, member_id: u64, endpoint: String, serializable: bool },
    /// A page of keys or a key's value for the key browser, through the configured endpoints.
    Keys(KeyRequest),
    /// A compare-and-swap write.
    Write { request: u64, write: Write },
    /// A linearizable count of the keys under a prefix, before asking to delete them.
    CountPrefix { request: u64, prefix: Vec<u8> },
    /// Starts the watch of a tail (a prefix, or one key) at `start` (0: now) with prev_kv; it runs
    /// until stopped, reconnecting through any endpoint after a failure.
    Watch { tail: u64, prefix: Vec<u8>, is_prefix: bool, start: i64 },
    /// Stops a tail's watch.
    StopWatch { tail: u64 },
    /// Runs by the terminal edge, not a worker: edit `value` in $EDITOR.
    Editor { key: Vec<u8>, value: Vec<u8>, expect: i64 },
    /// Runs by the runtime, not a worker: connect to the saved context `name` instead (new
    /// workers, a fresh view; replies from the old connection are dropped with its channel).
    SwitchContext { name: String },
    /// Runs by the terminal edge: copy to the clipboard with OSC 52; `what` names it for the notice.
    Copy { what: String, bytes: Vec<u8> },
    /// `:space`: reads every key under `prefix` once and reports where the space goes, as it goes
    /// (`Msg::Space`); stopped by `StopSpace`.
    Space { request: u64, prefix: Vec<u8> },
    /// `:mirror`: reads the mirror checkpoints in the cluster (`Msg::Mirrors`).
    Mirrors { request: u64 },
    /// Cancels a `:space` scan.
    StopSpace { request: u64 },
    /// Saves `endpoint`'s snapshot to `path` and verifies it, reporting progress as it goes; with
    /// `backup`, `path` is a directory, and the snapshot becomes a backup named for its cluster,
    /// member and revision there (`etcdeck backup`'s).
    SaveSnapshot { request: u64, endpoint: String, path: std::path::PathBuf, backup: bool },
    /// Lists the backups in `dir` for the restore wizard (`Msg::Backups`).
    ListBackups { request: u64, dir: std::path::PathBuf },
    /// Users with their roles and roles with their permissions, as far as `user` (the signed-in
    /// user, if any) may read them; answered by `Msg::Auth`.
    LoadAuth { request: u64, user: Option<String> },
    /// A membership change (or a leadership move) through the cluster API.
    Member { request: u64, op: crate::app::members::MemberOp },
    /// etcdeck demo: kill (start = false) or start a member's process.
    MemberProcess { name: String, start: bool },
    /// etcdeck demo: a step of a member's replacement on its process or data dir; answered by
    /// `Msg::ReplaceProcess`.
    ReplaceProcess { request: u64, step: crate::app::replace::ProcessStep },
    /// Checks a snapshot file as a restore would (its size and the SHA-256 etcd appends).
    CheckSnapshotFile { request: u64, path: std::path::PathBuf },
    /// etcdeck demo: stop the members and restore `file` into a new data dir for each of `members`
    /// (their old data dirs are kept); answered by `Msg::RestoreDirs`.
    RestoreLocal { request: u64, file: std::path::PathBuf, token: String, members: Vec<String> },
    /// etcdeck demo: start the members again, on the restored data dirs (name, dir) or, when the
    /// restore failed, on their old ones; answered by `Msg::Restored`.
    FinishRestore { request: u64, restored: Result<Vec<(String, std::path::PathBuf)>, String> },
}
