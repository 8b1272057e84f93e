//! What the user asked for. The keymap binds keys to these by name and the help overlay is generated
//! from [`ACTIONS`], so the two cannot disagree.

/// A user intent, independent of the key that expressed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave etcdeck, restoring the terminal.
    Quit,
    /// Show or hide the key help.
    Help,
    /// Select the member above.
    Up,
    /// Select the member below.
    Down,
    /// Select the first member.
    Top,
    /// Select the last member.
    Bottom,
    /// Open the selected member's detail pane.
    Open,
    /// Close the open pane or overlay.
    Back,
    /// Refresh now.
    Refresh,
    /// Refresh more often.
    FasterRefresh,
    /// Refresh less often.
    SlowerRefresh,
    /// Switch between the members and the key browser.
    SwitchView,
    /// Type a command (`:keys <prefix>`, `:members`).
    Command,
    /// Search keys by prefix.
    Search,
}

/// One row of the action table: the name used in keymap.toml and the text of the help overlay.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    pub action: Action,
    pub name: &'static str,
    pub help: &'static str,
}

/// Every action, in the order the help overlay lists them.
pub const ACTIONS: &[ActionInfo] = &[
    ActionInfo { action: Action::SwitchView, name: "keys", help: "switch between members and keys" },
    ActionInfo { action: Action::Command, name: "command", help: ":keys <prefix> | :members" },
    ActionInfo { action: Action::Search, name: "search", help: "list the keys under a prefix" },
    ActionInfo { action: Action::Up, name: "up", help: "select the row above" },
    ActionInfo { action: Action::Down, name: "down", help: "select the row below" },
    ActionInfo { action: Action::Top, name: "top", help: "select the first row" },
    ActionInfo { action: Action::Bottom, name: "bottom", help: "select the last row" },
    ActionInfo { action: Action::Open, name: "open", help: "member detail, or the key's value" },
    ActionInfo { action: Action::Back, name: "back", help: "close the pane or overlay" },
    ActionInfo { action: Action::Refresh, name: "refresh", help: "refresh now" },
    ActionInfo { action: Action::FasterRefresh, name: "faster", help: "refresh more often" },
    ActionInfo { action: Action::SlowerRefresh, name: "slower", help: "refresh less often" },
    ActionInfo { action: Action::Help, name: "help", help: "show or hide this help" },
    ActionInfo { action: Action::Quit, name: "quit", help: "quit (Ctrl-C always quits)" },
];

impl Action {
    pub fn info(self) -> &'static ActionInfo {
        ACTIONS.iter().find(|i| i.action == self).unwrap_or(&ACTIONS[ACTIONS.len() - 1])
    }

    pub fn from_name(name: &str) -> Option<Action> {
        ACTIONS.iter().find(|i| i.name == name).map(|i| i.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_row_with_a_unique_name() {
        let all = [
            Action::Quit,
            Action::Help,
            Action::Up,
            Action::Down,
            Action::Top,
            Action::Bottom,
            Action::Open,
            Action::Back,
            Action::Refresh,
            Action::FasterRefresh,
            Action::SlowerRefresh,
            Action::SwitchView,
            Action::Command,
            Action::Search,
        ];
        assert_eq!(all.len(), ACTIONS.len());
        for a in all {
            assert_eq!(ACTIONS.iter().filter(|i| i.action == a).count(), 1, "{a:?}");
            assert_eq!(Action::from_name(a.info().name), Some(a));
        }
    }
}
