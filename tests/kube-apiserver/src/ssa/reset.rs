//! Fields a write resets: what a registry strategy's `PrepareForUpdate` keeps from the stored
//! object, and what its `GetResetFields` tells the field manager to leave out of the writer's
//! set (structured-merge-diff's `Updater.IgnoreFilter`): such fields are neither applied nor
//! owned by whoever sent them.

use serde_json::Value;

use crate::registry::ResourceType;

/// A path of field names from the object's root, e.g. `["metadata", "labels"]`.
pub type FieldPath = &'static [&'static str];

/// `status` alone: the main resource of a kind with a status subresource.
pub const STATUS: &[FieldPath] = &[&["status"]];
/// `spec` alone: the status subresource of most kinds.
pub const SPEC: &[FieldPath] = &[&["spec"]];
/// `deploymentStatusStrategy` (pkg/registry/apps/deployment/strategy.go) also keeps labels.
const SPEC_AND_LABELS: &[FieldPath] = &[&["spec"], &["metadata", "labels"]];

/// The reset fields of the strategy serving `subresource` ("" for the main resource) of `rt`:
/// Kubernetes' `GetResetFields`. The main resource resets `status` where the kind has a status
/// subresource (a CRD's without one keeps `status` an ordinary field:
/// `customResourceStrategy.GetResetFields`); `/status` resets `spec` (and a Deployment's
/// labels). A Namespace's main resource also keeps `spec.finalizers` in `PrepareForUpdate` but
/// does not list it, so an applier still owns the finalizers it sent (see
/// [`crate::ops`]'s `carry_system_fields`).
pub fn reset_fields(rt: &ResourceType, subresource: &str) -> &'static [FieldPath] {
    match subresource {
        "" if rt.has_status => STATUS,
        "status" if !rt.custom && rt.group == "apps" && rt.kind == "Deployment" => SPEC_AND_LABELS,
        "status" => SPEC,
        _ => &[],
    }
}

/// Remove `path` from `obj` (and a parent map left empty by it, as field tracking never sees
/// an empty `metadata`).
pub fn remove(obj: &mut Value, path: FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = &mut *obj;
    for p in parents {
        match at.get_mut(*p) {
            Some(v) => at = v,
            None => return,
        }
    }
    if let Some(m) = at.as_object_mut() {
        m.remove(*last);
    }
}

/// `PrepareForUpdate`: `new` takes `old`'s value (or absence) at each reset path.
pub fn keep(old: &Value, new: &mut Value, paths: &[FieldPath]) {
    for path in paths {
        let mut from = Some(old);
        for p in path.iter() {
            from = from.and_then(|v| v.get(*p));
        }
        match from {
            Some(v) => {
                let mut at = &mut *new;
                for p in path.iter() {
                    if !at.is_object() {
                        *at = Value::Object(Default::default());
                    }
                    at = at
                        .as_object_mut()
                        .expect("an object")
                        .entry(p.to_string())
                        .or_insert(Value::Null);
                }
                *at = v.clone();
            }
            None => remove(new, path),
        }
    }
}
