//! `update`'s share for `:mirror`: reading the checkpoints (on opening, each refresh round, and r),
//! their answers, and the view's keys.

use crate::app::action::Action;
use crate::app::effect::Effect;
use crate::app::mirrors::MirrorRow;
use crate::app::state::{Overlay, State, View};

pub(super) fn open(state: &mut State) -> Vec<Effect> {
    state.view = View::Mirror;
    state.overlay = Overlay::None;
    read(state)
}

/// Reads the checkpoints again (the answer to an older read is then dropped).
pub(super) fn read(state: &mut State) -> Vec<Effect> {
    let request = state.ids.next_id();
    state.mirrors.request = request;
    vec![Effect::Mirrors { request }]
}

pub(super) fn on_read(state: &mut State, request: u64, result: Result<Vec<MirrorRow>, String>) {
    let view = &mut state.mirrors;
    if request != view.request {
        return;
    }
    view.read = true;
    match result {
        Ok(rows) => {
            view.selected = view.selected.min(rows.len().saturating_sub(1));
            view.rows = rows;
            view.error = None;
        }
        // What was read before stays on screen, marked with the error.
        Err(e) => view.error = Some(e),
    }
}

pub(super) fn on_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let view = &mut state.mirrors;
    let last = view.rows.len().saturating_sub(1);
    match action {
        Action::Up => view.selected = view.selected.saturating_sub(1),
        Action::Down => view.selected = (view.selected + 1).min(last),
        Action::Top => view.selected = 0,
        Action::Bottom => view.selected = last,
        Action::Refresh => return Some(read(state)),
        Action::Back => state.view = View::Keys,
        _ => return None,
    }
    Some(Vec::new())
}
