//! The members table. Columns are dropped by priority until the rest fit the width, so 80 columns show
//! what matters most (name, role, health, ID, term, index, lag) and wide terminals show everything.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table, TableState};
use ratatui::Frame;

use crate::app::describe::{member_health, member_role};
use crate::app::format::{bytes, id_hex, millis};
use crate::app::state::{Member, State};
use crate::ui::theme::Theme;

struct Column {
    title: &'static str,
    /// Lower is kept first when space is short.
    priority: u8,
    /// Cap on the column width (0: as wide as its content).
    max: u16,
    cell: fn(&State, &Member, &Theme) -> Span<'static>,
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

const COLUMNS: &[Column] = &[
    Column {
        title: "NAME",
        priority: 0,
        max: 20,
        cell: |_, m, t| {
            Span::styled(
                m.display_name().to_string(),
                Style::default().fg(t.text).add_modifier(Modifier::BOLD),
            )
        },
    },
    Column { title: "ID", priority: 3, max: 16, cell: |_, m, _| Span::raw(id_hex(m.info.id)) },
    Column {
        title: "ROLE",
        priority: 1,
        max: 0,
        cell: |s, m, t| match member_role(s, m) {
            "leader" => Span::styled("★ leader", Style::default().fg(t.leader).add_modifier(Modifier::BOLD)),
            // A learner's way to promotion (etcd promotes one within 10% of the leader's log).
            "learner" => Span::styled(
                match crate::app::describe::learner_progress(s, m.info.id) {
                    Some((true, _)) => "learner, ready".to_string(),
                    Some((false, percent)) => format!("learner {percent}%"),
                    None => "learner".to_string(),
                },
                Style::default().fg(t.learner),
            ),
            role => Span::raw(role),
        },
    },
    Column {
        title: "HEALTH",
        priority: 2,
        max: 0,
        cell: |_, m, t| {
            let h = member_health(m);
            let style = match h {
                "healthy" => Style::default().fg(t.healthy),
                "down" => Style::default().fg(t.down).add_modifier(Modifier::BOLD),
                "alarm" => Style::default().fg(t.alarm).add_modifier(Modifier::BOLD | Modifier::REVERSED),
                "unhealthy" | "unstarted" | "no leader" => {
                    Style::default().fg(t.unhealthy).add_modifier(Modifier::BOLD)
                }
                _ => Style::default().fg(t.label),
            };
            Span::styled(h, style)
        },
    },
    Column {
        title: "VERSION",
        priority: 10,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| s.version.clone()))),
    },
    Column {
        title: "DB SIZE",
        priority: 9,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| bytes(s.db_size)))),
    },
    Column {
        title: "IN USE",
        priority: 12,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| bytes(s.db_size_in_use)))),
    },
    Column {
        title: "TERM",
        priority: 4,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| s.raft_term.to_string()))),
    },
    Column {
        title: "INDEX",
        priority: 5,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| s.raft_index.to_string()))),
    },
    Column {
        title: "APPLIED",
        priority: 8,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| s.raft_applied_index.to_string()))),
    },
    Column {
        title: "LAG",
        priority: 6,
        max: 0,
        cell: |s, m, t| match s.applied_lag(m) {
            Some(0) => Span::raw("0"),
            Some(lag) => Span::styled(lag.to_string(), Style::default().fg(t.unhealthy)),
            None => Span::raw("-"),
        },
    },
    Column {
        title: "RTT",
        priority: 7,
        max: 0,
        cell: |_, m, _| Span::raw(opt(m.status_ok().map(|s| millis(s.rtt)))),
    },
    Column {
        title: "CLIENT URLS",
        priority: 13,
        max: 40,
        cell: |_, m, _| Span::raw(m.info.client_urls.join(",")),
    },
    Column {
        title: "PEER URLS",
        priority: 14,
        max: 40,
        cell: |_, m, _| Span::raw(m.info.peer_urls.join(",")),
    },
    Column {
        title: "ERRORS",
        priority: 11,
        max: 0,
        cell: |_, m, t| Span::styled(crate::app::describe::member_errors(m), Style::default().fg(t.down)),
    },
];

const ERRORS_MIN: u16 = 12;

pub fn render(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let highlight = "▶ ";
    let inner_width = area.width.saturating_sub(2 + highlight.chars().count() as u16);
    let cells: Vec<Vec<Span<'static>>> =
        state.members.iter().map(|m| COLUMNS.iter().map(|c| (c.cell)(state, m, theme)).collect()).collect();
    let width_of = |i: usize| -> u16 {
        let c = &COLUMNS[i];
        let content = cells.iter().map(|row| row[i].width() as u16).max().unwrap_or(0);
        let w = content.max(c.title.len() as u16);
        if c.max > 0 {
            w.min(c.max)
        } else {
            w
        }
    };
    // Keep columns in priority order while they fit; ERRORS only needs a minimum, it takes the rest.
    let mut order: Vec<usize> = (0..COLUMNS.len()).collect();
    order.sort_by_key(|&i| COLUMNS[i].priority);
    let mut keep = vec![false; COLUMNS.len()];
    let mut used: u16 = 0;
    for i in order {
        let is_errors = COLUMNS[i].title == "ERRORS";
        let w = if is_errors { ERRORS_MIN.min(width_of(i)).max(6) } else { width_of(i) };
        let need = if used == 0 { w } else { w + 1 };
        if used + need > inner_width {
            // Stop at the first column that does not fit, so a narrow low-priority column never
            // takes the place of a wider, more important one.
            break;
        }
        keep[i] = true;
        used += need;
    }
    let shown: Vec<usize> = (0..COLUMNS.len()).filter(|&i| keep[i]).collect();
    let widths: Vec<Constraint> =
        shown
            .iter()
            .map(|&i| {
                if COLUMNS[i].title == "ERRORS" {
                    Constraint::Fill(1)
                } else {
                    Constraint::Length(width_of(i))
                }
            })
            .collect();
    let header = Row::new(shown.iter().map(|&i| {
        Cell::from(Span::styled(
            COLUMNS[i].title,
            Style::default().fg(theme.label).add_modifier(Modifier::BOLD),
        ))
    }));
    let rows = cells.into_iter().map(|row| {
        Row::new(
            row.into_iter()
                .enumerate()
                .filter(|(i, _)| keep[*i])
                .map(|(_, span)| Cell::from(Line::from(span))),
        )
    });
    let title = format!(" members ({}) ", state.members.len());
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(title, Style::default().fg(theme.title)));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().bg(theme.selected_bg))
        .highlight_symbol(highlight);
    let mut table_state = TableState::default();
    if !state.members.is_empty() {
        table_state.select(Some(state.selected.min(state.members.len() - 1)));
    }
    frame.render_stateful_widget(table, area, &mut table_state);
}
