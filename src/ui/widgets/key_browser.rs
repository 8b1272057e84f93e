//! The key browser: the loaded rows under the prefix (flat, or one level of the tree), and the
//! selected key's value beside them, with its history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::app::keys::{kube_age, KeyBrowser, KubeRow, Row, ValuePane};
use crate::app::value_format::value_lines;
use crate::app::value_format::DiffLine;
use crate::app::value_format::{display_bytes, ValueFormat};
use crate::ui::theme::Theme;

fn block<'a>(title: String, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(theme.border))
        .title(Span::styled(title, Style::default().fg(theme.title)))
}

/// `reveal_key` names the key that shows a Secret's data, for the hint beside a masked one.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    b: &KeyBrowser,
    (now, wall): (Option<std::time::Instant>, std::time::SystemTime),
    reveal_key: &str,
    theme: &Theme,
) {
    let (list_area, value_area) = if b.value.is_some() {
        let [l, v] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
        (l, Some(v))
    } else {
        (area, None)
    };
    render_list(frame, list_area, b, (now, wall), theme);
    if let (Some(v), Some(pane)) = (value_area, &b.value) {
        match &pane.history {
            Some(_) => {
                let [top, bottom] =
                    Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(v);
                render_history(frame, top, bottom, pane, theme);
            }
            None => render_value(frame, v, pane, reveal_key, theme),
        }
    }
}

fn render_list(
    frame: &mut Frame,
    area: Rect,
    b: &KeyBrowser,
    (now, wall): (Option<std::time::Instant>, std::time::SystemTime),
    theme: &Theme,
) {
    let kube = b.kubernetes && b.tree.is_none();
    let prefix = if b.prefix.is_empty() { "all keys".to_string() } else { display_bytes(&b.prefix) };
    let rows_word = if b.tree.is_some() { "rows" } else { "keys" };
    let mut summary = match (b.count, b.revision) {
        (Some(count), Some(rev)) if b.tree.is_some() => {
            format!(
                "row {} of {}{}, {count} keys at revision {rev}",
                b.selected + 1,
                b.known,
                if b.more { "+" } else { "" }
            )
        }
        (Some(count), Some(rev)) => {
            format!("row {} of {count} keys at revision {rev}, {} loaded", b.selected + 1, b.loaded())
        }
        // The count is on its way: say how many are known to exist so far.
        (None, Some(rev)) => format!(
            "row {} of {}{} {rows_word} at revision {rev}, {} loaded",
            b.selected + 1,
            b.known,
            if b.more { "+" } else { "" },
            b.loaded()
        ),
        _ => String::new(),
    };
    if b.loading.is_some() {
        summary.push_str(if summary.is_empty() { "loading…" } else { ", loading…" });
    } else if b.more {
        summary.push_str(", more below");
    }
    let mode = match &b.tree {
        Some(sep) => format!("tree by {:?}", display_bytes(sep)),
        None => "flat".into(),
    };
    let view = if kube { "kubernetes" } else { "keys" };
    let mut title = format!(" {view}: {prefix} ({mode}) ");
    if !b.filter.is_empty() {
        title = format!(" {view}: {prefix} ({mode}), filter {:?} ", b.filter);
    }
    let columns = KubeColumns::fit(area.width.saturating_sub(2) as usize);
    let wall_secs = wall.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // The Kubernetes view's column names take a row.
    let inner_height = area.height.saturating_sub(if kube { 4 } else { 3 }) as usize;
    let mut lines = vec![Line::from(Span::styled(summary, Style::default().fg(theme.label)))];
    if let Some(e) = &b.error {
        lines.push(Line::from(Span::styled(format!("✗ {e}"), Style::default().fg(theme.down))));
        // When it last worked, and when it tries again.
        let last = match b.listed_at {
            Some(t) => format!("last listed {}", crate::app::format::clock_utc(t)),
            None => "not listed yet".into(),
        };
        let next = match (b.retry, now, b.loading) {
            (_, _, Some(_)) => "trying again…".to_string(),
            (Some(r), Some(now), None) => {
                format!(
                    "trying again in {}s",
                    r.at.saturating_duration_since(now).as_secs_f64().ceil() as u64
                )
            }
            _ => "trying again shortly".to_string(),
        };
        lines.push(Line::from(Span::styled(format!("{last} · {next}"), Style::default().fg(theme.label))));
    } else if b.known == 0 && b.loading.is_none() && b.revision.is_some() {
        lines.push(Line::from(Span::styled("no keys", Style::default().fg(theme.label))));
    }
    let row_line = |i: usize| {
        let style = if i == b.selected {
            Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(theme.text)
        };
        let marker = if i == b.selected { "▶ " } else { "  " };
        // A row whose page is not in memory (yet, or any more) says so; it is not missing.
        match b.row_at(i) {
            None => Line::from(Span::styled(format!("{marker}… not loaded"), style.fg(theme.label))),
            Some(Row { kube: Some(k), .. }) if kube => {
                Line::from(Span::styled(format!("{marker}{}", columns.row(k, wall_secs)), style))
            }
            Some(row) => {
                // In a tree the level's prefix is the same on every row: show what follows it.
                let shown =
                    if b.tree.is_some() { &row.key[b.prefix.len().min(row.key.len())..] } else { &row.key };
                if row.dir {
                    Line::from(Span::styled(
                        format!("{marker}{}", display_bytes(shown)),
                        style.fg(theme.title),
                    ))
                } else {
                    Line::from(Span::styled(format!("{marker}{}", display_bytes(shown)), style))
                }
            }
        }
    };
    if kube {
        lines.push(Line::from(Span::styled(
            format!("  {}", columns.header()),
            Style::default().fg(theme.title),
        )));
    }
    if b.filter.is_empty() {
        // Keep the selection on screen, scrolling a page at a time.
        let first = b.selected.checked_div(inner_height).map_or(0, |page| page * inner_height);
        lines.extend((first..b.known).take(inner_height).map(row_line));
    } else {
        let rows = b.filtered();
        let not_loaded = b.known.saturating_sub(b.loaded());
        lines[0] = Line::from(Span::styled(
            format!("{} of {} loaded rows match; {not_loaded} not loaded", rows.len(), b.loaded()),
            Style::default().fg(theme.label),
        ));
        let at = rows.iter().position(|i| *i >= b.selected).unwrap_or(0);
        let first = at.checked_div(inner_height).map_or(0, |page| page * inner_height);
        lines.extend(rows.iter().skip(first).take(inner_height).map(|i| row_line(*i)));
    }
    frame.render_widget(Paragraph::new(lines).block(block(title, theme)), area);
}

/// The Kubernetes view's columns, fitted to the list's width: the name takes what the others
/// leave. Narrower, the resource and revision go, then the size, and the namespace joins the name.
struct KubeColumns {
    resource: usize,
    namespace: usize,
    name: usize,
    kind: usize,
    size: usize,
    revision: usize,
}

impl KubeColumns {
    const AGE: usize = 6;

    fn fit(width: usize) -> KubeColumns {
        let width = width.saturating_sub(2);
        let (resource, namespace, kind, size, revision) = match width {
            110.. => (26, 16, 24, 7, 8),
            70.. => (0, 14, 16, 7, 0),
            _ => (0, 0, 14, 0, 0),
        };
        let used: usize = [resource, namespace, kind, size, revision, Self::AGE]
            .iter()
            .filter(|w| **w > 0)
            .map(|w| w + 1)
            .sum();
        KubeColumns { resource, namespace, name: width.saturating_sub(used).max(8), kind, size, revision }
    }

    fn cells(&self, cells: [&str; 7]) -> String {
        let [resource, namespace, name, kind, size, revision, age] = cells;
        let fit = |text: &str, width: usize| {
            let cut: String = text.chars().take(width).collect();
            format!("{cut:<width$} ")
        };
        let mut out = String::new();
        if self.resource > 0 {
            out.push_str(&fit(resource, self.resource));
        }
        if self.namespace > 0 {
            out.push_str(&fit(namespace, self.namespace));
        }
        out.push_str(&fit(name, self.name));
        out.push_str(&fit(kind, self.kind));
        if self.size > 0 {
            out.push_str(&format!("{size:>w$} ", w = self.size));
        }
        if self.revision > 0 {
            out.push_str(&format!("{revision:>w$} ", w = self.revision));
        }
        out.push_str(&format!("{age:>w$}", w = Self::AGE));
        out
    }

    fn header(&self) -> String {
        self.cells(["RESOURCE", "NAMESPACE", "NAME", "KIND", "SIZE", "REV", "AGE"])
    }

    fn row(&self, k: &KubeRow, now: i64) -> String {
        let age = k.created.map(|c| kube_age(now - c)).unwrap_or_else(|| "-".into());
        let size = crate::etcd::format::bytes(k.size as i64).replace(' ', "");
        // Without a namespace column, the namespace goes before the name.
        let name = match (self.namespace, k.namespace.as_str()) {
            (0, ns) if !ns.is_empty() => format!("{ns}/{}", k.name),
            _ => k.name.clone(),
        };
        self.cells([&k.resource, &k.namespace, &name, &k.kind, &size, &k.mod_revision.to_string(), &age])
    }
}

/// A value's lines, JSON coloured.
pub fn styled_value_lines(
    value: &[u8],
    format: ValueFormat,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let lines = value_lines(value, format, width);
    if format != ValueFormat::Json || ValueFormat::detect(value) != ValueFormat::Json {
        return lines.into_iter().map(Line::from).collect();
    }
    lines.into_iter().map(|l| json_line(l, theme)).collect()
}

/// Colours one line of pretty-printed JSON: keys, strings, and numbers/booleans/null.
fn json_line(line: String, theme: &Theme) -> Line<'static> {
    let indent_len = line.len() - line.trim_start().len();
    let (indent, rest) = line.split_at(indent_len);
    let mut spans = vec![Span::raw(indent.to_string())];
    let key_style = Style::default().fg(theme.title);
    let string_style = Style::default().fg(theme.healthy);
    let other_style = Style::default().fg(theme.unhealthy);
    // `"key": value` or a bare value; pretty-printed JSON puts at most one of each on a line.
    let value_part = if rest.starts_with('"') {
        match key_end(rest) {
            Some(end) if rest[end..].starts_with(": ") => {
                spans.push(Span::styled(rest[..end].to_string(), key_style));
                spans.push(Span::raw(": "));
                &rest[end + 2..]
            }
            _ => rest,
        }
    } else {
        rest
    };
    let (body, comma) = match value_part.strip_suffix(',') {
        Some(b) => (b, ","),
        None => (value_part, ""),
    };
    let style = if body.starts_with('"') {
        string_style
    } else if matches!(body, "{" | "[" | "}" | "]" | "{}" | "[]") {
        Style::default()
    } else {
        other_style
    };
    spans.push(Span::styled(body.to_string(), style));
    spans.push(Span::raw(comma));
    Line::from(spans)
}

/// The end (exclusive) of the JSON string that starts `text`.
fn key_end(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i + 1),
            _ => escaped = false,
        }
    }
    None
}

fn render_value(frame: &mut Frame, area: Rect, pane: &ValuePane, reveal_key: &str, theme: &Theme) {
    let label = |s: &str| Span::styled(s.to_string(), Style::default().fg(theme.label));
    let mut lines = Vec::new();
    let mut title = format!(" {} ", display_bytes(&pane.key));
    // Which lines show, when the value is longer than the pane.
    let mut position = None;
    match &pane.result {
        None => lines.push(Line::from(label("loading…"))),
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(format!("✗ {e}"), Style::default().fg(theme.down))))
        }
        Some(Ok(None)) => lines.push(Line::from(Span::styled(
            "deleted: this key does not exist any more",
            Style::default().fg(theme.down),
        ))),
        Some(Ok(Some(read))) => {
            if let Some(e) = &pane.stale {
                lines.push(Line::from(Span::styled(
                    format!("✗ reading it again failed ({e}): shown as last read"),
                    Style::default().fg(theme.down),
                )));
            }
            let v = &read.info;
            let format = pane.shown_format().unwrap_or(ValueFormat::Text);
            let how = if pane.format.is_some() { "" } else { " detected" };
            title = format!(" {} ({}{how}, {} bytes) ", display_bytes(&v.key), format.name(), v.value.len());
            let lease = match (v.lease, read.lease_ttl) {
                (0, _) => "none".to_string(),
                (id, Some(ttl)) if ttl >= 0 => format!("{id:x} (TTL {ttl}s left)"),
                (id, Some(_)) => format!("{id:x} (expired)"),
                (id, None) => format!("{id:x}"),
            };
            lines.push(Line::from(vec![
                label("created "),
                Span::raw(v.create_revision.to_string()),
                label("  modified "),
                Span::raw(v.mod_revision.to_string()),
                label("  version "),
                Span::raw(v.version.to_string()),
            ]));
            lines.push(Line::from(vec![label("lease "), Span::raw(lease)]));
            // What kube-apiserver stored, when it is Kubernetes data, wrapped to the pane.
            let width = area.width.saturating_sub(2) as usize;
            let secret = read.object.as_ref().is_some_and(|o| o.revealed.is_some());
            let (kubernetes, style) = match &read.kubernetes {
                Some(Ok(what)) if secret && !pane.reveal => {
                    (Some(format!("{what}; data hidden ({reveal_key} shows it)")), Style::default())
                }
                Some(Ok(what)) => (Some(what.clone()), Style::default()),
                Some(Err(e)) => (Some(format!("✗ {e}")), Style::default().fg(theme.down)),
                None => (None, Style::default()),
            };
            let kubernetes =
                kubernetes.map(|k| wrap_words(&format!("kubernetes {k}"), width)).unwrap_or_default();
            for (i, row) in kubernetes.iter().enumerate() {
                match row.strip_prefix("kubernetes ").filter(|_| i == 0) {
                    Some(rest) => lines
                        .push(Line::from(vec![label("kubernetes "), Span::styled(rest.to_string(), style)])),
                    None => lines.push(Line::from(Span::styled(row.clone(), style))),
                }
            }
            lines.push(Line::default());
            if v.value.is_empty() {
                lines.push(Line::from(label("(empty value)")));
            }
            let height = (area.height as usize).saturating_sub(5 + kubernetes.len());
            // A Kubernetes object's lines were written when it arrived: only those on screen are
            // styled here.
            let object_lines = pane.object().and_then(|o| o.lines(format));
            let other = match object_lines {
                Some(_) => Vec::new(),
                None => styled_value_lines(&v.value, format, width, theme),
            };
            let total = object_lines.map_or(other.len(), <[String]>::len);
            let first = pane.scroll.min(total.saturating_sub(height));
            let shown: Vec<Line> = match object_lines {
                Some(text) => text
                    .iter()
                    .skip(first)
                    .take(height)
                    .map(|l| match format {
                        ValueFormat::Json => json_line(display_bytes(l.as_bytes()), theme),
                        _ => Line::from(display_bytes(l.as_bytes())),
                    })
                    .collect(),
                None => other.into_iter().skip(first).take(height).collect(),
            };
            if total > height {
                let last = (first + height).min(total);
                position = Some(format!(" lines {}-{last} of {total} ", first + 1));
            }
            lines.extend(shown);
        }
    }
    let mut frame_block = block(title, theme);
    if let Some(position) = position {
        let style = Style::default().fg(theme.label);
        frame_block = frame_block.title_bottom(Line::from(Span::styled(position, style)).right_aligned());
    }
    frame.render_widget(Paragraph::new(lines).block(frame_block), area);
}

/// `text` in rows of at most `width` columns, broken at spaces (a word longer than a row is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = vec![String::new()];
    for word in text.split(' ') {
        let row = rows.last_mut().expect("rows start with one");
        let used = Span::raw(row.as_str()).width();
        let w = Span::raw(word).width();
        if used > 0 && used + 1 + w <= width {
            row.push(' ');
            row.push_str(word);
        } else if used == 0 && w <= width {
            row.push_str(word);
        } else {
            let mut rest = word;
            if used > 0 {
                rows.push(String::new());
            }
            loop {
                let cut = rest.char_indices().nth(width).map_or(rest.len(), |(i, _)| i);
                let (head, tail) = rest.split_at(cut);
                rows.last_mut().expect("rows start with one").push_str(head);
                rest = tail;
                if rest.is_empty() {
                    break;
                }
                rows.push(String::new());
            }
        }
    }
    rows
}

/// Diff lines, styled.
pub fn diff_lines(diff: &[DiffLine], theme: &Theme) -> Vec<Line<'static>> {
    diff.iter()
        .map(|d| match d {
            DiffLine::Same(t) => Line::from(Span::raw(format!("  {t}"))),
            DiffLine::Removed(t) => {
                Line::from(Span::styled(format!("- {t}"), Style::default().fg(theme.down)))
            }
            DiffLine::Added(t) => {
                Line::from(Span::styled(format!("+ {t}"), Style::default().fg(theme.healthy)))
            }
        })
        .collect()
}

fn render_history(frame: &mut Frame, top: Rect, bottom: Rect, pane: &ValuePane, theme: &Theme) {
    let Some(h) = &pane.history else { return };
    let label = Style::default().fg(theme.label);
    let title = format!(" history of {} ", display_bytes(&pane.key));
    let mut lines = Vec::new();
    match &h.result {
        None => lines.push(Line::from(Span::styled("reading earlier versions…", label))),
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(format!("✗ {e}"), Style::default().fg(theme.down))))
        }
        Some(Ok(history)) => {
            let height = top.height.saturating_sub(3) as usize;
            let first = h.selected.checked_div(height.max(1)).map_or(0, |p| p * height.max(1));
            for (i, v) in history.versions.iter().enumerate().skip(first).take(height) {
                let marker = match (i == h.selected, h.base == Some(i)) {
                    (true, _) => "▶ ",
                    (false, true) => "◆ ",
                    _ => "  ",
                };
                let style = if i == h.selected {
                    Style::default().bg(theme.selected_bg).add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                };
                let now = if i == 0 { " (current)" } else { "" };
                lines.push(Line::from(Span::styled(
                    format!(
                        "{marker}rev {:<8} version {:<4} {:>6} bytes{now}",
                        v.mod_revision,
                        v.version,
                        v.value.len()
                    ),
                    style,
                )));
            }
            lines.push(Line::from(Span::styled(history.end.clone(), label)));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block(title, theme)), top);

    let versions = h.result.as_ref().and_then(|r| r.as_ref().ok()).map(|r| &r.versions);
    let (title, body) = match (h.pair(), versions) {
        (Some((old, new)), Some(v)) => (
            format!(" diff rev {} → rev {} ", v[old].mod_revision, v[new].mod_revision),
            diff_lines(&h.diff, theme),
        ),
        _ => (
            " diff ".to_string(),
            vec![Line::from(Span::styled("no earlier version to compare with", label))],
        ),
    };
    frame.render_widget(Paragraph::new(body).block(block(title, theme)), bottom);
}
