//! The driver's tests: a member's Ready loop end to end on a temporary data dir, its refusals, a
//! full disk under its log, and membership changes through it.

use super::*;
use crate::node::auth::{AuthWrite, Caller};
use crate::node::mvcc::apply;
use etcd_client::proto::{PbPutRequest, PbRangeRequest};
use raft::eraftpb::ConfState;

fn options(dir: &std::path::Path) -> Options {
    Options { heartbeat: Duration::from_millis(10), ..Options::new(1, dir) }
}

fn put(key: &str, value: &str) -> Write {
    Write::Put(PbPutRequest { key: key.into(), value: value.into(), ..PbPutRequest::default() })
}

fn get(h: &Handle, key: &str) -> Option<Vec<u8>> {
    let store = h.store.read().unwrap();
    let r =
        apply::apply_range(&store, &PbRangeRequest { key: key.into(), ..PbRangeRequest::default() }).unwrap();
    r.kvs.into_iter().next().map(|kv| kv.value)
}

#[tokio::test]
async fn writes_are_applied_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = start(options(dir.path())).unwrap();
        let mut revs = Vec::new();
        for i in 0..5 {
            match h.write(put("k", &format!("v{i}"))).await.unwrap() {
                WriteResponse::Put(r) => revs.push(r.header.unwrap().revision),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(revs, vec![2, 3, 4, 5, 6]);
        let applied = h.read_index().await.unwrap();
        assert!(applied >= 6, "a linearizable read waits for the writes: {applied}");
        assert_eq!(get(&h, "k"), Some(b"v4".to_vec()));
        let err = h
            .write(Write::Put(PbPutRequest {
                lease: 5,
                ..PbPutRequest { key: b"x".to_vec(), ..PbPutRequest::default() }
            }))
            .await;
        assert_eq!(err, Err(NodeError::LeaseNotFound));
        h.store.read().unwrap().flush().unwrap();
        h.stop();
    }
    let h = start(options(dir.path())).unwrap();
    assert_eq!(get(&h, "k"), Some(b"v4".to_vec()));
    match h.write(put("k", "after")).await.unwrap() {
        WriteResponse::Put(r) => assert_eq!(r.header.unwrap().revision, 7, "no entry applied twice"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_full_disk_under_the_log_refuses_writes_serves_reads_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    {
        let h = start(Options { log_space: Some(20_000), ..options(dir.path()) }).unwrap();
        let value = "v".repeat(1000);
        let failed = loop {
            let key = format!("k{}", acked.len());
            match h.write(put(&key, &value)).await {
                Ok(_) => acked.push(key),
                Err(e) => break e,
            }
            assert!(acked.len() < 100, "the disk never filled");
        };
        assert!(acked.len() > 5, "{} acknowledged", acked.len());
        // The write in flight when the disk filled may be in the log: its outcome is unknown.
        assert_eq!(failed, NodeError::Timeout);
        let failure = h.status.disk_failure().expect("recorded");
        assert!(failure.no_space && failure.why.contains("os error 28"), "{failure:?}");
        assert_eq!(h.write(put("later", "v")).await, Err(NodeError::NoSpace));
        // Reads go on; linearizable ones too, as this member is the only voter.
        assert_eq!(get(&h, "k0"), Some(value.into_bytes()));
        assert!(h.read_index().await.is_ok());
        let stopping = Instant::now();
        h.stop();
        assert!(stopping.elapsed() < Duration::from_secs(1), "stopped in {:?}", stopping.elapsed());
    }
    // With space again (the torn end of the failed write is cut), every acknowledged write is there.
    let h = start(options(dir.path())).unwrap();
    for key in &acked {
        assert!(get(&h, key).is_some(), "{key} lost");
    }
    assert!(h.write(put("later", "v")).await.is_ok());
}

#[tokio::test]
async fn concurrent_writes_share_batches() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(options(dir.path())).unwrap();
    let writes = (0..50).map(|i| {
        let h = h.clone();
        tokio::spawn(async move { h.write(put(&format!("k{i}"), "v")).await })
    });
    for w in futures::future::join_all(writes).await {
        assert!(matches!(w.unwrap(), Ok(WriteResponse::Put(_))));
    }
    assert_eq!(h.store.read().unwrap().current_revision(), 51);
}

#[tokio::test]
async fn snapshots_drop_applied_log_entries_and_a_restart_still_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options { snapshot_count: 10, ..options(dir.path()) };
    {
        let h = start(opts()).unwrap();
        for i in 0..50 {
            h.write(put(&format!("k{i}"), "v")).await.unwrap();
        }
        h.stop();
    }
    let log = LogStore::open(&dir.path().join("member").join("wal"), ConfState::default()).unwrap();
    assert!(log.first_index_before() >= 40, "snapshot at {}", log.first_index_before());
    let h = start(opts()).unwrap();
    assert_eq!(get(&h, "k0"), Some(b"v".to_vec()));
    assert_eq!(get(&h, "k49"), Some(b"v".to_vec()));
    match h.write(put("after", "v")).await.unwrap() {
        WriteResponse::Put(r) => assert_eq!(r.header.unwrap().revision, 52),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_writes_and_leader_entries_count_as_applied_so_a_snapshot_never_outruns_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options { snapshot_count: 1, ..options(dir.path()) };
    {
        let h = start(opts()).unwrap();
        h.write(put("a", "1")).await.unwrap();
        let refused = Write::Put(PbPutRequest {
            lease: 99,
            ..PbPutRequest { key: b"b".to_vec(), ..Default::default() }
        });
        assert_eq!(h.write(refused).await, Err(NodeError::LeaseNotFound));
        h.stop();
    }
    for _ in 0..2 {
        let h = start(opts()).expect("restarts after a snapshot taken at a refused entry");
        assert_eq!(get(&h, "a"), Some(b"1".to_vec()));
        h.write(put("c", "1")).await.unwrap();
        h.stop();
    }
}

#[tokio::test]
async fn concurrent_linearizable_reads_share_read_index_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(options(dir.path())).unwrap();
    h.write(put("k", "v")).await.unwrap();
    let before = h.status.read_rounds.load(Ordering::Relaxed);
    let reads = futures::future::join_all((0..200).map(|_| h.read_index())).await;
    assert!(reads.iter().all(|r| matches!(r, Ok(i) if *i >= 2)), "{reads:?}");
    let rounds = h.status.read_rounds.load(Ordering::Relaxed) - before;
    // How many share a round depends on how the driver thread is scheduled while they arrive
    // (more than 50 rounds about once in ten runs on a loaded 2-core machine): the test asks only
    // that reads share rounds at all; how well is the read benchmark's to say.
    assert!(rounds < 200, "200 reads took {rounds} ReadIndex rounds: none shared one");
}

#[test]
fn force_new_cluster_is_ignored_without_a_log_and_removes_the_others_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let member = |urls: &str| RaftMember { peer_urls: vec![urls.to_string()], is_learner: false };
    let three = vec![(1, member("http://a:1")), (2, member("http://b:1")), (3, member("http://c:1"))];
    let opts = |force| Options {
        bootstrap: three.clone(),
        force_new_cluster: force,
        election_ticks: 2,
        ..options(dir.path())
    };
    {
        // A fresh data dir: nothing to recover, so the flag changes nothing (as in etcd).
        let h = start(opts(true)).unwrap();
        let store = h.store.read().unwrap();
        assert_eq!(store.members().len(), 3);
        assert!(store.removed().is_empty());
        drop(store);
        h.stop();
    }
    // With a log: the other two are removed and this member leads alone.
    let h = start(opts(true)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.leader() != 1 {
        assert!(Instant::now() < deadline, "never led alone");
        std::thread::sleep(Duration::from_millis(10));
    }
    let store = h.store.read().unwrap();
    assert_eq!(store.members().keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(store.removed().iter().copied().collect::<Vec<_>>(), vec![2, 3]);
}

#[test]
fn entries_round_trip() {
    let w = put("k", "v");
    assert_eq!(Write::decode(&w.encode(77)), Ok((77, w)));
    assert!(Write::decode(&[99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(Write::decode(&[1]).is_err());
    let auth = Write::Auth(AuthWrite::UserAdd { name: "u".into(), hash: Some("$2b$04$x".into()) });
    assert_eq!(Write::decode(&auth.encode(5)), Ok((5, auth.clone())));
    let caller = Caller { user: "ü".into(), revision: 9 };
    let wrapped = Write::As(caller.clone(), Box::new(put("k", "v")));
    assert_eq!(Write::decode(&wrapped.encode(6)), Ok((6, wrapped)));
    let anonymous = Write::As(Caller::default(), Box::new(auth));
    assert_eq!(Write::decode(&anonymous.encode(7)), Ok((7, anonymous)));
    // Cut short anywhere, or a caller inside a caller: refused, never a panic.
    let bytes = Write::As(caller.clone(), Box::new(put("k", "v"))).encode(1);
    for len in 9..bytes.len() - 2 {
        let _ = Write::decode(&bytes[..len]);
    }
    // A name longer than 64 KiB, multi-byte: whole, never cut.
    let long = Caller { user: "é".repeat(40_000), revision: 1 };
    let wrapped = Write::As(long, Box::new(put("k", "v")));
    assert_eq!(Write::decode(&wrapped.encode(8)), Ok((8, wrapped)));
    let nested = Write::As(caller.clone(), Box::new(Write::As(caller, Box::new(put("k", "v")))));
    assert!(Write::decode(&nested.encode(1)).is_err());
}

#[tokio::test]
async fn writes_are_checked_against_the_auth_store_when_applied() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(options(dir.path())).unwrap();
    let admin = |w: AuthWrite| Write::Auth(w);
    for w in [
        AuthWrite::UserAdd { name: "root".into(), hash: Some("h".into()) },
        AuthWrite::UserGrantRole { user: "root".into(), role: "root".into() },
        AuthWrite::UserAdd { name: "u".into(), hash: Some("h".into()) },
        AuthWrite::RoleAdd { name: "r".into() },
        AuthWrite::RoleGrantPermission {
            name: "r".into(),
            perm: crate::node::auth::Perm {
                kind: crate::node::auth::PermKind::ReadWrite,
                key: b"p/".to_vec(),
                range_end: b"p0".to_vec(),
            },
        },
        AuthWrite::UserGrantRole { user: "u".into(), role: "r".into() },
    ] {
        h.write(admin(w)).await.unwrap();
    }
    // Before auth is enabled anyone writes, even without a user.
    h.write(Write::As(Caller::default(), Box::new(put("x", "1")))).await.unwrap();
    h.write(admin(AuthWrite::Enable)).await.unwrap();
    let rev = h.read_store().unwrap().auth().revision;
    let u = Caller { user: "u".into(), revision: rev };
    let as_u = |w: Write| Write::As(u.clone(), Box::new(w));
    h.write(as_u(put("p/1", "v"))).await.unwrap();
    assert_eq!(h.write(as_u(put("x", "2"))).await, Err(NodeError::PermissionDenied));
    assert_eq!(
        h.write(Write::As(Caller::default(), Box::new(put("p/1", "v")))).await,
        Err(NodeError::UserEmpty)
    );
    let add = admin(AuthWrite::RoleAdd { name: "r2".into() });
    assert_eq!(h.write(as_u(add)).await, Err(NodeError::PermissionDenied));
    // A change to the auth store between the check and the apply: the old revision is refused.
    let root = Caller { user: "root".into(), revision: rev };
    h.write(Write::As(root, Box::new(admin(AuthWrite::RoleAdd { name: "r3".into() })))).await.unwrap();
    assert_eq!(h.write(as_u(put("p/2", "v"))).await, Err(NodeError::AuthOldRevision));
    assert_eq!(get(&h, "x"), Some(b"1".to_vec()), "refused writes change nothing");
    // The auth store survives a restart.
    h.store.read().unwrap().flush().unwrap();
    h.stop();
    drop(h);
    let h = start(options(dir.path())).unwrap();
    let store = h.read_store().unwrap();
    assert!(store.auth().enabled);
    assert!(store.auth().roles.contains_key("r3"));
    drop(store);
    h.stop();
}
