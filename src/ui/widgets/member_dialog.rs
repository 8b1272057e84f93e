//! The member maintenance dialog: what the change does (warnings loud), the etcdctl command that
//! does the same, the keys; then etcd's answer, and for an added member the commands that start it.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::members::{MemberDialog, MemberOp};
use crate::app::replace::{Replace, StepKind, StepState};
use crate::ui::theme::Theme;
use crate::ui::widgets::popup::popup;

pub fn render(frame: &mut Frame, area: Rect, dialog: &MemberDialog, endpoints: &[String], theme: &Theme) {
    if let MemberDialog::Replace(r) = dialog {
        return render_replace(frame, area, r, theme);
    }
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
        MemberDialog::Replace(_) => return,
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
        MemberDialog::Replace(_) => return,
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

/// The replacement: what removing the member does, then each step with its state and the same by
/// hand, then the keys.
fn render_replace(frame: &mut Frame, area: Rect, r: &Replace, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let loud = Style::default().fg(theme.down).add_modifier(Modifier::BOLD);
    let good = Style::default().fg(theme.healthy);
    let keys = |text: &str| Line::from(Span::styled(text.to_string(), Style::default().fg(theme.title)));
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "replace member {} ({:x}): remove it, wipe its data, add it back, start it empty",
                r.name, r.id
            ),
            bold,
        )),
        Line::default(),
    ];
    for n in &r.notes {
        lines.push(Line::from(Span::styled(n.text.clone(), if n.loud { loud } else { label })));
    }
    lines.push(Line::default());
    for (i, step) in r.steps.iter().enumerate() {
        let (mark, style, detail) = match &step.state {
            StepState::Waiting => ("  ", Style::default(), String::new()),
            StepState::Running => ("… ", bold, String::new()),
            StepState::Done(d) => ("✓ ", good, format!(" — {d}")),
            StepState::Yours => ("→ ", label, String::new()),
            StepState::Failed(e) => ("✗ ", loud, format!(" — {e}")),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark}{}. {}", i + 1, step.what), style),
            Span::styled(detail, style),
        ]));
        for same in &step.same {
            lines.push(Line::from(Span::styled(format!("      $ {same}"), label)));
        }
    }
    lines.push(Line::default());
    let waiting = r.steps.iter().any(|s| s.kind == StepKind::Wait && s.state == StepState::Running);
    lines.push(keys(if !r.confirmed {
        "y: replace it (enter is not enough) · esc: cancel"
    } else if r.finished() {
        "any key: close"
    } else if waiting {
        "waiting for it to answer healthy · esc: stop waiting (it stays a member)"
    } else {
        "working…"
    }));
    let border = if r.failed() || r.notes.iter().any(|n| n.loud) { theme.down } else { theme.title };
    popup(frame, area, area.width.saturating_sub(4).min(150), " replace member ", border, lines);
}
