//! HTTP dispatch: faults, auth, discovery, OpenAPI, and the resource REST paths.

mod body;
mod discovery;
mod openapi;
mod protobuf;
mod read;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};

pub use body::Body;

use crate::faults::{FaultAction, RequestRecord};
use crate::ops::{self, Ctx, PatchKind};
use crate::registry::ResourceType;
use crate::server::Shared;
use crate::status::ApiError;
use crate::util::Query;

/// `MaxRequestBodyBytes` of the real server's config (3 MiB).
pub const MAX_REQUEST_BODY: usize = 3 * 1024 * 1024;

const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json";

enum Reply {
    Json(u16, Value, &'static str),
    /// A JSON answer with `Warning: 299` headers (e.g. dropped unknown fields).
    Warned(u16, Value, Vec<String>),
    Raw(u16, Vec<u8>),
    Text(u16, &'static str),
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
    Error(ApiError),
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::Error(e)
    }
}

fn json_reply(v: Value) -> Reply {
    Reply::Json(200, v, "application/json")
}

struct Req<'a> {
    method: &'a str,
    path: &'a str,
    q: Query,
    content_type: &'a str,
    accept: &'a str,
    user_agent: &'a str,
    body: Bytes,
}

/// Serve one request. An error means "drop the connection" (an injected disconnect).
pub async fn handle(
    shared: Arc<Shared>,
    req: http::Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, incoming) = req.into_parts();
    let h = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, accept, user_agent, auth) = (
        h(header::CONTENT_TYPE),
        h(header::ACCEPT),
        h(header::USER_AGENT),
        h(header::AUTHORIZATION),
    );
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let authenticated = auth
        .strip_prefix("Bearer ")
        .is_some_and(|t| !t.trim().is_empty());

    let (latency, faults) = shared.faults.check(&method, &path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut reply = None;
    let mut disconnect = false;
    for f in faults {
        match f {
            FaultAction::Delay(d) => tokio::time::sleep(d).await,
            FaultAction::Disconnect => disconnect = true,
            FaultAction::Status(code) => reply = Some(Reply::Error(ApiError::injected(code, None))),
            FaultAction::TooManyRequests { retry_after_secs } => {
                reply = Some(Reply::Error(ApiError::injected(
                    429,
                    Some(retry_after_secs),
                )))
            }
        }
    }
    let body = match incoming.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let q = Query::parse(&query);
    let started = std::time::Instant::now();
    if disconnect {
        if shared.opts.record_requests {
            shared.log().push(RequestRecord {
                method,
                path,
                query,
                content_type: (!content_type.is_empty()).then_some(content_type),
                user_agent: (!user_agent.is_empty()).then_some(user_agent),
                status: 0,
                dry_run: q.dry_run(),
                authenticated,
                started,
                finished: std::time::Instant::now(),
            });
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected disconnect",
        ));
    }
    let reply = match reply {
        Some(r) => r,
        None if shared.opts.require_token && !authenticated => {
            Reply::Error(ApiError::unauthorized())
        }
        // The real server reads at most 3 MiB of a write's body (`MaxRequestBodyBytes`).
        None if matches!(method.as_str(), "POST" | "PUT" | "PATCH")
            && body.len() > MAX_REQUEST_BODY =>
        {
            Reply::Error(ApiError::too_large(MAX_REQUEST_BODY))
        }
        None => {
            let r = Req {
                method: &method,
                path: &path,
                q: q.clone(),
                content_type: &content_type,
                accept: &accept,
                user_agent: &user_agent,
                body,
            };
            route(&shared, &r)
        }
    };
    let finished = std::time::Instant::now();
    let resp = render(reply);
    if shared.opts.record_requests {
        shared.log().push(RequestRecord {
            method,
            path,
            query,
            content_type: (!content_type.is_empty()).then_some(content_type),
            user_agent: (!user_agent.is_empty()).then_some(user_agent),
            status: resp.status().as_u16(),
            dry_run: q.dry_run(),
            authenticated,
            started,
            finished,
        });
    }
    Ok(resp)
}

fn render(reply: Reply) -> Response<Body> {
    if let Reply::Warned(code, v, warnings) = reply {
        let mut resp = render(Reply::Json(code, v, "application/json"));
        for w in warnings {
            let text = format!("299 - {}", Value::String(w));
            if let Ok(h) = HeaderValue::from_str(&text) {
                resp.headers_mut().append(header::WARNING, h);
            }
        }
        return resp;
    }
    let (code, body, ct, retry) = match reply {
        Reply::Json(code, v, ct) => (code, Bytes::from(v.to_string()), ct, None),
        Reply::Warned(code, v, _) => (code, Bytes::from(v.to_string()), "application/json", None),
        Reply::Raw(code, b) => (code, Bytes::from(b), "application/json", None),
        Reply::Text(code, t) => (
            code,
            Bytes::from_static(t.as_bytes()),
            "text/plain; charset=utf-8",
            None,
        ),
        Reply::Error(e) => (
            e.code,
            Bytes::from(e.to_status().to_string()),
            "application/json",
            e.retry_after,
        ),
        Reply::Stream(rx) => {
            let mut resp = Response::new(Body::Stream(rx));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut().insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            return resp;
        }
    };
    let mut resp = Response::new(Body::Full(Some(body)));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(s) = retry
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn route(shared: &Arc<Shared>, r: &Req<'_>) -> Reply {
    let segs: Vec<&str> = r
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = r.method == "GET";
    match segs.as_slice() {
        ["version"] if get => json_reply(discovery::version()),
        ["healthz" | "livez" | "readyz"] if get => Reply::Text(200, "ok"),
        ["api"] if get => {
            if discovery::wants_aggregated(r.accept) {
                Reply::Json(
                    200,
                    discovery::aggregated(&shared.store().registry, true),
                    discovery::AGGREGATED_CT,
                )
            } else {
                json_reply(discovery::api_versions(&shared.addr))
            }
        }
        ["apis"] if get => {
            let store = shared.store();
            if discovery::wants_aggregated(r.accept) {
                Reply::Json(
                    200,
                    discovery::aggregated(&store.registry, false),
                    discovery::AGGREGATED_CT,
                )
            } else {
                json_reply(discovery::api_group_list(&store.registry))
            }
        }
        ["api", v] if get => opt(discovery::resource_list(&shared.store().registry, "", v)),
        ["apis", g] if get => opt(discovery::api_group(&shared.store().registry, g)),
        ["apis", g, v] if get => opt(discovery::resource_list(&shared.store().registry, g, v)),
        ["openapi", "v3"] if get => json_reply(openapi::root(&shared.store().registry)),
        ["openapi", "v3", rest @ ..] if get => opt(openapi::group_version(
            &shared.store().registry,
            &rest.join("/"),
        )),
        ["api", v, rest @ ..] => resource(shared, r, "", v, rest),
        ["apis", g, v, rest @ ..] => resource(shared, r, g, v, rest),
        _ => Reply::Error(ApiError::path_not_found()),
    }
}

fn opt(v: Option<Value>) -> Reply {
    match v {
        Some(v) => json_reply(v),
        None => Reply::Error(ApiError::path_not_found()),
    }
}

struct Target {
    rt: ResourceType,
    ns: Option<String>,
    name: Option<String>,
    sub: String,
    watch: bool,
}

fn parse_target(
    shared: &Shared,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Target, ApiError> {
    let mut rest = rest;
    let mut watch = false;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest = &rest[1..];
    }
    let mut ns = None;
    let ns_sub = group.is_empty()
        && rest.len() == 3
        && rest[0] == "namespaces"
        && matches!(rest[2], "status" | "finalize");
    if rest.len() >= 3 && rest[0] == "namespaces" && !ns_sub {
        ns = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let (resource, name, sub) = match rest {
        [r] => (*r, None, ""),
        [r, n] => (*r, Some(n.to_string()), ""),
        [r, n, s] => (*r, Some(n.to_string()), *s),
        _ => return Err(ApiError::path_not_found()),
    };
    let store = shared.store();
    let rt = store
        .registry
        .lookup(group, version, resource)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    if (!rt.namespaced && ns.is_some()) || (rt.namespaced && ns.is_none() && name.is_some()) {
        return Err(ApiError::path_not_found());
    }
    if !(sub.is_empty()
        || (sub == "status" && rt.has_status)
        || (sub == "scale" && ops::has_scale(&rt)))
    {
        return Err(ApiError::path_not_found());
    }
    Ok(Target {
        rt,
        ns,
        name,
        sub: sub.to_string(),
        watch,
    })
}

fn parse_body(r: &Req<'_>, yaml_ok: bool) -> Result<Value, ApiError> {
    if r.body.is_empty() {
        return Ok(json!({}));
    }
    if r.content_type.contains("protobuf") {
        return protobuf::decode(&r.body).map_err(|e| match e {
            protobuf::ProtoError::Envelope => ApiError::bad_request(e.to_string()),
            protobuf::ProtoError::Unsupported(why) => ApiError::unsupported_media_type(
                r.content_type,
                &format!("application/json, application/yaml ({why})"),
            ),
        });
    }
    if r.content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(
            r.content_type,
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ));
    }
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(v) => Ok(v),
        Err(e) if yaml_ok || r.content_type.contains("yaml") => {
            let text = std::str::from_utf8(&r.body)
                .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|ye| {
                ApiError::bad_request(format!("error decoding YAML: {ye} (as JSON: {e})"))
            })
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))),
    }
}

/// The field manager of a write: `fieldManager`, else derived from the User-Agent like the real
/// server (the program name before the first `/`).
fn manager(r: &Req<'_>) -> String {
    if let Some(m) = r.q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = r.user_agent.split('/').next().unwrap_or_default();
    if ua.is_empty() {
        "unknown".into()
    } else {
        ua.to_string()
    }
}

fn resource(shared: &Arc<Shared>, r: &Req<'_>, group: &str, version: &str, rest: &[&str]) -> Reply {
    let t = match parse_target(shared, group, version, rest) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let ns = t.ns.as_deref();
    let dry_run = r.q.dry_run();
    if let Some(bad) = r.q.get("dryRun").filter(|v| *v != "All") {
        return ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![crate::status::FieldError::invalid(
                "dryRun",
                &json!([bad]),
                "supported values: \"All\"",
            )],
        )
        .into();
    }
    let mgr = manager(r);
    let ctx = Ctx {
        rt: &t.rt,
        ns,
        dry_run,
        manager: &mgr,
        now: crate::util::now_rfc3339(),
        strict: r.q.get("fieldValidation") == Some("Strict"),
        warn: matches!(r.q.get("fieldValidation"), None | Some("Warn")),
        warnings: Default::default(),
    };
    let write = |f: &dyn Fn(&mut crate::store::Store) -> Result<ops::Outcome, ApiError>| -> Reply {
        let out = {
            let mut store = shared.store();
            let schema = if t.rt.custom {
                store.crd_schema(&t.rt)
            } else {
                None
            };
            crate::ssa::schema::with_custom_schema(schema, || f(&mut store))
        };
        let warnings = ctx.warnings.take();
        match out {
            Ok(o) if !warnings.is_empty() => {
                shared.run_followups(o.followups);
                Reply::Warned(o.code, o.object, warnings)
            }
            Ok(o) => {
                shared.run_followups(o.followups);
                Reply::Json(o.code, o.object, "application/json")
            }
            Err(e) => e.into(),
        }
    };
    match (r.method, t.name.as_deref()) {
        ("GET", None) if t.watch || r.q.flag("watch") => {
            match watch::start(shared, &t.rt, ns, &r.q, r.accept) {
                Ok(rx) => Reply::Stream(rx),
                Err(e) => e.into(),
            }
        }
        ("GET", None) => {
            let store = shared.store();
            if read::wants_metadata(r.accept) {
                return match read::list_metadata(&store, &t.rt, ns, &r.q) {
                    Ok(v) => json_reply(v),
                    Err(e) => e.into(),
                };
            }
            if !read::wants_table(r.accept) {
                return match read::list_bytes(&store, &t.rt, ns, &r.q) {
                    Ok(b) => Reply::Raw(200, b),
                    Err(e) => e.into(),
                };
            }
            match read::list(&store, &t.rt, ns, &r.q) {
                Ok(list) => {
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    let include = r.q.get("includeObject").unwrap_or("Metadata");
                    json_reply(read::table(
                        &t.rt,
                        &items,
                        list["metadata"].clone(),
                        include,
                    ))
                }
                Err(e) => e.into(),
            }
        }
        ("GET", Some(name)) => {
            let store = shared.store();
            match read::get(&store, &t.rt, ns, name) {
                Ok(o) if read::wants_table(r.accept) && t.sub.is_empty() => {
                    let meta = json!({"resourceVersion": o["metadata"]["resourceVersion"]});
                    json_reply(read::table(
                        &t.rt,
                        &[o],
                        meta,
                        r.q.get("includeObject").unwrap_or("Metadata"),
                    ))
                }
                Ok(o) if t.sub == "scale" => json_reply(ops::scale_of(&o)),
                Ok(o) if read::wants_metadata(r.accept) => json_reply(read::partial(&o)),
                Ok(o) => json_reply(o),
                Err(e) => e.into(),
            }
        }
        ("POST", None) if t.sub.is_empty() => match parse_body(r, false) {
            Ok(body) => write(&|s| ops::create(s, &ctx, body.clone())),
            Err(e) => e.into(),
        },
        ("PUT", Some(name)) if t.sub == "scale" => match parse_body(r, false) {
            Ok(body) => write(&|s| ops::write_scale(s, &ctx, name, None, body.clone())),
            Err(e) => e.into(),
        },
        ("PATCH", Some(name)) if t.sub == "scale" => {
            let Some(kind) = PatchKind::from_content_type(r.content_type) else {
                return ApiError::unsupported_media_type(r.content_type, PATCH_TYPES).into();
            };
            match parse_body(r, kind == PatchKind::Apply) {
                Ok(body) => write(&|s| ops::write_scale(s, &ctx, name, Some(kind), body.clone())),
                Err(e) => e.into(),
            }
        }
        ("PUT", Some(name)) => match parse_body(r, false) {
            Ok(body) => write(&|s| ops::update(s, &ctx, name, body.clone(), &t.sub)),
            Err(e) => e.into(),
        },
        ("PATCH", Some(name)) => {
            let Some(kind) = PatchKind::from_content_type(r.content_type) else {
                return ApiError::unsupported_media_type(r.content_type, PATCH_TYPES).into();
            };
            let force = r.q.flag("force");
            if kind == PatchKind::Apply && r.q.get("fieldManager").is_none_or(str::is_empty) {
                return ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![crate::status::FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                )
                .into();
            }
            if kind != PatchKind::Apply && r.q.get("force").is_some() {
                return ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![crate::status::FieldError {
                        reason: "FieldValueForbidden",
                        field: "force".into(),
                        message: "Forbidden: may not be specified for non-apply patch".into(),
                    }],
                )
                .into();
            }
            match parse_body(r, kind == PatchKind::Apply) {
                Ok(body) => {
                    write(&|s| ops::patch(s, &ctx, name, kind, body.clone(), force, &t.sub))
                }
                Err(e) => e.into(),
            }
        }
        ("DELETE", Some(name)) if t.sub.is_empty() => {
            let opts = parse_body(r, false).unwrap_or_else(|_| json!({}));
            write(&|s| ops::delete(s, &ctx, name, &opts))
        }
        ("DELETE", None) => delete_collection(shared, r, &t, &ctx),
        _ => ApiError::method_not_allowed().into(),
    }
}

fn delete_collection(shared: &Arc<Shared>, r: &Req<'_>, t: &Target, ctx: &Ctx<'_>) -> Reply {
    let mut store = shared.store();
    let filter = match read::Filter::from_query(&r.q) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let names: Vec<(String, String)> = store
        .scan(&t.rt, t.ns.as_deref(), None)
        .filter(|(_, o)| filter.matches(o))
        .map(|(k, _)| (k.2.clone(), k.3.clone()))
        .collect();
    let mut items = Vec::new();
    for (ns, name) in names {
        let c = Ctx {
            rt: ctx.rt,
            ns: Some(&ns),
            dry_run: ctx.dry_run,
            manager: ctx.manager,
            now: ctx.now.clone(),
            strict: false,
            warn: false,
            warnings: Default::default(),
        };
        let key = crate::store::Store::key(&t.rt, Some(&ns), &name);
        let obj = store.get(&key).cloned();
        if ops::delete(&mut store, &c, &name, &json!({})).is_ok()
            && let Some(o) = obj
        {
            items.push(read::present(&t.rt, &o));
        }
    }
    json_reply(
        json!({"apiVersion": t.rt.api_version(), "kind": t.rt.list_kind(),
        "metadata": {"resourceVersion": store.rv.to_string()}, "items": items}),
    )
}
