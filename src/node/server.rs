//! `etcdeck node`: reads etcd's configuration, claims the data dir, starts the raft driver and serves
//! etcd's gRPC services and HTTP endpoints on every client URL, then tells systemd it is ready.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::proto::{PbClusterServer, PbKvServer, PbLeaseServer, PbMaintenanceServer, PbWatchServer};
use serde::{Deserialize, Serialize};
use tonic::transport::Server;

use crate::node::compactor;
use crate::node::config::{ClusterState, NodeConfig, TlsInfo};
use crate::node::discovery;
use crate::node::error::NodeError;
use crate::node::fsutil::{write_durably, FreeSpace};
use crate::node::identity::{initial_members, InitialMember, MemberIdentity, IDENTITY_FILE};
use crate::node::idutil::member_id;
use crate::node::mvcc::store::RaftMember;
use crate::node::raft::driver::{self, Handle};
use crate::node::raft::transport::{
    self, Dialer, PeerHost, PeerListener, PeerNet, Transport, TransportEvents, REMOVED_TEXT,
};
use crate::node::rpc::auth::AuthService;
use crate::node::rpc::authority::AuthorityFix;
use crate::node::rpc::cluster::ClusterService;
use crate::node::rpc::conn::ClientStream;
use crate::node::rpc::ctx::{Ctx, Identity};
use crate::node::rpc::http::HttpLayer;
use crate::node::rpc::kv::KvService;
use crate::node::rpc::lease::{expire_leases, IdGen, LeaseService};
use crate::node::rpc::maintenance::MaintenanceService;
use crate::node::rpc::watch::{WatchService, PROGRESS_INTERVAL};
use crate::node::tls;
use raft::eraftpb::Message as RaftMessage;

/// gRPC accepts this much more than --max-request-bytes (etcd's grpcOverheadBytes), so an oversized
/// request is refused by the node with etcd's text rather than by the transport.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    DataDir(String),
    #[error("cannot listen on {url}: {why}")]
    Listen { url: String, why: String },
    #[error(transparent)]
    Driver(#[from] crate::node::raft::options::DriverError),
    /// The cluster removed this member: it stops, as etcd's does, and exits 0.
    #[error("{REMOVED_TEXT}")]
    Removed,
}

/// The member this configuration bootstraps, and the cluster: IDs as etcd derives them, from each
/// member's peer URLs and the token.
fn new_identity(c: &NodeConfig) -> MemberIdentity {
    let (members, cluster) = initial_members(&c.initial_cluster, &c.initial_cluster_token);
    // The member is who the initial cluster says (its URLs there are the advertised ones, or with
    // --discovery-srv the records' names for them), as every other member computes it.
    let own = c.initial_cluster.get(&c.name).unwrap_or(&c.initial_advertise_peer_urls);
    let peer_urls: Vec<String> = own.iter().map(ToString::to_string).collect();
    let id = member_id(&peer_urls, &c.initial_cluster_token);
    MemberIdentity {
        name: c.name.clone(),
        member_id: format!("{id:x}"),
        cluster_id: format!("{cluster:x}"),
        initial_cluster_token: c.initial_cluster_token.clone(),
        peer_urls,
        members,
        joined: false,
        beside_etcd: false,
    }
}

/// The cluster as a member's peer listener describes it (etcd's GET /members on the peer port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCluster {
    pub cluster_id: String,
    pub members: Vec<RemoteMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteMember {
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Asks the other members listed in --initial-cluster for the cluster, the first that answers.
async fn remote_cluster(c: &NodeConfig) -> Option<RemoteCluster> {
    // This member's URLs: as advertised, and as the initial cluster names them (with --discovery-srv,
    // the records' host names).
    let own: Vec<&crate::etcd::urls::EtcdUrl> = c
        .initial_advertise_peer_urls
        .iter()
        .chain(c.initial_cluster.get(&c.name).into_iter().flatten())
        .collect();
    // Self-signed peer certificates are made once the data dir is claimed; until then a member asks
    // without one (the cluster's listeners do not ask for one under --peer-auto-tls).
    let peer_auto = c.peer_auto_tls && c.peer_tls.is_empty();
    let info = if peer_auto { TlsInfo::default() } else { c.peer_tls.clone() };
    let dialer = Dialer {
        bind_host: c.initial_advertise_peer_urls.first().map(|u| u.dial_host().to_string()),
        tls: tls::client_config(&info, peer_auto, &c.tls).ok(),
    };
    let asks = c.initial_cluster.values().flatten().filter(|u| !own.contains(u)).map(|u| {
        let addr = u.host_port();
        let secure = u.scheme == "https";
        let dialer = dialer.clone();
        async move {
            let body = transport::query_members(&dialer, &addr, secure).await.ok()?;
            serde_json::from_slice::<RemoteCluster>(&body).ok()
        }
    });
    futures::future::join_all(asks).await.into_iter().flatten().next()
}

/// etcd's ValidateClusterAndAssignIDs: the members --initial-cluster lists must be the running
/// cluster's, one for one by peer URLs; this member takes the ID the cluster gave its URLs.
fn join_identity(c: &NodeConfig, remote: &RemoteCluster) -> Result<MemberIdentity, String> {
    let sorted = |urls: &[String]| {
        let mut urls = urls.to_vec();
        urls.sort();
        urls
    };
    let local: Vec<(String, Vec<String>)> = c
        .initial_cluster
        .iter()
        .map(|(name, urls)| (name.clone(), sorted(&urls.iter().map(ToString::to_string).collect::<Vec<_>>())))
        .collect();
    if local.len() != remote.members.len() {
        return Err("member count is unequal".into());
    }
    let mut me = None;
    for m in &remote.members {
        let urls = sorted(&m.peer_urls);
        let Some((name, _)) = local.iter().find(|(_, l)| *l == urls) else {
            return Err(format!(
                "PeerURLs: no match found for existing member ({}, [{}]), last resolver error (<nil>)",
                m.id,
                m.peer_urls.join(" ")
            ));
        };
        if *name == c.name {
            me = Some(m);
        }
    }
    let me = me.ok_or_else(|| {
        format!("couldn't find local name {:?} in the initial cluster configuration", c.name)
    })?;
    Ok(MemberIdentity {
        name: c.name.clone(),
        member_id: me.id.clone(),
        cluster_id: remote.cluster_id.clone(),
        initial_cluster_token: c.initial_cluster_token.clone(),
        peer_urls: c.initial_advertise_peer_urls.iter().map(ToString::to_string).collect(),
        members: remote
            .members
            .iter()
            .map(|m| InitialMember { name: m.name.clone(), id: m.id.clone(), peer_urls: m.peer_urls.clone() })
            .collect(),
        joined: true,
        beside_etcd: false,
    })
}

/// The running cluster as etcd prints it in a join error (its RaftCluster.String()).
fn describe(remote: &RemoteCluster) -> String {
    let members: Vec<String> = remote
        .members
        .iter()
        .map(|m| {
            format!(
                "&{{ID:{} RaftAttributes:{{PeerURLs:[{}] IsLearner:{}}} Attributes:{{Name:{} ClientURLs:[{}]}}}}",
                m.id,
                m.peer_urls.join(" "),
                m.is_learner,
                m.name,
                m.client_urls.join(" ")
            )
        })
        .collect();
    format!("{{ClusterID:{} Members:[{}] RemovedMemberIDs:[]}}", remote.cluster_id, members.join(" "))
}

/// Checks what this node can run that the configuration alone cannot tell, before touching the disk.
pub fn check(c: &NodeConfig) -> Result<(), ServerError> {
    for (flag, urls) in
        [("--listen-client-urls", &c.listen_client_urls), ("--listen-peer-urls", &c.listen_peer_urls)]
    {
        if let Some(u) = urls.iter().find(|u| !matches!(u.scheme.as_str(), "http" | "https")) {
            return Err(ServerError::Config(format!(
                "{flag} {u}: this node serves http:// and https:// URLs only (no unix sockets)"
            )));
        }
    }
    Ok(())
}

/// The TLS of each side: the client listeners', the peer listeners', and this member's own peer
/// connections. A side passed as None is left out (its certificate is not made yet).
struct NodeTls {
    client: Option<Arc<rustls::ServerConfig>>,
    peer_server: Option<Arc<rustls::ServerConfig>>,
    peer_client: Option<Arc<rustls::ClientConfig>>,
}

fn load_tls(
    c: &NodeConfig,
    client: Option<&TlsInfo>,
    peer: Option<&TlsInfo>,
    peer_self_signed: bool,
) -> Result<NodeTls, ServerError> {
    let https = |urls: &[crate::etcd::urls::EtcdUrl]| urls.iter().any(|u| u.scheme == "https");
    let bad = |side: &str, why: String| ServerError::Config(format!("{side} TLS: {why}"));
    let client = match client.filter(|_| https(&c.listen_client_urls)) {
        // h2 for gRPC, http/1.1 for /health, /metrics and /version.
        Some(info) => Some(
            tls::server_config(info, &c.tls, &[b"h2".as_slice(), b"http/1.1".as_slice()])
                .map_err(|e| bad("client", e))?,
        ),
        None => None,
    };
    let peer_server = match peer.filter(|_| https(&c.listen_peer_urls)) {
        Some(info) => Some(tls::server_config(info, &c.tls, &[]).map_err(|e| bad("peer", e))?),
        None => None,
    };
    let peer_client = match peer {
        Some(info) => Some(tls::client_config(info, peer_self_signed, &c.tls).map_err(|e| bad("peer", e))?),
        None => None,
    };
    Ok(NodeTls { client, peer_server, peer_client })
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
pub async fn claim_data_dir(c: &NodeConfig) -> Result<Claimed, ServerError> {
    let dir = &c.data_dir;
    let member = dir.join("member");
    let identity_path = member.join(IDENTITY_FILE);
    let existing = identity_path.exists();
    let from_etcd = !existing && crate::node::etcd_dir::is_etcd_member_dir(&member);
    if !existing && !from_etcd && member.exists() {
        return Err(dir_error(
            dir,
            format!("member/ was written neither by etcdeck (no member/{IDENTITY_FILE}) nor by etcd (no member/snap/db); refusing to touch it"),
        ));
    }
    let lock_path = member.join("lock");
    let lock_existed = lock_path.exists();
    let dir_existed = dir.exists();
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
        if c.discovery.is_some() {
            eprintln!(
                "etcdeck node: discovery token ignored since a cluster has already been initialized. Valid \
                 log found at {:?}",
                c.wal_dir().display().to_string()
            );
        }
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
        let mut identity = identity;
        if c.force_new_cluster && identity.member_list().map_err(ServerError::DataDir)?.len() > 1 {
            // etcd's --force-new-cluster: this member alone, with its data and the cluster's ID;
            // everything in its log is committed by it as the only voter.
            let me = identity
                .member_list()
                .map_err(ServerError::DataDir)?
                .into_iter()
                .find(|(id, _, _)| format!("{id:x}") == identity.member_id);
            identity.members = me
                .map(|(id, name, peer_urls)| InitialMember { name, id: format!("{id:x}"), peer_urls })
                .into_iter()
                .collect();
            let text = serde_json::to_string_pretty(&identity).map_err(|e| dir_error(dir, e))?;
            write_durably(&identity_path, text.as_bytes()).map_err(|e| dir_error(dir, e))?;
            eprintln!(
                "etcdeck node: --force-new-cluster: member {} ({}) now forms a one-member cluster",
                identity.name, identity.member_id
            );
        }
        identity
    } else if from_etcd {
        let imported = crate::node::etcd_dir::import(c, &member).and_then(|identity| {
            let text = serde_json::to_string_pretty(&identity).map_err(|e| e.to_string())?;
            write_durably(&identity_path, text.as_bytes()).map_err(|e| e.to_string())?;
            Ok(identity)
        });
        match imported {
            Ok(identity) => identity,
            Err(why) => {
                // etcd's dir goes back to how it was.
                let home = member.join(crate::node::identity::ETCDECK_HOME);
                let _ = std::fs::remove_dir_all(&home);
                if !lock_existed {
                    let _ = std::fs::remove_file(&lock_path);
                }
                return Err(dir_error(dir, why));
            }
        }
    } else {
        let written = async {
            let identity = fresh_identity(c).await?;
            let text = serde_json::to_string_pretty(&identity).map_err(|e| dir_error(dir, e))?;
            write_durably(&identity_path, text.as_bytes()).map_err(|e| dir_error(dir, e))?;
            Ok::<_, ServerError>(identity)
        };
        written.await.inspect_err(|_| {
            // Nothing was written: the data dir goes back to how it was, so a corrected start works.
            let _ = std::fs::remove_file(&lock_path);
            let _ = std::fs::remove_dir(&member);
            if !dir_existed {
                let _ = std::fs::remove_dir(dir);
            }
        })?
    };
    Ok(Claimed { identity, _lock: lock })
}

/// The identity of a member starting on an empty data dir: a new cluster's, or the one a running
/// cluster gave it (etcd asks the peers in --initial-cluster).
async fn fresh_identity(c: &NodeConfig) -> Result<MemberIdentity, ServerError> {
    // --discovery-srv: the cluster the SRV records name, to bootstrap or to join.
    let from_dns;
    let c = match &c.discovery_srv {
        Some(domain) => {
            from_dns = crate::node::discovery_srv::bootstrap(c, domain).await.map_err(ServerError::Config)?;
            &from_dns
        }
        None => c,
    };
    {
        let identity = match c.initial_cluster_state {
            ClusterState::Existing => {
                let remote = remote_cluster(c).await.ok_or_else(|| {
                    ServerError::Config(
                        "cannot fetch cluster info from peer urls: could not retrieve cluster information \
                         from the given URLs"
                            .into(),
                    )
                })?;
                join_identity(c, &remote).map_err(|why| {
                    ServerError::Config(format!("error validating peerURLs {}: {why}", describe(&remote)))
                })?
            }
            ClusterState::New => {
                let discovered;
                let c = match &c.discovery {
                    Some(url) => {
                        discovered = discovery::bootstrap(c, url).await.map_err(ServerError::Config)?;
                        &discovered
                    }
                    None => c,
                };
                let identity = new_identity(c);
                // etcd's isMemberBootstrapped: the running cluster already has this member, started.
                if c.initial_cluster.len() > 1 {
                    if let Some(remote) = remote_cluster(c).await {
                        let started = remote
                            .members
                            .iter()
                            .any(|m| m.id == identity.member_id && !m.client_urls.is_empty());
                        if started {
                            return Err(ServerError::Config(format!(
                                "member {} has already been bootstrapped",
                                identity.member_id
                            )));
                        }
                    }
                }
                identity
            }
        };
        Ok(identity)
    }
}

fn parse_hex(text: &str, what: &str) -> Result<u64, ServerError> {
    crate::node::identity::parse_hex(text, what).map_err(ServerError::DataDir)
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

/// How long a stopping member waits for its servers to finish, then for raft and the store.
const STOP_SERVING_WITHIN: Duration = Duration::from_secs(2);
const CLOSE_STORE_WITHIN: Duration = Duration::from_secs(2);

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
    /// Resolves once this member learns the cluster removed it.
    pub async fn removed(&self) {
        if !self.handle.status.removed.load(std::sync::atomic::Ordering::Relaxed) {
            self.handle.status.removed_notify.notified().await;
        }
    }

    /// Stops serving, then stops raft and flushes the store, in at most about 4 s whatever state
    /// the member is in (a full disk can make a flush wait for ever: the raft log holds every
    /// acknowledged write, so the store is then left as a crash would leave it).
    pub async fn stop(self) {
        let Running { handle, stop, servers, .. } = self;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(STOP_SERVING_WITHIN, futures::future::join_all(servers)).await;
        let (done, finished) = tokio::sync::oneshot::channel();
        // A thread of its own, not the runtime's blocking pool, which the runtime would wait for; it
        // also takes the handle, so that the store's last handle (whose drop flushes, and can wait
        // on a full disk for ever) is never dropped here.
        let closer = std::thread::Builder::new().name("close-store".into()).spawn(move || {
            handle.stop();
            if handle.status.disk_failure().is_none() {
                if let Ok(store) = handle.store.read() {
                    let _ = store.flush();
                }
            }
            let _ = done.send(());
            drop(handle);
        });
        if closer.is_ok() && tokio::time::timeout(CLOSE_STORE_WITHIN, finished).await.is_err() {
            eprintln!(
                "etcdeck node: the store was not flushed within {} s; stopping without it (the raft log \
                 holds every acknowledged write)",
                CLOSE_STORE_WITHIN.as_secs()
            );
        }
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

/// Publishes this member's name and client URLs through raft, as etcd does once it serves, so every
/// member's MemberList shows them; retried until it lands, skipped when already there.
async fn publish(ctx: Ctx, mut stop: tokio::sync::watch::Receiver<bool>) {
    let me = ctx.identity.member_id;
    let wanted = (ctx.name.clone(), ctx.client_urls.clone());
    loop {
        let current = ctx.handle.read_store().ok().and_then(|s| s.attributes().get(&me).cloned());
        if current.as_ref() == Some(&wanted) {
            return;
        }
        let member = etcd_client::proto::PbMember {
            id: me,
            name: wanted.0.clone(),
            client_ur_ls: wanted.1.clone(),
            ..Default::default()
        };
        if ctx.handle.write(crate::node::raft::write::Write::Publish(member)).await.is_ok() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// What the transport reports, passed to the driver once it runs.
#[derive(Default)]
struct NodeEvents {
    handle: std::sync::OnceLock<Handle>,
}

impl TransportEvents for NodeEvents {
    fn snapshot_sent(&self, to: u64, ok: bool) {
        if let Some(h) = self.handle.get() {
            h.snapshot_sent(to, ok);
        }
    }

    fn removed(&self) {
        if let Some(h) = self.handle.get() {
            h.status.mark_removed();
        }
    }

    fn peer_refused(&self, id: u64) {
        if let Some(h) = self.handle.get() {
            h.peer_refused(id);
        }
    }

    fn snapshot_pairs(&self, m: &RaftMessage) -> Option<crate::node::raft::transport::SnapshotPairs> {
        self.handle.get()?.status.snapshots.pairs(m)
    }
}

/// The node behind the peer listener.
struct NodePeerHost {
    handle: Handle,
    cluster_id: u64,
    /// For what other members forward to this one as the leader.
    ctx: Ctx,
}

impl PeerHost for NodePeerHost {
    fn deliver(&self, m: RaftMessage) {
        self.handle.step(m);
    }

    fn is_removed(&self, id: u64) -> bool {
        self.handle.status.removed_ids.read().is_ok_and(|r| r.contains(&id))
    }

    fn forwarded(&self, request: Vec<u8>) -> futures::future::BoxFuture<'static, Vec<u8>> {
        let ctx = self.ctx.clone();
        Box::pin(async move { crate::node::rpc::forward_answer::answer(&ctx, &request).await })
    }

    fn snapshot_sink(
        &self,
        m: &RaftMessage,
    ) -> Result<Box<dyn crate::node::raft::transport::SnapshotSink>, String> {
        let live = self.handle.read_store().map_err(|e| e.to_string())?.dir().to_path_buf();
        crate::node::raft::snapshots::Shelf::sink(&self.handle.status.snapshots, &live, m)
    }

    fn membership(&self) -> Vec<u8> {
        let Ok(store) = self.handle.read_store() else { return Vec::new() };
        let members = store
            .members()
            .iter()
            .map(|(id, m)| {
                let (name, client_urls) = store.attributes().get(id).cloned().unwrap_or_default();
                RemoteMember {
                    id: format!("{id:x}"),
                    name,
                    peer_urls: m.peer_urls.clone(),
                    client_urls,
                    is_learner: m.is_learner,
                }
            })
            .collect();
        let cluster = RemoteCluster { cluster_id: format!("{:x}", self.cluster_id), members };
        serde_json::to_vec(&cluster).unwrap_or_default()
    }
}

/// Every election timeout, notes whether this member knows a leader; after
/// `NO_LEADER_ELECTIONS` in a row without one, ends the streams that require a leader (and again
/// each timeout after that while none is known), as etcd's monitorLeader does.
async fn monitor_leader(
    handle: Handle,
    election: Duration,
    no_leader: tokio::sync::watch::Sender<u64>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut without = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(election) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        without = if handle.leader() == 0 { without + 1 } else { 0 };
        if without >= crate::node::rpc::ctx::NO_LEADER_ELECTIONS {
            no_leader.send_modify(|n| *n += 1);
        }
    }
}

/// Accepts client connections, completing TLS handshakes concurrently (each within
/// [`tls::HANDSHAKE_TIMEOUT`], so a client that opens a connection and says nothing holds nothing).
async fn accept_clients(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    conns: tokio::sync::mpsc::Sender<ClientStream>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = acceptor.clone() else {
            if conns.send(ClientStream::plain(stream, remote)).await.is_err() {
                return;
            }
            continue;
        };
        let conns = conns.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = conns.send(ClientStream::tls(tls, remote)).await;
                }
                Ok(Err(e)) => eprintln!("etcdeck node: TLS handshake from {remote} failed: {e}"),
                Err(_) => eprintln!("etcdeck node: TLS handshake from {remote} timed out"),
            }
        });
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
    // Certificates named by flags are read before the data dir is touched: a bad one changes nothing.
    let client_auto = c.auto_tls && c.client_tls.is_empty();
    let peer_auto = c.peer_auto_tls && c.peer_tls.is_empty();
    let given =
        load_tls(c, (!client_auto).then_some(&c.client_tls), (!peer_auto).then_some(&c.peer_tls), false)?;
    // Every listener is bound, and every key file read, before the data dir is touched: a start
    // that fails on a busy port or a bad flag writes nothing (etcd binds its listeners first too).
    let mut peer_sockets = Vec::new();
    for u in &c.listen_peer_urls {
        match tokio::net::TcpListener::bind(u.host_port()).await {
            Ok(listener) => peer_sockets.push((u, listener)),
            Err(e) => return Err(ServerError::Listen { url: u.to_string(), why: e.to_string() }),
        }
    }
    let mut client_sockets = Vec::new();
    for u in &c.listen_client_urls {
        match tokio::net::TcpListener::bind(u.host_port()).await {
            Ok(listener) => client_sockets.push((u, listener)),
            Err(e) => return Err(ServerError::Listen { url: u.to_string(), why: e.to_string() }),
        }
    }
    let jwt = match &c.jwt {
        Some(options) => Some(crate::node::auth::JwtKeys::load(options).map_err(ServerError::DataDir)?),
        None => None,
    };
    let claimed = claim_data_dir(c).await?;
    let node_tls = if client_auto || peer_auto {
        let fixtures = c.data_dir.join("fixtures");
        let made = |side: &str, urls: &[crate::etcd::urls::EtcdUrl]| {
            tls::self_cert(&fixtures.join(side), urls)
                .map_err(|e| ServerError::Config(format!("{side} auto TLS: {e}")))
        };
        let client = if client_auto { made("client", &c.listen_client_urls)? } else { c.client_tls.clone() };
        let peer = if peer_auto { made("peer", &c.listen_peer_urls)? } else { c.peer_tls.clone() };
        load_tls(c, Some(&client), Some(&peer), peer_auto)?
    } else {
        given
    };
    let (db_dir, wal_dir) = claimed.identity.dirs(c);
    let member_id = parse_hex(&claimed.identity.member_id, "member ID")?;
    let cluster_id = parse_hex(&claimed.identity.cluster_id, "cluster ID")?;
    let election_ticks = (c.election_timeout.as_millis() / c.heartbeat_interval.as_millis().max(1)) as usize;
    let bootstrap: Vec<(u64, RaftMember)> = if claimed.identity.joined {
        Vec::new()
    } else {
        claimed
            .identity
            .member_list()
            .map_err(ServerError::DataDir)?
            .into_iter()
            .map(|(id, _, peer_urls)| (id, RaftMember { peer_urls, is_learner: false }))
            .collect()
    };
    // Outgoing peer connections come from the host this member advertises.
    let bind_host = c.initial_advertise_peer_urls.first().map(|u| u.dial_host().to_string());
    let events = Arc::new(NodeEvents::default());
    let dialer = Dialer { bind_host, tls: node_tls.peer_client.clone() };
    let net: Arc<dyn Transport> = PeerNet::new(cluster_id, member_id, dialer.clone(), events.clone());
    // Bound before raft starts, so a peer's first messages find the port open.
    let peer_listeners: Vec<PeerListener> = peer_sockets
        .into_iter()
        .map(|(u, listener)| {
            let tls = if u.scheme == "https" { node_tls.peer_server.clone() } else { None };
            PeerListener { listener, tls }
        })
        .collect();
    let options = crate::node::raft::options::Options {
        member_id,
        heartbeat: c.heartbeat_interval,
        election_ticks,
        wal_dir: wal_dir.clone(),
        db_dir,
        max_request_bytes: c.max_request_bytes as usize,
        snapshot_count: c.snapshot_count,
        bootstrap,
        known_peers: claimed
            .identity
            .member_list()
            .map_err(ServerError::DataDir)?
            .into_iter()
            .map(|(id, _, urls)| (id, urls))
            .collect(),
        force_new_cluster: c.force_new_cluster,
        transport: Some(net.clone()),
        // etcd's request timeout: 5 s and two election timeouts.
        request_timeout: Duration::from_secs(5) + c.election_timeout * 2,
        token_ttl: Duration::from_secs(c.auth_token_ttl),
        jwt,
        log_space: None,
    };
    let handle = tokio::task::spawn_blocking(move || driver::start(options))
        .await
        .map_err(|e| ServerError::DataDir(e.to_string()))?
        .map_err(|e| dir_error(&c.data_dir, format!("cannot open: {e}")))?;
    let _ = events.handle.set(handle.clone());
    let (no_leader_tx, no_leader_rx) = tokio::sync::watch::channel(0u64);
    let ctx = Ctx {
        handle: handle.clone(),
        identity: Identity { cluster_id, member_id },
        max_txn_ops: c.max_txn_ops as usize,
        quota_bytes: c.quota_bytes(),
        name: c.name.clone(),
        peer_urls: claimed.identity.peer_urls.clone(),
        client_urls: c.advertise_client_urls.iter().map(ToString::to_string).collect(),
        strict_reconfig_check: c.strict_reconfig_check,
        enable_v2: c.enable_v2,
        transport: Some(net),
        dialer: dialer.clone(),
        no_leader: no_leader_rx,
        client_cert_auth: c.client_tls.client_cert_auth,
        bcrypt_cost: c.bcrypt_cost,
        disk_dirs: Arc::new(vec![FreeSpace::new(c.data_dir.clone()), FreeSpace::new(wal_dir)]),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers =
        vec![tokio::spawn(monitor_leader(handle.clone(), c.election_timeout, no_leader_tx, stopped.clone()))];
    let host: Arc<dyn PeerHost> =
        Arc::new(NodePeerHost { handle: handle.clone(), cluster_id, ctx: ctx.clone() });
    for listener in peer_listeners {
        servers.push(tokio::spawn(transport::serve(
            listener,
            cluster_id,
            member_id,
            host.clone(),
            stopped.clone(),
        )));
    }
    // Serve once a leader is known and this member has applied what its log holds (etcd serves
    // after its ReadyNotify). A member of a cluster waits for its quorum for as long as it takes;
    // a member the cluster removed stops.
    loop {
        let read = tokio::select! {
            r = handle.read_index() => r,
            _ = handle.status.removed_notify.notified() => Err(NodeError::Stopped),
        };
        match read {
            Ok(_) => break,
            Err(NodeError::Timeout) => continue,
            Err(_) if handle.status.removed.load(std::sync::atomic::Ordering::Relaxed) => {
                let _ = stop.send(true);
                let h = handle.clone();
                let _ = tokio::task::spawn_blocking(move || h.stop()).await;
                return Err(ServerError::Removed);
            }
            Err(e) => {
                let _ = stop.send(true);
                let h = handle.clone();
                let _ = tokio::task::spawn_blocking(move || h.stop()).await;
                return Err(dir_error(&c.data_dir, format!("raft did not start: {e}")));
            }
        }
    }
    let listeners: Vec<_> = client_sockets
        .into_iter()
        .map(|(u, l)| (l, if u.scheme == "https" { node_tls.client.clone() } else { None }))
        .collect();
    let max_message = c.max_request_bytes as usize + GRPC_OVERHEAD_BYTES;
    let mut client_addrs = Vec::new();
    for (listener, tls) in listeners {
        client_addrs.push(
            listener.local_addr().map_err(|e| ServerError::Listen { url: "?".into(), why: e.to_string() })?,
        );
        let router = Server::builder()
            .accept_http1(true)
            .layer(HttpLayer { ctx: ctx.clone(), stopped: stopped.clone() })
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
            )
            .add_service(AuthService::new(ctx.clone(), max_message));
        let mut stopped = stopped.clone();
        let (conns, accepted) = tokio::sync::mpsc::channel(64);
        servers.push(tokio::spawn(accept_clients(listener, tls, conns, stopped.clone())));
        let incoming = futures::stream::unfold(accepted, |mut accepted| async move {
            let conn = accepted.recv().await?;
            Some((Ok::<_, std::io::Error>(AuthorityFix::new(conn)), accepted))
        });
        servers.push(tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    servers.push(tokio::spawn(publish(ctx.clone(), stopped.clone())));
    servers.push(tokio::spawn(expire_leases(ctx.clone(), stopped.clone())));
    servers.push(tokio::spawn(crate::node::rpc::v2keys::sweep(ctx.clone(), stopped.clone())));
    servers.push(tokio::spawn(compactor::run(
        ctx.clone(),
        c.auto_compaction,
        timers.revision_compaction,
        stopped.clone(),
    )));
    Ok(Running { handle, client_addrs, identity: claimed.identity.clone(), stop, servers, _claimed: claimed })
}
