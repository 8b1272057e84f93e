//! `:space`: where the space goes under a prefix, largest first, with the scan's progress.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::space::{Group, SpaceView};
use crate::app::value_format::display_bytes;
use crate::etcd::format::bytes;
use crate::ui::theme::Theme;

pub fn render(
    frame: &mut Frame,
    area: Rect,
    view: &SpaceView,
    now: Option<std::time::Instant>,
    theme: &Theme,
) {
    let r = &view.report;
    let label = Style::default().fg(theme.label);
    let prefix = if view.prefix.is_empty() { "all keys".to_string() } else { display_bytes(&view.prefix) };
    let title = match r.revision {
        0 => format!(" space: {prefix} "),
        rev => format!(" space: {prefix} at revision {rev} "),
    };
    let width = area.width.saturating_sub(2) as usize;
    let elapsed = match (view.running(), now) {
        (true, Some(now)) => now.saturating_duration_since(view.started),
        _ => view.updated.saturating_duration_since(view.started),
    };
    let secs = elapsed.as_secs_f64();
    let mut lines = Vec::new();
    let scanned = format!("{} of {} keys, {}", r.scanned_keys, r.total_keys, bytes(r.scanned_bytes as i64));
    match (&view.stopped, r.done) {
        (Some(why), _) => lines.push(Line::from(Span::styled(
            format!("✗ stopped ({why}) after {scanned} in {secs:.1} s: what is below is partial"),
            Style::default().fg(theme.down),
        ))),
        (None, true) => lines.push(Line::from(Span::styled(
            format!(
                "{} keys, {} live, read in {secs:.1} s; r reads again",
                r.scanned_keys,
                bytes(r.scanned_bytes as i64)
            ),
            label,
        ))),
        (None, false) => {
            // A bar of the keys read so far.
            let share =
                if r.total_keys == 0 { 0.0 } else { (r.scanned_keys as f64 / r.total_keys as f64).min(1.0) };
            let bar_width = 30usize;
            let filled = (share * bar_width as f64).round() as usize;
            let bar = format!("[{}{}]", "█".repeat(filled), "·".repeat(bar_width - filled));
            lines.push(Line::from(vec![
                Span::styled(bar, Style::default().fg(theme.healthy)),
                Span::styled(format!(" {:.0}%  {scanned}, {secs:.0} s; Esc cancels", share * 100.0), label),
            ]));
        }
    }
    if r.db_size > 0 {
        let live = r.scanned_bytes as i64;
        lines.push(Line::from(Span::styled(
            format!(
                "backend {}, {} in use; history since the compaction at revision {} is estimated (≈) from each key's versions",
                bytes(r.db_size),
                bytes(r.db_in_use),
                r.compacted
            ),
            label,
        )));
        if r.done && view.prefix.is_empty() {
            lines.push(Line::from(Span::styled(
                format!(
                    "live keys and values {}; the rest in use ({}) is history, deleted keys' revisions and the backend's own",
                    bytes(live),
                    bytes((r.db_in_use - live).max(0))
                ),
                label,
            )));
        }
    }
    // The marker and the five number columns take 52.
    let name_width = width.saturating_sub(52).max(12);
    let header = format!(
        "  {:<name_width$} {:>9} {:>9} {:>6} {:>10} {:>9}",
        "NAME", "KEYS", "LIVE", "%", "HISTORY ≈", "REVS ≈"
    );
    lines.push(Line::from(Span::styled(header, Style::default().fg(theme.title))));
    let rows = view.rows();
    let height = (area.height as usize).saturating_sub(2 + lines.len());
    let first = view.selected.checked_div(height.max(1)).map_or(0, |page| page * height.max(1));
    let total = r.scanned_bytes.max(1) as f64;
    for (i, (depth, g)) in rows.iter().enumerate().skip(first).take(height) {
        let selected = i == view.selected;
        let style = if selected {
            Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(theme.text)
        };
        let marker = if selected { "▶ " } else { "  " };
        lines.push(Line::from(Span::styled(format!("{marker}{}", row(g, *depth, name_width, total)), style)));
    }
    crate::ui::widgets::popup::panel(frame, area, title, lines, theme);
}

fn row(g: &Group, depth: usize, name_width: usize, total: f64) -> String {
    let name = if depth == 0 { g.name.clone() } else { format!("  └ {}", g.name) };
    let name: String = name.chars().take(name_width).collect();
    format!(
        "{name:<name_width$} {:>9} {:>9} {:>5.1}% {:>10} {:>9}",
        g.keys,
        bytes(g.bytes as i64),
        g.bytes as f64 * 100.0 / total,
        bytes(g.history_bytes as i64),
        g.history_revisions
    )
}
