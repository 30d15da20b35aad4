//! The stored form of an object: what a GET returns after a client wrote something else.
//!
//! A real API server decodes a built-in object into its Go type, stores it in etcd as protobuf
//! and encodes it back to JSON. Clients see the traces of that round trip:
//! - quantities in canonical form (`resource.Quantity.String()`: `0.5` → `500m`);
//! - empty or null slices and maps gone (`omitempty`; protobuf keeps no empty collection), or
//!   `null` where the Go field has no `omitempty` (ClusterRole `rules`, EndpointSlice `endpoints`);
//! - `""`, `false` and `0` gone from `omitempty` scalars that are not pointers (env `value: ""`,
//!   volumeMount `readOnly: false`), so the defaulting that follows treats them as unset;
//! - value-typed structs always written: a pod template's `metadata: {creationTimestamp: null}`,
//!   a container's `resources: {}`, a Service's `status: {loadBalancer: {}}`, a StatefulSet's
//!   `status: {replicas: 0, availableReplicas: 0}`.
//!
//! Custom resources are stored as JSON; only nulls their schema does not allow are dropped
//! (apiextensions-apiserver `PruneNonNullableNullsWithoutDefaults`).

use serde_json::{Map, Value, json};

use crate::quantity::{canonicalize, canonicalize_resource};
use crate::registry::ResourceType;
use crate::status::ApiError;

/// Whether the field at `names` (field names from the root, list items skipped) holds a
/// `resource.Quantity` (k8s.io/api types): `Some(true)` for a ResourceList value, `Some(false)`
/// for a single quantity (`divisor`, `sizeLimit`, HPA targets).
fn quantity_kind(kind: &str, names: &[&str]) -> Option<bool> {
    match names {
        [.., "resourceFieldRef", "divisor"] => Some(false),
        [.., "emptyDir", "sizeLimit"] => Some(false),
        [.., "target" | "current", "value" | "averageValue"] => {
            (kind == "HorizontalPodAutoscaler").then_some(false)
        }
        _ => is_resource_list_value(kind, names).then_some(true),
    }
}

fn is_resource_list_value(kind: &str, names: &[&str]) -> bool {
    match names {
        [.., "resources", "requests" | "limits", _] => true,
        [.., "overhead", _] | [.., "overhead", "podFixed", _] => true,
        [
            "spec",
            "limits",
            "max" | "min" | "default" | "defaultRequest" | "maxLimitRequestRatio",
            _,
        ] => kind == "LimitRange",
        ["spec" | "status", "hard" | "used", _] => kind == "ResourceQuota",
        ["status", "capacity", _] => matches!(kind, "PersistentVolumeClaim" | "Node"),
        ["status", "allocatedResources", _] => kind == "PersistentVolumeClaim",
        ["spec", "capacity", _] => kind == "PersistentVolume",
        ["status", "allocatable", _] => kind == "Node",
        _ => false,
    }
}

/// Go maps (`map[string]…`, all `omitempty`): dropped when empty. Other objects are structs,
/// which Go writes even when empty (`emptyDir: {}`, `securityContext: {}`).
pub(crate) fn is_map(kind: &str, names: &[&str]) -> bool {
    match names {
        ["spec", "selector"] => matches!(kind, "Service" | "ReplicationController"),
        ["parameters"] => kind == "StorageClass",
        [
            "spec",
            "limits",
            "max" | "min" | "default" | "defaultRequest" | "maxLimitRequestRatio",
        ] => kind == "LimitRange",
        ["data"] => matches!(kind, "ConfigMap" | "Secret"),
        [.., last] => matches!(
            *last,
            "labels"
                | "annotations"
                | "binaryData"
                | "stringData"
                | "nodeSelector"
                | "matchLabels"
                | "requests"
                | "limits"
                | "capacity"
                | "allocatable"
                | "hard"
                | "used"
                | "overhead"
                | "podFixed"
                | "volumeAttributes"
                | "allocatedResources"
                | "allocatedResourceStatuses"
        ),
        [] => false,
    }
}

/// Slices without `omitempty`: written as `null` when empty (Go's nil slice after protobuf).
fn is_null_list(kind: &str, names: &[&str]) -> bool {
    match names {
        ["rules"] => matches!(kind, "ClusterRole" | "Role"),
        ["rules", "verbs"] => matches!(kind, "ClusterRole" | "Role"),
        ["endpoints"] => kind == "EndpointSlice",
        [.., "http", "paths"] => kind == "Ingress",
        [.., "nodeSelectorTerms"] => true,
        _ => false,
    }
}

/// Subtrees that are not Go structs: managed field sets, CRD schemas (JSON Schema, where `{}` and
/// `[]` mean something), raw extensions.
fn is_opaque(kind: &str, names: &[&str]) -> bool {
    match names {
        ["metadata", "managedFields"] => true,
        ["spec", "versions", "schema"] => kind == "CustomResourceDefinition",
        ["data"] => kind == "ControllerRevision",
        _ => false,
    }
}

/// `omitempty` scalars that are not pointers: their zero value (`""`, `false`, `0`) decodes as
/// "unset", so it is dropped (and then defaulted like an absent field). Pointers such as
/// `storageClassName`, `replicas` or `optional` keep their zero value.
fn is_omitempty_scalar(kind: &str, names: &[&str]) -> bool {
    let pod_spec = |prefix: &[&str]| match prefix {
        ["spec"] => kind == "Pod",
        ["template", "spec"] => kind == "PodTemplate",
        [.., "template", "spec"] => true,
        _ => false,
    };
    match names {
        [.., "env", "value"] => true,
        [.., "volumeMounts", "readOnly" | "subPath" | "subPathExpr"] => true,
        [.., "persistentVolumeClaim", "readOnly"] => true,
        [
            ..,
            "containers" | "initContainers",
            "ports",
            "hostPort" | "hostIP" | "name",
        ] => true,
        [
            ..,
            "containers" | "initContainers" | "ephemeralContainers",
            "workingDir"
            | "stdin"
            | "stdinOnce"
            | "tty"
            | "image"
            | "imagePullPolicy"
            | "terminationMessagePath"
            | "terminationMessagePolicy",
        ] => true,
        [
            ..,
            "livenessProbe" | "readinessProbe" | "startupProbe",
            "initialDelaySeconds"
            | "timeoutSeconds"
            | "periodSeconds"
            | "successThreshold"
            | "failureThreshold",
        ] => true,
        [.., "httpGet", "path" | "scheme" | "host"] => true,
        ["spec", "ports", "name" | "nodePort"] => kind == "Service",
        [
            "spec",
            "clusterIP"
            | "type"
            | "externalName"
            | "loadBalancerIP"
            | "sessionAffinity"
            | "externalTrafficPolicy"
            | "publishNotReadyAddresses"
            | "healthCheckNodePort",
        ] => kind == "Service",
        ["spec", "paused"] => kind == "Deployment",
        ["spec", "minReadySeconds"] => matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet"),
        ["type"] => kind == "Secret",
        [
            prefix @ ..,
            "hostNetwork" | "hostPID" | "hostIPC" | "serviceAccountName" | "serviceAccount"
            | "nodeName" | "hostname" | "subdomain" | "priorityClassName" | "schedulerName"
            | "restartPolicy" | "dnsPolicy",
        ] => pod_spec(prefix),
        _ => false,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Drop the zero values of `omitempty` scalars, as decoding into the Go type does; run before
/// defaulting, which then fills them in like absent fields.
pub fn drop_unset_scalars(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        return;
    }
    fn walk(kind: &str, v: &mut Value, names: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                m.retain(|k, child| {
                    names.push(k.clone());
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    let drop = is_zero(child) && is_omitempty_scalar(kind, &refs);
                    let opaque = is_opaque(kind, &refs);
                    if !drop && !opaque {
                        walk(kind, child, names);
                    }
                    names.pop();
                    !drop
                });
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(kind, i, names)),
            _ => {}
        }
    }
    walk(&rt.kind, obj, &mut Vec::new());
}

/// Bring `obj` (already defaulted) to the form the real server stores and returns.
///
/// Errors: a malformed quantity is the decode error the real server answers (HTTP 400,
/// `<Kind> in version "<v>" cannot be handled as a <Kind>: quantities must match …`).
pub fn stored_form(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    if rt.custom {
        if let Some(schema) = crate::ssa::schema::custom_schema() {
            prune_nulls(obj, &schema);
        }
        return Ok(());
    }
    let kind = rt.kind.as_str();
    let mut names = Vec::new();
    normalize(kind, obj, &mut names).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            v = rt.version
        ))
    })?;
    artefacts(kind, obj);
    Ok(())
}

/// Canonical quantities; empty and null collections dropped (or `null` where Go has no omitempty).
fn normalize(
    kind: &str,
    v: &mut Value,
    names: &mut Vec<String>,
) -> Result<(), crate::quantity::QuantityError> {
    match v {
        Value::Object(m) => {
            let mut drop = Vec::new();
            for (k, child) in m.iter_mut() {
                names.push(k.clone());
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                if is_opaque(kind, &refs) {
                    names.pop();
                    continue;
                }
                let scalar = match child {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                if let Some((text, list)) = scalar.zip(quantity_kind(kind, &refs)) {
                    *child = Value::String(if list {
                        canonicalize_resource(&text)?
                    } else {
                        canonicalize(&text)?
                    });
                } else {
                    normalize(kind, child, names)?;
                }
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let empty_list = child.as_array().is_some_and(Vec::is_empty);
                if is_null_list(kind, &refs) {
                    if empty_list {
                        *child = Value::Null;
                    }
                } else if child.is_null()
                    || empty_list
                    || (is_map(kind, &refs) && child.as_object().is_some_and(Map::is_empty))
                {
                    drop.push(k.clone());
                }
                names.pop();
            }
            for k in drop {
                m.remove(&k);
            }
        }
        Value::Array(items) => {
            for item in items {
                normalize(kind, item, names)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value at `path` when it is an object.
fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    path.iter()
        .try_fold(v, |cur, k| cur.get_mut(*k))?
        .as_object_mut()
}

/// A pod template's `metadata: {creationTimestamp: null}` and its containers' `resources: {}`.
fn template_artefacts(template: &mut Map<String, Value>) {
    let meta = template.entry("metadata").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(spec) = template.get_mut("spec") {
        pod_spec_artefacts(spec);
    }
}

fn pod_spec_artefacts(spec: &mut Value) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
}

/// Value-typed structs Go always writes (see the module comment).
fn artefacts(kind: &str, obj: &mut Value) {
    let templates: &[&[&str]] = match kind {
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &[&["spec", "template"]],
        "CronJob" => &[
            &["spec", "jobTemplate"],
            &["spec", "jobTemplate", "spec", "template"],
        ],
        "PodTemplate" => &[&["template"]],
        _ => &[],
    };
    for path in templates {
        if let Some(t) = object_at(obj, path) {
            template_artefacts(t);
        }
    }
    if kind == "Pod"
        && let Some(spec) = obj.get_mut("spec")
    {
        pod_spec_artefacts(spec);
    }
    if kind == "StatefulSet"
        && let Some(vcts) = obj
            .pointer_mut("/spec/volumeClaimTemplates")
            .and_then(Value::as_array_mut)
    {
        for t in vcts.iter_mut().filter_map(Value::as_object_mut) {
            let meta = t.entry("metadata").or_insert_with(|| json!({}));
            if let Some(m) = meta.as_object_mut() {
                m.entry("creationTimestamp").or_insert(Value::Null);
            }
            if let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
    // Status structs with fields that have no omitempty; set when the object has no status yet.
    let status = match kind {
        "Deployment" | "Job" | "CronJob" => Some(json!({})),
        "ReplicaSet" | "ReplicationController" => Some(json!({"replicas": 0})),
        "StatefulSet" => Some(json!({"replicas": 0, "availableReplicas": 0})),
        "DaemonSet" => Some(json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0})),
        "HorizontalPodAutoscaler" => Some(json!({"desiredReplicas": 0})),
        "PodDisruptionBudget" => Some(json!({"disruptionsAllowed": 0, "currentHealthy": 0,
            "desiredHealthy": 0, "expectedPods": 0})),
        "Service" | "Ingress" => Some(json!({"loadBalancer": {}})),
        _ => None,
    };
    if let (Some(s), Some(m)) = (status, obj.as_object_mut()) {
        let st = m.entry("status").or_insert_with(|| json!({}));
        if let (Some(have), Some(want)) = (st.as_object_mut(), s.as_object()) {
            for (k, v) in want {
                have.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if matches!(kind, "ClusterRole" | "Role")
        && let Some(m) = obj.as_object_mut()
    {
        m.entry("rules").or_insert(Value::Null);
    }
    if kind == "EndpointSlice"
        && let Some(m) = obj.as_object_mut()
    {
        m.entry("endpoints").or_insert(Value::Null);
    }
}

/// Drop nulls the structural schema does not declare `nullable` (custom resources).
fn prune_nulls(v: &mut Value, schema: &Value) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema["properties"].is_null() {
        return;
    }
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let extra = &schema["additionalProperties"];
            m.retain(|k, child| {
                let s = props.and_then(|p| p.get(k)).unwrap_or(extra);
                if child.is_null() {
                    return s["nullable"] == true || ["apiVersion", "kind"].contains(&k.as_str());
                }
                if k != "metadata" {
                    prune_nulls(child, s);
                }
                true
            });
        }
        Value::Array(items) => {
            for item in items {
                prune_nulls(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn stored(group: &str, resource: &str, mut obj: Value) -> Value {
        let reg = Registry::default();
        let rt = reg.lookup(group, "v1", resource).unwrap();
        drop_unset_scalars(rt, &mut obj);
        stored_form(rt, &mut obj).unwrap();
        obj
    }

    #[test]
    fn deployment_round_trip_artefacts() {
        let d = stored(
            "apps",
            "deployments",
            json!({"metadata": {"name": "web", "annotations": {}}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "args": [], "env": [{"name": "E", "value": ""}],
             "resources": {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {}},
             "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": false}]}],
            "volumes": [{"name": "v", "emptyDir": {}}]}}}}),
        );
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "500m", "memory": "1Gi"}})
        );
        assert!(c.get("args").is_none());
        assert_eq!(c["env"], json!([{"name": "E"}]));
        assert_eq!(c["volumeMounts"], json!([{"name": "v", "mountPath": "/v"}]));
        assert_eq!(
            d["spec"]["template"]["spec"]["volumes"][0]["emptyDir"],
            json!({})
        );
        assert_eq!(
            d["spec"]["template"]["metadata"],
            json!({"creationTimestamp": null})
        );
        assert!(d["metadata"].get("annotations").is_none());
        assert_eq!(d["status"], json!({}));
    }

    #[test]
    fn null_lists_and_malformed_quantities() {
        let reg = Registry::default();
        let cr = reg
            .lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
            .unwrap();
        let mut obj = json!({"metadata": {"name": "x"}, "rules": []});
        stored_form(cr, &mut obj).unwrap();
        assert_eq!(obj["rules"], Value::Null);
        assert!(obj.as_object().unwrap().contains_key("rules"));

        let pvc = reg.lookup("", "v1", "persistentvolumeclaims").unwrap();
        let mut obj = json!({"metadata": {"name": "x"}, "spec": {"resources": {"requests": {"storage": "1Gb"}}}});
        let err = stored_form(pvc, &mut obj).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "PersistentVolumeClaim in version \"v1\" cannot be handled as a PersistentVolumeClaim: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }
}
