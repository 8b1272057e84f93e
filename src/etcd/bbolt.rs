//! A reader of bbolt files, the database etcd keeps its state in (member/snap/db) and streams as a
//! snapshot. Read-only, and only what etcd's files use: the two meta pages, branch and leaf pages
//! with their overflow pages, top-level buckets and the buckets nested in them, inline or not.
//!
//! The layout, from bbolt's page.go, db.go and bucket.go (bbolt 1.3.6, which etcd 3.4 uses):
//! - Page N starts at N × page size. A page header is 16 bytes: id u64, flags u16, count u16,
//!   overflow u32 (the pages after this one that belong to it). Integers are the writer's native
//!   order: little-endian on every platform etcd ships for but s390x.
//! - Pages 0 and 1 are meta pages: at offset 16, magic 0xED0CDAED, version 2, page size, flags,
//!   the root bucket (root page, sequence), the freelist page, the high-water page id, the txid,
//!   and an FNV-1a 64 checksum of the 56 bytes before it. The valid one with the larger txid is
//!   current.
//! - Branch elements are 16 bytes (pos u32, ksize u32, child u64); leaf elements are 16 bytes
//!   (flags u32, pos u32, ksize u32, vsize u32). `pos` counts from the element itself.
//! - A bucket's value is its root page and sequence (16 bytes); root 0 means the bucket is inline:
//!   a leaf page image follows in the value.
//!
//! Every length and page id read from the file is checked before it is used, so a damaged file
//! gives an error naming the offset, never a panic, and nothing is allocated beyond the file's
//! size. Pages are read with positioned reads, so memory stays small whatever the file's size.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const MAGIC: u32 = 0xED0C_DAED;
pub const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const BUCKET_LEAF_FLAG: u32 = 0x01;
const BUCKET_HEADER: usize = 16;
/// Deeper than any B+tree of a file this reader could be given: a deeper walk is a cycle.
const MAX_DEPTH: usize = 64;

/// Why a file could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoltError {
    pub path: PathBuf,
    /// The byte offset in the file the problem was found at.
    pub offset: u64,
    pub what: String,
}

impl std::fmt::Display for BoltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: at offset {}: {}", self.path.display(), self.offset, self.what)
    }
}

impl std::error::Error for BoltError {}

/// The current meta page's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    pub root: u64,
    pub freelist: u64,
    /// The high-water page id: pages below it are the database.
    pub pgid: u64,
    pub txid: u64,
}

/// A bucket: the root page of its own B+tree, or (inline) a leaf page image held in its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bucket {
    Paged(u64),
    Inline(Vec<u8>),
}

/// What a walk calls for each key of a bucket: the key, its value, and the nested bucket when the
/// key names one (its value is then empty).
type Visit<'a> = dyn FnMut(&[u8], &[u8], Option<Bucket>) -> Result<(), BoltError> + 'a;

/// An open bbolt file.
pub struct BoltFile {
    file: File,
    path: PathBuf,
    len: u64,
    meta: Meta,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// bbolt's meta checksum: FNV-1a 64 over the meta's first 56 bytes.
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Parses and checks a meta (`m`: the 64 bytes after a meta page's header).
fn parse_meta(m: &[u8]) -> Result<Meta, String> {
    let magic = u32_at(m, 0);
    if magic != MAGIC {
        if magic == MAGIC.swap_bytes() {
            return Err("a big-endian bbolt file (written on s390x?): not supported".into());
        }
        return Err(format!("invalid database (magic {magic:#010x}, expected {MAGIC:#010x})"));
    }
    let version = u32_at(m, 4);
    if version != VERSION {
        return Err(format!("version mismatch (bbolt format {version}, expected {VERSION})"));
    }
    let checksum = u64_at(m, 56);
    // bbolt 1.3.6 (etcd 3.4's) accepts a zero checksum, as files from older writers have.
    if checksum != 0 && checksum != fnv1a64(&m[..56]) {
        return Err("checksum error (the meta page is damaged)".into());
    }
    let page_size = u32_at(m, 8);
    if !(512..=1 << 20).contains(&page_size) || !page_size.is_multiple_of(512) {
        return Err(format!("invalid page size {page_size}"));
    }
    Ok(Meta {
        page_size,
        root: u64_at(m, 16),
        freelist: u64_at(m, 32),
        pgid: u64_at(m, 40),
        txid: u64_at(m, 48),
    })
}

/// A page read from the file: its header and its bytes (with its overflow pages).
struct Page {
    id: u64,
    flags: u16,
    count: usize,
    /// Where it starts in the file (for errors).
    offset: u64,
    bytes: Vec<u8>,
}

impl BoltFile {
    /// Opens `path` and finds its current meta page, as bbolt does: the page size from meta 0 (or,
    /// if meta 0 is damaged, from meta 1, probed at each possible page size), then the valid meta
    /// with the larger txid.
    pub fn open(path: &Path) -> Result<BoltFile, BoltError> {
        let fail = |offset: u64, what: String| BoltError { path: path.to_path_buf(), offset, what };
        let file = File::open(path).map_err(|e| fail(0, e.to_string()))?;
        let len = file.metadata().map_err(|e| fail(0, e.to_string()))?.len();
        let read_meta = |at: u64| -> Result<Meta, String> {
            if at + (PAGE_HEADER + 64) as u64 > len {
                return Err("file too small for a meta page".into());
            }
            let mut buf = [0u8; PAGE_HEADER + 64];
            file.read_exact_at(&mut buf, at).map_err(|e| e.to_string())?;
            if u16_at(&buf, 8) != META {
                return Err(format!(
                    "page at offset {at} is not a meta page (flags {:#06x})",
                    u16_at(&buf, 8)
                ));
            }
            parse_meta(&buf[PAGE_HEADER..])
        };
        let first = read_meta(0);
        let page_size = match &first {
            Ok(m) => u64::from(m.page_size),
            Err(_) => (0..15)
                .map(|i| 1024u64 << i)
                .take_while(|at| *at + 1024 < len)
                .find(|at| read_meta(*at).is_ok_and(|m| u64::from(m.page_size) == *at))
                .ok_or_else(|| fail(16, first.clone().err().unwrap_or_default()))?,
        };
        let second = read_meta(page_size);
        let meta = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(_)) => a,
            (Err(_), Ok(b)) => b,
            (Err(a), Err(_)) => return Err(fail(16, a)),
        };
        if u64::from(meta.page_size) != page_size {
            return Err(fail(16, "the two meta pages disagree on the page size".into()));
        }
        let size = meta
            .pgid
            .checked_mul(page_size)
            .ok_or_else(|| fail(56, format!("high-water page id {} is out of range", meta.pgid)))?;
        if meta.pgid < 2 || size > len {
            return Err(fail(
                56,
                format!(
                    "the file is {len} bytes, but its meta says {} pages of {page_size} bytes ({size}): truncated?",
                    meta.pgid
                ),
            ));
        }
        if meta.root < 2 || meta.root >= meta.pgid {
            return Err(fail(
                32,
                format!("root page {} is outside the database (pages 2..{})", meta.root, meta.pgid),
            ));
        }
        Ok(BoltFile { file, path: path.to_path_buf(), len, meta })
    }

    pub fn meta(&self) -> Meta {
        self.meta
    }

    /// bbolt's tx.Size(): the database's size, the high-water page id times the page size (a
    /// snapshot's SHA-256 trailer and a live file's preallocated tail are past it).
    pub fn size(&self) -> u64 {
        self.meta.pgid * u64::from(self.meta.page_size)
    }

    /// The file's length on disk.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    fn fail(&self, offset: u64, what: impl Into<String>) -> BoltError {
        BoltError { path: self.path.clone(), offset, what: what.into() }
    }

    /// Page `id` with its overflow pages, checked to lie inside the database and to be a branch or
    /// leaf page with its own id.
    fn page(&self, id: u64) -> Result<Page, BoltError> {
        let page_size = u64::from(self.meta.page_size);
        let offset = id.saturating_mul(page_size);
        if id < 2 || id >= self.meta.pgid {
            return Err(
                self.fail(offset, format!("page {id} is outside the database (pages 2..{})", self.meta.pgid))
            );
        }
        let mut header = [0u8; PAGE_HEADER];
        self.file.read_exact_at(&mut header, offset).map_err(|e| self.fail(offset, e.to_string()))?;
        let (own, flags, count, overflow) = (
            u64_at(&header, 0),
            u16_at(&header, 8),
            usize::from(u16_at(&header, 10)),
            u64::from(u32_at(&header, 12)),
        );
        if own != id {
            return Err(self.fail(offset, format!("page {id} says it is page {own}")));
        }
        if flags != BRANCH && flags != LEAF {
            return Err(
                self.fail(offset, format!("page {id} has type {flags:#04x}, expected a branch or leaf page"))
            );
        }
        if id + overflow >= self.meta.pgid {
            return Err(
                self.fail(offset, format!("page {id}'s {overflow} overflow pages run past the database"))
            );
        }
        let bytes_len = (overflow + 1) * page_size;
        let mut bytes = vec![0u8; bytes_len as usize];
        self.file.read_exact_at(&mut bytes, offset).map_err(|e| self.fail(offset, e.to_string()))?;
        Ok(Page { id, flags, count, offset, bytes })
    }

    /// The top-level buckets, in key order: each name and its bucket.
    pub fn buckets(&self) -> Result<Vec<(Vec<u8>, Bucket)>, BoltError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.walk(&Bucket::Paged(self.meta.root), &mut |key, value, nested| {
            match nested {
                Some(b) => out.push((key.to_vec(), b)),
                None => {
                    failed =
                        Some(format!("the root bucket holds a plain key {:?}", String::from_utf8_lossy(key)));
                }
            }
            let _ = value;
            Ok(())
        })?;
        match failed {
            Some(why) => Err(self.fail(self.meta.root * u64::from(self.meta.page_size), why)),
            None => Ok(out),
        }
    }

    /// Calls `f` with each key of `bucket` in order: its value, or for a nested bucket, that bucket.
    pub fn for_each(
        &self,
        bucket: &Bucket,
        mut f: impl FnMut(&[u8], &[u8], Option<Bucket>) -> Result<(), BoltError>,
    ) -> Result<(), BoltError> {
        self.walk(bucket, &mut f)
    }

    fn walk(&self, bucket: &Bucket, f: &mut Visit<'_>) -> Result<(), BoltError> {
        match bucket {
            Bucket::Paged(root) => {
                let mut seen = HashSet::new();
                self.walk_page(*root, 0, &mut seen, f)
            }
            Bucket::Inline(image) => {
                // The value's offset in the file is not known here: errors point at 0.
                let page = Page { id: 0, flags: LEAF, count: 0, offset: 0, bytes: image.clone() };
                if image.len() < PAGE_HEADER {
                    return Err(self.fail(0, "an inline bucket shorter than a page header"));
                }
                let flags = u16_at(image, 8);
                if flags != LEAF {
                    return Err(self
                        .fail(0, format!("an inline bucket's page has type {flags:#04x}, expected a leaf")));
                }
                let page = Page { count: usize::from(u16_at(image, 10)), ..page };
                self.leaf(&page, f)
            }
        }
    }

    fn walk_page(
        &self,
        id: u64,
        depth: usize,
        seen: &mut HashSet<u64>,
        f: &mut Visit<'_>,
    ) -> Result<(), BoltError> {
        let page = self.page(id)?;
        if depth > MAX_DEPTH || !seen.insert(id) {
            return Err(self.fail(page.offset, format!("page {id} is reached twice: the tree has a cycle")));
        }
        if page.flags == LEAF {
            return self.leaf(&page, f);
        }
        for at in self.elements(&page)? {
            let pos = u32_at(&page.bytes, at) as usize;
            let ksize = u32_at(&page.bytes, at + 4) as usize;
            let child = u64_at(&page.bytes, at + 8);
            self.slice(&page, at, pos, ksize)?;
            self.walk_page(child, depth + 1, seen, f)?;
        }
        Ok(())
    }

    /// The offsets of a page's element headers, checked to fit in the page.
    fn elements(&self, page: &Page) -> Result<std::iter::StepBy<std::ops::Range<usize>>, BoltError> {
        let end = PAGE_HEADER + page.count * ELEMENT;
        if end > page.bytes.len() {
            return Err(self.fail(
                page.offset,
                format!("page {} claims {} elements, more than fit", page.id, page.count),
            ));
        }
        Ok((PAGE_HEADER..end).step_by(ELEMENT))
    }

    /// `len` bytes at `pos` after the element at `at`, checked to lie inside the page.
    fn slice<'p>(&self, page: &'p Page, at: usize, pos: usize, len: usize) -> Result<&'p [u8], BoltError> {
        at.checked_add(pos)
            .and_then(|start| Some((start, start.checked_add(len)?)))
            .filter(|(_, end)| *end <= page.bytes.len())
            .map(|(start, end)| &page.bytes[start..end])
            .ok_or_else(|| {
                self.fail(
                    page.offset + at as u64,
                    format!("page {}: an element's data ({len} bytes at +{pos}) runs past the page", page.id),
                )
            })
    }

    fn leaf(&self, page: &Page, f: &mut Visit<'_>) -> Result<(), BoltError> {
        for at in self.elements(page)? {
            let flags = u32_at(&page.bytes, at);
            let pos = u32_at(&page.bytes, at + 4) as usize;
            let ksize = u32_at(&page.bytes, at + 8) as usize;
            let vsize = u32_at(&page.bytes, at + 12) as usize;
            let kv = self.slice(page, at, pos, ksize.saturating_add(vsize))?;
            let (key, value) = kv.split_at(ksize);
            if flags & BUCKET_LEAF_FLAG == 0 {
                f(key, value, None)?;
                continue;
            }
            if value.len() < BUCKET_HEADER {
                return Err(self.fail(
                    page.offset + at as u64,
                    format!("page {}: a bucket's value is {} bytes", page.id, value.len()),
                ));
            }
            let root = u64_at(value, 0);
            let nested =
                if root == 0 { Bucket::Inline(value[BUCKET_HEADER..].to_vec()) } else { Bucket::Paged(root) };
            f(key, &[], Some(nested))?;
        }
        Ok(())
    }
}
