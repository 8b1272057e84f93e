//! Consensus: the raft log's durable store (the raft-rs driver and peer transport arrive with the
//! server).

pub mod wal;
