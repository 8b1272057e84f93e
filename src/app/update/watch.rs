//! `update`'s share for the watch tail: opening one and its actions.

use crate::app::action::Action;
use crate::app::effect::Effect;
use crate::app::state::{Overlay, State, View};
use crate::app::watch::{TailStatus, WatchTail};

/// Opens a watch tail, stopping the one before.
pub(super) fn open_watch(state: &mut State, prefix: Vec<u8>, is_prefix: bool, start: i64) -> Vec<Effect> {
    let mut effects = Vec::new();
    let id = match &state.watch {
        Some(old) => {
            effects.push(Effect::StopWatch { tail: old.id });
            old.id + 1
        }
        None => 1,
    };
    state.watch = Some(WatchTail::new(id, prefix.clone(), is_prefix, start));
    state.view = View::Watch;
    state.overlay = Overlay::None;
    effects.push(Effect::Watch { tail: id, prefix, is_prefix, start });
    effects
}

/// The watch tail's share of the actions.
pub(super) fn on_watch_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let tail = state.watch.as_mut()?;
    let rows = tail.visible().count();
    match action {
        Action::SwitchView => state.view = View::Members,
        Action::Back => {
            if !tail.filter.is_empty() {
                tail.filter.clear();
            } else {
                state.view = View::Keys;
            }
        }
        Action::Pause => tail.toggle_pause(),
        Action::Up => tail.scroll = (tail.scroll + 1).min(rows.saturating_sub(1)),
        Action::Down => tail.scroll = tail.scroll.saturating_sub(1),
        Action::Top => tail.scroll = rows.saturating_sub(1),
        Action::Bottom => tail.scroll = 0,
        Action::Open | Action::Refresh => {
            // A compacted start: go on from the oldest revision etcd still has.
            if let TailStatus::Compacted { compact_revision, .. } = tail.status {
                let (prefix, is_prefix) = (tail.prefix.clone(), tail.is_prefix);
                return Some(open_watch(state, prefix, is_prefix, compact_revision));
            }
        }
        _ => return None,
    }
    Some(Vec::new())
}
