//! How the console reaches a cluster: etcdctl's connection flags, with etcdctl's names, defaults and
//! ETCDCTL_* environment variables, validated into a [`ConnectConfig`] before anything dials.

use std::path::PathBuf;
use std::time::Duration;

use crate::etcd::duration::parse_go_duration;

/// etcdctl's global connection flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// gRPC endpoints, comma-separated
    #[arg(
        long,
        env = "ETCDCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379",
        global = true
    )]
    pub endpoints: Vec<String>,

    /// dial timeout for client connections (a Go duration: 2s, 500ms, 1m30s)
    #[arg(long, env = "ETCDCTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_go_duration, global = true)]
    pub dial_timeout: Duration,

    /// timeout for short running command (excluding dial timeout)
    #[arg(long, env = "ETCDCTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_go_duration, global = true)]
    pub command_timeout: Duration,

    /// verify certificates of TLS-enabled secure servers using this CA bundle
    #[arg(long, env = "ETCDCTL_CACERT", global = true)]
    pub cacert: Option<PathBuf>,

    /// identify secure client using this TLS certificate file
    #[arg(long, env = "ETCDCTL_CERT", global = true)]
    pub cert: Option<PathBuf>,

    /// identify secure client using this TLS key file
    #[arg(long, env = "ETCDCTL_KEY", global = true)]
    pub key: Option<PathBuf>,

    /// skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)
    #[arg(long, env = "ETCDCTL_INSECURE_SKIP_TLS_VERIFY", global = true)]
    pub insecure_skip_tls_verify: bool,

    /// username[:password] for authentication (prompt if password is not supplied)
    #[arg(long, env = "ETCDCTL_USER", global = true)]
    pub user: Option<String>,

    /// password for authentication (if this option is used, --user option shouldn't include password)
    #[arg(long, env = "ETCDCTL_PASSWORD", global = true, hide_env_values = true)]
    pub password: Option<String>,

    /// domain name to query for SRV records describing cluster endpoints
    #[arg(short = 'd', long, env = "ETCDCTL_DISCOVERY_SRV", global = true)]
    pub discovery_srv: Option<String>,

    /// service name to query when using DNS discovery
    #[arg(long, env = "ETCDCTL_DISCOVERY_SRV_NAME", global = true)]
    pub discovery_srv_name: Option<String>,

    /// accept insecure SRV records describing cluster endpoints
    #[arg(
        long,
        env = "ETCDCTL_INSECURE_DISCOVERY",
        global = true,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub insecure_discovery: bool,
}

/// PEM material read from the files named by --cacert, --cert and --key.
#[derive(Clone, Default)]
pub struct TlsFiles {
    pub ca_pem: Option<Vec<u8>>,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    pub skip_verify: bool,
    /// The name servers' certificates are checked against instead of each endpoint's host (with
    /// --discovery-srv and --insecure-discovery=false, the domain, as etcdctl checks them).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsFiles {
    // Key material never reaches a log line or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca_pem.is_some())
            .field("cert", &self.cert_pem.is_some())
            .field("key", &self.key_pem.is_some())
            .field("skip_verify", &self.skip_verify)
            .finish()
    }
}

/// A validated connection configuration.
#[derive(Clone)]
pub struct ConnectConfig {
    /// Endpoint URLs with their scheme (`http://` or `https://`).
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    pub command_timeout: Duration,
    /// `None` for plain-text connections.
    pub tls: Option<TlsFiles>,
    /// User name and password for etcd's auth.
    pub credentials: Option<(String, String)>,
    /// Why the console must not write (`--read-only`, or the config file marks an endpoint), if so.
    pub read_only: Option<String>,
    /// The saved context this connection came from, if any.
    pub context: Option<ContextMark>,
}

/// How the console marks the context it is connected through: its name, and the colour and banner
/// that make production unmistakable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextMark {
    pub name: String,
    pub color: Option<String>,
    pub banner: Option<String>,
}

impl std::fmt::Debug for ConnectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectConfig")
            .field("endpoints", &self.endpoints)
            .field("dial_timeout", &self.dial_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("tls", &self.tls)
            .field("user", &self.user())
            .finish()
    }
}

impl ConnectConfig {
    /// A plain-text configuration with etcdctl's default timeouts, for tests and tools.
    pub fn plain(endpoints: &[String]) -> Result<Self, ConfigError> {
        Self::build(endpoints, Duration::from_secs(2), Duration::from_secs(5), None, None)
    }

    fn build(
        endpoints: &[String],
        dial_timeout: Duration,
        command_timeout: Duration,
        tls: Option<TlsFiles>,
        credentials: Option<(String, String)>,
    ) -> Result<Self, ConfigError> {
        if dial_timeout.is_zero() {
            return Err(ConfigError::Invalid("--dial-timeout must be greater than 0".into()));
        }
        if command_timeout.is_zero() {
            return Err(ConfigError::Invalid("--command-timeout must be greater than 0".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(|e| normalize_endpoint(e, tls.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(ConfigError::Invalid("--endpoints: at least one endpoint is required".into()));
        }
        Ok(Self {
            endpoints,
            dial_timeout,
            command_timeout,
            tls,
            credentials,
            read_only: None,
            context: None,
        })
    }

    /// The same connection to other endpoints (normalized as --endpoints are).
    pub fn with_endpoints(&self, endpoints: &[String]) -> Result<Self, ConfigError> {
        let mut config = Self::build(
            endpoints,
            self.dial_timeout,
            self.command_timeout,
            self.tls.clone(),
            self.credentials.clone(),
        )?;
        config.read_only = self.read_only.clone();
        Ok(config)
    }

    /// Disables writes when `flag` (--read-only) is set or the config file marks one of the
    /// endpoints read-only. Endpoints match by host and port, with or without a scheme.
    pub fn set_read_only(&mut self, flag: bool, read_only_endpoints: &[String]) {
        if flag {
            self.read_only = Some("--read-only".into());
            return;
        }
        let host_port = |e: &str| {
            let e = e.trim();
            e.strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e)
                .trim_end_matches('/')
                .to_string()
        };
        let marked: Vec<String> = read_only_endpoints.iter().map(|e| host_port(e)).collect();
        if let Some(ep) = self.endpoints.iter().find(|e| marked.contains(&host_port(e))) {
            self.read_only = Some(format!("config.toml marks {} read-only", host_port(ep)));
        }
    }

    /// Marks this connection as the saved context `name` (read-only if the context says so).
    pub fn mark_context(&mut self, name: &str, ctx: &crate::app::config_file::ContextSettings) {
        if ctx.read_only {
            self.read_only = Some(format!("context {name} is read-only"));
        }
        self.context = Some(ContextMark {
            name: name.to_string(),
            color: ctx.color.clone(),
            banner: ctx.banner.clone(),
        });
    }

    /// The user name in use, if any (never the password).
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }
}

/// Why a connection configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{flag}: cannot read {path}: {reason}")]
    Unreadable { flag: &'static str, path: String, reason: String },
    /// --user without a password, and no terminal to ask on.
    #[error(
        "password is required for user {0:?}: pass --password, --user name:password or ETCDCTL_PASSWORD"
    )]
    PasswordRequired(String),
}

impl ConnectionArgs {
    /// These flags with a saved context's connection settings in their place; timeouts the context
    /// does not set stay as given, and a password given by flag or ETCDCTL_PASSWORD is used for the
    /// context's user.
    pub fn with_context(&self, ctx: &crate::app::config_file::ContextSettings) -> Result<Self, ConfigError> {
        let duration = |v: &Option<String>, given: Duration| match v {
            Some(text) => parse_go_duration(text).map_err(ConfigError::Invalid),
            None => Ok(given),
        };
        Ok(Self {
            endpoints: ctx.endpoints.clone(),
            dial_timeout: duration(&ctx.dial_timeout, self.dial_timeout)?,
            command_timeout: duration(&ctx.command_timeout, self.command_timeout)?,
            cacert: ctx.cacert.clone(),
            cert: ctx.cert.clone(),
            key: ctx.key.clone(),
            insecure_skip_tls_verify: ctx.insecure_skip_tls_verify,
            user: ctx.user.clone(),
            password: ctx.user.as_ref().and(self.password.clone()),
            discovery_srv: None,
            discovery_srv_name: None,
            insecure_discovery: true,
        })
    }

    /// Validates the flags and reads the TLS files. `prompt` is asked for a password when only a user
    /// name was given (etcdctl prompts in that case); it returns `None` when it cannot ask.
    pub fn resolve(&self, prompt: impl FnOnce(&str) -> Option<String>) -> Result<ConnectConfig, ConfigError> {
        let read = |flag: &'static str, path: &Option<PathBuf>| -> Result<Option<Vec<u8>>, ConfigError> {
            match path {
                None => Ok(None),
                Some(p) => std::fs::read(p).map(Some).map_err(|e| ConfigError::Unreadable {
                    flag,
                    path: p.display().to_string(),
                    reason: e.to_string(),
                }),
            }
        };
        if self.cert.is_some() != self.key.is_some() {
            return Err(ConfigError::Invalid("--cert and --key must be given together".into()));
        }
        let endpoints = self.discovered_endpoints()?.unwrap_or_else(|| self.endpoints.clone());
        // etcdctl checks certificates against the domain when only secure records are taken.
        let domain = self.discovery_srv.as_deref().map(str::trim).filter(|d| !d.is_empty());
        let server_name = domain.filter(|_| !self.insecure_discovery).map(str::to_string);
        let tls_wanted = self.cacert.is_some()
            || self.cert.is_some()
            || self.insecure_skip_tls_verify
            || server_name.is_some()
            || endpoints.iter().any(|e| e.trim().starts_with("https://"));
        let tls = if tls_wanted {
            Some(TlsFiles {
                ca_pem: read("--cacert", &self.cacert)?,
                cert_pem: read("--cert", &self.cert)?,
                key_pem: read("--key", &self.key)?,
                skip_verify: self.insecure_skip_tls_verify,
                server_name,
            })
        } else {
            None
        };
        let credentials = match (&self.user, &self.password) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ConfigError::Invalid("--password requires --user".into()));
            }
            (Some(user), Some(password)) => {
                if user.contains(':') {
                    return Err(ConfigError::Invalid(
                        "--user shouldn't include password when --password is set".into(),
                    ));
                }
                Some((user.clone(), password.clone()))
            }
            (Some(user), None) => match user.split_once(':') {
                Some((name, password)) => Some((name.to_string(), password.to_string())),
                None => {
                    let password = prompt(user).ok_or_else(|| ConfigError::PasswordRequired(user.clone()))?;
                    Some((user.clone(), password))
                }
            },
        };
        if let Some((name, _)) = &credentials {
            if name.is_empty() {
                return Err(ConfigError::Invalid("--user: the user name is empty".into()));
            }
        }
        ConnectConfig::build(&endpoints, self.dial_timeout, self.command_timeout, tls, credentials)
    }

    /// etcdctl's endpoints from --discovery-srv: those the `_etcd-client-ssl` and `_etcd-client`
    /// records give (with --insecure-discovery=false, the secure ones only: each http one dropped is
    /// said on stderr); None without the flag, or when the records give none (--endpoints then).
    fn discovered_endpoints(&self) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(domain) = self.discovery_srv.as_deref().map(str::trim).filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        let (domain, name) = (domain.to_string(), self.discovery_srv_name.clone().unwrap_or_default());
        // Asked on a thread of its own, so a caller inside a runtime is served as one outside it.
        let found = std::thread::spawn(move || -> Result<Vec<String>, String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("DNS lookup: {e}"))?;
            runtime.block_on(async {
                let dns = crate::etcd::srv::Dns::from_env()?;
                crate::etcd::srv::client_endpoints(&dns, &domain, &name).await
            })
        })
        .join()
        .map_err(|_| ConfigError::Invalid("--discovery-srv: the DNS lookup failed".into()))?
        .map_err(ConfigError::Invalid)?;
        let mut kept = Vec::new();
        for endpoint in found {
            if !self.insecure_discovery && endpoint.starts_with("http://") {
                eprintln!("ignoring discovered insecure endpoint {endpoint:?}");
                continue;
            }
            // The target's root dot goes: the system's resolver reads /etc/hosts without it.
            kept.push(endpoint.replacen(".:", ":", 1));
        }
        Ok((!kept.is_empty()).then_some(kept))
    }
}

/// Gives an endpoint a scheme as etcdctl does: `host:port` is plain text unless TLS is configured.
fn normalize_endpoint(endpoint: &str, tls: bool) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::Invalid(format!("--endpoints: invalid endpoint {endpoint:?}: {why}"));
    let (scheme, rest) = if let Some(rest) = endpoint.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = endpoint.strip_prefix("https://") {
        ("https", rest)
    } else if endpoint.contains("://") {
        return Err(bad("only http:// and https:// are supported"));
    } else if tls {
        ("https", endpoint)
    } else {
        ("http", endpoint)
    };
    let host_port = rest.trim_end_matches('/');
    let port = host_port.rsplit_once(':').map(|(_, p)| p).ok_or_else(|| bad("expected host:port"))?;
    if host_port.contains('/') {
        return Err(bad("expected host:port"));
    }
    port.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok(format!("{scheme}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        conn: ConnectionArgs,
    }

    /// Parses flags as the binary does, but blind to the environment: an ETCDCTL_* variable in the
    /// shell running the tests must not change what they see.
    fn args(list: &[&str]) -> ConnectionArgs {
        let mut all = vec!["etcdeck"];
        all.extend_from_slice(list);
        let command = Cli::command().mut_args(|a| a.env(None::<&'static str>));
        let matches = command.try_get_matches_from(all).expect("flags parse");
        Cli::from_arg_matches(&matches).expect("flags parse").conn
    }

    #[test]
    fn defaults_are_etcdctls() {
        let cfg = args(&[]).resolve(|_| None).unwrap();
        assert_eq!(cfg.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(cfg.dial_timeout, Duration::from_secs(2));
        assert_eq!(cfg.command_timeout, Duration::from_secs(5));
        assert!(cfg.tls.is_none());
        assert!(cfg.credentials.is_none());
    }

    #[test]
    fn endpoints_are_comma_separated_and_get_a_scheme() {
        let cfg =
            args(&["--endpoints", "127.0.0.1:1,http://127.0.0.2:2,https://h:3"]).resolve(|_| None).unwrap();
        assert_eq!(cfg.endpoints, vec!["https://127.0.0.1:1", "http://127.0.0.2:2", "https://h:3"]);
    }

    #[test]
    fn bad_endpoints_are_named() {
        let err = args(&["--endpoints", "localhost"]).resolve(|_| None).unwrap_err();
        assert_eq!(err.to_string(), "--endpoints: invalid endpoint \"localhost\": expected host:port");
        let err = args(&["--endpoints", "unix://x:1"]).resolve(|_| None).unwrap_err();
        assert!(err.to_string().contains("only http:// and https://"), "{err}");
        let err = args(&["--endpoints", "h:99999"]).resolve(|_| None).unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn user_forms_follow_etcdctl() {
        let cfg = args(&["--user", "root:pw"]).resolve(|_| None).unwrap();
        assert_eq!(cfg.credentials, Some(("root".into(), "pw".into())));
        let cfg = args(&["--user", "root", "--password", "a:b"]).resolve(|_| None).unwrap();
        assert_eq!(cfg.credentials, Some(("root".into(), "a:b".into())));
        let cfg = args(&["--user", "root"]).resolve(|u| Some(format!("typed-for-{u}"))).unwrap();
        assert_eq!(cfg.credentials, Some(("root".into(), "typed-for-root".into())));
        let err = args(&["--user", "root"]).resolve(|_| None).unwrap_err();
        assert_eq!(err, ConfigError::PasswordRequired("root".into()));
        assert!(args(&["--password", "x"]).resolve(|_| None).is_err());
        assert!(args(&["--user", "a:b", "--password", "x"]).resolve(|_| None).is_err());
    }

    #[test]
    fn tls_files_are_read_up_front_with_the_flag_named() {
        let err = args(&["--cacert", "/nonexistent/ca.pem"]).resolve(|_| None).unwrap_err();
        assert!(err.to_string().starts_with("--cacert: cannot read /nonexistent/ca.pem"), "{err}");
        let err = args(&["--cert", "/x"]).resolve(|_| None).unwrap_err();
        assert_eq!(err.to_string(), "--cert and --key must be given together");
    }

    #[test]
    fn a_context_replaces_the_connection_flags() {
        let ctx: crate::app::config_file::ContextSettings = toml::from_str(
            "endpoints = [\"10.0.0.1:2379\"]\ninsecure-skip-tls-verify = true\nuser = \"ops\"\n\
             command-timeout = \"9s\"\nread-only = true\nbanner = \"PROD\"\n",
        )
        .expect("context");
        let base = args(&["--endpoints", "127.0.0.1:2379", "--dial-timeout", "3s", "--password", "pw"]);
        let mut cfg = base.with_context(&ctx).expect("context").resolve(|_| None).expect("resolves");
        assert_eq!(cfg.endpoints, vec!["https://10.0.0.1:2379"]);
        assert!(cfg.tls.as_ref().is_some_and(|t| t.skip_verify));
        assert_eq!((cfg.dial_timeout, cfg.command_timeout), (Duration::from_secs(3), Duration::from_secs(9)));
        assert_eq!(cfg.credentials, Some(("ops".into(), "pw".into())));
        cfg.mark_context("prod", &ctx);
        assert_eq!(cfg.read_only.as_deref(), Some("context prod is read-only"));
        assert_eq!(cfg.context.as_ref().and_then(|c| c.banner.as_deref()), Some("PROD"));
        // No password anywhere: asked for, as --user alone is.
        let asked =
            args(&[]).with_context(&ctx).expect("context").resolve(|u| Some(format!("typed for {u}")));
        assert_eq!(asked.expect("resolves").credentials, Some(("ops".into(), "typed for ops".into())));
    }

    #[test]
    fn durations_take_go_syntax_and_refuse_zero() {
        let cfg = args(&["--dial-timeout", "1m30s", "--command-timeout", "250ms"]).resolve(|_| None).unwrap();
        assert_eq!(cfg.dial_timeout, Duration::from_secs(90));
        assert_eq!(cfg.command_timeout, Duration::from_millis(250));
        assert!(args(&["--dial-timeout", "0"]).resolve(|_| None).is_err());
    }
}
