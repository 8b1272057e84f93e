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
    /// The connection's task has yielded before its next write (`hold`).
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

    /// Before the first write of a burst, the connection's task yields once: the requests whose
    /// answers the raft thread completed together run first, and their responses leave in one
    /// write rather than one each (tokio runs a task a request woke right after it, so the
    /// connection otherwise flushed after every response). True when the write must wait.
    fn hold(&mut self, cx: &mut Context<'_>) -> bool {
        self.held = !self.held;
        if self.held {
            cx.waker().wake_by_ref();
        }
        self.held
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
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
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
