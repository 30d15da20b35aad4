//! How a norman v3 PUT lands on the stored object: rancher/rancher
//! `pkg/norman/types/convert/merge/merge.go` (`APIUpdateMerge`), after the
//! request builder (`pkg/norman/parse/builder`) dropped every field that is
//! not updatable.
//!
//! Two rules matter to a client:
//! - nested objects are merged key by key, so a key left out of a PUT keeps
//!   its stored value; only an explicit `null` removes it;
//! - `labels` and `annotations` are replaced, except that keys containing
//!   `cattle.io/` are protected (kept, never taken from the request) and
//!   `field.cattle.io/` keys are taken from the request but kept when the
//!   request leaves them out.

use serde_json::{Map, Value};

/// Merges the request `src` into the stored `dest`, recursing into objects.
pub(crate) fn update_merge(dest: &Value, src: &Value) -> Value {
    match (dest, src) {
        (Value::Object(d), Value::Object(s)) => {
            let mut out = d.clone();
            for (k, v) in s {
                let merged = if k == "labels" || k == "annotations" {
                    merge_protected(d.get(k), v)
                } else {
                    match d.get(k) {
                        Some(dv) => update_merge(dv, v),
                        None => v.clone(),
                    }
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => src.clone(),
    }
}

fn is_field(k: &str) -> bool {
    k.starts_with("field.cattle.io/")
}

fn is_protected(k: &str) -> bool {
    k.contains("cattle.io/") && (!is_field(k) || k == "field.cattle.io/creatorId")
}

/// `mergeProtected` of `merge.go`.
fn merge_protected(dest: Option<&Value>, src: &Value) -> Value {
    let dest = dest.and_then(Value::as_object).cloned().unwrap_or_default();
    let Some(src) = src.as_object() else {
        return Value::Object(dest);
    };
    let mut out: Map<String, Value> = dest.clone();
    for (k, v) in src {
        if !is_protected(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in dest.keys() {
        if !is_protected(k) && !is_field(k) && !src.contains_key(k) {
            out.remove(k);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_survive_unless_nulled_and_metadata_is_protected() {
        let dest = json!({
            "resourceQuota": {"limit": {"pods": "10", "limitsCpu": "4"}, "usedLimit": {"pods": "2"}},
            "labels": {"a": "1", "cattle.io/creator": "norman"},
            "annotations": {"x": "1", "field.cattle.io/projectId": "c:p-1", "lifecycle.cattle.io/create.x": "true"}
        });
        let src = json!({
            "resourceQuota": {"limit": {"limitsCpu": "8", "pods": null}},
            "labels": {"b": "2", "cattle.io/creator": "me"},
            "annotations": {"y": "2"}
        });
        let out = update_merge(&dest, &src);
        assert_eq!(
            out["resourceQuota"],
            json!({"limit": {"pods": null, "limitsCpu": "8"}, "usedLimit": {"pods": "2"}})
        );
        assert_eq!(
            out["labels"],
            json!({"b": "2", "cattle.io/creator": "norman"})
        );
        assert_eq!(
            out["annotations"],
            json!({"y": "2", "field.cattle.io/projectId": "c:p-1", "lifecycle.cattle.io/create.x": "true"})
        );
    }
}
