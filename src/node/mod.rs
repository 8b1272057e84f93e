//! The cluster node: an etcd v3 member. It knows nothing of `app` or `ui`.
//!
//! So far this holds the node's configuration (etcd's flags, ETCD_* variables and --config-file,
//! validated before anything touches disk) and its MVCC store on sled; the `node` command arrives
//! with the server itself (raft, gRPC services).

pub mod config;
pub mod mvcc;
pub mod urls;
