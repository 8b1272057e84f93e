//! The store's tests: revisions, compaction, membership, durability across reopening, images.

use super::*;

fn put(store: &mut Store, key: &str, value: &str) -> i64 {
    let mut txn = store.write();
    txn.put(key.as_bytes(), value.as_bytes(), 0).expect("put");
    txn.commit(None).expect("commit")
}

fn delete(store: &mut Store, key: &str, end: &str) -> (usize, i64) {
    let mut txn = store.write();
    let n = txn.delete_range(key.as_bytes(), end.as_bytes()).expect("delete").len();
    (n, txn.commit(None).expect("commit"))
}

fn get(store: &Store, key: &str, rev: i64) -> Option<KeyValue> {
    store.range(key.as_bytes(), b"", 0, rev).expect("range").kvs.into_iter().next()
}

fn keys(r: &RangeResult) -> Vec<String> {
    r.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
}

/// A grouped write commits with its raft index, like the driver's applies.
fn put_at(store: &mut Store, key: &str, value: &str, index: u64) -> i64 {
    let mut txn = store.write();
    txn.put(key.as_bytes(), value.as_bytes(), 0).expect("put");
    txn.commit(Some(index)).expect("commit")
}

#[test]
fn a_group_is_readable_before_sled_has_it_and_reaches_sled_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    put_at(&mut s, "a", "1", 1);
    s.begin_group();
    put_at(&mut s, "a", "2", 2);
    put_at(&mut s, "b", "3", 3);
    // Readable at once, from the group.
    assert_eq!(get(&s, "a", 0).unwrap().value, b"2");
    assert_eq!(get(&s, "a", 2).unwrap().value, b"1");
    assert_eq!(s.consistent_index(), 3);
    // Not due yet: nothing is written.
    assert!(!s.flush_group_if_due(std::time::Duration::from_secs(60), 100, u64::MAX).unwrap());
    // A crash now (the store dropped unflushed) leaves sled at the index before the group:
    // the raft log applies those entries again.
    drop(s);
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.consistent_index(), 1);
    assert_eq!(s.current_revision(), 2);
    assert_eq!(get(&s, "a", 0).unwrap().value, b"1");
    assert!(get(&s, "b", 0).is_none());

    // History and hashes see the group: they write it out first.
    s.begin_group();
    put_at(&mut s, "a", "2", 2);
    put_at(&mut s, "b", "3", 3);
    let history = s.history(3, 4).unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1].1.kv.key, b"b");
    // Due by count: written, then durable across a reopen.
    put_at(&mut s, "c", "4", 4);
    assert!(s.flush_group_if_due(std::time::Duration::from_secs(60), 2, u64::MAX).unwrap());
    let hash = s.hash_kv(0).unwrap();
    s.flush().unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.consistent_index(), 4);
    assert_eq!(s.hash_kv(0).unwrap(), hash);
    assert_eq!(get(&s, "c", 0).unwrap().value, b"4");
}

#[test]
fn revisions_versions_and_tombstones_as_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    assert_eq!(s.current_revision(), 1, "the store starts at revision 1");
    assert_eq!(put(&mut s, "foo", "bar"), 2);
    assert_eq!(put(&mut s, "foo", "baz"), 3);
    let kv = get(&s, "foo", 0).unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version, kv.value), (2, 3, 2, b"baz".to_vec()));
    assert_eq!(get(&s, "foo", 2).unwrap().value, b"bar", "history stays readable");
    assert_eq!(delete(&mut s, "foo", ""), (1, 4));
    assert_eq!(get(&s, "foo", 0), None);
    assert_eq!(delete(&mut s, "foo", ""), (0, 4), "deleting nothing adds no revision");
    assert_eq!(put(&mut s, "foo", "again"), 5);
    let kv = get(&s, "foo", 0).unwrap();
    assert_eq!((kv.create_revision, kv.version), (5, 1), "a new generation");
    assert_eq!(s.range(b"foo", b"", 0, 6), Err(MvccError::FutureRev));
}

#[test]
fn a_restored_image_replaces_the_store_whole_and_survives_a_reopen() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Store::open(a_dir.path()).unwrap();
    put(&mut a, "k1", "v1");
    put(&mut a, "k2", "v2");
    put(&mut a, "k1", "v3");
    let mut b = Store::open(b_dir.path()).unwrap();
    put(&mut b, "only-in-b", "x");
    b.restore_image(&a.image().unwrap()).unwrap();
    assert_eq!(b.current_revision(), a.current_revision());
    assert_eq!(b.range(b"only-in-b", &[], 0, 0).unwrap().kvs.len(), 0, "what the image lacks is gone");
    assert_eq!(b.range(b"k1", &[], 0, 0).unwrap().kvs[0].value, b"v3");
    assert_eq!(b.range(b"k1", &[], 0, 2).unwrap().kvs[0].value, b"v1", "history came along");
    drop(b);
    let b = Store::open(b_dir.path()).unwrap();
    assert_eq!(b.range(b"k2", &[], 0, 0).unwrap().kvs[0].value, b"v2");
    assert!(Store::open(tempfile::tempdir().unwrap().path()).unwrap().restore_image(b"junk").is_err());
}

#[test]
fn ranges_prefixes_from_key_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    for k in ["a", "b/1", "b/2", "b/3", "c"] {
        put(&mut s, k, "v");
    }
    let r = s.range(b"b/", b"b0", 0, 0).unwrap();
    assert_eq!(keys(&r), ["b/1", "b/2", "b/3"]);
    let r = s.range(b"b/", b"b0", 2, 0).unwrap();
    assert_eq!((keys(&r), r.count), (vec!["b/1".to_string(), "b/2".to_string()], 3));
    assert_eq!(keys(&s.range(b"b/2", b"\0", 0, 0).unwrap()), ["b/2", "b/3", "c"]);
    assert_eq!(s.range(b"\0", b"\0", 0, 0).unwrap().count, 5);
    assert_eq!(s.range(b"z", b"a", 0, 0).unwrap().count, 0, "an end before the key matches nothing");
    assert_eq!(s.range(b"", b"\0", 0, 3).unwrap().count, 2, "two keys existed at revision 3");
}

#[test]
fn one_transaction_is_one_revision_and_reads_its_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    put(&mut s, "x", "0");
    let mut txn = s.write();
    txn.put(b"a", b"1", 7).unwrap();
    txn.put(b"b", b"2", 0).unwrap();
    assert_eq!(txn.range(b"a", b"c", 0, 0).unwrap().count, 2);
    let deleted = txn.delete_range(b"x", b"").unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(txn.commit(Some(42)).unwrap(), 3);
    let a = get(&s, "a", 0).unwrap();
    assert_eq!((a.mod_revision, a.lease), (3, 7));
    assert_eq!(get(&s, "b", 0).unwrap().mod_revision, 3);
    assert_eq!(s.consistent_index(), 42);
}

/// Every lease's keys, as the store keeps them, and as they must agree with `leased`.
fn lease_keys(s: &Store) -> Vec<(i64, Vec<String>)> {
    let mut from_leased: Vec<(i64, String)> =
        s.leased.iter().map(|(k, l)| (*l, String::from_utf8_lossy(k).into_owned())).collect();
    from_leased.sort();
    let out: Vec<(i64, Vec<String>)> = s
        .leases()
        .iter()
        .map(|(id, l)| (*id, l.keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect()))
        .collect();
    let flat: Vec<(i64, String)> =
        out.iter().flat_map(|(id, keys)| keys.iter().map(move |k| (*id, k.clone()))).collect();
    assert_eq!(flat, from_leased, "the leases' keys and the keys' leases disagree");
    out
}

#[test]
fn puts_take_creation_version_and_lease_from_memory_and_agree_with_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut txn = s.write();
    txn.grant(7, 60);
    txn.grant(8, 60);
    txn.commit(None).unwrap(); // 1: no change of revision
    let put_lease = |s: &mut Store, key: &str, lease: i64| {
        let mut txn = s.write();
        txn.put(key.as_bytes(), b"v", lease).unwrap();
        txn.commit(None).unwrap()
    };
    put_lease(&mut s, "a", 7); // 2
    put_lease(&mut s, "b", 7); // 3
    put_lease(&mut s, "a", 0); // 4: detached from 7
    put_lease(&mut s, "c", 8); // 5
    put_lease(&mut s, "c", 7); // 6: moved from 8 to 7
    assert_eq!(lease_keys(&s), [(7, vec!["b".to_string(), "c".to_string()]), (8, vec![])]);
    let a = get(&s, "a", 0).unwrap();
    assert_eq!((a.create_revision, a.version, a.lease), (2, 2, 0));
    let c = get(&s, "c", 0).unwrap();
    assert_eq!((c.create_revision, c.version, c.lease), (5, 2, 7));
    // Deleted and put again: a new life, version 1, and no lease carried over.
    delete(&mut s, "c", ""); // 7
    put_lease(&mut s, "c", 0); // 8
    let c = get(&s, "c", 0).unwrap();
    assert_eq!((c.create_revision, c.version, c.lease), (8, 1, 0));
    assert_eq!(lease_keys(&s), [(7, vec!["b".to_string()]), (8, vec![])]);
    // Twice in one transaction: the second sees the first.
    let mut txn = s.write();
    txn.put(b"d", b"1", 8).unwrap();
    txn.put(b"d", b"2", 0).unwrap();
    txn.commit(None).unwrap(); // 9
    let d = get(&s, "d", 0).unwrap();
    assert_eq!((d.create_revision, d.version, d.lease), (9, 2, 0));
    // A revoke deletes its keys and forgets them.
    let mut txn = s.write();
    assert!(txn.revoke(7).unwrap());
    txn.commit(None).unwrap(); // 10
    assert!(get(&s, "b", 0).is_none());
    let before = lease_keys(&s);
    assert_eq!(before, [(8, vec![])]);
    // What memory says is what the records rebuild.
    s.flush().unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(lease_keys(&s), before);
    let a = get(&s, "a", 0).unwrap();
    assert_eq!((a.create_revision, a.version, a.lease), (2, 2, 0));
}

#[test]
fn compaction_keeps_reads_at_and_after_it_and_refuses_older() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    put(&mut s, "k", "v2"); // 2
    put(&mut s, "k", "v3"); // 3
    put(&mut s, "gone", "x"); // 4
    delete(&mut s, "gone", ""); // 5
    put(&mut s, "k", "v6"); // 6
    s.compact(5).unwrap();
    assert_eq!(s.range(b"k", b"", 0, 4), Err(MvccError::Compacted));
    assert_eq!(get(&s, "k", 5).unwrap().value, b"v3", "a read at the compacted revision works");
    assert_eq!(get(&s, "k", 0).unwrap().value, b"v6");
    assert_eq!(s.compact(5), Err(MvccError::Compacted));
    assert_eq!(s.compact(99), Err(MvccError::FutureRev));
    assert_eq!(s.key_count(), 1);
    assert!(s.compacting());
    assert_eq!(s.tree.scan_prefix([RECORD]).count(), 5, "records go a step at a time, after");
    s.finish_compaction().unwrap();
    assert!(!s.compacting());
    let stored = s.tree.scan_prefix([RECORD]).count();
    assert_eq!(stored, 2, "only k@3 (still read at 5) and k@6 remain");
}

/// A compaction removes its records `COMPACTION_BATCH` at a time; stopped part way (a crash, a
/// restart), the store reopens with the compaction holding and goes on from the start; once done
/// it is recorded, and an open starts nothing.
#[test]
fn a_compaction_goes_in_steps_and_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut s = Store::open(&path).unwrap();
    for i in 0..2500 {
        put(&mut s, "k", &format!("v{i}"));
    }
    let at = s.current_revision();
    s.compact(at).unwrap();
    let hash = s.hash_kv(0).unwrap();
    assert_eq!(s.compaction_step().unwrap(), None);
    assert_eq!(s.tree.scan_prefix([RECORD]).count(), 2500, "the index first (one key: one step)");
    assert_eq!(s.hash_kv(0).unwrap(), hash, "the hash skips what the compaction drops, whatever its step");
    assert_eq!(s.compaction_step().unwrap(), None);
    assert_eq!(s.tree.scan_prefix([RECORD]).count(), 1500, "one step looks at 1000 records");
    assert_eq!(s.hash_kv(0).unwrap(), hash);
    drop(s);
    let mut s = Store::open(&path).unwrap();
    assert!(s.compacting());
    assert_eq!(s.compact_revision(), at);
    assert!(matches!(s.range(b"k", b"", 0, at - 1), Err(MvccError::Compacted)));
    assert_eq!(s.hash_kv(0).unwrap(), hash, "the hash skips what the compaction drops");
    let mut steps = 1;
    while s.compaction_step().unwrap().is_none() {
        steps += 1;
        assert!(steps < 10);
    }
    assert_eq!(steps, 2, "1500 records: two steps");
    assert!(!s.compacting());
    assert_eq!(s.tree.scan_prefix([RECORD]).count(), 1);
    assert_eq!(s.hash_kv(0).unwrap(), hash);
    drop(s);
    let s = Store::open(&path).unwrap();
    assert!(!s.compacting(), "a finished compaction is not started again");
    assert_eq!(get(&s, "k", 0).unwrap().value, b"v2499");
}

#[test]
fn a_reopened_store_has_the_same_keys_revisions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Store::open(dir.path()).unwrap();
        put(&mut s, "a", "1"); // 2
        put(&mut s, "a", "2"); // 3
        put(&mut s, "b", "1"); // 4
        delete(&mut s, "b", ""); // 5
        put(&mut s, "a", "3"); // 6
        s.compact(4).unwrap();
        let mut txn = s.write();
        txn.put(b"c", b"1", 0).unwrap();
        txn.commit(Some(9)).unwrap(); // 7
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.current_revision(), 7);
    assert_eq!(s.compact_revision(), 4);
    assert_eq!(s.consistent_index(), 9);
    let a = get(&s, "a", 0).unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 6, 3));
    assert_eq!(get(&s, "a", 4).unwrap().value, b"2");
    assert_eq!(get(&s, "b", 0), None);
    assert_eq!(s.range(b"a", b"", 0, 3), Err(MvccError::Compacted));
    assert_eq!(s.key_count(), 2);
}

#[test]
fn records_round_trip_and_damage_is_reported() {
    let kv = KeyValue {
        key: b"k\xff".to_vec(),
        create_revision: 2,
        mod_revision: 9,
        version: 3,
        value: vec![],
        lease: 0x7fff,
    };
    assert_eq!(decode(&encode(&kv)), Ok(kv.clone()));
    let bytes = encode(&kv);
    assert!(matches!(decode(&bytes[..bytes.len() - 1]), Err(MvccError::Corrupt(_))));
    assert!(matches!(decode(&[9]), Err(MvccError::Corrupt(_))));
    assert_eq!(parse_record_key(&record_key(Revision::new(5, 2), true)), Ok((Revision::new(5, 2), true)));
    assert!(parse_record_key(b"kshort").is_err());
}

#[test]
fn an_open_waits_for_a_lock_this_process_is_letting_go_of_and_not_forever() {
    let dir = tempfile::tempdir().unwrap();
    // Held open elsewhere in this process for a moment, as sled's flusher thread can after a close.
    let held = open_db(dir.path()).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let started = std::time::Instant::now();
    let reopened = open_db(dir.path());
    release.join().unwrap();
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "it waited for the lock");
    // Held for good (as by another process): the lock error, after the bounded wait.
    let started = std::time::Instant::now();
    match open_db(dir.path()) {
        Err(sled::Error::Io(e)) => assert!(is_lock_busy(&e), "{e}"),
        other => panic!("opened a database held open: {:?}", other.map(|_| ())),
    }
    assert!(started.elapsed() >= RELOCK_WAIT);
    drop(reopened);
}

#[test]
fn keys_only_ranges_answer_from_memory_what_full_ranges_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let mut txn = s.write();
    txn.grant(7, 60);
    txn.put(b"a", b"1", 7).unwrap();
    txn.commit(None).unwrap(); // 2
    put(&mut s, "b", "1"); // 3
    put(&mut s, "a", "2"); // 4
    delete(&mut s, "b", ""); // 5
    put(&mut s, "c", "1"); // 6
    let strip = |r: RangeResult| -> Vec<KeyValue> {
        r.kvs.into_iter().map(|kv| KeyValue { value: Vec::new(), ..kv }).collect()
    };
    for rev in [0, 2, 3, 4, 5, 6] {
        let full = strip(s.range(b"a", &[0], 0, rev).unwrap());
        let keys = s.range_keys_only(b"a", &[0], 0, rev).unwrap().kvs;
        assert_eq!(keys, full, "at revision {rev}");
    }
    assert_eq!(s.range_keys_only(b"a", b"", 0, 0).unwrap().kvs[0].lease, 0, "a's newest put has no lease");
    // The newest versions are not read from the database: gone from it, they still list.
    s.flush_group().unwrap();
    s.tree.remove(record_key(Revision::new(6, 0), false)).unwrap();
    assert!(s.range(b"c", b"", 0, 0).is_err(), "a full read needs the record");
    let keys = s.range_keys_only(b"a", &[0], 0, 0).unwrap().kvs;
    assert_eq!(keys.iter().map(|kv| kv.key.as_slice()).collect::<Vec<_>>(), [&b"a"[..], b"c"]);
    assert_eq!((keys[1].create_revision, keys[1].mod_revision, keys[1].version), (6, 6, 1));
}

/// An export is the store at the revision it was taken: writes made after it (while it is written
/// without the store's lock) are not in it, a compaction holds at once but leaves the records it
/// drops until the export ends, and its file reads back as etcd's backend with every record up to
/// that revision.
#[test]
fn an_export_is_one_revision_while_writes_go_on_and_compaction_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    for i in 0..3000 {
        put(&mut s, &format!("k{:04}", i % 1000), &"v".repeat(i % 50));
    }
    delete(&mut s, "k0500", "k0600");
    let export = s.export_etcd_backend().unwrap();
    let at = export.revision;
    assert_eq!(at, s.current_revision());
    for i in 0..200 {
        put(&mut s, &format!("later{i}"), "x");
    }
    let path = dir.path().join("backend.db");
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            export.write(&path).unwrap()
        })
    };
    // Compaction drops records the export reads (2000 superseded puts): it holds at once (reads
    // before it are refused), and the records go once the export has ended, or the file below
    // would miss them.
    let in_use = s.db_size_in_use();
    s.compact(at).unwrap();
    assert!(matches!(s.range(b"k0001", b"", 0, at - 1), Err(MvccError::Compacted)));
    assert_eq!(s.db_size_in_use(), in_use, "nothing removed while the export reads");
    // An export taken meanwhile has the records, so its compaction is scheduled, not finished.
    let during = dir.path().join("during.db");
    s.export_etcd_backend().unwrap().write(&during).unwrap();
    let meta = crate::etcd::backend::read(&during, |_, _| Ok(())).unwrap();
    assert_eq!((meta.compacted, meta.scheduled_compaction), (0, at));
    let size = writer.join().unwrap();
    s.finish_compaction().unwrap();
    assert!(s.db_size_in_use() < in_use, "removed once the export ended");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let mut revisions = Vec::new();
    let data = crate::etcd::backend::read(&path, |rev, kv| {
        revisions.push((rev.main, rev.tombstone, kv.key));
        Ok(())
    })
    .unwrap();
    assert_eq!(revisions.len(), 3000 + 100, "every put and the 100 deletions, nothing later");
    assert_eq!(revisions.last().map(|r| r.0), Some(at));
    assert!(revisions.iter().all(|(main, _, key)| *main <= at && !key.starts_with(b"later")));
    assert_eq!(revisions.iter().filter(|r| r.1).count(), 100);
    assert_eq!(data.compacted, 0, "the export was taken before the compaction");
}

/// The snapshot RPC lays its export out under shared holds of the store, one per few thousand
/// keys. Work that removes records and needs the store exclusively (defragmentation, a leader's
/// snapshot) holds it through `write_without_exports`, which waits for the export with the store
/// let go: waiting while holding it would stop both for good.
#[test]
fn work_that_removes_records_waits_for_an_export_without_holding_the_store() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    for i in 0..2000 {
        put(&mut s, &format!("k{:04}", i % 500), "v");
    }
    let lock = std::sync::Arc::new(std::sync::RwLock::new(s));
    let ended = std::sync::Arc::new(AtomicBool::new(false));
    let export = lock.read().unwrap().export_etcd_backend().unwrap();
    let exporter = {
        let (lock, ended) = (lock.clone(), ended.clone());
        std::thread::spawn(move || {
            let gather = |at, from: &Bound<Vec<u8>>| {
                // Slow, so the defragmentation below asks for the store meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(20));
                lock.read().unwrap().record_lengths(at, from, 50)
            };
            let layout = export.layout(gather).unwrap();
            ended.store(true, Ordering::SeqCst);
            drop(export);
            layout.bytes()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut store = write_without_exports(&lock).unwrap();
    assert!(ended.load(Ordering::SeqCst), "held only once the export had ended");
    drop(store);
    assert!(exporter.join().unwrap() > 0);
    // Held plainly with an export running, the work is refused rather than waited for.
    let export = lock.read().unwrap().export_etcd_backend().unwrap();
    let image = lock.read().unwrap().image().unwrap();
    let err = lock.write().unwrap().restore_image(&image).unwrap_err();
    assert_eq!(err.to_string(), "mvcc: storage: cannot restore a snapshot while a snapshot is being sent");
    drop(export);
    store = lock.write().unwrap();
    store.restore_image(&image).unwrap();
}

/// A defragmentation copies the records while writes go on, swaps the copy in only once a
/// snapshot being sent has ended, and leaves out what a compaction under way drops: the store
/// reads, hashes and reopens (its tally) as before, and the data dir is smaller.
#[test]
fn a_defragmentation_copies_while_writes_go_on_and_waits_for_an_export_to_swap() {
    defragment_during_compaction(false);
}

/// The same with the compaction's index compacted part way: of the keys it has not reached, every
/// record is copied.
#[test]
fn a_defragmentation_during_a_compaction_of_the_index_copies_what_it_has_not_reached() {
    defragment_during_compaction(true);
}

fn defragment_during_compaction(index_part_way: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut s = Store::open(&path).unwrap();
    let big = "v".repeat(1000);
    for i in 0..10_000 {
        put(&mut s, &format!("k{:03}", i % 500), &big);
    }
    let before = s.db_size();
    let rev = s.current_revision();
    let compacted = rev - 1000;
    s.compact(compacted).unwrap();
    // The index compacted part way, or whole and one step of the records: most are still there.
    let indexing = |s: &Store| s.compaction.as_ref().is_some_and(|c| c.indexing.is_some());
    for _ in 0..5 {
        s.compaction_step().unwrap();
    }
    while !index_part_way && indexing(&s) {
        s.compaction_step().unwrap();
    }
    s.compaction_step().unwrap();
    assert_eq!(indexing(&s), index_part_way);
    let kept = s.hash_kv(rev).unwrap();
    let lock = std::sync::Arc::new(std::sync::RwLock::new(s));
    let export = lock.read().unwrap().export_etcd_backend().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let writer = {
        let (lock, stop) = (lock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 20_000 {
                let mut s = lock.write().unwrap();
                s.begin_group();
                put(&mut s, &format!("w{n:05}"), "during");
                drop(s);
                n += 1;
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            n
        })
    };
    let defrag = {
        let lock = lock.clone();
        std::thread::spawn(move || defragment(&lock))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!defrag.is_finished(), "the swap waits for the export");
    assert!(lock.read().unwrap().current_revision() > rev, "writes go on meanwhile");
    let data = export.layout(|at, from| lock.read().unwrap().record_lengths(at, from, 1000)).unwrap();
    assert!(data.bytes() > 0);
    drop(export);
    let done = defrag.join().unwrap().unwrap();
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    assert!(written > 0);
    assert!(done.passes >= 2, "what was written during the first pass is copied in another: {done:?}");
    assert_eq!(beside(&path), Vec::<String>::new(), "nothing left beside the store");

    let mut s = std::sync::Arc::try_unwrap(lock).ok().unwrap().into_inner().unwrap();
    // Every key reads at the compaction's revision (its record there was kept), and an export,
    // laid out from the index, agrees with the records.
    assert_eq!(s.range(b"k", b"l", 0, compacted).unwrap().count, 500);
    s.export_etcd_backend().unwrap().write(&dir.path().join("after.db")).unwrap();
    // What the compaction dropped was left out; reads and the hash at its revision are unchanged.
    assert_eq!(s.hash_kv(rev).unwrap(), kept);
    assert_eq!(get(&s, "k499", rev).unwrap().value, big.as_bytes());
    assert_eq!(get(&s, &format!("w{:05}", written - 1), 0).unwrap().value, b"during");
    s.finish_compaction().unwrap();
    assert!(!s.compacting());
    s.flush().unwrap();
    let after = s.db_size();
    let most = if index_part_way { before * 9 / 10 } else { before / 2 };
    assert!(after < most, "{after} bytes after, {before} before, {written} written");
    let current = s.current_revision();
    drop(s);
    // The copy's tally is right: it opens, with everything.
    let s = Store::open(&path).unwrap();
    assert_eq!(s.current_revision(), current);
    assert_eq!(s.hash_kv(rev).unwrap(), kept);
    assert_eq!(s.range(b"w", b"x", 0, 0).unwrap().count, written);
}

/// An export streamed as the snapshot RPC sends it (laid out from the key index's record lengths,
/// then made page by page) is byte for byte the file the same export writes: with deletions,
/// leases, a transaction of several changes to one key, a value past a page, and compacted history,
/// both as written and after the store is reopened (its index rebuilt from the records).
#[test]
fn a_streamed_export_is_the_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("store")).unwrap();
    for i in 0..5000 {
        put(&mut s, &format!("key/{:05}", i % 1700), &"v".repeat(i % 700));
    }
    delete(&mut s, "key/00100", "key/00200");
    let compact_at = put(&mut s, "big", &"b".repeat(100_000));
    let mut txn = s.write();
    txn.grant(0x1234_5678_9abc, 60);
    txn.put(b"leased", b"1", 0x1234_5678_9abc).unwrap();
    txn.put(b"twice", b"1", 0).unwrap();
    txn.delete_range(b"twice", b"").unwrap();
    txn.put(b"twice", b"2", 0).unwrap();
    txn.commit(None).unwrap();
    s.compact(compact_at - 300).unwrap();
    put(&mut s, "key/00150", "back");
    let check = |s: &Store, name: &str| {
        let path = dir.path().join(name);
        let size = s.export_etcd_backend().unwrap().write(&path).unwrap();
        let export = s.export_etcd_backend().unwrap();
        // The key index has every record with its length in etcd's backend, as read from sled,
        // gathered 100 keys at a time.
        let (mut from_index, mut from) = (Vec::new(), Bound::Unbounded);
        loop {
            let (run, next) = s.record_lengths(export.revision, &from, 100).unwrap();
            from_index.extend(run.iter().map(|r| (r.main, i64::from(r.sub), r.deleted(), r.bytes())));
            match next {
                Some(key) => from = Bound::Excluded(key),
                None => break,
            }
        }
        from_index.sort();
        let mut from_records = Vec::new();
        for item in s.tree.scan_prefix([RECORD]) {
            let (k, v) = item.unwrap();
            let (rev, deleted) = parse_record_key(&k).unwrap();
            let r = record_ref(&v).unwrap();
            // A compaction under way: its records still in sled are not in the index, nor in the file.
            if s.compaction_skips().is_some_and(|s| s.drops(&rev, r.key)) {
                continue;
            }
            let numbers =
                if deleted { [0; 4] } else { [r.create_revision, r.mod_revision, r.version, r.lease] };
            let value = if deleted { 0 } else { r.value.len() };
            let len = crate::etcd::backend::key_value_len(r.key.len(), numbers, value);
            from_records.push((rev.main, rev.sub, deleted, len));
        }
        assert_eq!(from_index, from_records, "{name}");
        assert!(from_records.iter().filter(|r| r.2).count() >= 100, "{name}: deletions are in the history");
        let layout = export.layout(|at, from| s.record_lengths(at, from, 100)).unwrap();
        assert_eq!(
            export.layout(|at, from| s.record_lengths(at, from, 1 << 20)).unwrap(),
            layout,
            "one run or many"
        );
        assert_eq!(layout.bytes(), size, "{name}");
        let streamed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (into, pieces) = (streamed.clone(), std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let counted = pieces.clone();
        export
            .stream(layout, move |bytes| {
                assert_eq!(bytes.len() % 4096, 0, "whole pages");
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                into.lock().unwrap().extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
        let streamed = streamed.lock().unwrap().clone();
        assert_eq!(streamed.len() as u64, size);
        assert!(streamed == std::fs::read(&path).unwrap(), "{name}: the streamed bytes differ from the file");
        assert!(pieces.load(std::sync::atomic::Ordering::Relaxed) > 1, "handed on as it was made");
        layout
    };
    // Part of the index compacted: what the file holds of each key follows where the compaction is.
    for _ in 0..10 {
        s.compaction_step().unwrap();
    }
    assert!(s.compaction.as_ref().is_some_and(|c| c.indexing.is_some()), "the index is compacted part way");
    let part_way = check(&s, "indexing.db");
    while s.compaction.as_ref().is_some_and(|c| c.indexing.is_some()) {
        s.compaction_step().unwrap();
    }
    assert!(s.compacting(), "the compaction's records are still there");
    let layout = check(&s, "written.db");
    assert!(layout.bytes() < part_way.bytes(), "the compacted index lays out less");
    s.finish_compaction().unwrap();
    assert_eq!(check(&s, "compacted.db"), layout, "the same once the compaction's records are gone");
    drop(s);
    let s = Store::open(&dir.path().join("store")).unwrap();
    assert_eq!(check(&s, "reopened.db"), layout, "the rebuilt index lays the file out the same");
    // A layout that does not match (the data changed between the passes) is an error.
    let export = s.export_etcd_backend().unwrap();
    let wrong = crate::etcd::bbolt_writer::Layout { pages: layout.pages + 1, ..layout };
    assert!(export.stream(wrong, |_| Ok(())).is_err());
}

/// The tally written with every batch matches what is in sled after every kind of write, and a
/// store that lost (or gained, or had changed) a pair behind its back is refused at open, with
/// what was found. A store from before tallies opens and takes what it counts.
#[test]
fn a_store_whose_pairs_do_not_add_up_to_its_tally_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let raw = |f: &dyn Fn(&sled::Tree)| {
        let db = sled::open(&path).unwrap();
        f(&db.open_tree("mvcc").unwrap());
        db.flush().unwrap();
    };
    {
        let mut s = Store::open(&path).unwrap();
        put(&mut s, "a", "1");
        s.begin_group();
        for i in 0..50 {
            put_at(&mut s, &format!("k{i}"), &"v".repeat(i), i as u64 + 2);
        }
        delete(&mut s, "k1", "k3");
        s.flush_group().unwrap();
        let mut txn = s.write();
        txn.grant(7, 60);
        txn.put(b"leased", b"x", 7).unwrap();
        txn.set_member(9, RaftMember { peer_urls: vec!["http://m:2380".into()], is_learner: false });
        txn.set_alarm(9, 1, true);
        txn.commit(Some(60)).unwrap();
        let mut txn = s.write();
        txn.revoke(7).unwrap();
        txn.remove_member(9);
        txn.commit(Some(61)).unwrap();
        s.compact(20).unwrap();
        let lock = std::sync::RwLock::new(s);
        defragment(&lock).unwrap();
        s = lock.into_inner().unwrap();
        let image = s.image().unwrap();
        s.restore_image(&image).unwrap();
        put_at(&mut s, "after", "image", 62);
        s.flush().unwrap();
    }
    // Every path above kept the tally: it opens.
    let s = Store::open(&path).unwrap();
    let tally = s.tally();
    assert!(tally.pairs > 40, "{tally:?}");
    drop(s);

    // A record gone behind the store's back.
    raw(&|t| {
        t.remove(record_key(Revision::new(5, 0), false)).unwrap();
    });
    let err = Store::open(&path).err().expect("refused");
    assert!(matches!(err, MvccError::Lost(_)), "{err}");
    let found = format!("holds {} pairs where its last write left {}", tally.pairs - 1, tally.pairs);
    assert!(err.to_string().contains(&found), "{err}");
    assert!(err.to_string().contains("acknowledged may be missing"), "{err}");
    // Back, and another one changed: the count agrees, the checksum does not.
    raw(&|t| {
        let key = record_key(Revision::new(6, 0), false);
        let mut v = t.get(&key).unwrap().unwrap().to_vec();
        *v.last_mut().unwrap() ^= 1;
        t.insert(&key, v).unwrap();
    });
    let err = Store::open(&path).err().expect("refused");
    assert!(err.to_string().contains(&found), "{err}");
    // A pair nobody wrote.
    raw(&|t| {
        t.remove(META_TALLY).unwrap();
    });
    // Without a tally (a store from before tallies), it opens and counts: from now on the
    // count is kept.
    let mut s = Store::open(&path).unwrap();
    put_at(&mut s, "later", "x", 63);
    s.flush().unwrap();
    drop(s);
    raw(&|t| {
        t.insert(b"zstray", &b"nobody wrote this"[..]).unwrap();
    });
    let err = Store::open(&path).err().expect("refused");
    assert!(matches!(err, MvccError::Lost(_)), "{err}");
}

/// The stagings and leftovers beside the database `live`.
fn beside(live: &std::path::Path) -> Vec<String> {
    let name = live.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<String> = std::fs::read_dir(live.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.")))
        .collect();
    found.sort();
    found
}

#[test]
fn an_export_staged_beside_another_store_and_switched_in_is_the_same_store_and_stays_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open(&dir.path().join("a")).unwrap();
    for i in 0..200 {
        put(&mut a, &format!("k{i:03}"), &"v".repeat(i));
    }
    delete(&mut a, "k000", "k010");
    a.compact(50).unwrap();
    {
        let mut txn = a.write();
        txn.grant(7, 60);
        txn.put(b"leased", b"x", 7).unwrap();
        txn.commit(Some(300)).unwrap();
    }
    let export = a.raft_export().unwrap();
    let (rev, hash) = (a.current_revision(), a.hash_kv(0).unwrap());
    let history = a.history(50, rev).unwrap();
    // Written after the export began, and a compaction then: neither is in it (the compaction's
    // records stay until the export ends).
    put(&mut a, "after", "no");
    a.compact(rev).unwrap();
    assert!(a.compacting());

    let live = dir.path().join("b").join("db");
    let mut b = Store::open(&live).unwrap();
    put(&mut b, "replaced", "yes");
    // A staging dropped part way, or fed out of order, leaves nothing.
    {
        let mut stager = Stager::new(&live).unwrap();
        for pair in export.pairs().take(20) {
            let (k, v) = pair.unwrap();
            stager.add(k, v).unwrap();
        }
        assert_eq!(beside(&live).len(), 1);
    }
    let mut stager = Stager::new(&live).unwrap();
    stager.add(b"z".to_vec(), Vec::new()).unwrap();
    assert!(matches!(stager.add(b"a".to_vec(), Vec::new()), Err(MvccError::Corrupt(_))));
    drop(stager);
    assert_eq!(beside(&live), Vec::<String>::new());

    let mut stager = Stager::new(&live).unwrap();
    for pair in export.pairs() {
        let (k, v) = pair.unwrap();
        stager.add(k, v).unwrap();
    }
    b.switch_to(stager.finish(Some((300, 4))).unwrap()).unwrap();
    drop(export);
    let check = |b: &Store| {
        assert_eq!(b.current_revision(), rev);
        assert_eq!(b.compact_revision(), 50);
        assert_eq!(b.hash_kv(0).unwrap(), hash);
        assert_eq!(b.raft_snapshot().unwrap(), Some((300, 4)));
        assert_eq!(b.consistent_index(), 300);
        assert_eq!(get(b, "k100", 0).unwrap().value, "v".repeat(100).into_bytes());
        assert!(
            get(b, "k005", 0).is_none() && get(b, "after", 0).is_none() && get(b, "replaced", 0).is_none()
        );
        assert_eq!(lease_keys(b), vec![(7, vec!["leased".to_string()])]);
        assert_eq!(b.history(50, rev).unwrap(), history);
    };
    check(&b);
    assert_eq!(beside(&live), Vec::<String>::new());
    drop(b);
    check(&Store::open(&live).unwrap());
}

#[test]
fn a_switch_a_crash_cut_short_comes_back_as_the_old_store_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("db");
    let old = dir.path().join("db.old");
    let mut s = Store::open(&live).unwrap();
    put(&mut s, "old", "1");
    s.make_durable().unwrap();
    drop(s);
    // Cut after the live database was renamed away, with a staging beside it: the old one is back.
    std::fs::rename(&live, &old).unwrap();
    std::fs::create_dir(dir.path().join("db.incoming.3")).unwrap();
    let mut s = Store::open(&live).unwrap();
    assert!(get(&s, "old", 0).is_some());
    assert_eq!(beside(&live), Vec::<String>::new());
    // Cut after the staged one took its place: the new one stays, the old one goes.
    put(&mut s, "new", "2");
    s.make_durable().unwrap();
    drop(s);
    std::fs::create_dir(&old).unwrap();
    let s = Store::open(&live).unwrap();
    assert!(get(&s, "new", 0).is_some());
    assert_eq!(beside(&live), Vec::<String>::new());
}
