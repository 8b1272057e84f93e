//! etcd's shared vocabulary, used by both faces (the node and the console) and importing nothing
//! else of the crate: Go durations, IDs and byte sizes as etcdctl prints them, peer and client URL
//! lists, etcdctl's table output, and the TLS options both sides need.

pub mod duration;
pub mod format;
pub mod table;
pub mod tls;
pub mod urls;
