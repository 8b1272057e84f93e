//! etcdeck: a terminal console for etcd v3 clusters.
//!
//! `app` is the console's brain (state, actions, the pure update function and the workers that talk to
//! etcd); `ui` is the terminal edge that renders `app::State` and feeds key presses back in; `node`
//! is the etcd v3 server; `etcd` is the vocabulary both faces share, and imports nothing of the crate;
//! `cli` holds the subcommands (a file each), which main.rs dispatches to; `bench` is etcd's
//! benchmark tool, `demo` the demo's sample data, `mirror` and `backup` etcdeck mirror and
//! backup, all clients of clusters. See ARCHITECTURE.md.

pub mod app;
pub mod backup;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod etcd;
pub mod mirror;
pub mod node;
pub mod ui;
