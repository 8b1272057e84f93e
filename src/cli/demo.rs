//! `etcdeck demo`: a local cluster of etcdeck nodes with sample data, and the console on it, which may
//! kill, start and replace the members' processes.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::app::connection::ConnectConfig;

use crate::cli::console::ConsoleArgs;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many members to start
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Keep the members' data dirs and logs after the demo (removed otherwise)
    #[arg(long)]
    pub keep: bool,
    /// Also write a Kubernetes control plane's objects under /registry/, as kube-apiserver stores them
    #[arg(long)]
    pub kubernetes: bool,
}

/// The demo's members as the console may kill and start them.
struct DemoProcesses(std::sync::Arc<std::sync::Mutex<crate::node::local::LocalCluster>>);

impl crate::app::runtime::MemberProcesses for DemoProcesses {
    fn kill(&mut self, name: &str) -> Result<String, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        cluster.kill(name).map(|pid| format!("killed {name} (kill -9 {pid}); s starts it again"))
    }

    fn start(&mut self, name: &str) -> Result<String, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        cluster.start_member(name).map(|pid| format!("started {name} again (pid {pid}) on its data"))
    }

    fn replace_step(&mut self, step: &crate::app::replace::ProcessStep) -> Result<String, String> {
        use crate::app::replace::ProcessStep;
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        match step {
            ProcessStep::Stop { name } => cluster.stop(name),
            ProcessStep::Wipe { name } => cluster.wipe(name),
            ProcessStep::Start { name, initial_cluster } => cluster
                .start_existing(name, initial_cluster)
                .map(|pid| format!("started {name} (pid {pid}) with --initial-cluster-state existing")),
        }
    }

    fn begin_restore(
        &mut self,
        file: &std::path::Path,
        token: &str,
        members: &[String],
    ) -> Result<crate::app::runtime::RestoreJob, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        let options = cluster.stop_for_restore(members, token)?;
        let file = file.to_path_buf();
        Ok(Box::new(move || crate::node::local::restore_all(&file, &options)))
    }

    fn finish_restore(
        &mut self,
        restored: Option<&[(String, std::path::PathBuf)]>,
    ) -> Result<String, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        match restored {
            Some(dirs) => {
                let mut started = Vec::new();
                for (name, dir) in dirs {
                    cluster.start_on(name, dir)?;
                    started.push(format!(
                        "{name} on {}",
                        dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
                    ));
                }
                Ok(format!(
                    "started {}; the old data dirs are kept in {}",
                    started.join(", "),
                    cluster.dir.display()
                ))
            }
            None => {
                let stopped = std::mem::take(&mut cluster.stopped_for_restore);
                for name in &stopped {
                    cluster.start_member(name)?;
                }
                Ok(format!("started {} again on their data", stopped.join(", ")))
            }
        }
    }
}

/// Waits (30 s at most, or until Ctrl-C) for every demo member to answer healthy, then writes the
/// sample data. An error says why, with the end of an exited member's log.
fn demo_ready(
    runtime: &tokio::runtime::Runtime,
    cluster: &std::sync::Mutex<crate::node::local::LocalCluster>,
    endpoints: &[String],
    kubernetes: bool,
) -> Result<crate::demo::Seeded, String> {
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let state = match cluster.lock() {
                Ok(mut c) => c.health(),
                Err(_) => Err("the demo's process table is poisoned".into()),
            };
            match state {
                Ok(true) => break Ok(()),
                Ok(false) if tokio::time::Instant::now() > deadline => {
                    break Err("the members did not become healthy within 30 s".to_string())
                }
                Ok(false) => {}
                Err(e) => break Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tokio::signal::ctrl_c() => break Err("interrupted".to_string()),
            }
        }?;
        crate::demo::seed(endpoints, kubernetes)
            .await
            .map_err(|e| format!("cannot write the sample data: {e}"))
    })
}

/// `etcdeck demo`: a local cluster on free loopback ports, sample data, and the console on it. Every
/// member stops when the console does (also on Ctrl-C and on a panic: the cluster is dropped while
/// unwinding, and the members die with this process whatever ends it).
pub fn run(
    runtime: &tokio::runtime::Runtime,
    args: DemoArgs,
    console_args: ConsoleArgs,
    started: Instant,
) -> ExitCode {
    use crate::node::local::LocalCluster;
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: cannot find the etcdeck program to run its nodes: {e}");
            return ExitCode::from(1);
        }
    };
    let n = args.nodes as usize;
    // A port chosen free can be taken by another process before the member binds it; the new
    // cluster then starts again on other ports (it holds no data yet).
    let mut attempt = 1;
    let (cluster, dir, endpoints, seeded) = loop {
        let cluster = match LocalCluster::start(&program, n, args.keep) {
            Ok(c) => std::sync::Arc::new(std::sync::Mutex::new(c)),
            Err(e) => {
                eprintln!("Error: cannot start the demo's members: {e}");
                return ExitCode::from(1);
            }
        };
        let (dir, endpoints) = match cluster.lock() {
            Ok(c) => (c.dir.clone(), c.endpoints()),
            Err(_) => return ExitCode::from(1),
        };
        eprintln!(
            "etcdeck demo: starting {n} etcdeck nodes on {} (data and logs in {})",
            endpoints.join(", "),
            dir.display()
        );
        match demo_ready(runtime, &cluster, &endpoints, args.kubernetes) {
            Ok(seeded) => break (cluster, dir, endpoints, seeded),
            Err(e) => {
                let lost_port = cluster.lock().is_ok_and(|mut c| c.lost_a_port());
                if lost_port && attempt < 3 {
                    attempt += 1;
                    eprintln!("etcdeck demo: another process took a port first ({e}); starting again on other ports");
                    // Dropping the cluster stops its members and removes its directory (unless kept).
                    drop(cluster);
                    continue;
                }
                eprintln!("Error: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let config = match ConnectConfig::plain(&endpoints) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let options = crate::ui::ConsoleOptions {
        refresh_interval: console_args.refresh_interval.unwrap_or(Duration::from_secs(1)),
        started,
        processes: Some(Box::new(DemoProcesses(cluster.clone()))),
        contexts: None,
        backup_dir: console_args.backup_dir.clone(),
    };
    let outcome = runtime.block_on(crate::ui::run(config, options));
    drop(seeded);
    let kept = match cluster.lock() {
        Ok(mut c) => {
            c.shutdown();
            c.kept()
        }
        Err(_) => false,
    };
    drop(cluster);
    if kept {
        eprintln!("etcdeck demo: members stopped; data dirs and logs kept in {}", dir.display());
    } else {
        eprintln!("etcdeck demo: members stopped and {} removed", dir.display());
    }
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}
