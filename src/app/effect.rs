//! What `update` asks the workers to do. Effects are plain data; only workers do I/O.

use crate::app::msg::RefreshId;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// MemberList through the configured endpoints; the first answer wins.
    ListMembers { refresh: RefreshId },
    /// Maintenance.Status on one member's own client URL.
    FetchStatus { refresh: RefreshId, member_id: u64, endpoint: String },
    /// A linearizable Get of key "health" on one member's own client URL.
    CheckHealth { refresh: RefreshId, member_id: u64, endpoint: String },
}
