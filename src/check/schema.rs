//! JSON Schema validation of spec files, with every error mapped back to the
//! YAML position it is about.
//!
//! The schemas are compiled into keelson (from `schema/` at build time), so a
//! repository cannot loosen validation by editing its own copy; its copy is
//! for editors.

use std::path::Path;
use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value as Json;

use crate::diag::{Diagnostic, did_you_mean};
use crate::yaml::Node;

/// The spec kinds keelson validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `environment.yaml`.
    Environment,
    /// `pipeline.yaml`.
    Pipeline,
    /// `policies/*.yaml`.
    Policy,
    /// `environments/_templates/<name>/preview.yaml`.
    PreviewTemplate,
}

impl Kind {
    /// The `kind:` value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Environment => "Environment",
            Kind::Pipeline => "Pipeline",
            Kind::Policy => "Policy",
            Kind::PreviewTemplate => "PreviewTemplate",
        }
    }

    /// The schema text, as shipped in `schema/`.
    pub fn schema_text(self) -> &'static str {
        match self {
            Kind::Environment => include_str!("../../schema/environment.schema.json"),
            Kind::Pipeline => include_str!("../../schema/pipeline.schema.json"),
            Kind::Policy => include_str!("../../schema/policy.schema.json"),
            Kind::PreviewTemplate => include_str!("../../schema/preview-template.schema.json"),
        }
    }

    fn schema(self) -> &'static (Json, Validator) {
        static SCHEMAS: OnceLock<Vec<(Json, Validator)>> = OnceLock::new();
        let all = SCHEMAS.get_or_init(|| {
            [
                Kind::Environment,
                Kind::Pipeline,
                Kind::Policy,
                Kind::PreviewTemplate,
            ]
            .into_iter()
            .map(|k| {
                let json: Json =
                    serde_json::from_str(k.schema_text()).expect("embedded schema is JSON");
                let validator = jsonschema::validator_for(&json).expect("embedded schema compiles");
                (json, validator)
            })
            .collect()
        });
        &all[self as usize]
    }
}

/// Fields the user layer owns; pipeline.yaml setting one is an ownership
/// error rather than a typo.
const USER_OWNED: &[&str] = &[
    "name",
    "runtime",
    "replicas",
    "cpu",
    "memory",
    "ports",
    "health",
    "env",
    "nodeSelector",
    "labels",
    "command",
    "args",
];

/// Validate `instance` (from `node`, read from `file`) against the schema of
/// `kind`. Returns one diagnostic per problem.
pub fn validate(kind: Kind, file: &Path, node: &Node, instance: &Json) -> Vec<Diagnostic> {
    let (schema, validator) = kind.schema();
    let mut out = Vec::new();
    for err in validator.iter_errors(instance) {
        let pointer = err.instance_path().as_str().to_string();
        let schema_path = err.schema_path().as_str().to_string();
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_properties(schema, &schema_path);
                for field in unexpected {
                    let at = format!("{pointer}/{}", field.replace('~', "~0").replace('/', "~1"));
                    let span = node.locate(&at, true);
                    let d = if kind == Kind::Pipeline
                        && pointer.starts_with("/spec/apps/")
                        && USER_OWNED.contains(&field.as_str())
                    {
                        Diagnostic::error(
                            "ownership",
                            file,
                            Some(span),
                            format!("`{field}` is owned by the user layer and cannot be set in pipeline.yaml"),
                        )
                        .with_help(format!(
                            "set `{field}` in environment.yaml; pipeline.yaml may set only: {}",
                            allowed.join(", ")
                        ))
                    } else {
                        let d = Diagnostic::error(
                            "schema",
                            file,
                            Some(span),
                            format!("unknown field `{field}`{}", where_(&pointer)),
                        );
                        match did_you_mean(field, allowed.iter().map(String::as_str)) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None if !allowed.is_empty() => {
                                d.with_help(format!("expected one of: {}", allowed.join(", ")))
                            }
                            None => d,
                        }
                    };
                    out.push(d);
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(Diagnostic::error(
                    "schema",
                    file,
                    Some(node.locate(&pointer, false)),
                    format!("missing required field `{name}`{}", where_(&pointer)),
                ));
            }
            ValidationErrorKind::AnyOf { .. }
                if schema_path.contains("quantity") || is_quantity(schema, &schema_path) =>
            {
                out.push(
                    Diagnostic::error(
                        "schema",
                        file,
                        Some(node.locate(&pointer, false)),
                        format!(
                            "{} is not a valid quantity at {pointer}",
                            short(err.instance())
                        ),
                    )
                    .with_help("write a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi"),
                );
            }
            ValidationErrorKind::Enum { options } => {
                // The allowed values themselves, never the schema's type
                // name (`Runtime`), and the nearest one when it is a typo.
                let allowed: Vec<String> = options
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = err.instance();
                let shown = value.as_str().map_or_else(|| short(value), str::to_string);
                let d = Diagnostic::error(
                    "schema",
                    file,
                    Some(node.locate(&pointer, false)),
                    format!("`{shown}` is not an allowed value{}", where_(&pointer)),
                );
                let hint = value
                    .as_str()
                    .and_then(|v| did_you_mean(v, allowed.iter().map(String::as_str)));
                out.push(match hint {
                    Some(s) => d.with_help(format!(
                        "did you mean `{s}`? expected one of: {}",
                        allowed.join(", ")
                    )),
                    None => d.with_help(format!("expected one of: {}", allowed.join(", "))),
                });
            }
            _ => {
                let mut message = err.to_string();
                if message.len() > 300 {
                    message.truncate(300);
                    message.push('…');
                }
                let d = Diagnostic::error(
                    "schema",
                    file,
                    Some(node.locate(&pointer, false)),
                    format!("{message}{}", where_(&pointer)),
                );
                out.push(match describe(schema, &schema_path) {
                    Some(desc) => d.with_help(format!("expected: {desc}")),
                    None => d,
                });
            }
        }
    }
    out
}

fn where_(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" (at {pointer})")
    }
}

fn short(v: &Json) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        s.truncate(60);
        s.push('…');
    }
    s
}

/// The schema object a keyword location (`/properties/spec/.../keyword`)
/// belongs to, following `$ref`s into `$defs`.
fn schema_at<'a>(root: &'a Json, schema_path: &str) -> Option<&'a Json> {
    let mut tokens: Vec<&str> = schema_path.split('/').skip(1).collect();
    tokens.pop(); // the keyword itself
    let mut cur = root;
    for t in tokens {
        cur = match cur {
            Json::Object(m) => match m.get(t) {
                Some(v) => v,
                None => {
                    let target = m.get("$ref")?.as_str()?.strip_prefix("#")?;
                    root.pointer(target)?.get(t)?
                }
            },
            Json::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn allowed_properties(root: &Json, schema_path: &str) -> Vec<String> {
    schema_at(root, schema_path)
        .and_then(|s| s.get("properties"))
        .and_then(Json::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn is_quantity(root: &Json, schema_path: &str) -> bool {
    schema_at(root, schema_path)
        .and_then(|s| s.get("description"))
        .and_then(Json::as_str)
        .is_some_and(|d| d.contains("quantity"))
}

fn describe(root: &Json, schema_path: &str) -> Option<String> {
    schema_at(root, schema_path)?
        .get("description")?
        .as_str()
        .map(str::to_string)
}
