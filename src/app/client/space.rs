//! `:space`'s scan: every key under a prefix read once at one revision, a page at a time (values
//! measured and dropped), tallied as app::space says, with a report to the console every half
//! second. Each page is read from ever larger subtrees around the cursor, as the key browser's
//! are, so on etcd 3.4 a page costs about what it returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use tokio::sync::mpsc;

use crate::app::keys;
use crate::app::msg::Msg;
use crate::app::space::{SpaceReport, Tally};

use crate::app::client::errors::{deadline_exceeded, error_text, with_timeout};
use crate::app::client::pool::Pool;

/// Keys per page: values come along, so fewer than the key browser's keys-only pages.
const PAGE: i64 = 1000;
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Runs the scan and reports to the console until done, failed, or the task is aborted (cancel).
pub async fn run(pool: Arc<Pool>, tx: mpsc::UnboundedSender<Msg>, request: u64, prefix: Vec<u8>) {
    let mut last_error = String::from("no endpoints");
    for endpoint in pool.config.endpoints.clone() {
        let client = match pool.client(&endpoint).await {
            Ok(client) => client,
            Err(e) => {
                last_error = format!("{endpoint}: {e}");
                continue;
            }
        };
        match scan(&pool, client, &tx, request, &prefix).await {
            Ok(()) => {
                last_error.clear();
                break;
            }
            Err(e) => last_error = format!("{endpoint}: {e}"),
        }
    }
    if !last_error.is_empty() {
        let _ = tx.send(Msg::Space { request, result: Err(last_error) });
    }
    if let Ok(mut scans) = pool.scans.lock() {
        scans.remove(&request);
    }
}

async fn scan(
    pool: &Pool,
    mut client: Client,
    tx: &mpsc::UnboundedSender<Msg>,
    request: u64,
    prefix: &[u8],
) -> Result<(), String> {
    let timeout = pool.config.command_timeout;
    let status = with_timeout(timeout, client.status()).await?;
    let start = if prefix.is_empty() { vec![0] } else { prefix.to_vec() };
    let all = keys::prefix_end(prefix);
    let count = GetOptions::new().with_range(all.clone()).with_count_only().with_serializable();
    let counted = with_timeout(timeout, client.get(start.clone(), Some(count))).await?;
    let revision = counted.header().map_or(0, |h| h.revision());
    let mut report = SpaceReport {
        revision,
        compacted: compacted(&mut client, revision, timeout).await?,
        total_keys: counted.count().max(0) as u64,
        db_size: status.db_size(),
        db_in_use: status.raft_used_db_size(),
        ..SpaceReport::default()
    };
    // The count and the revision at once, so the progress bar starts where the scan does.
    if tx.send(Msg::Space { request, result: Ok(report.clone()) }).is_err() {
        return Ok(());
    }
    let mut tally = Tally::new(prefix, report.compacted);
    let mut reported = Instant::now();
    let mut cursor = start;
    let mut depth = cursor.len();
    let mut limit = PAGE;
    loop {
        let (bound, last) = keys::subtree_end(prefix, &cursor, depth);
        let options = GetOptions::new()
            .with_range(bound.clone())
            .with_serializable()
            .with_limit(limit)
            .with_revision(revision);
        let resp = match tokio::time::timeout(timeout, client.get(cursor.clone(), Some(options))).await {
            Err(_) => return Err(deadline_exceeded(timeout)),
            // Values up to 1.5 MiB: a page over gRPC's message limit is asked for again, halved.
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if limit > 1
                    && (s.message().contains("too large") || s.message().contains("larger than")) =>
            {
                limit /= 2;
                continue;
            }
            Ok(Err(e)) => return Err(error_text(&e)),
            Ok(Ok(resp)) => resp,
        };
        for kv in resp.kvs() {
            tally.add(kv.key(), kv.value().len(), kv.version(), kv.create_revision(), kv.mod_revision());
        }
        if reported.elapsed() >= REPORT_EVERY {
            reported = Instant::now();
            report.scanned_keys = tally.keys;
            report.scanned_bytes = tally.bytes;
            report.groups = tally.groups(false);
            if tx.send(Msg::Space { request, result: Ok(report.clone()) }).is_err() {
                return Ok(());
            }
        }
        match resp.kvs().last() {
            // Cut by the limit: go on after the last key, from the smallest subtree around it
            // again. Staying at a wide level would make every later read walk to its end on etcd
            // 3.4, whose index reads a range whole before it applies the limit.
            Some(kv) if resp.more() => {
                cursor = keys::key_after(kv.key());
                depth = cursor.len();
                limit = PAGE;
                continue;
            }
            _ if last => break,
            _ => {
                cursor = bound;
                depth = depth.saturating_sub(1).min(cursor.len());
            }
        }
    }
    report.scanned_keys = tally.keys;
    report.scanned_bytes = tally.bytes;
    report.groups = tally.groups(true);
    report.done = true;
    let _ = tx.send(Msg::Space { request, result: Ok(report) });
    Ok(())
}

/// The oldest revision etcd keeps: the smallest that a read at it is not refused as compacted,
/// found by bisection with count-only reads of one key (each costs nothing on the server).
async fn compacted(client: &mut Client, revision: i64, timeout: Duration) -> Result<i64, String> {
    let (mut low, mut high) = (1i64, revision.max(1));
    while low < high {
        let mid = low + (high - low) / 2;
        let options = GetOptions::new().with_count_only().with_serializable().with_revision(mid);
        match tokio::time::timeout(timeout, client.get(vec![0u8], Some(options))).await {
            Err(_) => return Err(deadline_exceeded(timeout)),
            Ok(Ok(_)) => high = mid,
            Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.message().contains("compacted") => low = mid + 1,
            Ok(Err(e)) => return Err(error_text(&e)),
        }
    }
    Ok(low)
}
