//! Consensus: the raft log's write-ahead log and raft-rs's `Storage` over it (the driver that owns the
//! RawNode, and the peer transport, arrive with the server).

pub mod driver;
pub mod storage;
pub mod wal;
