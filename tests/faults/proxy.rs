//! A fault-injecting TCP proxy on the peer links.
//!
//! Member `j` advertises its proxy's address as its peer URL and listens for peers on another port.
//! Members bind their outgoing peer connections to the host of their own advertised URL
//! (127.0.0.1, .2, .3), so the proxy tells from a connection's source address which member sends,
//! and every directed link `i -> j` can be cut, slowed or made lossy on its own. Cutting a link also
//! closes the connections already open on it: the messages in flight are lost, as on a real network.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Link {
    Up,
    /// Nothing passes; open connections are closed.
    Down,
    /// Every chunk waits this long before it is passed on.
    Delay(Duration),
    /// Each chunk closes its connection with this probability (per thousand), losing what was
    /// in flight.
    Lossy(u32),
}

#[derive(Default)]
struct Links {
    state: HashMap<(usize, usize), Link>,
    /// Bumped when a link goes down, so connections opened before notice and close.
    generation: HashMap<(usize, usize), u64>,
    seed: u64,
}

/// The proxies of one cluster, one per member; dropped with the runtime that runs them.
#[derive(Clone)]
pub struct Net {
    links: Arc<Mutex<Links>>,
    hosts: Vec<IpAddr>,
}

impl Net {
    pub fn new(hosts: Vec<IpAddr>, seed: u64) -> Self {
        Net { links: Arc::new(Mutex::new(Links { seed, ..Default::default() })), hosts }
    }

    pub fn set(&self, from: usize, to: usize, link: Link) {
        let mut l = self.links.lock().unwrap();
        l.state.insert((from, to), link);
        if link == Link::Down {
            *l.generation.entry((from, to)).or_default() += 1;
        }
    }

    /// Sets every link between members, both ways.
    pub fn set_all(&self, link: Link) {
        let n = self.hosts.len();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    self.set(i, j, link);
                }
            }
        }
    }

    /// Cuts `group` off from the other members, both ways.
    pub fn isolate(&self, group: &[usize]) {
        let n = self.hosts.len();
        for i in 0..n {
            for j in 0..n {
                if group.contains(&i) != group.contains(&j) {
                    self.set(i, j, Link::Down);
                }
            }
        }
    }

    pub fn heal(&self) {
        self.set_all(Link::Up);
    }

    fn link(&self, from: usize, to: usize) -> (Link, u64) {
        let l = self.links.lock().unwrap();
        (
            l.state.get(&(from, to)).copied().unwrap_or(Link::Up),
            l.generation.get(&(from, to)).copied().unwrap_or(0),
        )
    }

    fn coin(&self, per_mille: u32) -> bool {
        let mut l = self.links.lock().unwrap();
        l.seed = super::splitmix(l.seed);
        (l.seed % 1000) < u64::from(per_mille)
    }

    /// Serves member `to`'s proxy: connections to `listener` are passed to `target`.
    pub async fn serve(self, to: usize, listener: TcpListener, target: SocketAddr) {
        loop {
            let Ok((conn, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Some(from) = self.hosts.iter().position(|h| *h == peer.ip()) else {
                continue;
            };
            let net = self.clone();
            tokio::spawn(async move {
                let (link, generation) = net.link(from, to);
                if link == Link::Down {
                    return;
                }
                let Ok(Ok(upstream)) =
                    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await
                else {
                    return;
                };
                let _ = conn.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (cr, cw) = conn.into_split();
                let (ur, uw) = upstream.into_split();
                // Data from the sender follows link from -> to; the receiver's answers (handshake
                // status, snapshot acknowledgements) follow to -> from.
                let forward = pump(net.clone(), (from, to), generation, cr, uw);
                let back_generation = net.link(to, from).1;
                let backward = pump(net.clone(), (to, from), back_generation, ur, cw);
                tokio::select! {
                    _ = forward => {},
                    _ = backward => {},
                }
            });
        }
    }
}

async fn pump(
    net: Net,
    link: (usize, usize),
    generation: u64,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_millis(100), from.read(&mut buf)).await;
        let (state, now) = net.link(link.0, link.1);
        if state == Link::Down || now != generation {
            return;
        }
        let n = match read {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        match state {
            Link::Delay(d) => tokio::time::sleep(d).await,
            Link::Lossy(p) if net.coin(p) => return,
            _ => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
