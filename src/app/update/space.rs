//! `update`'s share for `:space`: starting and cancelling a scan, its reports, and its keys.

use crate::app::action::Action;
use crate::app::effect::Effect;
use crate::app::space::SpaceView;
use crate::app::state::{Overlay, State, View};

/// Opens the view on a new scan of `prefix`, cancelling one still running.
pub(super) fn open(state: &mut State, prefix: Vec<u8>) -> Vec<Effect> {
    let mut effects = Vec::new();
    if let Some(old) = state.space.as_ref().filter(|s| s.running()) {
        effects.push(Effect::StopSpace { request: old.request });
    }
    let request = state.ids.next_id();
    let now = state.now.unwrap_or_else(std::time::Instant::now);
    state.space = Some(SpaceView::new(request, prefix.clone(), now));
    state.view = View::Space;
    state.overlay = Overlay::None;
    effects.push(Effect::Space { request, prefix });
    effects
}

/// A report of the scan the view shows (others are stale and dropped).
pub(super) fn on_report(
    state: &mut State,
    request: u64,
    result: Result<crate::app::space::SpaceReport, String>,
) {
    let now = state.now.unwrap_or_else(std::time::Instant::now);
    let Some(view) = state.space.as_mut().filter(|v| v.request == request && v.stopped.is_none()) else {
        return;
    };
    match result {
        Ok(report) => view.report = report,
        Err(e) => view.stopped = Some(e),
    }
    view.updated = now;
}

/// The view's keys: move, Enter opens a group's namespaces (or a namespace's keys), Esc cancels a
/// running scan and otherwise leaves, r scans again.
pub(super) fn on_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let view = state.space.as_mut()?;
    let last = view.rows().len().saturating_sub(1);
    match action {
        Action::Up => view.selected = view.selected.saturating_sub(1),
        Action::Down => view.selected = (view.selected + 1).min(last),
        Action::Top => view.selected = 0,
        Action::Bottom => view.selected = last,
        Action::Open => {
            let rows = view.rows();
            let Some((depth, group)) = rows.get(view.selected).map(|(d, g)| (*d, g.name.clone())) else {
                return Some(Vec::new());
            };
            if depth == 0 {
                view.expanded =
                    if view.expanded.as_deref() == Some(group.as_str()) { None } else { Some(group) };
                return Some(Vec::new());
            }
            // A subgroup: its keys in the browser (as resources under /registry/).
            let parent = view.expanded.clone().unwrap_or_default();
            let mut prefix = view.prefix.clone();
            prefix.extend_from_slice(parent.as_bytes());
            prefix.push(b'/');
            if group != crate::app::space::DIRECT {
                prefix.extend_from_slice(group.as_bytes());
                prefix.push(b'/');
            }
            state.keys.kubernetes = prefix.starts_with(b"/registry/");
            state.keys.tree = None;
            return Some(super::keys::browse(state, prefix));
        }
        Action::Back if view.running() => {
            view.stopped = Some("cancelled".into());
            return Some(vec![Effect::StopSpace { request: view.request }]);
        }
        Action::Back => state.view = View::Keys,
        Action::Refresh => {
            let prefix = view.prefix.clone();
            return Some(open(state, prefix));
        }
        _ => return None,
    }
    Some(Vec::new())
}
