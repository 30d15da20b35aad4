//! GET of one object and of collections: selectors, paging, and the Table form kubectl asks for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::Store;
use crate::util::Query;

/// An object as served at `rt`'s version.
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(rt.api_version());
    o["kind"] = json!(rt.kind);
    o
}

/// Selectors of a list or watch request.
pub struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// From `labelSelector` / `fieldSelector`.
    pub fn from_query(q: &Query) -> Result<Filter, ApiError> {
        Ok(Filter {
            labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?,
        })
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// GET of one object.
pub fn get(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    store
        .get(&Store::key(rt, ns, name))
        .map(|o| present(rt, o))
        .ok_or_else(|| ApiError::not_found(rt, name))
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    STANDARD.encode(
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}).to_string(),
    )
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

/// The objects a LIST selects (borrowed from the store) and the list metadata.
fn select<'a>(
    store: &'a Store,
    rt: &ResourceType,
    ns: Option<&'a str>,
    q: &Query,
) -> Result<(Vec<&'a Value>, Value), ApiError> {
    let filter = Filter::from_query(q)?;
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let mut items = Vec::new();
    let mut last = None;
    let mut remaining = 0u64;
    for (k, obj) in store.scan(rt, ns, after) {
        if !filter.matches(obj) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            remaining += 1;
            continue;
        }
        items.push(obj);
        last = Some((&k.2, &k.3));
    }
    let mut meta = json!({"resourceVersion": store.rv.to_string()});
    if remaining > 0
        && let Some((lns, lname)) = last
    {
        meta["continue"] = json!(encode_continue(store.rv, lns, lname));
        meta["remainingItemCount"] = json!(remaining);
    }
    Ok((items, meta))
}

/// LIST of a collection, with selectors and `limit`/`continue` paging.
pub fn list(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
) -> Result<Value, ApiError> {
    let (items, meta) = select(store, rt, ns, q)?;
    let items: Vec<Value> = items.into_iter().map(|o| present(rt, o)).collect();
    Ok(
        json!({"apiVersion": rt.api_version(), "kind": rt.list_kind(), "metadata": meta, "items": items}),
    )
}

/// LIST serialized straight from the store: no copy of the objects, which is what keeps a list of
/// thousands of objects fast.
pub fn list_bytes(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
) -> Result<Vec<u8>, ApiError> {
    let (items, meta) = select(store, rt, ns, q)?;
    let av = rt.api_version();
    let mut out = Vec::with_capacity(items.len() * 2048 + 256);
    let head = json!({"apiVersion": av, "kind": rt.list_kind(), "metadata": meta}).to_string();
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, obj) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let same = obj["apiVersion"].as_str() == Some(av.as_str())
            && obj["kind"].as_str() == Some(rt.kind.as_str());
        let written = if same {
            serde_json::to_writer(&mut out, obj)
        } else {
            serde_json::to_writer(&mut out, &present(rt, obj))
        };
        if written.is_err() {
            return Err(ApiError::bad_request("cannot serialize a stored object"));
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Whether the client prefers `PartialObjectMetadata` (kube-rs `get_metadata`/`list_metadata`).
pub fn wants_metadata(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|a| {
        let params: Vec<&str> = a.split(';').map(str::trim).collect();
        params
            .iter()
            .any(|p| p.starts_with("as=PartialObjectMetadata"))
            && params.contains(&"g=meta.k8s.io")
    })
}

/// The metadata-only form of an object.
pub fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// LIST in `PartialObjectMetadataList` form.
pub fn list_metadata(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
) -> Result<Value, ApiError> {
    let (items, meta) = select(store, rt, ns, q)?;
    let items: Vec<Value> = items.into_iter().map(partial).collect();
    Ok(
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
    )
}

/// Whether the Accept header asks for a `meta.k8s.io/v1` Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|a| {
        let params: Vec<&str> = a.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"v=v1")
    })
}

fn age(created: &Value) -> String {
    let Some(t) = created.as_str().and_then(crate::util::parse_rfc3339) else {
        return "<unknown>".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(t);
    let s = now.saturating_sub(t);
    match s {
        0..120 => format!("{s}s"),
        120..600 => format!("{}m{}s", s / 60, s % 60),
        600..10_800 => format!("{}m", s / 60),
        10_800..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn column(name: &str, ty: &str, format: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": 0})
}

type Cell = fn(&Value) -> Value;

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The columns `kubectl get` shows for a kind, after NAME and before AGE.
fn kind_columns(rt: &ResourceType) -> Vec<(&'static str, Cell)> {
    if rt.custom {
        return Vec::new();
    }
    match (rt.group.as_str(), rt.resource.as_str()) {
        ("apps", "deployments") => vec![
            ("Ready", |o| {
                json!(format!(
                    "{}/{}",
                    count(&o["status"]["readyReplicas"]),
                    count(&o["spec"]["replicas"])
                ))
            }),
            ("Up-to-date", |o| {
                json!(count(&o["status"]["updatedReplicas"]))
            }),
            ("Available", |o| {
                json!(count(&o["status"]["availableReplicas"]))
            }),
        ],
        ("", "namespaces") => vec![("Status", |o| o["status"]["phase"].clone())],
        ("", "services") => vec![
            ("Type", |o| o["spec"]["type"].clone()),
            ("Cluster-IP", |o| o["spec"]["clusterIP"].clone()),
            ("External-IP", |_| json!("<none>")),
            ("Port(s)", |o| {
                let ports: Vec<String> = o["spec"]["ports"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| match p["nodePort"].as_u64() {
                                Some(np) => format!(
                                    "{}:{np}/{}",
                                    p["port"],
                                    p["protocol"].as_str().unwrap_or("TCP")
                                ),
                                None => format!(
                                    "{}/{}",
                                    p["port"],
                                    p["protocol"].as_str().unwrap_or("TCP")
                                ),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }),
        ],
        ("", "configmaps" | "secrets") => vec![("Data", |o| {
            let n = |k: &str| o[k].as_object().map(|m| m.len()).unwrap_or(0);
            json!(n("data") + n("binaryData"))
        })],
        _ => Vec::new(),
    }
}

/// Render objects as a Table (`kubectl get` without `-o`).
pub fn table(rt: &ResourceType, objs: &[Value], list_meta: Value, include: &str) -> Value {
    let extra = kind_columns(rt);
    let mut cols = vec![column("Name", "string", "name")];
    cols.extend(extra.iter().map(|(name, _)| column(name, "string", "")));
    cols.push(column("Age", "string", ""));
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(extra.iter().map(|(_, cell)| cell(o)));
            cells.push(json!(age(&o["metadata"]["creationTimestamp"])));
            let mut row = json!({"cells": cells});
            match include {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => row["object"] = partial(o),
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": cols, "rows": rows})
}
