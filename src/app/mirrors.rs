//! `:mirror`: the mirrors writing into this cluster, as their checkpoints in it say (the keys under
//! `__etcdeck_mirror/` that `etcdeck mirror` writes with every batch, and every 10 s while idle).

use std::time::{Duration, SystemTime};

use crate::etcd::mirror::{Checkpoint, Phase};

/// A mirror that has not written its checkpoint for this long is shown as not running (a running
/// one writes it at least every 10 s).
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// One checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRow {
    pub key: String,
    /// The destination revision that last wrote it.
    pub mod_revision: i64,
    pub checkpoint: Result<Checkpoint, String>,
}

impl MirrorRow {
    /// How long ago it was written, by the console's clock.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        let cp = self.checkpoint.as_ref().ok()?;
        let written = SystemTime::UNIX_EPOCH + Duration::from_millis(cp.updated_unix_ms);
        Some(now.duration_since(written).unwrap_or_default())
    }

    /// What the row says in a word or two: copying, watching (caught up or behind), or stale.
    pub fn state(&self, now: SystemTime) -> String {
        let Ok(cp) = &self.checkpoint else { return "unreadable".into() };
        if self.age(now).is_some_and(|a| a > STALE_AFTER) {
            return "not running?".into();
        }
        match (cp.phase, cp.revisions_behind()) {
            (Phase::Copy, _) => "copying".into(),
            (Phase::Watch, 0) => "caught up".into(),
            (Phase::Watch, n) => format!("{n} behind"),
        }
    }
}

/// The view: the last read of the checkpoints, re-read every refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorView {
    /// The read in flight or last answered (0: none yet).
    pub request: u64,
    pub rows: Vec<MirrorRow>,
    pub error: Option<String>,
    /// Whether a read has answered.
    pub read: bool,
    pub selected: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        phase: Phase,
        revision: i64,
        source_revision: i64,
        written_secs_ago: u64,
    ) -> (MirrorRow, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cp = Checkpoint {
            source_cluster_id: "1".into(),
            source_endpoints: vec![],
            prefix: "/a/".into(),
            dest_prefix: "/a/".into(),
            phase,
            revision,
            sub: 0,
            after: None,
            source_revision,
            updated_unix_ms: (1_000_000 - written_secs_ago) * 1000,
            synced: 0,
            writer: "w".into(),
        };
        (MirrorRow { key: "__etcdeck_mirror//a/".into(), mod_revision: 9, checkpoint: Ok(cp) }, now)
    }

    #[test]
    fn a_row_says_what_its_mirror_is_doing() {
        let (r, now) = row(Phase::Watch, 10, 10, 2);
        assert_eq!((r.state(now), r.age(now)), ("caught up".to_string(), Some(Duration::from_secs(2))));
        let (r, now) = row(Phase::Watch, 10, 14, 2);
        assert_eq!(r.state(now), "4 behind");
        let (r, now) = row(Phase::Copy, 10, 10, 2);
        assert_eq!(r.state(now), "copying");
        let (r, now) = row(Phase::Watch, 10, 10, 31);
        assert_eq!(r.state(now), "not running?");
        let bad = MirrorRow { key: "k".into(), mod_revision: 1, checkpoint: Err("x".into()) };
        assert_eq!(bad.state(now), "unreadable");
    }
}
