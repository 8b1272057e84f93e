//! The value pane: the selected key's value as read, with what is shown beside it (its lease, what
//! kube-apiserver stored and the object decoded), the format and scroll the user chose, and the
//! key's history.

use crate::app::value_format::ValueFormat;

/// A key's value and metadata.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValueInfo {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// A key's value with what the pane shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRead {
    pub info: ValueInfo,
    /// The lease's remaining TTL in seconds (-1: expired), when the key has a lease and etcd said.
    pub lease_ttl: Option<i64>,
    /// What kube-apiserver stored, when the value is Kubernetes data: one line saying what it is,
    /// or why it cannot be decoded. Read once, where the value arrives, not at every frame.
    pub kubernetes: Option<Result<String, String>>,
    /// The Kubernetes object the value holds, decoded as the API prints it.
    pub object: Option<std::sync::Arc<KubeObject>>,
}

/// A decoded Kubernetes object: as shown, and for a Secret also with its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeObject {
    /// Secrets' data masked.
    pub shown: ObjectText,
    /// A Secret with its data, shown when the user asks.
    pub revealed: Option<ObjectText>,
}

/// An object and its lines as YAML and as JSON, written once where the value arrives (a CRD's
/// schema can run to megabytes) rather than at every frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectText {
    pub value: serde_json::Value,
    pub yaml: Vec<String>,
    pub json: Vec<String>,
}

impl ObjectText {
    fn new(value: serde_json::Value) -> ObjectText {
        let yaml = crate::app::value_format::yaml_lines(&value);
        let json =
            serde_json::to_string_pretty(&value).unwrap_or_default().lines().map(str::to_owned).collect();
        ObjectText { value, yaml, json }
    }

    /// The lines in `format` (YAML or JSON), if it is one of those.
    pub fn lines(&self, format: ValueFormat) -> Option<&[String]> {
        match format {
            ValueFormat::Yaml => Some(&self.yaml),
            ValueFormat::Json => Some(&self.json),
            ValueFormat::Text | ValueFormat::Hex => None,
        }
    }
}

/// What decoding a value produced, kept by the worker to be reused for the same version of the
/// same key (the pane reads its key again every refresh round).
#[derive(Debug, Clone)]
pub struct Decoding {
    key: Vec<u8>,
    mod_revision: i64,
    kubernetes: Option<Result<String, String>>,
    object: Option<std::sync::Arc<KubeObject>>,
}

impl ValueRead {
    /// As `new`, reusing `before` when it is this version of this key (a key's mod revision names
    /// its version).
    pub fn again(info: ValueInfo, lease_ttl: Option<i64>, before: Option<&Decoding>) -> ValueRead {
        match before {
            Some(b) if b.key == info.key && b.mod_revision == info.mod_revision => {
                ValueRead { info, lease_ttl, kubernetes: b.kubernetes.clone(), object: b.object.clone() }
            }
            _ => ValueRead::new(info, lease_ttl),
        }
    }

    /// What to keep of this read for `again`.
    pub fn decoding(&self) -> Decoding {
        Decoding {
            key: self.info.key.clone(),
            mod_revision: self.info.mod_revision,
            kubernetes: self.kubernetes.clone(),
            object: self.object.clone(),
        }
    }

    pub fn new(info: ValueInfo, lease_ttl: Option<i64>) -> ValueRead {
        use crate::etcd::k8s::decode::{decode_value, Decoded, Options};
        let (mut kubernetes, mut object) = (None, None);
        match crate::etcd::k8s::Stored::read(&info.value) {
            Err(e) => kubernetes = Some(Err(format!("damaged: {e}"))),
            Ok(None) => {}
            Ok(Some(stored)) => {
                let options = Options { reveal_secrets: false, resource_version: Some(info.mod_revision) };
                kubernetes = Some(Ok(stored.describe()));
                match decode_value(&info.value, options) {
                    Decoded::Object(shown) => {
                        let is_secret = shown.get("kind").and_then(|k| k.as_str()) == Some("Secret")
                            && shown.get("apiVersion").and_then(|k| k.as_str()) == Some("v1");
                        let revealed = is_secret.then(|| {
                            match decode_value(&info.value, Options { reveal_secrets: true, ..options }) {
                                Decoded::Object(object) => object,
                                _ => shown.clone(),
                            }
                        });
                        object = Some(std::sync::Arc::new(KubeObject {
                            shown: ObjectText::new(shown),
                            revealed: revealed.map(ObjectText::new),
                        }));
                    }
                    Decoded::Failed(why) => kubernetes = Some(Err(format!("{}; {why}", stored.describe()))),
                    Decoded::NotKubernetes | Decoded::Encrypted(_) => {}
                }
            }
        }
        ValueRead { info, lease_ttl, kubernetes, object }
    }
}

/// What to do once the value pane has the selected key's value: the user asked for a write before
/// the value was on screen, and a write needs the revision the user saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Edit,
    EditExternal,
    Delete,
}

/// A key's earlier versions, newest first, and why the list stops where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHistory {
    pub versions: Vec<ValueInfo>,
    pub end: String,
}

/// The history under the value pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPane {
    pub request: u64,
    pub result: Option<Result<KeyHistory, String>>,
    /// The version shown (index into `versions`); the diff goes from `base` to it.
    pub selected: usize,
    /// The version the diff starts from; None: the one before `selected`.
    pub base: Option<usize>,
    /// The diff of `pair()`, made when the selection changes rather than at every frame.
    pub diff: Vec<crate::app::value_format::DiffLine>,
}

impl HistoryPane {
    /// Makes the diff of the versions now selected.
    pub fn refresh_diff(&mut self) {
        let versions = self.result.as_ref().and_then(|r| r.as_ref().ok()).map(|r| &r.versions);
        self.diff = match (self.pair(), versions) {
            (Some((old, new)), Some(v)) => {
                crate::app::value_format::diff(Some(&v[old].value), Some(&v[new].value))
            }
            _ => Vec::new(),
        };
    }

    /// (older, newer) of the two versions diffed, as indexes into `versions`.
    pub fn pair(&self) -> Option<(usize, usize)> {
        let versions = &self.result.as_ref()?.as_ref().ok()?.versions;
        let selected = self.selected.min(versions.len().checked_sub(1)?);
        let base = self.base.unwrap_or(selected + 1);
        if base == selected || base >= versions.len() {
            return None;
        }
        // Newest first: the larger index is the older version.
        Some((base.max(selected), base.min(selected)))
    }
}

/// The value pane: which key, and what the read returned (None while it is on its way; Ok(None) when
/// the key does not exist any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePane {
    pub key: Vec<u8>,
    pub request: u64,
    pub result: Option<Result<Option<ValueRead>, String>>,
    /// The format the user chose; None: detected from the value.
    pub format: Option<ValueFormat>,
    pub then: Option<Then>,
    pub history: Option<HistoryPane>,
    /// A read of the same key again (each refresh round), whose answer replaces what is shown
    /// without blanking it meanwhile: a key deleted or changed elsewhere shows as such.
    pub reread: Option<u64>,
    /// Why the last read again failed (what is shown is then the last value read), if it did.
    pub stale: Option<String>,
    /// A Kubernetes Secret's data shown (the user asked).
    pub reveal: bool,
    /// The first line of the value shown (the user scrolled).
    pub scroll: usize,
}

impl ValuePane {
    /// The value on screen, if it arrived and the key exists.
    pub fn info(&self) -> Option<&ValueInfo> {
        match &self.result {
            Some(Ok(Some(read))) => Some(&read.info),
            _ => None,
        }
    }

    /// The value read, if it arrived and the key exists.
    pub fn read(&self) -> Option<&ValueRead> {
        match &self.result {
            Some(Ok(Some(read))) => Some(read),
            _ => None,
        }
    }

    /// The format shown: the user's, else YAML for a Kubernetes object, else detected from the bytes.
    pub fn shown_format(&self) -> Option<ValueFormat> {
        let read = self.read()?;
        Some(self.format.unwrap_or_else(|| match read.object {
            Some(_) => ValueFormat::Yaml,
            None => ValueFormat::detect(&read.info.value),
        }))
    }

    /// How many lines the value shows as (hex rows counted at 16 bytes), for scrolling.
    pub fn line_count(&self) -> usize {
        let (Some(read), Some(format)) = (self.read(), self.shown_format()) else { return 0 };
        match self.object().and_then(|o| o.lines(format)) {
            Some(lines) => lines.len(),
            None => crate::app::value_format::value_lines(&read.info.value, format, 80).len(),
        }
    }

    /// The Kubernetes object the pane shows (its Secret data if the user asked), if the value is one.
    pub fn object(&self) -> Option<&ObjectText> {
        let object = self.read()?.object.as_ref()?;
        Some(match (&object.revealed, self.reveal) {
            (Some(revealed), true) => revealed,
            _ => &object.shown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(value: &[u8], mod_revision: i64) -> ValueInfo {
        ValueInfo {
            key: b"/registry/pods/a/b".to_vec(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn a_value_read_again_at_the_same_revision_reuses_its_decoding() {
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "a"}});
        let stored = crate::etcd::k8s::encode::encode_stored(&pod).expect("encode");
        let first = ValueRead::new(info(&stored, 5), None);
        let object = first.object.clone().expect("decoded");
        let again = ValueRead::again(info(&stored, 5), Some(3), Some(&first.decoding()));
        assert!(
            std::sync::Arc::ptr_eq(&object, again.object.as_ref().expect("kept")),
            "shared, not decoded again"
        );
        assert_eq!((again.lease_ttl, &again.kubernetes), (Some(3), &first.kubernetes));
        // Another version is decoded afresh: here, no longer an object.
        let changed = ValueRead::again(info(b"plain", 6), None, Some(&first.decoding()));
        assert_eq!((changed.object, changed.kubernetes), (None, None));
    }
}
