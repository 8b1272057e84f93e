//! One running mirror: its two sides, its key mapping and what it reports.

use std::sync::Arc;

use crate::etcd::mirror::KeyMap;
use crate::mirror::cluster::Cluster;
use crate::mirror::sink::Sink;
use crate::mirror::stats::Stats;

/// A batch's bytes: well under etcd's default --max-request-bytes (1.5 MiB).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

pub struct Mirror {
    pub source: Cluster,
    /// The destination, with the checkpoint.
    pub sink: Sink,
    pub map: KeyMap,
    pub stats: Arc<Stats>,
    /// Operations per destination transaction, the checkpoint's included.
    pub max_ops: usize,
}
