//! The help overlay, generated from the action table and the keymap in use.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::action::ACTIONS;
use crate::app::keymap::Keymap;
use crate::ui::theme::Theme;
use crate::ui::widgets::popup::centered;

/// `demo`: whether the demo's own keys are offered (only `etcdeck demo` runs member processes).
pub fn render(frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme, demo: bool) {
    let entries: Vec<(String, &str)> = ACTIONS
        .iter()
        .filter(|info| demo || !info.action.demo_only())
        .map(|info| (keymap.describe(info.action), info.help))
        .collect();
    // As many columns side by side as the screen's height needs.
    let fit = (area.height.saturating_sub(2) as usize).max(1);
    let columns = entries.len().div_ceil(fit).max(1);
    let rows = entries.len().div_ceil(columns);
    let key_width = entries.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 2;
    let longest = entries.iter().map(|(_, h)| h.chars().count()).max().unwrap_or(0);
    let room = (area.width.saturating_sub(2) as usize / columns).saturating_sub(key_width + 1);
    let help_width = longest.min(room);
    let column = key_width + help_width + 1;
    let lines: Vec<Line> = (0..rows)
        .map(|r| {
            let mut spans = Vec::new();
            for c in 0..columns {
                if let Some((keys, help)) = entries.get(c * rows + r) {
                    let help: String = help.chars().take(help_width).collect();
                    spans.push(Span::styled(
                        format!(" {keys:<w$}", w = key_width - 1),
                        Style::default().fg(theme.title),
                    ));
                    spans.push(Span::raw(format!("{help:<help_width$} ")));
                }
            }
            Line::from(spans)
        })
        .collect();
    let popup = centered(area, (column * columns + 2) as u16, lines.len() as u16 + 2);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.title))
        .title(Span::styled(" keys ", Style::default().fg(theme.title).add_modifier(Modifier::BOLD)))
        .title_bottom(Span::styled(" ?/esc: close ", Style::default().fg(theme.hint)));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
