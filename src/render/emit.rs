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
        out.push_str(&to_yaml(o));
    }
    out
}

/// One value as a YAML document (without `---`).
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    match v {
        Json::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Json::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Json>, indent: usize) {
    for (k, v) in m {
        let pad = " ".repeat(indent);
        let key = string(k);
        match v {
            Json::Object(child) if !child.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                write_map(out, child, indent + 2);
            }
            Json::Array(items) if !items.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                write_seq(out, items, indent + 2);
            }
            other => {
                let _ = writeln!(out, "{pad}{key}: {}", scalar(other));
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Json], indent: usize) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Json::Object(m) if !m.is_empty() => {
                // First entry on the dash line, the rest aligned under it.
                let mut inner = String::new();
                write_map(&mut inner, m, indent + 2);
                let trimmed = &inner[indent + 2..];
                let _ = write!(out, "{pad}- {trimmed}");
            }
            Json::Array(a) if !a.is_empty() => {
                let _ = writeln!(out, "{pad}-");
                write_seq(out, a, indent + 2);
            }
            other => {
                let _ = writeln!(out, "{pad}- {}", scalar(other));
            }
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => string(s),
        Json::Object(_) => "{}".into(),
        Json::Array(_) => "[]".into(),
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
