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
//! A torn record at the very end of the newest segment (a write the crash interrupted, never
//! acknowledged because its fdatasync never returned) is cut off at open; a damaged record anywhere
//! else is corruption and refuses to open.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Segments are cut after this many bytes.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

const ENTRY: u8 = 1;
const HARD_STATE: u8 = 2;
const SNAPSHOT: u8 = 3;
const HEADER: usize = 8;

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
    /// Bytes cut off the end of the newest segment (a torn write), if any.
    pub truncated_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal: {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("wal: {path}: corrupt record at offset {offset}: {why}")]
    Corrupt { path: PathBuf, offset: u64, why: String },
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
}

impl Wal {
    pub fn open(dir: &Path) -> Result<(Wal, Recovered), WalError> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    /// As `open`, cutting segments after `segment_bytes` (tests use small segments).
    pub fn open_with(dir: &Path, segment_bytes: u64) -> Result<(Wal, Recovered), WalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for item in fs::read_dir(dir).map_err(io(dir))? {
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

        let mut rec = Recovered::default();
        let mut segments = Vec::new();
        let newest = names.len().checked_sub(1);
        for (i, (seq, path)) in names.iter().enumerate() {
            let mut bytes = Vec::new();
            File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io(path))?;
            let good = replay(path, &bytes, Some(i) == newest, &mut rec)?;
            if good < bytes.len() as u64 {
                // Only possible in the newest segment: a torn final write.
                rec.truncated_bytes = bytes.len() as u64 - good;
                let f = OpenOptions::new().write(true).open(path).map_err(io(path))?;
                f.set_len(good).map_err(io(path))?;
                f.sync_all().map_err(io(path))?;
            }
            let last_index = rec.entries.last().map_or(rec.snapshot.index, |e| e.index);
            segments.push(Segment { seq: *seq, path: path.clone(), last_index });
        }

        let last_index = rec.entries.last().map_or(rec.snapshot.index, |e| e.index);
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
        self.write(&buf, must_sync)?;
        if let Some(last) = entries.last() {
            self.last_index = last.index;
            if let Some(seg) = self.segments.last_mut() {
                seg.last_index = last.index;
            }
        }
        if let Some(h) = hard_state {
            self.hard_state = h;
        }
        Ok(())
    }

    /// Records that entries up to `mark.index` are in the state machine, then deletes the segments
    /// that hold nothing after it.
    pub fn save_snapshot(&mut self, mark: SnapshotMark) -> Result<(), WalError> {
        frame_and_write(self, &snapshot_body(mark))?;
        self.snapshot = mark;
        self.last_index = self.last_index.max(mark.index);
        let keep_from = self.segments.iter().rposition(|s| s.last_index <= mark.index).map_or(0, |i| i + 1);
        // The newest segment always stays: it is the one being written.
        let keep_from = keep_from.min(self.segments.len() - 1);
        for seg in self.segments.drain(..keep_from) {
            fs::remove_file(&seg.path).map_err(io(&seg.path))?;
        }
        sync_dir(&self.dir)
    }

    fn write(&mut self, buf: &[u8], sync: bool) -> Result<(), WalError> {
        let path = self.segments.last().map(|s| s.path.clone()).unwrap_or_else(|| self.dir.clone());
        self.file.write_all(buf).map_err(io(&path))?;
        if sync {
            self.file.sync_data().map_err(io(&path))?;
        }
        self.file_len += buf.len() as u64;
        Ok(())
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

/// Replays one segment into `rec`; returns how many bytes of it are good.
fn replay(path: &Path, bytes: &[u8], newest: bool, rec: &mut Recovered) -> Result<u64, WalError> {
    let corrupt = |offset: usize, why: &str| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        why: why.into(),
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let torn = |why: &str| if newest { Ok(at as u64) } else { Err(corrupt(at, why)) };
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
                return torn("checksum mismatch");
            }
            return Err(corrupt(at, "checksum mismatch"));
        }
        apply(body, rec).map_err(|why| corrupt(at, &why))?;
        at += HEADER + len;
    }
    Ok(at as u64)
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
    fn a_torn_final_write_is_cut_off_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1), entry(2, 1)], Some(hs(1, 2))).unwrap();
        }
        let file = wal_files(dir.path()).pop().unwrap();
        let good_len = fs::metadata(&file).unwrap().len();
        // Half of a record, as a crash during write leaves it.
        let mut half = Vec::new();
        frame(&mut half, &[ENTRY; 40]);
        OpenOptions::new().append(true).open(&file).unwrap().write_all(&half[..20]).unwrap();
        let (mut wal, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries.len(), 2);
        assert_eq!(rec.truncated_bytes, 20);
        assert_eq!(fs::metadata(&file).unwrap().len(), good_len);
        wal.save(&[entry(3, 1)], None).unwrap();
        drop(wal);
        assert_eq!(Wal::open(dir.path()).unwrap().1.entries.len(), 3);
    }

    /// A log of two single-entry batches: its directory, its file and the file's bytes.
    fn two_batches() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.save(&[entry(1, 1)], None).unwrap();
            wal.save(&[entry(2, 1)], None).unwrap();
        }
        let file = wal_files(dir.path()).pop().unwrap();
        let bytes = fs::read(&file).unwrap();
        (dir, file, bytes)
    }

    #[test]
    fn a_final_record_with_a_bad_checksum_is_torn_but_one_in_the_middle_is_corruption() {
        let (dir, file, mut bytes) = two_batches();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&file, &bytes).unwrap();
        let (_, rec) = Wal::open(dir.path()).unwrap();
        assert_eq!(rec.entries, vec![entry(1, 1)], "the damaged last record was never acknowledged");

        let (dir, file, mut bytes) = two_batches();
        bytes[HEADER + 3] ^= 0xff; // inside the first record's body
        fs::write(&file, &bytes).unwrap();
        match Wal::open(dir.path()) {
            Err(WalError::Corrupt { offset, why, .. }) => {
                assert_eq!((offset, why.as_str()), (0, "checksum mismatch"));
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
