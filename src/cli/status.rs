//! `etcdeck status`: the dashboard once, as a table (etcdctl's box style) or JSON; exits 0 only when
//! the cluster is healthy.

use std::process::ExitCode;

use clap::ValueEnum;

use serde::Serialize;

use crate::app::connection::ConnectConfig;
use crate::app::describe::{alarms_text, leader_text, member_errors, member_health};
use crate::app::format::{bytes, id_hex, millis, timestamp_utc};
use crate::app::runtime::Runtime;
use crate::app::state::{Member, State};
use crate::etcd::table::boxed_table;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(short = 'w', long = "write-out", value_enum, default_value_t = WriteOut::Table)]
    pub write_out: WriteOut,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum WriteOut {
    Table,
    Json,
}

pub async fn run(config: ConnectConfig, args: StatusArgs) -> ExitCode {
    let state = Runtime::refresh_once(config).await;
    match args.write_out {
        WriteOut::Table => print!("{}", table(&state)),
        WriteOut::Json => println!("{}", json(&state)),
    }
    let problems = state.problems();
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("Error: unhealthy cluster");
        ExitCode::from(1)
    }
}

/// The report as a table, preceded by the cluster summary.
fn table(state: &State) -> String {
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
            let num = |f: fn(&crate::app::cluster::StatusInfo) -> u64| {
                s.map_or(String::new(), |s| f(s).to_string())
            };
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

fn json(state: &State) -> String {
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
