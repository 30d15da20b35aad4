//! Per-kind behaviour: validation the real server would refuse, and the defaults it fills in.

use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::status::{ApiError, FieldError};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Refuse objects the real API server would refuse (name format, required workload fields).
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut errs = Vec::new();
    let label_names = matches!(rt.resource.as_str(), "namespaces" | "services");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if label_names && !is_label(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            LABEL_MSG,
        ));
    } else if !label_names && !rt.custom && !is_subdomain(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            SUBDOMAIN_MSG,
        ));
    }
    crate::validation::labels("metadata.labels", &obj["metadata"]["labels"], &mut errs);
    if matches!(
        rt.kind.as_str(),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    ) && !rt.custom
    {
        validate_workload(&rt.kind, obj, &mut errs)?;
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.kind, &rt.group, name, errs))
    }
}

fn validate_workload(kind: &str, obj: &Value, errs: &mut Vec<FieldError>) -> Result<(), ApiError> {
    let spec = &obj["spec"];
    crate::validation::labels(
        "spec.template.metadata.labels",
        &spec["template"]["metadata"]["labels"],
        errs,
    );
    let selector = &spec["selector"];
    if !selector.is_object() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    let tpl_labels = &spec["template"]["metadata"]["labels"];
    if let Some(ml) = selector["matchLabels"].as_object() {
        let matches = ml.iter().all(|(k, v)| tpl_labels.get(k) == Some(v));
        if !matches {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                tpl_labels,
                "`selector` does not match template `labels`",
            ));
        }
    }
    match spec["template"]["spec"]["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                let field = format!("spec.template.spec.containers[{i}]");
                match c["name"].as_str().unwrap_or_default() {
                    "" => errs.push(FieldError::required(format!("{field}.name"), "")),
                    n if !is_label(n) => errs.push(FieldError::invalid(
                        format!("{field}.name"),
                        &json!(n),
                        LABEL_MSG,
                    )),
                    _ => {}
                }
                crate::validation::resources(kind, &field, c, errs)?;
                if c["image"].as_str().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(
                        format!("spec.template.spec.containers[{i}].image"),
                        "",
                    ));
                }
            }
        }
        _ => errs.push(FieldError::required("spec.template.spec.containers", "")),
    }
    Ok(())
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(v);
    }
}

/// The value at a path, without creating anything on the way (IndexMut would insert nulls).
fn at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(*k))
}

fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec else { return };
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                let image = c["image"].as_str().unwrap_or_default().to_string();
                let tag = image.rsplit('/').next().unwrap_or_default();
                let latest = !tag.contains(':') || tag.ends_with(":latest");
                let policy = if latest && !image.contains('@') {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                set_default(c, "imagePullPolicy", json!(policy));
            }
        }
    }
    if spec.is_object() {
        set_default(spec, "restartPolicy", json!("Always"));
        set_default(spec, "terminationGracePeriodSeconds", json!(30));
        set_default(spec, "dnsPolicy", json!("ClusterFirst"));
        set_default(spec, "securityContext", json!({}));
        set_default(spec, "schedulerName", json!("default-scheduler"));
    }
}

/// Fill in the defaults the real API server sets, so clients see (and must tolerate) them.
///
/// `alloc` hands out cluster resources: `alloc("clusterIP")`, `alloc("nodePort")`.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value, alloc: &mut dyn FnMut(&str) -> String) {
    if rt.custom {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            // Each default on its own: an apply that drops `strategy.type` gets it back.
            set_default(spec, "strategy", json!({}));
            if let Some(strategy) = spec.get_mut("strategy").filter(|s| s.is_object()) {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy["type"] == "RollingUpdate" {
                    set_default(strategy, "rollingUpdate", json!({}));
                    if let Some(ru) = strategy.get_mut("rollingUpdate") {
                        set_default(ru, "maxSurge", json!("25%"));
                        set_default(ru, "maxUnavailable", json!("25%"));
                    }
                }
            }
            default_pod_spec(at(spec, &["template", "spec"]));
        }
        ("apps", "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
            default_pod_spec(at(obj, &["spec", "template", "spec"]));
        }
        ("", "Pod") => default_pod_spec(obj.get_mut("spec")),
        ("", "Service") => {
            let spec = &mut obj["spec"];
            if !spec.is_object() {
                *spec = json!({});
            }
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            if spec["type"] != "ExternalName" && spec.get("clusterIP").is_none() {
                let ip = alloc("clusterIP");
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            set_default(spec, "ipFamilies", json!(["IPv4"]));
            set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            let node_ports = matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, "protocol", json!("TCP"));
                    let port = p["port"].clone();
                    set_default(p, "targetPort", port);
                    if node_ports && p.is_object() && p.get("nodePort").is_none() {
                        let np: u64 = alloc("nodePort").parse().unwrap_or(30000);
                        p["nodePort"] = json!(np);
                    }
                }
            }
        }
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            if let Some(meta) = obj["metadata"].as_object_mut() {
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                set_default(labels, "kubernetes.io/metadata.name", name);
            }
            set_default(obj, "spec", json!({"finalizers": ["kubernetes"]}));
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            // stringData is write-only: the server folds it into data, base64-encoded.
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                if !obj["data"].is_object() {
                    obj["data"] = json!({});
                }
                for (k, v) in sd {
                    let text = v.as_str().unwrap_or_default().to_string();
                    obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        ("policy", "PodDisruptionBudget") => {}
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn rejects_bad_names_with_real_wording() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let err = validate(cm, &json!({"metadata": {"name": "Bad_Name"}})).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", err.message);
    }

    #[test]
    fn deployment_requires_image() {
        let reg = Registry::default();
        let d = reg.lookup("apps", "v1", "deployments").unwrap();
        let obj = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}}});
        let err = validate(d, &obj).unwrap_err();
        assert_eq!(
            err.message,
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        );
    }
}
