//! Under the table: every reason the cluster is not healthy, in words, or a single green line.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::state::State;
use crate::ui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let problems = state.problems();
    let lines: Vec<Line> =
        if !state.has_complete_view() && state.members.is_empty() && state.members_error.is_none() {
            vec![Line::from(Span::styled("connecting…", Style::default().fg(theme.label)))]
        } else if problems.is_empty() {
            vec![Line::from(Span::styled(
                "cluster healthy: every member reachable and healthy, one leader, no alarm",
                Style::default().fg(theme.healthy),
            ))]
        } else {
            problems
                .into_iter()
                .map(|p| {
                    Line::from(vec![
                        Span::styled("✗ ", Style::default().fg(theme.down).add_modifier(Modifier::BOLD)),
                        Span::raw(p),
                    ])
                })
                .collect()
        };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(" health ", Style::default().fg(theme.title)));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
