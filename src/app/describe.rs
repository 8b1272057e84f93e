//! What the console says about members and the cluster, in the words the members table, the
//! header, the member detail and `etcdeck status` share.

use crate::app::format::id_hex;
use crate::app::state::{Leadership, Member, State};

/// A member's condition in one word, as the dashboard and the report show it. "alarm": reachable and
/// answering linearizable reads, but an alarm (NOSPACE, CORRUPT) is raised on it.
pub fn member_health(m: &Member) -> &'static str {
    if !m.info.is_started() {
        return "unstarted";
    }
    match (&m.status, &m.health) {
        (None, _) => "pending",
        (Some(Err(_)), _) => "down",
        (Some(Ok(s)), Some(Ok(_))) if s.alarms.iter().any(|a| a.member_id == m.info.id) => "alarm",
        // etcd's /health answers false with "RAFT NO LEADER" whatever a read did.
        (Some(Ok(s)), _) if s.leader == 0 => "no leader",
        (Some(Ok(_)), Some(Ok(_))) => "healthy",
        (Some(Ok(_)), Some(Err(_))) => "unhealthy",
        (Some(Ok(_)), None) => "pending",
    }
}

/// A member's raft role: "leader", "learner", "follower" (up, following the leader), or "voter" when
/// it is not answering, so its current role is unknown.
pub fn member_role(state: &State, m: &Member) -> &'static str {
    if state.leader_id() == Some(m.info.id) {
        "leader"
    } else if m.info.is_learner {
        "learner"
    } else if m.is_up() {
        "follower"
    } else {
        "voter"
    }
}

/// Every error known about a member, joined for one cell.
pub fn member_errors(m: &Member) -> String {
    let mut errs: Vec<String> = Vec::new();
    if let Some(Err(e)) = &m.status {
        errs.push(e.clone());
    }
    if let Some(Ok(s)) = &m.status {
        errs.extend(s.errors.iter().cloned());
    }
    if let Some(Err(e)) = &m.health {
        if !errs.contains(e) {
            errs.push(e.clone());
        }
    }
    errs.join("; ")
}

/// The one-line summary the header and the report share.
pub fn leader_text(state: &State) -> String {
    let name = |id: u64| state.member(id).map_or("?".to_string(), |m| m.display_name().to_string());
    match state.leadership() {
        Leadership::Leader(id) => format!("{} ({})", name(id), id_hex(id)),
        Leadership::LeaderDown(id) => format!("none ({} is down)", name(id)),
        Leadership::Disputed(ids) => {
            format!("disputed ({})", ids.iter().map(|id| name(*id)).collect::<Vec<_>>().join(", "))
        }
        Leadership::NoLeader => "none".into(),
        Leadership::Unknown => "unknown".into(),
    }
}

pub fn alarms_text(state: &State) -> String {
    match state.alarms() {
        None => "unknown".into(),
        Some(a) if a.is_empty() => "none".into(),
        Some(a) => a
            .iter()
            .map(|a| {
                let who = state.member(a.member_id).map_or("?".to_string(), |m| m.display_name().to_string());
                format!("{} on {who}", a.kind)
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}
