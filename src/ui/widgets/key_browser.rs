//! The key browser: the loaded keys under the prefix, and the selected key's value beside them.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::keys::{display_bytes, value_lines, KeyBrowser, ValueFormat};
use crate::ui::theme::Theme;

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(title, Style::default().fg(theme.title)))
}

pub fn render(frame: &mut Frame, area: Rect, b: &KeyBrowser, theme: &Theme) {
    let (list_area, value_area) = if b.value.is_some() {
        let [l, v] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
        (l, Some(v))
    } else {
        (area, None)
    };
    render_list(frame, list_area, b, theme);
    if let Some(v) = value_area {
        render_value(frame, v, b, theme);
    }
}

fn render_list(frame: &mut Frame, area: Rect, b: &KeyBrowser, theme: &Theme) {
    let prefix = if b.prefix.is_empty() { "all keys".to_string() } else { display_bytes(&b.prefix) };
    let mut summary = match (b.count, b.revision) {
        (Some(count), Some(rev)) => {
            format!("row {} of {count} keys at revision {rev}, {} loaded", b.selected + 1, b.loaded())
        }
        // The count is on its way: say how many are known to exist so far.
        (None, Some(rev)) => format!(
            "row {} of {}{} keys at revision {rev}, {} loaded",
            b.selected + 1,
            b.known,
            if b.more { "+" } else { "" },
            b.loaded()
        ),
        _ => String::new(),
    };
    if b.loading.is_some() {
        summary.push_str(if summary.is_empty() { "loading…" } else { ", loading…" });
    } else if b.more {
        summary.push_str(", more below");
    }
    let title = format!(" keys: {prefix} ");
    let inner_height = area.height.saturating_sub(3) as usize;
    // Keep the selection on screen, scrolling a page at a time.
    let first = b.selected.checked_div(inner_height).map_or(0, |page| page * inner_height);
    let mut lines = vec![Line::from(Span::styled(summary, Style::default().fg(theme.label)))];
    if let Some(e) = &b.error {
        lines.push(Line::from(Span::styled(format!("✗ {e}"), Style::default().fg(theme.down))));
    } else if b.known == 0 && b.loading.is_none() && b.revision.is_some() {
        lines.push(Line::from(Span::styled("no keys", Style::default().fg(theme.label))));
    }
    for i in (first..b.known).take(inner_height) {
        let style = if i == b.selected {
            Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(theme.text)
        };
        let marker = if i == b.selected { "▶ " } else { "  " };
        // A row whose page is not in memory (yet, or any more) says so; it is not missing.
        let text = b.key_at(i).map_or_else(|| "… not loaded".to_string(), |k| display_bytes(k));
        lines.push(Line::from(Span::styled(format!("{marker}{text}"), style)));
    }
    frame.render_widget(Paragraph::new(lines).block(block(title, theme)), area);
}

fn render_value(frame: &mut Frame, area: Rect, b: &KeyBrowser, theme: &Theme) {
    let Some(pane) = &b.value else { return };
    let label = |s: &str| Span::styled(s.to_string(), Style::default().fg(theme.label));
    let mut lines = Vec::new();
    let mut title = format!(" {} ", display_bytes(&pane.key));
    match &pane.result {
        None => lines.push(Line::from(label("loading…"))),
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(format!("✗ {e}"), Style::default().fg(theme.down))))
        }
        Some(Ok(None)) => lines.push(Line::from(label("this key does not exist any more"))),
        Some(Ok(Some(v))) => {
            let format = ValueFormat::detect(&v.value);
            title = format!(" {} ({}, {} bytes) ", display_bytes(&v.key), format.name(), v.value.len());
            let lease = if v.lease == 0 { "none".to_string() } else { format!("{:x}", v.lease) };
            lines.push(Line::from(vec![
                label("created "),
                Span::raw(v.create_revision.to_string()),
                label("  modified "),
                Span::raw(v.mod_revision.to_string()),
                label("  version "),
                Span::raw(v.version.to_string()),
                label("  lease "),
                Span::raw(lease),
            ]));
            lines.push(Line::default());
            if v.value.is_empty() {
                lines.push(Line::from(label("(empty value)")));
            }
            let height = area.height.saturating_sub(4) as usize;
            let width = area.width.saturating_sub(2) as usize;
            lines.extend(value_lines(&v.value, format, width).into_iter().take(height).map(Line::from));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block(title, theme)), area);
}
