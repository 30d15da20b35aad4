//! Environment status in the cluster: one `KeelsonEnvironment`
//! (`keelson.dev/v1`) per environment, its `status` subresource written by
//! the replica that synced it, so that every replica, `keelson status
//! --kubeconfig …` and `kubectl get keelsonenvironments` read the same
//! picture. The local redb store stays the history of each process.
//!
//! Writes are server-side applies with field manager `keelson`: the object
//! (spec: the environment's name) once per process, then its status through
//! the `status` subresource, as controllers do (Kubernetes API conventions,
//! "spec and status"). Each write is fenced on its own: the caller's
//! [`Fence`] is checked right before it.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value as Json, json};

use super::EnvStatus;
use crate::controller::fence::Fence;
use crate::controller::lease::object_name;

/// API group of keelson's custom resources.
pub const GROUP: &str = "keelson.dev";
/// Version served.
pub const VERSION: &str = "v1";
/// Kind of the status object.
pub const KIND: &str = "KeelsonEnvironment";
/// Plural resource name.
pub const PLURAL: &str = "keelsonenvironments";

/// Errors reading or writing status objects.
#[derive(Debug, thiserror::Error)]
pub enum ClusterStatusError {
    /// The CRD is not installed (404 on the resource).
    #[error(
        "the {PLURAL}.{GROUP} CRD is not installed in the cluster; apply deploy/crd.yaml (`kubectl apply -f deploy/crd.yaml`)"
    )]
    NoCrd,
    /// The fence refused the write (the Lease is no longer ours): nothing
    /// more was written.
    #[error("{0}")]
    Fenced(String),
    /// Any other API error.
    #[error("{verb} {PLURAL}.{GROUP}: {message}")]
    Api {
        /// What was attempted.
        verb: &'static str,
        /// The server's answer or the transport error.
        message: String,
    },
}

fn err(verb: &'static str, e: kube::Error) -> ClusterStatusError {
    match e {
        // SSA creates missing objects, and lists never 404: a 404 is the
        // resource itself not being served.
        kube::Error::Api(s) if s.code == 404 => ClusterStatusError::NoCrd,
        kube::Error::Api(s) => ClusterStatusError::Api {
            verb,
            message: format!("{} {}: {}", s.code, s.reason, s.message),
        },
        other => ClusterStatusError::Api {
            verb,
            message: other.to_string(),
        },
    }
}

fn resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// The `KeelsonEnvironment` objects of one namespace.
#[derive(Clone)]
pub struct ClusterStatus {
    api: Api<DynamicObject>,
    /// Names of the objects this process has applied: their status alone is
    /// written from then on (one write per sync, not two).
    known: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl ClusterStatus {
    /// Status objects in `namespace` of the cluster of `client`.
    pub fn new(client: kube::Client, namespace: &str) -> ClusterStatus {
        ClusterStatus {
            api: Api::namespaced_with(client, namespace, &resource()),
            known: Default::default(),
        }
    }

    /// Record `st`, as synced by replica `by`, checking `fence` right before
    /// each write: a status write never goes out on the strength of a check
    /// made before an earlier write (a replica paused during the first write
    /// must not send the second when it resumes). The object itself is applied
    /// once per process, and again when its status write answers 404 (someone
    /// deleted it).
    ///
    /// Errors: [`ClusterStatusError::Fenced`] when the fence refused (nothing
    /// more written), [`ClusterStatusError::NoCrd`], or the API's answer.
    pub async fn put(
        &self,
        st: &EnvStatus,
        by: &str,
        fence: &dyn Fence,
    ) -> Result<(), ClusterStatusError> {
        let name = object_name("", &st.env);
        let pp = PatchParams::apply(crate::plan::FIELD_MANAGER).force();
        let status = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": KIND,
            "metadata": {"name": name},
            "status": to_status(st, by),
        });
        let write_status = || async {
            fence.check().await.map_err(ClusterStatusError::Fenced)?;
            self.api
                .patch_status(&name, &pp, &Patch::Apply(&status))
                .await
                .map_err(|e| err("apply status of", e))
        };
        if self.is_known(&name) {
            match write_status().await {
                Ok(_) => return Ok(()),
                Err(ClusterStatusError::NoCrd) => self.set_known(&name, false),
                Err(e) => return Err(e),
            }
        }
        let obj = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": KIND,
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "keelson"},
            },
            "spec": {"environment": st.env},
        });
        fence.check().await.map_err(ClusterStatusError::Fenced)?;
        self.api
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map_err(|e| err("apply", e))?;
        self.set_known(&name, true);
        write_status().await.map(|_| ())
    }

    fn is_known(&self, name: &str) -> bool {
        self.known.lock().is_ok_and(|k| k.contains(name))
    }

    fn set_known(&self, name: &str, known: bool) {
        if let Ok(mut k) = self.known.lock() {
            if known {
                k.insert(name.to_string());
            } else {
                k.remove(name);
            }
        }
    }

    /// Every environment's status, sorted by environment.
    pub async fn all(&self) -> Result<Vec<EnvStatus>, ClusterStatusError> {
        let list = self
            .api
            .list(&ListParams::default())
            .await
            .map_err(|e| err("list", e))?;
        let mut out: Vec<EnvStatus> = list
            .items
            .iter()
            .filter_map(|o| from_object(&serde_json::to_value(o).ok()?))
            .collect();
        out.sort_by(|a, b| a.env.cmp(&b.env));
        Ok(out)
    }
}

/// The `status` of a `KeelsonEnvironment`: the [`EnvStatus`] fields, plus
/// `commit` (short id of the last applied commit), `state` (the last
/// attempt's outcome: `Synced`, `Drifted`, `Invalid`, `Failed`) and
/// `syncedBy` (the replica), for the printer columns.
pub fn to_status(st: &EnvStatus, by: &str) -> Json {
    let mut v = serde_json::to_value(st).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.remove("env");
        let commit = st
            .last_applied
            .as_ref()
            .map(|c| c.commit.chars().take(12).collect::<String>())
            .unwrap_or_default();
        m.insert("commit".into(), json!(commit));
        m.insert("state".into(), json!(state(st)));
        m.insert("syncedBy".into(), json!(by));
    }
    v
}

/// One word for the printer column.
pub fn state(st: &EnvStatus) -> &'static str {
    use crate::controller::Outcome;
    let last = st.last_attempt.as_ref().map(|a| &a.outcome);
    match last {
        Some(Outcome::Invalid { .. }) => "Invalid",
        Some(Outcome::Failed { .. }) => "Failed",
        _ if st.drift > 0 => "Drifted",
        Some(_) => "Synced",
        None => "Unknown",
    }
}

/// An [`EnvStatus`] from a `KeelsonEnvironment` object.
pub fn from_object(o: &Json) -> Option<EnvStatus> {
    let env = o.pointer("/spec/environment")?.as_str()?.to_string();
    let mut status = o.get("status").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = status.as_object_mut() {
        m.insert("env".into(), json!(env));
    }
    serde_json::from_value(status).ok()
}

/// The CustomResourceDefinition of `KeelsonEnvironment` (also in
/// `deploy/crd.yaml`).
pub fn crd() -> Json {
    let column = |name: &str, ty: &str, path: &str, description: &str| json!({"name": name, "type": ty, "jsonPath": path, "description": description});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{PLURAL}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": PLURAL,
                "singular": "keelsonenvironment",
                "shortNames": ["kenv"],
                "categories": ["keelson"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    column("Commit", "string", ".status.commit", "Last commit applied"),
                    column("State", "string", ".status.state", "Outcome of the last sync"),
                    column("Drift", "integer", ".status.drift", "Objects differing from Git at the last check"),
                    column("Synced-By", "string", ".status.syncedBy", "Replica that wrote this status"),
                    column("Age", "date", ".metadata.creationTimestamp", ""),
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "The status of one keelson environment, written by the replica that synced it.",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["environment"],
                            "properties": {"environment": {"type": "string", "description": "Environment name (its folder under environments/)."}},
                        },
                        "status": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {
                                "commit": {"type": "string"},
                                "state": {"type": "string"},
                                "syncedBy": {"type": "string"},
                                "drift": {"type": "integer"},
                            },
                        },
                    },
                }},
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Outcome;
    use crate::record::{Attempt, CommitRef, Trigger};

    #[test]
    fn status_round_trips_through_the_object() {
        let st = EnvStatus {
            env: "prod".into(),
            last_applied: Some(CommitRef {
                commit: "0123456789abcdef0123".into(),
                at: "2026-11-30T10:00:00Z".into(),
            }),
            last_attempt: Some(Attempt {
                commit: "fedcba".into(),
                at: "2026-11-30T10:01:00Z".into(),
                trigger: Trigger::Commit,
                outcome: Outcome::Invalid {
                    diagnostics: vec!["environments/prod/pipeline.yaml:3:7: bad tag".into()],
                },
            }),
            ..EnvStatus::default()
        };
        let status = to_status(&st, "keelson-0");
        assert_eq!(status["commit"], "0123456789ab");
        assert_eq!(status["state"], "Invalid");
        let obj = json!({"spec": {"environment": "prod"}, "status": status});
        assert_eq!(from_object(&obj).unwrap(), st);
    }
}
