//! `etcdeck snapshot`: etcdctl's snapshot save, restore and status.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::app::connection::ConnectConfig;

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Stores an etcd node backend snapshot to a given file (from the one endpoint given)
    Save { filename: std::path::PathBuf },
    /// Restores an etcd member snapshot to an etcd directory (etcd's, or an etcdeck node's)
    Restore(RestoreArgs),
    /// Gets backend snapshot status of a given file (etcd's, or an etcdeck node's)
    Status {
        filename: std::path::PathBuf,
        /// Output format
        #[arg(short = 'w', long = "write-out", value_enum, default_value_t = SnapshotWriteOut::Simple)]
        write_out: SnapshotWriteOut,
    },
}

/// etcdctl snapshot restore's flags.
#[derive(clap::Args)]
pub struct RestoreArgs {
    pub filename: std::path::PathBuf,
    /// Path to the data directory [default: <name>.etcd]
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Path to the WAL directory (use --data-dir if none given)
    #[arg(long)]
    pub wal_dir: Option<std::path::PathBuf>,
    /// Initial cluster configuration for restore bootstrap [default: <name>=http://localhost:2380]
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long)]
    pub skip_hash_check: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SnapshotWriteOut {
    Simple,
    Table,
    Json,
}

pub fn run(runtime: &tokio::runtime::Runtime, config: &ConnectConfig, command: SnapshotCommand) -> ExitCode {
    match command {
        SnapshotCommand::Save { filename } => {
            match runtime.block_on(crate::app::client::snapshot::save(config, &filename)) {
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
        SnapshotCommand::Restore(a) => {
            let options = crate::node::snapshot::RestoreOptions {
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
            match crate::node::snapshot::restore(&a.filename, &options) {
                Ok(summary) => {
                    if let Some(summary) = summary {
                        eprintln!("etcdeck snapshot restore: {summary}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        SnapshotCommand::Status { filename, write_out } => match status(&filename) {
            Ok(st) => {
                let row = st.row();
                match write_out {
                    SnapshotWriteOut::Simple => println!("{}", row.join(", ")),
                    SnapshotWriteOut::Json => println!("{}", st.json()),
                    SnapshotWriteOut::Table => {
                        print!(
                            "{}",
                            crate::etcd::table::boxed_table_aligned(
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
        },
    }
}

/// The status of an etcd snapshot or db copy (bbolt), or of an etcdeck node's own image.
fn status(path: &std::path::Path) -> Result<crate::etcd::snapshot::SnapshotStatus, String> {
    use crate::etcd::snapshot::ETCDECK_IMAGE_MAGIC;
    let mut head = [0u8; ETCDECK_IMAGE_MAGIC.len()];
    let is_image = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|_| head == ETCDECK_IMAGE_MAGIC);
    if is_image {
        crate::node::snapshot::status(path)
    } else {
        crate::etcd::snapshot::status(path).map_err(|e| e.to_string())
    }
}
