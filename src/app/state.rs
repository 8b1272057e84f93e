//! The console's state. One owner (the event loop) mutates it through `update`; rendering and the
//! `status` report only read it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use crate::app::cluster::{Alarm, MemberInfo, StatusInfo};
use crate::app::edit::Dialog;
use crate::app::keys::KeyBrowser;
use crate::app::members::MemberDialog;
use crate::app::modal::Modal;
use crate::app::msg::RefreshId;
use crate::app::restore::RestoreWizard;
use crate::app::snapshot::SnapshotDialog;
use crate::app::watch::WatchTail;

/// Refresh periods the faster/slower keys step through.
pub const REFRESH_STEPS: &[Duration] = &[
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// One member row: what MemberList said, and the latest probes of the member's own endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub info: MemberInfo,
    /// None until the first Status reply arrives.
    pub status: Option<Result<StatusInfo, String>>,
    /// The refresh that produced `status`; older replies are dropped.
    pub status_refresh: RefreshId,
    /// None until the first health reply arrives; Ok holds how long the linearizable read took.
    pub health: Option<Result<Duration, String>>,
    pub health_refresh: RefreshId,
}

impl Member {
    pub fn new(info: MemberInfo) -> Self {
        Self { info, status: None, status_refresh: 0, health: None, health_refresh: 0 }
    }

    pub fn status_ok(&self) -> Option<&StatusInfo> {
        self.status.as_ref().and_then(|s| s.as_ref().ok())
    }

    /// Reachable: its last Status call succeeded.
    pub fn is_up(&self) -> bool {
        self.status_ok().is_some()
    }

    /// Healthy as etcd's /health says it: its read succeeded and it knows a leader (a member without
    /// one answers false, "RAFT NO LEADER", even where a serializable read would succeed).
    pub fn is_healthy(&self) -> bool {
        matches!(self.health, Some(Ok(_))) && self.status_ok().is_none_or(|s| s.leader != 0)
    }

    /// The name to show: etcd leaves it empty until the member starts.
    pub fn display_name(&self) -> &str {
        if self.info.name.is_empty() {
            "(unstarted)"
        } else {
            &self.info.name
        }
    }

    /// The endpoint probes go to: the member's first client URL.
    pub fn endpoint(&self) -> Option<&str> {
        self.info.client_urls.first().map(String::as_str)
    }
}

/// What fills the screen below the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Members,
    Keys,
    Watch,
    /// Users and roles (`:auth`).
    Auth,
    /// Where the space goes (`:space`).
    Space,
    /// The mirrors writing into this cluster (`:mirror`).
    Mirror,
}

/// What a line being typed at the bottom is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `:` commands.
    Command,
    /// `/`: a key prefix to list.
    Search,
    /// A filter over the loaded rows of the listing or the watch tail.
    Filter,
    /// A new value for `key`, replacing `old` (its mod_revision `expect`).
    Edit { key: Vec<u8>, old: Vec<u8>, expect: i64 },
    /// The key to create.
    NewKey,
    /// The value of the key being created.
    NewValue { key: Vec<u8> },
    /// The lease of the key being created.
    NewLease { key: Vec<u8>, value: Vec<u8> },
    /// The revision a watch starts at (empty: now).
    WatchFrom { prefix: Vec<u8> },
    /// The name of a member to add.
    MemberName,
    /// The peer URLs of the member being added.
    MemberPeerUrls { name: String },
    /// The client URLs the added member will serve on (for its start command).
    MemberClientUrls { name: String, peer_urls: Vec<String> },
    /// New peer URLs for a member.
    UpdatePeerUrls { id: u64, name: String },
    /// The revision to compact up to.
    CompactTo,
    /// The file a member's snapshot is saved to.
    SnapshotPath { name: String, endpoint: String, expected: u64 },
    /// The snapshot file the restore wizard restores from.
    RestoreFrom,
    /// The password of the user being added (masked on screen; empty: a user without one).
    NewPassword { name: String },
}

impl Prompt {
    /// What the line shows before the typed text.
    pub fn label(&self) -> String {
        match self {
            Prompt::Command => ":".into(),
            Prompt::Search => "/".into(),
            Prompt::Filter => "filter: ".into(),
            Prompt::Edit { key, .. } => {
                format!("new value of {}: ", crate::app::value_format::display_bytes(key))
            }
            Prompt::NewKey => "new key: ".into(),
            Prompt::NewValue { key } => {
                format!("value of {}: ", crate::app::value_format::display_bytes(key))
            }
            Prompt::NewLease { .. } => {
                "lease (empty: none · a TTL like 60s: new lease · 0x<ID>: existing lease): ".into()
            }
            Prompt::WatchFrom { prefix } => {
                format!("watch {} from revision (empty: from now): ", crate::app::edit::prefix_label(prefix))
            }
            Prompt::MemberName => "add member, name: ".into(),
            Prompt::MemberPeerUrls { name } => format!("peer URLs of {name} (comma-separated): "),
            Prompt::MemberClientUrls { name, .. } => {
                format!("client URLs {name} will serve on (for its start command): ")
            }
            Prompt::UpdatePeerUrls { name, .. } => format!("new peer URLs of {name}: "),
            Prompt::SnapshotPath { name, .. } => format!("save {name}'s snapshot to: "),
            Prompt::RestoreFrom => "restore the cluster from the snapshot file: ".into(),
            Prompt::CompactTo => "compact the history before revision: ".into(),
            Prompt::NewPassword { name } => {
                format!("password of new user {name} (empty: none, certificate only): ")
            }
        }
    }
}

/// A line being typed at the bottom of the screen.
#[derive(Clone, PartialEq, Eq)]
pub struct InputLine {
    pub prompt: Prompt,
    pub text: String,
}

/// A password being typed never prints, not even in a debug dump of the state.
impl std::fmt::Debug for InputLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self.prompt {
            Prompt::NewPassword { .. } => "(hidden)",
            _ => self.text.as_str(),
        };
        f.debug_struct("InputLine").field("prompt", &self.prompt).field("text", &text).finish()
    }
}

/// Something drawn over the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    /// The detail pane of the member with this ID.
    Detail(u64),
}

/// A request whose reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pending {
    Members,
    Status(u64),
    Health(u64),
}

/// Bookkeeping of refresh rounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refresh {
    /// The id the next round gets.
    pub next_id: RefreshId,
    /// The round in flight, if its replies are not all in.
    pub current: Option<RefreshId>,
    /// When the latest round started.
    pub started_at: Option<Instant>,
    /// What the current round asked for and still waits for.
    pub pending: BTreeSet<Pending>,
    /// Every request awaiting its reply, whichever round sent it. A member with a request in flight
    /// (a frozen process holds it until the command timeout) is not asked again, so requests never
    /// pile up on a struggling member, and later rounds complete without it.
    pub in_flight: BTreeSet<Pending>,
    /// How many rounds completed since start.
    pub completed: u64,
    /// The id of the latest round that completed.
    pub completed_id: Option<RefreshId>,
    /// Wall-clock time the latest round completed.
    pub completed_at: Option<SystemTime>,
    /// The newest round whose member list was applied.
    pub members_refresh: RefreshId,
}

/// What the members say about leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// One leader, up, and every reachable member agrees.
    Leader(u64),
    /// Reachable members name different leaders.
    Disputed(Vec<u64>),
    /// The newest term names a leader that is not reachable.
    LeaderDown(u64),
    /// No reachable member knows a leader (election in progress or quorum lost).
    NoLeader,
    /// No member answered.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The endpoints the console was pointed at (with scheme).
    pub endpoints: Vec<String>,
    pub user: Option<String>,
    pub refresh_interval: Duration,
    pub cluster_id: Option<u64>,
    /// Sorted by name, then ID.
    pub members: Vec<Member>,
    /// Why the latest MemberList failed, if it did.
    pub members_error: Option<String>,
    /// Wall-clock time of the last MemberList that succeeded.
    pub members_listed_at: Option<SystemTime>,
    pub refresh: Refresh,
    /// Index into `members`.
    pub selected: usize,
    pub overlay: Overlay,
    /// The instant and wall-clock time of the latest tick.
    pub now: Option<Instant>,
    pub wall: SystemTime,
    pub should_quit: bool,
    /// A one-line message for the footer.
    pub notice: Option<String>,
    pub view: View,
    pub keys: KeyBrowser,
    /// The ids of every request the console sends, whichever feature sends it.
    pub ids: crate::app::ids::RequestIds,
    /// The line being typed, if any: while it is open, keys are text, not actions.
    pub input: Option<InputLine>,
    /// The one dialog open over the view, if any: while it is open, keys go to it.
    pub modal: Option<crate::app::modal::Modal>,
    /// Why writes are disabled (`--read-only`, or the config file), if they are.
    pub read_only: Option<String>,
    /// The watch tail, once one was opened.
    pub watch: Option<WatchTail>,
    /// The `:space` view, once opened.
    pub space: Option<crate::app::space::SpaceView>,
    /// The `:mirror` view.
    pub mirrors: crate::app::mirrors::MirrorView,
    /// Whether this is `etcdeck demo`, which can kill and start its members' processes.
    pub demo: bool,
    /// The file of the last snapshot saved and verified, offered to the restore wizard.
    pub last_snapshot: Option<std::path::PathBuf>,
    /// --backup-dir: where the snapshot dialog backs up into, and the restore wizard finds backups.
    pub backup_dir: Option<std::path::PathBuf>,
    /// The backups found there when the restore wizard asked (newest first), and that request.
    pub backups: Vec<crate::app::snapshot::FoundBackup>,
    pub backups_request: u64,
    /// The request id of the wizard's check of its snapshot file.
    pub restore_check: u64,
    /// The saved context in use (config.toml's [contexts.NAME]), if any.
    pub context: Option<crate::app::connection::ContextMark>,
    /// The names of the saved contexts `:ctx` may switch to.
    pub contexts: Vec<String>,
    /// The users and roles view.
    pub auth: crate::app::auth::AuthView,
    /// Where the key browser first lists: for a user without the root role, the first range its
    /// roles may read.
    pub keys_start: Vec<u8>,
    /// A dialog opened (or moved to another question) since the last frame was drawn: keys read
    /// before it is on screen are dropped, never taken as its answer (the terminal edge keeps this).
    pub modal_unseen: bool,
}

impl State {
    pub fn new(endpoints: Vec<String>, user: Option<String>, refresh_interval: Duration) -> Self {
        Self {
            endpoints,
            user,
            refresh_interval,
            cluster_id: None,
            members: Vec::new(),
            members_error: None,
            members_listed_at: None,
            refresh: Refresh { next_id: 1, ..Refresh::default() },
            selected: 0,
            overlay: Overlay::None,
            now: None,
            wall: SystemTime::UNIX_EPOCH,
            should_quit: false,
            notice: None,
            view: View::Members,
            keys: KeyBrowser::new(),
            ids: Default::default(),
            input: None,
            modal: None,
            read_only: None,
            watch: None,
            space: None,
            mirrors: Default::default(),
            demo: false,
            last_snapshot: None,
            backup_dir: None,
            backups: Vec::new(),
            backups_request: 0,
            restore_check: 0,
            context: None,
            contexts: Vec::new(),
            auth: Default::default(),
            keys_start: Vec::new(),
            modal_unseen: false,
        }
    }

    /// The server version most members report (etcd's, or the one an etcdeck node reports).
    pub fn server_version(&self) -> Option<String> {
        let mut versions: Vec<&str> =
            self.members.iter().filter_map(|m| m.status_ok()).map(|s| s.version.as_str()).collect();
        versions.sort_unstable();
        versions.first().map(|v| v.to_string())
    }

    /// Whether keys are text for the input line or a dialog rather than actions.
    pub fn takes_text(&self) -> bool {
        self.input.is_some() || self.modal.is_some()
    }

    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.info.id == id)
    }

    pub fn selected_member(&self) -> Option<&Member> {
        self.members.get(self.selected)
    }

    /// True once one refresh round has every reply in: the dashboard is complete.
    pub fn has_complete_view(&self) -> bool {
        self.refresh.completed > 0
    }

    /// Leadership as the reachable members report it. A member that calls itself leader and is
    /// followed by a majority of the voting members is the leader, whatever term a partitioned member
    /// has run up meanwhile (etcd 3.4 runs without pre-vote, so a cut-off member keeps raising its
    /// term). Otherwise the members with the newest term decide.
    pub fn leadership(&self) -> Leadership {
        let up: Vec<&StatusInfo> = self.members.iter().filter_map(Member::status_ok).collect();
        let voters = self.members.iter().filter(|m| !m.info.is_learner).count();
        let majority = voters / 2 + 1;
        let confirmed: Vec<u64> = up
            .iter()
            .filter(|s| s.leader != 0 && s.leader == s.member_id)
            .map(|s| s.member_id)
            .filter(|id| up.iter().filter(|s| s.leader == *id).count() >= majority)
            .collect();
        if let [id] = confirmed[..] {
            return Leadership::Leader(id);
        }
        let Some(max_term) = up.iter().map(|s| s.raft_term).max() else {
            return Leadership::Unknown;
        };
        let claimed: BTreeSet<u64> =
            up.iter().filter(|s| s.raft_term == max_term && s.leader != 0).map(|s| s.leader).collect();
        match claimed.len() {
            0 => Leadership::NoLeader,
            1 => {
                let id = *claimed.iter().next().unwrap_or(&0);
                let leader_up = self.member(id).and_then(Member::status_ok).is_some_and(|s| s.leader == id);
                if leader_up {
                    Leadership::Leader(id)
                } else {
                    Leadership::LeaderDown(id)
                }
            }
            _ => Leadership::Disputed(claimed.into_iter().collect()),
        }
    }

    pub fn leader_id(&self) -> Option<u64> {
        match self.leadership() {
            Leadership::Leader(id) => Some(id),
            _ => None,
        }
    }

    /// How far a member's applied index is behind the leader's committed index.
    pub fn applied_lag(&self, member: &Member) -> Option<u64> {
        let leader = self.member(self.leader_id()?)?.status_ok()?;
        let own = member.status_ok()?;
        Some(leader.raft_index.saturating_sub(own.raft_applied_index))
    }

    /// (reachable members, all members).
    pub fn members_up(&self) -> (usize, usize) {
        (self.members.iter().filter(|m| m.is_up()).count(), self.members.len())
    }

    /// Quorum holds, as raft has it, when a leader exists and a majority of the voting members are
    /// reachable. Learners do not vote, so they count neither way.
    pub fn quorum_holds(&self) -> bool {
        let voters: Vec<&Member> = self.members.iter().filter(|m| !m.info.is_learner).collect();
        let reachable = voters.iter().filter(|m| m.is_up()).count();
        self.leader_id().is_some() && !voters.is_empty() && reachable > voters.len() / 2
    }

    /// The newest store revision any member reported.
    pub fn revision(&self) -> Option<i64> {
        self.members.iter().filter_map(Member::status_ok).map(|s| s.revision).max()
    }

    /// Active alarms as the reachable members report them; None when no member answered.
    pub fn alarms(&self) -> Option<Vec<Alarm>> {
        let mut up = self.members.iter().filter_map(Member::status_ok).peekable();
        up.peek()?;
        let set: BTreeSet<Alarm> = up.flat_map(|s| s.alarms.iter().copied()).collect();
        Some(set.into_iter().collect())
    }

    pub fn active_alarms(&self) -> Vec<Alarm> {
        self.alarms().unwrap_or_default()
    }

    /// Every reason the cluster is not healthy, for `etcdeck status` and the header. Empty means
    /// healthy: every member reachable and healthy, exactly one leader, no alarm.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(err) = &self.members_error {
            out.push(match self.members_listed_at {
                Some(t) => format!(
                    "cannot list members: {err} (last listed {}, tried again each refresh)",
                    crate::app::format::clock_utc(t)
                ),
                None => format!("cannot list members: {err}"),
            });
        }
        if self.members.is_empty() && self.members_error.is_none() {
            out.push("no member list yet".into());
        }
        for m in &self.members {
            let who = format!("member {} ({:x})", m.display_name(), m.info.id);
            if !m.info.is_started() {
                out.push(format!("{who} is not started"));
                continue;
            }
            match &m.status {
                None => out.push(format!("{who} has not answered yet")),
                Some(Err(e)) => out.push(format!("{who} is unreachable: {e}")),
                Some(Ok(s)) => {
                    if !s.errors.is_empty() {
                        out.push(format!("{who} reports errors: {}", s.errors.join("; ")));
                    }
                }
            }
            match &m.health {
                Some(Err(e)) if m.is_up() => out.push(format!("{who} is unhealthy: {e}")),
                None if m.is_up() => out.push(format!("{who} has not answered the health check yet")),
                _ => {}
            }
        }
        match self.leadership() {
            Leadership::Leader(_) | Leadership::Unknown => {}
            Leadership::NoLeader => out.push("no leader".into()),
            Leadership::LeaderDown(id) => out.push(format!(
                "leader {} ({id:x}) is unreachable",
                self.member(id).map_or("?", Member::display_name)
            )),
            Leadership::Disputed(ids) => out.push(format!(
                "members disagree on the leader: {}",
                ids.iter().map(|id| format!("{id:x}")).collect::<Vec<_>>().join(", ")
            )),
        }
        for a in self.active_alarms() {
            out.push(format!(
                "alarm {} on member {} ({:x})",
                a.kind,
                self.member(a.member_id).map_or("?", Member::display_name),
                a.member_id
            ));
        }
        out
    }
}

/// Each dialog's own view of the one slot: a feature reads and changes its dialog through these,
/// and never sees another's. `$take` takes the dialog out (the slot is then empty); it gives None,
/// and leaves the slot as it was, when another dialog is open.
macro_rules! dialog_accessors {
    ($($variant:ident: $ty:ty => $get:ident, $get_mut:ident, $take:ident;)*) => {
        impl State {
            $(
                pub fn $get(&self) -> Option<&$ty> {
                    match &self.modal {
                        Some(Modal::$variant(d)) => Some(d),
                        _ => None,
                    }
                }

                pub fn $get_mut(&mut self) -> Option<&mut $ty> {
                    match &mut self.modal {
                        Some(Modal::$variant(d)) => Some(d),
                        _ => None,
                    }
                }

                pub fn $take(&mut self) -> Option<$ty> {
                    match self.modal.take() {
                        Some(Modal::$variant(d)) => Some(d),
                        other => {
                            self.modal = other;
                            None
                        }
                    }
                }
            )*
        }
    };
}

dialog_accessors! {
    Keys: Dialog => key_dialog, key_dialog_mut, take_key_dialog;
    Member: MemberDialog => member_dialog, member_dialog_mut, take_member_dialog;
    Snapshot: SnapshotDialog => snapshot_dialog, snapshot_dialog_mut, take_snapshot_dialog;
    Restore: RestoreWizard => restore_wizard, restore_wizard_mut, take_restore_wizard;
}

impl State {
    /// Which dialog is open and which question it asks (`Modal::mark`); None while none is open.
    pub fn modal_mark(&self) -> Option<u64> {
        self.modal.as_ref().map(Modal::mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(vec!["http://127.0.0.1:2379".into()], None, Duration::from_secs(1))
    }

    #[test]
    fn each_feature_sees_only_its_own_dialog() {
        let mut s = state();
        let dialog = Dialog::Counting { request: 1, prefix: b"p/".to_vec() };
        s.modal = Some(Modal::Keys(dialog.clone()));
        assert_eq!(s.key_dialog(), Some(&dialog));
        assert!(s.member_dialog().is_none() && s.snapshot_dialog().is_none() && s.restore_wizard().is_none());
        // Taking another feature's dialog leaves the open one in place.
        assert!(s.take_member_dialog().is_none() && s.take_restore_wizard().is_none());
        assert_eq!(s.key_dialog(), Some(&dialog));
        assert_eq!(s.take_key_dialog(), Some(dialog));
        assert!(s.modal.is_none() && s.modal_mark().is_none());
    }
}
