//! IDs as etcd makes them: unique request and lease IDs (its pkg/idutil), and member and cluster IDs
//! derived from peer URLs and the cluster token.

use std::sync::atomic::{AtomicU64, Ordering};

use sha1::{Digest, Sha1};

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

/// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the sorted peer URLs and the token.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut h = Sha1::new();
    for u in &urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs, 8 bytes big-endian each.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}
