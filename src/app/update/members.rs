//! `update`'s share for member maintenance: the members view's actions, their prompts, the dialog's
//! keys and the cluster's answers. Pure, as `update` is.

use crate::app::action::Action;
use crate::app::describe::{learner_progress, removal_notes};
use crate::app::effect::Effect;
use crate::app::input::Typed;
use crate::app::members::{start_commands, MemberDialog, MemberOp, MemberOutcome};
use crate::app::modal::Modal;
use crate::app::note::Note;
use crate::app::state::{InputLine, Prompt, State};

fn ask(state: &mut State, prompt: Prompt, text: String) -> Vec<Effect> {
    state.input = Some(InputLine { prompt, text });
    Vec::new()
}

fn refuse(state: &mut State, why: impl Into<String>) -> Option<Vec<Effect>> {
    state.notice = Some(why.into());
    Some(Vec::new())
}

/// The members view's maintenance actions; None for the others.
pub fn on_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    if action == Action::ReplaceMember {
        return Some(crate::app::update::replace::begin(state));
    }
    if action == Action::Restore {
        // The commands only read; running them (the demo) asks again and honours read-only.
        return Some(crate::app::update::restore::begin(state));
    }
    if action == Action::Snapshot {
        // A snapshot only reads: allowed in read-only mode.
        let Some(member) = state.selected_member() else { return refuse(state, "no member selected") };
        let Some(endpoint) = member.info.client_urls.first().cloned() else {
            return refuse(state, "the member has no client URL (not started)");
        };
        let name = if member.info.name.is_empty() {
            format!("{:x}", member.info.id)
        } else {
            member.info.name.clone()
        };
        let expected = member.status_ok().map_or(0, |s| s.db_size.max(0) as u64);
        let stamp = humantime::format_rfc3339_seconds(state.wall).to_string().replace(':', "");
        // With a backup directory, backing up into it is what Enter does.
        let text = match &state.backup_dir {
            Some(dir) => {
                state.notice = Some(
                    "enter: back up into the backup directory (a named, verified backup); or type a file"
                        .into(),
                );
                format!("{}/", dir.display().to_string().trim_end_matches('/'))
            }
            None => format!("snapshot-{name}-{stamp}.db"),
        };
        return Some(ask(state, Prompt::SnapshotPath { name, endpoint, expected }, text));
    }
    if !matches!(
        action,
        Action::New
            | Action::Edit
            | Action::Delete
            | Action::Promote
            | Action::MoveLeader
            | Action::Compact
            | Action::Defragment
            | Action::Disarm
    ) {
        return None;
    }
    if let Some(why) = &state.read_only {
        return refuse(state, format!("read-only ({why}): member changes and maintenance are disabled"));
    }
    match action {
        Action::Compact => {
            let text = state.revision().map(|r| r.to_string()).unwrap_or_default();
            return Some(ask(state, Prompt::CompactTo, text));
        }
        Action::Disarm => {
            let alarms = state.active_alarms();
            if alarms.is_empty() {
                return refuse(state, "no alarm is raised");
            }
            let mut notes: Vec<Note> = alarms
                .iter()
                .map(|a| {
                    let who =
                        state.member(a.member_id).map_or("a member not in the list", |m| m.display_name());
                    Note { text: format!("raised: {} on {who} ({:x})", a.kind, a.member_id), loud: true }
                })
                .collect();
            notes.extend([
                Note {
                    text: "while NOSPACE is raised, writes that add data are refused; disarm it once space was freed"
                        .into(),
                    loud: false,
                },
                Note {
                    text: "etcd's recovery: C compacts the history, F defragments each member (followers first), then A disarms"
                        .into(),
                    loud: false,
                },
            ]);
            let op = MemberOp::Disarm { alarms };
            state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate: false }));
            return Some(Vec::new());
        }
        _ => {}
    }
    if action == Action::New {
        return Some(ask(state, Prompt::MemberName, String::new()));
    }
    let Some(member) = state.selected_member() else { return refuse(state, "no member selected") };
    let (id, name, info) = (member.info.id, member.info.name.clone(), member.info.clone());
    let shown = if name.is_empty() { format!("{id:x}") } else { name.clone() };
    let (op, notes) = match action {
        Action::Defragment => {
            let Some(endpoint) = info.client_urls.first().cloned() else {
                return refuse(state, format!("{shown} has no client URL (not started)"));
            };
            let mut notes = vec![Note {
                text: "the member rewrites its database and serves nothing meanwhile; one member at a time, followers first, the leader last".into(),
                loud: false,
            }];
            if state.leader_id() == Some(id) {
                notes.push(Note {
                    text: "THIS IS THE LEADER: every write waits while it rewrites".into(),
                    loud: true,
                });
            }
            notes.push(Note { text: "a: the whole cluster instead, rolling".into(), loud: false });
            (MemberOp::Defragment { id, name, endpoint }, notes)
        }
        Action::Edit => {
            return Some(ask(state, Prompt::UpdatePeerUrls { id, name: shown }, info.peer_urls.join(",")));
        }
        Action::Delete => (MemberOp::Remove { id, name }, removal_notes(state, id)),
        Action::Promote => {
            let Some((ready, percent)) = learner_progress(state, id) else {
                if !info.is_learner {
                    return refuse(state, format!("{shown} is a voting member already"));
                }
                return refuse(
                    state,
                    format!("{shown}: its progress is not known yet (no leader or no status)"),
                );
            };
            if !ready {
                return refuse(
                    state,
                    format!("{shown} has caught up {percent}% of the leader's log; promotion is offered from 90% (etcd refuses it before)"),
                );
            }
            let voters = state.members.iter().filter(|m| !m.info.is_learner).count() + 1;
            let notes = vec![Note {
                text: format!("it then votes: {voters} voting members, a quorum of {}", voters / 2 + 1),
                loud: false,
            }];
            (MemberOp::Promote { id, name }, notes)
        }
        _ => {
            if info.is_learner {
                return refuse(state, format!("{shown} is a learner: a learner cannot lead"));
            }
            let Some(leader) = state.leader_id() else { return refuse(state, "no leader to hand over from") };
            if leader == id {
                return refuse(state, format!("{shown} leads already"));
            }
            let Some(endpoint) = state.member(leader).and_then(|m| m.info.client_urls.first().cloned())
            else {
                return refuse(state, "the leader's client URL is not known");
            };
            let notes = vec![Note {
                text: "the leader hands over at once; requests pause for the handover".into(),
                loud: false,
            }];
            (MemberOp::MoveLeader { id, name, leader: endpoint }, notes)
        }
    };
    let deliberate = notes.iter().any(|n| n.loud);
    state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate }));
    Some(Vec::new())
}

/// Every member defragmented in turn: learners and followers first, the leader last (it makes every
/// write wait while it rewrites), so at most one member is busy at a time and a quorum always serves.
fn rolling_defragment(state: &State) -> Result<(MemberOp, Vec<Note>), String> {
    let leader = state.leader_id();
    let mut members = Vec::new();
    for m in &state.members {
        let Some(endpoint) = m.info.client_urls.first() else {
            return Err(format!(
                "{} has no client URL (not started): defragment the others one by one",
                m.display_name()
            ));
        };
        members.push((m.info.id, m.info.name.clone(), endpoint.clone()));
    }
    members.sort_by_key(|(id, _, _)| Some(*id) == leader);
    let notes = vec![
        Note {
            text: "one member at a time, followers first and the leader last; each must answer a linearizable read again before the next starts, and a failure stops the round".into(),
            loud: false,
        },
        Note { text: "a member rewriting its database serves nothing meanwhile".into(), loud: false },
    ];
    Ok((MemberOp::DefragmentAll { members }, notes))
}

/// URLs typed as etcdctl takes them: comma-separated, each http(s)://host:port.
fn parse_urls(text: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> =
        text.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect();
    if urls.is_empty() {
        return Err("no URL given".into());
    }
    for u in &urls {
        let rest = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"));
        let ok = rest.is_some_and(|r| {
            r.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        });
        if !ok {
            return Err(format!("{u:?} is not a URL like http://10.0.0.4:2380"));
        }
    }
    Ok(urls)
}

/// Notes on adding a member: a learner leaves the quorum alone; a voter raises it at once.
fn add_notes(state: &State, learner: bool) -> Vec<Note> {
    let mut notes = Vec::new();
    if learner {
        notes.push(Note {
            text: "a learner does not vote until promoted: the quorum stays as it is".into(),
            loud: false,
        });
        notes.push(Note { text: "v: add it as a voting member instead".into(), loud: false });
    } else {
        let voters = state.members.iter().filter(|m| !m.info.is_learner).count() + 1;
        let healthy =
            state.members.iter().filter(|m| !m.info.is_learner && m.is_up() && m.is_healthy()).count();
        let quorum = voters / 2 + 1;
        let text = format!(
            "it votes at once: {voters} voting members need {quorum} healthy, {healthy} are until it starts"
        );
        notes.push(Note { loud: healthy < quorum, text });
        notes.push(Note { text: "v: add it as a learner instead".into(), loud: false });
    }
    notes
}

/// A line typed at one of the member prompts.
pub fn on_line(state: &mut State, prompt: Prompt, text: String) -> Vec<Effect> {
    let text = text.trim().to_string();
    match prompt {
        Prompt::MemberName => {
            if text.is_empty() {
                state.notice = Some("✗ member name not provided".into());
                return Vec::new();
            }
            ask(state, Prompt::MemberPeerUrls { name: text }, String::new())
        }
        Prompt::MemberPeerUrls { name } => match parse_urls(&text) {
            Ok(peer_urls) => {
                // etcd's habit: clients one port below the peers.
                let guess = peer_urls
                    .iter()
                    .filter_map(|u| u.rsplit_once(':'))
                    .filter_map(|(h, p)| Some(format!("{h}:{}", p.parse::<u16>().ok()?.checked_sub(1)?)))
                    .collect::<Vec<_>>()
                    .join(",");
                ask(state, Prompt::MemberClientUrls { name, peer_urls }, guess)
            }
            Err(e) => {
                state.notice = Some(format!("✗ {e}"));
                ask(state, Prompt::MemberPeerUrls { name }, text)
            }
        },
        Prompt::MemberClientUrls { name, peer_urls } => match parse_urls(&text) {
            Ok(client_urls) => {
                let notes = add_notes(state, true);
                let op = MemberOp::Add { name, peer_urls, client_urls, learner: true };
                state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate: false }));
                Vec::new()
            }
            Err(e) => {
                state.notice = Some(format!("✗ {e}"));
                ask(state, Prompt::MemberClientUrls { name, peer_urls }, text)
            }
        },
        Prompt::UpdatePeerUrls { id, name } => match parse_urls(&text) {
            Ok(peer_urls) => {
                let notes = vec![Note {
                    text: "the other members dial it there from now on; if it moved, start it there on its data dir".into(),
                    loud: false,
                }];
                let op = MemberOp::Update { id, name, peer_urls };
                state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate: false }));
                Vec::new()
            }
            Err(e) => {
                state.notice = Some(format!("✗ {e}"));
                ask(state, Prompt::UpdatePeerUrls { id, name }, text)
            }
        },
        Prompt::CompactTo => match text.parse::<i64>() {
            Ok(revision) if revision > 0 => {
                let notes = vec![Note {
                    text: format!("revisions before {revision} are gone for good: reads and watches from them get etcd's \"required revision has been compacted\""),
                    loud: false,
                }];
                let op = MemberOp::Compact { revision };
                state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate: false }));
                Vec::new()
            }
            _ => {
                state.notice = Some(format!("✗ {text:?} is not a revision (a whole number above 0)"));
                ask(state, Prompt::CompactTo, text)
            }
        },
        Prompt::SnapshotPath { name, endpoint, expected } => {
            if text.is_empty() {
                state.notice = Some("✗ no file given".into());
                return Vec::new();
            }
            let path = std::path::PathBuf::from(&text);
            // A directory (the line ends with /): a named, verified backup in it.
            let backup = text.ends_with('/');
            if !backup && path.exists() {
                state.notice = Some(format!("✗ {text} exists: choose another name (nothing is overwritten)"));
                return ask(state, Prompt::SnapshotPath { name, endpoint, expected }, text);
            }
            let request = state.ids.next_id();
            state.modal = Some(Modal::Snapshot(crate::app::snapshot::SnapshotDialog::Saving {
                request,
                name,
                path: path.clone(),
                expected,
                bytes: 0,
                started: state.now,
            }));
            vec![Effect::SaveSnapshot { request, endpoint, path, backup }]
        }
        _ => Vec::new(),
    }
}

/// Keys typed while the snapshot dialog is open: a finished save closes; one still running goes on.
pub fn on_snapshot_key(state: &mut State) {
    if matches!(state.snapshot_dialog(), Some(crate::app::snapshot::SnapshotDialog::Saved { .. })) {
        state.modal = None;
    }
}

/// Progress or the result of a snapshot save.
pub fn on_snapshot_msg(state: &mut State, msg: crate::app::msg::Msg) {
    use crate::app::msg::Msg;
    use crate::app::snapshot::SnapshotDialog;
    let Some(SnapshotDialog::Saving { request: asked, name, bytes, .. }) = state.snapshot_dialog_mut() else {
        return;
    };
    match msg {
        Msg::SnapshotProgress { request, bytes: now } if request == *asked => *bytes = now,
        Msg::SnapshotSaved { request, result } if request == *asked => {
            let name = name.clone();
            if let Ok(saved) = &result {
                state.last_snapshot = Some(saved.path.clone());
            }
            state.notice = Some(match &result {
                Ok(s) => format!("saved {name}'s snapshot to {} and verified it", s.path.display()),
                Err(e) => format!("✗ snapshot of {name}: {e}"),
            });
            state.modal = Some(Modal::Snapshot(SnapshotDialog::Saved { name, result }));
        }
        _ => {}
    }
}

/// Keys typed while the member dialog is open.
pub fn on_key(state: &mut State, key: Typed) -> Vec<Effect> {
    if matches!(state.member_dialog(), Some(MemberDialog::Replace(_))) {
        return crate::app::update::replace::on_key(state, key);
    }
    let Some(dialog) = state.take_member_dialog() else { return Vec::new() };
    match dialog {
        MemberDialog::Confirm { op, notes, deliberate } => match key {
            Typed::Char('y') | Typed::Char('Y') => return start(state, op),
            Typed::Enter if !deliberate => return start(state, op),
            Typed::Enter => {
                state.notice = Some("this one needs a deliberate y (or esc to cancel)".into());
                state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate }));
            }
            Typed::Char('v') | Typed::Char('V') if matches!(op, MemberOp::Add { .. }) => {
                let MemberOp::Add { name, peer_urls, client_urls, learner } = op else { return Vec::new() };
                let notes = add_notes(state, !learner);
                let deliberate = notes.iter().any(|n| n.loud);
                let op = MemberOp::Add { name, peer_urls, client_urls, learner: !learner };
                state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate }));
            }
            Typed::Char('a') | Typed::Char('A') if matches!(op, MemberOp::Defragment { .. }) => {
                match rolling_defragment(state) {
                    Ok((op, notes)) => {
                        state.modal =
                            Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate: false }))
                    }
                    Err(why) => {
                        state.notice = Some(format!("✗ {why}"));
                        state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate }));
                    }
                }
            }
            Typed::Esc | Typed::Char('n') | Typed::Char('N') => {
                state.notice = Some(format!("cancelled: {}", op.describe()));
            }
            _ => state.modal = Some(Modal::Member(MemberDialog::Confirm { op, notes, deliberate })),
        },
        // Its answer (or its timeout) closes it.
        running @ MemberDialog::Running { .. } => state.modal = Some(Modal::Member(running)),
        MemberDialog::Result { op: op @ MemberOp::Add { .. }, result: Ok(lines) }
            if matches!(key, Typed::Char('y')) && !lines.is_empty() =>
        {
            let command =
                lines.iter().find_map(|l| l.strip_prefix("etcdeck: ")).unwrap_or_default().to_string();
            state.modal = Some(Modal::Member(MemberDialog::Result { op, result: Ok(lines) }));
            return vec![Effect::Copy {
                what: "the etcdeck start command".into(),
                bytes: command.into_bytes(),
            }];
        }
        MemberDialog::Result { .. } => {}
        replace @ MemberDialog::Replace(_) => state.modal = Some(Modal::Member(replace)),
    }
    Vec::new()
}

fn start(state: &mut State, op: MemberOp) -> Vec<Effect> {
    if let MemberOp::Kill { name, .. } = op {
        state.notice = Some(format!("killing {name}…"));
        return vec![Effect::MemberProcess { name, start: false }];
    }
    if let Some(why) = &state.read_only {
        state.notice = Some(format!("read-only ({why}): {} not done", op.describe()));
        return Vec::new();
    }
    let request = state.ids.next_id();
    state.modal =
        Some(Modal::Member(MemberDialog::Running { request, op: op.clone(), progress: Vec::new() }));
    vec![Effect::Member { request, op }]
}

/// A step of a long change done (a member of a rolling defragmentation).
pub fn on_progress(state: &mut State, request: u64, text: String) {
    if let Some(MemberDialog::Running { request: asked, progress, .. }) = state.member_dialog_mut() {
        if *asked == request {
            progress.push(text);
        }
    }
}

/// The cluster's answer to a membership change; true when the dashboard should refresh.
pub fn on_answer(state: &mut State, request: u64, result: Result<MemberOutcome, String>) -> bool {
    let Some(MemberDialog::Running { request: asked, op, .. }) = state.member_dialog().cloned() else {
        return false;
    };
    if asked != request {
        return false;
    }
    let result = result
        .map(|outcome| match outcome {
            MemberOutcome::Added { id, members } => start_commands(&op, id, &members),
            MemberOutcome::Done => Vec::new(),
            MemberOutcome::Report(lines) => lines,
        })
        .map_err(|e| {
            // etcd's strict reconfiguration check: what it means and what to do.
            if e.contains("etcdserver: unhealthy cluster") {
                format!("{e}\n(etcd adds a member only once the member asked has been connected to every voting member for 5 s, and removes one only if enough stay connected for a quorum: wait a few seconds, check the table, and try again)")
            } else {
                e
            }
        });
    state.notice = Some(match &result {
        Ok(_) => format!("done: {}", op.describe()),
        Err(e) => format!("✗ {}: {e}", op.describe()),
    });
    state.modal = Some(Modal::Member(MemberDialog::Result { op, result }));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;
    use crate::app::input::Input;
    use crate::app::msg::Msg;
    use crate::app::update::update;

    fn typed(state: &mut State, text: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for c in text.chars() {
            effects.extend(update(state, Input::Typed(Typed::Char(c))));
        }
        effects.extend(update(state, Input::Typed(Typed::Enter)));
        effects
    }

    #[test]
    fn adding_asks_name_and_urls_then_confirms_a_learner_and_shows_how_to_start_it() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::New));
        typed(&mut state, "n4");
        typed(&mut state, "not-a-url");
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("is not a URL")), "{:?}", state.notice);
        // The mistake stays on the line to be fixed.
        state.input.as_mut().expect("still asking").text = "http://10.0.0.4:2380".into();
        update(&mut state, Input::Typed(Typed::Enter));
        assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("http://10.0.0.4:2379"), "a guess");
        update(&mut state, Input::Typed(Typed::Enter));
        let Some(MemberDialog::Confirm { op, .. }) = state.member_dialog() else {
            panic!("{:?}", state.member_dialog())
        };
        assert!(matches!(op, MemberOp::Add { learner: true, .. }));
        update(&mut state, Input::Typed(Typed::Char('v')));
        let Some(MemberDialog::Confirm { op, .. }) = state.member_dialog() else { panic!() };
        assert!(matches!(op, MemberOp::Add { learner: false, .. }), "v makes it a voter");
        update(&mut state, Input::Typed(Typed::Char('v')));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        let [Effect::Member { request, op }] = &effects[..] else { panic!("{effects:?}") };
        assert!(matches!(op, MemberOp::Add { learner: true, .. }));
        let mut members = fixtures::member_list().members;
        members.push(crate::app::cluster::MemberInfo {
            id: 0x44,
            name: String::new(),
            peer_urls: vec!["http://10.0.0.4:2380".into()],
            client_urls: Vec::new(),
            is_learner: true,
        });
        let effects = update(
            &mut state,
            Input::Msg(crate::app::msg::Msg::Member {
                request: *request,
                result: Ok(MemberOutcome::Added { id: 0x44, members }),
            }),
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::ListMembers { .. })), "refreshes");
        let Some(MemberDialog::Result { result: Ok(lines), .. }) = state.member_dialog() else { panic!() };
        assert!(lines
            .iter()
            .any(|l| l.starts_with("etcdeck: ") && l.contains("ETCD_INITIAL_CLUSTER_STATE=existing")));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert!(matches!(&effects[..], [Effect::Copy { .. }]), "y copies the etcdeck command");
        update(&mut state, Input::Typed(Typed::Esc));
        assert!(state.member_dialog().is_none());
    }

    #[test]
    fn removing_the_leader_warns_and_needs_a_deliberate_yes_and_read_only_refuses_it() {
        let mut state = fixtures::healthy();
        let leader = state.leader_id().expect("leader");
        state.selected = state.members.iter().position(|m| m.info.id == leader).expect("listed");
        update(&mut state, Input::Action(Action::Delete));
        let Some(MemberDialog::Confirm { notes, deliberate, .. }) = state.member_dialog() else { panic!() };
        assert!(*deliberate);
        assert!(notes.iter().any(|n| n.loud && n.text.contains("THIS IS THE LEADER")), "{notes:?}");
        assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty(), "Enter is not enough");
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert!(matches!(&effects[..], [Effect::Member { op: MemberOp::Remove { .. }, .. }]));

        let mut state = fixtures::healthy();
        state.read_only = Some("--read-only".into());
        assert!(update(&mut state, Input::Action(Action::Delete)).is_empty());
        assert!(state.member_dialog().is_none());
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("read-only")));
    }

    #[test]
    fn maintenance_compacts_to_a_typed_revision_defragments_and_disarms_with_etcds_recovery_steps() {
        let mut state = fixtures::healthy();
        update(&mut state, Input::Action(Action::Compact));
        let current = state.revision().expect("a revision").to_string();
        assert_eq!(
            state.input.as_ref().map(|l| l.text.clone()),
            Some(current.clone()),
            "the current revision is offered"
        );
        state.input.as_mut().expect("prompt").text = "abc".into();
        update(&mut state, Input::Typed(Typed::Enter));
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("is not a revision")));
        state.input.as_mut().expect("still asking").text = "7".into();
        update(&mut state, Input::Typed(Typed::Enter));
        let effects = update(&mut state, Input::Typed(Typed::Enter));
        assert!(
            matches!(&effects[..], [Effect::Member { op: MemberOp::Compact { revision: 7 }, .. }]),
            "{effects:?}"
        );

        // Defragmenting the leader warns and needs a deliberate y.
        let mut state = fixtures::healthy();
        let leader = state.leader_id().expect("leader");
        state.selected = state.members.iter().position(|m| m.info.id == leader).expect("listed");
        update(&mut state, Input::Action(Action::Defragment));
        let Some(MemberDialog::Confirm { deliberate: true, op: MemberOp::Defragment { .. }, .. }) =
            state.member_dialog()
        else {
            panic!("{:?}", state.member_dialog())
        };
        // a: the whole cluster, rolling: followers first, the leader last.
        update(&mut state, Input::Typed(Typed::Char('a')));
        let Some(MemberDialog::Confirm { op: op @ MemberOp::DefragmentAll { members }, .. }) =
            state.member_dialog()
        else {
            panic!("{:?}", state.member_dialog())
        };
        assert_eq!(members.len(), 3);
        assert_eq!(members.last().map(|m| m.0), Some(leader), "the leader last");
        assert_eq!(
            op.etcdctl(&[]),
            format!(
                "etcdctl --endpoints={} defrag",
                members.iter().map(|m| m.2.clone()).collect::<Vec<_>>().join(",")
            )
        );
        let effects = update(&mut state, Input::Typed(Typed::Enter));
        let [Effect::Member { request, op: MemberOp::DefragmentAll { .. } }] = &effects[..] else {
            panic!("{effects:?}")
        };
        let request = *request;
        update(&mut state, Input::Msg(Msg::MemberProgress { request, text: "etcd-2: done".into() }));
        update(&mut state, Input::Msg(Msg::MemberProgress { request: request + 99, text: "stale".into() }));
        let Some(MemberDialog::Running { progress, .. }) = state.member_dialog() else {
            panic!("{:?}", state.member_dialog())
        };
        assert_eq!(progress, &vec!["etcd-2: done".to_string()]);
        let report = MemberOutcome::Report(vec!["etcd-2: done".into(), "etcd-3: done".into()]);
        update(&mut state, Input::Msg(Msg::Member { request, result: Ok(report) }));
        let Some(MemberDialog::Result { result: Ok(lines), .. }) = state.member_dialog() else {
            panic!("{:?}", state.member_dialog())
        };
        assert_eq!(lines.len(), 2);
        // y copies nothing here (it copies an added member's start command).
        assert!(update(&mut state, Input::Typed(Typed::Char('y'))).is_empty());

        // No alarm, nothing to disarm; a NOSPACE alarm comes with etcd's recovery steps.
        update(&mut state, Input::Typed(Typed::Esc));
        update(&mut state, Input::Action(Action::Disarm));
        assert_eq!(state.notice.as_deref(), Some("no alarm is raised"));
        let mut state = fixtures::degraded();
        update(&mut state, Input::Action(Action::Disarm));
        let Some(MemberDialog::Confirm { op, notes, .. }) = state.member_dialog() else {
            panic!("{:?}", state.member_dialog())
        };
        let MemberOp::Disarm { alarms } = op else { panic!("{op:?}") };
        assert_eq!(alarms.len(), 1, "the fixture's alarm, as every member reports it");
        assert_eq!(alarms[0].kind, crate::app::cluster::AlarmKind::Nospace);
        assert!(notes.iter().any(|n| n.loud && n.text.starts_with("raised: NOSPACE on etcd-2")), "{notes:?}");
        assert_eq!(op.etcdctl(&["http://e:2379".into()]), "etcdctl --endpoints=http://e:2379 alarm disarm");
        assert!(notes.iter().any(|n| n.text.contains("C compacts the history, F defragments each member")));
        assert!(op.etcdctl(&["http://e:2379".into()]).ends_with(" alarm disarm"));
    }

    #[test]
    fn a_learner_is_offered_promotion_only_once_caught_up() {
        let mut state = fixtures::with_learner_and_unstarted();
        let learner = state.members.iter().position(|m| m.info.is_learner).expect("a learner");
        state.selected = learner;
        update(&mut state, Input::Action(Action::Promote));
        assert!(state.member_dialog().is_none(), "not caught up: not offered");
        assert!(
            state.notice.as_deref().is_some_and(|n| n.contains("promotion is offered from 90%")),
            "{:?}",
            state.notice
        );
        // Caught up with the leader: offered.
        let leader =
            state.leader_id().and_then(|l| state.member(l)).and_then(|m| m.status_ok()).map(|s| s.raft_index);
        if let Some(Ok(s)) = state.members[learner].status.as_mut() {
            s.raft_applied_index = leader.expect("the leader's index");
        }
        update(&mut state, Input::Action(Action::Promote));
        assert!(matches!(
            state.member_dialog(),
            Some(MemberDialog::Confirm { op: MemberOp::Promote { .. }, .. })
        ));
    }
}
