//! `:space [prefix]`: where the space goes. Every key under the prefix is read once (a page at a
//! time, at one revision) and tallied by the next two levels of its path: for /registry/ that is
//! per resource, then per namespace. Values are measured, never kept. Beside the live size, each
//! group's history: the revisions etcd keeps for its keys since the last compaction, estimated
//! from each key's version and revisions (the API does not list old revisions without reading them).

use std::collections::HashMap;

/// Groups kept; keys beyond them are tallied under `(other)`, so a prefix of a million distinct
/// names costs bounded memory.
pub const MAX_GROUPS: usize = 2_000;
/// Subgroups kept per group, and in all.
pub const MAX_SUBGROUPS: usize = 500;
pub const MAX_ALL_SUBGROUPS: usize = 20_000;
const OTHER: &str = "(other)";
/// The subgroup of keys directly in a group (no further level).
pub const DIRECT: &str = "(keys)";

/// One group's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub keys: u64,
    /// Live bytes: keys and values as they are now.
    pub bytes: u64,
    /// Estimated older revisions kept since the last compaction, and their bytes (each counted
    /// at the size of the key's live version).
    pub history_revisions: u64,
    pub history_bytes: u64,
    /// The next level, largest first (empty below the second level).
    pub subgroups: Vec<Group>,
}

impl Group {
    fn add(&mut self, bytes: u64, history: u64) {
        self.keys += 1;
        self.bytes += bytes;
        self.history_revisions += history;
        self.history_bytes += history * bytes;
    }
}

/// What a scan has found so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceReport {
    /// The revision every page is read at.
    pub revision: i64,
    /// The oldest revision etcd still keeps (the last compaction's), 1 if never compacted.
    pub compacted: i64,
    /// Keys under the prefix at `revision` (a count-only read before the scan).
    pub total_keys: u64,
    pub scanned_keys: u64,
    pub scanned_bytes: u64,
    /// The backend's size and the part of it in use (Maintenance.Status of the endpoint read).
    pub db_size: i64,
    pub db_in_use: i64,
    /// Largest first.
    pub groups: Vec<Group>,
    pub done: bool,
}

/// The running tally of a scan.
#[derive(Debug, Default)]
pub struct Tally {
    prefix: Vec<u8>,
    compacted: i64,
    groups: HashMap<String, (Group, HashMap<String, Group>)>,
    subgroups: usize,
    pub keys: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn new(prefix: &[u8], compacted: i64) -> Tally {
        Tally { prefix: prefix.to_vec(), compacted, ..Tally::default() }
    }

    /// One key: its length, its value's, and its version and revisions for the history estimate.
    pub fn add(
        &mut self,
        key: &[u8],
        value_len: usize,
        version: i64,
        create_revision: i64,
        mod_revision: i64,
    ) {
        let bytes = (key.len() + value_len) as u64;
        self.keys += 1;
        self.bytes += bytes;
        // The versions etcd keeps: all of them if the key was created after the compaction, else
        // the one live at the compaction and at most one per revision after it.
        let kept = if create_revision >= self.compacted {
            version
        } else {
            version.min(mod_revision - self.compacted + 1)
        };
        let history = kept.saturating_sub(1).max(0) as u64;
        let (group, sub) = levels(&key[self.prefix.len().min(key.len())..]);
        let full = self.groups.len() >= MAX_GROUPS;
        let name = if full && !self.groups.contains_key(&group) { OTHER.to_string() } else { group };
        let (g, subs) = self
            .groups
            .entry(name.clone())
            .or_insert_with(|| (Group { name, ..Group::default() }, HashMap::new()));
        g.add(bytes, history);
        let full = subs.len() >= MAX_SUBGROUPS || self.subgroups >= MAX_ALL_SUBGROUPS;
        let sub = if full && !subs.contains_key(&sub) { OTHER.to_string() } else { sub };
        if !subs.contains_key(&sub) {
            self.subgroups += 1;
        }
        subs.entry(sub.clone())
            .or_insert_with(|| Group { name: sub, ..Group::default() })
            .add(bytes, history);
    }

    /// The groups, largest first; with `subgroups`, each with its own, largest first (a progress
    /// report leaves them out).
    pub fn groups(&self, subgroups: bool) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .groups
            .values()
            .map(|(g, subs)| {
                let mut g = g.clone();
                if subgroups {
                    g.subgroups = subs.values().cloned().collect();
                    sort(&mut g.subgroups);
                }
                g
            })
            .collect();
        sort(&mut out);
        out
    }
}

fn sort(groups: &mut [Group]) {
    groups.sort_by(|a, b| (b.bytes + b.history_bytes, &a.name).cmp(&(a.bytes + a.history_bytes, &b.name)));
}

/// The first two levels of what follows the prefix: split at `/`; a first segment with a dot in
/// it (an API group under /registry/) takes the next one with it, as kube-apiserver's keys nest.
fn levels(rest: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(rest);
    let parts: Vec<&str> = text.split('/').collect();
    let (group, next) = match parts.as_slice() {
        [g, r, more @ ..] if g.contains('.') && !more.is_empty() => (format!("{g}/{r}"), more),
        [g, more @ ..] if !more.is_empty() => ((*g).to_owned(), more),
        [only] => return ((*only).to_owned(), DIRECT.to_owned()),
        _ => return (String::new(), DIRECT.to_owned()),
    };
    // A second level only where it is a directory (a namespace), not the key's own name.
    let sub = if next.len() >= 2 { next[0].to_owned() } else { DIRECT.to_owned() };
    (group, sub)
}

/// The console's `:space` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceView {
    pub request: u64,
    pub prefix: Vec<u8>,
    pub report: SpaceReport,
    /// Why the scan stopped short, if it did (an error, or the user cancelled).
    pub stopped: Option<String>,
    pub selected: usize,
    /// The group whose subgroups show.
    pub expanded: Option<String>,
    pub started: std::time::Instant,
    /// When the last report came (the view's elapsed time stops there once done).
    pub updated: std::time::Instant,
}

impl SpaceView {
    pub fn new(request: u64, prefix: Vec<u8>, now: std::time::Instant) -> SpaceView {
        SpaceView {
            request,
            prefix,
            report: SpaceReport::default(),
            stopped: None,
            selected: 0,
            expanded: None,
            started: now,
            updated: now,
        }
    }

    pub fn running(&self) -> bool {
        !self.report.done && self.stopped.is_none()
    }

    /// The rows shown: groups, and under the expanded one its subgroups (depth 1).
    pub fn rows(&self) -> Vec<(usize, &Group)> {
        let mut out = Vec::new();
        for g in &self.report.groups {
            out.push((0, g));
            if self.expanded.as_deref() == Some(g.name.as_str()) {
                out.extend(g.subgroups.iter().map(|s| (1, s)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tally_by_resource_then_namespace_with_their_history() {
        let mut t = Tally::new(b"/registry/", 100);
        // Created after the compaction at 100: every version is kept (3 versions: 2 older).
        t.add(b"/registry/pods/shop/web-0", 75, 3, 120, 150);
        // Created before it, changed since: at most one version per revision from 100 to 101.
        t.add(b"/registry/pods/kube-system/dns", 75, 9, 10, 101);
        // Unchanged since before the compaction: no history.
        t.add(b"/registry/namespaces/shop", 10, 1, 5, 5);
        t.add(b"/registry/apiextensions.k8s.io/customresourcedefinitions/w.example.com", 30, 1, 130, 130);
        t.add(b"/registry/ranges/serviceips", 5, 4, 200, 230);
        assert_eq!((t.keys, t.bytes), (5, 100 + 105 + 35 + 100 + 32));
        let groups = t.groups(true);
        let names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["pods", "ranges", "apiextensions.k8s.io/customresourcedefinitions", "namespaces"]);
        let pods = &groups[0];
        assert_eq!(
            (pods.keys, pods.bytes, pods.history_revisions, pods.history_bytes),
            (2, 205, 3, 2 * 100 + 105)
        );
        let subs: Vec<_> = pods.subgroups.iter().map(|s| (s.name.as_str(), s.keys)).collect();
        assert_eq!(subs, [("shop", 1), ("kube-system", 1)]);
        // Cluster-scoped keys sit directly in their group.
        assert_eq!(groups[3].subgroups[0].name, DIRECT);
        assert_eq!(groups[2].subgroups[0].name, DIRECT);
        assert_eq!(groups[1].history_revisions, 3);
    }

    #[test]
    fn a_million_distinct_names_stay_within_the_group_bound() {
        let mut t = Tally::new(b"", 1);
        for i in 0..(MAX_GROUPS + 50) {
            t.add(format!("k{i}/x/y").as_bytes(), 1, 1, 1, 1);
        }
        let groups = t.groups(true);
        assert_eq!(groups.len(), MAX_GROUPS + 1);
        assert_eq!(groups.iter().find(|g| g.name == OTHER).map(|g| g.keys), Some(50));
    }
}
