//! A mirror's vocabulary, shared by `etcdeck mirror` (which writes it) and the console's `:mirror`
//! view (which reads it): how a source key maps to its destination key, as etcdctl make-mirror maps
//! it, and the checkpoint the mirror keeps in the destination.
//!
//! The checkpoint is one key per destination prefix, under [`RESERVED`], written in the same
//! transaction as every batch of keys it covers, so the destination always says exactly which
//! source revision it reflects. Keys under [`RESERVED`] are never mirrored themselves (a mirror of a
//! mirror must not carry its source's checkpoints over its own).

use serde::{Deserialize, Serialize};

use super::range::prefix_end;

/// The keys a mirror keeps its checkpoints under, in the destination.
pub const RESERVED: &[u8] = b"__etcdeck_mirror/";

/// The destination key of the checkpoint of a mirror into `dest_prefix`.
pub fn checkpoint_key(dest_prefix: &[u8]) -> Vec<u8> {
    let mut key = RESERVED.to_vec();
    key.extend_from_slice(dest_prefix);
    key
}

/// Whether `key` is a mirror's own (never copied, compared or deleted).
pub fn is_reserved(key: &[u8]) -> bool {
    key.starts_with(RESERVED)
}

/// How source keys map to destination keys: the source prefix replaced by the destination prefix
/// (etcdctl make-mirror: the same prefix by default, none with --no-dest-prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    pub prefix: Vec<u8>,
    pub dest_prefix: Vec<u8>,
}

impl KeyMap {
    pub fn new(prefix: &[u8], dest_prefix: &[u8]) -> Self {
        Self { prefix: prefix.to_vec(), dest_prefix: dest_prefix.to_vec() }
    }

    /// The destination key of a source key under the prefix.
    pub fn to_dest(&self, key: &[u8]) -> Vec<u8> {
        let rest = key.strip_prefix(self.prefix.as_slice()).unwrap_or(key);
        let mut out = Vec::with_capacity(self.dest_prefix.len() + rest.len());
        out.extend_from_slice(&self.dest_prefix);
        out.extend_from_slice(rest);
        out
    }

    /// The source key of a destination key under the destination prefix.
    pub fn to_source(&self, dest_key: &[u8]) -> Vec<u8> {
        let rest = dest_key.strip_prefix(self.dest_prefix.as_slice()).unwrap_or(dest_key);
        let mut out = Vec::with_capacity(self.prefix.len() + rest.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(rest);
        out
    }

    /// The source range: [start, end). An empty prefix is every key from "\0" on, as etcdctl's
    /// mirror reads it (the empty key cannot be written).
    pub fn source_range(&self) -> (Vec<u8>, Vec<u8>) {
        range(&self.prefix)
    }

    /// The destination range, as `source_range` maps it.
    pub fn dest_range(&self) -> (Vec<u8>, Vec<u8>) {
        range(&self.dest_prefix)
    }
}

fn range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        (vec![0], vec![0])
    } else {
        (prefix.to_vec(), prefix_end(prefix))
    }
}

/// Where a mirror stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Copying (or reconciling) the prefix as it was at `revision`, in key order: every key up to
    /// `after` is done.
    Copy,
    /// Following the source's changes: every revision up to `revision` is applied, and the first
    /// `sub` events of the next one.
    Watch,
}

/// The checkpoint a mirror writes in the destination, as JSON (readable with `etcdctl get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The source cluster's ID, in hex as etcdctl prints it.
    pub source_cluster_id: String,
    pub source_endpoints: Vec<String>,
    pub prefix: String,
    pub dest_prefix: String,
    pub phase: Phase,
    pub revision: i64,
    /// In the watch phase: events of revision + 1 already applied.
    #[serde(default)]
    pub sub: u64,
    /// In the copy phase: the last source key done (hex), none before the first.
    #[serde(default)]
    pub after: Option<String>,
    /// The source's revision as last seen by the mirror, when this was written.
    pub source_revision: i64,
    /// When this was written (Unix milliseconds).
    pub updated_unix_ms: u64,
    /// Keys put or deleted so far by this mirror process.
    #[serde(default)]
    pub synced: u64,
    /// Which mirror process wrote it (a random ID per run).
    pub writer: String,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(value: &[u8]) -> Result<Self, String> {
        let cp: Checkpoint =
            serde_json::from_slice(value).map_err(|e| format!("not a mirror checkpoint: {e}"))?;
        if cp.revision < 0 || cp.source_revision < 0 {
            return Err("not a mirror checkpoint: a negative revision".into());
        }
        if let Some(after) = &cp.after {
            hex_decode(after).ok_or("not a mirror checkpoint: \"after\" is not hex")?;
        }
        Ok(cp)
    }

    /// The last source key the copy phase finished.
    pub fn after_key(&self) -> Option<Vec<u8>> {
        self.after.as_deref().and_then(hex_decode)
    }

    /// Revisions the destination is behind the source, as the mirror last saw the source.
    pub fn revisions_behind(&self) -> i64 {
        (self.source_revision - self.revision).max(0)
    }

    /// The source cluster ID as a number.
    pub fn cluster_id(&self) -> Option<u64> {
        u64::from_str_radix(&self.source_cluster_id, 16).ok()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_as_make_mirror_maps_them() {
        let same = KeyMap::new(b"/a/", b"/a/");
        assert_eq!(same.to_dest(b"/a/x"), b"/a/x");
        let moved = KeyMap::new(b"/a/", b"/dr/a/");
        assert_eq!(moved.to_dest(b"/a/x"), b"/dr/a/x");
        assert_eq!(moved.to_source(b"/dr/a/x"), b"/a/x");
        let root = KeyMap::new(b"/a/", b"");
        assert_eq!(root.to_dest(b"/a/x"), b"x");
        assert_eq!(root.to_source(b"x"), b"/a/x");
        let all = KeyMap::new(b"", b"/copy");
        assert_eq!(all.to_dest(b"k"), b"/copyk");
        assert_eq!(all.source_range(), (vec![0], vec![0]));
        assert_eq!(moved.dest_range(), (b"/dr/a/".to_vec(), b"/dr/a0".to_vec()));
    }

    #[test]
    fn checkpoints_round_trip_and_bad_ones_are_refused() {
        let cp = Checkpoint {
            source_cluster_id: "cdf818194e3a8c32".into(),
            source_endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/a/".into(),
            dest_prefix: "/a/".into(),
            phase: Phase::Copy,
            revision: 12,
            sub: 0,
            after: Some(hex(b"/a/\xff")),
            source_revision: 15,
            updated_unix_ms: 1,
            synced: 3,
            writer: "w".into(),
        };
        let back = Checkpoint::decode(&cp.encode()).expect("decodes");
        assert_eq!(back, cp);
        assert_eq!(back.after_key().as_deref(), Some(&b"/a/\xff"[..]));
        assert_eq!(back.cluster_id(), Some(0xcdf818194e3a8c32));
        assert_eq!(back.revisions_behind(), 3);
        assert!(Checkpoint::decode(b"hello").unwrap_err().contains("not a mirror checkpoint"));
        let odd = String::from_utf8(cp.encode()).unwrap().replace("2f612fff", "2f612ff");
        assert!(Checkpoint::decode(odd.as_bytes()).is_err());
        assert!(is_reserved(&checkpoint_key(b"/a/")));
        assert!(!is_reserved(b"/a/"));
    }
}
