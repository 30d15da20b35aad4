//! The record of previews in the cluster: one ConfigMap per cluster
//! (`keelson-system/keelson-previews`), one data key per preview
//! (`<template>.<number>` → its [`PreviewRecord`] as JSON). Every change is
//! a JSON merge patch that carries the `metadata.resourceVersion` it was
//! computed from, which the API server takes as a precondition (409
//! Conflict when another writer got there first; Kubernetes API
//! conventions, "Concurrency Control and Consistency"). A conflict re-reads
//! and recomputes, so two replicas, or a CI job and the controller, never
//! hand out the same block.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use super::record::{PreviewRecord, Previews};
use crate::observe::{self, Cluster, ClusterError};
use crate::render::objects::MANAGED_BY;

/// Name of the ConfigMap that records the previews of a cluster.
pub const RECORD_NAME: &str = "keelson-previews";

/// Namespace of that ConfigMap when the config names none.
pub const DEFAULT_NAMESPACE: &str = "keelson-system";

/// Label that marks the record.
pub const RECORD_LABEL: &str = "keelson.dev/previews";

/// How often a change is recomputed after losing a race.
const ATTEMPTS: u32 = 30;

/// Why the record could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The API server refused or could not be reached.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The record's namespace does not exist.
    #[error(
        "namespace `{namespace}` does not exist on the cluster, so the previews cannot be recorded; create it (kubectl create namespace {namespace}) or name another in the keelson config (previews.namespace)"
    )]
    NoNamespace {
        /// The namespace.
        namespace: String,
    },
    /// An entry could not be read; nothing is allocated around an entry
    /// whose ports are unknown.
    #[error(
        "the preview record {namespace}/{RECORD_NAME} has an unreadable entry `{key}`: {message}; fix or remove that key (kubectl edit configmap -n {namespace} {RECORD_NAME})"
    )]
    Corrupt {
        /// Namespace of the record.
        namespace: String,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// Other writers kept winning.
    #[error("the preview record kept changing under {ATTEMPTS} attempts; try again")]
    Contended,
}

/// The record on one cluster.
pub struct Store<'a, C: Cluster> {
    cluster: &'a C,
    namespace: String,
}

/// A change to the record refused by its own logic (a limit, a missing
/// preview), with nothing written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeError<E> {
    /// The change refused.
    #[error("{0}")]
    Refused(E),
    /// The record failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl<'a, C: Cluster> Store<'a, C> {
    /// The record in `namespace` of `cluster`.
    pub fn new(cluster: &'a C, namespace: &str) -> Self {
        Store {
            cluster,
            namespace: namespace.to_string(),
        }
    }

    fn resource() -> observe::Resource {
        observe::builtin("v1", "ConfigMap").expect("ConfigMap is built in")
    }

    /// Every recorded preview, and the resourceVersion it was read at
    /// (`None`: no record yet, which is no preview).
    pub async fn read(&self) -> Result<(Previews, Option<String>), StoreError> {
        let cm = self
            .cluster
            .get(&Self::resource(), Some(&self.namespace), RECORD_NAME)
            .await?;
        let Some(cm) = cm else {
            return Ok((Previews::default(), None));
        };
        let rv = cm
            .pointer("/metadata/resourceVersion")
            .and_then(Json::as_str)
            .map(str::to_string);
        let mut by_key = BTreeMap::new();
        if let Some(data) = cm.get("data").and_then(Json::as_object) {
            for (key, value) in data {
                let record = value
                    .as_str()
                    .ok_or_else(|| "not a string".to_string())
                    .and_then(|s| {
                        serde_json::from_str::<PreviewRecord>(s).map_err(|e| e.to_string())
                    })
                    .and_then(|r| {
                        if &r.key() == key {
                            Ok(r)
                        } else {
                            Err(format!("it records `{}`", r.key()))
                        }
                    })
                    .map_err(|message| StoreError::Corrupt {
                        namespace: self.namespace.clone(),
                        key: key.clone(),
                        message,
                    })?;
                by_key.insert(key.clone(), record);
            }
        }
        Ok((Previews { by_key }, rv))
    }

    /// Make the (empty) record exist. Server-side apply of metadata only:
    /// racing creators all succeed, and the data other writers put in with
    /// merge patches is never touched by it.
    async fn create(&self) -> Result<(), StoreError> {
        let skeleton = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": RECORD_NAME,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: "keelson", RECORD_LABEL: "true"},
            },
        });
        match self
            .cluster
            .apply(&Self::resource(), &skeleton, false)
            .await
        {
            Ok(_) => Ok(()),
            Err(ClusterError::Api { code: 404, .. }) => Err(StoreError::NoNamespace {
                namespace: self.namespace.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Apply `change` to the current record and write what it changed, with
    /// the resourceVersion it read as a precondition; on a conflict, read
    /// again and recompute. `change` must be a pure function of the record
    /// it is given (it may run several times). Returns its result.
    pub async fn update<T, E>(
        &self,
        mut change: impl FnMut(&mut Previews) -> Result<T, E>,
    ) -> Result<T, ChangeError<E>> {
        for attempt in 0..ATTEMPTS {
            let (before, rv) = self.read().await?;
            let Some(rv) = rv else {
                self.create().await?;
                continue;
            };
            let mut after = before.clone();
            let out = change(&mut after).map_err(ChangeError::Refused)?;
            let patch = data_patch(&before, &after, &rv);
            if patch.is_none() {
                return Ok(out);
            }
            let patch = patch.expect("checked");
            match self
                .cluster
                .merge_patch(
                    &Self::resource(),
                    Some(&self.namespace),
                    RECORD_NAME,
                    &patch,
                )
                .await
            {
                Ok(_) => return Ok(out),
                Err(ClusterError::Api { code: 409, .. }) => {
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Err(e) => return Err(StoreError::from(e).into()),
            }
        }
        Err(StoreError::Contended.into())
    }
}

/// The merge patch from `before` to `after`, preconditioned on `rv`;
/// `None` when nothing changed.
fn data_patch(before: &Previews, after: &Previews, rv: &str) -> Option<Json> {
    let mut data = Map::new();
    for (k, r) in &after.by_key {
        if before.by_key.get(k) != Some(r) {
            let text = serde_json::to_string(r).expect("a record serialises");
            data.insert(k.clone(), Json::String(text));
        }
    }
    for k in before.by_key.keys() {
        if !after.by_key.contains_key(k) {
            data.insert(k.clone(), Json::Null);
        }
    }
    (!data.is_empty()).then(|| json!({"metadata": {"resourceVersion": rv}, "data": data}))
}

/// A short, spread-out pause before retrying, so that racing writers do
/// not collide again in lock step.
fn jitter(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let spread = 5 + u64::from(attempt.min(10)) * 5;
    Duration::from_millis(u64::from(nanos) % spread + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_holds_only_changes_and_the_precondition() {
        let a = PreviewRecord {
            template: "t".into(),
            number: 1,
            id: 1,
            ..PreviewRecord::default()
        };
        let b = PreviewRecord {
            number: 2,
            id: 2,
            ..a.clone()
        };
        let before = Previews {
            by_key: [(a.key(), a.clone())].into(),
        };
        let after = Previews {
            by_key: [(b.key(), b.clone())].into(),
        };
        let p = data_patch(&before, &after, "42").unwrap();
        assert_eq!(p["metadata"]["resourceVersion"], "42");
        assert_eq!(p["data"]["t.1"], Json::Null);
        assert!(p["data"]["t.2"].as_str().unwrap().contains("\"number\":2"));
        assert_eq!(data_patch(&before, &before, "42"), None);
    }
}
