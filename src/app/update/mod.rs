//! `update`: the console's only state transition. Pure: no await, no I/O, no clock reads. It returns the
//! effects the workers must run.

use crate::app::action::Action;
use crate::app::edit::{self, Dialog, LeaseChoice, TypedConfirm, Write};
use crate::app::effect::Effect;
use crate::app::modal::Modal;
use crate::app::msg::Msg;
use crate::app::state::{InputLine, Overlay, Pending, Prompt, State, View, REFRESH_STEPS};

mod auth;
mod keys;
mod members;
mod mirrors;
mod refresh;
mod replace;
mod restore;
mod space;
#[cfg(test)]
mod tests;
mod watch;

use keys::*;
use refresh::*;
use watch::*;

pub use crate::app::input::{Input, Typed};

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
            effects.extend(replace::check_wait(state));
            if due && state.view == View::Mirror {
                effects.extend(mirrors::read(state));
            }
            if state.view == View::Keys {
                // The browser tries a failed listing again, with backoff; the open value is read
                // again each round, so a key changed or deleted elsewhere shows as such.
                effects.extend(state.keys.retry_due(&mut state.ids, now).map(Effect::Keys));
                if due {
                    effects.extend(state.keys.reread(&mut state.ids).map(Effect::Keys));
                }
            }
            // A signed-in user: learn once what its roles may read, for where the key browser starts.
            if state.user.is_some() && state.auth.request == 0 {
                effects.extend(auth::load(state));
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
            effects.extend(replace::check_wait(state));
            effects
        }
    }
}

fn on_typed(state: &mut State, key: Typed) -> Vec<Effect> {
    match &state.modal {
        Some(Modal::Snapshot(_)) => {
            members::on_snapshot_key(state);
            return Vec::new();
        }
        Some(Modal::Member(_)) => return members::on_key(state, key),
        Some(Modal::Restore(_)) => return restore::on_key(state, key),
        Some(Modal::Keys(_)) => return on_dialog_key(state, key),
        None => {}
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
                state.keys.step(&mut state.ids, 0);
            }
            state.keys.follow(&mut state.ids).map(Effect::Keys).into_iter().collect()
        }
    }
}

/// A typed line was entered.
fn on_line(state: &mut State, prompt: Prompt, text: String) -> Vec<Effect> {
    match prompt {
        Prompt::Search => browse(state, text.into_bytes()),
        Prompt::NewPassword { name } => auth::on_password(state, name, text),
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
        | Prompt::CompactTo) => members::on_line(state, prompt, text),
        Prompt::RestoreFrom => restore::on_file(state, text),
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

const COMMANDS: &str =
    ":keys <prefix>, :k8s [prefix], :space [prefix], :mirror, :watch <prefix> [revision], :members, :sep <separator>, :ctx [name], :auth (users and roles)";

fn run_command(state: &mut State, text: &str) -> Vec<Effect> {
    let (name, arg) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let arg = arg.trim();
    match name {
        "keys" | "k" => {
            state.keys.kubernetes = false;
            browse(state, arg.as_bytes().to_vec())
        }
        "space" => space::open(state, arg.as_bytes().to_vec()),
        "mirror" | "mirrors" => mirrors::open(state),
        // The Kubernetes view: /registry/ (or the prefix given) as kube-apiserver's resources.
        "k8s" => {
            state.keys.kubernetes = true;
            state.keys.tree = None;
            let prefix = if arg.is_empty() { "/registry/" } else { arg };
            browse(state, prefix.as_bytes().to_vec())
        }
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
        name if auth::COMMANDS.contains(&name) => auth::command(state, name, arg),
        "sep" => {
            if arg.is_empty() {
                state.notice = Some("usage: :sep <separator> (the tree splits keys at it)".into());
                return Vec::new();
            }
            state.keys.separator = arg.as_bytes().to_vec();
            state.view = View::Keys;
            state.keys.tree = Some(state.keys.separator.clone());
            vec![Effect::Keys(state.keys.list(&mut state.ids, Vec::new()))]
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
            View::Members => members::on_action(state, action),
            View::Auth => auth::on_action(state, action),
            View::Space => space::on_action(state, action),
            View::Mirror => mirrors::on_action(state, action),
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
            if !state.keys.started {
                return vec![Effect::Keys(state.keys.list(&mut state.ids, state.keys_start.clone()))];
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
        | Action::Reveal
        | Action::ScrollDown
        | Action::ScrollUp
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
                    let notes = crate::app::describe::kill_notes(state, id);
                    let deliberate = notes.iter().any(|n| n.loud);
                    let op = crate::app::members::MemberOp::Kill { id, name };
                    state.modal = Some(Modal::Member(crate::app::members::MemberDialog::Confirm {
                        op,
                        notes,
                        deliberate,
                    }));
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

fn on_msg(state: &mut State, msg: Msg) -> Vec<Effect> {
    let mut effects = Vec::new();
    let (refresh, done) = match msg {
        Msg::KeyPage { request, result } => {
            if result.is_ok() && state.keys.loading.is_some_and(|(r, _)| r == request) {
                state.keys.listed_at = Some(state.wall);
            }
            return state
                .keys
                .on_page(&mut state.ids, request, result)
                .into_iter()
                .map(Effect::Keys)
                .collect();
        }
        Msg::KeyCount { request, result } => {
            state.keys.on_count(request, result);
            return effects;
        }
        Msg::Value { request, result } => {
            return match state.keys.on_value(request, result) {
                // The user went on to something else while the value was on its way: a dialog
                // opened now would take keys typed for that.
                Some(_) if state.key_dialog().is_some() || state.input.is_some() => {
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
        Msg::Space { request, result } => {
            space::on_report(state, request, result);
            return effects;
        }
        Msg::Backups { request, result } => {
            restore::on_backups(state, request, result);
            return effects;
        }
        Msg::Mirrors { request, result } => {
            mirrors::on_read(state, request, result);
            return effects;
        }
        msg @ (Msg::SnapshotProgress { .. } | Msg::SnapshotSaved { .. }) => {
            members::on_snapshot_msg(state, msg);
            return Vec::new();
        }
        Msg::Member { request, result } => {
            if let Some(effects) = replace::on_member_answer(state, request, &result) {
                return effects;
            }
            if members::on_answer(state, request, result) {
                let auth = matches!(
                    state.member_dialog(),
                    Some(crate::app::members::MemberDialog::Result {
                        op: crate::app::members::MemberOp::Auth(_),
                        ..
                    })
                );
                if auth {
                    return auth::load(state);
                }
                return start_refresh(state);
            }
            return Vec::new();
        }
        Msg::Auth { request, result } => return auth::on_listing(state, request, result),
        Msg::ReplaceProcess { request, result } => {
            return replace::on_process_answer(state, request, result);
        }
        Msg::SnapshotFile { request, result } => {
            restore::on_file_checked(state, request, result);
            return Vec::new();
        }
        Msg::RestoreDirs { request, result } => return restore::on_restored_dirs(state, request, result),
        Msg::Restored { request, result } => {
            if restore::on_finished(state, request, result) {
                return start_refresh(state);
            }
            return Vec::new();
        }
        Msg::MemberProgress { request, text } => {
            members::on_progress(state, request, text);
            return Vec::new();
        }
        Msg::Process { result } => {
            state.notice = Some(result.unwrap_or_else(|e| format!("error: {e}")));
            // Show the consequences without waiting for the next refresh.
            return start_refresh(state);
        }
        Msg::PrefixCount { request, result } => {
            let Some(Dialog::Counting { request: asked, prefix }) = state.key_dialog().cloned() else {
                return effects;
            };
            if asked != request {
                return effects;
            }
            state.modal = None;
            match result {
                Ok((0, _)) => state.notice = Some(format!("no keys under {}", edit::prefix_label(&prefix))),
                Ok((count, revision)) => {
                    let expected = edit::typed_confirmation(&prefix);
                    state.modal = Some(Modal::Keys(Dialog::Confirm {
                        write: Write::DeletePrefix { prefix, count, revision },
                        seen: None,
                        diff: Vec::new(),
                        typed: Some(TypedConfirm { expected, text: String::new() }),
                    }));
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
