//! etcd 3.4's v2 members API and `/v2/machines` on the client port (`--enable-v2`), as its
//! membersHandler and machinesHandler serve them: the membership the store holds, changed through
//! the same checks as the Cluster service's.

use bytes::Bytes;
use etcd_client::proto::PbMember;
use http::{HeaderMap, Method, Response, StatusCode};
use serde::Serialize;
use tonic::body::Body;

use crate::etcd::urls::EtcdUrl;
use crate::node::error::NodeError;
use crate::node::rpc::cluster::{member_list, ClusterService};
use crate::node::rpc::ctx::Ctx;
use crate::node::rpc::v2reply::{
    go_json, http_error, method_not_allowed, reply, with_cluster_id, JSON, TEXT,
};

pub const MEMBERS_PATH: &str = "/v2/members";

/// A member as the v2 API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Member {
    id: String,
    name: String,
    #[serde(rename = "peerURLs")]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    client_urls: Vec<String>,
}

impl From<&PbMember> for V2Member {
    fn from(m: &PbMember) -> Self {
        V2Member {
            id: format!("{:x}", m.id),
            name: m.name.clone(),
            peer_urls: m.peer_ur_ls.clone(),
            client_urls: m.client_ur_ls.clone(),
        }
    }
}

/// etcd's httptypes.HTTPError: `{"message":...}` without a newline.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    reply(status, JSON, serde_json::json!({ "message": text }).to_string())
}

/// What etcd answers a failed membership change with: its own texts for the errors it knows, 500
/// for the rest.
fn change_error(e: &NodeError, id: u64) -> Response<Body> {
    match e {
        NodeError::MemberExists => message(StatusCode::CONFLICT, "membership: ID exists"),
        NodeError::PeerUrlExists => message(StatusCode::CONFLICT, "membership: peerURL exists"),
        NodeError::MemberNotFound => message(StatusCode::NOT_FOUND, &format!("No such member: {id:x}")),
        _ => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// etcd's unmarshalRequest and MemberCreateRequest: a JSON body `{"peerURLs":[...]}`, the URLs
/// checked and sorted as types.NewURLs does.
fn peer_urls(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, (StatusCode, String)> {
    let ctype = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let ctype = match ctype.split_once(';') {
        Some((t, _)) => t.trim().to_lowercase(),
        None => ctype.to_string(),
    };
    if ctype != "application/json" {
        let text = format!("Bad Content-Type {ctype}, accept application/json");
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, text));
    }
    #[derive(serde::Deserialize)]
    struct Create {
        #[serde(rename = "peerURLs", default)]
        peer_urls: Vec<String>,
    }
    let create: Create =
        serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, json_error(&e)))?;
    EtcdUrl::new_urls(&create.peer_urls).map_err(|e| (StatusCode::BAD_REQUEST, e))
}

/// A JSON error: Go's text for a body cut short, serde's words for the rest.
fn json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON input".into(),
        _ => e.to_string(),
    }
}

/// /v2/members and below: `path` is what follows `/v2/members`.
pub async fn serve(
    ctx: &Ctx,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let allowed = ["GET", "POST", "DELETE", "PUT"];
    if !allowed.contains(&method.as_str()) {
        return method_not_allowed(&allowed);
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    with_cluster_id(ctx, answer(ctx, method, rest, headers, &body).await)
}

async fn answer(ctx: &Ctx, method: Method, rest: &str, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let members = match ctx.handle.read_store() {
        Ok(store) => member_list(ctx, &store),
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let cluster = ClusterService { ctx: ctx.clone() };
    match method {
        Method::GET => match rest {
            "" => {
                let list: Vec<V2Member> = members.iter().map(V2Member::from).collect();
                reply(StatusCode::OK, JSON, go_json(&serde_json::json!({ "members": list })))
            }
            "leader" => match members.iter().find(|m| m.id == ctx.handle.leader() && m.id != 0) {
                Some(m) => reply(StatusCode::OK, JSON, go_json(&V2Member::from(m))),
                None => message(StatusCode::SERVICE_UNAVAILABLE, "During election"),
            },
            _ => message(StatusCode::NOT_FOUND, "Not found"),
        },
        Method::POST => {
            let urls = match peer_urls(headers, body) {
                Ok(urls) => urls,
                Err((status, text)) => return message(status, &text),
            };
            match cluster.add(urls, false).await {
                Ok(m) => reply(StatusCode::CREATED, JSON, go_json(&V2Member::from(&m))),
                Err(e) => change_error(&e, 0),
            }
        }
        _ => {
            if rest.is_empty() {
                return http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            // Go's ParseUint: hex digits only (no sign).
            let parsed = if rest.starts_with('+') { None } else { u64::from_str_radix(rest, 16).ok() };
            let Some(id) = parsed else {
                return message(StatusCode::NOT_FOUND, &format!("No such member: {rest}"));
            };
            let removed = ctx.handle.read_store().map(|s| s.removed().contains(&id)).unwrap_or(false);
            let result = if method == Method::DELETE {
                if removed {
                    return message(StatusCode::GONE, &format!("Member permanently removed: {id:x}"));
                }
                cluster.remove(id).await
            } else {
                let urls = match peer_urls(headers, body) {
                    Ok(urls) => urls,
                    Err((status, text)) => return message(status, &text),
                };
                if removed {
                    return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
                }
                cluster.update(id, urls).await
            };
            match result {
                Ok(()) => {
                    let mut resp = Response::new(Body::default());
                    *resp.status_mut() = StatusCode::NO_CONTENT;
                    resp
                }
                Err(e) => change_error(&e, id),
            }
        }
    }
}

/// /v2/machines: every member's client URLs, sorted, joined by ", ".
pub fn machines(ctx: &Ctx, method: &Method) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return method_not_allowed(&["GET", "HEAD"]);
    }
    let mut urls: Vec<String> = match ctx.handle.read_store() {
        Ok(store) => member_list(ctx, &store).into_iter().flat_map(|m| m.client_ur_ls).collect(),
        Err(_) => Vec::new(),
    };
    urls.sort();
    let body = urls.join(", ");
    if body.is_empty() {
        let mut resp = Response::new(Body::default());
        *resp.status_mut() = StatusCode::OK;
        return resp;
    }
    reply(StatusCode::OK, TEXT, body)
}

/// /v2/stats/self, /v2/stats/leader and /v2/stats/store (`which`), as etcd's statsHandler answers.
pub fn stats(ctx: &Ctx, method: &Method, which: &str) -> Response<Body> {
    if *method != Method::GET {
        return method_not_allowed(&["GET"]);
    }
    let status = &ctx.handle.status;
    let me = ctx.identity.member_id;
    let body = match which {
        "self" => status.v2_stats.self_json(&ctx.name, me),
        "leader" if ctx.handle.leader() != me => {
            return message(StatusCode::FORBIDDEN, "not current leader");
        }
        "leader" => status.v2_stats.leader_json(me),
        _ => match ctx.handle.read_store() {
            Ok(store) => {
                store.v2().stats().json(status.v2_watchers.load(std::sync::atomic::Ordering::Relaxed))
            }
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
    };
    reply(StatusCode::OK, JSON, body)
}
