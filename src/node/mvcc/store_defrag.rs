//! Defragmentation: the database copied compactly to a new directory and swapped in, and what a
//! crash part way leaves finished or undone at the next open.

use std::path::Path;

use super::{io_error, open_db, Store};
use crate::node::mvcc::error::MvccError;

impl Store {
    /// Rewrites the database compactly: copies it to a new directory, makes the copy durable, then
    /// swaps the two. A crash part way is finished or undone at the next open; a failure part way
    /// puts the old database back.
    pub fn defragment(&mut self) -> Result<(), MvccError> {
        self.flush_group()?;
        self.check_no_exports("defragment")?;
        // A compaction deferred while a snapshot was sent: its records go first, not into the copy.
        self.finish_compaction()?;
        let fresh = defrag_path(&self.dir, "defrag");
        let old = defrag_path(&self.dir, "old");
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io_error)?;
        }
        {
            let db = open_db(&fresh)?;
            let tree = db.open_tree("mvcc")?;
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in self.tree.iter() {
                let (k, v) = item?;
                batch.insert(k, v);
                n += 1;
                if n % 10_000 == 0 {
                    tree.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            tree.apply_batch(batch)?;
            db.flush()?;
        }
        crate::node::fsutil::sync_tree(&fresh).map_err(io_error)?;
        self.make_durable()?;
        let parent = self.dir.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into());
        std::fs::rename(&self.dir, &old).map_err(io_error)?;
        if let Err(e) = std::fs::rename(&fresh, &self.dir) {
            let _ = std::fs::rename(&old, &self.dir);
            return Err(io_error(e));
        }
        crate::node::fsutil::sync_dir(&parent).map_err(io_error)?;
        match open_db(&self.dir).and_then(|db| db.open_tree("mvcc").map(|t| (db, t))) {
            Ok((db, tree)) => {
                self.db = db;
                self.tree = tree;
            }
            Err(e) => {
                // Back to the old database, which this process still has open.
                let _ = std::fs::rename(&self.dir, &fresh);
                let _ = std::fs::rename(&old, &self.dir);
                let _ = crate::node::fsutil::sync_dir(&parent);
                return Err(e.into());
            }
        }
        std::fs::remove_dir_all(&old).map_err(io_error)?;
        crate::node::fsutil::sync_dir(&parent).map_err(io_error)?;
        Ok(())
    }
}

pub(super) fn defrag_path(dir: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Finishes or undoes a defragmentation, or a switch to a staged snapshot, that a crash interrupted:
/// the old copy is complete until the new one has been renamed into place.
pub(super) fn recover_defragmentation(dir: &Path) -> Result<(), MvccError> {
    let fresh = defrag_path(dir, "defrag");
    let old = defrag_path(dir, "old");
    if old.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error)?;
        } else {
            std::fs::rename(&old, dir).map_err(io_error)?;
        }
    }
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(io_error)?;
    }
    Ok(())
}
