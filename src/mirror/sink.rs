//! The destination side: each batch of puts and deletes is one transaction that also writes the
//! checkpoint, guarded by the checkpoint's mod revision, so the destination's keys and the
//! checkpoint never disagree and two mirrors can never both write one destination prefix.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use crate::app::client::error_text;
use crate::etcd::mirror::{checkpoint_key, hex, Checkpoint, Phase};
use crate::mirror::cluster::{Backoff, Cluster};
use crate::mirror::stats::{log, Stats};

/// One change in the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

impl Op {
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }

    /// Bytes it adds to a request.
    pub fn size(&self) -> usize {
        match self {
            Op::Put(k, v) => k.len() + v.len() + 16,
            Op::Delete(k) => k.len() + 16,
        }
    }

    fn txn_op(&self) -> TxnOp {
        match self {
            Op::Put(k, v) => TxnOp::put(k.clone(), v.clone(), None),
            Op::Delete(k) => TxnOp::delete(k.clone(), None),
        }
    }
}

/// Where the mirror stands, as the checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Copying the source as it was at `revision`; every key up to `after` is done.
    Copy { revision: i64, after: Option<Vec<u8>> },
    /// Every source revision up to `revision` is applied, and the first `sub` events of the next.
    Watch { revision: i64, sub: u64 },
}

impl Position {
    pub fn of(cp: &Checkpoint) -> Self {
        match cp.phase {
            Phase::Copy => Position::Copy { revision: cp.revision, after: cp.after_key() },
            Phase::Watch => Position::Watch { revision: cp.revision, sub: cp.sub },
        }
    }
}

/// A mirror can go no further: the reason, for the operator.
#[derive(Debug)]
pub struct Fatal(pub String);

pub struct Sink {
    pub dest: Cluster,
    key: Vec<u8>,
    /// The checkpoint's mod revision as this process last wrote or read it (0: no checkpoint).
    mod_revision: i64,
    /// The fields every checkpoint of this run carries (source, prefixes, writer).
    pub base: Checkpoint,
    pub written: Option<Position>,
    pub written_at: Instant,
    stats: Arc<Stats>,
}

impl Sink {
    pub fn new(dest: Cluster, base: Checkpoint, stats: Arc<Stats>) -> Self {
        let key = checkpoint_key(base.dest_prefix.as_bytes());
        Self { dest, key, mod_revision: 0, base, written: None, written_at: Instant::now(), stats }
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Reads the checkpoint, retrying until the destination answers; an unreadable checkpoint is
    /// fatal (it is not ours to overwrite).
    pub async fn read(&mut self) -> Result<Option<Checkpoint>, Fatal> {
        let mut backoff = Backoff::default();
        loop {
            match self.dest.get(self.key.clone(), GetOptions::new()).await {
                Ok(mut resp) => {
                    self.stats.clear_error();
                    let Some(kv) = resp.take_kvs().into_iter().next() else {
                        self.mod_revision = 0;
                        return Ok(None);
                    };
                    self.mod_revision = kv.mod_revision();
                    return Checkpoint::decode(kv.value()).map(Some).map_err(|e| {
                        Fatal(format!(
                            "the destination's key {} is {e}; it is not this mirror's to overwrite (delete it to start over)",
                            String::from_utf8_lossy(&self.key)
                        ))
                    });
                }
                Err(e) => self.wait("destination", e, &mut backoff).await,
            }
        }
    }

    /// Logs a failed request and waits before the retry.
    pub async fn wait(&self, side: &str, error: String, backoff: &mut Backoff) {
        let wait = backoff.next_wait();
        log(&format!("{side}: {error}; retrying in {:.1} s", wait.as_secs_f64()));
        self.stats.error(side, error);
        tokio::time::sleep(wait).await;
    }

    fn checkpoint(&self, at: &Position) -> Checkpoint {
        let mut cp = self.base.clone();
        match at {
            Position::Copy { revision, after } => {
                cp.phase = Phase::Copy;
                cp.revision = *revision;
                cp.sub = 0;
                cp.after = after.as_deref().map(hex);
            }
            Position::Watch { revision, sub } => {
                cp.phase = Phase::Watch;
                cp.revision = *revision;
                cp.sub = *sub;
                cp.after = None;
            }
        }
        cp.source_revision = self.stats.source_revision.load(Relaxed).max(cp.revision);
        cp.updated_unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        cp.synced = self.stats.synced.load(Relaxed);
        cp
    }

    /// Applies `ops` and moves the checkpoint to `at`, in one transaction. Transient failures are
    /// retried (the batch is neither lost nor applied twice: a retry whose first attempt did land
    /// finds its own checkpoint). Fatal: another writer's checkpoint, or a transaction the
    /// destination can never accept.
    pub async fn commit(&mut self, ops: &[Op], at: Position) -> Result<(), Fatal> {
        let mut backoff = Backoff::default();
        loop {
            let cp = self.checkpoint(&at);
            let mut then: Vec<TxnOp> = ops.iter().map(Op::txn_op).collect();
            then.push(TxnOp::put(self.key.clone(), cp.encode(), None));
            let txn = Txn::new()
                .when([Compare::mod_revision(self.key.clone(), CompareOp::Equal, self.mod_revision)])
                .and_then(then);
            let timeout = self.dest.timeout();
            let attempt = match self.dest.client().await {
                Ok(mut client) => match tokio::time::timeout(timeout, client.txn(txn)).await {
                    Ok(Ok(resp)) => Ok(resp),
                    Ok(Err(e)) => Err(error_text(&e)),
                    Err(_) => Err(format!("context deadline exceeded (after {timeout:?})")),
                },
                Err(e) => Err(e),
            };
            match attempt {
                Ok(resp) if resp.succeeded() => {
                    self.mod_revision = resp.header().map(|h| h.revision()).unwrap_or(self.mod_revision);
                    self.done(ops, at);
                    return Ok(());
                }
                Ok(_) => {
                    // The checkpoint moved: our own earlier attempt (its answer lost), or another
                    // mirror.
                    let found = self.read().await?;
                    if let Some(found) = found.filter(|f| f.writer == self.base.writer) {
                        if Position::of(&found) == at {
                            self.done(ops, at);
                            return Ok(());
                        }
                    }
                    return Err(Fatal(format!(
                        "the checkpoint {} in the destination was changed by another writer: two mirrors into one destination prefix would undo each other's work",
                        String::from_utf8_lossy(&self.key)
                    )));
                }
                Err(e) if refused_for_good(&e) => {
                    return Err(Fatal(format!(
                        "the destination refuses a transaction of {} operations ({} bytes): {e}; lower --max-txn-ops to what the destination's etcd allows (its --max-txn-ops), or give it the source's --max-request-bytes (a batch is at most 1 MiB, or one key's value)",
                        ops.len() + 1,
                        ops.iter().map(Op::size).sum::<usize>()
                    )));
                }
                Err(e) => {
                    self.dest.failed();
                    self.wait("destination", e, &mut backoff).await;
                }
            }
        }
    }

    fn done(&mut self, ops: &[Op], at: Position) {
        self.stats.clear_error();
        self.stats.transactions.fetch_add(1, Relaxed);
        self.stats.synced.fetch_add(ops.len() as u64, Relaxed);
        self.written = Some(at);
        self.written_at = Instant::now();
    }
}

/// A destination error no retry can mend: the transaction itself is too big for it (etcd's
/// --max-txn-ops or --max-request-bytes, or gRPC's limit on a message it receives).
fn refused_for_good(error: &str) -> bool {
    error.contains("too many operations in txn request")
        || error.contains("request is too large")
        || error.contains("larger than max")
}
