//! `update`: the console's only state transition. Pure: no await, no I/O, no clock reads. It returns the
//! effects the workers must run.

use std::time::{Instant, SystemTime};

use crate::app::action::Action;
use crate::app::effect::Effect;
use crate::app::msg::{MemberList, Msg, RefreshId};
use crate::app::state::{Member, Overlay, Pending, State, REFRESH_STEPS};

/// Everything that can change the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The user asked for something.
    Action(Action),
    /// A worker reported back.
    Msg(Msg),
    /// Time passed; a refresh starts when one is due.
    Tick { now: Instant, wall: SystemTime },
}

pub fn update(state: &mut State, input: Input) -> Vec<Effect> {
    match input {
        Input::Tick { now, wall } => {
            state.now = Some(now);
            state.wall = wall;
            let due = state
                .refresh
                .started_at
                .is_none_or(|started| now.saturating_duration_since(started) >= state.refresh_interval);
            if due {
                start_refresh(state)
            } else {
                Vec::new()
            }
        }
        Input::Action(action) => on_action(state, action),
        Input::Msg(msg) => on_msg(state, msg),
    }
}

fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    let last = state.members.len().saturating_sub(1);
    match action {
        Action::Quit => state.should_quit = true,
        Action::Help => {
            state.overlay = if state.overlay == Overlay::Help { Overlay::None } else { Overlay::Help };
        }
        Action::Up => state.selected = state.selected.saturating_sub(1),
        Action::Down => state.selected = (state.selected + 1).min(last),
        Action::Top => state.selected = 0,
        Action::Bottom => state.selected = last,
        Action::Open => {
            if let Some(m) = state.selected_member() {
                state.overlay = Overlay::Detail(m.info.id);
            }
        }
        Action::Back => state.overlay = Overlay::None,
        Action::Refresh => return start_refresh(state),
        Action::FasterRefresh | Action::SlowerRefresh => {
            let current = state.refresh_interval;
            let next = if action == Action::FasterRefresh {
                REFRESH_STEPS.iter().rev().find(|d| **d < current)
            } else {
                REFRESH_STEPS.iter().find(|d| **d > current)
            };
            if let Some(next) = next {
                state.refresh_interval = *next;
            }
            state.notice = Some(format!(
                "refreshing every {}",
                crate::app::duration::format_go_duration(state.refresh_interval)
            ));
        }
    }
    Vec::new()
}

/// Starts a refresh round: the member list and alarms, and a probe of every known member at once (the
/// member list's answer adds probes for members not known yet).
fn start_refresh(state: &mut State) -> Vec<Effect> {
    let id = state.refresh.next_id;
    state.refresh.next_id += 1;
    state.refresh.current = Some(id);
    // A manual refresh before the first tick has no instant; the first tick then starts another.
    state.refresh.started_at = state.now;
    state.refresh.pending.clear();
    state.refresh.pending.insert(Pending::Members);
    let mut effects = vec![Effect::ListMembers { refresh: id }];
    let members: Vec<Member> = state.members.clone();
    for m in &members {
        effects.extend(probe(state, id, m));
    }
    effects
}

fn probe(state: &mut State, refresh: RefreshId, member: &Member) -> Vec<Effect> {
    let Some(endpoint) = member.endpoint() else {
        return Vec::new();
    };
    let member_id = member.info.id;
    state.refresh.pending.insert(Pending::Status(member_id));
    state.refresh.pending.insert(Pending::Health(member_id));
    vec![
        Effect::FetchStatus { refresh, member_id, endpoint: endpoint.to_string() },
        Effect::CheckHealth { refresh, member_id, endpoint: endpoint.to_string() },
    ]
}

fn on_msg(state: &mut State, msg: Msg) -> Vec<Effect> {
    let mut effects = Vec::new();
    let (refresh, done) = match msg {
        Msg::Members { refresh, result } => {
            if refresh >= state.refresh.members_refresh {
                state.refresh.members_refresh = refresh;
                match result {
                    Ok(list) => effects = apply_member_list(state, refresh, list),
                    Err(e) => state.members_error = Some(e),
                }
            }
            (refresh, Pending::Members)
        }
        Msg::Status { refresh, member_id, result } => {
            if let Some(m) = state.members.iter_mut().find(|m| m.info.id == member_id) {
                if refresh >= m.status_refresh {
                    m.status_refresh = refresh;
                    m.status = Some(result);
                }
            }
            (refresh, Pending::Status(member_id))
        }
        Msg::Health { refresh, member_id, result } => {
            if let Some(m) = state.members.iter_mut().find(|m| m.info.id == member_id) {
                if refresh >= m.health_refresh {
                    m.health_refresh = refresh;
                    m.health = Some(result);
                }
            }
            (refresh, Pending::Health(member_id))
        }
    };
    if state.refresh.current == Some(refresh) {
        state.refresh.pending.remove(&done);
        if state.refresh.pending.is_empty() {
            state.refresh.current = None;
            state.refresh.completed += 1;
            state.refresh.completed_at = Some(state.wall);
        }
    }
    effects
}

/// Replaces the member list, keeping the probes of members that stay, and probes new members.
fn apply_member_list(state: &mut State, refresh: RefreshId, list: MemberList) -> Vec<Effect> {
    let selected_id = state.selected_member().map(|m| m.info.id);
    let mut old = std::mem::take(&mut state.members);
    let mut members: Vec<Member> = list
        .members
        .into_iter()
        .map(|info| match old.iter().position(|m| m.info.id == info.id) {
            Some(i) => {
                let mut kept = old.swap_remove(i);
                if kept.info.client_urls != info.client_urls {
                    // A new endpoint: what the old one said no longer describes this member.
                    kept = Member::new(info);
                } else {
                    kept.info = info;
                }
                kept
            }
            None => Member::new(info),
        })
        .collect();
    members.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(a.info.id.cmp(&b.info.id)));
    state.members = members;
    state.cluster_id = Some(list.cluster_id);
    state.members_error = None;
    state.members_answered_by = Some(list.answered_by);
    state.selected = selected_id
        .and_then(|id| state.members.iter().position(|m| m.info.id == id))
        .unwrap_or(state.selected)
        .min(state.members.len().saturating_sub(1));
    if let Overlay::Detail(id) = state.overlay {
        if state.member(id).is_none() {
            state.overlay = Overlay::None;
        }
    }

    let mut effects = Vec::new();
    if state.refresh.current == Some(refresh) {
        // Members removed from the cluster no longer hold the round open.
        let ids: Vec<u64> = state.members.iter().map(|m| m.info.id).collect();
        state.refresh.pending.retain(|p| match p {
            Pending::Status(id) | Pending::Health(id) => ids.contains(id),
            _ => true,
        });
        let unprobed: Vec<Member> = state
            .members
            .iter()
            .filter(|m| !state.refresh.pending.contains(&Pending::Status(m.info.id)))
            .filter(|m| m.status_refresh < refresh)
            .cloned()
            .collect();
        for m in &unprobed {
            effects.extend(probe(state, refresh, m));
        }
    }
    effects
}
