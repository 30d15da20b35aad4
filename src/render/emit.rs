//! A small, deterministic YAML emitter for rendered objects.
//!
//! Strings are written plain only when every YAML 1.1 and 1.2 reader (kubectl
//! uses a 1.1 one) reads them back as the same string; otherwise they are
//! double-quoted with JSON escapes, which is valid YAML.

use std::fmt::Write as _;

use serde_json::Value as Json;

/// Several objects as a multi-document YAML stream.
pub fn documents<'a>(objects: impl IntoIterator<Item = &'a Json>) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        write_document(&mut out, o);
    }
    out
}

/// One value as a YAML document (without `---`).
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    write_document(&mut out, v);
    out
}

// Everything is written into one buffer: building a string per key, per
// scalar and per list item (and copying nested items' text into their
// parent's) was a fifth of `keelson render`'s instructions.

fn write_document(out: &mut String, v: &Json) {
    match v {
        Json::Object(m) if !m.is_empty() => write_map(out, m, 0, false),
        Json::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        other => {
            write_scalar(out, other);
            out.push('\n');
        }
    }
}

/// `indent` spaces.
fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// The entries of `m` at `indent`; `inline` when the first entry follows a
/// list item's dash on the same line (so it takes no padding).
fn write_map(out: &mut String, m: &serde_json::Map<String, Json>, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(inline && i == 0) {
            pad(out, indent);
        }
        write_string(out, k);
        match v {
            Json::Object(child) if !child.is_empty() => {
                out.push_str(":\n");
                write_map(out, child, indent + 2, false);
            }
            Json::Array(items) if !items.is_empty() => {
                out.push_str(":\n");
                write_seq(out, items, indent + 2);
            }
            other => {
                out.push_str(": ");
                write_scalar(out, other);
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Json], indent: usize) {
    for item in items {
        pad(out, indent);
        match item {
            Json::Object(m) if !m.is_empty() => {
                // First entry on the dash line, the rest aligned under it.
                out.push_str("- ");
                write_map(out, m, indent + 2, true);
            }
            Json::Array(a) if !a.is_empty() => {
                out.push_str("-\n");
                write_seq(out, a, indent + 2);
            }
            other => {
                out.push_str("- ");
                write_scalar(out, other);
                out.push('\n');
            }
        }
    }
}

fn write_scalar(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Json::String(s) => write_string(out, s),
        Json::Object(_) => out.push_str("{}"),
        Json::Array(_) => out.push_str("[]"),
    }
}

/// [`string`], written into `out`.
fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        out.push_str(&string(s));
    }
}

const RESERVED: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
];

/// Write a string plain when that is unambiguous, else double-quoted.
pub fn string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn is_plain_safe(s: &str) -> bool {
    if s.is_empty() || RESERVED.contains(&s) || s.trim() != s {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(is_unit_quantity(s) || first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if is_unit_quantity(s) {
        return true;
    }
    // Things a YAML 1.1 reader might take as a number or timestamp.
    if s.starts_with(".")
        || s.chars()
            .all(|c| c.is_ascii_digit() || "._-:+eE".contains(c))
    {
        return false;
    }
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._-/:=@%+,()".contains(c))
}

/// `250m`, `1.5Gi`: digits with a unit suffix never read as numbers.
fn is_unit_quantity(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    ["m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&unit)
        && !digits.is_empty()
        && digits.split('.').count() <= 2
        && digits
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_nested_maps_and_sequences() {
        let v = json!({"a": {"b": [1, {"c": "x", "d": "z"}]}, "g": [], "f": {}});
        assert_eq!(
            to_yaml(&v),
            "a:\n  b:\n    - 1\n    - c: x\n      d: z\ng: []\nf: {}\n"
        );
    }

    #[test]
    fn quotes_what_would_read_back_differently() {
        for s in [
            "yes", "on", "1.0", "123", "", " x", "a: b", "#x", "1e3", "-x", "*a",
        ] {
            assert!(string(s).starts_with('"'), "{s} should be quoted");
        }
        for s in [
            "nginx",
            "/healthz",
            "registry.example.com/shop/orders:1.2.3",
            "25%",
        ] {
            assert_eq!(
                string(s),
                if s == "25%" {
                    "\"25%\"".to_string()
                } else {
                    s.to_string()
                }
            );
        }
    }

    #[test]
    fn output_reads_back_as_the_same_value() {
        let v = json!({"s": ["yes", "1.0", "a: b", "x\ny", "ok"], "n": 1, "b": true, "z": null});
        let text = to_yaml(&v);
        let back = crate::yaml::parse_one(&text, crate::yaml::Limits::default())
            .unwrap()
            .to_json();
        assert_eq!(back, v);
    }
}
