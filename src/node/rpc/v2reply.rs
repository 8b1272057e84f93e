//! How the v2 API answers (`--enable-v2`): JSON as Go's encoder writes it, etcd's v2 errors, the
//! cluster ID header, and the request body read within the request size limit.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;

use crate::etcd::v2::{error_status, ErrorBody, INDEX_HEADER};
use crate::node::rpc::ctx::Ctx;
use crate::node::v2store::V2Error;

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// JSON as Go's json.Encoder writes it: `<`, `>` and `&` (and the two Unicode line separators)
/// escaped, a newline at the end.
pub fn go_json<T: serde::Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// An answer with a body and its content type.
pub fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Body::new(Full::new(body.into())));
    *resp.status_mut() = status;
    set(&mut resp, http::header::CONTENT_TYPE.as_str(), content_type);
    resp
}

/// Sets a header (a value that is not a valid header value is left out).
pub fn set(resp: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) =
        (http::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
    {
        resp.headers_mut().insert(name, value);
    }
}

/// etcd's X-Etcd-Cluster-ID, which every v2 keys and members answer carries.
pub fn with_cluster_id(ctx: &Ctx, mut resp: Response<Body>) -> Response<Body> {
    set(&mut resp, "x-etcd-cluster-id", &format!("{:x}", ctx.identity.cluster_id));
    resp
}

/// A v2 error as etcd's v2error writes it: its status, the store's index, the JSON and a newline.
pub fn error(e: &V2Error) -> Response<Body> {
    let body =
        ErrorBody { error_code: e.code, message: e.message().into(), cause: e.cause.clone(), index: e.index };
    let status = StatusCode::from_u16(error_status(e.code)).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = reply(status, JSON, go_json(&body));
    set(&mut resp, INDEX_HEADER, &e.index.to_string());
    resp
}

/// Go's http.Error: the text and a newline, as plain text.
pub fn http_error(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = reply(status, TEXT, format!("{text}\n"));
    set(&mut resp, "x-content-type-options", "nosniff");
    resp
}

/// Go's 404 for a path nothing serves.
pub fn not_found() -> Response<Body> {
    http_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// etcd's answer to a method a path does not take: 405 with the methods it does.
pub fn method_not_allowed(allowed: &[&str]) -> Response<Body> {
    let mut resp = http_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    set(&mut resp, "allow", &allowed.join(","));
    resp
}

/// What a path needs escaped in a Location header.
const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Go's ServeMux answer to a path that is not clean (`//`, `.`, `..`): 301 to the clean one (a
/// trailing slash kept), the query kept; None for a clean path.
pub fn redirect_unclean(method: &http::Method, path: &str, query: Option<&str>) -> Option<Response<Body>> {
    let mut clean = crate::node::v2store::clean(path);
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    if clean == path {
        return None;
    }
    let mut location = percent_encoding::utf8_percent_encode(&clean, PATH_ESCAPES).to_string();
    if let Some(q) = query {
        location = format!("{location}?{q}");
    }
    let mut resp = if *method == http::Method::GET {
        let href =
            location.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;");
        reply(
            StatusCode::MOVED_PERMANENTLY,
            "text/html; charset=utf-8",
            format!("<a href=\"{href}\">Moved Permanently</a>.\n\n"),
        )
    } else {
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if *method == http::Method::HEAD {
            set(&mut r, http::header::CONTENT_TYPE.as_str(), "text/html; charset=utf-8");
        }
        r
    };
    set(&mut resp, "location", &location);
    Some(resp)
}

/// The request's body, at most `limit` bytes; Err is the answer to give instead.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(http_error(StatusCode::BAD_REQUEST, &format!("error reading the request body: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_gos() {
        assert_eq!(
            go_json(&serde_json::json!({"v": "<a&b>\u{2028}"})),
            "{\"v\":\"\\u003ca\\u0026b\\u003e\\u2028\"}\n"
        );
    }

    #[test]
    fn unclean_paths_are_redirected_as_gos_mux_does() {
        let get = http::Method::GET;
        assert!(redirect_unclean(&get, "/v2/keys/a/", None).is_none(), "a trailing slash is clean");
        let r = redirect_unclean(&get, "/v2/keys//a/../b c", Some("x=1")).unwrap();
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()["location"], "/v2/keys/b%20c?x=1");
        let r = redirect_unclean(&http::Method::PUT, "/v2/keys/./d/", None).unwrap();
        assert_eq!(r.headers()["location"], "/v2/keys/d/");
        assert!(r.headers().get("content-type").is_none());
    }

    #[test]
    fn errors_are_etcds() {
        let resp = error(&V2Error::new(100, "/foo", 7));
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()[INDEX_HEADER], "7");
        assert_eq!(resp.headers()["content-type"], JSON);
    }
}
