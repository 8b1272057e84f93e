//! A writer of bbolt files that bbolt and etcd's tools open: top-level buckets of sorted keys,
//! written in one pass as a bulk load. Leaves are filled in key order and each level of branch
//! pages is built as the one below it fills, so memory holds one page per level whatever the
//! number of keys; the meta pages, which name the root and the size, are written last.
//!
//! The file it makes: pages 0 and 1 the metas (txids 2 and 1, as a fresh bbolt file after one
//! commit), page 2 an empty freelist (every other page is in use), then the buckets' pages and the
//! root bucket's. See bbolt.rs for the layout.
//!
//! Pages come out in id order, so a file can also be streamed as it is made, once its metas are
//! known: a counting pass over the same keys (sizes only, nothing laid out) gives the root page and
//! the page count ([`Layout`]), and a streaming writer given that layout sends the metas first and
//! every page after them as it is made, checking at the end that it made the same file.

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

/// One level of a bucket's tree being built: the elements of the page not yet written, their keys
/// and values side by side in one buffer.
#[derive(Default)]
struct Level {
    bytes: Vec<u8>,
    /// (key's length, value's length, leaf flags), in order; each key is followed by its value in
    /// `bytes` (for branch elements the value is the child's page id, 8 bytes).
    elems: Vec<(u32, u32, u32)>,
    size: usize,
}

impl Level {
    /// Adds an element; `on_page` is the bytes it takes on the page beyond its header (a leaf's
    /// key and value, a branch's key alone: the child's id is in the header).
    /// `stored` is the value as kept (empty in a counting writer's leaves), `len` its length.
    fn push(&mut self, key: &[u8], stored: &[u8], len: usize, flags: u32, on_page: usize) {
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(stored);
        self.elems.push((key.len() as u32, len as u32, flags));
        self.size += ELEMENT + on_page;
    }

    fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    fn first_key(&self) -> Option<&[u8]> {
        self.elems.first().map(|(k, _, _)| &self.bytes[..*k as usize])
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.elems.clear();
        self.size = 0;
    }
}

/// Pages are written in id order; they gather here and go out in large writes.
const WRITE_BUFFER: usize = 1 << 20;

/// What the metas of a file name: its root bucket's page and its size in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub root: u64,
    pub pages: u64,
}

impl Layout {
    pub fn bytes(&self) -> u64 {
        self.pages * u64::from(PAGE_SIZE)
    }
}

/// What a streaming writer hands its pages to.
pub type PageSink = Box<dyn FnMut(&[u8]) -> io::Result<()> + Send>;

/// Where the pages go.
enum Out {
    /// A file: pages buffered from id `from` on; the metas are written last, at the start.
    File { file: File, from: u64 },
    /// Nowhere: only their sizes are counted.
    Count,
    /// Handed on in order, the metas first (from a counting pass's layout).
    Stream { sink: PageSink, layout: Layout },
}

/// A meta page of a file with this layout.
fn meta_page(id: u64, txid: u64, layout: Layout) -> Vec<u8> {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[0..8].copy_from_slice(&id.to_le_bytes());
    page[8..10].copy_from_slice(&META.to_le_bytes());
    let m = &mut page[PAGE_HEADER..PAGE_HEADER + 64];
    m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    m[4..8].copy_from_slice(&VERSION.to_le_bytes());
    m[8..12].copy_from_slice(&PAGE_SIZE.to_le_bytes());
    m[16..24].copy_from_slice(&layout.root.to_le_bytes());
    m[32..40].copy_from_slice(&2u64.to_le_bytes());
    m[40..48].copy_from_slice(&layout.pages.to_le_bytes());
    m[48..56].copy_from_slice(&txid.to_le_bytes());
    let sum = super::bbolt::fnv1a64(&m[..56]);
    m[56..64].copy_from_slice(&sum.to_le_bytes());
    page
}

/// A bbolt file being written. Buckets are added in name order, each key in key order.
pub struct BoltWriter {
    out: Out,
    next: u64,
    /// Pages not yet handed on.
    buffer: Vec<u8>,
    /// A page being laid out (reused).
    page: Vec<u8>,
    /// The top-level buckets written so far: name and root page.
    buckets: Vec<(Vec<u8>, u64)>,
    /// The tree of the bucket being written: level 0 holds leaf elements, the others branch ones.
    levels: Vec<Level>,
    last_key: Vec<u8>,
    open: Option<Vec<u8>>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

impl BoltWriter {
    fn with(out: Out) -> io::Result<BoltWriter> {
        let mut w = BoltWriter {
            out,
            next: 2,
            buffer: Vec::with_capacity(WRITE_BUFFER + PAGE_SIZE as usize),
            page: Vec::new(),
            buckets: Vec::new(),
            levels: Vec::new(),
            last_key: Vec::new(),
            open: None,
        };
        if let Out::Stream { layout, .. } = &w.out {
            let layout = *layout;
            w.buffer.extend_from_slice(&meta_page(0, 2, layout));
            w.buffer.extend_from_slice(&meta_page(1, 1, layout));
        }
        if !matches!(w.out, Out::Count) {
            let mut freelist = vec![0u8; PAGE_SIZE as usize];
            freelist[0..8].copy_from_slice(&2u64.to_le_bytes());
            freelist[8..10].copy_from_slice(&FREELIST.to_le_bytes());
            w.buffer.extend_from_slice(&freelist);
        }
        w.next = 3;
        Ok(w)
    }

    /// Creates `path` (it must not exist) with room for the metas and an empty freelist.
    pub fn create(path: &Path) -> io::Result<BoltWriter> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
        Self::with(Out::File { file, from: 2 })
    }

    /// A writer that lays nothing out and only counts: fed the same buckets and keys as a
    /// streaming one, its `finish` gives the layout that one needs.
    pub fn counting() -> BoltWriter {
        Self::with(Out::Count).unwrap_or_else(|_| unreachable!("a counting writer does no I/O"))
    }

    /// A writer handing the file to `sink` in order, in pieces of whole pages, the metas first:
    /// `layout` is what a counting pass over the same buckets and keys gave.
    pub fn streaming(
        layout: Layout,
        sink: impl FnMut(&[u8]) -> io::Result<()> + Send + 'static,
    ) -> io::Result<BoltWriter> {
        Self::with(Out::Stream { sink: Box::new(sink), layout })
    }

    /// Hands on the buffered pages.
    fn drain(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            match &mut self.out {
                Out::File { file, from } => {
                    file.write_all_at(&self.buffer, *from * u64::from(PAGE_SIZE))?;
                }
                Out::Stream { sink, .. } => sink(&self.buffer)?,
                Out::Count => {}
            }
            self.buffer.clear();
        }
        if let Out::File { from, .. } = &mut self.out {
            *from = self.next;
        }
        Ok(())
    }

    /// Writes one page (with overflow pages if its elements need them) from level `i`'s
    /// elements; returns its id.
    fn page(&mut self, flags: u16, i: usize) -> io::Result<u64> {
        let level = &self.levels[i];
        let count =
            u16::try_from(level.elems.len()).map_err(|_| invalid("too many elements for a page".into()))?;
        let size = PAGE_HEADER
            + level
                .elems
                .iter()
                .map(|(k, v, _)| ELEMENT + *k as usize + if flags == LEAF { *v as usize } else { 0 })
                .sum::<usize>();
        let pages = size.div_ceil(PAGE_SIZE as usize).max(1);
        let overflow =
            u32::try_from(pages - 1).map_err(|_| invalid("a value too large for a page".into()))?;
        let id = self.next;
        if matches!(self.out, Out::Count) {
            self.next += pages as u64;
            return Ok(id);
        }
        let bytes = &mut self.page;
        bytes.clear();
        bytes.resize(pages * PAGE_SIZE as usize, 0);
        bytes[0..8].copy_from_slice(&id.to_le_bytes());
        bytes[8..10].copy_from_slice(&flags.to_le_bytes());
        bytes[10..12].copy_from_slice(&count.to_le_bytes());
        bytes[12..16].copy_from_slice(&overflow.to_le_bytes());
        let mut data = PAGE_HEADER + level.elems.len() * ELEMENT;
        let mut from = 0usize;
        for (n, (klen, vlen, leaf_flags)) in level.elems.iter().enumerate() {
            let (klen, vlen) = (*klen as usize, *vlen as usize);
            let key = &level.bytes[from..from + klen];
            let value = &level.bytes[from + klen..from + klen + vlen];
            from += klen + vlen;
            let at = PAGE_HEADER + n * ELEMENT;
            let pos = (data - at) as u32;
            let e = &mut bytes[at..at + ELEMENT];
            if flags == LEAF {
                e[0..4].copy_from_slice(&leaf_flags.to_le_bytes());
                e[4..8].copy_from_slice(&pos.to_le_bytes());
                e[8..12].copy_from_slice(&(klen as u32).to_le_bytes());
                e[12..16].copy_from_slice(&(vlen as u32).to_le_bytes());
            } else {
                e[0..4].copy_from_slice(&pos.to_le_bytes());
                e[4..8].copy_from_slice(&(klen as u32).to_le_bytes());
                e[8..16].copy_from_slice(value);
            }
            bytes[data..data + klen].copy_from_slice(key);
            data += klen;
            if flags == LEAF {
                bytes[data..data + vlen].copy_from_slice(value);
                data += vlen;
            }
        }
        self.buffer.extend_from_slice(&self.page);
        self.next += pages as u64;
        if self.buffer.len() >= WRITE_BUFFER {
            self.drain()?;
        }
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
        self.last_key.clear();
        self.levels.truncate(1);
        if self.levels.is_empty() {
            self.levels.push(Level::default());
        }
        for level in &mut self.levels {
            level.clear();
        }
        Ok(())
    }

    /// Adds a key to the open bucket; keys must come in ascending order and not be empty.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put_flagged(key, value, 0)
    }

    fn put_flagged(&mut self, key: &[u8], value: &[u8], flags: u32) -> io::Result<()> {
        if key.is_empty() || (!self.last_key.is_empty() && self.last_key.as_slice() >= key) {
            return Err(invalid(format!("key {:?} empty or out of order", String::from_utf8_lossy(key))));
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        let size = ELEMENT + key.len() + value.len();
        if !self.levels[0].is_empty() && PAGE_HEADER + self.levels[0].size + size > FILL {
            self.flush(0)?;
        }
        let stored = if matches!(self.out, Out::Count) { &[][..] } else { value };
        self.levels[0].push(key, stored, value.len(), flags, key.len() + value.len());
        Ok(())
    }

    /// As `put`, for a counting writer: a key of `key_len` bytes and a value of `len`, neither
    /// given (sizes alone decide the layout; the caller vouches for the order).
    pub fn put_len(&mut self, key_len: usize, len: usize) -> io::Result<()> {
        const KEY: [u8; 64] = [0; 64];
        if !matches!(self.out, Out::Count) || key_len == 0 || key_len > KEY.len() {
            return Err(invalid("put_len is for a counting writer and keys of 1 to 64 bytes".into()));
        }
        let key = &KEY[..key_len];
        let size = ELEMENT + key.len() + len;
        if !self.levels[0].is_empty() && PAGE_HEADER + self.levels[0].size + size > FILL {
            self.flush(0)?;
        }
        self.levels[0].push(key, &[], len, 0, key.len() + len);
        Ok(())
    }

    /// Writes level `i`'s page and hands its first key and id to the level above.
    fn flush(&mut self, i: usize) -> io::Result<()> {
        let Some(first) = self.levels[i].first_key().map(<[u8]>::to_vec) else { return Ok(()) };
        let id = self.page(if i == 0 { LEAF } else { BRANCH }, i)?;
        self.levels[i].clear();
        if self.levels.len() == i + 1 {
            self.levels.push(Level::default());
        }
        let size = ELEMENT + first.len();
        if !self.levels[i + 1].is_empty() && PAGE_HEADER + self.levels[i + 1].size + size > FILL {
            self.flush(i + 1)?;
        }
        self.levels[i + 1].push(&first, &id.to_le_bytes(), 8, 0, first.len());
        Ok(())
    }

    /// Writes what is left of the open tree; its root page.
    fn finish_tree(&mut self) -> io::Result<u64> {
        if self.levels[0].is_empty() && self.levels.len() == 1 {
            // An empty bucket: one empty leaf.
            return self.page(LEAF, 0);
        }
        let mut i = 0;
        loop {
            let top = i + 1 == self.levels.len();
            if top && i > 0 && self.levels[i].elems.len() == 1 {
                let (k, _, _) = self.levels[i].elems[0];
                let child = &self.levels[i].bytes[k as usize..k as usize + 8];
                return Ok(u64::from_le_bytes(child.try_into().map_err(|_| invalid("child id".into()))?));
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

    /// Writes the root bucket's page (and for a file, the metas); returns the layout. The file is
    /// not synced: a caller that keeps it syncs it. A streaming writer checks that it made the
    /// layout it was given.
    pub fn finish(mut self) -> io::Result<Layout> {
        if self.open.is_some() {
            self.end_bucket()?;
        }
        let buckets = std::mem::take(&mut self.buckets);
        self.levels = vec![Level::default()];
        self.last_key.clear();
        for (name, root) in &buckets {
            let mut header = root.to_le_bytes().to_vec();
            header.extend_from_slice(&0u64.to_le_bytes());
            // Inline in every writer: bucket headers are laid out even when counting.
            self.last_key.clear();
            self.last_key.extend_from_slice(name);
            let size = ELEMENT + name.len() + header.len();
            if !self.levels[0].is_empty() && PAGE_HEADER + self.levels[0].size + size > FILL {
                self.flush(0)?;
            }
            self.levels[0].push(name, &header, header.len(), BUCKET_LEAF_FLAG, name.len() + header.len());
        }
        let root = self.finish_tree()?;
        let layout = Layout { root, pages: self.next };
        self.drain()?;
        match &mut self.out {
            Out::File { file, .. } => {
                for (id, txid) in [(0u64, 2u64), (1, 1)] {
                    file.write_all_at(&meta_page(id, txid, layout), id * u64::from(PAGE_SIZE))?;
                }
                file.set_len(layout.bytes())?;
            }
            Out::Stream { layout: expected, .. } if *expected != layout => {
                return Err(io::Error::other(format!(
                    "the pages made ({layout:?}) are not the ones counted ({expected:?}): the data changed between the passes"
                )));
            }
            _ => {}
        }
        Ok(layout)
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
        let size = w.finish().unwrap().bytes();

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
