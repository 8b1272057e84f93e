//! The peer transport: raft messages between members over TCP, on --listen-peer-urls.
//!
//! Each member keeps one outgoing stream per peer. A stream starts with a handshake naming the
//! cluster and both members; then length-prefixed raft messages follow, as many per write as are
//! queued (batched, never one round trip per message). The receiving side checks the handshake
//! (another cluster's member is refused, as etcd refuses it with "cluster ID mismatch") and hands
//! every message to the raft driver. Raft tolerates lost messages, so a full queue or a broken
//! connection drops messages instead of blocking the driver; the stream reconnects on its own.
//!
//! Outgoing connections bind to the host of the member's own advertised peer URL, so members on
//! 127.0.0.1, 127.0.0.2 and 127.0.0.3 can be told apart (and cut apart) by fault tools.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost_011::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The first bytes of every peer stream.
const MAGIC: &[u8; 4] = b"EDKP";
const VERSION: u8 = 1;
const HANDSHAKE_LEN: usize = 4 + 1 + 8 + 8 + 8;
/// Messages queued for one peer before new ones are dropped (etcd drops them too when a peer's
/// buffer is full).
const QUEUE: usize = 4096;
/// The most bytes written in one go.
const BATCH_BYTES: usize = 1 << 20;
/// The largest message accepted (a raft snapshot travels as one).
const MAX_FRAME: usize = 512 << 20;
const RECONNECT: Duration = Duration::from_millis(100);

/// Where raft messages go: a trait, so a test can drive members without sockets.
pub trait Transport: Send + Sync {
    /// Queues messages for their recipients; never blocks.
    fn send(&self, messages: Vec<Message>);
}

/// A peer: its member ID and the address its peer URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: u64,
    pub addr: String,
}

/// The TCP transport.
pub struct PeerNet {
    queues: HashMap<u64, mpsc::Sender<Message>>,
}

impl PeerNet {
    /// Starts a sender task per peer on the current tokio runtime. `bind_host` is the host
    /// outgoing connections are made from.
    pub fn start(cluster_id: u64, from: u64, bind_host: Option<String>, peers: &[Peer]) -> Arc<PeerNet> {
        let mut queues = HashMap::new();
        for peer in peers.iter().filter(|p| p.id != from) {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.insert(peer.id, tx);
            let hello = handshake(cluster_id, from, peer.id);
            tokio::spawn(sender(peer.addr.clone(), bind_host.clone(), hello, rx));
        }
        Arc::new(PeerNet { queues })
    }
}

impl Transport for PeerNet {
    fn send(&self, messages: Vec<Message>) {
        for m in messages {
            if let Some(q) = self.queues.get(&m.to) {
                // Full or closed: raft sends again.
                let _ = q.try_send(m);
            }
        }
    }
}

fn handshake(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(HANDSHAKE_LEN);
    b.extend_from_slice(MAGIC);
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
    let stream = tokio::time::timeout(Duration::from_secs(1), socket.connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One peer's outgoing stream: connects, greets, then writes whatever is queued, batched.
async fn sender(addr: String, bind_host: Option<String>, hello: Vec<u8>, mut rx: mpsc::Receiver<Message>) {
    let mut buf = Vec::new();
    loop {
        let mut stream = match connect(&addr, bind_host.as_deref()).await {
            Ok(s) => s,
            Err(_) => {
                // Messages queued for an unreachable peer are stale by the time it is back.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        if stream.write_all(&hello).await.is_err() {
            tokio::time::sleep(RECONNECT).await;
            continue;
        }
        loop {
            let Some(first) = rx.recv().await else { return };
            buf.clear();
            frame(&mut buf, &first);
            while buf.len() < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(m) => frame(&mut buf, &m),
                    Err(_) => break,
                }
            }
            if stream.write_all(&buf).await.is_err() {
                break;
            }
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

fn frame(buf: &mut Vec<u8>, m: &Message) {
    let len = m.encoded_len();
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = m.encode(buf);
}

/// Serves the peer listener: every accepted stream's messages go to `deliver`.
pub async fn serve(
    listener: TcpListener,
    cluster_id: u64,
    me: u64,
    deliver: Arc<dyn Fn(Message) + Send + Sync>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, remote)) = accepted else {
            tokio::time::sleep(RECONNECT).await;
            continue;
        };
        let deliver = deliver.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = receive(stream, cluster_id, me, deliver) => {
                    if let Err(why) = r {
                        if !why.is_empty() {
                            eprintln!("etcdeck: peer stream from {remote}: {why}");
                        }
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

/// Reads one peer stream. Err("") is a plain disconnect.
async fn receive(
    mut stream: TcpStream,
    cluster_id: u64,
    me: u64,
    deliver: Arc<dyn Fn(Message) + Send + Sync>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut hello = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut hello).await.map_err(|_| String::new())?;
    if &hello[..4] != MAGIC || hello[4] != VERSION {
        return Err("not an etcdeck peer (bad handshake)".into());
    }
    let word = |i: usize| u64::from_be_bytes(hello[i..i + 8].try_into().unwrap_or([0; 8]));
    let (their_cluster, from, to) = (word(5), word(13), word(21));
    if their_cluster != cluster_id {
        return Err(format!("request cluster ID mismatch (got {their_cluster:x} want {cluster_id:x})"));
    }
    if to != me {
        return Err(format!("message for member {to:x} reached member {me:x}"));
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
        if m.from != from || m.to != me {
            return Err(format!("message {:x}→{:x} on the stream {from:x}→{me:x}", m.from, m.to));
        }
        deliver(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[tokio::test]
    async fn messages_cross_in_batches_and_other_clusters_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (got_tx, mut got) = mpsc::unbounded_channel();
        let deliver: Arc<dyn Fn(Message) + Send + Sync> = Arc::new(move |m| {
            let _ = got_tx.send(m);
        });
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(serve(listener, 7, 2, deliver, stop));

        let net = PeerNet::start(7, 1, Some("127.0.0.1".into()), &[Peer { id: 2, addr: addr.clone() }]);
        let msgs: Vec<Message> = (0..100)
            .map(|i| Message {
                msg_type: MessageType::MsgHeartbeat.into(),
                from: 1,
                to: 2,
                term: i,
                ..Default::default()
            })
            .collect();
        // The first connection may still be being made: send until all arrive.
        let mut terms = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        net.send(msgs.clone());
        while terms.len() < 100 {
            match tokio::time::timeout_at(deadline, got.recv()).await {
                Ok(Some(m)) => terms.push(m.term),
                _ => panic!("got {} of 100", terms.len()),
            }
        }
        assert_eq!(terms, (0..100).collect::<Vec<_>>());

        // A member of another cluster is cut off at its handshake.
        let other = PeerNet::start(8, 3, None, &[Peer { id: 2, addr }]);
        other.send(vec![Message { from: 3, to: 2, ..Default::default() }]);
        assert!(tokio::time::timeout(Duration::from_millis(300), got.recv()).await.is_err());
    }
}
