//! `:mirror`: the mirrors writing into this cluster, from their checkpoints, and the selected one's
//! details.

use std::time::SystemTime;

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::mirrors::{MirrorRow, MirrorView};
use crate::etcd::mirror::Phase;
use crate::ui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, view: &MirrorView, now: SystemTime, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let mut lines = Vec::new();
    if let Some(e) = &view.error {
        lines.push(Line::from(Span::styled(
            format!("✗ {e} (shown: the last read)"),
            Style::default().fg(theme.down),
        )));
    }
    if view.rows.is_empty() {
        let text = if view.read {
            "no mirror writes into this cluster (etcdeck mirror --to <this cluster> keeps its checkpoint here)"
        } else {
            "reading the mirrors' checkpoints…"
        };
        lines.push(Line::from(Span::styled(text, label)));
    } else {
        let header = format!(
            "  {:<16} {:<16} {:<16} {:<13} {:>10} {:>10} {:>9} {:>10}",
            "INTO", "FROM PREFIX", "SOURCE CLUSTER", "STATE", "AT REV", "SOURCE REV", "WRITTEN", "SYNCED"
        );
        lines.push(Line::from(Span::styled(header, Style::default().fg(theme.title))));
        for (i, row) in view.rows.iter().enumerate() {
            let selected = i == view.selected;
            let stale = row.state(now) == "not running?" || row.checkpoint.is_err();
            let style = match (selected, stale) {
                (true, _) => Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD),
                (false, true) => Style::default().fg(theme.unhealthy),
                (false, false) => Style::default().fg(theme.text),
            };
            let marker = if selected { "▶ " } else { "  " };
            lines.push(Line::from(Span::styled(format!("{marker}{}", line(row, now)), style)));
        }
        if let Some(row) = view.rows.get(view.selected) {
            lines.push(Line::from(""));
            lines.extend(details(row, now).into_iter().map(|t| Line::from(Span::styled(t, label))));
        }
    }
    let title = format!(" mirrors into this cluster ({}) ", view.rows.len());
    crate::ui::widgets::popup::panel(frame, area, title, lines, theme);
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn shown_prefix(p: &str) -> String {
    if p.is_empty() {
        "(root)".into()
    } else {
        p.to_string()
    }
}

fn line(row: &MirrorRow, now: SystemTime) -> String {
    let Ok(cp) = &row.checkpoint else {
        return format!("{:<16} {}", cut(&row.key, 16), row.state(now));
    };
    let written = row.age(now).map(|a| format!("{:.0} s ago", a.as_secs_f64())).unwrap_or_default();
    format!(
        "{:<16} {:<16} {:<16} {:<13} {:>10} {:>10} {:>9} {:>10}",
        cut(&shown_prefix(&cp.dest_prefix), 16),
        cut(&shown_prefix(&cp.prefix), 16),
        cut(&cp.source_cluster_id, 16),
        row.state(now),
        cp.revision,
        cp.source_revision,
        written,
        cp.synced
    )
}

fn details(row: &MirrorRow, now: SystemTime) -> Vec<String> {
    let Ok(cp) = &row.checkpoint else {
        return vec![format!("{}: {}", row.key, row.checkpoint.as_ref().err().cloned().unwrap_or_default())];
    };
    let mut out = vec![
        format!("checkpoint {} (written at this cluster's revision {})", row.key, row.mod_revision),
        format!("source: cluster {} at {}", cp.source_cluster_id, cp.source_endpoints.join(", ")),
    ];
    out.push(match cp.phase {
        Phase::Copy => format!(
            "copying the source as it was at revision {}; {} keys put or deleted by this run",
            cp.revision, cp.synced
        ),
        Phase::Watch => format!(
            "every source revision up to {} is here{}; the source was at {} when written: {} revisions behind",
            cp.revision,
            if cp.sub > 0 { format!(" (and {} events of the next)", cp.sub) } else { String::new() },
            cp.source_revision,
            cp.revisions_behind()
        ),
    });
    if let Some(age) = row.age(now) {
        let age = age.as_secs();
        out.push(if row.state(now) == "not running?" {
            format!("last written {age} s ago: a running mirror writes it at least every 10 s")
        } else {
            format!("written {age} s ago by {}", cp.writer)
        });
    }
    out
}
