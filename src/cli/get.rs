//! `etcdeck get`: keys read from etcd, Kubernetes values printed as the objects' YAML or JSON (as
//! `kubectl get -o yaml` prints them), other values as they are.

use std::io::Write;
use std::process::ExitCode;

use crate::app::connection::ConnectConfig;
use crate::cli::decode::ObjectFormat;
use crate::etcd::k8s::decode::{decode_value, Decoded, Options};
use clap::ValueEnum;

#[derive(clap::Args)]
pub struct GetArgs {
    /// The key (the argument's id is not `key`: --key is the TLS key file)
    #[arg(value_name = "KEY")]
    pub name: String,
    /// Get every key with KEY as its prefix
    #[arg(long)]
    pub prefix: bool,
    /// The revision to read at (0: the latest)
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Output format: an object's YAML or JSON (several keys: a List), or the values as stored
    #[arg(short = 'o', long = "output", value_enum, default_value_t = GetFormat::Yaml)]
    pub output: GetFormat,
    /// Show a Secret's data (masked otherwise)
    #[arg(long)]
    pub reveal_secrets: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetFormat {
    Yaml,
    Json,
    Raw,
}

pub fn run(runtime: &tokio::runtime::Runtime, config: &ConnectConfig, args: GetArgs) -> ExitCode {
    let kvs = match runtime.block_on(crate::app::client::read::get(
        config,
        args.name.as_bytes(),
        args.prefix,
        args.rev,
    )) {
        Ok(kvs) if kvs.is_empty() && !args.prefix => {
            eprintln!("Error: {}: no such key", args.name);
            return ExitCode::from(1);
        }
        Ok(kvs) => kvs,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let format = match args.output {
        GetFormat::Raw => {
            for (key, value, _) in &kvs {
                if args.prefix {
                    let _ = out.write_all(key).and_then(|_| out.write_all(b"\n"));
                }
                let _ = out.write_all(value).and_then(|_| out.write_all(b"\n"));
            }
            return ExitCode::SUCCESS;
        }
        GetFormat::Yaml => ObjectFormat::Yaml,
        GetFormat::Json => ObjectFormat::Json,
    };
    let mut failed = false;
    let mut items = Vec::new();
    for (key, value, mod_revision) in &kvs {
        let name = String::from_utf8_lossy(key);
        let options = Options { reveal_secrets: args.reveal_secrets, resource_version: Some(*mod_revision) };
        match decode_value(value, options) {
            Decoded::Object(object) => items.push(object),
            Decoded::NotKubernetes if !args.prefix => {
                eprintln!("etcdeck: {name} is not Kubernetes data; printed as it is");
                let _ = out.write_all(value);
                return ExitCode::SUCCESS;
            }
            Decoded::NotKubernetes => {
                eprintln!("etcdeck: {name} is not Kubernetes data; left out (-o raw prints it)")
            }
            Decoded::Encrypted(what) => eprintln!(
                "etcdeck: {name}: {what}; decrypting needs the apiserver's key, which etcdeck does not have"
            ),
            Decoded::Failed(why) => {
                eprintln!("Error: {name}: {why}");
                failed = true;
            }
        }
    }
    if args.prefix {
        // kubectl prints several objects as a List.
        let mut list = serde_json::Map::new();
        list.insert("apiVersion".into(), "v1".into());
        list.insert("kind".into(), "List".into());
        list.insert("items".into(), serde_json::Value::Array(items));
        let _ = out.write_all(format.print(&serde_json::Value::Object(list)).as_bytes());
    } else if let Some(object) = items.first() {
        let _ = out.write_all(format.print(object).as_bytes());
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
