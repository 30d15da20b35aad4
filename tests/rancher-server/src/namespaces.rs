//! Namespaces through the cluster-scoped v3 API.
//!
//! - Schema: rancher/rancher `pkg/schemas/cluster.cattle.io/v3/schema.go`.
//!   `description`, `projectId`, `resourceQuota` and
//!   `containerDefaultResourceLimit` are `AnnotationField`s
//!   (`pkg/norman/types/mapper/annotation_field.go`): stored as
//!   `field.cattle.io/<field>` annotations (objects as JSON), shown as fields
//!   and taken out of `annotations` on read. `projectId` is `noupdate`: a PUT
//!   drops it, and only the annotation moves a namespace.
//! - Store: `pkg/api/norman/store/namespace/store.go` checks a requested
//!   `resourceQuota` against the namespace's *current* project (422
//!   `MissingRequired` / `MaxLimitExceeded`) and fills in the project's
//!   container defaults when the request has none.
//! - Webhook: rancher/webhook `pkg/resources/core/v1/namespace` — changing the
//!   project annotation needs `manage-namespaces` on the target project
//!   (403), and container default requests may not exceed limits (400).
//! - The `move` action (`pkg/api/norman/customization/namespace`) refuses a
//!   project with a resource quota.

use serde_json::{Map, Value, json};

use crate::handlers::{Answer, error, field_error, not_found, now_ms};
use crate::quantity::{self, ResourceList};
use crate::webhook::{self, NAMESPACES};
use crate::{Inner, Namespace, controllers, merge, projects};

pub(crate) const PROJECT_ID: &str = "field.cattle.io/projectId";
pub(crate) const RESOURCE_QUOTA: &str = "field.cattle.io/resourceQuota";
pub(crate) const CONTAINER_LIMIT: &str = "field.cattle.io/containerDefaultResourceLimit";
pub(crate) const STATUS: &str = "cattle.io/status";

/// The annotation fields: (field, stored as a JSON object).
const ANNOTATION_FIELDS: [(&str, bool); 4] = [
    ("description", false),
    ("projectId", false),
    ("resourceQuota", true),
    ("containerDefaultResourceLimit", true),
];

/// Go's `json.Marshal`: object keys sorted (a map) or in struct order.
pub(crate) fn go_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), go_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

pub(crate) fn project_of(ns: &Namespace) -> Option<String> {
    ns.annotations
        .get(PROJECT_ID)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A JSON annotation read back as an object; `None` when absent or empty.
pub(crate) fn json_annotation(ns: &Namespace, key: &str) -> Option<Value> {
    let raw = ns.annotations.get(key)?.as_str()?;
    if raw.is_empty() {
        return None;
    }
    serde_json::from_str(raw).ok()
}

/// The v3 view of a namespace (`FromInternal` of the mappers).
pub(crate) fn view(base: &str, cluster: &str, ns: &Namespace) -> Value {
    let name = &ns.name;
    let me = format!("{base}/v3/clusters/{cluster}/namespaces/{name}");
    let mut annotations = ns.annotations.clone();
    let mut v = json!({
        "id": name, "type": "namespace", "baseType": "namespace", "name": name,
        "labels": ns.labels, "state": "active", "createdTS": ns.created_ms,
        "projectId": null,
        "links": {"self": me, "update": me, "remove": me},
        "actions": {"move": format!("{me}?action=move")},
    });
    for (field, object) in ANNOTATION_FIELDS {
        let Some(raw) = annotations.remove(&format!("field.cattle.io/{field}")) else {
            continue;
        };
        let text = raw.as_str().unwrap_or_default().to_string();
        v[field] = if object {
            match serde_json::from_str::<Value>(&text) {
                Ok(parsed @ (Value::Object(_) | Value::Null)) => parsed,
                _ => Value::String(text),
            }
        } else {
            Value::String(text)
        };
    }
    for (field, outer) in [
        (
            "resourceQuota",
            "/v3/cluster/schemas/namespaceResourceQuota",
        ),
        (
            "containerDefaultResourceLimit",
            "/v3/cluster/schemas/containerResourceLimit",
        ),
    ] {
        if let Some(o) = v.get_mut(field).and_then(Value::as_object_mut) {
            o.insert("type".into(), json!(outer));
            if let Some(l) = o.get_mut("limit").and_then(Value::as_object_mut) {
                l.insert(
                    "type".into(),
                    json!("/v3/cluster/schemas/resourceQuotaLimit"),
                );
            }
        }
    }
    v["annotations"] = Value::Object(annotations);
    v
}

/// What norman's builder keeps of a request body: the fields the operation
/// may set, nested `type` keys removed.
fn builder_fields(body: &Value, create: bool) -> Map<String, Value> {
    let mut keep = vec![
        "labels",
        "annotations",
        "description",
        "resourceQuota",
        "containerDefaultResourceLimit",
    ];
    if create {
        keep.extend(["name", "projectId"]);
    }
    let mut out = Map::new();
    if let Some(m) = body.as_object() {
        for k in keep {
            if let Some(v) = m.get(k) {
                out.insert(k.to_string(), strip_types(v));
            }
        }
    }
    out
}

fn strip_types(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "type")
                .map(|(k, v)| (k.clone(), strip_types(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `AnnotationField.ToInternal`: a field present in the request (even as
/// `null`) becomes its annotation; `null` is stored as the string `null`.
fn to_internal(data: &mut Map<String, Value>) {
    for (field, object) in ANNOTATION_FIELDS {
        let Some(v) = data.remove(field) else {
            continue;
        };
        let text = if object {
            go_json(&v)
        } else {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        };
        let ann = data
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        ann[format!("field.cattle.io/{field}")] = Value::String(text);
    }
}

/// `validateResourceQuota` of the namespace store. `project_id` is the
/// project the check uses: the request's on create, the stored one on update.
fn validate_quota(
    s: &Inner,
    data: &mut Map<String, Value>,
    project_id: Option<&str>,
    own: Option<(&str, &str)>,
) -> Result<(), Answer> {
    let Some(pid) = project_id.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let Some(project) = s.projects.get(pid).map(|p| &p.obj) else {
        return Err(field_error(
            422,
            "InvalidFormat",
            "projectId",
            &format!("Not found type: project id: {pid}"),
        ));
    };
    let Some(project_limit) = projects::quota_limit(project) else {
        return Ok(());
    };
    let requested = data
        .get("resourceQuota")
        .filter(|q| q.is_object())
        .and_then(|q| q.get("limit"))
        .cloned();
    let ns_limit = match requested {
        Some(l) => l,
        None => match project.pointer("/namespaceDefaultResourceQuota/limit") {
            Some(l) if l.is_object() => l.clone(),
            _ => return Ok(()),
        },
    };
    let bad = |k: String| {
        field_error(
            422,
            "InvalidFormat",
            "resourceQuota",
            &format!("invalid quantity of {k}"),
        )
    };
    let project_list = quantity::to_list(project_limit).map_err(bad)?;
    let ns_list = quantity::to_list(&ns_limit).map_err(bad)?;
    if ns_list.len() != project_list.len() {
        return Err(field_error(
            422,
            "MissingRequired",
            "resourceQuota",
            "does not have all fields defined on a project quota",
        ));
    }
    if let Some(k) = project_list.keys().find(|k| !ns_list.contains_key(*k)) {
        return Err(field_error(
            422,
            "MissingRequired",
            "resourceQuota",
            &format!(
                "misses {} defined on a project quota",
                quantity::rancher_key(k)
            ),
        ));
    }
    let mut others = ResourceList::new();
    for ((c, name), n) in &s.namespaces {
        if own.is_some_and(|(oc, on)| oc == c && on == name)
            || project_of(n).as_deref() != Some(pid)
        {
            continue;
        }
        if let Some(l) = json_annotation(n, RESOURCE_QUOTA).and_then(|q| q.get("limit").cloned()) {
            others = quantity::add(&others, &quantity::to_list(&l).unwrap_or_default());
        }
    }
    // Set the project's container defaults when the request has none.
    let crl_empty = data
        .get("containerDefaultResourceLimit")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    if crl_empty {
        data.insert(
            "containerDefaultResourceLimit".into(),
            project
                .get("containerDefaultResourceLimit")
                .map(strip_types)
                .unwrap_or(Value::Null),
        );
    }
    let negatives: ResourceList = ns_list
        .iter()
        .filter(|(_, v)| v.nanos < 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if !negatives.is_empty() {
        return Err(field_error(
            422,
            "MinLimitExceeded",
            "resourceQuota",
            &format!("negative on fields: {}", quantity::format_list(&negatives)),
        ));
    }
    let over = quantity::exceeded(&quantity::add(&ns_list, &others), &project_list);
    if !over.is_empty() {
        return Err(field_error(
            422,
            "MaxLimitExceeded",
            "resourceQuota",
            &format!(
                "exceeds projectLimit on fields: {}",
                quantity::format_list(&over)
            ),
        ));
    }
    Ok(())
}

/// rancher/webhook's namespace admission for a create or update.
fn admit(s: &Inner, old: Option<&Namespace>, new: &Namespace, create: bool) -> Result<(), Answer> {
    let name = if create {
        "rancher.cattle.io.namespaces.create-non-kubesystem"
    } else {
        NAMESPACES
    };
    // projectannotations.go: a SubjectAccessReview for `manage-namespaces`
    // on the target project. The webhook passes the review's reason on as
    // its message; Kubernetes' RBAC authorizer gives none when it denies, so
    // kube-apiserver (`webhook/errors/statuserror.go` `ToStatusErr`) words
    // the denial with the status reason alone.
    if let Some(target) = project_of(new)
        && old.and_then(project_of).as_deref() != Some(target.as_str())
        && s.no_manage_namespaces.contains(&target)
    {
        return Err(webhook::denied(403, "Unauthorized", name, "Unauthorized"));
    }
    // requestlimits.go
    if let Some(raw) = new.annotations.get(CONTAINER_LIMIT).and_then(Value::as_str)
        && raw != "{}"
    {
        let parsed: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                return Err(webhook::bad_request(
                    name,
                    &format!("invalid resource limits annotation: {e}"),
                ));
            }
        };
        for (req, lim) in [
            ("requestsCpu", "limitsCpu"),
            ("requestsMemory", "limitsMemory"),
        ] {
            let get = |k: &str| parsed.get(k).and_then(Value::as_str).unwrap_or_default();
            let (r, l) = (get(req), get(lim));
            let (rq, lq) = (quantity::parse(r), quantity::parse(l));
            for (k, v, q) in [(req, r, rq), (lim, l, lq)] {
                if !v.is_empty() && q.is_none() {
                    return Err(webhook::bad_request(
                        name,
                        &format!(
                            "invalid {k} value: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                        ),
                    ));
                }
            }
            if let (Some(rq), Some(lq)) = (rq, lq)
                && rq.nanos > lq.nanos
            {
                return Err(webhook::bad_request(
                    name,
                    &format!(
                        "{req} ({}) cannot be greater than {lim} ({})",
                        rq.canonical(),
                        lq.canonical()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn apply_metadata(ns: &mut Namespace, data: &Map<String, Value>) {
    let dest = json!({"labels": ns.labels, "annotations": ns.annotations});
    let mut src = Map::new();
    for k in ["labels", "annotations"] {
        if let Some(v) = data.get(k) {
            src.insert(k.into(), v.clone());
        }
    }
    let merged = merge::update_merge(&dest, &Value::Object(src));
    ns.labels = merged["labels"].as_object().cloned().unwrap_or_default();
    ns.annotations = merged["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
}

pub(crate) fn create(s: &mut Inner, cluster: &str, body: &Value) -> Answer {
    let mut data = builder_fields(body, true);
    let name = data
        .remove("name")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if name.is_empty() {
        return field_error(422, "MissingRequired", "name", "");
    }
    let key = (cluster.to_string(), name.clone());
    if s.namespaces.contains_key(&key) {
        return error(
            409,
            "AlreadyExists",
            &format!("namespaces \"{name}\" already exists"),
        );
    }
    let pid = data
        .get("projectId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Err(e) = validate_quota(s, &mut data, pid.as_deref(), None) {
        return e;
    }
    to_internal(&mut data);
    let mut ns = Namespace {
        name: name.clone(),
        labels: Map::new(),
        annotations: Map::new(),
        created_ms: now_ms(),
    };
    apply_metadata(&mut ns, &data);
    if let Err(e) = admit(s, None, &ns, true) {
        return e;
    }
    s.namespaces.insert(key, ns);
    controllers::namespace_changed(s, cluster, &name);
    (
        201,
        view(
            &s.base,
            cluster,
            &s.namespaces[&(cluster.to_string(), name)],
        ),
    )
}

pub(crate) fn update(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
    let key = (cluster.to_string(), name.to_string());
    let Some(old) = s.namespaces.get(&key).cloned() else {
        return not_found("namespaces", name);
    };
    let mut data = builder_fields(body, false);
    if let Err(e) = validate_quota(
        s,
        &mut data,
        project_of(&old).as_deref(),
        Some((cluster, name)),
    ) {
        return e;
    }
    to_internal(&mut data);
    let mut ns = old.clone();
    apply_metadata(&mut ns, &data);
    if let Err(e) = admit(s, Some(&old), &ns, false) {
        return e;
    }
    s.namespaces.insert(key.clone(), ns);
    controllers::namespace_changed(s, cluster, name);
    (200, view(&s.base, cluster, &s.namespaces[&key]))
}

pub(crate) fn move_to(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
    let key = (cluster.to_string(), name.to_string());
    let Some(old) = s.namespaces.get(&key).cloned() else {
        return not_found("namespaces", name);
    };
    let target = body["projectId"].as_str().unwrap_or_default().to_string();
    if !target.is_empty() {
        let Some(p) = s.projects.get(&target) else {
            return not_found("projects", &target);
        };
        // A plain Go error in Rancher, so it surfaces as a 500.
        if p.obj["resourceQuota"].is_object() {
            let display = p.obj["name"].as_str().unwrap_or_default();
            return error(
                500,
                "ServerError",
                &format!("can't move namespace. Project {display} has resource quota set"),
            );
        }
    }
    let mut ns = old.clone();
    if target.is_empty() {
        ns.annotations.remove(PROJECT_ID);
    } else {
        ns.annotations.insert(PROJECT_ID.into(), json!(target));
    }
    if let Err(e) = admit(s, Some(&old), &ns, false) {
        return e;
    }
    s.namespaces.insert(key, ns);
    controllers::namespace_changed(s, cluster, name);
    (200, json!({}))
}

pub(crate) fn delete(s: &mut Inner, cluster: &str, name: &str) -> Answer {
    let key = (cluster.to_string(), name.to_string());
    match s.namespaces.remove(&key) {
        Some(n) => {
            s.quotas.remove(&key);
            s.limit_ranges.remove(&key);
            let mut v = view(&s.base, cluster, &n);
            v["state"] = json!("removing");
            (200, v)
        }
        None => not_found("namespaces", name),
    }
}
