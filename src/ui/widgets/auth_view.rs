//! The users and roles view: users with their roles on the left, roles with their key permissions
//! (as etcdctl's `role get` prints ranges) on the right. A list the signed-in user may not read
//! says etcd's error in its place.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::auth::{range_label, AuthView, Row};
use crate::ui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, view: &AuthView, theme: &Theme) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let block = |title: &str| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(theme.border))
            .title(Span::styled(format!(" {title} "), Style::default().fg(theme.title)))
    };
    let listing = match &view.listing {
        None => {
            frame.render_widget(Paragraph::new(" loading users and roles…").block(block("users")), left);
            frame.render_widget(Paragraph::new("").block(block("roles")), right);
            return;
        }
        Some(Err(e)) => {
            let text = Line::from(Span::styled(format!(" ✗ {e}"), Style::default().fg(theme.down)));
            frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }).block(block("users")), left);
            frame.render_widget(Paragraph::new("").block(block("roles")), right);
            return;
        }
        Some(Ok(listing)) => listing,
    };
    let selected = view.selected_row();
    let mark = |row: Row, text: Vec<Span<'static>>| -> Line<'static> {
        let style = if selected.as_ref() == Some(&row) {
            Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        Line::from(text).style(style)
    };
    let denied = |e: &str| Line::from(Span::styled(format!(" ✗ {e}"), Style::default().fg(theme.down)));
    let mut users: Vec<Line> = Vec::new();
    match &listing.users {
        Ok(list) if list.is_empty() => users.push(Line::from(" no users")),
        Ok(list) => {
            for (name, roles) in list {
                let roles = match roles {
                    Ok(r) if r.is_empty() => Span::styled("no roles", Style::default().fg(theme.label)),
                    Ok(r) => Span::styled(r.join(", "), Style::default().fg(theme.text)),
                    Err(e) => Span::styled(format!("✗ {e}"), Style::default().fg(theme.down)),
                };
                let name_style =
                    if name == "root" { Style::default().fg(theme.leader) } else { Style::default() };
                users.push(mark(
                    Row::User(name.clone()),
                    vec![Span::styled(format!(" {name:<16} "), name_style), roles],
                ));
            }
        }
        Err(e) => {
            users.push(denied(e));
            if let Some(own) = &listing.own_roles {
                users.push(Line::from(Span::styled(
                    format!(" your roles: {}", if own.is_empty() { "none".into() } else { own.join(", ") }),
                    Style::default().fg(theme.label),
                )));
            }
        }
    }
    let mut roles: Vec<Line> = Vec::new();
    match &listing.roles {
        Ok(list) if list.is_empty() => roles.push(Line::from(" no roles")),
        Ok(list) => {
            for (name, perms) in list {
                roles.push(mark(
                    Row::Role(name.clone()),
                    vec![Span::styled(format!(" {name}"), Style::default().add_modifier(Modifier::BOLD))],
                ));
                match perms {
                    Ok(p) if p.is_empty() => roles.push(Line::from(Span::styled(
                        "     no permissions",
                        Style::default().fg(theme.label),
                    ))),
                    Ok(p) => {
                        for perm in p {
                            roles.push(Line::from(vec![
                                Span::styled(
                                    format!("   {:<9} ", perm.kind.name()),
                                    Style::default().fg(theme.label),
                                ),
                                Span::raw(range_label(&perm.key, &perm.range_end)),
                            ]));
                        }
                    }
                    Err(e) => roles.push(denied(e)),
                }
            }
        }
        Err(e) => roles.push(denied(e)),
    }
    frame.render_widget(Paragraph::new(users).block(block("users")), left);
    frame.render_widget(
        Paragraph::new(roles).wrap(Wrap { trim: false }).block(block("roles and their keys")),
        right,
    );
}
