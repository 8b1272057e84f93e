//! Integration tests, in one binary to keep link time down.
//!
//! The tests against real etcd need Debian's `etcd` and `etcdctl` (3.4) on PATH (or ETCD_BIN and
//! ETCDCTL_BIN), and the console tests need tmux. Without them they skip with a printed reason,
//! unless ETCDECK_REQUIRE_INTEROP=1 (set by .ci/run), which makes a missing binary a failure.

mod support;

mod backup;
mod bench;
mod cli;
mod console_auth;
mod console_edit;
mod console_kubernetes;
mod console_mirror;
mod console_safety;
mod console_space;
mod console_tmux;
mod dashboard_etcd;
mod etcd_datadir;
mod etcd_migration;
mod etcd_snapshot;
mod faults;
mod kubernetes_get;
mod mirror;
mod node_api;
mod node_auth;
mod node_cluster;
mod node_damage;
mod node_discovery;
mod node_discovery_srv;
mod node_disk;
mod node_etcdctl;
mod node_kv;
mod node_process;
mod node_tls;
mod node_v2;
mod tidy;
mod tls_auth_etcd;
