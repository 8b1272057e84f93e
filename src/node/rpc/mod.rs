//! etcd's gRPC services, one file per service, and the HTTP endpoints served beside them.

pub mod auth;
pub mod authority;
pub mod cluster;
pub mod conn;
pub mod ctx;
pub mod forward;
pub mod forward_answer;
pub mod http;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod v2keys;
pub mod v2members;
pub mod v2reply;
pub mod watch;
