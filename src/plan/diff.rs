//! Diff text of one object change: a unified diff of YAML, with Secret
//! values masked so that plans can be posted to merge requests safely.

use serde_json::{Value as Json, json};
use similar::TextDiff;

use super::ObjectId;
use crate::render::emit;
use crate::render::objects::APPLIED_HASH_ANNOTATION;

/// Remove what the server adds (status, managedFields, resourceVersion…).
pub fn strip_server_fields(o: &Json) -> Json {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Json::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Json::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.remove("deployment.kubernetes.io/revision");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    o
}

/// Replace Secret values by markers: equal values read `***`, changed ones
/// `*** (changed)`, so a reviewer sees that a value changes but never what
/// it is.
pub fn mask_secrets(live: Option<&Json>, desired: Option<&Json>) -> (Option<Json>, Option<Json>) {
    let is_secret = |o: Option<&Json>| o.is_some_and(|o| o.get("kind") == Some(&json!("Secret")));
    if !is_secret(live) && !is_secret(desired) {
        return (live.cloned(), desired.cloned());
    }
    let mut l = live.cloned();
    let mut d = desired.cloned();
    for field in ["data", "stringData"] {
        let lm = l
            .as_ref()
            .and_then(|o| o.get(field))
            .and_then(Json::as_object)
            .cloned();
        let dm = d
            .as_ref()
            .and_then(|o| o.get(field))
            .and_then(Json::as_object)
            .cloned();
        if let Some(o) = l
            .as_mut()
            .and_then(|o| o.get_mut(field))
            .and_then(Json::as_object_mut)
        {
            for (k, v) in o.iter_mut() {
                let changed = dm.as_ref().and_then(|m| m.get(k)).is_some_and(|dv| dv != v);
                *v = json!(if changed { "*** (old value)" } else { "***" });
            }
        }
        if let Some(o) = d
            .as_mut()
            .and_then(|o| o.get_mut(field))
            .and_then(Json::as_object_mut)
        {
            for (k, v) in o.iter_mut() {
                let changed = lm.as_ref().and_then(|m| m.get(k)).is_some_and(|lv| lv != v);
                *v = json!(if changed { "*** (new value)" } else { "***" });
            }
        }
    }
    (l, d)
}

/// `o` as a diff shows it: server fields stripped, and without keelson's
/// applied-hash annotation, which changes with every change and says nothing
/// a reviewer needs.
pub fn for_display(o: &Json) -> Json {
    let mut o = strip_server_fields(o);
    drop_hash(&mut o);
    o
}

/// Remove keelson's applied-hash annotation (and an annotations map it
/// leaves empty): bookkeeping, not a field a reviewer compares.
pub fn drop_hash(o: &mut Json) {
    if let Some(meta) = o.get_mut("metadata").and_then(Json::as_object_mut)
        && let Some(a) = meta.get_mut("annotations").and_then(Json::as_object_mut)
        && a.remove(APPLIED_HASH_ANNOTATION).is_some()
        && a.is_empty()
    {
        meta.remove("annotations");
    }
}

/// Put the keys of `after` in the order `before` has them (keys only
/// `after` has come last), so that a diff shows changed values, not the
/// server's key order.
pub fn align_order(after: &mut Json, before: &Json) {
    match (after, before) {
        (Json::Object(a), Json::Object(b)) => {
            let mut out = serde_json::Map::with_capacity(a.len());
            for k in b.keys() {
                if let Some(v) = a.remove(k) {
                    out.insert(k.clone(), v);
                }
            }
            out.append(a);
            for (k, v) in out.iter_mut() {
                if let Some(bv) = b.get(k) {
                    align_order(v, bv);
                }
            }
            *a = out;
        }
        (Json::Array(a), Json::Array(b)) => {
            for (x, y) in a.iter_mut().zip(b) {
                align_order(x, y);
            }
        }
        _ => {}
    }
}

/// A unified diff from `live` to `desired` (either may be absent).
pub fn unified(id: &ObjectId, live: Option<&Json>, desired: Option<&Json>) -> String {
    let (mut live, mut desired) = mask_secrets(live, desired);
    for o in live.iter_mut().chain(desired.iter_mut()) {
        drop_hash(o);
    }
    let a = live.map(|o| emit::to_yaml(&o)).unwrap_or_default();
    let b = desired.map(|o| emit::to_yaml(&o)).unwrap_or_default();
    let name = id.to_string();
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("desired/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_appear_in_diffs() {
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: "n".into(),
            name: "db".into(),
        };
        let live =
            json!({"kind": "Secret", "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}});
        let desired =
            json!({"kind": "Secret", "data": {"password": "c2VjcmV0", "user": "YWRtaW4="}});
        let d = unified(&id, Some(&live), Some(&desired));
        assert!(
            !d.contains("aHVudGVyMg==") && !d.contains("c2VjcmV0") && !d.contains("YWRtaW4="),
            "{d}"
        );
        assert!(d.contains("-  password: \"*** (old value)\""), "{d}");
        assert!(d.contains("+  password: \"*** (new value)\""), "{d}");
        let created = unified(&id, None, Some(&desired));
        assert!(!created.contains("c2VjcmV0"), "{created}");
    }

    #[test]
    fn server_key_order_is_not_a_change() {
        let before = json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "1"}});
        let mut after =
            json!({"data": {"x": "2"}, "metadata": {"labels": {"a": "1"}, "name": "c"}});
        align_order(&mut after, &before);
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: String::new(),
            name: "c".into(),
        };
        let d = unified(&id, Some(&before), Some(&after));
        assert_eq!(
            d.lines().filter(|l| l.starts_with(['+', '-'])).count(),
            4,
            "{d}"
        );
    }

    #[test]
    fn diff_shows_the_changed_line() {
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "n".into(),
            name: "c".into(),
        };
        let d = unified(
            &id,
            Some(&json!({"data": {"a": "1"}})),
            Some(&json!({"data": {"a": "2"}})),
        );
        assert!(d.contains("-  a: \"1\"\n+  a: \"2\"\n"), "{d}");
        assert!(
            d.starts_with("--- live/ConfigMap/n/c\n+++ desired/ConfigMap/n/c\n"),
            "{d}"
        );
    }
}
