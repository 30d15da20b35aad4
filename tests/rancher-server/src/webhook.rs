//! Refusals of Rancher's admission webhook (rancher/webhook), as a v3 client
//! sees them.
//!
//! A webhook denial reaches the norman v3 API as a Kubernetes `StatusError`;
//! rancher/rancher `pkg/norman/store/proxy/error_wrapper.go` turns it into
//! `{status: <code>, code: <reason>, message: <message>}`. kube-apiserver
//! prefixes the webhook's message with `admission webhook "<name>" denied the
//! request: `. So a quota refusal is a 400 `BadRequest`, never a 422.

use serde_json::Value;

use crate::handlers::{Answer, error};

/// Webhook names, as rancher/webhook registers them (`rancher.cattle.io.<resource>.<group>`).
pub(crate) const PROJECTS: &str = "rancher.cattle.io.projects.management.cattle.io";
pub(crate) const PRTBS: &str = "rancher.cattle.io.projectroletemplatebindings.management.cattle.io";
pub(crate) const NAMESPACES: &str = "rancher.cattle.io.namespaces";

/// `admission.ResponseBadRequest(message)` from webhook `name`.
pub(crate) fn bad_request(name: &str, message: &str) -> Answer {
    denied(400, "BadRequest", name, message)
}

/// A denial with its own status and reason.
pub(crate) fn denied(status: u16, reason: &str, name: &str, message: &str) -> Answer {
    error(
        status,
        reason,
        &format!("admission webhook \"{name}\" denied the request: {message}"),
    )
}

/// `field.Error.Error()` for the field error types the validators use.
pub(crate) fn forbidden(path: &str, detail: &str) -> String {
    format!("{path}: Forbidden: {detail}")
}

pub(crate) fn required(path: &str, detail: &str) -> String {
    format!("{path}: Required value: {detail}")
}

pub(crate) fn invalid(path: &str, go_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {go_value}: {detail}")
}

pub(crate) fn not_supported(path: &str, value: &str, supported: &[&str]) -> String {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "{path}: Unsupported value: \"{value}\": supported values: {}",
        list.join(", ")
    )
}

/// Go's `%#v` of a `v3.ResourceQuotaLimit` (the struct field order of
/// rancher/rancher `pkg/apis/management.cattle.io/v3`).
pub(crate) fn go_quota_limit(limit: Option<&Value>) -> String {
    const FIELDS: [(&str, &str); 13] = [
        ("Pods", "pods"),
        ("Services", "services"),
        ("ReplicationControllers", "replicationControllers"),
        ("Secrets", "secrets"),
        ("ConfigMaps", "configMaps"),
        ("PersistentVolumeClaims", "persistentVolumeClaims"),
        ("ServicesNodePorts", "servicesNodePorts"),
        ("ServicesLoadBalancers", "servicesLoadBalancers"),
        ("RequestsCPU", "requestsCpu"),
        ("RequestsMemory", "requestsMemory"),
        ("RequestsStorage", "requestsStorage"),
        ("LimitsCPU", "limitsCpu"),
        ("LimitsMemory", "limitsMemory"),
    ];
    go_struct("v3.ResourceQuotaLimit", &FIELDS, limit)
}

/// Go's `%#v` of a `v3.ContainerResourceLimit`.
pub(crate) fn go_container_limit(limit: Option<&Value>) -> String {
    const FIELDS: [(&str, &str); 4] = [
        ("RequestsCPU", "requestsCpu"),
        ("RequestsMemory", "requestsMemory"),
        ("LimitsCPU", "limitsCpu"),
        ("LimitsMemory", "limitsMemory"),
    ];
    go_struct("v3.ContainerResourceLimit", &FIELDS, limit)
}

fn go_struct(name: &str, fields: &[(&str, &str)], v: Option<&Value>) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(go, json)| {
            let val = v
                .and_then(|v| v.get(*json))
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            format!("{go}:\"{val}\"")
        })
        .collect();
    format!("{name}{{{}}}", parts.join(", "))
}
