//! The detail pane of one member: everything Status and MemberList said about it.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::describe::{member_health, member_role};
use crate::app::format::{bytes, id_hex, millis};
use crate::app::state::{Member, State};
use crate::ui::theme::Theme;
use crate::ui::widgets::popup::centered;

pub fn render(frame: &mut Frame, area: Rect, state: &State, member: &Member, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let row = |name: &str, value: String| {
        Line::from(vec![Span::styled(format!("{name:<14}"), label), Span::raw(value)])
    };
    let role = member_role(state, member);
    let mut lines = vec![
        row("ID", format!("{} (decimal {})", id_hex(member.info.id), member.info.id)),
        row("Role", role.into()),
        row(
            "Health",
            match &member.health {
                Some(Ok(took)) => {
                    format!("{} (linearizable read took {})", member_health(member), millis(*took))
                }
                Some(Err(e)) => format!("{}: {e}", member_health(member)),
                None => member_health(member).into(),
            },
        ),
        row("Started", member.info.is_started().to_string()),
    ];
    for (i, url) in member.info.peer_urls.iter().enumerate() {
        lines.push(row(if i == 0 { "Peer URLs" } else { "" }, url.clone()));
    }
    if member.info.client_urls.is_empty() {
        lines.push(row("Client URLs", "(none published)".into()));
    }
    for (i, url) in member.info.client_urls.iter().enumerate() {
        lines.push(row(if i == 0 { "Client URLs" } else { "" }, url.clone()));
    }
    match &member.status {
        Some(Ok(s)) => {
            lines.push(row("Version", s.version.clone()));
            lines.push(row(
                "DB size",
                format!("{} ({} bytes), in use {}", bytes(s.db_size), s.db_size, bytes(s.db_size_in_use)),
            ));
            lines.push(row("Leader seen", if s.leader == 0 { "none".into() } else { id_hex(s.leader) }));
            lines.push(row("Raft term", s.raft_term.to_string()));
            lines.push(row("Raft index", s.raft_index.to_string()));
            lines.push(row(
                "Applied index",
                format!(
                    "{} (lag {})",
                    s.raft_applied_index,
                    state.applied_lag(member).map_or("-".into(), |l| l.to_string())
                ),
            ));
            lines.push(row("Revision", s.revision.to_string()));
            lines.push(row("Learner", s.is_learner.to_string()));
            lines.push(row("Status RTT", millis(s.rtt)));
            lines.push(row("Errors", if s.errors.is_empty() { "none".into() } else { s.errors.join("; ") }));
        }
        Some(Err(e)) => lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "Status"), label),
            Span::styled(format!("unreachable: {e}"), Style::default().fg(theme.down)),
        ])),
        None => lines.push(row("Status", "waiting for the first answer".into())),
    }
    let width = area.width.saturating_sub(4).min(100);
    // Long errors wrap: count the rows they take, so the pane grows instead of cutting them off.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let popup = centered(area, width, u16::try_from(rows + 2).unwrap_or(u16::MAX).min(area.height));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.title))
        .title(Span::styled(
            format!(" member {} ", member.display_name()),
            Style::default().fg(theme.title).add_modifier(Modifier::BOLD),
        ))
        .title_bottom(Span::styled(" esc: close ", Style::default().fg(theme.hint)));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), popup);
}
