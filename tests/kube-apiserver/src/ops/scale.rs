//! The `scale` subresource of workloads (`autoscaling/v1` Scale), as `kubectl scale` uses it.

use serde_json::{Value, json};

use super::{Ctx, Outcome, PatchKind, check_rv, update_inner};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::registry::ResourceType;
use crate::status::{ApiError, FieldError};
use crate::store::Store;

/// Whether `rt` has a `scale` subresource.
pub fn has_scale(rt: &ResourceType) -> bool {
    !rt.custom
        && matches!(
            (rt.group.as_str(), rt.resource.as_str()),
            ("apps", "deployments" | "statefulsets" | "replicasets")
                | ("", "replicationcontrollers")
        )
}

/// The `autoscaling/v1` Scale view of a workload.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

/// PUT or PATCH of the `scale` subresource: only `spec.replicas` changes.
pub fn write_scale(
    store: &mut Store,
    ctx: &Ctx<'_>,
    name: &str,
    patch_kind: Option<PatchKind>,
    body: Value,
) -> Result<Outcome, ApiError> {
    let key = Store::key(ctx.rt, ctx.ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    let current = scale_of(&old);
    let wanted = match patch_kind {
        None => body,
        Some(PatchKind::Merge) => merge_patch(&current, &body),
        Some(PatchKind::Strategic) => strategic_merge_patch(&current, &body),
        Some(PatchKind::Json) => {
            json_patch(&current, &body).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        Some(PatchKind::Apply) => merge_patch(&current, &body),
    };
    check_rv(ctx, &old, &wanted)?;
    let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![FieldError::required("spec.replicas", "")],
        ));
    };
    let mut new = old.clone();
    if !new["spec"].is_object() {
        new["spec"] = json!({});
    }
    new["spec"]["replicas"] = json!(replicas);
    let mut out = update_inner(store, ctx, key, &old, new, "scale")?;
    out.object = scale_of(&out.object);
    Ok(out)
}
