//! The v2 store against etcd 3.4's v2store rules (its store_test.go cases where they apply).

use super::*;

const NOW: i64 = 1_800_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

fn permanent() -> Ttl {
    Ttl::default()
}

fn ttl(secs: i64) -> Ttl {
    Ttl { expire: Some(NOW + secs * SEC), refresh: false }
}

fn json(e: &Event) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn writes_move_the_index_by_one_and_answer_etcds_events() {
    let mut s = Store::new();
    assert_eq!(s.index(), 0);
    let e = s.set("/1/foo/bar", false, "bar", permanent(), NOW).unwrap();
    assert_eq!(
        json(&e),
        r#"{"action":"set","node":{"key":"/1/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert!(e.is_created());
    assert_eq!((e.etcd_index, s.index()), (1, 1));
    // The directory made on the way has the same index.
    let d = s.get("/1/foo", false, NOW).unwrap();
    assert_eq!(
        json(&d),
        r#"{"action":"get","node":{"key":"/1/foo","dir":true,"nodes":[{"key":"/1/foo/bar","value":"bar","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}"#
    );
    // A set replaces the node: a new created index, the old node as prevNode, 200.
    let e = s.set("/1/foo/bar", false, "baz", permanent(), NOW).unwrap();
    assert_eq!((e.node.created_index, e.node.modified_index), (2, 2));
    assert_eq!(e.prev_node.as_ref().unwrap().value.as_deref(), Some("bar"));
    assert!(!e.is_created());
    // Reads and failures leave the index.
    assert_eq!(s.get("/1/foo/bar", false, NOW).unwrap().etcd_index, 2);
    assert!(s.get("/1/nope", false, NOW).is_err());
    assert_eq!(s.index(), 2);
}

#[test]
fn errors_are_etcds_codes_causes_and_indexes() {
    let mut s = Store::new();
    s.set("/1/file", false, "v", permanent(), NOW).unwrap();
    s.create("/1/dir", true, "", false, permanent(), NOW).unwrap();
    let err = |r: Result<Event, V2Error>| r.unwrap_err();
    // Not found names the first missing element; a file walked into is "not a directory".
    assert_eq!(err(s.get("/1/a/b", false, NOW)), V2Error::new(100, "/1/a", 2));
    assert_eq!(err(s.get("/1/file/x", false, NOW)), V2Error::new(104, "/1/file", 2));
    assert_eq!(
        err(s.create("/1/file/x", false, "v", false, permanent(), NOW)),
        V2Error::new(104, "/1/file", 2)
    );
    assert_eq!(
        err(s.create("/1/file", false, "v", false, permanent(), NOW)),
        V2Error::new(105, "/1/file", 2)
    );
    // A directory cannot be set, updated with a value, swapped or deleted as a key.
    assert_eq!(err(s.set("/1/dir", true, "", permanent(), NOW)), V2Error::new(102, "/1/dir", 2));
    assert_eq!(err(s.update("/1/dir", "v", permanent(), NOW)), V2Error::new(102, "/1/dir", 2));
    assert_eq!(
        err(s.compare_and_swap("/1/dir", "a", 0, "b", permanent(), NOW)),
        V2Error::new(102, "/1/dir", 2)
    );
    assert_eq!(err(s.delete("/1/dir", false, false, NOW)), V2Error::new(102, "/1/dir", 2));
    assert_eq!(err(s.compare_and_delete("/1/dir", "a", 0, NOW)), V2Error::new(102, "/1/dir", 2));
    // The roots are read-only, named "/".
    for root in ["/1", "/1/", "/0", "/"] {
        assert_eq!(err(s.set(root, false, "v", permanent(), NOW)), V2Error::new(107, "/", 2), "{root}");
        assert_eq!(err(s.delete(root, true, true, NOW)), V2Error::new(107, "/", 2), "{root}");
    }
    // Compare failures say what differed.
    assert_eq!(err(s.compare_and_swap("/1/file", "x", 0, "y", permanent(), NOW)).cause, "[x != v]");
    assert_eq!(err(s.compare_and_swap("/1/file", "", 7, "y", permanent(), NOW)).cause, "[7 != 1]");
    let both = err(s.compare_and_delete("/1/file", "x", 7, NOW));
    assert_eq!((both.code, both.cause.as_str()), (101, "[x != v] [7 != 1]"));
    assert_eq!(err(s.compare_and_swap("/1/none", "x", 0, "y", permanent(), NOW)).code, 100);
    assert_eq!(s.index(), 2);
    assert_eq!(both.to_string(), "101: Compare failed ([x != v] [7 != 1]) [2]");
}

#[test]
fn updates_swaps_and_deletes_follow_etcd() {
    let mut s = Store::new();
    s.set("/1/k", false, "a", ttl(60), NOW).unwrap();
    // Update keeps the created index; without a TTL the key becomes permanent.
    let e = s.update("/1/k", "b", permanent(), NOW).unwrap();
    assert_eq!((e.node.created_index, e.node.modified_index), (1, 2));
    assert_eq!(e.prev_node.as_ref().unwrap().ttl, 60);
    assert!(e.node.expiration.is_none() && !s.has_ttl_keys());
    let e = s.compare_and_swap("/1/k", "b", 2, "c", ttl(10), NOW).unwrap();
    assert_eq!(e.action, "compareAndSwap");
    assert_eq!((e.node.value.as_deref(), e.node.ttl), (Some("c"), 10));
    let e = s.compare_and_delete("/1/k", "c", 0, NOW).unwrap();
    assert_eq!(
        json(&e),
        format!(
            r#"{{"action":"compareAndDelete","node":{{"key":"/1/k","modifiedIndex":4,"createdIndex":1}},"prevNode":{{"key":"/1/k","value":"c","expiration":"{}","ttl":10,"modifiedIndex":3,"createdIndex":1}}}}"#,
            go_time(NOW + 10 * SEC)
        )
    );
    assert!(!s.has_ttl_keys(), "a deleted key's TTL goes with it");
    // An update of a directory answers a new index, and keeps the directory's.
    s.create("/1/d", true, "", false, permanent(), NOW).unwrap();
    let e = s.update("/1/d", "", ttl(5), NOW).unwrap();
    assert_eq!((e.node.dir, e.node.modified_index), (true, 6));
    assert_eq!(s.get("/1/d", false, NOW).unwrap().node.modified_index, 5);
    // A directory with something in it goes only recursively.
    s.set("/1/d/x", false, "1", permanent(), NOW).unwrap();
    assert_eq!(s.delete("/1/d", true, false, NOW).unwrap_err(), V2Error::new(108, "/1/d", 7));
    let e = s.delete("/1/d", false, true, NOW).unwrap();
    assert_eq!((e.node.dir, e.node.modified_index, e.node.created_index), (true, 8, 5));
    assert!(e.prev_node.as_ref().unwrap().nodes.is_empty(), "prevNode is not recursive");
    assert!(!s.has_ttl_keys());
    // dir=true on a key deletes the key.
    s.set("/1/f", false, "v", permanent(), NOW).unwrap();
    assert_eq!(s.delete("/1/f", true, false, NOW).unwrap().prev_node.unwrap().value.as_deref(), Some("v"));
}

#[test]
fn in_order_keys_are_named_by_the_index_and_listings_hide_underscores() {
    let mut s = Store::new();
    s.set("/1/q/_hidden", false, "h", permanent(), NOW).unwrap();
    let a = s.create("/1/q", false, "first", true, permanent(), NOW).unwrap();
    let b = s.create("/1/q", false, "second", true, permanent(), NOW).unwrap();
    assert_eq!(a.node.key, "/1/q/00000000000000000002");
    assert_eq!(b.node.key, "/1/q/00000000000000000003");
    assert!(a.is_created());
    let listed = s.get("/1/q", false, NOW).unwrap();
    let keys: Vec<&str> = listed.node.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["/1/q/00000000000000000002", "/1/q/00000000000000000003"]);
    assert_eq!(s.get("/1/q/_hidden", false, NOW).unwrap().node.value.as_deref(), Some("h"));
    // Recursive reads list directories' children; plain ones show child directories bare.
    s.set("/1/q/sub/x", false, "1", permanent(), NOW).unwrap();
    let plain = s.get("/1/q", false, NOW).unwrap();
    assert!(plain.node.nodes.iter().all(|n| n.nodes.is_empty()));
    let deep = s.get("/1/q", true, NOW).unwrap();
    assert_eq!(deep.node.nodes.last().unwrap().nodes[0].key, "/1/q/sub/x");
    // Paths are cleaned as Go's path.Clean does.
    assert_eq!(s.get("//1/q/./sub/../sub/x/", false, NOW).unwrap().node.key, "/1/q/sub/x");
}

#[test]
fn keys_expire_at_the_sweep_each_with_an_index_and_an_event() {
    let mut s = Store::new();
    s.set("/1/a", false, "1", ttl(1), NOW).unwrap();
    s.create("/1/d", true, "", false, ttl(2), NOW).unwrap();
    s.set("/1/d/in", false, "2", ttl(30), NOW).unwrap();
    s.set("/1/stays", false, "3", permanent(), NOW).unwrap();
    // The TTL is rounded up; an expired key is readable until the sweep.
    assert_eq!(s.get("/1/a", false, NOW + SEC / 2).unwrap().node.ttl, 1);
    assert!(s.delete_expired(NOW).is_empty());
    let gone = s.delete_expired(NOW + 2 * SEC);
    let what: Vec<(&str, &str, bool, u64)> = gone
        .iter()
        .map(|e| (e.action.as_str(), e.node.key.as_str(), e.node.dir, e.node.modified_index))
        .collect();
    assert_eq!(what, [("expire", "/1/a", false, 5), ("expire", "/1/d", true, 6)]);
    assert_eq!(gone[0].prev_node.as_ref().unwrap().value.as_deref(), Some("1"));
    assert!(!s.has_ttl_keys(), "the key inside the expired directory went with it");
    assert_eq!(s.index(), 6);
    // A refresh keeps the value and is no news to watchers.
    s.set("/1/r", false, "v", ttl(5), NOW).unwrap();
    let refresh = Ttl { expire: Some(NOW + 50 * SEC), refresh: true };
    let e = s.set("/1/r", false, "", refresh, NOW).unwrap();
    assert_eq!((e.node.value.as_deref(), e.node.ttl, e.refresh), (Some("v"), 50, true));
    assert_eq!(s.watch_from("/1/r", false, 8).unwrap(), None);
    assert_eq!(s.set("/1/none", false, "", refresh, NOW).unwrap_err().code, 100);
    // An expiry before 2000 is none.
    let old = Ttl { expire: Some(1), refresh: false };
    assert!(s.set("/1/p", false, "v", old, NOW).unwrap().node.expiration.is_none());
}

#[test]
fn watches_start_from_the_history_of_the_last_1000_events() {
    let mut s = Store::new();
    s.set("/1/w/a", false, "1", permanent(), NOW).unwrap();
    s.set("/1/other", false, "1", permanent(), NOW).unwrap();
    s.set("/1/w/b", false, "2", permanent(), NOW).unwrap();
    // From index 1, the first change of the key; recursively, of anything under it.
    assert_eq!(s.watch_from("/1/w/b", false, 1).unwrap().unwrap().etcd_index, 3);
    assert_eq!(s.watch_from("/1/w", true, 2).unwrap().unwrap().node.key, "/1/w/b");
    assert_eq!(s.watch_from("/1/w", false, 1).unwrap(), None, "only the directory itself, not recursive");
    // From the next index: nothing yet.
    assert_eq!(s.watch_from("/1/w/a", false, 0).unwrap(), None);
    // A directory's deletion reaches a watcher of a key in it.
    s.delete("/1/w", true, true, NOW).unwrap();
    assert_eq!(s.watch_from("/1/w/a", false, 4).unwrap().unwrap().action, "delete");
    for i in 0..1000 {
        s.set("/1/many", false, &i.to_string(), permanent(), NOW).unwrap();
    }
    let cleared = s.watch_from("/1/many", false, 3).unwrap_err();
    assert_eq!(cleared, V2Error::new(401, "the requested history has been cleared [5/3]", 1004),);
    assert_eq!(s.watch_from("/1/many", false, 5).unwrap().unwrap().node.value.as_deref(), Some("0"));
}

/// The store's records on disk, as a store writes them change by change.
#[derive(Default)]
struct Disk {
    nodes: BTreeMap<String, Vec<u8>>,
    events: BTreeMap<u64, Vec<u8>>,
    index: u64,
}

impl Disk {
    fn write(&mut self, s: &mut Store) {
        let c = s.take_changes();
        for (path, record) in c.nodes {
            match record {
                Some(r) => self.nodes.insert(path, r),
                None => self.nodes.remove(&path),
            };
        }
        for (i, record) in c.events {
            match record {
                Some(r) => self.events.insert(i, r),
                None => self.events.remove(&i),
            };
        }
        self.index = c.index;
    }

    fn load(&self) -> Result<Store, String> {
        Store::from_records(self.nodes.clone(), self.events.clone(), self.index)
    }
}

#[test]
fn a_saved_store_loads_back_with_its_ttls_and_history() {
    let mut s = Store::new();
    let mut disk = Disk::default();
    s.set("/1/a", false, "1", ttl(5), NOW).unwrap();
    disk.write(&mut s);
    s.set("/1/d/e/b", false, "2", permanent(), NOW).unwrap();
    s.set("/1/d/c", false, "3", permanent(), NOW).unwrap();
    disk.write(&mut s);
    s.set("/1/a", false, "", Ttl { expire: Some(NOW + 9 * SEC), refresh: true }, NOW).unwrap();
    s.delete("/1/d/e", true, true, NOW).unwrap();
    disk.write(&mut s);
    assert!(!disk.nodes.contains_key("/1/d/e/b"), "what a deletion removed is gone from the records");
    let back = disk.load().unwrap();
    assert_eq!(back.index(), 5);
    assert_eq!(json(&back.get("/1", true, NOW).unwrap()), json(&s.get("/1", true, NOW).unwrap()));
    // The history keeps each event's index and which were refreshes.
    assert_eq!(back.watch_from("/1/a", false, 1).unwrap().unwrap().etcd_index, 1);
    assert_eq!(back.watch_from("/1/a", false, 2).unwrap(), None);
    let mut back = back;
    assert_eq!(back.delete_expired(NOW + 10 * SEC).len(), 1, "the TTL is known again");
    // Past 1000 events the oldest records go; the history loads as the store holds it.
    for i in 0..1200 {
        s.set("/1/many", false, &i.to_string(), permanent(), NOW).unwrap();
        if i % 7 == 0 {
            disk.write(&mut s);
        }
    }
    disk.write(&mut s);
    assert_eq!(disk.events.len(), 1000);
    assert_eq!(disk.events.keys().next(), Some(&206));
    let back = disk.load().unwrap();
    assert_eq!(back.watch_from("/1/many", false, 206).unwrap().unwrap().etcd_index, 206);
    assert_eq!(back.watch_from("/1/many", false, 205).unwrap_err().code, 401);
    // A store that only ever wrote its changes is what its records load.
    let mut again = back.clone();
    assert_eq!(again.take_changes(), Changes { index: 1205, ..Changes::default() });
}

#[test]
fn keys_as_deep_as_allowed_save_and_load_and_bad_records_are_refused() {
    let mut s = Store::new();
    let mut disk = Disk::default();
    let deep = format!("/1{}", "/d".repeat(MAX_DEPTH - 1));
    assert_eq!(depth(&deep), MAX_DEPTH);
    s.set(&deep, false, "bottom", permanent(), NOW).unwrap();
    disk.write(&mut s);
    let back = disk.load().unwrap();
    assert_eq!(back.get(&deep, false, NOW).unwrap().node.value.as_deref(), Some("bottom"));
    assert_eq!(json(&back.get("/1", true, NOW).unwrap()), json(&s.get("/1", true, NOW).unwrap()));
    let dir = br#"{"created":1,"modified":1,"expire":null,"value":null}"#.to_vec();
    let file = br#"{"created":1,"modified":1,"expire":null,"value":"v"}"#.to_vec();
    let refused = |nodes: Vec<(&str, &Vec<u8>)>| {
        let nodes = nodes.into_iter().map(|(k, v)| (k.to_string(), v.clone()));
        Store::from_records(nodes, Vec::new(), 1).unwrap_err()
    };
    assert!(refused(vec![("/", &file)]).contains("root"));
    assert!(refused(vec![("/a", &dir)]).contains("before the root"));
    assert!(refused(vec![("/", &dir), ("/a/b", &file)]).contains("before its directory"));
    assert!(refused(vec![("/", &dir), ("/a", &file), ("/a/b", &dir)]).contains("not a directory"));
    let too_deep = "/d".repeat(MAX_DEPTH + 1);
    assert!(refused(vec![("/", &dir), (&too_deep, &dir)]).contains("at most 256 elements"));
    assert!(refused(vec![("/", &dir), ("/a/../b", &dir)]).contains("clean path"));
    assert!(refused(vec![("/", &b"{".to_vec())]).starts_with("the v2 store: the node \"/\""));
    let event = |i: u64| {
        (
            i,
            serde_json::to_vec(&History::kept(&Event { etcd_index: i, ..Event::new("set", "/1/k", i, i) }))
                .unwrap(),
        )
    };
    let root = vec![("/".to_string(), dir.clone())];
    assert!(Store::from_records(root.clone(), vec![event(1), event(2)], 2).is_ok());
    let gap = Store::from_records(root.clone(), vec![event(1), event(3)], 3).unwrap_err();
    assert!(gap.contains("event 3 is out of place"), "{gap}");
    let ahead = Store::from_records(root, vec![event(5)], 4).unwrap_err();
    assert!(ahead.contains("event 5 is out of place"), "{ahead}");
}
