//! Request handling: auth, faults, logging, and the v3 resources.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::{Fault, Inner, LoggedRequest, Shared, bindings, lock, namespaces, projects};

pub(crate) fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

pub(crate) type Answer = (u16, Value);

pub(crate) fn error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        json!({"type": "error", "baseType": "error", "status": status, "code": code, "message": message}),
    )
}

pub(crate) fn field_error(status: u16, code: &str, field: &str, message: &str) -> Answer {
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
        400 => "BadRequest",
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
    // Rancher builds links from the request's host (and the proxy headers),
    // so behind a proxy that rewrites the host they name the inner one.
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get("host"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
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
                    projects::refresh_states(&mut g);
                    g.base = request_base(&g.own_base, host.as_deref(), proto.as_deref());
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

fn request_base(own: &str, host: Option<&str>, proto: Option<&str>) -> String {
    let scheme = proto.unwrap_or_else(|| own.split_once("://").map(|(s, _)| s).unwrap_or("http"));
    match host {
        Some(h) => format!("{scheme}://{h}"),
        None => own.to_string(),
    }
}

pub(crate) fn cluster_obj(base: &str, id: &str) -> Value {
    json!({
        "id": id, "type": "cluster", "baseType": "cluster", "name": id, "state": "active",
        "links": {"self": format!("{base}/v3/clusters/{id}"),
                   "namespaces": format!("{base}/v3/clusters/{id}/namespaces")},
        "actions": {},
    })
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
        ("POST", ["v3", "projects"]) => projects::create(s, body),
        ("GET", ["v3", "projects", id]) => match s.projects.get(*id) {
            Some(p) => (200, p.obj.clone()),
            None => not_found("projects", id),
        },
        ("PUT", ["v3", "projects", id]) => projects::update(s, id, body),
        ("DELETE", ["v3", "projects", id]) => projects::delete(s, id),
        ("GET", ["v3", "projectroletemplatebindings"]) => {
            let items = s.bindings.values().cloned().collect();
            collection(s, "projectRoleTemplateBinding", path, items, &q)
        }
        ("POST", ["v3", "projectroletemplatebindings"]) => bindings::create(s, body),
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
                .map(|(_, n)| namespaces::view(&s.base, cluster, n))
                .collect();
            collection(s, "namespace", path, items, &q)
        }
        ("POST", ["v3", "clusters", cluster, "namespaces"]) => namespaces::create(s, cluster, body),
        ("GET", ["v3", "clusters", cluster, "namespaces", name]) => {
            match s.namespaces.get(&(cluster.to_string(), name.to_string())) {
                Some(n) => (200, namespaces::view(&s.base, cluster, n)),
                None => not_found("namespaces", name),
            }
        }
        ("PUT", ["v3", "clusters", cluster, "namespaces", name]) => {
            namespaces::update(s, cluster, name, body)
        }
        ("POST", ["v3", "clusters", cluster, "namespaces", name])
            if q.iter().any(|(k, v)| k == "action" && v == "move") =>
        {
            namespaces::move_to(s, cluster, name, body)
        }
        ("DELETE", ["v3", "clusters", cluster, "namespaces", name]) => {
            namespaces::delete(s, cluster, name)
        }
        (_, ["v3", ..]) => error(405, "MethodNotAllow", &format!("Method {m} not supported")),
        _ => error(404, "NotFound", "not found"),
    }
}

pub(crate) fn not_found(kind: &str, id: &str) -> Answer {
    error(404, "NotFound", &format!("{kind} \"{id}\" not found"))
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn short_id(s: &mut Inner) -> String {
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
