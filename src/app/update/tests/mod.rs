//! `update`'s tests, by feature; the helpers here answer a refresh round as members would.

use std::time::{Duration, Instant};

use super::*;
use crate::app::cluster::StatusInfo;
use crate::app::edit::{self, Dialog, LeaseChoice, Write, WriteOutcome};
use crate::app::fixtures::{self};
use crate::app::keys::KeyRequest;
use crate::app::msg::Msg;
use crate::app::state::{Overlay, Pending, Prompt, View};
use crate::app::watch::TailStatus;

pub(super) fn tick(state: &mut State, at: Instant) -> Vec<Effect> {
    update(state, Input::Tick { now: at, wall: fixtures::wall() })
}

pub(super) fn new_state() -> State {
    State::new(vec!["http://127.0.0.1:2379".into()], None, Duration::from_secs(2))
}

pub(super) fn status_msg(refresh: u64, id: u64, s: StatusInfo) -> Input {
    Input::Msg(Msg::Status { refresh, member_id: id, endpoint: fixtures::endpoint(id), result: Ok(s) })
}

pub(super) fn health_msg(refresh: u64, id: u64, ok: bool) -> Input {
    let result = if ok { Ok(Duration::from_millis(1)) } else { Err("context deadline exceeded".into()) };
    Input::Msg(Msg::Health { refresh, member_id: id, endpoint: fixtures::endpoint(id), result })
}

/// Answers every probe of a round with the given statuses (None: the member is down).
pub(super) fn answer_probes(state: &mut State, effects: &[Effect], statuses: &[(u64, Option<StatusInfo>)]) {
    for e in effects {
        match e {
            Effect::FetchStatus { refresh, member_id, endpoint } => {
                let s = statuses.iter().find(|(id, _)| id == member_id).and_then(|(_, s)| s.clone());
                let result = s.ok_or_else(|| "connection refused".to_string());
                let (refresh, member_id, endpoint) = (*refresh, *member_id, endpoint.clone());
                update(state, Input::Msg(Msg::Status { refresh, member_id, endpoint, result }));
            }
            Effect::CheckHealth { refresh, member_id, .. } => {
                let up = statuses.iter().any(|(id, s)| id == member_id && s.is_some());
                update(state, health_msg(*refresh, *member_id, up));
            }
            _ => {}
        }
    }
}

mod dashboard;
mod keys;
mod space;
