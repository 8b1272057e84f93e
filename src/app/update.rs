//! `update`: the console's only state transition. Pure: no await, no I/O, no clock reads. It returns the
//! effects the workers must run.

use std::time::{Instant, SystemTime};

use crate::app::action::Action;
use crate::app::edit::{self, Dialog, LeaseChoice, TypedConfirm, Write, WriteOutcome};
use crate::app::effect::Effect;
use crate::app::keys::{display_bytes, KeyRequest, Then};
use crate::app::msg::{MemberList, Msg, RefreshId};
use crate::app::state::{InputLine, Member, Overlay, Pending, Prompt, State, View, REFRESH_STEPS};
use crate::app::watch::{TailStatus, WatchTail};

/// Everything that can change the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The user asked for something.
    Action(Action),
    /// A worker reported back.
    Msg(Msg),
    /// Time passed; a refresh starts when one is due.
    Tick { now: Instant, wall: SystemTime },
    /// A key pressed while a line is being typed or a dialog is open.
    Typed(Typed),
    /// Text pasted (the terminal's bracketed paste): inserted into the line being typed, as text.
    Pasted(String),
    /// $EDITOR finished editing `key`'s value `old` (its mod_revision `expect`): the new value, or
    /// why the editor could not run.
    Edited { key: Vec<u8>, old: Vec<u8>, expect: i64, result: Result<Vec<u8>, String> },
}

/// Editing keys of the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    Char(char),
    Backspace,
    Enter,
    Esc,
}

pub fn update(state: &mut State, input: Input) -> Vec<Effect> {
    match input {
        Input::Tick { now, wall } => {
            state.now = Some(now);
            state.wall = wall;
            if let Some(tail) = state.watch.as_mut() {
                tail.tick(now);
            }
            let due = state
                .refresh
                .started_at
                .is_none_or(|started| now.saturating_duration_since(started) >= state.refresh_interval);
            let mut effects = if due { start_refresh(state) } else { Vec::new() };
            effects.extend(crate::app::replace::check_wait(state));
            if state.view == View::Keys {
                // The browser tries a failed listing again, with backoff; the open value is read
                // again each round, so a key changed or deleted elsewhere shows as such.
                effects.extend(state.keys.retry_due(now).map(Effect::Keys));
                if due {
                    effects.extend(state.keys.reread().map(Effect::Keys));
                }
            }
            // A signed-in user: learn once what its roles may read, for where the key browser starts.
            if state.user.is_some() && state.auth.request == 0 {
                effects.extend(crate::app::update_auth::load(state));
            }
            effects
        }
        Input::Typed(key) => on_typed(state, key),
        Input::Pasted(text) => on_pasted(state, text),
        Input::Edited { key, old, expect, result } => match result {
            Ok(new) => confirm_put(state, key, Some(old), new, expect, LeaseChoice::Keep),
            Err(e) => {
                state.notice = Some(format!("✗ {e}"));
                Vec::new()
            }
        },
        Input::Action(action) => on_action(state, action),
        Input::Msg(msg) => {
            let mut effects = on_msg(state, msg);
            // A member's replacement waits on what the refreshes show.
            effects.extend(crate::app::replace::check_wait(state));
            effects
        }
    }
}

fn on_typed(state: &mut State, key: Typed) -> Vec<Effect> {
    if state.snapshot.is_some() {
        crate::app::update_members::on_snapshot_key(state);
        return Vec::new();
    }
    if state.member_dialog.is_some() {
        return crate::app::update_members::on_key(state, key);
    }
    if state.restore.is_some() {
        return crate::app::restore::on_key(state, key);
    }
    if state.dialog.is_some() {
        return on_dialog_key(state, key);
    }
    let Some(line) = state.input.as_mut() else { return Vec::new() };
    let filtering = line.prompt == Prompt::Filter;
    match key {
        Typed::Char(c) => line.text.push(c),
        // On an empty line it does nothing: only Esc closes the prompt, so the letters that follow
        // never run as commands.
        Typed::Backspace => {
            line.text.pop();
        }
        Typed::Esc => {
            state.input = None;
            if filtering {
                return set_filter(state, String::new());
            }
            return Vec::new();
        }
        Typed::Enter => {
            let Some(InputLine { prompt, text }) = state.input.take() else { return Vec::new() };
            return on_line(state, prompt, text);
        }
    }
    if filtering {
        // The filter applies as it is typed.
        let text = state.input.as_ref().map(|l| l.text.clone()).unwrap_or_default();
        return set_filter(state, text);
    }
    Vec::new()
}

/// A paste: one insertion into the line being typed, whatever it holds (newlines too); with no
/// line open it is dropped, never read as keys.
fn on_pasted(state: &mut State, text: String) -> Vec<Effect> {
    if state.modal_mark().is_some() {
        state.notice = Some("paste ignored: a question is open (answer it with the keys shown)".into());
        return Vec::new();
    }
    let Some(line) = state.input.as_mut() else {
        state.notice = Some(format!(
            "paste ignored ({}): open a prompt first (: command, / prefix, e edit, n new)",
            crate::app::format::bytes(text.len() as i64)
        ));
        return Vec::new();
    };
    // Terminals send the line breaks of a paste as CR (a CRLF copied from elsewhere stays two):
    // the text gets the line feeds that were copied.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    line.text.push_str(&text);
    if line.prompt == Prompt::Filter {
        let text = line.text.clone();
        return set_filter(state, text);
    }
    Vec::new()
}

fn set_filter(state: &mut State, text: String) -> Vec<Effect> {
    match state.view {
        View::Watch => {
            if let Some(tail) = state.watch.as_mut() {
                tail.filter = text;
                tail.scroll = 0;
            }
            Vec::new()
        }
        _ => {
            state.keys.filter = text;
            if !state.keys.filter.is_empty() {
                // Onto the first match at or after the selection.
                state.keys.step(0);
            }
            state.keys.follow().map(Effect::Keys).into_iter().collect()
        }
    }
}

/// A typed line was entered.
fn on_line(state: &mut State, prompt: Prompt, text: String) -> Vec<Effect> {
    match prompt {
        Prompt::Search => browse(state, text.into_bytes()),
        Prompt::NewPassword { name } => crate::app::update_auth::on_password(state, name, text),
        Prompt::Command => run_command(state, text.trim()),
        Prompt::Filter => Vec::new(),
        Prompt::Edit { key, old, expect } => {
            confirm_put(state, key, Some(old), text.into_bytes(), expect, LeaseChoice::Keep)
        }
        Prompt::NewKey => {
            if text.is_empty() {
                // etcd's own refusal, before anything is sent.
                state.notice = Some("✗ etcdserver: key is not provided".into());
                return Vec::new();
            }
            state.input =
                Some(InputLine { prompt: Prompt::NewValue { key: text.into_bytes() }, text: String::new() });
            Vec::new()
        }
        Prompt::NewValue { key } => {
            state.input = Some(InputLine {
                prompt: Prompt::NewLease { key, value: text.into_bytes() },
                text: String::new(),
            });
            Vec::new()
        }
        Prompt::NewLease { key, value } => match LeaseChoice::parse(&text) {
            Ok(lease) => confirm_put(state, key, None, value, 0, lease),
            Err(e) => {
                // The line stays, so the mistake can be fixed.
                state.notice = Some(format!("✗ {e}"));
                state.input = Some(InputLine { prompt: Prompt::NewLease { key, value }, text });
                Vec::new()
            }
        },
        prompt @ (Prompt::MemberName
        | Prompt::MemberPeerUrls { .. }
        | Prompt::MemberClientUrls { .. }
        | Prompt::UpdatePeerUrls { .. }
        | Prompt::SnapshotPath { .. }
        | Prompt::CompactTo) => crate::app::update_members::on_line(state, prompt, text),
        Prompt::RestoreFrom => crate::app::restore::on_file(state, text),
        Prompt::WatchFrom { prefix } => match parse_revision(&text) {
            Ok(start) => open_watch(state, prefix, true, start),
            Err(e) => {
                state.notice = Some(format!("✗ {e}"));
                Vec::new()
            }
        },
    }
}

fn parse_revision(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!("bad revision {text:?}: a revision is a whole number (empty: from now)")),
    }
}

/// Keys typed while a dialog is open.
fn on_dialog_key(state: &mut State, key: Typed) -> Vec<Effect> {
    let Some(dialog) = state.dialog.take() else { return Vec::new() };
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
            state.dialog = Some(Dialog::Confirm { write, seen, diff, typed: Some(typed) });
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
        other => state.dialog = Some(other),
    }
    Vec::new()
}

/// Asks to put `new` at `key`, showing the change against `old` (None: the key is created).
fn confirm_put(
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
    let diff = edit::diff(old.as_deref(), Some(&new));
    let write = Write::Put { key, value: new, expect, lease };
    state.dialog = Some(Dialog::Confirm { write, seen: old, diff, typed: None });
    Vec::new()
}

/// Sends a write, unless writes are disabled.
fn start_write(state: &mut State, write: Write, seen: Option<Vec<u8>>) -> Vec<Effect> {
    if let Some(why) = &state.read_only {
        state.notice = Some(format!("read-only ({why}): {} not done", write.describe()));
        return Vec::new();
    }
    let request = state.keys.request_id();
    state.dialog = Some(Dialog::Writing { request, write: write.clone(), seen });
    vec![Effect::Write { request, write }]
}

/// Refuses a write action in read-only mode; true if refused.
fn refuse_write(state: &mut State) -> bool {
    match &state.read_only {
        Some(why) => {
            state.notice = Some(format!("read-only ({why}): writes are disabled"));
            true
        }
        None => false,
    }
}

fn count_for_delete(state: &mut State, prefix: Vec<u8>) -> Vec<Effect> {
    let request = state.keys.request_id();
    state.dialog = Some(Dialog::Counting { request, prefix: prefix.clone() });
    vec![Effect::CountPrefix { request, prefix }]
}

/// Reads the value pane's key again, and the listing, after a write or a cancelled one.
fn reload_value(state: &mut State) -> Vec<Effect> {
    let Some(key) = state.keys.value.as_ref().map(|p| p.key.clone()) else { return Vec::new() };
    state.keys.open_key(key, None).map(Effect::Keys).into_iter().collect()
}

/// Runs the write the user asked for once the value pane has what the user sees.
fn then(state: &mut State, then: Then) -> Vec<Effect> {
    let Some(pane) = state.keys.value.as_ref() else { return Vec::new() };
    let Some(info) = pane.info().cloned() else { return Vec::new() };
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
            let diff = edit::diff(Some(&info.value), None);
            let write = Write::Delete { key: info.key, expect: info.mod_revision };
            state.dialog = Some(Dialog::Confirm { write, seen: Some(info.value), diff, typed: None });
            Vec::new()
        }
    }
}

/// A write action on the selected key: runs at once when the pane shows that key's value, else the
/// value is read first and the action runs when it arrives.
fn on_selected_key(state: &mut State, what: Then) -> Vec<Effect> {
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
            state.keys.open_key(selected, Some(what)).map(Effect::Keys).into_iter().collect()
        }
        (None, None) => {
            state.notice = Some("select a key first".into());
            Vec::new()
        }
    }
}

/// Opens a watch tail, stopping the one before.
fn open_watch(state: &mut State, prefix: Vec<u8>, is_prefix: bool, start: i64) -> Vec<Effect> {
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

/// Opens the key browser on `prefix`.
fn browse(state: &mut State, prefix: Vec<u8>) -> Vec<Effect> {
    state.view = View::Keys;
    state.overlay = Overlay::None;
    vec![Effect::Keys(state.keys.list(prefix))]
}

const COMMANDS: &str =
    ":keys <prefix>, :watch <prefix> [revision], :members, :sep <separator>, :ctx [name], :auth (users and roles)";

fn run_command(state: &mut State, text: &str) -> Vec<Effect> {
    let (name, arg) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let arg = arg.trim();
    match name {
        "keys" | "k" => browse(state, arg.as_bytes().to_vec()),
        "members" | "m" => {
            state.view = View::Members;
            Vec::new()
        }
        "watch" | "w" => {
            if arg.is_empty() {
                if state.watch.is_some() {
                    state.view = View::Watch;
                } else {
                    state.notice = Some("usage: :watch <prefix> [revision]".into());
                }
                return Vec::new();
            }
            // A number at the end is the revision the tail starts at; the rest is the prefix.
            let (prefix, start) = match arg.rsplit_once(char::is_whitespace) {
                Some((p, rev)) if rev.chars().all(|c| c.is_ascii_digit()) => (p.trim(), rev),
                _ => (arg, ""),
            };
            match parse_revision(start) {
                Ok(start) => open_watch(state, prefix.as_bytes().to_vec(), true, start),
                Err(e) => {
                    state.notice = Some(format!("✗ {e}"));
                    Vec::new()
                }
            }
        }
        "ctx" | "context" => switch_context(state, arg),
        name if crate::app::update_auth::COMMANDS.contains(&name) => {
            crate::app::update_auth::command(state, name, arg)
        }
        "sep" => {
            if arg.is_empty() {
                state.notice = Some("usage: :sep <separator> (the tree splits keys at it)".into());
                return Vec::new();
            }
            state.keys.separator = arg.as_bytes().to_vec();
            state.view = View::Keys;
            state.keys.tree = Some(state.keys.separator.clone());
            vec![Effect::Keys(state.keys.list(Vec::new()))]
        }
        "" => Vec::new(),
        other => {
            state.notice = Some(format!("unknown command :{other} (commands: {COMMANDS})"));
            Vec::new()
        }
    }
}

/// `:ctx` lists the saved contexts; `:ctx NAME` connects to one.
fn switch_context(state: &mut State, name: &str) -> Vec<Effect> {
    let current = state.context.as_ref().map(|c| c.name.as_str());
    if name.is_empty() {
        state.notice = Some(if state.contexts.is_empty() {
            "no saved contexts: add [contexts.NAME] to ~/.config/etcdeck/config.toml".into()
        } else {
            let list: Vec<String> = state
                .contexts
                .iter()
                .map(|c| if Some(c.as_str()) == current { format!("{c} (current)") } else { c.clone() })
                .collect();
            format!("contexts: {} (:ctx NAME switches)", list.join(", "))
        });
        return Vec::new();
    }
    if state.demo {
        state.notice = Some("the demo's console stays on its own cluster; run etcdeck --context NAME".into());
        return Vec::new();
    }
    if !state.contexts.iter().any(|c| c == name) {
        state.notice = Some(format!("✗ unknown context {name:?} (contexts: {})", state.contexts.join(", ")));
        return Vec::new();
    }
    if current == Some(name) {
        state.notice = Some(format!("already on context {name}"));
        return Vec::new();
    }
    vec![Effect::SwitchContext { name: name.to_string() }]
}

fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Command => {
            state.input = Some(InputLine { prompt: Prompt::Command, text: String::new() });
            return Vec::new();
        }
        Action::Search => {
            state.input = Some(InputLine { prompt: Prompt::Search, text: String::new() });
            return Vec::new();
        }
        Action::Filter if state.view != View::Members => {
            let text = match state.view {
                View::Watch => state.watch.as_ref().map(|t| t.filter.clone()).unwrap_or_default(),
                _ => state.keys.filter.clone(),
            };
            state.input = Some(InputLine { prompt: Prompt::Filter, text });
            return Vec::new();
        }
        _ => {}
    }
    if state.overlay != Overlay::Help {
        let taken = match state.view {
            View::Keys => on_key_browser_action(state, action),
            View::Watch => on_watch_action(state, action),
            View::Members => crate::app::update_members::on_action(state, action),
            View::Auth => crate::app::update_auth::on_action(state, action),
        };
        if let Some(effects) = taken {
            return effects;
        }
    }
    let last = state.members.len().saturating_sub(1);
    match action {
        Action::SwitchView => {
            state.overlay = Overlay::None;
            state.view = View::Keys;
            if state.keys.next_request == 0 {
                return vec![Effect::Keys(state.keys.list(state.keys_start.clone()))];
            }
        }
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
        // Opened above, before the views take their share.
        Action::Command | Action::Search => {}
        // Actions of the other views.
        Action::Filter
        | Action::Tree
        | Action::Parent
        | Action::Format
        | Action::History
        | Action::MarkBase
        | Action::New
        | Action::Edit
        | Action::EditExternal
        | Action::Delete
        | Action::DeletePrefix
        | Action::CopyKey
        | Action::CopyValue
        | Action::WatchKey
        | Action::WatchPrefix
        | Action::Pause
        | Action::Promote
        | Action::MoveLeader
        | Action::Snapshot
        | Action::Compact
        | Action::Defragment
        | Action::Disarm
        | Action::Restore
        | Action::ReplaceMember => {}
        Action::KillMember | Action::StartMember => {
            let start = action == Action::StartMember;
            if !state.demo {
                state.notice = Some("only etcdeck demo starts and stops members' processes".into());
                return Vec::new();
            }
            match state.selected_member().map(|m| (m.info.id, m.info.name.clone())) {
                Some((_, name)) if start && !name.is_empty() => {
                    state.notice = Some(format!("starting {name}…"));
                    return vec![Effect::MemberProcess { name, start }];
                }
                // A kill asks first, saying what it does to the quorum.
                Some((id, name)) if !name.is_empty() => {
                    let notes = crate::app::members::kill_notes(state, id);
                    let deliberate = notes.iter().any(|n| n.loud);
                    let op = crate::app::members::MemberOp::Kill { id, name };
                    state.member_dialog =
                        Some(crate::app::members::MemberDialog::Confirm { op, notes, deliberate });
                }
                _ => state.notice = Some("select a started member first".into()),
            }
        }
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
                crate::etcd::duration::format_go_duration(state.refresh_interval)
            ));
        }
    }
    Vec::new()
}

/// The key browser's share of the actions; None for those it leaves to the rest of the console.
fn on_key_browser_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
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
        Action::Up => keys(state.keys.step(-1)),
        Action::Down => keys(state.keys.step(1)),
        _ => on_key_browser_action_plain(state, action),
    };
    // The value pane shows the key under the cursor, wherever it moved.
    if matches!(action, Action::Up | Action::Down | Action::Top | Action::Bottom) {
        if let Some(effects) = effects.as_mut() {
            effects.extend(state.keys.follow().map(Effect::Keys));
        }
    }
    effects
}

fn on_key_browser_action_plain(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    let keys = |r: Option<KeyRequest>| Some(r.map(Effect::Keys).into_iter().collect::<Vec<_>>());
    let b = &mut state.keys;
    let last = b.known.saturating_sub(1);
    match action {
        Action::SwitchView => {
            state.view = if state.watch.is_some() { View::Watch } else { View::Members };
            Some(Vec::new())
        }
        Action::Top => keys(b.move_to(0)),
        Action::Bottom => keys(b.move_to(last)),
        Action::Open => keys(b.open()),
        Action::Back => {
            // The innermost first: the value pane, then the filter.
            if b.value.take().is_none() {
                b.filter.clear();
            }
            Some(Vec::new())
        }
        Action::Refresh => keys(Some(b.relist())),
        Action::Tree => keys(Some(b.toggle_tree())),
        Action::Parent => match b.parent() {
            Some(parent) => keys(Some(b.list(parent))),
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
        Action::History => keys(b.toggle_history()),
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

/// The watch tail's share of the actions.
fn on_watch_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
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

/// Starts a refresh round: the member list, and a probe of every known member at once (the member
/// list's answer adds probes for members not known yet).
/// A refresh round now (for what a change did, without waiting for the next tick).
pub(crate) fn refresh_now(state: &mut State) -> Vec<Effect> {
    start_refresh(state)
}

fn start_refresh(state: &mut State) -> Vec<Effect> {
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

fn probe(state: &mut State, refresh: RefreshId, member: &Member) -> Vec<Effect> {
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
fn send(state: &mut State, request: Pending) -> bool {
    if !state.refresh.in_flight.insert(request) {
        return false;
    }
    state.refresh.pending.insert(request);
    true
}

fn on_msg(state: &mut State, msg: Msg) -> Vec<Effect> {
    let mut effects = Vec::new();
    let (refresh, done) = match msg {
        Msg::KeyPage { request, result } => {
            if result.is_ok() && state.keys.loading.is_some_and(|(r, _)| r == request) {
                state.keys.listed_at = Some(state.wall);
            }
            return state.keys.on_page(request, result).into_iter().map(Effect::Keys).collect();
        }
        Msg::KeyCount { request, result } => {
            state.keys.on_count(request, result);
            return effects;
        }
        Msg::Value { request, result } => {
            return match state.keys.on_value(request, result) {
                // The user went on to something else while the value was on its way: a dialog
                // opened now would take keys typed for that.
                Some(_) if state.dialog.is_some() || state.input.is_some() => {
                    state.notice = Some("the value arrived while you were busy: nothing done".into());
                    effects
                }
                Some(next) => then(state, next),
                None => effects,
            };
        }
        Msg::History { request, result } => {
            state.keys.on_history(request, result);
            return effects;
        }
        Msg::Written { request, result } => return on_written(state, request, result),
        msg @ (Msg::SnapshotProgress { .. } | Msg::SnapshotSaved { .. }) => {
            crate::app::update_members::on_snapshot_msg(state, msg);
            return Vec::new();
        }
        Msg::Member { request, result } => {
            if let Some(effects) = crate::app::replace::on_member_answer(state, request, &result) {
                return effects;
            }
            if crate::app::update_members::on_answer(state, request, result) {
                let auth = matches!(
                    &state.member_dialog,
                    Some(crate::app::members::MemberDialog::Result {
                        op: crate::app::members::MemberOp::Auth(_),
                        ..
                    })
                );
                if auth {
                    return crate::app::update_auth::load(state);
                }
                return start_refresh(state);
            }
            return Vec::new();
        }
        Msg::Auth { request, result } => return crate::app::update_auth::on_listing(state, request, result),
        Msg::ReplaceProcess { request, result } => {
            return crate::app::replace::on_process_answer(state, request, result);
        }
        Msg::SnapshotFile { request, result } => {
            crate::app::restore::on_file_checked(state, request, result);
            return Vec::new();
        }
        Msg::RestoreDirs { request, result } => {
            return crate::app::restore::on_restored_dirs(state, request, result)
        }
        Msg::Restored { request, result } => {
            if crate::app::restore::on_finished(state, request, result) {
                return start_refresh(state);
            }
            return Vec::new();
        }
        Msg::MemberProgress { request, text } => {
            crate::app::update_members::on_progress(state, request, text);
            return Vec::new();
        }
        Msg::Process { result } => {
            state.notice = Some(result.unwrap_or_else(|e| format!("error: {e}")));
            // Show the consequences without waiting for the next refresh.
            return start_refresh(state);
        }
        Msg::PrefixCount { request, result } => {
            let Some(Dialog::Counting { request: asked, prefix }) = state.dialog.clone() else {
                return effects;
            };
            if asked != request {
                return effects;
            }
            state.dialog = None;
            match result {
                Ok((0, _)) => state.notice = Some(format!("no keys under {}", edit::prefix_label(&prefix))),
                Ok((count, revision)) => {
                    let expected = edit::typed_confirmation(&prefix);
                    state.dialog = Some(Dialog::Confirm {
                        write: Write::DeletePrefix { prefix, count, revision },
                        seen: None,
                        diff: Vec::new(),
                        typed: Some(TypedConfirm { expected, text: String::new() }),
                    });
                }
                Err(e) => {
                    state.notice =
                        Some(format!("✗ counting the keys under {}: {e}", edit::prefix_label(&prefix)))
                }
            }
            return effects;
        }
        Msg::Watch { tail, report, .. } => {
            if let Some(t) = state.watch.as_mut().filter(|t| t.id == tail) {
                t.on_report(report);
            }
            return effects;
        }
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
        Msg::Status { refresh, member_id, endpoint, result } => {
            if let Some(m) = state.members.iter_mut().find(|m| m.info.id == member_id) {
                // A reply from an endpoint the member no longer has is not news about it, and the
                // request to its new endpoint is still the one in flight.
                if m.endpoint() != Some(endpoint.as_str()) {
                    return effects;
                }
                if refresh >= m.status_refresh {
                    m.status_refresh = refresh;
                    m.status = Some(result);
                }
            }
            (refresh, Pending::Status(member_id))
        }
        Msg::Health { refresh, member_id, endpoint, result } => {
            if let Some(m) = state.members.iter_mut().find(|m| m.info.id == member_id) {
                if m.endpoint() != Some(endpoint.as_str()) {
                    return effects;
                }
                if refresh >= m.health_refresh {
                    m.health_refresh = refresh;
                    m.health = Some(result);
                }
            }
            (refresh, Pending::Health(member_id))
        }
    };
    state.refresh.in_flight.remove(&done);
    if state.refresh.current == Some(refresh) {
        state.refresh.pending.remove(&done);
        if state.refresh.pending.is_empty() {
            state.refresh.current = None;
            state.refresh.completed += 1;
            state.refresh.completed_id = Some(refresh);
            state.refresh.completed_at = Some(state.wall);
        }
    }
    effects
}

/// A write's answer.
fn on_written(state: &mut State, request: u64, result: Result<WriteOutcome, String>) -> Vec<Effect> {
    let Some(Dialog::Writing { request: asked, write, seen }) = state.dialog.clone() else {
        return Vec::new();
    };
    if asked != request {
        return Vec::new();
    }
    state.dialog = None;
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
            let mut effects = vec![Effect::Keys(state.keys.relist())];
            match &write {
                Write::Put { key, .. } => {
                    effects.extend(state.keys.open_key(key.clone(), None).map(Effect::Keys));
                }
                _ => state.keys.value = None,
            }
            effects
        }
        Ok(WriteOutcome::Conflict { current }) => {
            state.dialog = Some(Dialog::conflict(write, seen, current));
            Vec::new()
        }
        Ok(WriteOutcome::PrefixChanged { count }) => {
            let Write::DeletePrefix { prefix, .. } = write else { return Vec::new() };
            state.dialog = Some(Dialog::PrefixChanged { prefix, count });
            Vec::new()
        }
        Err(e) => {
            state.notice = Some(format!("✗ {} failed: {e}", write.describe()));
            Vec::new()
        }
    }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::app::fixtures::{self, ID1, ID2, ID3};
    use crate::app::keys::{KeyPage, Row, ValueInfo, ValueRead};
    use crate::app::members::MemberDialog;
    use crate::app::msg::{Alarm, AlarmKind, StatusInfo};
    use crate::app::state::Leadership;

    fn tick(state: &mut State, at: Instant) -> Vec<Effect> {
        update(state, Input::Tick { now: at, wall: fixtures::wall() })
    }

    fn new_state() -> State {
        State::new(vec!["http://127.0.0.1:2379".into()], None, Duration::from_secs(2))
    }

    fn status_msg(refresh: u64, id: u64, s: StatusInfo) -> Input {
        Input::Msg(Msg::Status { refresh, member_id: id, endpoint: fixtures::endpoint(id), result: Ok(s) })
    }

    fn health_msg(refresh: u64, id: u64, ok: bool) -> Input {
        let result = if ok { Ok(Duration::from_millis(1)) } else { Err("context deadline exceeded".into()) };
        Input::Msg(Msg::Health { refresh, member_id: id, endpoint: fixtures::endpoint(id), result })
    }

    /// Answers every probe of a round with the given statuses (None: the member is down).
    fn answer_probes(state: &mut State, effects: &[Effect], statuses: &[(u64, Option<StatusInfo>)]) {
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

    #[test]
    fn demo_keys_kill_and_start_the_selected_member_only_in_the_demo() {
        let mut state = fixtures::healthy();
        assert!(update(&mut state, Input::Action(Action::KillMember)).is_empty());
        assert_eq!(state.notice.as_deref(), Some("only etcdeck demo starts and stops members' processes"));
        state.demo = true;
        state.selected = 1;
        let name = state.members[1].info.name.clone();
        // A kill asks first, naming the member and what happens to the quorum.
        assert!(update(&mut state, Input::Action(Action::KillMember)).is_empty());
        let Some(MemberDialog::Confirm { op, notes, .. }) = &state.member_dialog else {
            panic!("{:?}", state.member_dialog)
        };
        assert!(op.describe().starts_with(&format!("kill member {name} (")), "{}", op.describe());
        assert!(
            notes[0].text.starts_with("quorum holds: 2 of 3 voting members stay up, 2 needed"),
            "{notes:?}"
        );
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert_eq!(effects, vec![Effect::MemberProcess { name: name.clone(), start: false }]);
        assert!(state.member_dialog.is_none());
        // With one down already, a second kill loses the quorum: loud, and Enter is not enough.
        state.members[0].status = Some(Err("connection refused".into()));
        update(&mut state, Input::Action(Action::KillMember));
        let Some(MemberDialog::Confirm { notes, deliberate: true, .. }) = &state.member_dialog else {
            panic!("{:?}", state.member_dialog)
        };
        assert!(notes[0].loud && notes[0].text.starts_with("QUORUM LOST: 1 of 3"), "{notes:?}");
        assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty());
        update(&mut state, Input::Typed(Typed::Esc));
        assert!(state.member_dialog.is_none());
        let effects = update(&mut state, Input::Action(Action::StartMember));
        assert_eq!(effects, vec![Effect::MemberProcess { name, start: true }]);
        // The outcome is the notice, and the dashboard refreshes to show it.
        let effects = update(&mut state, Input::Msg(Msg::Process { result: Err("n2 is running".into()) }));
        assert_eq!(state.notice.as_deref(), Some("error: n2 is running"));
        assert!(effects.iter().any(|e| matches!(e, Effect::ListMembers { .. })), "{effects:?}");
    }

    #[test]
    fn first_tick_lists_members_then_probes_each_started_member() {
        let mut state = new_state();
        let t0 = Instant::now();
        assert_eq!(tick(&mut state, t0), vec![Effect::ListMembers { refresh: 1 }]);
        let mut list = fixtures::member_list();
        list.members[2].name.clear();
        list.members[2].client_urls.clear();
        let effects = update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
        assert_eq!(
            effects,
            vec![
                Effect::FetchStatus { refresh: 1, member_id: ID1, endpoint: "http://127.0.0.1:2379".into() },
                Effect::CheckHealth {
                    refresh: 1,
                    member_id: ID1,
                    endpoint: "http://127.0.0.1:2379".into(),
                    serializable: false
                },
                Effect::FetchStatus { refresh: 1, member_id: ID2, endpoint: "http://127.0.0.2:2379".into() },
                Effect::CheckHealth {
                    refresh: 1,
                    member_id: ID2,
                    endpoint: "http://127.0.0.2:2379".into(),
                    serializable: false
                },
            ],
            "the unstarted member is not probed"
        );
        assert!(!state.has_complete_view());
        answer_probes(
            &mut state,
            &effects,
            &[
                (ID1, Some(fixtures::status(ID1, ID1, 2, 9, 9))),
                (ID2, Some(fixtures::status(ID2, ID1, 2, 9, 9))),
            ],
        );
        assert!(state.has_complete_view());
        assert_eq!(state.refresh.completed_at, Some(fixtures::wall()));
        assert_eq!(state.cluster_id, Some(fixtures::CLUSTER));
        assert_eq!(state.leadership(), Leadership::Leader(ID1));
        assert!(state.problems().iter().any(|p| p.contains("etcd-3") || p.contains("not started")));
    }

    #[test]
    fn refreshes_start_on_the_interval_and_probe_known_members_at_once() {
        let mut state = new_state();
        let t0 = Instant::now();
        tick(&mut state, t0);
        let probes =
            update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
        let up = |id| (id, Some(fixtures::status(id, ID1, 7, 1, 1)));
        answer_probes(&mut state, &probes, &[up(ID1), up(ID2), up(ID3)]);
        assert!(tick(&mut state, t0 + Duration::from_millis(1999)).is_empty());
        let effects = tick(&mut state, t0 + Duration::from_secs(2));
        assert_eq!(
            effects.len(),
            1 + 3 * 2,
            "member list plus status and health for each member: {effects:?}"
        );
        assert!(effects.iter().all(|e| match e {
            Effect::ListMembers { refresh }
            | Effect::FetchStatus { refresh, .. }
            | Effect::CheckHealth { refresh, .. } => *refresh == 2,
            _ => false,
        }));
        // A manual refresh starts a round at once.
        update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(fixtures::member_list()) }));
        answer_probes(&mut state, &effects, &[up(ID1), up(ID2), up(ID3)]);
        let effects = update(&mut state, Input::Action(Action::Refresh));
        assert!(effects.contains(&Effect::ListMembers { refresh: 3 }));
    }

    #[test]
    fn a_reply_older_than_what_is_shown_is_dropped() {
        let mut state = new_state();
        state.members = fixtures::degraded().members;
        update(&mut state, status_msg(5, ID1, fixtures::status(ID1, ID1, 9, 100, 100)));
        update(&mut state, status_msg(4, ID1, fixtures::status(ID1, ID1, 8, 50, 50)));
        assert_eq!(state.member(ID1).and_then(|m| m.status_ok()).map(|s| s.raft_term), Some(9));
        // An old round's reply is still news for a member that has nothing newer.
        update(&mut state, status_msg(4, ID3, fixtures::status(ID3, ID1, 8, 50, 50)));
        assert!(state.member(ID3).is_some_and(|m| m.is_up()));
        // An old member list never replaces a newer one.
        update(&mut state, Input::Msg(Msg::Members { refresh: 6, result: Ok(fixtures::member_list()) }));
        let mut old = fixtures::member_list();
        old.members.truncate(1);
        update(&mut state, Input::Msg(Msg::Members { refresh: 5, result: Ok(old) }));
        assert_eq!(state.members.len(), 3);
    }

    #[test]
    fn a_member_that_goes_down_shows_down_with_its_error_and_a_new_leader() {
        let mut state = fixtures::healthy();
        let t0 = Instant::now();
        let effects = tick(&mut state, t0);
        // etcd-1, the leader, is killed; the others elect etcd-2 in term 8.
        answer_probes(
            &mut state,
            &effects,
            &[
                (ID2, Some(fixtures::status(ID2, ID2, 8, 5300, 5300))),
                (ID3, Some(fixtures::status(ID3, ID2, 8, 5300, 5300))),
            ],
        );
        let m1 = state.member(ID1).expect("etcd-1 still listed");
        assert_eq!(crate::app::report::member_health(m1), "down");
        assert_eq!(m1.status, Some(Err("connection refused".into())));
        assert_eq!(state.leadership(), Leadership::Leader(ID2));
        assert_eq!(state.members_up(), (2, 3));
        assert!(state.quorum_holds());
        let problems = state.problems();
        assert!(
            problems
                .iter()
                .any(|p| p == "member etcd-1 (8e9e05c52164694d) is unreachable: connection refused"),
            "{problems:?}"
        );
    }

    #[test]
    fn leadership_while_the_old_leader_is_down_and_before_an_election() {
        let mut state = fixtures::healthy();
        state.members[0].status = Some(Err("refused".into()));
        assert_eq!(state.leadership(), Leadership::LeaderDown(ID1));
        assert!(!state.quorum_holds());
        for m in &mut state.members[1..] {
            m.status = Some(Ok(fixtures::status(m.info.id, 0, 8, 10, 10)));
        }
        assert_eq!(state.leadership(), Leadership::NoLeader);
        assert!(state.problems().contains(&"no leader".to_string()));
        state.members[1].status = Some(Ok(fixtures::status(ID2, ID2, 8, 10, 10)));
        state.members[2].status = Some(Ok(fixtures::status(ID3, ID3, 8, 10, 10)));
        assert_eq!(state.leadership(), Leadership::Disputed(vec![ID2, ID3]));
        // A stale lower-term claim does not count against the newest term.
        state.members[2].status = Some(Ok(fixtures::status(ID3, ID1, 7, 10, 10)));
        assert_eq!(state.leadership(), Leadership::Leader(ID2));
    }

    #[test]
    fn quorum_and_health_are_counted_as_etcd_counts_them() {
        // Two of three up with a leader: quorum holds, though the third is down.
        let mut state = fixtures::healthy();
        state.members[2].status = Some(Err("refused".into()));
        state.members[2].health = Some(Err("refused".into()));
        assert!(state.quorum_holds());
        // A member whose read went through but knows no leader is not healthy (etcd's /health is
        // false, "RAFT NO LEADER"), and without a leader there is no quorum.
        for m in &mut state.members[..2] {
            m.status = Some(Ok(fixtures::status(m.info.id, 0, 9, 10, 10)));
            m.health = Some(Ok(Duration::from_millis(1)));
        }
        assert!(!state.members[0].is_healthy());
        assert_eq!(crate::app::report::member_health(&state.members[0]), "no leader");
        assert!(!state.quorum_holds());
        // Learners do not count: one voter of two up is no quorum, whatever the learners do.
        let mut state = fixtures::with_learner_and_unstarted();
        let voters = state.members.iter().filter(|m| !m.info.is_learner).count();
        let learners = state.members.len() - voters;
        assert!(learners >= 1);
        let mut down = 0;
        for m in state.members.iter_mut().filter(|m| !m.info.is_learner) {
            if down < voters - voters / 2 {
                m.status = Some(Err("refused".into()));
                down += 1;
            }
        }
        let leader_up = state.members.iter().any(|m| m.info.id == ID1 && m.is_up());
        assert!(!state.quorum_holds(), "a minority of voters up (leader up: {leader_up})");
    }

    #[test]
    fn a_healthy_cluster_has_no_problems_and_a_degraded_one_names_each() {
        assert_eq!(fixtures::healthy().problems(), Vec::<String>::new());
        let problems = fixtures::degraded().problems();
        assert_eq!(
            problems,
            vec![
                "member etcd-3 (fd422379fda50e48) is unreachable: tcp connect error: Connection refused (os error 111)",
                "alarm NOSPACE on member etcd-2 (91bc3c398fb3c146)",
            ]
        );
    }

    #[test]
    fn lag_is_the_leaders_commit_index_minus_the_members_applied_index() {
        let state = fixtures::degraded();
        assert_eq!(state.applied_lag(&state.members[1]), Some(3));
        assert_eq!(state.applied_lag(&state.members[0]), Some(0));
        assert_eq!(state.applied_lag(&state.members[2]), None);
    }

    #[test]
    fn a_removed_member_does_not_hold_the_round_open() {
        let mut state = fixtures::healthy();
        let effects = tick(&mut state, Instant::now());
        let mut list = fixtures::member_list();
        list.members.retain(|m| m.id != ID3);
        update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
        let rest: Vec<Effect> = effects
            .into_iter()
            .filter(|e| {
                !matches!(
                    e,
                    Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
                )
            })
            .collect();
        answer_probes(
            &mut state,
            &rest,
            &[
                (ID1, Some(fixtures::status(ID1, ID1, 7, 1, 1))),
                (ID2, Some(fixtures::status(ID2, ID1, 7, 1, 1))),
            ],
        );
        assert_eq!(state.members.len(), 2);
        assert_eq!(state.refresh.current, None, "round complete without the removed member");
        assert_eq!(state.refresh.completed, 5);
    }

    #[test]
    fn member_list_failure_keeps_the_last_members_and_says_why() {
        let mut state = fixtures::healthy();
        tick(&mut state, Instant::now());
        update(
            &mut state,
            Input::Msg(Msg::Members { refresh: 1, result: Err("context deadline exceeded".into()) }),
        );
        assert_eq!(state.members.len(), 3);
        assert_eq!(state.problems()[0], "cannot list members: context deadline exceeded");
        state.members_listed_at = Some(fixtures::wall());
        let said = state.problems()[0].clone();
        assert!(said.contains("(last listed ") && said.ends_with("Z, tried again each refresh)"), "{said}");
    }

    #[test]
    fn keys_move_the_selection_and_open_and_close_panes() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::Up));
        assert_eq!(state.selected, 0);
        update(&mut state, Input::Action(Action::Down));
        update(&mut state, Input::Action(Action::Down));
        update(&mut state, Input::Action(Action::Down));
        assert_eq!(state.selected, 2);
        update(&mut state, Input::Action(Action::Top));
        assert_eq!(state.selected, 0);
        update(&mut state, Input::Action(Action::Bottom));
        update(&mut state, Input::Action(Action::Open));
        assert_eq!(state.overlay, Overlay::Detail(ID3));
        update(&mut state, Input::Action(Action::Back));
        assert_eq!(state.overlay, Overlay::None);
        update(&mut state, Input::Action(Action::Help));
        assert_eq!(state.overlay, Overlay::Help);
        update(&mut state, Input::Action(Action::Help));
        assert_eq!(state.overlay, Overlay::None);
        update(&mut state, Input::Action(Action::Quit));
        assert!(state.should_quit);
    }

    #[test]
    fn the_selection_follows_its_member_when_the_list_changes() {
        let mut state = fixtures::healthy();
        state.selected = 1; // etcd-2
        update(&mut state, Input::Action(Action::Open));
        let mut list = fixtures::member_list();
        list.members.retain(|m| m.id != ID1);
        update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
        assert_eq!(state.selected_member().map(|m| m.info.id), Some(ID2));
        assert_eq!(state.overlay, Overlay::Detail(ID2));
        list = fixtures::member_list();
        list.members.retain(|m| m.id == ID1);
        update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(list) }));
        assert_eq!(state.overlay, Overlay::None, "the detail of a removed member closes");
        assert_eq!(state.selected, 0);
    }

    #[test]
    fn faster_and_slower_step_through_the_intervals() {
        let mut state = new_state();
        update(&mut state, Input::Action(Action::FasterRefresh));
        assert_eq!(state.refresh_interval, Duration::from_secs(1));
        update(&mut state, Input::Action(Action::FasterRefresh));
        update(&mut state, Input::Action(Action::FasterRefresh));
        assert_eq!(state.refresh_interval, Duration::from_millis(500));
        update(&mut state, Input::Action(Action::SlowerRefresh));
        assert_eq!(state.refresh_interval, Duration::from_secs(1));
        assert_eq!(state.notice.as_deref(), Some("refreshing every 1s"));
        // An interval between the steps moves to the neighbouring step.
        state.refresh_interval = Duration::from_secs(3);
        update(&mut state, Input::Action(Action::SlowerRefresh));
        assert_eq!(state.refresh_interval, Duration::from_secs(5));
    }

    #[test]
    fn alarms_come_from_status_errors() {
        assert_eq!(
            Alarm::parse_status_error("memberID:10276657743932975437 alarm:NOSPACE "),
            Some(Alarm { member_id: 10276657743932975437, kind: AlarmKind::Nospace })
        );
        assert_eq!(
            Alarm::parse_status_error("member_id:7 alarm:CORRUPT"),
            Some(Alarm { member_id: 7, kind: AlarmKind::Corrupt })
        );
        assert_eq!(Alarm::parse_status_error("etcdserver: no leader"), None);
        assert_eq!(Alarm::parse_status_error("memberID:x alarm:NOSPACE"), None);
        let state = fixtures::degraded();
        assert_eq!(state.active_alarms(), vec![Alarm { member_id: ID2, kind: AlarmKind::Nospace }]);
    }

    #[test]
    fn a_hung_member_is_not_asked_again_and_later_rounds_complete_without_it() {
        let mut state = fixtures::healthy();
        let t0 = Instant::now();
        let first = tick(&mut state, t0);
        // etcd-3 is frozen: its requests stay unanswered; everything else answers.
        let answered: Vec<Effect> = first
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
                )
            })
            .cloned()
            .collect();
        update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
        answer_probes(
            &mut state,
            &answered,
            &[
                (ID1, Some(fixtures::status(ID1, ID1, 7, 1, 1))),
                (ID2, Some(fixtures::status(ID2, ID1, 7, 1, 1))),
            ],
        );
        assert_eq!(state.refresh.current, Some(1), "round 1 waits for etcd-3");

        let second = tick(&mut state, t0 + Duration::from_secs(2));
        assert!(
            !second.iter().any(|e| matches!(
                e,
                Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
            )),
            "no second request to the hung member: {second:?}"
        );
        update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(fixtures::member_list()) }));
        answer_probes(
            &mut state,
            &second,
            &[
                (ID1, Some(fixtures::status(ID1, ID1, 7, 2, 2))),
                (ID2, Some(fixtures::status(ID2, ID1, 7, 2, 2))),
            ],
        );
        assert_eq!(state.refresh.completed_id, Some(2), "round 2 completes without the hung member");

        // Its timeout finally arrives (from round 1) and still shows, being newer than what the row had.
        update(
            &mut state,
            Input::Msg(Msg::Status {
                refresh: 1,
                member_id: ID3,
                endpoint: fixtures::endpoint(ID3),
                result: Err("context deadline exceeded (after 5s)".into()),
            }),
        );
        update(&mut state, health_msg(1, ID3, false));
        assert_eq!(crate::app::report::member_health(state.member(ID3).expect("etcd-3")), "down");
        // And the next round asks it again.
        let third = tick(&mut state, t0 + Duration::from_secs(4));
        assert!(third.iter().any(|e| matches!(e, Effect::FetchStatus { member_id: ID3, .. })));
    }

    #[test]
    fn a_partitioned_member_with_a_higher_term_does_not_hide_the_majoritys_leader() {
        let mut state = fixtures::healthy();
        // etcd-3 is cut off: it runs elections on its own, term 12, knows no leader.
        let mut cut_off = fixtures::status(ID3, 0, 12, 5210, 5210);
        cut_off.errors = vec!["etcdserver: no leader".into()];
        state.members[2].status = Some(Ok(cut_off));
        state.members[2].health = Some(Err("context deadline exceeded".into()));
        assert_eq!(state.leadership(), Leadership::Leader(ID1));
        assert!(state.quorum_holds());
        let problems = state.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0], "member etcd-3 (fd422379fda50e48) reports errors: etcdserver: no leader");
        assert_eq!(problems[1], "member etcd-3 (fd422379fda50e48) is unhealthy: context deadline exceeded");
    }

    #[test]
    fn pressing_refresh_twice_in_one_round_trip_keeps_the_round() {
        let mut state = fixtures::healthy();
        let effects = tick(&mut state, Instant::now());
        assert!(update(&mut state, Input::Action(Action::Refresh)).is_empty(), "everything is in flight");
        assert_eq!(state.refresh.current, Some(1), "round 1 is still the one being completed");
        update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
        let up = |id| (id, Some(fixtures::status(id, ID1, 7, 1, 1)));
        answer_probes(&mut state, &effects, &[up(ID1), up(ID2), up(ID3)]);
        assert_eq!(state.refresh.completed_id, Some(1));
    }

    #[test]
    fn a_member_whose_client_url_changes_is_probed_at_the_new_one_and_old_replies_are_dropped() {
        let mut state = fixtures::healthy();
        let first = tick(&mut state, Instant::now());
        let mut list = fixtures::member_list();
        list.members[1].client_urls = vec!["http://127.0.0.22:2379".into()];
        let effects = update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
        assert!(
            effects.contains(&Effect::FetchStatus {
                refresh: 1,
                member_id: ID2,
                endpoint: "http://127.0.0.22:2379".into()
            }),
            "the new URL is probed although the old request is still out: {effects:?}"
        );
        // The old URL's reply arrives late: it is not news about the member, and the request to the
        // new URL stays in flight, so the round still waits for it.
        answer_probes(&mut state, &first, &[(ID2, Some(fixtures::status(ID2, ID1, 7, 99, 99)))]);
        assert_eq!(state.member(ID2).and_then(|m| m.status.clone()), None);
        assert!(state.refresh.in_flight.contains(&Pending::Status(ID2)));
        assert!(state.refresh.pending.contains(&Pending::Status(ID2)));
    }

    #[test]
    fn learners_are_checked_with_a_serializable_read() {
        let mut state = fixtures::with_learner_and_unstarted();
        let effects = tick(&mut state, Instant::now());
        let learner_check = effects.iter().find_map(|e| match e {
            Effect::CheckHealth { member_id, serializable, .. } if *member_id == fixtures::ID4 => {
                Some(*serializable)
            }
            _ => None,
        });
        assert_eq!(learner_check, Some(true));
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::CheckHealth { member_id: ID1, serializable: false, .. })));
    }

    #[test]
    fn the_key_browser_lists_on_first_visit_and_takes_the_movement_keys() {
        let mut state = fixtures::healthy();
        let effects = update(&mut state, Input::Action(Action::SwitchView));
        let list = KeyRequest::List { request: 1, prefix: vec![], start: vec![0], revision: 0, tree: None };
        assert_eq!(effects, vec![Effect::Keys(list)]);
        assert_eq!(state.view, View::Keys);
        let page = KeyPage { rows: vec![Row::key(&b"a"[..]), Row::key(&b"b"[..])], more: false, revision: 7 };
        let count = KeyRequest::Count { request: 2, prefix: vec![], revision: 7 };
        assert_eq!(
            update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) })),
            vec![Effect::Keys(count)]
        );
        update(&mut state, Input::Action(Action::Down));
        assert_eq!((state.keys.selected, state.selected), (1, 0), "the browser moves, the members table not");
        let effects = update(&mut state, Input::Action(Action::Open));
        assert_eq!(effects, vec![Effect::Keys(KeyRequest::Value { request: 3, key: b"b".to_vec() })]);
        update(&mut state, Input::Action(Action::Back));
        assert_eq!(state.keys.value, None);
        assert!(update(&mut state, Input::Action(Action::SwitchView)).is_empty());
        assert_eq!(state.view, View::Members);
        assert!(
            update(&mut state, Input::Action(Action::SwitchView)).is_empty(),
            "listed already: no new listing"
        );
        let effects = update(&mut state, Input::Action(Action::Refresh));
        let relist = KeyRequest::List { request: 4, prefix: vec![], start: vec![0], revision: 0, tree: None };
        assert_eq!(
            effects,
            vec![Effect::Keys(relist)],
            "refresh in the browser lists again at the newest revision"
        );
    }

    #[test]
    fn ctx_lists_the_saved_contexts_and_asks_to_switch_to_a_known_one() {
        let mut state = fixtures::healthy();
        let run = |state: &mut State, text: &str| {
            update(state, Input::Action(Action::Command));
            for c in text.chars() {
                update(state, Input::Typed(Typed::Char(c)));
            }
            update(state, Input::Typed(Typed::Enter))
        };
        assert!(run(&mut state, "ctx").is_empty());
        assert!(
            state.notice.as_deref().is_some_and(|n| n.starts_with("no saved contexts")),
            "{:?}",
            state.notice
        );
        state.contexts = vec!["lab".into(), "prod".into()];
        state.context =
            Some(crate::app::connection::ContextMark { name: "prod".into(), color: None, banner: None });
        run(&mut state, "ctx");
        assert_eq!(state.notice.as_deref(), Some("contexts: lab, prod (current) (:ctx NAME switches)"));
        assert!(run(&mut state, "ctx prod").is_empty());
        assert_eq!(state.notice.as_deref(), Some("already on context prod"));
        assert!(run(&mut state, "ctx qa").is_empty());
        assert_eq!(state.notice.as_deref(), Some("✗ unknown context \"qa\" (contexts: lab, prod)"));
        assert_eq!(run(&mut state, "ctx lab"), vec![Effect::SwitchContext { name: "lab".into() }]);
        state.demo = true;
        assert!(run(&mut state, "ctx lab").is_empty(), "the demo stays on its cluster");
    }

    #[test]
    fn typed_commands_and_searches_open_the_browser_or_the_members() {
        let mut state = fixtures::healthy();
        let typed = |state: &mut State, text: &str| {
            for c in text.chars() {
                update(state, Input::Typed(Typed::Char(c)));
            }
            update(state, Input::Typed(Typed::Enter))
        };
        update(&mut state, Input::Action(Action::Command));
        let effects = typed(&mut state, "keys /registry/");
        let list = KeyRequest::List {
            request: 1,
            prefix: b"/registry/".to_vec(),
            start: b"/registry/".to_vec(),
            revision: 0,
            tree: None,
        };
        assert_eq!(effects, vec![Effect::Keys(list)]);
        assert_eq!((state.view, state.input.clone()), (View::Keys, None));
        update(&mut state, Input::Action(Action::Search));
        update(&mut state, Input::Typed(Typed::Char('x')));
        update(&mut state, Input::Typed(Typed::Backspace));
        let effects = typed(&mut state, "a/");
        assert!(matches!(&effects[..], [Effect::Keys(KeyRequest::List { prefix, .. })] if prefix == b"a/"));
        update(&mut state, Input::Action(Action::Command));
        assert!(typed(&mut state, "members").is_empty());
        assert_eq!(state.view, View::Members);
        update(&mut state, Input::Action(Action::Command));
        typed(&mut state, "bogus");
        assert_eq!(
            state.notice.as_deref(),
            Some(
                "unknown command :bogus (commands: :keys <prefix>, :watch <prefix> [revision], :members, \
                 :sep <separator>, :ctx [name], :auth (users and roles))"
            )
        );
        update(&mut state, Input::Action(Action::Search));
        update(&mut state, Input::Typed(Typed::Esc));
        assert_eq!(state.input, None, "Esc abandons the line");
    }

    #[test]
    fn backspace_on_an_empty_prompt_keeps_it_open_and_the_letters_after_stay_text() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::Command));
        update(&mut state, Input::Typed(Typed::Char('k')));
        update(&mut state, Input::Typed(Typed::Backspace));
        update(&mut state, Input::Typed(Typed::Backspace));
        assert!(state.input.is_some(), "backspace on an empty line does not close it");
        type_text(&mut state, "q");
        assert!(!state.should_quit, "q after it is text, not quit");
        assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("q"));
        update(&mut state, Input::Typed(Typed::Esc));
        assert_eq!(state.input, None, "only Esc closes it");
    }

    #[test]
    fn a_paste_is_text_for_the_open_line_and_nothing_without_one() {
        let mut state = fixtures::healthy();
        // No line open: nothing runs, nothing opens.
        let effects = update(&mut state, Input::Pasted("\r:q\ryy\n".into()));
        assert!(effects.is_empty());
        assert!(!state.should_quit && state.input.is_none() && state.member_dialog.is_none());
        assert!(
            state.notice.as_deref().is_some_and(|n| n.starts_with("paste ignored")),
            "{:?}",
            state.notice
        );
        // A line open: one insertion, newlines and all, nothing entered.
        update(&mut state, Input::Action(Action::Command));
        assert!(update(&mut state, Input::Pasted("keys a\ny\r:q".into())).is_empty());
        assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("keys a\ny\n:q"));
        assert_eq!(state.view, View::Members);
        // A question open: dropped.
        let mut state = with_value_open();
        update(&mut state, Input::Action(Action::Delete));
        assert!(state.dialog.is_some());
        assert!(update(&mut state, Input::Pasted("y\r".into())).is_empty());
        assert!(matches!(state.dialog, Some(Dialog::Confirm { .. })), "still asking: {:?}", state.dialog);
    }

    fn type_text(state: &mut State, text: &str) {
        for c in text.chars() {
            update(state, Input::Typed(Typed::Char(c)));
        }
    }

    fn enter(state: &mut State) -> Vec<Effect> {
        update(state, Input::Typed(Typed::Enter))
    }

    /// The browser on two keys with the value of "k" (mod revision 5) on screen.
    fn with_value_open() -> State {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::SwitchView));
        let page = KeyPage { rows: vec![Row::key(&b"k"[..]), Row::key(&b"z"[..])], more: false, revision: 7 };
        update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
        let effects = update(&mut state, Input::Action(Action::Open));
        let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
            panic!("{effects:?}")
        };
        let info = info(b"v1", 5);
        update(
            &mut state,
            Input::Msg(Msg::Value { request, result: Ok(Some(ValueRead { info, lease_ttl: None })) }),
        );
        state
    }

    #[test]
    fn the_value_pane_follows_the_cursor_and_says_when_its_key_is_gone() {
        let mut state = with_value_open();
        let effects = update(&mut state, Input::Action(Action::Down));
        let [Effect::Keys(KeyRequest::Value { request, key })] = &effects[..] else { panic!("{effects:?}") };
        assert_eq!(key, b"z");
        let pane = state.keys.value.as_ref().expect("still open");
        assert_eq!(
            (pane.key.as_slice(), &pane.result),
            (&b"z"[..], &None),
            "the old value is not shown for z"
        );
        let request = *request;
        update(&mut state, Input::Msg(Msg::Value { request, result: Ok(None) }));
        // Each refresh round reads the open value again: deleted elsewhere, it says so; a failed
        // read keeps what was read last, marked.
        let mut state = with_value_open();
        let t0 = Instant::now();
        let effects = tick(&mut state, t0);
        let reread = effects.iter().find_map(|e| match e {
            Effect::Keys(KeyRequest::Value { request, key }) if key == b"k" => Some(*request),
            _ => None,
        });
        let reread = reread.expect("the value is read again with the round");
        update(&mut state, Input::Msg(Msg::Value { request: reread, result: Err("unavailable".into()) }));
        let pane = state.keys.value.as_ref().expect("open");
        assert!(pane.info().is_some() && pane.stale.as_deref() == Some("unavailable"), "{pane:?}");
        let effects = tick(&mut state, t0 + Duration::from_secs(3));
        let reread = effects
            .iter()
            .find_map(|e| match e {
                Effect::Keys(KeyRequest::Value { request, .. }) => Some(*request),
                _ => None,
            })
            .expect("read again next round");
        update(&mut state, Input::Msg(Msg::Value { request: reread, result: Ok(None) }));
        let pane = state.keys.value.as_ref().expect("open");
        assert_eq!((&pane.result, &pane.stale), (&Some(Ok(None)), &None), "deleted elsewhere");
    }

    #[test]
    fn a_failed_listing_is_tried_again_with_backoff_and_says_when_it_last_worked() {
        let mut state = fixtures::healthy();
        let t0 = Instant::now();
        update(&mut state, Input::Action(Action::SwitchView));
        let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
        update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
        assert_eq!(state.keys.listed_at, Some(fixtures::wall()));
        let relist = |state: &mut State, at: Instant| -> Option<u64> {
            tick(state, at).iter().find_map(|e| match e {
                Effect::Keys(KeyRequest::List { request, .. }) => Some(*request),
                _ => None,
            })
        };
        // The endpoint goes away: a refresh fails.
        update(&mut state, Input::Action(Action::Refresh));
        let (request, _) = state.keys.loading.expect("listing");
        update(&mut state, Input::Msg(Msg::KeyPage { request, result: Err("connection refused".into()) }));
        assert!(relist(&mut state, t0).is_none(), "not at once");
        assert!(relist(&mut state, t0 + Duration::from_millis(900)).is_none());
        let again = relist(&mut state, t0 + Duration::from_millis(1000)).expect("after 1 s");
        update(
            &mut state,
            Input::Msg(Msg::KeyPage { request: again, result: Err("connection refused".into()) }),
        );
        assert!(relist(&mut state, t0 + Duration::from_millis(2900)).is_none(), "then 2 s");
        let again = relist(&mut state, t0 + Duration::from_millis(3000)).expect("after 2 s more");
        assert_eq!(state.keys.listed_at, Some(fixtures::wall()), "the last success is kept");
        // It comes back: the listing is whole again and the waits start over.
        let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 9 };
        update(&mut state, Input::Msg(Msg::KeyPage { request: again, result: Ok(page) }));
        assert_eq!((state.keys.error.as_ref(), state.keys.retry), (None, None));
        assert_eq!(state.keys.known, 1);
    }

    fn info(value: &[u8], mod_revision: i64) -> ValueInfo {
        ValueInfo {
            key: b"k".to_vec(),
            value: value.to_vec(),
            create_revision: 2,
            mod_revision,
            version: 1,
            lease: 0,
        }
    }

    /// Edits the open value to "v1-mine", confirms, and answers the write with a conflict: someone
    /// else wrote "theirs" at revision 6 meanwhile.
    fn edit_into_a_conflict(state: &mut State) {
        update(state, Input::Action(Action::Edit));
        type_text(state, "-mine");
        enter(state);
        let (request, _) = written(&update(state, Input::Typed(Typed::Enter)));
        let conflict = Ok(WriteOutcome::Conflict { current: Some(info(b"theirs", 6)) });
        update(state, Input::Msg(Msg::Written { request, result: conflict }));
    }

    fn written(effects: &[Effect]) -> (u64, Write) {
        match effects {
            [Effect::Write { request, write }] => (*request, write.clone()),
            other => panic!("expected one write: {other:?}"),
        }
    }

    #[test]
    fn an_inline_edit_is_confirmed_with_a_diff_and_compares_the_revision_seen() {
        let mut state = with_value_open();
        update(&mut state, Input::Action(Action::Edit));
        assert_eq!(
            state.input.as_ref().map(|l| l.text.as_str()),
            Some("v1"),
            "the line starts with the value"
        );
        update(&mut state, Input::Typed(Typed::Backspace));
        type_text(&mut state, "2");
        assert!(enter(&mut state).is_empty(), "nothing is written before the confirmation");
        let Some(Dialog::Confirm { diff, .. }) = &state.dialog else { panic!("{:?}", state.dialog) };
        assert_eq!(diff, &vec![edit::DiffLine::Removed("v1".into()), edit::DiffLine::Added("v2".into())]);
        let (request, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
        assert_eq!(
            write,
            Write::Put { key: b"k".to_vec(), value: b"v2".to_vec(), expect: 5, lease: LeaseChoice::Keep }
        );
        let done = Ok(WriteOutcome::Done { revision: 8, lease: None, deleted: 0 });
        let effects = update(&mut state, Input::Msg(Msg::Written { request, result: done }));
        assert_eq!(state.dialog, None);
        assert_eq!(
            state.notice.as_deref(),
            Some("✓ update k at revision 8 · etcdctl put --ignore-lease k v2")
        );
        assert_eq!(effects.len(), 2, "the listing and the value are read again: {effects:?}");
    }

    #[test]
    fn a_conflict_shows_both_versions_and_overwrites_only_when_asked() {
        let mut state = with_value_open();
        edit_into_a_conflict(&mut state);
        let Some(Dialog::Conflict { seen, current, .. }) = &state.dialog else {
            panic!("{:?}", state.dialog)
        };
        assert_eq!(seen.as_deref(), Some(&b"v1"[..]));
        assert_eq!(current.as_ref().map(|c| c.mod_revision), Some(6));
        // n keeps theirs, and reads the key again.
        let effects = update(&mut state, Input::Typed(Typed::Char('n')));
        assert_eq!(state.dialog, None);
        assert!(matches!(&effects[..], [Effect::Keys(crate::app::keys::KeyRequest::Value { .. })]));
        // The same again, and y writes against revision 6 now.
        let request = state.keys.next_request;
        let reread = Ok(Some(ValueRead { info: info(b"v1", 5), lease_ttl: None }));
        update(&mut state, Input::Msg(Msg::Value { request, result: reread }));
        edit_into_a_conflict(&mut state);
        let (_, retry) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
        assert_eq!(
            retry,
            Write::Put {
                key: b"k".to_vec(),
                value: b"v1-mine".to_vec(),
                expect: 6,
                lease: LeaseChoice::Keep
            }
        );
    }

    #[test]
    fn a_prefix_delete_counts_then_needs_the_prefix_typed() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::Command));
        type_text(&mut state, "keys /svc/");
        enter(&mut state);
        let effects = update(&mut state, Input::Action(Action::DeletePrefix));
        let [Effect::CountPrefix { request, ref prefix }] = effects[..] else { panic!("{effects:?}") };
        assert_eq!(prefix, b"/svc/");
        update(&mut state, Input::Msg(Msg::PrefixCount { request, result: Ok((3, 40)) }));
        type_text(&mut state, "/svc");
        assert!(enter(&mut state).is_empty(), "a partial prefix does not confirm");
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("type /svc/ exactly")));
        type_text(&mut state, "/");
        let (request, write) = written(&enter(&mut state));
        assert_eq!(write, Write::DeletePrefix { prefix: b"/svc/".to_vec(), count: 3, revision: 40 });
        // A key was added meanwhile: nothing deleted, and the count is offered again.
        update(
            &mut state,
            Input::Msg(Msg::Written { request, result: Ok(WriteOutcome::PrefixChanged { count: 4 }) }),
        );
        assert_eq!(state.dialog, Some(Dialog::PrefixChanged { prefix: b"/svc/".to_vec(), count: 4 }));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert!(matches!(&effects[..], [Effect::CountPrefix { .. }]));
        // An empty prefix must be confirmed with words, not an empty line.
        assert_eq!(edit::typed_confirmation(b""), "ALL KEYS");
    }

    #[test]
    fn creating_a_key_walks_key_value_and_lease_and_refuses_bad_leases() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::SwitchView));
        update(&mut state, Input::Action(Action::New));
        type_text(&mut state, "/new");
        enter(&mut state);
        type_text(&mut state, "hello");
        enter(&mut state);
        type_text(&mut state, "forever");
        enter(&mut state);
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("bad lease")), "{:?}", state.notice);
        assert!(
            matches!(state.input.as_ref().map(|l| &l.prompt), Some(Prompt::NewLease { .. })),
            "the line stays"
        );
        for _ in 0.."forever".len() {
            update(&mut state, Input::Typed(Typed::Backspace));
        }
        type_text(&mut state, "30s");
        enter(&mut state);
        let (_, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
        assert_eq!(
            write,
            Write::Put {
                key: b"/new".to_vec(),
                value: b"hello".to_vec(),
                expect: 0,
                lease: LeaseChoice::New { ttl: 30 }
            }
        );
    }

    #[test]
    fn read_only_refuses_every_write_before_asking() {
        let mut state = with_value_open();
        state.read_only = Some("--read-only".into());
        for action in [Action::Edit, Action::EditExternal, Action::Delete, Action::DeletePrefix, Action::New]
        {
            state.notice = None;
            assert!(update(&mut state, Input::Action(action)).is_empty(), "{action:?}");
            assert_eq!(state.dialog, None);
            assert_eq!(state.input, None);
            assert_eq!(state.notice.as_deref(), Some("read-only (--read-only): writes are disabled"));
        }
    }

    #[test]
    fn a_delete_asked_for_before_the_value_arrives_confirms_once_it_does() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::SwitchView));
        let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
        update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
        let effects = update(&mut state, Input::Action(Action::Delete));
        let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!(state.dialog, None);
        update(
            &mut state,
            Input::Msg(Msg::Value {
                request,
                result: Ok(Some(ValueRead { info: info(b"v", 5), lease_ttl: None })),
            }),
        );
        let Some(Dialog::Confirm { write, .. }) = &state.dialog else { panic!("{:?}", state.dialog) };
        assert_eq!(write, &Write::Delete { key: b"k".to_vec(), expect: 5 });
        update(&mut state, Input::Typed(Typed::Esc));
        assert_eq!(state.notice.as_deref(), Some("cancelled: delete k"));
    }

    #[test]
    fn watch_commands_open_tails_and_a_compacted_start_restarts_at_the_compact_revision() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::Command));
        type_text(&mut state, "watch /svc/ 12");
        let effects = enter(&mut state);
        assert_eq!(
            effects,
            vec![Effect::Watch { tail: 1, prefix: b"/svc/".to_vec(), is_prefix: true, start: 12 }]
        );
        assert_eq!(state.view, View::Watch);
        let status = TailStatus::Compacted {
            error: "etcdserver: mvcc: required revision has been compacted".into(),
            compact_revision: 30,
        };
        update(
            &mut state,
            Input::Msg(Msg::Watch {
                tail: 1,
                report: crate::app::watch::WatchReport::Status(status),
                ack: Default::default(),
            }),
        );
        let effects = update(&mut state, Input::Action(Action::Open));
        assert_eq!(
            effects,
            vec![
                Effect::StopWatch { tail: 1 },
                Effect::Watch { tail: 2, prefix: b"/svc/".to_vec(), is_prefix: true, start: 30 }
            ]
        );
        // A report of the stopped tail is dropped.
        let late = crate::app::watch::WatchReport::Status(TailStatus::Failed("gone".into()));
        update(&mut state, Input::Msg(Msg::Watch { tail: 1, report: late, ack: Default::default() }));
        assert_eq!(state.watch.as_ref().map(|t| t.status.clone()), Some(TailStatus::Starting));
    }

    #[test]
    fn a_value_that_arrives_while_the_user_types_something_else_opens_no_dialog() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::SwitchView));
        let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
        update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
        let effects = update(&mut state, Input::Action(Action::Delete));
        let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
            panic!("{effects:?}")
        };
        // The user moved on to typing a new key before the value came.
        update(&mut state, Input::Action(Action::New));
        let read = Ok(Some(ValueRead { info: info(b"v", 5), lease_ttl: None }));
        update(&mut state, Input::Msg(Msg::Value { request, result: read }));
        assert_eq!(state.dialog, None, "no delete dialog under the line being typed");
        assert!(matches!(state.input.as_ref().map(|l| &l.prompt), Some(Prompt::NewKey)));
    }

    #[test]
    fn only_a_deliberate_y_overwrites_after_a_conflict() {
        let mut state = with_value_open();
        edit_into_a_conflict(&mut state);
        assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty(), "Enter does not overwrite");
        assert!(matches!(state.dialog, Some(Dialog::Conflict { .. })));
        let (_, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
        assert!(matches!(write, Write::Put { expect: 6, .. }));
    }

    #[test]
    fn a_write_acts_on_the_selected_key_not_on_an_older_pane() {
        let mut state = with_value_open(); // "k" is open; "z" is the next row.
        update(&mut state, Input::Action(Action::Down));
        let effects = update(&mut state, Input::Action(Action::Delete));
        assert!(
            matches!(&effects[..], [Effect::Keys(crate::app::keys::KeyRequest::Value { key, .. })] if key == b"z"),
            "the selected key is read first: {effects:?}"
        );
        assert_eq!(state.dialog, None);
    }
}
