//! Text forms shared by the dashboard and the `status` report, matching etcdctl where it has one.

use std::time::{Duration, SystemTime};

/// A member or cluster ID as etcdctl prints it (`%x`: hex, no padding).
pub fn id_hex(id: u64) -> String {
    format!("{id:x}")
}

/// Bytes in SI units as go-humanize's `Bytes` writes them, which is what etcdctl's tables show
/// ("20 kB", "1.2 MB").
pub fn bytes(n: i64) -> String {
    if n < 0 {
        return format!("{n} B");
    }
    let n = n as f64;
    if n < 10.0 {
        return format!("{n} B");
    }
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let exp = (n.ln() / 1000f64.ln()).floor().min(6.0) as i32;
    let value = (n / 1000f64.powi(exp) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS[exp as usize];
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// A latency in milliseconds with one decimal: "0.4ms", "12.3ms", "1520.0ms".
pub fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// UTC wall-clock time of day, "23:40:12Z".
pub fn clock_utc(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}Z", day / 3600, day / 60 % 60, day % 60)
}

/// UTC date and time, "2026-11-21T23:40:12Z".
pub fn timestamp_utc(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_match_go_humanize() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(9), "9 B");
        assert_eq!(bytes(82), "82 B");
        assert_eq!(bytes(20_480), "20 kB");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(2_147_483_648), "2.1 GB");
    }

    #[test]
    fn ids_and_clock() {
        assert_eq!(id_hex(0x8e9e05c52164694d), "8e9e05c52164694d");
        assert_eq!(clock_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)), "01:02:03Z");
        assert_eq!(millis(Duration::from_micros(1234)), "1.2ms");
        assert_eq!(
            timestamp_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_304_412)),
            "2026-11-21T23:40:12Z"
        );
    }
}
