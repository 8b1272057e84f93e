//! etcd 3.4's write-ahead log, read only (wal/wal.go, decoder.go, util.go): segments named
//! `<seq>-<first index>.wal` (16 hex digits each), each a run of frames: an 8-byte little-endian
//! length word (the top byte's low bits the padding, when its high bit is set), a proto2
//! walpb.Record {type, crc, data}, zero padding to 8 bytes. The crc is CRC-32C rolling over every
//! record's data since the first segment; each segment starts with a crc record carrying it on. A
//! zero length word ends a segment (the rest is preallocated space).
//!
//! Reading follows etcd's ReadAll: from the last segment starting at or before the snapshot's
//! index, entries after it, an entry at an index already read replacing it and what follows (raft
//! overwrote a conflicting suffix), the last hard state, one metadata (every copy equal), and the
//! snapshot record that must match the snapshot. A torn write at the end of the newest segment
//! (cut short, or a 512-byte sector of zeros where a record should be) ends the log, as etcd's
//! repair would cut it; any other damage is an error naming the file and offset. Nothing is
//! written.

use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;

/// etcd's walpb.Record types.
const METADATA: i64 = 1;
const ENTRY: i64 = 2;
const STATE: i64 = 3;
const CRC: i64 = 4;
const SNAPSHOT: i64 = 5;
/// etcd's maxWALEntrySizeLimit.
const MAX_RECORD: u64 = 10 * 1024 * 1024;
/// etcd's minSectorSize, the unit of a torn write.
const SECTOR: u64 = 512;

#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(int64, tag = "1")]
    kind: i64,
    #[prost(uint32, tag = "2")]
    crc: u32,
    #[prost(bytes = "vec", optional, tag = "3")]
    data: Option<Vec<u8>>,
}

/// raftpb.Entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// 0 normal, 1 a configuration change, 2 a configuration change v2.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(uint64, tag = "3")]
    pub index: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

pub const ENTRY_NORMAL: i32 = 0;
pub const ENTRY_CONF_CHANGE: i32 = 1;

/// raftpb.HardState.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct HardState {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub vote: u64,
    #[prost(uint64, tag = "3")]
    pub commit: u64,
}

/// walpb.Snapshot: the raft snapshot a log starts after.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotMark {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
}

/// etcdserverpb.Metadata: who wrote the log.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Metadata {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    #[prost(uint64, tag = "2")]
    pub cluster_id: u64,
}

/// raftpb.ConfChange.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfChange {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// etcd's numbering: 0 add, 1 remove, 2 update, 3 add a learner.
    #[prost(int32, tag = "2")]
    pub kind: i32,
    #[prost(uint64, tag = "3")]
    pub node_id: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub context: Vec<u8>,
}

pub const CONF_ADD: i32 = 0;
pub const CONF_REMOVE: i32 = 1;
pub const CONF_UPDATE: i32 = 2;
pub const CONF_ADD_LEARNER: i32 = 3;

/// An entry as the log holds it, with where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub entry: Entry,
    pub file: PathBuf,
    pub offset: u64,
}

/// What a WAL holds after a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct WalContents {
    pub metadata: Metadata,
    pub hard_state: HardState,
    /// The entries after the snapshot, contiguous from its index + 1.
    pub entries: Vec<LogEntry>,
    /// The segments read, oldest first.
    pub files: Vec<PathBuf>,
    /// A torn write the newest segment ended in, left out as etcd's repair would cut it.
    pub torn_tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalError {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for WalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{}: at offset {o}: {}", self.path.display(), self.what),
            None => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

impl std::error::Error for WalError {}

fn error(path: &Path, offset: Option<u64>, what: impl Into<String>) -> WalError {
    WalError { path: path.to_path_buf(), offset, what: what.into() }
}

/// A segment's name: `%016x-%016x.wal`, its sequence number and the index of its first entry.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, index) = stem.split_once('-')?;
    if seq.len() != 16 || index.len() != 16 {
        return None;
    }
    Some((u64::from_str_radix(seq, 16).ok()?, u64::from_str_radix(index, 16).ok()?))
}

/// The segments in `dir`, by name (etcd ignores other files, such as its preallocated `0.tmp`).
pub fn segments(dir: &Path) -> Result<Vec<(PathBuf, u64, u64)>, WalError> {
    let read = std::fs::read_dir(dir).map_err(|e| error(dir, None, e.to_string()))?;
    let mut found = Vec::new();
    for item in read {
        let item = item.map_err(|e| error(dir, None, e.to_string()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some((seq, index)) = parse_name(&name) {
            found.push((name, seq, index));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(name, seq, index)| (dir.join(name), seq, index)).collect())
}

/// etcd's CRC-32C carried on from `prev` (Go's crc32.Update).
pub fn crc32c_update(prev: u32, data: &[u8]) -> u32 {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut digest = CASTAGNOLI.digest_with_initial((!prev).reverse_bits());
    digest.update(data);
    digest.finalize()
}

/// How reading one frame ended.
enum Frame {
    Record(Record, u64),
    /// A zero length word or the end of the file: the segment's data ends.
    End,
    /// A write the crash cut short (only ever at the end of the newest segment).
    Torn(String),
}

struct Segment<'a> {
    path: &'a Path,
    file: std::io::BufReader<std::fs::File>,
    size: u64,
    /// Where the next frame starts.
    offset: u64,
    newest: bool,
}

impl Segment<'_> {
    /// Whether some 512-byte sector of the frame read at `start` is all zeros (etcd's isTornEntry:
    /// a sector the crash never wrote).
    fn torn(&self, start: u64, data: &[u8]) -> bool {
        if !self.newest {
            return false;
        }
        let mut at = start;
        let mut rest = data;
        while !rest.is_empty() {
            let len = ((SECTOR - at % SECTOR) as usize).min(rest.len());
            if rest[..len].iter().all(|b| *b == 0) {
                return true;
            }
            at += len as u64;
            rest = &rest[len..];
        }
        false
    }

    fn next(&mut self, crc: &mut u32) -> Result<Frame, WalError> {
        let at = self.offset;
        if self.size.saturating_sub(at) < 8 {
            return if self.size == at || !self.newest {
                Ok(Frame::End)
            } else {
                Ok(Frame::Torn(format!("a frame cut short at offset {at}")))
            };
        }
        let mut word = [0u8; 8];
        self.file.read_exact(&mut word).map_err(|e| error(self.path, Some(at), e.to_string()))?;
        let word = u64::from_le_bytes(word);
        if word == 0 {
            return Ok(Frame::End);
        }
        let len = word & !(0xffu64 << 56);
        let pad = if word >> 63 == 1 { (word >> 56) & 0x7 } else { 0 };
        if len >= MAX_RECORD - pad {
            return Err(error(
                self.path,
                Some(at),
                format!("a record of {len} bytes, over etcd's limit of {MAX_RECORD} (wal: max entry size limit exceeded)"),
            ));
        }
        let body = at + 8;
        if len + pad > self.size - body {
            if self.newest {
                return Ok(Frame::Torn(format!("a record of {len} bytes cut short at offset {at}")));
            }
            return Err(error(
                self.path,
                Some(at),
                format!("a record of {len} bytes runs past the end of the file ({} bytes)", self.size),
            ));
        }
        let mut data = vec![0u8; (len + pad) as usize];
        self.file.read_exact(&mut data).map_err(|e| error(self.path, Some(body), e.to_string()))?;
        self.offset = body + len + pad;
        let record = match Record::decode(&data[..len as usize]) {
            Ok(r) => r,
            Err(e) if self.torn(body, &data) => return Ok(Frame::Torn(format!("at offset {at}: {e}"))),
            Err(e) => return Err(error(self.path, Some(at), format!("the record does not decode: {e}"))),
        };
        if record.kind != CRC {
            let next = crc32c_update(*crc, record.data.as_deref().unwrap_or_default());
            if next != record.crc {
                if self.torn(body, &data) {
                    return Ok(Frame::Torn(format!("a partly written record at offset {at}")));
                }
                return Err(error(
                    self.path,
                    Some(at),
                    format!(
                        "wal: crc mismatch (the record says {:#010x}, its data gives {next:#010x})",
                        record.crc
                    ),
                ));
            }
            *crc = next;
        }
        Ok(Frame::Record(record, at))
    }
}

/// Reads the WAL in `dir` after `snapshot` (etcd's wal.Open + ReadAll, without writing).
pub fn read(dir: &Path, snapshot: SnapshotMark) -> Result<WalContents, WalError> {
    let all = segments(dir)?;
    if all.is_empty() {
        return Err(error(dir, None, "wal: file not found (no <seq>-<index>.wal segment)"));
    }
    // The last segment starting at or before the snapshot.
    let Some(first) = all.iter().rposition(|(_, _, index)| *index <= snapshot.index) else {
        return Err(error(
            dir,
            None,
            format!(
                "wal: file not found (no segment starts at or before the snapshot's index {})",
                snapshot.index
            ),
        ));
    };
    let chosen = &all[first..];
    for pair in chosen.windows(2) {
        if pair[1].1 != pair[0].1.wrapping_add(1) {
            return Err(error(
                &pair[1].0,
                None,
                format!("wal: segments out of sequence (after {})", pair[0].0.display()),
            ));
        }
    }
    let mut crc = 0u32;
    let mut metadata: Option<Vec<u8>> = None;
    let mut hard_state = HardState::default();
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut matched = false;
    let mut torn_tail = None;
    for (i, (path, _, _)) in chosen.iter().enumerate() {
        let file = std::fs::File::open(path).map_err(|e| error(path, None, e.to_string()))?;
        let size = file.metadata().map_err(|e| error(path, None, e.to_string()))?.len();
        let mut segment = Segment {
            path,
            file: std::io::BufReader::with_capacity(64 * 1024, file),
            size,
            offset: 0,
            newest: i + 1 == chosen.len(),
        };
        loop {
            let (record, at) = match segment.next(&mut crc)? {
                Frame::Record(r, at) => (r, at),
                Frame::End => break,
                Frame::Torn(what) => {
                    torn_tail = Some(format!("{}: {what}", path.display()));
                    break;
                }
            };
            let data = record.data.unwrap_or_default();
            let bad = |what: &str, e: prost::DecodeError| {
                error(path, Some(at), format!("{what} does not decode: {e}"))
            };
            match record.kind {
                ENTRY => {
                    let entry = Entry::decode(data.as_slice()).map_err(|e| bad("an entry", e))?;
                    if entry.index > snapshot.index {
                        let up = entry.index - snapshot.index - 1;
                        if up > entries.len() as u64 {
                            return Err(error(
                                path,
                                Some(at),
                                format!(
                                    "entry {} leaves a gap after entry {} (wal: slice bounds out of range)",
                                    entry.index,
                                    snapshot.index + entries.len() as u64
                                ),
                            ));
                        }
                        entries.truncate(up as usize);
                        entries.push(LogEntry { entry, file: path.clone(), offset: at });
                    }
                }
                STATE => {
                    hard_state = HardState::decode(data.as_slice()).map_err(|e| bad("a hard state", e))?
                }
                METADATA => {
                    if metadata.as_ref().is_some_and(|m| *m != data) {
                        return Err(error(path, Some(at), "wal: conflicting metadata found"));
                    }
                    metadata = Some(data);
                }
                CRC => {
                    if crc != 0 && record.crc != crc {
                        return Err(error(
                            path,
                            Some(at),
                            format!("wal: crc mismatch (the segment carries {:#010x} on, the log had {crc:#010x})", record.crc),
                        ));
                    }
                    crc = record.crc;
                }
                SNAPSHOT => {
                    let mark =
                        SnapshotMark::decode(data.as_slice()).map_err(|e| bad("a snapshot record", e))?;
                    if mark.index == snapshot.index {
                        if mark.term != snapshot.term {
                            return Err(error(
                                path,
                                Some(at),
                                format!(
                                    "wal: snapshot mismatch (the log has term {} at index {}, the snapshot term {})",
                                    mark.term, mark.index, snapshot.term
                                ),
                            ));
                        }
                        matched = true;
                    }
                }
                other => return Err(error(path, Some(at), format!("unexpected block type {other}"))),
            }
        }
    }
    let newest = &chosen[chosen.len() - 1].0;
    if !matched {
        return Err(error(
            newest,
            None,
            format!("wal: snapshot not found (no record of the snapshot at index {})", snapshot.index),
        ));
    }
    let Some(metadata) = metadata else {
        return Err(error(newest, None, "the log has no metadata record (member and cluster IDs)"));
    };
    let metadata = Metadata::decode(metadata.as_slice())
        .map_err(|e| error(&chosen[0].0, None, format!("the metadata does not decode: {e}")))?;
    Ok(WalContents {
        metadata,
        hard_state,
        entries,
        files: chosen.iter().map(|(p, _, _)| p.clone()).collect(),
        torn_tail,
    })
}

/// Test support: etcd's encoder, byte for byte. gogo's proto2 messages emit every scalar field,
/// zero or not, which changes the rolling CRC, so these are written by hand.
pub mod encode {
    use super::*;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Varint fields 1, 2, 3... in order, each emitted even when zero.
    pub fn scalars(values: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            // Wire type 0 (varint) in the low bits.
            out.push((i as u8 + 1) << 3);
            varint(&mut out, *v);
        }
        out
    }

    /// raftpb.Entry as etcd marshals it.
    pub fn entry(e: &Entry) -> Vec<u8> {
        let mut out = scalars(&[e.kind as u64, e.term, e.index]);
        out.push(0x22);
        varint(&mut out, e.data.len() as u64);
        out.extend_from_slice(&e.data);
        out
    }

    /// Appends etcd's frame of one record to `out`, rolling `crc` on.
    pub fn frame(out: &mut Vec<u8>, crc: &mut u32, kind: i64, data: Option<&[u8]>) {
        if kind != CRC {
            *crc = crc32c_update(*crc, data.unwrap_or_default());
        }
        let mut record = scalars(&[kind as u64, u64::from(*crc)]);
        if let Some(data) = data {
            record.push(0x1a);
            varint(&mut record, data.len() as u64);
            record.extend_from_slice(data);
        }
        let len = record.len() as u64;
        let pad = (8 - len % 8) % 8;
        let word = if pad == 0 { len } else { len | ((0x80 | pad) << 56) };
        out.extend_from_slice(&word.to_le_bytes());
        out.extend_from_slice(&record);
        out.extend(std::iter::repeat_n(0u8, pad as usize));
    }

    /// A segment as `etcdctl snapshot restore` or a new member starts one: crc, metadata, the
    /// snapshot record it starts after, then `entries` and the hard state.
    pub fn segment(
        crc: &mut u32,
        metadata: Metadata,
        start: SnapshotMark,
        entries: &[Entry],
        hard_state: HardState,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, crc, CRC, None);
        frame(&mut out, crc, METADATA, Some(&scalars(&[metadata.node_id, metadata.cluster_id])));
        frame(&mut out, crc, SNAPSHOT, Some(&scalars(&[start.index, start.term])));
        for e in entries {
            frame(&mut out, crc, ENTRY, Some(&entry(e)));
        }
        let hs = hard_state;
        frame(&mut out, crc, STATE, Some(&scalars(&[hs.term, hs.vote, hs.commit])));
        out
    }

    pub const KIND_CRC: i64 = CRC;
    pub const KIND_METADATA: i64 = METADATA;
    pub const KIND_SNAPSHOT: i64 = SNAPSHOT;
    pub const KIND_ENTRY: i64 = ENTRY;
    pub const KIND_STATE: i64 = STATE;
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;

    fn entry_at(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { kind: ENTRY_NORMAL, term, index, data: data.to_vec() }
    }

    #[test]
    fn the_rolling_crc_is_gos_crc32_update_with_castagnoli() {
        assert_eq!(crc32c_update(0, b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_update(crc32c_update(0, b"1234"), b"56789"), 0xe306_9283);
    }

    /// The first bytes of the WAL `etcdctl snapshot restore` writes for the default member, as
    /// derived from etcd's encoder: crc record, metadata (member 8e9e05c52164694d, cluster
    /// cdf818194e3a8c32) and the snapshot {0, 0}.
    #[test]
    fn frames_match_etcds_encoder() {
        let mut crc = 0;
        let mut out = Vec::new();
        frame(&mut out, &mut crc, CRC, None);
        frame(&mut out, &mut crc, METADATA, Some(&scalars(&[0x8e9e05c52164694d, 0xcdf818194e3a8c32])));
        frame(&mut out, &mut crc, SNAPSHOT, Some(&scalars(&[0, 0])));
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "040000000000008408041000000000002000000000000000080110bb81c7fc051a1608cdd2918bd2b881cf8e0110b298eaf1948386fccd01\
             0e0000000000008208051094bbc7ed0e1a04080010000000"
        );
    }

    fn write_log(dir: &Path, segments: &[Vec<u8>]) {
        for (i, bytes) in segments.iter().enumerate() {
            let mut bytes = bytes.clone();
            bytes.resize(bytes.len() + 4096, 0); // preallocated space
            std::fs::write(dir.join(format!("{:016x}-{:016x}.wal", i, if i == 0 { 0 } else { 3 })), bytes)
                .unwrap();
        }
    }

    fn sample(dir: &Path) {
        let md = Metadata { node_id: 7, cluster_id: 9 };
        let mut crc = 0;
        let first = segment(
            &mut crc,
            md,
            SnapshotMark::default(),
            &[entry_at(1, 1, b"a"), entry_at(2, 1, b"b"), entry_at(3, 1, b"c")],
            HardState { term: 1, vote: 7, commit: 2 },
        );
        // The second segment: raft overwrote entry 3 at term 2, then went on.
        let mut second = Vec::new();
        frame(&mut second, &mut crc, CRC, None);
        frame(&mut second, &mut crc, METADATA, Some(&scalars(&[md.node_id, md.cluster_id])));
        frame(&mut second, &mut crc, SNAPSHOT, Some(&scalars(&[2, 1])));
        for e in [entry_at(3, 2, b"C"), entry_at(4, 2, b"d")] {
            frame(&mut second, &mut crc, ENTRY, Some(&entry(&e)));
        }
        frame(&mut second, &mut crc, STATE, Some(&scalars(&[2, 7, 4])));
        write_log(dir, &[first, second]);
    }

    #[test]
    fn reads_entries_after_the_snapshot_with_overwrites_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let c = read(dir.path(), SnapshotMark::default()).unwrap();
        assert_eq!(c.metadata, Metadata { node_id: 7, cluster_id: 9 });
        assert_eq!(c.hard_state, HardState { term: 2, vote: 7, commit: 4 });
        let got: Vec<(u64, u64, Vec<u8>)> =
            c.entries.iter().map(|e| (e.entry.index, e.entry.term, e.entry.data.clone())).collect();
        assert_eq!(
            got,
            vec![(1, 1, b"a".to_vec()), (2, 1, b"b".to_vec()), (3, 2, b"C".to_vec()), (4, 2, b"d".to_vec())]
        );
        // From the snapshot at 2, only the second segment is read.
        let c = read(dir.path(), SnapshotMark { index: 2, term: 1 });
        // Segment 1 starts at index 3, so the first segment (index 0) is where reading starts.
        let c = c.unwrap();
        assert_eq!(c.entries.iter().map(|e| e.entry.index).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(
            read(dir.path(), SnapshotMark { index: 2, term: 5 }).unwrap_err().what,
            "wal: snapshot mismatch (the log has term 1 at index 2, the snapshot term 5)"
        );
        assert!(read(dir.path(), SnapshotMark { index: 9, term: 1 })
            .unwrap_err()
            .what
            .starts_with("wal: snapshot not found"));
    }

    #[test]
    fn a_torn_tail_ends_the_log_and_damage_elsewhere_is_named() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let names = segments(dir.path()).unwrap();
        let (first, second) = (&names[0].0, &names[1].0);
        let whole = std::fs::read(second).unwrap();
        let used = whole.len() - 4096;
        // Cut in the middle of the last record of the newest segment: the log ends before it.
        std::fs::write(second, &whole[..used - 5]).unwrap();
        let c = read(dir.path(), SnapshotMark::default()).unwrap();
        assert!(c.torn_tail.is_some());
        assert_eq!(c.hard_state, HardState { term: 1, vote: 7, commit: 2 });
        assert_eq!(c.entries.len(), 4);
        std::fs::write(second, &whole).unwrap();
        // A flipped bit in a record of the older segment (in its CRC) is corruption.
        let at = c.entries[0].offset as usize + 8 + 5;
        let mut bytes = std::fs::read(first).unwrap();
        bytes[at] ^= 0x10;
        std::fs::write(first, &bytes).unwrap();
        let e = read(dir.path(), SnapshotMark::default()).unwrap_err();
        assert_eq!(e.path, *first);
        assert!(e.offset.is_some(), "{e}");
    }

    /// Every truncation and many bit flips and oversized lengths of a real-shaped log give entries
    /// or an error naming the file: never a panic, never an allocation beyond the file.
    #[test]
    fn damaged_logs_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let names = segments(dir.path()).unwrap();
        for (path, _, _) in &names {
            let whole = std::fs::read(path).unwrap();
            let used = whole.len() - 4096 + 16;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let mut cases: Vec<Vec<u8>> = (0..used).map(|n| whole[..n].to_vec()).collect();
            for _ in 0..600 {
                let mut b = whole.clone();
                let at = (next() % used as u64) as usize;
                b[at] ^= 1 << (next() % 8);
                cases.push(b);
                let mut b = whole.clone();
                let at = (next() % (used as u64 - 8)) as usize;
                b[at..at + 8].copy_from_slice(&(0x7fff_ffff_ffff_fff0u64 | (next() & 0xf)).to_le_bytes());
                cases.push(b);
            }
            for case in cases {
                std::fs::write(path, &case).unwrap();
                if let Err(e) = read(dir.path(), SnapshotMark::default()) {
                    assert!(e.path.starts_with(dir.path()), "{e}");
                }
            }
            std::fs::write(path, &whole).unwrap();
        }
    }

    #[test]
    fn segment_names_are_etcds() {
        assert_eq!(parse_name("0000000000000001-00000000000000ff.wal"), Some((1, 255)));
        assert_eq!(parse_name("0.tmp"), None);
        assert_eq!(parse_name("1-2.wal"), None);
    }
}
