//! `etcdeck mirror`: etcdctl make-mirror's copy-then-watch, made to survive crashes. Every batch
//! written to the destination carries a checkpoint (the source cluster, the prefix and the last
//! source revision applied) in the same transaction, so a mirror killed at any moment resumes
//! exactly where the destination says it stopped; a source compacted past that point gets a
//! reconcile pass. A client of both clusters through the etcd API, beside the console.
//!
//! The loop: read the checkpoint; copy (sync.rs) the prefix at one revision unless the checkpoint
//! is past that; then follow (follow.rs) the source's changes; when the source has compacted what
//! is still to be applied, copy again at its current revision, deleting what it no longer has.

pub mod cluster;
mod follow;
mod job;
pub mod sink;
pub mod stats;
mod sync;
pub mod verify;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use etcd_client::GetOptions;

use crate::app::connection::ConnectConfig;
use crate::etcd::mirror::{Checkpoint, KeyMap, Phase, RESERVED};
use crate::etcd::range::prefix_end;
use crate::mirror::cluster::{Backoff, Cluster};
use crate::mirror::job::Mirror;
use crate::mirror::sink::{Fatal, Position, Sink};
use crate::mirror::stats::{log, Stats};
use crate::mirror::sync::{shown_prefix, sync, SyncEnd};

pub struct Options {
    pub source: ConnectConfig,
    pub dest: ConnectConfig,
    pub map: KeyMap,
    /// Operations per destination transaction, the checkpoint's included.
    pub max_txn_ops: usize,
    /// Compare and mend the whole prefix first (and allow a destination that has keys and no
    /// checkpoint).
    pub reconcile: bool,
}

/// Runs the mirror; returns only when it cannot go on, with the reason.
pub async fn run(options: Options, stats: Arc<Stats>) -> Fatal {
    match run_inner(options, stats).await {
        Ok(never) => match never {},
        Err(fatal) => fatal,
    }
}

enum Never {}

async fn run_inner(options: Options, stats: Arc<Stats>) -> Result<Never, Fatal> {
    let mut source = Cluster::new(options.source, "source");
    let endpoints = source.config.endpoints.clone();
    let (cluster_id, revision) = source_now(&mut source, &options.map, &stats).await;
    let base = Checkpoint {
        source_cluster_id: format!("{cluster_id:x}"),
        source_endpoints: endpoints,
        prefix: String::from_utf8_lossy(&options.map.prefix).into_owned(),
        dest_prefix: String::from_utf8_lossy(&options.map.dest_prefix).into_owned(),
        phase: Phase::Copy,
        revision: 0,
        sub: 0,
        after: None,
        source_revision: revision,
        updated_unix_ms: 0,
        synced: 0,
        writer: writer_id(),
    };
    let mut sink = Sink::new(Cluster::new(options.dest, "destination"), base.clone(), stats.clone());
    let key = String::from_utf8_lossy(sink.key()).into_owned();
    let found = sink.read().await?;
    let mut reconcile = options.reconcile;
    let mut position = match found {
        Some(cp) => {
            if cp.cluster_id() != Some(cluster_id) {
                return Err(Fatal(format!(
                    "the destination's checkpoint {key} is of a mirror of source cluster {}, and this source is cluster {}: its revisions mean nothing here, refusing to resume (delete {key} in the destination to start this mirror over)",
                    cp.source_cluster_id, base.source_cluster_id
                )));
            }
            if cp.prefix != base.prefix {
                return Err(Fatal(format!(
                    "the destination's checkpoint {key} is of a mirror of prefix {:?}, not {:?}: refusing to resume (delete {key} in the destination to start this mirror over)",
                    cp.prefix, base.prefix
                )));
            }
            log(&format!(
                "resuming from the checkpoint {key}: {} at source revision {}{} (written by {} {:.1} s ago)",
                match cp.phase {
                    Phase::Copy => "copying",
                    Phase::Watch => "watching",
                },
                cp.revision,
                if cp.sub > 0 { format!(" and {} events of the next", cp.sub) } else { String::new() },
                cp.writer,
                age_seconds(cp.updated_unix_ms)
            ));
            if cp.phase == Phase::Watch {
                stats.applied(cp.revision);
            }
            if reconcile {
                Position::Copy { revision, after: None }
            } else {
                Position::of(&cp)
            }
        }
        None => {
            let existing = destination_keys(&mut sink, &options.map).await;
            if existing > 0 && !reconcile {
                return Err(Fatal(format!(
                    "the destination already has {existing} keys under {} and no mirror checkpoint ({key}): etcdeck will not mirror over data it did not write; empty that prefix, choose another --dest-prefix, or pass --reconcile to make it equal to the source (deleting what the source does not have)",
                    match options.map.dest_prefix.is_empty() {
                        true => "its root".to_string(),
                        false => format!("{:?}", String::from_utf8_lossy(&options.map.dest_prefix)),
                    }
                )));
            }
            log(&format!(
                "no checkpoint in the destination: starting a mirror of {}",
                shown_prefix(&options.map.prefix)
            ));
            Position::Copy { revision, after: None }
        }
    };
    if reconcile {
        stats.reconcile_runs.fetch_add(1, Relaxed);
    }
    let mut m = Mirror { source, sink, map: options.map, stats, max_ops: options.max_txn_ops };
    loop {
        position = match position {
            Position::Copy { revision, after } => match sync(&mut m, revision, after, reconcile).await? {
                SyncEnd::Done => Position::Watch { revision, sub: 0 },
                SyncEnd::Compacted => {
                    log(&format!("the source compacted revision {revision} during the copy: reconciling at its current revision"));
                    again(&mut m).await
                }
            },
            Position::Watch { revision, sub } => {
                follow::follow(&mut m, revision, sub).await?;
                again(&mut m).await
            }
        };
        reconcile = true;
    }
}

/// A new reconcile pass at the source's current revision.
async fn again(m: &mut Mirror) -> Position {
    m.stats.reconcile_runs.fetch_add(1, Relaxed);
    let (_, revision) = source_now(&mut m.source, &m.map, &m.stats).await;
    Position::Copy { revision, after: None }
}

/// The source's cluster ID and current revision, retried until it answers.
async fn source_now(source: &mut Cluster, map: &KeyMap, stats: &Stats) -> (u64, i64) {
    let mut backoff = Backoff::default();
    let (start, end) = map.source_range();
    loop {
        match source.get(start.clone(), GetOptions::new().with_range(end.clone()).with_count_only()).await {
            Ok(resp) => {
                if let Some(h) = resp.header() {
                    stats.clear_error();
                    stats.saw_source(h.revision());
                    return (h.cluster_id(), h.revision());
                }
                stats.error("source", "a response without a header".into());
                tokio::time::sleep(backoff.next_wait()).await;
            }
            Err(e) => {
                let wait = backoff.next_wait();
                log(&format!("source: {e}; retrying in {:.1} s", wait.as_secs_f64()));
                stats.error("source", e);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Keys in the destination's range that are not a mirror's own, retried until it answers.
async fn destination_keys(sink: &mut Sink, map: &KeyMap) -> i64 {
    let (start, end) = map.dest_range();
    let mut backoff = Backoff::default();
    loop {
        let all = count(&mut sink.dest, start.clone(), end.clone()).await;
        // The checkpoints are in the range when the destination prefix leads to them.
        let reserved = if RESERVED.starts_with(&map.dest_prefix) {
            count(&mut sink.dest, RESERVED.to_vec(), prefix_end(RESERVED)).await
        } else {
            Ok(0)
        };
        match (all, reserved) {
            (Ok(all), Ok(reserved)) => return all - reserved,
            (Err(e), _) | (_, Err(e)) => {
                let wait = backoff.next_wait();
                log(&format!("destination: {e}; retrying in {:.1} s", wait.as_secs_f64()));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn count(cluster: &mut Cluster, from: Vec<u8>, to: Vec<u8>) -> Result<i64, String> {
    cluster.get(from, GetOptions::new().with_range(to).with_count_only()).await.map(|r| r.count())
}

/// Seconds since a checkpoint's time.
pub fn age_seconds(unix_ms: u64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_sub(unix_ms) as f64 / 1000.0
}

/// A random ID for this run's checkpoints.
fn writer_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("{}-{}", std::process::id(), crate::etcd::mirror::hex(&bytes))
}
