//! etcd's HTTP endpoints on the client port, beside gRPC: GET /health, /version and /metrics. A tower
//! layer answers these paths and hands every other request to the gRPC routes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tonic::body::Body;

use crate::node::metrics::{inc, Gauges};
use crate::node::rpc::ctx::Ctx;
use crate::node::rpc::maintenance::ETCD_VERSION;
use crate::node::rpc::{v2keys, v2members, v2reply};

#[derive(Clone)]
pub struct HttpLayer {
    pub ctx: Ctx,
    /// Set when the member stops: what the v2 API is still sending (watches) ends.
    pub stopped: tokio::sync::watch::Receiver<bool>,
}

impl<S> tower::Layer<S> for HttpLayer {
    type Service = HttpEndpoints<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpEndpoints { ctx: self.ctx.clone(), stopped: self.stopped.clone(), inner }
    }
}

#[derive(Clone)]
pub struct HttpEndpoints<S> {
    ctx: Ctx,
    stopped: tokio::sync::watch::Receiver<bool>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::new(Full::new(bytes::Bytes::from(body))));
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

/// etcd's /health: false when an alarm is raised, when there is no leader, or when a linearizable read
/// does not complete within a second.
pub async fn health(ctx: &Ctx) -> bool {
    let alarmed = ctx.handle.read_store().map(|s| !s.alarms().is_empty()).unwrap_or(true)
        || ctx.handle.status.disk_failure().is_some()
        || ctx.disk_low();
    let healthy = !alarmed
        && ctx.handle.leader() != 0
        && matches!(tokio::time::timeout(Duration::from_secs(1), ctx.handle.read_index()).await, Ok(Ok(_)));
    inc(if healthy { &ctx.handle.metrics.health_success } else { &ctx.handle.metrics.health_failures });
    healthy
}

fn metrics_text(ctx: &Ctx) -> String {
    let h = &ctx.handle;
    let gauges = match h.read_store() {
        Ok(store) => Gauges {
            member_id: ctx.identity.member_id,
            has_leader: h.leader() != 0,
            is_leader: h.leader() == ctx.identity.member_id,
            db_size: store.db_size(),
            db_size_in_use: store.db_size_in_use(),
            keys: store.key_count() as u64,
            current_revision: store.current_revision(),
            compact_revision: store.compact_revision(),
            quota_bytes: ctx.quota_bytes.unwrap_or(0),
            version: ETCD_VERSION,
        },
        Err(_) => return String::new(),
    };
    h.metrics.render(&gauges)
}

async fn answer(ctx: Ctx, method: Method, path: String) -> Response<Body> {
    if method != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method Not Allowed\n".into(),
        );
    }
    match path.as_str() {
        "/health" => {
            if health(&ctx).await {
                reply(StatusCode::OK, "text/plain; charset=utf-8", r#"{"health":"true"}"#.into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "{\"health\":\"false\"}\n".into(),
                )
            }
        }
        "/version" => reply(
            StatusCode::OK,
            "application/json",
            format!(r#"{{"etcdserver":"{ETCD_VERSION}","etcdcluster":"{ETCD_VERSION}"}}"#),
        ),
        _ => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics_text(&ctx)),
    }
}

impl<S> tower::Service<Request<Body>> for HttpEndpoints<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let path = req.uri().path();
        if matches!(path, "/health" | "/version" | "/metrics") {
            let (ctx, method, path) = (self.ctx.clone(), req.method().clone(), path.to_string());
            return Box::pin(async move { Ok(answer(ctx, method, path).await) });
        }
        if path == "/v2" || path.starts_with("/v2/") {
            let (ctx, stopped) = (self.ctx.clone(), self.stopped.clone());
            return Box::pin(async move { Ok(v2(ctx, req, stopped).await) });
        }
        // etcd's learner interceptors: a learner serves Status and serializable ranges (KV's Range
        // checks the latter) and nothing else.
        let learner = self.ctx.handle.status.is_learner.load(std::sync::atomic::Ordering::Relaxed);
        if learner && !matches!(path, "/etcdserverpb.KV/Range" | "/etcdserverpb.Maintenance/Status") {
            let status = tonic::Status::from(crate::node::error::NodeError::NotSupportedForLearner);
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // Hand the request to the service that was made ready, keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // A simple token names the raft entry that made it: a member that has not applied it yet
        // waits for it (a request timeout at most) before looking the token up, as etcd's
        // isValidSimpleToken does, so a client that signed in on one member may go on with another.
        let made_at = simple_token_index(&req);
        let applied = self.ctx.handle.status.clone();
        if made_at.is_some_and(|i| applied.applied.load(std::sync::atomic::Ordering::Relaxed) < i) {
            let index = made_at.unwrap_or_default();
            return Box::pin(async move {
                let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
                while applied.applied.load(std::sync::atomic::Ordering::Relaxed) < index
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                inner.call(req).await
            });
        }
        Box::pin(inner.call(req))
    }
}

/// The v2 API (`--enable-v2`; without it, Go's 404 as etcd 3.4 answers).
async fn v2(ctx: Ctx, req: Request<Body>, stopped: tokio::sync::watch::Receiver<bool>) -> Response<Body> {
    if !ctx.enable_v2 {
        return v2reply::not_found();
    }
    let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy().into_owned();
    if let Some(resp) = v2reply::redirect_unclean(req.method(), &path, req.uri().query()) {
        return resp;
    }
    if path == "/v2/machines" {
        return v2members::machines(&ctx, req.method());
    }
    if let Some(which @ ("self" | "leader" | "store")) = path.strip_prefix("/v2/stats/") {
        return v2members::stats(&ctx, req.method(), which);
    }
    if let Some(rest) =
        path.strip_prefix(v2members::MEMBERS_PATH).filter(|r| r.is_empty() || r.starts_with('/'))
    {
        let (parts, body) = req.into_parts();
        let body = match v2reply::read_body(body, ctx.handle.max_request_bytes()).await {
            Ok(bytes) => bytes,
            Err(resp) => return resp,
        };
        return v2members::serve(&ctx, parts.method, rest, &parts.headers, body).await;
    }
    let Some(key) = path.strip_prefix(v2keys::KEYS_PATH).filter(|k| k.is_empty() || k.starts_with('/'))
    else {
        return v2reply::not_found();
    };
    let key = key.to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let method = req.method().clone();
    let form_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    let form = if form_type && matches!(method, Method::PUT | Method::POST) {
        // Go's ParseForm reads at most 10 MB of a form.
        match v2reply::read_body(req.into_body(), 10 << 20).await {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => {
                let e = crate::node::v2store::V2Error::new(
                    crate::etcd::v2::INVALID_FORM,
                    "http: POST too large",
                    0,
                );
                return v2keys::with_cluster_id_error(&ctx, &e);
            }
        }
    } else {
        None
    };
    v2keys::serve(&ctx, v2keys::KeysCall { method, key, query, form }, stopped).await
}

/// How long a request with a simple token waits for this member to apply the token's entry.
const TOKEN_WAIT: Duration = Duration::from_secs(5);

/// The raft index a simple token (`<letters>.<index>`) ends with, if the request carries one.
fn simple_token_index(req: &Request<Body>) -> Option<u64> {
    let token = req.headers().get("token").or_else(|| req.headers().get("authorization"))?.to_str().ok()?;
    let (prefix, index) = token.split_once('.')?;
    if prefix.contains('.') || index.contains('.') {
        return None;
    }
    index.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token(name: &'static str, token: &str) -> Request<Body> {
        let mut req = Request::new(Body::default());
        req.headers_mut().insert(name, http::HeaderValue::from_str(token).unwrap());
        req
    }

    #[test]
    fn simple_tokens_name_their_raft_index_and_jwts_do_not() {
        assert_eq!(simple_token_index(&with_token("token", "AbCdEfGhIjKlMnOp.42")), Some(42));
        assert_eq!(simple_token_index(&with_token("authorization", "x.7")), Some(7));
        assert_eq!(simple_token_index(&with_token("token", "header.claims.signature")), None);
        assert_eq!(simple_token_index(&with_token("token", "no-index")), None);
        assert_eq!(simple_token_index(&with_token("token", "x.-1")), None);
        assert_eq!(simple_token_index(&Request::new(Body::default())), None);
    }
}
