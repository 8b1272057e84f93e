//! A stored object's protobuf bytes as the API's JSON: field names, formats and the fields Go's
//! encoding/json leaves out, from the schema of Kubernetes' types. Fields this release does not
//! know are kept, named by their number (`<field 15>`), never dropped.

use serde_json::{Map, Value};

use super::super::yaml::yaml_lines;
use super::schema::{Field, Form, Message, Scalar, Schema, Shape, Special, Type, ValueType};
use super::stored::{rfc3339, Stored};

/// How deep messages may nest (JSONSchemaProps nest as deep as a CRD's schema does); deeper is
/// damage, not a schema, and is refused rather than risking the stack.
const MAX_DEPTH: usize = 200;

/// Choices about what a decoded object shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Show a Secret's data; masked otherwise.
    pub reveal_secrets: bool,
    /// The etcd revision the value was read at (its mod revision), which the apiserver reports as
    /// metadata.resourceVersion; the stored object has none.
    pub resource_version: Option<i64>,
}

/// Why an object could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The kind is not one this release of the schema knows (a newer Kubernetes, an aggregated API).
    UnknownKind { api_version: String, kind: String },
    /// The bytes are damaged at `path` (such as `spec.containers[0].image`).
    Damaged { path: String, why: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownKind { api_version, kind } => {
                write!(f, "{kind} ({api_version}) is not a kind of Kubernetes {}", super::schema::RELEASE)
            }
            DecodeError::Damaged { path, why } if path.is_empty() => f.write_str(why),
            DecodeError::Damaged { path, why } => write!(f, "{path}: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A damage found while decoding, with the path to it collected as the error unwinds.
struct Damage {
    /// Path segments, innermost first.
    path: Vec<String>,
    why: String,
    /// The number of the field being read when its own bytes were found cut short, for the
    /// message that knows its name.
    number: Option<u32>,
}

impl Damage {
    fn new(why: impl Into<String>) -> Damage {
        Damage { path: Vec::new(), why: why.into(), number: None }
    }

    fn at(mut self, segment: String) -> Damage {
        self.path.push(segment);
        self
    }
}

/// What a value read from etcd is, as far as it can be read as a Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// An object: decoded from protobuf, or parsed from JSON (a custom resource).
    Object(Value),
    /// Not Kubernetes data; it is shown as it is.
    NotKubernetes,
    /// Encrypted at rest: what [`Stored::describe`] says of it.
    Encrypted(String),
    /// Kubernetes data that cannot be decoded: why.
    Failed(String),
}

/// `value` as a Kubernetes object, if it is one.
pub fn decode_value(value: &[u8], options: Options) -> Decoded {
    let stored = match Stored::read(value) {
        Ok(Some(stored)) => stored,
        Ok(None) => return Decoded::NotKubernetes,
        Err(e) => return Decoded::Failed(e.to_string()),
    };
    match &stored {
        Stored::Protobuf { api_version, kind, raw, .. } => {
            match decode_object(api_version, kind, raw, options) {
                Ok(object) => Decoded::Object(object),
                Err(e) => Decoded::Failed(e.to_string()),
            }
        }
        Stored::Json { api_version, kind, .. } => match serde_json::from_slice::<Value>(value) {
            Ok(Value::Object(mut object)) => {
                if let Some(rv) = options.resource_version {
                    set_resource_version(&mut object, rv);
                }
                if api_version == "v1" && kind == "Secret" && !options.reveal_secrets {
                    mask_secret(&mut object);
                }
                Decoded::Object(Value::Object(object))
            }
            // Stored::read parsed it as an object with apiVersion and kind.
            _ => Decoded::NotKubernetes,
        },
        Stored::Encrypted { .. } => Decoded::Encrypted(stored.describe()),
    }
}

/// The object `raw` (the bytes runtime.Unknown carries) of `kind` in `api_version`, as the API
/// prints it: apiVersion and kind first, then its fields in the order of Kubernetes' Go types.
pub fn decode_object(
    api_version: &str,
    kind: &str,
    raw: &[u8],
    options: Options,
) -> Result<Value, DecodeError> {
    let schema = Schema::get();
    let Some(index) = schema.kind(api_version, kind) else {
        return Err(DecodeError::UnknownKind { api_version: api_version.into(), kind: kind.into() });
    };
    let decoder = Decoder { schema };
    let body = decoder.object(&schema.messages[index], raw, 0).map_err(|d| {
        let mut path = String::new();
        for segment in d.path.iter().rev() {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
        }
        DecodeError::Damaged { path, why: d.why }
    })?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String(kind.into()));
    out.extend(body);
    if let Some(rv) = options.resource_version {
        set_resource_version(&mut out, rv);
    }
    if api_version == "v1" && kind == "Secret" && !options.reveal_secrets {
        mask_secret(&mut out);
    }
    Ok(Value::Object(out))
}

/// metadata.resourceVersion, in ObjectMeta's place for it (after uid).
fn set_resource_version(object: &mut Map<String, Value>, rv: i64) {
    let Some(Value::Object(meta)) = object.get_mut("metadata") else { return };
    let value = Value::String(rv.to_string());
    if let Some(v) = meta.get_mut("resourceVersion") {
        *v = value;
        return;
    }
    const BEFORE: [&str; 5] = ["name", "generateName", "namespace", "selfLink", "uid"];
    let at = meta.keys().take_while(|k| BEFORE.contains(&k.as_str())).count();
    meta.shift_insert(at, "resourceVersion".into(), value);
}

/// A Secret's values, each replaced by its size.
fn mask_secret(object: &mut Map<String, Value>) {
    use base64::Engine;
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = object.get_mut(field) {
            for value in values.values_mut() {
                let len = match value {
                    Value::String(s) if field == "data" => base64::engine::general_purpose::STANDARD
                        .decode(s.as_bytes())
                        .map(|b| b.len())
                        .unwrap_or(0),
                    Value::String(s) => s.len(),
                    _ => 0,
                };
                *value = Value::String(format!("<hidden: {len} bytes>"));
            }
        }
    }
}

/// A field as it arrived on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Protobuf's wire format, read without trusting any length in it.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, Damage> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Damage::new("cut short inside a number"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Damage::new("a number longer than ten bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len()).ok_or_else(|| {
            Damage::new(format!("cut short: {n} bytes announced, {} left", self.buf.len() - self.pos))
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, Damage> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Damage::new(format!("field number {} out of range", key >> 3)))?;
        let in_field = |mut d: Damage| {
            d.number = Some(number);
            d
        };
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8).map_err(in_field)?.try_into().unwrap_or_default(),
            )),
            2 => {
                let len = self.varint().map_err(in_field)?;
                let len = usize::try_from(len)
                    .map_err(|_| in_field(Damage::new(format!("length {len} out of range"))))?;
                Wire::Bytes(self.take(len).map_err(in_field)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                self.take(4).map_err(in_field)?.try_into().unwrap_or_default(),
            )),
            other => {
                return Err(Damage::new(format!(
                    "field {number}: wire type {other}, which protobuf 3 does not use"
                )))
            }
        };
        Ok(Some((number, wire)))
    }

    /// Every field of a message, in wire order.
    fn all(buf: &'a [u8]) -> Result<Vec<(u32, Wire<'a>)>, Damage> {
        let mut reader = Reader::new(buf);
        let mut out = Vec::new();
        while let Some(field) = reader.field()? {
            out.push(field);
        }
        Ok(out)
    }
}

struct Decoder {
    schema: &'static Schema,
}

impl Decoder {
    /// A message's fields as a JSON object (inline fields joined in).
    fn object(&self, message: &Message, buf: &[u8], depth: usize) -> Result<Map<String, Value>, Damage> {
        if depth > MAX_DEPTH {
            return Err(Damage::new(format!("messages nested deeper than {MAX_DEPTH}")));
        }
        let mut known: Vec<(usize, Wire)> = Vec::new();
        let mut unknown: Vec<(u32, Wire)> = Vec::new();
        let mut reader = Reader::new(buf);
        let named = |mut d: Damage| match d.number.take() {
            Some(n) => {
                let name = message.field(n).and_then(|i| message.fields[i].json);
                d.at(name.map(str::to_owned).unwrap_or_else(|| format!("<field {n}>")))
            }
            None => d,
        };
        while let Some((number, wire)) = reader.field().map_err(named)? {
            match message.field(number) {
                Some(index) => known.push((index, wire)),
                None => unknown.push((number, wire)),
            }
        }
        known.sort_by_key(|(index, _)| *index);
        let mut out = Map::new();
        let mut rest = &known[..];
        for (index, field) in message.fields.iter().enumerate() {
            let n = rest.iter().take_while(|(i, _)| *i == index).count();
            let (values, next) = rest.split_at(n);
            rest = next;
            // One occurrence (the common case) needs no list of its own.
            let one;
            let many: Vec<Wire>;
            let values: &[Wire] = match values {
                [] => &[],
                [(_, w)] => {
                    one = [*w];
                    &one
                }
                more => {
                    many = more.iter().map(|(_, w)| *w).collect();
                    &many
                }
            };
            let name =
                || field.json.map(str::to_owned).unwrap_or_else(|| format!("<field {}>", field.number));
            if field.inline {
                let Type::Message(inner) = field.ty else {
                    return Err(Damage::new("an inline field that is not a message").at(name()));
                };
                let bytes = concat(values).map_err(|d| d.at(name()))?;
                out.extend(self.object(&self.schema.messages[inner], &bytes, depth + 1)?);
                continue;
            }
            let Some(json) = field.json else { continue };
            if let Some(value) = self.field(field, values, depth).map_err(|d| d.at(json.to_owned()))? {
                out.insert(json.to_owned(), value);
            }
        }
        for (number, wire) in unknown {
            out.insert(format!("<field {number}>"), unknown_value(wire));
        }
        Ok(out)
    }

    /// A field's JSON, None when encoding/json would leave it out.
    fn field(&self, field: &Field, values: &[Wire], depth: usize) -> Result<Option<Value>, Damage> {
        let absent = values.is_empty();
        let nil = || if field.omitempty { None } else { Some(Value::Null) };
        if field.repeated {
            if absent {
                return Ok(nil());
            }
            let mut items = Vec::with_capacity(values.len());
            for wire in values {
                match field.ty {
                    Type::Scalar(s) => match (s, wire) {
                        // A packed run of numbers.
                        (s, Wire::Bytes(b)) if !matches!(s, Scalar::String | Scalar::Bytes) => {
                            let mut reader = Reader::new(b);
                            while reader.pos < b.len() {
                                let w = match s {
                                    Scalar::Double => Wire::Fixed64(u64::from_le_bytes(
                                        reader.take(8)?.try_into().unwrap_or_default(),
                                    )),
                                    Scalar::Float => Wire::Fixed32(u32::from_le_bytes(
                                        reader.take(4)?.try_into().unwrap_or_default(),
                                    )),
                                    _ => Wire::Varint(reader.varint()?),
                                };
                                items.push(scalar(s, w).map_err(|d| d.at(format!("[{}]", items.len())))?);
                            }
                        }
                        _ => items.push(scalar(s, *wire).map_err(|d| d.at(format!("[{}]", items.len())))?),
                    },
                    Type::Message(m) => {
                        let bytes = bytes_of(*wire).map_err(|d| d.at(format!("[{}]", items.len())))?;
                        items.push(
                            self.value(m, Some(bytes), depth + 1)
                                .map_err(|d| d.at(format!("[{}]", items.len())))?,
                        );
                    }
                    Type::Map(_) => return Err(Damage::new("a repeated map")),
                }
            }
            return Ok(Some(Value::Array(items)));
        }
        match field.ty {
            Type::Map(value_type) => {
                if absent {
                    return Ok(nil());
                }
                // encoding/json writes a map's keys sorted.
                let mut entries = std::collections::BTreeMap::new();
                for wire in values {
                    let mut key = String::new();
                    let mut value = None;
                    for (number, w) in Reader::all(bytes_of(*wire)?)? {
                        match number {
                            1 => key = String::from_utf8_lossy(bytes_of(w)?).into_owned(),
                            2 => value = Some(w),
                            _ => {}
                        }
                    }
                    let decoded = match value_type {
                        ValueType::Scalar(s) => match value {
                            Some(w) => scalar(s, w),
                            None => Ok(zero(s)),
                        },
                        ValueType::Message(m) => match value {
                            Some(w) => bytes_of(w).and_then(|b| self.value(m, Some(b), depth + 1)),
                            None => self.value(m, Some(&[]), depth + 1),
                        },
                    }
                    .map_err(|d| d.at(format!("[{key:?}]")))?;
                    entries.insert(key, decoded);
                }
                if entries.is_empty() && field.omitempty {
                    return Ok(None);
                }
                Ok(Some(Value::Object(entries.into_iter().collect())))
            }
            Type::Scalar(s) => {
                let Some(last) = values.last() else {
                    return Ok(match field.shape {
                        Shape::Pointer | Shape::Slice | Shape::Map => nil(),
                        Shape::Value if field.omitempty => None,
                        Shape::Value => Some(zero(s)),
                    });
                };
                let value = scalar(s, *last)?;
                let empty = is_zero(&value);
                Ok((!(field.omitempty && empty && field.shape != Shape::Pointer)).then_some(value))
            }
            Type::Message(m) => {
                let bytes = if absent { None } else { Some(concat(values)?) };
                if bytes.is_none() && field.shape != Shape::Value {
                    return Ok(nil());
                }
                let value = self.value(m, bytes.as_deref(), depth + 1)?;
                // omitempty leaves out an empty slice type (metav1.Verbs), never a struct.
                let empty_slice =
                    field.shape == Shape::Slice && matches!(&value, Value::Array(a) if a.is_empty());
                Ok((!(field.omitempty && empty_slice)).then_some(value))
            }
        }
    }

    /// A message's JSON: an object, an array (slice types) or a special type's own form. `bytes`
    /// is None for a nil pointer a special type is asked about.
    fn value(&self, index: usize, bytes: Option<&[u8]>, depth: usize) -> Result<Value, Damage> {
        let message = &self.schema.messages[index];
        let buf = bytes.unwrap_or_default();
        match message.form {
            Form::Object => Ok(Value::Object(self.object(message, buf, depth)?)),
            Form::Array => {
                let mut items = Vec::new();
                for (number, wire) in Reader::all(buf)? {
                    if number == 1 {
                        items.push(Value::String(String::from_utf8_lossy(bytes_of(wire)?).into_owned()));
                    }
                }
                Ok(Value::Array(items))
            }
            Form::Special(special) => self.special(message, special, buf, depth),
        }
    }

    fn special(
        &self,
        message: &Message,
        special: Special,
        buf: &[u8],
        depth: usize,
    ) -> Result<Value, Damage> {
        let fields = Reader::all(buf)?;
        let last = |n: u32| fields.iter().rev().find(|(number, _)| *number == n).map(|(_, w)| *w);
        let int = |n: u32| -> Result<i64, Damage> {
            match last(n) {
                None => Ok(0),
                Some(Wire::Varint(v)) => Ok(v as i64),
                Some(other) => Err(Damage::new(format!("field {n}: {other:?} where a number belongs"))),
            }
        };
        let text = |n: u32| -> Result<String, Damage> {
            match last(n) {
                None => Ok(String::new()),
                Some(w) => Ok(String::from_utf8_lossy(bytes_of(w)?).into_owned()),
            }
        };
        let sub = |n: u32| message.field(n).map(|i| &message.fields[i]);
        Ok(match special {
            Special::Time if buf.is_empty() => Value::Null,
            Special::Time => rfc3339_value(int(1)?, None),
            Special::MicroTime if buf.is_empty() => Value::Null,
            Special::MicroTime => rfc3339_value(int(1)?, Some((int(2)? as i32 / 1000).max(0) as u32)),
            Special::Duration => Value::String(go_duration(int(1)?)),
            Special::Quantity => {
                let q = text(1)?;
                Value::String(if q.is_empty() { "0".into() } else { q })
            }
            Special::IntOrString => {
                if int(1)? == 1 {
                    Value::String(text(3)?)
                } else {
                    Value::from(int(2)? as i32)
                }
            }
            Special::Raw => match last(1) {
                None => Value::Null,
                Some(w) => {
                    let b = bytes_of(w)?;
                    if b.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(b)
                            .map_err(|e| Damage::new(format!("raw JSON that does not parse: {e}")))?
                    }
                }
            },
            Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStrings => {
                let (schema_n, other_n) = if special == Special::SchemaOrBool { (2, 1) } else { (1, 2) };
                let schema_field = sub(schema_n).ok_or_else(|| Damage::new("schema field missing"))?;
                let schema_value = match last(schema_n) {
                    Some(w) => match schema_field.ty {
                        Type::Message(m) => Some(self.value(m, Some(bytes_of(w)?), depth + 1)?),
                        _ => None,
                    },
                    None => None,
                };
                match special {
                    Special::SchemaOrBool => match schema_value {
                        Some(v) => v,
                        None => Value::Bool(int(other_n)? != 0),
                    },
                    _ => {
                        let other = sub(other_n).ok_or_else(|| Damage::new("array field missing"))?;
                        let items: Vec<Wire> =
                            fields.iter().filter(|(n, _)| *n == other_n).map(|(_, w)| *w).collect();
                        match (self.field(other, &items, depth)?, schema_value) {
                            (Some(Value::Array(a)), _) if !a.is_empty() => Value::Array(a),
                            (_, Some(schema)) => schema,
                            _ => Value::Null,
                        }
                    }
                }
            }
        })
    }
}

/// The bytes of a length-delimited field.
fn bytes_of<'a>(wire: Wire<'a>) -> Result<&'a [u8], Damage> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        other => Err(Damage::new(format!("{other:?} where a message or text belongs"))),
    }
}

/// Every occurrence of a message field, joined: protobuf merges them, and joined bytes parse as
/// that merge.
fn concat(values: &[Wire]) -> Result<Vec<u8>, Damage> {
    let mut out = Vec::new();
    for wire in values {
        out.extend_from_slice(bytes_of(*wire)?);
    }
    Ok(out)
}

fn scalar(s: Scalar, wire: Wire) -> Result<Value, Damage> {
    use base64::Engine;
    Ok(match (s, wire) {
        (Scalar::String, Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Scalar::Bytes, Wire::Bytes(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        (Scalar::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, Wire::Varint(v)) => Value::from(v as i32),
        (Scalar::Int64, Wire::Varint(v)) => Value::from(v as i64),
        (Scalar::Uint32, Wire::Varint(v)) => Value::from(v as u32),
        (Scalar::Uint64, Wire::Varint(v)) => Value::from(v),
        (Scalar::Double, Wire::Fixed64(v)) => number(f64::from_bits(v)),
        (Scalar::Float, Wire::Fixed32(v)) => number(f64::from(f32::from_bits(v))),
        (s, w) => return Err(Damage::new(format!("{w:?} where {s:?} belongs"))),
    })
}

/// A float as JSON: a whole number without a fraction, as Go's encoding/json writes it (1, not
/// 1.0). encoding/json refuses NaN and infinities; they show as text here.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Value::from(f as i64);
    }
    serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(f.to_string()))
}

fn zero(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        Scalar::Double | Scalar::Float => number(0.0),
        _ => Value::from(0),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => true,
    }
}

/// A field this release does not know: numbers as numbers, text as text, other bytes in hex.
fn unknown_value(wire: Wire) -> Value {
    match wire {
        Wire::Varint(v) | Wire::Fixed64(v) => Value::from(v),
        Wire::Fixed32(v) => Value::from(v),
        Wire::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => Value::String(s.to_owned()),
            _ => Value::String(format!("hex:{}", b.iter().map(|b| format!("{b:02x}")).collect::<String>())),
        },
    }
}

fn rfc3339_value(seconds: i64, micros: Option<u32>) -> Value {
    match rfc3339(seconds, micros) {
        Some(text) => Value::String(text),
        None => Value::String(format!("<{seconds} seconds since 1970, outside years 1-9999>")),
    }
}

/// Go's time.Duration.String.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    let fraction = |value: u64, digits: u32| {
        let scale = 10u64.pow(digits);
        let (whole, frac) = (value / scale, value % scale);
        if frac == 0 {
            whole.to_string()
        } else {
            let f = format!("{frac:0width$}", width = digits as usize);
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", fraction(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(u, 6));
    }
    let secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let s = fraction((secs % 60) * 1_000_000_000 + sub, 9);
    let (m, h) = (secs / 60 % 60, secs / 3600);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// The object as `kubectl get -o json` prints: four spaces of indent, and <, > and & escaped as Go's
/// encoding/json escapes them.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if serde::Serialize::serialize(value, &mut serializer).is_err() {
        return value.to_string();
    }
    let text = String::from_utf8_lossy(&out);
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The object as YAML, in the same order as its JSON.
pub fn to_yaml(value: &Value) -> String {
    let mut out = yaml_lines(value).join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_430_000_000_000, "1h30m30s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(nanos), text, "{nanos}");
        }
    }

    #[test]
    fn damaged_wire_data_is_an_error_never_a_panic() {
        for bytes in [&[0x0a, 0x05, b'a'][..], &[0x08], &[0x0b], &[0x00, 0x00], &[0xff; 11]] {
            assert!(Reader::all(bytes).is_err(), "{bytes:?}");
        }
    }
}
