//! Waiting for CRDs to be Established and workloads to finish their rollout,
//! with a clear account of what is unhealthy and why.
//!
//! Workloads are judged from their conditions and counters by [`judge`] (in
//! `health/rules.rs`), in the order `kubectl rollout status` uses. A wait ends
//! as soon as the verdict is final: healthy, degraded (a failed rollout does
//! not recover by waiting) or suspended (a paused Deployment or suspended Job
//! waits for a person, not for time).

mod rules;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::ApplyOptions;
use crate::observe::{Cluster, builtin};
use crate::plan::ObjectId;

pub use rules::judge;

/// Health of a workload (or an app), with Argo CD's names
/// (gitops-engine `pkg/health` `HealthStatusCode`), serialised in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The rollout is complete: every replica updated and available (a Job
    /// completed).
    Healthy,
    /// A rollout is under way, or the controller has not observed the latest
    /// generation yet.
    Progressing,
    /// The rollout failed: `Progressing=False` (ProgressDeadlineExceeded),
    /// `ReplicaFailure=True`, or a Job `Failed`. Waiting does not help.
    Degraded,
    /// Paused on purpose: a Deployment with `spec.paused`, a Job with
    /// `spec.suspend`. Waiting does not help either.
    Suspended,
    /// The object does not exist.
    Missing,
    /// Not observed (no cluster access, or the read failed).
    Unknown,
}

impl Health {
    /// Lowercase name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Progressing => "progressing",
            Health::Degraded => "degraded",
            Health::Suspended => "suspended",
            Health::Missing => "missing",
            Health::Unknown => "unknown",
        }
    }

    /// Whether waiting longer cannot change the verdict: a wait for a
    /// rollout stops here.
    pub fn is_final(self) -> bool {
        matches!(self, Health::Healthy | Health::Degraded | Health::Suspended)
    }

    /// Whether an apply that leaves the workload in this state succeeded.
    /// A suspended workload is what its spec asks for.
    pub fn is_ok(self) -> bool {
        matches!(self, Health::Healthy | Health::Suspended)
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict on one object: its health and what it was judged from
/// (`2 of 3 updated replicas are available`, a condition's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Health.
    pub health: Health,
    /// Why, in kubectl's words where it has them.
    pub reason: String,
}

impl Verdict {
    pub(crate) fn new(health: Health, reason: impl Into<String>) -> Verdict {
        Verdict {
            health,
            reason: reason.into(),
        }
    }
}

/// Health of one workload after apply.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadHealth {
    /// Which workload.
    pub id: ObjectId,
    /// The last verdict: final, or where the rollout stood at the timeout.
    pub health: Health,
    /// What was seen last; ends with `(after waiting …)` when the wait timed out.
    pub reason: String,
}

impl WorkloadHealth {
    /// Whether the apply of this workload succeeded (healthy or suspended).
    pub fn is_ok(&self) -> bool {
        self.health.is_ok()
    }
}

/// Kinds whose health keelson waits for.
pub fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "Job")
}

/// Poll a workload until its verdict is final ([`Health::is_final`]) or the
/// timeout passes.
pub async fn wait_workload<C: Cluster>(
    cluster: &C,
    id: &ObjectId,
    opts: &ApplyOptions,
) -> WorkloadHealth {
    let deadline = opts.wait_until();
    let mut last = Verdict::new(Health::Unknown, "not observed");
    loop {
        last = match cluster.resource(&id.api_version, &id.kind).await {
            Ok(res) => match cluster.get(&res, Some(&id.namespace), &id.name).await {
                Ok(Some(o)) => judge(&o),
                Ok(None) => Verdict::new(Health::Missing, "not found after apply"),
                Err(e) => Verdict::new(last.health, e.to_string()),
            },
            Err(e) => Verdict::new(last.health, e.to_string()),
        };
        if last.health.is_final() {
            return WorkloadHealth {
                id: id.clone(),
                health: last.health,
                reason: last.reason,
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return WorkloadHealth {
                id: id.clone(),
                health: last.health,
                reason: format!("{} (after waiting {:?})", last.reason, opts.timeout),
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
    let deadline = opts.wait_until();
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
