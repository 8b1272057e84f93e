//! etcd's text forms, as etcdctl prints them: member and cluster IDs, byte sizes.

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

/// Go's strconv.ParseBool: etcd's boolean flags and the v2 API's boolean fields.
pub fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The time now in RFC 3339 with milliseconds, UTC, as a log line starts.
pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
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
    fn ids_are_bare_hex() {
        assert_eq!(id_hex(0x8e9e05c52164694d), "8e9e05c52164694d");
        assert_eq!(id_hex(0xab), "ab");
    }
}
