//! A v2 keys request: read from the URL and form as etcd's parseKeyRequest reads it (the checks in
//! its order, with its codes and texts), and applied to the store as etcd's applyV2Request does.

use super::event::{Event, V2Error};
use super::stats::Op;
use super::tree::{clean, depth, Store, Ttl, MAX_DEPTH};
use crate::etcd::raft_request::V2Request;

/// What /v2/keys takes, as etcd's etcdserverpb.Request carries it through raft.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// GET, HEAD, PUT, POST or DELETE; etcd's internal QGET (a quorum read) and SYNC (an expiry
    /// sweep) too.
    pub method: String,
    /// The store path: `/1` and the key.
    pub path: String,
    pub value: String,
    pub dir: bool,
    /// Empty when not given.
    pub prev_value: String,
    /// 0 when not given.
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    /// Unix nanoseconds; 0 for no TTL.
    pub expiration: i64,
    pub wait: bool,
    pub wait_index: u64,
    pub recursive: bool,
    pub sorted: bool,
    pub quorum: bool,
    pub stream: bool,
    pub refresh: bool,
    /// The leader's clock for a SYNC (Unix nanoseconds).
    pub time: i64,
    /// The answer to a write leaves out the nodes (read where it arrives; not for raft).
    pub no_value_on_success: bool,
}

/// The prefix of the user's keys in the store.
pub const KEYS_PREFIX: &str = "/1";

/// The store path of a key: the key cleaned on its own (so `..` never leaves the user's keys), under
/// `/1`. etcd's HTTP mux redirects unclean paths before its handler sees them.
fn keys_path(key: &str) -> String {
    match clean(key).as_str() {
        "/" => KEYS_PREFIX.to_string(),
        k => format!("{KEYS_PREFIX}{k}"),
    }
}

fn invalid(code: u32, cause: &str) -> V2Error {
    V2Error::new(code, cause, 0)
}

/// Go's url.ParseQuery, the pairs in order: a bad escape or a `;` is an error in Go's words (the
/// url crate would pass them through).
pub fn parse_form(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.contains(';') {
        return Err("invalid semicolon separator in query".into());
    }
    let bytes = text.as_bytes();
    if let Some(at) = (0..bytes.len()).find(|&i| {
        bytes[i] == b'%' && !(bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
    }) {
        let bad: String = text[at..].chars().take(3).collect();
        return Err(format!("invalid URL escape {bad:?}"));
    }
    Ok(url::form_urlencoded::parse(text.as_bytes()).into_owned().collect())
}

/// The form as Go's Request.Form holds it: the body's values before the query's.
struct Form(Vec<(String, String)>);

impl Form {
    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// FormValue: the first value, or "".
    fn value(&self, key: &str) -> &str {
        self.0.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    fn bool(&self, key: &str, cause: &str) -> Result<bool, V2Error> {
        if !self.has(key) {
            return Ok(false);
        }
        crate::etcd::format::go_bool(self.value(key))
            .ok_or_else(|| invalid(crate::etcd::v2::INVALID_FIELD, cause))
    }

    fn uint(&self, key: &str, code: u32, cause: &str) -> Result<u64, V2Error> {
        if !self.has(key) {
            return Ok(0);
        }
        let v = self.value(key);
        // Go's ParseUint takes digits only; Rust's parse would take a leading '+'.
        if v.starts_with('+') {
            return Err(invalid(code, cause));
        }
        v.parse::<u64>().map_err(|_| invalid(code, cause))
    }
}

impl KeyRequest {
    /// Reads a request to `/v2/keys<key>` (`key` decoded, from the URL's path), its query and,
    /// for PUT and POST with a form, its body; a TTL counts from `now` (Unix nanoseconds).
    pub fn parse(
        method: &str,
        key: &str,
        query: &str,
        body: Option<&str>,
        now: i64,
    ) -> Result<Self, V2Error> {
        use crate::etcd::v2::{INDEX_NAN, INVALID_FIELD, INVALID_FORM, PREV_VALUE_REQUIRED};
        let mut pairs = match body {
            Some(b) => parse_form(b).map_err(|e| invalid(INVALID_FORM, &e))?,
            None => Vec::new(),
        };
        pairs.extend(parse_form(query).map_err(|e| invalid(INVALID_FORM, &e))?);
        let form = Form(pairs);
        let prev_index = form.uint("prevIndex", INDEX_NAN, r#"invalid value for "prevIndex""#)?;
        let wait_index = form.uint("waitIndex", INDEX_NAN, r#"invalid value for "waitIndex""#)?;
        let recursive = form.bool("recursive", r#"invalid value for "recursive""#)?;
        let sorted = form.bool("sorted", r#"invalid value for "sorted""#)?;
        let wait = form.bool("wait", r#"invalid value for "wait""#)?;
        let dir = form.bool("dir", r#"invalid value for "dir""#)?;
        let quorum = form.bool("quorum", r#"invalid value for "quorum""#)?;
        let stream = form.bool("stream", r#"invalid value for "stream""#)?;
        if wait && method != "GET" {
            return Err(invalid(INVALID_FIELD, r#""wait" can only be used with GET requests"#));
        }
        let prev_value = form.value("prevValue").to_string();
        if form.has("prevValue") && prev_value.is_empty() {
            return Err(invalid(PREV_VALUE_REQUIRED, r#""prevValue" cannot be empty"#));
        }
        let no_value_on_success = form.bool("noValueOnSuccess", r#"invalid value for "noValueOnSuccess""#)?;
        let ttl = if form.value("ttl").is_empty() {
            None
        } else {
            Some(form.uint("ttl", crate::etcd::v2::TTL_NAN, r#"invalid value for "ttl""#)?)
        };
        let prev_exist = if form.has("prevExist") {
            Some(form.bool("prevExist", "invalid value for prevExist")?)
        } else {
            None
        };
        let refresh = form.has("refresh") && form.bool("refresh", "invalid value for refresh")?;
        if refresh {
            if form.has("value") && !form.value("value").is_empty() {
                return Err(invalid(crate::etcd::v2::REFRESH_VALUE, "A value was provided on a refresh"));
            }
            if ttl.is_none() {
                return Err(invalid(crate::etcd::v2::REFRESH_TTL_REQUIRED, "No TTL value set"));
            }
        }
        let expiration = ttl.map_or(0, |t| now.saturating_add((t as i64).saturating_mul(1_000_000_000)));
        let path = keys_path(key);
        // A POST's key has one element more: the in-order name under the path.
        if depth(&path) + usize::from(method == "POST") > MAX_DEPTH {
            let cause = format!("etcdeck takes keys of at most {} elements", MAX_DEPTH - 1);
            return Err(invalid(INVALID_FIELD, &cause));
        }
        Ok(KeyRequest {
            method: method.to_string(),
            path,
            value: form.value("value").to_string(),
            dir,
            prev_value,
            prev_index,
            prev_exist,
            expiration,
            wait,
            wait_index,
            recursive,
            sorted,
            quorum,
            stream,
            refresh,
            // The proposer's clock: every member shows TTLs from it when it applies the request,
            // so what the store keeps of the answer is the same everywhere.
            time: now,
            no_value_on_success,
        })
    }

    fn ttl(&self) -> Ttl {
        Ttl { expire: (self.expiration != 0).then_some(self.expiration), refresh: self.refresh }
    }

    /// Applies a write (PUT, POST, DELETE) or a quorum read (QGET) to `store`, as etcd's
    /// applyV2Request chooses the operation; a SYNC's expiries come back as the events. `now` is
    /// the applying member's clock, for the TTLs the answer shows.
    pub fn apply(&self, store: &mut Store, now: i64) -> Result<Vec<Event>, V2Error> {
        let p = self.path.as_str();
        let (op, result) = match self.method.as_str() {
            "POST" => (Op::Create, store.create(p, self.dir, &self.value, true, self.ttl(), now)),
            "PUT" => match (self.prev_exist, self.prev_index > 0 || !self.prev_value.is_empty()) {
                (Some(true), false) => (Op::Update, store.update(p, &self.value, self.ttl(), now)),
                (Some(false), _) => {
                    (Op::Create, store.create(p, self.dir, &self.value, false, self.ttl(), now))
                }
                (_, true) => (
                    Op::CompareAndSwap,
                    store.compare_and_swap(
                        p,
                        &self.prev_value,
                        self.prev_index,
                        &self.value,
                        self.ttl(),
                        now,
                    ),
                ),
                (None, false) => (Op::Set, store.set(p, self.dir, &self.value, self.ttl(), now)),
            },
            "DELETE" if self.prev_index > 0 || !self.prev_value.is_empty() => {
                (Op::CompareAndDelete, store.compare_and_delete(p, &self.prev_value, self.prev_index, now))
            }
            "DELETE" => (Op::Delete, store.delete(p, self.dir, self.recursive, now)),
            "QGET" => (Op::Get, store.get(p, self.recursive, now)),
            "SYNC" => {
                let expired = store.delete_expired(self.time);
                store.stats().expired(expired.len() as u64);
                return Ok(expired);
            }
            _ => return Err(V2Error::new(crate::etcd::v2::RAFT_INTERNAL, "etcdserver: unknown method", 0)),
        };
        store.stats().record(op, result.is_ok());
        result.map(|e| vec![e])
    }
}

impl KeyRequest {
    /// The request as etcd's raft log carries it, with the proposal's ID.
    pub fn to_raft(&self, id: u64) -> V2Request {
        V2Request {
            id,
            method: self.method.clone(),
            path: self.path.clone(),
            val: self.value.clone(),
            dir: self.dir,
            prev_value: self.prev_value.clone(),
            prev_index: self.prev_index,
            prev_exist: self.prev_exist,
            expiration: self.expiration,
            wait: self.wait,
            since: self.wait_index,
            recursive: self.recursive,
            sorted: self.sorted,
            quorum: self.quorum,
            time: self.time,
            stream: self.stream,
            refresh: self.refresh.then_some(true),
        }
    }

    /// A request read back from the log.
    pub fn from_raft(r: V2Request) -> KeyRequest {
        KeyRequest {
            method: r.method,
            path: r.path,
            value: r.val,
            dir: r.dir,
            prev_value: r.prev_value,
            prev_index: r.prev_index,
            prev_exist: r.prev_exist,
            expiration: r.expiration,
            wait: r.wait,
            wait_index: r.since,
            recursive: r.recursive,
            sorted: r.sorted,
            quorum: r.quorum,
            stream: r.stream,
            refresh: r.refresh.unwrap_or(false),
            time: r.time,
            no_value_on_success: false,
        }
    }

    /// Whether the request goes through raft: writes, quorum reads and sweeps (etcd's
    /// RequestV2.Handle); the rest are read here.
    pub fn through_raft(&self) -> bool {
        match self.method.as_str() {
            // etcd reads a HEAD here, whatever `quorum` says.
            "GET" => self.quorum,
            "HEAD" => false,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn parse(method: &str, key: &str, query: &str, body: Option<&str>) -> Result<KeyRequest, V2Error> {
        KeyRequest::parse(method, key, query, body, NOW)
    }

    fn refused(method: &str, query: &str) -> (u32, String) {
        let e = parse(method, "/k", query, None).unwrap_err();
        assert_eq!(e.index, 0, "request errors carry index 0");
        (e.code, e.cause)
    }

    #[test]
    fn the_form_is_read_as_etcd_reads_it() {
        let r = parse("PUT", "/a/../b/", "prevExist=false&dir=true", Some("value=x+y%21&ttl=5")).unwrap();
        assert_eq!(r.path, "/1/b");
        assert_eq!(r.value, "x y!");
        assert_eq!((r.dir, r.prev_exist, r.expiration), (true, Some(false), NOW + 5_000_000_000));
        // The body's value comes before the query's.
        assert_eq!(parse("PUT", "/k", "value=q", Some("value=b")).unwrap().value, "b");
        assert_eq!(parse("GET", "/", "recursive=T&sorted=1", None).unwrap().path, "/1");
        // `..` stays among the user's keys.
        assert_eq!(parse("PUT", "/../0/members/x", "", None).unwrap().path, "/1/0/members/x");
        // An empty ttl is no ttl.
        assert_eq!(parse("PUT", "/k", "ttl=", None).unwrap().expiration, 0);
    }

    #[test]
    fn bad_fields_get_etcds_codes_and_texts_in_its_order() {
        assert_eq!(
            refused("GET", "prevIndex=x&recursive=x"),
            (203, r#"invalid value for "prevIndex""#.into())
        );
        assert_eq!(refused("GET", "waitIndex=-1"), (203, r#"invalid value for "waitIndex""#.into()));
        assert_eq!(refused("GET", "waitIndex=+1"), (203, r#"invalid value for "waitIndex""#.into()));
        assert_eq!(refused("GET", "recursive"), (209, r#"invalid value for "recursive""#.into()));
        assert_eq!(refused("GET", "sorted=yes"), (209, r#"invalid value for "sorted""#.into()));
        assert_eq!(refused("PUT", "wait=true"), (209, r#""wait" can only be used with GET requests"#.into()));
        assert_eq!(refused("PUT", "prevValue="), (201, r#""prevValue" cannot be empty"#.into()));
        assert_eq!(
            refused("PUT", "noValueOnSuccess=2"),
            (209, r#"invalid value for "noValueOnSuccess""#.into())
        );
        assert_eq!(refused("PUT", "ttl=ten"), (202, r#"invalid value for "ttl""#.into()));
        assert_eq!(refused("PUT", "prevExist=maybe"), (209, "invalid value for prevExist".into()));
        assert_eq!(refused("PUT", "refresh=x"), (209, "invalid value for refresh".into()));
        assert_eq!(
            refused("PUT", "refresh=true&value=v&ttl=1"),
            (211, "A value was provided on a refresh".into())
        );
        assert_eq!(refused("PUT", "refresh=true"), (212, "No TTL value set".into()));
        assert_eq!(refused("GET", "a=%zz"), (210, r#"invalid URL escape "%zz""#.into()));
        assert_eq!(refused("GET", "a=1;b=2"), (210, "invalid semicolon separator in query".into()));
        let deep = "/k".repeat(MAX_DEPTH);
        let e = parse("PUT", &deep, "", None).unwrap_err();
        assert_eq!((e.code, e.cause.as_str()), (209, "etcdeck takes keys of at most 255 elements"));
        assert!(parse("PUT", &deep[2..], "", None).is_ok());
        // A POST makes a key one element deeper than its path.
        assert_eq!(parse("POST", &deep[2..], "", None).unwrap_err().code, 209);
        assert!(parse("POST", &deep[4..], "", None).is_ok());
    }

    #[test]
    fn each_write_picks_etcds_operation() {
        let mut s = Store::new();
        let put = |q: &str, body: &str| parse("PUT", "/k", q, Some(body)).unwrap();
        let action = |s: &mut Store, r: KeyRequest| match r.apply(s, NOW) {
            Ok(events) => events[0].action.to_string(),
            Err(e) => format!("error {}", e.code),
        };
        assert_eq!(action(&mut s, put("prevExist=true", "value=a")), "error 100");
        assert_eq!(action(&mut s, put("prevExist=false", "value=a")), "create");
        assert_eq!(action(&mut s, put("", "value=b")), "set");
        assert_eq!(action(&mut s, put("prevExist=true", "value=c")), "update");
        assert_eq!(action(&mut s, put("prevValue=c", "value=d")), "compareAndSwap");
        assert_eq!(action(&mut s, put("prevExist=true&prevIndex=4", "value=e")), "compareAndSwap");
        let post = parse("POST", "/queue", "", Some("value=job")).unwrap();
        assert_eq!(post.apply(&mut s, NOW).unwrap()[0].node.key, "/1/queue/00000000000000000006");
        let cad = parse("DELETE", "/k", "prevValue=x", None).unwrap();
        assert_eq!(action(&mut s, cad), "error 101");
        let del = parse("DELETE", "/k", "", None).unwrap();
        assert_eq!(action(&mut s, del), "delete");
        let sync = KeyRequest { method: "SYNC".into(), time: NOW, ..KeyRequest::default() };
        let back = KeyRequest::from_raft(sync.to_raft(7));
        assert_eq!(back, sync, "a request comes back from the log as it went in");
        let cas = parse("PUT", "/k", "prevExist=false&refresh=true&ttl=3", None).unwrap();
        assert_eq!(KeyRequest::from_raft(cas.to_raft(1)), KeyRequest { no_value_on_success: false, ..cas });
        assert!(sync.apply(&mut s, NOW).unwrap().is_empty());
    }
}
