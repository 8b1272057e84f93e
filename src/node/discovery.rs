//! etcd's v2 discovery protocol (`--discovery URL`), as etcd 3.4's v2discovery client speaks it to a
//! discovery service (an etcd with the v2 API, or a public service answering the same way): read
//! the cluster's size, register this member under the URL's path, wait until the first `size`
//! members have registered, and bootstrap from their registrations.
//!
//! The URL's path is the key prefix as it is (a self-hosted etcd's URL carries `/v2/keys/...`).
//! Requests are etcd's: `GET <path>/_config/size?quorum=false&recursive=false&sorted=false`,
//! `PUT <path>/<member ID>?prevExist=false` with `value=<name>=<peer URL>,...`, and watches with
//! `wait=true&waitIndex=N`. A service that cannot be reached, or answers 5xx, is asked again after
//! 2, 4, 8 ... 256 s, as etcd does; every other failure ends the start with etcd's error.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::etcd::v2::{self, ErrorBody, INDEX_HEADER};
use crate::node::config::{
    has_duplicate_url, parse_initial_cluster, urls_map_text, DiscoveryFallback, NodeConfig,
};
use crate::node::v2store::Event;

/// A new member's bootstrap through `c.discovery`: the configuration with the initial cluster the
/// discovery service gave, or what to print (etcd's messages) before exiting 1.
pub async fn bootstrap(c: &NodeConfig, url: &str) -> Result<NodeConfig, String> {
    let peer_urls: Vec<String> = c.initial_advertise_peer_urls.iter().map(ToString::to_string).collect();
    let id = crate::node::idutil::member_id(&peer_urls, &c.initial_cluster_token);
    // This member's registration: its own `name=peer URL` pairs, sorted as etcd's URLsMap.String.
    let mut own: Vec<String> = peer_urls.iter().map(|u| format!("{}={u}", c.name)).collect();
    own.sort();
    let joined =
        async { Discovery::new(url, c.discovery_proxy.as_deref(), id)?.join_cluster(&own.join(",")).await };
    // Stopped while it waits for the others: the start fails as any other, so the data dir is left
    // as it was (the registration stays with the service, as etcd leaves it).
    let stopped = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = terminated => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };
    let text = tokio::select! {
        joined = joined => joined.map_err(|e| failure(c, url, &e))?,
        signal = stopped => {
            return Err(format!(
                "stopped by {signal} before the discovery cluster was complete. This member stays registered \
                 with discovery service token ({url}): a new start with it is refused as registered before; \
                 bootstrap with a new token"
            ))
        }
    };
    let cluster = parse_initial_cluster(&text).map_err(|e| e.to_string())?;
    if has_duplicate_url(&cluster) {
        return Err(format!("discovery cluster {} has duplicate url", urls_map_text(&cluster)));
    }
    Ok(NodeConfig { initial_cluster: cluster, ..c.clone() })
}

/// etcd's messages for a discovery that failed (etcdmain's), one per line.
fn failure(c: &NodeConfig, url: &str, e: &DiscoveryError) -> String {
    let used = format!(
        "failed to join discovery cluster ({e})\n\
         discovery token {url} was used, but failed to bootstrap the cluster.\n\
         please generate a new discovery token and try to bootstrap again."
    );
    match e {
        DiscoveryError::FullCluster if c.discovery_fallback == DiscoveryFallback::Proxy => format!(
            "discovery cluster full, and etcdeck has no v2 proxy to fall back to \
             (--discovery-fallback=proxy)\n{used}"
        ),
        DiscoveryError::DuplicateId => format!(
            "member {:?} has previously registered with discovery service token ({url}).\n\
             But etcd could not find valid cluster configuration in the given data dir ({}).\n\
             Please check the given data dir path if the previous bootstrap succeeded\n\
             or use a new discovery token if the previous bootstrap failed.",
            c.name,
            c.data_dir.display()
        ),
        DiscoveryError::DuplicateName => format!(
            "member with duplicated name has registered with discovery service token({url}).\n\
             please check (cURL) the discovery token for more information.\n\
             please do not reuse the discovery token and generate a new one to bootstrap the cluster."
        ),
        _ => used,
    }
}

/// What etcd's discovery client can fail with (its error values and texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery: invalid URL")]
    InvalidUrl,
    #[error("discovery: size key is bad")]
    BadSizeKey,
    #[error("discovery: found duplicate id")]
    DuplicateId,
    #[error("discovery: found duplicate name")]
    DuplicateName,
    #[error("discovery: cluster is full")]
    FullCluster,
    #[error("discovery: bad discovery endpoint")]
    BadEndpoint,
    /// The service's own refusal or a failed request, in etcd's words.
    #[error("{0}")]
    Other(String),
}

/// A request's outcome short of a usable answer.
#[derive(Debug)]
enum CallError {
    /// Unreachable or 5xx: asked again after a pause (etcd's ClusterError).
    Unavailable(String),
    /// A v2 error the service answered with.
    V2(ErrorBody),
    /// 200 without a body (a watch asks again).
    Empty,
    /// A body that is not the v2 API's JSON.
    InvalidJson,
    Failed(String),
}

impl CallError {
    fn into_discovery(self) -> DiscoveryError {
        DiscoveryError::Other(match self {
            CallError::Unavailable(why) | CallError::Failed(why) => why,
            CallError::V2(e) => e.to_string(),
            CallError::Empty => "client: response body is empty".into(),
            CallError::InvalidJson => INVALID_JSON.into(),
        })
    }
}

const INVALID_JSON: &str =
    "client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint";

/// etcd's client.DefaultRequestTimeout, for everything but the watches.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pauses double up to 2^8 s.
const MAX_BACKOFF_EXPONENT: u32 = 8;

/// A discovery service and the member's place in it.
#[derive(Debug)]
pub struct Discovery {
    scheme: String,
    host: String,
    port: u16,
    /// The URL's query, kept on every request as etcd's client keeps it.
    query: Vec<(String, String)>,
    /// The URL's path: the cluster's key prefix.
    cluster: String,
    /// This member's ID in lowercase hex (etcd's types.ID), the name of its registration.
    id: String,
    retries: u32,
    /// For the log: the service without its path.
    endpoint: String,
    proxy: Option<Proxy>,
}

/// One answer: the status, the v2 index header and the body.
struct Reply {
    index: u64,
    body: Bytes,
}

impl Discovery {
    pub fn new(url: &str, proxy: Option<&str>, id: u64) -> Result<Discovery, DiscoveryError> {
        let parsed =
            url::Url::parse(url).map_err(|e| DiscoveryError::Other(format!("parse {url:?}: {e}")))?;
        let scheme = parsed.scheme().to_string();
        if !matches!(scheme.as_str(), "http" | "https") {
            return Err(DiscoveryError::Other(format!(
                "parse {url:?}: the discovery URL must be http or https"
            )));
        }
        let host =
            parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() {
            return Err(DiscoveryError::Other(format!("parse {url:?}: no host")));
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let endpoint = format!("{scheme}://{}", parsed.host_str().unwrap_or_default())
            + &parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Discovery {
            query: parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            cluster: parsed.path().to_string(),
            scheme,
            host,
            port,
            id: format!("{id:x}"),
            retries: 0,
            endpoint,
            proxy: match proxy {
                Some(text) => {
                    let p = Proxy::parse(text)?;
                    eprintln!("etcdeck node: discovery: using proxy {text:?}");
                    Some(p)
                }
                None => None,
            },
        })
    }

    /// Registers this member (`config`: its `name=peer URL` list) and waits for the cluster to fill;
    /// returns the initial cluster, in the order the members registered.
    pub async fn join_cluster(&mut self, config: &str) -> Result<String, DiscoveryError> {
        // Full already: no registration.
        self.check_cluster().await?;
        self.create_self(config).await?;
        let (nodes, size, index) = self.check_cluster().await?;
        let all = self.wait_nodes(nodes, size, index).await?;
        nodes_to_cluster(&all, size)
    }

    fn self_key(&self) -> String {
        join_path(&self.cluster, &self.id)
    }

    async fn create_self(&self, config: &str) -> Result<(), DiscoveryError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("value", config).finish();
        let key = self.self_key();
        let reply = match self
            .call("PUT", &key, &[("prevExist", "false")], Some(body), Some(REQUEST_TIMEOUT))
            .await
        {
            Ok(reply) => reply,
            Err(CallError::V2(e)) if e.error_code == v2::NODE_EXIST => {
                return Err(DiscoveryError::DuplicateId)
            }
            Err(e) => return Err(e.into_discovery()),
        };
        let created: Event = parse(&reply).map_err(CallError::into_discovery)?;
        // Until this member's own registration shows on the server it asked (a read elsewhere could be
        // stale), as etcd waits.
        let wait = created.node.created_index.to_string();
        self.call("GET", &key, &[("recursive", "false"), ("wait", "true"), ("waitIndex", &wait)], None, None)
            .await
            .map_err(CallError::into_discovery)?;
        Ok(())
    }

    /// The registrations (in order), the size and the index to watch from; FullCluster when this
    /// member is not among the first `size`.
    async fn check_cluster(&mut self) -> Result<(Vec<v2::Node>, u64, u64), DiscoveryError> {
        loop {
            let size_key = join_path(&join_path(&self.cluster, "_config"), "size");
            let size = match self.get(&size_key).await {
                Ok(reply) => parse::<Event>(&reply).map_err(CallError::into_discovery)?,
                Err(CallError::Unavailable(why)) => {
                    self.backoff("cluster status check", &why).await;
                    continue;
                }
                Err(CallError::InvalidJson) => return Err(DiscoveryError::BadEndpoint),
                Err(e) => return Err(e.into_discovery()),
            };
            let size: u64 = size
                .node
                .value
                .as_deref()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or(DiscoveryError::BadSizeKey)?;
            let cluster = self.cluster.clone();
            let (dir, index) = match self.get(&cluster).await {
                Ok(reply) => (parse::<Event>(&reply).map_err(CallError::into_discovery)?, reply.index),
                Err(CallError::Unavailable(why)) => {
                    self.backoff("cluster status check", &why).await;
                    continue;
                }
                Err(e) => return Err(e.into_discovery()),
            };
            let mut nodes: Vec<v2::Node> =
                dir.node.nodes.into_iter().filter(|n| n.base() != "_config").collect();
            nodes.sort_by_key(|n| n.created_index);
            for (i, n) in nodes.iter().enumerate() {
                if n.base() == self.id {
                    break;
                }
                if i as u64 >= size.wrapping_sub(1) {
                    nodes.truncate(size as usize);
                    return Err(DiscoveryError::FullCluster);
                }
            }
            return Ok((nodes, size, index));
        }
    }

    /// Watches the cluster's directory until `size` members have registered.
    async fn wait_nodes(
        &mut self,
        mut nodes: Vec<v2::Node>,
        mut size: u64,
        mut index: u64,
    ) -> Result<Vec<v2::Node>, DiscoveryError> {
        loop {
            nodes.truncate(size as usize);
            for n in &nodes {
                let who = if n.base() == self.id { "self" } else { "peer" };
                eprintln!("etcdeck node: discovery: found {who} {} in the cluster", n.base());
            }
            let mut wait_index = if index > 0 { index + 1 } else { 0 };
            let mut unavailable = None;
            while (nodes.len() as u64) < size {
                eprintln!(
                    "etcdeck node: discovery: found {} peer(s), waiting for {} more",
                    nodes.len(),
                    size - nodes.len() as u64
                );
                let w = wait_index.to_string();
                let query = [("recursive", "true"), ("wait", "true"), ("waitIndex", w.as_str())];
                let cluster = self.cluster.clone();
                let reply = match self.call("GET", &cluster, &query, None, None).await {
                    Ok(reply) => reply,
                    Err(CallError::Empty) => continue,
                    Err(CallError::Unavailable(why)) => {
                        unavailable = Some(why);
                        break;
                    }
                    Err(e) => return Err(e.into_discovery()),
                };
                let event: Event = parse(&reply).map_err(CallError::into_discovery)?;
                eprintln!("etcdeck node: discovery: found peer {} in the cluster", event.node.base());
                wait_index = event.node.modified_index + 1;
                // As etcd: whatever changed in the directory counts.
                nodes.push(event.node);
            }
            if let Some(why) = unavailable {
                self.backoff("waiting for other nodes", &why).await;
                (nodes, size, index) = self.check_cluster().await?;
                continue;
            }
            eprintln!("etcdeck node: discovery: found {} needed peer(s)", nodes.len());
            return Ok(nodes);
        }
    }

    async fn backoff(&mut self, step: &str, why: &str) {
        self.retries += 1;
        let pause = Duration::from_secs(1 << self.retries.min(MAX_BACKOFF_EXPONENT));
        eprintln!("etcdeck node: discovery: error #0: {why}");
        eprintln!(
            "etcdeck node: discovery: {step}: error connecting to {}, retrying in {}",
            self.endpoint,
            crate::etcd::duration::format_go_duration(pause)
        );
        tokio::time::sleep(pause).await;
    }

    async fn get(&self, key: &str) -> Result<Reply, CallError> {
        let query = [("quorum", "false"), ("recursive", "false"), ("sorted", "false")];
        self.call("GET", key, &query, None, Some(REQUEST_TIMEOUT)).await
    }

    /// One request (following up to 10 redirects), with `timeout` over the whole of it.
    async fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        form: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Reply, CallError> {
        let mut params: Vec<(String, String)> = self.query.clone();
        for (k, v) in query {
            params.retain(|(name, _)| name != k);
            params.push((k.to_string(), v.to_string()));
        }
        // Go's url.Values.Encode sorts by key.
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        let mut target = Target {
            secure: self.scheme == "https",
            host: self.host.clone(),
            port: self.port,
            path_and_query: format!("{}?{encoded}", canonical_path(path)),
        };
        let request = async {
            for _ in 0..=10 {
                let (status, location, reply) =
                    send(&target, self.proxy.as_ref(), method, form.clone()).await?;
                if (300..400).contains(&status) {
                    let location =
                        location.ok_or_else(|| CallError::Failed("location header not set".into()))?;
                    target = target.redirected(&location)?;
                    continue;
                }
                return self.judge(status, reply);
            }
            Err(CallError::Failed("client: too many redirects".into()))
        };
        match timeout {
            Some(limit) => tokio::time::timeout(limit, request)
                .await
                .map_err(|_| CallError::Failed("context deadline exceeded".into()))?,
            None => request.await,
        }
    }

    fn judge(&self, status: u16, reply: Reply) -> Result<Reply, CallError> {
        match status {
            200 | 201 if reply.body.is_empty() => Err(CallError::Empty),
            200 | 201 => Ok(reply),
            500 | 503 => {
                Err(CallError::Unavailable(format!("client: etcd member {} has no leader", self.endpoint)))
            }
            500..=599 => Err(CallError::Unavailable(format!(
                "client: etcd member {} returns server error [{}]",
                self.endpoint,
                http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
            ))),
            _ => match serde_json::from_slice::<ErrorBody>(&reply.body) {
                Ok(e) => Err(CallError::V2(e)),
                Err(_) => Err(CallError::InvalidJson),
            },
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, CallError> {
    serde_json::from_slice(&reply.body).map_err(|_| CallError::InvalidJson)
}

/// --discovery-proxy: every request to the discovery service goes through it.
#[derive(Debug, Clone)]
struct Proxy {
    host: String,
    port: u16,
    /// Basic credentials from the proxy URL's user info.
    authorization: Option<String>,
}

impl Proxy {
    /// etcd's newProxyFunc: a URL, or a bare host:port taken as http://host:port.
    fn parse(text: &str) -> Result<Proxy, DiscoveryError> {
        let first = url::Url::parse(text);
        let parsed = match first {
            Ok(u) if u.scheme().starts_with("http") && u.host_str().is_some() => u,
            other => url::Url::parse(&format!("http://{text}"))
                .ok()
                .filter(|u| u.host_str().is_some())
                .ok_or_else(|| {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok(_) => "not an http proxy URL".into(),
                    };
                    DiscoveryError::Other(format!("invalid proxy address {text:?}: {why}"))
                })?,
        };
        let authorization = (!parsed.username().is_empty()).then(|| {
            use base64::Engine as _;
            let user = format!("{}:{}", parsed.username(), parsed.password().unwrap_or(""));
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user))
        });
        Ok(Proxy {
            host: parsed
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: parsed.port_or_known_default().unwrap_or(80),
            authorization,
        })
    }

    /// Asks the proxy for a tunnel to `authority` on `tcp`.
    async fn tunnel(&self, tcp: &mut tokio::net::TcpStream, authority: &str) -> Result<(), CallError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let down = |e: &dyn std::fmt::Display| CallError::Unavailable(format!("proxyconnect tcp: {e}"));
        let mut ask = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.authorization {
            ask.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        ask.push_str("\r\n");
        tcp.write_all(ask.as_bytes()).await.map_err(|e| down(&e))?;
        // The proxy's answer, up to its blank line (nothing follows it before the tunnel's bytes).
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if tcp.read(&mut byte).await.map_err(|e| down(&e))? == 0 || head.len() > 64 * 1024 {
                return Err(down(&"the proxy closed the connection"));
            }
            head.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line.lines().next().unwrap_or_default().to_string();
        if status.split(' ').nth(1) != Some("200") {
            return Err(down(&status));
        }
        Ok(())
    }
}

/// Where a request goes.
struct Target {
    secure: bool,
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.secure, self.port) {
            (false, 80) | (true, 443) => host,
            _ => format!("{host}:{}", self.port),
        }
    }

    fn authority_with_port(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port)
    }

    fn redirected(&self, location: &str) -> Result<Target, CallError> {
        let base = url::Url::parse(&format!(
            "{}://{}{}",
            if self.secure { "https" } else { "http" },
            self.authority(),
            self.path_and_query
        ))
        .map_err(|e| CallError::Failed(e.to_string()))?;
        let next = base
            .join(location)
            .map_err(|_| CallError::Failed(format!("location header not valid URL: {location}")))?;
        let secure = match next.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(CallError::Unavailable(format!("unsupported protocol scheme {other:?}"))),
        };
        Ok(Target {
            secure,
            host: next
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: next.port_or_known_default().unwrap_or(80),
            path_and_query: match next.query() {
                Some(q) => format!("{}?{q}", next.path()),
                None => next.path().to_string(),
            },
        })
    }
}

/// Sends one request on a fresh connection: (status, Location, reply). Failing to connect or to be
/// answered is Unavailable, as Go's transport errors are for etcd's client.
async fn send(
    target: &Target,
    proxy: Option<&Proxy>,
    method: &str,
    form: Option<String>,
) -> Result<(u16, Option<String>, Reply), CallError> {
    let down = |e: &dyn std::fmt::Display| CallError::Unavailable(e.to_string());
    let (host, port) = match proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (target.host.as_str(), target.port),
    };
    let mut tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| down(&format!("dial tcp {host}:{port}: i/o timeout")))?
        .map_err(|e| down(&format!("dial tcp {host}:{port}: {e}")))?;
    // Through a proxy: a tunnel (CONNECT) for https, the whole URL in the request for http, as Go's
    // transport does.
    let mut uri = target.path_and_query.clone();
    if let Some(p) = proxy {
        if target.secure {
            p.tunnel(&mut tcp, &target.authority_with_port()).await?;
        } else {
            uri = format!("http://{}{}", target.authority(), target.path_and_query);
        }
    }
    let mut builder = http::Request::builder()
        .method(method)
        .uri(&uri)
        .header(http::header::HOST, target.authority())
        .header(http::header::USER_AGENT, "etcdeck-discovery");
    if let (Some(p), false) = (proxy, target.secure) {
        if let Some(auth) = &p.authorization {
            builder = builder.header(http::header::PROXY_AUTHORIZATION, auth);
        }
    }
    if form.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = builder
        .body(Full::new(Bytes::from(form.unwrap_or_default())))
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let response = if target.secure {
        let config = crate::node::tls::client_config(
            &crate::node::config::TlsInfo::default(),
            false,
            &crate::node::config::TlsPolicy::default(),
        )
        .map_err(CallError::Failed)?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| CallError::Failed(format!("{}: {e}", target.host)))?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| down(&e))?;
        exchange(tls, request).await?
    } else {
        exchange(tcp, request).await?
    };
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let location = header("location");
    let index = match header(INDEX_HEADER) {
        Some(text) => text
            .parse()
            .map_err(|_| CallError::Failed(format!("strconv.ParseUint: parsing {text:?}: invalid syntax")))?,
        None => 0,
    };
    let body = response.into_body().collect().await.map_err(|e| down(&e))?.to_bytes();
    Ok((status, location, Reply { index, body }))
}

async fn exchange<S>(
    stream: S,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, CallError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let down = |e: hyper::Error| CallError::Unavailable(e.to_string());
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(down)?;
    tokio::spawn(connection);
    sender.send_request(request).await.map_err(down)
}

/// etcd's nodesToCluster: the registrations joined into an initial cluster, which must name `size`
/// members.
fn nodes_to_cluster(nodes: &[v2::Node], size: u64) -> Result<String, DiscoveryError> {
    let text = nodes.iter().map(|n| n.value.clone().unwrap_or_default()).collect::<Vec<_>>().join(",");
    let cluster = parse_initial_cluster(&text).map_err(|_| DiscoveryError::InvalidUrl)?;
    if cluster.len() as u64 != size {
        return Err(DiscoveryError::DuplicateName);
    }
    Ok(text)
}

/// Go's path.Join for two elements.
fn join_path(a: &str, b: &str) -> String {
    let joined = canonical_path(&format!("{a}/{b}"));
    match joined.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// etcd's pathutil.CanonicalURLPath: cleaned, rooted, a trailing slash kept.
fn canonical_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    let mut cleaned = format!("/{}", out.join("/"));
    if p.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, value: &str, index: u64) -> v2::Node {
        v2::Node {
            key: key.into(),
            value: Some(value.into()),
            created_index: index,
            modified_index: index,
            ..v2::Node::default()
        }
    }

    #[test]
    fn paths_and_the_cluster_are_etcds() {
        assert_eq!(canonical_path("/a//b/../c/"), "/a/c/");
        assert_eq!(canonical_path("a/./b"), "/a/b");
        assert_eq!(join_path("/v2/keys/discovery/t", "_config"), "/v2/keys/discovery/t/_config");
        assert_eq!(join_path("/t/", "8e9e"), "/t/8e9e");
        let d = Discovery::new("http://127.0.0.1:2379/v2/keys/discovery/abc?x=1", None, 0x8e9e05c52164694d)
            .unwrap();
        assert_eq!(d.cluster, "/v2/keys/discovery/abc");
        assert_eq!(d.self_key(), "/v2/keys/discovery/abc/8e9e05c52164694d");
        assert_eq!(d.endpoint, "http://127.0.0.1:2379");
        assert_eq!(d.query, vec![("x".to_string(), "1".to_string())]);
        assert!(Discovery::new("ftp://h/t", None, 1).is_err());
        // A proxy as etcd takes it: a bare host:port is http, user info becomes Basic credentials.
        let p = Proxy::parse("proxy.local:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.authorization.as_deref()), ("proxy.local", 3128, None));
        let p = Proxy::parse("http://u:pw@10.0.0.1:8080").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.1", 8080));
        assert_eq!(p.authorization.as_deref(), Some("Basic dTpwdw=="));
        assert!(Proxy::parse("[::1")
            .unwrap_err()
            .to_string()
            .starts_with("invalid proxy address \"[::1\": "));
        assert!(Discovery::new("http://[::1/t", None, 1)
            .unwrap_err()
            .to_string()
            .starts_with("parse \"http://[::1/t\""));

        let nodes = [node("/t/1", "a=http://10.0.0.1:2380", 5), node("/t/2", "b=http://10.0.0.2:2380", 6)];
        assert_eq!(nodes_to_cluster(&nodes, 2).unwrap(), "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380");
        let twice = [node("/t/1", "a=http://10.0.0.1:2380", 5), node("/t/2", "a=http://10.0.0.2:2380", 6)];
        assert_eq!(nodes_to_cluster(&twice, 2), Err(DiscoveryError::DuplicateName));
        assert_eq!(nodes_to_cluster(&[node("/t/1", "a=ftp://x", 5)], 1), Err(DiscoveryError::InvalidUrl));
    }
}
