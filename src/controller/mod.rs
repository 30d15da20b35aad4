//! The controller behind `keelson run`.
//!
//! It keeps a mirror of the Git branch, turns new commits into per-environment
//! sync requests, re-checks every environment for drift on an interval, and
//! records the outcome of every sync. The pipeline itself (validate, render,
//! plan, apply) sits behind [`EnvReconciler`], so the loop, its triggers and
//! its bookkeeping are tested with a fake and run for real with the
//! Kubernetes reconcile.
//!
//! Stages, each in its own file:
//! - [`config`]: the `controller:` section of `keelson.yaml`, with diagnostics;
//! - [`engine`]: the source loop and the start/stop handle;
//! - [`worker`]: one task per environment (one reconcile at a time, backoff);
//! - [`server`]: `/healthz`, `/readyz`, `/metrics`, `/status`, `/history`, `/hooks/git`;
//! - [`webhook`]: GitHub and GitLab signature checks, push and merge request events;
//! - [`metrics`]: Prometheus text exposition;
//! - [`pipeline`]: the real [`EnvReconciler`] (check, render, plan, apply);
//! - [`previews`]: previews from merge requests, and their time-to-live;
//! - [`report`]: commit statuses posted back to GitHub or GitLab;
//! - [`watch`]: file-system watching of a local repository;
//! - [`lease`], [`fence`], [`shard`]: per-environment Leases, fenced
//!   writes, and sharding environments across replicas;
//! - [`memory`]: freed memory given back to the kernel after each sync.

pub mod cli;
pub mod config;
pub mod engine;
pub mod fence;
pub mod lease;
pub mod lease_config;
pub mod memory;
pub mod metrics;
pub mod page;
pub mod pipeline;
pub mod previews;
pub mod report;
pub mod server;
pub mod shard;
pub mod watch;
pub mod webhook;
pub mod worker;

use std::future::Future;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::source::{Affected, affected_environments};

pub use crate::apply::health::Health;
pub use config::ControllerConfig;
pub use engine::{Controller, ControllerError, Running, Settings};

/// What the controller asks of the reconcile pipeline for one environment.
pub trait EnvReconciler: Send + Sync + 'static {
    /// Validate, render, plan and (unless `dry_run`) apply environment `env`
    /// from the tree checked out at `root`. With `dry_run`, a plan with changes
    /// is reported as [`Outcome::Drift`].
    fn reconcile(
        &self,
        root: &Path,
        env: &str,
        dry_run: bool,
    ) -> impl Future<Output = EnvOutcome> + Send;

    /// [`EnvReconciler::reconcile`], with `fence` checked before every write
    /// to the cluster (an instance that holds the environment's Lease passes
    /// its term). The default ignores the fence: right for pipelines that
    /// write nothing.
    fn reconcile_fenced(
        &self,
        root: &Path,
        env: &str,
        dry_run: bool,
        fence: Option<std::sync::Arc<dyn fence::Fence>>,
    ) -> impl Future<Output = EnvOutcome> + Send {
        drop(fence);
        self.reconcile(root, env, dry_run)
    }

    /// The environments present in the tree at `root`: the folders under
    /// `environments/`.
    fn environments(&self, root: &Path) -> Vec<String> {
        list_environment_dirs(root)
    }

    /// Which environments a commit that changed `paths` (relative to the
    /// repository root) affects, given the trees before (`old`) and after
    /// (`new`). The default goes by path alone: an environment's own folder,
    /// or every environment when `policies/` or `schema/` changed.
    fn affected(&self, old: &Path, new: &Path, paths: &[String]) -> Affected {
        let _ = (old, new);
        affected_environments(paths)
    }
}

/// The folders under `<root>/environments/`, sorted.
pub fn list_environment_dirs(root: &Path) -> Vec<String> {
    let mut envs: Vec<String> = std::fs::read_dir(root.join("environments"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') && n != crate::spec::preview::TEMPLATES_DIR)
        .collect();
    envs.sort();
    envs
}

/// The result of one reconcile of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvOutcome {
    /// What happened.
    pub outcome: Outcome,
    /// Per app: the version (image tag) running and its health, as observed.
    /// Empty when the pipeline did not get as far as observing.
    #[serde(default)]
    pub apps: Vec<AppStatus>,
    /// The objects written (or, in a dry run, differing), one line each,
    /// e.g. `update Deployment/shop-prod/orders`. Kept in the history.
    #[serde(default)]
    pub changes: Vec<String>,
}

impl EnvOutcome {
    /// An outcome with no app information.
    pub fn bare(outcome: Outcome) -> Self {
        EnvOutcome {
            outcome,
            apps: Vec::new(),
            changes: Vec::new(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Outcome {
    /// Live state already matched the spec.
    NoChange,
    /// Changes were applied.
    Applied {
        /// Objects created.
        created: u64,
        /// Objects updated.
        updated: u64,
        /// Objects replaced: deleted and created again (immutable fields,
        /// `keelson.dev/force: enabled`). Absent in records written before
        /// replacements existed.
        #[serde(default, skip_serializing_if = "is_zero")]
        replaced: u64,
        /// Objects pruned.
        deleted: u64,
    },
    /// (Dry run only) live state differs from the spec in `count` objects.
    Drift {
        /// Objects that differ.
        count: u64,
    },
    /// The specs have errors; nothing was applied.
    Invalid {
        /// One line each, `file:line:col: message`.
        diagnostics: Vec<String>,
    },
    /// The pipeline failed (cluster unreachable, apply refused, ...).
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl Outcome {
    /// A short stable word for metrics labels and tables.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::NoChange => "no_change",
            Outcome::Applied { .. } => "applied",
            Outcome::Drift { .. } => "drift",
            Outcome::Invalid { .. } => "invalid",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// A one-line human summary.
    pub fn summary(&self) -> String {
        match self {
            Outcome::NoChange => "in sync, nothing to change".into(),
            Outcome::Applied {
                created,
                updated,
                replaced: 0,
                deleted,
            } => format!("applied: {created} created, {updated} updated, {deleted} deleted"),
            Outcome::Applied {
                created,
                updated,
                replaced,
                deleted,
            } => format!(
                "applied: {created} created, {updated} updated, {replaced} replaced, {deleted} deleted"
            ),
            Outcome::Drift { count } => format!("drift: {count} object(s) differ from the spec"),
            Outcome::Invalid { diagnostics } => match diagnostics.first() {
                Some(first) if diagnostics.len() == 1 => format!("invalid spec: {first}"),
                Some(first) => {
                    format!("invalid spec: {first} (and {} more)", diagnostics.len() - 1)
                }
                None => "invalid spec".into(),
            },
            Outcome::Failed { message } => format!("failed: {message}"),
        }
    }

    /// Whether the environment is now at the desired commit.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::NoChange | Outcome::Applied { .. })
    }
}

/// The observed state of one app in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// Running version: the image tag.
    pub version: String,
    /// Health as observed.
    pub health: Health,
    /// RFC 3339 time from which this version has been observed healthy
    /// without a break: the first sync or drift check that saw it healthy.
    /// `None` while it is not healthy (any other health, a new version or a
    /// failed observation starts the clock again). Set by the controller when
    /// it records a sync ([`since_healthy`]); `keelson promote` gates on it.
    #[serde(
        default,
        rename = "healthySince",
        skip_serializing_if = "Option::is_none"
    )]
    pub healthy_since: Option<String>,
}

/// Carry each app's [`AppStatus::healthy_since`] over from the `previous`
/// record of the environment: kept while the same version stays healthy,
/// set to `at` (RFC 3339) when it is first seen healthy, cleared otherwise.
/// Observations are as frequent as syncs and drift checks, so the time is a
/// lower bound of how long the version has really been healthy.
pub fn since_healthy(previous: &[AppStatus], apps: &mut [AppStatus], at: &str) {
    for app in apps {
        app.healthy_since = match app.health {
            Health::Healthy => previous
                .iter()
                .find(|p| {
                    p.name == app.name && p.version == app.version && p.health == Health::Healthy
                })
                .and_then(|p| p.healthy_since.clone())
                .or_else(|| Some(at.to_string())),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(version: &str, health: Health, since: Option<&str>) -> AppStatus {
        AppStatus {
            name: "orders".into(),
            version: version.into(),
            health,
            healthy_since: since.map(str::to_string),
        }
    }

    #[test]
    fn healthy_since_is_kept_only_while_the_same_version_stays_healthy() {
        let t0 = "2026-11-30T10:00:00Z";
        let t1 = "2026-11-30T10:05:00Z";
        let kept = [app("1.0", Health::Healthy, Some(t0))];
        let mut now = [app("1.0", Health::Healthy, None)];
        since_healthy(&kept, &mut now, t1);
        assert_eq!(now[0].healthy_since.as_deref(), Some(t0));
        // A new version starts the clock again.
        let mut now = [app("1.1", Health::Healthy, None)];
        since_healthy(&kept, &mut now, t1);
        assert_eq!(now[0].healthy_since.as_deref(), Some(t1));
        // Any other health clears it, and the next healthy sighting restarts it.
        let mut now = [app("1.0", Health::Progressing, None)];
        since_healthy(&kept, &mut now, t1);
        assert_eq!(now[0].healthy_since, None);
        let mut later = [app("1.0", Health::Healthy, None)];
        since_healthy(&now, &mut later, "2026-11-30T10:06:00Z");
        assert_eq!(
            later[0].healthy_since.as_deref(),
            Some("2026-11-30T10:06:00Z")
        );
    }
}
