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
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFile {
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, EndpointSettings>,
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
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConsoleFile::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn read_only_endpoints(&self) -> Vec<String> {
        self.endpoints.iter().filter(|(_, s)| s.read_only).map(|(e, _)| e.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
