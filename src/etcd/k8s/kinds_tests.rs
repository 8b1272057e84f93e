//! The decoder against every kind of the schema, and against Go's rules for what encoding/json
//! prints, on objects written as the apiserver writes them.

use serde_json::{json, Map, Value};

use super::decode::{decode_object, decode_value, to_json, Decoded, Options};
use super::encode::{encode_object, encode_stored};
use super::schema::{Form, Scalar, Schema, Shape, Special, Type, ValueType};

const REVEAL: Options = Options { reveal_secrets: true, resource_version: None };

/// A populated object of message `index`: every field set to a value that is not its zero (so
/// encoding/json prints it), a field that would recurse into a type already being filled left
/// unset. Returns (what to encode, what the API prints for it).
fn populated(
    schema: &Schema,
    index: usize,
    stack: &mut Vec<usize>,
) -> (Map<String, Value>, Map<String, Value>) {
    stack.push(index);
    let (mut input, mut expected) = (Map::new(), Map::new());
    for field in &schema.messages[index].fields {
        if field.inline {
            if let Type::Message(m) = field.ty {
                let (i, e) = populated(schema, m, stack);
                input.extend(i);
                expected.extend(e);
            }
            continue;
        }
        let Some(name) = field.json else { continue };
        let one = |stack: &mut Vec<usize>| -> Option<(Value, Value)> {
            match field.ty {
                Type::Scalar(s) => Some(scalar(s, field.number)),
                Type::Message(m) => message(schema, m, stack),
                Type::Map(ValueType::Scalar(s)) => {
                    let (i, e) = scalar(s, field.number);
                    Some((json!({"b-key": i.clone(), "a-key": i}), json!({"a-key": e.clone(), "b-key": e})))
                }
                Type::Map(ValueType::Message(m)) => {
                    message(schema, m, stack).map(|(i, e)| (json!({"key": i}), json!({"key": e})))
                }
            }
        };
        match one(stack) {
            Some((i, e)) if field.repeated => {
                input.insert(name.into(), Value::Array(vec![i]));
                expected.insert(name.into(), Value::Array(vec![e]));
            }
            Some((i, e)) => {
                input.insert(name.into(), i);
                expected.insert(name.into(), e);
            }
            // Left unset: encoding/json prints a nil pointer, slice or map as null unless omitempty.
            None => {
                assert_ne!(field.shape, Shape::Value, "{name}: a struct value cannot recurse");
                if !field.omitempty {
                    expected.insert(name.into(), Value::Null);
                }
            }
        }
    }
    stack.pop();
    (input, expected)
}

fn scalar(s: Scalar, n: u32) -> (Value, Value) {
    let v = match s {
        Scalar::String => json!(format!("text-{n}")),
        // base64 of "bytes-<n>"
        Scalar::Bytes => {
            use base64::Engine;
            json!(base64::engine::general_purpose::STANDARD.encode(format!("bytes-{n}")))
        }
        Scalar::Bool => json!(true),
        Scalar::Int32 | Scalar::Int64 | Scalar::Uint32 | Scalar::Uint64 => json!(1000 + n),
        Scalar::Double | Scalar::Float => json!(0.5),
    };
    (v.clone(), v)
}

fn message(schema: &Schema, m: usize, stack: &mut Vec<usize>) -> Option<(Value, Value)> {
    if stack.contains(&m) {
        return None;
    }
    let same = |v: Value| Some((v.clone(), v));
    match schema.messages[m].form {
        Form::Object => {
            let (i, e) = populated(schema, m, stack);
            Some((Value::Object(i), Value::Object(e)))
        }
        Form::Array => same(json!(["item"])),
        Form::Special(Special::Time) => same(json!("2025-12-01T10:00:00Z")),
        Form::Special(Special::MicroTime) => same(json!("2025-12-01T10:00:00.123456Z")),
        Form::Special(Special::Duration) => same(json!("1h1m30.5s")),
        Form::Special(Special::Quantity) => same(json!("250m")),
        Form::Special(Special::IntOrString) => same(json!(8080)),
        Form::Special(Special::Raw) => same(json!({"raw": [1, "two", {"three": null}]})),
        Form::Special(Special::SchemaOrBool) => same(json!(true)),
        Form::Special(Special::SchemaOrStrings) => same(json!(["a", "b"])),
        Form::Special(Special::SchemaOrArray) => same(json!({"type": "string"})),
    }
}

/// The first place two JSON values differ, for a readable failure.
fn difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = difference(&format!("{path}.{k}"), v, w) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k}: decoded only")),
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| format!("{path}.{k}: expected only"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| difference(&format!("{path}[{i}]"), v, w))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: decoded {a}, expected {b}")),
    }
}

#[test]
fn every_kind_of_the_release_decodes_to_the_json_the_api_prints() {
    let schema = Schema::get();
    let mut kinds = 0;
    for (index, m) in schema.messages.iter().enumerate() {
        if !m.is_kind {
            continue;
        }
        let (package, kind) = m.name.rsplit_once('.').unwrap();
        let Some(api_version) =
            schema.api_versions().into_iter().find(|v| schema.package(v) == Some(package))
        else {
            continue;
        };
        let (input, expected) = populated(schema, index, &mut Vec::new());
        let mut object = Map::new();
        object.insert("apiVersion".into(), json!(api_version));
        object.insert("kind".into(), json!(kind));
        let (mut input_object, mut expected_object) = (object.clone(), object);
        input_object.extend(input);
        expected_object.extend(expected);
        let stored = encode_stored(&Value::Object(input_object)).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let decoded = match decode_value(&stored, REVEAL) {
            Decoded::Object(decoded) => decoded,
            other => panic!("{api_version} {kind}: {other:?}"),
        };
        let expected = Value::Object(expected_object);
        if let Some(d) = difference("", &decoded, &expected) {
            panic!("{api_version} {kind}: {d}");
        }
        let keys: Vec<_> = decoded.as_object().unwrap().keys().take(2).cloned().collect();
        assert_eq!(keys, ["apiVersion", "kind"], "{kind}");
        kinds += 1;
    }
    // Every group version the release serves, core to apiextensions and apiregistration.
    assert!(kinds > 300, "{kinds} kinds");
}

#[test]
fn zero_values_nil_fields_and_unknown_fields_print_as_go_prints_them() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"z": "1", "a": "2"}},
        "spec": {
            // A container with an empty name (not omitempty: printed) and stdin false (omitempty: left out).
            "initContainers": [{"name": "", "image": "busybox", "stdin": false}],
            // A pointer set to zero prints.
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": ""
        }
    });
    let (api_version, kind, mut raw) = encode_object(&pod).unwrap();
    // A field number Kubernetes 1.36 does not have, as a newer apiserver might write.
    raw.extend_from_slice(&[0xa0, 0x06, 0x2a]); // field 100, varint 42
    let decoded = decode_object(&api_version, &kind, &raw, Options::default()).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            // An unset metav1.Time is a struct: never left out, printed as null.
            "creationTimestamp": null,
            "labels": {"a": "2", "z": "1"}
        },
        "spec": {
            "initContainers": [{"name": "", "image": "busybox", "resources": {}}],
            // A nil slice without omitempty is null.
            "containers": null,
            "terminationGracePeriodSeconds": 0
        },
        "status": {},
        "<field 100>": 42
    });
    if let Some(d) = difference("", &decoded, &expected) {
        panic!("{d}\n{}", to_json(&decoded));
    }
    // Map keys sorted, as encoding/json writes them.
    let labels: Vec<_> = decoded["metadata"]["labels"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(labels, ["a", "z"]);
}

#[test]
fn a_secret_is_masked_unless_revealed_and_the_revision_is_the_resource_version() {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "prod", "uid": "u-1"},
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque"
    });
    let stored = encode_stored(&secret).unwrap();
    let masked = Options { reveal_secrets: false, resource_version: Some(42) };
    let Decoded::Object(object) = decode_value(&stored, masked) else { panic!() };
    assert_eq!(object["data"]["password"], "<hidden: 7 bytes>");
    let meta: Vec<_> =
        object["metadata"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        meta,
        [
            "name=\"db\"",
            "namespace=\"prod\"",
            "uid=\"u-1\"",
            "resourceVersion=\"42\"",
            "creationTimestamp=null"
        ]
    );
    let Decoded::Object(object) = decode_value(&stored, REVEAL) else { panic!() };
    assert_eq!(object["data"]["password"], "aHVudGVyMg==");
    // The same for a Secret the apiserver stored as JSON.
    let Decoded::Object(object) = decode_value(secret.to_string().as_bytes(), masked) else { panic!() };
    assert_eq!(object["data"]["password"], "<hidden: 7 bytes>");
}

#[test]
fn a_custom_resource_definition_schema_decodes_with_its_json_schema_names() {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2025-12-01T10:00:00Z"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget", "listKind": "WidgetList", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"size": {"type": "integer", "default": 3}}},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    },
                    "additionalProperties": false,
                    "required": ["spec"]
                }}
            }],
            "conversion": {"strategy": "None"}
        },
        "status": {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}
    });
    let stored = encode_stored(&crd).unwrap();
    let Decoded::Object(object) = decode_value(&stored, REVEAL) else { panic!() };
    let schema = &object["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(schema["properties"]["spec"]["properties"]["size"]["default"], 3);
    assert_eq!(schema["properties"]["tags"]["items"], json!({"type": "string"}));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(object["metadata"]["creationTimestamp"], "2025-12-01T10:00:00Z");
}

#[test]
fn a_damaged_object_is_an_error_naming_where_never_a_panic() {
    let schema = Schema::get();
    let index = schema.kind("v1", "Pod").unwrap();
    let (input, _) = populated(schema, index, &mut Vec::new());
    let mut pod = Map::new();
    pod.insert("apiVersion".into(), json!("v1"));
    pod.insert("kind".into(), json!("Pod"));
    pod.extend(input);
    let (_, _, raw) = encode_object(&Value::Object(pod)).unwrap();
    let mut failures = 0;
    for len in (0..raw.len()).step_by(61) {
        if decode_object("v1", "Pod", &raw[..len], REVEAL).is_err() {
            failures += 1;
        }
    }
    assert!(failures > 0);
    let e = decode_object("v1", "Pod", &raw[..raw.len() / 2], REVEAL).unwrap_err().to_string();
    assert!(e.starts_with("spec") && e.contains("cut short"), "{e}");
    assert_eq!(
        decode_object("v1", "Gadget", b"", REVEAL).unwrap_err().to_string(),
        "Gadget (v1) is not a kind of Kubernetes 1.36"
    );
}
