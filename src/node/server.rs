//! `etcdeck node`: reads etcd's configuration, claims the data dir, starts the raft driver and serves
//! etcd's gRPC services and HTTP endpoints on every client URL, then tells systemd it is ready.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::proto::{PbClusterServer, PbKvServer, PbLeaseServer, PbMaintenanceServer, PbWatchServer};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use tonic::transport::Server;

use crate::node::compactor;
use crate::node::config::{ClusterState, NodeConfig};
use crate::node::raft::driver::{self, Handle};
use crate::node::rpc::authority::AuthorityFix;
use crate::node::rpc::cluster::ClusterService;
use crate::node::rpc::http::HttpLayer;
use crate::node::rpc::kv::KvService;
use crate::node::rpc::lease::{expire_leases, IdGen, LeaseService};
use crate::node::rpc::maintenance::MaintenanceService;
use crate::node::rpc::watch::{WatchService, PROGRESS_INTERVAL};
use crate::node::rpc::{Ctx, Identity};

/// gRPC accepts this much more than --max-request-bytes (etcd's grpcOverheadBytes), so an oversized
/// request is refused by the node with etcd's text rather than by the transport.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
const IDENTITY_FILE: &str = "etcdeck-member.json";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    DataDir(String),
    #[error("cannot listen on {url}: {why}")]
    Listen { url: String, why: String },
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
}

/// What the data dir records about the member it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberIdentity {
    pub name: String,
    pub member_id: String,
    pub cluster_id: String,
    pub initial_cluster_token: String,
    pub peer_urls: Vec<String>,
}

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the sorted peer URLs and the token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Sha1::new();
    for u in &urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs, 8 bytes big-endian each.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

/// The member this configuration bootstraps (a single-member cluster: node II adds peers).
fn new_identity(c: &NodeConfig) -> Result<MemberIdentity, ServerError> {
    if c.initial_cluster_state == ClusterState::Existing {
        return Err(ServerError::Config(
            "--initial-cluster-state=existing: joining a cluster needs peers, which this node does not run yet"
                .into(),
        ));
    }
    if c.initial_cluster.len() > 1 {
        return Err(ServerError::Config(format!(
            "--initial-cluster names {} members; this node runs single-member clusters only",
            c.initial_cluster.len()
        )));
    }
    let peer_urls: Vec<String> = c.initial_advertise_peer_urls.iter().map(ToString::to_string).collect();
    let id = member_id(&peer_urls, &c.initial_cluster_token);
    Ok(MemberIdentity {
        name: c.name.clone(),
        member_id: format!("{id:x}"),
        cluster_id: format!("{:x}", cluster_id(&[id])),
        initial_cluster_token: c.initial_cluster_token.clone(),
        peer_urls,
    })
}

/// Checks what this node can run that the configuration alone cannot tell, before touching the disk.
pub fn check(c: &NodeConfig) -> Result<(), ServerError> {
    if let Some(u) = c.listen_client_urls.iter().find(|u| u.scheme != "http") {
        return Err(ServerError::Config(format!(
            "--listen-client-urls {u}: this node serves http:// client URLs only (no TLS or unix sockets yet)"
        )));
    }
    new_identity(c).map(|_| ())
}

/// The data dir, claimed: its lock is held for as long as this value lives.
pub struct Claimed {
    pub identity: MemberIdentity,
    _lock: std::fs::File,
}

fn dir_error(dir: &Path, why: impl std::fmt::Display) -> ServerError {
    ServerError::DataDir(format!("data dir {}: {why}", dir.display()))
}

/// Opens (or creates) the data dir for this configuration. A dir written by another program, for
/// another member, or held by a running node is refused and left as it is.
pub fn claim_data_dir(c: &NodeConfig) -> Result<Claimed, ServerError> {
    let dir = &c.data_dir;
    let member = dir.join("member");
    let identity_path = member.join(IDENTITY_FILE);
    let existing = identity_path.exists();
    if !existing && member.exists() {
        return Err(dir_error(
            dir,
            format!("member/ was not written by etcdeck (no member/{IDENTITY_FILE}); an etcd data dir is restored with a snapshot, not opened; refusing to touch it"),
        ));
    }
    let lock_path = member.join("lock");
    if !existing {
        std::fs::create_dir_all(&member).map_err(|e| dir_error(dir, e))?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| dir_error(dir, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(dir_error(dir, "in use by another running node (member/lock is held)"));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(dir_error(dir, format!("cannot lock: {e}"))),
    }
    let identity = if existing {
        let text = std::fs::read_to_string(&identity_path).map_err(|e| dir_error(dir, e))?;
        let identity: MemberIdentity = serde_json::from_str(&text)
            .map_err(|e| dir_error(dir, format!("member/{IDENTITY_FILE} is damaged: {e}")))?;
        if identity.name != c.name {
            return Err(dir_error(
                dir,
                format!(
                    "belongs to member {:?} (ID {}) of cluster {}, not to --name={:?}",
                    identity.name, identity.member_id, identity.cluster_id, c.name
                ),
            ));
        }
        identity
    } else {
        let identity = new_identity(c)?;
        let text = serde_json::to_string_pretty(&identity).map_err(|e| dir_error(dir, e))?;
        write_durably(&identity_path, text.as_bytes()).map_err(|e| dir_error(dir, e))?;
        identity
    };
    Ok(Claimed { identity, _lock: lock })
}

/// Writes a file so that after a crash it is either absent or whole.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn parse_hex(text: &str, what: &str) -> Result<u64, ServerError> {
    u64::from_str_radix(text, 16)
        .map_err(|_| ServerError::DataDir(format!("{what} {text:?} is not a hex ID")))
}

/// Tells systemd the service is ready (sd_notify READY=1), when started with Type=notify.
pub fn notify_ready() -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(()) };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(b"READY=1", &addr)?;
    } else {
        sock.send_to(b"READY=1", PathBuf::from(path))?;
    }
    Ok(())
}

/// A running node.
pub struct Running {
    pub handle: Handle,
    pub client_addrs: Vec<SocketAddr>,
    pub identity: MemberIdentity,
    stop: tokio::sync::watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    _claimed: Claimed,
}

impl Running {
    /// Stops serving, then stops raft and closes the store, so the data dir is released.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for s in self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
        let handle = self.handle.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(store) = handle.store.read() {
                let _ = store.flush();
            }
            handle.stop();
        })
        .await;
    }
}

/// Timers that are etcd's constants; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// Watch progress notifications (etcd: 10 minutes).
    pub progress_interval: Duration,
    /// The revision auto-compactor's period (etcd: 5 minutes).
    pub revision_compaction: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { progress_interval: PROGRESS_INTERVAL, revision_compaction: compactor::REVISION_INTERVAL }
    }
}

/// Starts a node: claims the data dir, starts raft, binds every client URL and serves.
pub async fn start(c: &NodeConfig) -> Result<Running, ServerError> {
    start_with(c, Timers::default()).await
}

/// As [`start`], with etcd's timers chosen.
pub async fn start_with(c: &NodeConfig, timers: Timers) -> Result<Running, ServerError> {
    let progress_interval = timers.progress_interval;
    check(c)?;
    let claimed = claim_data_dir(c)?;
    let member_id = parse_hex(&claimed.identity.member_id, "member ID")?;
    let cluster_id = parse_hex(&claimed.identity.cluster_id, "cluster ID")?;
    let election_ticks = (c.election_timeout.as_millis() / c.heartbeat_interval.as_millis().max(1)) as usize;
    let options = driver::Options {
        member_id,
        heartbeat: c.heartbeat_interval,
        election_ticks,
        wal_dir: c.wal_dir(),
        max_request_bytes: c.max_request_bytes as usize,
        snapshot_count: c.snapshot_count,
    };
    let data_dir = c.data_dir.clone();
    let handle = tokio::task::spawn_blocking(move || driver::start(&data_dir, options))
        .await
        .map_err(|e| ServerError::DataDir(e.to_string()))?
        .map_err(|e| dir_error(&c.data_dir, format!("cannot open: {e}")))?;
    let ctx = Ctx {
        handle: handle.clone(),
        identity: Identity { cluster_id, member_id },
        max_txn_ops: c.max_txn_ops as usize,
        quota_bytes: c.quota_bytes(),
        name: c.name.clone(),
        peer_urls: claimed.identity.peer_urls.clone(),
        client_urls: c.advertise_client_urls.iter().map(ToString::to_string).collect(),
    };
    // Serve once this member leads and has applied what its log holds (etcd serves after its
    // ReadyNotify); for a single member that takes one raft round.
    if let Err(e) = handle.read_index().await {
        let h = handle.clone();
        let _ = tokio::task::spawn_blocking(move || h.stop()).await;
        return Err(dir_error(&c.data_dir, format!("raft did not start: {e}")));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut listeners = Vec::new();
    for u in &c.listen_client_urls {
        let host = if u.host == "localhost" { "127.0.0.1" } else { u.host.as_str() };
        let addr =
            format!("{}:{}", if host.contains(':') { format!("[{host}]") } else { host.to_string() }, u.port);
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                let h = handle.clone();
                let _ = tokio::task::spawn_blocking(move || h.stop()).await;
                return Err(ServerError::Listen { url: u.to_string(), why: e.to_string() });
            }
        }
    }
    let max_message = c.max_request_bytes as usize + GRPC_OVERHEAD_BYTES;
    let mut client_addrs = Vec::new();
    let mut servers = Vec::new();
    for listener in listeners {
        client_addrs.push(
            listener.local_addr().map_err(|e| ServerError::Listen { url: "?".into(), why: e.to_string() })?,
        );
        let router = Server::builder()
            .accept_http1(true)
            .layer(HttpLayer { ctx: ctx.clone() })
            .add_service(
                PbKvServer::new(KvService { ctx: ctx.clone() }).max_decoding_message_size(max_message),
            )
            .add_service(
                PbWatchServer::new(WatchService { ctx: ctx.clone(), progress_interval })
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                PbLeaseServer::new(LeaseService { ctx: ctx.clone(), ids: IdGen::new(member_id) })
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                PbClusterServer::new(ClusterService { ctx: ctx.clone() })
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                PbMaintenanceServer::new(MaintenanceService { ctx: ctx.clone() })
                    .max_decoding_message_size(max_message),
            );
        let mut stopped = stopped.clone();
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let conn = listener.accept().await.map(|(stream, _)| {
                let _ = stream.set_nodelay(true);
                AuthorityFix::new(stream)
            });
            if conn.is_err() {
                // Out of file descriptors, say: do not spin; the server logs and goes on.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((conn, listener))
        });
        servers.push(tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    servers.push(tokio::spawn(expire_leases(ctx.clone(), stopped.clone())));
    servers.push(tokio::spawn(compactor::run(
        ctx.clone(),
        c.auto_compaction,
        timers.revision_compaction,
        stopped.clone(),
    )));
    Ok(Running { handle, client_addrs, identity: claimed.identity.clone(), stop, servers, _claimed: claimed })
}
