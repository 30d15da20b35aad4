//! The local normaliser: comparing a desired object with its live version
//! without asking the server. A best effort, used where no server can answer
//! (`reconcile --against DIR`) and for objects the no-op decision could not
//! clear before the server's dry run judges them (see `apply::confirm`).
//!
//! Live objects carry much that keelson never set: server defaults, status,
//! webhook-injected sidecars, fields other controllers own. Keelson compares
//! only what it manages: the desired fields, plus fields it (or a manual
//! manager) set before, from managedFields, so that a removal is still seen.
//! Equivalent forms (`1000m` = `1`, `1Gi` = `1024Mi`, `8080` = `"8080"`,
//! empty = absent) are equal. Defaults the server fills in inside atomic
//! lists, and normalisations it does that this module does not know, can
//! show as changes here; the server's dry run never has that fault.

use serde_json::{Map, Value as Json};

use super::fields::{FieldTree, item_key, merge_keys};
use crate::render::quantity;

/// A Secret in the form the server stores it: `stringData` is write-only
/// (the API server folds it into `data`, base64-encoded, a `stringData`
/// key winning over the same `data` key; `v1.Secret` API docs), so keelson
/// applies `data`. Its `Apply` entry in `managedFields` then owns the
/// `data` keys it sets: a value changed by hand is a field keelson lost,
/// and the apply takes it back. Other objects are left as they are.
pub fn fold_string_data(o: &mut Json) {
    use base64::Engine;
    let secret = o.get("apiVersion").and_then(Json::as_str) == Some("v1")
        && o.get("kind").and_then(Json::as_str) == Some("Secret");
    let Some(m) = o.as_object_mut().filter(|_| secret) else {
        return;
    };
    let Some(Json::Object(strings)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| Json::Object(Map::new()));
    if !data.is_object() {
        *data = Json::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object");
    for (k, v) in strings {
        let text = match &v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        data.insert(
            k,
            Json::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
}

/// Remove the fields at `pointers` (ignore rules) from `v`.
pub fn remove_pointers(v: &mut Json, pointers: &[String]) {
    for p in pointers {
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = if parent.is_empty() {
            Some(&mut *v)
        } else {
            v.pointer_mut(parent)
        };
        match target {
            Some(Json::Object(m)) => {
                m.remove(&last);
            }
            Some(Json::Array(a)) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        }
    }
}

/// `live` seen through `desired`: the fields desired sets, plus fields
/// keelson applied before (per `mine`) that desired no longer sets. Merge-key
/// lists are aligned to desired's order. What is left is directly comparable
/// with desired.
pub fn project(live: &Json, desired: &Json, mine: Option<&FieldTree>, field: &str) -> Json {
    match (live, desired) {
        (Json::Object(l), Json::Object(d)) => {
            let mut out = Map::new();
            for (k, dv) in d {
                if let Some(lv) = l.get(k) {
                    let sub = mine.and_then(|t| t.child(&format!("f:{k}")));
                    out.insert(k.clone(), project(lv, dv, sub, k));
                }
            }
            if let Some(mine) = mine {
                for (k, lv) in l {
                    if !d.contains_key(k) && mine.child(&format!("f:{k}")).is_some() {
                        out.insert(k.clone(), lv.clone());
                    }
                }
            }
            Json::Object(out)
        }
        (Json::Array(l), Json::Array(d)) => match merge_keys(field, d) {
            Some(keys) => {
                let mut out = Vec::new();
                for di in d {
                    let key = item_key(di, keys);
                    if let Some(li) = l.iter().find(|li| item_key(li, keys) == key) {
                        let sub = mine.and_then(|t| t.child(&key));
                        out.push(project(li, di, sub, ""));
                    }
                }
                for li in l {
                    let key = item_key(li, keys);
                    let in_desired = d.iter().any(|di| item_key(di, keys) == key);
                    if !in_desired && mine.is_some_and(|t| t.child(&key).is_some()) {
                        out.push(li.clone());
                    }
                }
                Json::Array(out)
            }
            None => live.clone(),
        },
        _ => live.clone(),
    }
}

/// Whether a projected live value and a desired value mean the same.
pub fn same(live: &Json, desired: &Json, field: &str) -> bool {
    match (live, desired) {
        (Json::String(a), Json::String(b)) => {
            a == b || (quantity_field(field) && quantity::equal(a, b))
        }
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Number(n), Json::String(s)) | (Json::String(s), Json::Number(n)) => {
            &n.to_string() == s || (quantity_field(field) && quantity::equal(&n.to_string(), s))
        }
        (Json::Object(l), Json::Object(d)) => {
            d.iter().all(|(k, dv)| match l.get(k) {
                Some(lv) => same(lv, dv, k),
                None => is_empty(dv),
            }) && l.iter().all(|(k, lv)| d.contains_key(k) || is_empty(lv))
        }
        (Json::Array(l), Json::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(a, b)| same(a, b, field))
        }
        (Json::Null, d) => is_empty(d),
        (l, Json::Null) => is_empty(l),
        (a, b) => a == b,
    }
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Fields whose string values are Kubernetes quantities.
fn quantity_field(field: &str) -> bool {
    matches!(
        field,
        "cpu" | "memory" | "storage" | "ephemeral-storage" | "pods"
    ) || field.starts_with("requests.")
        || field.starts_with("limits.")
        || field.starts_with("hugepages-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_and_status_are_not_drift() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
        ]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {
            "dnsPolicy": "ClusterFirst",
            "containers": [
                {"name": "istio-proxy", "image": "istio"},
                {"name": "web", "image": "x:1", "imagePullPolicy": "IfNotPresent",
                 "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}
            ]}}}, "status": {"replicas": 2}});
        let p = project(&live, &desired, None, "");
        assert!(same(&p, &desired, ""), "{p}");
    }

    #[test]
    fn a_changed_image_is_drift() {
        let desired = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x:2"}]}}}});
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x:1"}]}}}});
        assert!(!same(&project(&live, &desired, None, ""), &desired, ""));
    }

    #[test]
    fn a_field_keelson_set_before_and_removed_from_the_spec_is_drift() {
        let desired = json!({"metadata": {"labels": {"a": "1"}}});
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}});
        let mine = FieldTree::parse(&json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}}));
        let p = project(&live, &desired, Some(&mine), "");
        assert_eq!(
            p,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            "label c is someone else's"
        );
        assert!(!same(&p, &desired, ""));
    }

    #[test]
    fn ignore_pointers_are_removed() {
        let mut v = json!({"spec": {"replicas": 3, "a/b": 1}});
        remove_pointers(&mut v, &["/spec/replicas".into(), "/spec/a~1b".into()]);
        assert_eq!(v, json!({"spec": {}}));
    }
}
