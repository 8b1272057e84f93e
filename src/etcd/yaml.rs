//! YAML as etcdeck writes it for reading (the value pane, `etcdeck get -o yaml`): block style, in the
//! JSON value's own order, strings quoted as JSON (which YAML reads) only where a YAML 1.1 reader
//! such as kubectl's or PyYAML would read them back as something else.

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
                    && !yaml11_non_string(s)
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

/// Whether YAML 1.1 (go-yaml v2, PyYAML) resolves `s` to something other than a string: a
/// timestamp, a hex or octal or underscored integer, or a base-60 number.
fn yaml11_non_string(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| !r.is_empty() && r.iter().all(u8::is_ascii_digit);
    let date = b.len() >= 10 && digits(&b[..4]) && b[4] == b'-' && b[5..7].iter().all(u8::is_ascii_digit);
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let hex = unsigned
        .strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
    let underscored =
        unsigned.contains('_') && unsigned.chars().all(|c| c.is_ascii_digit() || c == '_' || c == '.');
    let sexagesimal = unsigned.contains(':')
        && unsigned.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'));
    date || hex || underscored || sexagesimal
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn strings_a_yaml_1_1_reader_would_take_for_times_or_numbers_are_quoted() {
        for (text, quoted) in [
            ("2025-12-01T10:00:00Z", true),
            ("2025-12-01", true),
            ("0x1F", true),
            ("1_000", true),
            ("12:30", true),
            ("web-0", false),
            ("10.244.0.1", false),
            ("f:metadata", false),
            ("250m", false),
        ] {
            let line = yaml_lines(&serde_json::json!({ "k": text })).join("");
            assert_eq!(line.contains('"'), quoted, "{line}");
        }
    }
}
