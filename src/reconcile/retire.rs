//! Retiring environments whose folder was removed from Git. Retirement
//! deletes everything an environment owned, so it needs positive evidence
//! (argo-cd#3484, #4464): the repository loaded cleanly, it holds at least one
//! environment, the environment's folder is absent from that healthy tree,
//! and the run covers every environment (no `--env` filter). A checkout that
//! fails to load (a typo in `--repo`, the wrong working directory, an empty
//! clone) proves nothing and retires nothing.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::{Clusters, EnvResult, Mode, Options, RancherOutcome, run};
use crate::check::Report;
use crate::diag::Severity;
use crate::observe::{self, Cluster};
use crate::plan::{DesiredEnv, Inventory, inventory};
use crate::rancher::{self, RancherClient};
use crate::spec::PruneSpec;

/// Why nothing at all may be planned from this checkout: it has no
/// `environments/` folder, or the folder holds no environment. `None` when
/// the checkout is usable.
pub fn unusable(report: &Report) -> Option<String> {
    let dir = report.repo.root.join("environments");
    if !dir.is_dir() {
        return Some(crate::spec::layout_error(&report.repo.root).0);
    }
    // A preview template is content too: a repository of templates alone
    // (whose previews are being released) is no empty clone.
    if report.repo.environments.is_empty() && report.repo.templates.is_empty() {
        return Some(format!("{} holds no environment", dir.display()));
    }
    None
}

/// Positive evidence that the environments absent from a checkout were
/// removed on purpose. Only [`Evidence::of`] makes one, so no caller can
/// retire environments from a checkout that failed to load.
#[derive(Debug, Clone)]
pub struct Evidence {
    known: BTreeSet<String>,
}

impl Evidence {
    /// The evidence a checked repository gives, or why it gives none: the
    /// checkout is unusable, has layout or read errors, or a policy fails to
    /// load (then every environment is blocked and nothing is certain).
    pub fn of(report: &Report) -> Result<Evidence, String> {
        if let Some(why) = unusable(report) {
            return Err(why);
        }
        let layout: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| {
                d.severity == Severity::Error
                    && matches!(d.code.as_str(), "layout" | "io" | "symlink")
            })
            .map(|d| d.one_line())
            .collect();
        if let Some(first) = layout.first() {
            return Err(format!(
                "the repository has {} layout error{} ({first})",
                layout.len(),
                if layout.len() == 1 { "" } else { "s" }
            ));
        }
        if report.repo.policies_failed {
            return Err("a policy file fails to load".into());
        }
        Ok(Evidence {
            known: report.repo.environments.keys().cloned().collect(),
        })
    }

    /// Whether `env` has a folder in the checkout (or was already handled).
    pub fn knows(&self, env: &str) -> bool {
        self.known.contains(env)
    }

    /// Treat `env` as handled, so that several cluster names reaching one
    /// cluster retire it once.
    pub fn mark_handled(&mut self, env: &str) {
        self.known.insert(env.to_string());
    }
}

/// What to say when removed environments are not retired.
pub fn not_retiring(why: &str) -> String {
    format!(
        "environments removed from the repository are not retired: {why}; fix the checkout (retirement needs a repository that loads cleanly)"
    )
}

async fn retire_rancher(
    client: &RancherClient,
    retired: &rancher::RetiredRancher,
    dry_run: bool,
) -> RancherOutcome {
    let plan = match rancher::plan_retire(client, retired).await {
        Ok(p) => p,
        Err(e) => {
            return RancherOutcome {
                plan: Json::Null,
                applied: None,
                changed: false,
                error: Some(format!("rancher: {e}")),
                text: String::new(),
                markdown: String::new(),
            };
        }
    };
    let mut outcome = RancherOutcome::planned(&plan);
    if !dry_run {
        outcome.apply(client, &plan).await;
    }
    outcome
}

/// Environments that have an inventory on a cluster but no folder in the
/// checkout `evidence` comes from: they are retired, which deletes
/// everything they owned, under the mass-deletion guard of their last
/// applied spec (so only when it allowed deleting everything).
///
/// # Errors
///
/// The inventories on the cluster cannot be listed (the cluster is
/// unreachable, or keelson may not list ConfigMaps in every namespace): no
/// environment of that cluster is looked at, and the message (`listing
/// inventories: …`) says why. It is no environment's failure, so callers
/// report it once per scan, not as an environment.
pub async fn retired_envs<C: Cluster>(
    cluster: &C,
    cluster_name: &str,
    clusters: Option<&Clusters>,
    evidence: &Evidence,
    opts: &Options,
) -> Result<Vec<EnvResult>, String> {
    let cm = observe::builtin("v1", "ConfigMap").expect("builtin");
    let inventories = cluster
        .list(&cm, None, &format!("{}=true", inventory::LABEL))
        .await
        .map_err(|e| format!("listing inventories: {e}"))?;
    let mut out = Vec::new();
    for inv_cm in inventories {
        let env = inv_cm
            .pointer("/metadata/labels/keelson.dev~1environment")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        if env.is_empty() || evidence.knows(&env) {
            continue;
        }
        let namespace = inv_cm
            .pointer("/metadata/namespace")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        // The settings of its last applied spec; the objects are read with
        // the inventory's parts when it is planned.
        let inv = Inventory::read_head(&inv_cm)
            .map(|h| h.inventory)
            .unwrap_or_default();
        let desired = DesiredEnv {
            name: env.clone(),
            objects: Vec::new(),
            ignore: Vec::new(),
            prune: PruneSpec {
                enabled: true,
                max_delete_percent: inv.max_delete_percent,
                allow_delete_all: inv.allow_delete_all,
            },
            adopt: false,
            rancher: inv.rancher.clone(),
            manual_managers: crate::plan::ownership::default_manual_managers(),
        };
        // Observe by the inventory's kinds; an empty desired set plans deletes.
        let mut r = run(
            cluster,
            desired,
            cluster_name,
            &namespace,
            Vec::new(),
            opts,
            Mode::Retire,
        )
        .await;
        if let Some(p) = &mut r.plan
            && let Some(reason) = &p.refused
        {
            p.refused = Some(format!("environment folder removed: {reason}"));
        }
        let client = inv
            .rancher
            .as_ref()
            .and_then(|rr| clusters?.rancher(&rr.cluster).ok().flatten())
            .map(|c| match cluster.fence() {
                Some(f) => c.with_fence(f),
                None => c,
            });
        if let (Some(rr), Some(client)) = (&inv.rancher, client.as_ref())
            && !r.failed()
        {
            let retired = rancher::RetiredRancher {
                environment: env.clone(),
                cluster_id: rr.cluster_id.clone(),
                project: rr.project.clone(),
                namespace: namespace.clone(),
            };
            r.rancher = Some(retire_rancher(client, &retired, opts.dry_run).await);
        }
        out.push(r);
    }
    Ok(out)
}
