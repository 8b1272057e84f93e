//! The help overlay, generated from the action table and the keymap in use.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::action::ACTIONS;
use crate::app::keymap::Keymap;
use crate::ui::theme::Theme;
use crate::ui::widgets::centered;

pub fn render(frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
    let lines: Vec<Line> = ACTIONS
        .iter()
        .map(|info| {
            Line::from(vec![
                Span::styled(
                    format!(" {:<16}", keymap.describe(info.action)),
                    Style::default().fg(theme.title),
                ),
                Span::raw(info.help),
            ])
        })
        .collect();
    let popup = centered(area, 60, lines.len() as u16 + 2);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.title))
        .title(Span::styled(" keys ", Style::default().fg(theme.title).add_modifier(Modifier::BOLD)))
        .title_bottom(Span::styled(" ?/esc: close ", Style::default().fg(theme.hint)));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
