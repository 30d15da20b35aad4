//! DELETE: finalizers, terminating namespaces, and CRDs taking their objects with them.

use serde_json::{Value, json};

use super::{Ctx, Followup, Outcome, has_finalizers, is_namespace, ok};
use crate::status::{ApiError, success_status};
use crate::store::{EventType, Key, Store};

/// Remove a terminating namespace and all objects in it.
pub fn finalize_namespace(store: &mut Store, name: &str) {
    let keys: Vec<Key> = store
        .objects
        .keys()
        .filter(|k| k.2 == name)
        .cloned()
        .collect();
    for k in keys {
        store.delete(&k);
    }
    store.delete(&(
        String::new(),
        "namespaces".into(),
        String::new(),
        name.to_string(),
    ));
}

/// DELETE of one object. Returns a success `Status` (or, for namespaces, the terminating object).
pub fn delete(
    store: &mut Store,
    ctx: &Ctx<'_>,
    name: &str,
    opts: &Value,
) -> Result<Outcome, ApiError> {
    let key = Store::key(ctx.rt, ctx.ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    let uid = old["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(want) = opts["preconditions"]["uid"].as_str()
        && want != uid
    {
        return Err(ApiError::conflict_msg(
            ctx.rt,
            name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    if let Some(want) = opts["preconditions"]["resourceVersion"].as_str()
        && Some(want) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict_msg(
            ctx.rt,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ));
    }
    if has_finalizers(&old) && !is_namespace(ctx.rt) {
        // Finalizers hold the object: it only gets a deletionTimestamp, and the answer is the object.
        if old["metadata"]["deletionTimestamp"].is_string() || ctx.dry_run {
            return Ok(ok(old, 200));
        }
        let mut marked = old.clone();
        marked["metadata"]["deletionTimestamp"] = json!(ctx.now);
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let stored = store.put(key, marked, EventType::Modified);
        return Ok(ok(stored, 200));
    }
    let response = if ctx.rt.resource == "namespaces" && !ctx.rt.custom {
        let mut t = old.clone();
        t["metadata"]["deletionTimestamp"] = json!(ctx.now);
        t["status"]["phase"] = json!("Terminating");
        t
    } else {
        success_status(ctx.rt, name, &uid)
    };
    if ctx.dry_run {
        return Ok(ok(response, 200));
    }
    if ctx.rt.resource == "namespaces" && !ctx.rt.custom {
        // Like the real server: the namespace turns Terminating at once and disappears, with its
        // content, a moment later, so deletes of its objects right after still succeed.
        if old["metadata"]["deletionTimestamp"].is_string() {
            return Ok(ok(old, 200));
        }
        let stored = store.put(key, response, EventType::Modified);
        return Ok(Outcome {
            object: stored,
            code: 200,
            followups: vec![Followup::FinalizeNamespace(name.to_string())],
        });
    }
    store.delete(&key);
    if ctx.rt.resource == "customresourcedefinitions" && !ctx.rt.custom {
        store.registry.unregister_crd(&old);
        let group = old["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = old["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let keys: Vec<Key> = store
            .objects
            .keys()
            .filter(|k| k.0 == group && k.1 == plural)
            .cloned()
            .collect();
        for k in keys {
            store.delete(&k);
        }
    }
    store.unhealthy.remove(&key);
    store.workloads.forget(&key);
    Ok(ok(response, 200))
}
