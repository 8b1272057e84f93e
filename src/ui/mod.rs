//! The terminal edge: the event loop and `render`. Rendering reads `State`; only `update` changes it.

pub mod terminal;
pub mod theme;
pub mod widgets;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::{FutureExt, StreamExt};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use tokio::signal::unix::{signal, SignalKind};

use crate::app::action::Action;
use crate::app::config_file::user_config_file;
use crate::app::connection::ConnectConfig;
use crate::app::effect::Effect;
use crate::app::input::{Input, Typed};
use crate::app::keymap::{Key, KeyChord, Keymap};
use crate::app::modal::Modal;
use crate::app::runtime::Runtime;
use crate::app::state::{Overlay, State, View};
use crate::ui::theme::Theme;

/// How often time is let pass in the loop; refreshes start on the first tick after they are due.
const TICK: Duration = Duration::from_millis(100);

pub struct ConsoleOptions {
    pub refresh_interval: Duration,
    /// When the process started, for --timings.
    pub started: Instant,
    /// `etcdeck demo`'s member processes, which the console may kill and start.
    pub processes: Option<Box<dyn crate::app::runtime::MemberProcesses>>,
    /// The saved contexts `:ctx` switches between.
    pub contexts: Option<crate::app::runtime::Contexts>,
    /// --backup-dir: where the snapshot dialog backs up into and the restore wizard finds backups.
    pub backup_dir: Option<std::path::PathBuf>,
}

pub struct Outcome {
    /// Time from process start to the first drawn frame that held a complete refresh.
    pub first_complete_frame: Option<Duration>,
    /// For each page of keys: from asking for it to the first frame drawn with it, in order.
    pub key_page_frames: Vec<Duration>,
    /// For each key press: from reading it to the end of drawing the frame that shows its effect.
    pub key_press_frames: Vec<Duration>,
    /// What the watch tail received, if one ran (for --timings).
    pub watch: Option<String>,
}

/// Runs the console until the user quits.
pub async fn run(config: ConnectConfig, options: ConsoleOptions) -> anyhow::Result<Outcome> {
    // Configuration mistakes are reported before the terminal changes mode.
    let keymap = Keymap::load(user_config_file("keymap.toml").as_deref()).map_err(anyhow::Error::msg)?;
    let theme = Theme::load(user_config_file("theme.toml").as_deref()).map_err(anyhow::Error::msg)?;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the console needs a terminal, and standard output is not one; for scripts use `etcdeck status`"
        );
    }
    // SIGTERM, SIGHUP and SIGINT quit like `q`, so the terminal is restored when something ends us.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    // In raw mode Ctrl-C arrives as a key; SIGINT only comes from `kill -INT`.
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut rt = Runtime::new(config, options.refresh_interval);
    if let Some(processes) = options.processes {
        rt = rt.with_processes(processes);
    }
    if let Some(contexts) = options.contexts {
        rt = rt.with_contexts(contexts);
    }
    rt.state.backup_dir = options.backup_dir;
    rt.tick();

    let mut guard = terminal::TerminalGuard::enter().context("cannot set up the terminal")?;
    let mut events = Some(EventStream::new());
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first_complete_frame = None;
    let mut key_page_frames = Vec::new();
    let mut key_press_frames = Vec::new();
    // Key presses read since the last frame, with when they were read.
    let mut pressed: Vec<Instant> = Vec::new();
    let mut dirty = true;
    loop {
        if !rt.terminal_effects.is_empty() {
            for effect in std::mem::take(&mut rt.terminal_effects) {
                let editor = matches!(effect, Effect::Editor { .. });
                if editor {
                    // The editor reads the terminal: the stream must not read it meanwhile, so the
                    // old one is dropped (which stops its reader) and a new one starts after.
                    // crossterm's reader is global: the old stream must let go of it first.
                    drop(events.take());
                    events = Some(EventStream::new());
                }
                let input = run_terminal_effect(&mut rt, &mut guard, effect);
                if let Some(input) = input {
                    rt.apply(input);
                }
            }
            dirty = true;
        }
        if dirty {
            guard.terminal.draw(|frame| render(frame, &rt.state, &keymap, &theme))?;
            dirty = false;
            if std::mem::take(&mut rt.state.modal_unseen) {
                // The question is on screen from now on. Keys that reached the terminal while it was
                // being drawn were typed before it could be seen: they are not its answer.
                let mut dropped = 0;
                while let Some(Some(Ok(event))) = events.as_mut().and_then(|e| e.next().now_or_never()) {
                    if matches!(event, Event::Key(_) | Event::Paste(_)) {
                        dropped += 1;
                    } else {
                        dirty |= on_event(&mut rt, &keymap, event);
                    }
                }
                if dropped > 0 {
                    rt.state.notice =
                        Some(format!("ignored {dropped} key(s) typed before this question was on screen"));
                    dirty = true;
                }
            }
            for asked in rt.pages_answered.drain(..) {
                key_page_frames.push(asked.elapsed());
            }
            for at in pressed.drain(..) {
                key_press_frames.push(at.elapsed());
            }
            if first_complete_frame.is_none() && rt.state.has_complete_view() {
                first_complete_frame = Some(options.started.elapsed());
            }
        }
        tokio::select! {
            event = next_event(&mut events) => match event {
                Some(Ok(event)) => {
                    if matches!(event, Event::Key(_)) {
                        pressed.push(Instant::now());
                    }
                    dirty |= on_event(&mut rt, &keymap, event);
                }
                Some(Err(e)) => return Err(e).context("reading terminal input"),
                None => break,
            },
            _ = ticker.tick() => dirty |= rt.tick() > 0,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
            _ = sigint.recv() => break,
            msg = rt.recv() => if let Some(msg) = msg {
                rt.apply(Input::Msg(msg));
                dirty = true;
            },
        }
        // Drain everything else already waiting, then draw once.
        dirty |= rt.drain() > 0;
        while let Some(Some(Ok(event))) = events.as_mut().and_then(|e| e.next().now_or_never()) {
            if matches!(event, Event::Key(_)) {
                pressed.push(Instant::now());
            }
            dirty |= on_event(&mut rt, &keymap, event);
        }
        if rt.state.should_quit {
            break;
        }
    }
    drop(guard);
    let watch = rt.state.watch.as_ref().map(|t| {
        format!(
            "watch tail: {} events received, {} dropped from the display, last revision {}",
            t.received, t.dropped, t.last_revision
        )
    });
    Ok(Outcome { first_complete_frame, key_page_frames, key_press_frames, watch })
}

async fn next_event(events: &mut Option<EventStream>) -> Option<std::io::Result<Event>> {
    match events {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Runs an effect that needs the terminal; returns the input it produced.
fn run_terminal_effect(
    rt: &mut Runtime,
    guard: &mut terminal::TerminalGuard,
    effect: Effect,
) -> Option<Input> {
    match effect {
        Effect::Editor { key, value, expect } => {
            let result = match guard.suspend(|| edit_in_editor(&value)) {
                Ok(result) => result,
                Err(e) => Err(format!("cannot take the terminal back after the editor: {e}")),
            };
            Some(Input::Edited { key, old: value, expect, result })
        }
        Effect::Copy { what, bytes } => {
            rt.state.notice = Some(match copy_osc52(&bytes) {
                Ok(()) => format!("copied {what} to the clipboard (OSC 52)"),
                Err(e) => format!("✗ cannot copy {what}: {e}"),
            });
            None
        }
        _ => None,
    }
}

/// OSC 52 carries at most this much: terminals (and tmux) refuse or cut longer sequences.
const OSC52_LIMIT: usize = 74_994;

/// Sets the clipboard of the terminal (over SSH and through tmux too) with an OSC 52 sequence.
fn copy_osc52(bytes: &[u8]) -> Result<(), String> {
    use base64::Engine;
    use std::io::Write;
    if bytes.len() > OSC52_LIMIT {
        return Err(format!("{} bytes is more than a terminal clipboard takes ({OSC52_LIMIT})", bytes.len()));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{encoded}\x07").and_then(|_| out.flush()).map_err(|e| e.to_string())
}

/// Edits `value` in $VISUAL, else $EDITOR, else vi, in a private temporary file. An editor adds a
/// final newline the value did not have; it is taken off again.
fn edit_in_editor(value: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut file = tempfile::Builder::new()
        .prefix("etcdeck-value-")
        .tempfile()
        .map_err(|e| format!("cannot create a temporary file for the editor: {e}"))?;
    file.write_all(value)
        .and_then(|_| file.flush())
        .map_err(|e| format!("cannot write the value for the editor: {e}"))?;
    // Through the shell, so EDITOR="code --wait" works as it does for git.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("etcdeck")
        .arg(file.path())
        .status()
        .map_err(|e| format!("cannot run the editor {editor:?}: {e}"))?;
    if !status.success() {
        return Err(format!("the editor {editor:?} exited with {status}: nothing written"));
    }
    let mut edited =
        std::fs::read(file.path()).map_err(|e| format!("cannot read the edited value back: {e}"))?;
    if !value.ends_with(b"\n") && edited.ends_with(b"\n") {
        edited.pop();
        if !value.ends_with(b"\r") && edited.ends_with(b"\r") {
            edited.pop();
        }
    }
    Ok(edited)
}

/// Returns whether the screen must be redrawn.
fn on_event(rt: &mut Runtime, keymap: &Keymap, event: Event) -> bool {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                rt.apply(Input::Action(Action::Quit));
                return true;
            }
            if rt.state.modal_unseen && rt.state.modal_mark().is_some() {
                // Typed ahead of a question not drawn yet (a paste without brackets, keys queued
                // behind a slow frame): never its answer.
                rt.state.notice = Some("ignored keys typed before this question was on screen".into());
                return true;
            }
            if rt.state.takes_text() {
                let typed = match key.code {
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => Typed::Char(c),
                    KeyCode::Backspace => Typed::Backspace,
                    KeyCode::Enter => Typed::Enter,
                    KeyCode::Esc => Typed::Esc,
                    _ => return false,
                };
                rt.state.notice = None;
                rt.apply(Input::Typed(typed));
                return true;
            }
            match chord(&key).and_then(|c| keymap.action(&c)) {
                Some(action) => {
                    rt.state.notice = None;
                    rt.apply(Input::Action(action));
                    true
                }
                None => false,
            }
        }
        // A paste is text for the line being typed, never keys: its newlines, `y`s and `:`s
        // confirm and run nothing.
        Event::Paste(text) => {
            rt.apply(Input::Pasted(text));
            true
        }
        Event::Resize(_, _) => true,
        _ => false,
    }
}

/// crossterm's key event in the keymap's terms. Shift is folded into the character.
pub fn chord(event: &KeyEvent) -> Option<KeyChord> {
    let key = match event.code {
        KeyCode::Char(c) => Key::Char(if event.modifiers.contains(KeyModifiers::CONTROL) {
            c.to_ascii_lowercase()
        } else {
            c
        }),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Tab => Key::Tab,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::F(n) => Key::F(n),
        _ => return None,
    };
    Some(KeyChord {
        key,
        ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
        alt: event.modifiers.contains(KeyModifiers::ALT),
    })
}

/// The bottom line: the line being typed, else a notice, else the key hints.
fn render_footer(frame: &mut Frame, area: ratatui::layout::Rect, state: &State, hint: String, theme: &Theme) {
    let line = match (&state.input, &state.notice) {
        (Some(input), notice) => {
            let label = input.prompt.label();
            let room = (area.width as usize).saturating_sub(label.chars().count() + 1).max(1);
            let mut spans = vec![
                Span::styled(label, Style::default().fg(theme.title)),
                // A password shows as one dot per character, never as itself.
                Span::raw(match input.prompt {
                    crate::app::state::Prompt::NewPassword { .. } => {
                        "•".repeat(input.text.chars().count().min(room))
                    }
                    _ => line_tail(&input.text, room),
                }),
                Span::styled("█", Style::default().fg(theme.hint)),
            ];
            if let Some(n) = notice {
                spans.push(Span::styled(format!("  {n}"), Style::default().fg(theme.down)));
            }
            Line::from(spans)
        }
        (None, Some(notice)) => {
            Line::from(Span::styled(format!(" {notice}"), Style::default().fg(theme.title)))
        }
        (None, None) => Line::from(Span::styled(hint, Style::default().fg(theme.hint))),
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The end of a typed line that fits in `room` columns, its line breaks and tabs shown as marks:
/// a pasted megabyte costs one short line to draw.
fn line_tail(text: &str, room: usize) -> String {
    let mut shown: Vec<char> = Vec::with_capacity(room);
    let mut cut = false;
    for c in text.chars().rev() {
        if shown.len() == room {
            cut = true;
            break;
        }
        shown.push(match c {
            '\n' | '\r' => '⏎',
            '\t' => '→',
            c if c.is_control() => '�',
            c => c,
        });
    }
    if cut {
        if let Some(first) = shown.last_mut() {
            *first = '…';
        }
    }
    shown.iter().rev().collect()
}

/// Draws the whole screen from the state.
pub fn render(frame: &mut Frame, state: &State, keymap: &Keymap, theme: &Theme) {
    let area = frame.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(widgets::status_header::HEIGHT),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    widgets::status_header::render(frame, header, state, theme);
    // The bindings each view's footer names: (action, what it does there).
    let hints: &[(Action, &str)] = match state.view {
        View::Members => {
            let table_height = (state.members.len() as u16).max(1) + 3;
            let [table, problems] =
                Layout::vertical([Constraint::Length(table_height), Constraint::Min(3)]).areas(body);
            widgets::members_table::render(frame, table, state, theme);
            widgets::problems::render(frame, problems, state, theme);
            if state.demo {
                &[
                    (Action::Open, "detail"),
                    (Action::KillMember, "kill"),
                    (Action::StartMember, "start"),
                    (Action::ReplaceMember, "replace"),
                    (Action::SwitchView, "keys"),
                ]
            } else {
                &[(Action::Open, "detail"), (Action::Refresh, "refresh"), (Action::SwitchView, "keys")]
            }
        }
        View::Keys => {
            widgets::key_browser::render(
                frame,
                body,
                &state.keys,
                (state.now, state.wall),
                &keymap.describe(Action::Reveal),
                theme,
            );
            if state.keys.value.as_ref().is_some_and(|p| p.history.is_some()) {
                &[(Action::MarkBase, "diff base"), (Action::History, "close history")]
            } else if state.keys.value.is_some() {
                &[
                    (Action::Edit, "edit"),
                    (Action::EditExternal, "$EDITOR"),
                    (Action::Delete, "delete"),
                    (Action::Format, "format"),
                    (Action::History, "history"),
                    (Action::CopyValue, "copy"),
                    (Action::WatchKey, "watch"),
                    (Action::Back, "close"),
                ]
            } else {
                &[
                    (Action::Open, "open"),
                    (Action::Search, "prefix"),
                    (Action::Filter, "filter"),
                    (Action::Tree, "tree"),
                    (Action::New, "new"),
                    (Action::DeletePrefix, "delete prefix"),
                    (Action::WatchPrefix, "watch"),
                    (Action::Command, "command"),
                ]
            }
        }
        View::Space => {
            match &state.space {
                Some(view) => widgets::space_view::render(frame, body, view, state.now, theme),
                None => {
                    frame.render_widget(Paragraph::new(" :space [prefix] shows where the space goes"), body)
                }
            }
            if state.space.as_ref().is_some_and(|v| v.running()) {
                &[(Action::Back, "cancel"), (Action::Open, "expand")]
            } else {
                &[(Action::Open, "expand / open"), (Action::Refresh, "read again"), (Action::Back, "keys")]
            }
        }
        View::Mirror => {
            widgets::mirror_view::render(frame, body, &state.mirrors, state.wall, theme);
            &[(Action::Refresh, "read again"), (Action::Back, "keys")]
        }
        View::Auth => {
            widgets::auth_view::render(frame, body, &state.auth, theme);
            &[
                (Action::New, "add user"),
                (Action::Delete, "delete"),
                (Action::Refresh, "reload"),
                (Action::Command, ":user :role :grant-role :grant :revoke"),
                (Action::Back, "members"),
            ]
        }
        View::Watch => {
            match &state.watch {
                Some(tail) => widgets::watch_tail::render(frame, body, tail, theme),
                None => frame.render_widget(Paragraph::new(" no watch tail: :watch <prefix>"), body),
            }
            &[
                (Action::Pause, "pause"),
                (Action::Filter, "filter"),
                (Action::Back, "keys"),
                (Action::Up, "scroll"),
            ]
        }
    };
    let mut hint = format!(" {} help  {} quit", keymap.describe(Action::Help), keymap.describe(Action::Quit));
    for (action, what) in hints {
        hint.push_str(&format!("  {} {what}", keymap.describe(*action)));
        if *action == Action::Refresh && state.view == View::Members {
            let (faster, slower) =
                (keymap.describe(Action::FasterRefresh), keymap.describe(Action::SlowerRefresh));
            hint.push_str(&format!("  {faster}/{slower} interval"));
        }
    }
    render_footer(frame, footer, state, hint, theme);
    if state.input.as_ref().is_some_and(|l| l.prompt == crate::app::state::Prompt::RestoreFrom)
        && !state.backups.is_empty()
    {
        widgets::restore_dialog::render_backups(frame, area, &state.backups, state.wall, theme);
    }

    match state.overlay {
        Overlay::None => {}
        Overlay::Help => widgets::help::render(frame, area, keymap, theme, state.demo),
        Overlay::Detail(id) => {
            if let Some(member) = state.member(id).filter(|_| state.view == View::Members) {
                widgets::member_detail::render(frame, area, state, member, theme);
            }
        }
    }
    match &state.modal {
        Some(Modal::Member(dialog)) => {
            widgets::member_dialog::render(frame, area, dialog, &state.endpoints, theme)
        }
        Some(Modal::Restore(wizard)) => {
            widgets::restore_dialog::render(frame, area, wizard, state.demo, theme)
        }
        Some(Modal::Snapshot(dialog)) => widgets::snapshot_dialog::render(frame, area, state, dialog, theme),
        Some(Modal::Keys(dialog)) => widgets::dialog::render(frame, area, dialog, theme),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::app::fixtures;

    fn draw(state: &State, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        let keymap = Keymap::defaults();
        let theme = Theme::default();
        terminal.draw(|f| render(f, state, &keymap, &theme)).expect("draw");
        terminal.backend().to_string()
    }

    #[test]
    fn dashboard_80x24_member_down_and_alarm() {
        insta::assert_snapshot!(draw(&fixtures::degraded(), 80, 24));
    }

    #[test]
    fn dashboard_160x48_member_down_and_alarm() {
        insta::assert_snapshot!(draw(&fixtures::degraded(), 160, 48));
    }

    #[test]
    fn dashboard_80x24_healthy() {
        insta::assert_snapshot!(draw(&fixtures::healthy(), 80, 24));
    }

    #[test]
    fn a_saved_snapshot_names_its_format_and_the_tools_that_restore_it_100x30() {
        use crate::app::snapshot::{SavedSnapshot, SnapshotDialog, SnapshotFormat};
        let mut state = fixtures::healthy();
        let saved = SavedSnapshot {
            path: "/backup/etcd-2026-12-06.db".into(),
            bytes: 40 << 20,
            elapsed: Duration::from_millis(1600),
            revision: 120_345,
            keys: Ok(98_000),
            sha256: "ab".repeat(32),
            format: SnapshotFormat::EtcdSnapshot,
        };
        state.modal =
            Some(Modal::Snapshot(SnapshotDialog::Saved { name: "etcd-1".into(), result: Ok(saved) }));
        insta::assert_snapshot!(draw(&state, 100, 30));
    }

    #[test]
    fn dashboard_before_the_first_answer() {
        let state = State::new(vec!["http://127.0.0.1:2379".into()], None, Duration::from_secs(2));
        insta::assert_snapshot!(draw(&state, 80, 24));
    }

    #[test]
    fn help_overlay_80x24() {
        let mut state = fixtures::healthy();
        state.overlay = Overlay::Help;
        insta::assert_snapshot!(draw(&state, 80, 24));
    }

    #[test]
    fn detail_pane_of_a_down_member_80x24() {
        let mut state = fixtures::degraded();
        state.overlay = Overlay::Detail(fixtures::ID3);
        insta::assert_snapshot!(draw(&state, 80, 24));
    }

    #[test]
    fn detail_pane_of_the_leader_160x48() {
        let mut state = fixtures::degraded();
        state.overlay = Overlay::Detail(fixtures::ID1);
        insta::assert_snapshot!(draw(&state, 160, 48));
    }

    #[test]
    fn dashboard_160x48_learner_and_unstarted_member() {
        insta::assert_snapshot!(draw(&fixtures::with_learner_and_unstarted(), 160, 48));
    }

    #[test]
    fn dashboard_80x24_learner_and_unstarted_member() {
        insta::assert_snapshot!(draw(&fixtures::with_learner_and_unstarted(), 80, 24));
    }

    /// The healthy dashboard's state in the key browser: keys loaded, the value of `open` shown.
    fn browsing(value: &[u8]) -> State {
        use crate::app::keys::{KeyPage, ValueInfo};
        let mut state = fixtures::healthy();
        state.view = View::Keys;
        state.keys.list(&mut state.ids, b"/registry/".to_vec());
        let mut keys: Vec<Vec<u8>> = [
            "/registry/configmaps/kube-system/coredns",
            "/registry/pods/default/web-0",
            "/registry/pods/default/web-1",
        ]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
        keys.push(b"/registry/raw/\xff\x00".to_vec());
        let rows = keys.into_iter().map(crate::app::keys::Row::key).collect();
        state.keys.on_page(&mut state.ids, 1, Ok(KeyPage { rows, more: true, revision: 4242 }));
        state.keys.on_count(2, Ok(1234));
        state.keys.move_to(&mut state.ids, 1);
        let Some(crate::app::keys::KeyRequest::Value { request, .. }) = state.keys.open(&mut state.ids)
        else {
            panic!("open asks for the value")
        };
        let key = b"/registry/pods/default/web-0".to_vec();
        let info = ValueInfo {
            key,
            value: value.to_vec(),
            create_revision: 17,
            mod_revision: 4200,
            version: 9,
            lease: 0x694d7b7c8cf4d108,
        };
        state.keys.on_value(request, Ok(Some(crate::app::keys::ValueRead::new(info, Some(42)))));
        state
    }

    #[test]
    fn key_browser_with_a_json_value_100x24() {
        let json =
            br#"{"kind":"Pod","metadata":{"name":"web-0","labels":{"app":"web"}},"spec":{"replicas":3}}"#;
        insta::assert_snapshot!(draw(&browsing(json), 100, 24));
    }

    #[test]
    fn key_browser_with_a_binary_value_100x24() {
        insta::assert_snapshot!(draw(&browsing(b"k8s\x00\x0a\x0d\x0a\x02v1\x12\x03Pod\xff\xfe"), 100, 24));
    }

    #[test]
    fn key_browser_with_kubernetes_values_names_what_the_apiserver_stored_100x24() {
        // k8s\0, then runtime.Unknown: typeMeta {apiVersion v1, kind Pod}, raw (4 bytes), and the
        // empty content encoding and type, as kube-apiserver writes them.
        let pod = b"k8s\x00\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x04\x0a\x02\x0a\x00\x1a\x00\x22\x00";
        let screen = draw(&browsing(pod), 100, 24);
        assert!(screen.contains("kubernetes Pod (v1), protobuf, 4 bytes"), "{screen}");
        let secret = b"k8s:enc:aescbc:v1:key1:\x9a\x01\x02\x03";
        insta::assert_snapshot!(draw(&browsing(secret), 100, 24));
    }

    #[test]
    fn a_kubernetes_pod_reads_as_yaml_and_a_secret_is_masked_until_revealed_100x24() {
        use crate::etcd::k8s::encode::encode_stored;
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2025-12-01T10:00:00Z",
                         "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                     "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
            "status": {"phase": "Running", "podIP": "10.244.1.7"}
        });
        let mut state = browsing(&encode_stored(&pod).expect("encode"));
        insta::assert_snapshot!(draw(&state, 100, 24));
        // ctrl-d pages down, and the title says which lines show.
        crate::app::update::update(&mut state, crate::app::input::Input::Action(Action::ScrollDown));
        let screen = draw(&state, 100, 24);
        assert!(screen.contains(" lines 10-20 of 20 "), "{screen}");
        assert!(screen.contains("podIP: 10.244.1.7"), "{screen}");
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"
        });
        let mut state = browsing(&encode_stored(&secret).expect("encode"));
        let screen = draw(&state, 100, 24);
        assert!(screen.contains("password: \"<hidden: 7 bytes>\""), "{screen}");
        assert!(screen.contains("data hidden (u shows it)"), "{screen}");
        assert!(!screen.contains("aHVudGVyMg=="), "{screen}");
        crate::app::update::update(&mut state, crate::app::input::Input::Action(Action::Reveal));
        let screen = draw(&state, 100, 24);
        assert!(screen.contains("password: aHVudGVyMg=="), "{screen}");
        assert!(!screen.contains("data hidden"), "{screen}");
    }

    #[test]
    fn a_command_being_typed_80x24() {
        let mut state = fixtures::healthy();
        state.input = Some(crate::app::state::InputLine {
            prompt: crate::app::state::Prompt::Command,
            text: "keys /registry/pods".into(),
        });
        insta::assert_snapshot!(draw(&state, 80, 24));
    }

    #[test]
    fn key_browser_while_the_first_page_loads_80x24() {
        let mut state = fixtures::healthy();
        state.view = View::Keys;
        state.keys.list(&mut state.ids, Vec::new());
        insta::assert_snapshot!(draw(&state, 80, 24));
    }

    fn value_info(value: &[u8], mod_revision: i64, version: i64) -> crate::app::keys::ValueInfo {
        crate::app::keys::ValueInfo {
            key: b"/registry/pods/default/web-0".to_vec(),
            value: value.to_vec(),
            create_revision: 17,
            mod_revision,
            version,
            lease: 0,
        }
    }

    #[test]
    fn an_edit_confirmation_shows_the_diff_100x30() {
        use crate::app::edit::{Dialog, LeaseChoice, Write};
        use crate::app::value_format::diff;
        let old = br#"{"kind":"Pod","spec":{"replicas":3}}"#;
        let new = br#"{"kind":"Pod","spec":{"replicas":5}}"#;
        let mut state = browsing(old);
        state.modal = Some(Modal::Keys(Dialog::Confirm {
            write: Write::Put {
                key: b"/registry/pods/default/web-0".to_vec(),
                value: new.to_vec(),
                expect: 4200,
                lease: LeaseChoice::Keep,
            },
            seen: Some(old.to_vec()),
            diff: diff(Some(old), Some(new)),
            typed: None,
        }));
        insta::assert_snapshot!(draw(&state, 100, 30));
    }

    #[test]
    fn a_write_conflict_shows_what_changed_meanwhile_100x30() {
        use crate::app::edit::{Dialog, LeaseChoice, Write};
        let mut state = browsing(b"replicas: 3");
        state.modal = Some(Modal::Keys(Dialog::conflict(
            Write::Put {
                key: b"/registry/pods/default/web-0".to_vec(),
                value: b"replicas: 5".to_vec(),
                expect: 4200,
                lease: LeaseChoice::Keep,
            },
            Some(b"replicas: 3".to_vec()),
            Some(value_info(b"replicas: 4", 4231, 10)),
        )));
        insta::assert_snapshot!(draw(&state, 100, 30));
    }

    #[test]
    fn a_prefix_delete_asks_for_the_prefix_to_be_typed_100x24() {
        use crate::app::edit::{Dialog, TypedConfirm, Write};
        let mut state = browsing(b"x");
        state.keys.value = None;
        state.modal = Some(Modal::Keys(Dialog::Confirm {
            write: Write::DeletePrefix { prefix: b"/registry/pods/".to_vec(), count: 1234, revision: 4242 },
            seen: None,
            diff: Vec::new(),
            typed: Some(TypedConfirm { expected: "/registry/pods/".into(), text: "/registry/po".into() }),
        }));
        insta::assert_snapshot!(draw(&state, 100, 24));
    }

    #[test]
    fn a_key_deletion_confirmation_and_read_only_header_100x24() {
        use crate::app::edit::{Dialog, Write};
        use crate::app::value_format::diff;
        let mut state = browsing(b"old value");
        state.read_only = Some("--read-only".into());
        state.modal = Some(Modal::Keys(Dialog::Confirm {
            write: Write::Delete { key: b"/registry/pods/default/web-0".to_vec(), expect: 4200 },
            seen: Some(b"old value".to_vec()),
            diff: diff(Some(b"old value"), None),
            typed: None,
        }));
        insta::assert_snapshot!(draw(&state, 100, 24));
    }

    #[test]
    fn a_yaml_view_and_a_tree_level_100x24() {
        use crate::app::keys::{KeyPage, Row};
        use crate::app::value_format::ValueFormat;
        let mut state = browsing(
            br#"{"kind":"Pod","metadata":{"name":"web-0","labels":{"app":"web"}},"ports":[80,443]}"#,
        );
        if let Some(pane) = state.keys.value.as_mut() {
            pane.format = Some(ValueFormat::Yaml);
        }
        state.keys.tree = Some(b"/".to_vec());
        state.keys.list(&mut state.ids, b"/registry/pods/default/".to_vec());
        // The pane shows the key under the cursor (the first row).
        let rows = vec![
            Row::key(&b"/registry/pods/default/web-0"[..]),
            Row::key(&b"/registry/pods/default/web-1"[..]),
            Row { key: b"/registry/pods/default/jobs/".to_vec(), dir: true, kube: None },
        ];
        let request = state.ids.last();
        state.keys.on_page(&mut state.ids, request, Ok(KeyPage { rows, more: false, revision: 4242 }));
        state.keys.on_count(request + 1, Ok(1234));
        insta::assert_snapshot!(draw(&state, 100, 24));
    }

    #[test]
    fn a_key_history_with_a_diff_100x30() {
        use crate::app::keys::{HistoryPane, KeyHistory};
        let mut state = browsing(b"replicas: 5\nimage: web:1.2");
        if let Some(pane) = state.keys.value.as_mut() {
            let current = pane.info().cloned().expect("value");
            let mut history = HistoryPane {
                request: 9,
                result: Some(Ok(KeyHistory {
                    versions: vec![
                        current,
                        value_info(b"replicas: 3\nimage: web:1.2", 3100, 8),
                        value_info(b"replicas: 3\nimage: web:1.1", 17, 1),
                    ],
                    end: "created at revision 17".into(),
                })),
                selected: 0,
                base: None,
                diff: Vec::new(),
            };
            history.refresh_diff();
            pane.history = Some(history);
        }
        insta::assert_snapshot!(draw(&state, 100, 30));
    }

    #[test]
    fn a_watch_tail_with_drops_paused_100x24() {
        use crate::app::watch::{EventKind, TailEvent, TailStatus, WatchReport, WatchTail};
        let mut state = fixtures::healthy();
        state.view = View::Watch;
        let mut tail = WatchTail::new(1, b"/svc/".to_vec(), true, 0);
        tail.status = TailStatus::Watching { from: 5001 };
        let events = (0..12)
            .map(|i| TailEvent {
                kind: if i % 5 == 4 { EventKind::Delete } else { EventKind::Put },
                key: format!("/svc/web-{}", i % 3).into_bytes(),
                key_len: 10,
                mod_revision: 5001 + i,
                value: format!("{{\"ready\":{}}}", i % 2 == 0).into_bytes(),
                value_len: 14,
                prev: (i > 2).then(|| b"{\"ready\":false}".to_vec()),
            })
            .collect();
        tail.on_report(WatchReport::Events { events, dropped: 250 });
        tail.rate = 812.0;
        tail.toggle_pause();
        tail.on_report(WatchReport::Events { events: Vec::new(), dropped: 3 });
        state.watch = Some(tail);
        insta::assert_snapshot!(draw(&state, 100, 24));
    }

    #[test]
    fn a_compacted_watch_start_offers_the_compact_revision_100x12() {
        use crate::app::watch::{TailStatus, WatchTail};
        let mut state = fixtures::healthy();
        state.view = View::Watch;
        let mut tail = WatchTail::new(1, b"/svc/".to_vec(), true, 3);
        tail.status = TailStatus::Compacted {
            error: "etcdserver: mvcc: required revision has been compacted".into(),
            compact_revision: 812,
        };
        state.watch = Some(tail);
        insta::assert_snapshot!(draw(&state, 100, 12));
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        for (w, h) in [(1, 1), (10, 5), (20, 3), (200, 2), (3, 60)] {
            draw(&browsing(b"{}"), w, h);
        }
        for (w, h) in [(1, 1), (10, 5), (20, 3), (200, 2), (3, 60)] {
            draw(&fixtures::degraded(), w, h);
        }
    }
}
