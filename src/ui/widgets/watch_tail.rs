//! The watch tail: the newest events at the bottom, with the watch's state and rate above them.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::value_format::display_bytes;
use crate::app::watch::{EventKind, TailStatus, WatchTail};
use crate::ui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, tail: &WatchTail, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let from = if tail.start > 0 { format!(" from revision {}", tail.start) } else { String::new() };
    let mut title = format!(" watch {}{from} ", tail.target());
    if !tail.filter.is_empty() {
        title = format!(" watch {}{from}, filter {:?} ", tail.target(), tail.filter);
    }
    let (state_text, state_style) = match &tail.status {
        TailStatus::Starting => ("starting…".to_string(), label),
        TailStatus::Watching { from } => {
            (format!("watching since revision {from}"), Style::default().fg(theme.healthy))
        }
        TailStatus::Reconnecting { error, next } => (
            format!("reconnecting (resumes at revision {next}): {error}"),
            Style::default().fg(theme.unhealthy),
        ),
        TailStatus::Compacted { error, .. } => (format!("✗ {error}"), Style::default().fg(theme.down)),
        TailStatus::Failed(e) => (format!("✗ {e}"), Style::default().fg(theme.down)),
    };
    let mut summary = format!(
        "{} events, {:.0}/s, last revision {}",
        tail.received,
        tail.rate,
        if tail.last_revision > 0 { tail.last_revision.to_string() } else { "-".into() }
    );
    if tail.dropped > 0 {
        summary.push_str(&format!(", {} dropped from the display", tail.dropped));
    }
    if tail.paused_at.is_some() {
        summary.push_str(&format!(" · PAUSED ({} new)", tail.held_back()));
    }
    if let TailStatus::Compacted { compact_revision, .. } = tail.status {
        summary = format!("press enter to start at revision {compact_revision}, the oldest etcd still has");
    }
    let mut lines =
        vec![Line::from(Span::styled(state_text, state_style)), Line::from(Span::styled(summary, label))];
    let height = area.height.saturating_sub(4) as usize;
    let width = area.width.saturating_sub(2) as usize;
    // The newest `height` visible rows, `scroll` rows up from the bottom.
    let rows: Vec<_> = tail.visible().rev().skip(tail.scroll).take(height).collect();
    for (_, e) in rows.into_iter().rev() {
        let (kind_style, kind) = match e.kind {
            EventKind::Put => (Style::default().fg(theme.healthy), "PUT   "),
            EventKind::Delete => (Style::default().fg(theme.down), "DELETE"),
        };
        let mut text = format!(" {:>8}  {}", e.mod_revision, preview(&e.key, e.key_len));
        if e.kind == EventKind::Put {
            text.push_str(&format!(" = {}", preview(&e.value, e.value_len)));
        }
        if let Some(prev) = &e.prev {
            text.push_str(&format!("  (was {})", preview(prev, prev.len())));
        }
        let text: String = text.chars().take(width.saturating_sub(7)).collect();
        lines.push(Line::from(vec![
            Span::styled(kind, kind_style.add_modifier(Modifier::BOLD)),
            Span::raw(text),
        ]));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(title, Style::default().fg(theme.title)));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn preview(value: &[u8], len: usize) -> String {
    let mut s = display_bytes(value);
    if len > value.len() {
        s.push('…');
    }
    s
}
