//! A benchmark's results, printed as etcd's benchmark tool prints them (its pkg/report): the summary,
//! the response-time histogram, the latency distribution and the error distribution; or as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

/// What one benchmark run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// From the first request to the last answer.
    pub total: Duration,
    /// Every successful request's latency in seconds, sorted.
    pub latencies: Vec<f64>,
    /// Failed requests by error text.
    pub errors: BTreeMap<String, usize>,
    /// `--precise`: full floating-point precision (Go's %g) instead of four decimals.
    pub precise: bool,
}

/// etcd's percentiles.
const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// The histogram's bars are at most this long (etcd's 40 of '∎').
const BAR: usize = 40;

impl Report {
    pub fn new(
        total: Duration,
        mut latencies: Vec<f64>,
        errors: BTreeMap<String, usize>,
        precise: bool,
    ) -> Self {
        latencies.sort_by(f64::total_cmp);
        Report { total, latencies, errors, precise }
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.total.as_secs_f64().max(1e-9)
    }

    pub fn average(&self) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        self.latencies.iter().sum::<f64>() / self.latencies.len() as f64
    }

    pub fn stddev(&self) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let avg = self.average();
        let n = self.latencies.len() as f64;
        (self.latencies.iter().map(|l| (l - avg).powi(2)).sum::<f64>() / n).sqrt()
    }

    pub fn fastest(&self) -> f64 {
        self.latencies.first().copied().unwrap_or(0.0)
    }

    pub fn slowest(&self) -> f64 {
        self.latencies.last().copied().unwrap_or(0.0)
    }

    /// etcd's percentiles: for each, the first latency at or past that share of the requests (0
    /// when there are too few).
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        let n = self.latencies.len();
        let mut out: Vec<(f64, f64)> = PERCENTILES.iter().map(|p| (*p, 0.0)).collect();
        let mut j = 0;
        for (i, l) in self.latencies.iter().enumerate() {
            if j == out.len() {
                break;
            }
            if i as f64 * 100.0 / n as f64 >= out[j].0 {
                out[j].1 = *l;
                j += 1;
            }
        }
        out
    }

    /// etcd's histogram: 10 equal buckets from the fastest, plus the slowest; (upper bound, count).
    pub fn histogram(&self) -> Vec<(f64, usize)> {
        let (fastest, slowest) = (self.fastest(), self.slowest());
        let width = (slowest - fastest) / 10.0;
        let mut buckets: Vec<(f64, usize)> = (0..10).map(|i| (fastest + width * i as f64, 0)).collect();
        buckets.push((slowest, 0));
        let mut b = 0;
        let mut i = 0;
        while i < self.latencies.len() {
            if self.latencies[i] <= buckets[b].0 {
                buckets[b].1 += 1;
                i += 1;
            } else if b < buckets.len() - 1 {
                b += 1;
            } else {
                // Only rounding could leave one past the slowest: count it there.
                buckets[b].1 += 1;
                i += 1;
            }
        }
        buckets
    }

    fn num(&self, x: f64) -> String {
        if self.precise {
            go_g(x)
        } else {
            format!("{x:4.4}")
        }
    }

    fn secs(&self, x: f64) -> String {
        format!("{} secs", self.num(x))
    }

    /// The text etcd's benchmark prints.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if !self.latencies.is_empty() {
            s += "\nSummary:\n";
            s += &format!("  Total:\t{}.\n", self.secs(self.total.as_secs_f64()));
            s += &format!("  Slowest:\t{}.\n", self.secs(self.slowest()));
            s += &format!("  Fastest:\t{}.\n", self.secs(self.fastest()));
            s += &format!("  Average:\t{}.\n", self.secs(self.average()));
            s += &format!("  Stddev:\t{}.\n", self.secs(self.stddev()));
            s += &format!("  Requests/sec:\t{}\n", self.num(self.requests_per_sec()));
            s += "\nResponse time histogram:\n";
            let buckets = self.histogram();
            let max = buckets.iter().map(|b| b.1).max().unwrap_or(0);
            for (bound, count) in buckets {
                let bar = (count * BAR).checked_div(max).unwrap_or(0);
                s += &format!("  {} [{count}]\t|{}\n", self.num(bound), "∎".repeat(bar));
            }
            s += "\nLatency distribution:\n";
            for (p, l) in self.percentiles() {
                if l > 0.0 {
                    s += &format!("  {}% in {}.\n", go_g(p), self.secs(l));
                }
            }
        }
        if !self.errors.is_empty() {
            s += "\nError distribution:\n";
            for (error, n) in &self.errors {
                s += &format!("  [{n}]\t{error}\n");
            }
        }
        s
    }

    /// The same figures for machines (`-w json`); seconds throughout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.total.as_secs_f64(),
            "requests": self.latencies.len(),
            "slowest": self.slowest(),
            "fastest": self.fastest(),
            "average": self.average(),
            "stddev": self.stddev(),
            "requestsPerSec": self.requests_per_sec(),
            "histogram": self.histogram().iter().map(|(le, count)| serde_json::json!({"le": le, "count": count})).collect::<Vec<_>>(),
            "percentiles": self.percentiles().iter().map(|(p, l)| serde_json::json!({"percentile": p, "latency": l})).collect::<Vec<_>>(),
            "errors": self.errors,
        })
    }
}

/// Go's %g for a float64: the shortest representation, in exponent form below 1e-4 or from 1e21.
fn go_g(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let exp = x.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        return format!("{x}");
    }
    // Rust prints "1.5e-5"; Go prints "1.5e-05".
    let e = format!("{x:e}");
    match e.split_once('e') {
        Some((m, ex)) => {
            let (sign, digits) = ex.strip_prefix('-').map_or(("+", ex), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_etcds_summary_histogram_and_percentiles() {
        let lats: Vec<f64> = (1..=100).map(|i| i as f64 / 1000.0).collect();
        let mut errors = BTreeMap::new();
        errors.insert("etcdserver: request timed out".to_string(), 2);
        let r = Report::new(Duration::from_secs(1), lats, errors, false);
        let text = r.text();
        assert!(
            text.starts_with(
                "\nSummary:\n  Total:\t1.0000 secs.\n  Slowest:\t0.1000 secs.\n  Fastest:\t0.0010 secs.\n"
            ),
            "{text}"
        );
        assert!(text.contains("  Requests/sec:\t100.0000\n"), "{text}");
        // etcd's percentile: the first latency at or past p% of the requests.
        assert!(
            text.contains("  50% in 0.0510 secs.\n") && text.contains("  99% in 0.1000 secs.\n"),
            "{text}"
        );
        // Past the last request (99.9% of 100): none, and etcd leaves the line out.
        assert!(!text.contains("99.9%"), "{text}");
        assert!(text.contains("\nResponse time histogram:\n  0.0010 [1]\t|∎∎∎∎\n  0.0109 [9]\t|"), "{text}");
        assert!(text.contains("  0.1000 [10]\t|∎∎∎∎"), "{text}");
        let counts: usize = r.histogram().iter().map(|b| b.1).sum();
        assert_eq!(counts, 100);
        assert!(text.ends_with("\nError distribution:\n  [2]\tetcdserver: request timed out\n"), "{text}");
        assert_eq!(r.json()["requests"], 100);
    }

    #[test]
    fn precise_prints_gos_g() {
        assert_eq!(go_g(0.000123), "0.000123");
        assert_eq!(go_g(0.0000123), "1.23e-05");
        assert_eq!(go_g(99.9), "99.9");
        assert_eq!(go_g(10.0), "10");
        let r = Report::new(Duration::from_millis(1500), vec![0.00025], BTreeMap::new(), true);
        assert!(r.text().contains("  Total:\t1.5 secs.\n"), "{}", r.text());
    }
}
