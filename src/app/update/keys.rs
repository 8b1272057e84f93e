//! `update`'s share for the key browser: its actions, the write dialogs and their answers.

use crate::app::action::Action;
use crate::app::edit::{self, Dialog, LeaseChoice, Write, WriteOutcome};
use crate::app::effect::Effect;
use crate::app::input::Typed;
use crate::app::keys::{KeyRequest, Then};
use crate::app::modal::Modal;
use crate::app::state::{InputLine, Overlay, Prompt, State, View};
use crate::app::value_format::{display_bytes, ValueFormat};

use super::watch::open_watch;

/// Keys typed while a dialog is open.
pub(super) fn on_dialog_key(state: &mut State, key: Typed) -> Vec<Effect> {
    let Some(dialog) = state.take_key_dialog() else { return Vec::new() };
    let deliberate_yes = matches!(key, Typed::Char('y') | Typed::Char('Y'));
    let yes = deliberate_yes || key == Typed::Enter;
    let no = matches!(key, Typed::Esc | Typed::Char('n') | Typed::Char('N'));
    match dialog {
        Dialog::Confirm { write, seen, diff, typed: Some(mut typed) } => {
            match key {
                Typed::Char(c) => typed.text.push(c),
                Typed::Backspace => {
                    typed.text.pop();
                }
                Typed::Esc => {
                    state.notice = Some(format!("cancelled: {}", write.describe()));
                    return Vec::new();
                }
                Typed::Enter => {
                    if typed.text == typed.expected {
                        return start_write(state, write, seen);
                    }
                    state.notice =
                        Some(format!("type {} exactly to confirm, or esc to cancel", typed.expected));
                }
            }
            state.modal = Some(Modal::Keys(Dialog::Confirm { write, seen, diff, typed: Some(typed) }));
        }
        Dialog::Confirm { write, seen, .. } if yes => return start_write(state, write, seen),
        // A conflict appears while the user may still be typing: only a deliberate y goes on.
        Dialog::Conflict { write: Write::Delete { .. }, current: None, .. } if yes || no => {
            state.notice = Some("nothing to delete: the key is gone already".into());
            return reload_value(state);
        }
        Dialog::Conflict { write, current, .. } if deliberate_yes => {
            let seen = current.as_ref().map(|c| c.value.clone());
            return start_write(state, write.against(current.as_ref()), seen);
        }
        Dialog::PrefixChanged { prefix, .. } if deliberate_yes => return count_for_delete(state, prefix),
        Dialog::Confirm { write, .. } | Dialog::Conflict { write, .. } if no => {
            state.notice = Some(format!("cancelled: {}", write.describe()));
            // What is on screen may be out of date: read it again.
            return reload_value(state);
        }
        Dialog::PrefixChanged { .. } | Dialog::Counting { .. } if no => {
            state.notice = Some("cancelled".into());
        }
        // A write in flight cannot be called back: its answer (or its timeout) closes the dialog.
        other => state.modal = Some(Modal::Keys(other)),
    }
    Vec::new()
}

/// Asks to put `new` at `key`, showing the change against `old` (None: the key is created).
pub(super) fn confirm_put(
    state: &mut State,
    key: Vec<u8>,
    old: Option<Vec<u8>>,
    new: Vec<u8>,
    expect: i64,
    lease: LeaseChoice,
) -> Vec<Effect> {
    if old.as_deref() == Some(new.as_slice()) {
        state.notice = Some("no change: nothing to write".into());
        return Vec::new();
    }
    let diff = crate::app::value_format::diff(old.as_deref(), Some(&new));
    let write = Write::Put { key, value: new, expect, lease };
    state.modal = Some(Modal::Keys(Dialog::Confirm { write, seen: old, diff, typed: None }));
    Vec::new()
}

/// Sends a write, unless writes are disabled.
pub(super) fn start_write(state: &mut State, write: Write, seen: Option<Vec<u8>>) -> Vec<Effect> {
    if let Some(why) = &state.read_only {
        state.notice = Some(format!("read-only ({why}): {} not done", write.describe()));
        return Vec::new();
    }
    let request = state.ids.next_id();
    state.modal = Some(Modal::Keys(Dialog::Writing { request, write: write.clone(), seen }));
    vec![Effect::Write { request, write }]
}

/// Refuses a write action in read-only mode; true if refused.
pub(super) fn refuse_write(state: &mut State) -> bool {
    match &state.read_only {
        Some(why) => {
            state.notice = Some(format!("read-only ({why}): writes are disabled"));
            true
        }
        None => false,
    }
}

pub(super) fn count_for_delete(state: &mut State, prefix: Vec<u8>) -> Vec<Effect> {
    let request = state.ids.next_id();
    state.modal = Some(Modal::Keys(Dialog::Counting { request, prefix: prefix.clone() }));
    vec![Effect::CountPrefix { request, prefix }]
}

/// Reads the value pane's key again, and the listing, after a write or a cancelled one.
pub(super) fn reload_value(state: &mut State) -> Vec<Effect> {
    let Some(key) = state.keys.value.as_ref().map(|p| p.key.clone()) else { return Vec::new() };
    state.keys.open_key(&mut state.ids, key, None).map(Effect::Keys).into_iter().collect()
}

/// Runs the write the user asked for once the value pane has what the user sees.
pub(super) fn then(state: &mut State, then: Then) -> Vec<Effect> {
    let Some(pane) = state.keys.value.as_ref() else { return Vec::new() };
    let Some(info) = pane.info().cloned() else { return Vec::new() };
    // kube-apiserver owns what it stored: an edit goes through it (kubectl edit), unless the user
    // switched the pane to the stored bytes (text or hex) and means to change those.
    if matches!(then, Then::Edit | Then::EditExternal)
        && !matches!(pane.shown_format(), Some(ValueFormat::Text | ValueFormat::Hex))
    {
        if let Ok(Some(stored)) = crate::etcd::k8s::Stored::read(&info.value) {
            state.notice = Some(format!(
                "not edited: this is kube-apiserver's {}, and the apiserver owns it (use kubectl edit); to change the stored bytes anyway, switch the pane to text or hex (v) and edit again",
                stored.what()
            ));
            return Vec::new();
        }
    }
    match then {
        Then::Edit => {
            let inline = info.value.len() <= 4096
                && !info.value.contains(&b'\n')
                && std::str::from_utf8(&info.value).is_ok_and(|t| !t.chars().any(char::is_control));
            if !inline {
                return vec![Effect::Editor { key: info.key, value: info.value, expect: info.mod_revision }];
            }
            let text = String::from_utf8_lossy(&info.value).into_owned();
            state.input = Some(InputLine {
                prompt: Prompt::Edit { key: info.key, old: info.value, expect: info.mod_revision },
                text,
            });
            Vec::new()
        }
        Then::EditExternal => {
            vec![Effect::Editor { key: info.key, value: info.value, expect: info.mod_revision }]
        }
        Then::Delete => {
            let diff = crate::app::value_format::diff(Some(&info.value), None);
            let write = Write::Delete { key: info.key, expect: info.mod_revision };
            state.modal =
                Some(Modal::Keys(Dialog::Confirm { write, seen: Some(info.value), diff, typed: None }));
            Vec::new()
        }
    }
}

/// A write action on the selected key: runs at once when the pane shows that key's value, else the
/// value is read first and the action runs when it arrives.
pub(super) fn on_selected_key(state: &mut State, what: Then) -> Vec<Effect> {
    if refuse_write(state) {
        return Vec::new();
    }
    // The selected key, whose value must be on screen before anything is written: what the user
    // saw is what the write compares against. With a directory (or nothing loaded) selected, the
    // key in the pane.
    let pane = state.keys.value.as_ref();
    let shown = pane.filter(|p| p.info().is_some()).map(|p| p.key.clone());
    match (state.keys.key_at(state.keys.selected).cloned(), shown) {
        (Some(selected), Some(shown)) if selected == shown => then(state, what),
        (None, Some(_)) => then(state, what),
        (Some(selected), _) => {
            state.keys.open_key(&mut state.ids, selected, Some(what)).map(Effect::Keys).into_iter().collect()
        }
        (None, None) => {
            state.notice = Some("select a key first".into());
            Vec::new()
        }
    }
}

/// Opens the key browser on `prefix`.
pub(super) fn browse(state: &mut State, prefix: Vec<u8>) -> Vec<Effect> {
    state.view = View::Keys;
    state.overlay = Overlay::None;
    vec![Effect::Keys(state.keys.list(&mut state.ids, prefix))]
}

/// The key browser's share of the actions; None for those it leaves to the rest of the console.
pub(super) fn on_key_browser_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let keys = |r: Option<KeyRequest>| Some(r.map(Effect::Keys).into_iter().collect::<Vec<_>>());
    // With the history open, movement walks the versions.
    if let Some(h) = state.keys.history_mut() {
        let count = h.result.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, |r| r.versions.len());
        let last = count.saturating_sub(1);
        match action {
            Action::Up => h.selected = h.selected.saturating_sub(1),
            Action::Down => h.selected = (h.selected + 1).min(last),
            Action::Top => h.selected = 0,
            Action::Bottom => h.selected = last,
            Action::MarkBase => h.base = if h.base == Some(h.selected) { None } else { Some(h.selected) },
            Action::Back | Action::History => {
                if let Some(p) = state.keys.value.as_mut() {
                    p.history = None;
                }
                return Some(Vec::new());
            }
            _ => return on_key_browser_action_plain(state, action).or(Some(Vec::new())),
        }
        h.refresh_diff();
        return Some(Vec::new());
    }
    let mut effects = match action {
        Action::Up => keys(state.keys.step(&mut state.ids, -1)),
        Action::Down => keys(state.keys.step(&mut state.ids, 1)),
        _ => on_key_browser_action_plain(state, action),
    };
    // The value pane shows the key under the cursor, wherever it moved.
    if matches!(action, Action::Up | Action::Down | Action::Top | Action::Bottom) {
        if let Some(effects) = effects.as_mut() {
            effects.extend(state.keys.follow(&mut state.ids).map(Effect::Keys));
        }
    }
    effects
}

pub(super) fn on_key_browser_action_plain(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let keys = |r: Option<KeyRequest>| Some(r.map(Effect::Keys).into_iter().collect::<Vec<_>>());
    let (b, ids) = (&mut state.keys, &mut state.ids);
    let last = b.known.saturating_sub(1);
    match action {
        Action::SwitchView => {
            state.view = if state.watch.is_some() { View::Watch } else { View::Members };
            Some(Vec::new())
        }
        Action::Top => keys(b.move_to(ids, 0)),
        Action::Bottom => keys(b.move_to(ids, last)),
        Action::Open => keys(b.open(ids)),
        Action::Back => {
            // The innermost first: the value pane, then the filter.
            if b.value.take().is_none() {
                b.filter.clear();
            }
            Some(Vec::new())
        }
        Action::Refresh => keys(Some(b.relist(ids))),
        Action::Tree => keys(Some(b.toggle_tree(ids))),
        Action::Parent => match b.parent() {
            Some(parent) => keys(Some(b.list(ids, parent))),
            None => Some(Vec::new()),
        },
        Action::Format => {
            if let Some(pane) = b.value.as_mut() {
                if let Some(format) = pane.shown_format() {
                    pane.format = Some(format.next());
                }
            }
            Some(Vec::new())
        }
        Action::Reveal => {
            match b.value.as_mut() {
                Some(pane)
                    if pane
                        .read()
                        .is_some_and(|r| r.object.as_ref().is_some_and(|o| o.revealed.is_some())) =>
                {
                    pane.reveal = !pane.reveal;
                }
                _ => {
                    state.notice = Some("reveal shows a Kubernetes Secret's data: open a Secret first".into())
                }
            }
            Some(Vec::new())
        }
        Action::ScrollDown | Action::ScrollUp => {
            // A page of the pane on a usual terminal; the render keeps the last page in view.
            const PAGE: usize = 20;
            if let Some(pane) = b.value.as_mut() {
                let last = pane.line_count().saturating_sub(1);
                pane.scroll = match action {
                    Action::ScrollDown => (pane.scroll + PAGE).min(last),
                    _ => pane.scroll.saturating_sub(PAGE),
                };
            }
            Some(Vec::new())
        }
        Action::History => keys(b.toggle_history(ids)),
        Action::New => {
            if refuse_write(state) {
                return Some(Vec::new());
            }
            let prefix = state.keys.prefix.clone();
            state.input =
                Some(InputLine { prompt: Prompt::NewKey, text: String::from_utf8_lossy(&prefix).into() });
            Some(Vec::new())
        }
        Action::Edit => Some(on_selected_key(state, Then::Edit)),
        Action::EditExternal => Some(on_selected_key(state, Then::EditExternal)),
        Action::Delete => Some(on_selected_key(state, Then::Delete)),
        Action::DeletePrefix => {
            if refuse_write(state) {
                return Some(Vec::new());
            }
            let prefix = state.keys.target_prefix();
            Some(count_for_delete(state, prefix))
        }
        Action::CopyKey => {
            let key = match (&b.value, b.row_at(b.selected)) {
                (Some(pane), _) => Some(pane.key.clone()),
                (None, Some(row)) => Some(row.key.clone()),
                _ => None,
            };
            Some(
                key.map(|k| Effect::Copy { what: format!("key {}", display_bytes(&k)), bytes: k })
                    .into_iter()
                    .collect(),
            )
        }
        Action::CopyValue => {
            let value = b.value.as_ref().and_then(|p| p.info()).map(|i| (i.key.clone(), i.value.clone()));
            match value {
                Some((key, value)) => Some(vec![Effect::Copy {
                    what: format!("the value of {} ({} bytes)", display_bytes(&key), value.len()),
                    bytes: value,
                }]),
                None => {
                    state.notice = Some("open a key first (its value is what gets copied)".into());
                    Some(Vec::new())
                }
            }
        }
        Action::WatchKey => {
            let key = b.value.as_ref().map(|p| p.key.clone()).or_else(|| b.key_at(b.selected).cloned());
            match key {
                Some(key) => Some(open_watch(state, key, false, 0)),
                None => Some(Vec::new()),
            }
        }
        Action::WatchPrefix => {
            let prefix = b.target_prefix();
            Some(open_watch(state, prefix, true, 0))
        }
        _ => None,
    }
}

/// A write's answer.
pub(super) fn on_written(
    state: &mut State,
    request: u64,
    result: Result<WriteOutcome, String>,
) -> Vec<Effect> {
    let Some(Dialog::Writing { request: asked, write, seen }) = state.key_dialog().cloned() else {
        return Vec::new();
    };
    if asked != request {
        return Vec::new();
    }
    state.modal = None;
    match result {
        Ok(WriteOutcome::Done { revision, lease, deleted }) => {
            let what = match &write {
                Write::Put { .. } => write.describe(),
                Write::Delete { .. } if deleted == 0 => format!("{} (it was already gone)", write.describe()),
                Write::Delete { .. } => write.describe(),
                Write::DeletePrefix { prefix, .. } => {
                    format!("deleted {deleted} keys under {}", edit::prefix_label(prefix))
                }
            };
            state.notice = Some(format!("✓ {what} at revision {revision} · {}", write.etcdctl(lease)));
            let mut effects = vec![Effect::Keys(state.keys.relist(&mut state.ids))];
            match &write {
                Write::Put { key, .. } => {
                    effects.extend(state.keys.open_key(&mut state.ids, key.clone(), None).map(Effect::Keys));
                }
                _ => state.keys.value = None,
            }
            effects
        }
        Ok(WriteOutcome::Conflict { current }) => {
            state.modal = Some(Modal::Keys(Dialog::conflict(write, seen, current)));
            Vec::new()
        }
        Ok(WriteOutcome::PrefixChanged { count }) => {
            let Write::DeletePrefix { prefix, .. } = write else { return Vec::new() };
            state.modal = Some(Modal::Keys(Dialog::PrefixChanged { prefix, count }));
            Vec::new()
        }
        Err(e) => {
            state.notice = Some(format!("✗ {} failed: {e}", write.describe()));
            Vec::new()
        }
    }
}
