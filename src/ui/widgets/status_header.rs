//! The header: which cluster, who leads, whether quorum holds, alarms, and where the data comes from.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::describe::{alarms_text, leader_text};
use crate::app::format::{clock_utc, id_hex};
use crate::app::state::State;
use crate::etcd::duration::format_go_duration;
use crate::ui::theme::Theme;

pub const HEIGHT: u16 = 5;

pub fn render(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let label = Style::default().fg(theme.label);
    let text = Style::default().fg(theme.text);
    let bold = text.add_modifier(Modifier::BOLD);
    let sep = Span::styled(" │ ", Style::default().fg(theme.border));
    let (up, total) = state.members_up();
    let leader_style = if state.leader_id().is_some() {
        Style::default().fg(theme.leader).add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(theme.down).add_modifier(Modifier::BOLD)
    };
    let (quorum_text, quorum_style) = if state.quorum_holds() {
        ("ok", Style::default().fg(theme.healthy))
    } else if state.members.is_empty() {
        ("unknown", Style::default().fg(theme.unhealthy))
    } else {
        ("LOST", Style::default().fg(theme.down).add_modifier(Modifier::BOLD))
    };
    let up_style = if up == total && total > 0 {
        Style::default().fg(theme.healthy)
    } else {
        Style::default().fg(theme.down)
    };
    let alarms = alarms_text(state);
    let alarm_style = match state.alarms() {
        Some(a) if a.is_empty() => Style::default().fg(theme.healthy),
        Some(_) => Style::default().fg(theme.alarm).add_modifier(Modifier::BOLD | Modifier::REVERSED),
        None => Style::default().fg(theme.unhealthy),
    };
    let refreshed = match state.refresh.completed_at {
        Some(t) => clock_utc(t),
        None => "never".into(),
    };
    let line1 = Line::from(vec![
        Span::styled("cluster ", label),
        Span::styled(state.cluster_id.map_or("unknown".into(), id_hex), bold),
        sep.clone(),
        Span::styled("leader ", label),
        Span::styled(leader_text(state), leader_style),
        sep.clone(),
        Span::styled("rev ", label),
        Span::styled(state.revision().map_or("?".into(), |r| r.to_string()), bold),
    ]);
    let line2 = Line::from(vec![
        Span::styled("members ", label),
        Span::styled(format!("{up}/{total} up"), up_style),
        sep.clone(),
        Span::styled("quorum ", label),
        Span::styled(quorum_text, quorum_style),
        sep.clone(),
        Span::styled("alarms ", label),
        Span::styled(alarms, alarm_style),
    ]);
    let line3 = Line::from(vec![
        Span::styled("refreshed ", label),
        Span::styled(refreshed, text),
        Span::styled(format!(" every {}", format_go_duration(state.refresh_interval)), label),
        Span::styled(
            if state.refresh.current.is_some() { " ⟳" } else { "" },
            Style::default().fg(theme.title),
        ),
        sep.clone(),
        Span::styled("user ", label),
        Span::styled(state.user.clone().unwrap_or_else(|| "(none)".into()), text),
        sep,
        Span::styled("endpoints ", label),
        Span::styled(state.endpoints.join(","), text),
    ]);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(" etcdeck ", Style::default().fg(theme.title).add_modifier(Modifier::BOLD)));
    if let Some(ctx) = &state.context {
        // A saved context's colour frames the header and its banner, so production is unmistakable.
        let color = ctx.color.as_deref().and_then(|c| c.parse::<ratatui::style::Color>().ok());
        let mark = Style::default().fg(color.unwrap_or(theme.title)).add_modifier(Modifier::BOLD);
        if let Some(color) = color {
            block = block.border_style(Style::default().fg(color));
        }
        let title = match &ctx.banner {
            Some(banner) => format!(" {banner} · ctx {} ", ctx.name),
            None => format!(" ctx {} ", ctx.name),
        };
        let mark = if ctx.banner.is_some() { mark.add_modifier(Modifier::REVERSED) } else { mark };
        block = block.title(Span::styled(title, mark));
    }
    if let Some(why) = &state.read_only {
        block = block.title(Span::styled(
            format!(" READ-ONLY ({why}) "),
            Style::default().fg(theme.unhealthy).add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    frame.render_widget(Paragraph::new(vec![line1, line2, line3]).block(block), area);
}
