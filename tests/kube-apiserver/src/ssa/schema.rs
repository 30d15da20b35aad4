//! The little schema knowledge server-side apply needs: which lists merge by which keys,
//! which fields are atomic, and which maps are granular string maps.
//!
//! The names path is the chain of field names from the object root, list items skipped,
//! e.g. `["spec", "template", "spec", "containers", "ports"]`.

use serde_json::Value;

/// Merge keys of the list at `names`, or `None` when the list is atomic.
pub fn list_keys(names: &[String]) -> Option<&'static [&'static str]> {
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
    matches!(
        names.last().map(String::as_str),
        Some(
            "selector"
                | "podSelector"
                | "namespaceSelector"
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
pub fn item_key(item: &Value, keys: &[&str]) -> Option<Vec<(String, Value)>> {
    let obj = item.as_object()?;
    let mut out = Vec::new();
    let mut any = false;
    for k in keys {
        match obj.get(*k) {
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
