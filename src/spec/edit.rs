//! In-place edits of pipeline.yaml for CI (`keelson set-image`), keeping
//! every comment and all formatting: only the bytes of one scalar change, or
//! one line is inserted.

use std::path::Path;

use crate::yaml::{self, Limits, Node, Style, Value, byte_offset};

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file is not valid YAML.
    #[error("{file}:{line}:{col}: {message}")]
    Yaml {
        /// File.
        file: String,
        /// Line.
        line: usize,
        /// Column.
        col: usize,
        /// Message.
        message: String,
    },
    /// The file does not have the expected shape.
    #[error("{0}")]
    Shape(String),
    /// The value is not allowed.
    #[error("{0}")]
    Invalid(String),
}

/// Which pipeline field to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `tag`.
    Tag,
    /// `digest`.
    Digest,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Tag => "tag",
            Field::Digest => "digest",
        }
    }
}

/// Check a tag as the pipeline schema does.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A fresh pipeline.yaml holding one app's field.
pub fn new_pipeline(app: &str, field: Field, value: &str) -> String {
    format!(
        "# yaml-language-server: $schema=../../schema/pipeline.schema.json\n\
         # Pipeline layer: written by CI (`keelson set-image`).\n\
         apiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n    {app}:\n      {}: {}\n",
        field.key(),
        quote(value)
    )
}

/// Set `spec.apps.<app>.<field>` in the pipeline text, returning the new text.
pub fn set_field(
    file: &Path,
    text: &str,
    app: &str,
    field: Field,
    value: &str,
) -> Result<String, EditError> {
    let root = parse(file, text)?;
    let apps = root
        .get("spec")
        .and_then(|s| s.entry("apps"))
        .ok_or_else(|| EditError::Shape(format!("{}: has no spec.apps mapping", file.display())))?;
    if !matches!(apps.value.value, Value::Map(_)) {
        return Err(EditError::Shape(format!(
            "{}:{}:{}: spec.apps must be a mapping of app name to build data",
            file.display(),
            apps.value.span.start.line,
            apps.value.span.start.col
        )));
    }
    match apps.value.entry(app) {
        Some(entry) => match entry.value.entry(field.key()) {
            Some(existing) => Ok(replace_scalar(text, &existing.value, value)),
            None => match &entry.value.value {
                Value::Map(children) if !children.is_empty() => {
                    let indent = children[0].key_span.start.col - 1;
                    Ok(insert_line_after(
                        text,
                        entry.key_span.start.line,
                        indent,
                        field.key(),
                        value,
                    ))
                }
                _ => Err(EditError::Shape(format!(
                    "{}:{}:{}: app `{app}` must be a mapping",
                    file.display(),
                    entry.key_span.start.line,
                    entry.key_span.start.col
                ))),
            },
        },
        None => {
            let (line, indent) = match &apps.value.value {
                Value::Map(children) if !children.is_empty() => {
                    (apps.key_span.start.line, children[0].key_span.start.col - 1)
                }
                _ => {
                    return Err(EditError::Shape(format!(
                        "{}:{}:{}: spec.apps is empty or written inline; write it as a block mapping",
                        file.display(),
                        apps.key_span.start.line,
                        apps.key_span.start.col
                    )));
                }
            };
            let block = format!(
                "{pad}{app}:\n{pad}  {}: {}\n",
                field.key(),
                quote(value),
                pad = " ".repeat(indent)
            );
            Ok(insert_text_after_line(text, line, &block))
        }
    }
}

/// Remove `spec.apps.<app>.<field>` from the pipeline text, returning the
/// new text: the whole line goes, with its comment. Absent: the text is
/// returned unchanged. The field must sit on a line of its own in a block
/// mapping (`digest: sha256:…`); a flow mapping (`{tag: a, digest: b}`) is
/// refused rather than rewritten.
pub fn remove_field(file: &Path, text: &str, app: &str, field: Field) -> Result<String, EditError> {
    let root = parse(file, text)?;
    let Some(entry) = root
        .get("spec")
        .and_then(|s| s.get("apps"))
        .and_then(|a| a.get(app))
        .and_then(|a| a.entry(field.key()))
    else {
        return Ok(text.to_string());
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = entry.key_span.start.line;
    let last = entry.value.span.end.line.max(first);
    let own_line = lines
        .get(first - 1)
        .is_some_and(|l| l.trim_start().starts_with(field.key()))
        && lines.get(last - 1).is_some_and(|l| {
            let end = byte_offset(l, entry.value.span.end.col - 1);
            let rest = l[end.min(l.len())..].trim();
            rest.is_empty() || rest.starts_with('#')
        });
    if !own_line {
        return Err(EditError::Shape(format!(
            "{}:{}:{}: `{}` of app `{app}` is not on a line of its own; write the app as a block mapping",
            file.display(),
            first,
            entry.key_span.start.col,
            field.key()
        )));
    }
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if i + 1 < first || i + 1 > last {
            out.push_str(l);
        }
    }
    Ok(out)
}

fn parse(file: &Path, text: &str) -> Result<Node, EditError> {
    yaml::parse_one(text, Limits::default()).map_err(|e| EditError::Yaml {
        file: file.display().to_string(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: e.message,
    })
}

fn quote(value: &str) -> String {
    format!("\"{value}\"")
}

fn replace_scalar(text: &str, node: &Node, value: &str) -> String {
    let start = byte_offset(text, node.span.start.offset);
    let end = byte_offset(text, node.span.end.offset);
    let written = match &node.value {
        Value::Str(_, Style::SingleQuoted) => format!("'{value}'"),
        Value::Str(_, Style::Plain) if crate::render::emit::string(value) == value => {
            value.to_string()
        }
        _ => quote(value),
    };
    let mut out = String::with_capacity(text.len() + value.len());
    out.push_str(&text[..start]);
    out.push_str(&written);
    out.push_str(&text[end..]);
    out
}

fn insert_line_after(text: &str, line: usize, indent: usize, key: &str, value: &str) -> String {
    let block = format!("{}{key}: {}\n", " ".repeat(indent), quote(value));
    insert_text_after_line(text, line, &block)
}

fn insert_text_after_line(text: &str, line: usize, block: &str) -> String {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        offset += l.len();
        if i + 1 == line {
            break;
        }
    }
    let mut out = String::with_capacity(text.len() + block.len() + 1);
    out.push_str(&text[..offset]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(block);
    out.push_str(&text[offset..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# CI writes this\napiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n    orders:\n      tag: \"1.0.0\"   # release\n      domain: orders.example.com\n    mailer:\n      region: eu\n";

    #[test]
    fn replaces_only_the_tag_keeping_comments() {
        let out = set_field(Path::new("p.yaml"), TEXT, "orders", Field::Tag, "1.1.0").unwrap();
        assert_eq!(out, TEXT.replace("\"1.0.0\"", "\"1.1.0\""));
    }

    #[test]
    fn inserts_a_tag_into_an_app_without_one() {
        let out = set_field(Path::new("p.yaml"), TEXT, "mailer", Field::Tag, "2.0").unwrap();
        assert!(
            out.contains("    mailer:\n      tag: \"2.0\"\n      region: eu\n"),
            "{out}"
        );
        assert!(out.starts_with("# CI writes this\n"));
    }

    #[test]
    fn adds_a_missing_app() {
        let out = set_field(Path::new("p.yaml"), TEXT, "search", Field::Tag, "0.1").unwrap();
        let v = yaml::parse_one(&out, Limits::default()).unwrap().to_json();
        assert_eq!(v["spec"]["apps"]["search"]["tag"], "0.1");
        assert_eq!(v["spec"]["apps"]["orders"]["tag"], "1.0.0");
    }

    #[test]
    fn keeps_plain_and_single_quoted_styles() {
        let t = "spec:\n  apps:\n    a:\n      tag: v1\n    b:\n      tag: 'v1'\n";
        let out = set_field(Path::new("p.yaml"), t, "a", Field::Tag, "v2").unwrap();
        let out = set_field(Path::new("p.yaml"), &out, "b", Field::Tag, "v3").unwrap();
        assert_eq!(
            out,
            "spec:\n  apps:\n    a:\n      tag: v2\n    b:\n      tag: 'v3'\n"
        );
    }

    #[test]
    fn removes_a_field_line_and_nothing_else() {
        let t = "spec:\n  apps:\n    pay:\n      tag: \"1\"\n      digest: sha256:ab   # pinned\n      region: eu\n";
        let out = remove_field(Path::new("p.yaml"), t, "pay", Field::Digest).unwrap();
        assert_eq!(
            out,
            "spec:\n  apps:\n    pay:\n      tag: \"1\"\n      region: eu\n"
        );
        let same = remove_field(Path::new("p.yaml"), &out, "pay", Field::Digest).unwrap();
        assert_eq!(same, out);
        let flow = "spec:\n  apps:\n    pay: {tag: \"1\", digest: sha256:ab}\n";
        let err = remove_field(Path::new("p.yaml"), flow, "pay", Field::Digest).unwrap_err();
        assert!(err.to_string().starts_with("p.yaml:3:"), "{err}");
    }

    #[test]
    fn validates_tags() {
        assert!(valid_tag("1.2.3-rc.1"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a:b"));
        assert!(!valid_tag(""));
    }
}
