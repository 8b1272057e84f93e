//! An object's JSON (as the API prints it) written as kube-apiserver stores it: `k8s\0` and a
//! runtime.Unknown around the object's protobuf. The inverse of decode.rs, from the same schema;
//! the demo seeds its Kubernetes objects with it.

use serde_json::{Map, Value};

use super::super::duration::parse_go_duration;
use super::schema::{Form, Message, Scalar, Schema, Special, Type, ValueType};
#[cfg(test)]
use super::stored::rfc3339;
use super::stored::{parse_rfc3339, PROTOBUF_MAGIC};

/// Why an object's JSON cannot be written as protobuf: the path to the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

/// `object` (with apiVersion and kind) as the value kube-apiserver writes to etcd.
pub fn encode_stored(object: &Value) -> Result<Vec<u8>, EncodeError> {
    let (api_version, kind, raw) = encode_object(object)?;
    // runtime.Unknown: typeMeta {apiVersion, kind}, raw, contentEncoding, contentType.
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = PROTOBUF_MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// `object`'s apiVersion, kind and protobuf bytes (what runtime.Unknown carries).
pub fn encode_object(object: &Value) -> Result<(String, String, Vec<u8>), EncodeError> {
    let text = |field: &str| object.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let schema = Schema::get();
    let index = schema
        .kind(&api_version, &kind)
        .ok_or_else(|| EncodeError(format!("{kind} ({api_version}) is not a kind this schema knows")))?;
    let Value::Object(fields) = object else {
        return Err(EncodeError("an object must be a JSON object".into()));
    };
    let mut body = fields.clone();
    body.remove("apiVersion");
    body.remove("kind");
    let raw = Encoder { schema }
        .message(&schema.messages[index], &body)
        .map_err(|(path, why)| EncodeError(if path.is_empty() { why } else { format!("{path}: {why}") }))?;
    Ok((api_version, kind, raw))
}

type Failure = (String, String);

fn fail<T>(why: impl Into<String>) -> Result<T, Failure> {
    Err((String::new(), why.into()))
}

fn at(name: &str) -> impl Fn(Failure) -> Failure + '_ {
    move |(path, why)| {
        let sep = if path.is_empty() || path.starts_with('[') { "" } else { "." };
        (format!("{name}{sep}{path}"), why)
    }
}

struct Encoder {
    schema: &'static Schema,
}

impl Encoder {
    fn message(&self, message: &Message, object: &Map<String, Value>) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        let mut used = 0usize;
        self.fields(message, object, &mut out, &mut used)?;
        if used < object.len() {
            let known = |k: &String| self.knows(message, k);
            if let Some(extra) = object.keys().find(|k| !known(k)) {
                return fail(format!("{extra:?} is not a field of {}", message.name));
            }
        }
        Ok(out)
    }

    /// Whether `key` is one of `message`'s JSON names (inline fields' included).
    fn knows(&self, message: &Message, key: &str) -> bool {
        message.fields.iter().any(|f| match (f.inline, f.ty) {
            (true, Type::Message(m)) => self.knows(&self.schema.messages[m], key),
            _ => f.json == Some(key),
        })
    }

    fn fields(
        &self,
        message: &Message,
        object: &Map<String, Value>,
        out: &mut Vec<u8>,
        used: &mut usize,
    ) -> Result<(), Failure> {
        for field in &message.fields {
            if field.inline {
                if let Type::Message(m) = field.ty {
                    let mut inner = Vec::new();
                    self.fields(&self.schema.messages[m], object, &mut inner, used)?;
                    put_bytes(out, field.number, &inner);
                }
                continue;
            }
            let Some(name) = field.json else { continue };
            let Some(value) = object.get(name) else { continue };
            *used += 1;
            if value.is_null() {
                continue;
            }
            let n = field.number;
            match field.ty {
                Type::Map(value_type) => {
                    let Value::Object(entries) = value else {
                        return fail("a map must be an object").map_err(at(name));
                    };
                    for (key, v) in entries {
                        let mut entry = Vec::new();
                        put_bytes(&mut entry, 1, key.as_bytes());
                        match value_type {
                            ValueType::Scalar(s) => put_scalar(&mut entry, 2, s, v),
                            ValueType::Message(m) => {
                                self.value(m, v).map(|bytes| put_bytes(&mut entry, 2, &bytes))
                            }
                        }
                        .map_err(at(&format!("{name}[{key:?}]")))?;
                        put_bytes(out, n, &entry);
                    }
                }
                _ if field.repeated => {
                    let Value::Array(items) = value else {
                        return fail("a list must be an array").map_err(at(name));
                    };
                    for (i, item) in items.iter().enumerate() {
                        let r = match field.ty {
                            Type::Scalar(s) => put_scalar(out, n, s, item),
                            Type::Message(m) => self.value(m, item).map(|bytes| put_bytes(out, n, &bytes)),
                            Type::Map(_) => Ok(()),
                        };
                        r.map_err(at(&format!("{name}[{i}]")))?;
                    }
                }
                Type::Scalar(s) => put_scalar(out, n, s, value).map_err(at(name))?,
                Type::Message(m) => {
                    let bytes = self.value(m, value).map_err(at(name))?;
                    put_bytes(out, n, &bytes);
                }
            }
        }
        Ok(())
    }

    /// A message's bytes from its JSON (an object, an array, or a special type's form).
    fn value(&self, index: usize, value: &Value) -> Result<Vec<u8>, Failure> {
        let message = &self.schema.messages[index];
        match message.form {
            Form::Object => match value {
                Value::Object(object) => self.message(message, object),
                _ => fail(format!("{} must be an object", message.name)),
            },
            Form::Array => {
                let Value::Array(items) = value else { return fail("must be an array") };
                let mut out = Vec::new();
                for item in items {
                    put_scalar(&mut out, 1, Scalar::String, item)?;
                }
                Ok(out)
            }
            Form::Special(special) => self.special(message, special, value),
        }
    }

    fn special(&self, message: &Message, special: Special, value: &Value) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        let schema_of = |n: u32| match message.field(n).map(|i| message.fields[i].ty) {
            Some(Type::Message(m)) => Ok(m),
            _ => fail("schema field missing"),
        };
        match (special, value) {
            (Special::Time | Special::MicroTime, Value::String(text)) => {
                let (seconds, nanos) = parse_rfc3339(text)
                    .ok_or_else(|| (String::new(), format!("{text:?} is not an RFC 3339 time")))?;
                put_varint(&mut out, 1, seconds as u64);
                put_varint(&mut out, 2, u64::from(nanos));
            }
            (Special::Duration, Value::String(text)) => {
                let d = crate_duration(text)?;
                put_varint(&mut out, 1, d as u64);
            }
            (Special::Quantity, Value::String(text)) => put_bytes(&mut out, 1, text.as_bytes()),
            (Special::Quantity, Value::Number(n)) => put_bytes(&mut out, 1, n.to_string().as_bytes()),
            (Special::IntOrString, Value::Number(n)) => {
                put_varint(&mut out, 1, 0);
                put_varint(&mut out, 2, n.as_i64().unwrap_or_default() as i32 as u64);
                put_bytes(&mut out, 3, b"");
            }
            (Special::IntOrString, Value::String(s)) => {
                put_varint(&mut out, 1, 1);
                put_varint(&mut out, 2, 0);
                put_bytes(&mut out, 3, s.as_bytes());
            }
            (Special::Raw, v) => put_bytes(&mut out, 1, v.to_string().as_bytes()),
            (Special::SchemaOrArray, Value::Array(items)) => {
                let m = schema_of(2)?;
                for item in items {
                    put_bytes(&mut out, 2, &self.value(m, item)?);
                }
            }
            (Special::SchemaOrArray | Special::SchemaOrStrings, Value::Object(_)) => {
                put_bytes(&mut out, 1, &self.value(schema_of(1)?, value)?);
            }
            (Special::SchemaOrStrings, Value::Array(items)) => {
                for item in items {
                    put_scalar(&mut out, 2, Scalar::String, item)?;
                }
            }
            (Special::SchemaOrBool, Value::Bool(b)) => put_varint(&mut out, 1, u64::from(*b)),
            (Special::SchemaOrBool, Value::Object(_)) => {
                put_varint(&mut out, 1, 1);
                put_bytes(&mut out, 2, &self.value(schema_of(2)?, value)?);
            }
            (special, v) => return fail(format!("{v} is not a {special:?}")),
        }
        Ok(out)
    }
}

fn crate_duration(text: &str) -> Result<i64, Failure> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let d = parse_go_duration(rest).map_err(|e| (String::new(), e))?;
    let nanos = i64::try_from(d.as_nanos()).map_err(|_| (String::new(), format!("{text}: too long")))?;
    Ok(if negative { -nanos } else { nanos })
}

fn put_key(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_raw_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

fn put_raw_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, number: u32, v: u64) {
    put_key(out, number, 0);
    put_raw_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_raw_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_scalar(out: &mut Vec<u8>, number: u32, s: Scalar, value: &Value) -> Result<(), Failure> {
    use base64::Engine;
    let wrong = || fail(format!("{value} is not a {s:?}"));
    match (s, value) {
        (Scalar::String, Value::String(text)) => put_bytes(out, number, text.as_bytes()),
        (Scalar::Bytes, Value::String(text)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| (String::new(), format!("bytes that are not base64: {e}")))?;
            put_bytes(out, number, &bytes);
        }
        (Scalar::Bool, Value::Bool(b)) => put_varint(out, number, u64::from(*b)),
        (Scalar::Int32 | Scalar::Int64, Value::Number(n)) => match n.as_i64() {
            Some(v) => put_varint(out, number, v as u64),
            None => return wrong(),
        },
        (Scalar::Uint32 | Scalar::Uint64, Value::Number(n)) => match n.as_u64() {
            Some(v) => put_varint(out, number, v),
            None => return wrong(),
        },
        (Scalar::Double, Value::Number(n)) => {
            put_key(out, number, 1);
            out.extend_from_slice(&n.as_f64().unwrap_or_default().to_bits().to_le_bytes());
        }
        (Scalar::Float, Value::Number(n)) => {
            put_key(out, number, 5);
            out.extend_from_slice(&(n.as_f64().unwrap_or_default() as f32).to_bits().to_le_bytes());
        }
        _ => return wrong(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_reads_what_the_api_prints_and_nothing_else() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(parse_rfc3339("2025-12-01T10:00:00Z"), Some((1_764_583_200, 0)));
        assert_eq!(parse_rfc3339("2025-12-01T10:00:00.123456Z"), Some((1_764_583_200, 123_456_000)));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some((-62_135_596_800, 0)));
        for bad in
            ["2025-12-01", "2025-13-01T10:00:00Z", "2025-12-01T10:00:00+01:00", "2025-12-01T10:00:00.Z"]
        {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for seconds in [-62_135_596_800, -1, 0, 951_782_400, 1_764_583_200, 253_402_300_799] {
            let text = rfc3339(seconds, None).unwrap();
            assert_eq!(parse_rfc3339(&text), Some((seconds, 0)), "{text}");
        }
    }
}
