//! `etcdeck decode`: a value as kube-apiserver stored it (read from a file or stdin, as `etcdctl get
//! --print-value-only` prints it) as the Kubernetes object's YAML or JSON.

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::ValueEnum;

use crate::etcd::k8s::decode::{decode_value, to_json, to_yaml, Decoded, Options};

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// The file holding one value; `-` or none reads stdin
    pub file: Option<std::path::PathBuf>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ObjectFormat::Yaml)]
    pub output: ObjectFormat,
    /// Show a Secret's data (masked otherwise)
    #[arg(long)]
    pub reveal_secrets: bool,
}

/// How a decoded object is printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectFormat {
    Yaml,
    Json,
}

impl ObjectFormat {
    pub fn print(self, object: &serde_json::Value) -> String {
        match self {
            ObjectFormat::Yaml => to_yaml(object),
            ObjectFormat::Json => to_json(object) + "\n",
        }
    }
}

pub fn run(args: DecodeArgs) -> ExitCode {
    let mut value = Vec::new();
    let read = match args.file.as_deref() {
        None => std::io::stdin().read_to_end(&mut value),
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut value),
        Some(p) => std::fs::File::open(p).and_then(|mut f| f.read_to_end(&mut value)),
    };
    let source = args.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into());
    let source = if source == "-" { "stdin".to_owned() } else { source };
    if let Err(e) = read {
        eprintln!("Error: {source}: {e}");
        return ExitCode::from(1);
    }
    let options = Options { reveal_secrets: args.reveal_secrets, resource_version: None };
    match decode_value(&value, options) {
        Decoded::Object(object) => {
            print!("{}", args.output.print(&object));
            ExitCode::SUCCESS
        }
        Decoded::NotKubernetes => {
            eprintln!("etcdeck: {source} is not Kubernetes data; printed as it is");
            let _ = std::io::stdout().write_all(&value);
            ExitCode::SUCCESS
        }
        Decoded::Encrypted(what) => {
            eprintln!(
                "Error: {source}: {what}; decrypting needs the apiserver's key, which etcdeck does not have"
            );
            ExitCode::from(1)
        }
        Decoded::Failed(why) => {
            eprintln!("Error: {source}: {why}");
            ExitCode::from(1)
        }
    }
}
