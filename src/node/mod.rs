//! The cluster node: an etcd v3 member. It knows nothing of `app` or `ui`.
//!
//! `etcdeck node`: configuration (etcd's flags, ETCD_* variables and --config-file, validated before
//! anything touches disk), the raft driver and its write-ahead log, the MVCC store on sled, leases,
//! the watch hub, auto compaction, and etcd's gRPC services and HTTP endpoints. `local` runs a
//! cluster of node processes on loopback for `etcdeck demo`.

pub mod auth;
pub mod compactor;
pub mod config;
pub mod discovery;
pub mod discovery_srv;
pub mod error;
pub mod etcd_dir;
pub mod fsutil;
pub mod identity;
pub mod idutil;
pub mod lease;
pub mod local;
pub mod metrics;
pub mod mvcc;
pub mod raft;
pub mod rpc;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod v2stats;
pub mod v2store;
pub mod watch;
