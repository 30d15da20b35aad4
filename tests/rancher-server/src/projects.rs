//! Projects: the norman store (create, PUT merge, delete) and rancher/webhook's
//! project validator (`pkg/resources/management.cattle.io/v3/project/validator.go`).

use std::time::Instant;

use serde_json::{Value, json};

use crate::handlers::{Answer, field_error, not_found, now_ms, short_id};
use crate::quantity::{self, ResourceList};
use crate::webhook::{self, PROJECTS};
use crate::{Inner, Project, controllers, merge};

/// Fields a PUT may change; the rest (`clusterId` is `noupdate`, the
/// generated ones are read-only) norman's builder drops silently.
const UPDATABLE: &[&str] = &[
    "name",
    "description",
    "labels",
    "annotations",
    "resourceQuota",
    "namespaceDefaultResourceQuota",
    "containerDefaultResourceLimit",
];

const QUOTA_FIELDS: [&str; 3] = [
    "resourceQuota",
    "namespaceDefaultResourceQuota",
    "containerDefaultResourceLimit",
];

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
pub(crate) fn decorate_quotas(obj: &mut Value) {
    for (field, outer) in [
        ("resourceQuota", "/v3/schemas/projectResourceQuota"),
        (
            "namespaceDefaultResourceQuota",
            "/v3/schemas/namespaceResourceQuota",
        ),
        (
            "containerDefaultResourceLimit",
            "/v3/schemas/containerResourceLimit",
        ),
    ] {
        let Some(v) = obj.get_mut(field).filter(|v| v.is_object()) else {
            continue;
        };
        v["type"] = json!(outer);
        for inner in ["limit", "usedLimit"] {
            if field == "containerDefaultResourceLimit" {
                break;
            }
            if field == "resourceQuota" && v.get(inner).is_none() {
                v[inner] = json!({});
            }
            if let Some(l) = v.get_mut(inner).filter(|l| l.is_object()) {
                l["type"] = json!("/v3/schemas/resourceQuotaLimit");
            }
        }
    }
}

/// Kubernetes decodes `{"pods": null}` and `""` as absent (`omitempty`).
fn drop_empty_values(obj: &mut Value) {
    for field in QUOTA_FIELDS {
        match obj.get_mut(field) {
            Some(Value::Null) => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove(field);
                }
            }
            Some(v) => {
                let maps: Vec<&mut Value> = if field == "containerDefaultResourceLimit" {
                    vec![v]
                } else {
                    let m = v.as_object_mut().into_iter().flat_map(|m| m.values_mut());
                    m.collect()
                };
                for m in maps.into_iter().filter_map(Value::as_object_mut) {
                    m.retain(|_, x| !(x.is_null() || x.as_str() == Some("")));
                }
            }
            None => {}
        }
    }
}

fn project_links(base: &str, id: &str) -> Value {
    let me = format!("{base}/v3/projects/{id}");
    json!({
        "self": me, "update": me, "remove": me,
        "projectRoleTemplateBindings": format!("{me}/projectroletemplatebindings"),
        "namespaces": format!("{me}/namespaces"),
    })
}

/// The project's `namespaceDefaultResourceQuota.limit`, when it has a `resourceQuota`.
pub(crate) fn namespace_default(p: &Value) -> Option<&Value> {
    p.get("resourceQuota").filter(|q| q.is_object())?;
    p.pointer("/namespaceDefaultResourceQuota/limit")
        .filter(|l| l.is_object())
}

/// The project's `resourceQuota.limit`, when it has one.
pub(crate) fn quota_limit(p: &Value) -> Option<&Value> {
    p.pointer("/resourceQuota/limit").filter(|l| l.is_object())
}

fn limit_keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, v)| *k != "type" && !v.is_null() && v.as_str() != Some(""))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn list(v: Option<&Value>, path: &str) -> Result<ResourceList, Answer> {
    quantity::to_list(v.unwrap_or(&Value::Null)).map_err(|key| {
        webhook::bad_request(
            PROJECTS,
            &format!("{path}: failed to parse quantity of {key}"),
        )
    })
}

/// rancher/webhook's project admission (create and update).
fn admit(s: &Inner, old: Option<&Value>, new: &Value) -> Result<(), Answer> {
    let spec = "project.spec";
    if let Some(c) = new
        .get("containerDefaultResourceLimit")
        .filter(|c| c.is_object())
    {
        check_container_limit(c)?;
    }
    let pq = new.get("resourceQuota").filter(|q| q.is_object());
    let nq = new
        .get("namespaceDefaultResourceQuota")
        .filter(|q| q.is_object());
    let deny = |msg: String| Err(webhook::bad_request(PROJECTS, &msg));
    match (pq, nq) {
        (None, None) => return Ok(()),
        (None, Some(_)) => {
            return deny(webhook::required(
                &format!("{spec}.resourceQuota"),
                "required when namespaceDefaultResourceQuota is set",
            ));
        }
        (Some(_), None) => {
            return deny(webhook::required(
                &format!("{spec}.namespaceDefaultResourceQuota"),
                "required when resourceQuota is set",
            ));
        }
        _ => {}
    }
    let (pl, nl) = (
        new.pointer("/resourceQuota/limit"),
        new.pointer("/namespaceDefaultResourceQuota/limit"),
    );
    let (pk, nk) = (limit_keys(pl), limit_keys(nl));
    if pk.len() != nk.len() {
        let value = format!(
            "v3.ProjectResourceQuota{{Limit:{}, UsedLimit:{}}}",
            webhook::go_quota_limit(pl),
            webhook::go_quota_limit(new.pointer("/resourceQuota/usedLimit"))
        );
        return deny(webhook::invalid(
            &format!("{spec}.resourceQuota"),
            &value,
            "resource quota and namespace default quota do not have the same resources defined",
        ));
    }
    if let Some(k) = pk.iter().find(|k| !nk.contains(k)) {
        let value = format!(
            "v3.NamespaceResourceQuota{{Limit:{}}}",
            webhook::go_quota_limit(nl)
        );
        return deny(webhook::invalid(
            &format!("{spec}.namespaceDefaultResourceQuota"),
            &value,
            &format!("missing namespace default for resource {k} defined on resourceQuota"),
        ));
    }
    let project = list(pl, "resourceQuota")?;
    let default = list(nl, "namespaceDefaultResourceQuota")?;
    let over = quantity::exceeded(&default, &project);
    if !over.is_empty() {
        return deny(webhook::forbidden(
            &format!("{spec}.namespaceDefaultResourceQuota"),
            &format!(
                "namespace default quota limit exceeds project limit on fields: {}",
                quantity::format_list(&over)
            ),
        ));
    }
    let Some(old) = old.filter(|o| o.get("resourceQuota").is_some_and(Value::is_object)) else {
        return Ok(());
    };
    let used = list(old.pointer("/resourceQuota/usedLimit"), "usedLimit")?;
    let over = quantity::exceeded(&used, &project);
    if !over.is_empty() {
        return deny(webhook::forbidden(
            &format!("{spec}.resourceQuota"),
            &format!(
                "resourceQuota is below the used limit on fields: {}",
                quantity::format_list(&over)
            ),
        ));
    }
    // Resources newly added to the defaults must fit every namespace of the
    // project (rancher/webhook v0.4.x, Rancher 2.7–2.8, `checkQuotaRequest`).
    let added: ResourceList = default
        .iter()
        .filter(|(k, _)| !used.contains_key(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if !added.is_empty() {
        let id = old["id"].as_str().unwrap_or_default();
        let count = s
            .namespaces
            .values()
            .filter(|n| crate::namespaces::project_of(n).as_deref() == Some(id))
            .count();
        let mut sum = ResourceList::new();
        for _ in 0..count {
            sum = quantity::add(&sum, &added);
        }
        let over = quantity::exceeded(&sum, &project);
        if !over.is_empty() {
            return deny(format!(
                "exceeds project limit on fields {} when applied to all namespaces in the project",
                quantity::format_list(&over)
            ));
        }
    }
    Ok(())
}

/// `validateContainerDefaultResourceLimit` of the project validator.
fn check_container_limit(c: &Value) -> Result<(), Answer> {
    let path = "project.spec.containerDefaultResourceLimit";
    let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut parsed = Vec::new();
    for (key, what) in [
        ("requestsCpu", "requested CPU"),
        ("limitsCpu", "CPU limit"),
        ("requestsMemory", "requested memory"),
        ("limitsMemory", "memory limit"),
    ] {
        let v = get(key);
        if v.is_empty() {
            parsed.push(None);
            continue;
        }
        match quantity::parse(v) {
            Some(q) => parsed.push(Some(q)),
            None => {
                return Err(webhook::bad_request(
                    PROJECTS,
                    &webhook::invalid(
                        path,
                        &format!("\"{v}\""),
                        &format!(
                            "failed to parse container default {what}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                        ),
                    ),
                ));
            }
        }
    }
    let mut errors = Vec::new();
    for (req, lim, what, rk, lk) in [
        (0, 1, "CPU", "requestsCpu", "limitsCpu"),
        (2, 3, "memory", "requestsMemory", "limitsMemory"),
    ] {
        if let (Some(r), Some(l)) = (parsed[req], parsed[lim])
            && r.nanos > l.nanos
        {
            errors.push(webhook::invalid(
                path,
                &webhook::go_container_limit(Some(c)),
                &format!(
                    "requested {what} {} is greater than limit {}",
                    get(rk),
                    get(lk)
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(webhook::bad_request(PROJECTS, &errors.join("\n")))
    }
}

pub(crate) fn create(s: &mut Inner, body: &Value) -> Answer {
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() {
        return field_error(422, "MissingRequired", "name", "");
    }
    let cluster = body["clusterId"].as_str().unwrap_or_default().to_string();
    if !s.clusters.contains(&cluster) {
        return field_error(
            422,
            "InvalidFormat",
            "clusterId",
            &format!("Not found type: cluster id: {cluster}"),
        );
    }
    let mut obj = body.clone();
    drop_empty_values(&mut obj);
    if let Err(e) = admit(s, None, &obj) {
        return e;
    }
    let id = format!("{cluster}:p-{}", short_id(s));
    let mut labels = body["labels"].as_object().cloned().unwrap_or_default();
    labels.insert("cattle.io/creator".into(), json!("norman"));
    let mut annotations = body["annotations"].as_object().cloned().unwrap_or_default();
    annotations.insert("field.cattle.io/creatorId".into(), json!(crate::TOKEN_USER));
    let ts = now_ms();
    for (k, v) in [
        ("id", json!(id)),
        ("type", json!("project")),
        ("baseType", json!("project")),
        ("namespaceId", json!(cluster)),
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
        ("creatorId", json!(crate::TOKEN_USER)),
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
        id.clone(),
        Project {
            obj: obj.clone(),
            active_at,
        },
    );
    controllers::project_changed(s, &id);
    (201, s.projects[&id].obj.clone())
}

pub(crate) fn update(s: &mut Inner, id: &str, body: &Value) -> Answer {
    let Some(p) = s.projects.get(id) else {
        return not_found("projects", id);
    };
    let old = p.obj.clone();
    let src: serde_json::Map<String, Value> = body
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| UPDATABLE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut obj = merge::update_merge(&old, &Value::Object(src));
    drop_empty_values(&mut obj);
    if let Err(e) = admit(s, Some(&old), &obj) {
        return e;
    }
    decorate_quotas(&mut obj);
    if let Some(p) = s.projects.get_mut(id) {
        p.obj = obj;
    }
    controllers::project_changed(s, id);
    (200, s.projects[id].obj.clone())
}

pub(crate) fn delete(s: &mut Inner, id: &str) -> Answer {
    if s.projects.get(id).is_some_and(|p| {
        p.obj
            .pointer("/labels/authz.management.cattle.io~1system-project")
            == Some(&json!("true"))
    }) {
        return webhook::bad_request(PROJECTS, "System Project cannot be deleted");
    }
    let Some(p) = s.projects.remove(id) else {
        return not_found("projects", id);
    };
    // Rancher removes a project's bindings and its namespaces with it.
    s.bindings.retain(|_, b| b["projectId"] != id);
    let gone: Vec<(String, String)> = s
        .namespaces
        .iter()
        .filter(|(_, n)| crate::namespaces::project_of(n).as_deref() == Some(id))
        .map(|(k, _)| k.clone())
        .collect();
    for key in gone {
        s.namespaces.remove(&key);
        s.quotas.remove(&key);
        s.limit_ranges.remove(&key);
    }
    let mut obj = p.obj;
    obj["state"] = json!("removing");
    (200, obj)
}

pub(crate) fn insert_raw(s: &mut Inner, mut obj: Value) -> String {
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
