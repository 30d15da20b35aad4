//! The v3 resources: projects, role template bindings and the cluster-scoped
//! namespaces, with the validation and decorations Rancher applies.

use std::time::Instant;

use serde_json::{Value, json};

use crate::handlers::{Answer, error, field_error, not_found, now_ms, short_id};
use crate::{Inner, Project, ROLE_TEMPLATES};

const PROJECT_ANNOTATION: &str = "field.cattle.io/projectId";

pub(crate) fn cluster_obj(base: &str, id: &str) -> Value {
    json!({
        "id": id, "type": "cluster", "baseType": "cluster", "name": id, "state": "active",
        "links": {"self": format!("{base}/v3/clusters/{id}"),
                   "namespaces": format!("{base}/v3/clusters/{id}/namespaces")},
        "actions": {},
    })
}

pub(crate) fn refresh_states(s: &mut Inner) {
    let now = Instant::now();
    for p in s.projects.values_mut() {
        if p.obj["state"] == "initializing" && now >= p.active_at {
            p.obj["state"] = json!("active");
            p.obj["transitioning"] = json!("no");
        }
    }
}

/// Rancher decorates nested objects with their schema type.
fn decorate_quotas(obj: &mut Value) {
    for (field, outer, inner) in [
        (
            "resourceQuota",
            "/v3/schemas/projectResourceQuota",
            Some("/v3/schemas/resourceQuotaLimit"),
        ),
        (
            "namespaceDefaultResourceQuota",
            "/v3/schemas/namespaceResourceQuota",
            Some("/v3/schemas/resourceQuotaLimit"),
        ),
        (
            "containerDefaultResourceLimit",
            "/v3/schemas/containerResourceLimit",
            None,
        ),
    ] {
        let Some(v) = obj.get_mut(field) else {
            continue;
        };
        if !v.is_object() {
            continue;
        }
        v["type"] = json!(outer);
        if let Some(inner) = inner {
            if let Some(l) = v.get_mut("limit").filter(|l| l.is_object()) {
                l["type"] = json!(inner);
            }
            if field == "resourceQuota" && v.get("usedLimit").is_none() {
                v["usedLimit"] = json!({"type": inner});
            }
        }
    }
}

fn limit_keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().filter(|k| *k != "type").cloned().collect())
        .unwrap_or_default()
}

fn check_quotas(obj: &Value) -> Result<(), Answer> {
    let project = limit_keys(obj.pointer("/resourceQuota/limit"));
    let ns = limit_keys(obj.pointer("/namespaceDefaultResourceQuota/limit"));
    for k in &project {
        if !ns.contains(k) {
            return Err(field_error(
                422,
                "InvalidBodyContent",
                "namespaceDefaultResourceQuota",
                &format!(
                    "missing namespace default quota for {k}: a project quota needs one for every resource"
                ),
            ));
        }
    }
    if !ns.is_empty() && project.is_empty() {
        return Err(field_error(
            422,
            "InvalidBodyContent",
            "resourceQuota",
            "a namespace default quota needs a project resource quota",
        ));
    }
    Ok(())
}

fn project_links(base: &str, id: &str) -> Value {
    let me = format!("{base}/v3/projects/{id}");
    json!({
        "self": me, "update": me, "remove": me,
        "projectRoleTemplateBindings": format!("{me}/projectroletemplatebindings"),
        "namespaces": format!("{me}/namespaces"),
    })
}

pub(crate) fn create_project(s: &mut Inner, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return field_error(422, "MissingRequired", "name", "name is required");
    }
    let cluster = body["clusterId"].as_str().unwrap_or_default().to_string();
    if !s.clusters.contains(&cluster) {
        return field_error(
            422,
            "InvalidReference",
            "clusterId",
            &format!("cluster {cluster:?} not found"),
        );
    }
    if let Err(e) = check_quotas(body) {
        return e;
    }
    let id = format!("{cluster}:p-{}", short_id(s));
    let mut obj = body.clone();
    let mut labels = body["labels"].as_object().cloned().unwrap_or_default();
    labels.insert("cattle.io/creator".into(), json!("norman"));
    let mut annotations = body["annotations"].as_object().cloned().unwrap_or_default();
    annotations.insert("field.cattle.io/creatorId".into(), json!("user-t3st"));
    let ts = now_ms();
    for (k, v) in [
        ("id", json!(id)),
        ("type", json!("project")),
        ("baseType", json!("project")),
        ("namespaceId", json!(cluster)),
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
        ("creatorId", json!("user-t3st")),
        ("createdTS", json!(ts)),
        ("uuid", json!(format!("00000000-0000-4000-8000-{ts:012}"))),
        ("state", json!("initializing")),
        ("transitioning", json!("yes")),
        ("transitioningMessage", json!("")),
        ("links", project_links(&s.base, &id)),
        (
            "actions",
            json!({"exportYaml": format!("{}/v3/projects/{id}?action=exportYaml", s.base)}),
        ),
    ] {
        obj[k] = v;
    }
    decorate_quotas(&mut obj);
    let active_at = Instant::now() + s.activate_after;
    s.projects.insert(
        id,
        Project {
            obj: obj.clone(),
            active_at,
        },
    );
    (201, obj)
}

pub(crate) fn update_project(s: &mut Inner, id: &str, body: &Value) -> Answer {
    let Some(p) = s.projects.get(id) else {
        return not_found("projects", id);
    };
    let mut obj = p.obj.clone();
    for k in [
        "name",
        "description",
        "labels",
        "annotations",
        "resourceQuota",
        "namespaceDefaultResourceQuota",
        "containerDefaultResourceLimit",
    ] {
        if let Some(v) = body.get(k) {
            obj[k] = v.clone();
        }
    }
    if body
        .get("clusterId")
        .is_some_and(|c| *c != obj["clusterId"])
    {
        return field_error(
            422,
            "InvalidBodyContent",
            "clusterId",
            "clusterId cannot be changed",
        );
    }
    if let Err(e) = check_quotas(&obj) {
        return e;
    }
    decorate_quotas(&mut obj);
    if let Some(p) = s.projects.get_mut(id) {
        p.obj = obj.clone();
    }
    (200, obj)
}

pub(crate) fn delete_project(s: &mut Inner, id: &str) -> Answer {
    let Some(p) = s.projects.remove(id) else {
        return not_found("projects", id);
    };
    // Rancher removes a project's bindings and its namespaces with it.
    s.bindings.retain(|_, b| b["projectId"] != id);
    s.namespaces.retain(|_, n| n["projectId"] != id);
    let mut obj = p.obj;
    obj["state"] = json!("removing");
    (200, obj)
}

pub(crate) fn insert_project_raw(s: &mut Inner, mut obj: Value) -> String {
    let cluster = obj["clusterId"].as_str().unwrap_or("c-m-abc12").to_string();
    let id = match obj["id"].as_str() {
        Some(id) => id.to_string(),
        None => format!("{cluster}:p-{}", short_id(s)),
    };
    obj["id"] = json!(id);
    if obj.get("state").is_none() {
        obj["state"] = json!("active");
    }
    if obj.get("links").is_none() {
        obj["links"] = project_links(&s.base, &id);
    }
    s.projects.insert(
        id.clone(),
        Project {
            obj,
            active_at: Instant::now(),
        },
    );
    id
}

const SUBJECTS: [&str; 4] = ["userId", "userPrincipalId", "groupId", "groupPrincipalId"];

pub(crate) fn create_binding(s: &mut Inner, body: &Value) -> Answer {
    let project_id = body["projectId"].as_str().unwrap_or_default().to_string();
    if !s.projects.contains_key(&project_id) {
        return field_error(
            422,
            "InvalidReference",
            "projectId",
            &format!("project {project_id:?} not found"),
        );
    }
    let role = body["roleTemplateId"].as_str().unwrap_or_default();
    if !ROLE_TEMPLATES.contains(&role) {
        return field_error(
            422,
            "InvalidReference",
            "roleTemplateId",
            &format!("roletemplates \"{role}\" not found"),
        );
    }
    let set = |f: &str| body[f].as_str().is_some_and(|v| !v.is_empty());
    let user = set("userId") || set("userPrincipalId");
    let group = set("groupId") || set("groupPrincipalId");
    if user == group {
        return error(
            422,
            "InvalidBodyContent",
            "binding must target either a user [userId]/[userPrincipalId] OR a group [groupId]/[groupPrincipalId]",
        );
    }
    let project_name = project_id
        .split_once(':')
        .map(|(_, p)| p)
        .unwrap_or(&project_id)
        .to_string();
    let name = format!("prtb-{}", short_id(s));
    let id = format!("{project_name}:{name}");
    let mut obj = json!({
        "id": id, "type": "projectRoleTemplateBinding", "baseType": "projectRoleTemplateBinding",
        "name": name, "namespaceId": project_name, "projectId": project_id, "roleTemplateId": role,
        "labels": body["labels"].as_object().cloned().unwrap_or_default(),
        "annotations": body["annotations"].as_object().cloned().unwrap_or_default(),
        "creatorId": "user-t3st", "createdTS": now_ms(), "state": "active",
        "links": {
            "self": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
            "update": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
            "remove": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
        },
        "actions": {},
    });
    for f in SUBJECTS {
        if set(f) {
            obj[f] = body[f].clone();
        }
    }
    // Rancher resolves a local principal to its user and fills `userId`.
    if let Some(u) = body["userPrincipalId"]
        .as_str()
        .and_then(|p| p.strip_prefix("local://"))
        && !set("userId")
    {
        obj["userId"] = json!(u);
    }
    s.bindings.insert(id, obj.clone());
    (201, obj)
}

pub(crate) fn insert_binding_raw(s: &mut Inner, mut obj: Value) -> String {
    let id = match obj["id"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let pid = obj["projectId"].as_str().unwrap_or_default().to_string();
            let pname = pid
                .split_once(':')
                .map(|(_, p)| p.to_string())
                .unwrap_or(pid);
            format!("{pname}:prtb-{}", short_id(s))
        }
    };
    obj["id"] = json!(id);
    s.bindings.insert(id.clone(), obj);
    id
}

fn set_namespace_project(ns: &mut Value, project_id: Option<&str>) {
    if !ns["annotations"].is_object() {
        ns["annotations"] = json!({});
    }
    if !ns["labels"].is_object() {
        ns["labels"] = json!({});
    }
    match project_id.filter(|p| !p.is_empty()) {
        Some(p) => {
            ns["annotations"][PROJECT_ANNOTATION] = json!(p);
            let short = p.split_once(':').map(|(_, x)| x).unwrap_or(p);
            ns["labels"][PROJECT_ANNOTATION] = json!(short);
            ns["projectId"] = json!(p);
        }
        None => {
            if let Some(m) = ns["annotations"].as_object_mut() {
                m.remove(PROJECT_ANNOTATION);
            }
            if let Some(m) = ns["labels"].as_object_mut() {
                m.remove(PROJECT_ANNOTATION);
            }
            ns["projectId"] = Value::Null;
        }
    }
}

pub(crate) fn new_namespace(base: &str, cluster: &str, body: &Value) -> Value {
    let name = body["name"].as_str().unwrap_or_default();
    let me = format!("{base}/v3/clusters/{cluster}/namespaces/{name}");
    let mut ns = json!({
        "id": name, "type": "namespace", "baseType": "namespace", "name": name,
        "labels": body["labels"].as_object().cloned().unwrap_or_default(),
        "annotations": body["annotations"].as_object().cloned().unwrap_or_default(),
        "state": "active", "createdTS": now_ms(),
        "links": {"self": me, "update": me, "remove": me},
        "actions": {"move": format!("{me}?action=move")},
    });
    // The annotation wins, as in Rancher: `projectId` is derived from it.
    let pid = body
        .pointer(&format!(
            "/annotations/{}",
            PROJECT_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .or_else(|| body["projectId"].as_str())
        .map(str::to_string);
    set_namespace_project(&mut ns, pid.as_deref());
    ns
}

pub(crate) fn create_namespace(s: &mut Inner, cluster: &str, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return field_error(422, "MissingRequired", "name", "name is required");
    }
    let key = (cluster.to_string(), name.to_string());
    if s.namespaces.contains_key(&key) {
        return field_error(
            409,
            "AlreadyExists",
            "name",
            &format!("namespaces \"{name}\" already exists"),
        );
    }
    let ns = new_namespace(&s.base, cluster, body);
    s.namespaces.insert(key, ns.clone());
    (201, ns)
}

pub(crate) fn update_namespace(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
    let key = (cluster.to_string(), name.to_string());
    let Some(old) = s.namespaces.get(&key) else {
        return not_found("namespaces", name);
    };
    let mut ns = old.clone();
    let ann_ptr = format!("/annotations/{}", PROJECT_ANNOTATION.replace('/', "~1"));
    let old_ann = old
        .pointer(&ann_ptr)
        .and_then(Value::as_str)
        .map(str::to_string);
    let new_ann = body
        .pointer(&ann_ptr)
        .and_then(Value::as_str)
        .map(str::to_string);
    for k in ["labels", "annotations", "description"] {
        if let Some(v) = body.get(k) {
            ns[k] = v.clone();
        }
    }
    let pid = if body.get("annotations").is_some() && new_ann != old_ann {
        new_ann
    } else if let Some(p) = body.get("projectId").filter(|p| **p != old["projectId"]) {
        p.as_str().map(str::to_string)
    } else {
        old_ann
    };
    set_namespace_project(&mut ns, pid.as_deref());
    s.namespaces.insert(key, ns.clone());
    (200, ns)
}

pub(crate) fn move_namespace(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
    let key = (cluster.to_string(), name.to_string());
    if !s.namespaces.contains_key(&key) {
        return not_found("namespaces", name);
    }
    let target = body["projectId"].as_str().unwrap_or_default().to_string();
    if !target.is_empty() {
        let Some(p) = s.projects.get(&target) else {
            return not_found("projects", &target);
        };
        // Rancher's move action refuses projects with a quota (it is a plain
        // Go error there, so it surfaces as a 500).
        if p.obj["resourceQuota"].is_object() {
            let display = p.obj["name"].as_str().unwrap_or_default();
            return error(
                500,
                "ServerError",
                &format!("can't move namespace. Project {display} has resource quota set"),
            );
        }
    }
    if let Some(ns) = s.namespaces.get_mut(&key) {
        set_namespace_project(ns, Some(&target));
    }
    (200, json!({}))
}
