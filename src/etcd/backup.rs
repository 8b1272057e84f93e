//! A backup's file name and the retention rules, shared by `etcdeck backup` (which writes and prunes
//! backups) and the console (whose restore wizard lists them).
//!
//! A backup is an etcd snapshot (bbolt with its SHA-256), verified before it got its name:
//! `etcd-snapshot-<cluster ID>-<member ID>-r<revision>-<UTC time>.db`, for example
//! `etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r1234-20261207T023700Z.db`. A file without
//! that name (a `.part` still being written, anything else in the directory) is not a backup.

use std::time::{Duration, SystemTime};

const PREFIX: &str = "etcd-snapshot-";
const SUFFIX: &str = ".db";

/// What a backup's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupName {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: i64,
    /// When it was taken, to the second.
    pub taken: SystemTime,
}

impl BackupName {
    pub fn file_name(&self) -> String {
        let time = humantime::format_rfc3339_seconds(self.taken).to_string();
        // 2026-12-07T02:37:00Z -> 20261207T023700Z
        let compact: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
        format!(
            "{PREFIX}{:016x}-{:016x}-r{}-{compact}{SUFFIX}",
            self.cluster_id, self.member_id, self.revision
        )
    }

    /// The backup a file name names, or None for any other file.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        let mut parts = rest.split('-');
        let cluster = parts.next()?;
        let member = parts.next()?;
        let revision = parts.next()?.strip_prefix('r')?;
        let time = parts.next()?;
        if parts.next().is_some() || cluster.len() != 16 || member.len() != 16 {
            return None;
        }
        let revision: i64 = revision.parse().ok().filter(|r| *r >= 0)?;
        // 20261207T023700Z -> 2026-12-07T02:37:00Z
        let b = time.as_bytes();
        let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
            return None;
        }
        let text = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &time[0..4],
            &time[4..6],
            &time[6..8],
            &time[9..11],
            &time[11..13],
            &time[13..15]
        );
        let taken = humantime::parse_rfc3339(&text).ok()?;
        Some(Self {
            cluster_id: u64::from_str_radix(cluster, 16).ok()?,
            member_id: u64::from_str_radix(member, 16).ok()?,
            revision,
            taken,
        })
    }
}

/// How many backups to keep, and for how long. None keeps every one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep: Option<usize>,
    pub keep_for: Option<Duration>,
}

/// Which of `backups` retention removes at `now`: per cluster, the newest is always kept; of the
/// others, those past the count (newest first) or older than `keep_for`. Returns their indexes.
pub fn expired(backups: &[BackupName], retention: Retention, now: SystemTime) -> Vec<usize> {
    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Newest first; the revision breaks a tie within one second.
    order.sort_by(|&a, &b| {
        (backups[b].taken, backups[b].revision).cmp(&(backups[a].taken, backups[a].revision))
    });
    let mut seen: Vec<(u64, usize)> = Vec::new();
    let mut out = Vec::new();
    for i in order {
        let b = &backups[i];
        let rank = match seen.iter_mut().find(|(c, _)| *c == b.cluster_id) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((b.cluster_id, 0));
                0
            }
        };
        if rank == 0 {
            continue;
        }
        let too_many = retention.keep.is_some_and(|k| rank >= k);
        let too_old =
            retention.keep_for.is_some_and(|d| now.duration_since(b.taken).is_ok_and(|age| age > d));
        if too_many || too_old {
            out.push(i);
        }
    }
    out.sort_unstable();
    out
}

/// A retention age: a Go duration ("36h", "90m") or whole days ("7d").
pub fn parse_age(text: &str) -> Result<Duration, String> {
    if let Some(days) = text.strip_suffix('d') {
        let days: u64 =
            days.parse().map_err(|_| format!("invalid duration {text:?}: expected 7d, 36h, 90m"))?;
        return Ok(Duration::from_secs(days * 86_400));
    }
    super::duration::parse_go_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000 + secs)
    }

    fn backup(cluster: u64, revision: i64, secs: u64) -> BackupName {
        BackupName { cluster_id: cluster, member_id: 0x8e9e05c52164694d, revision, taken: at(secs) }
    }

    #[test]
    fn names_round_trip_and_other_files_are_not_backups() {
        let b = backup(0xcdf818194e3a8c32, 1234, 0);
        let name = b.file_name();
        assert!(name.starts_with("etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r1234-20"), "{name}");
        assert!(name.ends_with("Z.db"));
        assert_eq!(BackupName::parse(&name), Some(b));
        for other in [
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r1234-20261207T023700Z.db.part",
            "etcd-snapshot-cdf8-8e9e05c52164694d-r1234-20261207T023700Z.db",
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r-1-20261207T023700Z.db",
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r12-2026120XT023700Z.db",
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r12-20261307T023700Z.db",
            // Multi-byte characters where the digits go: no slicing through them.
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r1-20261207T0é000Z.db",
            "etcd-snapshot-cdf818194e3a8c32-8e9e05c52164694d-r1-20261207T02370éZ.db",
            "notes.txt",
        ] {
            assert_eq!(BackupName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn retention_keeps_the_newest_of_each_cluster_whatever_the_rules() {
        let list = vec![backup(1, 10, 10), backup(1, 30, 30), backup(1, 20, 20), backup(2, 5, 5)];
        let keep = |keep, keep_for| Retention { keep, keep_for };
        assert_eq!(expired(&list, keep(None, None), at(100)), Vec::<usize>::new());
        assert_eq!(expired(&list, keep(Some(2), None), at(100)), vec![0]);
        assert_eq!(expired(&list, keep(Some(1), None), at(100)), vec![0, 2]);
        // Everything is older than a second: only each cluster's newest stays.
        assert_eq!(expired(&list, keep(None, Some(Duration::from_secs(1))), at(100)), vec![0, 2]);
        assert_eq!(expired(&list, keep(Some(5), Some(Duration::from_secs(85))), at(100)), vec![0]);
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("xd").is_err());
    }
}
