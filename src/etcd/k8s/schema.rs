//! Kubernetes' types as the decoder needs them: each message's fields by number, with the JSON
//! name the API prints and Go's rules for leaving a field out. Read once from
//! assets/kubernetes/schema.txt (written by assets/kubernetes/schema.py from Kubernetes' own
//! generated.proto files and the Go types they were generated from; the format is described there).

use std::collections::HashMap;
use std::sync::OnceLock;

const TEXT: &str = include_str!("../../../assets/kubernetes/schema.txt");

/// The Kubernetes release the schema was read from.
pub const RELEASE: &str = "1.36";

/// A protobuf scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Float,
}

impl Scalar {
    fn parse(text: &str) -> Option<Scalar> {
        Some(match text {
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            "bool" => Scalar::Bool,
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "uint32" => Scalar::Uint32,
            "uint64" => Scalar::Uint64,
            "double" => Scalar::Double,
            "float" => Scalar::Float,
            _ => return None,
        })
    }
}

/// What a field holds: a scalar, a message (an index into [`Schema::messages`]), or a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Scalar(Scalar),
    Message(usize),
    /// A map with string keys (the only keys Kubernetes uses) and values of the inner type.
    Map(ValueType),
}

/// A map's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar(Scalar),
    Message(usize),
}

/// How encoding/json sees the Go field: it decides when the field is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A value (scalar or struct); omitempty leaves out a zero scalar, never a struct.
    Value,
    /// A pointer: nil is left out (omitempty) or null; a set pointer prints even a zero value.
    Pointer,
    /// A slice (repeated, or []byte): omitempty leaves out an empty one; nil is null otherwise.
    Slice,
    /// A map: as a slice.
    Map,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub number: u32,
    /// The JSON name; None for an inline (embedded) struct whose fields join the parent's, and
    /// for a field encoding/json leaves out (json:"-").
    pub json: Option<&'static str>,
    pub ty: Type,
    pub shape: Shape,
    pub omitempty: bool,
    pub inline: bool,
    /// A repeated protobuf field (a []byte is a Slice but not repeated).
    pub repeated: bool,
}

/// A type whose JSON is not an object of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// metav1.Time: RFC 3339 in seconds, null when unset.
    Time,
    /// metav1.MicroTime: RFC 3339 with microseconds.
    MicroTime,
    /// metav1.Duration: Go's duration text.
    Duration,
    /// resource.Quantity: its text.
    Quantity,
    /// intstr.IntOrString: a number or a string.
    IntOrString,
    /// RawExtension, FieldsV1, apiextensions' JSON: JSON bytes, inline.
    Raw,
    /// JSONSchemaPropsOrArray: a schema or an array of schemas.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: a schema or a boolean.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: a schema or an array of strings.
    SchemaOrStrings,
}

/// What a message's JSON is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An object of its fields.
    Object,
    /// A Go slice type (authentication's ExtraValue, metav1.Verbs): the JSON array of its items.
    Array,
    Special(Special),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The protobuf name, such as k8s.io.api.core.v1.Pod.
    pub name: &'static str,
    pub form: Form,
    /// A top-level kind (its Go type embeds TypeMeta).
    pub is_kind: bool,
    /// In the Go struct's order, which is the order the API prints them in.
    pub fields: Vec<Field>,
    /// (field number, index into `fields`), sorted by number.
    by_number: Vec<(u32, usize)>,
}

impl Message {
    /// The field with protobuf number `number`, if this release knows it.
    pub fn field(&self, number: u32) -> Option<usize> {
        self.by_number.binary_search_by_key(&number, |(n, _)| *n).ok().map(|i| self.by_number[i].1)
    }
}

#[derive(Debug)]
pub struct Schema {
    pub messages: Vec<Message>,
    by_name: HashMap<&'static str, usize>,
    /// apiVersion (`v1`, `apps/v1`) → protobuf package.
    groups: HashMap<&'static str, &'static str>,
}

impl Schema {
    /// The schema compiled into etcdeck, read on first use.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| match Schema::parse(TEXT) {
            Ok(schema) => schema,
            // The text is compiled in and checked by a unit test: a failure here cannot come from input.
            Err(e) => panic!("assets/kubernetes/schema.txt: {e}"),
        })
    }

    /// The message of `kind` in `api_version`, if this release has it.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        let package = self.groups.get(api_version)?;
        let index = *self.by_name.get(format!("{package}.{kind}").as_str())?;
        self.messages[index].is_kind.then_some(index)
    }

    /// The message named `name` (protobuf full name).
    pub fn message(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Every apiVersion this release serves, sorted.
    pub fn api_versions(&self) -> Vec<&'static str> {
        let mut out: Vec<_> = self.groups.keys().copied().collect();
        out.sort_unstable();
        out
    }

    /// The package of `api_version`.
    pub fn package(&self, api_version: &str) -> Option<&'static str> {
        self.groups.get(api_version).copied()
    }

    fn parse(text: &'static str) -> Result<Schema, String> {
        // First pass: message names, so fields can refer to messages defined later.
        let mut by_name = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("M ") {
                let name = rest.split(' ').next().unwrap_or_default();
                let index = by_name.len();
                if by_name.insert(name, index).is_some() {
                    return Err(format!("message {name} twice"));
                }
            }
        }
        let mut messages: Vec<Message> = Vec::with_capacity(by_name.len());
        let mut groups = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            let words: Vec<&'static str> = line.split(' ').collect();
            match words.as_slice() {
                [] | ["#", ..] | [""] => {}
                ["G", api_version, package] => {
                    groups.insert(*api_version, *package);
                }
                ["M", name, rest @ ..] => {
                    let (form, is_kind) = match rest {
                        [] => (Form::Object, false),
                        ["K"] => (Form::Object, true),
                        ["A"] => (Form::Array, false),
                        [special] => {
                            (Form::Special(special_of(special).ok_or_else(|| bad("special"))?), false)
                        }
                        _ => return Err(bad("message")),
                    };
                    messages.push(Message { name, form, is_kind, fields: Vec::new(), by_number: Vec::new() });
                }
                ["F", number, json, ty, flags] => {
                    let message = messages.last_mut().ok_or_else(|| bad("field before any message"))?;
                    let number: u32 = number.parse().map_err(|_| bad("field number"))?;
                    let ty = parse_type(ty, &by_name).ok_or_else(|| bad("type"))?;
                    let shape = match flags.chars().next() {
                        Some('V') => Shape::Value,
                        Some('P') => Shape::Pointer,
                        Some('S') => Shape::Slice,
                        Some('M') => Shape::Map,
                        _ => return Err(bad("shape")),
                    };
                    let (omitempty, inline, repeated) =
                        (flags.contains('o'), flags.contains('i'), flags.contains('r'));
                    let json = (*json != "-").then_some(*json);
                    let index = message.fields.len();
                    message.fields.push(Field { number, json, ty, shape, omitempty, inline, repeated });
                    message.by_number.push((number, index));
                }
                _ => return Err(bad("unknown line")),
            }
        }
        for message in &mut messages {
            message.by_number.sort_unstable();
        }
        Ok(Schema { messages, by_name, groups })
    }
}

fn special_of(text: &str) -> Option<Special> {
    Some(match text.strip_prefix("S:")? {
        "time" => Special::Time,
        "microtime" => Special::MicroTime,
        "duration" => Special::Duration,
        "quantity" => Special::Quantity,
        "intorstring" => Special::IntOrString,
        "raw" => Special::Raw,
        "schemaorarray" => Special::SchemaOrArray,
        "schemaorbool" => Special::SchemaOrBool,
        "schemaorstrings" => Special::SchemaOrStrings,
        _ => return None,
    })
}

fn parse_type(text: &str, by_name: &HashMap<&'static str, usize>) -> Option<Type> {
    if let Some(map) = text.strip_prefix("map:") {
        let value = map.strip_prefix("string:")?;
        return Some(Type::Map(match Scalar::parse(value) {
            Some(s) => ValueType::Scalar(s),
            None => ValueType::Message(*by_name.get(value)?),
        }));
    }
    Some(match Scalar::parse(text) {
        Some(s) => Type::Scalar(s),
        None => Type::Message(*by_name.get(text)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_schema_reads_and_knows_the_kinds_a_control_plane_stores() {
        let schema = Schema::parse(TEXT).expect("schema.txt reads");
        for (api_version, kind) in [
            ("v1", "Pod"),
            ("v1", "Secret"),
            ("apps/v1", "Deployment"),
            ("batch/v1", "CronJob"),
            ("networking.k8s.io/v1", "Ingress"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("coordination.k8s.io/v1", "Lease"),
            ("discovery.k8s.io/v1", "EndpointSlice"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("apiregistration.k8s.io/v1", "APIService"),
            ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
            ("events.k8s.io/v1", "Event"),
        ] {
            assert!(schema.kind(api_version, kind).is_some(), "{api_version} {kind}");
        }
        assert_eq!(schema.kind("v1", "PodSpec"), None, "not a kind");
        assert_eq!(schema.kind("v9", "Pod"), None);
        let pod = &schema.messages[schema.kind("v1", "Pod").unwrap()];
        let names: Vec<_> = pod.fields.iter().map(|f| f.json).collect();
        assert_eq!(names, [Some("metadata"), Some("spec"), Some("status")]);
        let meta =
            &schema.messages[schema.message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta").unwrap()];
        let created = &meta.fields[meta.field(8).unwrap()];
        assert_eq!(
            (created.json, created.shape, created.omitempty),
            (Some("creationTimestamp"), Shape::Value, true)
        );
        assert_eq!(
            schema.messages[match created.ty {
                Type::Message(m) => m,
                other => panic!("{other:?}"),
            }]
            .form,
            Form::Special(Special::Time)
        );
    }

    #[test]
    fn a_damaged_schema_line_is_an_error_naming_the_line() {
        let e = Schema::parse("M a.B\nF x name string V\n").unwrap_err();
        assert!(e.starts_with("line 2: field number"), "{e}");
        let e = Schema::parse("M a.B\nF 1 name a.Missing V\n").unwrap_err();
        assert!(e.starts_with("line 2: type"), "{e}");
    }
}
