//! Observe: read what is live. The [`Cluster`] trait is the I/O edge that
//! observe and apply stand on; `kube.rs` implements it over kube-rs and
//! `dir.rs` over a folder of captured objects (`reconcile --against DIR`).

pub mod dir;
pub mod explain;
pub mod kube;
pub mod listed;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;

use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::apply::health::{is_workload, judge};
use crate::plan::{Delegation, DesiredObject, LiveEnv, ObjectId, inventory, ownership};
use crate::render::objects::{CLUSTER_SCOPED, ENV_LABEL, MANAGED_BY};
use listed::Listed;

/// Where an API resource lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Resource {
    /// `group/version` or `version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// An error talking to a cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The API server answered with an error status.
    #[error("{verb} {what}: {code} {reason}: {message}")]
    Api {
        /// What was attempted.
        verb: String,
        /// On what.
        what: String,
        /// HTTP status.
        code: u16,
        /// Status reason (`Conflict`, `NotFound`…).
        reason: String,
        /// Status message.
        message: String,
        /// Seconds the server asked to wait before retrying (a 429's or
        /// 503's `Status.details.retryAfterSeconds`, as `Retry-After`).
        retry_after: Option<u32>,
        /// A 422 each of whose causes is a field that may not change once
        /// set ([`immutable_cause`]): those fields (`spec.template`; none
        /// named when the server gave no causes). The object can only be
        /// replaced. Boxed: errors travel in every `Result` of the client.
        immutable: Option<Box<Vec<String>>>,
    },
    /// The server could not be reached or the answer could not be read.
    #[error("{verb} {what}: {message}")]
    Transport {
        /// What was attempted.
        verb: String,
        /// On what.
        what: String,
        /// Why it failed.
        message: String,
        /// No connection could be made (refused, unreachable, DNS): the
        /// server is not there, so the other objects of a run need not try.
        unreachable: bool,
    },
    /// The kind is not served by the cluster.
    #[error("{0}")]
    UnknownKind(String),
    /// The cluster cannot be written (captured state).
    #[error("{0}")]
    ReadOnly(String),
    /// Client configuration failed (kubeconfig, context).
    #[error("{0}")]
    Config(String),
    /// Not written: this instance no longer holds the environment's Lease
    /// (`controller::fence`). Never retried.
    #[error("{0}")]
    Fenced(String),
}

impl ClusterError {
    /// Whether retrying may help (throttling, server errors, transient
    /// conflicts, network trouble).
    pub fn retryable(&self) -> bool {
        match self {
            ClusterError::Api { code, reason, .. } => {
                (matches!(code, 429 | 500 | 502 | 503 | 504) && !self.is_typed_patch_error())
                    || (*code == 409 && reason == "Conflict" && !is_field_conflict(self))
            }
            ClusterError::Transport { .. } => true,
            _ => false,
        }
    }
}

impl ClusterError {
    /// Whether the server could not build the typed patch of a server-side
    /// apply (`duplicate entries for key [...]`, an item without its key):
    /// a 500 that the same body meets every time (REAL-SERVER.md).
    pub fn is_typed_patch_error(&self) -> bool {
        matches!(self, ClusterError::Api { code: 500, message, .. }
            if message.contains("failed to create typed patch object"))
    }

    /// Whether the server refused an update only because it changes fields
    /// that may not change once set (REAL-SERVER.md "Immutable fields"):
    /// deleting the object and creating it again would carry it out.
    pub fn is_immutable(&self) -> bool {
        self.immutable_fields().is_some()
    }

    /// The fields of an [`ClusterError::is_immutable`] refusal, as the
    /// server names them (`spec.selector`); empty when it named none.
    pub fn immutable_fields(&self) -> Option<&[String]> {
        match self {
            ClusterError::Api {
                immutable: Some(f), ..
            } => Some(f),
            _ => None,
        }
    }

    /// How long the server asked to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClusterError::Api {
                retry_after: Some(s),
                ..
            } => Some(std::time::Duration::from_secs(u64::from(*s))),
            _ => None,
        }
    }

    /// Whether no connection to the server could be made at all.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            ClusterError::Transport {
                unreachable: true,
                ..
            }
        )
    }

    /// The same error with `note` added to its message.
    pub fn noted(mut self, note: &str) -> ClusterError {
        match &mut self {
            ClusterError::Api { message, .. } | ClusterError::Transport { message, .. } => {
                message.push_str(note);
            }
            ClusterError::UnknownKind(m)
            | ClusterError::ReadOnly(m)
            | ClusterError::Config(m)
            | ClusterError::Fenced(m) => {
                m.push_str(note);
            }
        }
        self
    }
}

fn is_field_conflict(e: &ClusterError) -> bool {
    matches!(e, ClusterError::Api { message, .. } if message.contains("conflict with"))
}

/// What keelson needs from a cluster.
pub trait Cluster: Send + Sync {
    /// Whether the cluster answers server-side dry runs (a live API server;
    /// not captured state).
    fn dry_runs(&self) -> bool {
        true
    }
    /// The check this cluster makes before each write, if any
    /// (`controller::fence::FencedCluster`), so that the run's writes to
    /// Rancher are fenced alike.
    fn fence(&self) -> Option<std::sync::Arc<dyn crate::controller::fence::Fence>> {
        None
    }
    /// Resolve a kind to its resource (discovery, cached).
    fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> impl Future<Output = Result<Resource, ClusterError>> + Send;
    /// LIST with a label selector, in a namespace or cluster-wide.
    fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> impl Future<Output = Result<Vec<Json>, ClusterError>> + Send;
    /// LIST like [`Cluster::list`], handing each object to `each` as it is
    /// read, as raw JSON (a built-in kind's items without `apiVersion` and
    /// `kind`, as the server sends them): a client that reads in pages keeps
    /// one page at a time, and observe parses of each object only what it
    /// needs ([`listed::Listed`]).
    fn list_each(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
        each: &mut (dyn FnMut(&RawValue) + Send),
    ) -> impl Future<Output = Result<(), ClusterError>> + Send {
        async move {
            for o in self.list(res, namespace, selector).await? {
                if let Ok(raw) = serde_json::value::to_raw_value(&o) {
                    each(&raw);
                }
            }
            Ok(())
        }
    }
    /// GET one object; `None` when it does not exist.
    fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> impl Future<Output = Result<Option<Json>, ClusterError>> + Send;
    /// Server-side apply with field manager `keelson` (force), optionally as a dry run.
    fn apply(
        &self,
        res: &Resource,
        obj: &Json,
        dry_run: bool,
    ) -> impl Future<Output = Result<Json, ClusterError>> + Send;
    /// JSON merge patch (RFC 7386) of one object, as field manager `keelson`:
    /// how keelson rewrites `metadata.managedFields` to take manual
    /// managers' fields over. Returns the object as stored.
    fn merge_patch(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Json,
    ) -> impl Future<Output = Result<Json, ClusterError>> + Send;
    /// DELETE one object (background propagation).
    fn delete(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
}

/// A resource for a well-known kind, without asking the cluster.
pub fn builtin(api_version: &str, kind: &str) -> Option<Resource> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "Namespace" => "namespaces",
        "ConfigMap" => "configmaps",
        "Secret" => "secrets",
        "Service" => "services",
        "ServiceAccount" => "serviceaccounts",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "ResourceQuota" => "resourcequotas",
        "LimitRange" => "limitranges",
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "DaemonSet" => "daemonsets",
        "Job" => "jobs",
        "CronJob" => "cronjobs",
        "Ingress" => "ingresses",
        "IngressClass" => "ingressclasses",
        "NetworkPolicy" => "networkpolicies",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "CustomResourceDefinition" => "customresourcedefinitions",
        "StorageClass" => "storageclasses",
        "PriorityClass" => "priorityclasses",
        _ => return None,
    };
    let known_group = matches!(
        group,
        "" | "apps"
            | "batch"
            | "networking.k8s.io"
            | "policy"
            | "autoscaling"
            | "rbac.authorization.k8s.io"
            | "apiextensions.k8s.io"
            | "storage.k8s.io"
            | "scheduling.k8s.io"
    );
    known_group.then(|| Resource {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced: !CLUSTER_SCOPED.contains(&kind),
    })
}

/// The label selector of an environment's objects.
pub fn env_selector(env: &str) -> String {
    format!("{MANAGED_BY}=keelson,{ENV_LABEL}={env}")
}

/// Observe an environment: one LIST per (kind, namespace) of what is desired
/// and what `inventory` records (read by the caller, from every namespace the
/// environment used) by the ownership labels, then a GET only for desired
/// objects the lists did not return (to find objects that exist but are not
/// keelson's). `manual` names the environment's manual managers.
///
/// Objects are shrunk as they are read: one that is surely unchanged
/// ([`ownership::clears`]) is held by its id alone ([`LiveEnv::cleared`]);
/// any other loses its status (but a workload's) and managedFields
/// bookkeeping. Each workload's health is judged as it is read
/// ([`LiveEnv::health`]). A no-op plan of thousands of objects then holds
/// little more than their ids.
pub async fn observe<C: Cluster>(
    cluster: &C,
    env: &str,
    desired: &[DesiredObject],
    manual: &[String],
    inventory: Option<inventory::Inventory>,
) -> Result<LiveEnv, ClusterError> {
    let mut kinds: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut add = |api_version: &str, kind: &str, ns: &str| {
        kinds
            .entry((api_version.to_string(), kind.to_string()))
            .or_default()
            .insert(ns.to_string());
    };
    let desired_ids: Vec<&ObjectId> = desired.iter().map(DesiredObject::id).collect();
    for id in desired_ids
        .iter()
        .copied()
        .chain(inventory.iter().flat_map(|i| i.objects.iter()))
    {
        add(&id.api_version, &id.kind, &id.namespace);
    }
    let selector = env_selector(env);
    let wanted: HashMap<&ObjectId, &DesiredObject> =
        desired_ids.iter().copied().zip(desired).collect();
    let mut owned = Vec::new();
    let mut owned_ids = Vec::new();
    let mut cleared = HashSet::new();
    let mut health = Vec::new();
    let mut keep = |res: &Resource, raw: &RawValue| {
        // Cleared: the id is all that is kept, and of a workload what
        // health reads, judged at once; any other object is kept slim.
        let (id, clear, o) = match Listed::parse(raw) {
            Some(item) => {
                let id = item.id(res);
                let clear =
                    !item.is_inventory() && wanted.get(&id).is_some_and(|d| item.clears(d, manual));
                let o = match (clear, is_workload(&id.kind)) {
                    (false, _) => listed::slim(item.full(res)),
                    (true, true) => item.headless(res),
                    (true, false) => Json::Null,
                };
                (id, clear, o)
            }
            None => {
                // Not in the shape of an object: judged as JSON, in full.
                let o = listed::whole(raw, res);
                let id = ObjectId::of(&o);
                let clear = !inventory::is_inventory(&o)
                    && wanted
                        .get(&id)
                        .is_some_and(|d| ownership::clears(&d.value(), &o, manual));
                let o = match (clear, is_workload(&id.kind)) {
                    (false, _) => listed::slim(o),
                    (true, true) => listed::headless(o),
                    (true, false) => Json::Null,
                };
                (id, clear, o)
            }
        };
        if is_workload(&id.kind) {
            health.push((id.name.clone(), judge(&o)));
        }
        if clear {
            cleared.insert(id.clone());
        } else {
            owned.push(o);
        }
        owned_ids.push(id);
    };
    let mut unresolved = BTreeSet::new();
    for ((api_version, kind), namespaces) in &kinds {
        let res = match cluster.resource(api_version, kind).await {
            Ok(r) => r,
            Err(ClusterError::UnknownKind(_)) => {
                // A custom resource whose CRD is not installed yet: nothing of
                // it can be live.
                unresolved.insert(kind.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        if res.namespaced {
            for ns in namespaces {
                cluster
                    .list_each(&res, Some(ns), &selector, &mut |raw| keep(&res, raw))
                    .await?;
            }
        } else {
            cluster
                .list_each(&res, None, &selector, &mut |raw| keep(&res, raw))
                .await?;
        }
    }
    let owned_keys: HashSet<(&str, &str, &str, &str)> =
        owned_ids.iter().map(ObjectId::key).collect();
    let missing_namespaces: BTreeSet<&str> = desired_ids
        .iter()
        .filter(|id| id.kind == "Namespace" && !owned_keys.contains(&id.key()))
        .map(|id| id.name.as_str())
        .collect();
    let mut absent_namespaces = BTreeSet::new();
    for ns in missing_namespaces {
        if !namespace_exists(cluster, ns).await? {
            absent_namespaces.insert(ns.to_string());
        }
    }
    let mut foreign = Vec::new();
    for id in &desired_ids {
        if owned_keys.contains(&id.key()) || unresolved.contains(&id.kind) {
            continue;
        }
        let res = cluster.resource(&id.api_version, &id.kind).await?;
        // Nothing exists in a namespace that does not exist, nor does the
        // namespace itself.
        let in_absent = if res.namespaced {
            &id.namespace
        } else {
            &id.name
        };
        if absent_namespaces.contains(in_absent) && (res.namespaced || id.kind == "Namespace") {
            continue;
        }
        let ns = res.namespaced.then_some(id.namespace.as_str());
        if let Some(live) = cluster.get(&res, ns, &id.name).await? {
            foreign.push(live);
        }
    }
    let delegations = delegations(cluster, desired).await?;
    Ok(LiveEnv {
        owned,
        foreign,
        inventory,
        delegations,
        cleared,
        health,
    })
}

/// The delegations the cluster holds for desired workloads: one LIST of
/// HorizontalPodAutoscalers per namespace that has a scalable workload
/// (HPAs are not keelson's, so no label selector). A cluster that does not
/// serve `autoscaling/v2` has none.
async fn delegations<C: Cluster>(
    cluster: &C,
    desired: &[DesiredObject],
) -> Result<Vec<Delegation>, ClusterError> {
    let namespaces: BTreeSet<&str> = desired
        .iter()
        .map(DesiredObject::id)
        .filter(|id| {
            matches!(
                id.kind.as_str(),
                "Deployment" | "StatefulSet" | "ReplicaSet"
            )
        })
        .map(|id| id.namespace.as_str())
        .filter(|ns| !ns.is_empty())
        .collect();
    if namespaces.is_empty() {
        return Ok(Vec::new());
    }
    let res = match cluster
        .resource("autoscaling/v2", "HorizontalPodAutoscaler")
        .await
    {
        Ok(r) => r,
        Err(ClusterError::UnknownKind(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for ns in namespaces {
        match cluster.list(&res, Some(ns), "").await {
            Ok(hpas) => out.extend(hpas.iter().filter_map(Delegation::from_hpa)),
            Err(ClusterError::Api { code: 404, .. }) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Whether one cause of a 422 (a `Status.details.causes[].message`, or the
/// whole message when the server gave no causes) says a field may not change
/// once set. The messages of kube-apiserver's validation:
/// `ValidateImmutableField` (`field is immutable`, also `field is immutable
/// when \`immutable\` is set` of ConfigMaps and Secrets), a Service's cluster
/// IPs (`may not change once set`), a StatefulSet's spec (`updates to
/// statefulset spec for fields other than ... are forbidden`), a
/// PersistentVolumeClaim's (`spec is immutable after creation ...`); and CEL
/// transition rules' usual `... is immutable` (as Flux's `IsImmutableError`).
pub fn immutable_cause(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("is immutable")
        || m.contains("immutable field")
        || m.contains("may not change once set")
        || m.contains("updates to statefulset spec for fields other than")
}

async fn namespace_exists<C: Cluster>(cluster: &C, name: &str) -> Result<bool, ClusterError> {
    let ns = builtin("v1", "Namespace").expect("builtin");
    Ok(cluster.get(&ns, None, name).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> ClusterError {
        ClusterError::Api {
            verb: "apply".into(),
            what: "Deployment shop/notifier".into(),
            code,
            reason: reason.into(),
            message: message.into(),
            retry_after: None,
            immutable: None,
        }
    }

    #[test]
    fn an_object_known_unchanged_keeps_only_what_reporting_reads() {
        let d = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "n", "generation": 3, "uid": "u1",
                "resourceVersion": "7", "annotations": {"keelson.dev/applied-hash": "h"},
                "labels": {"app": "web"}, "managedFields": [{"manager": "keelson"}]},
            "spec": {"replicas": 2, "paused": true, "template": {"spec": {"containers": []}}},
            "status": {"observedGeneration": 3, "readyReplicas": 2}});
        let h = listed::headless(d);
        assert_eq!(
            h["spec"],
            serde_json::json!({"replicas": 2, "paused": true})
        );
        assert_eq!(h["status"]["readyReplicas"], 2, "health reads it");
        assert_eq!(h["metadata"]["labels"]["app"], "web", "ownership reads it");
        assert_eq!(h["metadata"]["generation"], 3);
        assert_eq!(
            h["metadata"],
            serde_json::json!({"name": "web", "namespace": "n", "generation": 3, "labels": {"app": "web"}}),
            "nothing reads the rest of a cleared object's metadata"
        );
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"k": "v"}});
        assert_eq!(
            listed::headless(cm),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        );
    }

    #[test]
    fn an_object_known_unchanged_is_held_by_its_id_and_a_workload_by_its_health() {
        use crate::apply::health::Health;
        use crate::render::objects::APPLIED_HASH_ANNOTATION;
        use serde_json::json;
        let object = |kind: &str, name: &str, hash: &str, body: Json| {
            let api_version = if kind == "Deployment" {
                "apps/v1"
            } else {
                "v1"
            };
            let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {
                "name": name, "namespace": "n",
                "labels": {MANAGED_BY: "keelson", ENV_LABEL: "dev"},
                "annotations": {APPLIED_HASH_ANNOTATION: hash}}});
            o.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            o
        };
        let fields = json!({"f:metadata": {
            "f:labels": {"f:app.kubernetes.io/managed-by": {}, "f:keelson.dev/environment": {}},
            "f:annotations": {"f:keelson.dev/applied-hash": {}}},
            "f:data": {"f:a": {}}, "f:spec": {"f:replicas": {}}});
        let live = |mut o: Json, status: Json| {
            o["metadata"]["managedFields"] =
                json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": fields}]);
            o["metadata"]["generation"] = json!(1);
            o["status"] = status;
            o
        };
        let web = object("Deployment", "web", "h1", json!({"spec": {"replicas": 2}}));
        let same = object("ConfigMap", "same", "h2", json!({"data": {"a": "1"}}));
        let changed = object("ConfigMap", "changed", "h3", json!({"data": {"a": "2"}}));
        let ready = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 2, "readyReplicas": 2});
        let cluster = dir::DirCluster::from_objects(vec![
            live(web.clone(), ready),
            live(same.clone(), json!({})),
            live(
                object("ConfigMap", "changed", "old", json!({"data": {"a": "1"}})),
                json!({}),
            ),
        ]);
        let desired: Vec<DesiredObject> = [web, same, changed]
            .iter()
            .map(DesiredObject::new)
            .collect();
        let env = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(observe(&cluster, "dev", &desired, &[], None))
            .unwrap();
        let names: Vec<&str> = env
            .owned
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["changed"], "only what the plan must judge is kept");
        let mut cleared: Vec<String> = env.cleared.iter().map(ToString::to_string).collect();
        cleared.sort();
        assert_eq!(cleared, ["ConfigMap/n/same", "Deployment/n/web"]);
        assert_eq!(env.health.len(), 1);
        assert_eq!(env.health[0].0, "web");
        assert_eq!(env.health[0].1.health, Health::Healthy, "{:?}", env.health);
    }

    #[test]
    fn errors_the_same_body_meets_every_time_are_not_retried() {
        let typed = api(
            500,
            "InternalError",
            "failed to create typed patch object (apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"n\"].env: duplicate entries for key [name=\"A\"]",
        );
        assert!(typed.is_typed_patch_error());
        assert!(!typed.retryable());
        assert!(!api(422, "Invalid", "field is immutable").retryable());
        assert!(!api(400, "BadRequest", "cannot unmarshal").retryable());
        assert!(api(500, "InternalError", "etcdserver: request timed out").retryable());
        assert!(api(409, "Conflict", "the object has been modified").retryable());
        assert!(
            !api(
                409,
                "Conflict",
                "Apply failed with 1 conflict: conflict with \"x\""
            )
            .retryable()
        );
    }
}
