//! Raft snapshots on connections of their own: the message without data, then the store's pairs,
//! encoded and decoded on blocking threads as they travel, then their count and checksum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost_011::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{
    frame, greet, Dialer, Pair, PeerHost, PeerStream, SnapshotPairs, ACCEPTED, CHUNK, CHUNKS_IN_FLIGHT,
    END_OF_PAIRS, MAX_FRAME, MAX_PAIR, MAX_SNAPSHOT, WRITE_TIMEOUT, WRONG_MEMBER,
};

/// Sends one snapshot message on a connection of its own: the message without data, the pairs,
/// their count and checksum; then waits for the receiver's acknowledgement.
pub(super) async fn send_snapshot(
    dialer: &Dialer,
    addr: &str,
    secure: bool,
    hello: &[u8],
    mut m: Message,
    pairs: Option<SnapshotPairs>,
) -> Result<(), String> {
    let pairs = pairs.ok_or("the snapshot was withdrawn before it went")?;
    m.mut_snapshot().take_data();
    let started = std::time::Instant::now();
    let index = m.get_snapshot().get_metadata().index;
    let mut stream = dialer.dial(addr, secure).await?;
    greet(&mut stream, hello).await?;
    let mut head = Vec::new();
    frame(&mut head, &m);
    stream.write_all(&head).await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    // Written chunks go back to be filled again: a few buffers serve the whole transfer.
    let (written, to_fill) = std::sync::mpsc::channel();
    tokio::task::spawn_blocking(move || encode_pairs(pairs, &tx, &to_fill));
    let mut sent = 0u64;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&chunk))
            .await
            .map_err(|_| "the receiver took no data for 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        sent += chunk.len() as u64;
        let _ = written.send(chunk);
    }
    let mut ack = [0u8; 1];
    // The receiver makes it durable before it answers: wait as long as the transfer took and more.
    tokio::time::timeout(Duration::from_secs(60) + Duration::from_millis(sent / 1000), async {
        stream.read_exact(&mut ack).await
    })
    .await
    .map_err(|_| "the receiver did not acknowledge the snapshot".to_string())?
    .map_err(|e| e.to_string())?;
    if ack[0] != ACCEPTED {
        return Err("the receiver refused the snapshot".into());
    }
    eprintln!(
        "etcdeck node: sent the raft snapshot at raft index {index} to {:x}: {sent} bytes in {} ms",
        m.to,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Encodes pairs as (u32 length, key, u32 length, value), then the end mark, their count (u64) and
/// the CRC-32 of all that came before it, into chunks for the sending task, reusing the chunks it
/// wrote. Stops when the task is gone.
fn encode_pairs(
    pairs: SnapshotPairs,
    tx: &mpsc::Sender<Result<Vec<u8>, String>>,
    written: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut crc = crc32fast::Hasher::new();
    let mut count = 0u64;
    let fresh = || Vec::with_capacity(CHUNK + 64 * 1024);
    let mut buf = fresh();
    for pair in pairs {
        let (k, v) = match pair {
            Ok(pair) => pair,
            Err(why) => {
                let _ = tx.blocking_send(Err(format!("reading the store: {why}")));
                return;
            }
        };
        let at = buf.len();
        buf.extend_from_slice(&(k.len() as u32).to_be_bytes());
        buf.extend_from_slice(&k);
        buf.extend_from_slice(&(v.len() as u32).to_be_bytes());
        buf.extend_from_slice(&v);
        crc.update(&buf[at..]);
        count += 1;
        if buf.len() >= CHUNK {
            let mut next = written.try_recv().unwrap_or_else(|_| fresh());
            next.clear();
            if tx.blocking_send(Ok(std::mem::replace(&mut buf, next))).is_err() {
                return;
            }
        }
    }
    buf.extend_from_slice(&END_OF_PAIRS.to_be_bytes());
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&crc.finalize().to_be_bytes());
    let _ = tx.blocking_send(Ok(buf));
}

pub(super) async fn receive_snapshot(
    stream: PeerStream,
    from: u64,
    me: u64,
    host: Arc<dyn PeerHost>,
) -> Result<(), String> {
    let mut stream = tokio::io::BufReader::with_capacity(256 << 10, stream);
    let cut = |e: std::io::Error| format!("snapshot from {from:x} cut short: {e}");
    let n = stream.read_u32().await.map_err(cut)? as usize;
    if n > MAX_FRAME {
        return Err(format!("a {n}-byte snapshot header from {from:x} is over the limit"));
    }
    let mut head = vec![0u8; n];
    stream.read_exact(&mut head).await.map_err(cut)?;
    let m = Message::decode(head.as_slice()).map_err(|e| format!("bad snapshot from {from:x}: {e}"))?;
    if m.from != from || m.to != me || m.msg_type() != MessageType::MsgSnapshot {
        return Err(format!("a snapshot stream from {from:x} carried another message"));
    }
    let started = std::time::Instant::now();
    let index = m.get_snapshot().get_metadata().index;
    eprintln!("etcdeck node: receiving the raft snapshot at raft index {index} from {from:x}");
    let sink = match host.snapshot_sink(&m) {
        Ok(sink) => sink,
        Err(why) => {
            let _ = stream.get_mut().write_all(&[WRONG_MEMBER]).await;
            return Err(format!("snapshot from {from:x} refused: {why}"));
        }
    };
    // The store takes the pairs on a blocking thread, a chunk at a time; the last message says
    // whether all arrived whole (then it finishes) or not (then the sink is dropped).
    let (tx, mut rx) = mpsc::channel::<Option<Vec<Pair>>>(CHUNKS_IN_FLIGHT);
    let store = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Some(pairs) => {
                    for (k, v) in pairs {
                        sink.add(k, v)?;
                    }
                }
                None => return sink.finish(),
            }
        }
        Err("cut short".to_string())
    });
    // A sender that stops sending without closing (cut off on the way) is given up on, so that
    // the next transfer can begin.
    let progress = AtomicU64::new(0);
    let read = tokio::select! {
        r = read_pairs(&mut stream, &tx, &progress) => r,
        () = stalled(&progress) => Err(format!("no data for {} s", STALL.as_secs())),
    };
    let read = read.map_err(|e| format!("snapshot from {from:x}: {e}"));
    let received = read.as_ref().ok().copied();
    if read.is_ok() {
        let _ = tx.send(None).await;
    }
    drop(tx);
    let stored = store.await.map_err(|e| e.to_string()).and_then(|r| r);
    read?;
    stored.map_err(|e| format!("snapshot from {from:x} not stored: {e}"))?;
    if let Some((pairs, bytes)) = received {
        eprintln!(
            "etcdeck node: received and staged the raft snapshot at raft index {index} from {from:x}: \
             {pairs} pairs, {bytes} bytes in {} ms",
            started.elapsed().as_millis()
        );
    }
    host.deliver(m);
    // Raft takes it from here; the sender's raft learns the outcome from our answer to it.
    let _ = stream.get_mut().write_all(&[ACCEPTED]).await;
    Ok(())
}

/// How long a snapshot may go without a pair arriving.
const STALL: Duration = Duration::from_secs(30);

/// Returns once `progress` stood still for STALL.
async fn stalled(progress: &AtomicU64) {
    loop {
        let before = progress.load(Ordering::Relaxed);
        tokio::time::sleep(STALL).await;
        if progress.load(Ordering::Relaxed) == before {
            return;
        }
    }
}

/// Reads a snapshot's pairs up to the end mark and checks their count and checksum, handing them on
/// a chunk at a time; how many pairs and bytes came. Stops early when the store refused one (its
/// error says why).
async fn read_pairs<R: AsyncRead + Unpin>(
    stream: &mut R,
    tx: &mpsc::Sender<Option<Vec<Pair>>>,
    progress: &AtomicU64,
) -> Result<(u64, u64), String> {
    let cut = |e: std::io::Error| format!("cut short: {e}");
    let mut crc = crc32fast::Hasher::new();
    let (mut count, mut total) = (0u64, 0u64);
    let (mut chunk, mut chunk_bytes) = (Vec::new(), 0usize);
    loop {
        let klen = stream.read_u32().await.map_err(cut)?;
        if klen == END_OF_PAIRS {
            break;
        }
        let mut pair = [Vec::new(), Vec::new()];
        for (i, part) in pair.iter_mut().enumerate() {
            let len = if i == 0 { klen } else { stream.read_u32().await.map_err(cut)? } as usize;
            if len > MAX_PAIR {
                return Err(format!("a {len}-byte key or value is over the {MAX_PAIR}-byte limit"));
            }
            if len <= CHUNK {
                part.resize(len, 0);
                stream.read_exact(part).await.map_err(cut)?;
            } else {
                // Grown as the bytes come: a length a damaged stream made up allocates nothing.
                (&mut *stream).take(len as u64).read_to_end(part).await.map_err(cut)?;
                if part.len() != len {
                    return Err(format!("cut short: {} of a {len}-byte value", part.len()));
                }
            }
            crc.update(&(len as u32).to_be_bytes());
            crc.update(part);
            total += 4 + len as u64;
        }
        if total > MAX_SNAPSHOT {
            return Err(format!("over the {MAX_SNAPSHOT}-byte limit"));
        }
        count += 1;
        progress.store(count, Ordering::Relaxed);
        chunk_bytes += pair[0].len() + pair[1].len();
        let [k, v] = pair;
        chunk.push((k, v));
        if chunk_bytes >= CHUNK {
            chunk_bytes = 0;
            if tx.send(Some(std::mem::take(&mut chunk))).await.is_err() {
                return Ok((count, total));
            }
        }
    }
    let sent_count = stream.read_u64().await.map_err(cut)?;
    let sent_crc = stream.read_u32().await.map_err(cut)?;
    if (sent_count, sent_crc) != (count, crc.finalize()) {
        return Err(format!(
            "arrived damaged: {count} pairs where {sent_count} were sent, or their checksum differs"
        ));
    }
    if !chunk.is_empty() {
        let _ = tx.send(Some(chunk)).await;
    }
    Ok((count, total))
}
