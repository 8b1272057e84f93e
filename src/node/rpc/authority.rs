//! A connection wrapper that lets etcdctl 3.4 talk to the node when its endpoint has a scheme.
//!
//! etcdctl 3.4's per-endpoint commands (endpoint status, endpoint hashkv, defrag, move-leader) dial
//! `passthrough:///http://host:port`, and grpc-go 1.26 sends that whole string as the HTTP/2
//! `:authority`. etcd's Go server ignores it; the h2 crate refuses the request as malformed. So the
//! bytes a client sends are read frame by frame, every header block is decoded (tracking the
//! client's HPACK table), `:authority` loses a leading `http://` or `https://`, and the block is
//! encoded again for the server (tracking the server's table). Everything else passes unchanged, and
//! a connection that does not start with the HTTP/2 preface (HTTP/1.1: /health, /metrics) is not
//! touched at all. A client's authority is the same for a whole connection, so the first header
//! block decides: when it has no scheme (every other client), the connection is passed through from
//! then on, at no further cost.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The server's SETTINGS_MAX_FRAME_SIZE (h2's default, which tonic keeps): longer frames are refused,
/// and re-encoded blocks are cut to fit.
const MAX_FRAME: usize = 16_384;
/// A header block, encoded or decoded, may not exceed this (gRPC metadata is far smaller).
const MAX_BLOCK: usize = 1 << 20;
/// The HPACK table size the server allows (SETTINGS_HEADER_TABLE_SIZE, h2's default).
const TABLE_SIZE: usize = 4096;

enum Mode {
    /// Not yet seen enough bytes to tell HTTP/2 from HTTP/1.
    Detect,
    Http2,
    Passthrough,
}

/// A header block being collected from HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as they came, for a connection that needs no rewriting.
    frames: Vec<u8>,
}

pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    raw: BytesMut,
    ready: BytesMut,
    eof: bool,
    block: Option<Block>,
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    /// Set by a first header block whose authority had a scheme: every block is re-encoded.
    rewriting: bool,
}

impl<S> AuthorityFix<S> {
    /// The wrapped connection.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn new(inner: S) -> Self {
        AuthorityFix {
            inner,
            mode: Mode::Detect,
            raw: BytesMut::new(),
            ready: BytesMut::new(),
            eof: false,
            block: None,
            decoder: {
                let mut d = loona_hpack::Decoder::new();
                d.set_max_allowed_table_size(TABLE_SIZE);
                d
            },
            encoder: loona_hpack::Encoder::new(),
            rewriting: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Moves what can be passed on from `raw` to `ready`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.mode {
                Mode::Detect => {
                    let n = self.raw.len().min(PREFACE.len());
                    if self.raw[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                    } else if n == PREFACE.len() {
                        self.ready.extend_from_slice(&self.raw.split_to(n));
                        self.mode = Mode::Http2;
                    } else {
                        return Ok(());
                    }
                }
                Mode::Passthrough => {
                    let all = self.raw.split();
                    self.ready.extend_from_slice(&all);
                    return Ok(());
                }
                Mode::Http2 => {
                    if self.raw.len() < 9 {
                        return Ok(());
                    }
                    let len = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
                    if len > MAX_FRAME {
                        return Err(protocol("frame larger than SETTINGS_MAX_FRAME_SIZE"));
                    }
                    if self.raw.len() < 9 + len {
                        return Ok(());
                    }
                    let frame = self.raw.split_to(9 + len);
                    self.frame(&frame)?;
                }
            }
        }
    }

    fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let (kind, flags) = (frame[3], frame[4]);
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let mut payload = &frame[9..];
        match kind {
            HEADERS => {
                if self.block.is_some() {
                    return Err(protocol("HEADERS inside a header block"));
                }
                if flags & PADDED != 0 {
                    let pad = *payload.first().ok_or_else(|| protocol("padding"))? as usize;
                    payload = payload
                        .get(1..payload.len().checked_sub(pad).ok_or_else(|| protocol("padding"))?)
                        .ok_or_else(|| protocol("padding"))?;
                }
                let priority = if flags & PRIORITY != 0 {
                    let p: [u8; 5] = payload
                        .get(..5)
                        .and_then(|p| p.try_into().ok())
                        .ok_or_else(|| protocol("priority"))?;
                    payload = &payload[5..];
                    Some(p)
                } else {
                    None
                };
                self.block = Some(Block {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    priority,
                    fragment: payload.to_vec(),
                    frames: frame.to_vec(),
                });
            }
            CONTINUATION => match self.block.as_mut() {
                Some(b) if b.stream == stream => {
                    if b.fragment.len() + payload.len() > MAX_BLOCK {
                        return Err(protocol("header block too large"));
                    }
                    b.fragment.extend_from_slice(payload);
                    b.frames.extend_from_slice(frame);
                }
                _ => return Err(protocol("CONTINUATION outside a header block")),
            },
            _ => {
                if self.block.is_some() {
                    return Err(protocol("a frame inside a header block"));
                }
                self.ready.extend_from_slice(frame);
                return Ok(());
            }
        }
        if flags & END_HEADERS != 0 {
            if let Some(block) = self.block.take() {
                self.emit(block)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, block: Block) -> io::Result<()> {
        // Decoded with a bound: a small block can refer to a large table entry many times.
        let mut headers = Vec::new();
        let mut decoded = 0usize;
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| {
                decoded += name.len() + value.len() + 32;
                if decoded <= MAX_BLOCK {
                    headers.push((name.into_owned(), value.into_owned()));
                }
            })
            .map_err(|e| protocol(&format!("header block: {e:?}")))?;
        if decoded > MAX_BLOCK {
            return Err(protocol("decoded header list too large"));
        }
        let mut rewrote = false;
        for (name, value) in headers.iter_mut() {
            if name.as_slice() == b":authority" {
                for scheme in [&b"http://"[..], b"https://"] {
                    if value.starts_with(scheme) {
                        value.drain(..scheme.len());
                        rewrote = true;
                    }
                }
            }
        }
        if !self.rewriting && !rewrote {
            // The first block is fine as it is: so is the connection.
            self.ready.extend_from_slice(&block.frames);
            self.mode = Mode::Passthrough;
            return Ok(());
        }
        self.rewriting = true;
        let mut encoded = Vec::new();
        if let Some(p) = block.priority {
            encoded.extend_from_slice(&p);
        }
        self.encoder.encode_into(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), &mut encoded)?;
        let mut first = true;
        let mut rest = encoded.as_slice();
        loop {
            let take = rest.len().min(MAX_FRAME);
            let (piece, after) = rest.split_at(take);
            let mut flags = if after.is_empty() { END_HEADERS } else { 0 };
            let kind = if first {
                if block.end_stream {
                    flags |= END_STREAM;
                }
                if block.priority.is_some() {
                    flags |= PRIORITY;
                }
                HEADERS
            } else {
                CONTINUATION
            };
            let len = (piece.len() as u32).to_be_bytes();
            self.ready.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
            self.ready.extend_from_slice(&block.stream.to_be_bytes());
            self.ready.extend_from_slice(piece);
            first = false;
            rest = after;
            if rest.is_empty() {
                return Ok(());
            }
        }
    }
}

fn protocol(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("HTTP/2: {why}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) && this.raw.is_empty() {
                // Nothing to look at any more: read straight into the caller's buffer.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.eof {
                // Whatever is left is an incomplete frame: hand it on as it is, the server decides.
                let rest = this.raw.split();
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.ready.extend_from_slice(&rest);
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        this.eof = true;
                    } else {
                        this.raw.extend_from_slice(read.filled());
                        this.process()?;
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    async fn through(input: Vec<u8>) -> Vec<u8> {
        let mut fixed = AuthorityFix::new(std::io::Cursor::new(input));
        let mut out = Vec::new();
        fixed.read_to_end(&mut out).await.unwrap();
        out
    }

    type Headers = Vec<(Vec<u8>, Vec<u8>)>;

    /// Splits what came out into frames, decoding header blocks as the server would.
    fn server_view(bytes: &[u8]) -> Vec<(u8, u32, Headers)> {
        assert!(bytes.starts_with(PREFACE));
        let mut rest = &bytes[PREFACE.len()..];
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        let mut out = Vec::new();
        let mut block = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags) = (rest[3], rest[4]);
            let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            block.extend_from_slice(&rest[9..9 + len]);
            if kind == HEADERS || kind == CONTINUATION {
                if flags & END_HEADERS != 0 {
                    out.push((HEADERS, stream, decoder.decode(&block).unwrap()));
                    block.clear();
                }
            } else {
                out.push((kind, stream, vec![(b"payload".to_vec(), std::mem::take(&mut block))]));
            }
            rest = &rest[9 + len..];
        }
        out
    }

    fn request(authority: &str, path: &str) -> Headers {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    }

    #[tokio::test]
    async fn a_scheme_in_the_authority_is_dropped_across_requests_sharing_the_hpack_table() {
        // The client's encoder indexes what it sends, so the second request refers to table entries.
        let mut client = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[]));
        let first = request("http://127.0.0.1:2379", "/etcdserverpb.Maintenance/Status");
        let block = client.encode(first.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        // Sent as HEADERS + CONTINUATION, padded, to cover those paths.
        let (a, b) = block.split_at(block.len() / 2);
        let mut padded = vec![3u8];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0, 0]);
        input.extend(frame(HEADERS, PADDED, 1, &padded));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"grpc-body"));
        let second = request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range");
        let block = client.encode(second.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &block));

        let seen = server_view(&through(input).await);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1], (HEADERS, 1, request("127.0.0.1:2379", "/etcdserverpb.Maintenance/Status")));
        assert_eq!(seen[2].0, 0x0, "DATA passes unchanged");
        assert_eq!(seen[2].2[0].1, b"grpc-body");
        assert_eq!(seen[3], (HEADERS, 3, request("127.0.0.1:2379", "/etcdserverpb.KV/Range")));
    }

    #[tokio::test]
    async fn a_connection_without_a_scheme_passes_byte_for_byte() {
        let mut client = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        for (stream, path) in [(1, "/a"), (3, "/b")] {
            let req = request("127.0.0.1:2379", path);
            let block = client.encode(req.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
            input.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &block));
        }
        assert_eq!(through(input.clone()).await, input);
    }

    #[tokio::test]
    async fn oversized_frames_and_header_bombs_close_the_connection() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x0, 0, 1, &vec![0; MAX_FRAME + 1]));
        let mut fixed = AuthorityFix::new(std::io::Cursor::new(input));
        let mut out = Vec::new();
        assert!(fixed.read_to_end(&mut out).await.is_err());

        // One 4000-byte literal added to the table, then a block of 4000 references to it.
        let mut client = loona_hpack::Encoder::new();
        let big = vec![b'x'; 4000];
        let first = client.encode([(&b"x-big"[..], big.as_slice())]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        let bomb: Vec<u8> = std::iter::repeat_n(0xbe, 4000).collect(); // indexed: dynamic entry 62
        input.extend(frame(HEADERS, END_HEADERS, 3, &bomb));
        let mut fixed = AuthorityFix::new(std::io::Cursor::new(input));
        fixed.rewriting = true;
        let mut out = Vec::new();
        let err = fixed.read_to_end(&mut out).await.expect_err("refused");
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[tokio::test]
    async fn http1_passes_untouched() {
        let req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(through(req.clone()).await, req);
    }
}
