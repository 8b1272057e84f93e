//! etcdeck's command line. `etcdeck` (or `etcdeck console`) opens the console; `etcdeck status` prints
//! the dashboard once for scripts; `etcdeck node` runs an etcd member with etcd's own flags. Each
//! subcommand lives in src/cli/; this file parses the command line and dispatches.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use etcdeck::app::connection::ConnectionArgs;
use etcdeck::cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "etcdeck", version, about = "A terminal console for etcd v3 clusters")]
struct Cli {
    #[command(flatten)]
    conn: ConnectionArgs,

    /// Connect through a saved context, config.toml's [contexts.NAME]: its settings replace the
    /// connection flags; :ctx NAME switches in the console
    #[arg(long, env = "ETCDECK_CONTEXT", global = true)]
    context: Option<String>,

    /// Console options, for `etcdeck` without a command
    #[command(flatten)]
    console: cli::console::ConsoleArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the console (the default when no command is given)
    Console(cli::console::ConsoleArgs),
    /// Print the cluster dashboard once; exit 0 only when the cluster is healthy
    Status(cli::status::StatusArgs),
    /// Start a local cluster of etcdeck nodes with sample data and open the console on it
    Demo(cli::demo::DemoArgs),
    /// Load-test a cluster, as etcd's benchmark tool does
    Bench(cli::bench::BenchArgs),
    /// Save a member's snapshot, read a snapshot's status or restore it (etcd's or etcdeck's), as etcdctl snapshot does
    #[command(subcommand)]
    Snapshot(cli::snapshot::SnapshotCommand),
    /// Read keys; Kubernetes values print as their objects' YAML or JSON, as kubectl prints them
    Get(cli::get::GetArgs),
    /// Decode a value kube-apiserver stored (from a file or stdin) to its object's YAML or JSON
    Decode(cli::decode::DecodeArgs),
    /// Mirror a cluster's keys into another, resuming after a crash where it stopped (etcdctl make-mirror's flags)
    Mirror(Box<cli::mirror::MirrorArgs>),
    /// Back up a cluster: verified snapshots, once or on a schedule, with retention and uploads
    Backup(Box<cli::backup::BackupArgs>),
    /// Run an etcd member, configured with etcd's flags and ETCD_* variables (etcdeck node --help)
    #[command(disable_help_flag = true)]
    Node {
        /// etcd's flags, e.g. --name, --data-dir, --listen-client-urls
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<String>,
    },
}

fn main() -> ExitCode {
    let started = Instant::now();
    // The node reads etcd's flags (Go style, ETCD_* variables, --config-file) itself.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("node") {
        return cli::node::main(&args[2..]);
    }
    let cli = Cli::parse();
    let config = match cli::connect_config(&cli.conn, cli.context.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Some(Command::Status(args)) => {
            if cli.console.timings || cli.console.refresh_interval.is_some() || cli.console.read_only {
                eprintln!(
                    "Error: --timings, --refresh-interval and --read-only are console options; status refreshes once and never writes"
                );
                return ExitCode::from(1);
            }
            runtime.block_on(cli::status::run(config, args))
        }
        Some(Command::Console(args)) => {
            cli::console::run(&runtime, config, cli.conn.clone(), args.or(cli.console), started)
        }
        None => cli::console::run(&runtime, config, cli.conn.clone(), cli.console, started),
        Some(Command::Demo(args)) => cli::demo::run(&runtime, args, cli.console, started),
        Some(Command::Bench(args)) => cli::bench::run(&runtime, &config, args),
        Some(Command::Snapshot(command)) => cli::snapshot::run(&runtime, &config, command),
        Some(Command::Get(args)) => cli::get::run(&runtime, &config, args),
        Some(Command::Decode(args)) => cli::decode::run(args),
        Some(Command::Mirror(args)) => cli::mirror::run(&runtime, &config, *args),
        Some(Command::Backup(args)) => cli::backup::run(&runtime, config, *args),
        // Handled before parsing; reached only through an abbreviation clap expanded.
        Some(Command::Node { flags }) => cli::node::main(&flags),
    }
}
