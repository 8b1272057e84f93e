//! `etcdeck backup`: take verified backups (once, or `--every`), `backup list` and `backup fetch`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::ValueEnum;

use crate::app::connection::ConnectConfig;
use crate::backup::remote::Remote;
use crate::etcd::backup::{parse_age, BackupName, Retention};
use crate::etcd::duration::parse_go_duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Directory the backups are written to (created if missing)
    #[arg(long, required = true)]
    pub dir: Option<PathBuf>,
    /// Take a backup this often and keep running (a Go duration: 30m, 6h); once without it
    #[arg(long, value_parser = parse_go_duration)]
    pub every: Option<Duration>,
    /// Keep this many backups per cluster (the newest is always kept)
    #[arg(long)]
    pub keep: Option<usize>,
    /// Remove backups older than this (7d, 36h; the newest is always kept)
    #[arg(long, value_parser = parse_age)]
    pub keep_for: Option<Duration>,
    /// Upload each backup to s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or
    /// file:///path, with that store's usual credential variables (AWS_*, GOOGLE_*, AZURE_*)
    #[arg(long, value_name = "URL")]
    pub upload: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum BackupCommand {
    /// List the backups in --dir and at --upload, with revision, size and age
    List {
        /// The backups' directory
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Where backups are uploaded
        #[arg(long, value_name = "URL")]
        upload: Option<String>,
        /// Output format
        #[arg(short = 'w', long = "write-out", value_enum, default_value_t = ListFormat::Table)]
        write_out: ListFormat,
    },
    /// Download an uploaded backup into --dir, verified (SHA-256 and bbolt) before it is named
    Fetch {
        /// The backup's name, as `backup list` shows it
        name: String,
        #[arg(long, value_name = "URL")]
        upload: String,
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

pub fn run(runtime: &tokio::runtime::Runtime, config: ConnectConfig, args: BackupArgs) -> ExitCode {
    let fail = |e: String| {
        eprintln!("Error: {e}");
        ExitCode::from(1)
    };
    match args.command {
        Some(BackupCommand::List { dir, upload, write_out }) => {
            if dir.is_none() && upload.is_none() {
                return fail("backup list needs --dir, --upload or both".into());
            }
            match runtime.block_on(list(dir, upload)) {
                Ok(rows) => {
                    print!("{}", shown(&rows, write_out));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Some(BackupCommand::Fetch { name, upload, dir }) => {
            let remote = match Remote::parse(&upload) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            match runtime.block_on(crate::backup::fetch(&remote, &name, &dir)) {
                Ok((path, status)) => {
                    println!(
                        "{} (revision {}, {} keys, hash {:x}): verified",
                        path.display(),
                        status.revision,
                        status.total_keys,
                        status.hash
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        None => {
            let Some(dir) = args.dir else { return fail("--dir is required".into()) };
            let remote = match args.upload.as_deref().map(Remote::parse).transpose() {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let options = crate::backup::Options {
                config,
                dir,
                every: args.every.filter(|d| !d.is_zero()),
                retention: Retention { keep: args.keep, keep_for: args.keep_for },
                remote,
            };
            match runtime.block_on(crate::backup::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    crate::backup::log(&format!("backup failed: {e}"));
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// One backup found.
struct Row {
    name: String,
    location: String,
    parsed: BackupName,
    size: u64,
}

async fn list(dir: Option<PathBuf>, upload: Option<String>) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    if let Some(dir) = &dir {
        for (path, parsed, size) in crate::backup::local(dir)? {
            rows.push(Row { name: parsed.file_name(), location: path.display().to_string(), parsed, size });
        }
    }
    if let Some(url) = &upload {
        let remote = Remote::parse(url)?;
        for object in remote.list().await? {
            let Some(parsed) = BackupName::parse(&object.name) else { continue };
            rows.push(Row {
                location: remote.shown(&object.name),
                name: object.name,
                parsed,
                size: object.size,
            });
        }
    }
    rows.sort_by(|a, b| {
        (a.parsed.taken, a.parsed.revision, &a.location).cmp(&(
            b.parsed.taken,
            b.parsed.revision,
            &b.location,
        ))
    });
    Ok(rows)
}

fn age(taken: SystemTime) -> Duration {
    let secs = SystemTime::now().duration_since(taken).map(|d| d.as_secs()).unwrap_or(0);
    Duration::from_secs(secs)
}

fn shown(rows: &[Row], format: ListFormat) -> String {
    match format {
        ListFormat::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name,
                        "location": r.location,
                        "cluster_id": format!("{:x}", r.parsed.cluster_id),
                        "member_id": format!("{:x}", r.parsed.member_id),
                        "revision": r.parsed.revision,
                        "size": r.size,
                        "taken": humantime::format_rfc3339_seconds(r.parsed.taken).to_string(),
                        "age_seconds": age(r.parsed.taken).as_secs(),
                    })
                })
                .collect();
            format!("{}\n", serde_json::Value::Array(list))
        }
        ListFormat::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.location.clone(),
                        r.parsed.revision.to_string(),
                        crate::etcd::format::bytes(i64::try_from(r.size).unwrap_or(i64::MAX)),
                        humantime::format_duration(age(r.parsed.taken)).to_string(),
                    ]
                })
                .collect();
            crate::etcd::table::boxed_table(&["BACKUP", "REVISION", "SIZE", "AGE"], &body)
        }
    }
}
