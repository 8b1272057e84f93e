//! `etcdeck bench`: etcd's benchmark tool, with its flags and its output, for etcd and etcdeck alike.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::app::connection::ConnectConfig;

/// etcd benchmark's flags common to its commands.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Total number of gRPC connections
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub conns: u64,
    /// Total number of gRPC clients
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Use full floating point precision
    #[arg(long, global = true)]
    pub precise: bool,
    /// Connect only to the leader node
    #[arg(long, global = true)]
    pub target_leader: bool,
    /// Output format: simple (etcd benchmark's text) or json
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = BenchWriteOut::Simple)]
    pub write_out: BenchWriteOut,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum BenchWriteOut {
    Simple,
    Json,
}

#[derive(Subcommand)]
pub enum BenchCommand {
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
pub struct PutArgs {
    /// Key size of put request
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of put request
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum puts per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of put requests
    #[arg(long, default_value_t = 10000)]
    pub total: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
    /// Use sequential keys
    #[arg(long)]
    pub sequential_keys: bool,
    /// Keys as zero-padded decimal numbers, readable in the console (etcd's tool writes varints)
    #[arg(long)]
    pub decimal_keys: bool,
}

#[derive(clap::Args)]
pub struct TxnPutArgs {
    /// Key size of txn put
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of txn put
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Number of puts per txn
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub txn_ops: u64,
    /// Maximum txns per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of txn requests
    #[arg(long, default_value_t = 10000)]
    pub total: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Consistency {
    /// Linearizable
    L,
    /// Serializable
    S,
}

#[derive(clap::Args)]
pub struct RangeArgs {
    /// The key (the range's start)
    #[arg(id = "range_key", value_name = "KEY")]
    pub key: String,
    /// The range's end (exclusive)
    #[arg(id = "range_end", value_name = "END")]
    pub end: Option<String>,
    /// Maximum range requests per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of range requests
    #[arg(long, default_value_t = 10000)]
    pub total: usize,
    /// Linearizable(l) or Serializable(s)
    #[arg(long, value_enum, default_value_t = Consistency::L)]
    pub consistency: Consistency,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Total watch streams
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Total watchers per stream
    #[arg(long, default_value_t = 100)]
    pub watch_per_stream: usize,
    /// Total number of keys to be watched
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub watched_key_total: u64,
    /// Number of keys to put per second (0 is no limit)
    #[arg(long, default_value_t = 0)]
    pub put_rate: u64,
    /// Number of put requests
    #[arg(long, default_value_t = 1000)]
    pub put_total: usize,
    /// Key size of watch request
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Maximum possible keys
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
    /// Use sequential keys
    #[arg(long)]
    pub sequential_keys: bool,
}

#[derive(clap::Args)]
pub struct WatchLatencyArgs {
    /// Total number of put requests
    #[arg(long, default_value_t = 10000)]
    pub total: usize,
    /// Number of keys to put per second
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Key size of watch response
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size of watch response
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
}

#[derive(clap::Args)]
pub struct LeaseKeepaliveArgs {
    /// Total number of lease keepalive requests
    #[arg(long, default_value_t = 10000)]
    pub total: usize,
}

/// Runs the workload `args` names against the cluster and prints etcd's report.
pub fn run(runtime: &tokio::runtime::Runtime, config: &ConnectConfig, args: BenchArgs) -> ExitCode {
    use crate::bench::{run, Common, Workload};
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
    match runtime.block_on(run(config, &common, &workload)) {
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
