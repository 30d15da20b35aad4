//! Applying and releasing one preview: the paths `keelson preview
//! create|delete` and the merge request source of `keelson run` share.
//!
//! - [`apply`]: the recorded preview materialised from the checked tree
//!   and reconciled as an environment (plan, apply, prune);
//! - [`release`]: marked releasing in the record, retired through the
//!   ordinary retirement path (under the guard the template opts into with
//!   `prune.allowDeleteAll`), and only once every object is gone, forgotten
//!   (or left as the tombstone of an expired preview), which frees its
//!   block and id.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use super::PreviewsConfig;
use super::lifecycle;
use super::online::with_records;
use super::params::preview_name;
use super::record::{Previews, key};
use super::store::{Store, StoreError};
use crate::check::Report;
use crate::controller::fence::{Fence, FencedCluster};
use crate::observe::{self, Cluster};
use crate::plan::inventory;
use crate::reconcile::{self, Clusters, EnvResult, Options};

/// Why a preview could not be applied or released.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// The record could not be read or written.
    #[error("the preview record: {0}")]
    Record(#[from] StoreError),
    /// The preview's environment does not check; one line per error
    /// (`file:line:col: message`).
    #[error("preview {name} is not applied: {}", .errors.join("; "))]
    Invalid {
        /// The preview.
        name: String,
        /// The errors.
        errors: Vec<String>,
    },
    /// The retirement could not run.
    #[error("{0}")]
    Retire(String),
}

/// Check the tree at `root` with the records `read` (by cluster): the
/// report that [`apply`] takes.
pub fn check_with(root: &Path, read: &BTreeMap<String, Result<Previews, String>>) -> Report {
    with_records(root, read).report
}

/// Reconcile the preview environment `name` of `report` (a tree checked
/// with its records, [`check_with`]).
pub async fn apply(
    report: &Report,
    name: &str,
    clusters: &Clusters,
    opts: &Options,
    fence: Option<Arc<dyn Fence>>,
) -> Result<EnvResult, ActionError> {
    let Some(env) = report.ready.get(name) else {
        let own = Path::new("environments")
            .join(crate::spec::preview::TEMPLATES_DIR)
            .to_path_buf();
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .filter(|d| d.file.starts_with(&own) || d.file.starts_with("policies"))
            .map(|d| d.one_line())
            .collect();
        return Err(ActionError::Invalid {
            name: name.to_string(),
            errors: if errors.is_empty() {
                vec!["it does not check (keelson validate shows why)".into()]
            } else {
                errors
            },
        });
    };
    Ok(reconcile::reconcile_named_fenced(clusters, env, opts, fence).await)
}

/// The reason recorded when a new preview is released because its first
/// apply failed before any object was applied.
pub const FIRST_APPLY_FAILED: &str = "its first apply failed before anything was applied";

/// Whether `result` failed before any Kubernetes object was written (a
/// Rancher refusal, a refused plan, an unreachable cluster): a new preview
/// in that state is released rather than left half-made.
pub fn nothing_applied(result: &EnvResult) -> bool {
    result.failed() && result.apply.is_none()
}

/// What [`release`] did.
#[derive(Debug)]
pub struct Released {
    /// The retirement, `None` when nothing was ever applied.
    pub result: Option<EnvResult>,
    /// Whether every object is gone and the block and id are free.
    pub done: bool,
}

/// Which preview to release, and how.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// The cluster it runs on (as the config names it).
    pub cluster: &'a str,
    /// Its template.
    pub template: &'a str,
    /// Its merge request number.
    pub number: u64,
    /// Why, recorded while it is releasing.
    pub reason: &'a str,
    /// Keep the record of an expired preview (without its block and id)
    /// instead of forgetting it.
    pub tombstone: bool,
}

/// Release preview `what`: mark it releasing, retire it, and once its
/// objects are gone forget it (or keep its tombstone). A failed retirement
/// leaves it releasing, to be finished by the next call. `report` is the
/// checked tree (without previews).
pub async fn release(
    report: &Report,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    what: Release<'_>,
    opts: &Options,
    fence: Option<Arc<dyn Fence>>,
) -> Result<Released, ActionError> {
    let cluster = clusters
        .get(what.cluster)
        .await
        .map_err(|e| ActionError::Retire(format!("cluster `{}`: {e}", what.cluster)))?;
    match fence {
        Some(f) => {
            let fenced = FencedCluster::new(cluster.as_ref(), f);
            release_on(&fenced, report, clusters, cfg, what, opts).await
        }
        None => release_on(cluster.as_ref(), report, clusters, cfg, what, opts).await,
    }
}

async fn release_on<C: Cluster>(
    cluster: &C,
    report: &Report,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
    what: Release<'_>,
    opts: &Options,
) -> Result<Released, ActionError> {
    let Release {
        cluster: cluster_name,
        template,
        number,
        reason,
        tombstone,
    } = what;
    let store = Store::new(cluster, cfg.namespace());
    let k = key(template, number);
    if !opts.dry_run {
        store
            .update(|p| {
                lifecycle::mark_releasing(p, &k, reason);
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(|e| ActionError::Retire(format!("recording the release: {e}")))?;
    }
    let name = preview_name(template, number);
    let result = retire_one(report, cluster, cluster_name, clusters, &name, opts)
        .await
        .map_err(ActionError::Retire)?;
    let done = result.as_ref().is_none_or(|r| !r.failed());
    if done && !opts.dry_run {
        store
            .update(|p| {
                if tombstone {
                    lifecycle::expire(p, &k);
                } else {
                    lifecycle::forget(p, &k);
                }
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(|e| ActionError::Retire(format!("freeing the preview's ports and id: {e}")))?;
    }
    Ok(Released { result, done })
}

/// Retire environment `env` on `cluster` through the retirement path, and
/// it alone: every other environment with an inventory there counts as
/// known. `None` when it has no inventory (nothing was ever applied).
pub async fn retire_one<C: Cluster>(
    report: &Report,
    cluster: &C,
    cluster_name: &str,
    clusters: &Clusters,
    env: &str,
    opts: &Options,
) -> Result<Option<EnvResult>, String> {
    let cm = observe::builtin("v1", "ConfigMap").expect("builtin");
    let inventories = cluster
        .list(&cm, None, &format!("{}=true", inventory::LABEL))
        .await
        .map_err(|e| format!("listing inventories: {e}"))?;
    let env_of = |i: &Json| {
        i.pointer("/metadata/labels/keelson.dev~1environment")
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let had_inventory = inventories
        .iter()
        .any(|i| env_of(i).as_deref() == Some(env));
    let mut evidence = reconcile::Evidence::of(report)
        .map_err(|why| reconcile::retire::not_retiring(&why).to_string())?;
    for other in inventories.iter().filter_map(env_of).filter(|e| e != env) {
        evidence.mark_handled(&other);
    }
    let results = reconcile::retired_envs(cluster, cluster_name, Some(clusters), &evidence, opts)
        .await
        .map_err(|e| {
            format!("the retirement of {env} did not run ({e} on cluster `{cluster_name}`); nothing was freed")
        })?;
    match results.into_iter().find(|r| r.environment == env) {
        Some(r) => Ok(Some(r)),
        None if had_inventory => Err(format!(
            "the retirement of {env} did not run (its inventory is on cluster `{cluster_name}`); nothing was freed"
        )),
        None => Ok(None),
    }
}
