//! etcdeck's command line. `etcdeck` (or `etcdeck console`) opens the console; `etcdeck status` prints
//! the dashboard once for scripts; `etcdeck node` runs an etcd member with etcd's own flags.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use etcdeck::app::connection::{ConnectConfig, ConnectionArgs};
use etcdeck::app::report;
use etcdeck::app::runtime::Runtime;
use etcdeck::etcd::duration::parse_go_duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The dashboard's refresh period unless --refresh-interval says otherwise.
const DEFAULT_REFRESH: Duration = Duration::from_secs(2);

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
    console: ConsoleArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the console (the default when no command is given)
    Console(ConsoleArgs),
    /// Print the cluster dashboard once; exit 0 only when the cluster is healthy
    Status(StatusArgs),
    /// Start a local cluster of etcdeck nodes with sample data and open the console on it
    Demo(DemoArgs),
    /// Load-test a cluster, as etcd's benchmark tool does
    Bench(BenchArgs),
    /// Save a member's snapshot, or read an etcdeck snapshot's status, as etcdctl snapshot does
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Run an etcd member, configured with etcd's flags and ETCD_* variables (etcdeck node --help)
    #[command(disable_help_flag = true)]
    Node {
        /// etcd's flags, e.g. --name, --data-dir, --listen-client-urls
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Stores an etcd node backend snapshot to a given file (from the one endpoint given)
    Save { filename: std::path::PathBuf },
    /// Restores an etcd member snapshot to an etcd directory (an etcdeck node's snapshot)
    Restore(RestoreArgs),
    /// Gets backend snapshot status of a given file (an etcdeck node's snapshot)
    Status {
        filename: std::path::PathBuf,
        /// Output format
        #[arg(short = 'w', long = "write-out", value_enum, default_value_t = SnapshotWriteOut::Simple)]
        write_out: SnapshotWriteOut,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// How many members to start
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    nodes: u8,
    /// Keep the members' data dirs and logs after the demo (removed otherwise)
    #[arg(long)]
    keep: bool,
}

/// etcdctl snapshot restore's flags.
#[derive(clap::Args)]
struct RestoreArgs {
    filename: std::path::PathBuf,
    /// Path to the data directory [default: <name>.etcd]
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Path to the WAL directory (use --data-dir if none given)
    #[arg(long)]
    wal_dir: Option<std::path::PathBuf>,
    /// Initial cluster configuration for restore bootstrap [default: <name>=http://localhost:2380]
    #[arg(long)]
    initial_cluster: Option<String>,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(long, default_value = "http://localhost:2380")]
    initial_advertise_peer_urls: String,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    name: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long)]
    skip_hash_check: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SnapshotWriteOut {
    Simple,
    Table,
    Json,
}

/// etcd benchmark's flags common to its commands.
#[derive(clap::Args)]
struct BenchArgs {
    /// Total number of gRPC connections
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// Total number of gRPC clients
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// Use full floating point precision
    #[arg(long, global = true)]
    precise: bool,
    /// Connect only to the leader node
    #[arg(long, global = true)]
    target_leader: bool,
    /// Output format: simple (etcd benchmark's text) or json
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = BenchWriteOut::Simple)]
    write_out: BenchWriteOut,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchWriteOut {
    Simple,
    Json,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Benchmark put
    Put(PutArgs),
    /// Benchmark txn-put
    TxnPut(TxnPutArgs),
    /// Benchmark range
    Range(RangeArgs),
    /// Benchmark watch
    Watch(WatchArgs),
    /// Benchmark watch latency: from a put's answer to every watcher's event
    WatchLatency(WatchLatencyArgs),
    /// Benchmark lease keepalive
    LeaseKeepalive(LeaseKeepaliveArgs),
}

#[derive(clap::Args)]
struct PutArgs {
    /// Key size of put request
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    /// Value size of put request
    #[arg(long, default_value_t = 8)]
    val_size: usize,
    /// Maximum puts per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Total number of put requests
    #[arg(long, default_value_t = 10000)]
    total: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    key_space_size: u64,
    /// Use sequential keys
    #[arg(long)]
    sequential_keys: bool,
    /// Keys as zero-padded decimal numbers, readable in the console (etcd's tool writes varints)
    #[arg(long)]
    decimal_keys: bool,
}

#[derive(clap::Args)]
struct TxnPutArgs {
    /// Key size of txn put
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    /// Value size of txn put
    #[arg(long, default_value_t = 8)]
    val_size: usize,
    /// Number of puts per txn
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    txn_ops: u64,
    /// Maximum txns per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Total number of txn requests
    #[arg(long, default_value_t = 10000)]
    total: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    key_space_size: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Consistency {
    /// Linearizable
    L,
    /// Serializable
    S,
}

#[derive(clap::Args)]
struct RangeArgs {
    /// The key (the range's start)
    #[arg(id = "range_key", value_name = "KEY")]
    key: String,
    /// The range's end (exclusive)
    #[arg(id = "range_end", value_name = "END")]
    end: Option<String>,
    /// Maximum range requests per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Total number of range requests
    #[arg(long, default_value_t = 10000)]
    total: usize,
    /// Linearizable(l) or Serializable(s)
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    consistency: Consistency,
}

#[derive(clap::Args)]
struct WatchArgs {
    /// Total watch streams
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Total watchers per stream
    #[arg(long, default_value_t = 100)]
    watch_per_stream: usize,
    /// Total number of keys to be watched
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    watched_key_total: u64,
    /// Number of keys to put per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    put_rate: u64,
    /// Number of put requests
    #[arg(long, default_value_t = 1000)]
    put_total: usize,
    /// Key size of watch request
    #[arg(long, default_value_t = 32)]
    key_size: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    key_space_size: u64,
    /// Use sequential keys
    #[arg(long)]
    sequential_keys: bool,
}

#[derive(clap::Args)]
struct WatchLatencyArgs {
    /// Total number of put requests
    #[arg(long, default_value_t = 10000)]
    total: usize,
    /// Number of keys to put per second
    #[arg(long, default_value_t = 100)]
    put_rate: u64,
    /// Key size of watch response
    #[arg(long, default_value_t = 32)]
    key_size: usize,
    /// Value size of watch response
    #[arg(long, default_value_t = 32)]
    val_size: usize,
}

#[derive(clap::Args)]
struct LeaseKeepaliveArgs {
    /// Total number of lease keepalive requests
    #[arg(long, default_value_t = 10000)]
    total: usize,
}

#[derive(clap::Args)]
struct ConsoleArgs {
    /// How often the dashboard refreshes, a Go duration [default: 2s]; + and - change it while running
    #[arg(long, value_parser = parse_refresh_interval)]
    refresh_interval: Option<Duration>,

    /// On exit, print how long the first complete dashboard frame took after start, how long each page of
    /// keys took from request to frame, key-press-to-frame latencies, and the peak RSS
    #[arg(long)]
    timings: bool,

    /// Disable every write (also set per endpoint with `read-only = true` in ~/.config/etcdeck/config.toml)
    #[arg(long)]
    read_only: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Output format
    #[arg(short = 'w', long = "write-out", value_enum, default_value_t = WriteOut::Table)]
    write_out: WriteOut,
}

#[derive(Clone, Copy, ValueEnum)]
enum WriteOut {
    Table,
    Json,
}

fn main() -> ExitCode {
    let started = Instant::now();
    // The node reads etcd's flags (Go style, ETCD_* variables, --config-file) itself.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("node") {
        return etcdeck::node::command::main(&args[2..]);
    }
    let cli = Cli::parse();
    let config = match connect_config(&cli) {
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
            runtime.block_on(status(config, args))
        }
        Some(Command::Console(args)) => {
            let merged = ConsoleArgs {
                refresh_interval: args.refresh_interval.or(cli.console.refresh_interval),
                timings: args.timings || cli.console.timings,
                read_only: args.read_only || cli.console.read_only,
            };
            console(&runtime, config, cli.conn.clone(), merged, started)
        }
        None => console(&runtime, config, cli.conn.clone(), cli.console, started),
        Some(Command::Demo(args)) => demo(&runtime, args, cli.console, started),
        Some(Command::Bench(args)) => {
            use etcdeck::app::bench::{run, Common, Workload};
            let workload = match args.command {
                BenchCommand::Put(a) => Workload::Put {
                    total: a.total,
                    key_size: a.key_size,
                    val_size: a.val_size,
                    key_space: a.key_space_size as usize,
                    sequential: a.sequential_keys,
                    decimal: a.decimal_keys,
                    rate: a.rate,
                },
                BenchCommand::TxnPut(a) => Workload::TxnPut {
                    total: a.total,
                    key_size: a.key_size,
                    val_size: a.val_size,
                    txn_ops: a.txn_ops as usize,
                    key_space: a.key_space_size as usize,
                    rate: a.rate,
                },
                BenchCommand::Range(a) => Workload::Range {
                    total: a.total,
                    key: a.key.into_bytes(),
                    end: a.end.map(String::into_bytes),
                    serializable: matches!(a.consistency, Consistency::S),
                    rate: a.rate,
                },
                BenchCommand::Watch(a) => Workload::Watch {
                    streams: a.streams,
                    watch_per_stream: a.watch_per_stream,
                    watched_keys: a.watched_key_total as usize,
                    put_total: a.put_total,
                    put_rate: a.put_rate,
                    key_size: a.key_size,
                    key_space: a.key_space_size as usize,
                    sequential: a.sequential_keys,
                },
                BenchCommand::WatchLatency(a) => Workload::WatchLatency {
                    total: a.total,
                    put_rate: a.put_rate,
                    key_size: a.key_size,
                    val_size: a.val_size,
                },
                BenchCommand::LeaseKeepalive(a) => Workload::LeaseKeepalive { total: a.total },
            };
            let json = matches!(args.write_out, BenchWriteOut::Json);
            let common = Common {
                conns: args.conns as usize,
                clients: args.clients as usize,
                precise: args.precise,
                target_leader: args.target_leader,
                progress: !json,
            };
            match runtime.block_on(run(&config, &common, &workload)) {
                Ok(outcome) => {
                    if json {
                        println!("{}", outcome.json());
                    } else {
                        println!("{}", outcome.text());
                    }
                    if outcome.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Snapshot(SnapshotCommand::Save { filename })) => {
            match runtime.block_on(etcdeck::app::snapshot::save(&config, &filename)) {
                Ok(_) => {
                    println!("Snapshot saved at {}", filename.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Snapshot(SnapshotCommand::Restore(a))) => {
            let options = etcdeck::node::snapshot::RestoreOptions {
                data_dir: a.data_dir.unwrap_or_else(|| format!("{}.etcd", a.name).into()),
                wal_dir: a.wal_dir,
                initial_cluster: a
                    .initial_cluster
                    .unwrap_or_else(|| format!("{}=http://localhost:2380", a.name)),
                initial_cluster_token: a.initial_cluster_token,
                initial_advertise_peer_urls: a.initial_advertise_peer_urls,
                name: a.name,
                skip_hash_check: a.skip_hash_check,
            };
            match etcdeck::node::snapshot::restore(&a.filename, &options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Snapshot(SnapshotCommand::Status { filename, write_out })) => {
            match etcdeck::node::snapshot::status(&filename) {
                Ok(st) => {
                    let row = st.row();
                    match write_out {
                        SnapshotWriteOut::Simple => println!("{}", row.join(", ")),
                        SnapshotWriteOut::Json => println!(
                            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}",
                            st.hash, st.revision, st.total_keys, st.total_size
                        ),
                        SnapshotWriteOut::Table => {
                            print!(
                                "{}",
                                etcdeck::app::report::boxed_table_aligned(
                                    &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
                                    &[row.to_vec()],
                                    true,
                                )
                            )
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        // Handled before parsing; reached only through an abbreviation clap expanded.
        Some(Command::Node { flags }) => etcdeck::node::command::main(&flags),
    }
}

/// The connection: the flags, or with --context the saved context's settings in their place.
fn connect_config(cli: &Cli) -> Result<ConnectConfig, String> {
    let Some(name) = &cli.context else {
        return cli.conn.resolve(prompt_password).map_err(|e| e.to_string());
    };
    let file = etcdeck::app::config_file::user_config_file("config.toml");
    let file = etcdeck::app::config_file::ConsoleFile::load(file.as_deref())?;
    let ctx = file.context(name)?;
    let mut config = cli
        .conn
        .with_context(ctx)
        .and_then(|args| args.resolve(prompt_password))
        .map_err(|e| format!("context {name}: {e}"))?;
    config.mark_context(name, ctx);
    Ok(config)
}

fn console(
    runtime: &tokio::runtime::Runtime,
    mut config: ConnectConfig,
    base: ConnectionArgs,
    args: ConsoleArgs,
    started: Instant,
) -> ExitCode {
    let file = etcdeck::app::config_file::user_config_file("config.toml");
    let contexts = match etcdeck::app::config_file::ConsoleFile::load(file.as_deref()) {
        Ok(file) => {
            config.set_read_only(args.read_only, &file.read_only_endpoints());
            etcdeck::app::runtime::Contexts { base, saved: file.contexts }
        }
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let options = etcdeck::ui::ConsoleOptions {
        refresh_interval: args.refresh_interval.unwrap_or(DEFAULT_REFRESH),
        started,
        processes: None,
        contexts: Some(contexts),
    };
    match runtime.block_on(etcdeck::ui::run(config, options)) {
        Ok(outcome) => {
            if args.timings {
                match outcome.first_complete_frame {
                    Some(d) => eprintln!(
                        "first complete dashboard frame: {:.1} ms after start",
                        d.as_secs_f64() * 1e3
                    ),
                    None => eprintln!("first complete dashboard frame: never drawn"),
                }
                let ms = |d: &Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
                if let Some((first, rest)) = outcome.key_page_frames.split_first() {
                    let mut rest = rest.to_vec();
                    rest.sort();
                    let summary = match (rest.first(), rest.last()) {
                        (Some(min), Some(max)) => format!(
                            "; {} more: min {}, median {}, max {}",
                            rest.len(),
                            ms(min),
                            ms(&rest[rest.len() / 2]),
                            ms(max)
                        ),
                        _ => String::new(),
                    };
                    eprintln!("key pages, request to frame: first {}{summary}", ms(first));
                }
                let mut keys = outcome.key_press_frames.clone();
                keys.sort();
                if let (Some(median), Some(max)) = (keys.get(keys.len() / 2), keys.last()) {
                    let p99 = &keys[(keys.len() * 99 / 100).min(keys.len() - 1)];
                    eprintln!(
                        "key press to frame: {} presses, median {}, p99 {}, max {}",
                        keys.len(),
                        ms(median),
                        ms(p99),
                        ms(max)
                    );
                }
                if let Some(tail) = &outcome.watch {
                    eprintln!("{tail}");
                }
                if let Some(kb) = peak_rss_kb() {
                    eprintln!("peak RSS: {:.1} MB", kb as f64 / 1024.0);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The demo's members as the console may kill and start them.
struct DemoProcesses(std::sync::Arc<std::sync::Mutex<etcdeck::node::local::LocalCluster>>);

impl etcdeck::app::runtime::MemberProcesses for DemoProcesses {
    fn kill(&mut self, name: &str) -> Result<String, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        cluster.kill(name).map(|pid| format!("killed {name} (kill -9 {pid}); s starts it again"))
    }

    fn start(&mut self, name: &str) -> Result<String, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        cluster.start_member(name).map(|pid| format!("started {name} again (pid {pid}) on its data"))
    }

    fn replace_step(&mut self, step: &etcdeck::app::replace::ProcessStep) -> Result<String, String> {
        use etcdeck::app::replace::ProcessStep;
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
    ) -> Result<etcdeck::app::runtime::RestoreJob, String> {
        let mut cluster = self.0.lock().map_err(|_| "the demo's process table is poisoned".to_string())?;
        let options = cluster.stop_for_restore(members, token)?;
        let file = file.to_path_buf();
        Ok(Box::new(move || etcdeck::node::local::restore_all(&file, &options)))
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
    cluster: &std::sync::Mutex<etcdeck::node::local::LocalCluster>,
    endpoints: &[String],
) -> Result<etcdeck::app::demo::Seeded, String> {
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
        etcdeck::app::demo::seed(endpoints).await.map_err(|e| format!("cannot write the sample data: {e}"))
    })
}

/// `etcdeck demo`: a local cluster on free loopback ports, sample data, and the console on it. Every
/// member stops when the console does (also on Ctrl-C and on a panic: the cluster is dropped while
/// unwinding, and the members die with this process whatever ends it).
fn demo(
    runtime: &tokio::runtime::Runtime,
    args: DemoArgs,
    console_args: ConsoleArgs,
    started: Instant,
) -> ExitCode {
    use etcdeck::node::local::LocalCluster;
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
        match demo_ready(runtime, &cluster, &endpoints) {
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
    let options = etcdeck::ui::ConsoleOptions {
        refresh_interval: console_args.refresh_interval.unwrap_or(Duration::from_secs(1)),
        started,
        processes: Some(Box::new(DemoProcesses(cluster.clone()))),
        contexts: None,
    };
    let outcome = runtime.block_on(etcdeck::ui::run(config, options));
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

async fn status(config: ConnectConfig, args: StatusArgs) -> ExitCode {
    let state = Runtime::refresh_once(config).await;
    match args.write_out {
        WriteOut::Table => print!("{}", report::table(&state)),
        WriteOut::Json => println!("{}", report::json(&state)),
    }
    let problems = state.problems();
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("Error: unhealthy cluster");
        ExitCode::from(1)
    }
}

/// The process's peak resident set (VmHWM), in kB, where /proc tells it.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// At least 100 ms: the console's clock ticks that often, and a tighter loop would only load etcd.
fn parse_refresh_interval(text: &str) -> Result<Duration, String> {
    let d = parse_go_duration(text)?;
    if d < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(d)
}

/// Asks for the password of `user` without echo, as etcdctl does; None when there is no terminal.
fn prompt_password(user: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Password for {user}: ")).ok()
}
