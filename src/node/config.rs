//! The node's configuration, taken as etcd takes it: etcd's flag names, defaults and help, each flag
//! also as its ETCD_* environment variable (as a systemd EnvironmentFile sets them), or a YAML
//! --config-file with etcd's keys. Everything is checked here, with etcd's error texts, before anything
//! touches disk.
//!
//! Precedence is etcd's: a config file (--config-file or ETCD_CONFIG_FILE) is exclusive, and other
//! flags and variables are then ignored; otherwise a flag wins over nothing, a variable fills a flag
//! not given, and a variable that a given flag shadows is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::etcd::urls::EtcdUrl;

/// One etcd setting: its flag name (also its YAML key), default and help, as etcd prints them.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// The settings the node takes, in the order `etcd --help` lists them.
pub const SETTINGS: &[Setting] = &[
    Setting { name: "name", default: "default", help: "Human-readable name for this member." },
    Setting { name: "data-dir", default: "", help: "Path to the data directory. [default: ${name}.etcd]" },
    Setting { name: "wal-dir", default: "", help: "Path to the dedicated wal directory." },
    Setting {
        name: "snapshot-count",
        default: "100000",
        help: "Number of committed transactions to trigger a snapshot to disk.",
    },
    Setting {
        name: "heartbeat-interval",
        default: "100",
        help: "Time (in milliseconds) of a heartbeat interval.",
    },
    Setting {
        name: "election-timeout",
        default: "1000",
        help: "Time (in milliseconds) for an election to timeout.",
    },
    Setting {
        name: "listen-peer-urls",
        default: "http://localhost:2380",
        help: "List of URLs to listen on for peer traffic.",
    },
    Setting {
        name: "listen-client-urls",
        default: "http://localhost:2379",
        help: "List of URLs to listen on for client traffic.",
    },
    Setting {
        name: "max-request-bytes",
        default: "1572864",
        help: "Maximum client request size in bytes the server will accept.",
    },
    Setting {
        name: "max-txn-ops",
        default: "128",
        help: "Maximum number of operations permitted in a transaction.",
    },
    Setting {
        name: "quota-backend-bytes",
        default: "0",
        help: "Raise alarms when backend size exceeds the given quota. 0 means use the default quota.",
    },
    Setting { name: "auth-token", default: "simple", help: "Specify auth token specific options." },
    Setting { name: "auth-token-ttl", default: "300", help: "The lifetime in seconds of the auth token." },
    Setting {
        name: "bcrypt-cost",
        default: "10",
        help: "Specify bcrypt algorithm cost factor for auth password hashing.",
    },
    Setting {
        name: "initial-advertise-peer-urls",
        default: "http://localhost:2380",
        help: "List of this member's peer URLs to advertise to the rest of the cluster.",
    },
    Setting {
        name: "initial-cluster",
        default: "default=http://localhost:2380",
        help: "Initial cluster configuration for bootstrapping.",
    },
    Setting {
        name: "initial-cluster-state",
        default: "new",
        help: "Initial cluster state ('new' or 'existing').",
    },
    Setting {
        name: "initial-cluster-token",
        default: "etcd-cluster",
        help: "Initial cluster token for the etcd cluster during bootstrap.",
    },
    Setting {
        name: "advertise-client-urls",
        default: "http://localhost:2379",
        help: "List of this member's client URLs to advertise to the public.",
    },
    Setting { name: "discovery", default: "", help: "Discovery URL used to bootstrap the cluster." },
    Setting { name: "discovery-srv", default: "", help: "DNS srv domain used to bootstrap the cluster." },
    Setting {
        name: "discovery-srv-name",
        default: "",
        help: "Suffix to the dns srv name queried when bootstrapping.",
    },
    Setting {
        name: "discovery-proxy",
        default: "",
        help: "HTTP proxy to use for traffic to discovery service.",
    },
    Setting {
        name: "discovery-fallback",
        default: "proxy",
        help:
            "Expected behavior ('exit' or 'proxy') when discovery services fails. etcdeck has no v2 proxy: \
               'proxy' exits as 'exit' does, and says so.",
    },
    Setting {
        name: "auto-compaction-mode",
        default: "periodic",
        help: "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration \
               based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' \
               for revision number based retention.",
    },
    Setting {
        name: "auto-compaction-retention",
        default: "0",
        help: "Auto compaction retention for mvcc key value store. 0 means disable auto compaction.",
    },
    Setting {
        name: "strict-reconfig-check",
        default: "true",
        help: "Reject reconfiguration requests that would cause quorum loss.",
    },
    Setting { name: "enable-v2", default: "false", help: "Accept etcd V2 client requests." },
    Setting {
        name: "force-new-cluster",
        default: "false",
        help: "Force to create a new one member cluster.",
    },
    Setting { name: "cert-file", default: "", help: "Path to the client server TLS cert file." },
    Setting { name: "key-file", default: "", help: "Path to the client server TLS key file." },
    Setting { name: "client-cert-auth", default: "false", help: "Enable client cert authentication." },
    Setting {
        name: "trusted-ca-file",
        default: "",
        help: "Path to the client server TLS trusted CA cert file.",
    },
    Setting { name: "auto-tls", default: "false", help: "Client TLS using generated certificates" },
    Setting { name: "peer-cert-file", default: "", help: "Path to the peer server TLS cert file." },
    Setting { name: "peer-key-file", default: "", help: "Path to the peer server TLS key file." },
    Setting {
        name: "peer-client-cert-auth",
        default: "false",
        help: "Enable peer client cert authentication.",
    },
    Setting {
        name: "peer-trusted-ca-file",
        default: "",
        help: "Path to the peer server TLS trusted CA file.",
    },
    Setting { name: "peer-cert-allowed-cn", default: "", help: "Allowed CN for inter peer authentication." },
    Setting { name: "peer-auto-tls", default: "false", help: "Peer TLS using generated certificates" },
    Setting {
        name: "cipher-suites",
        default: "",
        help: "Comma-separated list of supported TLS cipher suites between client/server and peers (empty \
               will be auto-populated by Go).",
    },
    Setting {
        name: "tls-min-version",
        default: "TLS1.2",
        help: "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.",
    },
    Setting {
        name: "tls-max-version",
        default: "",
        help: "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to Go).",
    },
];

/// Settings that are Go booleans: `--flag` alone means true, a value needs `=`.
fn is_bool(s: &Setting) -> bool {
    matches!(s.default, "false" | "true")
}

/// --config-file, which is not a setting of its own: it replaces all of them.
pub const CONFIG_FILE: &str = "config-file";

/// etcd's default backend quota when --quota-backend-bytes is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
const MAX_RECOMMENDED_QUOTA_BYTES: u64 = 8 * 1024 * 1024 * 1024;
const MAX_RECOMMENDED_REQUEST_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_SNAPSHOT_COUNT: u64 = 100_000;
const MAX_ELECTION_MS: u64 = 50_000;

/// The environment variable etcd reads for a flag: ETCD_ and the name in upper snake case.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

/// What a member does when the discovery cluster is full (etcd's --discovery-fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryFallback {
    /// etcd's default: become a v2 proxy. etcdeck has none, so it exits, saying so.
    Proxy,
    Exit,
}

/// etcd's ErrConflictBootstrapFlags.
pub const CONFLICT_BOOTSTRAP_FLAGS: &str = "multiple discovery or bootstrap flags are set. Choose one of \
     \"initial-cluster\", \"discovery\" or \"discovery-srv\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    Disabled,
    /// Keep this much history.
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(u64),
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    pub data_dir: PathBuf,
    /// None: `<data-dir>/member/wal`.
    pub wal_dir: Option<PathBuf>,
    pub listen_client_urls: Vec<EtcdUrl>,
    pub advertise_client_urls: Vec<EtcdUrl>,
    pub listen_peer_urls: Vec<EtcdUrl>,
    pub initial_advertise_peer_urls: Vec<EtcdUrl>,
    /// Member name to its peer URLs.
    pub initial_cluster: BTreeMap<String, Vec<EtcdUrl>>,
    pub initial_cluster_state: ClusterState,
    /// The cluster token: --initial-cluster-token, or the discovery URL with --discovery (as etcd).
    pub initial_cluster_token: String,
    /// --discovery: the v2 discovery service a new member bootstraps through. While it is set,
    /// `initial_cluster` holds this member alone until discovery fills it in.
    pub discovery: Option<String>,
    /// --discovery-srv: the DNS domain whose SRV records name a new cluster's members (etcd's
    /// `_etcd-server-ssl._tcp` and `_etcd-server._tcp`). While it is set, `initial_cluster` holds
    /// this member alone until the records fill it in.
    pub discovery_srv: Option<String>,
    /// --discovery-srv-name: the suffix of those records' service names.
    pub discovery_srv_name: String,
    /// --discovery-fallback.
    pub discovery_fallback: DiscoveryFallback,
    /// --discovery-proxy: an HTTP proxy for the requests to the discovery service.
    pub discovery_proxy: Option<String>,
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub snapshot_count: u64,
    /// Start as a one-member cluster of this member's data (--force-new-cluster).
    pub force_new_cluster: bool,
    /// Refuse membership changes that would risk the quorum (--strict-reconfig-check).
    pub strict_reconfig_check: bool,
    /// Serve etcd's v2 API on the client URLs (--enable-v2).
    pub enable_v2: bool,
    /// As given: 0 means the 2 GiB default, negative disables the quota.
    pub quota_backend_bytes: i64,
    pub max_request_bytes: u64,
    pub max_txn_ops: u64,
    pub auto_compaction: AutoCompaction,
    /// --cert-file, --key-file, --trusted-ca-file, --client-cert-auth.
    pub client_tls: TlsInfo,
    /// --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth,
    /// --peer-cert-allowed-cn.
    pub peer_tls: TlsInfo,
    /// --auto-tls: a self-signed certificate in `<data-dir>/fixtures/client` when no cert is given.
    pub auto_tls: bool,
    /// --peer-auto-tls: the same in `<data-dir>/fixtures/peer`.
    pub peer_auto_tls: bool,
    /// --cipher-suites, --tls-min-version, --tls-max-version (for both client and peer links).
    pub tls: TlsPolicy,
    /// --auth-token-ttl, in seconds (simple tokens).
    pub auth_token_ttl: u64,
    /// --auth-token jwt,...: its options (sign-method, pub-key, priv-key, ttl); None for simple.
    pub jwt: Option<BTreeMap<String, String>>,
    /// --bcrypt-cost (etcd's default when out of bcrypt's 4..=31).
    pub bcrypt_cost: u32,
}

/// One side's TLS files and checks, as etcd's transport.TLSInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub trusted_ca_file: Option<PathBuf>,
    pub client_cert_auth: bool,
    /// Peers only: the CN a peer's client certificate must carry.
    pub allowed_cn: Option<String>,
}

impl TlsInfo {
    /// etcd's TLSInfo.Empty: neither a cert nor a key file given.
    pub fn is_empty(&self) -> bool {
        self.cert_file.is_none() && self.key_file.is_none()
    }
}

/// A TLS protocol version, as --tls-min-version/--tls-max-version name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// What both sides' TLS allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Go's names of the TLS 1.2 suites allowed, in order; empty: the library's defaults.
    pub cipher_suites: Vec<String>,
    pub min_version: TlsVersion,
    /// None: the newest the library has.
    pub max_version: Option<TlsVersion>,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        Self { cipher_suites: Vec::new(), min_version: TlsVersion::Tls12, max_version: None }
    }
}

/// The TLS 1.2 suites --cipher-suites may name (Go's names): those with forward secrecy and an
/// AEAD, which is every TLS 1.2 suite rustls offers. Go's CBC and RSA-key-exchange suites are refused.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Go's TLS suites that rustls does not offer (CBC, RC4, 3DES, RSA key exchange): named in the
/// error, so an operator's list from etcd gets a precise answer.
const GO_ONLY_CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

impl NodeConfig {
    /// The backend quota in force, or None when disabled.
    pub fn quota_bytes(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            q => Some(q as u64),
        }
    }

    /// Where the raft log lives.
    pub fn wal_dir(&self) -> PathBuf {
        self.wal_dir.clone().unwrap_or_else(|| self.data_dir.join("member").join("wal"))
    }
}

/// A configuration and what is worth a warning about it (etcd logs these and starts anyway).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: NodeConfig,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// --help: print this and exit 0.
    #[error("{0}")]
    Help(String),
    /// One line naming the setting; exit 1.
    #[error("{0}")]
    Invalid(String),
}

/// Where a raw value came from, for error messages in etcd's forms.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Default,
    Flag,
    Env(String),
    File(PathBuf),
}

impl Origin {
    fn invalid(&self, name: &str, value: &str, why: &str) -> ConfigError {
        ConfigError::Invalid(match self {
            Origin::Default | Origin::Flag => format!("invalid value {value:?} for flag -{name}: {why}"),
            Origin::Env(var) => format!("invalid value {value:?} for {var}: {why}"),
            Origin::File(path) => format!("invalid value {value:?} for {name} in {}: {why}", path.display()),
        })
    }
}

/// The `etcdeck node` command line: etcd's flags, generated from [`SETTINGS`].
pub fn command() -> clap::Command {
    let mut cmd = clap::Command::new("node")
        .about("Run an etcd member (etcd's flags and ETCD_* variables)")
        .disable_help_subcommand(true);
    for s in SETTINGS {
        let help = if s.default.is_empty() {
            s.help.to_string()
        } else {
            format!("{} [default: {}]", s.help, s.default)
        };
        let mut arg = clap::Arg::new(s.name).long(s.name).value_name("value").allow_negative_numbers(true);
        if is_bool(s) {
            arg = arg.num_args(0..=1).require_equals(true).default_missing_value("true");
        }
        cmd = cmd.arg(arg.help(help));
    }
    cmd.arg(clap::Arg::new(CONFIG_FILE).long(CONFIG_FILE).value_name("path").help(
        "Path to the server configuration file. Note that if a configuration file is provided, other \
         command line flags and environment variables will be ignored.",
    ))
}

/// Go's flag package also takes long flags with one dash (`-name x`), and old runbooks use them.
fn with_double_dashes(args: &[String]) -> Vec<String> {
    let known: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).chain([CONFIG_FILE]).collect();
    args.iter()
        .map(|a| {
            let Some(rest) = a.strip_prefix('-').filter(|r| !r.starts_with('-')) else {
                return a.clone();
            };
            let name = rest.split_once('=').map_or(rest, |(n, _)| n);
            if known.contains(name) {
                format!("-{a}")
            } else {
                a.clone()
            }
        })
        .collect()
}

/// Reads the configuration from the arguments after `node`, the environment and, if one is named,
/// the config file (`read_file` reads it; tests pass a fake).
pub fn load(
    args: &[String],
    env: &[(String, String)],
    read_file: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Loaded, ConfigError> {
    let argv: Vec<String> = std::iter::once("node".to_string()).chain(with_double_dashes(args)).collect();
    let matches = command().try_get_matches_from(argv).map_err(clap_error)?;
    let env_map: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut warnings = Vec::new();

    let flag = |name: &str| matches.get_one::<String>(name).cloned();
    let config_file = flag(CONFIG_FILE).or_else(|| {
        env_map.get(env_name(CONFIG_FILE).as_str()).filter(|v| !v.is_empty()).map(|v| v.to_string())
    });

    let mut raw: BTreeMap<&'static str, (String, Origin)> = BTreeMap::new();
    let cli_mode = config_file.is_none();
    match &config_file {
        Some(path) => {
            let path = PathBuf::from(path);
            let text = read_file(&path).map_err(|e| {
                ConfigError::Invalid(format!("cannot read config file {}: {e}", path.display()))
            })?;
            for (key, value) in parse_yaml(&path, &text)? {
                raw.insert(key, (value, Origin::File(path.clone())));
            }
            let ignored: Vec<String> = SETTINGS
                .iter()
                .filter(|s| flag(s.name).is_some())
                .map(|s| format!("--{}", s.name))
                .chain(SETTINGS.iter().map(|s| env_name(s.name)).filter(|v| env_map.contains_key(v.as_str())))
                .collect();
            if !ignored.is_empty() {
                warnings.push(format!(
                    "using configuration file {}; ignoring {}",
                    path.display(),
                    ignored.join(", ")
                ));
            }
        }
        None => {
            for s in SETTINGS {
                let var = env_name(s.name);
                match (flag(s.name), env_map.get(var.as_str())) {
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::Invalid(format!(
                            "conflicting environment variable {var:?} is shadowed by corresponding \
                             command-line flag (either unset environment variable or disable flag)"
                        )));
                    }
                    (Some(v), None) => {
                        raw.insert(s.name, (v, Origin::Flag));
                    }
                    (None, Some(v)) if !v.is_empty() => {
                        raw.insert(s.name, (v.to_string(), Origin::Env(var)));
                    }
                    _ => {}
                }
            }
            let known: BTreeSet<String> =
                SETTINGS.iter().map(|s| env_name(s.name)).chain([env_name(CONFIG_FILE)]).collect();
            for var in env_map.keys().filter(|k| k.starts_with("ETCD_") && !known.contains(**k)) {
                warnings.push(format!("unrecognized environment variable {var}"));
            }
        }
    }
    let explicit: BTreeSet<&str> = raw.keys().copied().collect();
    for s in SETTINGS {
        raw.entry(s.name).or_insert_with(|| (s.default.to_string(), Origin::Default));
    }
    build(raw, &explicit, cli_mode, warnings)
}

fn clap_error(e: clap::Error) -> ConfigError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Help(e.render().to_string()),
        ErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            // Go's flag package words both cases like this.
            match arg.strip_prefix('-') {
                Some(flag) => {
                    let name = flag.trim_start_matches('-').split('=').next().unwrap_or_default();
                    ConfigError::Invalid(format!("flag provided but not defined: -{name}"))
                }
                None => ConfigError::Invalid(format!("'{arg}' is not a valid flag")),
            }
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            ConfigError::Invalid(first.trim_start_matches("error: ").to_string())
        }
    }
}

/// etcd's YAML keys are its flag names; values are scalars. Unknown keys are refused, naming them.
fn parse_yaml(path: &Path, text: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let bad = |why: String| ConfigError::Invalid(format!("config file {}: {why}", path.display()));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
    let map = match doc {
        serde_yaml_ng::Value::Mapping(m) => m,
        serde_yaml_ng::Value::Null => serde_yaml_ng::Mapping::new(),
        _ => return Err(bad("expected a mapping of etcd's keys to values".into())),
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let key = key.as_str().ok_or_else(|| bad("keys must be strings".into()))?.to_string();
        let setting =
            SETTINGS.iter().find(|s| s.name == key).ok_or_else(|| bad(format!("unknown key {key:?}")))?;
        let value = match value {
            serde_yaml_ng::Value::String(s) => s,
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Null => continue,
            // etcd's YAML takes cipher-suites as a list.
            serde_yaml_ng::Value::Sequence(items) if setting.name == "cipher-suites" => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("{key}: expected a list of names")))?
                .join(","),
            _ => return Err(bad(format!("{key}: expected a single value"))),
        };
        out.push((setting.name, value));
    }
    Ok(out)
}

/// Parses every raw value, applies etcd's derived defaults and checks the whole as etcd does.
fn build(
    raw: BTreeMap<&'static str, (String, Origin)>,
    explicit: &BTreeSet<&str>,
    cli_mode: bool,
    mut warnings: Vec<String>,
) -> Result<Loaded, ConfigError> {
    let get = |name: &str| raw.get(name).map(|(v, o)| (v.as_str(), o)).unwrap_or(("", &Origin::Default));
    let number = |name: &str| -> Result<u64, ConfigError> {
        let (v, origin) = get(name);
        v.trim().parse::<u64>().map_err(|e| {
            let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                "value out of range"
            } else {
                "parse error"
            };
            origin.invalid(name, v, why)
        })
    };
    let urls = |name: &str| -> Result<Vec<EtcdUrl>, ConfigError> {
        let (v, origin) = get(name);
        EtcdUrl::parse_list(v).map_err(|why| origin.invalid(name, v, &why))
    };

    let name = get("name").0.to_string();
    let data_dir = match get("data-dir").0 {
        "" => PathBuf::from(format!("{name}.etcd")),
        d => PathBuf::from(d),
    };
    let wal_dir = Some(get("wal-dir").0).filter(|d| !d.is_empty()).map(PathBuf::from);
    let listen_client_urls = urls("listen-client-urls")?;
    let listen_peer_urls = urls("listen-peer-urls")?;
    let initial_advertise_peer_urls = urls("initial-advertise-peer-urls")?;
    if cli_mode && explicit.contains("listen-client-urls") && !explicit.contains("advertise-client-urls") {
        return Err(ConfigError::Invalid(
            "--advertise-client-urls is required when --listen-client-urls is set explicitly".into(),
        ));
    }
    let advertise_client_urls = urls("advertise-client-urls")?;

    let (state, origin) = get("initial-cluster-state");
    let initial_cluster_state = match state {
        "new" => ClusterState::New,
        "existing" => ClusterState::Existing,
        other if matches!(origin, Origin::File(_)) => {
            return Err(ConfigError::Invalid(format!("unexpected clusterState {other:?}")));
        }
        other => return Err(origin.invalid("initial-cluster-state", other, "invalid value")),
    };
    let discovery = Some(get("discovery").0.trim()).filter(|d| !d.is_empty()).map(str::to_string);
    let (fallback, origin) = get("discovery-fallback");
    let discovery_fallback = match fallback {
        "proxy" => DiscoveryFallback::Proxy,
        "exit" => DiscoveryFallback::Exit,
        other => return Err(origin.invalid("discovery-fallback", other, "invalid value")),
    };
    let discovery_srv = Some(get("discovery-srv").0.trim()).filter(|d| !d.is_empty()).map(str::to_string);
    let ways = [discovery.is_some(), explicit.contains("initial-cluster"), discovery_srv.is_some()];
    if ways.iter().filter(|set| **set).count() > 1 {
        return Err(ConfigError::Invalid(CONFLICT_BOOTSTRAP_FLAGS.into()));
    }
    // With --discovery the discovery URL is the cluster token (etcd's PeerURLsMapAndToken).
    let initial_cluster_token = match &discovery {
        Some(url) => url.clone(),
        None => get("initial-cluster-token").0.to_string(),
    };

    // etcd: a named member with the default --initial-cluster bootstraps alone on its own peer URLs;
    // a discovering member starts from itself alone too, until discovery (or DNS) says who else.
    let alone = discovery.is_some()
        || discovery_srv.is_some()
        || (name != "default" && !explicit.contains("initial-cluster"));
    let cluster_text = if alone {
        initial_advertise_peer_urls.iter().map(|u| format!("{name}={u}")).collect::<Vec<_>>().join(",")
    } else {
        get("initial-cluster").0.to_string()
    };
    let initial_cluster = parse_initial_cluster(&cluster_text)?;

    let heartbeat_ms = number("heartbeat-interval")?;
    let election_ms = number("election-timeout")?;
    if heartbeat_ms == 0 {
        return Err(ConfigError::Invalid(format!(
            "--heartbeat-interval must be >0 (set to {heartbeat_ms}ms)"
        )));
    }
    if election_ms == 0 {
        return Err(ConfigError::Invalid(format!("--election-timeout must be >0 (set to {election_ms}ms)")));
    }
    if election_ms < heartbeat_ms.saturating_mul(5) {
        return Err(ConfigError::Invalid(format!(
            "--election-timeout[{election_ms}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat_ms}ms]"
        )));
    }
    if election_ms > MAX_ELECTION_MS {
        return Err(ConfigError::Invalid(format!(
            "--election-timeout[{election_ms}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms"
        )));
    }

    let go_bool = |name: &str| {
        let (text, origin) = get(name);
        crate::etcd::format::go_bool(text.trim())
            .ok_or_else(|| origin.invalid(name, text.trim(), "parse error"))
    };
    let force_new_cluster = go_bool("force-new-cluster")?;
    let strict_reconfig_check = go_bool("strict-reconfig-check")?;
    let enable_v2 = go_bool("enable-v2")?;
    let mut snapshot_count = number("snapshot-count")?;
    if snapshot_count == 0 {
        snapshot_count = DEFAULT_SNAPSHOT_COUNT;
        warnings.push(format!("set snapshot count to default {DEFAULT_SNAPSHOT_COUNT}"));
    }
    let (quota_text, quota_origin) = get("quota-backend-bytes");
    let quota_backend_bytes = quota_text
        .trim()
        .parse::<i64>()
        .map_err(|_| quota_origin.invalid("quota-backend-bytes", quota_text, "parse error"))?;
    if quota_backend_bytes > MAX_RECOMMENDED_QUOTA_BYTES as i64 {
        warnings.push(format!(
            "backend quota {quota_backend_bytes} exceeds maximum recommended quota {MAX_RECOMMENDED_QUOTA_BYTES}"
        ));
    }
    let max_request_bytes = number("max-request-bytes")?;
    if max_request_bytes > MAX_RECOMMENDED_REQUEST_BYTES {
        warnings.push(format!(
            "MaxRequestBytes {max_request_bytes} exceeds maximum recommended size {MAX_RECOMMENDED_REQUEST_BYTES}"
        ));
    }
    let max_txn_ops = number("max-txn-ops")?;
    let (auth_token, _) = get("auth-token");
    let jwt = auth_token_options(auth_token)?;
    if let Some(options) = &jwt {
        crate::node::auth::JwtKeys::load(options).map_err(ConfigError::Invalid)?;
    }
    let auth_token_ttl = number("auth-token-ttl")?;
    let mut bcrypt_cost = number("bcrypt-cost")?;
    if !(4..=31).contains(&bcrypt_cost) {
        warnings.push(format!(
            "use default bcrypt-cost {} instead of the invalid value {bcrypt_cost}",
            crate::node::auth::DEFAULT_BCRYPT_COST
        ));
        bcrypt_cost = crate::node::auth::DEFAULT_BCRYPT_COST as u64;
    }
    let auto_compaction = auto_compaction(get("auto-compaction-mode").0, get("auto-compaction-retention").0)?;

    let path = |name: &str| Some(get(name).0.trim()).filter(|p| !p.is_empty()).map(PathBuf::from);
    let client_tls = TlsInfo {
        cert_file: path("cert-file"),
        key_file: path("key-file"),
        trusted_ca_file: path("trusted-ca-file"),
        client_cert_auth: go_bool("client-cert-auth")?,
        allowed_cn: None,
    };
    let peer_tls = TlsInfo {
        cert_file: path("peer-cert-file"),
        key_file: path("peer-key-file"),
        trusted_ca_file: path("peer-trusted-ca-file"),
        client_cert_auth: go_bool("peer-client-cert-auth")?,
        allowed_cn: Some(get("peer-cert-allowed-cn").0.trim().to_string()).filter(|c| !c.is_empty()),
    };
    let auto_tls = go_bool("auto-tls")?;
    let peer_auto_tls = go_bool("peer-auto-tls")?;
    let tls = tls_policy(get("cipher-suites").0, get("tls-min-version").0, get("tls-max-version").0)?;
    for (info, auto, urls, side) in [
        (&client_tls, auto_tls, &listen_client_urls, "client"),
        (&peer_tls, peer_auto_tls, &listen_peer_urls, "peer"),
    ] {
        if auto && !info.is_empty() {
            warnings.push(format!("ignoring {side} auto TLS since certs given"));
        }
        if info.cert_file.is_some() != info.key_file.is_some() {
            return Err(ConfigError::Invalid(format!(
                "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                info.key_file.as_deref().unwrap_or(Path::new("")).display(),
                info.cert_file.as_deref().unwrap_or(Path::new("")).display()
            )));
        }
        for u in urls.iter().filter(|u| u.scheme == "http") {
            if !info.is_empty() {
                warnings.push(format!(
                    "scheme is HTTP while key and cert files are present; ignoring key and cert files \
                     ({side}-url {u})"
                ));
            }
            if info.client_cert_auth {
                let flag = if side == "peer" { "--peer-client-cert-auth" } else { "--client-cert-auth" };
                warnings.push(format!(
                    "scheme is HTTP while {flag} is enabled; ignoring client cert auth for this URL \
                     ({side}-url {u})"
                ));
            }
        }
        if let Some(u) = urls.iter().find(|u| u.scheme == "https").filter(|_| info.is_empty() && !auto) {
            return Err(ConfigError::Invalid(if side == "client" {
                format!("TLS key/cert (--cert-file, --key-file) must be provided for client url {u} with HTTPS scheme")
            } else {
                format!("cannot listen on TLS for {}: KeyFile and CertFile are not presented", u.host_port())
            }));
        }
    }

    let config = NodeConfig {
        name,
        data_dir,
        wal_dir,
        listen_client_urls,
        advertise_client_urls,
        listen_peer_urls,
        initial_advertise_peer_urls,
        initial_cluster,
        initial_cluster_state,
        initial_cluster_token,
        discovery,
        discovery_srv,
        discovery_srv_name: get("discovery-srv-name").0.trim().to_string(),
        discovery_fallback,
        discovery_proxy: Some(get("discovery-proxy").0.trim()).filter(|p| !p.is_empty()).map(str::to_string),
        heartbeat_interval: Duration::from_millis(heartbeat_ms),
        election_timeout: Duration::from_millis(election_ms),
        snapshot_count,
        force_new_cluster,
        strict_reconfig_check,
        enable_v2,
        quota_backend_bytes,
        max_request_bytes,
        max_txn_ops,
        auto_compaction,
        client_tls,
        peer_tls,
        auto_tls,
        peer_auto_tls,
        tls,
        auth_token_ttl,
        jwt,
        bcrypt_cost: bcrypt_cost as u32,
    };
    validate(&config)?;
    Ok(Loaded { config, warnings })
}

/// etcd's decomposeOpts for --auth-token: the type, then `key=value` options, none twice. Simple
/// tokens give None; JWT its options.
fn auth_token_options(text: &str) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    let invalid = || ConfigError::Invalid("auth: invalid auth options".into());
    let mut parts = text.split(',');
    let kind = parts.next().unwrap_or_default();
    let mut options = BTreeMap::new();
    for part in parts {
        let Some((k, v)) = part.split_once('=').filter(|(_, v)| !v.contains('=')) else {
            return Err(invalid());
        };
        if options.insert(k.to_string(), v.to_string()).is_some() {
            return Err(invalid());
        }
    }
    match kind {
        "simple" => Ok(None),
        "jwt" => Ok(Some(options)),
        _ => Err(invalid()),
    }
}

fn auto_compaction(mode: &str, retention: &str) -> Result<AutoCompaction, ConfigError> {
    let mode = mode.trim();
    if !matches!(mode, "" | "periodic" | "revision") {
        return Err(ConfigError::Invalid(format!("unknown auto-compaction-mode {mode:?}")));
    }
    let retention = retention.trim();
    if let Ok(n) = retention.parse::<u64>() {
        return Ok(match (n, mode) {
            (0, _) | (_, "") => AutoCompaction::Disabled,
            (n, "revision") => AutoCompaction::Revision(n),
            (n, _) => AutoCompaction::Periodic(Duration::from_secs(n.saturating_mul(3600))),
        });
    }
    let period = crate::etcd::duration::parse_go_duration(retention)
        .map_err(|e| ConfigError::Invalid(format!("error parsing CompactionRetention: {e}")))?;
    match mode {
        "periodic" => Ok(AutoCompaction::Periodic(period)),
        "revision" => Err(ConfigError::Invalid(format!(
            "error parsing CompactionRetention: revision mode keeps a number of revisions, not {retention:?}"
        ))),
        _ => Err(ConfigError::Invalid("unsupported compaction mode ".into())),
    }
}

/// --cipher-suites, --tls-min-version and --tls-max-version, checked as etcd 3.5 checks them.
fn tls_policy(suites: &str, min: &str, max: &str) -> Result<TlsPolicy, ConfigError> {
    let version = |text: &str| match text.trim() {
        "" => Ok(None),
        "TLS1.2" => Ok(Some(TlsVersion::Tls12)),
        "TLS1.3" => Ok(Some(TlsVersion::Tls13)),
        other => Err(ConfigError::Invalid(format!(
            "unexpected TLS version {other:?} (must be one of: TLS1.2, TLS1.3)"
        ))),
    };
    let min_version = version(min)?.unwrap_or(TlsVersion::Tls12);
    let max_version = version(max)?;
    if max_version.is_some_and(|m| min_version > m) {
        return Err(ConfigError::Invalid(format!(
            "min version ({}) is greater than max version ({})",
            min.trim(),
            max.trim()
        )));
    }
    let mut cipher_suites = Vec::new();
    for name in suites.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if GO_ONLY_CIPHER_SUITES.contains(&name) {
            return Err(ConfigError::Invalid(format!(
                "TLS cipher suite {name:?} is not supported: etcdeck offers only suites with forward \
                 secrecy and AEAD ({})",
                CIPHER_SUITES.join(", ")
            )));
        }
        if !CIPHER_SUITES.contains(&name) {
            return Err(ConfigError::Invalid(format!("unexpected TLS cipher suite {name:?}")));
        }
        cipher_suites.push(name.to_string());
    }
    if min_version == TlsVersion::Tls13 && !cipher_suites.is_empty() {
        return Err(ConfigError::Invalid(
            "cipher suites cannot be configured when only TLS1.3 is enabled".into(),
        ));
    }
    Ok(TlsPolicy { cipher_suites, min_version, max_version })
}

/// etcd's embed.Config.Validate and the bootstrap checks that need no disk or network.
fn validate(c: &NodeConfig) -> Result<(), ConfigError> {
    for u in c.listen_peer_urls.iter().chain(&c.listen_client_urls) {
        if !u.host_is_ip() && u.host != "localhost" && !u.scheme.starts_with("unix") {
            return Err(ConfigError::Invalid(format!("expected IP in URL for binding ({u})")));
        }
    }
    for (flag, list) in [
        ("--initial-advertise-peer-urls", &c.initial_advertise_peer_urls),
        ("--advertise-client-urls", &c.advertise_client_urls),
    ] {
        if let Some(u) = list.iter().find(|u| u.host.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "{flag} {:?} must be \"host:port\" (unexpected empty host ({u}))",
                join(list)
            )));
        }
    }
    if c.discovery.is_some() && c.initial_cluster_state == ClusterState::Existing {
        return Err(ConfigError::Invalid(
            "discovery URL should not be set when joining existing initial cluster".into(),
        ));
    }
    let Some(own) = c.initial_cluster.get(&c.name) else {
        return Err(ConfigError::Invalid(format!(
            "couldn't find local name {:?} in the initial cluster configuration",
            c.name
        )));
    };
    if has_duplicate_url(&c.initial_cluster) {
        return Err(ConfigError::Invalid(format!("initial cluster {} has duplicate url", cluster_text(c))));
    }
    if c.initial_cluster_state == ClusterState::New {
        let advertised: BTreeSet<&EtcdUrl> = c.initial_advertise_peer_urls.iter().collect();
        let listed: BTreeSet<&EtcdUrl> = own.iter().collect();
        if let Some(missing) = listed.difference(&advertised).next() {
            return Err(ConfigError::Invalid(format!(
                "--initial-cluster has {missing} but missing from --initial-advertise-peer-urls={}",
                join(&c.initial_advertise_peer_urls)
            )));
        }
        if let Some(extra) = advertised.difference(&listed).next() {
            return Err(ConfigError::Invalid(format!(
                "--initial-advertise-peer-urls has {extra} but missing from --initial-cluster={}",
                cluster_text(c)
            )));
        }
    }
    Ok(())
}

fn join(urls: &[EtcdUrl]) -> String {
    urls.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

fn cluster_text(c: &NodeConfig) -> String {
    urls_map_text(&c.initial_cluster)
}

#[path = "config_cluster.rs"]
mod cluster;
pub use cluster::{has_duplicate_url, parse_initial_cluster, urls_map_text};

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
