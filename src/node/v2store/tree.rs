//! The store itself: the tree, its index, the keys with a time to live, the history, and etcd's
//! operations on them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::event::{go_time, Event, History, Kept, V2Error, HISTORY_EVENTS};
// The API's node (etcd's NodeExtern), beside the tree's own `Node`.
use super::stats::StoreStats;
use crate::etcd::v2::Node as NodeView;

use crate::etcd::v2 as codes;

/// The directories no request may change (etcd's readonlySet).
const READ_ONLY: [&str; 3] = ["/", "/0", "/1"];

/// An expiry before 2000-01-01 is no expiry (etcd's minExpireTime), in Unix nanoseconds.
const MIN_EXPIRE: i64 = 946_684_800_000_000_000;

#[derive(Debug, Clone, PartialEq)]
struct Node {
    created: u64,
    modified: u64,
    /// Unix nanoseconds; None for a permanent node.
    expire: Option<i64>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    File(String),
    Dir(BTreeMap<String, Node>),
}

impl Node {
    fn dir(index: u64, expire: Option<i64>) -> Node {
        Node { created: index, modified: index, expire, kind: Kind::Dir(BTreeMap::new()) }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn value(&self) -> &str {
        match &self.kind {
            Kind::File(v) => v,
            Kind::Dir(_) => "",
        }
    }

    /// The node as the API shows it at `now`: a directory's children (those not hidden) only
    /// with `recursive`, and theirs too.
    fn view(&self, key: &str, recursive: bool, now: i64) -> NodeView {
        let (expiration, ttl) = expiration_and_ttl(self.expire, now);
        let mut v = NodeView {
            key: key.to_string(),
            expiration,
            ttl,
            modified_index: self.modified,
            created_index: self.created,
            ..NodeView::default()
        };
        match &self.kind {
            Kind::File(value) => v.value = Some(value.clone()),
            Kind::Dir(children) => {
                v.dir = true;
                if recursive {
                    v.nodes =
                        visible(children).map(|(name, c)| c.view(&join(key, name), true, now)).collect();
                }
            }
        }
        v
    }

    /// The node as a read of it answers: a directory lists its children (theirs with `recursive`).
    fn listing(&self, key: &str, recursive: bool, now: i64) -> NodeView {
        let mut v = self.view(key, false, now);
        if let Kind::Dir(children) = &self.kind {
            v.nodes = visible(children).map(|(name, c)| c.view(&join(key, name), recursive, now)).collect();
        }
        v
    }

    /// The keys with a time to live at and under this node (at `key`), with their expiries.
    fn timed(&self, key: &str, out: &mut Vec<(i64, String)>) {
        if let Some(at) = self.expire {
            out.push((at, key.to_string()));
        }
        if let Kind::Dir(children) = &self.kind {
            for (name, child) in children {
                child.timed(&join(key, name), out);
            }
        }
    }
}

/// A directory's children that a listing shows: names starting with `_` are hidden.
fn visible(children: &BTreeMap<String, Node>) -> impl Iterator<Item = (&String, &Node)> {
    children.iter().filter(|(name, _)| !name.starts_with('_'))
}

/// etcd's expiration and TTL of a node: the time in UTC, and the seconds left rounded up.
fn expiration_and_ttl(expire: Option<i64>, now: i64) -> (Option<String>, i64) {
    match expire {
        None => (None, 0),
        Some(at) => {
            let left = at - now;
            let ttl = left / 1_000_000_000 + i64::from(left % 1_000_000_000 > 0);
            (Some(go_time(at)), ttl)
        }
    }
}

/// Go's path.Clean(path.Join("/", p)): absolute, no empty, `.` or `..` elements, no trailing
/// slash.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A path's directory and last element (`/a/b` → `/a`, `b`).
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// How a write sets a node's time to live: the expiry (Unix nanoseconds; None for none), and
/// whether it only refreshes it (the value stays, and watchers are not told).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ttl {
    pub expire: Option<i64>,
    pub refresh: bool,
}

impl Ttl {
    fn expire(&self) -> Option<i64> {
        self.expire.filter(|at| *at >= MIN_EXPIRE)
    }
}

/// A node as the store's records keep it (its key is the record's).
#[derive(Serialize, Deserialize)]
struct NodeRecord {
    created: u64,
    modified: u64,
    expire: Option<i64>,
    /// None for a directory.
    value: Option<String>,
}

/// What changed since the store's records were last written: the records to write (None: to
/// remove), each node by its path and each event of the history by its index, and the index.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub nodes: Vec<(String, Option<Vec<u8>>)>,
    pub events: Vec<(u64, Option<Vec<u8>>)>,
    pub index: u64,
}

/// The most elements a key may have. The tree's walks recurse, one call per element, so a deeper
/// key (etcd takes any) could overflow a thread's stack.
pub const MAX_DEPTH: usize = 256;

/// How many elements a cleaned path has (`/` none, `/a/b` two).
pub fn depth(path: &str) -> usize {
    path.split('/').filter(|p| !p.is_empty()).count()
}

/// The v2 store: the tree, its index, the keys with a time to live and the event history.
#[derive(Debug, Clone)]
pub struct Store {
    root: Node,
    index: u64,
    timed: BTreeSet<(i64, String)>,
    history: History,
    stats: StoreStats,
    /// The paths changed since `take_changes` (written or removed).
    dirty: BTreeSet<String>,
    /// The history's indexes written to records: from the first kept to the last.
    written: Option<(u64, u64)>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store: the root, with `/0` and `/1`, at index 0.
    pub fn new() -> Store {
        let mut root = Node::dir(0, None);
        if let Kind::Dir(children) = &mut root.kind {
            children.insert("0".into(), Node::dir(0, None));
            children.insert("1".into(), Node::dir(0, None));
        }
        Store {
            root,
            index: 0,
            timed: BTreeSet::new(),
            history: History::new(HISTORY_EVENTS),
            stats: StoreStats::default(),
            dirty: ["/", "/0", "/1"].into_iter().map(String::from).collect(),
            written: None,
        }
    }

    /// The records to write for what changed since the last call (the first call: everything an
    /// empty store holds).
    pub fn take_changes(&mut self) -> Changes {
        let nodes = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|path| {
                let record = self.node(&path).ok().map(|n| {
                    let value = match &n.kind {
                        Kind::File(v) => Some(v.clone()),
                        Kind::Dir(_) => None,
                    };
                    let r = NodeRecord { created: n.created, modified: n.modified, expire: n.expire, value };
                    serde_json::to_vec(&r).unwrap_or_default()
                });
                (path, record)
            })
            .collect();
        let mut events = Vec::new();
        let first = self.history.first().unwrap_or(self.index + 1);
        let (gone_from, new_from) = self.written.map_or((first, first), |(f, l)| (f, l + 1));
        events.extend((gone_from..first.min(new_from)).map(|i| (i, None)));
        for e in self.history.since(new_from) {
            events.push((e.etcd_index, Some(serde_json::to_vec(&History::kept(e)).unwrap_or_default())));
        }
        if self.history.first().is_some() {
            self.written = Some((first, self.index));
        }
        Changes { nodes, events, index: self.index }
    }

    /// A store from its records: the nodes in key order (each directory before what is in it), the
    /// history's events in index order, and the index. Err says what is wrong with them.
    pub fn from_records(
        nodes: impl IntoIterator<Item = (String, Vec<u8>)>,
        events: impl IntoIterator<Item = (u64, Vec<u8>)>,
        index: u64,
    ) -> Result<Store, String> {
        let bad = |why: String| format!("the v2 store: {why}");
        let mut store = Store::new();
        let mut saw_root = false;
        for (key, bytes) in nodes {
            let n: NodeRecord =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("the node {key:?}: {e}")))?;
            if key == "/" {
                if n.value.is_some() || n.expire.is_some() {
                    return Err(bad("its root is not a permanent directory".into()));
                }
                store.root.created = n.created;
                store.root.modified = n.modified;
                saw_root = true;
                continue;
            }
            if clean(&key) != key || depth(&key) > MAX_DEPTH {
                return Err(bad(format!(
                    "a node's key {key:?} is not a clean path of at most {MAX_DEPTH} elements"
                )));
            }
            if !saw_root {
                return Err(bad(format!("{key:?} comes before the root")));
            }
            let (dir, name) = split(&key);
            let Ok(parent) = store.node_mut(dir) else {
                return Err(bad(format!("{key:?} comes before its directory")));
            };
            let Kind::Dir(children) = &mut parent.kind else {
                return Err(bad(format!("{key:?} is under a key, not a directory")));
            };
            let kind = match n.value {
                Some(v) => Kind::File(v),
                None => Kind::Dir(BTreeMap::new()),
            };
            let expire = n.expire;
            let node = Node { created: n.created, modified: n.modified, expire, kind };
            let existed = children.insert(name.to_string(), node);
            // `/0` and `/1` are there from the start; their records replace them.
            if existed.is_some_and(|old| !old.is_dir() || old.kind != Kind::Dir(BTreeMap::new())) {
                return Err(bad(format!("{key:?} is there twice")));
            }
            if let Some(at) = expire {
                store.timed.insert((at, key));
            }
        }
        let mut kept = Vec::new();
        let mut last = None;
        for (i, bytes) in events {
            let k: Kept = serde_json::from_slice(&bytes).map_err(|e| bad(format!("the event {i}: {e}")))?;
            if k.index != i || last.is_some_and(|l| l + 1 != i) || i > index {
                return Err(bad(format!("the history's event {i} is out of place")));
            }
            last = Some(i);
            kept.push(k);
        }
        store.history = History::from_kept(kept, HISTORY_EVENTS);
        store.written = store.history.first().map(|f| (f, index));
        store.index = index;
        store.dirty.clear();
        Ok(store)
    }

    /// What /v2/stats/store counts (this member's, not kept in snapshots).
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The index of the last change.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Whether any key has a time to live (the leader then sends expiry sweeps).
    pub fn has_ttl_keys(&self) -> bool {
        !self.timed.is_empty()
    }

    fn not_found_or_not_dir(&self, path: &str) -> V2Error {
        // Walk again to find which element failed.
        let mut at = "/".to_string();
        let mut node = &self.root;
        for name in path.split('/').filter(|p| !p.is_empty()) {
            let Kind::Dir(children) = &node.kind else {
                return V2Error::new(codes::NOT_DIR, at, self.index);
            };
            let next = join(&at, name);
            match children.get(name) {
                Some(child) => node = child,
                None => return V2Error::new(codes::KEY_NOT_FOUND, next, self.index),
            }
            at = next;
        }
        V2Error::new(codes::KEY_NOT_FOUND, path, self.index)
    }

    fn node(&self, path: &str) -> Result<&Node, V2Error> {
        let mut node = &self.root;
        for name in path.split('/').filter(|p| !p.is_empty()) {
            node = match &node.kind {
                Kind::Dir(children) => children.get(name),
                Kind::File(_) => None,
            }
            .ok_or_else(|| self.not_found_or_not_dir(path))?;
        }
        Ok(node)
    }

    fn node_mut(&mut self, path: &str) -> Result<&mut Node, V2Error> {
        self.node(path)?;
        let mut node = &mut self.root;
        for name in path.split('/').filter(|p| !p.is_empty()) {
            node = match &mut node.kind {
                Kind::Dir(children) => children.get_mut(name),
                Kind::File(_) => None,
            }
            .expect("checked above");
        }
        Ok(node)
    }

    /// The directory at `dir`, made (with the index `index`) where missing; etcd's checkDir walk.
    fn dir_made(&mut self, dir: &str, index: u64) -> Result<&mut Node, V2Error> {
        let current = self.index;
        let mut at = "/".to_string();
        let mut node = &mut self.root;
        for name in dir.split('/').filter(|p| !p.is_empty()) {
            let here = join(&at, name);
            let Kind::Dir(children) = &mut node.kind else { unreachable!("a file is never walked into") };
            let child = children.entry(name.to_string()).or_insert_with(|| Node::dir(index, None));
            if !child.is_dir() {
                return Err(V2Error::new(codes::NOT_DIR, here, current));
            }
            node = child;
            at = here;
        }
        Ok(node)
    }

    fn remember(&mut self, event: &Event) {
        // The changed node and the directories above it (made for it, perhaps) are written again.
        let mut at = event.node.key.as_str();
        loop {
            self.dirty.insert(at.to_string());
            if at == "/" {
                break;
            }
            at = split(at).0;
        }
        self.history.add(event.clone());
    }

    fn forget_timed(&mut self, node: &Node, key: &str) {
        let mut gone = Vec::new();
        node.timed(key, &mut gone);
        for t in gone {
            self.timed.remove(&t);
        }
    }

    fn set_ttl(&mut self, path: &str, expire: Option<i64>) -> Result<(), V2Error> {
        let node = self.node_mut(path)?;
        let old = std::mem::replace(&mut node.expire, expire);
        if let Some(at) = old {
            self.timed.remove(&(at, path.to_string()));
        }
        if let Some(at) = expire {
            self.timed.insert((at, path.to_string()));
        }
        Ok(())
    }

    /// Reads `path` (etcd's Get): a directory lists its children, recursively with `recursive`
    /// (always in key order, which is what `sorted` asks for).
    pub fn get(&self, path: &str, recursive: bool, now: i64) -> Result<Event, V2Error> {
        let path = clean(path);
        let n = self.node(&path)?;
        let mut e = Event::new("get", &path, n.modified, n.created);
        e.etcd_index = self.index;
        e.node = n.listing(&path, recursive, now);
        Ok(e)
    }

    /// etcd's internalCreate: a new node at `path` (or under it, named by the next index, with
    /// `unique`), its missing directories made; an existing file is replaced with `replace`.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        unique: bool,
        replace: bool,
        expire: Option<i64>,
        action: &str,
        now: i64,
    ) -> Result<Event, V2Error> {
        let (current, next) = (self.index, self.index + 1);
        let path = if unique { clean(&format!("{path}/{next:020}")) } else { clean(path) };
        if READ_ONLY.contains(&path.as_str()) {
            return Err(V2Error::new(codes::ROOT_READ_ONLY, "/", current));
        }
        let (parent, name) = split(&path);
        let mut e = Event::new(action, &path, next, next);
        let existing = {
            let d = self.dir_made(parent, next)?;
            let Kind::Dir(children) = &d.kind else { unreachable!("dir_made answers a directory") };
            children.get(name).cloned()
        };
        if let Some(old) = existing {
            if !replace {
                return Err(V2Error::new(codes::NODE_EXIST, path, current));
            }
            if old.is_dir() {
                return Err(V2Error::new(codes::NOT_FILE, path, current));
            }
            e.prev_node = Some(old.view(&path, false, now));
            self.forget_timed(&old, &path);
        }
        let node = Node {
            created: next,
            modified: next,
            expire,
            kind: if dir { Kind::Dir(BTreeMap::new()) } else { Kind::File(value.to_string()) },
        };
        if dir {
            e.node.dir = true;
        } else {
            e.node.value = Some(value.to_string());
        }
        (e.node.expiration, e.node.ttl) = expiration_and_ttl(expire, now);
        if let Some(at) = expire {
            self.timed.insert((at, path.clone()));
        }
        let d = self.dir_made(parent, next)?;
        if let Kind::Dir(children) = &mut d.kind {
            children.insert(name.to_string(), node);
        }
        self.index = next;
        e.etcd_index = next;
        Ok(e)
    }

    /// etcd's Create: fails on an existing key; with `unique`, a new key under `path` named by the
    /// index, zero-padded to 20 digits (POST's in-order keys).
    pub fn create(
        &mut self,
        path: &str,
        dir: bool,
        value: &str,
        unique: bool,
        ttl: Ttl,
        now: i64,
    ) -> Result<Event, V2Error> {
        let e = self.insert(path, dir, value, unique, false, ttl.expire(), "create", now)?;
        self.remember(&e);
        Ok(e)
    }

    /// etcd's Set: the node is made anew (a file replaced, never a directory); a refresh keeps the
    /// value of the key, which must exist.
    pub fn set(&mut self, path: &str, dir: bool, value: &str, ttl: Ttl, now: i64) -> Result<Event, V2Error> {
        let path = clean(path);
        let existing = match self.node(&path) {
            Ok(n) => Some(n.clone()),
            Err(e) if e.code == codes::KEY_NOT_FOUND && !ttl.refresh => None,
            Err(e) => return Err(e),
        };
        let value = match (&existing, ttl.refresh) {
            (Some(n), true) => n.value().to_string(),
            _ => value.to_string(),
        };
        let mut e = self.insert(&path, dir, &value, false, true, ttl.expire(), "set", now)?;
        if let Some(n) = existing {
            e.prev_node = Some(n.view(&path, false, now));
        }
        e.refresh = ttl.refresh;
        self.remember(&e);
        Ok(e)
    }

    fn writable(&self, path: &str) -> Result<(), V2Error> {
        if READ_ONLY.contains(&path) {
            return Err(V2Error::new(codes::ROOT_READ_ONLY, "/", self.index));
        }
        Ok(())
    }

    /// etcd's Update: a key's new value (a directory only its time to live); without a TTL the
    /// node becomes permanent.
    pub fn update(&mut self, path: &str, value: &str, ttl: Ttl, now: i64) -> Result<Event, V2Error> {
        let path = clean(path);
        self.writable(&path)?;
        let next = self.index + 1;
        let n = self.node(&path)?.clone();
        if n.is_dir() && !value.is_empty() {
            return Err(V2Error::new(codes::NOT_FILE, path, self.index));
        }
        let value = if ttl.refresh { n.value().to_string() } else { value.to_string() };
        let mut e = Event::new("update", &path, next, n.created);
        e.prev_node = Some(n.view(&path, false, now));
        {
            let node = self.node_mut(&path)?;
            if let Kind::File(v) = &mut node.kind {
                *v = value.clone();
                node.modified = next;
            }
        }
        if n.is_dir() {
            e.node.dir = true;
        } else {
            e.node.value = Some(value);
        }
        self.set_ttl(&path, ttl.expire())?;
        (e.node.expiration, e.node.ttl) = expiration_and_ttl(ttl.expire(), now);
        e.refresh = ttl.refresh;
        Ok(self.recorded(e, next))
    }

    /// Whether the node matches `prev_value` and `prev_index` (each unset when empty or 0); the
    /// cause of a failure as etcd words it.
    fn compare(n: &Node, prev_value: &str, prev_index: u64) -> Result<(), String> {
        let index_ok = prev_index == 0 || n.modified == prev_index;
        let value_ok = prev_value.is_empty() || n.value() == prev_value;
        match (value_ok, index_ok) {
            (true, true) => Ok(()),
            (false, true) => Err(format!("[{prev_value} != {}]", n.value())),
            (true, false) => Err(format!("[{prev_index} != {}]", n.modified)),
            (false, false) => {
                Err(format!("[{prev_value} != {}] [{prev_index} != {}]", n.value(), n.modified))
            }
        }
    }

    /// etcd's CompareAndSwap: a key's new value if it has `prev_value` and `prev_index`.
    pub fn compare_and_swap(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        value: &str,
        ttl: Ttl,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = clean(path);
        self.writable(&path)?;
        let n = self.node(&path)?.clone();
        if n.is_dir() {
            return Err(V2Error::new(codes::NOT_FILE, path, self.index));
        }
        Self::compare(&n, prev_value, prev_index)
            .map_err(|cause| V2Error::new(codes::TEST_FAILED, cause, self.index))?;
        let value = if ttl.refresh { n.value().to_string() } else { value.to_string() };
        let next = self.index + 1;
        let mut e = Event::new("compareAndSwap", &path, next, n.created);
        e.prev_node = Some(n.view(&path, false, now));
        {
            let node = self.node_mut(&path)?;
            node.kind = Kind::File(value.clone());
            node.modified = next;
        }
        self.set_ttl(&path, ttl.expire())?;
        e.node.value = Some(value);
        (e.node.expiration, e.node.ttl) = expiration_and_ttl(ttl.expire(), now);
        e.refresh = ttl.refresh;
        Ok(self.recorded(e, next))
    }

    /// Removes the node at `path` (which exists) as `action`: one index, one event, the node as it
    /// was its prevNode.
    fn remove(&mut self, action: &str, path: &str, now: i64) -> Event {
        let next = self.index + 1;
        let Some(n) = self.take(path) else { unreachable!("removed only once found") };
        let mut e = Event::new(action, path, next, n.created);
        e.prev_node = Some(n.view(path, false, now));
        e.node.dir = n.is_dir();
        self.recorded(e, next)
    }

    /// The store at index `next` after `e`, which the history keeps.
    fn recorded(&mut self, mut e: Event, next: u64) -> Event {
        self.index = next;
        e.etcd_index = next;
        self.remember(&e);
        e
    }

    /// Takes the node at `path` out of the tree, with the TTLs of everything under it.
    fn take(&mut self, path: &str) -> Option<Node> {
        let (parent, name) = split(path);
        let removed = match &mut self.node_mut(parent).ok()?.kind {
            Kind::Dir(children) => children.remove(name),
            Kind::File(_) => None,
        }?;
        self.forget_timed(&removed, path);
        // The node and everything under it is removed from the records.
        let mut stack = vec![(path.to_string(), &removed)];
        while let Some((key, node)) = stack.pop() {
            if let Kind::Dir(children) = &node.kind {
                stack.extend(children.iter().map(|(name, c)| (join(&key, name), c)));
            }
            self.dirty.insert(key);
        }
        Some(removed)
    }

    /// etcd's Delete: a key, or a directory with `dir` (and what is in it with `recursive`).
    pub fn delete(&mut self, path: &str, dir: bool, recursive: bool, now: i64) -> Result<Event, V2Error> {
        let path = clean(path);
        self.writable(&path)?;
        let dir = dir || recursive;
        let n = self.node(&path)?;
        if let Kind::Dir(children) = &n.kind {
            if !dir {
                return Err(V2Error::new(codes::NOT_FILE, path, self.index));
            }
            if !children.is_empty() && !recursive {
                return Err(V2Error::new(codes::DIR_NOT_EMPTY, path, self.index));
            }
        }
        Ok(self.remove("delete", &path, now))
    }

    /// etcd's CompareAndDelete: a key deleted if it has `prev_value` and `prev_index`.
    pub fn compare_and_delete(
        &mut self,
        path: &str,
        prev_value: &str,
        prev_index: u64,
        now: i64,
    ) -> Result<Event, V2Error> {
        let path = clean(path);
        let n = self.node(&path)?;
        if n.is_dir() {
            return Err(V2Error::new(codes::NOT_FILE, path, self.index));
        }
        Self::compare(n, prev_value, prev_index)
            .map_err(|cause| V2Error::new(codes::TEST_FAILED, cause, self.index))?;
        Ok(self.remove("compareAndDelete", &path, now))
    }

    /// etcd's DeleteExpiredKeys: every node whose expiry is at or before `cutoff` (the leader's
    /// clock, carried in the sweep it proposed), each one index and one `expire` event.
    pub fn delete_expired(&mut self, cutoff: i64) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some((at, path)) = self.timed.first().cloned() {
            if at > cutoff {
                break;
            }
            if self.node(&path).is_err() {
                self.timed.remove(&(at, path));
                continue;
            }
            events.push(self.remove("expire", &path, cutoff));
        }
        events
    }

    /// Where a watch of `key` from index `since` (0: the next change) starts: the first event in
    /// the history it sees, or None to wait for one. Err is etcd's 401 when the history has moved
    /// past `since`.
    pub fn watch_from(&self, key: &str, recursive: bool, since: u64) -> Result<Option<Event>, V2Error> {
        let since = if since == 0 { self.index + 1 } else { since };
        self.history.scan(&clean(key), recursive, since, self.index)
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
