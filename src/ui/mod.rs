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
use crate::app::keymap::{Key, KeyChord, Keymap};
use crate::app::runtime::Runtime;
use crate::app::state::{Overlay, State, View};
use crate::app::update::{Input, Typed};
use crate::ui::theme::Theme;

/// How often time is let pass in the loop; refreshes start on the first tick after they are due.
const TICK: Duration = Duration::from_millis(100);

pub struct ConsoleOptions {
    pub refresh_interval: Duration,
    /// When the process started, for --timings.
    pub started: Instant,
}

pub struct Outcome {
    /// Time from process start to the first drawn frame that held a complete refresh.
    pub first_complete_frame: Option<Duration>,
    /// For each page of keys: from asking for it to the first frame drawn with it, in order.
    pub key_page_frames: Vec<Duration>,
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
    rt.tick();

    let mut guard = terminal::TerminalGuard::enter().context("cannot set up the terminal")?;
    let mut events = EventStream::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first_complete_frame = None;
    let mut key_page_frames = Vec::new();
    let mut dirty = true;
    loop {
        if dirty {
            guard.terminal.draw(|frame| render(frame, &rt.state, &keymap, &theme))?;
            dirty = false;
            for asked in rt.pages_answered.drain(..) {
                key_page_frames.push(asked.elapsed());
            }
            if first_complete_frame.is_none() && rt.state.has_complete_view() {
                first_complete_frame = Some(options.started.elapsed());
            }
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => dirty |= on_event(&mut rt, &keymap, event),
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
        while let Some(Some(Ok(event))) = events.next().now_or_never() {
            dirty |= on_event(&mut rt, &keymap, event);
        }
        if rt.state.should_quit {
            break;
        }
    }
    drop(guard);
    Ok(Outcome { first_complete_frame, key_page_frames })
}

/// Returns whether the screen must be redrawn.
fn on_event(rt: &mut Runtime, keymap: &Keymap, event: Event) -> bool {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                rt.apply(Input::Action(Action::Quit));
                return true;
            }
            if rt.state.input.is_some() {
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
        (Some(input), _) => {
            let prompt = match input.prompt {
                crate::app::state::Prompt::Command => ":",
                crate::app::state::Prompt::Search => "/",
            };
            Line::from(vec![
                Span::styled(prompt, Style::default().fg(theme.title)),
                Span::raw(input.text.clone()),
                Span::styled("█", Style::default().fg(theme.hint)),
            ])
        }
        (None, Some(notice)) => {
            Line::from(Span::styled(format!(" {notice}"), Style::default().fg(theme.title)))
        }
        (None, None) => Line::from(Span::styled(hint, Style::default().fg(theme.hint))),
    };
    frame.render_widget(Paragraph::new(line), area);
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
            &[(Action::Open, "detail"), (Action::Refresh, "refresh"), (Action::SwitchView, "keys")]
        }
        View::Keys => {
            widgets::key_browser::render(frame, body, &state.keys, theme);
            &[
                (Action::Open, "value"),
                (Action::Back, "close"),
                (Action::Refresh, "reload"),
                (Action::Search, "prefix"),
                (Action::Command, "command"),
                (Action::SwitchView, "members"),
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

    match state.overlay {
        Overlay::None => {}
        Overlay::Help => widgets::help::render(frame, area, keymap, theme),
        Overlay::Detail(id) => {
            if let Some(member) = state.member(id).filter(|_| state.view == View::Members) {
                widgets::member_detail::render(frame, area, state, member, theme);
            }
        }
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
        state.keys.list(b"/registry/".to_vec());
        let mut keys: Vec<Vec<u8>> = [
            "/registry/configmaps/kube-system/coredns",
            "/registry/pods/default/web-0",
            "/registry/pods/default/web-1",
        ]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
        keys.push(b"/registry/raw/\xff\x00".to_vec());
        state.keys.on_page(1, Ok(KeyPage { keys, more: true, revision: 4242 }));
        state.keys.on_count(2, Ok(1234));
        state.keys.move_to(1);
        let Some(crate::app::keys::KeyRequest::Value { request, .. }) = state.keys.open() else {
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
        state.keys.on_value(request, Ok(Some(info)));
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
        state.keys.list(Vec::new());
        insta::assert_snapshot!(draw(&state, 80, 24));
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
