//! `etcdeck mirror verify`: both sides compared at one moment. When the destination holds a
//! mirror's checkpoint, the moment is exact even under writes: the destination at the revision the
//! checkpoint was read at is the source at the checkpoint's revision (they were written in one
//! transaction). Without one, each side is read at its current revision.

use sha2::{Digest, Sha256};

use etcd_client::GetOptions;

use crate::app::connection::ConnectConfig;
use crate::etcd::mirror::{checkpoint_key, is_reserved, Checkpoint, KeyMap, Phase};
use crate::etcd::range::key_after;
use crate::mirror::cluster::{is_compacted, Cluster};

/// Keys per page read from each side.
const PAGE: i64 = 1000;

/// What differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A source key the destination does not have.
    Missing(Vec<u8>),
    /// A destination key (its source key shown) the source does not have.
    Extra(Vec<u8>),
    /// Both have the key, with other values: their sizes.
    Value(Vec<u8>, usize, usize),
}

pub struct Report {
    pub source_cluster: String,
    pub source_revision: i64,
    /// Why the source was read at that revision.
    pub moment: String,
    pub dest_revision: i64,
    pub source_keys: u64,
    pub dest_keys: u64,
    pub pages: u64,
    pub source_sha256: String,
    pub dest_sha256: String,
    pub differences: u64,
    /// The first differences, in key order.
    pub first: Vec<Difference>,
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = format!(
            "source: cluster {} at revision {} ({})\ndestination: at revision {}\n",
            self.source_cluster, self.source_revision, self.moment, self.dest_revision
        );
        out.push_str(&format!(
            "compared {} source keys and {} destination keys in {} pages: {}\n",
            self.source_keys,
            self.dest_keys,
            self.pages,
            if self.differences == 0 {
                "equal".to_string()
            } else {
                format!("{} differences", self.differences)
            }
        ));
        out.push_str(&format!(
            "sha256 of the keys (mapped) and values: source {}, destination {}\n",
            self.source_sha256, self.dest_sha256
        ));
        if self.differences > 0 {
            out.push_str(&format!("the first {}:\n", self.first.len()));
            for d in &self.first {
                let line = match d {
                    Difference::Missing(k) => format!("  missing in the destination: {}", shown(k)),
                    Difference::Extra(k) => format!("  not on the source: {}", shown(k)),
                    Difference::Value(k, s, d) => {
                        format!("  value differs: {} (source {s} bytes, destination {d} bytes)", shown(k))
                    }
                };
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

fn shown(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Compares the source's prefix with the destination's, listing up to `show` differences.
pub async fn verify(
    source: ConnectConfig,
    dest: ConnectConfig,
    map: KeyMap,
    show: usize,
) -> Result<Report, String> {
    let mut source = Cluster::new(source, "source");
    let mut dest = Cluster::new(dest, "destination");
    let (start, end) = map.source_range();
    let now = source.get(start.clone(), GetOptions::new().with_range(end).with_count_only()).await;
    let header = now.map_err(|e| format!("source: {e}"))?.take_header().ok_or("source: no header")?;
    let cluster = format!("{:x}", header.cluster_id());
    let key = checkpoint_key(&map.dest_prefix);
    let found = dest.get(key.clone(), GetOptions::new()).await.map_err(|e| format!("destination: {e}"))?;
    let dest_revision = found.header().map(|h| h.revision()).unwrap_or(0);
    let checkpoint = found.kvs().first().map(|kv| Checkpoint::decode(kv.value()));
    let (mut revision, mut moment) = (header.revision(), "its current revision".to_string());
    match checkpoint {
        Some(Ok(cp)) if cp.source_cluster_id != cluster => {
            moment = format!(
                "its current revision: the destination's checkpoint is of another source cluster, {}",
                cp.source_cluster_id
            );
        }
        Some(Ok(cp)) if cp.phase == Phase::Watch && cp.sub == 0 => {
            revision = cp.revision;
            moment = "the revision of the destination's mirror checkpoint".into();
        }
        Some(Ok(cp)) => {
            moment = format!(
                "its current revision: the mirror is {} (checkpoint at revision {})",
                if cp.phase == Phase::Copy { "still copying" } else { "inside a revision" },
                cp.revision
            );
        }
        Some(Err(e)) => moment = format!("its current revision: the checkpoint is unreadable: {e}"),
        None => moment.push_str(": the destination has no mirror checkpoint"),
    }
    let mut compare = Compare::new(map, show);
    match compare.run(&mut source, &mut dest, revision, dest_revision).await {
        Err(e) if e.starts_with("source:") && is_compacted(&e) && revision != header.revision() => {
            // The checkpoint's revision is compacted on the source: the current one, then.
            revision = header.revision();
            moment = "its current revision: the checkpoint's revision is compacted".into();
            compare = Compare::new(compare.map, show);
            compare.run(&mut source, &mut dest, revision, 0).await?;
        }
        other => other?,
    }
    let c = compare;
    Ok(Report {
        source_cluster: cluster,
        source_revision: revision,
        moment,
        dest_revision: c.dest_revision,
        source_keys: c.source_keys,
        dest_keys: c.dest_keys,
        pages: c.pages,
        source_sha256: hex(c.source_hash.finalize()),
        dest_sha256: hex(c.dest_hash.finalize()),
        differences: c.differences,
        first: c.first,
    })
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    crate::etcd::mirror::hex(digest.as_ref())
}

struct Compare {
    map: KeyMap,
    show: usize,
    source_keys: u64,
    dest_keys: u64,
    pages: u64,
    source_hash: Sha256,
    dest_hash: Sha256,
    differences: u64,
    first: Vec<Difference>,
    dest_revision: i64,
    /// Keys per page on each side (halved for large values).
    source_page: i64,
    dest_page: i64,
}

impl Compare {
    fn new(map: KeyMap, show: usize) -> Self {
        Self {
            map,
            show,
            source_keys: 0,
            dest_keys: 0,
            pages: 0,
            source_hash: Sha256::new(),
            dest_hash: Sha256::new(),
            differences: 0,
            first: Vec::new(),
            dest_revision: 0,
            source_page: PAGE,
            dest_page: PAGE,
        }
    }

    fn differ(&mut self, d: Difference) {
        self.differences += 1;
        if self.first.len() < self.show {
            self.first.push(d);
        }
    }

    /// Both sides, a page at a time, merged in the source's key order.
    async fn run(
        &mut self,
        source: &mut Cluster,
        dest: &mut Cluster,
        revision: i64,
        dest_revision: i64,
    ) -> Result<(), String> {
        let mut src: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut dst: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let (mut si, mut di) = (0usize, 0usize);
        let (mut src_last, mut dst_last): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        let (mut src_done, mut dst_done) = (false, false);
        self.dest_revision = dest_revision;
        loop {
            if si == src.len() && !src_done {
                let (start, end) = self.map.source_range();
                let from = src_last.as_deref().map(key_after).unwrap_or(start);
                let mut resp = source
                    .page(&from, &end, revision, &mut self.source_page)
                    .await
                    .map_err(|e| format!("source: {e}"))?;
                let kvs = resp.take_kvs();
                src_done = !resp.more() || kvs.is_empty();
                src = kvs.into_iter().map(|kv| kv.into_key_value()).collect();
                src_last = src.last().map(|(k, _)| k.clone());
                src.retain(|(k, _)| !is_reserved(k));
                si = 0;
                self.pages += 1;
            }
            if di == dst.len() && !dst_done {
                let (start, end) = self.map.dest_range();
                let from = dst_last.as_deref().map(key_after).unwrap_or(start);
                let mut resp = dest
                    .page(&from, &end, self.dest_revision, &mut self.dest_page)
                    .await
                    .map_err(|e| format!("destination: {e}"))?;
                if self.dest_revision == 0 {
                    self.dest_revision = resp.header().map(|h| h.revision()).unwrap_or(0);
                }
                let kvs = resp.take_kvs();
                dst_done = !resp.more() || kvs.is_empty();
                let page: Vec<_> = kvs.into_iter().map(|kv| kv.into_key_value()).collect();
                dst_last = page.last().map(|(k, _)| k.clone());
                dst = page
                    .into_iter()
                    .filter(|(k, _)| !is_reserved(k))
                    .map(|(k, v)| (self.map.to_source(&k), v))
                    .filter(|(k, _)| !is_reserved(k))
                    .collect();
                di = 0;
            }
            let (s, d) = (src.get(si).cloned(), dst.get(di).cloned());
            // A page of nothing but a mirror's own keys: read the next one.
            if (s.is_none() && !src_done) || (d.is_none() && !dst_done) {
                continue;
            }
            let order = match (&s, &d) {
                (None, None) => return Ok(()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((sk, _)), Some((dk, _))) => sk.cmp(dk),
            };
            match (order, s, d) {
                (std::cmp::Ordering::Equal, Some((sk, sv)), Some((_, dv))) => {
                    if sv != dv {
                        self.differ(Difference::Value(sk.clone(), sv.len(), dv.len()));
                    }
                    self.count_source(&sk, &sv);
                    self.count_dest(&sk, &dv);
                    (si, di) = (si + 1, di + 1);
                }
                (std::cmp::Ordering::Less, Some((sk, sv)), _) => {
                    self.differ(Difference::Missing(sk.clone()));
                    self.count_source(&sk, &sv);
                    si += 1;
                }
                (_, _, Some((dk, dv))) => {
                    self.differ(Difference::Extra(self.map.to_dest(&dk)));
                    self.count_dest(&dk, &dv);
                    di += 1;
                }
                (_, _, None) => return Ok(()),
            }
        }
    }

    fn count_source(&mut self, key: &[u8], value: &[u8]) {
        self.source_keys += 1;
        feed(&mut self.source_hash, &self.map.to_dest(key), value);
    }

    fn count_dest(&mut self, key: &[u8], value: &[u8]) {
        self.dest_keys += 1;
        feed(&mut self.dest_hash, &self.map.to_dest(key), value);
    }
}

/// A key and its value, length-prefixed so that no two pairs hash alike.
fn feed(hash: &mut Sha256, key: &[u8], value: &[u8]) {
    hash.update((key.len() as u64).to_be_bytes());
    hash.update(key);
    hash.update((value.len() as u64).to_be_bytes());
    hash.update(value);
}
