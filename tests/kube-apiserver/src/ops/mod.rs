//! Writes: create, update, patch (apply, merge, JSON, strategic), delete. Each runs under the
//! store lock, honours `dryRun=All`, and reports follow-up work for the built-in controllers.

use serde_json::{Value, json};

use crate::defaults::{allocate, apply_defaults, job_selector};
use crate::objects::validate;
use crate::registry::ResourceType;
use crate::registry::has_generation;
use crate::ssa::managed::{self, Writer};
use crate::status::{ApiError, FieldError};
use crate::store::{EventType, Key, Store};

/// Who writes what, where.
pub struct Ctx<'a> {
    /// Resource type addressed by the URL (its version is the request's version).
    pub rt: &'a ResourceType,
    /// Namespace from the URL.
    pub ns: Option<&'a str>,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// Field manager of the request.
    pub manager: &'a str,
    /// Request time, RFC 3339.
    pub now: String,
    /// `fieldValidation=Strict`: undeclared fields are an error rather than dropped.
    pub strict: bool,
    /// `fieldValidation=Warn` (the default): dropped fields are reported in `warnings`.
    pub warn: bool,
    /// `Warning` headers for the response.
    pub warnings: std::cell::RefCell<Vec<String>>,
}

/// What an undeclared field means for a write.
pub(super) enum OnUndeclared<'a> {
    /// Ordinary decoding: refused under `fieldValidation=Strict`, else dropped.
    Decode,
    /// Server-side apply: the configuration does not fit the schema; the closure words the error.
    Apply(&'a dyn Fn(Vec<String>) -> ApiError),
}

/// Drop (or refuse) fields the kind's type does not declare, as the real server does.
fn check_declared_fields(
    ctx: &Ctx<'_>,
    obj: &mut Value,
    on: &OnUndeclared<'_>,
) -> Result<(), ApiError> {
    let unknown = crate::typed::unknown_fields(ctx.rt, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    if let OnUndeclared::Apply(err) = on {
        return Err(err(unknown
            .iter()
            .map(|u| format!("{}: field not declared in schema", u.path))
            .collect()));
    }
    if ctx.strict {
        let list: Vec<String> = unknown
            .iter()
            .map(|u| format!("unknown field \"{}\"", u.dotted))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = ctx.rt.kind,
            v = ctx.rt.version
        )));
    }
    for u in &unknown {
        remove_pointer(obj, &u.pointer);
        if ctx.warn {
            ctx.warnings
                .borrow_mut()
                .push(format!("unknown field \"{}\"", u.dotted));
        }
    }
    Ok(())
}

fn remove_pointer(obj: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(m) = obj.pointer_mut(parent).and_then(Value::as_object_mut) {
        m.remove(&key);
    }
}

impl Ctx<'_> {
    fn writer<'b>(&'b self, subresource: &'b str) -> Writer<'b> {
        Writer {
            manager: self.manager,
            api_version: "",
            subresource,
            now: &self.now,
            reset: crate::ssa::reset::reset_fields(self.rt, subresource),
        }
    }
}

/// Work for the built-in controllers after a write.
#[derive(Debug, Clone)]
pub enum Followup {
    /// Fill in a Deployment's, StatefulSet's or DaemonSet's status.
    WorkloadStatus(Key),
    /// Mark a CRD Established and serve its resources.
    EstablishCrd(String),
    /// Remove a terminating namespace and everything in it.
    FinalizeNamespace(String),
}

/// The result of a write.
pub struct Outcome {
    /// Response body.
    pub object: Value,
    /// HTTP status code.
    pub code: u16,
    /// Controller work to run once the lock is released.
    pub followups: Vec<Followup>,
}

fn ok(object: Value, code: u16) -> Outcome {
    Outcome {
        object,
        code,
        followups: Vec::new(),
    }
}

fn set_type(rt: &ResourceType, obj: &mut Value) {
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn check_body(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    if body.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            rt.kind, rt.version, rt.kind
        )));
    }
    if let Some(av) = body["apiVersion"].as_str()
        && av != rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = body["kind"].as_str()
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn check_namespace(ctx: &Ctx<'_>, body: &mut Value) -> Result<(), ApiError> {
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    if ctx.rt.namespaced {
        let url_ns = ctx.ns.unwrap_or_default();
        match body["metadata"]["namespace"].as_str() {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => body["metadata"]["namespace"] = json!(url_ns),
        }
    } else if let Some(m) = body["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

fn check_url_name(body: &mut Value, name: &str) -> Result<(), ApiError> {
    match body["metadata"]["name"].as_str() {
        None | Some("") => body["metadata"]["name"] = json!(name),
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    Ok(())
}

fn followups_for(rt: &ResourceType, key: &Key) -> Vec<Followup> {
    match (rt.group.as_str(), rt.resource.as_str(), rt.custom) {
        ("apps", "deployments" | "statefulsets" | "daemonsets", false) => {
            vec![Followup::WorkloadStatus(key.clone())]
        }
        ("batch", "jobs", false) => vec![Followup::WorkloadStatus(key.clone())],
        ("apiextensions.k8s.io", "customresourcedefinitions", false) => {
            vec![Followup::EstablishCrd(key.3.clone())]
        }
        _ => Vec::new(),
    }
}

fn ensure_namespace(store: &Store, ctx: &Ctx<'_>, name: &str) -> Result<(), ApiError> {
    let ns = ctx.ns.unwrap_or_default();
    if !ctx.rt.namespaced {
        return Ok(());
    }
    let key: Key = (
        String::new(),
        "namespaces".into(),
        String::new(),
        ns.to_string(),
    );
    match store.get(&key) {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if n["metadata"]["deletionTimestamp"].is_string() => Err(ApiError::forbidden(
            ctx.rt,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Built-in types drop empty `omitempty` maps when stored; labels and annotations are the ones
/// clients notice (e.g. after the last label was un-applied).
fn drop_empty_meta_maps(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["labels", "annotations"] {
            if meta
                .get(k)
                .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()) || v.is_null())
            {
                meta.remove(k);
            }
        }
    }
}

/// What the real server does between reading a body and writing etcd: decoding drops unset
/// `omitempty` scalars, defaulting fills in what is missing (on the main resource), and the
/// protobuf round trip leaves the stored form (see [`crate::stored`]).
fn admit(rt: &ResourceType, obj: &mut Value, defaults: bool) -> Result<(), ApiError> {
    if !rt.custom {
        crate::decode::strip_nulls(obj);
        if let Some(e) = crate::decode::type_error(rt, obj) {
            return Err(ApiError::bad_request(crate::decode::decode_message(rt, &e)));
        }
    }
    crate::stored::drop_unset_scalars(rt, obj);
    if defaults {
        apply_defaults(rt, obj);
    }
    crate::stored::stored_form(rt, obj)
}

/// Whether an update bumps `metadata.generation`: a change outside metadata and status, and for
/// Deployments also a change of annotations (pkg/registry/apps/deployment/strategy.go
/// `PrepareForUpdate`: annotations are copied to the ReplicaSets).
fn bumps_generation(rt: &ResourceType, a: &Value, b: &Value) -> bool {
    spec_changed(a, b)
        || (rt.kind == "Deployment"
            && !rt.custom
            && a["metadata"]["annotations"] != b["metadata"]["annotations"])
}

fn spec_changed(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    strip(a) != strip(b)
}

/// etcd's default `--max-request-bytes` (1.5 MiB). The real server sends the protobuf form, a
/// little smaller than JSON; the JSON size stands in for it.
pub const MAX_STORED_BYTES: usize = 3 * 512 * 1024;

/// An object etcd would refuse: the storage error reaches the client as a 500 without a reason.
/// A dry run never reaches etcd, so it is not checked there.
fn check_storage_size(obj: &Value) -> Result<(), ApiError> {
    let size = serde_json::to_vec(obj).map_or(0, |b| b.len());
    if size > MAX_STORED_BYTES {
        return Err(ApiError::unknown(500, "etcdserver: request is too large"));
    }
    Ok(())
}

/// What a strategy's `PrepareForCreate` adds after field management (so no manager owns it): a
/// Namespace gets the `kubernetes` finalizer appended to the ones the client sent
/// (pkg/registry/core/namespace/strategy.go).
fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    if !is_namespace(rt) {
        return;
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let finalizers = &mut obj["spec"]["finalizers"];
    if !finalizers.is_array() {
        *finalizers = json!([]);
    }
    if let Some(list) = finalizers.as_array_mut()
        && !list.iter().any(|f| f == "kubernetes")
    {
        list.push(json!("kubernetes"));
    }
}

/// Store a new object (shared by POST and create-via-apply).
fn finish_create(
    store: &mut Store,
    ctx: &Ctx<'_>,
    mut obj: Value,
    on: &OnUndeclared<'_>,
) -> Result<Outcome, ApiError> {
    drop_empty_meta_maps(&mut obj);
    check_declared_fields(ctx, &mut obj, on)?;
    let name = name_of(&obj).to_string();
    let key = Store::key(ctx.rt, ctx.ns, &name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(ctx.rt, &name));
    }
    let meta = &mut obj["metadata"];
    meta["uid"] = json!(crate::util::new_uid());
    meta["creationTimestamp"] = json!(ctx.now);
    if has_generation(ctx.rt) {
        meta["generation"] = json!(1);
    }
    if let Some(m) = meta.as_object_mut() {
        m.remove("resourceVersion");
    }
    // Set by the registry after field management: owned by no manager.
    prepare_for_create(ctx.rt, &mut obj);
    allocate(ctx.rt, &mut obj, None, &mut |what| store.allocate(what));
    job_selector(ctx.rt, &mut obj);
    validate(ctx.rt, &obj)?;
    if ctx.dry_run {
        return Ok(ok(obj, 201));
    }
    check_storage_size(&obj)?;
    let stored = store.put(key.clone(), obj, EventType::Added);
    Ok(Outcome {
        object: stored,
        code: 201,
        followups: followups_for(ctx.rt, &key),
    })
}

/// POST to a collection.
pub fn create(store: &mut Store, ctx: &Ctx<'_>, mut body: Value) -> Result<Outcome, ApiError> {
    check_body(ctx.rt, &body)?;
    check_namespace(ctx, &mut body)?;
    set_type(ctx.rt, &mut body);
    if name_of(&body).is_empty()
        && let Some(prefix) = body["metadata"]["generateName"]
            .as_str()
            .filter(|p| !p.is_empty())
    {
        body["metadata"]["name"] = json!(format!("{prefix}{}", crate::util::random_suffix()));
    }
    if name_of(&body).is_empty() {
        return Err(ApiError::invalid(
            &ctx.rt.kind,
            &ctx.rt.group,
            "",
            vec![FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    if ctx.rt.resource != "namespaces" {
        ensure_namespace(store, ctx, name_of(&body))?;
    }
    if let Some(m) = body["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
    }
    if ctx.rt.has_status
        && let Some(m) = body.as_object_mut()
    {
        m.remove("status");
    }
    admit(ctx.rt, &mut body, true)?;
    let mut w = ctx.writer("");
    let av = ctx.rt.api_version();
    w.api_version = &av;
    managed::update(None, &mut body, &w);
    finish_create(store, ctx, body, &OnUndeclared::Decode)
}

/// What may not change once set (REAL-SERVER.md "Immutable fields"), with the real messages:
/// workload selectors, a Job's template, a StatefulSet's spec beyond its mutable fields, a
/// Service's cluster IPs, a PersistentVolumeClaim's spec, the data of an `immutable` ConfigMap or
/// Secret, a Secret's type.
fn immutable_checks(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    if rt.custom {
        return Ok(());
    }
    let mut errs = Vec::new();
    let changed = |path: &str| old.pointer(path) != new.pointer(path);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", kind) | ("batch", kind)
            if kind != "StatefulSet" && kind != "CronJob" && changed("/spec/selector") =>
        {
            errs.push(FieldError::immutable(
                "spec.selector",
                &new["spec"]["selector"],
            ))
        }
        _ => {}
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("batch", "Job") if changed("/spec/template") && old["spec"]["suspend"] != true => errs
            .push(FieldError::immutable(
                "spec.template",
                &new["spec"]["template"],
            )),
        ("apps", "StatefulSet") => {
            let strip = |v: &Value| {
                let mut spec = v["spec"].clone();
                if let Some(m) = spec.as_object_mut() {
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        m.remove(k);
                    }
                }
                spec
            };
            if strip(old) != strip(new) {
                errs.push(FieldError {
                    reason: "FieldValueForbidden",
                    field: "spec".into(),
                    message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
                });
            }
        }
        ("", "Service") => errs.extend(service_ip_changes(old, new)),
        ("", "PersistentVolumeClaim") => errs.extend(pvc_spec_changes(old, new)),
        ("", "ConfigMap" | "Secret") => {
            if rt.kind == "Secret" && changed("/type") {
                errs.push(FieldError::immutable("type", &new["type"]));
            }
            if old["immutable"] == true {
                let forbidden = |field: &str| FieldError {
                    reason: "FieldValueForbidden",
                    field: field.into(),
                    message: "Forbidden: field is immutable when `immutable` is set".into(),
                };
                if new["immutable"] != true {
                    errs.push(forbidden("immutable"));
                }
                for f in ["data", "binaryData"] {
                    if changed(&format!("/{f}")) {
                        errs.push(forbidden(f));
                    }
                }
            }
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.kind, &rt.group, name_of(new), errs))
    }
}

/// A Service's cluster IPs may not change once allocated. Kubernetes'
/// `validateUpgradeDowngradeClusterIPs` (pkg/apis/core/validation/validation.go), after the
/// registry's `normalizeClusterIPs` (pkg/registry/core/service/strategy.go) made `clusterIPs[0]`
/// follow a changed `clusterIP`: `spec.clusterIPs[0]: Invalid value: []string{"10.96.0.12"}: may
/// not change once set`. ExternalName Services, and headless Services staying headless, are
/// exempt.
fn service_ip_changes(old: &Value, new: &Value) -> Vec<FieldError> {
    let ty = |v: &Value| {
        v["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string()
    };
    if ty(old) == "ExternalName" || ty(new) == "ExternalName" {
        return Vec::new();
    }
    let ips = |v: &Value| -> Vec<String> {
        v["spec"]["clusterIPs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let ip = |v: &Value| {
        v["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (old_ips, mut new_ips) = (ips(old), ips(new));
    if ip(new) != ip(old) && new_ips == old_ips {
        match new_ips.first_mut() {
            Some(first) => *first = ip(new),
            None => new_ips.push(ip(new)),
        }
    }
    let headless = |ips: &[String]| ips.first().is_some_and(|i| i == "None");
    if headless(&old_ips) && headless(&new_ips) {
        return Vec::new();
    }
    let go = format!(
        "[]string{{{}}}",
        new_ips
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let invalid = |i: usize, detail: &str| FieldError {
        reason: "FieldValueInvalid",
        field: format!("spec.clusterIPs[{i}]"),
        message: format!("Invalid value: {go}: {detail}"),
    };
    if new_ips.is_empty() && !old_ips.is_empty() {
        return vec![invalid(0, "primary clusterIP can not be unset")];
    }
    old_ips
        .iter()
        .zip(&new_ips)
        .enumerate()
        .filter(|(_, (o, n))| o != n)
        .map(|(i, _)| invalid(i, "may not change once set"))
        .collect()
}

/// A claim's spec is immutable after creation, except `resources.requests` (growing only) and
/// `volumeAttributesClassName` of a bound claim, and `volumeName` set once. Kubernetes'
/// `ValidatePersistentVolumeClaimUpdate` (pkg/apis/core/validation/validation.go). The real
/// message ends with a Go `cmp` diff of the spec; here the changed fields follow as JSON.
fn pvc_spec_changes(old: &Value, new: &Value) -> Vec<FieldError> {
    let bound = old["status"]["phase"] == "Bound";
    let mut errs = Vec::new();
    let clean = |v: &Value| {
        let mut spec = v["spec"].clone();
        if let Some(m) = spec.as_object_mut() {
            if bound {
                m.remove("volumeAttributesClassName");
                if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                }
            }
            if old["spec"]["volumeName"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                m.remove("volumeName");
            }
        }
        spec
    };
    let (a, b) = (clean(old), clean(new));
    if a != b {
        let mut fields: Vec<String> = Vec::new();
        let empty = serde_json::Map::new();
        let (am, bm) = (
            a.as_object().unwrap_or(&empty),
            b.as_object().unwrap_or(&empty),
        );
        for k in am.keys().chain(bm.keys().filter(|k| !am.contains_key(*k))) {
            if am.get(k) != bm.get(k) {
                fields.push(format!(
                    "-  {k}: {}\n+  {k}: {}",
                    am.get(k).unwrap_or(&Value::Null),
                    bm.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        errs.push(FieldError {
            reason: "FieldValueForbidden",
            field: "spec".into(),
            message: format!(
                "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                fields.join("\n")
            ),
        });
    }
    if bound {
        let storage = |v: &Value| {
            v["spec"]["resources"]["requests"]["storage"]
                .as_str()
                .map(str::to_string)
        };
        if let (Some(o), Some(n)) = (storage(old), storage(new))
            && crate::quantity::compare(&n, &o) == Some(std::cmp::Ordering::Less)
        {
            errs.push(FieldError {
                reason: "FieldValueForbidden",
                field: "spec.resources.requests.storage".into(),
                message: "Forbidden: field can not be less than previous value".into(),
            });
        }
    }
    errs
}

/// Bump generation (only the main resource's strategies do), skip no-op writes, validate and store an updated object.
fn finish_update(
    store: &mut Store,
    ctx: &Ctx<'_>,
    key: Key,
    old: &Value,
    mut new: Value,
    subresource: &str,
    on: &OnUndeclared<'_>,
) -> Result<Outcome, ApiError> {
    drop_empty_meta_maps(&mut new);
    let generation = old["metadata"]["generation"].as_i64();
    match generation {
        Some(g) => new["metadata"]["generation"] = json!(g),
        None => {
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("generation");
            }
        }
    }
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    allocate(ctx.rt, &mut new, Some(old), &mut |what| {
        store.allocate(what)
    });
    // The common no-op (an unchanged re-apply) is answered before the costlier checks; the stored
    // object has no undeclared fields, so an equal one has none either.
    if new == *old {
        return Ok(ok(new, 200));
    }
    check_declared_fields(ctx, &mut new, on)?;
    if let Some(g) = generation
        && subresource.is_empty()
        && bumps_generation(ctx.rt, old, &new)
    {
        new["metadata"]["generation"] = json!(g + 1);
    }
    if new == *old {
        return Ok(ok(new, 200));
    }
    validate(ctx.rt, &new)?;
    immutable_checks(ctx.rt, old, &new)?;
    if ctx.dry_run {
        return Ok(ok(new, 200));
    }
    check_storage_size(&new)?;
    let stored = store.put(key.clone(), new, EventType::Modified);
    // The last finalizer of an object being deleted is gone: now it really goes.
    if stored["metadata"]["deletionTimestamp"].is_string()
        && !has_finalizers(&stored)
        && !is_namespace(ctx.rt)
    {
        store.delete(&key);
        return Ok(ok(stored, 200));
    }
    Ok(Outcome {
        object: stored,
        code: 200,
        followups: followups_for(ctx.rt, &key),
    })
}

fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

fn is_namespace(rt: &ResourceType) -> bool {
    rt.resource == "namespaces" && !rt.custom
}

/// Keep what the client may not change: identity, creation time, and the fields the strategy
/// resets (status on the main resource, spec through `/status`: [`crate::ssa::reset`]).
fn carry_system_fields(rt: &ResourceType, old: &Value, new: &mut Value, subresource: &str) {
    for k in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old["metadata"].get(k) {
            Some(v) => new["metadata"][k] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    // A Namespace's finalizers change only through its finalize
    // subresource: an update keeps the stored ones
    // (pkg/registry/core/namespace/strategy.go, PrepareForUpdate).
    if is_namespace(rt) && subresource.is_empty() {
        match old["spec"].get("finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(spec) = new["spec"].as_object_mut() {
                    spec.remove("finalizers");
                }
            }
        }
    }
    if subresource == "status" && rt.custom {
        // A custom resource's status strategy takes nothing but `status` (apiextensions-apiserver
        // pkg/registry/customresource/status_strategy.go, PrepareForUpdate), though it lists
        // only `spec` as reset.
        let status = new.get("status").cloned();
        let mut keep = old.clone();
        match status {
            Some(s) => keep["status"] = s,
            None => {
                if let Some(m) = keep.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        keep["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        *new = keep;
    } else {
        crate::ssa::reset::keep(old, new, crate::ssa::reset::reset_fields(rt, subresource));
    }
}

fn update_inner(
    store: &mut Store,
    ctx: &Ctx<'_>,
    key: Key,
    old: &Value,
    mut new: Value,
    subresource: &str,
) -> Result<Outcome, ApiError> {
    // A patch can turn the document into anything; only an object with metadata is one.
    if !new.is_object() || !new["metadata"].is_object() {
        return Err(ApiError::bad_request(format!(
            "the patched {} is not an object with metadata; check the patch document",
            ctx.rt.kind
        )));
    }
    set_type(ctx.rt, &mut new);
    let user_managed = new["metadata"]["managedFields"]
        .as_array()
        .filter(|a| !a.is_empty() && Some(*a) != old["metadata"]["managedFields"].as_array())
        .cloned();
    if user_managed.is_none() {
        new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
    }
    carry_system_fields(ctx.rt, old, &mut new, subresource);
    admit(ctx.rt, &mut new, subresource.is_empty())?;
    match user_managed {
        Some(list) => {
            let kept: Vec<Value> = list
                .into_iter()
                .filter(|e| e.get("manager").is_some())
                .collect();
            new["metadata"]["managedFields"] = Value::Array(kept);
        }
        None => {
            let av = ctx.rt.api_version();
            let mut w = ctx.writer(subresource);
            w.api_version = &av;
            managed::update(Some(old), &mut new, &w);
        }
    }
    finish_update(
        store,
        ctx,
        key,
        old,
        new,
        subresource,
        &OnUndeclared::Decode,
    )
}

fn check_rv(ctx: &Ctx<'_>, old: &Value, body: &Value) -> Result<(), ApiError> {
    if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(ctx.rt, name_of(old)));
    }
    Ok(())
}

/// PUT of an object (or of its status subresource).
pub fn update(
    store: &mut Store,
    ctx: &Ctx<'_>,
    name: &str,
    mut body: Value,
    subresource: &str,
) -> Result<Outcome, ApiError> {
    check_body(ctx.rt, &body)?;
    check_namespace(ctx, &mut body)?;
    check_url_name(&mut body, name)?;
    let key = Store::key(ctx.rt, ctx.ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(ctx.rt, name))?;
    check_rv(ctx, &old, &body)?;
    update_inner(store, ctx, key, &old, body, subresource)
}

mod delete;
mod patching;
mod scale;

pub use delete::{delete, finalize_namespace};
pub use patching::{PatchKind, patch};
pub use scale::{has_scale, scale_of, write_scale};
