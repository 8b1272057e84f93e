//! The node's Watch, Lease, Maintenance and Cluster services and its HTTP endpoints, driven in
//! process with etcd-client.

use std::time::Duration;

use etcd_client::{
    AlarmAction, AlarmType, Client, EventType, GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions,
    PutOptions, WatchFilterType, WatchOptions, WatchResponse, WatchStream,
};
use sha2::{Digest, Sha256};

use crate::node_kv::{within, TestNode};
use crate::support::http_get;

async fn next(stream: &mut WatchStream) -> WatchResponse {
    within(stream.message()).await.expect("watch message").expect("stream open")
}

/// Responses until `n` events arrived, with the events as (watch id, type, key, value, mod revision).
async fn events(stream: &mut WatchStream, n: usize) -> Vec<(i64, EventType, String, String, i64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let r = next(stream).await;
        for e in r.events() {
            let kv = e.kv().expect("kv");
            out.push((
                r.watch_id(),
                e.event_type(),
                kv.key_str().unwrap_or("?").to_string(),
                kv.value_str().unwrap_or("?").to_string(),
                kv.mod_revision(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_ranges_history_filters_and_prev_kv_in_order() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    within(c.put("a", "1", None)).await.expect("put"); // 2
    within(c.put("b/1", "1", None)).await.expect("put"); // 3

    // A key, from history.
    let mut s = within(c.watch("a", Some(WatchOptions::new().with_start_revision(2)))).await.expect("watch");
    let created = next(&mut s).await;
    assert!(created.created());
    assert_eq!(created.watch_id(), 0, "ids start at 0 per stream");
    assert_eq!(events(&mut s, 1).await, vec![(0, EventType::Put, "a".into(), "1".into(), 2)]);

    // More watchers on the same stream: a prefix with prev_kv, a range without puts, a from-key.
    within(s.watch("b/", Some(WatchOptions::new().with_prefix().with_prev_key()))).await.expect("watch");
    assert_eq!(next(&mut s).await.watch_id(), 1);
    within(s.watch("a", Some(WatchOptions::new().with_range("c").with_filters([WatchFilterType::NoPut]))))
        .await
        .expect("watch");
    assert_eq!(next(&mut s).await.watch_id(), 2);
    within(s.watch("b", Some(WatchOptions::new().with_from_key().with_filters([WatchFilterType::NoDelete]))))
        .await
        .expect("watch");
    assert_eq!(next(&mut s).await.watch_id(), 3);

    within(c.put("b/1", "2", None)).await.expect("put"); // 4
    within(c.delete("b/1", None)).await.expect("delete"); // 5
    within(c.put("z", "1", None)).await.expect("put"); // 6
    let mut got = events(&mut s, 5).await;
    got.sort_by_key(|e| (e.0, e.4));
    assert_eq!(
        got,
        vec![
            (1, EventType::Put, "b/1".into(), "2".into(), 4),
            (1, EventType::Delete, "b/1".into(), "".into(), 5),
            (2, EventType::Delete, "b/1".into(), "".into(), 5),
            (3, EventType::Put, "b/1".into(), "2".into(), 4),
            (3, EventType::Put, "z".into(), "1".into(), 6),
        ],
        "watcher 0 (key a) sees nothing new; each other one what its range and filter let through"
    );

    // prev_kv of the delete is the value deleted.
    let mut p =
        within(c.watch("b/", Some(WatchOptions::new().with_prefix().with_prev_key().with_start_revision(4))))
            .await
            .expect("watch");
    assert!(next(&mut p).await.created());
    let r = next(&mut p).await;
    let evs = r.events();
    assert_eq!(evs.len(), 2, "events of revisions 4 and 5 in one catch-up response");
    assert_eq!(evs[0].prev_kv().map(|kv| kv.value()), Some(&b"1"[..]));
    assert_eq!(evs[1].prev_kv().map(|kv| kv.value()), Some(&b"2"[..]));

    // Cancel: acknowledged, then nothing more.
    within(s.cancel(3)).await.expect("cancel");
    let r = next(&mut s).await;
    assert!(r.canceled());
    assert_eq!(r.watch_id(), 3);
    within(s.watch("n", None)).await.expect("watch");
    assert_eq!(next(&mut s).await.watch_id(), 4, "an ID is not handed out twice on a stream");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_errors_progress_and_compaction_are_etcds() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for v in ["1", "2", "3", "4"] {
        within(c.put("k", v, None)).await.expect("put"); // 2..5
    }
    within(c.compact(4, None)).await.expect("compact");

    let mut s = within(c.watch("k", Some(WatchOptions::new().with_start_revision(2)))).await.expect("watch");
    assert!(next(&mut s).await.created());
    let r = next(&mut s).await;
    assert!(r.canceled());
    assert_eq!(r.compact_revision(), 4, "a compacted start revision cancels with the compact revision");

    // Exactly the compact revision is still served.
    within(s.watch("k", Some(WatchOptions::new().with_start_revision(4)))).await.expect("watch");
    let id = next(&mut s).await.watch_id();
    let evs = events(&mut s, 2).await;
    assert_eq!(evs.iter().map(|e| e.4).collect::<Vec<_>>(), vec![4, 5]);
    assert!(evs.iter().all(|e| e.0 == id));

    // An empty range is refused as etcd refuses it.
    within(s.watch("b", Some(WatchOptions::new().with_range("a")))).await.expect("watch");
    let r = next(&mut s).await;
    assert!(r.created() && r.canceled());
    assert_eq!((r.watch_id(), r.cancel_reason()), (-1, "mvcc: watcher range is empty"));

    // A progress request is answered on watch id -1 with the current revision.
    within(s.request_progress()).await.expect("progress");
    let r = next(&mut s).await;
    assert_eq!(r.watch_id(), -1);
    assert_eq!(r.header().map(|h| h.revision()), Some(5));

    // progress_notify: an idle watcher hears the revision every interval (200 ms in this node).
    let mut idle =
        within(c.watch("idle", Some(WatchOptions::new().with_progress_notify()))).await.expect("watch");
    assert!(next(&mut idle).await.created());
    let r = next(&mut idle).await;
    assert!(r.events().is_empty() && !r.canceled());
    assert_eq!(r.header().map(|h| h.revision()), Some(5));
    node.stop().await;
}

/// A progress notification promises every event up to its revision has been sent on the stream:
/// asked for while a watcher still catches up, it comes after those events (etcd answers only once
/// the watchers are synced). `etcdeck mirror` moves its checkpoint on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_notification_never_overtakes_the_events_it_covers() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for chunk in 0..30 {
        let ops: Vec<etcd_client::TxnOp> =
            (0..100).map(|i| etcd_client::TxnOp::put(format!("p/{chunk:02}/{i:03}"), "v", None)).collect();
        within(c.txn(etcd_client::Txn::new().and_then(ops))).await.expect("txn");
    }
    for round in 0..20 {
        // A watcher catching up on 30 revisions of 100 events, and a progress request at once.
        let options = WatchOptions::new().with_prefix().with_start_revision(2);
        let mut s = within(c.watch("p/", Some(options))).await.expect("watch");
        within(s.request_progress()).await.expect("progress");
        let mut seen = 0i64;
        loop {
            let r = next(&mut s).await;
            if r.created() {
                continue;
            }
            if r.events().is_empty() {
                let promised = r.header().map(|h| h.revision()).unwrap_or(0);
                assert!(
                    promised <= seen.max(1),
                    "round {round}: progress {promised} before the events up to it (seen {seen})"
                );
                break;
            }
            seen = r.events().iter().filter_map(|e| e.kv()).map(|kv| kv.mod_revision()).max().unwrap_or(seen);
        }
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_reach_watchers_once_each_in_order_and_a_stalled_watcher_stalls_nothing() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let mut reader = within(c.watch("w/", Some(WatchOptions::new().with_prefix()))).await.expect("watch");
    assert!(next(&mut reader).await.created());
    // Never read: its responses pile up in its stream until the transport pushes back.
    let mut stalled = within(c.watch("w/", Some(WatchOptions::new().with_prefix()))).await.expect("watch");
    let writers = 4;
    let per_writer = 150;
    let value = "v".repeat(2048);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let mut c = c.clone();
            let value = value.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    within(c.put(format!("w/{w}/{i}"), value.as_str(), None)).await.expect("put");
                }
            })
        })
        .collect();
    for t in tasks {
        within(t).await.expect("writer");
    }
    let total = writers * per_writer;
    let revs: Vec<i64> = events(&mut reader, total).await.into_iter().map(|e| e.4).collect();
    assert_eq!(revs.len(), total);
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "strictly increasing: ordered, no duplicates");
    assert_eq!((revs[0], revs[total - 1]), (2, total as i64 + 1), "none lost");
    // The stalled watcher, read now, still has everything.
    assert!(next(&mut stalled).await.created());
    let late: Vec<i64> = events(&mut stalled, total).await.into_iter().map(|e| e.4).collect();
    assert_eq!(late, revs);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_grant_attach_keep_alive_revoke_and_expire_through_raft() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let g = within(c.lease_grant(60, None)).await.expect("grant");
    assert!(g.id() > 0);
    assert_eq!(g.ttl(), 60);
    let mine = within(c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(777)))).await.expect("grant");
    assert_eq!(mine.id(), 777);
    let err =
        within(c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(777)))).await.expect_err("exists");
    assert!(err.to_string().contains("etcdserver: lease already exists"), "{err}");
    let err = within(c.lease_grant(9_000_000_001, None)).await.expect_err("too large");
    assert!(err.to_string().contains("etcdserver: too large lease TTL"), "{err}");

    within(c.put("l/1", "a", Some(PutOptions::new().with_lease(777)))).await.expect("put");
    within(c.put("l/2", "b", Some(PutOptions::new().with_lease(777)))).await.expect("put");
    let ttl = within(c.lease_time_to_live(777, Some(LeaseTimeToLiveOptions::new().with_keys())))
        .await
        .expect("ttl");
    assert_eq!(ttl.granted_ttl(), 30);
    assert!((28..=30).contains(&ttl.ttl()), "{}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"l/1".to_vec(), b"l/2".to_vec()]);
    let unknown = within(c.lease_time_to_live(5, None)).await.expect("ttl of an unknown lease");
    assert_eq!(unknown.ttl(), -1);

    let (mut keeper, mut acks) = within(c.lease_keep_alive(777)).await.expect("keepalive");
    within(keeper.keep_alive()).await.expect("send");
    let ack = within(acks.message()).await.expect("ack").expect("open");
    assert_eq!((ack.id(), ack.ttl()), (777, 30));

    let mut ids: Vec<i64> =
        within(c.leases()).await.expect("leases").leases().iter().map(|l| l.id()).collect();
    ids.sort();
    let mut expected = vec![777, g.id()];
    expected.sort();
    assert_eq!(ids, expected);

    let before = within(c.get("l/", Some(GetOptions::new().with_prefix()))).await.expect("get");
    let rev = before.header().map(|h| h.revision()).unwrap_or(0);
    let revoked = within(c.lease_revoke(777)).await.expect("revoke");
    assert_eq!(revoked.header().map(|h| h.revision()), Some(rev + 1), "both keys go in one revision");
    assert_eq!(within(c.get("l/", Some(GetOptions::new().with_prefix()))).await.expect("get").count(), 0);
    let err = within(c.lease_revoke(777)).await.expect_err("gone");
    assert!(err.to_string().contains("etcdserver: requested lease not found"), "{err}");
    within(keeper.keep_alive()).await.expect("send");
    let ack = within(acks.message()).await.expect("ack").expect("open");
    assert_eq!(ack.ttl(), 0, "a revoked lease is answered with TTL 0 on the open stream");

    // Expiry: the shortest TTL here is 1 s (1.5 election timeouts of 200 ms, rounded up).
    let short = within(c.lease_grant(1, None)).await.expect("grant");
    assert_eq!(short.ttl(), 1);
    within(c.put("short", "v", Some(PutOptions::new().with_lease(short.id())))).await.expect("put");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if within(c.get("short", None)).await.expect("get").count() == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the expired lease's key was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_status_hash_snapshot_defragment_and_cluster() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for i in 0..50 {
        within(c.put(format!("m/{i}"), "v", None)).await.expect("put");
    }
    let st = within(c.status()).await.expect("status");
    let h = st.header().expect("header");
    assert_eq!(st.leader(), h.member_id());
    assert_eq!(h.revision(), 51);
    assert!(st.raft_index() >= 51 && st.raft_applied_index() == st.raft_index());
    assert!(st.db_size() > 0 && st.raft_used_db_size() > 0);
    assert!(st.errors().is_empty());
    assert_eq!(st.version(), "3.4.0");

    let before = within(c.hash_kv(0)).await.expect("hashkv");
    assert_eq!(before.compact_version(), -1, "never compacted");
    assert_eq!(within(c.hash_kv(0)).await.expect("hashkv").hash(), before.hash(), "stable");
    within(c.defragment()).await.expect("defragment");
    assert_eq!(within(c.hash_kv(0)).await.expect("hashkv").hash(), before.hash(), "defragment keeps data");
    assert_eq!(within(c.get("m/", Some(GetOptions::new().with_prefix()))).await.expect("get").count(), 50);
    within(c.put("after-defrag", "v", None)).await.expect("writes go on after defragment");

    let mut snap = within(c.snapshot()).await.expect("snapshot");
    let mut bytes = Vec::new();
    let mut last_remaining = u64::MAX;
    while let Some(piece) = within(snap.message()).await.expect("piece") {
        last_remaining = piece.remaining_bytes();
        bytes.extend_from_slice(piece.blob());
    }
    assert_eq!(last_remaining, 0);
    assert_eq!(bytes.len() % 512, 32, "etcdctl's check: a 512-aligned image and a sha256");
    let (image, sum) = bytes.split_at(bytes.len() - 32);
    assert_eq!(Sha256::digest(image).as_slice(), sum);

    let members = within(c.member_list()).await.expect("member list");
    assert_eq!(members.members().len(), 1);
    assert_eq!(members.members()[0].id(), h.member_id());
    assert_eq!(members.members()[0].client_urls(), ["http://127.0.0.1:2379"]);
    // A learner joins the membership without touching the quorum; it cannot be promoted before it
    // has caught up (it never started), and it goes again.
    let learner = etcd_client::MemberAddOptions::new().with_is_learner();
    let added = within(c.member_add(["http://127.0.0.1:9"], Some(learner))).await.expect("add a learner");
    let learner_id = added.member().expect("the new member").id();
    let listed = within(c.member_list()).await.expect("member list");
    let row = listed.members().iter().find(|m| m.id() == learner_id).expect("listed");
    assert!(row.is_learner() && row.name().is_empty() && row.client_urls().is_empty(), "{row:?}");
    let err = within(c.member_promote(learner_id)).await.expect_err("not caught up");
    assert!(
        err.to_string().contains("can only promote a learner member which is in sync with leader"),
        "{err}"
    );
    let err =
        within(c.member_update(h.member_id(), vec!["not a url".to_string()])).await.expect_err("bad URL");
    assert!(err.to_string().contains("etcdserver: given member URLs are invalid"), "{err}");
    within(c.member_remove(learner_id)).await.expect("remove the learner");
    let err = within(c.member_remove(learner_id)).await.expect_err("removed already");
    assert!(err.to_string().contains("etcdserver: member not found"), "{err}");
    assert_eq!(within(c.member_list()).await.expect("member list").members().len(), 1);
    within(c.move_leader(h.member_id())).await.expect("move to itself");
    let err = within(c.move_leader(42)).await.expect_err("no such member");
    assert!(err.to_string().contains("etcdserver: bad leader transferee"), "{err}");

    let addr = node.url.trim_start_matches("http://");
    let health = http_get(addr, "/health").expect("health");
    assert!(health.starts_with("HTTP/1.1 200") && health.ends_with("{\"health\":\"true\"}"), "{health}");
    let version = http_get(addr, "/version").expect("version");
    assert!(version.ends_with(r#"{"etcdserver":"3.4.0","etcdcluster":"3.4.0"}"#), "{version}");
    let metrics = http_get(addr, "/metrics").expect("metrics");
    for name in [
        "etcd_server_has_leader 1",
        "etcd_server_is_leader 1",
        "etcd_mvcc_db_total_size_in_bytes ",
        "etcd_disk_wal_fsync_duration_seconds_count ",
        "etcd_server_proposals_committed_total ",
        "etcd_debugging_mvcc_keys_total 51",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nospace_refuses_puts_until_disarmed_and_reads_and_deletes_go_on() {
    let node = TestNode::start_with(&["--quota-backend-bytes=1048576"], Duration::from_secs(600)).await;
    let mut c = node.client().await;
    let value = vec![7u8; 100 * 1024];
    let mut refused = None;
    for i in 0..200 {
        if let Err(e) = within(c.put(format!("big/{i}"), value.clone(), None)).await {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("the quota is reached");
    assert!(err.to_string().contains("etcdserver: mvcc: database space exceeded"), "{err}");
    let alarms = within(c.alarm(AlarmAction::Get, AlarmType::None, None)).await.expect("alarms");
    assert_eq!(alarms.alarms().len(), 1);
    assert_eq!(alarms.alarms()[0].alarm(), AlarmType::Nospace);
    let st = within(c.status()).await.expect("status");
    assert!(st.errors().iter().any(|e| e.contains("alarm:NOSPACE")), "{:?}", st.errors());
    let err = within(c.put("small", "v", None)).await.expect_err("refused while NOSPACE");
    assert!(err.to_string().contains("database space exceeded"), "{err}");
    assert!(within(c.get("big/0", None)).await.expect("reads pass").count() == 1);
    within(c.delete("big/", Some(etcd_client::DeleteOptions::new().with_prefix())))
        .await
        .expect("deletes pass");
    let addr = node.url.trim_start_matches("http://");
    assert!(
        http_get(addr, "/health").expect("health").starts_with("HTTP/1.1 503"),
        "an alarm makes /health false"
    );

    let mut opts = etcd_client::AlarmOptions::new();
    opts.with_member(alarms.alarms()[0].member_id());
    within(c.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(opts))).await.expect("disarm");
    assert!(within(c.alarm(AlarmAction::Get, AlarmType::None, None))
        .await
        .expect("alarms")
        .alarms()
        .is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_etcds_error() {
    let node = TestNode::start_with(&["--max-request-bytes=4096"], Duration::from_secs(600)).await;
    let mut c: Client = node.client().await;
    let err = within(c.put("k", vec![0u8; 8192], None)).await.expect_err("too large");
    assert!(err.to_string().contains("etcdserver: request is too large"), "{err}");
    within(c.put("k", vec![0u8; 1024], None)).await.expect("fits");
    node.stop().await;
}

/// Waits (bounded) until a read at `rev` is refused as compacted.
async fn until_compacted(c: &mut Client, rev: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Err(e) = within(c.get("k", Some(GetOptions::new().with_revision(rev)))).await {
            assert!(e.to_string().contains("required revision has been compacted"), "{e}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "revision {rev} was never compacted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_compaction_by_revision_keeps_the_last_n_revisions() {
    let args = ["--auto-compaction-mode=revision", "--auto-compaction-retention=3"];
    let node = TestNode::start_with(&args, Duration::from_secs(600)).await;
    let mut c = node.client().await;
    for i in 0..10 {
        within(c.put("k", i.to_string(), None)).await.expect("put"); // 2..=11
    }
    until_compacted(&mut c, 7).await;
    let kept =
        within(c.get("k", Some(GetOptions::new().with_revision(8)))).await.expect("revision 8 is kept");
    assert_eq!(kept.kvs()[0].value(), b"6");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_compaction_by_period_compacts_what_is_older_than_the_retention() {
    let args = ["--auto-compaction-mode=periodic", "--auto-compaction-retention=1s"];
    let node = TestNode::start_with(&args, Duration::from_secs(600)).await;
    let mut c = node.client().await;
    within(c.put("k", "old", None)).await.expect("put"); // 2
    within(c.put("k", "new", None)).await.expect("put"); // 3
    until_compacted(&mut c, 2).await;
    node.stop().await;
}
