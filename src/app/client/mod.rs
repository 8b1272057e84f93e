//! Workers: tokio tasks that run effects against etcd with etcd-client and send a `Msg` back. Each
//! request has its own timeout, so a dead or frozen member only ever costs its own row.

mod insecure;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};
use futures::FutureExt;
use tokio::sync::{mpsc, OnceCell};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::app::connection::ConnectConfig;
use crate::app::effect::Effect;
use crate::app::keys::{self, KeyPage, KeyRequest, ValueInfo};
use crate::app::msg::{Alarm, MemberInfo, MemberList, Msg, StatusInfo};

/// Runs effects. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Worker {
    pool: Arc<Pool>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Worker {
    pub fn new(config: ConnectConfig, tx: mpsc::UnboundedSender<Msg>) -> Self {
        Self { pool: Arc::new(Pool { config, clients: Mutex::new(HashMap::new()) }), tx }
    }

    /// Starts the effect on the tokio runtime and returns at once; the reply arrives as a `Msg`.
    /// Every effect gets exactly one reply: a panic in the worker (a bug) becomes an error reply, so
    /// the request does not stay in flight forever.
    pub fn run(&self, effect: Effect) {
        let pool = self.pool.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let msg = match AssertUnwindSafe(pool.execute(effect.clone())).catch_unwind().await {
                Ok(msg) => msg,
                Err(panic) => failed(effect, format!("internal error in etcdeck: {}", panic_text(&*panic))),
            };
            // The receiver is gone only when the console is shutting down.
            let _ = tx.send(msg);
        });
    }
}

/// One etcd-client per endpoint URL, created on first use and kept, so each refresh reuses the
/// connection (and its HTTP/2 session) instead of dialing again.
struct Pool {
    config: ConnectConfig,
    clients: Mutex<HashMap<String, Arc<OnceCell<Client>>>>,
}

impl Pool {
    async fn execute(&self, effect: Effect) -> Msg {
        match effect {
            Effect::ListMembers { refresh } => {
                Msg::Members { refresh, result: self.first_answer(|ep| self.member_list(ep)).await }
            }
            Effect::FetchStatus { refresh, member_id, endpoint } => {
                let result = self.status(&endpoint).await;
                Msg::Status { refresh, member_id, endpoint, result }
            }
            Effect::Keys(KeyRequest::List { request, prefix, start, revision }) => {
                let result = self.first_answer(|ep| self.list_keys(ep, &prefix, &start, revision)).await;
                Msg::KeyPage { request, result }
            }
            Effect::Keys(KeyRequest::Count { request, prefix, revision }) => {
                let result = self.first_answer(|ep| self.count_keys(ep, &prefix, revision)).await;
                Msg::KeyCount { request, result }
            }
            Effect::Keys(KeyRequest::Value { request, key }) => {
                let result = self.first_answer(|ep| self.value(ep, &key)).await;
                Msg::Value { request, result }
            }
            Effect::CheckHealth { refresh, member_id, endpoint, serializable } => {
                let result = self.health(&endpoint, serializable).await;
                Msg::Health { refresh, member_id, endpoint, result }
            }
        }
    }

    /// Asks every configured endpoint at once and takes the first success; if all fail, the error
    /// of the last to fail is reported, with its endpoint.
    async fn first_answer<'a, T, F, Fut>(&'a self, call: F) -> Result<T, String>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<T, String>> + 'a,
    {
        let attempts = self.config.endpoints.iter().map(|ep| {
            let fut = call(ep.as_str());
            Box::pin(async move { fut.await.map_err(|e| format!("{ep}: {e}")) })
        });
        match futures::future::select_ok(attempts).await {
            Ok((value, _)) => Ok(value),
            Err(last) => {
                if self.config.endpoints.len() == 1 {
                    Err(last)
                } else {
                    Err(format!("no endpoint answered (last error: {last})"))
                }
            }
        }
    }

    async fn client(&self, endpoint: &str) -> Result<Client, String> {
        let cell = {
            let mut clients = self.clients.lock().map_err(|_| "connection pool poisoned".to_string())?;
            clients.entry(endpoint.to_string()).or_default().clone()
        };
        let client = cell.get_or_try_init(|| connect(&self.config, endpoint)).await?;
        Ok(client.clone())
    }

    async fn member_list(&self, endpoint: &str) -> Result<MemberList, String> {
        let mut client = self.client(endpoint).await?;
        let resp = with_timeout(self.config.command_timeout, client.member_list()).await?;
        let members = resp
            .members()
            .iter()
            .map(|m| MemberInfo {
                id: m.id(),
                name: m.name().to_string(),
                peer_urls: m.peer_urls().to_vec(),
                client_urls: m.client_urls().to_vec(),
                is_learner: m.is_learner(),
            })
            .collect();
        Ok(MemberList { cluster_id: resp.header().map_or(0, |h| h.cluster_id()), members })
    }

    async fn status(&self, endpoint: &str) -> Result<StatusInfo, String> {
        let mut client = self.client(endpoint).await?;
        let started = Instant::now();
        let resp = with_timeout(self.config.command_timeout, client.status()).await?;
        let rtt = started.elapsed();
        let header = resp.header();
        let (alarms, errors): (Vec<&String>, Vec<&String>) =
            resp.errors().iter().partition(|e| Alarm::parse_status_error(e).is_some());
        Ok(StatusInfo {
            member_id: header.map_or(0, |h| h.member_id()),
            cluster_id: header.map_or(0, |h| h.cluster_id()),
            revision: header.map_or(0, |h| h.revision()),
            version: resp.version().to_string(),
            db_size: resp.db_size(),
            db_size_in_use: resp.raft_used_db_size(),
            leader: resp.leader(),
            raft_term: resp.raft_term(),
            raft_index: resp.raft_index(),
            raft_applied_index: resp.raft_applied_index(),
            errors: errors.into_iter().cloned().collect(),
            alarms: alarms.iter().filter_map(|e| Alarm::parse_status_error(e)).collect(),
            is_learner: resp.is_learner(),
            rtt,
        })
    }

    /// `etcdctl endpoint health`: a linearizable Get of "health"; permission denied still proves the
    /// request went through consensus, so it counts as healthy. Learners get a serializable Get.
    /// One page (PAGE keys, fewer at the end) of the listing from `start`, keys-only and
    /// serializable, at `revision` (0: newest, then pinned for the page's later reads). It is read
    /// from ever larger subtrees around the cursor (see `keys::subtree_end`), so on etcd 3.4 a page
    /// costs about what it returns, not what follows it.
    async fn list_keys(
        &self,
        endpoint: &str,
        prefix: &[u8],
        start: &[u8],
        revision: i64,
    ) -> Result<KeyPage, String> {
        let mut client = self.client(endpoint).await?;
        let deadline = Instant::now() + self.config.command_timeout;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor = start.to_vec();
        let mut depth = cursor.len();
        let mut revision = revision;
        loop {
            let (bound, last) = keys::subtree_end(prefix, &cursor, depth);
            let options = GetOptions::new()
                .with_range(bound.clone())
                .with_keys_only()
                .with_serializable()
                .with_limit(keys::PAGE - keys.len() as i64)
                .with_revision(revision);
            let left = deadline.saturating_duration_since(Instant::now());
            let resp = with_timeout(left, client.get(cursor.clone(), Some(options))).await?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            keys.extend(resp.kvs().iter().map(|kv| kv.key().to_vec()));
            if keys.len() as i64 >= keys::PAGE {
                return Ok(KeyPage { keys, more: resp.more() || !last, revision });
            }
            if last {
                return Ok(KeyPage { keys, more: false, revision });
            }
            cursor = bound;
            depth = depth.saturating_sub(1).min(cursor.len());
        }
    }

    async fn count_keys(&self, endpoint: &str, prefix: &[u8], revision: i64) -> Result<i64, String> {
        let mut client = self.client(endpoint).await?;
        let start = if prefix.is_empty() { vec![0] } else { prefix.to_vec() };
        let options = GetOptions::new()
            .with_range(keys::prefix_end(prefix))
            .with_count_only()
            .with_serializable()
            .with_revision(revision);
        let resp = with_timeout(self.config.command_timeout, client.get(start, Some(options))).await?;
        Ok(resp.count())
    }

    async fn value(&self, endpoint: &str, key: &[u8]) -> Result<Option<ValueInfo>, String> {
        let mut client = self.client(endpoint).await?;
        let resp = with_timeout(self.config.command_timeout, client.get(key, None)).await?;
        Ok(resp.kvs().first().map(|kv| ValueInfo {
            key: kv.key().to_vec(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: kv.lease(),
        }))
    }

    async fn health(&self, endpoint: &str, serializable: bool) -> Result<Duration, String> {
        let mut client = self.client(endpoint).await?;
        let started = Instant::now();
        let mut options = GetOptions::new().with_limit(1);
        if serializable {
            options = options.with_serializable();
        }
        let result =
            tokio::time::timeout(self.config.command_timeout, client.get("health", Some(options))).await;
        match result {
            Err(_) => Err(deadline_exceeded(self.config.command_timeout)),
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.code() == tonic::Code::PermissionDenied => {
                Ok(started.elapsed())
            }
            Ok(Err(e)) => Err(error_text(&e)),
        }
    }
}

/// The reply an effect gets when its worker failed without an answer from etcd.
fn failed(effect: Effect, error: String) -> Msg {
    match effect {
        Effect::ListMembers { refresh } => Msg::Members { refresh, result: Err(error) },
        Effect::FetchStatus { refresh, member_id, endpoint } => {
            Msg::Status { refresh, member_id, endpoint, result: Err(error) }
        }
        Effect::CheckHealth { refresh, member_id, endpoint, .. } => {
            Msg::Health { refresh, member_id, endpoint, result: Err(error) }
        }
        Effect::Keys(KeyRequest::List { request, .. }) => Msg::KeyPage { request, result: Err(error) },
        Effect::Keys(KeyRequest::Value { request, .. }) => Msg::Value { request, result: Err(error) },
        Effect::Keys(KeyRequest::Count { request, .. }) => Msg::KeyCount { request, result: Err(error) },
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_text(&e)),
        Err(_) => Err(deadline_exceeded(limit)),
    }
}

/// etcd's clients print "context deadline exceeded" when a request runs out of time.
fn deadline_exceeded(limit: Duration) -> String {
    format!("context deadline exceeded (after {})", crate::app::duration::format_go_duration(limit))
}

/// One line for an error: a gRPC status shows etcd's own message ("etcdserver: ..."); other errors
/// show their whole cause chain ("transport error: ... Connection refused (os error 111)").
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(etcd_client::Error::GRpcStatus(status)) = e.downcast_ref::<etcd_client::Error>() {
        return status_text(status);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            parts.push(status_text(status));
            break;
        }
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// etcd's message for a status it sent ("etcdserver: request timed out"); for a status tonic made from
/// a transport failure, the message followed by its causes ("tcp connect error: Connection refused").
fn status_text(status: &tonic::Status) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !status.message().is_empty() {
        parts.push(status.message().to_string());
    }
    let mut cause = std::error::Error::source(status);
    while let Some(err) = cause {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = err.source();
    }
    if parts.is_empty() {
        format!("{:?}", status.code())
    } else {
        parts.join(": ")
    }
}

/// A client for one endpoint with the connection flags' timeouts, TLS and credentials.
pub async fn connect(config: &ConnectConfig, endpoint: &str) -> Result<Client, String> {
    let channel = channel(config, endpoint)?;
    let mut options = ConnectOptions::new().with_connect_timeout(config.dial_timeout);
    if let Some((user, password)) = &config.credentials {
        // A member restart drops simple tokens and JWTs expire: authenticate again when
        // etcd says the token is invalid, instead of failing until etcdeck restarts.
        options = options.with_user(user.clone(), password.clone()).with_auto_token_refresh(true);
    }
    // With credentials this authenticates, which is a request: bound it.
    with_timeout(
        config.dial_timeout + config.command_timeout,
        Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options)),
    )
    .await
}

fn channel(config: &ConnectConfig, endpoint: &str) -> Result<tonic::transport::Channel, String> {
    // An https member URL gets TLS even when no TLS flag was given (then with the system's CA
    // store), as etcdctl does.
    let tls = endpoint.starts_with("https://").then(|| config.tls.clone().unwrap_or_default());
    let tls = tls.as_ref();
    // With --insecure-skip-tls-verify our own connector does TLS, so tonic must see plain http.
    let uri = match tls {
        Some(t) if t.skip_verify => endpoint.replacen("https://", "http://", 1),
        _ => endpoint.to_string(),
    };
    let mut ep = Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid endpoint {endpoint}: {e}"))?
        // No per-request timeout on the channel: every call is bounded by `with_timeout`, which
        // reports etcd's own "context deadline exceeded".
        .connect_timeout(config.dial_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(config.command_timeout);
    match tls {
        Some(files) if files.skip_verify => {
            let connector = insecure::connector(files)?;
            Ok(ep.connect_with_connector_lazy(connector))
        }
        Some(files) => {
            let mut tls = ClientTlsConfig::new();
            tls = match &files.ca_pem {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                None => tls.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&files.cert_pem, &files.key_pem) {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            ep = ep.tls_config(tls).map_err(|e| format!("TLS configuration: {}", error_text(&e)))?;
            Ok(ep.connect_lazy())
        }
        None => Ok(ep.connect_lazy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_show_etcds_message_and_transport_causes() {
        let etcd =
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: request timed out"));
        assert_eq!(error_text(&etcd), "etcdserver: request timed out");
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let mut status = tonic::Status::unavailable("tcp connect error");
        status.set_source(std::sync::Arc::new(refused));
        let err = etcd_client::Error::GRpcStatus(status);
        assert_eq!(error_text(&err), "tcp connect error: Connection refused (os error 111)");
        let bare = etcd_client::Error::GRpcStatus(tonic::Status::new(tonic::Code::Unavailable, ""));
        assert_eq!(error_text(&bare), "Unavailable");
    }
}
