//! `update`'s share for the dashboard: refresh rounds, the probes of each member, and the member
//! list's answer.

use crate::app::cluster::MemberList;
use crate::app::effect::Effect;
use crate::app::msg::RefreshId;
use crate::app::state::{Member, Overlay, Pending, State};

/// Starts a refresh round: the member list, and a probe of every known member at once (the member
/// list's answer adds probes for members not known yet).
pub(super) fn start_refresh(state: &mut State) -> Vec<Effect> {
    let id = state.refresh.next_id;
    state.refresh.next_id += 1;
    let previous = (state.refresh.current.replace(id), std::mem::take(&mut state.refresh.pending));
    // A manual refresh before the first tick has no instant; the first tick then starts another.
    state.refresh.started_at = state.now;
    let mut effects = Vec::new();
    if send(state, Pending::Members) {
        effects.push(Effect::ListMembers { refresh: id });
    }
    let members: Vec<Member> = state.members.clone();
    for m in &members {
        effects.extend(probe(state, id, m));
    }
    if effects.is_empty() {
        // Everything is still in flight (a refresh key pressed twice in one round trip): the round
        // in progress stays the current one, so its replies still complete it.
        (state.refresh.current, state.refresh.pending) = previous;
    }
    effects
}

pub(super) fn probe(state: &mut State, refresh: RefreshId, member: &Member) -> Vec<Effect> {
    let Some(endpoint) = member.endpoint() else {
        return Vec::new();
    };
    let member_id = member.info.id;
    let mut effects = Vec::new();
    if send(state, Pending::Status(member_id)) {
        effects.push(Effect::FetchStatus { refresh, member_id, endpoint: endpoint.to_string() });
    }
    if send(state, Pending::Health(member_id)) {
        effects.push(Effect::CheckHealth {
            refresh,
            member_id,
            endpoint: endpoint.to_string(),
            // etcd refuses linearizable reads on learners ("rpc not supported for learner").
            serializable: member.info.is_learner,
        });
    }
    effects
}

/// Records a request for the current round unless the same request is still in flight.
pub(super) fn send(state: &mut State, request: Pending) -> bool {
    if !state.refresh.in_flight.insert(request) {
        return false;
    }
    state.refresh.pending.insert(request);
    true
}

/// Replaces the member list, keeping the probes of members that stay, and probes new members.
pub(super) fn apply_member_list(state: &mut State, refresh: RefreshId, list: MemberList) -> Vec<Effect> {
    let selected_id = state.selected_member().map(|m| m.info.id);
    let mut old = std::mem::take(&mut state.members);
    let mut members: Vec<Member> = list
        .members
        .into_iter()
        .map(|info| match old.iter().position(|m| m.info.id == info.id) {
            Some(i) => {
                let mut kept = old.swap_remove(i);
                if kept.info.client_urls != info.client_urls {
                    // A new endpoint: what the old one said no longer describes this member, and a
                    // request still out to the old one must not hold back probing the new one.
                    let id = info.id;
                    state
                        .refresh
                        .in_flight
                        .retain(|p| !matches!(p, Pending::Status(m) | Pending::Health(m) if *m == id));
                    state
                        .refresh
                        .pending
                        .retain(|p| !matches!(p, Pending::Status(m) | Pending::Health(m) if *m == id));
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
    state.members_listed_at = Some(state.wall);
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
        let known = |p: &Pending| match p {
            Pending::Status(id) | Pending::Health(id) => ids.contains(id),
            Pending::Members => true,
        };
        state.refresh.pending.retain(known);
        state.refresh.in_flight.retain(known);
        let unprobed: Vec<Member> =
            state.members.iter().filter(|m| m.status_refresh < refresh).cloned().collect();
        for m in &unprobed {
            effects.extend(probe(state, refresh, m));
        }
    }
    effects
}
