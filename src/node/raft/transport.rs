//! The peer transport: raft messages between members over TCP, on --listen-peer-urls.
//!
//! Each member keeps one outgoing stream per peer. A stream starts with a handshake naming the
//! cluster and both members, which the receiver answers with one status byte: the stream is taken,
//! or refused because the sender belongs to another cluster (etcd's "cluster ID mismatch") or was
//! removed from this one (etcd's "the member has been permanently removed from the cluster"; the
//! sender stops when told). Then length-prefixed raft messages follow, as many per write as are
//! queued (batched, never one round trip per message). Raft tolerates lost messages, so a full
//! queue or a broken connection drops messages instead of blocking the driver; the stream
//! reconnects on its own.
//!
//! Raft snapshots do not travel on the message stream: each goes on a connection of its own, so a
//! large one never holds up heartbeats. The message goes first, without data; then the store's
//! pairs, read by the sender and stored by the receiver as they travel on blocking threads (a few
//! MiB in flight, whatever the store's size); then their count and checksum. The receiver makes
//! what arrived durable before raft gets the message, and acknowledges it; only then is the
//! sender's raft told the snapshot went.
//!
//! The same listener answers a member asking for the cluster's membership (a member joining with
//! --initial-cluster-state existing, or checking it was not bootstrapped already), as etcd's peer
//! handler answers GET /members.
//!
//! Outgoing connections bind to the host of the member's own advertised peer URL, so members on
//! 127.0.0.1, 127.0.0.2 and 127.0.0.3 can be told apart (and cut apart) by fault tools.
//!
//! Peers with https:// URLs are reached over TLS (the [`Dialer`]'s client config: the peer
//! certificate, the peer CA), and an https:// listener takes only TLS ([`PeerListener`]: the peer
//! certificate, client certificates checked as --peer-client-cert-auth, --peer-cert-allowed-cn and
//! etcd's SAN check say).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost_011::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// A peer connection, plain or TLS.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}
pub type PeerStream = Box<dyn PeerIo>;

/// The first bytes of a raft message stream, a snapshot, and a membership query.
const MAGIC: &[u8; 4] = b"EDKP";
const SNAPSHOT_MAGIC: &[u8; 4] = b"EDKT";
const MEMBERS_MAGIC: &[u8; 4] = b"EDKM";
/// A request only the leader answers (lease keep-alives and TTLs, learner promotion), forwarded by
/// a follower as etcd forwards them over its peer URLs.
const FORWARD_MAGIC: &[u8; 4] = b"EDKF";
const VERSION: u8 = 2;
const HANDSHAKE_LEN: usize = 4 + 1 + 8 + 8 + 8;
/// The receiver's answer to a handshake.
const ACCEPTED: u8 = 0;
const CLUSTER_MISMATCH: u8 = 1;
const MEMBER_REMOVED: u8 = 2;
const WRONG_MEMBER: u8 = 3;
/// Messages queued for one peer before new ones are dropped (etcd drops them too when a peer's
/// buffer is full).
const QUEUE: usize = 4096;
/// The most bytes written in one go.
const BATCH_BYTES: usize = 1 << 20;
/// The largest message on the message stream (snapshots go apart).
const MAX_FRAME: usize = 64 << 20;
/// A snapshot's pairs are written, and handed to the receiver's store, about this many bytes at a
/// time; a few such chunks are in flight on each side.
const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;
/// The largest snapshot accepted (etcd's largest recommended backend is 8 GiB), and the largest
/// pair in it.
const MAX_SNAPSHOT: u64 = 16 << 30;
const MAX_PAIR: usize = 1 << 30;
/// Marks the end of a snapshot's pairs, where a key's length would be.
const END_OF_PAIRS: u32 = u32::MAX;
const RECONNECT: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// etcd's text for a member that was removed (rafthttp's errMemberRemoved).
pub const REMOVED_TEXT: &str = "the member has been permanently removed from the cluster";

/// Where raft messages go: a trait, so a test can drive members without sockets.
pub trait Transport: Send + Sync {
    /// Queues messages for their recipients; never blocks.
    fn send(&self, messages: Vec<Message>);
    /// The peers to reach (this member excluded): streams to new peers start, those to peers no
    /// longer listed stop, and a peer whose address changed is dialled at the new one.
    fn set_peers(&self, peers: Vec<Peer>);
    /// Since when the stream to a peer has been up (None: not connected), as etcd's ActiveSince.
    fn active_since(&self, id: u64) -> Option<Instant>;
}

/// What the transport tells the node (how a snapshot it sent went, that peers refused this member
/// as removed) and asks of it (the pairs of a snapshot to send).
pub trait TransportEvents: Send + Sync {
    fn snapshot_sent(&self, to: u64, ok: bool);
    fn removed(&self);
    /// The pairs of the store the snapshot message `m` stands for; None once it is withdrawn.
    fn snapshot_pairs(&self, m: &Message) -> Option<SnapshotPairs>;
    /// Peer `id`'s address refused a connection: nothing listens there, its process is gone (a
    /// peer that is slow, paused or cut off does not refuse). Said at each refused attempt.
    fn peer_refused(&self, id: u64);
}

/// Why dialling a peer failed, and whether its address refused the connection.
#[derive(Debug)]
pub struct DialError {
    pub why: String,
    pub refused: bool,
}

impl From<DialError> for String {
    fn from(e: DialError) -> String {
        e.why
    }
}

#[path = "transport_snapshot.rs"]
mod snapshot;
use snapshot::{receive_snapshot, send_snapshot};

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// A snapshot's (key, value) pairs in key order, read on a blocking thread as they go out.
pub type SnapshotPairs = Box<dyn Iterator<Item = Result<Pair, String>> + Send>;

/// Where a receiver stores a snapshot's pairs as they arrive (on a blocking thread).
pub trait SnapshotSink: Send {
    fn add(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String>;
    /// Every pair arrived, and their count and checksum matched: make them durable and keep them
    /// for raft, which gets the snapshot's message next. Dropped unfinished, a sink leaves nothing.
    fn finish(self: Box<Self>) -> Result<(), String>;
}

/// A peer: its member ID, the address its peer URL names, and whether that URL is https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub addr: String,
    pub tls: bool,
}

/// How this member dials its peers: from which host, and with which TLS for https:// peers.
#[derive(Clone, Default)]
pub struct Dialer {
    pub bind_host: Option<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Dialer {
    /// Connects to `addr`, over TLS when `tls`; Err names what failed.
    pub async fn dial(&self, addr: &str, tls: bool) -> Result<PeerStream, DialError> {
        let stream = connect(addr, self.bind_host.as_deref()).await.map_err(|e| DialError {
            why: e.to_string(),
            refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
        })?;
        self.secure(addr, stream, tls).await.map_err(|why| DialError { why, refused: false })
    }

    async fn secure(&self, addr: &str, stream: TcpStream, tls: bool) -> Result<PeerStream, String> {
        if !tls {
            return Ok(Box::new(stream));
        }
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => {
                return Err(format!(
                    "https://{addr} needs peer TLS (--peer-trusted-ca-file and certificates)"
                ))
            }
        };
        let host =
            addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} cannot be checked against a certificate: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(crate::node::tls::HANDSHAKE_TIMEOUT, connector.connect(name, stream))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        Ok(Box::new(tls))
    }
}

/// A peer listener: plain, or TLS with the checks etcd's peer listener makes.
pub struct PeerListener {
    pub listener: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl PeerListener {
    /// Completes the TLS handshake of an accepted connection (with a timeout) and applies etcd's
    /// checkSAN to the client certificate.
    async fn secure(
        tls: Option<Arc<rustls::ServerConfig>>,
        stream: TcpStream,
        remote: std::net::SocketAddr,
    ) -> Result<PeerStream, String> {
        let Some(config) = tls else { return Ok(Box::new(stream)) };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = tokio::time::timeout(crate::node::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
        if let Some(leaf) = leaf {
            crate::node::tls::check_san(&leaf, remote.ip()).await?;
        }
        Ok(Box::new(tls))
    }
}

struct Link {
    addr: String,
    secure: bool,
    tx: mpsc::Sender<Message>,
    active: Arc<Mutex<Option<Instant>>>,
}

/// The TCP transport.
pub struct PeerNet {
    cluster_id: u64,
    from: u64,
    dialer: Dialer,
    runtime: tokio::runtime::Handle,
    events: Arc<dyn TransportEvents>,
    links: Mutex<HashMap<u64, Link>>,
}

impl PeerNet {
    /// A transport with no peers yet; its tasks run on the current tokio runtime.
    pub fn new(cluster_id: u64, from: u64, dialer: Dialer, events: Arc<dyn TransportEvents>) -> Arc<PeerNet> {
        Arc::new(PeerNet {
            cluster_id,
            from,
            dialer,
            runtime: tokio::runtime::Handle::current(),
            events,
            links: Mutex::new(HashMap::new()),
        })
    }

    fn send_snapshot(&self, m: Message, addr: String, secure: bool) {
        let hello = handshake(SNAPSHOT_MAGIC, self.cluster_id, self.from, m.to);
        let dialer = self.dialer.clone();
        let events = self.events.clone();
        let pairs = self.events.snapshot_pairs(&m);
        self.runtime.spawn(async move {
            let to = m.to;
            let outcome = send_snapshot(&dialer, &addr, secure, &hello, m, pairs).await;
            if let Err(why) = &outcome {
                eprintln!("etcdeck node: sending a raft snapshot to {to:x} failed: {why}");
            }
            if matches!(&outcome, Err(why) if why == REMOVED_TEXT) {
                events.removed();
            }
            events.snapshot_sent(to, outcome.is_ok());
        });
    }
}

impl Transport for PeerNet {
    fn send(&self, messages: Vec<Message>) {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        for m in messages {
            let Some(link) = links.get(&m.to) else {
                if m.msg_type() == MessageType::MsgSnapshot {
                    // Raft waits for the outcome of every snapshot it sends.
                    self.events.snapshot_sent(m.to, false);
                }
                continue;
            };
            if m.msg_type() == MessageType::MsgSnapshot {
                self.send_snapshot(m, link.addr.clone(), link.secure);
                continue;
            }
            // Full or closed: raft sends again.
            let _ = link.tx.try_send(m);
        }
    }

    fn set_peers(&self, peers: Vec<Peer>) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        // Dropping a link's sender ends its task.
        links.retain(|id, link| {
            peers.iter().any(|p| p.id == *id && p.addr == link.addr && p.tls == link.secure)
        });
        for peer in peers.into_iter().filter(|p| p.id != self.from) {
            if links.contains_key(&peer.id) {
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let active = Arc::new(Mutex::new(None));
            let hello = handshake(MAGIC, self.cluster_id, self.from, peer.id);
            self.runtime.spawn(sender(
                peer.clone(),
                self.dialer.clone(),
                hello,
                rx,
                active.clone(),
                self.events.clone(),
            ));
            links.insert(peer.id, Link { addr: peer.addr, secure: peer.tls, tx, active });
        }
    }

    fn active_since(&self, id: u64) -> Option<Instant> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let link = links.get(&id)?;
        let since = *link.active.lock().unwrap_or_else(|p| p.into_inner());
        since
    }
}

fn handshake(magic: &[u8; 4], cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(HANDSHAKE_LEN);
    b.extend_from_slice(magic);
    b.push(VERSION);
    b.extend_from_slice(&cluster_id.to_be_bytes());
    b.extend_from_slice(&from.to_be_bytes());
    b.extend_from_slice(&to.to_be_bytes());
    b
}

async fn connect(addr: &str, bind_host: Option<&str>) -> std::io::Result<TcpStream> {
    let target = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("no address for {addr}")))?;
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(host) = bind_host {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            if ip.is_ipv4() == target.is_ipv4() {
                socket.bind(std::net::SocketAddr::new(ip, 0))?;
            }
        }
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Greets a peer and reads its answer: Ok once the stream is taken, Err(why) when refused.
async fn greet(stream: &mut PeerStream, hello: &[u8]) -> Result<(), String> {
    stream.write_all(hello).await.map_err(|e| e.to_string())?;
    let mut answer = [0u8; 1];
    tokio::time::timeout(QUERY_TIMEOUT, stream.read_exact(&mut answer))
        .await
        .map_err(|_| "no answer to the handshake".to_string())?
        .map_err(|e| e.to_string())?;
    match answer[0] {
        ACCEPTED => Ok(()),
        CLUSTER_MISMATCH => Err("cluster ID mismatch".into()),
        MEMBER_REMOVED => Err(REMOVED_TEXT.into()),
        _ => Err("the peer is another member than its URL was given for".into()),
    }
}

/// One peer's outgoing stream: connects, greets, then writes whatever is queued, batched.
#[allow(clippy::too_many_arguments)]
async fn sender(
    peer: Peer,
    dialer: Dialer,
    hello: Vec<u8>,
    mut rx: mpsc::Receiver<Message>,
    active: Arc<Mutex<Option<Instant>>>,
    events: Arc<dyn TransportEvents>,
) {
    let set_active = |since: Option<Instant>| *active.lock().unwrap_or_else(|p| p.into_inner()) = since;
    let mut buf = Vec::new();
    let mut last_refusal = String::new();
    let addr = &peer.addr;
    loop {
        let connected = match dialer.dial(addr, peer.tls).await {
            Ok(mut s) => greet(&mut s, &hello).await.map(|()| s),
            Err(e) => {
                if e.refused {
                    events.peer_refused(peer.id);
                }
                Err(e.why)
            }
        };
        let stream = match connected {
            Ok(s) => s,
            Err(why) => {
                if why == REMOVED_TEXT {
                    events.removed();
                }
                if why != last_refusal && (why.contains("mismatch") || why.contains("TLS")) {
                    eprintln!("etcdeck node: peer {addr} refused the stream: {why}");
                }
                last_refusal = why;
                // Messages queued for an unreachable peer are stale by the time it is back.
                loop {
                    match rx.try_recv() {
                        Ok(_) => {}
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        last_refusal.clear();
        set_active(Some(Instant::now()));
        let (mut reader, mut writer) = tokio::io::split(stream);
        // The peer speaks only to refuse us (removed meanwhile), or closes.
        let mut told = tokio::spawn(async move {
            let mut b = [0u8; 1];
            reader.read_exact(&mut b).await.is_ok() && b[0] == MEMBER_REMOVED
        });
        loop {
            let first = tokio::select! {
                m = rx.recv() => m,
                removed = &mut told => {
                    if matches!(removed, Ok(true)) {
                        events.removed();
                    }
                    break;
                }
            };
            let Some(first) = first else {
                told.abort();
                set_active(None);
                return;
            };
            buf.clear();
            frame(&mut buf, &first);
            while buf.len() < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(m) => frame(&mut buf, &m),
                    Err(_) => break,
                }
            }
            // A peer that stops reading is given up on (and dialled again), never waited for.
            let written = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&buf)).await;
            if !matches!(written, Ok(Ok(()))) {
                told.abort();
                break;
            }
        }
        set_active(None);
        tokio::time::sleep(RECONNECT).await;
    }
}

fn frame(buf: &mut Vec<u8>, m: &Message) {
    let len = m.encoded_len();
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = m.encode(buf);
}

/// What the node behind a peer listener does with what arrives.
pub trait PeerHost: Send + Sync {
    /// Hands a message to raft.
    fn deliver(&self, m: Message);
    /// Whether `id` was removed from the cluster (its streams are refused).
    fn is_removed(&self, id: u64) -> bool;
    /// The cluster's membership, encoded for a member asking (see `query_members`).
    fn membership(&self) -> Vec<u8>;
    /// Answers a request another member forwarded (see `forward`).
    fn forwarded(&self, request: Vec<u8>) -> futures::future::BoxFuture<'static, Vec<u8>>;
    /// Where the pairs of the snapshot message `m` go; Err refuses it.
    fn snapshot_sink(&self, m: &Message) -> Result<Box<dyn SnapshotSink>, String>;
}

/// Serves the peer listener: every accepted stream's messages go to `host`.
pub async fn serve(
    listener: PeerListener,
    cluster_id: u64,
    me: u64,
    host: Arc<dyn PeerHost>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, remote)) = accepted else {
            tokio::time::sleep(RECONNECT).await;
            continue;
        };
        let host = host.clone();
        let mut stop = stop.clone();
        let tls = listener.tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let stream = match PeerListener::secure(tls, stream, remote).await {
                Ok(s) => s,
                Err(why) => {
                    eprintln!("etcdeck node: peer connection from {remote} refused: {why}");
                    return;
                }
            };
            tokio::select! {
                r = receive(stream, cluster_id, me, host) => {
                    if let Err(why) = r {
                        if !why.is_empty() {
                            eprintln!("etcdeck node: peer stream from {remote}: {why}");
                        }
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

/// Reads one peer connection. Err("") is a plain disconnect.
async fn receive(
    mut stream: PeerStream,
    cluster_id: u64,
    me: u64,
    host: Arc<dyn PeerHost>,
) -> Result<(), String> {
    let mut magic = [0u8; 5];
    tokio::time::timeout(QUERY_TIMEOUT, stream.read_exact(&mut magic))
        .await
        .map_err(|_| String::new())?
        .map_err(|_| String::new())?;
    if magic[4] != VERSION {
        return Err("not an etcdeck peer of this version (bad handshake)".into());
    }
    if &magic[..4] == MEMBERS_MAGIC {
        let body = host.membership();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        return stream.write_all(&out).await.map_err(|_| String::new());
    }
    let (snapshot, forwarded) = match &magic[..4] {
        m if m == MAGIC => (false, false),
        m if m == SNAPSHOT_MAGIC => (true, false),
        m if m == FORWARD_MAGIC => (false, true),
        _ => return Err("not an etcdeck peer (bad handshake)".into()),
    };
    let mut ids = [0u8; 24];
    stream.read_exact(&mut ids).await.map_err(|_| String::new())?;
    let word = |i: usize| u64::from_be_bytes(ids[i..i + 8].try_into().unwrap_or([0; 8]));
    let (their_cluster, from, to) = (word(0), word(8), word(16));
    if their_cluster != cluster_id {
        return refuse(
            &mut stream,
            CLUSTER_MISMATCH,
            format!("request cluster ID mismatch (got {their_cluster:x} want {cluster_id:x})"),
        )
        .await;
    }
    if host.is_removed(from) {
        return refuse(&mut stream, MEMBER_REMOVED, format!("refused member {from:x}: {REMOVED_TEXT}")).await;
    }
    if to != me {
        return refuse(&mut stream, WRONG_MEMBER, format!("message for member {to:x} reached member {me:x}"))
            .await;
    }
    stream.write_all(&[ACCEPTED]).await.map_err(|_| String::new())?;
    if forwarded {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.map_err(|_| String::new())?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(format!("a {n}-byte forwarded request from {from:x} is over the limit"));
        }
        let mut body = vec![0u8; n];
        stream.read_exact(&mut body).await.map_err(|_| String::new())?;
        let answer = host.forwarded(body).await;
        let mut out = (answer.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&answer);
        return stream.write_all(&out).await.map_err(|_| String::new());
    }
    if snapshot {
        return receive_snapshot(stream, from, me, host).await;
    }
    let mut len = [0u8; 4];
    let mut body = Vec::new();
    loop {
        stream.read_exact(&mut len).await.map_err(|_| String::new())?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(format!("a {n}-byte message from {from:x} is over the {MAX_FRAME}-byte limit"));
        }
        body.resize(n, 0);
        stream.read_exact(&mut body).await.map_err(|_| String::new())?;
        let m = Message::decode(body.as_slice()).map_err(|e| format!("bad message from {from:x}: {e}"))?;
        if m.to != me || (m.from != from && !forwarded_by_raft(&m)) {
            return Err(format!("{:?} {:x}→{:x} on the stream {from:x}→{me:x}", m.msg_type(), m.from, m.to));
        }
        if host.is_removed(from) {
            // Removed while connected: say so, as etcd answers 410 Gone.
            let _ = stream.write_all(&[MEMBER_REMOVED]).await;
            return Err(format!("refused member {from:x}: {REMOVED_TEXT}"));
        }
        if m.from != from && host.is_removed(m.from) {
            // Passed on from a removed member by one that is not: only the message goes.
            continue;
        }
        host.deliver(m);
    }
}

/// The messages a raft follower passes on to its leader as they came, with the sender they came
/// from (a read index asked of a member that is no longer leader, a leader transfer): they arrive
/// on the forwarding member's stream.
fn forwarded_by_raft(m: &Message) -> bool {
    matches!(m.msg_type(), MessageType::MsgReadIndex | MessageType::MsgTransferLeader)
}

async fn refuse(stream: &mut PeerStream, code: u8, why: String) -> Result<(), String> {
    let _ = stream.write_all(&[code]).await;
    Err(why)
}

/// Sends a request to member `to` at `addr` for it to answer as the leader (its
/// `PeerHost::forwarded`), within `limit`.
pub async fn forward(
    dialer: &Dialer,
    (addr, secure): (&str, bool),
    (cluster_id, from, to): (u64, u64, u64),
    request: &[u8],
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let work = async {
        let mut stream = dialer.dial(addr, secure).await?;
        greet(&mut stream, &handshake(FORWARD_MAGIC, cluster_id, from, to)).await?;
        let mut out = (request.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(request);
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        read_answer(&mut stream, "forwarded answer").await
    };
    tokio::time::timeout(limit, work).await.map_err(|_| "timed out".to_string())?
}

/// A length-prefixed answer to a query.
async fn read_answer(stream: &mut PeerStream, what: &str) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(format!("{what} too large"));
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(body)
}

/// Asks the member at `addr` for the cluster's membership (what its `PeerHost::membership` encodes).
pub async fn query_members(dialer: &Dialer, addr: &str, tls: bool) -> Result<Vec<u8>, String> {
    let work = async {
        let mut stream = dialer.dial(addr, tls).await?;
        let mut hello = MEMBERS_MAGIC.to_vec();
        hello.push(VERSION);
        stream.write_all(&hello).await.map_err(|e| e.to_string())?;
        read_answer(&mut stream, "membership answer").await
    };
    tokio::time::timeout(QUERY_TIMEOUT, work).await.map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    struct Host {
        got: mpsc::UnboundedSender<Message>,
        removed: AtomicBool,
        /// One more member taken as removed (0: none).
        removed_id: std::sync::atomic::AtomicU64,
        /// The snapshots that arrived whole.
        stored: Arc<Mutex<Vec<Vec<Pair>>>>,
    }

    impl PeerHost for Host {
        fn deliver(&self, m: Message) {
            let _ = self.got.send(m);
        }
        fn is_removed(&self, id: u64) -> bool {
            self.removed.load(Ordering::Relaxed) || self.removed_id.load(Ordering::Relaxed) == id
        }
        fn forwarded(&self, request: Vec<u8>) -> futures::future::BoxFuture<'static, Vec<u8>> {
            Box::pin(async move { [b"answer to ".as_slice(), &request].concat() })
        }
        fn membership(&self) -> Vec<u8> {
            b"members".to_vec()
        }
        fn snapshot_sink(&self, _: &Message) -> Result<Box<dyn SnapshotSink>, String> {
            Ok(Box::new(Sink { pairs: Vec::new(), stored: self.stored.clone() }))
        }
    }

    /// Keeps the pairs of a finished snapshot where the test reads them.
    struct Sink {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        stored: Arc<Mutex<Vec<Vec<Pair>>>>,
    }

    impl SnapshotSink for Sink {
        fn add(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
            self.pairs.push((key, value));
            Ok(())
        }
        fn finish(self: Box<Self>) -> Result<(), String> {
            self.stored.lock().unwrap().push(self.pairs);
            Ok(())
        }
    }

    #[derive(Default)]
    struct Events {
        removed: AtomicBool,
        snapshots: AtomicUsize,
        /// The pairs a snapshot sends.
        pairs: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
        /// The peers whose address refused a connection, each time.
        refused: Mutex<Vec<u64>>,
    }

    impl TransportEvents for Events {
        fn snapshot_sent(&self, _: u64, ok: bool) {
            if ok {
                self.snapshots.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn removed(&self) {
            self.removed.store(true, Ordering::Relaxed);
        }
        fn peer_refused(&self, id: u64) {
            self.refused.lock().unwrap().push(id);
        }
        fn snapshot_pairs(&self, _: &Message) -> Option<SnapshotPairs> {
            let pairs = self.pairs.lock().unwrap().clone();
            Some(Box::new(pairs.into_iter().map(Ok)))
        }
    }

    async fn listener(cluster: u64, me: u64) -> (String, Arc<Host>, mpsc::UnboundedReceiver<Message>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (got_tx, got) = mpsc::unbounded_channel();
        let host = Arc::new(Host {
            got: got_tx,
            removed: AtomicBool::new(false),
            removed_id: Default::default(),
            stored: Default::default(),
        });
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        std::mem::forget(stop_tx);
        tokio::spawn(serve(PeerListener { listener, tls: None }, cluster, me, host.clone(), stop));
        (addr, host, got)
    }

    fn heartbeat(from: u64, to: u64, term: u64) -> Message {
        Message { msg_type: MessageType::MsgHeartbeat.into(), from, to, term, ..Default::default() }
    }

    #[tokio::test]
    async fn messages_cross_in_batches_and_other_clusters_are_refused() {
        let (addr, host, mut got) = listener(7, 2).await;
        let events = Arc::new(Events::default());
        let net =
            PeerNet::new(7, 1, Dialer { bind_host: Some("127.0.0.1".into()), tls: None }, events.clone());
        net.set_peers(vec![Peer { id: 2, addr: addr.clone(), tls: false }]);
        let msgs: Vec<Message> = (0..100).map(|i| heartbeat(1, 2, i)).collect();
        // The first connection may still be being made: send until all arrive.
        let mut terms = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while net.active_since(2).is_none() {
            assert!(tokio::time::Instant::now() < deadline, "never connected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        net.send(msgs.clone());
        while terms.len() < 100 {
            match tokio::time::timeout_at(deadline, got.recv()).await {
                Ok(Some(m)) => terms.push(m.term),
                _ => panic!("got {} of 100", terms.len()),
            }
        }
        assert_eq!(terms, (0..100).collect::<Vec<_>>());

        // A read index that member 3 asked of member 1, passed on by raft as it came, arrives; a
        // heartbeat in another member's name closes the stream.
        let forwarded =
            Message { msg_type: MessageType::MsgReadIndex.into(), from: 3, to: 2, ..Default::default() };
        net.send(vec![forwarded, heartbeat(1, 2, 100)]);
        for want in [MessageType::MsgReadIndex, MessageType::MsgHeartbeat] {
            let m = tokio::time::timeout(Duration::from_secs(5), got.recv()).await.unwrap().unwrap();
            assert_eq!(m.msg_type(), want);
        }
        net.send(vec![heartbeat(3, 2, 101), heartbeat(1, 2, 102)]);
        assert!(tokio::time::timeout(Duration::from_millis(300), got.recv()).await.is_err());
        // One passed on from a removed member goes alone: the forwarding member is not told it
        // was removed, and what follows arrives.
        host.removed_id.store(3, Ordering::Relaxed);
        let from_removed =
            Message { msg_type: MessageType::MsgReadIndex.into(), from: 3, to: 2, ..Default::default() };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let after = loop {
            net.send(vec![from_removed.clone(), heartbeat(1, 2, 103)]);
            match tokio::time::timeout(Duration::from_millis(300), got.recv()).await {
                Ok(Some(m)) => break m,
                _ => assert!(tokio::time::Instant::now() < deadline, "nothing arrived after the reconnect"),
            }
        };
        assert_eq!((after.msg_type(), after.term), (MessageType::MsgHeartbeat, 103));
        assert!(!events.removed.load(Ordering::Relaxed), "the forwarding member was told it was removed");
        host.removed_id.store(0, Ordering::Relaxed);

        // A member of another cluster is cut off at its handshake.
        let other = PeerNet::new(8, 3, Dialer::default(), Arc::new(Events::default()));
        other.set_peers(vec![Peer { id: 2, addr: addr.clone(), tls: false }]);
        other.send(vec![heartbeat(3, 2, 1)]);
        assert!(tokio::time::timeout(Duration::from_millis(300), got.recv()).await.is_err());
        assert!(other.active_since(2).is_none());

        // A peer dropped from the set is no longer sent to.
        net.set_peers(Vec::new());
        assert!(net.active_since(2).is_none());
        net.send(vec![heartbeat(1, 2, 1000)]);
        assert!(tokio::time::timeout(Duration::from_millis(300), got.recv()).await.is_err());
        assert!(!events.removed.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_peer_whose_address_refuses_connections_is_reported_and_a_paused_one_is_not() {
        // Nothing listens on the first port; the second's listener never accepts, as a paused
        // process's would not (the kernel still completes the connections).
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let paused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let events = Arc::new(Events::default());
        let net = PeerNet::new(7, 1, Dialer::default(), events.clone());
        net.set_peers(vec![
            Peer { id: 2, addr: gone, tls: false },
            Peer { id: 3, addr: paused.local_addr().unwrap().to_string(), tls: false },
        ]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while events.refused.lock().unwrap().len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "refusals not reported");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(events.refused.lock().unwrap().iter().all(|id| *id == 2), "{:?}", events.refused);
    }

    #[tokio::test]
    async fn a_snapshot_that_arrives_damaged_or_cut_short_is_neither_stored_nor_handed_to_raft() {
        let (addr, host, mut got) = listener(7, 2).await;
        for cut in [false, true] {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(&handshake(SNAPSHOT_MAGIC, 7, 1, 2)).await.unwrap();
            let mut answer = [0u8; 1];
            s.read_exact(&mut answer).await.unwrap();
            assert_eq!(answer[0], ACCEPTED);
            let m =
                Message { msg_type: MessageType::MsgSnapshot.into(), from: 1, to: 2, ..Default::default() };
            let mut bytes = Vec::new();
            frame(&mut bytes, &m);
            let pair = [&1u32.to_be_bytes()[..], b"a", &1u32.to_be_bytes(), b"b"].concat();
            bytes.extend_from_slice(&pair);
            if !cut {
                // The end, one pair, and a checksum one off.
                bytes.extend_from_slice(&END_OF_PAIRS.to_be_bytes());
                bytes.extend_from_slice(&1u64.to_be_bytes());
                bytes.extend_from_slice(&crc32fast::hash(&pair).wrapping_add(1).to_be_bytes());
            }
            s.write_all(&bytes).await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.unwrap();
            assert!(rest.is_empty(), "acknowledged: {rest:?}");
        }
        assert!(tokio::time::timeout(Duration::from_millis(200), got.recv()).await.is_err());
        assert!(host.stored.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn snapshots_travel_apart_as_pairs_stored_before_raft_has_them_and_a_removed_member_is_told() {
        let (addr, host, mut got) = listener(7, 2).await;
        let events = Arc::new(Events::default());
        // Several chunks' worth, one pair larger than a chunk, and an empty key and value.
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
            (0..30_000u32).map(|i| (format!("k{i:08}").into_bytes(), vec![(i % 251) as u8; 100])).collect();
        pairs.push((b"l".to_vec(), vec![7; 3 * CHUNK + 17]));
        pairs.insert(0, (Vec::new(), Vec::new()));
        *events.pairs.lock().unwrap() = pairs.clone();
        let net = PeerNet::new(7, 1, Dialer::default(), events.clone());
        net.set_peers(vec![Peer { id: 2, addr: addr.clone(), tls: false }]);
        let mut m =
            Message { msg_type: MessageType::MsgSnapshot.into(), from: 1, to: 2, ..Default::default() };
        m.mut_snapshot().mut_metadata().index = 42;
        net.send(vec![m]);
        let arrived = tokio::time::timeout(Duration::from_secs(5), got.recv()).await.unwrap().unwrap();
        assert_eq!(arrived.get_snapshot().get_metadata().index, 42);
        assert!(arrived.get_snapshot().data.is_empty());
        // Stored before raft got the message.
        assert_eq!(*host.stored.lock().unwrap(), vec![pairs]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while events.snapshots.load(Ordering::Relaxed) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the snapshot was never acknowledged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Once removed, the member's stream is refused and it learns why.
        host.removed.store(true, Ordering::Relaxed);
        net.send(vec![heartbeat(1, 2, 1)]);
        while !events.removed.load(Ordering::Relaxed) {
            assert!(tokio::time::Instant::now() < deadline, "never told it was removed");
            net.send(vec![heartbeat(1, 2, 1)]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(query_members(&Dialer::default(), &addr, false).await.unwrap(), b"members".to_vec());
        // Forwarded requests pass the same checks as streams.
        let limit = Duration::from_secs(5);
        let removed = forward(&Dialer::default(), (&addr, false), (7, 1, 2), b"promote", limit).await;
        assert_eq!(removed.unwrap_err(), REMOVED_TEXT);
        host.removed.store(false, Ordering::Relaxed);
        let answer = forward(&Dialer::default(), (&addr, false), (7, 1, 2), b"promote", limit).await;
        assert_eq!(answer.unwrap(), b"answer to promote".to_vec());
        let refused = forward(&Dialer::default(), (&addr, false), (8, 1, 2), b"promote", limit).await;
        assert_eq!(refused.unwrap_err(), "cluster ID mismatch");
    }
}
