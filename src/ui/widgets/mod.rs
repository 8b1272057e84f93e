pub mod dialog;
pub mod help;
pub mod key_browser;
pub mod member_detail;
pub mod member_dialog;
pub mod members_table;
pub mod problems;
pub mod snapshot_dialog;
pub mod status_header;
pub mod watch_tail;

use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A rectangle of at most `width` x `height`, centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] =
        Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [cell] =
        Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    cell
}
