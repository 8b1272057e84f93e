//! What `update` asks the workers to do. Effects are plain data; only workers do I/O.

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
}
