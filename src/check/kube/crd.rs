//! Custom resources, checked against the `openAPIV3Schema` of their
//! CustomResourceDefinition when that CRD is in the repository, and the
//! CRDs themselves.
//!
//! The API server prunes (or, with strict field validation, refuses) fields
//! a structural schema does not declare unless
//! `x-kubernetes-preserve-unknown-fields` allows them, then validates the
//! values (`apiextensions-apiserver/pkg/apiserver/schema`). The values are
//! checked here with the `jsonschema` crate, after turning OpenAPI's
//! `nullable` into JSON Schema. CEL rules (`x-kubernetes-validations`) are
//! not evaluated.

use std::collections::HashMap;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value as Json;

use super::{ErrorType, Errors, FieldError, Path, meta, names};

/// One served version of a custom resource.
pub struct Version {
    /// `openAPIV3Schema`, as written (`Null` when the CRD has none).
    pub schema: Json,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    validator: Option<Validator>,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("namespaced", &self.namespaced)
            .finish()
    }
}

/// The CRDs of a repository, by group and kind.
#[derive(Debug, Default)]
pub struct Index {
    kinds: HashMap<(String, String), HashMap<String, Version>>,
}

/// What the index knows about an apiVersion and kind.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A served version.
    Served(&'a Version),
    /// The CRD exists but does not serve this version; its served versions.
    NotServed(Vec<String>),
    /// No CRD in the repository defines the kind.
    Unknown,
}

impl Index {
    /// Index the CRD objects among `objects` (others are skipped).
    pub fn new<'a>(objects: impl IntoIterator<Item = &'a Json>) -> Index {
        let mut index = Index::default();
        for o in objects {
            if o.get("kind").and_then(Json::as_str) != Some("CustomResourceDefinition")
                || o.get("apiVersion").and_then(Json::as_str) != Some("apiextensions.k8s.io/v1")
            {
                continue;
            }
            let spec = &o["spec"];
            let (Some(group), Some(kind)) =
                (spec["group"].as_str(), spec["names"]["kind"].as_str())
            else {
                continue;
            };
            let namespaced = spec["scope"].as_str() != Some("Cluster");
            let versions = index
                .kinds
                .entry((group.to_string(), kind.to_string()))
                .or_default();
            for v in spec["versions"].as_array().into_iter().flatten() {
                if v["served"] != Json::Bool(true) {
                    continue;
                }
                let Some(name) = v["name"].as_str() else {
                    continue;
                };
                let schema = v["schema"]["openAPIV3Schema"].clone();
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .should_validate_formats(false)
                    .build(&to_json_schema(&schema))
                    .ok();
                versions.insert(
                    name.to_string(),
                    Version {
                        schema,
                        namespaced,
                        validator,
                    },
                );
            }
        }
        index
    }

    /// Look up `apiVersion` and `kind`.
    pub fn get(&self, api_version: &str, kind: &str) -> Lookup<'_> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        match self.kinds.get(&(group.to_string(), kind.to_string())) {
            None => Lookup::Unknown,
            Some(vs) => match vs.get(version) {
                Some(v) => Lookup::Served(v),
                None => {
                    let mut names: Vec<String> = vs.keys().cloned().collect();
                    names.sort();
                    Lookup::NotServed(names)
                }
            },
        }
    }
}

/// OpenAPI v3 → JSON Schema: `nullable: true` admits `null`, whatever the
/// other keywords say.
fn to_json_schema(s: &Json) -> Json {
    match s {
        Json::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                out.insert(k.clone(), to_json_schema(v));
            }
            if m.get("nullable") == Some(&Json::Bool(true)) {
                if let Some(Json::String(t)) = m.get("type") {
                    out.insert("type".into(), serde_json::json!([t, "null"]));
                }
                if let Some(Json::Array(e)) = out.get_mut("enum") {
                    e.push(Json::Null);
                }
            }
            Json::Object(out)
        }
        Json::Array(a) => Json::Array(a.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Check a custom resource against its CRD version.
pub fn check(obj: &Json, v: &Version, errs: &mut Errors) {
    meta::generic(obj, errs);
    if v.schema.is_null() {
        return;
    }
    if let Some(m) = obj.as_object() {
        for (k, child) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let mut pointer = format!("/{}", k.replace('~', "~0").replace('/', "~1"));
            unknown(child, k, &v.schema, &mut pointer, errs);
        }
    }
    let Some(validator) = &v.validator else {
        return;
    };
    for e in validator.iter_errors(obj) {
        let pointer = e.instance_path().as_str().to_string();
        if pointer.starts_with("/metadata") {
            continue; // ObjectMeta is checked as for any object
        }
        let (pointer, kind, detail) = match e.kind() {
            ValidationErrorKind::Required { property } => (
                format!("{pointer}/{}", property.as_str().unwrap_or_default()),
                ErrorType::Required,
                String::new(),
            ),
            ValidationErrorKind::AdditionalProperties { .. } => continue, // reported as unknown fields
            _ => {
                let mut m = e.to_string();
                if m.len() > 200 {
                    m.truncate(200);
                    m.push('…');
                }
                (pointer, ErrorType::Invalid, m)
            }
        };
        errs.add(FieldError {
            pointer,
            field: String::new(),
            kind,
            value: None,
            detail,
            at_key: false,
        });
    }
}

/// Fields the structural schema does not declare.
fn unknown(v: &Json, key: &str, parent: &Json, pointer: &mut String, errs: &mut Errors) {
    if parent.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true))
        && parent.get("properties").is_none()
    {
        return;
    }
    let schema = match parent.get("properties").and_then(|p| p.get(key)) {
        Some(s) => s,
        None => match parent.get("additionalProperties") {
            Some(a) if a.is_object() => a,
            Some(Json::Bool(true)) => return,
            _ if parent.get("x-kubernetes-preserve-unknown-fields") == Some(&Json::Bool(true)) => {
                return;
            }
            _ => {
                errs.add(FieldError {
                    pointer: pointer.clone(),
                    field: String::new(),
                    kind: ErrorType::UnknownField,
                    value: None,
                    detail: String::new(),
                    at_key: true,
                });
                return;
            }
        },
    };
    if schema.get("x-kubernetes-embedded-resource") == Some(&Json::Bool(true)) {
        return;
    }
    match v {
        Json::Object(m) => {
            for (k, child) in m {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                unknown(child, k, schema, pointer, errs);
                pointer.truncate(len);
            }
        }
        Json::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                let Json::Object(m) = item else { continue };
                for (k, child) in m {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}/{}", k.replace('~', "~0").replace('/', "~1")));
                    unknown(child, k, item_schema, pointer, errs);
                    pointer.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// `ValidateCustomResourceDefinition` (the parts that do not need the whole
/// structural-schema machinery): the name, group, scope and versions.
pub fn definition(c: &CustomResourceDefinition, errs: &mut Errors) {
    let root = Path::root();
    let spec = root.field("spec");
    let s = &c.spec;
    let want = format!("{}.{}", s.names.plural, s.group);
    if let Some(name) = c.metadata.name.as_deref()
        && name != want
    {
        errs.invalid(
            &root.field("metadata").field("name"),
            name,
            "must be spec.names.plural+\".\"+spec.group",
        );
    }
    let msgs = names::dns1123_subdomain(&s.group);
    if !msgs.is_empty() {
        errs.check(&spec.field("group"), &s.group, msgs);
    } else if !s.group.contains('.') {
        errs.invalid(
            &spec.field("group"),
            &s.group,
            "should be a domain with at least one dot",
        );
    }
    errs.one_of(
        &spec.field("scope"),
        Some(s.scope.as_str()),
        &["Cluster", "Namespaced"],
    );
    let n = spec.field("names");
    errs.check(
        &n.field("plural"),
        &s.names.plural,
        names::dns1035_label(&s.names.plural),
    );
    if s.versions.iter().filter(|v| v.storage).count() != 1 {
        errs.invalid(
            &spec.field("versions"),
            s.versions
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            "must have exactly one version marked as storage version",
        );
    }
    let vs = spec.field("versions");
    for (i, v) in s.versions.iter().enumerate() {
        errs.check(
            &vs.index(i).field("name"),
            &v.name,
            names::dns1035_label(&v.name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Json {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "nullable": true},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    }}}}}}]}
        })
    }

    fn errors(obj: Json) -> Vec<FieldError> {
        let c = crd();
        let index = Index::new([&c]);
        let Lookup::Served(v) = index.get("example.com/v1", "Widget") else {
            panic!("not found")
        };
        let mut e = Errors::default();
        check(&obj, v, &mut e);
        e.list
    }

    #[test]
    fn custom_resources_follow_their_schema() {
        assert!(
            errors(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"},
            "spec": {"size": 2, "color": null, "extra": {"anything": 1}}})
            )
            .is_empty()
        );
        let e = errors(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"},
            "spec": {"size": 0, "colour": "red"}}),
        );
        let got: Vec<(String, ErrorType)> = e.iter().map(|e| (e.pointer.clone(), e.kind)).collect();
        assert!(
            got.contains(&("/spec/colour".into(), ErrorType::UnknownField)),
            "{got:?}"
        );
        assert!(
            got.contains(&("/spec/size".into(), ErrorType::Invalid)),
            "{got:?}"
        );
        let e = errors(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": {}}),
        );
        assert_eq!(e[0].pointer, "/spec/size");
        assert_eq!(e[0].kind, ErrorType::Required);
    }

    #[test]
    fn versions_the_crd_does_not_serve_are_reported() {
        let c = crd();
        let index = Index::new([&c]);
        assert!(
            matches!(index.get("example.com/v2", "Widget"), Lookup::NotServed(v) if v == ["v1"])
        );
        assert!(matches!(
            index.get("example.com/v1", "Gadget"),
            Lookup::Unknown
        ));
    }
}
