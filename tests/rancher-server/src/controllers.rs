//! Rancher's resource quota controllers, run right after each write (a real
//! Rancher runs them a moment later): rancher/rancher
//! `pkg/controllers/managementuser/resourcequota/`.
//!
//! - `resource_quota_sync.go`: a namespace's quota is its
//!   `field.cattle.io/resourceQuota` annotation completed with the project's
//!   namespace defaults (`completeQuota`: the annotation wins for every
//!   resource it names). A namespace without the annotation gets the
//!   defaults and the annotation. So a changed default reaches new
//!   namespaces only (rancher/rancher#24664, #36604). A quota that does not
//!   fit beside the project's other namespaces is withheld: condition
//!   `ResourceQuotaValidated=False`, and a new `ResourceQuota` gets zero for
//!   the resources that do not fit, an existing one stays as it was.
//!   Container defaults go into a `LimitRange` (`getResourceLimitToUpdate`):
//!   the project's, overridden by the namespace annotation's values for the
//!   resources the project names (`completeLimit`), or the annotation's alone
//!   when the project has none. The controller never rewrites that
//!   annotation, so a namespace without one follows the project's defaults.
//! - `resource_quota_calculate_used.go`: `usedLimit` is the sum of the quotas
//!   of the project's validated namespaces, recomputed when one of its
//!   namespaces or the project changes (a project a namespace left keeps its
//!   old figure until then).
//! - `namespace_quota_reset.go`: a project without a quota clears its
//!   namespaces' quota annotations.
//! - `resource_quota_reconcile.go`: a project change re-runs its namespaces.

use serde_json::{Map, Value, json};

use crate::namespaces::{
    CONTAINER_LIMIT, PROJECT_ID, RESOURCE_QUOTA, STATUS, json_annotation, project_of,
};
use crate::quantity::{self, ResourceList};
use crate::{Inner, Namespace, projects};

const VALIDATED: &str = "ResourceQuotaValidated";

/// Go struct order of `v3.ResourceQuotaLimit` (how `json.Marshal` writes it).
const QUOTA_ORDER: [&str; 13] = [
    "pods",
    "services",
    "replicationControllers",
    "secrets",
    "configMaps",
    "persistentVolumeClaims",
    "servicesNodePorts",
    "servicesLoadBalancers",
    "requestsCpu",
    "requestsMemory",
    "requestsStorage",
    "limitsCpu",
    "limitsMemory",
];

fn struct_json(order: &[&str], m: &Map<String, Value>) -> String {
    let parts: Vec<String> = order
        .iter()
        .filter_map(|k| {
            let v = m.get(*k)?.as_str().filter(|s| !s.is_empty())?;
            Some(format!("\"{k}\":{}", Value::String(v.to_string())))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn limit_map(v: Option<&Value>) -> Option<Map<String, Value>> {
    v.and_then(Value::as_object).map(|m| {
        m.iter()
            .filter(|(k, v)| *k != "type" && v.as_str().is_some_and(|s| !s.is_empty()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// A namespace was written: sync it, then its project's `usedLimit`.
pub(crate) fn namespace_changed(s: &mut Inner, cluster: &str, name: &str) {
    sync_namespace(s, cluster, name);
    let pid = s
        .namespaces
        .get(&(cluster.to_string(), name.to_string()))
        .and_then(project_of);
    if let Some(pid) = pid {
        recompute_used(s, &pid);
    }
}

/// A project was written: reset, re-run its namespaces, recompute `usedLimit`.
pub(crate) fn project_changed(s: &mut Inner, pid: &str) {
    let Some(p) = s.projects.get(pid) else {
        return;
    };
    let has_quota = projects::quota_limit(&p.obj).is_some();
    let members: Vec<(String, String)> = s
        .namespaces
        .iter()
        .filter(|(_, n)| project_of(n).as_deref() == Some(pid))
        .map(|(k, _)| k.clone())
        .collect();
    if !has_quota {
        for key in &members {
            if let Some(n) = s.namespaces.get_mut(key) {
                n.annotations.remove(RESOURCE_QUOTA);
            }
        }
    }
    for (c, n) in &members {
        sync_namespace(s, c, n);
    }
    recompute_used(s, pid);
}

fn sync_namespace(s: &mut Inner, cluster: &str, name: &str) {
    // Each write re-triggers the controller in Rancher; settle here.
    for _ in 0..4 {
        let key = (cluster.to_string(), name.to_string());
        let Some(before) = s.namespaces.get(&key).cloned() else {
            return;
        };
        let quota_before = s.quotas.get(&key).cloned();
        let range_before = s.limit_ranges.get(&key).cloned();
        sync_quota(s, &key);
        sync_limit_range(s, &key);
        sync_project_label(s, &key);
        let after = &s.namespaces[&key];
        if after.annotations == before.annotations
            && after.labels == before.labels
            && s.quotas.get(&key) == quota_before.as_ref()
            && s.limit_ranges.get(&key) == range_before.as_ref()
        {
            return;
        }
    }
}

/// The namespace controller labels a namespace with its project's name.
fn sync_project_label(s: &mut Inner, key: &(String, String)) {
    let Some(ns) = s.namespaces.get_mut(key) else {
        return;
    };
    match project_of(ns) {
        Some(p) => {
            let short = p.split_once(':').map(|(_, x)| x).unwrap_or(&p).to_string();
            ns.labels.insert(PROJECT_ID.into(), json!(short));
        }
        None => {
            ns.labels.remove(PROJECT_ID);
        }
    }
}

fn project_obj<'a>(s: &'a Inner, ns: &Namespace) -> Option<(String, &'a Value)> {
    let pid = project_of(ns)?;
    let p = s.projects.get(&pid)?;
    Some((pid, &p.obj))
}

/// `CreateResourceQuota` of `resource_quota_sync.go`.
fn sync_quota(s: &mut Inner, key: &(String, String)) {
    let ns = s.namespaces[key].clone();
    let requested = match ns.annotations.get(RESOURCE_QUOTA).and_then(Value::as_str) {
        None | Some("") => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v) => Some(limit_map(v.get("limit")).unwrap_or_default()),
            Err(_) => return, // the controller errors and retries for ever
        },
    };
    let default = project_obj(s, &ns).and_then(|(_, p)| limit_map(projects::namespace_default(p)));
    let quota_limit = match (requested, default) {
        (None, Some(d)) => Some(d),
        (Some(r), Some(d)) => Some(
            d.iter()
                .map(|(k, v)| (k.clone(), r.get(k).cloned().unwrap_or_else(|| v.clone())))
                .collect(),
        ),
        _ => None,
    };
    let spec: Option<ResourceList> = quota_limit
        .as_ref()
        .and_then(|l| quantity::to_list(&Value::Object(l.clone())).ok())
        .filter(|l| !l.is_empty());
    let existing = s.quotas.get(key).cloned();
    match (existing, spec) {
        (None, Some(spec)) => {
            let (fits, bad) = validate_and_set(s, key, quota_limit.as_ref().unwrap_or(&Map::new()));
            let mut hard = spec;
            if !fits {
                for k in bad.keys() {
                    if let Some(q) = hard.get_mut(k) {
                        q.nanos = 0;
                    }
                }
            }
            s.quotas.insert(key.clone(), hard);
        }
        (Some(old), Some(spec)) if old != spec => {
            let (fits, _) = validate_and_set(s, key, quota_limit.as_ref().unwrap_or(&Map::new()));
            if fits {
                s.quotas.insert(key.clone(), spec);
            }
        }
        (Some(_), None) => {
            if let Some(n) = s.namespaces.get_mut(key) {
                n.annotations.remove(RESOURCE_QUOTA);
            }
            s.quotas.remove(key);
        }
        _ => {}
    }
}

/// `validateAndSetNamespaceQuota`: writes the annotation, then checks that
/// the quota fits beside the project's other namespaces' quotas.
fn validate_and_set(
    s: &mut Inner,
    key: &(String, String),
    quota: &Map<String, Value>,
) -> (bool, ResourceList) {
    let ns = s.namespaces[key].clone();
    let Some((pid, project)) = project_obj(s, &ns) else {
        return (true, ResourceList::new());
    };
    let Some(project_limit) = projects::quota_limit(project).cloned() else {
        return (true, ResourceList::new());
    };
    let annotation = format!("{{\"limit\":{}}}", struct_json(&QUOTA_ORDER, quota));
    let mut sum = quantity::to_list(&Value::Object(quota.clone())).unwrap_or_default();
    // `getNamespacesLimits`: every other namespace of the project, its
    // quota withheld or not.
    for ((c, n), other) in &s.namespaces {
        if (c, n) == (&key.0, &key.1) || project_of(other).as_deref() != Some(pid.as_str()) {
            continue;
        }
        if let Some(l) =
            json_annotation(other, RESOURCE_QUOTA).and_then(|q| q.get("limit").cloned())
        {
            sum = quantity::add(&sum, &quantity::to_list(&l).unwrap_or_default());
        }
    }
    let bad = quantity::exceeded(&sum, &quantity::to_list(&project_limit).unwrap_or_default());
    let fits = bad.is_empty();
    let message = if fits {
        String::new()
    } else {
        format!(
            "Resource quota [{}] exceeds project limit, or is based on negative values",
            quantity::format_list(&bad)
        )
    };
    if let Some(n) = s.namespaces.get_mut(key) {
        n.annotations
            .insert(RESOURCE_QUOTA.into(), json!(annotation));
        set_condition(n, VALIDATED, fits, &message);
    }
    (fits, bad)
}

fn conditions(ns: &Namespace) -> Vec<Value> {
    json_annotation(ns, STATUS)
        .and_then(|v| v.get("conditions").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn validated(ns: &Namespace) -> bool {
    conditions(ns)
        .iter()
        .any(|c| c["type"] == VALIDATED && c["status"] == "True")
}

fn set_condition(ns: &mut Namespace, kind: &str, ok: bool, message: &str) {
    let mut list: Vec<Value> = conditions(ns)
        .into_iter()
        .filter(|c| c["type"] != kind)
        .collect();
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }});
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    list.push(c);
    ns.annotations.insert(
        STATUS.into(),
        json!(json!({"conditions": list}).to_string()),
    );
}

/// `createLimitRange` / `getResourceLimitToUpdate` of `resource_quota_sync.go`.
fn sync_limit_range(s: &mut Inner, key: &(String, String)) {
    let ns = s.namespaces[key].clone();
    let ns_limit = match ns.annotations.get(CONTAINER_LIMIT).and_then(Value::as_str) {
        None | Some("") | Some("null") => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v) => limit_map(Some(&v)),
            Err(_) => return,
        },
    };
    let project_limit =
        project_obj(s, &ns).and_then(|(_, p)| limit_map(p.get("containerDefaultResourceLimit")));
    // `completeLimit`: the project's defaults, overridden by the
    // namespace's values for the resources the project names; the
    // namespace's other resources are left out. Without project defaults
    // the namespace's own values stand.
    let chosen = match (ns_limit, project_limit) {
        (Some(n), Some(p)) => Some(
            p.iter()
                .map(|(k, v)| (k.clone(), n.get(k).cloned().unwrap_or_else(|| v.clone())))
                .collect(),
        ),
        (Some(n), None) => Some(n),
        (None, p) => p,
    };
    let spec = chosen.as_ref().and_then(|m| {
        let get = |k: &str| m.get(k).and_then(Value::as_str).and_then(quantity::parse);
        let mut default = Map::new();
        let mut request = Map::new();
        for (k, res) in [("limitsCpu", "cpu"), ("limitsMemory", "memory")] {
            if let Some(q) = get(k) {
                default.insert(res.into(), json!(q.canonical()));
            }
        }
        for (k, res) in [("requestsCpu", "cpu"), ("requestsMemory", "memory")] {
            if let Some(q) = get(k) {
                request.insert(res.into(), json!(q.canonical()));
            }
        }
        (!default.is_empty() || !request.is_empty())
            .then(|| json!({"type": "Container", "default": default, "defaultRequest": request}))
    });
    let existing = s.limit_ranges.get(key).cloned();
    let changed = match (&existing, &spec) {
        (None, None) => false,
        (Some(a), Some(b)) => a != b,
        _ => true,
    };
    if !changed {
        return;
    }
    // `createLimitRange` writes the LimitRange only; the namespace's
    // annotation stays as the namespace store wrote it.
    match spec {
        Some(spec) => {
            s.limit_ranges.insert(key.clone(), spec);
        }
        None => {
            s.limit_ranges.remove(key);
        }
    }
}

/// `calculateProjectResourceQuota` plus the reconcile controller's clearing
/// of a used limit left on a project without namespaces.
fn recompute_used(s: &mut Inner, pid: &str) {
    let Some(p) = s.projects.get(pid) else {
        return;
    };
    if projects::quota_limit(&p.obj).is_none() {
        return;
    }
    let mut sum = ResourceList::new();
    for n in s.namespaces.values() {
        if project_of(n).as_deref() != Some(pid) || !validated(n) {
            continue;
        }
        if let Some(l) = json_annotation(n, RESOURCE_QUOTA).and_then(|q| q.get("limit").cloned()) {
            sum = quantity::add(&sum, &quantity::to_list(&l).unwrap_or_default());
        }
    }
    let mut used = Value::Object(quantity::to_limit(&sum));
    used["type"] = json!("/v3/schemas/resourceQuotaLimit");
    if let Some(p) = s.projects.get_mut(pid) {
        p.obj["resourceQuota"]["usedLimit"] = used;
    }
}
