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
    /// Filter the loaded rows of the listing or the watch tail.
    Filter,
    /// Switch the key browser between a tree and a flat listing.
    Tree,
    /// Go up one level of the tree.
    Parent,
    /// Switch the value's format: json, yaml, text, hex.
    Format,
    /// Show or hide a Kubernetes Secret's data in the value pane.
    Reveal,
    /// Scroll the value pane a page down.
    ScrollDown,
    /// Scroll the value pane a page up.
    ScrollUp,
    /// Show or hide the key's history.
    History,
    /// In the history: diff against the selected version.
    MarkBase,
    /// Create a key.
    New,
    /// Edit the value on the input line.
    Edit,
    /// Edit the value in $EDITOR.
    EditExternal,
    /// Delete the selected key.
    Delete,
    /// Delete every key under the prefix (or the selected directory).
    DeletePrefix,
    /// Copy the key to the clipboard (OSC 52).
    CopyKey,
    /// Copy the value to the clipboard (OSC 52).
    CopyValue,
    /// Tail the selected key's events.
    WatchKey,
    /// Tail the events under the prefix (or the selected directory).
    WatchPrefix,
    /// Pause or resume the watch tail's display.
    Pause,
    /// Promote the selected learner to a voting member.
    Promote,
    /// Move the leadership to the selected member.
    MoveLeader,
    /// Save the selected member's snapshot to a file, then verify it.
    Snapshot,
    /// Compact the history up to a revision.
    Compact,
    /// Defragment the selected member.
    Defragment,
    /// Disarm a raised alarm.
    Disarm,
    /// The restore wizard: rebuild the cluster from a snapshot file.
    Restore,
    /// Replace the selected member: remove it, wipe its data, add it again and start it as a new
    /// member of the existing cluster (the runbook for a damaged member).
    ReplaceMember,
    /// etcdeck demo: kill the selected member's process (SIGKILL, as a crash).
    KillMember,
    /// etcdeck demo: start the selected member's process again on its data.
    StartMember,
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
    ActionInfo { action: Action::SwitchView, name: "keys", help: "members, keys, watch tail" },
    ActionInfo { action: Action::Command, name: "command", help: ":keys :k8s :watch :auth :ctx" },
    ActionInfo { action: Action::Search, name: "search", help: "list keys under a prefix" },
    ActionInfo { action: Action::Filter, name: "filter", help: "filter loaded rows" },
    ActionInfo { action: Action::Tree, name: "tree", help: "tree or flat listing" },
    ActionInfo { action: Action::Parent, name: "parent", help: "up one tree level" },
    ActionInfo { action: Action::Up, name: "up", help: "row above" },
    ActionInfo { action: Action::Down, name: "down", help: "row below" },
    ActionInfo { action: Action::Top, name: "top", help: "first row" },
    ActionInfo { action: Action::Bottom, name: "bottom", help: "last row" },
    ActionInfo { action: Action::Open, name: "open", help: "open member, dir or key" },
    ActionInfo { action: Action::Back, name: "back", help: "close pane or overlay" },
    ActionInfo { action: Action::Format, name: "format", help: "value: json/yaml/text/hex" },
    ActionInfo { action: Action::Reveal, name: "reveal", help: "show/hide a Secret's data" },
    ActionInfo { action: Action::ScrollDown, name: "scroll-down", help: "value: a page down" },
    ActionInfo { action: Action::ScrollUp, name: "scroll-up", help: "value: a page up" },
    ActionInfo { action: Action::History, name: "history", help: "the key's history" },
    ActionInfo { action: Action::MarkBase, name: "mark", help: "history: diff base" },
    ActionInfo { action: Action::New, name: "new", help: "new key · members: add" },
    ActionInfo { action: Action::Edit, name: "edit", help: "edit value · members: URLs" },
    ActionInfo { action: Action::EditExternal, name: "editor", help: "edit the value in $EDITOR" },
    ActionInfo { action: Action::Delete, name: "delete", help: "delete key · members: remove" },
    ActionInfo { action: Action::DeletePrefix, name: "delete-prefix", help: "delete a prefix" },
    ActionInfo { action: Action::CopyKey, name: "copy-key", help: "copy the key (OSC 52)" },
    ActionInfo { action: Action::CopyValue, name: "copy-value", help: "copy the value (OSC 52)" },
    ActionInfo { action: Action::WatchKey, name: "watch", help: "tail the key" },
    ActionInfo { action: Action::WatchPrefix, name: "watch-prefix", help: "tail the prefix" },
    ActionInfo { action: Action::Pause, name: "pause", help: "pause or resume the tail" },
    ActionInfo { action: Action::Refresh, name: "refresh", help: "refresh now" },
    ActionInfo { action: Action::FasterRefresh, name: "faster", help: "refresh more often" },
    ActionInfo { action: Action::SlowerRefresh, name: "slower", help: "refresh less often" },
    ActionInfo { action: Action::Promote, name: "promote", help: "members: promote the learner" },
    ActionInfo { action: Action::MoveLeader, name: "move-leader", help: "members: make it the leader" },
    ActionInfo { action: Action::Snapshot, name: "snapshot", help: "members: save a snapshot" },
    ActionInfo { action: Action::Compact, name: "compact", help: "members: compact the history" },
    ActionInfo { action: Action::Defragment, name: "defragment", help: "members: defrag (a: rolling)" },
    ActionInfo { action: Action::Disarm, name: "disarm", help: "members: disarm alarms" },
    ActionInfo { action: Action::Restore, name: "restore", help: "members: restore wizard" },
    ActionInfo { action: Action::ReplaceMember, name: "replace-member", help: "members: replace a member" },
    ActionInfo { action: Action::KillMember, name: "kill-member", help: "demo: kill -9 the member" },
    ActionInfo { action: Action::StartMember, name: "start-member", help: "demo: start the member again" },
    ActionInfo { action: Action::Help, name: "help", help: "show or hide this help" },
    ActionInfo { action: Action::Quit, name: "quit", help: "quit (Ctrl-C always quits)" },
];

impl Action {
    pub fn info(self) -> &'static ActionInfo {
        ACTIONS.iter().find(|i| i.action == self).unwrap_or(&ACTIONS[ACTIONS.len() - 1])
    }

    /// Actions only `etcdeck demo` offers (it owns its members' processes).
    pub fn demo_only(self) -> bool {
        matches!(self, Action::KillMember | Action::StartMember)
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
            Action::Filter,
            Action::Tree,
            Action::Parent,
            Action::Format,
            Action::Reveal,
            Action::ScrollDown,
            Action::ScrollUp,
            Action::History,
            Action::MarkBase,
            Action::New,
            Action::Edit,
            Action::EditExternal,
            Action::Delete,
            Action::DeletePrefix,
            Action::CopyKey,
            Action::CopyValue,
            Action::WatchKey,
            Action::WatchPrefix,
            Action::Pause,
            Action::Promote,
            Action::MoveLeader,
            Action::Snapshot,
            Action::Compact,
            Action::Defragment,
            Action::Disarm,
            Action::Restore,
            Action::ReplaceMember,
            Action::KillMember,
            Action::StartMember,
        ];
        assert_eq!(all.len(), ACTIONS.len());
        for a in all {
            assert_eq!(ACTIONS.iter().filter(|i| i.action == a).count(), 1, "{a:?}");
            assert_eq!(Action::from_name(a.info().name), Some(a));
        }
    }
}
