//! Dialogs over the key browser: confirmations (with the diff of the change), write conflicts (with
//! what changed meanwhile), and the typed confirmation of a prefix delete.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::edit::{self, Dialog, LeaseChoice, Write};
use crate::app::value_format::display_bytes;
use crate::ui::theme::Theme;
use crate::ui::widgets::key_browser::diff_lines;
use crate::ui::widgets::popup::centered;

pub fn render(frame: &mut Frame, area: Rect, dialog: &Dialog, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let keys = |text: &str| Line::from(Span::styled(text.to_string(), Style::default().fg(theme.title)));
    let (title, mut lines, border) = match dialog {
        Dialog::Counting { prefix, .. } => (
            " delete prefix ".to_string(),
            vec![Line::from(Span::styled(
                format!("counting the keys under {}…", edit::prefix_label(prefix)),
                label,
            ))],
            theme.title,
        ),
        Dialog::Writing { write, .. } => (
            " writing ".to_string(),
            vec![Line::from(Span::styled(format!("{}…", write.describe()), label))],
            theme.title,
        ),
        Dialog::Confirm { write, diff, typed, .. } => {
            let mut lines =
                vec![Line::from(Span::styled(format!("{}?", capitalised(&write.describe())), bold))];
            match write {
                Write::Put { expect, lease, .. } => {
                    let guard = if *expect == 0 {
                        "only if the key does not exist".to_string()
                    } else {
                        format!("only if it is still at mod revision {expect}")
                    };
                    lines.push(Line::from(Span::styled(guard, label)));
                    match lease {
                        LeaseChoice::New { ttl } => lines
                            .push(Line::from(Span::styled(format!("with a new lease, TTL {ttl}s"), label))),
                        LeaseChoice::Existing(id) => {
                            lines.push(Line::from(Span::styled(format!("with lease {id:x}"), label)))
                        }
                        LeaseChoice::Keep | LeaseChoice::None => {}
                    }
                }
                Write::Delete { expect, .. } => lines.push(Line::from(Span::styled(
                    format!("only if it is still at mod revision {expect}"),
                    label,
                ))),
                Write::DeletePrefix { prefix, count, revision } => {
                    lines.push(Line::from(vec![
                        Span::raw("This deletes "),
                        Span::styled(
                            format!("{count} keys"),
                            Style::default().fg(theme.down).add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(format!(
                            " under {} (counted at revision {revision}),",
                            edit::prefix_label(prefix)
                        )),
                    ]));
                    lines.push(Line::from(Span::styled(
                        format!("only if none of them changed and none was added since revision {revision}."),
                        label,
                    )));
                }
            }
            lines.push(Line::default());
            lines.extend(diff_lines(diff, theme));
            lines.push(Line::default());
            match typed {
                Some(t) => {
                    lines.push(Line::from(vec![
                        Span::raw("Type "),
                        Span::styled(t.expected.clone(), bold),
                        Span::raw(" to confirm: "),
                        Span::styled(t.text.clone(), Style::default().fg(theme.title)),
                        Span::styled("█", Style::default().fg(theme.hint)),
                    ]));
                    lines.push(keys("enter: delete · esc: cancel"));
                }
                None => lines.push(keys("y/enter: write · n/esc: cancel")),
            }
            (" confirm ".to_string(), lines, theme.title)
        }
        Dialog::Conflict { write, current, theirs, yours, .. } => {
            let key = display_bytes(write.key());
            let mut lines = vec![Line::from(Span::styled(
                format!("{key} changed after you read it."),
                Style::default().fg(theme.down).add_modifier(Modifier::BOLD),
            ))];
            let now = match current {
                Some(c) => format!("It is now at mod revision {} (version {}).", c.mod_revision, c.version),
                None => "It has been deleted.".to_string(),
            };
            lines.push(Line::from(Span::styled(now, label)));
            lines.push(Line::from(Span::styled(
                "What changed meanwhile (what you saw → what is there now):",
                label,
            )));
            lines.push(Line::default());
            lines.extend(diff_lines(theirs, theme));
            lines.push(Line::default());
            let retry = match write {
                Write::Put { .. } => {
                    lines.push(Line::from(Span::styled("Your change against what is there now:", label)));
                    lines.extend(diff_lines(yours, theme));
                    lines.push(Line::default());
                    "y: write yours over it · n/esc: keep theirs"
                }
                _ if current.is_none() => "n/esc: close (nothing left to delete)",
                _ => "y: delete it anyway · n/esc: keep it",
            };
            lines.push(keys(retry));
            (" conflict ".to_string(), lines, theme.down)
        }
        Dialog::PrefixChanged { prefix, count } => (
            " conflict ".to_string(),
            vec![
                Line::from(Span::styled(
                    format!("Keys under {} changed after they were counted.", edit::prefix_label(prefix)),
                    Style::default().fg(theme.down).add_modifier(Modifier::BOLD),
                )),
                Line::from(Span::styled(format!("Nothing was deleted. {count} keys are there now."), label)),
                Line::default(),
                keys("y: count again and confirm · n/esc: cancel"),
            ],
            theme.down,
        ),
    };
    let width = area.width.saturating_sub(4).min(100);
    let max_height = area.height.saturating_sub(2);
    if lines.len().saturating_add(2) > max_height as usize {
        // Keep the last line (the keys) visible: cut the diff in the middle.
        let keep_tail = 3usize;
        let room = (max_height as usize).saturating_sub(2 + keep_tail + 1);
        let tail = lines.split_off(lines.len().saturating_sub(keep_tail));
        lines.truncate(room);
        lines.push(Line::from(Span::styled("…", label)));
        lines.extend(tail);
    }
    let popup = centered(area, width, lines.len() as u16 + 2);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(border))
        .title(Span::styled(title, Style::default().fg(border).add_modifier(Modifier::BOLD)));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), popup);
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
