//! A client connection as the gRPC server sees it: plain TCP or TLS, with who is on the other end
//! (the address, and for a TLS client with a certificate, its CN — etcd's user under
//! --client-cert-auth).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::node::rpc::authority::AuthorityFix;

pub struct ClientStream {
    io: Io,
    info: ClientConn,
    /// The connection's task yielded before the writes it has not flushed yet (`hold`).
    held: bool,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What a request knows of its connection (a request extension, through tonic's Connected).
#[derive(Debug, Clone, Default)]
pub struct ClientConn {
    pub remote: Option<SocketAddr>,
    /// The CN of the client's verified certificate, if it sent one.
    pub common_name: Option<String>,
}

impl ClientStream {
    pub fn plain(stream: TcpStream, remote: SocketAddr) -> Self {
        Self {
            io: Io::Plain(stream),
            info: ClientConn { remote: Some(remote), common_name: None },
            held: false,
        }
    }

    pub fn tls(stream: tokio_rustls::server::TlsStream<TcpStream>, remote: SocketAddr) -> Self {
        let common_name = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|leaf| crate::node::tls::common_name(leaf));
        Self {
            io: Io::Tls(Box::new(stream)),
            info: ClientConn { remote: Some(remote), common_name },
            held: false,
        }
    }

    /// Before the first write since the last completed flush, the connection's task yields once:
    /// the requests whose answers the raft thread completed together run first, and their
    /// responses leave in one write rather than one each (tokio runs a task a request woke right
    /// after it, so the connection otherwise flushed after every response). True when the write
    /// must wait. Once held, writes go through until a flush completes: a socket that is full
    /// keeps its writer waiting for room, never waking itself.
    fn hold(&mut self, cx: &mut Context<'_>) -> bool {
        if self.held {
            return false;
        }
        self.held = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.hold(cx) {
            return Poll::Pending;
        }
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        if flushed.is_ready() {
            self.held = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.hold(cx) {
            return Poll::Pending;
        }
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl tonic::transport::server::Connected for AuthorityFix<ClientStream> {
    type ConnectInfo = ClientConn;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner().info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The first write after a flush waits once (the task wakes itself); with the peer not reading,
    /// once the socket is full the writer waits for room and is not woken again and again (two
    /// writes in one poll each flipping the hold once woke it forever: a task spinning a core).
    #[tokio::test]
    async fn a_write_yields_once_per_flush_and_a_full_socket_leaves_the_writer_waiting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _not_reading = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, remote) = listener.accept().await.unwrap();
        let mut stream = ClientStream::plain(server, remote);
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let chunk = vec![0u8; 64 * 1024];
        let mut write = |stream: &mut ClientStream| {
            Pin::new(stream).poll_write_vectored(&mut cx, &[io::IoSlice::new(&chunk)]).is_ready()
        };
        assert!(!write(&mut stream), "the first write waits once");
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
        assert!(write(&mut stream), "then goes through");
        assert!(Pin::new(&mut stream).poll_flush(&mut Context::from_waker(&waker)).is_ready());
        assert!(!write(&mut stream), "and the first after a flush waits once again");
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
        // Two writes a poll, as h2 makes them, until the socket is full and then some.
        let mut full_at = None;
        for poll in 0..2_000 {
            let wrote = (0..2).map(|_| write(&mut stream)).filter(|w| *w).count();
            if wrote == 0 && full_at.is_none() {
                full_at = Some((poll, wakes.0.load(Ordering::Relaxed)));
            }
        }
        let (poll, at) = full_at.expect("the socket filled up");
        assert!(poll < 1_000, "full after {poll} polls");
        assert_eq!(wakes.0.load(Ordering::Relaxed), at, "a full socket does not wake its writer");
    }
}
