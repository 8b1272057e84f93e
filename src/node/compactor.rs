//! Auto compaction as etcd's v3compactor does it, proposing Compact through raft like a client would.
//!
//! - periodic (retention a duration): the revision is sampled every tenth of the compaction interval
//!   (the retention, at most an hour); once a retention has passed, and then every interval, the store
//!   is compacted to the revision sampled a retention ago.
//! - revision (retention a count): every five minutes, compact to the current revision minus the
//!   retention, if that moved.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::proto::PbCompactionRequest;

use crate::node::config::AutoCompaction;
use crate::node::error::NodeError;
use crate::node::raft::write::Write;
use crate::node::rpc::ctx::Ctx;

/// etcd's revision compactor checks this often.
pub const REVISION_INTERVAL: Duration = Duration::from_secs(300);

/// What the periodic compactor keeps: revisions sampled at a fixed step, oldest first.
pub struct PeriodicPlan {
    pub sample_every: Duration,
    pub compact_every: Duration,
    pub period: Duration,
    keep: usize,
    revs: VecDeque<i64>,
}

impl PeriodicPlan {
    pub fn new(period: Duration) -> Self {
        let compact_every = period.min(Duration::from_secs(3600));
        let sample_every = (compact_every / 10).max(Duration::from_millis(1));
        let keep = (period.as_nanos() / sample_every.as_nanos()) as usize + 1;
        PeriodicPlan { sample_every, compact_every, period, keep, revs: VecDeque::new() }
    }

    /// Records the current revision; returns the revision sampled a retention ago.
    pub fn sample(&mut self, rev: i64) -> i64 {
        self.revs.push_back(rev);
        while self.revs.len() > self.keep {
            self.revs.pop_front();
        }
        self.revs.front().copied().unwrap_or(rev)
    }
}

async fn compact(ctx: &Ctx, revision: i64) {
    let result = ctx.write(Write::Compact(PbCompactionRequest { revision, physical: false })).await;
    match result {
        Ok(_) => eprintln!("etcdeck node: auto compaction: compacted to revision {revision}"),
        // Someone compacted further already: nothing to do.
        Err(s) if s.message() == NodeError::Compacted.to_string() => {}
        Err(s) => eprintln!("etcdeck node: auto compaction to revision {revision} failed: {}", s.message()),
    }
}

/// Runs until `stop` turns true.
pub async fn run(
    ctx: Ctx,
    mode: AutoCompaction,
    revision_every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    match mode {
        AutoCompaction::Disabled => {}
        AutoCompaction::Periodic(period) => {
            let mut plan = PeriodicPlan::new(period);
            let started = tokio::time::Instant::now();
            let mut next_compaction = started + plan.period;
            let mut tick = tokio::time::interval(plan.sample_every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let current = ctx.handle.hub.revision();
                let target = plan.sample(current);
                if tokio::time::Instant::now() >= next_compaction {
                    next_compaction = tokio::time::Instant::now() + plan.compact_every;
                    compact(&ctx, target).await;
                }
            }
        }
        AutoCompaction::Revision(keep) => {
            let mut last = 0;
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + revision_every, revision_every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let target = ctx.handle.hub.revision() - keep as i64;
                if target <= 0 || target == last {
                    continue;
                }
                last = target;
                compact(&ctx, target).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_samples_a_tenth_of_the_interval_and_targets_a_retention_ago() {
        let p = PeriodicPlan::new(Duration::from_secs(10 * 3600));
        assert_eq!(p.compact_every, Duration::from_secs(3600), "compacts hourly at most");
        assert_eq!(p.sample_every, Duration::from_secs(360));
        let mut p = PeriodicPlan::new(Duration::from_secs(60));
        assert_eq!((p.sample_every, p.compact_every), (Duration::from_secs(6), Duration::from_secs(60)));
        let mut target = 0;
        for rev in 1..=20 {
            target = p.sample(rev * 100);
        }
        // 11 samples span 60 s: the oldest is the revision of a minute ago.
        assert_eq!(target, 1000);
    }
}
