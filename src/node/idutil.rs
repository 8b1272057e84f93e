//! Unique IDs for requests and leases, as etcd's pkg/idutil makes them.

use std::sync::atomic::{AtomicU64, Ordering};

/// etcd's request ID generator (pkg/idutil): the member ID's low 16 bits, then the start time in
/// milliseconds (40 bits), then a counter; lease IDs are its values with the sign bit cleared.
pub struct IdGen {
    next: AtomicU64,
}

impl IdGen {
    pub fn new(member_id: u64) -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let prefix = (member_id & 0xffff) << 48;
        let suffix = (millis & ((1 << 40) - 1)) << 8;
        IdGen { next: AtomicU64::new(prefix | suffix) }
    }

    pub fn next(&self) -> i64 {
        ((self.next.fetch_add(1, Ordering::Relaxed) + 1) & ((1 << 63) - 1)) as i64
    }
}
