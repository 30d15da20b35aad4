//! The parameters of a preview and their substitution into a template's
//! YAML. The set is small and fixed (no templating language): `${name}`
//! inside any scalar (or key) is replaced by the parameter's value; `$${`
//! writes a literal `${`. A plain scalar that is exactly one integer
//! parameter (`nodePort: ${preview.ports.0}`) becomes an integer; everything
//! else stays a string. Substitution works on the parsed tree, so every
//! position still points into the template file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diag::{Diagnostic, did_you_mean};
use crate::yaml::{Entry, Node, Span, Style, Value};

/// A parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    /// A number: merge request number, id, port.
    Int(i64),
    /// Text.
    Str(String),
}

impl ParamValue {
    fn text(&self) -> String {
        match self {
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Str(s) => s.clone(),
        }
    }
}

/// The values of one preview's parameters, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
}

/// What a preview is made of: the merge request and what keelson allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs<'a> {
    /// Template name.
    pub template: &'a str,
    /// Merge request number.
    pub number: u64,
    /// Source branch.
    pub branch: &'a str,
    /// Head commit SHA.
    pub sha: &'a str,
    /// Image tag; `None`: the template's `tag` (with `mr.*` filled in).
    pub tag: Option<&'a str>,
    /// First port of the preview's block, and how many it has.
    pub ports: Option<(u16, u16)>,
    /// The preview's id.
    pub id: u64,
}

/// The name of a preview of `template` for merge request `number`.
pub fn preview_name(template: &str, number: u64) -> String {
    format!("preview-{template}-{number}")
}

impl Params {
    /// Every parameter of a preview. `tag_pattern` is the template's `tag`
    /// (it may use the `mr.*` parameters other than `mr.tag`).
    pub fn new(i: &Inputs<'_>, tag_pattern: &str) -> Params {
        let mut values = BTreeMap::new();
        let mut put = |k: &str, v: ParamValue| {
            values.insert(k.to_string(), v);
        };
        put(
            "preview.name",
            ParamValue::Str(preview_name(i.template, i.number)),
        );
        put("preview.template", ParamValue::Str(i.template.into()));
        put("preview.id", ParamValue::Int(i.id as i64));
        if let Some((first, count)) = i.ports {
            for n in 0..count {
                put(
                    &format!("preview.ports.{n}"),
                    ParamValue::Int(i64::from(first) + i64::from(n)),
                );
            }
        }
        put("mr.number", ParamValue::Int(i.number as i64));
        put("mr.branch", ParamValue::Str(i.branch.into()));
        put("mr.sha", ParamValue::Str(i.sha.into()));
        put(
            "mr.shortSha",
            ParamValue::Str(i.sha.chars().take(7).collect()),
        );
        let mut p = Params { values };
        let tag = match i.tag {
            Some(t) => t.to_string(),
            None => p.fill(tag_pattern).unwrap_or_else(|_| tag_pattern.into()),
        };
        p.values.insert("mr.tag".into(), ParamValue::Str(tag));
        p
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    /// The names, for help texts.
    pub fn names(&self) -> Vec<&str> {
        self.values.keys().map(String::as_str).collect()
    }

    /// `text` with every `${name}` replaced; `Err` names the first unknown
    /// or unclosed reference.
    pub fn fill(&self, text: &str) -> Result<String, ParamError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let Some(end) = tail.find('}') else {
                    return Err(ParamError::Unclosed(after.to_string()));
                };
                let name = tail[..end].trim();
                match self.values.get(name) {
                    Some(v) => out.push_str(&v.text()),
                    None => return Err(ParamError::Unknown(name.to_string())),
                }
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The integer a plain scalar stands for when it is exactly one integer
    /// parameter.
    fn whole_int(&self, text: &str) -> Option<i64> {
        let name = text.strip_prefix("${")?.strip_suffix('}')?.trim();
        match self.values.get(name)? {
            ParamValue::Int(i) => Some(*i),
            ParamValue::Str(_) => None,
        }
    }

    /// Fill in every parameter of `node` (read from `file`). Problems become
    /// diagnostics at the scalar that holds them; the returned tree keeps
    /// the template's positions.
    pub fn substitute(&self, file: &Path, node: &Node, diags: &mut Vec<Diagnostic>) -> Node {
        let value = match &node.value {
            Value::Str(s, style) if s.contains('$') => {
                if *style == Style::Plain
                    && let Some(i) = self.whole_int(s)
                {
                    Value::Int(i)
                } else {
                    match self.fill(s) {
                        Ok(t) => Value::Str(t, *style),
                        Err(e) => {
                            diags.push(self.diagnostic(file, node.span, &e));
                            Value::Str(s.clone(), *style)
                        }
                    }
                }
            }
            Value::Seq(items) => Value::Seq(
                items
                    .iter()
                    .map(|n| self.substitute(file, n, diags))
                    .collect(),
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|e| Entry {
                        key: match self.fill(&e.key) {
                            Ok(k) => k,
                            Err(err) => {
                                diags.push(self.diagnostic(file, e.key_span, &err));
                                e.key.clone()
                            }
                        },
                        key_span: e.key_span,
                        value: self.substitute(file, &e.value, diags),
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        Node {
            value,
            span: node.span,
        }
    }

    fn diagnostic(&self, file: &Path, span: Span, e: &ParamError) -> Diagnostic {
        let d = Diagnostic::error("parameter", file, Some(span), e.to_string());
        let names = self.names().join(", ");
        match e {
            ParamError::Unknown(name) => match did_you_mean(name, self.names()) {
                Some(s) => d.with_help(format!(
                    "did you mean `${{{s}}}`? a preview's parameters: {names}"
                )),
                None => d.with_help(format!(
                    "a preview's parameters: {names}; write `$${{` for a literal `${{`"
                )),
            },
            ParamError::Unclosed(_) => {
                d.with_help("close the parameter with `}`, or write `$${` for a literal `${`")
            }
        }
    }
}

/// A reference that cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `${name}` names no parameter.
    #[error("unknown parameter `${{{0}}}`")]
    Unknown(String),
    /// `${` without `}`.
    #[error("unclosed parameter `{0}`")]
    Unclosed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse_one};

    fn params() -> Params {
        Params::new(
            &Inputs {
                template: "storefront",
                number: 123,
                branch: "feature/cart",
                sha: "5f3e2a1c0ffee",
                tag: None,
                ports: Some((30003, 3)),
                id: 2,
            },
            crate::spec::preview::DEFAULT_TAG,
        )
    }

    #[test]
    fn fills_strings_and_makes_whole_integer_parameters_integers() {
        let text = "name: ${preview.name}\nport: ${preview.ports.2}\nquoted: \"${mr.number}\"\nmixed: shop-${preview.name}\nlit: $${x} $5\ntag: ${mr.tag}\n";
        let node = parse_one(text, Limits::default()).unwrap();
        let mut diags = Vec::new();
        let out = params()
            .substitute(Path::new("t.yaml"), &node, &mut diags)
            .to_json();
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(out["name"], "preview-storefront-123");
        assert_eq!(out["port"], 30005);
        assert_eq!(out["quoted"], "123");
        assert_eq!(out["mixed"], "shop-preview-storefront-123");
        assert_eq!(out["lit"], "${x} $5");
        assert_eq!(out["tag"], "pr-123-5f3e2a1");
    }

    #[test]
    fn an_unknown_parameter_is_an_error_at_its_line_with_the_nearest_name() {
        let text = "a: 1\nb: x-${mr.numbr}\n";
        let node = parse_one(text, Limits::default()).unwrap();
        let mut diags = Vec::new();
        params().substitute(Path::new("t.yaml"), &node, &mut diags);
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].line, diags[0].column), (2, 4));
        assert!(diags[0].message.contains("`${mr.numbr}`"), "{diags:?}");
        assert!(
            diags[0]
                .help
                .as_deref()
                .unwrap()
                .contains("did you mean `${mr.number}`"),
            "{diags:?}"
        );
    }

    #[test]
    fn ports_beyond_the_block_do_not_exist() {
        assert!(params().get("preview.ports.2").is_some());
        assert!(params().get("preview.ports.3").is_none());
        assert_eq!(
            params().fill("${preview.ports.3"),
            Err(ParamError::Unclosed("${preview.ports.3".into()))
        );
    }

    #[test]
    fn an_explicit_tag_wins_over_the_pattern() {
        let p = Params::new(
            &Inputs {
                template: "t",
                number: 7,
                branch: "b",
                sha: "abc",
                tag: Some("build-99"),
                ports: None,
                id: 1,
            },
            "ignored-${mr.number}",
        );
        assert_eq!(p.get("mr.tag"), Some(&ParamValue::Str("build-99".into())));
    }
}
