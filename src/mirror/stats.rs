//! What a running mirror reports: counters and gauges shared by its loop, the status line on stderr,
//! etcdctl's periodic count on stdout, and Prometheus metrics on --listen-metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stats {
    /// The newest source revision seen (watch headers, progress notifications, reads).
    pub source_revision: AtomicI64,
    /// Every source revision up to this one is in the destination.
    pub applied_revision: AtomicI64,
    /// Source events applied in the watch phase.
    pub applied_events: AtomicU64,
    /// Keys put or deleted in the destination (both phases): etcdctl make-mirror's count.
    pub synced: AtomicU64,
    pub transactions: AtomicU64,
    pub source_errors: AtomicU64,
    pub destination_errors: AtomicU64,
    pub reconcile_runs: AtomicU64,
    pub reconcile_puts: AtomicU64,
    pub reconcile_deletes: AtomicU64,
    /// Since when the destination has been behind the source (None: caught up).
    behind_since: Mutex<Option<Instant>>,
    /// What the mirror is doing, for the status line ("watching", "copying at revision 12", ...).
    pub doing: Mutex<String>,
    /// The last error, while retrying.
    pub last_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Stats {
    pub fn saw_source(&self, revision: i64) {
        self.source_revision.fetch_max(revision, Relaxed);
        self.update_lag();
    }

    pub fn applied(&self, revision: i64) {
        self.applied_revision.fetch_max(revision, Relaxed);
        self.update_lag();
    }

    fn update_lag(&self) {
        let behind = self.source_revision.load(Relaxed) > self.applied_revision.load(Relaxed);
        let mut since = lock(&self.behind_since);
        match (behind, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    pub fn lag_revisions(&self) -> i64 {
        (self.source_revision.load(Relaxed) - self.applied_revision.load(Relaxed)).max(0)
    }

    /// How long the destination has been behind the source: from when the mirror first saw a
    /// source revision it had not applied, until it has applied every revision it saw.
    pub fn lag_seconds(&self) -> f64 {
        lock(&self.behind_since).map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0)
    }

    pub fn set_doing(&self, text: impl Into<String>) {
        *lock(&self.doing) = text.into();
    }

    pub fn error(&self, side: &str, text: String) {
        let counter = if side == "source" { &self.source_errors } else { &self.destination_errors };
        counter.fetch_add(1, Relaxed);
        *lock(&self.last_error) = Some(format!("{side}: {text}"));
    }

    pub fn clear_error(&self) {
        *lock(&self.last_error) = None;
    }

    /// The status line: what the mirror does, how far behind, how fast.
    pub fn status_line(&self, events_per_second: f64) -> String {
        let mut line = format!(
            "{}; destination at source revision {} (source {}: {} revisions, {:.1} s behind); {:.0} events/s; {} keys synced",
            lock(&self.doing),
            self.applied_revision.load(Relaxed),
            self.source_revision.load(Relaxed),
            self.lag_revisions(),
            self.lag_seconds(),
            events_per_second,
            self.synced.load(Relaxed),
        );
        if let Some(e) = lock(&self.last_error).as_ref() {
            line.push_str(&format!("; retrying after {e}"));
        }
        line
    }

    /// Prometheus' text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let load = |a: &AtomicU64| a.load(Relaxed).to_string();
        metric(
            "etcdeck_mirror_source_revision",
            "gauge",
            "The newest source revision the mirror has seen.",
            &[("", self.source_revision.load(Relaxed).to_string())],
        );
        metric(
            "etcdeck_mirror_checkpoint_revision",
            "gauge",
            "Every source revision up to this one is in the destination.",
            &[("", self.applied_revision.load(Relaxed).to_string())],
        );
        metric(
            "etcdeck_mirror_lag_revisions",
            "gauge",
            "Source revisions not yet in the destination.",
            &[("", self.lag_revisions().to_string())],
        );
        metric(
            "etcdeck_mirror_lag_seconds",
            "gauge",
            "How long the destination has been behind the source.",
            &[("", format!("{:.3}", self.lag_seconds()))],
        );
        metric(
            "etcdeck_mirror_applied_events_total",
            "counter",
            "Source events (puts and deletes) applied to the destination while watching.",
            &[("", load(&self.applied_events))],
        );
        metric(
            "etcdeck_mirror_synced_keys_total",
            "counter",
            "Keys put or deleted in the destination, copy and watch phases.",
            &[("", load(&self.synced))],
        );
        metric(
            "etcdeck_mirror_transactions_total",
            "counter",
            "Transactions committed in the destination.",
            &[("", load(&self.transactions))],
        );
        metric(
            "etcdeck_mirror_errors_total",
            "counter",
            "Failed requests, by side; each is retried.",
            &[
                ("{side=\"source\"}", load(&self.source_errors)),
                ("{side=\"destination\"}", load(&self.destination_errors)),
            ],
        );
        metric(
            "etcdeck_mirror_reconcile_runs_total",
            "counter",
            "Reconcile passes (the source compacted past the checkpoint, or --reconcile).",
            &[("", load(&self.reconcile_runs))],
        );
        metric(
            "etcdeck_mirror_reconcile_changes_total",
            "counter",
            "Keys a reconcile pass put or deleted in the destination.",
            &[
                ("{op=\"put\"}", load(&self.reconcile_puts)),
                ("{op=\"delete\"}", load(&self.reconcile_deletes)),
            ],
        );
        out
    }
}

/// A log line on stderr with its time, for journald and log shippers.
pub fn log(text: &str) {
    eprintln!("{} etcdeck mirror: {text}", crate::etcd::format::rfc3339_now());
}

/// Writes the status line every `every`, and etcdctl make-mirror's bare count of synced keys on
/// stdout every 30 s.
pub async fn report(stats: std::sync::Arc<Stats>, every: Duration) {
    let mut last = (Instant::now(), stats.applied_events.load(Relaxed));
    let mut status = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let count_every = Duration::from_secs(30);
    let mut count = tokio::time::interval_at(tokio::time::Instant::now() + count_every, count_every);
    loop {
        tokio::select! {
            _ = status.tick() => {
                let now = (Instant::now(), stats.applied_events.load(Relaxed));
                let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64().max(1e-3);
                last = now;
                log(&stats.status_line(rate));
            }
            _ = count.tick() => {
                println!("{}", stats.synced.load(Relaxed));
            }
        }
    }
}

/// Serves GET /metrics on `listener` until the task is dropped.
pub async fn serve_metrics(listener: tokio::net::TcpListener, stats: std::sync::Arc<Stats>) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let stats = stats.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (200, stats.metrics_text())
                    } else {
                        (404, "404 page not found\n".to_string())
                    };
                    let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_first_unapplied_revision_until_caught_up() {
        let s = Stats::default();
        s.applied(10);
        s.saw_source(10);
        assert_eq!((s.lag_revisions(), s.lag_seconds()), (0, 0.0));
        s.saw_source(14);
        assert_eq!(s.lag_revisions(), 4);
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.lag_seconds() >= 0.02);
        s.applied(14);
        assert_eq!((s.lag_revisions(), s.lag_seconds()), (0, 0.0));
        s.error("destination", "etcdserver: mvcc: database space exceeded".into());
        assert!(s.status_line(0.0).contains("retrying after destination: etcdserver: mvcc: database space"));
        let text = s.metrics_text();
        assert!(text.contains("etcdeck_mirror_errors_total{side=\"destination\"} 1\n"), "{text}");
        assert!(text.contains("etcdeck_mirror_checkpoint_revision 14\n"), "{text}");
    }
}
