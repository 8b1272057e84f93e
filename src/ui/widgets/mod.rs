//! What the console draws: one file a widget or dialog; popup.rs has the boxes the dialogs draw in.

pub mod auth_view;
pub mod dialog;
pub mod help;
pub mod key_browser;
pub mod member_detail;
pub mod member_dialog;
pub mod members_table;
pub mod mirror_view;
pub mod popup;
pub mod problems;
pub mod restore_dialog;
pub mod snapshot_dialog;
pub mod space_view;
pub mod status_header;
pub mod watch_tail;
