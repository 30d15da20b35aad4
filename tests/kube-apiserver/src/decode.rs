//! Typed decoding of built-in objects: a value of the wrong JSON type is refused the way the real
//! server refuses it.
//!
//! - Ordinary writes (POST, PUT, patches) decode the body into the Go type with
//!   `sigs.k8s.io/json`, whose error reads like `encoding/json`'s: HTTP 400,
//!   `Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string
//!   into Go struct field DeploymentSpec.spec.replicas of type int32`.
//! - Server-side apply converts the configuration to a typed value first (structured-merge-diff
//!   `typed.AsTyped`): HTTP 500 without a reason, `failed to create typed patch object (…):
//!   .spec.replicas: expected numeric (int or float), got string`.
//!
//! The k8s-openapi type of the kind does the checking (via `serde_path_to_error` for the path);
//! this module words the result.

use serde_json::Value;

use crate::registry::ResourceType;

/// A type error found while decoding: the JSON path (`spec.template.spec.containers[0].env[0].value`),
/// what was found and what the field holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    /// Path segments: field names, and list indices as `[i]`.
    pub path: Vec<String>,
    /// The offending JSON value.
    pub found: Value,
    /// The serde expectation (`i32`, `a string`, `a sequence`, a k8s-openapi type name…).
    pub expected: String,
}

/// Drop `null`s: decoding leaves their Go fields at the zero value, which is what an absent
/// field gives too (and k8s-openapi would refuse a null where a value is required).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, c| !c.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The structured-merge-diff form of a path into `obj`: `.spec.containers[name="web"].image`,
/// keyed list items by their keys, other items by index.
pub fn smd_path(obj: &Value, path: &[String]) -> String {
    let mut out = String::new();
    let mut names: Vec<String> = Vec::new();
    let mut cur = Some(obj);
    for seg in path {
        match seg.strip_prefix('[') {
            Some(i) => {
                let idx: usize = i.trim_end_matches(']').parse().unwrap_or(0);
                let item = cur.and_then(|c| c.get(idx));
                let keyed = crate::ssa::schema::list_keys(&names)
                    .zip(item)
                    .and_then(|(keys, item)| crate::ssa::schema::item_key(item, &keys));
                match keyed {
                    Some(k) => out.push_str(&crate::ssa::fieldset::display_path(&[
                        crate::ssa::fieldset::key_pe(&k),
                    ])),
                    None => out.push_str(seg),
                }
                cur = item;
            }
            None => {
                out.push('.');
                out.push_str(seg);
                names.push(seg.clone());
                cur = cur.and_then(|c| c.get(seg.as_str()));
            }
        }
    }
    out
}

/// The first type error in `obj` for its built-in kind, if any (custom resources: none).
pub fn type_error(rt: &ResourceType, obj: &Value) -> Option<TypeError> {
    let (path, msg) = crate::typed::decode_error(rt, obj)?;
    let segments: Vec<String> = path
        .iter()
        .map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => format!("[{index}]"),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => "?".into(),
        })
        .collect();
    let found = lookup(obj, &segments).cloned().unwrap_or(Value::Null);
    let expected = msg
        .split_once(", expected ")
        .map(|(_, e)| e.to_string())
        .unwrap_or(msg);
    Some(TypeError {
        path: segments,
        found,
        expected,
    })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, seg| match seg.strip_prefix('[') {
            Some(i) => cur.get(i.trim_end_matches(']').parse::<usize>().ok()?),
            None => cur.get(seg.as_str()),
        })
}

/// `encoding/json`'s name for what it found.
fn go_found(v: &Value) -> String {
    match v {
        Value::String(_) => "string".into(),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Object(_) => "object".into(),
        Value::Array(_) => "array".into(),
        Value::Null => "null".into(),
    }
}

/// Field names of the path, list indices and map keys dropped (as Go reports them):
/// `spec.template.spec.containers.env.value`, `metadata.labels`.
fn names<'a>(kind: &str, path: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let mut in_map = false;
    for seg in path {
        if seg.starts_with('[') {
            continue;
        }
        if in_map {
            in_map = false;
            continue;
        }
        out.push(seg);
        in_map = crate::stored::is_map(kind, &out);
    }
    out
}

/// The Go struct holding the field whose parents are `parents` (field names only).
fn go_struct(kind: &str, parents: &[&str]) -> String {
    let s = match parents {
        [] => return kind.to_string(),
        [.., "metadata"] => "ObjectMeta",
        ["spec"] => match kind {
            "Pod" => "PodSpec",
            _ => return format!("{kind}Spec"),
        },
        ["spec", "jobTemplate"] => "JobTemplateSpec",
        ["spec", "jobTemplate", "spec"] => "JobSpec",
        [.., "template"] => "PodTemplateSpec",
        [.., "template", "spec"] => "PodSpec",
        [.., "containers" | "initContainers"] => "Container",
        [.., "ephemeralContainers"] => "EphemeralContainer",
        [.., "env"] => "EnvVar",
        [.., "envFrom"] => "EnvFromSource",
        [.., "valueFrom"] => "EnvVarSource",
        [.., "fieldRef"] => "ObjectFieldSelector",
        [.., "resourceFieldRef"] => "ResourceFieldSelector",
        [.., "configMapKeyRef"] => "ConfigMapKeySelector",
        [.., "secretKeyRef"] => "SecretKeySelector",
        [.., "containers" | "initContainers", "ports"] => "ContainerPort",
        ["spec", "ports"] if kind == "Service" => "ServicePort",
        ["spec", "resources"] if kind == "PersistentVolumeClaim" => "VolumeResourceRequirements",
        [.., "resources"] => "ResourceRequirements",
        [.., "selector"] | [.., "podSelector"] | [.., "namespaceSelector"] => "LabelSelector",
        [.., "matchExpressions"] => "LabelSelectorRequirement",
        [.., "volumes"] => "Volume",
        [.., "volumeMounts"] => "VolumeMount",
        [.., "configMap"] => "ConfigMapVolumeSource",
        [.., "secret"] => "SecretVolumeSource",
        [.., "emptyDir"] => "EmptyDirVolumeSource",
        [.., "persistentVolumeClaim"] => "PersistentVolumeClaimVolumeSource",
        [.., "livenessProbe" | "readinessProbe" | "startupProbe"] => "Probe",
        [.., "httpGet"] => "HTTPGetAction",
        [.., "tcpSocket"] => "TCPSocketAction",
        [.., "exec"] => "ExecAction",
        [.., "template", "spec", "securityContext"] => "PodSecurityContext",
        [.., "securityContext"] => "SecurityContext",
        ["spec", "strategy"] => "DeploymentStrategy",
        ["spec", "strategy", "rollingUpdate"] => "RollingUpdateDeployment",
        ["spec", "updateStrategy"] => match kind {
            "DaemonSet" => "DaemonSetUpdateStrategy",
            _ => "StatefulSetUpdateStrategy",
        },
        ["spec", "updateStrategy", "rollingUpdate"] => match kind {
            "DaemonSet" => "RollingUpdateDaemonSet",
            _ => "RollingUpdateStatefulSetStrategy",
        },
        ["spec", "rules"] if kind == "Ingress" => "IngressRule",
        ["rules"] => "PolicyRule",
        ["subjects"] => "Subject",
        [.., "http"] => "HTTPIngressRuleValue",
        [.., "paths"] => "HTTPIngressPath",
        [.., "backend"] | ["spec", "defaultBackend"] => "IngressBackend",
        [.., "backend", "service"] => "IngressServiceBackend",
        [.., "service", "port"] => "ServiceBackendPort",
        ["spec", "tls"] => "IngressTLS",
        ["spec", "scaleTargetRef"] => "CrossVersionObjectReference",
        ["spec", "metrics"] => "MetricSpec",
        [.., last] => return singular_type(last),
    };
    s.to_string()
}

/// `tolerations` → `Toleration`: the usual relation of a list field to its item type.
fn singular_type(field: &str) -> String {
    let one = field.strip_suffix("ies").map_or_else(
        || field.strip_suffix('s').unwrap_or(field).to_string(),
        |stem| format!("{stem}y"),
    );
    let mut c = one.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The Go type of a field from serde's expectation.
fn go_type(kind: &str, field_names: &[&str], expected: &str) -> String {
    let expected = expected.trim_matches('`');
    match expected {
        "i32" => "int32".into(),
        "i64" => "int64".into(),
        "u32" => "uint32".into(),
        "f64" | "f32" => "float64".into(),
        "a string" | "a borrowed string" | "a character" => "string".into(),
        "a boolean" => "bool".into(),
        "a map" => "map[string]string".into(),
        "a sequence" => {
            let elem = match field_names.last().copied() {
                Some(
                    "args" | "command" | "finalizers" | "accessModes" | "policyTypes" | "hosts"
                    | "verbs" | "apiGroups" | "resources" | "resourceNames" | "values"
                    | "nonResourceURLs" | "clusterIPs" | "ipFamilies" | "externalIPs",
                ) => "string".into(),
                Some(_) => format!("v1.{}", go_struct(kind, field_names)),
                None => "[]interface {}".into(),
            };
            format!("[]{elem}")
        }
        "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        "Time" | "MicroTime" => format!("v1.{expected}"),
        other => format!("v1.{other}"),
    }
}

/// The decode error of an ordinary write, worded like the real server's (HTTP 400).
pub fn decode_message(rt: &ResourceType, e: &TypeError) -> String {
    let field_names = names(&rt.kind, &e.path);
    let (parents, _) = field_names.split_at(field_names.len().saturating_sub(1));
    let value = match &e.found {
        Value::Number(n) if !n.is_f64() && e.expected.contains("i32") => {
            format!("number {n}")
        }
        v => go_found(v),
    };
    format!(
        "{kind} in version \"{v}\" cannot be handled as a {kind}: json: cannot unmarshal {value} into Go struct field {st}.{path} of type {ty}",
        kind = rt.kind,
        v = rt.version,
        st = go_struct(&rt.kind, parents),
        path = field_names.join("."),
        ty = go_type(&rt.kind, &field_names, &e.expected),
    )
}

/// Go's `%#v` of a structured-merge-diff value wrapper around `v`.
fn smd_value(v: &Value) -> String {
    fn go(v: &Value) -> String {
        match v {
            Value::Null => "interface {}(nil)".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => format!(
                "[]interface {{}}{{{}}}",
                a.iter().map(go).collect::<Vec<_>>().join(", ")
            ),
            Value::Object(m) => format!(
                "map[string]interface {{}}{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{k:?}:{}", go(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    format!("&value.valueUnstructured{{Value:{}}}", go(v))
}

/// The structured-merge-diff error for a server-side apply configuration (`.spec.replicas:
/// expected numeric (int or float), got string`); the path uses `[name="web"]` for keyed items.
pub fn apply_message(e: &TypeError, smd_path: &str) -> String {
    let ex = e.expected.trim_matches('`');
    let got = match ex {
        "i32" | "i64" | "u32" | "f64" | "f32" => {
            let t = match &e.found {
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                Value::Array(_) => "[]interface {}",
                Value::Object(_) => "map[string]interface {}",
                _ => "float64",
            };
            return format!("{smd_path}: expected numeric (int or float), got {t}");
        }
        "a string" | "a borrowed string" | "IntOrString" | "Quantity" | "Time" => {
            return format!("{smd_path}: expected string, got {}", smd_value(&e.found));
        }
        "a boolean" => {
            return format!(
                "{smd_path}: expected boolean, got &{{{}}}",
                smd_value(&e.found)
                    .trim_start_matches("&value.valueUnstructured{Value:")
                    .trim_end_matches('}')
            );
        }
        "a sequence" => "list",
        _ => "map",
    };
    format!("{smd_path}: expected {got}, got {}", smd_value(&e.found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn type_errors_are_worded_like_encoding_json() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let e = type_error(
            cm,
            &json!({"metadata": {"name": "x"}, "data": {"port": 8080}}),
        )
        .unwrap();
        assert_eq!(
            decode_message(cm, &e),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
        );
        let d = reg.lookup("apps", "v1", "deployments").unwrap();
        let e = type_error(
            d,
            &json!({"metadata": {"name": "x"}, "spec": {"replicas": "two"}}),
        )
        .unwrap();
        assert_eq!(
            decode_message(d, &e),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
        assert_eq!(
            apply_message(&e, ".spec.replicas"),
            ".spec.replicas: expected numeric (int or float), got string"
        );
        let e = type_error(
            d,
            &json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "E", "value": 5}]}]}}}}),
        )
        .unwrap();
        assert_eq!(
            decode_message(d, &e),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value of type string"
        );
        assert_eq!(
            apply_message(
                &e,
                ".spec.template.spec.containers[name=\"a\"].env[name=\"E\"].value"
            ),
            ".spec.template.spec.containers[name=\"a\"].env[name=\"E\"].value: expected string, got &value.valueUnstructured{Value:5}"
        );
        let e = type_error(
            d,
            &json!({"metadata": {"name": "x", "labels": {"a": true}}}),
        )
        .unwrap();
        assert_eq!(
            decode_message(d, &e),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"
        );
        assert!(
            type_error(
                d,
                &json!({"metadata": {"name": "x"}, "spec": {"replicas": 2}})
            )
            .is_none()
        );
        let body = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "E", "value": 5}]}]}}}});
        let path: Vec<String> = [
            "spec",
            "template",
            "spec",
            "containers",
            "[0]",
            "env",
            "[0]",
            "value",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            smd_path(&body, &path),
            ".spec.template.spec.containers[name=\"a\"].env[name=\"E\"].value"
        );
    }
}
