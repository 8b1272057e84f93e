//! What reaches `update`: the user's actions and typing, workers' replies, and time.

use std::time::{Instant, SystemTime};

use crate::app::action::Action;
use crate::app::msg::Msg;

/// Everything that can change the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The user asked for something.
    Action(Action),
    /// A worker reported back.
    Msg(Msg),
    /// Time passed; a refresh starts when one is due.
    Tick { now: Instant, wall: SystemTime },
    /// A key pressed while a line is being typed or a dialog is open.
    Typed(Typed),
    /// Text pasted (the terminal's bracketed paste): inserted into the line being typed, as text.
    Pasted(String),
    /// $EDITOR finished editing `key`'s value `old` (its mod_revision `expect`): the new value, or
    /// why the editor could not run.
    Edited { key: Vec<u8>, old: Vec<u8>, expect: i64, result: Result<Vec<u8>, String> },
}

/// Editing keys of the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    Char(char),
    Backspace,
    Enter,
    Esc,
}
