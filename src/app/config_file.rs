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
