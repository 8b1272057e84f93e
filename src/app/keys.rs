//! The key browser: a keys-only listing under a prefix, flat or as one level of a tree split by a
//! separator, fetched a page at a time and pinned to the revision of its first page so later pages
//! agree with it; and the value of the selected key (shown as `value_format` says).

use crate::app::ids::RequestIds;
// The value pane's types, where the listing's code and its users have always found them.
use crate::app::value_format::display_bytes;
pub use crate::app::value_pane::{
    HistoryPane, KeyHistory, KubeObject, Then, ValueInfo, ValuePane, ValueRead,
};

/// Keys asked for per page: keys-only pages of this size stay far below gRPC's 4 MiB message limit
/// unless keys are hundreds of kilobytes long.
pub const PAGE: i64 = 500;
/// When the selection comes this close to the end of what is loaded, the next page is asked for.
pub const READ_AHEAD: usize = 100;

pub use crate::etcd::range::{key_after, prefix_end};

/// The end of a bounded read from `cursor`: the end of the subtree of keys that share `cursor`'s
/// first `depth` bytes, or the listing's own end once that is nearer (or `depth` reaches the
/// prefix). Returns the end and whether it is the listing's end.
///
/// etcd 3.4 walks its whole index range for a Range call, limit or not, so a page read over
/// [cursor, end of prefix) costs as much as the keys after the cursor: 150 ms and more at a
/// million keys. A page is instead read from ever larger subtrees around the cursor, which costs
/// about as much as the keys it returns.
pub fn subtree_end(prefix: &[u8], cursor: &[u8], depth: usize) -> (Vec<u8>, bool) {
    let all = prefix_end(prefix);
    if depth <= prefix.len() {
        return (all, true);
    }
    let end = prefix_end(&cursor[..depth.min(cursor.len())]);
    // "\0" as an end means "no end".
    let beyond = end == [0] || (all != [0] && end >= all);
    if beyond {
        (all, true)
    } else {
        (end, false)
    }
}

/// One row of a listing: a key, or in a tree a directory (the keys under `key`, which ends with
/// the separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: Vec<u8>,
    pub dir: bool,
    /// In the Kubernetes view (:k8s), what the key's value is.
    pub kube: Option<Box<KubeRow>>,
}

/// What the Kubernetes view shows of a key under /registry/: the resource, namespace and name its
/// key names, and what its value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRow {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The kind stored, or what the value is when it is not an object (encrypted, damaged, other).
    pub kind: String,
    pub size: usize,
    pub mod_revision: i64,
    /// creationTimestamp, seconds since the Unix epoch.
    pub created: Option<i64>,
}

impl KubeRow {
    /// The row for `key` holding `value`, read from its key and the value's metadata only.
    pub fn read(key: &[u8], value: &[u8], mod_revision: i64) -> KubeRow {
        use crate::etcd::k8s::{RegistryKey, Stored};
        let parsed = RegistryKey::parse(key);
        let (resource, namespace, name) = match parsed {
            Some(k) if k.group.is_empty() => (k.resource, k.namespace.unwrap_or_default(), k.name),
            Some(k) => (format!("{}/{}", k.group, k.resource), k.namespace.unwrap_or_default(), k.name),
            None => (String::new(), String::new(), display_bytes(key)),
        };
        let (kind, created) = match Stored::read(value) {
            Ok(Some(Stored::Protobuf { kind, meta, .. } | Stored::Json { kind, meta, .. })) => {
                (kind, meta.created_at)
            }
            Ok(Some(Stored::Encrypted { provider, .. })) => (format!("encrypted:{provider}"), None),
            Ok(None) => ("(not an object)".into(), None),
            Err(_) => ("(damaged)".into(), None),
        };
        KubeRow { resource, namespace, name, kind, size: value.len(), mod_revision, created }
    }
}

/// An age as kubectl prints one (its HumanDuration): 90s, 5m30s, 3h, 2d4h, 400d, 3y20d.
pub fn kube_age(seconds: i64) -> String {
    if seconds < 0 {
        return "0s".into();
    }
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    let days = hours / 24;
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        with(minutes, "m", seconds % 60, "s")
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        with(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        with(days, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        with(days / 365, "y", days % 365, "d")
    } else {
        format!("{}y", days / 365)
    }
}

impl Row {
    pub fn key(key: impl Into<Vec<u8>>) -> Row {
        Row { key: key.into(), dir: false, kube: None }
    }

    /// Where the listing goes on after this row: past the key, or past everything in the directory.
    pub fn next_start(&self) -> Vec<u8> {
        if self.dir {
            prefix_end(&self.key)
        } else {
            key_after(&self.key)
        }
    }
}

/// The row `key` makes in a tree level under `prefix` split by `sep`: the key itself if nothing
/// follows its first separator after the prefix, else the directory up to that separator.
pub fn tree_row(prefix: &[u8], sep: &[u8], key: &[u8]) -> Row {
    let rest = &key[prefix.len().min(key.len())..];
    if !sep.is_empty() {
        if let Some(at) = rest.windows(sep.len()).position(|w| w == sep) {
            let dir_len = prefix.len() + at + sep.len();
            if dir_len < key.len() {
                return Row { key: key[..dir_len].to_vec(), dir: true, kube: None };
            }
        }
    }
    Row::key(key)
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    pub rows: Vec<Row>,
    pub more: bool,
    /// The revision the page was read at.
    pub revision: i64,
}

/// How many pages are kept around the selection; farther ones are dropped and fetched again (at the
/// same revision, from the same start key, so they come back the same) when the selection returns.
pub const PAGES_KEPT: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyBrowser {
    pub prefix: Vec<u8>,
    /// Some: a tree level split by this separator; None: a flat listing.
    pub tree: Option<Vec<u8>>,
    /// The separator the tree uses when switched on.
    pub separator: Vec<u8>,
    /// Loaded pages by number: page n holds rows n*PAGE .. n*PAGE+PAGE of the listing.
    pub pages: std::collections::BTreeMap<usize, Vec<Row>>,
    /// The first key of every page known so far (a page's start is known once the one before it
    /// has been read): what memory keeps of the whole listing.
    pub page_starts: Vec<Vec<u8>>,
    /// Rows known to exist: the loaded pages' and those before them.
    pub known: usize,
    /// The revision every page of this listing is read at (that of its first page).
    pub revision: Option<i64>,
    /// How many keys the prefix holds at that revision, once a count_only read said so.
    pub count: Option<i64>,
    pub count_request: Option<u64>,
    /// Whether rows follow the last page known.
    pub more: bool,
    /// The listing request in flight, and the page it asks for.
    pub loading: Option<(u64, usize)>,
    pub error: Option<String>,
    /// Index of the selected row in the whole listing.
    pub selected: usize,
    /// A local filter over the loaded rows (a substring); empty: none.
    pub filter: String,
    /// The Kubernetes view (:k8s): rows read with their values and shown as resources.
    pub kubernetes: bool,
    pub value: Option<ValuePane>,
    /// Whether a listing was ever asked for (the browser lists when it is first shown).
    pub started: bool,
    /// Wall-clock time of the last page read without error.
    pub listed_at: Option<std::time::SystemTime>,
    /// After a failed read, when the listing is tried again, and the wait before the next try.
    pub retry: Option<Retry>,
}

/// A failed listing is tried again after `delay`, which doubles after each failure (1 s to 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub at: std::time::Instant,
    pub delay: std::time::Duration,
}

/// The first and the longest wait before a failed listing is tried again.
pub const RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
pub const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// What the browser asks a worker for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyRequest {
    /// Rows in [start, prefix_end(prefix)), keys-only, serializable, at `revision` (0: newest);
    /// with `tree`, one level: keys below a separator after the prefix collapse into directories;
    /// with `values` (the Kubernetes view), each key's row says what its value holds.
    List { request: u64, prefix: Vec<u8>, start: Vec<u8>, revision: i64, tree: Option<Vec<u8>>, values: bool },
    /// One key's value (a linearizable read), with its lease's remaining TTL.
    Value { request: u64, key: Vec<u8> },
    /// How many keys the prefix holds at `revision` (count_only).
    Count { request: u64, prefix: Vec<u8>, revision: i64 },
    /// The key's versions before `mod_revision`, back to its creation or the compaction point.
    History { request: u64, key: Vec<u8>, mod_revision: i64 },
}

impl KeyBrowser {
    pub fn new() -> Self {
        Self { separator: b"/".to_vec(), ..Default::default() }
    }

    /// The row at `index` of the listing, if its page is loaded.
    pub fn row_at(&self, index: usize) -> Option<&Row> {
        self.pages.get(&(index / PAGE as usize))?.get(index % PAGE as usize)
    }

    /// The key at `index` of the listing, if its page is loaded and it is a key, not a directory.
    pub fn key_at(&self, index: usize) -> Option<&Vec<u8>> {
        self.row_at(index).filter(|r| !r.dir).map(|r| &r.key)
    }

    /// Rows in memory.
    pub fn loaded(&self) -> usize {
        self.pages.values().map(Vec::len).sum()
    }

    /// Starts the listing of `prefix` over, at the newest revision.
    pub fn list(&mut self, ids: &mut RequestIds, prefix: Vec<u8>) -> KeyRequest {
        self.list_at(ids, prefix, 0)
    }

    /// Lists the same prefix again at the newest revision, keeping the selection's place (after a
    /// write, or a refresh).
    pub fn relist(&mut self, ids: &mut RequestIds) -> KeyRequest {
        let selected = self.selected;
        let request = self.list(ids, self.prefix.clone());
        self.selected = selected;
        request
    }

    fn list_at(&mut self, ids: &mut RequestIds, prefix: Vec<u8>, selected: usize) -> KeyRequest {
        let request = ids.next_id();
        *self = KeyBrowser {
            prefix: prefix.clone(),
            tree: self.tree.take(),
            separator: std::mem::take(&mut self.separator),
            started: true,
            value: self.value.take(),
            filter: std::mem::take(&mut self.filter),
            kubernetes: self.kubernetes,
            selected,
            listed_at: self.listed_at,
            retry: self.retry,
            ..Default::default()
        };
        // etcd refuses an empty key: all keys start at "\0", as etcdctl's --from-key "" does.
        let start = if prefix.is_empty() { vec![0] } else { prefix.clone() };
        self.page_starts.push(start.clone());
        self.loading = Some((request, 0));
        KeyRequest::List {
            request,
            start,
            prefix,
            revision: 0,
            tree: self.tree.clone(),
            values: self.kubernetes,
        }
    }

    /// Switches between the tree and the flat listing of the same prefix.
    pub fn toggle_tree(&mut self, ids: &mut RequestIds) -> KeyRequest {
        self.tree = match self.tree {
            Some(_) => None,
            None => Some(self.separator.clone()),
        };
        self.list(ids, self.prefix.clone())
    }

    /// In a tree, the directory above the current level (None at the top, or in a flat listing).
    pub fn parent(&self) -> Option<Vec<u8>> {
        let sep = self.tree.as_ref()?;
        if self.prefix.is_empty() {
            return None;
        }
        // The prefix ends with the separator (it is a directory): drop its last segment.
        let body = self.prefix.strip_suffix(sep.as_slice()).unwrap_or(&self.prefix);
        let cut = body.windows(sep.len()).rposition(|w| w == sep.as_slice()).map_or(0, |at| at + sep.len());
        Some(self.prefix[..cut].to_vec())
    }

    fn fetch(&mut self, ids: &mut RequestIds, page: usize) -> Option<KeyRequest> {
        let start = self.page_starts.get(page)?.clone();
        let request = ids.next_id();
        self.loading = Some((request, page));
        Some(KeyRequest::List {
            request,
            prefix: self.prefix.clone(),
            start,
            revision: self.revision.unwrap_or(0),
            tree: self.tree.clone(),
            values: self.kubernetes,
        })
    }

    /// The page the selection needs next, if any: its own page if it was dropped, else the next
    /// one when the selection is near the end of what is known.
    fn wanted(&mut self, ids: &mut RequestIds) -> Option<KeyRequest> {
        if self.loading.is_some() || self.revision.is_none() {
            return None;
        }
        let per_page = PAGE as usize;
        let page = self.selected / per_page;
        for p in [page, page.saturating_sub(1)] {
            if !self.pages.contains_key(&p) && p < self.page_starts.len() {
                return self.fetch(ids, p);
            }
        }
        // Every page but the last holds PAGE rows, so page n starts at row n * PAGE.
        let next = page + 1;
        if next < self.page_starts.len()
            && !self.pages.contains_key(&next)
            && self.selected + READ_AHEAD >= next * per_page
        {
            return self.fetch(ids, next);
        }
        None
    }

    /// A page arrived; replies to anything but the request in flight are stale and dropped.
    pub fn on_page(
        &mut self,
        ids: &mut RequestIds,
        request: u64,
        result: Result<KeyPage, String>,
    ) -> Vec<KeyRequest> {
        let Some((_, page)) = self.loading.filter(|(r, _)| *r == request) else { return Vec::new() };
        self.loading = None;
        match result {
            Ok(p) => {
                let mut asks = Vec::new();
                if self.revision.is_none() {
                    // The count can take a while on a large prefix: it comes on its own.
                    self.revision = Some(p.revision);
                    let count = ids.next_id();
                    self.count_request = Some(count);
                    asks.push(KeyRequest::Count {
                        request: count,
                        prefix: self.prefix.clone(),
                        revision: p.revision,
                    });
                }
                if page + 1 == self.page_starts.len() {
                    // The newest page known: it tells where the next one starts.
                    self.more = p.more && !p.rows.is_empty();
                    if let Some(last) = p.rows.last().filter(|_| self.more) {
                        self.page_starts.push(last.next_start());
                    }
                    self.known = page * PAGE as usize + p.rows.len();
                    self.selected = self.selected.min(self.known.saturating_sub(1));
                }
                self.pages.insert(page, p.rows);
                // Keep the pages around the selection only.
                let centre = self.selected / PAGE as usize;
                self.pages.retain(|n, _| n.abs_diff(centre) <= PAGES_KEPT / 2);
                self.error = None;
                self.retry = None;
                asks.extend(self.wanted(ids));
                asks.extend(self.follow(ids));
                asks
            }
            Err(e) => {
                self.error = Some(e);
                Vec::new()
            }
        }
    }

    pub fn on_count(&mut self, request: u64, result: Result<i64, String>) {
        if self.count_request == Some(request) {
            self.count_request = None;
            match result {
                Ok(n) => self.count = Some(n),
                Err(e) => self.error = Some(format!("counting the keys: {e}")),
            }
        }
    }

    /// The loaded rows that pass the filter, by listing index. Only meaningful with a filter.
    pub fn filtered(&self) -> Vec<usize> {
        let per_page = PAGE as usize;
        self.pages
            .iter()
            .flat_map(|(n, rows)| rows.iter().enumerate().map(move |(i, r)| (n * per_page + i, r)))
            .filter(|(_, r)| {
                display_bytes(&r.key).contains(&self.filter)
                    || r.kube.as_ref().is_some_and(|k| k.kind.contains(&self.filter))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// With the value pane open, keeps it on the key under the cursor: a key row opens its value
    /// there, a directory closes it. The history, while open, stays on its key.
    pub fn follow(&mut self, ids: &mut RequestIds) -> Option<KeyRequest> {
        let pane = self.value.as_ref()?;
        if pane.history.is_some() {
            return None;
        }
        match self.row_at(self.selected) {
            Some(row) if row.dir => {
                self.value = None;
                None
            }
            Some(row) if row.key != pane.key => {
                let key = row.key.clone();
                self.open_key(ids, key, None)
            }
            _ => None,
        }
    }

    /// Reads the open value again (kept on screen until the answer comes), unless a read of it is
    /// on its way already or the history is open.
    pub fn reread(&mut self, ids: &mut RequestIds) -> Option<KeyRequest> {
        let pane = self.value.as_ref()?;
        if pane.history.is_some() || pane.result.is_none() || pane.reread.is_some() || pane.then.is_some() {
            return None;
        }
        let key = pane.key.clone();
        let request = ids.next_id();
        self.value.as_mut()?.reread = Some(request);
        Some(KeyRequest::Value { request, key })
    }

    /// On each tick: after a failed read, the listing is asked again once its wait is over (and the
    /// wait doubles for the next failure); None while nothing failed or the wait runs.
    pub fn retry_due(&mut self, ids: &mut RequestIds, now: std::time::Instant) -> Option<KeyRequest> {
        if self.error.is_none() || self.loading.is_some() || !self.started {
            return None;
        }
        match self.retry {
            None => {
                self.retry = Some(Retry { at: now + RETRY_FIRST, delay: RETRY_FIRST });
                None
            }
            Some(r) if now < r.at => None,
            Some(r) => {
                let delay = (r.delay * 2).min(RETRY_MAX);
                let request = self.relist(ids);
                // The wait for the next failure, if this try fails too.
                self.retry = Some(Retry { at: now + delay, delay });
                Some(request)
            }
        }
    }

    /// Moves the selection `delta` rows (negative: up); with a filter, among the rows it passes.
    pub fn step(&mut self, ids: &mut RequestIds, delta: isize) -> Option<KeyRequest> {
        if self.filter.is_empty() {
            let target = self.selected.saturating_add_signed(delta);
            return self.move_to(ids, target);
        }
        let rows = self.filtered();
        let here = rows.iter().position(|i| *i >= self.selected).unwrap_or(rows.len().saturating_sub(1));
        let target = here.saturating_add_signed(delta).min(rows.len().saturating_sub(1));
        if let Some(i) = rows.get(target) {
            self.selected = *i;
        }
        None
    }

    pub fn move_to(&mut self, ids: &mut RequestIds, index: usize) -> Option<KeyRequest> {
        self.selected = index.min(self.known.saturating_sub(1));
        self.wanted(ids)
    }

    /// Opens the selected row: a directory becomes the listing, a key's value opens in the pane.
    pub fn open(&mut self, ids: &mut RequestIds) -> Option<KeyRequest> {
        let row = self.row_at(self.selected)?.clone();
        if row.dir {
            return Some(self.list(ids, row.key));
        }
        self.open_key(ids, row.key, None)
    }

    /// Opens `key` in the value pane; `then` runs once the value is there.
    pub fn open_key(&mut self, ids: &mut RequestIds, key: Vec<u8>, then: Option<Then>) -> Option<KeyRequest> {
        let request = ids.next_id();
        let same = self.value.as_ref().filter(|p| p.key == key);
        let (format, reveal) = (same.and_then(|p| p.format), same.is_some_and(|p| p.reveal));
        let scroll = same.map_or(0, |p| p.scroll);
        self.value = Some(ValuePane {
            key: key.clone(),
            request,
            result: None,
            format,
            then,
            history: None,
            reread: None,
            stale: None,
            reveal,
            scroll,
        });
        Some(KeyRequest::Value { request, key })
    }

    /// The value pane's reply. Returns the follow-up the user asked for, if the value arrived.
    pub fn on_value(&mut self, request: u64, result: Result<Option<ValueRead>, String>) -> Option<Then> {
        if let Some(pane) = self.value.as_mut().filter(|p| p.reread == Some(request)) {
            pane.reread = None;
            match result {
                Ok(read) => {
                    pane.stale = None;
                    pane.result = Some(Ok(read));
                }
                // The last value read stays on screen, marked; the next round reads it again.
                Err(e) if matches!(pane.result, Some(Ok(_))) => pane.stale = Some(e),
                Err(e) => pane.result = Some(Err(e)),
            }
            return None;
        }
        let pane = self.value.as_mut().filter(|p| p.request == request)?;
        pane.result = Some(result);
        let then = pane.then.take();
        then.filter(|_| pane.info().is_some())
    }

    /// Shows the history of the key in the pane, or hides it.
    pub fn toggle_history(&mut self, ids: &mut RequestIds) -> Option<KeyRequest> {
        let request = ids.next_id();
        let pane = self.value.as_mut()?;
        if pane.history.take().is_some() {
            return None;
        }
        let info = pane.info()?.clone();
        pane.history = Some(HistoryPane { request, result: None, selected: 0, base: None, diff: Vec::new() });
        Some(KeyRequest::History { request, key: info.key, mod_revision: info.mod_revision })
    }

    pub fn on_history(&mut self, request: u64, result: Result<KeyHistory, String>) {
        let current = self.value.as_ref().and_then(|p| p.info().cloned());
        if let Some(h) = self.value.as_mut().and_then(|p| p.history.as_mut()).filter(|h| h.request == request)
        {
            // The list starts with the version on screen, so the first diff is "what changed last".
            h.result = Some(result.map(|mut history| {
                if let Some(now) = current {
                    history.versions.insert(0, now);
                }
                history
            }));
            h.refresh_diff();
        }
    }

    /// The open history, if any.
    pub fn history_mut(&mut self) -> Option<&mut HistoryPane> {
        self.value.as_mut()?.history.as_mut()
    }

    /// The prefix a prefix delete or a prefix watch is about: in a tree, the selected directory;
    /// otherwise the listing's prefix.
    pub fn target_prefix(&self) -> Vec<u8> {
        match self.row_at(self.selected) {
            Some(row) if row.dir => row.key.clone(),
            _ => self.prefix.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_as_kubectl_prints_them() {
        for (seconds, age) in [
            (-5, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (330, "5m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 600, "3h10m"),
            (47 * 3600, "47h"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400 + 20 * 86400, "3y20d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(kube_age(seconds), age, "{seconds}");
        }
    }

    #[test]
    fn a_kubernetes_row_names_resource_namespace_name_and_what_the_value_holds() {
        let pod = crate::etcd::k8s::encode::encode_stored(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "shop", "creationTimestamp": "2026-12-01T00:00:00Z"}
        }))
        .expect("encode");
        let row = KubeRow::read(b"/registry/pods/shop/web-0", &pod, 42);
        assert_eq!(
            row,
            KubeRow {
                resource: "pods".into(),
                namespace: "shop".into(),
                name: "web-0".into(),
                kind: "Pod".into(),
                size: pod.len(),
                mod_revision: 42,
                created: Some(1_796_083_200),
            }
        );
        let crd = KubeRow::read(
            b"/registry/apiextensions.k8s.io/customresourcedefinitions/w.example.com",
            b"{}",
            7,
        );
        assert_eq!(
            (crd.resource.as_str(), crd.kind.as_str()),
            ("apiextensions.k8s.io/customresourcedefinitions", "(not an object)")
        );
        let sealed = KubeRow::read(b"/registry/secrets/shop/k", b"k8s:enc:kms:v2:vault:xyz", 8);
        assert_eq!(sealed.kind, "encrypted:kms");
        assert_eq!(KubeRow::read(b"/registry/pods/shop/cut", b"k8s\0\x0a\x09", 9).kind, "(damaged)");
        assert_eq!(KubeRow::read(b"/other", b"x", 9).name, "/other");
    }

    fn page(keys: &[&str], more: bool, revision: i64) -> KeyPage {
        KeyPage { rows: keys.iter().map(|k| Row::key(k.as_bytes())).collect(), more, revision }
    }

    #[test]
    fn bounded_reads_climb_from_the_cursors_subtree_to_the_listing_end() {
        let cursor = b"k/000499\0";
        assert_eq!(subtree_end(b"k/", cursor, cursor.len()), (b"k/000499\x01".to_vec(), false));
        assert_eq!(subtree_end(b"k/", cursor, 7), (b"k/0004:".to_vec(), false));
        assert_eq!(subtree_end(b"k/", cursor, 3), (b"k/1".to_vec(), false));
        assert_eq!(subtree_end(b"k/", cursor, 2), (b"k0".to_vec(), true), "the prefix's own end");
        assert_eq!(subtree_end(b"", b"zz", 1), (b"{".to_vec(), false));
        assert_eq!(subtree_end(b"", b"\xff\xff", 2), (vec![0], true), "no end above all-0xff");
        assert_eq!(subtree_end(b"a/", b"a/\xff", 3), (b"a0".to_vec(), true));
    }

    #[test]
    fn bytes_that_are_not_text_are_escaped() {
        assert_eq!(display_bytes(b"/registry/pods"), "/registry/pods");
        assert_eq!(display_bytes(b"a\xffb\n"), "a\\xffb\\n");
        assert_eq!(display_bytes("ключ".as_bytes()), "ключ");
        assert_eq!(display_bytes(b""), "");
    }

    #[test]
    fn pages_are_pinned_to_the_first_revision_and_read_ahead_near_the_end() {
        let mut b = KeyBrowser::new();
        let mut ids = RequestIds::default();
        let first = b.list(&mut ids, b"p/".to_vec());
        assert_eq!(
            first,
            KeyRequest::List {
                request: 1,
                prefix: b"p/".to_vec(),
                start: b"p/".to_vec(),
                revision: 0,
                tree: None,
                values: false
            }
        );
        // A stale reply changes nothing.
        assert!(b.on_page(&mut ids, 7, Ok(page(&["p/x"], false, 9))).is_empty());
        assert_eq!(b.loaded(), 0);
        let keys: Vec<String> = (0..500).map(|i| format!("p/{i:04}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        // A full page, selection at 0: 0 + 100 < 500, no read-ahead yet; the count is asked for.
        assert_eq!(
            b.on_page(&mut ids, 1, Ok(page(&refs, true, 42))),
            vec![KeyRequest::Count { request: 2, prefix: b"p/".to_vec(), revision: 42 }]
        );
        b.on_count(2, Ok(1200));
        assert_eq!((b.revision, b.count, b.more, b.known), (Some(42), Some(1200), true, 500));
        let next = b.move_to(&mut ids, 420).expect("near the end: the next page");
        assert_eq!(
            next,
            KeyRequest::List {
                request: 3,
                prefix: b"p/".to_vec(),
                start: b"p/0499\0".to_vec(),
                revision: 42,
                tree: None,
                values: false
            }
        );
        assert_eq!(b.move_to(&mut ids, 430), None, "one page in flight at a time");
        b.on_page(&mut ids, 3, Ok(page(&["p/0500"], false, 42)));
        assert_eq!((b.known, b.more, b.count), (501, false, Some(1200)));
        assert_eq!(b.move_to(&mut ids, 10_000), None);
        assert_eq!(b.selected, 500);
        assert_eq!(b.key_at(500).map(Vec::as_slice), Some(&b"p/0500"[..]));
    }

    #[test]
    fn memory_holds_the_pages_around_the_selection_and_refetches_the_others_at_the_same_revision() {
        let mut b = KeyBrowser::new();
        let mut ids = RequestIds::default();
        b.list(&mut ids, b"k/".to_vec());
        let page_keys =
            |n: usize| -> Vec<String> { (0..500).map(|i| format!("k/{:06}", n * 500 + i)).collect() };
        let mut request = 1;
        for n in 0..8 {
            let keys = page_keys(n);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            b.on_page(&mut ids, request, Ok(page(&refs, true, 77)));
            // Walk to the end of what is known: the next page is asked for.
            match b.move_to(&mut ids, b.known - 1) {
                Some(KeyRequest::List { request: r, start, revision, .. }) => {
                    assert_eq!(revision, 77);
                    assert_eq!(start, format!("k/{:06}\0", n * 500 + 499).into_bytes());
                    request = r;
                }
                other => panic!("page {n}: {other:?}"),
            }
        }
        assert!(b.pages.len() <= PAGES_KEPT, "{} pages in memory", b.pages.len());
        assert!(b.loaded() <= PAGES_KEPT * 500);
        assert_eq!(b.page_starts.len(), 9, "the start of every page seen is remembered");
        // Back to the top: page 0 was dropped and is fetched again from its start, at revision 77.
        b.loading = None;
        match b.move_to(&mut ids, 0) {
            Some(KeyRequest::List { start, revision, .. }) => {
                assert_eq!((start, revision), (b"k/".to_vec(), 77))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.key_at(0), None, "not loaded yet: shown as such, not as missing");
    }

    #[test]
    fn tree_rows_collapse_keys_below_the_first_separator() {
        assert_eq!(
            tree_row(b"", b"/", b"/registry/pods/a"),
            Row { key: b"/".to_vec(), dir: true, kube: None }
        );
        assert_eq!(
            tree_row(b"/", b"/", b"/registry/pods/a"),
            Row { key: b"/registry/".to_vec(), dir: true, kube: None }
        );
        assert_eq!(tree_row(b"/registry/", b"/", b"/registry/x"), Row::key(&b"/registry/x"[..]));
        // A key that ends with the separator is a key; a longer one makes it a directory too.
        assert_eq!(tree_row(b"a/", b"/", b"a/b/"), Row::key(&b"a/b/"[..]));
        assert_eq!(tree_row(b"a/", b"/", b"a/b/c"), Row { key: b"a/b/".to_vec(), dir: true, kube: None });
        assert_eq!(tree_row(b"", b"::", b"x::y::z"), Row { key: b"x::".to_vec(), dir: true, kube: None });
        assert_eq!(Row { key: b"a/".to_vec(), dir: true, kube: None }.next_start(), b"a0".to_vec());
        assert_eq!(Row::key(&b"a/"[..]).next_start(), b"a/\0".to_vec());
    }

    #[test]
    fn a_tree_opens_directories_and_climbs_back_to_the_parent() {
        let mut b = KeyBrowser::new();
        let mut ids = RequestIds::default();
        let first = b.toggle_tree(&mut ids);
        assert!(matches!(first, KeyRequest::List { tree: Some(ref s), .. } if s == b"/"));
        b.on_page(
            &mut ids,
            1,
            Ok(KeyPage {
                rows: vec![Row { key: b"a/".to_vec(), dir: true, kube: None }, Row::key(&b"b"[..])],
                more: false,
                revision: 3,
            }),
        );
        assert_eq!(b.parent(), None, "the top has no parent");
        match b.open(&mut ids) {
            Some(KeyRequest::List { prefix, tree: Some(_), .. }) => assert_eq!(prefix, b"a/"),
            other => panic!("{other:?}"),
        }
        b.prefix = b"a/b/c/".to_vec();
        assert_eq!(b.parent(), Some(b"a/b/".to_vec()));
        b.prefix = b"a/".to_vec();
        assert_eq!(b.parent(), Some(Vec::new()));
        b.toggle_tree(&mut ids);
        assert_eq!(b.parent(), None, "a flat listing has no levels");
    }

    #[test]
    fn a_local_filter_moves_among_the_loaded_rows_that_match() {
        let mut b = KeyBrowser::new();
        let mut ids = RequestIds::default();
        b.list(&mut ids, Vec::new());
        b.on_page(&mut ids, 1, Ok(page(&["app/1", "db/1", "app/2", "db/2"], false, 5)));
        b.filter = "db".into();
        assert_eq!(b.filtered(), vec![1, 3]);
        b.step(&mut ids, 0);
        assert_eq!(b.selected, 1, "onto the first match");
        b.step(&mut ids, 1);
        assert_eq!(b.selected, 3);
        b.step(&mut ids, 1);
        assert_eq!(b.selected, 3, "stays on the last match");
        b.step(&mut ids, -1);
        assert_eq!(b.selected, 1);
    }

    #[test]
    fn history_diffs_the_selected_version_against_the_one_before_or_a_chosen_base() {
        let v = |rev: i64| ValueInfo {
            key: b"k".to_vec(),
            value: vec![],
            create_revision: 1,
            mod_revision: rev,
            version: 1,
            lease: 0,
        };
        let mut h = HistoryPane {
            request: 1,
            result: Some(Ok(KeyHistory { versions: vec![v(9), v(7), v(4)], end: "created".into() })),
            selected: 0,
            base: None,
            diff: Vec::new(),
        };
        assert_eq!(h.pair(), Some((1, 0)));
        h.selected = 2;
        assert_eq!(h.pair(), None, "the oldest has nothing before it");
        h.base = Some(0);
        assert_eq!(h.pair(), Some((2, 0)));
    }

    #[test]
    fn the_value_pane_follows_its_own_request() {
        let mut b = KeyBrowser::new();
        let mut ids = RequestIds::default();
        b.list(&mut ids, Vec::new());
        b.on_page(&mut ids, 1, Ok(page(&["a", "b"], false, 5)));
        assert_eq!(b.move_to(&mut ids, 1), None);
        assert_eq!(b.open(&mut ids), Some(KeyRequest::Value { request: 3, key: b"b".to_vec() }));
        b.on_value(1, Ok(None));
        assert_eq!(b.value.as_ref().and_then(|p| p.result.clone()), None, "not its request");
        b.on_value(3, Ok(None));
        assert_eq!(b.value.as_ref().and_then(|p| p.result.clone()), Some(Ok(None)));
        // A delete asked for before the value came runs when it comes, and only if the key exists.
        let Some(KeyRequest::Value { request, .. }) = b.open_key(&mut ids, b"b".to_vec(), Some(Then::Delete))
        else {
            panic!()
        };
        let info = ValueInfo {
            key: b"b".to_vec(),
            value: vec![],
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            lease: 0,
        };
        assert_eq!(b.on_value(request, Ok(Some(ValueRead::new(info, None)))), Some(Then::Delete));
    }
}
