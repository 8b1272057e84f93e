//! File-system helpers whose point is durability.

use std::path::Path;

/// Writes a file so that after a crash it is either absent or whole.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir` (None if unknown).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs the call fills in.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The free space where a directory lives, asked of the kernel (a statvfs, a few microseconds:
/// once per write was 6% of a put's CPU) at most every `FreeSpace::FRESH` while it is more than
/// `FreeSpace::MARGIN` above what is needed, and every time closer to the line than that: no disk
/// fills 256 MiB in 20 ms.
pub struct FreeSpace {
    dir: std::path::PathBuf,
    born: std::time::Instant,
    bytes: std::sync::atomic::AtomicU64,
    /// When `bytes` was taken, in nanoseconds since `born` plus one; 0 when it never was.
    taken: std::sync::atomic::AtomicU64,
}

impl FreeSpace {
    pub const FRESH: std::time::Duration = std::time::Duration::from_millis(20);
    pub const MARGIN: u64 = 256 << 20;

    pub fn new(dir: std::path::PathBuf) -> FreeSpace {
        FreeSpace {
            dir,
            born: std::time::Instant::now(),
            bytes: Default::default(),
            taken: Default::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Free bytes (None if unknown), fresh whenever they are within `MARGIN` of `need`.
    pub fn free(&self, need: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.born.elapsed().as_nanos() as u64 + 1;
        let taken = self.taken.load(Relaxed);
        if taken != 0 && now.saturating_sub(taken) < Self::FRESH.as_nanos() as u64 {
            let bytes = self.bytes.load(Relaxed);
            if bytes >= need.saturating_add(Self::MARGIN) {
                return Some(bytes);
            }
        }
        let Some(bytes) = free_bytes(&self.dir) else {
            self.taken.store(0, Relaxed);
            return None;
        };
        self.bytes.store(bytes, Relaxed);
        self.taken.store(now, Relaxed);
        Some(bytes)
    }
}

/// Makes a directory's entries (files created or renamed in it) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// fsync every file below `dir`, and the directories themselves.
pub fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let synced = if path.is_dir() {
            sync_tree(&path)
        } else {
            std::fs::File::open(&path).and_then(|f| f.sync_all())
        };
        match synced {
            // Removed since the listing (sled drops blobs and old snapshots of its own as it goes):
            // nothing of it is left to make durable, and the directory's sync below covers the removal.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    sync_dir(dir)
}
