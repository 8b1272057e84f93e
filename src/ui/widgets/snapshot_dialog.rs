//! The snapshot dialog: a progress bar (bytes and rate) while a member's snapshot is saved, then
//! what the verification found (checksum, revision, keys).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph};
use ratatui::Frame;

use crate::app::snapshot::SnapshotDialog;
use crate::app::state::State;
use crate::ui::theme::Theme;
use crate::ui::widgets::popup::{centered, popup};

fn human(bytes: u64) -> String {
    crate::app::format::bytes(bytes.min(i64::MAX as u64) as i64)
}

pub fn render(frame: &mut Frame, area: Rect, state: &State, dialog: &SnapshotDialog, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let width = area.width.saturating_sub(4).min(100);
    match dialog {
        SnapshotDialog::Saving { name, path, expected, bytes, started, .. } => {
            let secs = match (started, state.now) {
                (Some(s), Some(now)) => now.saturating_duration_since(*s).as_secs_f64(),
                _ => 0.0,
            };
            let rate =
                if secs > 0.0 { format!("{}/s", human((*bytes as f64 / secs) as u64)) } else { "…".into() };
            let popup = centered(area, width, 6);
            let block =
                Block::default().borders(Borders::ALL).border_style(Style::default().fg(theme.title)).title(
                    Span::styled(" snapshot ", Style::default().fg(theme.title).add_modifier(Modifier::BOLD)),
                );
            frame.render_widget(Clear, popup);
            let inner = block.inner(popup);
            frame.render_widget(block, popup);
            let [text, bar, _] =
                Layout::vertical([Constraint::Length(2), Constraint::Length(1), Constraint::Min(0)])
                    .areas(inner);
            let lines = vec![
                Line::from(Span::styled(format!("saving {name}'s snapshot to {}", path.display()), bold)),
                Line::from(Span::styled(format!("{} written · {rate}", human(*bytes)), label)),
            ];
            frame.render_widget(Paragraph::new(lines), text);
            // The database size is what to expect; a snapshot can come out a little larger.
            let ratio = if *expected == 0 { 0.0 } else { (*bytes as f64 / *expected as f64).min(0.99) };
            frame.render_widget(
                Gauge::default().gauge_style(Style::default().fg(theme.title)).ratio(ratio),
                bar,
            );
        }
        SnapshotDialog::Saved { name, result } => {
            let mut lines = Vec::new();
            let border = match result {
                Ok(s) => {
                    let secs = s.elapsed.as_secs_f64().max(0.001);
                    lines.push(Line::from(Span::styled(
                        format!("{name}'s snapshot saved and verified"),
                        bold,
                    )));
                    lines.push(Line::default());
                    lines.push(Line::from(format!("file      {}", s.path.display())));
                    lines.push(Line::from(format!(
                        "size      {} in {:.1} s ({}/s)",
                        human(s.bytes),
                        secs,
                        human((s.bytes as f64 / secs) as u64)
                    )));
                    lines.push(Line::from(format!("checksum  SHA-256 {} (matches the data)", s.sha256)));
                    lines.push(Line::from(format!("revision  {}", s.revision)));
                    lines.push(Line::from(match &s.keys {
                        Ok(n) => format!("keys      {n}"),
                        Err(e) => format!("keys      not counted: {e}"),
                    }));
                    lines.push(Line::from(format!("format    {}", s.format.describe())));
                    lines.push(Line::default());
                    lines.push(Line::from(Span::styled("the same with etcdctl:", label)));
                    lines.push(Line::from(format!("  etcdctl snapshot save {}", s.path.display())));
                    lines.push(Line::from(Span::styled(
                        "restored by (:restore FILE writes every member's command):",
                        label,
                    )));
                    let file = crate::app::edit::shell_quote(s.path.display().to_string().as_bytes());
                    for tool in crate::app::restore::Tool::for_format(Some(s.format)) {
                        let (program, from) = tool.program();
                        lines.push(Line::from(format!("  {program} {file}   ({from})")));
                    }
                    theme.title
                }
                Err(e) => {
                    lines.push(Line::from(Span::styled(
                        format!("{name}'s snapshot failed:"),
                        Style::default().fg(theme.down).add_modifier(Modifier::BOLD),
                    )));
                    lines.push(Line::from(e.clone()));
                    theme.down
                }
            };
            lines.push(Line::default());
            lines.push(Line::from(Span::styled("any key: close", Style::default().fg(theme.title))));
            popup(frame, area, width, " snapshot ", border, lines);
        }
    }
}
