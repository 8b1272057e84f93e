//! The user's configuration files: `$XDG_CONFIG_HOME/etcdeck/<file>`, laid over embedded defaults.

use std::path::{Path, PathBuf};

/// `$XDG_CONFIG_HOME/etcdeck/<file>`, else `~/.config/etcdeck/<file>`.
pub fn user_config_file(file: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("etcdeck").join(file))
}

/// The default layer and, if the user's file exists, its layer: (where it came from, its text).
/// A file that exists but cannot be read is an error naming it; a missing one is no layer.
pub fn layers(default: (&str, &str), user_file: Option<&Path>) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![(default.0.to_string(), default.1.to_string())];
    if let Some(path) = user_file {
        match std::fs::read_to_string(path) {
            Ok(text) => out.push((path.display().to_string(), text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(out)
}

/// Borrowed views of `layers`' output, for `from_layers`.
pub fn as_refs(layers: &[(String, String)]) -> Vec<(&str, &str)> {
    layers.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect()
}

/// The console's settings file, `config.toml`:
///
/// ```toml
/// [endpoints."10.0.0.1:2379"]
/// read-only = true
///
/// [contexts.prod]            # etcdeck --context prod, or :ctx prod in the console
/// endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
/// cacert = "/etc/etcd/ca.crt"
/// cert = "/etc/etcd/client.crt"
/// key = "/etc/etcd/client.key"
/// user = "ops"               # the password is asked for, never kept here
/// read-only = true
/// color = "red"              # the header's colour: a name or #rrggbb
/// banner = "PRODUCTION"
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFile {
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, EndpointSettings>,
    #[serde(default)]
    pub contexts: std::collections::BTreeMap<String, ContextSettings>,
}

/// A saved connection: etcdctl's connection flags under a name, with how the console marks it.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContextSettings {
    pub endpoints: Vec<String>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    pub user: Option<String>,
    /// Refused with a reason: passwords are asked for, never kept in the file.
    password: Option<toml::Value>,
    /// Go durations, as the flags take them.
    pub dial_timeout: Option<String>,
    pub command_timeout: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    pub color: Option<String>,
    pub banner: Option<String>,
}

/// The colour names a context may use (ratatui's, as the terminal's 16 colours name them).
pub const COLOR_NAMES: &[&str] = &[
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "darkgray",
    "lightred",
    "lightgreen",
    "lightyellow",
    "lightblue",
    "lightmagenta",
    "lightcyan",
    "white",
];

fn valid_color(c: &str) -> bool {
    let hex = c.strip_prefix('#').is_some_and(|h| h.len() == 6 && h.chars().all(|d| d.is_ascii_hexdigit()));
    hex || COLOR_NAMES.contains(&c.to_ascii_lowercase().as_str())
}

impl ContextSettings {
    fn check(&self, name: &str) -> Result<(), String> {
        let at = format!("contexts.{name}");
        if self.password.is_some() {
            return Err(format!(
                "{at}: passwords are never kept in config.toml; give `user` and the console asks for the password"
            ));
        }
        if self.endpoints.is_empty() {
            return Err(format!("{at}: `endpoints` needs at least one endpoint"));
        }
        if let Some(c) = self.color.as_deref().filter(|c| !valid_color(c)) {
            return Err(format!("{at}: unknown color {c:?} (a name such as red, or #rrggbb)"));
        }
        for (field, value) in
            [("dial-timeout", &self.dial_timeout), ("command-timeout", &self.command_timeout)]
        {
            if let Some(v) = value {
                crate::etcd::duration::parse_go_duration(v).map_err(|e| format!("{at}: {field}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    #[serde(rename = "read-only", default)]
    pub read_only: bool,
}

impl ConsoleFile {
    /// Reads the file; a missing file is the defaults, a bad one an error naming the file.
    pub fn load(path: Option<&Path>) -> Result<ConsoleFile, String> {
        let Some(path) = path else { return Ok(ConsoleFile::default()) };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: ConsoleFile =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                for (name, ctx) in &file.contexts {
                    ctx.check(name).map_err(|e| format!("{}: {e}", path.display()))?;
                }
                Ok(file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConsoleFile::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// A context by name; an unknown one is an error listing those the file defines.
    pub fn context(&self, name: &str) -> Result<&ContextSettings, String> {
        self.contexts.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
            if known.is_empty() {
                format!("unknown context {name:?}: config.toml defines no [contexts.NAME]")
            } else {
                format!("unknown context {name:?}; config.toml defines {}", known.join(", "))
            }
        })
    }

    pub fn read_only_endpoints(&self) -> Vec<String> {
        self.endpoints.iter().filter(|(_, s)| s.read_only).map(|(e, _)| e.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_read_checked_and_never_hold_a_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[contexts.prod]\nendpoints = [\"https://10.0.0.1:2379\"]\ncacert = \"/etc/ca.crt\"\nuser = \"ops\"\n\
             read-only = true\ncolor = \"red\"\nbanner = \"PRODUCTION\"\ndial-timeout = \"3s\"\n\
             [contexts.dev]\nendpoints = [\"127.0.0.1:2379\"]\ncolor = \"#00ff7f\"\n",
        )
        .unwrap();
        let file = ConsoleFile::load(Some(&path)).expect("valid");
        let prod = file.context("prod").expect("prod");
        assert!(prod.read_only && prod.user.as_deref() == Some("ops"));
        assert_eq!(prod.banner.as_deref(), Some("PRODUCTION"));
        assert_eq!(
            file.context("nope").unwrap_err(),
            "unknown context \"nope\"; config.toml defines dev, prod"
        );
        for (text, expected) in [
            (
                "[contexts.a]\nendpoints = [\"h:1\"]\npassword = \"x\"\n",
                "passwords are never kept in config.toml",
            ),
            ("[contexts.a]\nendpoints = []\n", "contexts.a: `endpoints` needs at least one endpoint"),
            ("[contexts.a]\nendpoints = [\"h:1\"]\ncolor = \"reddish\"\n", "unknown color \"reddish\""),
            ("[contexts.a]\nendpoints = [\"h:1\"]\ndial-timeout = \"soon\"\n", "contexts.a: dial-timeout"),
            ("[contexts.a]\nendpoints = [\"h:1\"]\ncolour = \"red\"\n", "unknown field `colour`"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = ConsoleFile::load(Some(&path)).unwrap_err();
            assert!(err.contains("config.toml") && err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn the_console_file_marks_endpoints_read_only_and_names_its_mistakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[endpoints.\"10.0.0.1:2379\"]\nread-only = true\n[endpoints.\"b:1\"]\n")
            .unwrap();
        let file = ConsoleFile::load(Some(&path)).expect("valid");
        assert_eq!(file.read_only_endpoints(), vec!["10.0.0.1:2379".to_string()]);
        std::fs::write(&path, "[endpoints.\"a:1\"]\nreadonly = true\n").unwrap();
        let err = ConsoleFile::load(Some(&path)).unwrap_err();
        assert!(err.contains("config.toml") && err.contains("unknown field `readonly`"), "{err}");
        assert!(ConsoleFile::load(Some(&dir.path().join("missing.toml"))).is_ok());

        let mut config =
            crate::app::connection::ConnectConfig::plain(&["http://10.0.0.1:2379".into()]).unwrap();
        config.set_read_only(false, &file.read_only_endpoints());
        assert_eq!(config.read_only.as_deref(), Some("config.toml marks 10.0.0.1:2379 read-only"));
        let mut other = crate::app::connection::ConnectConfig::plain(&["127.0.0.1:2379".into()]).unwrap();
        other.set_read_only(false, &file.read_only_endpoints());
        assert_eq!(other.read_only, None);
        other.set_read_only(true, &[]);
        assert_eq!(other.read_only.as_deref(), Some("--read-only"));
    }
}
