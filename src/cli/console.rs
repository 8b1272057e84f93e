//! `etcdeck` and `etcdeck console`: the console on a cluster, with --timings for measurements.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::app::connection::{ConnectConfig, ConnectionArgs};
use crate::etcd::duration::parse_go_duration;

/// The dashboard's refresh period unless --refresh-interval says otherwise.
const DEFAULT_REFRESH: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// How often the dashboard refreshes, a Go duration [default: 2s]; + and - change it while running
    #[arg(long, value_parser = parse_refresh_interval)]
    pub refresh_interval: Option<Duration>,

    /// On exit, print how long the first complete dashboard frame took after start, how long each page of
    /// keys took from request to frame, key-press-to-frame latencies, and the peak RSS
    #[arg(long)]
    pub timings: bool,

    /// Disable every write (also set per endpoint with `read-only = true` in ~/.config/etcdeck/config.toml)
    #[arg(long)]
    pub read_only: bool,

    /// Where the snapshot dialog backs up into (named, verified backups, as etcdeck backup writes
    /// them) and where the restore wizard lists backups from
    #[arg(long, env = "ETCDECK_BACKUP_DIR")]
    pub backup_dir: Option<std::path::PathBuf>,
}

impl ConsoleArgs {
    /// `etcdeck console`'s own options, with those given before the command.
    pub fn or(self, before: ConsoleArgs) -> ConsoleArgs {
        ConsoleArgs {
            refresh_interval: self.refresh_interval.or(before.refresh_interval),
            timings: self.timings || before.timings,
            read_only: self.read_only || before.read_only,
            backup_dir: self.backup_dir.or(before.backup_dir),
        }
    }
}

pub fn run(
    runtime: &tokio::runtime::Runtime,
    mut config: ConnectConfig,
    base: ConnectionArgs,
    args: ConsoleArgs,
    started: Instant,
) -> ExitCode {
    let file = crate::app::config_file::user_config_file("config.toml");
    let contexts = match crate::app::config_file::ConsoleFile::load(file.as_deref()) {
        Ok(file) => {
            config.set_read_only(args.read_only, &file.read_only_endpoints());
            crate::app::runtime::Contexts { base, saved: file.contexts }
        }
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let options = crate::ui::ConsoleOptions {
        refresh_interval: args.refresh_interval.unwrap_or(DEFAULT_REFRESH),
        started,
        processes: None,
        contexts: Some(contexts),
        backup_dir: args.backup_dir,
    };
    match runtime.block_on(crate::ui::run(config, options)) {
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
