//! etcd's shared vocabulary, used by both faces (the node and the console) and importing nothing
//! else of the crate: Go durations, IDs and byte sizes as etcdctl prints them, peer and client URL
//! lists, etcdctl's table output, the TLS options both sides need, and readers of etcd's files:
//! bbolt backends and snapshots, the WAL, raft snapshot files and the requests in its entries; the
//! v2 keys API's JSON; DNS SRV discovery's lookups and rules; and how kube-apiserver stores its
//! objects in etcd.

pub mod auth_messages;
pub mod backend;
pub mod backup;
pub mod bbolt;
pub mod bbolt_writer;
pub mod duration;
pub mod format;
pub mod k8s;
pub mod mirror;
pub mod raft_request;
pub mod range;
pub mod snap;
pub mod snapshot;
pub mod srv;
pub mod table;
pub mod tls;
pub mod urls;
pub mod v2;
pub mod wal;
pub mod yaml;
