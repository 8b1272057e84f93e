//! What the console says about members and the cluster, in the words the members table, the
//! header, the member detail and `etcdeck status` share; and what an operation on a member would
//! do to the quorum, for the dialogs that ask first.

use crate::app::format::id_hex;
use crate::app::note::Note;
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

/// What removing `id` does to the quorum, from what the dashboard last saw: loud when it removes
/// the leader or leaves too few healthy voters for a quorum.
pub fn removal_notes(state: &State, id: u64) -> Vec<Note> {
    let Some(member) = state.member(id) else {
        return vec![Note::loud("this member is not in the list any more")];
    };
    if member.info.is_learner {
        return vec![Note::plain("a learner does not vote: the quorum stays as it is")];
    }
    let voters: Vec<_> = state.members.iter().filter(|m| !m.info.is_learner).collect();
    let after = voters.len() - 1;
    let quorum_after = after / 2 + 1;
    let healthy_after = voters.iter().filter(|m| m.info.id != id && m.is_up() && m.is_healthy()).count();
    let mut notes = vec![Note::plain(format!(
        "{} voting members now, {after} after: a quorum is then {quorum_after}, and {healthy_after} of them are healthy",
        voters.len()
    ))];
    if after == 0 {
        notes.push(Note::loud("this is the last voting member: the cluster cannot remove it"));
    } else if healthy_after < quorum_after {
        notes.push(Note::loud(format!(
            "NO QUORUM AFTERWARDS: only {healthy_after} healthy of the {quorum_after} needed; writes stop"
        )));
    }
    if state.leader_id() == Some(id) {
        notes.push(Note::loud(
            "THIS IS THE LEADER: the others elect a new one (writes pause for an election)",
        ));
    }
    notes.push(Note::plain("the removed member stops; its data dir must not be used again"));
    notes
}

/// What killing `id` does to the quorum, from what the dashboard last saw: loud when the voting
/// members left up are fewer than a quorum, or when it leads.
pub fn kill_notes(state: &State, id: u64) -> Vec<Note> {
    let Some(member) = state.member(id) else {
        return vec![Note::loud("this member is not in the list any more")];
    };
    if member.info.is_learner {
        return vec![
            Note::plain("a learner does not vote: the quorum stays as it is"),
            Note::plain("s starts it again on its data"),
        ];
    }
    let voters: Vec<_> = state.members.iter().filter(|m| !m.info.is_learner).collect();
    let quorum = voters.len() / 2 + 1;
    let up_after = voters.iter().filter(|m| m.info.id != id && m.is_up()).count();
    let mut notes = Vec::new();
    if up_after >= quorum {
        notes.push(Note::plain(format!(
            "quorum holds: {up_after} of {} voting members stay up, {quorum} needed",
            voters.len()
        )));
    } else {
        notes.push(Note::loud(format!(
            "QUORUM LOST: {up_after} of {} voting members stay up, {quorum} needed; writes and linearizable reads stop until it is back",
            voters.len()
        )));
    }
    if state.leader_id() == Some(id) {
        notes.push(Note::loud(
            "THIS IS THE LEADER: the others elect a new one (writes pause for an election)",
        ));
    }
    notes.push(Note::plain("its data stays: s starts it again on it"));
    notes
}

/// A learner may be promoted once its log is within 10% of the leader's (etcd's check): the
/// dashboard's view of that, as (ready, percent caught up).
pub fn learner_progress(state: &State, id: u64) -> Option<(bool, u64)> {
    let member = state.member(id)?;
    if !member.info.is_learner {
        return None;
    }
    let leader_index =
        state.leader_id().and_then(|l| state.member(l)).and_then(|l| l.status_ok())?.raft_index;
    let own = member.status_ok().map_or(0, |s| s.raft_applied_index);
    let percent = (own * 100).checked_div(leader_index).map_or(100, |p| p.min(100));
    Some((own as f64 >= leader_index as f64 * 0.9, percent))
}
