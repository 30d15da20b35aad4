//! What every object shares: `metadata` (names per kind, labels,
//! annotations) and label selectors.
//!
//! Sources: `k8s.io/apimachinery/pkg/api/validation/objectmeta.go`
//! (`ValidateObjectMetaAccessor`, `ValidateAnnotations`),
//! `k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go`
//! (`ValidateLabels`, `ValidateLabelSelector`), and the per-kind name
//! functions in `pkg/apis/*/validation` (`ValidateServiceName`,
//! `ValidateNamespaceName`, `ValidateRBACName`, …).

use std::any::TypeId;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value as Json;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{ErrorType, Errors, FieldError, Path, names};

/// `TotalAnnotationSizeLimitB`: 256 KiB of annotation keys and values.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Whether `T` lives in a namespace.
pub fn is_namespaced<T: k8s_openapi::Resource>() -> bool
where
    T::Scope: 'static,
{
    TypeId::of::<T::Scope>() == TypeId::of::<k8s_openapi::NamespaceResourceScope>()
}

/// The name rule of a kind, and its description for messages.
pub fn name_rule(group: &str, kind: &str) -> fn(&str) -> Vec<String> {
    match (group, kind) {
        ("", "Service") => names::dns1035_label,
        ("", "Namespace") => names::dns1123_label,
        ("rbac.authorization.k8s.io", _) => names::path_segment,
        _ => names::dns1123_subdomain,
    }
}

/// `ValidateObjectMeta` for an object of `kind` in `group`.
pub fn object_meta(group: &str, kind: &str, namespaced: bool, m: &ObjectMeta, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("metadata");
    match m.name.as_deref() {
        None | Some("") => errs.required(&at.field("name"), "name or generateName is required"),
        Some(name) => {
            let mut msgs = name_rule(group, kind)(name);
            if (group, kind) == ("batch", "CronJob") && name.len() > 52 {
                // ValidateCronJob: room for the 11-character suffix of its Jobs.
                msgs.push("must be no more than 52 characters".into());
            }
            errs.check(&at.field("name"), name, msgs);
        }
    }
    if namespaced && let Some(ns) = m.namespace.as_deref().filter(|n| !n.is_empty()) {
        errs.check(&at.field("namespace"), ns, names::dns1123_label(ns));
    }
    if let Some(l) = &m.labels {
        labels(l, &at.field("labels"), errs);
    }
    if let Some(a) = &m.annotations {
        annotations(a, &at.field("annotations"), errs);
    }
    if let Some(f) = &m.finalizers {
        let fin = at.field("finalizers");
        for (i, name) in f.iter().enumerate() {
            errs.check(&fin.index(i), name, names::qualified_name(name));
        }
    }
}

/// The metadata of an object whose kind keelson cannot decode (a custom
/// resource whose CRD is not in the repository): names and labels only.
pub fn generic(obj: &Json, errs: &mut Errors) {
    match obj
        .get("metadata")
        .cloned()
        .map(serde_json::from_value::<ObjectMeta>)
    {
        Some(Ok(m)) => object_meta("", "", true, &m, errs),
        Some(Err(e)) => errs.add(FieldError {
            pointer: "/metadata".into(),
            field: String::new(),
            kind: ErrorType::Type,
            value: None,
            detail: e.to_string(),
            at_key: false,
        }),
        None => {}
    }
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn labels(map: &BTreeMap<String, String>, at: &Path, errs: &mut Errors) {
    for (k, v) in map {
        let entry = at.key(k);
        let key_msgs = names::qualified_name(k);
        if !key_msgs.is_empty() {
            errs.invalid(&entry, k, key_msgs.join("; "));
            if let Some(e) = errs.list.last_mut() {
                e.at_key = true;
            }
        }
        errs.check(&entry, v, names::label_value(v));
    }
}

/// `ValidateAnnotations`: keys are qualified names (compared lower-case),
/// and keys and values together hold at most 256 KiB.
pub fn annotations(map: &BTreeMap<String, String>, at: &Path, errs: &mut Errors) {
    let mut total = 0;
    for (k, v) in map {
        let msgs = names::qualified_name(&k.to_lowercase());
        if !msgs.is_empty() {
            errs.invalid(&at.key(k), k, msgs.join("; "));
            if let Some(e) = errs.list.last_mut() {
                e.at_key = true;
            }
        }
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.too_long(
            at,
            format!("may not be more than {ANNOTATIONS_MAX_BYTES} bytes (these are {total})"),
        );
    }
}

/// `ValidateLabelSelector`.
pub fn label_selector(s: &LabelSelector, at: &Path, errs: &mut Errors) {
    if let Some(m) = &s.match_labels {
        labels(m, &at.field("matchLabels"), errs);
    }
    let exprs = at.field("matchExpressions");
    for (i, r) in s.match_expressions.iter().flatten().enumerate() {
        let item = exprs.index(i);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.required(
                &item.field("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.forbidden(
                &item.field("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.invalid(
                &item.field("operator"),
                other,
                "not a valid selector operator",
            ),
        }
        errs.check(&item.field("key"), &r.key, names::qualified_name(&r.key));
        let vals = item.field("values");
        for (j, v) in values.iter().enumerate() {
            errs.check(&vals.index(j), v, names::label_value(v));
        }
    }
}

/// Whether `selector` selects an object with `labels` (for "`selector` does
/// not match template `labels`").
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let ml = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let me = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" => labels.get(&r.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&r.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&r.key),
            "DoesNotExist" => !labels.contains_key(&r.key),
            _ => false,
        }
    });
    ml && me
}

/// Whether a selector selects nothing at all (no labels, no expressions).
pub fn is_empty_selector(s: &LabelSelector) -> bool {
    s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_and_values_are_checked_at_the_entry() {
        let mut e = Errors::default();
        let mut m = BTreeMap::new();
        m.insert("team".to_string(), "shop team".to_string());
        m.insert("bad key".to_string(), "x".to_string());
        labels(&m, &Path::root().field("metadata").field("labels"), &mut e);
        assert_eq!(e.list.len(), 2);
        assert_eq!(e.list[0].pointer, "/metadata/labels/bad key");
        assert!(e.list[0].at_key);
        assert_eq!(e.list[1].pointer, "/metadata/labels/team");
        assert!(
            e.list[1]
                .to_string()
                .starts_with("metadata.labels[team]: Invalid value: \"shop team\": a valid label")
        );
    }

    #[test]
    fn annotations_may_hold_256_kib() {
        let mut e = Errors::default();
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), "x".repeat(ANNOTATIONS_MAX_BYTES - 1));
        annotations(&m, &Path::root(), &mut e);
        assert!(e.list.is_empty());
        m.insert("b".to_string(), "y".to_string());
        annotations(&m, &Path::root(), &mut e);
        assert_eq!(e.list.len(), 1);
        assert_eq!(e.list[0].kind, ErrorType::TooLong);
    }

    #[test]
    fn selector_operators_and_values() {
        let s: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Is", "values": ["x"]},
            ]
        }))
        .unwrap();
        let mut e = Errors::default();
        label_selector(&s, &Path::root(), &mut e);
        let kinds: Vec<_> = e.list.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                ErrorType::Required,
                ErrorType::Forbidden,
                ErrorType::Invalid
            ]
        );
    }
}
