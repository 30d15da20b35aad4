//! The little schema knowledge server-side apply needs: which lists merge by which keys,
//! which fields are atomic, and which maps are granular string maps.
//!
//! The names path is the chain of field names from the object root, list items skipped,
//! e.g. `["spec", "template", "spec", "containers", "ports"]`.

use std::cell::RefCell;

use serde_json::Value;

thread_local! {
    /// The openAPIV3Schema of the custom resource being written, if any. Writes run synchronously
    /// under the store lock on one thread, so a thread-local scopes it to exactly one operation.
    static CUSTOM_SCHEMA: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// Run `f` with the list and map types of a CRD's `openAPIV3Schema` in force instead of the
/// built-in table (`None`: built-in kinds).
pub fn with_custom_schema<T>(schema: Option<Value>, f: impl FnOnce() -> T) -> T {
    CUSTOM_SCHEMA.with(|s| *s.borrow_mut() = schema);
    let out = f();
    CUSTOM_SCHEMA.with(|s| *s.borrow_mut() = None);
    out
}

/// The custom resource schema in force, if any.
pub fn custom_schema() -> Option<Value> {
    CUSTOM_SCHEMA.with(|s| s.borrow().clone())
}

/// The schema node at `names` (list items are stepped through), when a custom schema is in force:
/// `Some(None)` means "custom resource, but the path is not in its schema".
fn custom_node(names: &[String]) -> Option<Option<Value>> {
    CUSTOM_SCHEMA.with(|s| {
        let s = s.borrow();
        let root = s.as_ref()?;
        let mut node = root;
        for (i, n) in names.iter().enumerate() {
            if i > 0 && node["type"] == "array" {
                node = &node["items"];
            }
            node = &node["properties"][n.as_str()];
            if node.is_null() {
                return Some(None);
            }
        }
        Some(Some(node.clone()))
    })
}

/// Merge keys of the list at `names`, or `None` when the list is atomic.
pub fn list_keys(names: &[String]) -> Option<Vec<String>> {
    if let Some(node) = custom_node(names) {
        let node = node?;
        if node["x-kubernetes-list-type"] != "map" {
            return None;
        }
        let keys: Vec<String> = node["x-kubernetes-list-map-keys"]
            .as_array()?
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        return (!keys.is_empty()).then_some(keys);
    }
    builtin_list_keys(names).map(|ks| ks.iter().map(|k| k.to_string()).collect())
}

fn builtin_list_keys(names: &[String]) -> Option<&'static [&'static str]> {
    let last = names.last()?.as_str();
    let parent = names.len().checked_sub(2).map(|i| names[i].as_str());
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => Some(&["name"]),
        "env"
            if matches!(
                parent,
                Some("containers" | "initContainers" | "ephemeralContainers")
            ) =>
        {
            Some(&["name"])
        }
        "ports"
            if matches!(
                parent,
                Some("containers" | "initContainers" | "ephemeralContainers")
            ) =>
        {
            Some(&["containerPort", "protocol"])
        }
        "ports" if names.len() == 2 && names[0] == "spec" => Some(&["port", "protocol"]),
        "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" => Some(&["name"]),
        "webhooks" if names.len() == 1 => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "hostAliases" => Some(&["ip"]),
        "topologySpreadConstraints" => Some(&["topologyKey", "whenUnsatisfiable"]),
        "conditions" => Some(&["type"]),
        "ownerReferences" => Some(&["uid"]),
        _ => None,
    }
}

/// Key fields that the server defaults when absent, so `k:` elements always carry them.
pub fn key_default(key: &str) -> Option<Value> {
    match key {
        "protocol" => Some(Value::String("TCP".into())),
        _ => None,
    }
}

/// Whether the map at `names` is replaced as a whole (structType/mapType atomic).
pub fn is_atomic_map(names: &[String]) -> bool {
    if let Some(node) = custom_node(names) {
        return node.is_some_and(|n| n["x-kubernetes-map-type"] == "atomic");
    }
    matches!(
        names.last().map(String::as_str),
        Some(
            "selector"
                | "podSelector"
                | "namespaceSelector"
                | "objectSelector"
                | "labelSelector"
                | "nodeSelectorTerms"
        )
    )
}

/// Whether the map at `names` is a free-form string map (labels, data): when an update creates one,
/// the API server records the map itself as owned (`".": {}`) as well as its entries.
pub fn is_granular_map(names: &[String]) -> bool {
    matches!(
        names.last().map(String::as_str),
        Some(
            "labels"
                | "annotations"
                | "data"
                | "binaryData"
                | "stringData"
                | "nodeSelector"
                | "matchLabels"
        )
    )
}

/// The `k:` key values of a list item, or `None` if the item lacks a key field.
pub fn item_key(item: &Value, keys: &[String]) -> Option<Vec<(String, Value)>> {
    let obj = item.as_object()?;
    let mut out = Vec::new();
    let mut any = false;
    for k in keys {
        match obj.get(k.as_str()) {
            Some(v) if !v.is_null() => {
                any = true;
                out.push((k.to_string(), v.clone()));
            }
            _ => {
                if let Some(d) = key_default(k) {
                    out.push((k.to_string(), d));
                }
            }
        }
    }
    any.then_some(out)
}
