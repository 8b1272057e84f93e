//! The console's brain: no terminal and no ratatui here, so everything can be tested with plain values.

pub mod action;
pub mod auth;
pub mod client;
pub mod cluster;
pub mod config_file;
pub mod connection;
pub mod describe;
pub mod edit;
pub mod effect;
#[cfg(test)]
pub mod fixtures;
pub mod format;
pub mod ids;
pub mod input;
pub mod keymap;
pub mod keys;
pub mod members;
pub mod mirrors;
pub mod modal;
pub mod msg;
pub mod note;
pub mod replace;
pub mod restore;
pub mod runtime;
pub mod snapshot;
pub mod space;
pub mod state;
pub mod update;
pub mod value_format;
pub mod value_pane;
pub mod watch;

pub use action::Action;
pub use effect::Effect;
pub use input::Input;
pub use msg::Msg;
pub use state::State;
pub use update::update;
