//! The console's writes and watch tails against real etcd and an etcdeck node, driven as the
//! console drives them (actions and typed keys through `update`, effects run by the workers), with
//! other clients changing keys meanwhile.

use std::time::Duration;

use etcd_client::{Client, GetOptions};
use etcdeck::app::action::Action;
use etcdeck::app::connection::ConnectConfig;
use etcdeck::app::edit::Dialog;
use etcdeck::app::runtime::Runtime;
use etcdeck::app::state::State;
use etcdeck::app::update::{Input, Typed};
use etcdeck::app::watch::{EventKind, TailStatus};

use crate::node_kv::TestNode;
use crate::support::{etcd_tools, EtcdCluster};

const LIMIT: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_millis(20);

fn runtime(endpoints: &[String]) -> Runtime {
    let config = ConnectConfig::plain(endpoints).expect("config");
    Runtime::new(config, Duration::from_secs(3600))
}

fn act(rt: &mut Runtime, action: Action) {
    rt.apply(Input::Action(action));
}

fn typed(rt: &mut Runtime, text: &str) {
    for c in text.chars() {
        rt.apply(Input::Typed(Typed::Char(c)));
    }
}

fn key(rt: &mut Runtime, key: Typed) {
    rt.apply(Input::Typed(key));
}

async fn until(rt: &mut Runtime, what: &str, done: impl FnMut(&State) -> bool) {
    if !rt.run_until(LIMIT, TICK, done).await {
        panic!(
            "waited {LIMIT:?} for {what}; notice {:?}, dialog {:?}, keys error {:?}",
            rt.state.notice,
            rt.state.key_dialog(),
            rt.state.keys.error
        );
    }
}

async fn get(client: &mut Client, k: &str) -> Option<(String, i64)> {
    let resp = client.get(k, None).await.expect("get");
    resp.kvs().first().map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
}

/// Browse, edit with a concurrent change (the conflict is shown, nothing is overwritten until the
/// user says so), create with a lease, delete a key, delete a prefix with its typed confirmation,
/// and a read-only console that writes nothing.
async fn edit_session(endpoint: String) {
    let mut other = etcdeck::app::client::connect(
        &ConnectConfig::plain(std::slice::from_ref(&endpoint)).unwrap(),
        &endpoint,
    )
    .await
    .expect("a second client");
    for (k, v) in [("/e/a", "one"), ("/e/b", "x"), ("/e/c", "y"), ("/f/keep", "z")] {
        other.put(k, v, None).await.expect("seed");
    }
    let mut rt = runtime(std::slice::from_ref(&endpoint));
    act(&mut rt, Action::Command);
    typed(&mut rt, "keys /e/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the listing", |s| s.keys.known == 3 && s.keys.count == Some(3)).await;

    // Edit /e/a: the value seen is "one"; someone else writes "theirs" before the user confirms.
    act(&mut rt, Action::Open);
    until(&mut rt, "the value", |s| s.keys.value.as_ref().and_then(|p| p.info()).is_some()).await;
    act(&mut rt, Action::Edit);
    for _ in 0.."one".len() {
        key(&mut rt, Typed::Backspace);
    }
    typed(&mut rt, "two");
    key(&mut rt, Typed::Enter);
    assert!(matches!(rt.state.key_dialog(), Some(Dialog::Confirm { .. })), "{:?}", rt.state.key_dialog());
    other.put("/e/a", "theirs", None).await.expect("concurrent put");
    key(&mut rt, Typed::Char('y'));
    until(&mut rt, "the conflict", |s| matches!(s.key_dialog(), Some(Dialog::Conflict { .. }))).await;
    let Some(Dialog::Conflict { seen, current, .. }) = rt.state.key_dialog().cloned() else { unreachable!() };
    assert_eq!(seen.as_deref(), Some(&b"one"[..]));
    assert_eq!(current.map(|c| c.value), Some(b"theirs".to_vec()));
    assert_eq!(get(&mut other, "/e/a").await.map(|v| v.0).as_deref(), Some("theirs"), "not overwritten");
    // The user chooses to write theirs over.
    key(&mut rt, Typed::Char('y'));
    until(&mut rt, "the write", |s| s.key_dialog().is_none() && s.notice.is_some()).await;
    assert_eq!(
        rt.state.notice.as_deref().map(|n| n.split(" at revision").next().unwrap_or_default()),
        Some("✓ update /e/a"),
        "{:?}",
        rt.state.notice
    );
    assert!(rt.state.notice.as_deref().is_some_and(|n| n.ends_with("· etcdctl put --ignore-lease /e/a two")));
    assert_eq!(get(&mut other, "/e/a").await.map(|v| v.0).as_deref(), Some("two"));

    // Create a key with a new lease.
    act(&mut rt, Action::Back);
    act(&mut rt, Action::New);
    typed(&mut rt, "new");
    key(&mut rt, Typed::Enter);
    typed(&mut rt, "fresh value");
    key(&mut rt, Typed::Enter);
    typed(&mut rt, "60");
    key(&mut rt, Typed::Enter);
    key(&mut rt, Typed::Char('y'));
    until(&mut rt, "the create", |s| {
        s.key_dialog().is_none() && s.notice.as_deref().is_some_and(|n| n.starts_with('✓'))
    })
    .await;
    let (value, lease) = get(&mut other, "/e/new").await.expect("created");
    assert_eq!(value, "fresh value");
    assert_ne!(lease, 0, "attached to the new lease");
    let ttl = other.lease_time_to_live(lease, None).await.expect("ttl").ttl();
    assert!((1..=60).contains(&ttl), "TTL {ttl}");
    assert!(
        rt.state.notice.as_deref().is_some_and(|n| n.contains(&format!(
            "etcdctl lease grant 60 && etcdctl put --lease={lease:x} /e/new 'fresh value'"
        ))),
        "{:?}",
        rt.state.notice
    );
    // Creating it again is refused: it exists now (the create compares mod_revision 0).
    act(&mut rt, Action::New);
    typed(&mut rt, "new");
    key(&mut rt, Typed::Enter);
    typed(&mut rt, "again");
    key(&mut rt, Typed::Enter);
    key(&mut rt, Typed::Enter);
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the conflict on create", |s| matches!(s.key_dialog(), Some(Dialog::Conflict { .. })))
        .await;
    key(&mut rt, Typed::Esc);
    assert_eq!(get(&mut other, "/e/new").await.map(|v| v.0).as_deref(), Some("fresh value"));

    // Delete /e/b (the listing was read again after the writes; /e/b is row 1).
    until(&mut rt, "the new listing", |s| s.keys.known == 4 && s.keys.loading.is_none()).await;
    act(&mut rt, Action::Back);
    act(&mut rt, Action::Top);
    act(&mut rt, Action::Down);
    assert_eq!(rt.state.keys.key_at(1).map(|k| k.as_slice()), Some(&b"/e/b"[..]));
    act(&mut rt, Action::Delete);
    until(&mut rt, "the delete confirmation", |s| matches!(s.key_dialog(), Some(Dialog::Confirm { .. })))
        .await;
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the delete", |s| s.key_dialog().is_none() && s.notice.is_some()).await;
    assert!(rt
        .state
        .notice
        .as_deref()
        .is_some_and(|n| n.starts_with("✓ delete /e/b") && n.ends_with("etcdctl del /e/b")));
    assert_eq!(get(&mut other, "/e/b").await, None);

    // Delete the prefix: counted, then typed.
    until(&mut rt, "the listing after the delete", |s| s.keys.known == 3 && s.keys.loading.is_none()).await;
    act(&mut rt, Action::DeletePrefix);
    until(&mut rt, "the count", |s| matches!(s.key_dialog(), Some(Dialog::Confirm { typed: Some(_), .. })))
        .await;
    typed(&mut rt, "/e");
    key(&mut rt, Typed::Enter);
    assert!(
        matches!(rt.state.key_dialog(), Some(Dialog::Confirm { .. })),
        "a partial prefix does not delete"
    );
    typed(&mut rt, "/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the prefix delete", |s| s.key_dialog().is_none() && s.notice.is_some()).await;
    assert!(
        rt.state.notice.as_deref().is_some_and(
            |n| n.starts_with("✓ deleted 3 keys under /e/") && n.ends_with("etcdctl del --prefix /e/")
        ),
        "{:?}",
        rt.state.notice
    );
    let left =
        other.get("/e/", Some(GetOptions::new().with_prefix().with_count_only())).await.expect("count");
    assert_eq!(left.count(), 0);
    assert!(get(&mut other, "/f/keep").await.is_some(), "other prefixes untouched");

    // A prefix delete whose keys change between the count and the confirmation deletes nothing.
    other.put("/g/1", "a", None).await.expect("put");
    act(&mut rt, Action::Command);
    typed(&mut rt, "keys /g/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the /g/ listing", |s| s.keys.known == 1).await;
    act(&mut rt, Action::DeletePrefix);
    until(&mut rt, "the count", |s| matches!(s.key_dialog(), Some(Dialog::Confirm { typed: Some(_), .. })))
        .await;
    other.put("/g/2", "added meanwhile", None).await.expect("put");
    typed(&mut rt, "/g/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the refusal", |s| matches!(s.key_dialog(), Some(Dialog::PrefixChanged { count: 2, .. })))
        .await;
    key(&mut rt, Typed::Esc);
    let left =
        other.get("/g/", Some(GetOptions::new().with_prefix().with_count_only())).await.expect("count");
    assert_eq!(left.count(), 2, "nothing deleted");

    // Read-only: every write is refused before anything is sent.
    let mut config = ConnectConfig::plain(std::slice::from_ref(&endpoint)).unwrap();
    config.set_read_only(true, &[]);
    let mut ro = Runtime::new(config, Duration::from_secs(3600));
    act(&mut ro, Action::Command);
    typed(&mut ro, "keys /g/");
    key(&mut ro, Typed::Enter);
    until(&mut ro, "the read-only listing", |s| s.keys.known == 2).await;
    act(&mut ro, Action::Delete);
    act(&mut ro, Action::DeletePrefix);
    assert_eq!(ro.state.notice.as_deref(), Some("read-only (--read-only): writes are disabled"));
    assert_eq!(ro.state.key_dialog(), None);
    let left =
        other.get("/g/", Some(GetOptions::new().with_prefix().with_count_only())).await.expect("count");
    assert_eq!(left.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_against_etcd_guards_every_write() {
    let Some(tools) = etcd_tools() else { return };
    let cluster = EtcdCluster::start(&tools, 1);
    cluster.wait_healthy(Duration::from_secs(20));
    edit_session(cluster.members[0].client_url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_against_an_etcdeck_node_guards_every_write() {
    let node = TestNode::start().await;
    edit_session(node.url.clone()).await;
    node.stop().await;
}

/// A prefix tail on a 3-member cluster through two of its members; the member it watches through
/// is killed mid-stream. Every event arrives exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_tail_survives_its_endpoint_dying_without_losing_or_repeating_events() {
    let Some(tools) = etcd_tools() else { return };
    let mut cluster = EtcdCluster::start(&tools, 3);
    cluster.wait_healthy(Duration::from_secs(30));
    let urls = cluster.client_urls();
    // The console watches through member 2 first, then member 3; writes go through member 1.
    let mut rt = runtime(&[urls[1].clone(), urls[2].clone()]);
    let writer_url = urls[0].clone();
    act(&mut rt, Action::Command);
    typed(&mut rt, "watch /w/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the watch to start", |s| {
        matches!(s.watch.as_ref().map(|t| &t.status), Some(TailStatus::Watching { .. }))
    })
    .await;

    const N: usize = 400;
    let writer = tokio::spawn(async move {
        let config = ConnectConfig::plain(std::slice::from_ref(&writer_url)).unwrap();
        let mut client = etcdeck::app::client::connect(&config, &writer_url).await.expect("writer");
        for i in 0..N {
            // A put may fail while a new leader is elected; it may also have landed. Retry only
            // if it did not, so each key is written once.
            let key = format!("/w/{i:04}");
            while client.put(key.clone(), format!("v{i}"), None).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if client.get(key.clone(), None).await.is_ok_and(|r| !r.kvs().is_empty()) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let mut killed = false;
    let mut saw_reconnect = false;
    let done = rt
        .run_until(Duration::from_secs(60), TICK, |s| {
            let Some(tail) = s.watch.as_ref() else { return false };
            if matches!(tail.status, TailStatus::Reconnecting { .. }) {
                saw_reconnect = true;
            }
            if !killed && tail.received >= (N / 4) as u64 {
                cluster.kill(1);
                killed = true;
            }
            tail.received >= N as u64
        })
        .await;
    writer.await.expect("writer");
    // Anything repeated would arrive late: give it a moment.
    rt.run_until(Duration::from_millis(500), TICK, |_| false).await;
    let tail = rt.state.watch.as_ref().expect("tail");
    assert!(done, "received {} of {N} events; status {:?}", tail.received, tail.status);
    assert!(killed && saw_reconnect, "the endpoint died mid-stream and the tail reconnected");
    assert!(matches!(tail.status, TailStatus::Watching { .. }), "{:?}", tail.status);
    assert_eq!(tail.dropped, 0);
    let keys: Vec<String> =
        tail.events.iter().map(|(_, e)| String::from_utf8_lossy(&e.key).into_owned()).collect();
    let expected: Vec<String> = (0..N).map(|i| format!("/w/{i:04}")).collect();
    assert_eq!(keys.len(), N, "no event repeated");
    assert_eq!(keys, expected, "every event once, in order");
    assert!(tail.events.iter().all(|(_, e)| e.kind == EventKind::Put && e.prev.is_none()));
    let revisions: Vec<i64> = tail.events.iter().map(|(_, e)| e.mod_revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]));
}

/// A tail from a compacted revision says so and offers the compact revision, which then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_start_offers_the_compact_revision() {
    let node = TestNode::start().await;
    let mut client = node.client().await;
    for i in 0..5 {
        client.put("/c/k", format!("v{i}"), None).await.expect("put");
    }
    let rev = client.put("/c/k", "last", None).await.expect("put").header().expect("header").revision();
    client.compact(rev - 2, None).await.expect("compact");
    let mut rt = runtime(std::slice::from_ref(&node.url));
    act(&mut rt, Action::Command);
    typed(&mut rt, "watch /c/ 2");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the compaction error", |s| {
        matches!(s.watch.as_ref().map(|t| &t.status), Some(TailStatus::Compacted { .. }))
    })
    .await;
    let Some(TailStatus::Compacted { error, compact_revision }) =
        rt.state.watch.as_ref().map(|t| t.status.clone())
    else {
        unreachable!()
    };
    assert_eq!(error, "etcdserver: mvcc: required revision has been compacted");
    assert_eq!(compact_revision, rev - 2);
    act(&mut rt, Action::Open);
    until(&mut rt, "the events from the compact revision", |s| {
        s.watch.as_ref().is_some_and(|t| t.received == 3)
    })
    .await;
    let tail = rt.state.watch.as_ref().expect("tail");
    let revs: Vec<i64> = tail.events.iter().map(|(_, e)| e.mod_revision).collect();
    assert_eq!(revs, vec![rev - 2, rev - 1, rev]);
    assert!(tail.events.iter().skip(1).all(|(_, e)| e.prev.is_some()), "prev_kv is asked for");
    node.stop().await;
}

/// Five keys of a million bytes each: one keys-only page of them is over gRPC's 4 MiB message
/// limit, so the listing asks again with smaller limits and still shows all five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_of_huge_keys_stays_under_the_message_limit() {
    let node = TestNode::start().await;
    let mut client = node.client().await;
    for i in 0..5u8 {
        let mut key = vec![b'h'; 1_000_000];
        key.push(b'0' + i);
        client.put(key, "", None).await.expect("a 1 MB key");
    }
    let mut rt = runtime(std::slice::from_ref(&node.url));
    act(&mut rt, Action::SwitchView);
    until(&mut rt, "the listing", |s| s.keys.known == 5 && s.keys.loading.is_none()).await;
    assert_eq!(rt.state.keys.error, None);
    assert_eq!(rt.state.keys.key_at(4).map(|k| (k.len(), k[1_000_000])), Some((1_000_001, b'4')));
    node.stop().await;
}

/// A tail on an etcdeck node that crashes (SIGKILL) and comes back: the tail reconnects and resumes
/// at the revision after the last event it saw, including the writes made before it got back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_tail_resumes_after_its_etcdeck_node_restarts() {
    let mut node = crate::support::EtcdeckNode::start("tail", &[]);
    let url = node.client_url.clone();
    let mut rt = runtime(std::slice::from_ref(&url));
    act(&mut rt, Action::Command);
    typed(&mut rt, "watch /r/");
    key(&mut rt, Typed::Enter);
    until(&mut rt, "the watch to start", |s| {
        matches!(s.watch.as_ref().map(|t| &t.status), Some(TailStatus::Watching { .. }))
    })
    .await;
    let config = ConnectConfig::plain(std::slice::from_ref(&url)).unwrap();
    let put_range = |range: std::ops::Range<usize>| {
        let (config, url) = (config.clone(), url.clone());
        async move {
            let mut client = etcdeck::app::client::connect(&config, &url).await.expect("writer");
            for i in range {
                client.put(format!("/r/{i:03}"), "v", None).await.expect("put");
            }
        }
    };
    put_range(0..100).await;
    until(&mut rt, "the first events", |s| s.watch.as_ref().is_some_and(|t| t.received == 100)).await;
    node.kill();
    until(&mut rt, "the tail to notice", |s| {
        matches!(s.watch.as_ref().map(|t| &t.status), Some(TailStatus::Reconnecting { .. }))
    })
    .await;
    tokio::task::block_in_place(|| node.restart());
    put_range(100..200).await;
    until(&mut rt, "every event", |s| s.watch.as_ref().is_some_and(|t| t.received >= 200)).await;
    rt.run_until(Duration::from_millis(300), TICK, |_| false).await;
    let tail = rt.state.watch.as_ref().expect("tail");
    let keys: Vec<String> =
        tail.events.iter().map(|(_, e)| String::from_utf8_lossy(&e.key).into_owned()).collect();
    let expected: Vec<String> = (0..200).map(|i| format!("/r/{i:03}")).collect();
    assert_eq!(keys, expected, "every event once, in order");
    assert!(matches!(tail.status, TailStatus::Watching { .. }), "{:?}", tail.status);
}
