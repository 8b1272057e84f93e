//! Boxes: a rectangle centred in an area, a titled popup as tall as its wrapped lines (every dialog
//! and overlay draws through these), and a view's titled panel.

use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A bordered, titled popup in the middle of `area`, `width` wide and as tall as its wrapped lines
/// (at most the area), drawn over whatever is below.
pub fn popup(
    frame: &mut ratatui::Frame,
    area: Rect,
    width: u16,
    title: &str,
    border: ratatui::style::Color,
    lines: Vec<ratatui::text::Line<'static>>,
) {
    use ratatui::style::{Modifier, Style};
    use ratatui::text::Span;
    use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
    // Wrapped lines take more rows than there are lines: count them at this width.
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            wrapped_rows(&text, inner)
        })
        .sum();
    let at = centered(area, width, (rows as u16).saturating_add(2).min(area.height));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(border))
        .title(Span::styled(title.to_string(), Style::default().fg(border).add_modifier(Modifier::BOLD)));
    frame.render_widget(Clear, at);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), at);
}

/// The rows `text` takes wrapped at word boundaries to `width` columns, as ratatui's word wrap
/// does (greedy; a word longer than the line is broken).
fn wrapped_rows(text: &str, width: usize) -> usize {
    let mut rows = 1;
    let mut used = 0;
    for word in text.split(' ') {
        let w = ratatui::text::Span::raw(word).width();
        let need = if used == 0 { w } else { used + 1 + w };
        if need <= width {
            used = need;
        } else if w <= width {
            rows += 1;
            used = w;
        } else {
            // Broken across rows, starting on a row of its own.
            rows += usize::from(used > 0) + (w - 1) / width;
            used = (w - 1) % width + 1;
        }
    }
    rows
}

/// A view's bordered panel filling `area`, its title in the theme's title colour.
pub fn panel(
    frame: &mut ratatui::Frame,
    area: Rect,
    title: String,
    lines: Vec<ratatui::text::Line<'_>>,
    theme: &crate::ui::theme::Theme,
) {
    use ratatui::style::Style;
    use ratatui::text::Span;
    use ratatui::widgets::{Block, Borders, Paragraph};
    let block =
        Block::default().borders(Borders::ALL).title(Span::styled(title, Style::default().fg(theme.title)));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A rectangle of at most `width` x `height`, centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] =
        Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [cell] =
        Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    cell
}
