//! Render: merge the three layers and produce the desired objects of each
//! environment, in a stable order with stable key order.

pub mod emit;
pub mod merge;
pub mod objects;
pub mod provenance;
pub mod quantity;
pub mod stamp;

use serde_json::Value as Json;

pub use merge::{ResolvedApp, ResolvedEnv, resolve};

/// Apply order of kinds: namespaces and CRDs first, then config, then
/// services, then workloads. Deletions run in reverse.
pub fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "PriorityClass" | "StorageClass" | "IngressClass" | "ClusterRole" => 2,
        "ServiceAccount" | "Role" | "ClusterRoleBinding" | "RoleBinding" => 3,
        "ConfigMap" | "Secret" | "ResourceQuota" | "LimitRange" | "PersistentVolumeClaim" => 4,
        "NetworkPolicy" | "PodDisruptionBudget" => 5,
        "Service" => 6,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => 7,
        "HorizontalPodAutoscaler" | "Ingress" => 8,
        _ => 9,
    }
}

/// The sort key of an object: apply order, then namespace, then name.
pub fn order_key(o: &Json) -> (u8, String, String, String) {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = s("/kind");
    (
        kind_rank(&kind),
        kind,
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

/// What a rendered object was made from, so that a problem found in it can
/// be reported at the spec line that produced it ([`provenance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The environment's Namespace.
    Namespace,
    /// An app's object (Deployment, Service, Ingress, PodDisruptionBudget),
    /// by the app's index in `environment.yaml`.
    App(usize),
    /// A passthrough manifest, by its index in the environment's manifests.
    Manifest(usize),
}

/// The desired objects of one environment, sorted by [`order_key`].
pub fn render_env(env: &ResolvedEnv) -> Vec<Json> {
    render_env_sourced(env)
        .into_iter()
        .map(|(o, _)| o)
        .collect()
}

/// [`render_env`], with what each object was made from.
pub fn render_env_sourced(env: &ResolvedEnv) -> Vec<(Json, Source)> {
    let mut out = Vec::new();
    each_object(env, Stamp::Hash, |o, s| out.push((o, s)));
    out.sort_by_cached_key(|(o, _)| order_key(o));
    out
}

/// What [`each_object`] puts in each object's applied-hash annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The object's hash ([`stamp::stamp`]): objects to plan and apply.
    Hash,
    /// 32 zeros ([`stamp::stamp_placeholder`]): objects only checked, which
    /// need a stamped object's shape but not its hash (hashing was an
    /// eighth of a no-op reconcile's instructions, spent twice).
    Placeholder,
}

/// Each desired object of `env`, stamped as `stamp` says, handed to `f` as
/// it is made, in the order of the spec (not sorted): a caller that looks
/// at one object at a time holds one, not the thousands of an environment.
pub fn each_object(env: &ResolvedEnv, stamp: Stamp, mut f: impl FnMut(Json, Source)) {
    let mut give = |mut o: Json, s: Source| {
        match stamp {
            Stamp::Hash => stamp::stamp(&mut o),
            Stamp::Placeholder => stamp::stamp_placeholder(&mut o),
        }
        f(o, s);
    };
    give(objects::namespace(env), Source::Namespace);
    for (i, app) in env.apps.iter().enumerate() {
        let s = Source::App(i);
        give(objects::deployment(env, app), s);
        for o in [
            objects::service(env, app),
            objects::ingress(env, app),
            objects::pdb(env, app),
        ]
        .into_iter()
        .flatten()
        {
            give(o, s);
        }
    }
    for (i, m) in env.manifests.iter().enumerate() {
        give(objects::passthrough(env, &m.object), Source::Manifest(i));
    }
}
