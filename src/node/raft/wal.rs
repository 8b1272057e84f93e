//! The raft log's durable store: an append-only write-ahead log whose every batch ends in one
//! fdatasync. sled's flush is weaker than fdatasync (sync_file_range on Linux), so the log that
//! acknowledged writes depend on lives here; sled holds only the state machine.
//!
//! Files are segments named `<seq>-<first index>.wal` (hex). A record is
//! `[body length: u32 LE][crc32 of body: u32 LE][body]`, the body a kind byte and its fields:
//! an entry (index, term, opaque data), the hard state (term, vote, commit), or a snapshot mark
//! (index, term: entries up to it live in the state machine). Replay is etcd's: an entry at an index
//! already seen replaces that entry and everything after it (raft overwrote a conflicting suffix).
//!
//! The durability invariant kept here: every record this log has fdatasynced, and so everything
//! the node acknowledged on the strength of it, is either read back at open or the open fails. After
//! each fdatasync the file `synced` beside the segments is overwritten with the newest segment's
//! sequence number, its length and the last entry index at that moment (a plain write: a crashed
//! process loses nothing the kernel has, and after a power loss the file can only be older than
//! the synced log, which weakens the check but never makes it wrong). At open:
//! - the segments' sequence numbers must run without a gap, and the segment `synced` names must be
//!   there (etcd refuses the same with "wal: file not found");
//! - every record up to the synced length must read back whole, with its checksum;
//! - past the synced length only the newest segment may end in a torn record (a write the crash
//!   interrupted, never acknowledged because its fdatasync never returned): that one is cut off,
//!   and only that, and only when the log is next written, so an open that is refused later (by the
//!   store's checks) has changed nothing;
//! - a damaged record anywhere else is corruption and refuses to open, naming the file and offset.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Segments are cut after this many bytes.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;
const SNAPSHOT: u8 = 3;
const HEADER: usize = 8;

/// The file that records how far the log was synced (see the module notes).
pub const SYNCED_FILE: &str = "synced";
const SYNCED_MAGIC: &[u8; 4] = b"EDS1";
const SYNCED_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// The raft entry, encoded by the caller.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// Entries up to `index` are in the state machine's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotMark {
    pub index: u64,
    pub term: u64,
}

/// What the log held at open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: SnapshotMark,
    /// The entries after the snapshot, contiguous.
    pub entries: Vec<LogEntry>,
    /// Bytes to be cut off the end of the newest segment (a torn write, never synced) before it is
    /// next written, if any.
    pub truncated_bytes: u64,
}

/// How far the log had been synced when it was last written: the newest segment, its length, and
/// the last entry index then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Synced {
    seq: u64,
    len: u64,
    last_index: u64,
}

impl Synced {
    fn encode(self) -> [u8; SYNCED_LEN] {
        let mut b = [0u8; SYNCED_LEN];
        b[..4].copy_from_slice(SYNCED_MAGIC);
        b[4..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..28].copy_from_slice(&self.last_index.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Synced, String> {
        if b.len() != SYNCED_LEN || &b[..4] != SYNCED_MAGIC {
            return Err(format!("not a record of the synced log length ({} bytes)", b.len()));
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let crc = u32::from_le_bytes(b[28..32].try_into().unwrap_or([0; 4]));
        if crc32fast::hash(&b[..28]) != crc {
            return Err("crc mismatch".into());
        }
        Ok(Synced { seq: u(4), len: u(12), last_index: u(20) })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal: {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("wal: {path}: corrupt record at offset {offset}: {why}")]
    Corrupt { path: PathBuf, offset: u64, why: String },
    /// Records that were synced (and so may have been acknowledged) are not there.
    #[error("wal: {path}: {why}. Was the raft log corrupted, truncated, or lost?")]
    Lost { path: PathBuf, why: String },
}

impl WalError {
    /// Whether the disk refused the write for want of space (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        match self {
            WalError::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
            }
            _ => false,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_path_buf(), source }
}

struct Segment {
    seq: u64,
    path: PathBuf,
    /// The highest entry index written to it (0: none).
    last_index: u64,
}

pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    segments: Vec<Segment>,
    file: File,
    file_len: u64,
    hard_state: HardState,
    snapshot: SnapshotMark,
    last_index: u64,
    /// The `synced` file, rewritten after every fdatasync.
    synced: File,
    /// The newest segment ends in a torn record: cut it back to this length before writing.
    cut_torn_to: Option<u64>,
    /// A write failed (the error): nothing more is written.
    failed: Option<String>,
    /// Bytes the disk has left for the log, when a test says so (None: as many as it has).
    space_left: Option<u64>,
}

impl Wal {
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    /// As `open`, cutting segments after `segment_bytes` (tests use small segments).
    pub fn open_with(dir: &Path, segment_bytes: u64) -> Result<(Wal, Recovered), WalError> {
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        let listing = match fs::read_dir(dir) {
            Ok(listing) => Some(listing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(dir)(e)),
        };
        for item in listing.into_iter().flatten() {
            let path = item.map_err(io(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(stem) = name.strip_suffix(".wal") else { continue };
            let seq = stem.split('-').next().and_then(|s| u64::from_str_radix(s, 16).ok());
            match seq {
                Some(seq) => names.push((seq, path)),
                None => {
                    return Err(WalError::Corrupt {
                        path,
                        offset: 0,
                        why: "a .wal file whose name is not <seq>-<index>.wal".into(),
                    })
                }
            }
        }
        names.sort();
        for pair in names.windows(2) {
            if pair[1].0 != pair[0].0 + 1 {
                return Err(WalError::Lost {
                    path: pair[1].1.clone(),
                    why: format!(
                        "file not found: the log files' sequence numbers skip from {:x} to {:x} \
                         (a log file between them is missing)",
                        pair[0].0, pair[1].0
                    ),
                });
            }
        }
        let synced_path = dir.join(SYNCED_FILE);
        let synced = match fs::read(&synced_path) {
            Ok(bytes) => Some(Synced::decode(&bytes).map_err(|why| WalError::Corrupt {
                path: synced_path.clone(),
                offset: 0,
                why,
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&synced_path)(e)),
        };
        if let Some(mark) = synced {
            // A crash between cutting a new segment and recording it leaves the mark one behind.
            let newest = names.last().map(|(seq, _)| *seq);
            if !names.iter().any(|(seq, _)| *seq == mark.seq) || newest.is_some_and(|n| n > mark.seq + 1) {
                return Err(WalError::Lost {
                    path: dir.join(format!("{:016x}-*.wal", mark.seq)),
                    why: format!(
                        "file not found: the log was synced through entry {} in segment {:x}, \
                         which is not there",
                        mark.last_index, mark.seq
                    ),
                });
            }
        }

        let mut rec = Recovered::default();
        let mut segments = Vec::new();
        let mut cut_torn_to = None;
        let newest = names.len().checked_sub(1);
        for (i, (seq, path)) in names.iter().enumerate() {
            let mut bytes = Vec::new();
            File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io(path))?;
            let (good, why) = replay(path, &bytes, Some(i) == newest, &mut rec)?;
            let last_index = rec.entries.last().map_or(rec.snapshot.index, |e| e.index);
            if let Some(mark) = synced.filter(|m| m.seq == *seq) {
                if good < mark.len {
                    return Err(WalError::Lost {
                        path: path.clone(),
                        why: format!(
                            "the log reads back to offset {good} ({}), but it was synced to offset {} \
                             through entry {}: tocommit({}) is out of range [lastIndex({last_index})]",
                            why.as_deref().unwrap_or("end of file"),
                            mark.len,
                            mark.last_index,
                            mark.last_index
                        ),
                    });
                }
            }
            if good < bytes.len() as u64 {
                // Only possible in the newest segment, past what was synced: a torn final write.
                rec.truncated_bytes = bytes.len() as u64 - good;
                cut_torn_to = Some(good);
            }
            segments.push(Segment { seq: *seq, path: path.clone(), last_index });
        }

        let last_index = rec.entries.last().map_or(rec.snapshot.index, |e| e.index);
        if segments.is_empty() {
            if let Some(mark) = synced.filter(|m| m.last_index > 0) {
                return Err(WalError::Lost {
                    path: dir.to_path_buf(),
                    why: format!("file not found: the log was synced through entry {}", mark.last_index),
                });
            }
        }
        // Nothing is written before here: a log refused above is left exactly as it was.
        fs::create_dir_all(dir).map_err(io(dir))?;
        let synced_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&synced_path)
            .map_err(io(&synced_path))?;
        let (file, file_len) = match segments.last() {
            Some(s) => {
                let f = OpenOptions::new().append(true).open(&s.path).map_err(io(&s.path))?;
                let len = f.metadata().map_err(io(&s.path))?.len();
                (f, len)
            }
            None => {
                let seg = new_segment(dir, 0, last_index + 1)?;
                let f = OpenOptions::new().append(true).open(&seg.path).map_err(io(&seg.path))?;
                segments.push(seg);
                (f, 0)
            }
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            file,
            file_len,
            hard_state: rec.hard_state,
            snapshot: rec.snapshot,
            last_index,
            synced: synced_file,
            cut_torn_to,
            failed: None,
            space_left: None,
        };
        Ok((wal, rec))
    }

    /// Appends entries (an entry at an index already written replaces it and all after it) and the
    /// hard state. As etcd's WAL does, it syncs (one fdatasync for the whole batch) when there are
    /// entries or the term or vote changed, and returns once they are on disk; a change of the commit
    /// index alone is written without a sync (raft recovers a commit index that lags).
    pub fn save(&mut self, entries: &[LogEntry], hard_state: Option<HardState>) -> Result<(), WalError> {
        if entries.is_empty() && hard_state.is_none_or(|h| h == self.hard_state) {
            return Ok(());
        }
        if self.file_len >= self.segment_bytes {
            self.cut(entries.first().map_or(self.last_index + 1, |e| e.index))?;
        }
        let must_sync = !entries.is_empty()
            || hard_state.is_some_and(|h| h.term != self.hard_state.term || h.vote != self.hard_state.vote);
        let mut buf = Vec::new();
        for e in entries {
            let mut body = Vec::with_capacity(17 + e.data.len());
            body.push(ENTRY);
            body.extend_from_slice(&e.index.to_le_bytes());
            body.extend_from_slice(&e.term.to_le_bytes());
            body.extend_from_slice(&e.data);
            frame(&mut buf, &body);
        }
        if let Some(h) = hard_state {
            frame(&mut buf, &hard_state_body(h));
        }
        // Set before the write, which records the last index it synced (a failed write leaves the
        // log refusing every later one, so these never outlive a failure).
        if let Some(last) = entries.last() {
            self.last_index = last.index;
            if let Some(seg) = self.segments.last_mut() {
                seg.last_index = last.index;
            }
        }
        if let Some(h) = hard_state {
            self.hard_state = h;
        }
        self.write(&buf, must_sync)
    }

    /// Records that entries up to `mark.index` are in the state machine, then deletes the segments
    /// that hold nothing after it.
    pub fn save_snapshot(&mut self, mark: SnapshotMark) -> Result<(), WalError> {
        self.snapshot = mark;
        self.last_index = self.last_index.max(mark.index);
        frame_and_write(self, &snapshot_body(mark))?;
        let keep_from = self.segments.iter().rposition(|s| s.last_index <= mark.index).map_or(0, |i| i + 1);
        // The newest segment always stays: it is the one being written.
        let keep_from = keep_from.min(self.segments.len() - 1);
        for seg in self.segments.drain(..keep_from) {
            fs::remove_file(&seg.path).map_err(io(&seg.path))?;
        }
        sync_dir(&self.dir)
    }

    /// Writes `buf` at the end of the newest segment (and syncs it). After a failure the segment's
    /// end is unknown (part of `buf` may be there), so every later write is refused: the member must
    /// be restarted, and the torn end is then cut at open.
    fn write(&mut self, buf: &[u8], sync: bool) -> Result<(), WalError> {
        let path = self.segments.last().map(|s| s.path.clone()).unwrap_or_else(|| self.dir.clone());
        if let Some(why) = &self.failed {
            let source =
                std::io::Error::other(format!("an earlier write failed ({why}); restart the member"));
            return Err(WalError::Io { path, source });
        }
        let result = self.write_unpoisoned(&path, buf, sync);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }

    fn write_unpoisoned(&mut self, path: &Path, buf: &[u8], sync: bool) -> Result<(), WalError> {
        if let Some(good) = self.cut_torn_to {
            // The torn record was never synced, so never acknowledged: it goes before anything
            // follows it.
            self.file.set_len(good).map_err(io(path))?;
            self.file.sync_all().map_err(io(path))?;
            self.file_len = good;
            self.cut_torn_to = None;
        }
        if let Some(left) = self.space_left {
            // As a full disk does: what fits is written, then ENOSPC.
            let fits = left.min(buf.len() as u64);
            self.space_left = Some(left - fits);
            if fits < buf.len() as u64 {
                self.file.write_all(&buf[..fits as usize]).map_err(io(path))?;
                return Err(io(path)(std::io::Error::from_raw_os_error(libc::ENOSPC)));
            }
        }
        self.file.write_all(buf).map_err(io(path))?;
        self.file_len += buf.len() as u64;
        if sync {
            self.file.sync_data().map_err(io(path))?;
            self.record_synced()?;
        }
        Ok(())
    }

    /// Records how far the log is synced: the newest segment, its length, the last entry index.
    fn record_synced(&mut self) -> Result<(), WalError> {
        use std::os::unix::fs::FileExt;
        let mark = Synced {
            seq: self.segments.last().map_or(0, |s| s.seq),
            len: self.file_len,
            last_index: self.last_index,
        };
        let path = self.dir.join(SYNCED_FILE);
        self.synced.write_all_at(&mark.encode(), 0).map_err(io(&path))
    }

    /// Starts a new segment that begins with the snapshot mark and hard state, so older segments can
    /// go once a snapshot covers their entries.
    fn cut(&mut self, first_index: u64) -> Result<(), WalError> {
        let seq = self.segments.last().map_or(0, |s| s.seq + 1);
        let seg = new_segment(&self.dir, seq, first_index)?;
        self.file = OpenOptions::new().append(true).open(&seg.path).map_err(io(&seg.path))?;
        self.file_len = 0;
        self.segments.push(Segment { last_index: self.last_index, ..seg });
        let mut buf = Vec::new();
        frame(&mut buf, &snapshot_body(self.snapshot));
        frame(&mut buf, &hard_state_body(self.hard_state));
        self.write(&buf, true)?;
        sync_dir(&self.dir)
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Makes the disk hold only `bytes` more of the log (tests inject a full disk with it).
    pub fn limit_space(&mut self, bytes: u64) {
        self.space_left = Some(bytes);
    }

    /// The segment being written (the one a lost tail was lost from).
    pub fn newest_path(&self) -> &Path {
        self.segments.last().map_or(self.dir.as_path(), |s| s.path.as_path())
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn frame_and_write(wal: &mut Wal, body: &[u8]) -> Result<(), WalError> {
    let mut buf = Vec::new();
    frame(&mut buf, body);
    wal.write(&buf, true)
}

fn new_segment(dir: &Path, seq: u64, first_index: u64) -> Result<Segment, WalError> {
    let path = dir.join(format!("{seq:016x}-{first_index:016x}.wal"));
    File::create(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
    sync_dir(dir)?;
    Ok(Segment { seq, path, last_index: 0 })
}

/// A new or removed file is durable only once its directory is synced.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn frame(buf: &mut Vec<u8>, body: &[u8]) {
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    buf.extend_from_slice(body);
}

fn hard_state_body(h: HardState) -> Vec<u8> {
    let mut body = vec![HARD_STATE];
    for n in [h.term, h.vote, h.commit] {
        body.extend_from_slice(&n.to_le_bytes());
    }
    body
}

fn snapshot_body(m: SnapshotMark) -> Vec<u8> {
    let mut body = vec![SNAPSHOT];
    body.extend_from_slice(&m.index.to_le_bytes());
    body.extend_from_slice(&m.term.to_le_bytes());
    body
}

/// Replays one segment into `rec`; returns how many bytes of it are good and, if that is not all of
/// it, why the rest is not.
fn replay(
    path: &Path,
    bytes: &[u8],
    newest: bool,
    rec: &mut Recovered,
) -> Result<(u64, Option<String>), WalError> {
    let corrupt = |offset: usize, why: &str| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why: why.into(),
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn =
            |why: &str| if newest { Ok((at as u64, Some(why.to_string()))) } else { Err(corrupt(at, why)) };
        if rest.len() < HEADER || rest.iter().all(|b| *b == 0) {
            return torn("truncated record header");
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || rest.len() < HEADER + len {
            return torn("record runs past the end of the file");
        }
        let body = &rest[HEADER..HEADER + len];
        if crc32fast::hash(body) != crc {
            // A bad checksum on the final record is a torn write; before other records it is damage.
            if HEADER + len == rest.len() {
                return torn("crc mismatch");
            }
            return Err(corrupt(at, "crc mismatch"));
        }
        apply(body, rec).map_err(|why| corrupt(at, &why))?;
        at += HEADER + len;
    }
    Ok((at as u64, None))
}

fn apply(body: &[u8], rec: &mut Recovered) -> Result<(), String> {
    let u64_at = |i: usize| -> Result<u64, String> {
        body.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| "record too short".to_string())
    };
    match body.first() {
        Some(&ENTRY) => {
            let e = LogEntry { index: u64_at(1)?, term: u64_at(9)?, data: body[17..].to_vec() };
            if e.index <= rec.snapshot.index {
                return Ok(());
            }
            // The entries held are consecutive, so a rewritten suffix starts at a computed position
            // (a scan from the front for every record made replay quadratic in the segment's length).
            if let Some(first) = rec.entries.first().map(|f| f.index) {
                if e.index <= rec.entries.last().map_or(0, |l| l.index) {
                    rec.entries.truncate(e.index.saturating_sub(first) as usize);
                }
            }
            let expected = rec.entries.last().map_or(e.index, |l| l.index + 1);
            if e.index != expected {
                return Err(format!("entry {} follows entry {}", e.index, expected - 1));
            }
            rec.entries.push(e);
        }
        Some(&HARD_STATE) => {
            rec.hard_state = HardState { term: u64_at(1)?, vote: u64_at(9)?, commit: u64_at(17)? }
        }
        Some(&SNAPSHOT) => {
            let mark = SnapshotMark { index: u64_at(1)?, term: u64_at(9)? };
            if mark.index > rec.snapshot.index {
                rec.snapshot = mark;
                let below = rec.entries.partition_point(|e| e.index <= mark.index);
                rec.entries.drain(..below);
            }
        }
        _ => return Err("unknown record kind".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry { index, term, data: format!("e{index}t{term}").into_bytes() }
    }

    fn hs(term: u64, commit: u64) -> HardState {
        HardState { term, vote: 1, commit }
    }

    fn wal_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        wal_files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "wal")).collect()
    }

    #[test]
    fn what_was_saved_is_there_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, rec) = Wal::open(dir.path()).unwrap();
            assert_eq!(rec, Recovered::default());
            wal.save(&[entry(1, 1), entry(2, 1)], Some(hs(1, 1))).unwrap();
            wal.save(&[entry(3, 1)], Some(hs(1, 3))).unwrap();
        }
        let (wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![entry(1, 1), entry(2, 1), entry(3, 1)]);
        assert_eq!(rec.hard_state, hs(1, 3));
        assert_eq!(wal.last_index(), 3);
    }

    #[test]
    fn a_conflicting_append_replaces_the_suffix() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1), entry(2, 1), entry(3, 1)], None).unwrap();
            wal.save(&[entry(2, 2)], Some(hs(2, 1))).unwrap();
            wal.save(&[entry(3, 2), entry(4, 2)], None).unwrap();
        }
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![entry(1, 1), entry(2, 2), entry(3, 2), entry(4, 2)]);
    }

    #[test]
    fn a_torn_final_write_is_cut_off_when_the_log_is_next_written() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1), entry(2, 1)], Some(hs(1, 2))).unwrap();
        }
        let file = segment_files(dir.path()).pop().unwrap();
        let good_len = fs::metadata(&file).unwrap().len();
        // Half of a record, as a crash during write leaves it.
        let mut half = Vec::new();
        frame(&mut half, &[ENTRY; 40]);
        OpenOptions::new().append(true).open(&file).unwrap().write_all(&half[..20]).unwrap();
        let (mut wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries.len(), 2);
        assert_eq!(rec.truncated_bytes, 20);
        assert_eq!(fs::metadata(&file).unwrap().len(), good_len + 20, "nothing is cut by opening alone");
        wal.save(&[entry(3, 1)], None).unwrap();
        drop(wal);
        assert_eq!(Wal::open(dir.path()).unwrap().1.entries.len(), 3);
    }

    /// Opens `dir` expecting a refusal for lost records; checks the files were left as they were.
    fn refused_as_lost(dir: &Path) -> String {
        let before: Vec<(PathBuf, Vec<u8>)> =
            wal_files(dir).into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
        let why = match Wal::open(dir) {
            Err(e @ WalError::Lost { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r)),
        };
        let after: Vec<(PathBuf, Vec<u8>)> =
            wal_files(dir).into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
        assert!(before == after, "a refused open changed the log");
        why
    }

    #[test]
    fn a_synced_tail_that_is_cut_or_zeroed_is_refused_never_repaired() {
        for damage in ["cut 5", "cut 60", "zero 4096", "zero all"] {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut wal, _) = Wal::open(dir.path()).unwrap();
                for i in 1..=20 {
                    wal.save(&[entry(i, 1)], Some(hs(1, i))).unwrap();
                }
            }
            let file = segment_files(dir.path()).pop().unwrap();
            let mut bytes = fs::read(&file).unwrap();
            let len = bytes.len();
            match damage.split_once(' ').unwrap() {
                ("cut", n) => bytes.truncate(len - n.parse::<usize>().unwrap()),
                ("zero", "all") => bytes.fill(0),
                (_, n) => bytes[len.saturating_sub(n.parse().unwrap())..].fill(0),
            }
            fs::write(&file, &bytes).unwrap();
            let why = refused_as_lost(dir.path());
            assert!(why.contains("out of range [lastIndex(") && why.contains("synced"), "{damage}: {why}");
            assert!(why.contains(&file.display().to_string()), "{damage}: names the file: {why}");
        }
    }

    #[test]
    fn a_commit_written_after_the_last_sync_may_be_lost_without_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1)], Some(hs(1, 0))).unwrap();
            // A commit index alone is written, not synced, and vouches for nothing.
            wal.save(&[], Some(hs(1, 1))).unwrap();
        }
        let file = segment_files(dir.path()).pop().unwrap();
        let len = fs::metadata(&file).unwrap().len();
        OpenOptions::new().write(true).open(&file).unwrap().set_len(len - 10).unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![entry(1, 1)]);
        assert_eq!(rec.hard_state, hs(1, 0));
    }

    #[test]
    fn a_missing_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open_with(dir.path(), 128).unwrap();
            for i in 1..=20 {
                wal.save(&[entry(i, 1)], Some(hs(1, i))).unwrap();
            }
        }
        let files = segment_files(dir.path());
        assert!(files.len() >= 4, "{files:?}");
        // The newest: the synced record names it.
        let newest = dir.path().join("newest");
        fs::rename(files.last().unwrap(), &newest).unwrap();
        let why = refused_as_lost(dir.path());
        assert!(why.contains("file not found"), "{why}");
        fs::rename(&newest, files.last().unwrap()).unwrap();
        // One in the middle.
        fs::remove_file(&files[1]).unwrap();
        let why = refused_as_lost(dir.path());
        assert!(why.contains("file not found") && why.contains("skip from 0 to 2"), "{why}");
        // All of them.
        for f in segment_files(dir.path()) {
            fs::remove_file(f).unwrap();
        }
        let why = refused_as_lost(dir.path());
        assert!(why.contains("file not found"), "{why}");
    }

    #[test]
    fn a_damaged_synced_record_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        Wal::open(dir.path()).unwrap().0.save(&[entry(1, 1)], None).unwrap();
        let path = dir.path().join(SYNCED_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[10] ^= 1;
        fs::write(&path, &bytes).unwrap();
        match Wal::open(dir.path()) {
            Err(WalError::Corrupt { path: p, why, .. }) => {
                assert_eq!((p, why.as_str()), (path, "crc mismatch"));
            }
            other => panic!("expected corruption, got {:?}", other.map(|(_, r)| r)),
        }
    }

    /// A log of two single-entry batches: its directory, its file and the file's bytes.
    fn two_batches() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1)], None).unwrap();
            wal.save(&[entry(2, 1)], None).unwrap();
        }
        let file = segment_files(dir.path()).pop().unwrap();
        let bytes = fs::read(&file).unwrap();
        (dir, file, bytes)
    }

    #[test]
    fn a_final_record_with_a_bad_checksum_is_torn_if_never_synced_and_damage_otherwise() {
        // Written after the last sync (a crash before its fdatasync returned), with a bad checksum.
        let (dir, file, bytes) = two_batches();
        let mut unsynced = Vec::new();
        frame(&mut unsynced, &[ENTRY; 30]);
        let n = unsynced.len();
        unsynced[n - 1] ^= 0xff;
        OpenOptions::new().append(true).open(&file).unwrap().write_all(&unsynced).unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![entry(1, 1), entry(2, 1)]);
        assert_eq!(rec.truncated_bytes, n as u64);
        drop(bytes);

        // The same damage to a record that was synced: it may have been acknowledged.
        let (dir, file, mut bytes) = two_batches();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&file, &bytes).unwrap();
        let why = refused_as_lost(dir.path());
        assert!(why.contains("crc mismatch"), "{why}");

        let (dir, file, mut bytes) = two_batches();
        bytes[HEADER + 3] ^= 0xff; // inside the first record's body
        fs::write(&file, &bytes).unwrap();
        match Wal::open(dir.path()) {
            Err(WalError::Corrupt { offset, why, .. }) => {
                assert_eq!((offset, why.as_str()), (0, "crc mismatch"));
            }
            other => panic!("expected corruption, got {:?}", other.map(|(_, r)| r)),
        }
        assert_eq!(fs::read(&file).unwrap(), bytes, "a corrupt log is left untouched");
    }

    #[test]
    fn segments_are_cut_and_released_after_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(dir.path(), 256).unwrap();
        for i in 1..=40 {
            wal.save(&[entry(i, 1)], Some(hs(1, i))).unwrap();
        }
        let before = wal.segment_count();
        assert!(before > 3, "small segments were cut: {before}");
        drop(wal);
        let (mut wal, rec) = Wal::open_with(dir.path(), 256).unwrap();
        assert_eq!(rec.entries.len(), 40);
        assert_eq!(rec.hard_state, hs(1, 40));

        wal.save_snapshot(SnapshotMark { index: 30, term: 1 }).unwrap();
        assert!(wal.segment_count() < before, "segments below the snapshot were deleted");
        wal.save(&[entry(41, 2)], Some(hs(2, 41))).unwrap();
        drop(wal);
        let (_, rec) = Wal::open_with(dir.path(), 256).unwrap();
        assert_eq!(rec.snapshot, SnapshotMark { index: 30, term: 1 });
        assert_eq!(rec.entries.first().map(|e| e.index), Some(31));
        assert_eq!(rec.entries.last().map(|e| e.index), Some(41));
        assert_eq!(rec.hard_state, hs(2, 41));
    }

    #[test]
    fn stray_files_with_a_wal_suffix_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("junk.wal"), b"x").unwrap();
        match Wal::open(dir.path()) {
            Err(WalError::Corrupt { why, .. }) => assert!(why.contains("<seq>-<index>.wal"), "{why}"),
            other => panic!("expected an error, got {:?}", other.map(|(_, r)| r)),
        }
    }
}
