//! The node's Prometheus metrics, under etcd's names, for what the node has. Counters are atomics
//! bumped where things happen; gauges that mirror state are read when /metrics is scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed upper bounds (seconds), as Prometheus' client keeps one.
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// `count` buckets starting at `start`, each `factor` times the last (Prometheus' ExponentialBuckets).
    pub fn exponential(start: f64, factor: f64, count: usize) -> Self {
        let bounds: Vec<f64> = (0..count).map(|i| start * factor.powi(i as i32)).collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Histogram { bounds, counts, count: AtomicU64::new(0), sum_nanos: AtomicU64::new(0) }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            if secs <= *bound {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", n.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Everything counted as it happens.
pub struct Metrics {
    pub wal_fsync: Histogram,
    pub backend_commit: Histogram,
    pub proposals_committed: AtomicU64,
    pub proposals_applied: AtomicU64,
    pub proposals_pending: AtomicU64,
    pub proposals_failed: AtomicU64,
    pub leader_changes: AtomicU64,
    pub range_total: AtomicU64,
    pub put_total: AtomicU64,
    pub delete_total: AtomicU64,
    pub txn_total: AtomicU64,
    pub watch_streams: AtomicU64,
    pub watchers: AtomicU64,
    pub health_success: AtomicU64,
    pub health_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // etcd's buckets: 1ms doubling to about 8s.
            wal_fsync: Histogram::exponential(0.001, 2.0, 14),
            backend_commit: Histogram::exponential(0.001, 2.0, 14),
            proposals_committed: AtomicU64::new(0),
            proposals_applied: AtomicU64::new(0),
            proposals_pending: AtomicU64::new(0),
            proposals_failed: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
            range_total: AtomicU64::new(0),
            put_total: AtomicU64::new(0),
            delete_total: AtomicU64::new(0),
            txn_total: AtomicU64::new(0),
            watch_streams: AtomicU64::new(0),
            watchers: AtomicU64::new(0),
            health_success: AtomicU64::new(0),
            health_failures: AtomicU64::new(0),
        }
    }
}

/// State read at scrape time.
pub struct Gauges {
    pub member_id: u64,
    pub has_leader: bool,
    pub is_leader: bool,
    pub db_size: u64,
    pub db_size_in_use: u64,
    pub keys: u64,
    pub current_revision: i64,
    pub compact_revision: i64,
    pub quota_bytes: u64,
    pub version: &'static str,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Prometheus' text format (version 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        let b = |v: bool| u8::from(v).to_string();
        // (name, help, type, value), help texts as etcd's.
        let plain: [(&str, &str, &str, String); 25] = [
            (
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
                "gauge",
                b(g.has_leader),
            ),
            (
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
                "gauge",
                b(g.is_leader),
            ),
            (
                "etcd_server_is_learner",
                "Whether or not this member is a learner. 1 if is, 0 otherwise.",
                "gauge",
                b(false),
            ),
            (
                "etcd_server_leader_changes_seen_total",
                "The number of leader changes seen.",
                "counter",
                n(&self.leader_changes),
            ),
            (
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
                "gauge",
                n(&self.proposals_committed),
            ),
            (
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
                "gauge",
                n(&self.proposals_applied),
            ),
            (
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
                "gauge",
                n(&self.proposals_pending),
            ),
            (
                "etcd_server_proposals_failed_total",
                "The total number of failed proposals seen.",
                "counter",
                n(&self.proposals_failed),
            ),
            (
                "etcd_server_health_success",
                "The total number of successful health checks",
                "counter",
                n(&self.health_success),
            ),
            (
                "etcd_server_health_failures",
                "The total number of failed health checks",
                "counter",
                n(&self.health_failures),
            ),
            (
                "etcd_server_quota_backend_bytes",
                "Current backend storage quota size in bytes.",
                "gauge",
                g.quota_bytes.to_string(),
            ),
            ("etcd_server_id{server_id=\"{id}\"}", "Etcd server ID", "gauge", "1".into()),
            (
                "etcd_server_version{server_version=\"{version}\"}",
                "Which version is running. 1 for 'server_version' label with current version.",
                "gauge",
                "1".into(),
            ),
            (
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
                "gauge",
                g.db_size.to_string(),
            ),
            (
                "etcd_mvcc_db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
                "gauge",
                g.db_size_in_use.to_string(),
            ),
            (
                "etcd_mvcc_range_total",
                "Total number of ranges seen by this member.",
                "counter",
                n(&self.range_total),
            ),
            (
                "etcd_mvcc_put_total",
                "Total number of puts seen by this member.",
                "counter",
                n(&self.put_total),
            ),
            (
                "etcd_mvcc_delete_total",
                "Total number of deletes seen by this member.",
                "counter",
                n(&self.delete_total),
            ),
            (
                "etcd_mvcc_txn_total",
                "Total number of txns seen by this member.",
                "counter",
                n(&self.txn_total),
            ),
            ("etcd_debugging_mvcc_keys_total", "Total number of keys.", "gauge", g.keys.to_string()),
            (
                "etcd_debugging_mvcc_current_revision",
                "The current revision of store.",
                "gauge",
                g.current_revision.to_string(),
            ),
            (
                "etcd_debugging_mvcc_compact_revision",
                "The revision of the last compaction in store.",
                "gauge",
                g.compact_revision.to_string(),
            ),
            (
                "etcd_debugging_mvcc_watch_stream_total",
                "Total number of watch streams.",
                "gauge",
                n(&self.watch_streams),
            ),
            ("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", "gauge", n(&self.watchers)),
            (
                "etcd_debugging_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
                "gauge",
                g.db_size.to_string(),
            ),
        ];
        let mut out = String::new();
        for (sample, help, kind, value) in plain {
            let name = sample.split('{').next().unwrap_or(sample);
            let sample =
                sample.replace("{id}", &format!("{:x}", g.member_id)).replace("{version}", g.version);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {value}");
        }
        self.wal_fsync.render(
            &mut out,
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
        );
        self.backend_commit.render(
            &mut out,
            "etcd_disk_backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_text_is_prometheus() {
        let m = Metrics::default();
        m.wal_fsync.observe(Duration::from_micros(1500));
        m.wal_fsync.observe(Duration::from_millis(100));
        inc(&m.put_total);
        let g = Gauges {
            member_id: 0x8e9e05c52164694d,
            has_leader: true,
            is_leader: true,
            db_size: 4096,
            db_size_in_use: 100,
            keys: 1,
            current_revision: 2,
            compact_revision: 0,
            quota_bytes: 2 << 30,
            version: "3.4.0",
        };
        let text = m.render(&g);
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 0\n"), "{text}");
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 1\n"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.128\"} 2\n"));
        assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_count 2\n"));
        assert!(text.contains("etcd_server_has_leader 1\n"));
        assert!(text.contains("etcd_mvcc_put_total 1\n"));
        assert!(text.contains("etcd_server_id{server_id=\"8e9e05c52164694d\"} 1\n"));
    }
}
