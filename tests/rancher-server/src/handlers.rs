//! Request handling: auth, faults, logging, and the v3 resources.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::{Fault, Inner, LoggedRequest, Project, ROLE_TEMPLATES, Shared, lock};

const PROJECT_ANNOTATION: &str = "field.cattle.io/projectId";

pub(crate) fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

type Answer = (u16, Value);

fn error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        json!({"type": "error", "baseType": "error", "status": status, "code": code, "message": message}),
    )
}

fn field_error(status: u16, code: &str, field: &str, message: &str) -> Answer {
    let (s, mut v) = error(status, code, message);
    v["fieldName"] = json!(field);
    (s, v)
}

fn code_for(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "PermissionDenied",
        404 => "NotFound",
        405 => "MethodNotAllow",
        409 => "Conflict",
        422 => "InvalidBodyContent",
        503 => "ClusterUnavailable",
        _ => "ServerError",
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    if path == "/ping" {
        return (StatusCode::OK, "pong").into_response();
    }
    let body_json: Option<Result<Value, String>> = if body.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(&body).map_err(|e| e.to_string()))
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let (latency, fault) = {
        let mut g = lock(&s);
        (g.latency, take_fault(&mut g.faults, method.as_str(), &path))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (status, value) = {
        let mut g = lock(&s);
        let answer = if let Some(f) = fault {
            error(f.status, code_for(f.status), &f.message)
        } else if !bearer.as_ref().is_some_and(|t| g.tokens.contains(t)) {
            error(401, "Unauthorized", "must authenticate")
        } else {
            match &body_json {
                Some(Err(e)) => error(
                    422,
                    "InvalidBodyContent",
                    &format!("Failed to parse body: {e}"),
                ),
                _ => {
                    let b = body_json.as_ref().and_then(|r| r.as_ref().ok());
                    refresh_states(&mut g);
                    dispatch(&mut g, &method, &path, &query, b)
                }
            }
        };
        g.log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: answer.0,
            body: body_json.and_then(Result::ok),
            had_bearer: bearer.is_some(),
        });
        answer
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(value)).into_response()
}

fn take_fault(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<Fault> {
    let mut fired = None;
    for f in faults.iter_mut() {
        let matches = f.method.as_deref().is_none_or(|m| m == method)
            && f.path_prefix.as_deref().is_none_or(|p| path.starts_with(p));
        if !matches || f.remaining == 0 {
            continue;
        }
        f.seen += 1;
        let fire = f.nth.is_none_or(|n| f.seen == n);
        if fire && fired.is_none() {
            f.remaining -= 1;
            fired = Some(f.clone());
        }
    }
    faults.retain(|f| f.remaining > 0);
    fired
}

fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn dispatch(
    s: &mut Inner,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<&Value>,
) -> Answer {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = query_pairs(query);
    let m = method.as_str();
    let empty = Value::Object(Map::new());
    let body = body.unwrap_or(&empty);
    match (m, segs.as_slice()) {
        ("GET", ["v3", "projects"]) => {
            let items = s.projects.values().map(|p| p.obj.clone()).collect();
            collection(s, "project", path, items, &q)
        }
        ("POST", ["v3", "projects"]) => create_project(s, body),
        ("GET", ["v3", "projects", id]) => match s.projects.get(*id) {
            Some(p) => (200, p.obj.clone()),
            None => not_found("projects", id),
        },
        ("PUT", ["v3", "projects", id]) => update_project(s, id, body),
        ("DELETE", ["v3", "projects", id]) => delete_project(s, id),
        ("GET", ["v3", "projectroletemplatebindings"]) => {
            let items = s.bindings.values().cloned().collect();
            collection(s, "projectRoleTemplateBinding", path, items, &q)
        }
        ("POST", ["v3", "projectroletemplatebindings"]) => create_binding(s, body),
        ("GET", ["v3", "projectroletemplatebindings", id]) => match s.bindings.get(*id) {
            Some(b) => (200, b.clone()),
            None => not_found("projectroletemplatebindings", id),
        },
        ("DELETE", ["v3", "projectroletemplatebindings", id]) => match s.bindings.remove(*id) {
            Some(mut b) => {
                b["state"] = json!("removing");
                (200, b)
            }
            None => not_found("projectroletemplatebindings", id),
        },
        (_, ["v3", "clusters", cluster, rest @ ..]) if !s.clusters.contains(*cluster) => {
            let _ = rest;
            not_found("clusters", cluster)
        }
        ("GET", ["v3", "clusters", cluster]) => (200, cluster_obj(&s.base, cluster)),
        ("GET", ["v3", "clusters", cluster, "namespaces"]) => {
            let items = s
                .namespaces
                .iter()
                .filter(|((c, _), _)| c == cluster)
                .map(|(_, v)| v.clone())
                .collect();
            collection(s, "namespace", path, items, &q)
        }
        ("POST", ["v3", "clusters", cluster, "namespaces"]) => create_namespace(s, cluster, body),
        ("GET", ["v3", "clusters", cluster, "namespaces", name]) => {
            match s.namespaces.get(&(cluster.to_string(), name.to_string())) {
                Some(n) => (200, n.clone()),
                None => not_found("namespaces", name),
            }
        }
        ("PUT", ["v3", "clusters", cluster, "namespaces", name]) => {
            update_namespace(s, cluster, name, body)
        }
        ("POST", ["v3", "clusters", cluster, "namespaces", name])
            if q.iter().any(|(k, v)| k == "action" && v == "move") =>
        {
            move_namespace(s, cluster, name, body)
        }
        ("DELETE", ["v3", "clusters", cluster, "namespaces", name]) => {
            match s
                .namespaces
                .remove(&(cluster.to_string(), name.to_string()))
            {
                Some(n) => (200, n),
                None => not_found("namespaces", name),
            }
        }
        (_, ["v3", ..]) => error(405, "MethodNotAllow", &format!("Method {m} not supported")),
        _ => error(404, "NotFound", "not found"),
    }
}

fn not_found(kind: &str, id: &str) -> Answer {
    error(404, "NotFound", &format!("{kind} \"{id}\" not found"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn short_id(s: &mut Inner) -> String {
    s.next_id += 1;
    // Rancher ids are five lowercase alphanumerics; mix the counter so ids
    // do not look sequential (clients must not guess them).
    let mut n = s.next_id.wrapping_mul(2_654_435_761) % 60_466_176;
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 5];
    for c in out.iter_mut().rev() {
        *c = alphabet[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn collection(
    s: &Inner,
    resource_type: &str,
    path: &str,
    items: Vec<Value>,
    q: &[(String, String)],
) -> Answer {
    let reserved = ["limit", "marker", "sort", "order", "action"];
    let filters: Vec<&(String, String)> = q
        .iter()
        .filter(|(k, _)| !reserved.contains(&k.as_str()))
        .collect();
    let mut data: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|(k, v)| match item.get(k) {
                Some(Value::String(x)) => x == v,
                Some(Value::Number(n)) => n.to_string() == *v,
                Some(Value::Bool(b)) => b.to_string() == *v,
                _ => v.is_empty(),
            })
        })
        .collect();
    let total = data.len();
    let limit: usize = q
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(1000);
    let start: usize = q
        .iter()
        .find(|(k, _)| k == "marker")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    data = data.into_iter().skip(start).take(limit).collect();
    let mut pagination = json!({"limit": limit, "total": total});
    if start + limit < total {
        let mut next_q: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        next_q.push(format!("limit={limit}"));
        next_q.push(format!("marker={}", start + limit));
        pagination["next"] = json!(format!("{}{}?{}", s.base, path, next_q.join("&")));
        pagination["partial"] = json!(true);
    }
    let filter_obj: Map<String, Value> = filters
        .iter()
        .map(|(k, v)| (k.clone(), json!([{"modifier": "eq", "value": v}])))
        .collect();
    (
        200,
        json!({
            "type": "collection",
            "resourceType": resource_type,
            "links": {"self": format!("{}{}", s.base, path)},
            "createTypes": {resource_type: format!("{}{}", s.base, path)},
            "actions": {},
            "pagination": pagination,
            "sort": {"order": "asc", "reverse": format!("{}{}?order=desc", s.base, path)},
            "filters": filter_obj,
            "data": data,
        }),
    )
}

fn cluster_obj(base: &str, id: &str) -> Value {
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

fn create_project(s: &mut Inner, body: &Value) -> Answer {
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

fn update_project(s: &mut Inner, id: &str, body: &Value) -> Answer {
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

fn delete_project(s: &mut Inner, id: &str) -> Answer {
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

fn create_binding(s: &mut Inner, body: &Value) -> Answer {
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

fn create_namespace(s: &mut Inner, cluster: &str, body: &Value) -> Answer {
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

fn update_namespace(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
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

fn move_namespace(s: &mut Inner, cluster: &str, name: &str, body: &Value) -> Answer {
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
