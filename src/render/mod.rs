//! Render: merge the three layers and produce the desired objects of each
//! environment, in a stable order with stable key order.

pub mod emit;
pub mod merge;
pub mod objects;
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

/// The desired objects of one environment, sorted by [`order_key`].
pub fn render_env(env: &ResolvedEnv) -> Vec<Json> {
    let mut out = vec![objects::namespace(env)];
    for app in &env.apps {
        out.push(objects::deployment(env, app));
        out.extend(objects::service(env, app));
        out.extend(objects::ingress(env, app));
        out.extend(objects::pdb(env, app));
    }
    for m in &env.manifests {
        out.push(objects::passthrough(env, &m.object));
    }
    out.sort_by_cached_key(order_key);
    for o in &mut out {
        stamp::stamp(o);
    }
    out
}
