//! A value's lines as its format shows them: JSON pretty-printed, YAML, text, or hex with ASCII.

use crate::app::keys::{display_bytes, ValueFormat};

/// YAML for a JSON value, for reading: block style, strings quoted (as JSON, which YAML reads) only
/// where plain text would be read back as something else.
pub fn yaml_lines(value: &serde_json::Value) -> Vec<String> {
    fn scalar(v: &serde_json::Value) -> Option<String> {
        use serde_json::Value;
        Some(match v {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => {
                let plain = !s.is_empty()
                    && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`~".contains(c))
                    && !s.ends_with(char::is_whitespace)
                    && !s.contains(": ")
                    && !s.contains(" #")
                    && !s.chars().any(char::is_control)
                    && s.parse::<f64>().is_err()
                    && !matches!(
                        s.to_ascii_lowercase().as_str(),
                        "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
                    );
                if plain {
                    s.clone()
                } else {
                    serde_json::to_string(s).unwrap_or_default()
                }
            }
            Value::Array(a) if a.is_empty() => "[]".into(),
            Value::Object(o) if o.is_empty() => "{}".into(),
            _ => return None,
        })
    }
    fn walk(v: &serde_json::Value, indent: usize, out: &mut Vec<String>) {
        use serde_json::Value;
        let pad = " ".repeat(indent);
        match v {
            Value::Object(map) => {
                for (k, item) in map {
                    let key = scalar(&Value::String(k.clone())).unwrap_or_default();
                    match scalar(item) {
                        Some(s) => out.push(format!("{pad}{key}: {s}")),
                        None => {
                            out.push(format!("{pad}{key}:"));
                            // Sequences under a key sit at the key's indent, as most YAML does.
                            let inner = if item.is_array() { indent } else { indent + 2 };
                            walk(item, inner, out);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    match scalar(item) {
                        Some(s) => out.push(format!("{pad}- {s}")),
                        None => {
                            let mut nested = Vec::new();
                            walk(item, indent + 2, &mut nested);
                            if let Some(first) = nested.first_mut() {
                                *first = format!("{pad}- {}", &first[indent + 2..]);
                            }
                            out.extend(nested);
                        }
                    }
                }
            }
            other => out.push(format!("{pad}{}", scalar(other).unwrap_or_default())),
        }
    }
    let mut out = Vec::new();
    walk(value, 0, &mut out);
    out
}

/// The value's lines as the format shows them, hex rows fitted to `width` columns.
pub fn value_lines(value: &[u8], format: ValueFormat, width: usize) -> Vec<String> {
    match format {
        ValueFormat::Json => match serde_json::from_slice::<serde_json::Value>(value)
            .and_then(|v| serde_json::to_string_pretty(&v))
        {
            Ok(text) => text.lines().map(display_bytes_str).collect(),
            Err(_) => value_lines(value, ValueFormat::Text, width),
        },
        ValueFormat::Yaml => match serde_json::from_slice::<serde_json::Value>(value) {
            Ok(v) => yaml_lines(&v).iter().map(|l| display_bytes_str(l)).collect(),
            // Not JSON: YAML text (or anything else) is shown as it is.
            Err(_) => value_lines(value, ValueFormat::Text, width),
        },
        ValueFormat::Text => value.split(|b| *b == b'\n').map(display_bytes).collect(),
        ValueFormat::Hex => {
            // "offset  hex bytes  ascii": 11 + 4 columns per byte.
            let per_row = (width.saturating_sub(11) / 4).clamp(1, 16);
            value
                .chunks(per_row)
                .enumerate()
                .map(|(i, row)| {
                    let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                    let ascii: String = row
                        .iter()
                        .map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' })
                        .collect();
                    format!("{:08x}  {:<w$}  {ascii}", i * per_row, hex.join(" "), w = per_row * 3 - 1)
                })
                .collect()
        }
    }
}

fn display_bytes_str(s: &str) -> String {
    display_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_and_shown() {
        assert_eq!(ValueFormat::detect(br#"{"a":1}"#), ValueFormat::Json);
        assert_eq!(ValueFormat::detect(b"plain"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"{not json"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"\x00\x01\xff"), ValueFormat::Hex);
        assert_eq!(
            value_lines(br#"{"a":[1,2]}"#, ValueFormat::Json, 80),
            ["{", "  \"a\": [", "    1,", "    2", "  ]", "}"]
        );
        assert_eq!(
            value_lines(b"\x00AB", ValueFormat::Hex, 80),
            ["00000000  00 41 42                                         .AB"]
        );
        assert_eq!(value_lines(b"one\ntwo\x01", ValueFormat::Text, 80), ["one", "two\\x01"]);
        assert_eq!(
            value_lines(b"0123456789", ValueFormat::Hex, 35),
            ["00000000  30 31 32 33 34 35  012345", "00000006  36 37 38 39        6789"],
            "rows fit the width"
        );
    }

    #[test]
    fn yaml_is_block_style_and_quotes_what_would_read_back_differently() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"kind":"Pod","count":3,"on":"yes","empty":"","list":[1,{"a":"b","c":[]}],"meta":{"x: y":null}}"#,
        )
        .unwrap();
        assert_eq!(
            yaml_lines(&v),
            [
                "kind: Pod",
                "count: 3",
                "\"on\": \"yes\"",
                "empty: \"\"",
                "list:",
                "- 1",
                "- a: b",
                "  c: []",
                "meta:",
                "  \"x: y\": null",
            ]
        );
    }
}
