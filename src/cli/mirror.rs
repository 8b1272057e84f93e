//! `etcdeck mirror`: etcdctl make-mirror's flags (the source through the global connection flags or
//! --from, the destination through --to and the --dest-* flags), and `etcdeck mirror verify`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::connection::{ConnectConfig, ConnectionArgs};
use crate::etcd::duration::parse_go_duration;
use crate::etcd::mirror::KeyMap;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MirrorArgs {
    #[command(subcommand)]
    pub command: Option<MirrorCommand>,
    #[command(flatten)]
    pub sides: Sides,
    /// Maximum number of operations in a destination transaction, the checkpoint's included
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,
    /// Compare the whole prefix with the destination first and make it equal (put what differs,
    /// delete what the source does not have); needed to mirror into keys no mirror wrote
    #[arg(long)]
    pub reconcile: bool,
    /// Serve Prometheus metrics (lag, applied events, errors, reconcile runs) at http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    pub listen_metrics: Option<String>,
    /// How often the status line is written to stderr (a Go duration)
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub status_interval: Duration,
}

#[derive(clap::Subcommand)]
pub enum MirrorCommand {
    /// Compare the source's prefix with the destination at one moment; exit 0 when equal, 1 when
    /// they differ, 2 when they cannot be compared
    Verify {
        #[command(flatten)]
        sides: Sides,
        /// Differences to list
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
}

/// The two clusters and the key mapping, etcdctl make-mirror's flags.
#[derive(clap::Args, Clone)]
pub struct Sides {
    /// Source endpoints, comma-separated (default: --endpoints)
    #[arg(long, value_delimiter = ',', value_name = "EPS")]
    pub from: Vec<String>,
    /// Destination endpoints, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "EPS", required = true)]
    pub to: Vec<String>,
    /// Key-value prefix to mirror
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// destination prefix to mirror a prefix to a different prefix in the destination cluster
    #[arg(long)]
    pub dest_prefix: Option<String>,
    /// mirror key-values to the root of the destination cluster
    #[arg(long)]
    pub no_dest_prefix: bool,
    /// Verify certificates of TLS enabled secure servers using this CA bundle
    #[arg(long)]
    pub dest_cacert: Option<PathBuf>,
    /// Identify secure client using this TLS certificate file for the destination cluster
    #[arg(long)]
    pub dest_cert: Option<PathBuf>,
    /// Identify secure client using this TLS key file
    #[arg(long)]
    pub dest_key: Option<PathBuf>,
    /// Disable transport security for client connections
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub dest_insecure_transport: bool,
    /// Skip the destination's server certificate verification (testing only)
    #[arg(long)]
    pub dest_insecure_skip_tls_verify: bool,
    /// Destination username[:password] for authentication (prompt if password is not supplied)
    #[arg(long)]
    pub dest_user: Option<String>,
    /// Destination password for authentication (if this option is used, --dest-user shouldn't include password)
    #[arg(long, hide_env_values = true)]
    pub dest_password: Option<String>,
}

impl Sides {
    /// The source's connection (the global flags, --from's endpoints in theirs), the
    /// destination's, and the key mapping.
    pub fn resolve(&self, source: &ConnectConfig) -> Result<(ConnectConfig, ConnectConfig, KeyMap), String> {
        if self.no_dest_prefix && self.dest_prefix.as_deref().is_some_and(|p| !p.is_empty()) {
            // etcdctl's wording.
            return Err(
                "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one".into()
            );
        }
        let source = if self.from.is_empty() {
            source.clone()
        } else {
            source.with_endpoints(&self.from).map_err(|e| format!("--from: {e}"))?
        };
        let mut to = self.to.clone();
        if !self.dest_insecure_transport {
            // Transport security wanted: endpoints without a scheme are https.
            for ep in &mut to {
                if !ep.contains("://") {
                    *ep = format!("https://{}", ep.trim());
                }
            }
        }
        let dest = ConnectionArgs {
            endpoints: to,
            dial_timeout: source.dial_timeout,
            command_timeout: source.command_timeout,
            cacert: self.dest_cacert.clone(),
            cert: self.dest_cert.clone(),
            key: self.dest_key.clone(),
            insecure_skip_tls_verify: self.dest_insecure_skip_tls_verify,
            user: self.dest_user.clone(),
            password: self.dest_password.clone(),
            discovery_srv: None,
            discovery_srv_name: None,
            insecure_discovery: true,
        }
        .resolve(super::prompt_password)
        .map_err(|e| {
            // The destination's flags are the --dest-* ones.
            e.to_string()
                .replace("--endpoints", "--to")
                .replace("--cacert", "--dest-cacert")
                .replace("--cert", "--dest-cert")
                .replace("--key", "--dest-key")
                .replace("--user", "--dest-user")
                .replace("--password", "--dest-password")
        })?;
        let dest_prefix = match (&self.dest_prefix, self.no_dest_prefix) {
            (_, true) => String::new(),
            (Some(p), false) if !p.is_empty() => p.clone(),
            _ => self.prefix.clone(),
        };
        Ok((source, dest, KeyMap::new(self.prefix.as_bytes(), dest_prefix.as_bytes())))
    }
}

pub fn run(runtime: &tokio::runtime::Runtime, config: &ConnectConfig, args: MirrorArgs) -> ExitCode {
    if let Some(MirrorCommand::Verify { sides, show }) = args.command {
        return verify(runtime, config, &sides, show);
    }
    let (source, dest, map) = match args.sides.resolve(config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(128);
        }
    };
    if args.max_txn_ops < 2 {
        eprintln!("Error: --max-txn-ops must be at least 2 (one key and the checkpoint)");
        return ExitCode::from(128);
    }
    runtime.block_on(async move {
        let stats = Arc::new(crate::mirror::stats::Stats::default());
        if let Some(addr) = &args.listen_metrics {
            let addr = addr.strip_prefix("http://").unwrap_or(addr);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    tokio::spawn(crate::mirror::stats::serve_metrics(listener, stats.clone()));
                }
                Err(e) => {
                    eprintln!("Error: --listen-metrics {addr}: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        let reporter = tokio::spawn(crate::mirror::stats::report(stats.clone(), args.status_interval));
        let options = crate::mirror::Options {
            source,
            dest,
            map,
            max_txn_ops: args.max_txn_ops,
            reconcile: args.reconcile,
        };
        let fatal = crate::mirror::run(options, stats).await;
        reporter.abort();
        eprintln!("Error: {}", fatal.0);
        ExitCode::from(1)
    })
}

fn verify(runtime: &tokio::runtime::Runtime, config: &ConnectConfig, sides: &Sides, show: usize) -> ExitCode {
    let (source, dest, map) = match sides.resolve(config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(crate::mirror::verify::verify(source, dest, map, show)) {
        Ok(report) => {
            print!("{}", report.text());
            ExitCode::from(if report.differences == 0 { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
    }
}
