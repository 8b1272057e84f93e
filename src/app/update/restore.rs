//! `update`'s share for the restore wizard (app/restore.rs has the plan): R asks for the file, the
//! file is checked, the wizard shows the commands for its format, and in the demo runs them.

use std::path::PathBuf;

use crate::app::effect::Effect;
use crate::app::input::Typed;
use crate::app::modal::Modal;
use crate::app::restore::*;
use crate::app::snapshot::{CheckedSnapshot, FoundBackup};
use crate::app::state::{InputLine, Prompt, State};

/// The plan for the members the dashboard lists now.
pub fn plan(state: &State, file: PathBuf) -> Result<RestorePlan, String> {
    RestorePlan::for_members(state.members.iter().map(|m| &m.info), state.wall, file)
}

/// R: asks for the snapshot file (the last one saved is offered), and lists the backups in the
/// backup directory, if there is one, to choose from by number.
pub fn begin(state: &mut State) -> Vec<Effect> {
    let text = state.last_snapshot.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    state.input = Some(InputLine { prompt: Prompt::RestoreFrom, text });
    state.backups.clear();
    let Some(dir) = state.backup_dir.clone() else { return Vec::new() };
    let request = state.ids.next_id();
    state.backups_request = request;
    vec![Effect::ListBackups { request, dir }]
}

/// The backups found: listed newest first, the newest offered unless a file was already offered
/// or typed.
pub fn on_backups(state: &mut State, request: u64, result: Result<Vec<FoundBackup>, String>) {
    if request != state.backups_request {
        return;
    }
    match result {
        Ok(mut found) => {
            found.reverse();
            if let (Some(line), Some(newest)) = (state.input.as_mut(), found.first()) {
                if line.prompt == Prompt::RestoreFrom && line.text.is_empty() {
                    line.text = newest.path.display().to_string();
                }
            }
            if found.is_empty() {
                state.notice = Some("no backups in the backup directory yet".into());
            }
            state.backups = found;
        }
        Err(e) => state.notice = Some(format!("✗ backups: {e}")),
    }
}

/// The file typed at the prompt: the plan, and a check of the file.
pub fn on_file(state: &mut State, text: String) -> Vec<Effect> {
    let text = text.trim();
    if text.is_empty() {
        state.notice = Some("✗ no snapshot file given".into());
        return Vec::new();
    }
    // A number picks a backup from the list shown.
    let listed = text.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| state.backups.get(i));
    let file = listed.map_or_else(|| PathBuf::from(text), |b| b.path.clone());
    state.backups.clear();
    match plan(state, file.clone()) {
        Ok(plan) => {
            // etcdeck's own demo runs etcdeck; otherwise the servers' version says which etcd.
            let tool = if state.demo {
                Tool::Etcdeck
            } else if state.server_version().is_some_and(|v| v.starts_with("3.4") || v.starts_with("3.3")) {
                Tool::Etcdctl
            } else {
                Tool::Etcdutl
            };
            let request = state.ids.next_id();
            state.restore_check = request;
            state.modal = Some(Modal::Restore(RestoreWizard::Plan { plan, tool, file: None }));
            vec![Effect::CheckSnapshotFile { request, path: file }]
        }
        Err(e) => {
            state.notice = Some(format!("✗ {e}"));
            Vec::new()
        }
    }
}

/// What the check of the snapshot file found.
/// Only the tools that restore a file of its format are offered from then on.
pub fn on_file_checked(state: &mut State, request: u64, result: Result<CheckedSnapshot, String>) {
    if request != state.restore_check {
        return;
    }
    if let Some(RestoreWizard::Plan { file, tool, .. }) = state.restore_wizard_mut() {
        if let Ok(checked) = &result {
            let tools = Tool::for_format(Some(checked.format));
            if !tools.contains(tool) {
                *tool = tools[0];
            }
        }
        *file = Some(result);
    }
}

/// Keys typed while the wizard is open.
pub fn on_key(state: &mut State, key: Typed) -> Vec<Effect> {
    let Some(wizard) = state.take_restore_wizard() else { return Vec::new() };
    match wizard {
        RestoreWizard::Plan { plan, tool, file } => match key {
            Typed::Char('t') => {
                let tool = tool.next_of(Tool::for_format(RestoreWizard::format(&file)));
                state.modal = Some(Modal::Restore(RestoreWizard::Plan { plan, tool, file }))
            }
            Typed::Char('y') => {
                let text = plan.commands(tool, RestoreWizard::format(&file)).join("\n");
                state.modal = Some(Modal::Restore(RestoreWizard::Plan { plan, tool, file }));
                return vec![Effect::Copy { what: "the restore commands".into(), bytes: text.into_bytes() }];
            }
            Typed::Char('r') => {
                if !state.demo {
                    state.notice =
                        Some("only etcdeck demo runs a restore itself: run these commands on each member's machine".into());
                } else if let Some(why) = &state.read_only {
                    state.notice = Some(format!("read-only ({why}): the restore is not run"));
                } else if !matches!(file, Some(Ok(_))) {
                    state.notice =
                        Some("the snapshot file has not checked out: nothing to restore from".into());
                } else if !RestoreWizard::runs_in_demo(&file) {
                    state.notice = Some(
                        "a copy of a member's db has no SHA-256 to check: restore from it with the commands shown (they say --skip-hash-check)".into(),
                    );
                } else {
                    state.modal = Some(Modal::Restore(RestoreWizard::Confirm { plan }));
                    return Vec::new();
                }
                state.modal = Some(Modal::Restore(RestoreWizard::Plan { plan, tool, file }));
            }
            Typed::Esc | Typed::Char('q') => {}
            _ => state.modal = Some(Modal::Restore(RestoreWizard::Plan { plan, tool, file })),
        },
        RestoreWizard::Confirm { plan } => match key {
            Typed::Char('y') => {
                let request = state.ids.next_id();
                let effect = Effect::RestoreLocal {
                    request,
                    file: plan.file.clone(),
                    token: plan.token.clone(),
                    members: plan.members.iter().map(|(n, _)| n.clone()).collect(),
                };
                state.modal = Some(Modal::Restore(RestoreWizard::Running {
                    request,
                    plan,
                    stage: "stopping the members, restoring into new data dirs…".into(),
                }));
                return vec![effect];
            }
            Typed::Enter => {
                state.notice = Some("this one needs a deliberate y (or esc to cancel)".into());
                state.modal = Some(Modal::Restore(RestoreWizard::Confirm { plan }));
            }
            Typed::Esc | Typed::Char('n') => state.notice = Some("cancelled: the restore".into()),
            _ => state.modal = Some(Modal::Restore(RestoreWizard::Confirm { plan })),
        },
        // Its answer closes it.
        running @ RestoreWizard::Running { .. } => state.modal = Some(Modal::Restore(running)),
        RestoreWizard::Done { .. } => {}
    }
    Vec::new()
}

/// The restore's new data dirs are written (or not): start the members on them (or on their old
/// data dirs again).
pub fn on_restored_dirs(
    state: &mut State,
    request: u64,
    result: Result<Vec<(String, PathBuf)>, String>,
) -> Vec<Effect> {
    match state.restore_wizard_mut() {
        Some(RestoreWizard::Running { request: asked, stage, .. }) if *asked == request => {
            *stage = match &result {
                Ok(_) => "starting the members on the restored data dirs…".into(),
                Err(_) => "the restore failed: starting the members on their old data dirs…".into(),
            };
            vec![Effect::FinishRestore { request, restored: result }]
        }
        _ => Vec::new(),
    }
}

/// The members run again: the end of the restore.
pub fn on_finished(state: &mut State, request: u64, result: Result<String, String>) -> bool {
    match state.restore_wizard() {
        Some(RestoreWizard::Running { request: asked, .. }) if *asked == request => {
            state.notice = Some(match &result {
                Ok(_) => "restored the cluster from the snapshot".into(),
                Err(e) => format!("✗ restore: {e}"),
            });
            state.modal = Some(Modal::Restore(RestoreWizard::Done { result }));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;
    use crate::app::input::Input;
    use crate::app::msg::Msg;
    use crate::app::snapshot::SnapshotFormat;
    use crate::app::update::update;

    #[test]
    fn the_plan_restores_every_voter_from_one_file_with_a_new_token_and_new_data_dirs() {
        let state = fixtures::with_learner_and_unstarted();
        let plan = plan(&state, PathBuf::from("/backups/snap shot.db")).expect("a plan");
        assert!(plan.token.starts_with("etcd-cluster-restored-2"), "{}", plan.token);
        assert_eq!(plan.left_out.len(), 2, "the learner and the unstarted member: {:?}", plan.left_out);
        let cluster = plan.initial_cluster();
        let commands = plan.commands(Tool::Etcdutl, None);
        assert_eq!(commands.len(), plan.members.len());
        let (name, urls) = &plan.members[0];
        assert_eq!(
            commands[0],
            format!(
                "etcdutl snapshot restore '/backups/snap shot.db' --name {name} --initial-cluster {cluster} --initial-cluster-token {} --initial-advertise-peer-urls {} --data-dir {name}.restored.etcd",
                plan.token,
                urls.join(",")
            )
        );
        assert!(plan.commands(Tool::Etcdctl, None)[0].starts_with("ETCDCTL_API=3 etcdctl snapshot restore "));
        assert!(plan.commands(Tool::Etcdeck, None)[0].starts_with("etcdeck snapshot restore "));
    }

    fn checked(format: SnapshotFormat) -> CheckedSnapshot {
        CheckedSnapshot { format, summary: format.describe().into() }
    }

    #[test]
    fn only_the_tools_that_restore_the_file_in_hand_are_offered() {
        let mut state = fixtures::healthy();
        state.demo = true;
        state.last_snapshot = Some(PathBuf::from("etcd.db"));
        update(&mut state, Input::Action(crate::app::action::Action::Restore));
        let effects = update(&mut state, Input::Typed(Typed::Enter));
        let [Effect::CheckSnapshotFile { request, .. }] = &effects[..] else { panic!("{effects:?}") };
        let request = *request;
        // An etcd snapshot in the demo (whose nodes are etcdeck's, which restore etcd's format):
        // etcdeck's command first, then etcdctl's and etcdutl's; and it runs.
        let result = Ok(checked(SnapshotFormat::EtcdSnapshot));
        update(&mut state, Input::Msg(Msg::SnapshotFile { request, result }));
        let tool = |state: &State| match state.restore_wizard() {
            Some(RestoreWizard::Plan { tool, .. }) => *tool,
            other => panic!("{other:?}"),
        };
        assert_eq!(tool(&state), Tool::Etcdeck);
        update(&mut state, Input::Typed(Typed::Char('t')));
        assert_eq!(tool(&state), Tool::Etcdctl);
        update(&mut state, Input::Typed(Typed::Char('t')));
        assert_eq!(tool(&state), Tool::Etcdutl);
        update(&mut state, Input::Typed(Typed::Char('t')));
        assert_eq!(tool(&state), Tool::Etcdeck);
        update(&mut state, Input::Typed(Typed::Char('r')));
        assert!(matches!(state.restore_wizard(), Some(RestoreWizard::Confirm { .. })), "{:?}", state.notice);
        // A member's db copy has no SHA-256: the demo does not run it.
        let copy = Some(Ok(checked(SnapshotFormat::EtcdDbCopy)));
        assert!(!RestoreWizard::runs_in_demo(&copy));
        assert!(RestoreWizard::runs_in_demo(&Some(Ok(checked(SnapshotFormat::Etcdeck)))));
        // A db file copied from a data dir: the commands say --skip-hash-check.
        let plan = plan(&state, PathBuf::from("db")).expect("plan");
        let commands = plan.commands(Tool::Etcdutl, Some(SnapshotFormat::EtcdDbCopy));
        assert!(commands.iter().all(|c| c.ends_with(" --skip-hash-check")), "{commands:?}");
        assert_eq!(Tool::for_format(Some(SnapshotFormat::Etcdeck)), &[Tool::Etcdeck]);
    }

    #[test]
    fn the_wizard_shows_commands_and_runs_only_in_the_demo_after_a_deliberate_yes() {
        let mut state = fixtures::healthy();
        state.last_snapshot = Some(PathBuf::from("s.db"));
        update(&mut state, Input::Action(crate::app::action::Action::Restore));
        assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("s.db"), "the last save is offered");
        let effects = update(&mut state, Input::Typed(Typed::Enter));
        let [Effect::CheckSnapshotFile { request, .. }] = &effects[..] else { panic!("{effects:?}") };
        let request = *request;
        // Not the demo: r is refused, the commands are there to copy.
        update(
            &mut state,
            Input::Msg(Msg::SnapshotFile { request, result: Ok(checked(SnapshotFormat::Etcdeck)) }),
        );
        assert!(update(&mut state, Input::Typed(Typed::Char('r'))).is_empty());
        assert!(state.notice.as_deref().is_some_and(|n| n.contains("only etcdeck demo")));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert!(matches!(&effects[..], [Effect::Copy { .. }]), "{effects:?}");

        // The demo: a deliberate y, then the dirs, then the start.
        state.demo = true;
        update(&mut state, Input::Typed(Typed::Char('r')));
        assert!(matches!(state.restore_wizard(), Some(RestoreWizard::Confirm { .. })));
        assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty(), "enter is not enough");
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        let [Effect::RestoreLocal { request, members, .. }] = &effects[..] else { panic!("{effects:?}") };
        assert_eq!(members.len(), 3);
        let request = *request;
        let effects = update(
            &mut state,
            Input::Msg(Msg::RestoreDirs { request, result: Err("snapshot file has no hash".into()) }),
        );
        assert!(matches!(&effects[..], [Effect::FinishRestore { restored: Err(_), .. }]), "{effects:?}");
        update(
            &mut state,
            Input::Msg(Msg::Restored { request, result: Err("no hash; old data kept".into()) }),
        );
        assert!(matches!(state.restore_wizard(), Some(RestoreWizard::Done { result: Err(_) })));

        // Read-only: never run.
        let mut state = fixtures::healthy();
        state.demo = true;
        state.read_only = Some("--read-only".into());
        update(&mut state, Input::Action(crate::app::action::Action::Restore));
        state.input.as_mut().expect("prompt").text = "s.db".into();
        let effects = update(&mut state, Input::Typed(Typed::Enter));
        let [Effect::CheckSnapshotFile { request, .. }] = &effects[..] else { panic!("{effects:?}") };
        let request = *request;
        update(
            &mut state,
            Input::Msg(Msg::SnapshotFile { request, result: Ok(checked(SnapshotFormat::Etcdeck)) }),
        );
        assert!(update(&mut state, Input::Typed(Typed::Char('r'))).is_empty());
        assert!(matches!(state.restore_wizard(), Some(RestoreWizard::Plan { .. })));
    }
}
