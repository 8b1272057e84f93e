//! Consensus: the raft log's write-ahead log and raft-rs's `Storage` over it, the driver that owns the
//! RawNode and runs the Ready loop, the request codec (`write`), the state machine's apply, the
//! membership checks, and the peer transport.

mod apply;
mod bootstrap;
pub mod driver;
pub mod etcd_log;
pub mod membership;
pub mod options;
pub mod snapshots;
pub mod storage;
pub mod transport;
pub mod wal;
pub mod write;
