//! A writer of bbolt files that bbolt and etcd's tools open: top-level buckets of sorted keys,
//! written in one pass as a bulk load. Leaves are filled in key order and each level of branch
//! pages is built as the one below it fills, so memory holds one page per level whatever the
//! number of keys; the meta pages, which name the root and the size, are written last.
//!
//! The file it makes: pages 0 and 1 the metas (txids 2 and 1, as a fresh bbolt file after one
//! commit), page 2 an empty freelist (every other page is in use), then the buckets' pages and the
//! root bucket's. See bbolt.rs for the layout.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[cfg(test)]
use super::bbolt::{BoltFile, Bucket};
use super::bbolt::{MAGIC, VERSION};

const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
const BUCKET_LEAF_FLAG: u32 = 0x01;
/// The page size etcd's files have on x86-64 and most arm64 Linux (the OS page size).
pub const PAGE_SIZE: u32 = 4096;
/// A page is filled up to this share of its size before the next key starts a new one (etcd puts
/// keys with a fill of 0.9).
const FILL: usize = PAGE_SIZE as usize * 9 / 10;

/// One level of a bucket's tree being built: the elements of the page not yet written.
#[derive(Default)]
struct Level {
    /// (key, value or child page id as bytes, leaf flags).
    entries: Vec<(Vec<u8>, Vec<u8>, u32)>,
    size: usize,
}

/// A bbolt file being written. Buckets are added in name order, each key in key order.
pub struct BoltWriter {
    file: File,
    next: u64,
    /// The top-level buckets written so far: name and root page.
    buckets: Vec<(Vec<u8>, u64)>,
    /// The tree of the bucket being written: level 0 holds leaf elements, the others branch ones.
    levels: Vec<Level>,
    last_key: Option<Vec<u8>>,
    open: Option<Vec<u8>>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

impl BoltWriter {
    /// Creates `path` (it must not exist) with room for the metas and an empty freelist.
    pub fn create(path: &Path) -> io::Result<BoltWriter> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
        let mut w =
            BoltWriter { file, next: 2, buckets: Vec::new(), levels: Vec::new(), last_key: None, open: None };
        let mut freelist = vec![0u8; PAGE_SIZE as usize];
        freelist[8..10].copy_from_slice(&FREELIST.to_le_bytes());
        w.write_page(2, &mut freelist, 0)?;
        w.next = 3;
        Ok(w)
    }

    fn write_page(&self, id: u64, bytes: &mut [u8], overflow: u32) -> io::Result<()> {
        bytes[0..8].copy_from_slice(&id.to_le_bytes());
        bytes[12..16].copy_from_slice(&overflow.to_le_bytes());
        self.file.write_all_at(bytes, id * u64::from(PAGE_SIZE))
    }

    /// Writes one page (with overflow pages if its elements need them); returns its id.
    fn page(&mut self, flags: u16, entries: &[(Vec<u8>, Vec<u8>, u32)]) -> io::Result<u64> {
        let count =
            u16::try_from(entries.len()).map_err(|_| invalid("too many elements for a page".into()))?;
        let size = PAGE_HEADER
            + entries
                .iter()
                .map(|(k, v, _)| ELEMENT + k.len() + if flags == LEAF { v.len() } else { 0 })
                .sum::<usize>();
        let pages = size.div_ceil(PAGE_SIZE as usize).max(1);
        let overflow =
            u32::try_from(pages - 1).map_err(|_| invalid("a value too large for a page".into()))?;
        let mut bytes = vec![0u8; pages * PAGE_SIZE as usize];
        bytes[8..10].copy_from_slice(&flags.to_le_bytes());
        bytes[10..12].copy_from_slice(&count.to_le_bytes());
        let mut data = PAGE_HEADER + entries.len() * ELEMENT;
        for (i, (key, value, leaf_flags)) in entries.iter().enumerate() {
            let at = PAGE_HEADER + i * ELEMENT;
            let pos = (data - at) as u32;
            let e = &mut bytes[at..at + ELEMENT];
            if flags == LEAF {
                e[0..4].copy_from_slice(&leaf_flags.to_le_bytes());
                e[4..8].copy_from_slice(&pos.to_le_bytes());
                e[8..12].copy_from_slice(&(key.len() as u32).to_le_bytes());
                e[12..16].copy_from_slice(&(value.len() as u32).to_le_bytes());
            } else {
                e[0..4].copy_from_slice(&pos.to_le_bytes());
                e[4..8].copy_from_slice(&(key.len() as u32).to_le_bytes());
                e[8..16].copy_from_slice(value);
            }
            bytes[data..data + key.len()].copy_from_slice(key);
            data += key.len();
            if flags == LEAF {
                bytes[data..data + value.len()].copy_from_slice(value);
                data += value.len();
            }
        }
        let id = self.next;
        self.write_page(id, &mut bytes, overflow)?;
        self.next += pages as u64;
        Ok(id)
    }

    /// Starts the next top-level bucket (ending the open one); names must come in ascending order.
    pub fn begin_bucket(&mut self, name: &[u8]) -> io::Result<()> {
        if self.open.is_some() {
            self.end_bucket()?;
        }
        if self.buckets.last().is_some_and(|(last, _)| last.as_slice() >= name) {
            return Err(invalid(format!("bucket {:?} out of order", String::from_utf8_lossy(name))));
        }
        self.open = Some(name.to_vec());
        self.last_key = None;
        self.levels = vec![Level::default()];
        Ok(())
    }

    /// Adds a key to the open bucket; keys must come in ascending order and not be empty.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put_flagged(key, value, 0)
    }

    fn put_flagged(&mut self, key: &[u8], value: &[u8], flags: u32) -> io::Result<()> {
        if key.is_empty() || self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(invalid(format!("key {:?} empty or out of order", String::from_utf8_lossy(key))));
        }
        self.last_key = Some(key.to_vec());
        let size = ELEMENT + key.len() + value.len();
        if !self.levels[0].entries.is_empty() && PAGE_HEADER + self.levels[0].size + size > FILL {
            self.flush(0)?;
        }
        let leaf = &mut self.levels[0];
        leaf.entries.push((key.to_vec(), value.to_vec(), flags));
        leaf.size += size;
        Ok(())
    }

    /// Writes level `i`'s page and hands its first key and id to the level above.
    fn flush(&mut self, i: usize) -> io::Result<()> {
        let level = std::mem::take(&mut self.levels[i]);
        let Some(first) = level.entries.first().map(|(k, _, _)| k.clone()) else { return Ok(()) };
        let id = self.page(if i == 0 { LEAF } else { BRANCH }, &level.entries)?;
        if self.levels.len() == i + 1 {
            self.levels.push(Level::default());
        }
        let size = ELEMENT + first.len();
        if !self.levels[i + 1].entries.is_empty() && PAGE_HEADER + self.levels[i + 1].size + size > FILL {
            self.flush(i + 1)?;
        }
        let up = &mut self.levels[i + 1];
        up.entries.push((first, id.to_le_bytes().to_vec(), 0));
        up.size += size;
        Ok(())
    }

    /// Writes what is left of the open tree; its root page.
    fn finish_tree(&mut self) -> io::Result<u64> {
        if self.levels[0].entries.is_empty() && self.levels.len() == 1 {
            // An empty bucket: one empty leaf.
            return self.page(LEAF, &[]);
        }
        let mut i = 0;
        loop {
            let top = i + 1 == self.levels.len();
            if top && i > 0 && self.levels[i].entries.len() == 1 {
                let child = &self.levels[i].entries[0].1;
                return Ok(u64::from_le_bytes(
                    child.as_slice().try_into().map_err(|_| invalid("child id".into()))?,
                ));
            }
            self.flush(i)?;
            i += 1;
        }
    }

    /// Ends the open bucket.
    pub fn end_bucket(&mut self) -> io::Result<()> {
        let name = self.open.take().ok_or_else(|| invalid("no bucket is open".into()))?;
        let root = self.finish_tree()?;
        self.buckets.push((name, root));
        Ok(())
    }

    /// Writes the root bucket and the metas, and makes the file durable; returns its size.
    pub fn finish(mut self) -> io::Result<u64> {
        if self.open.is_some() {
            self.end_bucket()?;
        }
        let buckets = std::mem::take(&mut self.buckets);
        self.levels = vec![Level::default()];
        self.last_key = None;
        for (name, root) in &buckets {
            let mut header = root.to_le_bytes().to_vec();
            header.extend_from_slice(&0u64.to_le_bytes());
            self.put_flagged(name, &header, BUCKET_LEAF_FLAG)?;
        }
        let root = self.finish_tree()?;
        for (id, txid) in [(0u64, 2u64), (1, 1)] {
            let mut page = vec![0u8; PAGE_SIZE as usize];
            page[8..10].copy_from_slice(&META.to_le_bytes());
            let m = &mut page[PAGE_HEADER..PAGE_HEADER + 64];
            m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
            m[4..8].copy_from_slice(&VERSION.to_le_bytes());
            m[8..12].copy_from_slice(&PAGE_SIZE.to_le_bytes());
            m[16..24].copy_from_slice(&root.to_le_bytes());
            m[32..40].copy_from_slice(&2u64.to_le_bytes());
            m[40..48].copy_from_slice(&self.next.to_le_bytes());
            m[48..56].copy_from_slice(&txid.to_le_bytes());
            let sum = super::bbolt::fnv1a64(&m[..56]);
            m[56..64].copy_from_slice(&sum.to_le_bytes());
            self.write_page(id, &mut page, 0)?;
        }
        let size = self.next * u64::from(PAGE_SIZE);
        self.file.set_len(size)?;
        self.file.sync_all()?;
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(db: &BoltFile, bucket: &Bucket) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        db.for_each(bucket, |k, v, _| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("read the bucket");
        out
    }

    #[test]
    fn what_is_written_reads_back_with_branches_overflow_and_empty_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut w = BoltWriter::create(&path).unwrap();
        w.begin_bucket(b"alarm").unwrap();
        w.end_bucket().unwrap();
        w.begin_bucket(b"key").unwrap();
        let many: Vec<(Vec<u8>, Vec<u8>)> =
            (0..20_000u32).map(|i| (i.to_be_bytes().to_vec(), vec![b'v'; (i % 97) as usize])).collect();
        for (k, v) in &many {
            w.put(k, v).unwrap();
        }
        w.end_bucket().unwrap();
        w.begin_bucket(b"meta").unwrap();
        w.put(b"big", &vec![7u8; 50_000]).unwrap();
        w.put(b"consistent_index", &9u64.to_be_bytes()).unwrap();
        assert!(w.put(b"a-key-out-of-order", b"").is_err());
        w.end_bucket().unwrap();
        assert!(w.begin_bucket(b"key").is_err(), "buckets in order");
        let size = w.finish().unwrap();

        let db = BoltFile::open(&path).unwrap();
        assert_eq!(db.size(), size);
        let buckets = db.buckets().unwrap();
        let names: Vec<&[u8]> = buckets.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(names, [&b"alarm"[..], b"key", b"meta"]);
        assert!(keys_of(&db, &buckets[0].1).is_empty());
        assert_eq!(keys_of(&db, &buckets[1].1), many);
        let meta = keys_of(&db, &buckets[2].1);
        assert_eq!(meta[0].1.len(), 50_000);
        assert_eq!(meta[1], (b"consistent_index".to_vec(), 9u64.to_be_bytes().to_vec()));
        // An existing file is never overwritten.
        assert!(BoltWriter::create(&path).is_err());
    }
}
