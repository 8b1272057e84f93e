//! `etcdeck node`, the process of an etcd member: configuration errors exit 1 before anything touches the disk; SIGTERM
//! and SIGINT stop the node cleanly (serving stops, the store is flushed, the data dir released).

use std::process::ExitCode;

use crate::node::config::{self, ConfigError};
use crate::node::server;

pub fn main(args: &[String]) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let loaded = match config::load(args, &env, |p| std::fs::read_to_string(p)) {
        Ok(loaded) => loaded,
        Err(ConfigError::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(why)) => {
            eprintln!("etcdeck node: {why}");
            return ExitCode::from(1);
        }
    };
    for w in &loaded.warnings {
        eprintln!("etcdeck node: warning: {w}");
    }
    let config = loaded.config;
    if let Err(e) = server::check(&config) {
        eprintln!("etcdeck node: {e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("etcdeck node: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        // Installed first: a SIGTERM during start-up (a supervisor that gave up) then stops the
        // member cleanly once it is up, where the default action would kill it mid-start.
        let signals = Signals::install();
        let running = match server::start(&config).await {
            Ok(r) => r,
            Err(server::ServerError::Removed) => {
                removed_notice();
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("etcdeck node: {e}");
                return ExitCode::from(1);
            }
        };
        let urls: Vec<String> = (config.listen_client_urls.iter().zip(&running.client_addrs))
            .map(|(u, a)| format!("{}://{a}", u.scheme))
            .collect();
        eprintln!(
            "etcdeck node: member {} ({}) of cluster {} serving client requests on {}",
            config.name,
            running.identity.member_id,
            running.identity.cluster_id,
            urls.join(", ")
        );
        if let Err(e) = server::notify_ready() {
            eprintln!("etcdeck node: warning: cannot notify systemd: {e}");
        }
        let removed = tokio::select! {
            _ = signals.wait() => false,
            _ = running.removed() => true,
        };
        if removed {
            // As etcd: a moment for the removal's commit to reach the others, then stop and exit 0.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            removed_notice();
        } else {
            eprintln!("etcdeck node: stopping");
        }
        running.stop().await;
        // Exit now, without running what is left (tasks, thread-local and exit handlers, the
        // store's last handles): after a failed disk those can wait on it for ever, and stop()
        // already flushed what it could. Everything this process printed went to stderr, unbuffered.
        // SAFETY: _exit ends the process at once; nothing after it runs.
        unsafe { libc::_exit(0) }
    })
}

/// etcd's words when a member finds it was removed from the cluster.
fn removed_notice() {
    eprintln!("etcdeck node: {}", crate::node::raft::transport::REMOVED_TEXT);
    eprintln!("etcdeck node: the data-dir used by this member must be removed.");
}

/// SIGTERM and SIGINT, caught from when `install` runs.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals(signal(SignalKind::terminate()).ok().zip(signal(SignalKind::interrupt()).ok()))
    }

    /// Waits for either signal.
    async fn wait(mut self) {
        let Some((term, int)) = self.0.as_mut() else {
            // Without signal handlers the process still ends on a signal, just without the clean stop.
            return std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
