//! `etcdeck bench put`: concurrent puts against a cluster, reported as etcd's benchmark tool reports
//! them (total time, slowest/fastest/average/stddev latency, requests per second, percentiles).

use std::time::{Duration, Instant};

use etcd_client::{Txn, TxnOp};

use crate::app::client;
use crate::app::connection::ConnectConfig;

#[derive(Debug, Clone)]
pub struct PutBench {
    /// gRPC connections, shared round-robin by the clients.
    pub conns: usize,
    /// Concurrent clients, each with one request in flight.
    pub clients: usize,
    pub total: usize,
    pub key_size: usize,
    pub val_size: usize,
    /// Keys are chosen in [0, key_space) (sequentially with `sequential_keys`).
    pub key_space: usize,
    pub sequential_keys: bool,
    /// At most this many requests per second in all (0: no limit), as etcd benchmark's --rate.
    pub rate: u64,
    /// `txn-put`: each request is a Txn of this many puts, of keys (i * n + j) % key_space as
    /// etcd benchmark's txn-put writes them. None: `put`, one Put per request.
    pub txn_ops: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub total: Duration,
    /// Every successful request's latency, sorted.
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
}

impl Report {
    pub fn requests_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[i.clamp(1, self.latencies.len()) - 1]
    }

    /// etcd benchmark's summary layout.
    pub fn text(&self) -> String {
        let secs: Vec<f64> = self.latencies.iter().map(Duration::as_secs_f64).collect();
        let n = secs.len().max(1) as f64;
        let avg = secs.iter().sum::<f64>() / n;
        let stddev = (secs.iter().map(|s| (s - avg).powi(2)).sum::<f64>() / n).sqrt();
        let mut out = String::from("\nSummary:\n");
        out += &format!("  Total:\t{:.4} secs.\n", self.total.as_secs_f64());
        out += &format!("  Slowest:\t{:.4} secs.\n", secs.last().copied().unwrap_or(0.0));
        out += &format!("  Fastest:\t{:.4} secs.\n", secs.first().copied().unwrap_or(0.0));
        out += &format!("  Average:\t{avg:.4} secs.\n");
        out += &format!("  Stddev:\t{stddev:.4} secs.\n");
        out += &format!("  Requests/sec:\t{:.4}\n", self.requests_per_sec());
        out += "\nLatency distribution:\n";
        for p in [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9] {
            out += &format!("  {p}% in {:.4} secs.\n", self.percentile(p).as_secs_f64());
        }
        if !self.errors.is_empty() {
            out += &format!("\nErrors: {} (first: {})\n", self.errors.len(), self.errors[0]);
        }
        out
    }
}

fn key(i: usize, size: usize) -> Vec<u8> {
    let mut k = format!("{i:0size$}").into_bytes();
    k.truncate(size.max(1));
    k
}

/// Runs the benchmark against the first endpoint.
pub async fn run_put(config: &ConnectConfig, b: &PutBench) -> Result<Report, String> {
    let endpoint = config.endpoints.first().ok_or("no endpoint")?;
    let mut conns = Vec::new();
    for _ in 0..b.conns.max(1) {
        conns.push(client::connect(config, endpoint).await?);
    }
    let value = vec![b'v'; b.val_size];
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..b.clients.max(1))
        .map(|w| {
            let mut c = conns[w % conns.len()].clone();
            let next = next.clone();
            let (value, b, timeout) = (value.clone(), b.clone(), config.command_timeout);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                let mut rng = (w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= b.total {
                        return (latencies, errors);
                    }
                    if b.rate > 0 {
                        // Request i is due i/rate seconds after the start: an even pace, whatever
                        // the number of clients.
                        let due = started + Duration::from_secs_f64(i as f64 / b.rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let k = if b.sequential_keys {
                        i % b.key_space.max(1)
                    } else {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        (rng % b.key_space.max(1) as u64) as usize
                    };
                    let t = Instant::now();
                    let result = match b.txn_ops {
                        None => tokio::time::timeout(timeout, c.put(key(k, b.key_size), value.clone(), None))
                            .await
                            .map(|r| r.map(|_| ())),
                        Some(n) => {
                            let ops: Vec<TxnOp> = (0..n)
                                .map(|j| {
                                    TxnOp::put(
                                        key((i * n + j) % b.key_space.max(1), b.key_size),
                                        value.clone(),
                                        None,
                                    )
                                })
                                .collect();
                            tokio::time::timeout(timeout, c.txn(Txn::new().and_then(ops)))
                                .await
                                .map(|r| r.map(|_| ()))
                        }
                    };
                    match result {
                        Ok(Ok(())) => latencies.push(t.elapsed()),
                        Ok(Err(e)) => errors.push(e.to_string()),
                        Err(_) => errors.push("context deadline exceeded".into()),
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w.await.map_err(|e| e.to_string())?;
        latencies.extend(l);
        errors.extend(e);
    }
    let total = started.elapsed();
    latencies.sort();
    Ok(Report { total, latencies, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_asked_size_and_percentiles_pick_from_the_sorted_latencies() {
        assert_eq!(key(7, 8), b"00000007");
        assert_eq!(key(123, 2), b"12");
        let ms = |n: u64| Duration::from_millis(n);
        let r = Report { total: ms(1000), latencies: (1..=100).map(ms).collect(), errors: vec![] };
        assert_eq!(r.percentile(50.0), ms(50));
        assert_eq!(r.percentile(99.9), ms(100));
        assert_eq!(r.percentile(10.0), ms(10));
        assert!((r.requests_per_sec() - 100.0).abs() < 1e-9);
        let text = r.text();
        assert!(text.contains("Requests/sec:\t100.0000"), "{text}");
        assert!(text.contains("  50% in 0.0500 secs."), "{text}");
    }
}
