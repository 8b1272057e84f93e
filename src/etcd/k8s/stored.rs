//! How kube-apiserver stores its objects in etcd: what a value under /registry/ is before any
//! object is decoded. Protobuf (`k8s\0` and a runtime.Unknown holding the object's type and its
//! bytes), JSON (custom resources, or an apiserver run with --storage-media-type=application/json),
//! or encrypted at rest (`k8s:enc:<provider>:<version>:<key name>:` before the ciphertext). And
//! what a key under /registry/ names: the resource, its namespace and the object's name.

use super::schema;

/// The four bytes before a protobuf value (apimachinery's protobuf serializer).
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// The start of every value an encryption provider wrote.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// The encryption providers kube-apiserver writes, with the version in their prefix.
const PROVIDERS: [(&str, &str); 5] =
    [("aescbc", "v1"), ("aesgcm", "v1"), ("secretbox", "v1"), ("kms", "v1"), ("kms", "v2")];

/// runtime.TypeMeta as the apiserver's protobuf wrapper carries it.
#[derive(Clone, PartialEq, prost::Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// runtime.Unknown: the wrapper after [`PROTOBUF_MAGIC`].
#[derive(Clone, PartialEq, prost::Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

/// metav1.Time: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, PartialEq, prost::Message)]
struct Time {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

/// The fields of metav1.ObjectMeta a header shows.
#[derive(Clone, PartialEq, prost::Message)]
struct ObjectMetaHead {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "5")]
    uid: Option<String>,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<Time>,
    #[prost(message, optional, tag = "9")]
    deletion_timestamp: Option<Time>,
}

/// Every object kube-apiserver stores has its ObjectMeta as field 1; the rest is skipped unread.
#[derive(Clone, PartialEq, prost::Message)]
struct ObjectHead {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMetaHead>,
}

/// What an object's metadata says of it, times as the API prints them (RFC 3339, in UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub created: Option<String>,
    pub deleted: Option<String>,
    /// creationTimestamp in seconds since the Unix epoch, for an age.
    pub created_at: Option<i64>,
}

impl Meta {
    fn from_protobuf(raw: &[u8], kind: &str) -> Result<Meta, StoredError> {
        let head = <ObjectHead as prost::Message>::decode(raw)
            .map_err(|e| StoredError(format!("a Kubernetes {kind} whose metadata does not decode: {e}")))?;
        let m = head.metadata.unwrap_or_default();
        let time = |t: Option<Time>| t.and_then(|t| rfc3339(t.seconds.unwrap_or(0), None));
        Ok(Meta {
            name: m.name.unwrap_or_default(),
            namespace: m.namespace.unwrap_or_default(),
            uid: m.uid.unwrap_or_default(),
            created_at: m.creation_timestamp.as_ref().map(|t| t.seconds.unwrap_or(0)),
            created: time(m.creation_timestamp),
            deleted: time(m.deletion_timestamp),
        })
    }

    fn from_json(metadata: Option<&serde_json::Value>) -> Meta {
        let text = |field: &str| {
            metadata.and_then(|m| m.get(field)).and_then(serde_json::Value::as_str).map(str::to_owned)
        };
        Meta {
            name: text("name").unwrap_or_default(),
            namespace: text("namespace").unwrap_or_default(),
            uid: text("uid").unwrap_or_default(),
            created_at: text("creationTimestamp").and_then(|t| parse_rfc3339(&t)).map(|(seconds, _)| seconds),
            created: text("creationTimestamp"),
            deleted: text("deletionTimestamp"),
        }
    }

    /// `namespace/name ` (or `name `), empty when the object has no name.
    fn object(&self) -> String {
        match (self.namespace.as_str(), self.name.as_str()) {
            (_, "") => String::new(),
            ("", name) => format!("{name} "),
            (namespace, name) => format!("{namespace}/{name} "),
        }
    }

    /// `, created …` and `, being deleted since …`, as far as they are set.
    fn times(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.created {
            out.push_str(&format!(", created {t}"));
        }
        if let Some(t) = &self.deleted {
            out.push_str(&format!(", being deleted since {t}"));
        }
        out
    }
}

/// Seconds since the Unix epoch as metav1.Time prints them (RFC 3339 in UTC), with six digits of
/// microseconds for metav1.MicroTime; None outside years 1 to 9999.
pub(crate) fn rfc3339(seconds: i64, micros: Option<u32>) -> Option<String> {
    if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
        return None;
    }
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = micros.map(|u| format!(".{:06}", u.min(999_999))).unwrap_or_default();
    Some(format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z"))
}

/// RFC 3339 in UTC (`2025-12-01T10:00:00Z`, with an optional fraction) as seconds and nanoseconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let fraction = &text[19..text.len() - 1];
    let nanos = match fraction.strip_prefix('.') {
        Some(digits) if !digits.is_empty() && digits.len() <= 9 => {
            digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
        }
        None if fraction.is_empty() => 0,
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // A civil date to days since 1970-01-01 (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + m * 60 + s, nanos))
}

/// A value as kube-apiserver stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Protobuf: the object's type, and its own protobuf bytes (`raw`).
    Protobuf {
        api_version: String,
        kind: String,
        meta: Meta,
        raw: Vec<u8>,
        content_encoding: String,
        content_type: String,
    },
    /// A JSON object with apiVersion and kind.
    Json { api_version: String, kind: String, meta: Meta },
    /// Encrypted by `provider` (aescbc, aesgcm, secretbox, kms) with the key or KMS plugin `key`;
    /// `version` is the prefix's format version (v1, or v2 for KMS v2).
    Encrypted { provider: String, version: String, key: String, ciphertext_len: usize },
}

/// Why a value that says it is Kubernetes data cannot be read as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError(pub String);

impl std::fmt::Display for StoredError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoredError {}

impl Stored {
    /// What `value` is: `Ok(None)` for a value that is not Kubernetes data at all (shown as it is),
    /// an error for one that starts as Kubernetes data but is damaged (a truncated protobuf, an
    /// encryption prefix cut short).
    pub fn read(value: &[u8]) -> Result<Option<Stored>, StoredError> {
        if let Some(body) = value.strip_prefix(PROTOBUF_MAGIC) {
            return Self::protobuf(body).map(Some);
        }
        if let Some(rest) = value.strip_prefix(ENCRYPTED_PREFIX) {
            return Self::encrypted(rest).map(Some);
        }
        let trimmed = value.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            #[derive(serde::Deserialize)]
            struct Head {
                #[serde(rename = "apiVersion")]
                api_version: Option<String>,
                kind: Option<String>,
                metadata: Option<serde_json::Value>,
            }
            if let Ok(Head { api_version: Some(api_version), kind: Some(kind), metadata }) =
                serde_json::from_slice::<Head>(value)
            {
                if !api_version.is_empty() && !kind.is_empty() {
                    let meta = Meta::from_json(metadata.as_ref());
                    return Ok(Some(Stored::Json { api_version, kind, meta }));
                }
            }
        }
        Ok(None)
    }

    fn protobuf(body: &[u8]) -> Result<Stored, StoredError> {
        let unknown = <Unknown as prost::Message>::decode(body).map_err(|e| {
            StoredError(format!(
                "a Kubernetes protobuf value ({} bytes after k8s\\0) cut short or damaged: its runtime.Unknown does not decode ({e})",
                body.len()
            ))
        })?;
        let type_meta = unknown.type_meta.unwrap_or_default();
        let (api_version, kind) =
            (type_meta.api_version.unwrap_or_default(), type_meta.kind.unwrap_or_default());
        if kind.is_empty() {
            return Err(StoredError("a Kubernetes protobuf value without a kind".into()));
        }
        // The apiserver always writes the object's bytes, even empty: none means the value was
        // cut short before them.
        let Some(raw) = unknown.raw else {
            return Err(StoredError(format!(
                "a Kubernetes protobuf value ({kind}) without the object's bytes"
            )));
        };
        // Every kind the apiserver stores has its ObjectMeta as field 1; lists and reviews (which
        // a file given to `etcdeck decode` may hold) do not.
        let schema = schema::Schema::get();
        let object_meta = schema.message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let has_object_meta = match schema.kind(&api_version, &kind) {
            Some(index) => {
                let message = &schema.messages[index];
                let first = message.field(1).map(|f| message.fields[f].ty);
                object_meta.is_some_and(|m| first == Some(schema::Type::Message(m)))
            }
            None => true,
        };
        let meta = if has_object_meta { Meta::from_protobuf(&raw, &kind)? } else { Meta::default() };
        Ok(Stored::Protobuf {
            api_version,
            kind,
            meta,
            raw,
            content_encoding: unknown.content_encoding.unwrap_or_default(),
            content_type: unknown.content_type.unwrap_or_default(),
        })
    }

    fn encrypted(rest: &[u8]) -> Result<Stored, StoredError> {
        let cut = || StoredError("an encrypted Kubernetes value whose k8s:enc: prefix is cut short".into());
        let mut fields = rest.splitn(4, |b| *b == b':');
        let provider = fields.next().ok_or_else(cut)?;
        let version = fields.next().ok_or_else(cut)?;
        let key = fields.next().ok_or_else(cut)?;
        let ciphertext = fields.next().ok_or_else(cut)?;
        let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned).map_err(|_| cut());
        let (provider, version, key) = (text(provider)?, text(version)?, text(key)?);
        if !PROVIDERS.contains(&(provider.as_str(), version.as_str())) {
            return Err(StoredError(format!(
                "an encrypted Kubernetes value with an unknown provider k8s:enc:{provider}:{version}: (known: {})",
                PROVIDERS.map(|(p, v)| format!("{p}:{v}")).join(", ")
            )));
        }
        Ok(Stored::Encrypted { provider, version, key, ciphertext_len: ciphertext.len() })
    }

    /// What the value is, in a few words: `Pod default/web-0`, or `encrypted value`.
    pub fn what(&self) -> String {
        match self {
            Stored::Protobuf { kind, meta, .. } | Stored::Json { kind, meta, .. } => {
                format!("{kind} {}", meta.object()).trim_end().to_owned()
            }
            Stored::Encrypted { .. } => "encrypted value".into(),
        }
    }

    /// One line saying what the value is (the kind and API version, or how it is encrypted), for
    /// a header above it.
    pub fn describe(&self) -> String {
        match self {
            Stored::Protobuf { api_version, kind, meta, raw, .. } => {
                format!(
                    "{kind} {}({api_version}), protobuf, {} bytes{}",
                    meta.object(),
                    raw.len(),
                    meta.times()
                )
            }
            Stored::Json { api_version, kind, meta } => {
                format!("{kind} {}({api_version}), JSON{}", meta.object(), meta.times())
            }
            Stored::Encrypted { provider, version, key, ciphertext_len } => format!(
                "encrypted at rest by {provider} ({version}) with key {key:?}, {ciphertext_len} bytes"
            ),
        }
    }
}

/// What a key under /registry/ names. kube-apiserver's keys are
/// `/registry/[<group>/]<resource>/[<namespace>/]<name>`; a few core resources keep older paths
/// (`services/specs`, `services/endpoints`, `minions` for nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryKey {
    /// The API group, empty for the core group and for resources stored without their group.
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl RegistryKey {
    /// The parts of `key`, if it is under /registry/ and has at least a resource and a name.
    /// Whether the second-to-last part is a namespace or a name's part cannot be told from the key
    /// alone: it is taken as the namespace when the key has one part more than the resource needs.
    pub fn parse(key: &[u8]) -> Option<RegistryKey> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix("/registry/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        // A group has a dot in it (apps and the like are stored without one).
        let (group, parts) = match parts.split_first() {
            Some((g, more)) if g.contains('.') && more.len() >= 2 => ((*g).to_owned(), more),
            _ => (String::new(), &parts[..]),
        };
        // Resources kept under two levels.
        let (resource, parts) = match parts {
            ["services", sub @ ("specs" | "endpoints"), more @ ..] if !more.is_empty() => {
                (format!("services/{sub}"), more)
            }
            [resource, more @ ..] if !more.is_empty() => ((*resource).to_owned(), more),
            _ => return None,
        };
        match parts {
            [name] => Some(RegistryKey { group, resource, namespace: None, name: (*name).to_owned() }),
            [namespace, name] => Some(RegistryKey {
                group,
                resource,
                namespace: Some((*namespace).to_owned()),
                name: (*name).to_owned(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
            raw: Some(raw.to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = PROTOBUF_MAGIC.to_vec();
        out.extend(prost::Message::encode_to_vec(&unknown));
        out
    }

    /// An object's protobuf as far as a header reads it: its metadata, then a spec (field 2) it skips.
    fn object(name: &str, namespace: &str, created: Option<i64>, deleted: Option<i64>) -> Vec<u8> {
        let time = |t: Option<i64>| t.map(|seconds| Time { seconds: Some(seconds), nanos: Some(0) });
        let head = ObjectHead {
            metadata: Some(ObjectMetaHead {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                uid: Some("6f0c7a52-1b9e-4c1e-9d55-3f1a2b3c4d5e".into()),
                creation_timestamp: time(created),
                deletion_timestamp: time(deleted),
            }),
        };
        let mut out = prost::Message::encode_to_vec(&head);
        out.extend_from_slice(b"\x12\x04\x0a\x02ab");
        out
    }

    #[test]
    fn a_protobuf_value_names_its_type_and_object_and_hands_over_its_bytes() {
        let raw = object("web-0", "default", Some(1_764_583_200), None);
        let value = wrapped("v1", "Pod", &raw);
        let stored = Stored::read(&value).unwrap().unwrap();
        let meta = Meta {
            name: "web-0".into(),
            namespace: "default".into(),
            uid: "6f0c7a52-1b9e-4c1e-9d55-3f1a2b3c4d5e".into(),
            created: Some("2025-12-01T10:00:00Z".into()),
            deleted: None,
            created_at: Some(1_764_583_200),
        };
        assert_eq!(
            stored,
            Stored::Protobuf {
                api_version: "v1".into(),
                kind: "Pod".into(),
                meta,
                raw: raw.clone(),
                content_encoding: String::new(),
                content_type: String::new(),
            }
        );
        assert_eq!(
            stored.describe(),
            format!("Pod default/web-0 (v1), protobuf, {} bytes, created 2025-12-01T10:00:00Z", raw.len())
        );
        let node = wrapped("v1", "Node", &object("node-1", "", Some(0), Some(86_400)));
        assert!(Stored::read(&node).unwrap().unwrap().describe().starts_with("Node node-1 (v1), protobuf, "));
        assert!(Stored::read(&node)
            .unwrap()
            .unwrap()
            .describe()
            .ends_with(", created 1970-01-01T00:00:00Z, being deleted since 1970-01-02T00:00:00Z"));
        // Times no clock prints are left out, not made up.
        let far = wrapped("v1", "Pod", &object("x", "", Some(i64::MIN), Some(i64::MAX)));
        assert!(Stored::read(&far).unwrap().unwrap().describe().ends_with(" bytes"));
        // An object whose metadata is damaged is an error naming its kind.
        let e = Stored::read(&wrapped("apps/v1", "Deployment", &[7; 30])).unwrap_err();
        assert!(e.0.contains("a Kubernetes Deployment whose metadata does not decode"), "{e}");
    }

    #[test]
    fn a_truncated_protobuf_value_is_an_error_not_a_guess() {
        let raw = object(&"d".repeat(300), "default", Some(1), None);
        let value = wrapped("apps/v1", "Deployment", &raw);
        // The last 4 bytes are the empty content encoding and type: cut there, the object is whole.
        let whole = value.len() - 4;
        for cut in PROTOBUF_MAGIC.len()..value.len() {
            match Stored::read(&value[..cut]) {
                Err(e) if cut < whole => assert!(
                    ["does not decode", "without a kind", "without the object's bytes"]
                        .iter()
                        .any(|m| e.0.contains(m)),
                    "{e}"
                ),
                Ok(Some(Stored::Protobuf { raw: got, .. })) if cut >= whole => assert_eq!(got, raw),
                // Cut inside the trailing fields: damaged too.
                Err(_) if cut > whole && cut != whole + 2 => {}
                other => panic!("cut at {cut} of {}: {other:?}", value.len()),
            }
        }
    }

    #[test]
    fn encrypted_values_are_named_by_provider_and_key() {
        let stored = Stored::read(b"k8s:enc:aescbc:v1:key1:\x01\x02\x03").unwrap().unwrap();
        assert_eq!(
            stored,
            Stored::Encrypted {
                provider: "aescbc".into(),
                version: "v1".into(),
                key: "key1".into(),
                ciphertext_len: 3
            }
        );
        assert_eq!(stored.describe(), "encrypted at rest by aescbc (v1) with key \"key1\", 3 bytes");
        for (provider, version) in PROVIDERS {
            let value = format!("k8s:enc:{provider}:{version}:my-key:ciphertext");
            match Stored::read(value.as_bytes()).unwrap() {
                Some(Stored::Encrypted { provider: p, version: v, key, ciphertext_len: 10 }) => {
                    assert_eq!((p.as_str(), v.as_str(), key.as_str()), (provider, version, "my-key"));
                }
                other => panic!("{value}: {other:?}"),
            }
        }
        let e = Stored::read(b"k8s:enc:rot13:v1:k:x").unwrap_err();
        assert!(e.0.contains("unknown provider k8s:enc:rot13:v1:"), "{e}");
        assert!(Stored::read(b"k8s:enc:aescbc:v1:key1").unwrap_err().0.contains("cut short"));
    }

    #[test]
    fn json_objects_with_a_type_are_kubernetes_and_the_rest_is_not() {
        let cr = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"apps","creationTimestamp":"2026-12-01T10:00:00Z"}}"#;
        let stored = Stored::read(cr).unwrap().unwrap();
        let meta = Meta {
            name: "w".into(),
            namespace: "apps".into(),
            created: Some("2026-12-01T10:00:00Z".into()),
            created_at: Some(1_796_119_200),
            ..Meta::default()
        };
        assert_eq!(
            stored,
            Stored::Json { api_version: "example.com/v1".into(), kind: "Widget".into(), meta }
        );
        assert_eq!(stored.describe(), "Widget apps/w (example.com/v1), JSON, created 2026-12-01T10:00:00Z");
        for plain in [&b"hello"[..], b"{\"a\":1}", b"{not json", b"", b"\xff\xfe", b"k8s", b"[1,2]"] {
            assert_eq!(Stored::read(plain), Ok(None), "{plain:?}");
        }
    }

    #[test]
    fn damaged_values_never_panic() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let base = wrapped("v1", "ConfigMap", &object("cm", "kube-system", Some(1_700_000_000), None));
        for _ in 0..20_000 {
            let mut v = base.clone();
            let flips = 1 + next() % 4;
            for _ in 0..flips {
                let at = (next() as usize) % v.len();
                v[at] ^= 1 << (next() % 8);
            }
            let _ = Stored::read(&v);
            let _ = Stored::read(&v[..(next() as usize) % v.len()]);
        }
    }

    #[test]
    fn registry_keys_name_resource_namespace_and_name() {
        let key = |group: &str, resource: &str, namespace: Option<&str>, name: &str| RegistryKey {
            group: group.into(),
            resource: resource.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        };
        let cases = [
            ("/registry/pods/default/web-0", key("", "pods", Some("default"), "web-0")),
            ("/registry/namespaces/kube-system", key("", "namespaces", None, "kube-system")),
            ("/registry/minions/node-1", key("", "minions", None, "node-1")),
            (
                "/registry/services/specs/default/kubernetes",
                key("", "services/specs", Some("default"), "kubernetes"),
            ),
            (
                "/registry/services/endpoints/default/kubernetes",
                key("", "services/endpoints", Some("default"), "kubernetes"),
            ),
            (
                "/registry/deployments/kube-system/coredns",
                key("", "deployments", Some("kube-system"), "coredns"),
            ),
            (
                "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
                key("apiextensions.k8s.io", "customresourcedefinitions", None, "widgets.example.com"),
            ),
            ("/registry/example.com/widgets/default/w", key("example.com", "widgets", Some("default"), "w")),
        ];
        for (raw, want) in cases {
            assert_eq!(RegistryKey::parse(raw.as_bytes()), Some(want), "{raw}");
        }
        for other in
            ["/registry/", "/registry/pods", "/other/pods/a/b", "/registry/pods//x", "/registry/a/b/c/d/e"]
        {
            assert_eq!(RegistryKey::parse(other.as_bytes()), None, "{other}");
        }
    }
}
