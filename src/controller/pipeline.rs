//! The real pipeline behind `keelson run`: check the tree, then reconcile one
//! environment against its cluster with the same code as `keelson reconcile`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::fence::{Fence, FencedCluster};
use super::{AppStatus, EnvOutcome, EnvReconciler, Outcome};
use crate::check;
use crate::config::Config;
use crate::diag::Severity;
use crate::observe::{Cluster, ClusterError};
use crate::plan::Action;
use crate::reconcile::{self, AppState, Clusters, EnvResult, Options};
use crate::render::ResolvedEnv;
use crate::source::{Affected, affected_environments};

/// Reconciles environments against the clusters of the keelson config.
pub struct KubeReconciler {
    inner: Arc<Inner>,
}

struct Inner {
    clusters: Clusters,
    options: Options,
    /// Where the records of previews are (previews are never retired as
    /// removed folders).
    previews: crate::preview::PreviewsConfig,
    /// Checked trees by root. A commit's tree is exported once and never
    /// changes, and every environment of it needs the same check, so one
    /// check serves them all instead of one per environment.
    checked: std::sync::Mutex<Vec<(std::path::PathBuf, Arc<check::Report>)>>,
}

/// Checked trees kept (the head, plus last good trees of some environments).
const CHECKED_TREES: usize = 4;

impl KubeReconciler {
    /// Clusters from `config` (or, without one, kubeconfig contexts named as
    /// the environments' `cluster`), applied with `options`.
    pub fn new(config: Option<Config>, options: Options) -> Result<Self, ClusterError> {
        // The kube and Rancher clients need a process-wide TLS provider; the
        // binary installs it in `cli::main`, library users get it here.
        crate::http::install_crypto_provider();
        Ok(KubeReconciler {
            inner: Arc::new(Inner {
                previews: config
                    .as_ref()
                    .and_then(|c| c.previews.clone())
                    .unwrap_or_default(),
                clusters: Clusters::new(config, None)?,
                options,
                checked: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }
}

impl EnvReconciler for KubeReconciler {
    /// A changed policy affects only the environments it is in force for,
    /// before or after the change (so widening or narrowing `appliesTo`
    /// reaches both sides), plus environments whose specs fail to check
    /// (the change may be what fixes them). A schema change, or a policy
    /// file that does not load, still affects every environment.
    fn affected(&self, old: &Path, new: &Path, paths: &[String]) -> Affected {
        let by_path = affected_environments(paths);
        let policy_files: Vec<&String> = paths
            .iter()
            .filter(|p| p.starts_with("policies/"))
            .collect();
        if paths.iter().any(|p| p.starts_with("schema/")) || policy_files.is_empty() {
            return by_path;
        }
        // Environment folders still count by path.
        let others: Vec<&String> = paths
            .iter()
            .filter(|p| !p.starts_with("policies/"))
            .collect();
        let mut envs = match affected_environments(&others) {
            Affected::Some(set) => set,
            Affected::All => return Affected::All,
        };
        for root in [old, new] {
            let report = self.inner.check(root);
            let mut names = Vec::new();
            for file in &policy_files {
                let doc = report
                    .repo
                    .policies
                    .iter()
                    .find(|d| d.file == Path::new(file.as_str()));
                match doc {
                    Some(d) => names.push(d.value.metadata.name.clone()),
                    // Present in the tree but not loaded: cannot tell whom it reaches.
                    None if root.join(file.as_str()).exists() => return Affected::All,
                    None => {}
                }
            }
            if report.repo.policies_failed {
                return Affected::All;
            }
            for name in report.repo.environments.keys() {
                match report.ready.get(name) {
                    Some(env) if !env.policies.iter().any(|p| names.contains(p)) => {}
                    _ => {
                        envs.insert(name.clone());
                    }
                }
            }
        }
        Affected::Some(envs)
    }

    async fn reconcile(&self, root: &Path, env: &str, dry_run: bool) -> EnvOutcome {
        self.reconcile_fenced(root, env, dry_run, None).await
    }

    async fn reconcile_fenced(
        &self,
        root: &Path,
        env: &str,
        dry_run: bool,
        fence: Option<Arc<dyn Fence>>,
    ) -> EnvOutcome {
        // The apply stage's futures are not provably `Send` (closures over
        // borrowed changes), so each reconcile runs on a blocking thread that
        // drives it on the same runtime. That also keeps spec checking, which
        // is CPU work on files, off the async workers.
        let inner = self.inner.clone();
        let (root, env) = (root.to_path_buf(), env.to_string());
        let handle = tokio::runtime::Handle::current();
        let run = move || handle.block_on(inner.reconcile(&root, &env, dry_run, fence));
        match tokio::task::spawn_blocking(run).await {
            Ok(outcome) => outcome,
            Err(e) => EnvOutcome::bare(Outcome::Failed {
                message: format!("the reconcile panicked: {e}"),
            }),
        }
    }
}

impl Inner {
    fn check(&self, root: &Path) -> Arc<check::Report> {
        let lock = || self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, r)) = lock().iter().find(|(p, _)| p == root) {
            return r.clone();
        }
        // Checked outside the lock: two environments may both check a new
        // tree at once, which costs a little CPU but never blocks.
        let mut report = check::check_repo(root);
        // The diagnostics are made: the YAML trees kept to place them are
        // not read again, and a cached report lives as long as its tree.
        report.forget_positions();
        let report = Arc::new(report);
        let mut cache = lock();
        cache.retain(|(p, _)| p != root);
        cache.insert(0, (root.to_path_buf(), report.clone()));
        cache.truncate(CHECKED_TREES);
        report
    }

    async fn reconcile(
        &self,
        root: &Path,
        env: &str,
        dry_run: bool,
        fence: Option<Arc<dyn Fence>>,
    ) -> EnvOutcome {
        let report = self.check(root);
        let report = report.as_ref();
        let opts = Options {
            dry_run,
            ..self.options.clone()
        };
        let Some(resolved) = report.ready.get(env) else {
            if !report.repo.environments.contains_key(env) {
                return self.retire(report, env, &opts, fence).await;
            }
            return EnvOutcome::bare(Outcome::Invalid {
                diagnostics: env_errors(report, env),
            });
        };
        let rancher = match self.clusters.rancher(&resolved.cluster) {
            Ok(r) => r,
            Err(message) => return EnvOutcome::bare(Outcome::Failed { message }),
        };
        let cluster = match self.clusters.get(&resolved.cluster).await {
            Ok(c) => c,
            Err(e) => {
                return EnvOutcome::bare(Outcome::Failed {
                    message: format!("cluster `{}`: {e}", resolved.cluster),
                });
            }
        };
        let result = match fence {
            Some(fence) => {
                // Check once before the run (nothing is planned for a
                // holder that already lost the Lease); then every write,
                // Kubernetes and Rancher, is checked again.
                if !dry_run && let Err(why) = fence.check().await {
                    return EnvOutcome::bare(Outcome::Failed {
                        message: format!("not applied: {why}"),
                    });
                }
                let rancher = rancher.map(|r| r.with_fence(fence.clone()));
                let fenced = FencedCluster::new(cluster.as_ref(), fence);
                reconcile::reconcile_env(&fenced, resolved, rancher.as_ref(), &opts).await
            }
            None => {
                reconcile::reconcile_env(cluster.as_ref(), resolved, rancher.as_ref(), &opts).await
            }
        };
        let mut outcome = outcome_of(&result, dry_run);
        running_versions(cluster.as_ref(), resolved, &mut outcome.apps).await;
        outcome
    }
}

impl Inner {
    /// The folder of `env` is gone: retire it on the clusters the remaining
    /// environments use (the same rule as `keelson reconcile`).
    async fn retire(
        &self,
        report: &check::Report,
        env: &str,
        opts: &Options,
        fence: Option<Arc<dyn Fence>>,
    ) -> EnvOutcome {
        let mut evidence = match reconcile::Evidence::of(report) {
            Ok(e) => e,
            Err(why) => {
                let mut diagnostics = vec![reconcile::retire::not_retiring(&why)];
                diagnostics.extend(
                    report
                        .diagnostics
                        .iter()
                        .filter(|d| d.severity == Severity::Error)
                        .map(|d| d.one_line()),
                );
                return EnvOutcome::bare(Outcome::Invalid { diagnostics });
            }
        };
        // Recorded previews are environments: only a record that was read
        // proves one is gone.
        let records =
            crate::preview::online::read_records(&report.repo, &self.clusters, &self.previews)
                .await;
        for (cluster, read) in records {
            match read {
                Ok(p) => p
                    .by_key
                    .values()
                    .for_each(|r| evidence.mark_handled(&r.name())),
                Err(e) => {
                    return EnvOutcome::bare(Outcome::Failed {
                        message: format!(
                            "not retired: the record of previews on cluster `{cluster}` cannot be read: {e}"
                        ),
                    });
                }
            }
        }
        let used: BTreeSet<&String> = report.ready.values().map(|e| &e.cluster).collect();
        let mut unscanned = Vec::new();
        for name in used {
            let Ok(c) = self.clusters.get(name).await else {
                continue;
            };
            let results = match &fence {
                Some(f) => {
                    let fenced = FencedCluster::new(c.as_ref(), f.clone());
                    reconcile::retired_envs(&fenced, name, Some(&self.clusters), &evidence, opts)
                        .await
                }
                None => {
                    reconcile::retired_envs(c.as_ref(), name, Some(&self.clusters), &evidence, opts)
                        .await
                }
            };
            match results {
                Ok(results) => {
                    if let Some(r) = results.iter().find(|r| r.environment == env) {
                        return outcome_of(r, opts.dry_run);
                    }
                }
                Err(e) => unscanned.push(format!("cluster `{name}`: {e}")),
            }
        }
        // Not found, but not looked for everywhere either: say so rather
        // than report that nothing changed.
        if !unscanned.is_empty() {
            return EnvOutcome::bare(Outcome::Failed {
                message: format!("not retired: {}", unscanned.join("; ")),
            });
        }
        EnvOutcome::bare(Outcome::NoChange)
    }
}

/// The error lines that block `env`: its own files, policies and schemas;
/// all errors when none of those match (e.g. a namespace clash reported on
/// another environment's file).
fn env_errors(report: &check::Report, env: &str) -> Vec<String> {
    let own = Path::new("environments").join(env);
    let errors: Vec<&crate::diag::Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let relevant: Vec<String> = errors
        .iter()
        .filter(|d| {
            d.file.starts_with(&own)
                || d.file.starts_with("policies")
                || d.file.starts_with("schema")
        })
        .map(|d| d.one_line())
        .collect();
    if relevant.is_empty() {
        errors.iter().map(|d| d.one_line()).collect()
    } else {
        relevant
    }
}

pub(crate) fn outcome_of(result: &EnvResult, dry_run: bool) -> EnvOutcome {
    let apps = result.apps.iter().map(app_status).collect();
    let outcome = if result.failed() {
        let message = result
            .error
            .clone()
            .or_else(|| result.plan.as_ref().and_then(|p| p.refused.clone()))
            .or_else(|| result.apply.as_ref().and_then(|a| a.failure_summary()))
            .unwrap_or_else(|| "reconcile failed".into());
        Outcome::Failed { message }
    } else {
        let s = result
            .plan
            .as_ref()
            .map(|p| p.summary())
            .unwrap_or_default();
        let changes = s.changes() as u64;
        if changes == 0 {
            Outcome::NoChange
        } else if dry_run {
            Outcome::Drift { count: changes }
        } else {
            Outcome::Applied {
                created: s.create as u64,
                updated: s.update as u64,
                replaced: s.replace as u64,
                deleted: s.delete as u64,
            }
        }
    };
    // Bounded: a first apply of a big environment would otherwise put
    // hundreds of lines into one history entry.
    const MAX_CHANGES: usize = 200;
    let mut changes: Vec<String> = result
        .plan
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| {
            let verb = match c.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Replace => "replace",
                Action::Delete => "delete",
                Action::Unchanged | Action::Skip => return None,
            };
            Some(format!("{verb} {}", c.id))
        })
        .collect();
    if changes.len() > MAX_CHANGES {
        let more = changes.len() - MAX_CHANGES;
        changes.truncate(MAX_CHANGES);
        changes.push(format!("... and {more} more"));
    }
    EnvOutcome {
        outcome,
        apps,
        changes,
    }
}

fn app_status(a: &AppState) -> AppStatus {
    AppStatus {
        name: a.name.clone(),
        version: a.version.clone(),
        health: a.health,
        healthy_since: None,
    }
}

/// Replace each app's desired version with the one its Deployment runs, so
/// that status answers "what runs in prod" even while drift is only
/// reported. Apps whose Deployment cannot be read keep the desired version.
async fn running_versions<C: Cluster>(cluster: &C, env: &ResolvedEnv, apps: &mut [AppStatus]) {
    let Some(res) = crate::observe::builtin("apps/v1", "Deployment") else {
        return;
    };
    for app in apps.iter_mut() {
        let Some(spec) = env.apps.iter().find(|a| a.name == app.name) else {
            continue;
        };
        let Ok(Some(live)) = cluster.get(&res, Some(&env.namespace), &app.name).await else {
            continue;
        };
        let images = live
            .pointer("/spec/template/spec/containers")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("image").and_then(serde_json::Value::as_str));
        let mut first = None;
        let mut chosen = None;
        for image in images {
            first.get_or_insert(image);
            if image_repository(image) == spec.repository {
                chosen = Some(image);
                break;
            }
        }
        if let Some(version) = chosen.or(first).and_then(image_version) {
            app.version = version;
        }
    }
}

/// `registry:5000/shop/orders:1.2@sha256:..` → `registry:5000/shop/orders`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The tag of an image reference, or the start of its digest when it has none.
fn image_version(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let repo = image_repository(name);
    if let Some(tag) = name.get(repo.len() + 1..).filter(|t| !t.is_empty()) {
        return Some(tag.to_string());
    }
    digest.map(|d| d.chars().take(19).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replacement is a change: a sync that made one is `Applied` with
    /// it counted, a drift check that finds one is drift (it once counted
    /// as "in sync, nothing to change", and self-heal replaced silently).
    #[test]
    fn replacements_count_as_changes() {
        let id = crate::plan::ObjectId::of(&serde_json::json!({"apiVersion": "batch/v1",
            "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"}}));
        let result = EnvResult {
            environment: "dev".into(),
            cluster: "dev".into(),
            namespace: "shop".into(),
            plan: Some(crate::plan::Plan {
                environment: "dev".into(),
                changes: vec![crate::plan::Change::new(Action::Replace, id)],
                refused: None,
                inventory: Default::default(),
                manual_managers: Vec::new(),
                lifecycle: None,
            }),
            apply: None,
            error: None,
            apps: Vec::new(),
            rancher: None,
        };
        let applied = outcome_of(&result, false);
        assert_eq!(
            applied.outcome,
            Outcome::Applied {
                created: 0,
                updated: 0,
                replaced: 1,
                deleted: 0
            }
        );
        assert_eq!(
            applied.outcome.summary(),
            "applied: 0 created, 0 updated, 1 replaced, 0 deleted"
        );
        assert_eq!(applied.changes, ["replace Job/shop/migrate"]);
        assert_eq!(
            outcome_of(&result, true).outcome,
            Outcome::Drift { count: 1 }
        );
    }

    #[test]
    fn reads_tags_from_image_references() {
        assert_eq!(
            image_version("registry:5000/shop/orders:1.2.3").as_deref(),
            Some("1.2.3")
        );
        assert_eq!(
            image_repository("registry:5000/shop/orders:1.2.3"),
            "registry:5000/shop/orders"
        );
        assert_eq!(image_version("registry:5000/shop/orders").as_deref(), None);
        assert_eq!(
            image_version("shop/pay:0.19.4@sha256:4d1b0b2f8c1e6a5d3c9b").as_deref(),
            Some("0.19.4")
        );
        assert_eq!(
            image_version("shop/pay@sha256:4d1b0b2f8c1e6a5d3c9b").as_deref(),
            Some("sha256:4d1b0b2f8c1e")
        );
    }
}
