//! Fields the API server itself sets on every write and keeps whatever the
//! applier sends. They are never drift, and a plan never shows them removed:
//! an apply that omits them (or a takeover that releases them) leaves them
//! exactly as they are.
//!
//! They still appear in `managedFields`: a defaulter runs while the request
//! is decoded, before the field manager records the writer's fields, so the
//! manager that created the object (`kubectl-create`,
//! `kubectl-client-side-apply`) owns them like any field it sent.

use serde_json::Value as Json;

use super::fields::FieldTree;

/// (API group, kind, fieldsV1 path) of each server-set field.
const FIELDS: &[(&str, &str, &[&str])] = &[
    // `SetDefaults_Namespace` (pkg/apis/core/v1/defaults.go) on decoding and
    // the Namespace strategy's `Canonicalize`
    // (pkg/registry/core/namespace/strategy.go) on every create and update
    // set this label to the namespace's name (NamespaceDefaultLabelName, GA
    // in Kubernetes 1.22).
    (
        "",
        "Namespace",
        &["f:metadata", "f:labels", "f:kubernetes.io/metadata.name"],
    ),
    // The strategy's `PrepareForCreate` adds the `kubernetes` finalizer and
    // `PrepareForUpdate` keeps the old list: only the `finalize` subresource
    // changes it.
    ("", "Namespace", &["f:spec", "f:finalizers"]),
];

/// The server-set fields of an object of `o`'s kind (read from its
/// `apiVersion` and `kind`), as a field set; `None` for kinds without any.
pub fn of(o: &Json) -> Option<FieldTree> {
    let s = |k: &str| o.get(k).and_then(Json::as_str).unwrap_or_default();
    let api_version = s("apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = s("kind");
    let mut out: Option<FieldTree> = None;
    for (_, _, path) in FIELDS.iter().filter(|(g, k, _)| *g == group && *k == kind) {
        let path: Vec<String> = path.iter().map(|p| p.to_string()).collect();
        let leaf = FieldTree::parse(&Json::Object(Default::default()));
        out.get_or_insert_with(FieldTree::default)
            .union(&FieldTree::rooted(&path, leaf));
    }
    out
}

/// `set` without the server-set fields of `o`'s kind (and without the marks
/// of maps that held nothing else).
pub fn without(set: &FieldTree, o: &Json) -> FieldTree {
    set.difference(of(o).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_namespace_name_label_and_finalizers_are_the_servers() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace"});
        let set = FieldTree::parse(&json!({"f:metadata": {"f:labels": {
            ".": {}, "f:kubernetes.io/metadata.name": {}, "f:team": {}}},
            "f:spec": {"f:finalizers": {}}}));
        let left = without(&set, &ns);
        assert_eq!(
            left.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
        );
        let only = FieldTree::parse(
            &json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}}),
        );
        assert!(without(&only, &ns).is_empty(), "the map's mark goes too");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(without(&set, &cm), set, "other kinds keep every field");
    }
}
