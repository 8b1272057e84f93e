//! The member maintenance dialog: what the change does (warnings loud), the etcdctl command that
//! does the same, the keys; then etcd's answer, and for an added member the commands that start it.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::members::{MemberDialog, MemberOp};
use crate::ui::theme::Theme;
use crate::ui::widgets::popup;

pub fn render(frame: &mut Frame, area: Rect, dialog: &MemberDialog, endpoints: &[String], theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let loud = Style::default().fg(theme.down).add_modifier(Modifier::BOLD);
    let keys = |text: &str| Line::from(Span::styled(text.to_string(), Style::default().fg(theme.title)));
    let etcdctl = |op: &MemberOp| {
        vec![
            Line::from(Span::styled(format!("{}:", op.same_with()), label)),
            Line::from(Span::raw(format!("  {}", op.etcdctl(endpoints)))),
        ]
    };
    let op_of = match dialog {
        MemberDialog::Confirm { op, .. }
        | MemberDialog::Running { op, .. }
        | MemberDialog::Result { op, .. } => op,
    };
    let name = if matches!(op_of, MemberOp::Auth(_)) { " users and roles " } else { " members " };
    let (title, lines, border) = match dialog {
        MemberDialog::Confirm { op, notes, deliberate } => {
            let mut lines =
                vec![Line::from(Span::styled(format!("{}?", op.describe()), bold)), Line::default()];
            let any_loud = notes.iter().any(|n| n.loud);
            for n in notes {
                lines.push(Line::from(Span::styled(n.text.clone(), if n.loud { loud } else { label })));
            }
            lines.push(Line::default());
            lines.extend(etcdctl(op));
            lines.push(Line::default());
            lines.push(keys(if *deliberate {
                "y: do it (enter is not enough) · esc: cancel"
            } else {
                "y/enter: do it · esc: cancel"
            }));
            (name, lines, if any_loud { theme.down } else { theme.title })
        }
        MemberDialog::Running { op, progress, .. } => {
            let mut lines = vec![Line::from(Span::styled(format!("{}…", op.describe()), label))];
            lines.extend(progress.iter().map(|p| Line::from(Span::raw(format!("  ✓ {p}")))));
            (name, lines, theme.title)
        }
        MemberDialog::Result { op, result: Ok(steps) } if !matches!(op, MemberOp::Add { .. }) => {
            let mut lines = vec![Line::from(Span::styled(format!("done: {}", op.describe()), bold))];
            lines.extend(steps.iter().map(|s| Line::from(Span::raw(format!("  ✓ {s}")))));
            lines.push(Line::default());
            lines.push(keys("any key: close"));
            (name, lines, theme.title)
        }
        MemberDialog::Result { op, result: Ok(commands) } => {
            let mut lines = vec![Line::from(Span::styled(format!("done: {}", op.describe()), bold))];
            if !commands.is_empty() {
                lines.push(Line::default());
                lines.push(Line::from(Span::styled(
                    "start it with these settings (etcdctl prints the same):",
                    label,
                )));
                lines.extend(commands.iter().map(|c| Line::from(Span::raw(c.clone()))));
                lines.push(Line::default());
                lines.push(keys("y: copy the etcdeck command · any other key: close"));
            } else {
                lines.push(keys("any key: close"));
            }
            (name, lines, theme.title)
        }
        MemberDialog::Result { op, result: Err(e) } => (
            name,
            vec![
                Line::from(Span::styled(format!("{} failed:", op.describe()), loud)),
                Line::from(Span::raw(e.clone())),
                Line::default(),
                keys("any key: close"),
            ],
            theme.down,
        ),
    };
    popup(frame, area, area.width.saturating_sub(4).min(140), title, border, lines);
}
