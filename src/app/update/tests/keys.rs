//! The key browser, typed commands and prompts, pastes, the write dialogs and watch tails.

use std::time::{Duration, Instant};

use super::*;
use crate::app::fixtures::{self};
use crate::app::keys::{KeyPage, Row, ValueInfo, ValueRead};
use crate::app::value_format::ValueFormat;

#[test]
fn the_key_browser_lists_on_first_visit_and_takes_the_movement_keys() {
    let mut state = fixtures::healthy();
    let effects = update(&mut state, Input::Action(Action::SwitchView));
    let list = KeyRequest::List {
        request: 1,
        prefix: vec![],
        start: vec![0],
        revision: 0,
        tree: None,
        values: false,
    };
    assert_eq!(effects, vec![Effect::Keys(list)]);
    assert_eq!(state.view, View::Keys);
    let page = KeyPage { rows: vec![Row::key(&b"a"[..]), Row::key(&b"b"[..])], more: false, revision: 7 };
    let count = KeyRequest::Count { request: 2, prefix: vec![], revision: 7 };
    assert_eq!(
        update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) })),
        vec![Effect::Keys(count)]
    );
    update(&mut state, Input::Action(Action::Down));
    assert_eq!((state.keys.selected, state.selected), (1, 0), "the browser moves, the members table not");
    let effects = update(&mut state, Input::Action(Action::Open));
    assert_eq!(effects, vec![Effect::Keys(KeyRequest::Value { request: 3, key: b"b".to_vec() })]);
    update(&mut state, Input::Action(Action::Back));
    assert_eq!(state.keys.value, None);
    assert!(update(&mut state, Input::Action(Action::SwitchView)).is_empty());
    assert_eq!(state.view, View::Members);
    assert!(
        update(&mut state, Input::Action(Action::SwitchView)).is_empty(),
        "listed already: no new listing"
    );
    let effects = update(&mut state, Input::Action(Action::Refresh));
    let relist = KeyRequest::List {
        request: 4,
        prefix: vec![],
        start: vec![0],
        revision: 0,
        tree: None,
        values: false,
    };
    assert_eq!(
        effects,
        vec![Effect::Keys(relist)],
        "refresh in the browser lists again at the newest revision"
    );
}

#[test]
fn ctx_lists_the_saved_contexts_and_asks_to_switch_to_a_known_one() {
    let mut state = fixtures::healthy();
    let run = |state: &mut State, text: &str| {
        update(state, Input::Action(Action::Command));
        for c in text.chars() {
            update(state, Input::Typed(Typed::Char(c)));
        }
        update(state, Input::Typed(Typed::Enter))
    };
    assert!(run(&mut state, "ctx").is_empty());
    assert!(
        state.notice.as_deref().is_some_and(|n| n.starts_with("no saved contexts")),
        "{:?}",
        state.notice
    );
    state.contexts = vec!["lab".into(), "prod".into()];
    state.context =
        Some(crate::app::connection::ContextMark { name: "prod".into(), color: None, banner: None });
    run(&mut state, "ctx");
    assert_eq!(state.notice.as_deref(), Some("contexts: lab, prod (current) (:ctx NAME switches)"));
    assert!(run(&mut state, "ctx prod").is_empty());
    assert_eq!(state.notice.as_deref(), Some("already on context prod"));
    assert!(run(&mut state, "ctx qa").is_empty());
    assert_eq!(state.notice.as_deref(), Some("✗ unknown context \"qa\" (contexts: lab, prod)"));
    assert_eq!(run(&mut state, "ctx lab"), vec![Effect::SwitchContext { name: "lab".into() }]);
    state.demo = true;
    assert!(run(&mut state, "ctx lab").is_empty(), "the demo stays on its cluster");
}

#[test]
fn typed_commands_and_searches_open_the_browser_or_the_members() {
    let mut state = fixtures::healthy();
    let typed = |state: &mut State, text: &str| {
        for c in text.chars() {
            update(state, Input::Typed(Typed::Char(c)));
        }
        update(state, Input::Typed(Typed::Enter))
    };
    update(&mut state, Input::Action(Action::Command));
    let effects = typed(&mut state, "keys /registry/");
    let list = KeyRequest::List {
        request: 1,
        prefix: b"/registry/".to_vec(),
        start: b"/registry/".to_vec(),
        revision: 0,
        tree: None,
        values: false,
    };
    assert_eq!(effects, vec![Effect::Keys(list)]);
    assert_eq!((state.view, state.input.clone()), (View::Keys, None));
    // :k8s lists /registry/ flat, each row with what its value holds; :keys goes back to keys.
    update(&mut state, Input::Action(Action::Tree));
    update(&mut state, Input::Action(Action::Command));
    let effects = typed(&mut state, "k8s");
    assert!(
        matches!(&effects[..], [Effect::Keys(KeyRequest::List { prefix, tree: None, values: true, .. })] if prefix == b"/registry/"),
        "{effects:?}"
    );
    update(&mut state, Input::Action(Action::Command));
    let effects = typed(&mut state, "keys /registry/pods/");
    assert!(matches!(&effects[..], [Effect::Keys(KeyRequest::List { values: false, .. })]), "{effects:?}");
    update(&mut state, Input::Action(Action::Search));
    update(&mut state, Input::Typed(Typed::Char('x')));
    update(&mut state, Input::Typed(Typed::Backspace));
    let effects = typed(&mut state, "a/");
    assert!(matches!(&effects[..], [Effect::Keys(KeyRequest::List { prefix, .. })] if prefix == b"a/"));
    update(&mut state, Input::Action(Action::Command));
    assert!(typed(&mut state, "members").is_empty());
    assert_eq!(state.view, View::Members);
    update(&mut state, Input::Action(Action::Command));
    typed(&mut state, "bogus");
    assert_eq!(
        state.notice.as_deref(),
        Some(
            "unknown command :bogus (commands: :keys <prefix>, :k8s [prefix], :space [prefix], :mirror, \
             :watch <prefix> [revision], :members, :sep <separator>, :ctx [name], :auth (users and roles))"
        )
    );
    update(&mut state, Input::Action(Action::Search));
    update(&mut state, Input::Typed(Typed::Esc));
    assert_eq!(state.input, None, "Esc abandons the line");
}

#[test]
fn backspace_on_an_empty_prompt_keeps_it_open_and_the_letters_after_stay_text() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::Command));
    update(&mut state, Input::Typed(Typed::Char('k')));
    update(&mut state, Input::Typed(Typed::Backspace));
    update(&mut state, Input::Typed(Typed::Backspace));
    assert!(state.input.is_some(), "backspace on an empty line does not close it");
    type_text(&mut state, "q");
    assert!(!state.should_quit, "q after it is text, not quit");
    assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("q"));
    update(&mut state, Input::Typed(Typed::Esc));
    assert_eq!(state.input, None, "only Esc closes it");
}

#[test]
fn a_paste_is_text_for_the_open_line_and_nothing_without_one() {
    let mut state = fixtures::healthy();
    // No line open: nothing runs, nothing opens.
    let effects = update(&mut state, Input::Pasted("\r:q\ryy\n".into()));
    assert!(effects.is_empty());
    assert!(!state.should_quit && state.input.is_none() && state.member_dialog().is_none());
    assert!(state.notice.as_deref().is_some_and(|n| n.starts_with("paste ignored")), "{:?}", state.notice);
    // A line open: one insertion, newlines and all, nothing entered.
    update(&mut state, Input::Action(Action::Command));
    assert!(update(&mut state, Input::Pasted("keys a\ny\r:q".into())).is_empty());
    assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("keys a\ny\n:q"));
    assert_eq!(state.view, View::Members);
    // A question open: dropped.
    let mut state = with_value_open();
    update(&mut state, Input::Action(Action::Delete));
    assert!(state.key_dialog().is_some());
    assert!(update(&mut state, Input::Pasted("y\r".into())).is_empty());
    assert!(
        matches!(state.key_dialog(), Some(Dialog::Confirm { .. })),
        "still asking: {:?}",
        state.key_dialog()
    );
}

fn type_text(state: &mut State, text: &str) {
    for c in text.chars() {
        update(state, Input::Typed(Typed::Char(c)));
    }
}

fn enter(state: &mut State) -> Vec<Effect> {
    update(state, Input::Typed(Typed::Enter))
}

/// The browser on two keys with the value of "k" (mod revision 5) on screen.
fn with_value_open() -> State {
    with_this_value_open(b"v1")
}

fn with_this_value_open(value: &[u8]) -> State {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::SwitchView));
    let page = KeyPage { rows: vec![Row::key(&b"k"[..]), Row::key(&b"z"[..])], more: false, revision: 7 };
    update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
    let effects = update(&mut state, Input::Action(Action::Open));
    let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
        panic!("{effects:?}")
    };
    let info = info(value, 5);
    update(&mut state, Input::Msg(Msg::Value { request, result: Ok(Some(ValueRead::new(info, None))) }));
    state
}

#[test]
fn a_kubernetes_object_is_not_edited_until_the_pane_shows_its_stored_bytes() {
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "default"}});
    let stored = crate::etcd::k8s::encode::encode_stored(&pod).expect("encode");
    let mut state = with_this_value_open(&stored);
    assert_eq!(state.keys.value.as_ref().and_then(|p| p.shown_format()), Some(ValueFormat::Yaml));
    for action in [Action::Edit, Action::EditExternal] {
        state.notice = None;
        assert!(update(&mut state, Input::Action(action)).is_empty(), "{action:?}");
        assert_eq!(state.input, None);
        let notice = state.notice.clone().unwrap_or_default();
        assert!(notice.contains("kube-apiserver's Pod default/web-0, and the apiserver owns it"), "{notice}");
    }
    // yaml → text: the stored bytes, which the user may change on purpose.
    update(&mut state, Input::Action(Action::Format));
    assert_eq!(state.keys.value.as_ref().and_then(|p| p.shown_format()), Some(ValueFormat::Text));
    let effects = update(&mut state, Input::Action(Action::Edit));
    assert!(matches!(&effects[..], [Effect::Editor { value, .. }] if *value == stored), "{effects:?}");
    // Reveal means nothing outside a Secret, and says so.
    update(&mut state, Input::Action(Action::Reveal));
    assert!(state.notice.as_deref().unwrap_or_default().contains("open a Secret first"));
}

#[test]
fn the_value_pane_follows_the_cursor_and_says_when_its_key_is_gone() {
    let mut state = with_value_open();
    let effects = update(&mut state, Input::Action(Action::Down));
    let [Effect::Keys(KeyRequest::Value { request, key })] = &effects[..] else { panic!("{effects:?}") };
    assert_eq!(key, b"z");
    let pane = state.keys.value.as_ref().expect("still open");
    assert_eq!((pane.key.as_slice(), &pane.result), (&b"z"[..], &None), "the old value is not shown for z");
    let request = *request;
    update(&mut state, Input::Msg(Msg::Value { request, result: Ok(None) }));
    // Each refresh round reads the open value again: deleted elsewhere, it says so; a failed
    // read keeps what was read last, marked.
    let mut state = with_value_open();
    let t0 = Instant::now();
    let effects = tick(&mut state, t0);
    let reread = effects.iter().find_map(|e| match e {
        Effect::Keys(KeyRequest::Value { request, key }) if key == b"k" => Some(*request),
        _ => None,
    });
    let reread = reread.expect("the value is read again with the round");
    update(&mut state, Input::Msg(Msg::Value { request: reread, result: Err("unavailable".into()) }));
    let pane = state.keys.value.as_ref().expect("open");
    assert!(pane.info().is_some() && pane.stale.as_deref() == Some("unavailable"), "{pane:?}");
    let effects = tick(&mut state, t0 + Duration::from_secs(3));
    let reread = effects
        .iter()
        .find_map(|e| match e {
            Effect::Keys(KeyRequest::Value { request, .. }) => Some(*request),
            _ => None,
        })
        .expect("read again next round");
    update(&mut state, Input::Msg(Msg::Value { request: reread, result: Ok(None) }));
    let pane = state.keys.value.as_ref().expect("open");
    assert_eq!((&pane.result, &pane.stale), (&Some(Ok(None)), &None), "deleted elsewhere");
}

#[test]
fn a_failed_listing_is_tried_again_with_backoff_and_says_when_it_last_worked() {
    let mut state = fixtures::healthy();
    let t0 = Instant::now();
    update(&mut state, Input::Action(Action::SwitchView));
    let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
    update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
    assert_eq!(state.keys.listed_at, Some(fixtures::wall()));
    let relist = |state: &mut State, at: Instant| -> Option<u64> {
        tick(state, at).iter().find_map(|e| match e {
            Effect::Keys(KeyRequest::List { request, .. }) => Some(*request),
            _ => None,
        })
    };
    // The endpoint goes away: a refresh fails.
    update(&mut state, Input::Action(Action::Refresh));
    let (request, _) = state.keys.loading.expect("listing");
    update(&mut state, Input::Msg(Msg::KeyPage { request, result: Err("connection refused".into()) }));
    assert!(relist(&mut state, t0).is_none(), "not at once");
    assert!(relist(&mut state, t0 + Duration::from_millis(900)).is_none());
    let again = relist(&mut state, t0 + Duration::from_millis(1000)).expect("after 1 s");
    update(&mut state, Input::Msg(Msg::KeyPage { request: again, result: Err("connection refused".into()) }));
    assert!(relist(&mut state, t0 + Duration::from_millis(2900)).is_none(), "then 2 s");
    let again = relist(&mut state, t0 + Duration::from_millis(3000)).expect("after 2 s more");
    assert_eq!(state.keys.listed_at, Some(fixtures::wall()), "the last success is kept");
    // It comes back: the listing is whole again and the waits start over.
    let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 9 };
    update(&mut state, Input::Msg(Msg::KeyPage { request: again, result: Ok(page) }));
    assert_eq!((state.keys.error.as_ref(), state.keys.retry), (None, None));
    assert_eq!(state.keys.known, 1);
}

fn info(value: &[u8], mod_revision: i64) -> ValueInfo {
    ValueInfo {
        key: b"k".to_vec(),
        value: value.to_vec(),
        create_revision: 2,
        mod_revision,
        version: 1,
        lease: 0,
    }
}

/// Edits the open value to "v1-mine", confirms, and answers the write with a conflict: someone
/// else wrote "theirs" at revision 6 meanwhile.
fn edit_into_a_conflict(state: &mut State) {
    update(state, Input::Action(Action::Edit));
    type_text(state, "-mine");
    enter(state);
    let (request, _) = written(&update(state, Input::Typed(Typed::Enter)));
    let conflict = Ok(WriteOutcome::Conflict { current: Some(info(b"theirs", 6)) });
    update(state, Input::Msg(Msg::Written { request, result: conflict }));
}

fn written(effects: &[Effect]) -> (u64, Write) {
    match effects {
        [Effect::Write { request, write }] => (*request, write.clone()),
        other => panic!("expected one write: {other:?}"),
    }
}

#[test]
fn an_inline_edit_is_confirmed_with_a_diff_and_compares_the_revision_seen() {
    let mut state = with_value_open();
    update(&mut state, Input::Action(Action::Edit));
    assert_eq!(state.input.as_ref().map(|l| l.text.as_str()), Some("v1"), "the line starts with the value");
    update(&mut state, Input::Typed(Typed::Backspace));
    type_text(&mut state, "2");
    assert!(enter(&mut state).is_empty(), "nothing is written before the confirmation");
    let Some(Dialog::Confirm { diff, .. }) = state.key_dialog() else { panic!("{:?}", state.key_dialog()) };
    assert_eq!(
        diff,
        &vec![
            crate::app::value_format::DiffLine::Removed("v1".into()),
            crate::app::value_format::DiffLine::Added("v2".into())
        ]
    );
    let (request, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
    assert_eq!(
        write,
        Write::Put { key: b"k".to_vec(), value: b"v2".to_vec(), expect: 5, lease: LeaseChoice::Keep }
    );
    let done = Ok(WriteOutcome::Done { revision: 8, lease: None, deleted: 0 });
    let effects = update(&mut state, Input::Msg(Msg::Written { request, result: done }));
    assert_eq!(state.key_dialog(), None);
    assert_eq!(state.notice.as_deref(), Some("✓ update k at revision 8 · etcdctl put --ignore-lease k v2"));
    assert_eq!(effects.len(), 2, "the listing and the value are read again: {effects:?}");
}

#[test]
fn a_conflict_shows_both_versions_and_overwrites_only_when_asked() {
    let mut state = with_value_open();
    edit_into_a_conflict(&mut state);
    let Some(Dialog::Conflict { seen, current, .. }) = state.key_dialog() else {
        panic!("{:?}", state.key_dialog())
    };
    assert_eq!(seen.as_deref(), Some(&b"v1"[..]));
    assert_eq!(current.as_ref().map(|c| c.mod_revision), Some(6));
    // n keeps theirs, and reads the key again.
    let effects = update(&mut state, Input::Typed(Typed::Char('n')));
    assert_eq!(state.key_dialog(), None);
    assert!(matches!(&effects[..], [Effect::Keys(crate::app::keys::KeyRequest::Value { .. })]));
    // The same again, and y writes against revision 6 now.
    let request = state.ids.last();
    let reread = Ok(Some(ValueRead::new(info(b"v1", 5), None)));
    update(&mut state, Input::Msg(Msg::Value { request, result: reread }));
    edit_into_a_conflict(&mut state);
    let (_, retry) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
    assert_eq!(
        retry,
        Write::Put { key: b"k".to_vec(), value: b"v1-mine".to_vec(), expect: 6, lease: LeaseChoice::Keep }
    );
}

#[test]
fn a_prefix_delete_counts_then_needs_the_prefix_typed() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::Command));
    type_text(&mut state, "keys /svc/");
    enter(&mut state);
    let effects = update(&mut state, Input::Action(Action::DeletePrefix));
    let [Effect::CountPrefix { request, ref prefix }] = effects[..] else { panic!("{effects:?}") };
    assert_eq!(prefix, b"/svc/");
    update(&mut state, Input::Msg(Msg::PrefixCount { request, result: Ok((3, 40)) }));
    type_text(&mut state, "/svc");
    assert!(enter(&mut state).is_empty(), "a partial prefix does not confirm");
    assert!(state.notice.as_deref().is_some_and(|n| n.contains("type /svc/ exactly")));
    type_text(&mut state, "/");
    let (request, write) = written(&enter(&mut state));
    assert_eq!(write, Write::DeletePrefix { prefix: b"/svc/".to_vec(), count: 3, revision: 40 });
    // A key was added meanwhile: nothing deleted, and the count is offered again.
    update(
        &mut state,
        Input::Msg(Msg::Written { request, result: Ok(WriteOutcome::PrefixChanged { count: 4 }) }),
    );
    assert_eq!(state.key_dialog(), Some(&Dialog::PrefixChanged { prefix: b"/svc/".to_vec(), count: 4 }));
    let effects = update(&mut state, Input::Typed(Typed::Char('y')));
    assert!(matches!(&effects[..], [Effect::CountPrefix { .. }]));
    // An empty prefix must be confirmed with words, not an empty line.
    assert_eq!(edit::typed_confirmation(b""), "ALL KEYS");
}

#[test]
fn creating_a_key_walks_key_value_and_lease_and_refuses_bad_leases() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::SwitchView));
    update(&mut state, Input::Action(Action::New));
    type_text(&mut state, "/new");
    enter(&mut state);
    type_text(&mut state, "hello");
    enter(&mut state);
    type_text(&mut state, "forever");
    enter(&mut state);
    assert!(state.notice.as_deref().is_some_and(|n| n.contains("bad lease")), "{:?}", state.notice);
    assert!(
        matches!(state.input.as_ref().map(|l| &l.prompt), Some(Prompt::NewLease { .. })),
        "the line stays"
    );
    for _ in 0.."forever".len() {
        update(&mut state, Input::Typed(Typed::Backspace));
    }
    type_text(&mut state, "30s");
    enter(&mut state);
    let (_, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
    assert_eq!(
        write,
        Write::Put {
            key: b"/new".to_vec(),
            value: b"hello".to_vec(),
            expect: 0,
            lease: LeaseChoice::New { ttl: 30 }
        }
    );
}

#[test]
fn read_only_refuses_every_write_before_asking() {
    let mut state = with_value_open();
    state.read_only = Some("--read-only".into());
    for action in [Action::Edit, Action::EditExternal, Action::Delete, Action::DeletePrefix, Action::New] {
        state.notice = None;
        assert!(update(&mut state, Input::Action(action)).is_empty(), "{action:?}");
        assert_eq!(state.key_dialog(), None);
        assert_eq!(state.input, None);
        assert_eq!(state.notice.as_deref(), Some("read-only (--read-only): writes are disabled"));
    }
}

#[test]
fn a_delete_asked_for_before_the_value_arrives_confirms_once_it_does() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::SwitchView));
    let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
    update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
    let effects = update(&mut state, Input::Action(Action::Delete));
    let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(state.key_dialog(), None);
    update(
        &mut state,
        Input::Msg(Msg::Value { request, result: Ok(Some(ValueRead::new(info(b"v", 5), None))) }),
    );
    let Some(Dialog::Confirm { write, .. }) = state.key_dialog() else { panic!("{:?}", state.key_dialog()) };
    assert_eq!(write, &Write::Delete { key: b"k".to_vec(), expect: 5 });
    update(&mut state, Input::Typed(Typed::Esc));
    assert_eq!(state.notice.as_deref(), Some("cancelled: delete k"));
}

#[test]
fn watch_commands_open_tails_and_a_compacted_start_restarts_at_the_compact_revision() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::Command));
    type_text(&mut state, "watch /svc/ 12");
    let effects = enter(&mut state);
    assert_eq!(
        effects,
        vec![Effect::Watch { tail: 1, prefix: b"/svc/".to_vec(), is_prefix: true, start: 12 }]
    );
    assert_eq!(state.view, View::Watch);
    let status = TailStatus::Compacted {
        error: "etcdserver: mvcc: required revision has been compacted".into(),
        compact_revision: 30,
    };
    update(
        &mut state,
        Input::Msg(Msg::Watch {
            tail: 1,
            report: crate::app::watch::WatchReport::Status(status),
            ack: Default::default(),
        }),
    );
    let effects = update(&mut state, Input::Action(Action::Open));
    assert_eq!(
        effects,
        vec![
            Effect::StopWatch { tail: 1 },
            Effect::Watch { tail: 2, prefix: b"/svc/".to_vec(), is_prefix: true, start: 30 }
        ]
    );
    // A report of the stopped tail is dropped.
    let late = crate::app::watch::WatchReport::Status(TailStatus::Failed("gone".into()));
    update(&mut state, Input::Msg(Msg::Watch { tail: 1, report: late, ack: Default::default() }));
    assert_eq!(state.watch.as_ref().map(|t| t.status.clone()), Some(TailStatus::Starting));
}

#[test]
fn a_value_that_arrives_while_the_user_types_something_else_opens_no_dialog() {
    let mut state = fixtures::healthy();
    update(&mut state, Input::Action(Action::SwitchView));
    let page = KeyPage { rows: vec![Row::key(&b"k"[..])], more: false, revision: 7 };
    update(&mut state, Input::Msg(Msg::KeyPage { request: 1, result: Ok(page) }));
    let effects = update(&mut state, Input::Action(Action::Delete));
    let [Effect::Keys(crate::app::keys::KeyRequest::Value { request, .. })] = effects[..] else {
        panic!("{effects:?}")
    };
    // The user moved on to typing a new key before the value came.
    update(&mut state, Input::Action(Action::New));
    let read = Ok(Some(ValueRead::new(info(b"v", 5), None)));
    update(&mut state, Input::Msg(Msg::Value { request, result: read }));
    assert_eq!(state.key_dialog(), None, "no delete dialog under the line being typed");
    assert!(matches!(state.input.as_ref().map(|l| &l.prompt), Some(Prompt::NewKey)));
}

#[test]
fn only_a_deliberate_y_overwrites_after_a_conflict() {
    let mut state = with_value_open();
    edit_into_a_conflict(&mut state);
    assert!(update(&mut state, Input::Typed(Typed::Enter)).is_empty(), "Enter does not overwrite");
    assert!(matches!(state.key_dialog(), Some(Dialog::Conflict { .. })));
    let (_, write) = written(&update(&mut state, Input::Typed(Typed::Char('y'))));
    assert!(matches!(write, Write::Put { expect: 6, .. }));
}

#[test]
fn a_write_acts_on_the_selected_key_not_on_an_older_pane() {
    let mut state = with_value_open(); // "k" is open; "z" is the next row.
    update(&mut state, Input::Action(Action::Down));
    let effects = update(&mut state, Input::Action(Action::Delete));
    assert!(
        matches!(&effects[..], [Effect::Keys(crate::app::keys::KeyRequest::Value { key, .. })] if key == b"z"),
        "the selected key is read first: {effects:?}"
    );
    assert_eq!(state.key_dialog(), None);
}
