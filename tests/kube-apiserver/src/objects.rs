//! Per-kind validation: what the real server would refuse.

use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::status::{ApiError, FieldError};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
/// ConfigMap and Secret data limit (`core.MaxSecretSize`).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
/// Total size of a object's annotations (`TotalAnnotationSizeLimitB`).
pub const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;
pub(crate) const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

pub(crate) fn is_label(s: &str) -> bool {
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
    let builtin = !rt.custom && rt.group.is_empty();
    let label_names = builtin && rt.resource == "namespaces";
    let dns1035 = builtin && rt.resource == "services";
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if dns1035 && !(is_label(name) && name.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            DNS1035_MSG,
        ));
    } else if label_names && !is_label(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            LABEL_MSG,
        ));
    } else if !label_names && !dns1035 && !is_subdomain(name) {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            SUBDOMAIN_MSG,
        ));
    }
    crate::validation::labels("metadata.labels", &obj["metadata"]["labels"], &mut errs);
    if let Some(a) = obj["metadata"]["annotations"].as_object() {
        let size: usize = a
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > MAX_ANNOTATIONS_SIZE {
            errs.push(FieldError::too_long(
                "metadata.annotations",
                MAX_ANNOTATIONS_SIZE,
            ));
        }
    }
    if rt.custom {
        return finish(rt, name, errs);
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            validate_workload(&rt.kind, obj, &mut errs)?;
            crate::podspec::containers(
                "spec.template.spec",
                &obj["spec"]["template"]["spec"],
                &mut errs,
            );
        }
        ("batch", "Job") => crate::podspec::containers(
            "spec.template.spec",
            &obj["spec"]["template"]["spec"],
            &mut errs,
        ),
        ("batch", "CronJob") => crate::podspec::containers(
            "spec.jobTemplate.spec.template.spec",
            &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            &mut errs,
        ),
        ("", "Pod") => crate::podspec::containers("spec", &obj["spec"], &mut errs),
        ("", "Service") => crate::podspec::service_ports(&obj["spec"], &mut errs),
        ("", "ConfigMap") => {
            // ValidateConfigMap: the values of data and binaryData together; the error is the
            // whole object's (field path "" prints as "[]").
            let text: usize = obj["data"].as_object().map_or(0, |m| {
                m.values().map(|v| v.as_str().map_or(0, str::len)).sum()
            });
            let binary: usize = obj["binaryData"]
                .as_object()
                .map_or(0, |m| m.values().map(decoded_len).sum());
            if text + binary > MAX_DATA_SIZE {
                errs.push(FieldError::too_long("[]", MAX_DATA_SIZE));
            }
        }
        ("", "Secret") => {
            let size: usize = obj["data"]
                .as_object()
                .map_or(0, |m| m.values().map(decoded_len).sum());
            if size > MAX_DATA_SIZE {
                errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
            }
        }
        _ => {}
    }
    finish(rt, name, errs)
}

fn finish(rt: &ResourceType, name: &str, errs: Vec<FieldError>) -> Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.kind, &rt.group, name, errs))
    }
}

/// Bytes a base64 value decodes to.
fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or_default().trim_end_matches('=');
    s.len() * 3 / 4
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
