//! Text forms shared by the dashboard and the `status` report, matching etcdctl where it has one.
//! etcd's own (IDs, byte sizes) are in `etcd::format` and re-exported here.

use std::time::{Duration, SystemTime};

pub use crate::etcd::format::{bytes, id_hex};

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
    fn ids_and_clock() {
        assert_eq!(clock_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 + 3_723)), "01:02:03Z");
        assert_eq!(millis(Duration::from_micros(1234)), "1.2ms");
        assert_eq!(
            timestamp_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_304_412)),
            "2026-11-21T23:40:12Z"
        );
    }
}
