use super::*;
use crate::app::input::Typed;
use crate::app::space::{Group, SpaceReport};

fn typed(state: &mut State, text: &str) -> Vec<Effect> {
    update(state, Input::Action(Action::Command));
    for c in text.chars() {
        update(state, Input::Typed(Typed::Char(c)));
    }
    update(state, Input::Typed(Typed::Enter))
}

fn group(name: &str, subgroups: &[&str]) -> Group {
    let subgroups =
        subgroups.iter().map(|s| Group { name: (*s).into(), keys: 1, ..Group::default() }).collect();
    Group { name: name.into(), keys: 2, subgroups, ..Group::default() }
}

#[test]
fn space_scans_reports_cancels_and_opens_what_it_found() {
    let mut state = fixtures::healthy();
    let effects = typed(&mut state, "space /registry/");
    let [Effect::Space { request, prefix }] = &effects[..] else { panic!("{effects:?}") };
    let (request, prefix) = (*request, prefix.clone());
    assert_eq!((prefix.as_slice(), state.view), (&b"/registry/"[..], View::Space));
    // Reports so far show; a stale one (another request) is dropped.
    let partial = SpaceReport {
        total_keys: 10,
        scanned_keys: 4,
        groups: vec![group("pods", &[])],
        ..SpaceReport::default()
    };
    update(&mut state, Input::Msg(Msg::Space { request, result: Ok(partial.clone()) }));
    update(&mut state, Input::Msg(Msg::Space { request: request + 100, result: Ok(SpaceReport::default()) }));
    let view = state.space.as_ref().expect("the view");
    assert_eq!((view.report.scanned_keys, view.running()), (4, true));
    // Esc while it runs cancels it (and a report after that changes nothing).
    let effects = update(&mut state, Input::Action(Action::Back));
    assert_eq!(effects, vec![Effect::StopSpace { request }]);
    update(
        &mut state,
        Input::Msg(Msg::Space { request, result: Ok(SpaceReport { scanned_keys: 9, ..partial }) }),
    );
    let view = state.space.as_ref().expect("the view");
    assert_eq!(
        (view.stopped.as_deref(), view.report.scanned_keys, state.view),
        (Some("cancelled"), 4, View::Space)
    );
    // r scans again; this time it finishes.
    let effects = update(&mut state, Input::Action(Action::Refresh));
    let [Effect::Space { request, .. }] = effects[..] else { panic!("{effects:?}") };
    let done = SpaceReport {
        done: true,
        groups: vec![group("pods", &["shop", "kube-system"]), group("configmaps", &["shop"])],
        ..SpaceReport::default()
    };
    update(&mut state, Input::Msg(Msg::Space { request, result: Ok(done) }));
    // Enter expands the group; on a namespace it opens its keys as resources.
    update(&mut state, Input::Action(Action::Open));
    let names: Vec<_> =
        state.space.as_ref().expect("view").rows().iter().map(|(d, g)| (*d, g.name.clone())).collect();
    assert_eq!(
        names,
        [(0, "pods".into()), (1, "shop".into()), (1, "kube-system".into()), (0, "configmaps".into())]
    );
    update(&mut state, Input::Action(Action::Down));
    let effects = update(&mut state, Input::Action(Action::Open));
    assert!(
        matches!(&effects[..], [Effect::Keys(KeyRequest::List { prefix, values: true, .. })] if prefix == b"/registry/pods/shop/"),
        "{effects:?}"
    );
    assert_eq!(state.view, View::Keys);
    // Esc on a finished scan leaves for the keys.
    typed(&mut state, "space");
    let request = state.space.as_ref().map(|v| v.request).expect("view");
    update(&mut state, Input::Msg(Msg::Space { request, result: Err("connection refused".into()) }));
    assert_eq!(state.space.as_ref().and_then(|v| v.stopped.clone()).as_deref(), Some("connection refused"));
    assert!(update(&mut state, Input::Action(Action::Back)).is_empty());
    assert_eq!(state.view, View::Keys);
}

#[test]
fn mirror_reads_the_checkpoints_each_round_and_drops_stale_answers() {
    use crate::app::mirrors::MirrorRow;
    let mut state = fixtures::healthy();
    let effects = typed(&mut state, "mirror");
    let [Effect::Mirrors { request: first }] = effects[..] else { panic!("{effects:?}") };
    assert_eq!(state.view, View::Mirror);
    let row = |key: &str| MirrorRow { key: key.into(), mod_revision: 1, checkpoint: Err("not json".into()) };
    // r reads again: the first read's answer is stale and dropped.
    let effects = update(&mut state, Input::Action(Action::Refresh));
    let [Effect::Mirrors { request: second }] = effects[..] else { panic!("{effects:?}") };
    assert_ne!(first, second);
    update(&mut state, Input::Msg(Msg::Mirrors { request: first, result: Ok(vec![row("old")]) }));
    assert!(!state.mirrors.read);
    update(&mut state, Input::Msg(Msg::Mirrors { request: second, result: Ok(vec![row("a"), row("b")]) }));
    assert_eq!(state.mirrors.rows.len(), 2);
    update(&mut state, Input::Action(Action::Down));
    assert_eq!(state.mirrors.selected, 1);
    // A failed read keeps what was read, with the error.
    let effects = update(&mut state, Input::Action(Action::Refresh));
    let [Effect::Mirrors { request: third }] = effects[..] else { panic!("{effects:?}") };
    update(&mut state, Input::Msg(Msg::Mirrors { request: third, result: Err("timed out".into()) }));
    assert_eq!((state.mirrors.rows.len(), state.mirrors.error.as_deref()), (2, Some("timed out")));
    // Each refresh round reads again while the view is open; Esc goes back to the keys.
    let later = state.now.unwrap_or_else(std::time::Instant::now) + std::time::Duration::from_secs(60);
    let effects = update(&mut state, Input::Tick { now: later, wall: fixtures::wall() });
    assert!(effects.iter().any(|e| matches!(e, Effect::Mirrors { .. })), "{effects:?}");
    update(&mut state, Input::Action(Action::Back));
    assert_eq!(state.view, View::Keys);
}
