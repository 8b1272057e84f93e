//! `etcdeck status`: the dashboard's data printed once, as a table (etcdctl's box style) or JSON.

use serde::Serialize;

use crate::app::format::{bytes, id_hex, millis, timestamp_utc};
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

/// The report as a table, preceded by the cluster summary.
pub fn table(state: &State) -> String {
    let (up, total) = state.members_up();
    let mut out = format!(
        "cluster {} · leader {} · {up}/{total} members up · quorum {} · revision {} · alarms {}\n",
        state.cluster_id.map_or("unknown".into(), id_hex),
        leader_text(state),
        if state.quorum_holds() { "ok" } else { "LOST" },
        state.revision().map_or("unknown".into(), |r| r.to_string()),
        alarms_text(state),
    );
    out.push_str(&format!(
        "endpoints {} · user {} · at {}\n",
        state.endpoints.join(","),
        state.user.as_deref().unwrap_or("(none)"),
        state.refresh.completed_at.map_or("(no complete refresh)".into(), timestamp_utc),
    ));
    let header = [
        "ID",
        "NAME",
        "CLIENT URL",
        "VERSION",
        "DB SIZE",
        "DB IN USE",
        "LEADER",
        "LEARNER",
        "RAFT TERM",
        "RAFT INDEX",
        "RAFT APPLIED INDEX",
        "LAG",
        "HEALTH",
        "TOOK",
        "ERRORS",
    ];
    let leader = state.leader_id();
    let rows: Vec<Vec<String>> = state
        .members
        .iter()
        .map(|m| {
            let s = m.status_ok();
            let num =
                |f: fn(&crate::app::msg::StatusInfo) -> u64| s.map_or(String::new(), |s| f(s).to_string());
            vec![
                id_hex(m.info.id),
                m.display_name().to_string(),
                m.endpoint().unwrap_or("").to_string(),
                s.map_or(String::new(), |s| s.version.clone()),
                s.map_or(String::new(), |s| bytes(s.db_size)),
                s.map_or(String::new(), |s| bytes(s.db_size_in_use)),
                (leader == Some(m.info.id)).to_string(),
                m.info.is_learner.to_string(),
                num(|s| s.raft_term),
                num(|s| s.raft_index),
                num(|s| s.raft_applied_index),
                state.applied_lag(m).map_or(String::new(), |l| l.to_string()),
                member_health(m).to_string(),
                match &m.health {
                    Some(Ok(took)) => millis(*took),
                    _ => String::new(),
                },
                member_errors(m),
            ]
        })
        .collect();
    out.push_str(&boxed_table(&header, &rows));
    out
}

/// etcdctl's table style: `+---+` rules, centred headers, left-aligned cells.
pub fn boxed_table(header: &[&str], rows: &[Vec<String>]) -> String {
    boxed_table_aligned(header, rows, false)
}

/// As `boxed_table`, with cells right-aligned when `right` (etcdctl's snapshot status table).
pub fn boxed_table_aligned(header: &[&str], rows: &[Vec<String>], right: bool) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let rule: String = widths.iter().map(|w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+\n";
    let mut out = rule.clone();
    for (i, h) in header.iter().enumerate() {
        out.push_str(&format!("| {:^w$} ", h, w = widths[i]));
    }
    out.push_str("|\n");
    out.push_str(&rule);
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if right {
                out.push_str(&format!("| {:>w$} ", cell, w = widths[i]));
            } else {
                out.push_str(&format!("| {:<w$} ", cell, w = widths[i]));
            }
        }
        out.push_str("|\n");
    }
    out.push_str(&rule);
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    healthy: bool,
    problems: Vec<String>,
    cluster_id: Option<u64>,
    cluster_id_hex: Option<String>,
    leader: Option<u64>,
    leader_name: Option<&'a str>,
    members_up: usize,
    members_total: usize,
    quorum: bool,
    revision: Option<i64>,
    alarms: Vec<JsonAlarm>,
    members_error: Option<&'a str>,
    endpoints: &'a [String],
    user: Option<&'a str>,
    refreshed_at: Option<String>,
    members: Vec<JsonMember<'a>>,
}

#[derive(Serialize)]
struct JsonAlarm {
    member_id: u64,
    member_id_hex: String,
    alarm: String,
}

#[derive(Serialize)]
struct JsonMember<'a> {
    id: u64,
    id_hex: String,
    name: &'a str,
    peer_urls: &'a [String],
    client_urls: &'a [String],
    is_learner: bool,
    started: bool,
    is_leader: bool,
    health: &'static str,
    status: Option<JsonStatus<'a>>,
    status_error: Option<&'a str>,
    health_error: Option<&'a str>,
    health_took_ms: Option<f64>,
    applied_lag: Option<u64>,
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    version: &'a str,
    db_size: i64,
    db_size_in_use: i64,
    leader: u64,
    raft_term: u64,
    raft_index: u64,
    raft_applied_index: u64,
    revision: i64,
    errors: &'a [String],
    is_learner: bool,
    rtt_ms: f64,
}

pub fn json(state: &State) -> String {
    let (up, total) = state.members_up();
    let leader = state.leader_id();
    let report = JsonReport {
        healthy: state.problems().is_empty(),
        problems: state.problems(),
        cluster_id: state.cluster_id,
        cluster_id_hex: state.cluster_id.map(id_hex),
        leader,
        leader_name: leader.and_then(|id| state.member(id)).map(Member::display_name),
        members_up: up,
        members_total: total,
        quorum: state.quorum_holds(),
        revision: state.revision(),
        alarms: state
            .active_alarms()
            .iter()
            .map(|a| JsonAlarm {
                member_id: a.member_id,
                member_id_hex: id_hex(a.member_id),
                alarm: a.kind.to_string(),
            })
            .collect(),
        members_error: state.members_error.as_deref(),
        endpoints: &state.endpoints,
        user: state.user.as_deref(),
        refreshed_at: state.refresh.completed_at.map(timestamp_utc),
        members: state
            .members
            .iter()
            .map(|m| JsonMember {
                id: m.info.id,
                id_hex: id_hex(m.info.id),
                name: &m.info.name,
                peer_urls: &m.info.peer_urls,
                client_urls: &m.info.client_urls,
                is_learner: m.info.is_learner,
                started: m.info.is_started(),
                is_leader: leader == Some(m.info.id),
                health: member_health(m),
                status: m.status_ok().map(|s| JsonStatus {
                    version: &s.version,
                    db_size: s.db_size,
                    db_size_in_use: s.db_size_in_use,
                    leader: s.leader,
                    raft_term: s.raft_term,
                    raft_index: s.raft_index,
                    raft_applied_index: s.raft_applied_index,
                    revision: s.revision,
                    errors: &s.errors,
                    is_learner: s.is_learner,
                    rtt_ms: s.rtt.as_secs_f64() * 1000.0,
                }),
                status_error: match &m.status {
                    Some(Err(e)) => Some(e),
                    _ => None,
                },
                health_error: match &m.health {
                    Some(Err(e)) => Some(e),
                    _ => None,
                },
                health_took_ms: match &m.health {
                    Some(Ok(d)) => Some(d.as_secs_f64() * 1000.0),
                    _ => None,
                },
                applied_lag: state.applied_lag(m),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
