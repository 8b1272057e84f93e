//! The key browser: a flat, keys-only listing under a prefix, fetched a page at a time and pinned to
//! the revision of its first page so later pages agree with it; and the value of the selected key.

/// Keys asked for per page: keys-only pages of this size stay far below gRPC's 4 MiB message limit
/// unless keys are hundreds of kilobytes long.
pub const PAGE: i64 = 500;
/// When the selection comes this close to the end of what is loaded, the next page is asked for.
pub const READ_AHEAD: usize = 100;

/// etcd's prefix range end (clientv3.GetPrefixRangeEnd): the prefix with its last byte below 0xff
/// incremented and what follows dropped; "\0" (every key from the start) when there is no such byte.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

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

/// The smallest key after `key`.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Bytes as text: UTF-8 shown as it is, except control characters; anything else escaped as \xNN,
/// so no key or value can garble the screen.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control() => out.extend(c.escape_unicode()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<Vec<u8>>,
    pub more: bool,
    /// The revision the page was read at.
    pub revision: i64,
}

/// A key's value and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    Json,
    Text,
    Hex,
}

impl ValueFormat {
    /// JSON if it parses as a JSON object or array, text if it is UTF-8, hex otherwise.
    pub fn detect(value: &[u8]) -> ValueFormat {
        let trimmed = value.trim_ascii_start();
        if matches!(trimmed.first(), Some(b'{' | b'['))
            && serde_json::from_slice::<serde_json::Value>(value).is_ok()
        {
            ValueFormat::Json
        } else if std::str::from_utf8(value).is_ok() {
            ValueFormat::Text
        } else {
            ValueFormat::Hex
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::Json => "json",
            ValueFormat::Text => "text",
            ValueFormat::Hex => "hex",
        }
    }
}

/// The value's lines as the format shows them, hex rows fitted to `width` columns.
pub fn value_lines(value: &[u8], format: ValueFormat, width: usize) -> Vec<String> {
    match format {
        ValueFormat::Json => match serde_json::from_slice::<serde_json::Value>(value)
            .and_then(|v| serde_json::to_string_pretty(&v))
        {
            Ok(text) => text.lines().map(display_bytes_str).collect(),
            Err(_) => value_lines(value, ValueFormat::Text, width),
        },
        ValueFormat::Text => value.split(|b| *b == b'\n').map(display_bytes).collect(),
        ValueFormat::Hex => {
            // "offset  hex bytes  ascii": 11 + 4 columns per byte.
            let per_row = (width.saturating_sub(11) / 4).clamp(1, 16);
            value
                .chunks(per_row)
                .enumerate()
                .map(|(i, row)| {
                    let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                    let ascii: String = row
                        .iter()
                        .map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' })
                        .collect();
                    format!("{:08x}  {:<w$}  {ascii}", i * per_row, hex.join(" "), w = per_row * 3 - 1)
                })
                .collect()
        }
    }
}

fn display_bytes_str(s: &str) -> String {
    display_bytes(s.as_bytes())
}

/// The value pane: which key, and what the read returned (None while it is on its way; Ok(None) when
/// the key does not exist any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePane {
    pub key: Vec<u8>,
    pub request: u64,
    pub result: Option<Result<Option<ValueInfo>, String>>,
}

/// How many pages are kept around the selection; farther ones are dropped and fetched again (at the
/// same revision, from the same start key, so they come back the same) when the selection returns.
pub const PAGES_KEPT: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyBrowser {
    pub prefix: Vec<u8>,
    /// Loaded pages by number: page n holds keys n*PAGE .. n*PAGE+PAGE of the listing.
    pub pages: std::collections::BTreeMap<usize, Vec<Vec<u8>>>,
    /// The first key of every page known so far (a page's start is known once the one before it
    /// has been read): what memory keeps of the whole listing.
    pub page_starts: Vec<Vec<u8>>,
    /// Keys known to exist: the loaded pages' and those before them.
    pub known: usize,
    /// The revision every page of this listing is read at (that of its first page).
    pub revision: Option<i64>,
    /// How many keys the prefix holds at that revision, once a count_only read said so.
    pub count: Option<i64>,
    pub count_request: Option<u64>,
    /// Whether keys follow the last page known.
    pub more: bool,
    /// The listing request in flight, and the page it asks for.
    pub loading: Option<(u64, usize)>,
    pub error: Option<String>,
    /// Index of the selected key in the whole listing.
    pub selected: usize,
    pub value: Option<ValuePane>,
    pub next_request: u64,
}

/// What the browser asks a worker for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyRequest {
    /// Keys in [start, prefix_end(prefix)), keys-only, serializable, at `revision` (0: newest).
    List { request: u64, prefix: Vec<u8>, start: Vec<u8>, revision: i64 },
    /// One key's value (a linearizable read).
    Value { request: u64, key: Vec<u8> },
    /// How many keys the prefix holds at `revision` (count_only).
    Count { request: u64, prefix: Vec<u8>, revision: i64 },
}

impl KeyBrowser {
    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// The key at `index` of the listing, if its page is loaded.
    pub fn key_at(&self, index: usize) -> Option<&Vec<u8>> {
        self.pages.get(&(index / PAGE as usize))?.get(index % PAGE as usize)
    }

    /// Keys in memory.
    pub fn loaded(&self) -> usize {
        self.pages.values().map(Vec::len).sum()
    }

    /// Starts the listing of `prefix` over, at the newest revision.
    pub fn list(&mut self, prefix: Vec<u8>) -> KeyRequest {
        let request = self.request_id();
        *self = KeyBrowser {
            prefix: prefix.clone(),
            next_request: self.next_request,
            value: self.value.take(),
            ..Default::default()
        };
        // etcd refuses an empty key: all keys start at "\0", as etcdctl's --from-key "" does.
        let start = if prefix.is_empty() { vec![0] } else { prefix.clone() };
        self.page_starts.push(start.clone());
        self.loading = Some((request, 0));
        KeyRequest::List { request, start, prefix, revision: 0 }
    }

    fn fetch(&mut self, page: usize) -> Option<KeyRequest> {
        let start = self.page_starts.get(page)?.clone();
        let request = self.request_id();
        self.loading = Some((request, page));
        Some(KeyRequest::List {
            request,
            prefix: self.prefix.clone(),
            start,
            revision: self.revision.unwrap_or(0),
        })
    }

    /// The page the selection needs next, if any: its own page if it was dropped, else the next
    /// one when the selection is near the end of what is known.
    fn wanted(&mut self) -> Option<KeyRequest> {
        if self.loading.is_some() || self.revision.is_none() {
            return None;
        }
        let per_page = PAGE as usize;
        let page = self.selected / per_page;
        for p in [page, page.saturating_sub(1)] {
            if !self.pages.contains_key(&p) && p < self.page_starts.len() {
                return self.fetch(p);
            }
        }
        // Etcd fills every page but the last, so page n starts at key n * PAGE.
        let next = page + 1;
        if next < self.page_starts.len()
            && !self.pages.contains_key(&next)
            && self.selected + READ_AHEAD >= next * per_page
        {
            return self.fetch(next);
        }
        None
    }

    /// A page arrived; replies to anything but the request in flight are stale and dropped.
    pub fn on_page(&mut self, request: u64, result: Result<KeyPage, String>) -> Vec<KeyRequest> {
        let Some((_, page)) = self.loading.filter(|(r, _)| *r == request) else { return Vec::new() };
        self.loading = None;
        match result {
            Ok(p) => {
                let mut asks = Vec::new();
                if self.revision.is_none() {
                    // The count can take a while on a large prefix: it comes on its own.
                    self.revision = Some(p.revision);
                    let count = self.request_id();
                    self.count_request = Some(count);
                    asks.push(KeyRequest::Count {
                        request: count,
                        prefix: self.prefix.clone(),
                        revision: p.revision,
                    });
                }
                if page + 1 == self.page_starts.len() {
                    // The newest page known: it tells where the next one starts.
                    self.more = p.more;
                    if let Some(last) = p.keys.last().filter(|_| p.more) {
                        self.page_starts.push(key_after(last));
                    }
                    self.known = page * PAGE as usize + p.keys.len();
                }
                self.pages.insert(page, p.keys);
                // Keep the pages around the selection only.
                let centre = self.selected / PAGE as usize;
                self.pages.retain(|n, _| n.abs_diff(centre) <= PAGES_KEPT / 2);
                self.error = None;
                asks.extend(self.wanted());
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

    pub fn move_to(&mut self, index: usize) -> Option<KeyRequest> {
        self.selected = index.min(self.known.saturating_sub(1));
        self.wanted()
    }

    /// Opens the value pane on the selected key.
    pub fn open(&mut self) -> Option<KeyRequest> {
        let key = self.key_at(self.selected)?.clone();
        let request = self.request_id();
        self.value = Some(ValuePane { key: key.clone(), request, result: None });
        Some(KeyRequest::Value { request, key })
    }

    pub fn on_value(&mut self, request: u64, result: Result<Option<ValueInfo>, String>) {
        if let Some(pane) = self.value.as_mut().filter(|p| p.request == request) {
            pane.result = Some(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], more: bool, revision: i64) -> KeyPage {
        KeyPage { keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(), more, revision }
    }

    #[test]
    fn prefix_ends_are_etcds() {
        assert_eq!(prefix_end(b"a/"), b"a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
        assert_eq!(key_after(b"k"), b"k\0");
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
    fn formats_are_detected_and_shown() {
        assert_eq!(ValueFormat::detect(br#"{"a":1}"#), ValueFormat::Json);
        assert_eq!(ValueFormat::detect(b"plain"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"{not json"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"\x00\x01\xff"), ValueFormat::Hex);
        assert_eq!(
            value_lines(br#"{"a":[1,2]}"#, ValueFormat::Json, 80),
            ["{", "  \"a\": [", "    1,", "    2", "  ]", "}"]
        );
        assert_eq!(
            value_lines(b"\x00AB", ValueFormat::Hex, 80),
            ["00000000  00 41 42                                         .AB"]
        );
        assert_eq!(value_lines(b"one\ntwo\x01", ValueFormat::Text, 80), ["one", "two\\x01"]);
        assert_eq!(
            value_lines(b"0123456789", ValueFormat::Hex, 35),
            ["00000000  30 31 32 33 34 35  012345", "00000006  36 37 38 39        6789"],
            "rows fit the width"
        );
    }

    #[test]
    fn pages_are_pinned_to_the_first_revision_and_read_ahead_near_the_end() {
        let mut b = KeyBrowser::default();
        let first = b.list(b"p/".to_vec());
        assert_eq!(
            first,
            KeyRequest::List { request: 1, prefix: b"p/".to_vec(), start: b"p/".to_vec(), revision: 0 }
        );
        // A stale reply changes nothing.
        assert!(b.on_page(7, Ok(page(&["p/x"], false, 9))).is_empty());
        assert_eq!(b.loaded(), 0);
        let keys: Vec<String> = (0..500).map(|i| format!("p/{i:04}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        // A full page, selection at 0: 0 + 100 < 500, no read-ahead yet; the count is asked for.
        assert_eq!(
            b.on_page(1, Ok(page(&refs, true, 42))),
            vec![KeyRequest::Count { request: 2, prefix: b"p/".to_vec(), revision: 42 }]
        );
        b.on_count(2, Ok(1200));
        assert_eq!((b.revision, b.count, b.more, b.known), (Some(42), Some(1200), true, 500));
        let next = b.move_to(420).expect("near the end: the next page");
        assert_eq!(
            next,
            KeyRequest::List {
                request: 3,
                prefix: b"p/".to_vec(),
                start: b"p/0499\0".to_vec(),
                revision: 42
            }
        );
        assert_eq!(b.move_to(430), None, "one page in flight at a time");
        b.on_page(3, Ok(page(&["p/0500"], false, 42)));
        assert_eq!((b.known, b.more, b.count), (501, false, Some(1200)));
        assert_eq!(b.move_to(10_000), None);
        assert_eq!(b.selected, 500);
        assert_eq!(b.key_at(500).map(Vec::as_slice), Some(&b"p/0500"[..]));
    }

    #[test]
    fn memory_holds_the_pages_around_the_selection_and_refetches_the_others_at_the_same_revision() {
        let mut b = KeyBrowser::default();
        b.list(b"k/".to_vec());
        let page_keys =
            |n: usize| -> Vec<String> { (0..500).map(|i| format!("k/{:06}", n * 500 + i)).collect() };
        let mut request = 1;
        for n in 0..8 {
            let keys = page_keys(n);
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            b.on_page(request, Ok(page(&refs, true, 77)));
            // Walk to the end of what is known: the next page is asked for.
            match b.move_to(b.known - 1) {
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
        match b.move_to(0) {
            Some(KeyRequest::List { start, revision, .. }) => {
                assert_eq!((start, revision), (b"k/".to_vec(), 77))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.key_at(0), None, "not loaded yet: shown as such, not as missing");
    }

    #[test]
    fn the_value_pane_follows_its_own_request() {
        let mut b = KeyBrowser::default();
        b.list(Vec::new());
        b.on_page(1, Ok(page(&["a", "b"], false, 5)));
        assert_eq!(b.move_to(1), None);
        assert_eq!(b.open(), Some(KeyRequest::Value { request: 3, key: b"b".to_vec() }));
        b.on_value(1, Ok(None));
        assert_eq!(b.value.as_ref().and_then(|p| p.result.clone()), None, "not its request");
        b.on_value(3, Ok(None));
        assert_eq!(b.value.as_ref().and_then(|p| p.result.clone()), Some(Ok(None)));
    }
}
