//! Workers: tokio tasks that run effects against etcd with etcd-client and send a `Msg` back. Each
//! request has its own timeout, so a dead or frozen member only ever costs its own row.

mod auth;
pub mod connect;
mod errors;
pub mod insecure;
mod mirrors;
mod pool;
pub mod read;
pub mod snapshot;
mod space;
mod watch;

pub use connect::connect;
pub use errors::error_text;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;

use crate::app::connection::ConnectConfig;
use crate::app::effect::Effect;
use crate::app::members::MemberOp;
use crate::app::msg::Msg;

use crate::app::client::pool::{failed, panic_text, Pool};

/// Runs effects. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Worker {
    pool: Arc<Pool>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Drop for Worker {
    /// The console moved to another context (or quits): its watch tails stop with it.
    fn drop(&mut self) {
        for tasks in [&self.pool.tails, &self.pool.scans] {
            if let Ok(tasks) = tasks.lock() {
                for task in tasks.values() {
                    task.abort();
                }
            }
        }
    }
}

impl Worker {
    pub fn new(config: ConnectConfig, tx: mpsc::UnboundedSender<Msg>) -> Self {
        let pool = Pool {
            config,
            clients: Mutex::new(HashMap::new()),
            tails: Mutex::new(HashMap::new()),
            scans: Mutex::new(HashMap::new()),
            last_value: Mutex::new(None),
        };
        Self { pool: Arc::new(pool), tx }
    }

    /// Starts the effect on the tokio runtime and returns at once; the reply arrives as a `Msg`.
    /// Every effect gets exactly one reply: a panic in the worker (a bug) becomes an error reply, so
    /// the request does not stay in flight forever.
    pub fn run(&self, effect: Effect) {
        match effect {
            Effect::Watch { tail, prefix, is_prefix, start } => {
                let task = tokio::spawn(watch::run(
                    self.pool.clone(),
                    self.tx.clone(),
                    tail,
                    prefix,
                    is_prefix,
                    start,
                ));
                if let Ok(mut tails) = self.pool.tails.lock() {
                    if let Some(old) = tails.insert(tail, task.abort_handle()) {
                        old.abort();
                    }
                }
                return;
            }
            Effect::StopWatch { tail } => {
                if let Some(task) = self.pool.tails.lock().ok().and_then(|mut t| t.remove(&tail)) {
                    task.abort();
                }
                return;
            }
            Effect::Space { request, prefix } => {
                let task = tokio::spawn(space::run(self.pool.clone(), self.tx.clone(), request, prefix));
                // Cancelled by StopSpace, and with the worker.
                if let Ok(mut scans) = self.pool.scans.lock() {
                    scans.insert(request, task.abort_handle());
                }
                return;
            }
            Effect::StopSpace { request } => {
                if let Some(task) = self.pool.scans.lock().ok().and_then(|mut t| t.remove(&request)) {
                    task.abort();
                }
                return;
            }
            Effect::SaveSnapshot { request, endpoint, path, backup } => {
                let (pool, tx) = (self.pool.clone(), self.tx.clone());
                tokio::spawn(async move {
                    // Progress at most every 100 ms.
                    let mut last = std::time::Instant::now();
                    let progress_tx = tx.clone();
                    let progress = move |bytes: u64| {
                        if last.elapsed() >= Duration::from_millis(100) {
                            last = std::time::Instant::now();
                            let _ = progress_tx.send(Msg::SnapshotProgress { request, bytes });
                        }
                    };
                    let result = if backup {
                        let part = crate::app::snapshot::backup_part_path(&path);
                        snapshot::save_backup(&pool.config, &endpoint, &path, &part, progress).await
                    } else {
                        snapshot::save_from(&pool.config, &endpoint, &path, progress).await
                    };
                    let _ = tx.send(Msg::SnapshotSaved { request, result });
                });
                return;
            }
            Effect::Member { request, op: MemberOp::DefragmentAll { members } } => {
                let (pool, tx) = (self.pool.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let progress = |text: String| {
                        let _ = tx.send(Msg::MemberProgress { request, text });
                    };
                    let result = pool.defragment_rolling(&members, progress).await;
                    let _ = tx.send(Msg::Member { request, result });
                });
                return;
            }
            _ => {}
        }
        let pool = self.pool.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let msg = match AssertUnwindSafe(pool.execute(effect.clone())).catch_unwind().await {
                Ok(msg) => msg,
                Err(panic) => failed(effect, format!("internal error in etcdeck: {}", panic_text(&*panic))),
            };
            // The receiver is gone only when the console is shutting down.
            let _ = tx.send(msg);
        });
    }
}
