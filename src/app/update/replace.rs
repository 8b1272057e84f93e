//! `update`'s share for a member's replacement (app/replace.rs has the plan): X asks, then each
//! step runs as an effect, waits for its answer, and the first error stops the rest.

use std::time::Duration;

use crate::app::cluster::MemberInfo;
use crate::app::describe::removal_notes;
use crate::app::effect::Effect;
use crate::app::input::Typed;
use crate::app::members::{start_commands, MemberDialog, MemberOp, MemberOutcome};
use crate::app::modal::Modal;
use crate::app::note::Note;
use crate::app::replace::*;
use crate::app::state::State;

/// X on a member: the plan, shown for a deliberate yes.
pub fn begin(state: &mut State) -> Vec<Effect> {
    let refuse = |state: &mut State, why: String| {
        state.notice = Some(why);
        Vec::new()
    };
    if let Some(why) = &state.read_only {
        return refuse(state, format!("read-only ({why}): member changes are disabled"));
    }
    let Some(member) = state.selected_member() else { return refuse(state, "no member selected".into()) };
    let info = member.info.clone();
    let shown = if info.name.is_empty() { format!("{:x}", info.id) } else { info.name.clone() };
    if info.name.is_empty() {
        return refuse(state, format!("{shown} has not started: remove it (d) and add it again (n) instead"));
    }
    if info.is_learner {
        return refuse(
            state,
            format!("{shown} is a learner: remove it (d) and add it again (n) as a learner"),
        );
    }
    if info.peer_urls.is_empty() {
        return refuse(state, format!("{shown} has no peer URL to add it back with"));
    }
    let voters = state.members.iter().filter(|m| !m.info.is_learner).count();
    if voters < 2 {
        return refuse(
            state,
            format!("{shown} is the only voting member: it cannot be removed (restore the cluster from a snapshot instead)"),
        );
    }
    let endpoints = state.endpoints.join(",");
    let client_urls =
        if info.client_urls.is_empty() { guess_client_urls(&info) } else { info.client_urls.clone() };
    let demo = state.demo;
    let id = info.id;
    let name = info.name.clone();
    let mut notes = removal_notes(state, id);
    notes.retain(|n| !n.text.contains("must not be used again"));
    notes.push(Note {
        text: format!("{name} comes back as a new member (a new ID) on an empty data dir and catches up from the leader"),
        loud: false,
    });
    let step = |kind, what: String, same: Vec<String>| Step { kind, what, same, state: StepState::Waiting };
    let by_hand =
        |what: &str| if demo { String::new() } else { format!(" (yours, on {name}'s machine: {what})") };
    let steps = vec![
        step(
            StepKind::Stop,
            format!("stop {name}{}", by_hand("a removed member also stops by itself")),
            vec![format!("systemctl stop etcd   # or kill the {name} process")],
        ),
        step(
            StepKind::Remove,
            format!("remove {name} ({id:x}) from the cluster"),
            vec![format!("etcdctl --endpoints={endpoints} member remove {id:x}")],
        ),
        step(
            StepKind::Wipe,
            format!("move {name}'s data dir away{}", by_hand("it must start empty")),
            vec![format!("mv {name}.etcd {name}.etcd.damaged   # its --data-dir")],
        ),
        step(
            StepKind::Add,
            format!("add {name} again with peer URLs {}", info.peer_urls.join(",")),
            vec![format!(
                "etcdctl --endpoints={endpoints} member add {} --peer-urls={}",
                crate::app::edit::shell_quote(name.as_bytes()),
                info.peer_urls.join(",")
            )],
        ),
        step(
            StepKind::Start,
            format!(
                "start {name} on the empty data dir, joining the existing cluster{}",
                by_hand("the command below")
            ),
            vec!["etcd … --initial-cluster-state existing (the exact command comes with the add)".into()],
        ),
        step(
            StepKind::Wait,
            format!("wait until {name} answers healthy"),
            vec![format!("etcdctl --endpoints={} endpoint health", client_urls.join(","))],
        ),
    ];
    state.modal = Some(Modal::Member(MemberDialog::Replace(Replace {
        id,
        name,
        peer_urls: info.peer_urls.clone(),
        client_urls,
        demo,
        notes,
        steps,
        confirmed: false,
        request: 0,
        new_id: None,
        initial_cluster: String::new(),
        waiting_since: None,
        add_first_try: None,
        add_retry_at: None,
    })));
    Vec::new()
}

/// etcd's habit: clients one port below the peers.
fn guess_client_urls(info: &MemberInfo) -> Vec<String> {
    info.peer_urls
        .iter()
        .filter_map(|u| u.rsplit_once(':'))
        .filter_map(|(h, p)| Some(format!("{h}:{}", p.parse::<u16>().ok()?.checked_sub(1)?)))
        .collect()
}

fn with_replace<T>(state: &mut State, f: impl FnOnce(&mut Replace) -> T) -> Option<T> {
    match state.member_dialog_mut() {
        Some(MemberDialog::Replace(r)) => Some(f(r)),
        _ => None,
    }
}

/// Keys while the replacement's dialog is open.
pub fn on_key(state: &mut State, key: Typed) -> Vec<Effect> {
    let Some((confirmed, finished, waiting)) = with_replace(state, |r| {
        let waiting = r.steps.iter().any(|s| s.kind == StepKind::Wait && s.state == StepState::Running);
        (r.confirmed, r.finished(), waiting)
    }) else {
        return Vec::new();
    };
    if finished {
        state.modal = None;
        return Vec::new();
    }
    if !confirmed {
        match key {
            Typed::Char('y') | Typed::Char('Y') => {
                with_replace(state, |r| r.confirmed = true);
                return advance(state);
            }
            Typed::Enter => state.notice = Some("this one needs a deliberate y (or esc to cancel)".into()),
            Typed::Esc | Typed::Char('n') | Typed::Char('N') => {
                state.modal = None;
                state.notice = Some("cancelled: the member's replacement".into());
            }
            _ => {}
        }
        return Vec::new();
    }
    if waiting && key == Typed::Esc {
        let name = with_replace(state, |r| r.name.clone()).unwrap_or_default();
        state.modal = None;
        state.notice =
            Some(format!("stopped waiting: {name} is a member again; the table shows when it is healthy"));
    }
    // A step in flight cannot be called back: its answer moves the dialog on.
    Vec::new()
}

/// Starts the next step that waits; the console skips the operator's steps outside the demo.
fn advance(state: &mut State) -> Vec<Effect> {
    let request = state.ids.next_id();
    let now = state.now;
    let effect = with_replace(state, |r| {
        let demo = r.demo;
        let step = r.steps.iter_mut().find(|s| s.state == StepState::Waiting)?;
        let by_console = demo || matches!(step.kind, StepKind::Remove | StepKind::Add | StepKind::Wait);
        if !by_console {
            step.state = StepState::Yours;
            return Some(None);
        }
        step.state = StepState::Running;
        let kind = step.kind;
        r.request = request;
        let name = r.name.clone();
        Some(Some(match kind {
            StepKind::Stop => Effect::ReplaceProcess { request, step: ProcessStep::Stop { name } },
            StepKind::Wipe => Effect::ReplaceProcess { request, step: ProcessStep::Wipe { name } },
            StepKind::Start => Effect::ReplaceProcess {
                request,
                step: ProcessStep::Start { name, initial_cluster: r.initial_cluster.clone() },
            },
            StepKind::Remove => Effect::Member { request, op: MemberOp::Remove { id: r.id, name } },
            StepKind::Add => {
                r.add_first_try = now;
                add_effect(r, request)
            }
            StepKind::Wait => {
                r.waiting_since = now;
                return Some(None);
            }
        }))
    });
    match effect {
        // The operator's step, or the wait: on to the next one (the wait ends on what the
        // refreshes show, so one starts at once).
        Some(Some(None)) => {
            let waiting = with_replace(state, |r| r.steps.iter().any(|s| s.state == StepState::Running));
            if waiting == Some(true) {
                crate::app::update::refresh::start_refresh(state)
            } else {
                advance(state)
            }
        }
        Some(Some(Some(effect))) => vec![effect],
        _ => {
            finish(state);
            Vec::new()
        }
    }
}

fn add_effect(r: &Replace, request: u64) -> Effect {
    Effect::Member {
        request,
        op: MemberOp::Add {
            name: r.name.clone(),
            peer_urls: r.peer_urls.clone(),
            client_urls: r.client_urls.clone(),
            learner: false,
        },
    }
}

fn finish(state: &mut State) {
    let Some((failed, name)) = with_replace(state, |r| (r.failed(), r.name.clone())) else { return };
    state.notice = Some(if failed {
        format!("✗ the replacement of {name} stopped at a failed step")
    } else {
        format!("done: {name} replaced and healthy")
    });
}

/// The end of the step in flight: the next one starts, or the first error stops the rest.
fn step_done(state: &mut State, result: Result<String, String>) -> Vec<Effect> {
    let failed = result.is_err();
    with_replace(state, |r| {
        if let Some(step) = r.running() {
            step.state = match result {
                Ok(done) => StepState::Done(done),
                Err(e) => StepState::Failed(e),
            };
        }
    });
    let mut effects = crate::app::update::refresh::start_refresh(state);
    if failed {
        finish(state);
    } else {
        effects.extend(advance(state));
    }
    effects
}

/// A membership change answered; true if it was the replacement's.
pub fn on_member_answer(
    state: &mut State,
    request: u64,
    result: &Result<MemberOutcome, String>,
) -> Option<Vec<Effect>> {
    let ours = with_replace(state, |r| r.request == request && r.running().is_some())?;
    if !ours {
        return None;
    }
    // etcd's refusal of an add right after a removal passes once the members have been connected
    // for its health interval: try again shortly, for a while.
    if let Err(e) = result {
        let now = state.now;
        let retry = with_replace(state, |r| {
            let adding = r.running().is_some_and(|s| s.kind == StepKind::Add);
            let within = match (r.add_first_try, now) {
                (Some(first), Some(now)) => now.saturating_duration_since(first) < ADD_RETRY_FOR,
                _ => false,
            };
            if adding && within && e.contains("etcdserver: unhealthy cluster") {
                r.add_retry_at = now.map(|n| n + ADD_RETRY_EVERY);
                let what = format!(
                    "add {} again with peer URLs {} (etcd: \"unhealthy cluster\" until the members have been connected for 5 s; trying again)",
                    r.name,
                    r.peer_urls.join(",")
                );
                if let Some(step) = r.running() {
                    step.what = what;
                }
                true
            } else {
                false
            }
        });
        if retry == Some(true) {
            return Some(Vec::new());
        }
    }
    let result = match result {
        Ok(MemberOutcome::Added { id, members }) => {
            with_replace(state, |r| {
                r.new_id = Some(*id);
                let op = MemberOp::Add {
                    name: r.name.clone(),
                    peer_urls: r.peer_urls.clone(),
                    client_urls: r.client_urls.clone(),
                    learner: false,
                };
                let lines = start_commands(&op, *id, members);
                r.initial_cluster = crate::app::members::initial_cluster_after_add(&r.name, *id, members);
                // The operator's start command, as etcdctl prints it after an add.
                if let Some(start) = r.steps.iter_mut().find(|s| s.kind == StepKind::Start) {
                    start.same = lines.iter().filter(|l| l.starts_with("etcd")).cloned().collect();
                }
            });
            Ok(format!("added as {id:x}"))
        }
        Ok(_) => Ok("done".to_string()),
        Err(e) => Err(e.clone()),
    };
    Some(step_done(state, result))
}

/// The demo's process table answered a step.
pub fn on_process_answer(state: &mut State, request: u64, result: Result<String, String>) -> Vec<Effect> {
    if with_replace(state, |r| r.request == request && r.running().is_some()) != Some(true) {
        return Vec::new();
    }
    step_done(state, result)
}

/// While the wait runs: done once the new member is started, reachable and healthy; in the demo,
/// failed after DEMO_WAIT.
pub fn check_wait(state: &mut State) -> Vec<Effect> {
    // An add refused for now is tried again once its wait is over.
    let now = state.now;
    let request = state.ids.peek();
    let again = with_replace(state, |r| {
        let due = matches!((r.add_retry_at, now), (Some(at), Some(now)) if now >= at);
        if !due {
            return None;
        }
        r.add_retry_at = None;
        r.request = request;
        Some(add_effect(r, request))
    })
    .flatten();
    if let Some(effect) = again {
        state.ids.next_id();
        return vec![effect];
    }
    let Some((new_id, since, demo)) = with_replace(state, |r| {
        let waiting = r.steps.iter().any(|s| s.kind == StepKind::Wait && s.state == StepState::Running);
        waiting.then_some((r.new_id, r.waiting_since, r.demo))
    })
    .flatten() else {
        return Vec::new();
    };
    let healthy = new_id
        .and_then(|id| state.member(id))
        .is_some_and(|m| m.info.is_started() && m.is_up() && m.is_healthy());
    let waited = match (since, state.now) {
        (Some(since), Some(now)) => now.saturating_duration_since(since),
        _ => Duration::ZERO,
    };
    if healthy {
        return step_done(state, Ok(format!("healthy after {} s", waited.as_secs())));
    }
    if demo && waited >= DEMO_WAIT {
        return step_done(
            state,
            Err(format!("not healthy after {} s: see its log in the demo's directory", waited.as_secs())),
        );
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::action::Action;
    use crate::app::fixtures::{self, ID1, ID2, ID3};
    use crate::app::input::Input;
    use crate::app::msg::Msg;
    use crate::app::state::Member;
    use crate::app::update::update;
    use std::time::Instant;

    fn replace(state: &State) -> &Replace {
        match state.member_dialog() {
            Some(MemberDialog::Replace(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn states(state: &State) -> Vec<StepState> {
        replace(state).steps.iter().map(|s| s.state.clone()).collect()
    }

    fn process_step(effects: &[Effect]) -> (u64, ProcessStep) {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::ReplaceProcess { request, step } => Some((*request, step.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no process step in {effects:?}"))
    }

    fn member_op(effects: &[Effect]) -> (u64, MemberOp) {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::Member { request, op } => Some((*request, op.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no member op in {effects:?}"))
    }

    #[test]
    fn the_demo_replaces_a_member_step_by_step_and_waits_for_it_to_be_healthy() {
        let mut state = fixtures::healthy();
        state.demo = true;
        state.selected = 1;
        update(&mut state, Input::Action(Action::ReplaceMember));
        let r = replace(&state);
        assert!(!r.confirmed && r.steps.len() == 6, "{r:?}");
        assert!(r.steps[1].same[0].ends_with(&format!("member remove {ID2:x}")), "{:?}", r.steps[1]);
        assert!(r.steps[3].same[0].contains("member add etcd-2 --peer-urls=http://127.0.0.2:2380"));
        assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty(), "enter is not enough");
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        let (request, step) = process_step(&effects);
        assert_eq!(step, ProcessStep::Stop { name: "etcd-2".into() });
        let effects =
            update(&mut state, Input::Msg(Msg::ReplaceProcess { request, result: Ok("stopped".into()) }));
        let (request, op) = member_op(&effects);
        assert_eq!(op, MemberOp::Remove { id: ID2, name: "etcd-2".into() });
        let effects =
            update(&mut state, Input::Msg(Msg::Member { request, result: Ok(MemberOutcome::Done) }));
        let (request, step) = process_step(&effects);
        assert_eq!(step, ProcessStep::Wipe { name: "etcd-2".into() });
        let effects =
            update(&mut state, Input::Msg(Msg::ReplaceProcess { request, result: Ok("moved".into()) }));
        let (request, op) = member_op(&effects);
        assert!(matches!(op, MemberOp::Add { learner: false, ref name, .. } if name == "etcd-2"), "{op:?}");
        const NEW: u64 = 0x77;
        let mut members = fixtures::member_list().members;
        members.retain(|m| m.id != ID2);
        members.push(MemberInfo {
            id: NEW,
            name: String::new(),
            peer_urls: vec!["http://127.0.0.2:2380".into()],
            client_urls: vec![],
            is_learner: false,
        });
        let effects = update(
            &mut state,
            Input::Msg(Msg::Member { request, result: Ok(MemberOutcome::Added { id: NEW, members }) }),
        );
        let (request, step) = process_step(&effects);
        let ProcessStep::Start { name, initial_cluster } = step else { panic!("{step:?}") };
        assert_eq!(name, "etcd-2");
        assert_eq!(
            initial_cluster,
            "etcd-1=http://127.0.0.1:2380,etcd-3=http://127.0.0.3:2380,etcd-2=http://127.0.0.2:2380"
        );
        update(&mut state, Input::Msg(Msg::ReplaceProcess { request, result: Ok("started".into()) }));
        assert_eq!(states(&state)[5], StepState::Running, "waiting");
        assert!(!replace(&state).finished());
        // Esc is not a yes to anything here; the wait ends when the table shows it healthy.
        let mut new = Member::new(fixtures::info(NEW, 2));
        new.status = Some(Ok(fixtures::status(NEW, ID1, 7, 5210, 5210)));
        new.health = Some(Ok(Duration::from_millis(1)));
        state.members.retain(|m| m.info.id != ID2);
        state.members.push(new);
        update(&mut state, Input::Tick { now: Instant::now(), wall: fixtures::wall() });
        assert!(replace(&state).finished() && !replace(&state).failed(), "{:?}", states(&state));
        assert_eq!(state.notice.as_deref(), Some("done: etcd-2 replaced and healthy"));
        update(&mut state, Input::Typed(Typed::Char('x')));
        assert!(state.member_dialog().is_none(), "any key closes it once done");
    }

    #[test]
    fn outside_the_demo_the_console_does_the_clusters_steps_and_stops_at_the_first_error() {
        let mut state = fixtures::healthy();
        state.selected = 2;
        update(&mut state, Input::Action(Action::ReplaceMember));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        assert_eq!(states(&state)[0], StepState::Yours, "stopping it is the operator's");
        let (request, op) = member_op(&effects);
        assert_eq!(op, MemberOp::Remove { id: ID3, name: "etcd-3".into() });
        let effects = update(
            &mut state,
            Input::Msg(Msg::Member { request, result: Err("etcdserver: unhealthy cluster".into()) }),
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Member { .. })), "nothing after the error");
        let s = states(&state);
        assert!(matches!(&s[1], StepState::Failed(e) if e.contains("unhealthy cluster")), "{s:?}");
        assert!(s[2..].iter().all(|s| *s == StepState::Waiting), "{s:?}");
        assert!(replace(&state).finished());
        assert!(state.notice.as_deref().is_some_and(|n| n.starts_with("✗ the replacement of etcd-3")));

        // Refused where it cannot work: read-only, or the only voter.
        let mut state = fixtures::healthy();
        state.read_only = Some("--read-only".into());
        update(&mut state, Input::Action(Action::ReplaceMember));
        assert!(state.member_dialog().is_none());
        let mut state = fixtures::healthy();
        state.members.retain(|m| m.info.id == ID1);
        update(&mut state, Input::Action(Action::ReplaceMember));
        assert!(state.member_dialog().is_none());
        assert!(
            state.notice.as_deref().is_some_and(|n| n.contains("only voting member")),
            "{:?}",
            state.notice
        );
    }
}
