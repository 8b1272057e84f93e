//! `etcdeck status`: the dashboard once, as a table or JSON; exits 0 only when the cluster is healthy.

use std::process::ExitCode;

use clap::ValueEnum;

use crate::app::connection::ConnectConfig;
use crate::app::report;
use crate::app::runtime::Runtime;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Output format
    #[arg(short = 'w', long = "write-out", value_enum, default_value_t = WriteOut::Table)]
    pub write_out: WriteOut,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum WriteOut {
    Table,
    Json,
}

pub async fn run(config: ConnectConfig, args: StatusArgs) -> ExitCode {
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
