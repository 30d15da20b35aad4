//! Desired Kubernetes objects of one resolved environment.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use super::merge::{ResolvedApp, ResolvedEnv};
use super::quantity;
use crate::spec::{IntOrString, Runtime};

/// Label every keelson object carries: who manages it.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label every keelson object carries: which environment it belongs to.
pub const ENV_LABEL: &str = "keelson.dev/environment";
/// Annotation: `disabled` keeps an object from ever being pruned.
pub const PRUNE_ANNOTATION: &str = "keelson.dev/prune";
/// Annotation: `create-only` creates an object once and never updates it.
pub const APPLY_ANNOTATION: &str = "keelson.dev/apply";
/// Annotation: `enabled` lets keelson replace the object (delete it, then
/// create it again) when a change touches a field that may not change once
/// set, as Flux's `kustomize.toolkit.fluxcd.io/force: enabled` does. Never
/// for kinds whose deletion loses data ([`crate::apply::confirm`]).
pub const FORCE_ANNOTATION: &str = "keelson.dev/force";
/// Annotation: a hash of the object as keelson applies it (see
/// [`super::stamp`]); the no-op decision compares it with live.
pub const APPLIED_HASH_ANNOTATION: &str = "keelson.dev/applied-hash";

/// The default JVM heap share of the memory limit.
const DEFAULT_HEAP_RATIO: f64 = 0.6;

/// The labels every object of `env` carries.
pub fn common_labels(env: &ResolvedEnv) -> BTreeMap<String, String> {
    let mut l = env.defaults.labels.clone();
    l.extend(env.labels.clone());
    l.insert(MANAGED_BY.into(), "keelson".into());
    l.insert(ENV_LABEL.into(), env.name.clone());
    l
}

/// A JSON object of `entries`, in this order, moving each value in: `json!`
/// copies a `Json` value it is given by serialising it again, which made
/// rendering re-serialise every pod spec three times over.
fn object<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// `metadata` with a name, a namespace and labels.
fn metadata(name: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Json {
    object([
        ("name", name.into()),
        ("namespace", namespace.into()),
        ("labels", to_map(labels)),
    ])
}

fn to_map(m: &BTreeMap<String, String>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn int_or_string(v: &IntOrString) -> Json {
    match v {
        IntOrString::Int(i) => json!(i),
        IntOrString::Str(s) => json!(s),
    }
}

/// The Namespace of the environment.
pub fn namespace(env: &ResolvedEnv) -> Json {
    object([
        ("apiVersion", "v1".into()),
        ("kind", "Namespace".into()),
        (
            "metadata",
            object([
                ("name", env.namespace.as_str().into()),
                ("labels", to_map(&common_labels(env))),
            ]),
        ),
    ])
}

/// Labels of an app's objects. Only the Deployment and its pods carry the
/// version, so a release does not rewrite the Service, Ingress and PDB.
fn app_labels(env: &ResolvedEnv, app: &ResolvedApp) -> BTreeMap<String, String> {
    let mut l = common_labels(env);
    l.insert("app.kubernetes.io/name".into(), app.name.clone());
    l
}

fn versioned_labels(env: &ResolvedEnv, app: &ResolvedApp) -> BTreeMap<String, String> {
    let mut l = app_labels(env, app);
    l.insert(
        "app.kubernetes.io/version".into(),
        label_safe(&app.version()),
    );
    l
}

fn selector(env: &ResolvedEnv, app: &ResolvedApp) -> Json {
    object([
        ("app.kubernetes.io/name", app.name.as_str().into()),
        (ENV_LABEL, env.name.as_str().into()),
    ])
}

/// Label values are at most 63 characters of `[A-Za-z0-9._-]`.
fn label_safe(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The Deployment of `app`.
pub fn deployment(env: &ResolvedEnv, app: &ResolvedApp) -> Json {
    let d = &env.defaults;
    let labels = versioned_labels(env, app);
    let mut pod_labels = labels.clone();
    pod_labels.extend(app.labels.clone());
    if let Some(region) = &app.region {
        pod_labels.insert("keelson.dev/region".into(), region.clone());
    }

    let mut container = Map::new();
    container.insert("name".into(), json!(app.name));
    container.insert("image".into(), json!(app.image()));
    if !app.command.is_empty() {
        container.insert("command".into(), json!(app.command));
    }
    if !app.args.is_empty() {
        container.insert("args".into(), json!(app.args));
    }
    if !app.ports.is_empty() {
        let ports: Vec<Json> = app
            .ports
            .iter()
            .map(|p| json!({"name": p.name, "containerPort": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())}))
            .collect();
        container.insert("ports".into(), Json::Array(ports));
    }
    let env_vars = container_env(env, app);
    if !env_vars.is_empty() {
        let list: Vec<Json> = env_vars
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        container.insert("env".into(), Json::Array(list));
    }
    container.insert("resources".into(), resources(env, app));
    if let Some(h) = &app.health {
        let port = match &h.port {
            Some(p) => int_or_string(p),
            None => app.ports.first().map_or(json!(80), |p| json!(p.name)),
        };
        let probe = |initial: Option<u32>| {
            let mut m = Map::new();
            m.insert(
                "httpGet".into(),
                object([("path", h.path.as_str().into()), ("port", port.clone())]),
            );
            if let Some(i) = initial {
                m.insert("initialDelaySeconds".into(), json!(i));
            }
            if let Some(p) = &d.probes {
                if let Some(v) = p.period_seconds {
                    m.insert("periodSeconds".into(), json!(v));
                }
                if let Some(v) = p.timeout_seconds {
                    m.insert("timeoutSeconds".into(), json!(v));
                }
                if let Some(v) = p.failure_threshold {
                    m.insert("failureThreshold".into(), json!(v));
                }
            }
            Json::Object(m)
        };
        let live_delay = h
            .initial_delay_seconds
            .or_else(|| d.probes.as_ref().and_then(|p| p.initial_delay_seconds));
        container.insert("readinessProbe".into(), probe(None));
        container.insert("livenessProbe".into(), probe(live_delay));
    }

    let mut pod_spec = Map::new();
    if !app.node_selector.is_empty() {
        pod_spec.insert("nodeSelector".into(), to_map(&app.node_selector));
    }
    if let Some(p) = &d.dns_policy {
        pod_spec.insert("dnsPolicy".into(), json!(p));
    }
    if !d.dns_options.is_empty() {
        let opts: Vec<Json> = d
            .dns_options
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        pod_spec.insert("dnsConfig".into(), object([("options", Json::Array(opts))]));
    }
    if let Some(t) = d.termination_grace_period_seconds {
        pod_spec.insert("terminationGracePeriodSeconds".into(), json!(t));
    }
    pod_spec.insert(
        "containers".into(),
        Json::Array(vec![Json::Object(container)]),
    );

    let mut template_meta = Map::new();
    template_meta.insert("labels".into(), to_map(&pod_labels));
    if !d.pod_annotations.is_empty() {
        template_meta.insert("annotations".into(), to_map(&d.pod_annotations));
    }

    let mut spec = Map::new();
    spec.insert("replicas".into(), json!(app.replicas));
    if let Some(r) = d.revision_history_limit {
        spec.insert("revisionHistoryLimit".into(), json!(r));
    }
    spec.insert(
        "selector".into(),
        object([("matchLabels", selector(env, app))]),
    );
    spec.insert("strategy".into(), strategy(env, app));
    spec.insert(
        "template".into(),
        object([
            ("metadata", Json::Object(template_meta)),
            ("spec", Json::Object(pod_spec)),
        ]),
    );

    object([
        ("apiVersion", "apps/v1".into()),
        ("kind", "Deployment".into()),
        ("metadata", metadata(&app.name, &env.namespace, &labels)),
        ("spec", Json::Object(spec)),
    ])
}

/// The names of the container's environment variables, in rendered order.
pub fn env_names(env: &ResolvedEnv, app: &ResolvedApp) -> Vec<String> {
    container_env(env, app).into_keys().collect()
}

/// Environment variables, with runtime-derived ones (JVM heap) added.
fn container_env(env: &ResolvedEnv, app: &ResolvedApp) -> BTreeMap<String, String> {
    let mut vars = app.env.clone();
    let ratio = env.defaults.jvm_heap_ratio.unwrap_or(DEFAULT_HEAP_RATIO);
    let heap_mib =
        quantity::parse(&app.memory).map(|b| (b * ratio / (1024.0 * 1024.0)).floor() as u64);
    match (app.runtime, heap_mib) {
        (Runtime::Jvm, Some(mib)) => {
            let user = vars.get("JAVA_OPTS").cloned().unwrap_or_default();
            if !user.contains("-Xmx") {
                let opts = format!("-Xmx{mib}m {user}").trim().to_string();
                vars.insert("JAVA_OPTS".into(), opts);
            }
        }
        (Runtime::Node, Some(mib)) => {
            let user = vars.get("NODE_OPTIONS").cloned().unwrap_or_default();
            if !user.contains("--max-old-space-size") {
                let opts = format!("--max-old-space-size={mib} {user}")
                    .trim()
                    .to_string();
                vars.insert("NODE_OPTIONS".into(), opts);
            }
        }
        _ => {}
    }
    vars
}

/// Limits from the app, requests = limits / overcommit ratio.
fn resources(env: &ResolvedEnv, app: &ResolvedApp) -> Json {
    let (cpu_ratio, mem_ratio) = env
        .defaults
        .overcommit
        .as_ref()
        .map_or((1.0, 1.0), |o| (o.cpu.max(1.0), o.memory.max(1.0)));
    let mut limits = Map::new();
    let mut requests = Map::new();
    if let Some(cpu) = quantity::parse(&app.cpu) {
        limits.insert("cpu".into(), json!(app.cpu));
        requests.insert("cpu".into(), json!(quantity::format_cpu(cpu / cpu_ratio)));
    }
    if let Some(mem) = quantity::parse(&app.memory) {
        limits.insert("memory".into(), json!(app.memory));
        requests.insert(
            "memory".into(),
            json!(quantity::format_bytes(mem / mem_ratio)),
        );
    }
    object([
        ("limits", Json::Object(limits)),
        ("requests", Json::Object(requests)),
    ])
}

/// Rolling update that never takes every ready pod away: `maxUnavailable`
/// is capped below the replica count, and `maxSurge` is at least 1 when
/// nothing may be unavailable, so a rollout can still progress.
fn strategy(env: &ResolvedEnv, app: &ResolvedApp) -> Json {
    let (surge, unavailable) = env
        .defaults
        .rollout
        .as_ref()
        .map_or((IntOrString::Str("25%".into()), IntOrString::Int(0)), |r| {
            (r.max_surge.clone(), r.max_unavailable.clone())
        });
    let n = i64::from(app.replicas);
    // Kubernetes rounds maxUnavailable down and maxSurge up.
    let eff = |v: &IntOrString, up: bool| match v {
        IntOrString::Int(i) => *i,
        IntOrString::Str(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = pct * n as f64 / 100.0;
            if up {
                x.ceil() as i64
            } else {
                x.floor() as i64
            }
        }
    };
    let mut unavailable_json = int_or_string(&unavailable);
    let mut eff_unavailable = eff(&unavailable, false);
    if n > 0 && eff_unavailable >= n {
        eff_unavailable = n - 1;
        unavailable_json = json!(eff_unavailable);
    }
    let mut surge_json = int_or_string(&surge);
    if eff_unavailable == 0 && eff(&surge, true) == 0 {
        surge_json = json!(1);
    }
    object([
        ("type", "RollingUpdate".into()),
        (
            "rollingUpdate",
            object([
                ("maxSurge", surge_json),
                ("maxUnavailable", unavailable_json),
            ]),
        ),
    ])
}

/// The Service of an app with ports.
pub fn service(env: &ResolvedEnv, app: &ResolvedApp) -> Option<Json> {
    if app.ports.is_empty() {
        return None;
    }
    let ports: Vec<Json> = app
        .ports
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "port": p.port,
                "targetPort": p.name,
                "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect();
    Some(object([
        ("apiVersion", "v1".into()),
        ("kind", "Service".into()),
        (
            "metadata",
            metadata(&app.name, &env.namespace, &app_labels(env, app)),
        ),
        (
            "spec",
            object([
                ("type", "ClusterIP".into()),
                ("selector", selector(env, app)),
                ("ports", Json::Array(ports)),
            ]),
        ),
    ]))
}

/// The Ingress of an app with a domain and a port.
pub fn ingress(env: &ResolvedEnv, app: &ResolvedApp) -> Option<Json> {
    let domain = app.domain.as_ref()?;
    let port = app
        .ports
        .iter()
        .find(|p| p.name == "http")
        .or_else(|| app.ports.first())?;
    let mut spec = Map::new();
    if let Some(class) = &env.defaults.ingress_class {
        spec.insert("ingressClassName".into(), json!(class));
    }
    spec.insert(
        "rules".into(),
        json!([{
            "host": domain,
            "http": { "paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": { "service": { "name": app.name, "port": { "name": port.name } } },
            }]},
        }]),
    );
    Some(object([
        ("apiVersion", "networking.k8s.io/v1".into()),
        ("kind", "Ingress".into()),
        (
            "metadata",
            metadata(&app.name, &env.namespace, &app_labels(env, app)),
        ),
        ("spec", Json::Object(spec)),
    ]))
}

/// The PodDisruptionBudget of an app, when policy asks for one and the app
/// has more than one replica (a PDB on a single replica blocks node drains).
pub fn pdb(env: &ResolvedEnv, app: &ResolvedApp) -> Option<Json> {
    let p = env.defaults.pod_disruption_budget.as_ref()?;
    if app.replicas < 2 {
        return None;
    }
    let mut spec = Map::new();
    if let Some(v) = &p.min_available {
        spec.insert("minAvailable".into(), int_or_string(v));
    }
    if let Some(v) = &p.max_unavailable {
        spec.insert("maxUnavailable".into(), int_or_string(v));
    }
    spec.insert(
        "selector".into(),
        object([("matchLabels", selector(env, app))]),
    );
    Some(object([
        ("apiVersion", "policy/v1".into()),
        ("kind", "PodDisruptionBudget".into()),
        (
            "metadata",
            metadata(&app.name, &env.namespace, &app_labels(env, app)),
        ),
        ("spec", Json::Object(spec)),
    ]))
}

/// Kinds that are not namespaced (for passthrough manifests).
pub const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "CSIDriver",
];

/// A passthrough manifest with keelson's labels, namespaced into the
/// environment's namespace when it names none.
pub fn passthrough(env: &ResolvedEnv, object: &Json) -> Json {
    let mut obj = object.clone();
    let kind = obj
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let meta = obj
        .as_object_mut()
        .and_then(|o| {
            o.entry("metadata").or_insert_with(|| json!({}));
            o.get_mut("metadata")
        })
        .and_then(Json::as_object_mut);
    if let Some(meta) = meta {
        if !CLUSTER_SCOPED.contains(&kind.as_str()) && !meta.contains_key("namespace") {
            // Insert after name so the output reads naturally.
            let mut ordered = Map::new();
            for (k, v) in std::mem::take(meta) {
                let is_name = k == "name";
                ordered.insert(k, v);
                if is_name {
                    ordered.insert("namespace".into(), json!(env.namespace));
                }
            }
            *meta = ordered;
        }
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            for (k, v) in common_labels(env) {
                l.insert(k, json!(v));
            }
        }
    }
    obj
}
