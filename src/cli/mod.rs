//! The subcommands, a file each; main.rs parses the command line and hands each its arguments.

use std::io::IsTerminal;

use crate::app::connection::{ConnectConfig, ConnectionArgs};

pub mod backup;
pub mod bench;
pub mod console;
pub mod decode;
pub mod demo;
pub mod get;
pub mod mirror;
pub mod node;
pub mod snapshot;
pub mod status;

/// The connection: the flags, or with --context the saved context's settings in their place.
pub fn connect_config(conn: &ConnectionArgs, context: Option<&str>) -> Result<ConnectConfig, String> {
    let Some(name) = context else {
        return conn.resolve(prompt_password).map_err(|e| e.to_string());
    };
    let file = crate::app::config_file::user_config_file("config.toml");
    let file = crate::app::config_file::ConsoleFile::load(file.as_deref())?;
    let ctx = file.context(name)?;
    let mut config = conn
        .with_context(ctx)
        .and_then(|args| args.resolve(prompt_password))
        .map_err(|e| format!("context {name}: {e}"))?;
    config.mark_context(name, ctx);
    Ok(config)
}

/// Asks for the password of `user` without echo, as etcdctl does; None when there is no terminal.
fn prompt_password(user: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Password for {user}: ")).ok()
}
