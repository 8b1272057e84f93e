//! The v2 store's counters, as etcd's v2store Stats counts them and /v2/stats/store shows them:
//! each operation's successes and failures, and the keys expired.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The operations counted, in etcd's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
    Delete,
    Update,
    Create,
    CompareAndSwap,
    CompareAndDelete,
}

/// Successes and failures of each operation (two counters each, in `Op`'s order), then the keys
/// expired.
#[derive(Debug, Default)]
pub struct StoreStats {
    counts: [AtomicU64; 15],
}

impl Clone for StoreStats {
    fn clone(&self) -> Self {
        let s = StoreStats::default();
        for (to, from) in s.counts.iter().zip(&self.counts) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        s
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    gets_success: u64,
    gets_fail: u64,
    sets_success: u64,
    sets_fail: u64,
    delete_success: u64,
    delete_fail: u64,
    update_success: u64,
    update_fail: u64,
    create_success: u64,
    create_fail: u64,
    compare_and_swap_success: u64,
    compare_and_swap_fail: u64,
    compare_and_delete_success: u64,
    compare_and_delete_fail: u64,
    expire_count: u64,
    watchers: u64,
}

impl StoreStats {
    pub fn record(&self, op: Op, ok: bool) {
        let at = op as usize * 2 + usize::from(!ok);
        self.counts[at].fetch_add(1, Ordering::Relaxed);
    }

    pub fn expired(&self, keys: u64) {
        self.counts[14].fetch_add(keys, Ordering::Relaxed);
    }

    /// /v2/stats/store: etcd's JSON, with the watches open now.
    pub fn json(&self, watchers: u64) -> String {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        let shown = Shown {
            gets_success: c(0),
            gets_fail: c(1),
            sets_success: c(2),
            sets_fail: c(3),
            delete_success: c(4),
            delete_fail: c(5),
            update_success: c(6),
            update_fail: c(7),
            create_success: c(8),
            create_fail: c(9),
            compare_and_swap_success: c(10),
            compare_and_swap_fail: c(11),
            compare_and_delete_success: c(12),
            compare_and_delete_fail: c(13),
            expire_count: c(14),
            watchers,
        };
        serde_json::to_string(&shown).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_shown_in_etcds_order() {
        let s = StoreStats::default();
        s.record(Op::Get, true);
        s.record(Op::Get, false);
        s.record(Op::CompareAndDelete, false);
        s.expired(3);
        assert_eq!(
            s.clone().json(2),
            r#"{"getsSuccess":1,"getsFail":1,"setsSuccess":0,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":1,"expireCount":3,"watchers":2}"#
        );
    }
}
