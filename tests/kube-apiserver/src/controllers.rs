//! Stand-ins for the controllers a real cluster runs, reduced to what clients observe: the
//! status of Deployments, StatefulSets, DaemonSets and Jobs (so health checks can be tested)
//! and CRD establishment.
//!
//! The workload controllers follow the spec as the real ones do: a paused Deployment does not
//! roll out a new template, a StatefulSet with `updateStrategy: OnDelete` keeps its pods on the
//! old revision, a `partition` P updates only ordinals ≥ P, a suspended Job runs nothing. Pods
//! are not modelled, so a test steers what they would do with [`Rollout`]
//! ([`TestServer::set_rollout`]): a rollout stuck half-way, old pods still terminating, new
//! pods not yet available, a failure.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::registry::crd_types;
use crate::server::{Gvr, TestServer};
use crate::ssa::managed::{self, Writer};
use crate::store::{EventType, Key, Store};

/// Where a workload's pods stand, as a test wants the controller to report it. The default
/// is [`Rollout::Complete`]; [`TestServer::set_workload_healthy`] with `false` is
/// [`Rollout::Failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollout {
    /// Every pod runs the latest template and is available; a Job completed.
    #[default]
    Complete,
    /// The controller has not observed the latest generation: the status stays as it was.
    Unobserved,
    /// Only this many pods run the latest template; the others still run the old one. A Job
    /// is running.
    Updated(i64),
    /// Every pod is updated, and this many old pods are still terminating (Deployment).
    OldPodsTerminating(i64),
    /// Every pod is updated, but only this many are available.
    Available(i64),
    /// Pods cannot be created: `ReplicaFailure=True` (FailedCreate, a quota) on a Deployment.
    ReplicaFailure,
    /// The rollout failed: `Progressing=False` (ProgressDeadlineExceeded) on a Deployment, no
    /// ready pods on a StatefulSet or DaemonSet, `Failed` (BackoffLimitExceeded) on a Job.
    Failed,
}

/// What the workload controllers remember between syncs.
#[derive(Debug, Default)]
pub struct Workloads {
    /// Rollouts a test steered.
    rollouts: HashMap<Key, Rollout>,
    /// The pod template each Deployment and DaemonSet last rolled out (the real controllers
    /// keep it as ReplicaSets and ControllerRevisions; StatefulSets keep it in
    /// `status.currentRevision`).
    rolled_out: HashMap<Key, String>,
}

impl Workloads {
    /// Forget a deleted workload (its ReplicaSets and revisions go with it).
    pub fn forget(&mut self, key: &Key) {
        self.rollouts.remove(key);
        self.rolled_out.remove(key);
    }
}

impl TestServer {
    /// Make a workload's controller report `rollout` from now on (and at once), until the next
    /// call. `gvr` is `apps/v1` deployments, statefulsets or daemonsets, or `batch/v1` jobs.
    pub fn set_rollout(&self, gvr: &Gvr, namespace: &str, name: &str, rollout: Rollout) {
        let mut store = self.shared.store();
        let key = (
            gvr.group.clone(),
            gvr.resource.clone(),
            namespace.to_string(),
            name.to_string(),
        );
        store.workloads.rollouts.insert(key.clone(), rollout);
        workload_status(&mut store, &key);
    }
}

fn rollout(store: &Store, key: &Key) -> Rollout {
    if store.unhealthy.contains(key) {
        return Rollout::Failed;
    }
    store
        .workloads
        .rollouts
        .get(key)
        .copied()
        .unwrap_or_default()
}

/// A short stable hash of the pod template, as the controllers name revisions with.
fn template_hash(obj: &Value) -> String {
    // FNV-1a over the canonical JSON text (serde_json maps are ordered).
    let text = obj["spec"]["template"].to_string();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}

fn write_status(
    store: &mut Store,
    key: &Key,
    status: Value,
    manager: &str,
    api_version: &str,
) -> bool {
    let Some(old) = store.get(key).cloned() else {
        return false;
    };
    if old["status"] == status {
        return false;
    }
    let mut new = old.clone();
    new["status"] = status;
    let now = crate::util::now_rfc3339();
    let w = Writer {
        manager,
        api_version,
        subresource: "status",
        now: &now,
        reset: crate::ssa::reset::SPEC,
    };
    managed::update(Some(&old), &mut new, &w);
    store.put(key.clone(), new, EventType::Modified);
    true
}

/// Set a workload's status from its spec, as its controller would once pods are up (or as
/// the test steered it with [`Rollout`]).
pub fn workload_status(store: &mut Store, key: &Key) -> bool {
    match key.1.as_str() {
        "deployments" => deployment_status(store, key),
        "statefulsets" => statefulset_status(store, key),
        "daemonsets" => daemonset_status(store, key),
        "jobs" => job_status(store, key),
        _ => false,
    }
}

/// A condition with the given timestamps.
fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message})
}

fn statefulset_status(store: &mut Store, key: &Key) -> bool {
    let mode = rollout(store, key);
    let Some(obj) = store.get(key) else {
        return false;
    };
    if mode == Rollout::Unobserved {
        return false;
    }
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let update_revision = format!("{}-{}", key.3, template_hash(obj));
    let mut current_revision = obj["status"]["currentRevision"]
        .as_str()
        .unwrap_or(&update_revision)
        .to_string();
    let on_delete = obj["spec"]["updateStrategy"]["type"] == "OnDelete";
    let partition = obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_i64()
        .unwrap_or(0)
        .clamp(0, replicas);
    // Pods at the update revision: all of them once nothing changed; with OnDelete none until
    // someone deletes them (pods are not modelled, so nobody does); with a partition only
    // ordinals >= partition.
    let mut updated = if current_revision == update_revision {
        replicas
    } else if on_delete {
        0
    } else {
        replicas - partition
    };
    let mut ready = replicas;
    match mode {
        Rollout::Updated(n) => updated = n.clamp(0, replicas),
        Rollout::Available(n) => ready = n.clamp(0, replicas),
        Rollout::Failed | Rollout::ReplicaFailure => ready = 0,
        _ => {}
    }
    if updated == replicas {
        current_revision = update_revision.clone();
    }
    let current = if current_revision == update_revision {
        replicas
    } else {
        replicas - updated
    };
    let status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    });
    write_status(store, key, status, "kube-controller-manager", "apps/v1")
}

fn daemonset_status(store: &mut Store, key: &Key) -> bool {
    let mode = rollout(store, key);
    let Some(obj) = store.get(key) else {
        return false;
    };
    if mode == Rollout::Unobserved {
        return false;
    }
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let template = template_hash(obj);
    let on_delete = obj["spec"]["updateStrategy"]["type"] == "OnDelete";
    // One schedulable node per Node object, and at least one: a test cluster has a node.
    let nodes = store
        .objects
        .keys()
        .filter(|k| k.0.is_empty() && k.1 == "nodes")
        .count()
        .max(1) as i64;
    let previous = store.workloads.rolled_out.get(key);
    // OnDelete: the pods of an older template stay until someone deletes them.
    let mut updated = if on_delete && previous.is_some_and(|p| *p != template) {
        0
    } else {
        store.workloads.rolled_out.insert(key.clone(), template);
        nodes
    };
    let mut ready = nodes;
    match mode {
        Rollout::Updated(n) => updated = n.clamp(0, nodes),
        Rollout::Available(n) => ready = n.clamp(0, nodes),
        Rollout::Failed | Rollout::ReplicaFailure => ready = 0,
        _ => {}
    }
    let mut status = json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": nodes,
        "currentNumberScheduled": nodes,
        "updatedNumberScheduled": updated,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
    });
    if ready < nodes {
        status["numberUnavailable"] = json!(nodes - ready);
    }
    write_status(store, key, status, "kube-controller-manager", "apps/v1")
}

/// Set a Deployment's status from its spec, as the deployment controller would once pods are up
/// (or as the test steered it with [`Rollout`]).
pub fn deployment_status(store: &mut Store, key: &Key) -> bool {
    let mode = rollout(store, key);
    let Some(obj) = store.get(key) else {
        return false;
    };
    if mode == Rollout::Unobserved {
        return false;
    }
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let paused = obj["spec"]["paused"] == json!(true);
    let now = obj["status"]["conditions"][0]["lastUpdateTime"]
        .as_str()
        .filter(|_| obj["status"]["observedGeneration"] == json!(generation))
        .map(String::from)
        .unwrap_or_else(crate::util::now_rfc3339);
    let template = template_hash(obj);
    let rs = format!("{}-{}", key.3, &template[..8]);
    let previous = store.workloads.rolled_out.get(key).cloned();
    let available = |n: i64| {
        if n > 0 || replicas == 0 {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now,
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &now,
            )
        }
    };
    let progressing = |reason: &str, message: String| {
        let status = if reason == "ProgressDeadlineExceeded" {
            "False"
        } else if reason == "DeploymentPaused" {
            "Unknown"
        } else {
            "True"
        };
        condition("Progressing", status, reason, &message, &now)
    };
    // (status.replicas, updated, available, conditions)
    let (total, updated, ready, conditions) = if paused {
        // The controller creates no new ReplicaSet while paused: the pods run the template it
        // rolled out last (none for a Deployment created paused).
        let current = match &previous {
            Some(p) if *p == template => replicas,
            _ => 0,
        };
        let running = if previous.is_some() { replicas } else { 0 };
        (
            running,
            current,
            running,
            vec![
                available(running),
                progressing("DeploymentPaused", "Deployment is paused".into()),
            ],
        )
    } else {
        store.workloads.rolled_out.insert(key.clone(), template);
        let updating = format!("ReplicaSet \"{rs}\" is progressing.");
        match mode {
            Rollout::Failed => (
                replicas,
                replicas,
                0,
                vec![
                    available(0),
                    progressing(
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet \"{rs}\" has timed out progressing."),
                    ),
                ],
            ),
            Rollout::ReplicaFailure => (
                0,
                0,
                0,
                vec![
                    available(0),
                    progressing("ReplicaSetUpdated", updating),
                    condition(
                        "ReplicaFailure",
                        "True",
                        "FailedCreate",
                        &format!(
                            "pods \"{rs}-x7k2p\" is forbidden: exceeded quota: compute-resources, \
                             requested: limits.cpu=500m, used: limits.cpu=2, limited: limits.cpu=2"
                        ),
                        &now,
                    ),
                ],
            ),
            Rollout::Updated(n) => {
                let n = n.clamp(0, replicas);
                (
                    replicas,
                    n,
                    replicas,
                    vec![
                        available(replicas),
                        progressing("ReplicaSetUpdated", updating),
                    ],
                )
            }
            Rollout::OldPodsTerminating(n) => (
                replicas + n.max(0),
                replicas,
                replicas,
                vec![
                    available(replicas),
                    progressing("ReplicaSetUpdated", updating),
                ],
            ),
            Rollout::Available(n) => {
                let n = n.clamp(0, replicas);
                (
                    replicas,
                    replicas,
                    n,
                    vec![available(n), progressing("ReplicaSetUpdated", updating)],
                )
            }
            Rollout::Complete | Rollout::Unobserved => (
                replicas,
                replicas,
                replicas,
                vec![
                    available(replicas),
                    progressing(
                        "NewReplicaSetAvailable",
                        format!("ReplicaSet \"{rs}\" has successfully progressed."),
                    ),
                ],
            ),
        }
    };
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": conditions,
    });
    if total > ready {
        status["unavailableReplicas"] = json!(total - ready);
    }
    // The API omits zero counters (omitempty).
    let map = status.as_object_mut().expect("object");
    map.retain(|_, v| v != &json!(0));
    write_status(store, key, status, "kube-controller-manager", "apps/v1")
}

/// A Job's status: complete at once, unless suspended or steered to run or fail. Jobs have no
/// `observedGeneration`; their conditions are the whole story.
fn job_status(store: &mut Store, key: &Key) -> bool {
    let mode = rollout(store, key);
    let Some(obj) = store.get(key) else {
        return false;
    };
    if mode == Rollout::Unobserved {
        return false;
    }
    let now = crate::util::now_rfc3339();
    let start = obj["status"]["startTime"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| now.clone());
    // Keep a terminal status as it is: a finished Job never runs again.
    let finished = obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    });
    if finished {
        return false;
    }
    let cond = |kind: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message})
    };
    let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = obj["spec"]["parallelism"].as_i64().unwrap_or(1);
    let status = if obj["spec"]["suspend"] == json!(true) {
        json!({"active": 0, "ready": 0,
            "conditions": [cond("Suspended", "JobSuspended", "Job suspended")]})
    } else {
        match mode {
            Rollout::Complete => json!({
                "startTime": start, "completionTime": now, "succeeded": completions, "ready": 0,
                "conditions": [
                    cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                    cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                ],
            }),
            Rollout::Failed | Rollout::ReplicaFailure => json!({
                "startTime": start,
                "failed": obj["spec"]["backoffLimit"].as_i64().unwrap_or(6) + 1, "ready": 0,
                "conditions": [
                    cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                    cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                ],
            }),
            _ => json!({"startTime": start, "active": parallelism, "ready": parallelism}),
        }
    };
    write_status(store, key, status, "kube-controller-manager", "batch/v1")
}

/// Mark a CRD `NamesAccepted` and `Established`, and start serving its resources.
pub fn establish_crd(store: &mut Store, name: &str) -> bool {
    let key: Key = (
        "apiextensions.k8s.io".into(),
        "customresourcedefinitions".into(),
        String::new(),
        name.into(),
    );
    let Some(crd) = store.get(&key).cloned() else {
        return false;
    };
    if crd_types(&crd).is_empty() {
        return false;
    }
    store.registry.register_crd(&crd);
    let now = crd["status"]["conditions"][0]["lastTransitionTime"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(crate::util::now_rfc3339);
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let status = json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts",
             "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted"},
        ],
        "storedVersions": stored,
    });
    write_status(
        store,
        &key,
        status,
        "kube-apiserver",
        "apiextensions.k8s.io/v1",
    )
}
