//! The cluster as the etcd API describes it: members (MemberList), each member's status
//! (Maintenance.Status) and alarms. Plain data that the workers fill in and the state keeps.

use std::time::Duration;

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
