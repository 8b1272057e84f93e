//! etcd 3.4's v2 keys API on the client port (`--enable-v2`): `/v2/keys`, as its keysHandler
//! serves it. A read is answered from this member's store (with `quorum=true`, through raft);
//! writes go through raft; a watch (`wait=true`) starts from the store's history and waits for
//! the changes after it, one event or (`stream=true`) each.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use tonic::body::Body;

use crate::etcd::v2::Node;
use crate::etcd::v2::INDEX_HEADER;
use crate::node::raft::write::{Write, WriteResponse};
use crate::node::rpc::ctx::Ctx;
use crate::node::rpc::v2reply::{error, go_json, method_not_allowed, reply, set, with_cluster_id, JSON};
use crate::node::v2store::{self, Event, KeyRequest, V2Error, KEYS_PREFIX};

/// Where the keys API is served.
pub const KEYS_PATH: &str = "/v2/keys";

/// A request to the keys API: its method, the key (the URL's path after `/v2/keys`, decoded), its
/// query, and its form body (for a PUT or POST of `application/x-www-form-urlencoded`).
pub struct KeysCall {
    pub method: Method,
    pub key: String,
    pub query: String,
    pub form: Option<String>,
}

pub async fn serve(ctx: &Ctx, call: KeysCall, stopped: tokio::sync::watch::Receiver<bool>) -> Response<Body> {
    let allowed = ["HEAD", "GET", "PUT", "POST", "DELETE"];
    if !allowed.contains(&call.method.as_str()) {
        return method_not_allowed(&allowed);
    }
    let head = call.method == Method::HEAD;
    let resp = with_cluster_id(ctx, answer(ctx, call, stopped).await);
    if !head {
        return resp;
    }
    // Go answers a HEAD with what a GET would have, its length too, without the body.
    let (mut parts, body) = resp.into_parts();
    let length = http_body::Body::size_hint(&body).exact().unwrap_or(0);
    parts.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(length));
    Response::from_parts(parts, Body::default())
}

async fn answer(ctx: &Ctx, call: KeysCall, stopped: tokio::sync::watch::Receiver<bool>) -> Response<Body> {
    let now = v2store::now();
    let mut req =
        match KeyRequest::parse(call.method.as_str(), &call.key, &call.query, call.form.as_deref(), now) {
            Ok(r) => r,
            Err(e) => return error(&e),
        };
    // A quorum read goes through raft and is never a watch (etcd's RequestV2.Handle).
    if req.method == "GET" && req.quorum {
        req.method = "QGET".into();
    } else if req.wait {
        return watch(ctx, req, stopped);
    }
    let no_value = req.no_value_on_success;
    if Write::V2(req.clone()).adds_data() && ctx.disk_low() {
        let e = crate::node::error::NodeError::NoSpace;
        return error(&V2Error::new(crate::etcd::v2::RAFT_INTERNAL, e.to_string(), 0));
    }
    let event = if req.through_raft() {
        match ctx.handle.write(Write::V2(req)).await {
            Ok(WriteResponse::V2(Ok(mut events))) if !events.is_empty() => Ok(events.swap_remove(0)),
            Ok(WriteResponse::V2(Err(e))) => Err(e),
            Ok(_) => Err(V2Error::new(crate::etcd::v2::RAFT_INTERNAL, "mismatched response", 0)),
            Err(e) => Err(V2Error::new(crate::etcd::v2::RAFT_INTERNAL, e.to_string(), 0)),
        }
    } else {
        match ctx.handle.read_store() {
            Ok(store) => {
                let got = store.v2().get(&req.path, req.recursive, now);
                store.v2().stats().record(v2store::Op::Get, got.is_ok());
                got
            }
            Err(e) => Err(V2Error::new(crate::etcd::v2::RAFT_INTERNAL, e.to_string(), 0)),
        }
    };
    match event {
        Ok(event) => event_reply(ctx, event, no_value),
        Err(mut e) => {
            e.cause = trim_key(&e.cause);
            error(&e)
        }
    }
}

/// A v2 error from the keys API, with its cluster ID header.
pub fn with_cluster_id_error(ctx: &Ctx, e: &V2Error) -> Response<Body> {
    with_cluster_id(ctx, error(e))
}

/// etcd's trimErrorPrefix and trimNodeExternPrefix: the store's `/1` left out of what is shown.
fn trim_key(key: &str) -> String {
    match key.strip_prefix(KEYS_PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_string(),
        _ => key.to_string(),
    }
}

fn trim_node(node: &mut Node) {
    node.key = trim_key(&node.key);
    for child in &mut node.nodes {
        trim_node(child);
    }
}

fn trim_event(event: &mut Event) {
    trim_node(&mut event.node);
    if let Some(prev) = &mut event.prev_node {
        trim_node(prev);
    }
}

fn raft_headers(ctx: &Ctx, resp: &mut Response<Body>) {
    let status = &ctx.handle.status;
    set(resp, "x-raft-index", &status.commit.load(std::sync::atomic::Ordering::Relaxed).to_string());
    set(resp, "x-raft-term", &ctx.handle.raft_term().to_string());
}

/// etcd's writeKeyEvent: 201 for a new key, the index headers, the event without `/1`; with
/// `noValueOnSuccess` a write's answer has no nodes.
fn event_reply(ctx: &Ctx, mut event: Event, no_value: bool) -> Response<Body> {
    let status = if event.is_created() { StatusCode::CREATED } else { StatusCode::OK };
    trim_event(&mut event);
    let body = if no_value && matches!(event.action.as_str(), "set" | "compareAndSwap" | "create" | "update")
    {
        go_json(&serde_json::json!({ "action": event.action }))
    } else {
        go_json(&event)
    };
    let mut resp = reply(status, JSON, body);
    set(&mut resp, INDEX_HEADER, &event.etcd_index.to_string());
    raft_headers(ctx, &mut resp);
    resp
}

/// etcd's isHidden: whether a change of `key` is hidden from a watcher of `watched` (an element
/// below the watched key starts with `_`).
fn hidden(watched: &str, key: &str) -> bool {
    if watched.len() > key.len() || !key.starts_with(watched) {
        return false;
    }
    v2store::clean(&format!("/{}", &key[watched.len()..])).contains("/_")
}

/// Whether etcd's watcher hub tells a watcher of `watched` about a change made after it began:
/// not a change of a hidden key below it, and a directory's removal only when the watched key is
/// the directory or under it (the history's scan matches by string prefix alone).
fn seen_live(watched: &str, event: &Event) -> bool {
    let changed = event.node.key.as_str();
    if hidden(watched, changed) {
        return false;
    }
    let under_removed_dir = watched.len() > changed.len()
        && watched.starts_with(changed)
        && watched[changed.len()..].starts_with('/');
    watched.len() <= changed.len() || changed == "/" || under_removed_dir
}

/// A watch open: counted in /v2/stats/store's watchers while it lives.
struct Watching(std::sync::Arc<crate::node::raft::driver::RaftStatus>);

impl Watching {
    fn new(status: &std::sync::Arc<crate::node::raft::driver::RaftStatus>) -> Watching {
        status.v2_watchers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Watching(status.clone())
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.v2_watchers.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// etcd's handleKeyWatch: the headers at once (the store's index when the watch began), then the
/// first event the watcher sees, from the history or still to come; with `stream`, each one after
/// it. The stream ends when the history no longer reaches the next index, when the client goes,
/// or when the member stops.
fn watch(ctx: &Ctx, req: KeyRequest, mut stopped: tokio::sync::watch::Receiver<bool>) -> Response<Body> {
    let start = match ctx.handle.read_store() {
        Ok(store) => {
            let start = store.v2().index();
            if let Err(e) = store.v2().watch_from(&req.path, req.recursive, req.wait_index) {
                return error(&e);
            }
            start
        }
        Err(e) => return error(&V2Error::new(crate::etcd::v2::RAFT_INTERNAL, e.to_string(), 0)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let handle = ctx.handle.clone();
    tokio::spawn(async move {
        let _counted = Watching::new(&handle.status);
        let mut since = if req.wait_index == 0 { start + 1 } else { req.wait_index };
        loop {
            let changed = handle.status.v2_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let next = match handle.read_store() {
                Ok(store) => store.v2().watch_from(&req.path, req.recursive, since),
                Err(_) => return,
            };
            match next {
                Ok(Some(mut event)) => {
                    since = event.etcd_index + 1;
                    // Changes after the watch began are sent as etcd's hub sends them (hidden keys
                    // left out, a directory's removal only to the keys under it); those before it
                    // come from the history as its scan finds them.
                    if event.etcd_index > start && !seen_live(&req.path, &event) {
                        continue;
                    }
                    trim_event(&mut event);
                    let sent = tokio::select! {
                        sent = tx.send(Bytes::from(go_json(&event))) => sent.is_ok(),
                        _ = stopped.changed() => false,
                    };
                    if !sent || !req.stream {
                        return;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = &mut changed => {}
                        _ = tx.closed() => return,
                        _ = stopped.changed() => return,
                    }
                }
                Err(_) => return,
            }
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<_, Infallible>(http_body::Frame::data(bytes)), rx))
    });
    let mut resp = Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    set(&mut resp, http::header::CONTENT_TYPE.as_str(), JSON);
    set(&mut resp, INDEX_HEADER, &start.to_string());
    raft_headers(ctx, &mut resp);
    resp
}

/// etcd's sync: every 500 ms the leader, while a v2 key has a time to live, proposes a sweep with
/// its clock, and every member expires the same keys when it applies it.
pub async fn sweep(ctx: Ctx, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let timed = ctx.handle.read_store().map(|s| s.v2().has_ttl_keys()).unwrap_or(false);
        if !timed || ctx.handle.leader() != ctx.identity.member_id {
            continue;
        }
        let sync = KeyRequest { method: "SYNC".into(), time: v2store::now(), ..KeyRequest::default() };
        // A sweep that fails (no quorum, a new leader) is proposed again at the next tick.
        let _ = ctx.handle.write(Write::V2(sync)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lose_the_store_prefix_and_hidden_keys_are_etcds() {
        assert_eq!(trim_key("/1/a/b"), "/a/b");
        assert_eq!(trim_key("/1"), "");
        assert_eq!(trim_key("/10"), "/10");
        let mut e = Event {
            action: "get".into(),
            node: Node {
                key: "/1".into(),
                nodes: vec![Node { key: "/1/d".into(), ..Node::default() }],
                ..Node::default()
            },
            prev_node: Some(Node { key: "/1/p".into(), ..Node::default() }),
            etcd_index: 0,
            refresh: false,
        };
        trim_event(&mut e);
        assert_eq!((e.node.key.as_str(), e.node.nodes[0].key.as_str()), ("", "/d"));
        assert_eq!(e.prev_node.unwrap().key, "/p");
        assert!(hidden("/1/a", "/1/a/_b"));
        assert!(hidden("/1/a", "/1/a/b/_c/d"));
        assert!(!hidden("/1/a", "/1/a/b"));
        assert!(!hidden("/1/a/_b", "/1/a/_b"), "a hidden key watched itself is seen");
        assert!(!hidden("/1/a/b", "/1/a"));
        let removed = |key: &str| Event {
            action: "delete".into(),
            node: Node { key: key.into(), dir: true, ..Node::default() },
            prev_node: None,
            etcd_index: 9,
            refresh: false,
        };
        assert!(seen_live("/1/foo/bar", &removed("/1/foo")));
        assert!(!seen_live("/1/foobar", &removed("/1/foo")), "a path boundary, as etcd's hub walks paths");
        assert!(seen_live("/1/foo", &removed("/1/foo/bar")), "a recursive watcher's change below it");
    }
}
