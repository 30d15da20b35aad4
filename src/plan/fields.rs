//! Server-side apply field sets (`metadata.managedFields[].fieldsV1`) and the
//! list merge keys they are written with.
//!
//! Keelson reads them to answer two questions a plain diff cannot: "did
//! keelson set this field before?" (so a field removed from the spec is a
//! change) and "does another controller own this field?" (so an HPA's
//! replicas are left alone).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

/// Managers whose changes are manual edits (drift to revert), not a
/// controller's legitimate ownership.
pub const MANUAL_MANAGERS: &[&str] = &["kubectl", "before-first-apply"];

/// Whether changes by `manager` count as drift.
pub fn is_manual(manager: &str) -> bool {
    MANUAL_MANAGERS
        .iter()
        .any(|m| manager == *m || manager.starts_with(&format!("{m}-")))
}

/// A tree of owned field paths, keyed as in fieldsV1 (`f:name`, `k:{…}`, `v:…`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTree {
    children: BTreeMap<String, FieldTree>,
}

impl FieldTree {
    /// Parse a fieldsV1 object. `k:` keys are re-serialised canonically so
    /// lookups do not depend on the server's key order.
    pub fn parse(v: &Json) -> FieldTree {
        let mut t = FieldTree::default();
        if let Json::Object(m) = v {
            for (k, child) in m {
                if k == "." {
                    continue;
                }
                let key = match k.strip_prefix("k:") {
                    Some(json) => match serde_json::from_str::<Json>(json) {
                        Ok(j) => format!("k:{}", canonical(&j)),
                        Err(_) => k.clone(),
                    },
                    None => k.clone(),
                };
                t.children.insert(key, FieldTree::parse(child));
            }
        }
        t
    }

    /// Merge another tree into this one.
    pub fn merge(&mut self, other: &FieldTree) {
        for (k, v) in &other.children {
            self.children.entry(k.clone()).or_default().merge(v);
        }
    }

    /// The subtree at `key`, if owned.
    pub fn child(&self, key: &str) -> Option<&FieldTree> {
        self.children.get(key)
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

/// The field sets of an object's managers: keelson's, and the union of the
/// other non-manual managers'.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Fields keelson applied, if it ever did.
    pub keelson: Option<FieldTree>,
    /// Fields owned by other controllers (not manual edits).
    pub others: FieldTree,
}

impl Owners {
    /// Read `metadata.managedFields` of a live object.
    pub fn of(live: &Json, manager: &str) -> Owners {
        let mut o = Owners::default();
        let Some(entries) = live
            .pointer("/metadata/managedFields")
            .and_then(Json::as_array)
        else {
            return o;
        };
        for e in entries {
            let name = e.get("manager").and_then(Json::as_str).unwrap_or_default();
            if e.get("subresource")
                .and_then(Json::as_str)
                .is_some_and(|s| s == "status")
            {
                continue;
            }
            let tree = FieldTree::parse(e.get("fieldsV1").unwrap_or(&Json::Null));
            if name == manager {
                o.keelson
                    .get_or_insert_with(FieldTree::default)
                    .merge(&tree);
            } else if !is_manual(name) {
                o.others.merge(&tree);
            }
        }
        o
    }
}

/// JSON with sorted keys, compact: the form `k:` keys are compared in.
pub fn canonical(v: &Json) -> String {
    fn sort(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let sorted: BTreeMap<&String, Json> = m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Json::Object(out)
            }
            Json::Array(a) => Json::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap_or_default()
}

/// The merge key fields of a list, by its field name and items; `None` for
/// atomic lists (owned and compared as a whole).
pub fn merge_keys(list_field: &str, items: &[Json]) -> Option<&'static [&'static str]> {
    match list_field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            Some(&["containerPort", "protocol"])
        }
        "ports" => Some(&["port", "protocol"]),
        _ => None,
    }
}

/// The fieldsV1 key of a list item under `keys`.
pub fn item_key(item: &Json, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                m.insert((*k).to_string(), v.clone());
            }
            None if *k == "protocol" => {
                m.insert("protocol".into(), Json::String("TCP".into()));
            }
            None => {}
        }
    }
    format!("k:{}", canonical(&Json::Object(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_field_sets_with_canonical_keys() {
        let t = FieldTree::parse(&json!({
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}
            }}}}
        }));
        let c = t
            .child("f:spec")
            .unwrap()
            .child("f:template")
            .unwrap()
            .child("f:spec")
            .unwrap()
            .child("f:containers")
            .unwrap();
        assert!(
            c.child(&item_key(&json!({"name": "web", "image": "x"}), &["name"]))
                .is_some()
        );
        assert!(
            c.child(&item_key(&json!({"name": "db"}), &["name"]))
                .is_none()
        );
    }

    #[test]
    fn port_keys_default_the_protocol_and_sort_fields() {
        assert_eq!(
            item_key(
                &json!({"protocol": "TCP", "containerPort": 80}),
                &["containerPort", "protocol"]
            ),
            item_key(
                &json!({"containerPort": 80}),
                &["containerPort", "protocol"]
            )
        );
        assert_eq!(
            item_key(
                &json!({"containerPort": 80}),
                &["containerPort", "protocol"]
            ),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
    }

    #[test]
    fn owners_split_keelson_controllers_and_manual_edits() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "keelson", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
            {"manager": "hpa-controller", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}},
        ]}});
        let o = Owners::of(&live, "keelson");
        assert!(
            o.keelson
                .unwrap()
                .child("f:spec")
                .unwrap()
                .child("f:template")
                .is_some()
        );
        assert!(
            o.others
                .child("f:spec")
                .unwrap()
                .child("f:replicas")
                .is_some()
        );
        assert!(
            o.others
                .child("f:spec")
                .unwrap()
                .child("f:paused")
                .is_none()
        );
    }
}
