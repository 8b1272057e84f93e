//! Consensus: the raft log's write-ahead log and raft-rs's `Storage` over it, the driver that owns the
//! RawNode, and the peer transport.

pub mod driver;
pub mod storage;
pub mod transport;
pub mod wal;
