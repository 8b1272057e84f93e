//! The cluster node: an etcd v3 member. It knows nothing of `app` or `ui`.
//!
//! So far this holds the node's configuration (etcd's flags, ETCD_* variables and --config-file,
//! validated before anything touches disk), its MVCC store on sled and the raft log's write-ahead
//! log; the `node` command arrives with the server itself (raft-rs driver, gRPC services).

pub mod command;
pub mod config;
pub mod error;
pub mod lease;
pub mod metrics;
pub mod mvcc;
pub mod raft;
pub mod rpc;
pub mod server;
pub mod urls;
pub mod watch;
