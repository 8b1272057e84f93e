//! The restore wizard: the snapshot file and what its check found, the new cluster's members and
//! token, the runbook with each member's restore command, and the keys; in the demo, the run.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::restore::{RestorePlan, RestoreWizard, Tool};
use crate::ui::theme::Theme;
use crate::ui::widgets::popup::popup;

pub fn render(frame: &mut Frame, area: Rect, wizard: &RestoreWizard, demo: bool, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let loud = Style::default().fg(theme.down).add_modifier(Modifier::BOLD);
    let keys = |text: &str| Line::from(Span::styled(text.to_string(), Style::default().fg(theme.title)));
    let plain = |text: String| Line::from(Span::raw(text));
    let header = |plan: &RestorePlan| {
        let names: Vec<&str> = plan.members.iter().map(|(n, _)| n.as_str()).collect();
        let mut lines = vec![
            Line::from(Span::styled(format!("restore the cluster from {}", plan.file.display()), bold)),
            Line::from(Span::styled(
                format!("as a new cluster of {} ({}), token {}", names.len(), names.join(", "), plan.token),
                label,
            )),
        ];
        lines.extend(plan.left_out.iter().map(|l| Line::from(Span::styled(format!("left out: {l}"), loud))));
        lines
    };
    let (lines, border) = match wizard {
        RestoreWizard::Plan { plan, tool, file } => {
            let mut lines = header(plan);
            lines.push(match file {
                None => Line::from(Span::styled("checking the file…", label)),
                Some(Ok(found)) => Line::from(Span::styled(format!("file: {}", found.summary), label)),
                Some(Err(e)) => Line::from(Span::styled(format!("file: {e}"), loud)),
            });
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(format!("the runbook, for {}:", tool.describe()), label)));
            lines.push(plain("1. stop every member (a restore replaces the whole cluster's data)".into()));
            lines.push(plain(format!(
                "2. on each member's machine, restore into a new data dir ({}):",
                RestorePlan::data_dir("<name>")
            )));
            let format = RestoreWizard::format(file);
            for command in plan.commands(*tool, format) {
                lines.push(plain(format!("   {command}")));
            }
            lines.push(plain(
                "3. start each member with its usual flags but the new --data-dir; keep the old data dirs until the new cluster is healthy"
                    .into(),
            ));
            lines.push(plain(format!(
                "4. check: etcdctl endpoint status --cluster -w table{}",
                if plan.left_out.is_empty() { "" } else { "; then add the members left out again" }
            )));
            lines.push(Line::default());
            // Only the tools that restore this file are offered.
            let tools = Tool::for_format(format);
            let others: Vec<&str> = tools
                .iter()
                .filter(|t| *t != tool)
                .map(|t| match t {
                    Tool::Etcdeck => "etcdeck",
                    Tool::Etcdctl => "etcd 3.4",
                    Tool::Etcdutl => "etcd 3.5+",
                })
                .collect();
            let switch =
                if others.is_empty() { String::new() } else { format!("t: for {} · ", others.join(", ")) };
            let run = demo && crate::app::restore::RestoreWizard::runs_in_demo(file);
            lines.push(keys(&format!(
                "y: copy the commands · {switch}{}esc: close",
                if run { "r: run it on this demo's members · " } else { "" }
            )));
            (lines, theme.title)
        }
        RestoreWizard::Confirm { plan } => {
            let mut lines = header(plan);
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                "THE DEMO'S MEMBERS STOP, and start again on data dirs restored from this file: every write made after the snapshot is gone from the cluster",
                loud,
            )));
            lines.push(Line::from(Span::styled("their old data dirs are kept, beside the new ones", label)));
            lines.push(Line::default());
            lines.push(keys("y: restore (enter is not enough) · esc: cancel"));
            (lines, theme.down)
        }
        RestoreWizard::Running { plan, stage, .. } => {
            let mut lines = header(plan);
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(stage.clone(), label)));
            (lines, theme.title)
        }
        RestoreWizard::Done { result: Ok(done) } => (
            vec![
                Line::from(Span::styled("restored: the cluster runs on the snapshot's data", bold)),
                plain(done.clone()),
                Line::default(),
                keys("any key: close"),
            ],
            theme.title,
        ),
        RestoreWizard::Done { result: Err(e) } => (
            vec![
                Line::from(Span::styled("the restore failed:", loud)),
                plain(e.clone()),
                Line::default(),
                keys("any key: close"),
            ],
            theme.down,
        ),
    };
    popup(frame, area, area.width.saturating_sub(4).min(160), " restore ", border, lines);
}

/// While R's prompt is open: the backups in the backup directory, newest first, by number.
pub fn render_backups(
    frame: &mut Frame,
    area: Rect,
    backups: &[crate::app::snapshot::FoundBackup],
    now: std::time::SystemTime,
    theme: &Theme,
) {
    const SHOWN: usize = 12;
    let label = Style::default().fg(theme.label);
    let mut lines = vec![Line::from(Span::styled(
        format!("{:>3}  {:>10}  {:>8}  {:>9}  file", "#", "revision", "size", "age"),
        Style::default().fg(theme.title),
    ))];
    for (i, b) in backups.iter().take(SHOWN).enumerate() {
        let age = now.duration_since(b.name.taken).map(|d| d.as_secs()).unwrap_or(0);
        let age = humantime::format_duration(std::time::Duration::from_secs(age)).to_string();
        let age: String = age.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let file = b.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        lines.push(Line::from(Span::raw(format!(
            "{:>3}  {:>10}  {:>8}  {:>9}  {file}",
            i + 1,
            b.name.revision,
            crate::etcd::format::bytes(i64::try_from(b.size).unwrap_or(i64::MAX)),
            age
        ))));
    }
    if backups.len() > SHOWN {
        lines.push(Line::from(Span::styled(format!("… and {} older", backups.len() - SHOWN), label)));
    }
    lines.push(Line::from(Span::styled("type a backup's number (or a file's path) and press enter", label)));
    let title = format!(" {} backups in the backup directory ", backups.len());
    popup(frame, area, area.width.saturating_sub(4).min(130), &title, theme.title, lines);
}
