//! `etcdeck snapshot save`: streams a member's backend snapshot to a file, as etcdctl's does — to
//! `<file>.part`, fsynced, then renamed, so a file at the final name is always whole.

use std::io::Write;
use std::path::Path;

use crate::app::client::{connect, error_text};
use crate::app::connection::ConnectConfig;

/// Saves the snapshot of the one endpoint configured; returns the bytes written.
pub async fn save(config: &ConnectConfig, path: &Path) -> Result<u64, String> {
    let [endpoint] = &config.endpoints[..] else {
        // etcdctl's wording.
        return Err(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            config.endpoints.join(" ")
        ));
    };
    let part = path.with_file_name(format!(
        "{}.part",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let mut client = connect(config, endpoint).await?;
    let mut file = std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    let result = async {
        let mut stream = client.snapshot().await.map_err(|e| error_text(&e))?;
        let mut written = 0u64;
        while let Some(piece) = stream.message().await.map_err(|e| error_text(&e))? {
            file.write_all(piece.blob()).map_err(|e| format!("{}: {e}", part.display()))?;
            written += piece.blob().len() as u64;
        }
        file.sync_all().map_err(|e| format!("{}: {e}", part.display()))?;
        Ok::<u64, String>(written)
    }
    .await;
    match result {
        Ok(written) => {
            std::fs::rename(&part, path).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}
