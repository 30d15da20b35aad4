//! PATCH: server-side apply and the merge, JSON and strategic patches.

use serde_json::{Value, json};

use super::{
    Ctx, OnUndeclared, Outcome, admit, carry_system_fields, check_body, check_namespace, check_rv,
    check_url_name, ensure_namespace, finish_create, finish_update, set_type, update_inner,
};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::ssa::managed::{self, conflict_causes, conflict_message};
use crate::status::{ApiError, FieldError};
use crate::store::Store;

/// The kinds of PATCH the server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/apply-patch+yaml`.
    Apply,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchKind {
    /// From the request Content-Type.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(PatchKind::Apply),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            _ => None,
        }
    }
}

/// PATCH of an object.
pub fn patch(
    store: &mut Store,
    ctx: &Ctx<'_>,
    name: &str,
    kind: PatchKind,
    body: Value,
    force: bool,
    subresource: &str,
) -> Result<Outcome, ApiError> {
    let key = Store::key(ctx.rt, ctx.ns, name);
    let existing = store.get(&key).cloned();
    if kind != PatchKind::Apply {
        let old = existing.ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
        let patched = match kind {
            PatchKind::Merge => merge_patch(&old, &body),
            PatchKind::Strategic => strategic_merge_patch(&old, &body),
            _ => json_patch(&old, &body).map_err(|e| {
                ApiError::invalid(
                    &ctx.rt.kind,
                    &ctx.rt.group,
                    name,
                    vec![FieldError {
                        reason: "FieldValueInvalid",
                        field: "".into(),
                        message: e.to_string(),
                    }],
                )
            })?,
        };
        check_rv(ctx, &old, &patched)?;
        return update_inner(store, ctx, key, &old, patched, subresource);
    }

    // Server-side apply.
    let mut body = body;
    check_body(ctx.rt, &body)?;
    if body["apiVersion"].is_null() || body["kind"].is_null() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the applied configuration; apiVersion and kind are required",
        ));
    }
    if body["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    check_namespace(ctx, &mut body)?;
    check_url_name(&mut body, name)?;
    if subresource == "status" {
        body = json!({"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": body["metadata"], "status": body["status"]});
    }
    let av = ctx.rt.api_version();
    let mut w = ctx.writer(subresource);
    w.api_version = &av;
    let gvknn = format!(
        "{}/{name}; {}, Kind={}",
        ctx.ns.filter(|_| ctx.rt.namespaced).unwrap_or_default(),
        if ctx.rt.group.is_empty() {
            format!("/{}", ctx.rt.version)
        } else {
            av.clone()
        },
        ctx.rt.kind
    );
    let conflict = |e: managed::ApplyError| match e {
        managed::ApplyError::Conflicts(c) => {
            ApiError::apply_conflict(conflict_message(&c), conflict_causes(&c))
        }
        // The real server reports these as a plain error: 500 with no reason.
        managed::ApplyError::Invalid(errs) => {
            let detail = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("errors:\n  {}", errs.join("\n  "))
            };
            ApiError::unknown(
                500,
                format!("failed to create typed patch object ({gvknn}): {detail}"),
            )
        }
    };
    // Apply converts the configuration to the kind's schema first: undeclared fields and values
    // of the wrong type fail it.
    let invalid = |errs: Vec<String>| conflict(managed::ApplyError::Invalid(errs));
    if !ctx.rt.custom {
        let mut typed = body.clone();
        crate::decode::strip_nulls(&mut typed);
        if let Some(e) = crate::decode::type_error(ctx.rt, &typed) {
            let path = crate::decode::smd_path(&typed, &e.path);
            return Err(invalid(vec![crate::decode::apply_message(&e, &path)]));
        }
    }
    let on = OnUndeclared::Apply(&invalid);
    match existing {
        None => {
            if subresource == "status" {
                return Err(ApiError::not_found(ctx.rt, name));
            }
            if ctx.rt.resource != "namespaces" {
                ensure_namespace(store, ctx, name)?;
            }
            let mut skeleton =
                json!({"apiVersion": av, "kind": ctx.rt.kind, "metadata": {"name": name}});
            if ctx.rt.namespaced {
                skeleton["metadata"]["namespace"] = json!(ctx.ns.unwrap_or_default());
            }
            let mut obj = managed::apply(&skeleton, &body, &w, force).map_err(conflict)?;
            if ctx.rt.has_status
                && let Some(m) = obj.as_object_mut()
            {
                m.remove("status");
            }
            admit(ctx.rt, &mut obj, true)?;
            finish_create(store, ctx, obj, &on)
        }
        Some(old) => {
            check_rv(ctx, &old, &body)?;
            let mut merged = managed::apply(&old, &body, &w, force).map_err(conflict)?;
            carry_system_fields(ctx.rt, &old, &mut merged, subresource);
            set_type(ctx.rt, &mut merged);
            admit(ctx.rt, &mut merged, subresource.is_empty())?;
            finish_update(store, ctx, key, &old, merged, subresource, &on)
        }
    }
}
