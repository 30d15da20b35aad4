//! Duplicate keys in keyed lists. Server-side apply merges lists such as
//! `containers`, `env` and `ports` item by item, by key; building the typed
//! patch of an object whose list holds two items with one key fails with
//! HTTP 500 (`duplicate entries for key [name="LOG_LEVEL"]`), however often
//! it is retried. The keys are the `x-kubernetes-list-map-keys` of the
//! Kubernetes OpenAPI schema (`+listType=map`, `+listMapKey=` in the Go
//! types), or of a CRD's schema.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::{ErrorType, Errors, FieldError};

/// Where the list keys come from.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    /// Built-in kinds: the table below.
    Builtin,
    /// A custom resource: its CRD's `openAPIV3Schema`.
    Schema(&'a Json),
}

/// The keys of the built-in list at `names` (field names from the root,
/// list items skipped), from the Kubernetes 1.33 OpenAPI schema.
fn builtin_keys(names: &[&str]) -> Option<&'static [&'static str]> {
    let last = *names.last()?;
    let parent = names.len().checked_sub(2).map(|i| names[i]);
    let in_container = matches!(
        parent,
        Some("containers" | "initContainers" | "ephemeralContainers")
    );
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => Some(&["name"]),
        "env" if in_container => Some(&["name"]),
        "ports" if in_container => Some(&["containerPort", "protocol"]),
        "ports" if names == ["spec", "ports"] => Some(&["port", "protocol"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "resizePolicy" if in_container => Some(&["resourceName"]),
        "claims" if parent == Some("resources") => Some(&["name"]),
        "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates" => Some(&["name"]),
        "hostAliases" => Some(&["ip"]),
        "topologySpreadConstraints" => Some(&["topologyKey", "whenUnsatisfiable"]),
        "ownerReferences" => Some(&["uid"]),
        _ => None,
    }
}

/// The value a key field takes when the item leaves it out (the server
/// defaults it before merging).
fn key_default(key: &str) -> Option<Json> {
    (key == "protocol").then(|| Json::String("TCP".into()))
}

/// Append `key` to a JSON pointer as RFC 6901 escapes it (`~` as `~0`,
/// `/` as `~1`), without allocating for the usual key that has neither.
fn push_token(pointer: &mut String, key: &str) {
    if !key.contains(['~', '/']) {
        pointer.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Record every item of a keyed list whose key an earlier item already has.
pub fn duplicates(obj: &Json, keys: Keys, errs: &mut Errors) {
    let mut names = Vec::new();
    let mut pointer = String::new();
    let schema = match keys {
        Keys::Builtin => None,
        Keys::Schema(s) => Some(s),
    };
    walk(obj, schema, &mut names, &mut pointer, errs);
}

fn walk<'a>(
    v: &'a Json,
    schema: Option<&Json>,
    names: &mut Vec<&'a str>,
    pointer: &mut String,
    errs: &mut Errors,
) {
    match v {
        Json::Object(m) => {
            for (k, child) in m {
                if !matches!(child, Json::Object(_) | Json::Array(_)) {
                    continue;
                }
                let sub = schema.map(|s| {
                    s.get("properties")
                        .and_then(|p| p.get(k))
                        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                        .unwrap_or(&Json::Null)
                });
                let len = pointer.len();
                pointer.push('/');
                push_token(pointer, k);
                names.push(k);
                walk(child, sub, names, pointer, errs);
                names.pop();
                pointer.truncate(len);
            }
        }
        Json::Array(items) => {
            let keys: Option<Vec<String>> = match schema {
                None => builtin_keys(names).map(|k| k.iter().map(|s| s.to_string()).collect()),
                Some(s)
                    if s.get("x-kubernetes-list-type").and_then(Json::as_str) == Some("map") =>
                {
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Json::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(String::from))
                                .collect()
                        })
                }
                Some(_) => None,
            };
            if let Some(keys) = keys.filter(|k| !k.is_empty()) {
                check_list(items, &keys, pointer, errs);
            }
            let item_schema = schema.map(|s| s.get("items").unwrap_or(&Json::Null));
            for (i, item) in items.iter().enumerate() {
                if !matches!(item, Json::Object(_) | Json::Array(_)) {
                    continue;
                }
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, item_schema, names, pointer, errs);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

fn check_list(items: &[Json], keys: &[String], pointer: &str, errs: &mut Errors) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            continue;
        };
        let mut key = serde_json::Map::new();
        for k in keys {
            match obj
                .get(k)
                .filter(|v| !v.is_null())
                .cloned()
                .or_else(|| key_default(k))
            {
                Some(v) => {
                    key.insert(k.clone(), v);
                }
                None => continue,
            }
        }
        if key.is_empty() {
            continue;
        }
        let text = Json::Object(key.clone()).to_string();
        if let Some(first) = seen.insert(text, i) {
            let described: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let list = super::path::dotted(pointer);
            // Point at the first key field; one key names the field, several
            // the item.
            let first_key = keys
                .iter()
                .find(|k| obj.contains_key(*k))
                .unwrap_or(&keys[0]);
            let at = format!("{pointer}/{i}/{first_key}");
            let (field, value) = if keys.len() == 1 {
                (String::new(), key[&keys[0]].to_string())
            } else {
                (
                    super::path::dotted(&format!("{pointer}/{i}")),
                    Json::Object(key).to_string(),
                )
            };
            errs.add(FieldError {
                pointer: at,
                field,
                kind: ErrorType::Duplicate,
                value: Some(value),
                detail: format!(
                    "{list}[{first}] has the same key; server-side apply refuses duplicate entries for key [{}]",
                    described.join(",")
                ),
                at_key: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_names_and_container_ports_are_keys() {
        let d = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "notifier",
            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "LOG_LEVEL", "value": "debug"}],
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "alt", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "UDP"}],
        }]}}}});
        let mut e = Errors::default();
        duplicates(&d, Keys::Builtin, &mut e);
        let got: Vec<String> = e.list.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(
            e.list[0].pointer,
            "/spec/template/spec/containers/0/env/1/name"
        );
        assert!(got[0].starts_with("spec.template.spec.containers[0].env[1].name: Duplicate value: \"LOG_LEVEL\": spec.template.spec.containers[0].env[0] has the same key"), "{}", got[0]);
        assert_eq!(
            e.list[1].pointer,
            "/spec/template/spec/containers/0/ports/1/containerPort"
        );
        assert!(
            got[1].starts_with("spec.template.spec.containers[0].ports[1]: Duplicate value"),
            "{}",
            got[1]
        );
        assert!(
            got[1].contains("containerPort=8080,protocol=\"TCP\""),
            "{}",
            got[1]
        );
    }

    #[test]
    fn crd_schemas_name_their_own_keys() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object"}}}}}});
        let obj = json!({"spec": {"listeners": [{"name": "a"}, {"name": "a"}]}});
        let mut e = Errors::default();
        duplicates(&obj, Keys::Schema(&schema), &mut e);
        assert_eq!(e.list.len(), 1);
        assert_eq!(e.list[0].pointer, "/spec/listeners/1/name");
    }
}
