//! Stand-ins for the controllers a real cluster runs, reduced to what clients observe:
//! Deployment status (so health checks can be tested) and CRD establishment.

use serde_json::{Value, json};

use crate::registry::crd_types;
use crate::ssa::managed::{self, Writer};
use crate::store::{EventType, Key, Store};

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
    };
    managed::update(Some(&old), &mut new, &w);
    store.put(key.clone(), new, EventType::Modified);
    true
}

/// Set a workload's status from its spec, as its controller would once pods are up.
pub fn workload_status(store: &mut Store, key: &Key) -> bool {
    match key.1.as_str() {
        "deployments" => deployment_status(store, key),
        "statefulsets" => statefulset_status(store, key),
        "daemonsets" => daemonset_status(store, key),
        _ => false,
    }
}

fn statefulset_status(store: &mut Store, key: &Key) -> bool {
    let Some(obj) = store.get(key) else {
        return false;
    };
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let ready = if store.unhealthy.contains(key) {
        0
    } else {
        replicas
    };
    let revision = format!("{}-{:x}", key.3, generation * 0x5f3759df % 0xfffffff);
    let status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    write_status(store, key, status, "kube-controller-manager", "apps/v1")
}

fn daemonset_status(store: &mut Store, key: &Key) -> bool {
    let Some(obj) = store.get(key) else {
        return false;
    };
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    // One schedulable node per Node object, and at least one: a test cluster has a node.
    let nodes = store
        .objects
        .keys()
        .filter(|k| k.0.is_empty() && k.1 == "nodes")
        .count()
        .max(1) as i64;
    let ready = if store.unhealthy.contains(key) {
        0
    } else {
        nodes
    };
    let mut status = json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": nodes,
        "currentNumberScheduled": nodes,
        "updatedNumberScheduled": nodes,
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
/// (or, if a test marked it unhealthy, as if no pod ever became ready).
pub fn deployment_status(store: &mut Store, key: &Key) -> bool {
    let Some(obj) = store.get(key) else {
        return false;
    };
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let unhealthy = store.unhealthy.contains(key);
    let now = obj["status"]["conditions"][0]["lastUpdateTime"]
        .as_str()
        .filter(|_| obj["status"]["observedGeneration"] == json!(generation))
        .map(String::from)
        .unwrap_or_else(crate::util::now_rfc3339);
    let name = key.3.clone();
    let status = if unhealthy {
        json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "unavailableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "False", "lastUpdateTime": now, "lastTransitionTime": now,
                 "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
                {"type": "Progressing", "status": "False", "lastUpdateTime": now, "lastTransitionTime": now,
                 "reason": "ProgressDeadlineExceeded", "message": format!("ReplicaSet \"{name}\" has timed out progressing.")},
            ],
        })
    } else {
        let mut s = json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
                 "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
                 "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{name}\" has successfully progressed.")},
            ],
        });
        if replicas == 0 {
            for k in [
                "readyReplicas",
                "availableReplicas",
                "updatedReplicas",
                "replicas",
            ] {
                s.as_object_mut().map(|m| m.remove(k));
            }
        }
        s
    };
    write_status(store, key, status, "kube-controller-manager", "apps/v1")
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
