//! The dashboard: refresh rounds, probes, leadership, quorum and health, the demo's keys.

use std::time::{Duration, Instant};

use super::*;
use crate::app::cluster::{Alarm, AlarmKind};
use crate::app::fixtures::{self, ID1, ID2, ID3};
use crate::app::members::MemberDialog;
use crate::app::state::Leadership;

#[test]
fn demo_keys_kill_and_start_the_selected_member_only_in_the_demo() {
    let mut state = fixtures::healthy();
    assert!(update(&mut state, Input::Action(Action::KillMember)).is_empty());
    assert_eq!(state.notice.as_deref(), Some("only etcdeck demo starts and stops members' processes"));
    state.demo = true;
    state.selected = 1;
    let name = state.members[1].info.name.clone();
    // A kill asks first, naming the member and what happens to the quorum.
    assert!(update(&mut state, Input::Action(Action::KillMember)).is_empty());
    let Some(MemberDialog::Confirm { op, notes, .. }) = state.member_dialog() else {
        panic!("{:?}", state.member_dialog())
    };
    assert!(op.describe().starts_with(&format!("kill member {name} (")), "{}", op.describe());
    assert!(notes[0].text.starts_with("quorum holds: 2 of 3 voting members stay up, 2 needed"), "{notes:?}");
    let effects = update(&mut state, Input::Typed(Typed::Char('y')));
    assert_eq!(effects, vec![Effect::MemberProcess { name: name.clone(), start: false }]);
    assert!(state.member_dialog().is_none());
    // With one down already, a second kill loses the quorum: loud, and Enter is not enough.
    state.members[0].status = Some(Err("connection refused".into()));
    update(&mut state, Input::Action(Action::KillMember));
    let Some(MemberDialog::Confirm { notes, deliberate: true, .. }) = state.member_dialog() else {
        panic!("{:?}", state.member_dialog())
    };
    assert!(notes[0].loud && notes[0].text.starts_with("QUORUM LOST: 1 of 3"), "{notes:?}");
    assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty());
    update(&mut state, Input::Typed(Typed::Esc));
    assert!(state.member_dialog().is_none());
    let effects = update(&mut state, Input::Action(Action::StartMember));
    assert_eq!(effects, vec![Effect::MemberProcess { name, start: true }]);
    // The outcome is the notice, and the dashboard refreshes to show it.
    let effects = update(&mut state, Input::Msg(Msg::Process { result: Err("n2 is running".into()) }));
    assert_eq!(state.notice.as_deref(), Some("error: n2 is running"));
    assert!(effects.iter().any(|e| matches!(e, Effect::ListMembers { .. })), "{effects:?}");
}

#[test]
fn first_tick_lists_members_then_probes_each_started_member() {
    let mut state = new_state();
    let t0 = Instant::now();
    assert_eq!(tick(&mut state, t0), vec![Effect::ListMembers { refresh: 1 }]);
    let mut list = fixtures::member_list();
    list.members[2].name.clear();
    list.members[2].client_urls.clear();
    let effects = update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
    assert_eq!(
        effects,
        vec![
            Effect::FetchStatus { refresh: 1, member_id: ID1, endpoint: "http://127.0.0.1:2379".into() },
            Effect::CheckHealth {
                refresh: 1,
                member_id: ID1,
                endpoint: "http://127.0.0.1:2379".into(),
                serializable: false
            },
            Effect::FetchStatus { refresh: 1, member_id: ID2, endpoint: "http://127.0.0.2:2379".into() },
            Effect::CheckHealth {
                refresh: 1,
                member_id: ID2,
                endpoint: "http://127.0.0.2:2379".into(),
                serializable: false
            },
        ],
        "the unstarted member is not probed"
    );
    assert!(!state.has_complete_view());
    answer_probes(
        &mut state,
        &effects,
        &[(ID1, Some(fixtures::status(ID1, ID1, 2, 9, 9))), (ID2, Some(fixtures::status(ID2, ID1, 2, 9, 9)))],
    );
    assert!(state.has_complete_view());
    assert_eq!(state.refresh.completed_at, Some(fixtures::wall()));
    assert_eq!(state.cluster_id, Some(fixtures::CLUSTER));
    assert_eq!(state.leadership(), Leadership::Leader(ID1));
    assert!(state.problems().iter().any(|p| p.contains("etcd-3") || p.contains("not started")));
}

#[test]
fn refreshes_start_on_the_interval_and_probe_known_members_at_once() {
    let mut state = new_state();
    let t0 = Instant::now();
    tick(&mut state, t0);
    let probes =
        update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
    let up = |id| (id, Some(fixtures::status(id, ID1, 7, 1, 1)));
    answer_probes(&mut state, &probes, &[up(ID1), up(ID2), up(ID3)]);
    assert!(tick(&mut state, t0 + Duration::from_millis(1999)).is_empty());
    let effects = tick(&mut state, t0 + Duration::from_secs(2));
    assert_eq!(effects.len(), 1 + 3 * 2, "member list plus status and health for each member: {effects:?}");
    assert!(effects.iter().all(|e| match e {
        Effect::ListMembers { refresh }
        | Effect::FetchStatus { refresh, .. }
        | Effect::CheckHealth { refresh, .. } => *refresh == 2,
        _ => false,
    }));
    // A manual refresh starts a round at once.
    update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(fixtures::member_list()) }));
    answer_probes(&mut state, &effects, &[up(ID1), up(ID2), up(ID3)]);
    let effects = update(&mut state, Input::Action(Action::Refresh));
    assert!(effects.contains(&Effect::ListMembers { refresh: 3 }));
}

#[test]
fn a_reply_older_than_what_is_shown_is_dropped() {
    let mut state = new_state();
    state.members = fixtures::degraded().members;
    update(&mut state, status_msg(5, ID1, fixtures::status(ID1, ID1, 9, 100, 100)));
    update(&mut state, status_msg(4, ID1, fixtures::status(ID1, ID1, 8, 50, 50)));
    assert_eq!(state.member(ID1).and_then(|m| m.status_ok()).map(|s| s.raft_term), Some(9));
    // An old round's reply is still news for a member that has nothing newer.
    update(&mut state, status_msg(4, ID3, fixtures::status(ID3, ID1, 8, 50, 50)));
    assert!(state.member(ID3).is_some_and(|m| m.is_up()));
    // An old member list never replaces a newer one.
    update(&mut state, Input::Msg(Msg::Members { refresh: 6, result: Ok(fixtures::member_list()) }));
    let mut old = fixtures::member_list();
    old.members.truncate(1);
    update(&mut state, Input::Msg(Msg::Members { refresh: 5, result: Ok(old) }));
    assert_eq!(state.members.len(), 3);
}

#[test]
fn a_member_that_goes_down_shows_down_with_its_error_and_a_new_leader() {
    let mut state = fixtures::healthy();
    let t0 = Instant::now();
    let effects = tick(&mut state, t0);
    // etcd-1, the leader, is killed; the others elect etcd-2 in term 8.
    answer_probes(
        &mut state,
        &effects,
        &[
            (ID2, Some(fixtures::status(ID2, ID2, 8, 5300, 5300))),
            (ID3, Some(fixtures::status(ID3, ID2, 8, 5300, 5300))),
        ],
    );
    let m1 = state.member(ID1).expect("etcd-1 still listed");
    assert_eq!(crate::app::describe::member_health(m1), "down");
    assert_eq!(m1.status, Some(Err("connection refused".into())));
    assert_eq!(state.leadership(), Leadership::Leader(ID2));
    assert_eq!(state.members_up(), (2, 3));
    assert!(state.quorum_holds());
    let problems = state.problems();
    assert!(
        problems.iter().any(|p| p == "member etcd-1 (8e9e05c52164694d) is unreachable: connection refused"),
        "{problems:?}"
    );
}

#[test]
fn leadership_while_the_old_leader_is_down_and_before_an_election() {
    let mut state = fixtures::healthy();
    state.members[0].status = Some(Err("refused".into()));
    assert_eq!(state.leadership(), Leadership::LeaderDown(ID1));
    assert!(!state.quorum_holds());
    for m in &mut state.members[1..] {
        m.status = Some(Ok(fixtures::status(m.info.id, 0, 8, 10, 10)));
    }
    assert_eq!(state.leadership(), Leadership::NoLeader);
    assert!(state.problems().contains(&"no leader".to_string()));
    state.members[1].status = Some(Ok(fixtures::status(ID2, ID2, 8, 10, 10)));
    state.members[2].status = Some(Ok(fixtures::status(ID3, ID3, 8, 10, 10)));
    assert_eq!(state.leadership(), Leadership::Disputed(vec![ID2, ID3]));
    // A stale lower-term claim does not count against the newest term.
    state.members[2].status = Some(Ok(fixtures::status(ID3, ID1, 7, 10, 10)));
    assert_eq!(state.leadership(), Leadership::Leader(ID2));
}

#[test]
fn quorum_and_health_are_counted_as_etcd_counts_them() {
    // Two of three up with a leader: quorum holds, though the third is down.
    let mut state = fixtures::healthy();
    state.members[2].status = Some(Err("refused".into()));
    state.members[2].health = Some(Err("refused".into()));
    assert!(state.quorum_holds());
    // A member whose read went through but knows no leader is not healthy (etcd's /health is
    // false, "RAFT NO LEADER"), and without a leader there is no quorum.
    for m in &mut state.members[..2] {
        m.status = Some(Ok(fixtures::status(m.info.id, 0, 9, 10, 10)));
        m.health = Some(Ok(Duration::from_millis(1)));
    }
    assert!(!state.members[0].is_healthy());
    assert_eq!(crate::app::describe::member_health(&state.members[0]), "no leader");
    assert!(!state.quorum_holds());
    // Learners do not count: one voter of two up is no quorum, whatever the learners do.
    let mut state = fixtures::with_learner_and_unstarted();
    let voters = state.members.iter().filter(|m| !m.info.is_learner).count();
    let learners = state.members.len() - voters;
    assert!(learners >= 1);
    let mut down = 0;
    for m in state.members.iter_mut().filter(|m| !m.info.is_learner) {
        if down < voters - voters / 2 {
            m.status = Some(Err("refused".into()));
            down += 1;
        }
    }
    let leader_up = state.members.iter().any(|m| m.info.id == ID1 && m.is_up());
    assert!(!state.quorum_holds(), "a minority of voters up (leader up: {leader_up})");
}

#[test]
fn a_healthy_cluster_has_no_problems_and_a_degraded_one_names_each() {
    assert_eq!(fixtures::healthy().problems(), Vec::<String>::new());
    let problems = fixtures::degraded().problems();
    assert_eq!(
        problems,
        vec![
            "member etcd-3 (fd422379fda50e48) is unreachable: tcp connect error: Connection refused (os error 111)",
            "alarm NOSPACE on member etcd-2 (91bc3c398fb3c146)",
        ]
    );
}

#[test]
fn lag_is_the_leaders_commit_index_minus_the_members_applied_index() {
    let state = fixtures::degraded();
    assert_eq!(state.applied_lag(&state.members[1]), Some(3));
    assert_eq!(state.applied_lag(&state.members[0]), Some(0));
    assert_eq!(state.applied_lag(&state.members[2]), None);
}

#[test]
fn a_removed_member_does_not_hold_the_round_open() {
    let mut state = fixtures::healthy();
    let effects = tick(&mut state, Instant::now());
    let mut list = fixtures::member_list();
    list.members.retain(|m| m.id != ID3);
    update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
    let rest: Vec<Effect> = effects
        .into_iter()
        .filter(|e| {
            !matches!(
                e,
                Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
            )
        })
        .collect();
    answer_probes(
        &mut state,
        &rest,
        &[(ID1, Some(fixtures::status(ID1, ID1, 7, 1, 1))), (ID2, Some(fixtures::status(ID2, ID1, 7, 1, 1)))],
    );
    assert_eq!(state.members.len(), 2);
    assert_eq!(state.refresh.current, None, "round complete without the removed member");
    assert_eq!(state.refresh.completed, 5);
}

#[test]
fn member_list_failure_keeps_the_last_members_and_says_why() {
    let mut state = fixtures::healthy();
    tick(&mut state, Instant::now());
    update(
        &mut state,
        Input::Msg(Msg::Members { refresh: 1, result: Err("context deadline exceeded".into()) }),
    );
    assert_eq!(state.members.len(), 3);
    assert_eq!(state.problems()[0], "cannot list members: context deadline exceeded");
    state.members_listed_at = Some(fixtures::wall());
    let said = state.problems()[0].clone();
    assert!(said.contains("(last listed ") && said.ends_with("Z, tried again each refresh)"), "{said}");
}

#[test]
fn keys_move_the_selection_and_open_and_close_panes() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::Up));
    assert_eq!(state.selected, 0);
    update(&mut state, Input::Action(Action::Down));
    update(&mut state, Input::Action(Action::Down));
    update(&mut state, Input::Action(Action::Down));
    assert_eq!(state.selected, 2);
    update(&mut state, Input::Action(Action::Top));
    assert_eq!(state.selected, 0);
    update(&mut state, Input::Action(Action::Bottom));
    update(&mut state, Input::Action(Action::Open));
    assert_eq!(state.overlay, Overlay::Detail(ID3));
    update(&mut state, Input::Action(Action::Back));
    assert_eq!(state.overlay, Overlay::None);
    update(&mut state, Input::Action(Action::Help));
    assert_eq!(state.overlay, Overlay::Help);
    update(&mut state, Input::Action(Action::Help));
    assert_eq!(state.overlay, Overlay::None);
    update(&mut state, Input::Action(Action::Quit));
    assert!(state.should_quit);
}

#[test]
fn the_selection_follows_its_member_when_the_list_changes() {
    let mut state = fixtures::healthy();
    state.selected = 1; // etcd-2
    update(&mut state, Input::Action(Action::Open));
    let mut list = fixtures::member_list();
    list.members.retain(|m| m.id != ID1);
    update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
    assert_eq!(state.selected_member().map(|m| m.info.id), Some(ID2));
    assert_eq!(state.overlay, Overlay::Detail(ID2));
    list = fixtures::member_list();
    list.members.retain(|m| m.id == ID1);
    update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(list) }));
    assert_eq!(state.overlay, Overlay::None, "the detail of a removed member closes");
    assert_eq!(state.selected, 0);
}

#[test]
fn faster_and_slower_step_through_the_intervals() {
    let mut state = new_state();
    update(&mut state, Input::Action(Action::FasterRefresh));
    assert_eq!(state.refresh_interval, Duration::from_secs(1));
    update(&mut state, Input::Action(Action::FasterRefresh));
    update(&mut state, Input::Action(Action::FasterRefresh));
    assert_eq!(state.refresh_interval, Duration::from_millis(500));
    update(&mut state, Input::Action(Action::SlowerRefresh));
    assert_eq!(state.refresh_interval, Duration::from_secs(1));
    assert_eq!(state.notice.as_deref(), Some("refreshing every 1s"));
    // An interval between the steps moves to the neighbouring step.
    state.refresh_interval = Duration::from_secs(3);
    update(&mut state, Input::Action(Action::SlowerRefresh));
    assert_eq!(state.refresh_interval, Duration::from_secs(5));
}

#[test]
fn alarms_come_from_status_errors() {
    assert_eq!(
        Alarm::parse_status_error("memberID:10276657743932975437 alarm:NOSPACE "),
        Some(Alarm { member_id: 10276657743932975437, kind: AlarmKind::Nospace })
    );
    assert_eq!(
        Alarm::parse_status_error("member_id:7 alarm:CORRUPT"),
        Some(Alarm { member_id: 7, kind: AlarmKind::Corrupt })
    );
    assert_eq!(Alarm::parse_status_error("etcdserver: no leader"), None);
    assert_eq!(Alarm::parse_status_error("memberID:x alarm:NOSPACE"), None);
    let state = fixtures::degraded();
    assert_eq!(state.active_alarms(), vec![Alarm { member_id: ID2, kind: AlarmKind::Nospace }]);
}

#[test]
fn a_hung_member_is_not_asked_again_and_later_rounds_complete_without_it() {
    let mut state = fixtures::healthy();
    let t0 = Instant::now();
    let first = tick(&mut state, t0);
    // etcd-3 is frozen: its requests stay unanswered; everything else answers.
    let answered: Vec<Effect> = first
        .iter()
        .filter(|e| {
            !matches!(
                e,
                Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
            )
        })
        .cloned()
        .collect();
    update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
    answer_probes(
        &mut state,
        &answered,
        &[(ID1, Some(fixtures::status(ID1, ID1, 7, 1, 1))), (ID2, Some(fixtures::status(ID2, ID1, 7, 1, 1)))],
    );
    assert_eq!(state.refresh.current, Some(1), "round 1 waits for etcd-3");

    let second = tick(&mut state, t0 + Duration::from_secs(2));
    assert!(
        !second.iter().any(|e| matches!(
            e,
            Effect::FetchStatus { member_id: ID3, .. } | Effect::CheckHealth { member_id: ID3, .. }
        )),
        "no second request to the hung member: {second:?}"
    );
    update(&mut state, Input::Msg(Msg::Members { refresh: 2, result: Ok(fixtures::member_list()) }));
    answer_probes(
        &mut state,
        &second,
        &[(ID1, Some(fixtures::status(ID1, ID1, 7, 2, 2))), (ID2, Some(fixtures::status(ID2, ID1, 7, 2, 2)))],
    );
    assert_eq!(state.refresh.completed_id, Some(2), "round 2 completes without the hung member");

    // Its timeout finally arrives (from round 1) and still shows, being newer than what the row had.
    update(
        &mut state,
        Input::Msg(Msg::Status {
            refresh: 1,
            member_id: ID3,
            endpoint: fixtures::endpoint(ID3),
            result: Err("context deadline exceeded (after 5s)".into()),
        }),
    );
    update(&mut state, health_msg(1, ID3, false));
    assert_eq!(crate::app::describe::member_health(state.member(ID3).expect("etcd-3")), "down");
    // And the next round asks it again.
    let third = tick(&mut state, t0 + Duration::from_secs(4));
    assert!(third.iter().any(|e| matches!(e, Effect::FetchStatus { member_id: ID3, .. })));
}

#[test]
fn a_partitioned_member_with_a_higher_term_does_not_hide_the_majoritys_leader() {
    let mut state = fixtures::healthy();
    // etcd-3 is cut off: it runs elections on its own, term 12, knows no leader.
    let mut cut_off = fixtures::status(ID3, 0, 12, 5210, 5210);
    cut_off.errors = vec!["etcdserver: no leader".into()];
    state.members[2].status = Some(Ok(cut_off));
    state.members[2].health = Some(Err("context deadline exceeded".into()));
    assert_eq!(state.leadership(), Leadership::Leader(ID1));
    assert!(state.quorum_holds());
    let problems = state.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0], "member etcd-3 (fd422379fda50e48) reports errors: etcdserver: no leader");
    assert_eq!(problems[1], "member etcd-3 (fd422379fda50e48) is unhealthy: context deadline exceeded");
}

#[test]
fn pressing_refresh_twice_in_one_round_trip_keeps_the_round() {
    let mut state = fixtures::healthy();
    let effects = tick(&mut state, Instant::now());
    assert!(update(&mut state, Input::Action(Action::Refresh)).is_empty(), "everything is in flight");
    assert_eq!(state.refresh.current, Some(1), "round 1 is still the one being completed");
    update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(fixtures::member_list()) }));
    let up = |id| (id, Some(fixtures::status(id, ID1, 7, 1, 1)));
    answer_probes(&mut state, &effects, &[up(ID1), up(ID2), up(ID3)]);
    assert_eq!(state.refresh.completed_id, Some(1));
}

#[test]
fn a_member_whose_client_url_changes_is_probed_at_the_new_one_and_old_replies_are_dropped() {
    let mut state = fixtures::healthy();
    let first = tick(&mut state, Instant::now());
    let mut list = fixtures::member_list();
    list.members[1].client_urls = vec!["http://127.0.0.22:2379".into()];
    let effects = update(&mut state, Input::Msg(Msg::Members { refresh: 1, result: Ok(list) }));
    assert!(
        effects.contains(&Effect::FetchStatus {
            refresh: 1,
            member_id: ID2,
            endpoint: "http://127.0.0.22:2379".into()
        }),
        "the new URL is probed although the old request is still out: {effects:?}"
    );
    // The old URL's reply arrives late: it is not news about the member, and the request to the
    // new URL stays in flight, so the round still waits for it.
    answer_probes(&mut state, &first, &[(ID2, Some(fixtures::status(ID2, ID1, 7, 99, 99)))]);
    assert_eq!(state.member(ID2).and_then(|m| m.status.clone()), None);
    assert!(state.refresh.in_flight.contains(&Pending::Status(ID2)));
    assert!(state.refresh.pending.contains(&Pending::Status(ID2)));
}

#[test]
fn learners_are_checked_with_a_serializable_read() {
    let mut state = fixtures::with_learner_and_unstarted();
    let effects = tick(&mut state, Instant::now());
    let learner_check = effects.iter().find_map(|e| match e {
        Effect::CheckHealth { member_id, serializable, .. } if *member_id == fixtures::ID4 => {
            Some(*serializable)
        }
        _ => None,
    });
    assert_eq!(learner_check, Some(true));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::CheckHealth { member_id: ID1, serializable: false, .. })));
}
