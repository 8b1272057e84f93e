//! The lessor's clock: when each lease expires. Which leases exist, their TTLs and their keys live in
//! the store (they change only through raft); expiry is the leader's alone to decide, and an expired
//! lease is revoked by a LeaseRevoke entry through raft, as etcd's lessor does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// etcd's MaxLeaseTTL: about 285 years, in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

pub struct Lessor {
    expiry: Mutex<HashMap<i64, Instant>>,
    /// The shortest TTL granted, in seconds: 1.5 election timeouts, rounded up (etcd's minLeaseTTL).
    pub min_ttl: i64,
}

impl Lessor {
    pub fn new(election_timeout: Duration) -> Self {
        let min = election_timeout.as_secs_f64() * 1.5;
        Lessor { expiry: Mutex::new(HashMap::new()), min_ttl: (min.ceil() as i64).max(1) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        // The table holds plain data; a panic elsewhere cannot leave it half-changed.
        self.expiry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The TTL a grant of `ttl` gets.
    pub fn effective_ttl(&self, ttl: i64) -> i64 {
        ttl.max(self.min_ttl)
    }

    /// Starts (or restarts) a lease's clock: a full TTL from now. Used at grant, and for every lease
    /// when this member becomes leader, as etcd's Promote does.
    pub fn start(&self, id: i64, ttl: i64) {
        self.table().insert(id, Instant::now() + secs(ttl));
    }

    pub fn forget(&self, id: i64) {
        self.table().remove(&id);
    }

    /// Restarts the clock of a lease that has not yet expired (a keepalive); an expired lease is on
    /// its way to being revoked and cannot be saved, as in etcd.
    pub fn renew(&self, id: i64, ttl: i64) -> bool {
        let mut table = self.table();
        match table.get_mut(&id) {
            Some(at) if *at > Instant::now() => {
                *at = Instant::now() + secs(ttl);
                true
            }
            _ => false,
        }
    }

    /// Whole seconds left (etcd truncates), or None if the lease is unknown here.
    pub fn remaining(&self, id: i64) -> Option<i64> {
        let at = *self.table().get(&id)?;
        Some(at.saturating_duration_since(Instant::now()).as_secs() as i64)
    }

    /// Leases whose time is up, at most `limit` of them.
    pub fn expired(&self, limit: usize) -> Vec<i64> {
        let now = Instant::now();
        let mut out: Vec<(Instant, i64)> =
            self.table().iter().filter(|(_, at)| **at <= now).map(|(id, at)| (*at, *id)).collect();
        out.sort();
        out.into_iter().take(limit).map(|(_, id)| id).collect()
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(ttl.clamp(0, MAX_LEASE_TTL) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_ttl_is_one_and_a_half_election_timeouts_rounded_up() {
        assert_eq!(Lessor::new(Duration::from_millis(1000)).min_ttl, 2);
        assert_eq!(Lessor::new(Duration::from_millis(2000)).min_ttl, 3);
        assert_eq!(Lessor::new(Duration::from_millis(100)).effective_ttl(5), 5);
        assert_eq!(Lessor::new(Duration::from_millis(1000)).effective_ttl(1), 2);
    }

    #[test]
    fn clocks_expire_renew_and_are_forgotten() {
        let l = Lessor::new(Duration::from_millis(100));
        l.start(1, 0);
        l.start(2, 100);
        assert_eq!(l.expired(10), vec![1]);
        assert!(matches!(l.remaining(2), Some(99 | 100)));
        l.start(1, 100);
        assert!(l.expired(10).is_empty(), "a renewal restarts the clock");
        l.forget(2);
        assert_eq!(l.remaining(2), None);
    }
}
