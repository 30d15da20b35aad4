//! A minimal but valid OpenAPI v3 surface. kubectl reads it to learn that PATCH accepts
//! `fieldValidation` and `dryRun` (its query-parameter verifier) before `apply` and `diff`.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_key(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

fn hash(reg: &Registry, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in reg.all().iter().filter(|t| gv_key(t) == key) {
        for b in t.resource.bytes().chain(t.kind.bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: one entry per group version.
pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for t in reg.all() {
        let key = gv_key(t);
        if !paths.contains_key(&key) {
            let url = format!("/openapi/v3/{key}?hash={}", hash(reg, &key));
            paths.insert(key, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

fn schema_name(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core".to_string()
    } else {
        t.group.split('.').next().unwrap_or_default().to_string()
    };
    format!("io.k8s.api.{group}.{}.{}", t.version, t.kind)
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "description": name, "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/<api|apis/group>/<version>`.
pub fn group_version(reg: &Registry, key: &str) -> Option<Value> {
    let types: Vec<&ResourceType> = reg.all().iter().filter(|t| gv_key(t) == key).collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let sname = schema_name(t);
        let body_ref = json!({"schema": {"$ref": format!("#/components/schemas/{sname}")}});
        let item_path = if t.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}/{{name}}",
                t.gv_path(),
                t.resource
            )
        } else {
            format!("{}/{}/{{name}}", t.gv_path(), t.resource)
        };
        let op = |action: &str, params: Vec<Value>| {
            json!({
                "operationId": format!("{action}{}", t.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK", "content": {"application/json": body_ref}}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let mut patch = op(
            "patch",
            ["dryRun", "fieldManager", "fieldValidation", "force"]
                .map(param)
                .to_vec(),
        );
        patch["requestBody"] = json!({"content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
        }, "required": true});
        let put = op(
            "put",
            ["dryRun", "fieldManager", "fieldValidation"]
                .map(param)
                .to_vec(),
        );
        paths.insert(item_path, json!({
            "get": op("get", vec![]),
            "put": put,
            "patch": patch,
            "delete": op("delete", ["dryRun", "gracePeriodSeconds", "propagationPolicy"].map(param).to_vec()),
            "parameters": [
                {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}},
            ],
        }));
        let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        schemas.insert(
            sname,
            json!({
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": open,
                    "spec": open,
                    "status": open,
                },
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
