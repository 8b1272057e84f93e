//! How keys and values are shown: bytes as safe text, a value's lines as its format shows them
//! (JSON pretty-printed, YAML, text, or hex with ASCII), and line diffs of values as shown.

pub use crate::etcd::yaml::yaml_lines;

/// Bytes as text: UTF-8 shown as it is, except control characters; anything else escaped as \xNN,
/// so no key or value can garble the screen.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control() => out.extend(c.escape_unicode()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    Json,
    Yaml,
    Text,
    Hex,
}

impl ValueFormat {
    /// JSON if it parses as a JSON object or array, text if it is UTF-8, hex otherwise. Values
    /// kube-apiserver stored as protobuf or encrypted are hex even when their bytes happen to be
    /// UTF-8.
    pub fn detect(value: &[u8]) -> ValueFormat {
        use crate::etcd::k8s::{ENCRYPTED_PREFIX, PROTOBUF_MAGIC};
        if value.starts_with(PROTOBUF_MAGIC) || value.starts_with(ENCRYPTED_PREFIX) {
            return ValueFormat::Hex;
        }
        let trimmed = value.trim_ascii_start();
        if matches!(trimmed.first(), Some(b'{' | b'['))
            && serde_json::from_slice::<serde_json::Value>(value).is_ok()
        {
            ValueFormat::Json
        } else if std::str::from_utf8(value).is_ok() {
            ValueFormat::Text
        } else {
            ValueFormat::Hex
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueFormat::Json => "json",
            ValueFormat::Yaml => "yaml",
            ValueFormat::Text => "text",
            ValueFormat::Hex => "hex",
        }
    }

    /// The format after this one when the user switches: json → yaml → text → hex → json.
    pub fn next(self) -> ValueFormat {
        match self {
            ValueFormat::Json => ValueFormat::Yaml,
            ValueFormat::Yaml => ValueFormat::Text,
            ValueFormat::Text => ValueFormat::Hex,
            ValueFormat::Hex => ValueFormat::Json,
        }
    }
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

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    Removed(String),
    Added(String),
}

/// A line diff of two values as they are shown (binary escaped), for confirmations, conflicts and
/// history. A value missing altogether (a key not there) diffs as no lines.
pub fn diff(old: Option<&[u8]>, new: Option<&[u8]>) -> Vec<DiffLine> {
    let old = old.map(shown_lines).unwrap_or_default();
    let new = new.map(shown_lines).unwrap_or_default();
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    let new_refs: Vec<&str> = new.iter().map(String::as_str).collect();
    // A diff of two large, very different values can take long: past the deadline similar gives a
    // coarser (still correct) diff instead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    similar::capture_diff_slices_deadline(similar::Algorithm::Myers, &old_refs, &new_refs, Some(deadline))
        .iter()
        .flat_map(|op| op.iter_changes(&old_refs, &new_refs))
        .map(|change| {
            let text = change.value().to_string();
            match change.tag() {
                similar::ChangeTag::Equal => DiffLine::Same(text),
                similar::ChangeTag::Delete => DiffLine::Removed(text),
                similar::ChangeTag::Insert => DiffLine::Added(text),
            }
        })
        .collect()
}

/// A value split into display lines; JSON is pretty-printed first, so a one-line JSON edit diffs by
/// field instead of as one changed line.
fn shown_lines(value: &[u8]) -> Vec<String> {
    if value.is_empty() {
        return vec![String::new()];
    }
    match ValueFormat::detect(value) {
        ValueFormat::Hex => value_lines(value, ValueFormat::Hex, 75),
        format => value_lines(value, format, usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_by_line_and_json_is_pretty_printed_first() {
        let d = diff(Some(br#"{"a":1,"b":2}"#), Some(br#"{"a":1,"b":3}"#));
        assert_eq!(
            d,
            vec![
                DiffLine::Same("{".into()),
                DiffLine::Same("  \"a\": 1,".into()),
                DiffLine::Removed("  \"b\": 2".into()),
                DiffLine::Added("  \"b\": 3".into()),
                DiffLine::Same("}".into()),
            ]
        );
        assert_eq!(diff(None, Some(b"v")), vec![DiffLine::Added("v".into())]);
        assert_eq!(diff(Some(b"v"), None), vec![DiffLine::Removed("v".into())]);
    }

    #[test]
    fn formats_are_detected_and_shown() {
        assert_eq!(ValueFormat::detect(br#"{"a":1}"#), ValueFormat::Json);
        assert_eq!(ValueFormat::detect(b"plain"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"{not json"), ValueFormat::Text);
        assert_eq!(ValueFormat::detect(b"\x00\x01\xff"), ValueFormat::Hex);
        // kube-apiserver's protobuf and encrypted values, though these bytes are UTF-8.
        assert_eq!(ValueFormat::detect(b"k8s\x00\x0a\x02\x0a\x00"), ValueFormat::Hex);
        assert_eq!(ValueFormat::detect(b"k8s:enc:aescbc:v1:key1:abc"), ValueFormat::Hex);
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
}
