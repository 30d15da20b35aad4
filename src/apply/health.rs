//! Waiting for CRDs to be Established and workloads to be healthy, with a
//! clear account of what is unhealthy and why.

use serde::Serialize;
use serde_json::Value as Json;

use super::ApplyOptions;
use crate::observe::{Cluster, builtin};
use crate::plan::ObjectId;

/// Health of one workload after apply.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Which workload.
    pub id: ObjectId,
    /// Whether it became healthy within the timeout.
    pub healthy: bool,
    /// What was seen last (`2/3 replicas available`, a condition message).
    pub reason: String,
}

/// Kinds whose health keelson waits for.
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet")
}

/// Judge a workload from its status: (healthy, reason).
pub fn judge(o: &Json) -> (bool, String) {
    let n = |p: &str| o.pointer(p).and_then(Json::as_i64).unwrap_or(0);
    let generation = n("/metadata/generation");
    let observed = n("/status/observedGeneration");
    let want = o
        .pointer("/spec/replicas")
        .and_then(Json::as_i64)
        .unwrap_or(1);
    let updated = n("/status/updatedReplicas");
    let available = n("/status/availableReplicas");
    let ready = n("/status/readyReplicas");
    if let Some(conds) = o.pointer("/status/conditions").and_then(Json::as_array) {
        for c in conds {
            let t = c.get("type").and_then(Json::as_str).unwrap_or_default();
            let s = c.get("status").and_then(Json::as_str).unwrap_or_default();
            let reason = c.get("reason").and_then(Json::as_str).unwrap_or_default();
            if (t == "Progressing" && s == "False") || (t == "ReplicaFailure" && s == "True") {
                let msg = c.get("message").and_then(Json::as_str).unwrap_or_default();
                return (false, format!("{t}: {reason}: {msg}"));
            }
        }
    }
    if observed < generation {
        return (
            false,
            format!("controller has not observed generation {generation} yet (at {observed})"),
        );
    }
    if updated < want {
        return (false, format!("{updated}/{want} replicas updated"));
    }
    if available < want
        || (o.get("kind").and_then(Json::as_str) == Some("StatefulSet") && ready < want)
    {
        return (false, format!("{available}/{want} replicas available"));
    }
    (true, format!("{available}/{want} replicas available"))
}

/// Poll a workload until healthy or the timeout.
pub async fn wait_workload<C: Cluster>(cluster: &C, id: &ObjectId, opts: &ApplyOptions) -> Health {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut last = String::from("not observed");
    loop {
        if let Ok(res) = cluster.resource(&id.api_version, &id.kind).await {
            match cluster.get(&res, Some(&id.namespace), &id.name).await {
                Ok(Some(o)) => {
                    let (ok, reason) = judge(&o);
                    if ok {
                        return Health {
                            id: id.clone(),
                            healthy: true,
                            reason,
                        };
                    }
                    last = reason;
                }
                Ok(None) => last = "not found after apply".into(),
                Err(e) => last = e.to_string(),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Health {
                id: id.clone(),
                healthy: false,
                reason: format!("{last} (after waiting {:?})", opts.timeout),
            };
        }
        tokio::time::sleep(opts.poll).await;
    }
}

/// Poll a CRD until its `Established` condition is true.
pub async fn wait_crd_established<C: Cluster>(
    cluster: &C,
    name: &str,
    opts: &ApplyOptions,
) -> Result<(), String> {
    let res = builtin("apiextensions.k8s.io/v1", "CustomResourceDefinition").expect("builtin");
    let deadline = tokio::time::Instant::now() + opts.timeout;
    loop {
        if let Ok(Some(o)) = cluster.get(&res, None, name).await {
            let established = o
                .pointer("/status/conditions")
                .and_then(Json::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if established {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "CRD {name} was not Established within {:?}",
                opts.timeout
            ));
        }
        tokio::time::sleep(opts.poll.min(std::time::Duration::from_millis(500))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn judges_rollout_progress() {
        let base = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3}});
        assert!(judge(&base).0);
        let mut stale = base.clone();
        stale["status"]["observedGeneration"] = json!(1);
        assert!(judge(&stale).1.contains("not observed generation 2"));
        let mut partial = base.clone();
        partial["status"]["availableReplicas"] = json!(1);
        assert_eq!(judge(&partial), (false, "1/3 replicas available".into()));
        let mut stuck = base;
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out progressing."}]);
        assert!(judge(&stuck).1.contains("ProgressDeadlineExceeded"));
    }
}
