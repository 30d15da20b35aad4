//! `keelson reconcile --dry-run --against-ref REV`: plan the working tree
//! against another commit of the same Git repository, offline.
//!
//! The base commit's tree is exported (git2, no checkout), checked and
//! rendered; what keelson would have applied for it becomes the captured
//! state the working tree is planned against: each object as applied, with
//! keelson's field set in `managedFields` (so a field removed since the base
//! is a change, as on a cluster), plus each environment's inventory (so an
//! app removed since the base is pruned, and a removed environment folder is
//! retired, under the same guards). Rancher changes come from the two
//! commits' `rancher:` sections. No cluster, Rancher or credentials are read:
//! this is what a CI job on a fork can run.
//!
//! `argocd app diff` and `flux diff` need the cluster; Argo CD's Source
//! Hydrator commits rendered manifests for review. This needs neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::Repository;
use serde_json::{Map, Value as Json, json};

use crate::check::{self, Report};
use crate::observe::dir::DirCluster;
use crate::plan::fields::{item_key, merge_keys};
use crate::plan::{self, Action, FIELD_MANAGER, LiveEnv};
use crate::rancher::{
    self, DesiredRancher, LiveBinding, LiveNamespace, LiveProject, RancherPlan, RetiredRancher,
};
use crate::reconcile::{self, EnvResult, RancherOutcome};

/// What stands in for Rancher ids that only Rancher can give.
const BASE_ID: &str = "in base commit";

/// Why the base commit could not be planned against.
#[derive(Debug, thiserror::Error)]
pub enum AgainstRefError {
    /// `--repo` is not inside a Git working tree.
    #[error(
        "--against-ref needs --repo inside a Git working tree, and {dir} is not in one ({message}); \
         run keelson from a clone, or use --against DIR with captured state instead"
    )]
    NotARepository {
        /// The `--repo` directory.
        dir: PathBuf,
        /// libgit2's reason.
        message: String,
    },
    /// The revision does not name a commit.
    #[error(
        "--against-ref {rev}: no such commit in {repo} ({message}). Fetch it first, e.g. \
         `git fetch origin main` and `--against-ref origin/main`; a shallow CI clone \
         (fetch-depth: 1) lacks the base commit"
    )]
    UnknownRevision {
        /// The revision given.
        rev: String,
        /// The repository's working tree.
        repo: PathBuf,
        /// libgit2's reason.
        message: String,
    },
    /// The base tree could not be read or written out.
    #[error("cannot read the tree of {rev}: {message}")]
    Export {
        /// The revision given.
        rev: String,
        /// The cause.
        message: String,
    },
}

/// The base commit, checked.
pub struct Base {
    /// The short id and summary of the commit, for the plan's header.
    pub commit: String,
    /// The base commit's check report (its environments, ready or not).
    pub report: Report,
    // The exported tree; removed when the base is dropped.
    _dir: tempfile::TempDir,
}

/// Export and check the commit `rev` names, at the same path inside the
/// repository as `repo_dir` (the `--repo` directory may be a sub-folder).
pub fn load_base(repo_dir: &Path, rev: &str) -> Result<Base, AgainstRefError> {
    let not_repo = |message: String| AgainstRefError::NotARepository {
        dir: repo_dir.to_path_buf(),
        message,
    };
    let repo = Repository::discover(repo_dir).map_err(|e| not_repo(e.message().to_string()))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| not_repo("it is a bare repository".into()))?
        .to_path_buf();
    let canonical = |p: &Path| p.canonicalize().map_err(|e| not_repo(e.to_string()));
    let rel = canonical(repo_dir)?
        .strip_prefix(canonical(&workdir)?)
        .map(Path::to_path_buf)
        .map_err(|_| not_repo("it is outside the repository's working tree".into()))?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| AgainstRefError::UnknownRevision {
            rev: rev.to_string(),
            repo: workdir.clone(),
            message: e.message().to_string(),
        })?;
    let export_err = |message: String| AgainstRefError::Export {
        rev: rev.to_string(),
        message,
    };
    let tree = commit
        .tree()
        .map_err(|e| export_err(e.message().to_string()))?;
    let dir = tempfile::Builder::new()
        .prefix("keelson-base-")
        .tempdir()
        .map_err(|e| export_err(e.to_string()))?;
    // The folder may not exist at the base (the repository is new): then
    // the base has no environments and everything is a create.
    let sub = if rel.as_os_str().is_empty() {
        Some(tree)
    } else {
        tree.get_path(&rel)
            .ok()
            .and_then(|e| e.to_object(&repo).ok())
            .and_then(|o| o.into_tree().ok())
    };
    if let Some(sub) = &sub {
        crate::source::export_tree(&repo, sub, dir.path()).map_err(export_err)?;
    }
    let id = commit.id().to_string();
    let summary = commit.summary().ok().flatten().unwrap_or("").to_string();
    Ok(Base {
        commit: format!("{} {summary}", &id[..12]),
        report: check::check_repo(dir.path()),
        _dir: dir,
    })
}

impl Base {
    /// The state keelson would have left on a cluster after applying the
    /// base commit: every environment's objects as applied, and its inventory.
    pub fn captured_state(&self) -> DirCluster {
        let mut objects = Vec::new();
        for env in self.report.ready.values() {
            let desired = reconcile::desired_env(env);
            let applied = plan::plan(&desired, &LiveEnv::default());
            for c in applied.changes {
                if let (Action::Create, Some(mut body)) = (c.action, c.apply) {
                    let fields = fields_v1(&body, "");
                    if let Some(meta) = body.get_mut("metadata").and_then(Json::as_object_mut) {
                        meta.insert(
                            "managedFields".into(),
                            json!([{
                                "manager": FIELD_MANAGER,
                                "operation": "Apply",
                                "fieldsType": "FieldsV1",
                                "fieldsV1": fields,
                            }]),
                        );
                    }
                    objects.push(*body);
                }
            }
            // An inventory too large to store was refused when the base was
            // planned: nothing of it was applied or recorded.
            if let Ok(stored) = applied.inventory.encode(&env.name, &env.namespace) {
                objects.push(stored.head);
                objects.extend(stored.parts.into_values());
            }
        }
        DirCluster::from_objects(objects)
    }

    /// Environments whose base spec has errors: what was applied for them is
    /// unknown, so the working tree cannot be planned against them.
    pub fn blocked(&self, env: &str) -> bool {
        self.report.blocked.iter().any(|b| b == env)
    }

    fn rancher(&self, env: &str) -> Option<DesiredRancher> {
        let e = self.report.ready.get(env)?;
        DesiredRancher::from_spec(&e.name, &e.namespace, e.rancher.as_ref()?).ok()
    }
}

/// The server-side apply field set of an object applied whole: every field
/// it sets, list items by their merge keys.
fn fields_v1(v: &Json, field: &str) -> Json {
    match v {
        Json::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                out.insert(format!("f:{k}"), fields_v1(child, k));
            }
            Json::Object(out)
        }
        Json::Array(items) => match merge_keys(field, items) {
            Some(keys) => {
                let mut out = Map::new();
                for item in items {
                    let mut sub = fields_v1(item, "");
                    if let Json::Object(m) = &mut sub {
                        m.insert(".".into(), json!({}));
                    }
                    out.insert(item_key(item, keys), sub);
                }
                Json::Object(out)
            }
            None => json!({}),
        },
        _ => json!({}),
    }
}

/// Rancher as the base commit left it, for one environment's desired state.
fn rancher_base(
    head: &DesiredRancher,
    base: Option<&DesiredRancher>,
) -> (Option<LiveProject>, Option<LiveNamespace>, Vec<LiveBinding>) {
    let Some(base) = base else {
        return (None, None, Vec::new());
    };
    let same_project = base.cluster_id == head.cluster_id && base.project.name == head.project.name;
    let project = same_project.then(|| live_project(base));
    let ns = (base.cluster_id == head.cluster_id && base.namespace == head.namespace).then(|| {
        LiveNamespace {
            name: base.namespace.clone(),
            // In the base's project; when that is another project, the plan
            // moves the namespace.
            project_id: Some(if same_project {
                BASE_ID.to_string()
            } else {
                format!("project {} {BASE_ID}", base.project.name)
            }),
            labels: BTreeMap::new(),
            // What keelson gave it: the project's namespace defaults.
            resource_quota: base.project.namespace_default_quota.clone(),
            container_default_limits: base.project.container_default_limits.clone(),
            quota_withheld: None,
            raw: Json::Null,
        }
    });
    let bindings = if same_project {
        live_bindings(base)
    } else {
        Vec::new()
    };
    (project, ns, bindings)
}

fn live_project(base: &DesiredRancher) -> LiveProject {
    LiveProject {
        id: BASE_ID.into(),
        name: base.project.name.clone(),
        cluster_id: base.cluster_id.clone(),
        description: base.project.description.clone().unwrap_or_default(),
        state: "active".into(),
        labels: base.owner_labels(),
        resource_quota: base.project.resource_quota.clone(),
        namespace_default_quota: base.project.namespace_default_quota.clone(),
        container_default_limits: base.project.container_default_limits.clone(),
        // Usage is live state; a commit has none.
        used_limit: BTreeMap::new(),
        raw: Json::Null,
    }
}

fn live_bindings(base: &DesiredRancher) -> Vec<LiveBinding> {
    base.members
        .iter()
        .map(|m| LiveBinding {
            id: BASE_ID.into(),
            project_id: BASE_ID.into(),
            role_template_id: m.role.clone(),
            subjects: BTreeMap::from([(m.subject.field().to_string(), m.subject.id().to_string())]),
            labels: base.owner_labels(),
        })
        .collect()
}

fn outcome(plan: Result<RancherPlan, String>) -> RancherOutcome {
    match plan {
        Ok(p) => RancherOutcome::planned(&p),
        Err(e) => RancherOutcome {
            plan: Json::Null,
            applied: None,
            changed: false,
            error: Some(e),
            text: String::new(),
            markdown: String::new(),
        },
    }
}

/// Put the offline Rancher plan into each result: the working tree's
/// `rancher:` section against the base commit's, and for environments
/// retired since the base, the removal of what the base gave them.
pub fn plan_rancher(head: &Report, base: &Base, results: &mut [EnvResult]) {
    for r in results.iter_mut() {
        let base_desired = base.rancher(&r.environment);
        match head.ready.get(&r.environment) {
            Some(env) => {
                let Some(spec) = &env.rancher else { continue };
                r.rancher = Some(outcome(
                    DesiredRancher::from_spec(&env.name, &env.namespace, spec)
                        .and_then(|d| d.validate().map(|()| d))
                        .map(|d| {
                            let (p, ns, b) = rancher_base(&d, base_desired.as_ref());
                            rancher::plan_from(&d, p.as_ref(), ns.as_ref(), &b)
                        })
                        .map_err(|e| format!("rancher: {e}")),
                ));
            }
            None => {
                // Retired: what the base's Rancher section gave it goes,
                // unless another environment still uses the project; only
                // when the retirement itself goes ahead, as on a cluster.
                let Some(b) = base_desired.filter(|_| !r.failed()) else {
                    continue;
                };
                let others: Vec<String> = head
                    .ready
                    .values()
                    .filter(|e| {
                        e.rancher.as_ref().is_some_and(|s| {
                            DesiredRancher::from_spec(&e.name, &e.namespace, s).is_ok_and(|d| {
                                d.cluster_id == b.cluster_id && d.project.name == b.project.name
                            })
                        })
                    })
                    .map(|e| e.namespace.clone())
                    .collect();
                let retired = RetiredRancher {
                    environment: b.environment.clone(),
                    cluster_id: b.cluster_id.clone(),
                    project: b.project.name.clone(),
                    namespace: b.namespace.clone(),
                };
                let mut namespaces = others;
                namespaces.push(b.namespace.clone());
                r.rancher = Some(outcome(Ok(rancher::retire_from(
                    &retired,
                    Some(&live_project(&b)),
                    &live_bindings(&b),
                    &namespaces,
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fields::FieldTree;

    #[test]
    fn field_sets_key_list_items_by_their_merge_keys() {
        let obj = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "x:1", "ports": [{"containerPort": 80}], "args": ["a"]}
        ]}}}});
        let f = fields_v1(&obj, "");
        let t = FieldTree::parse(&f);
        let web = t
            .child("f:spec")
            .and_then(|t| t.child("f:template"))
            .and_then(|t| t.child("f:spec"))
            .and_then(|t| t.child("f:containers"))
            .and_then(|t| t.child(&item_key(&json!({"name": "web"}), &["name"])))
            .expect("the container is keyed by name");
        assert!(web.child("f:image").is_some());
        assert!(
            web.child("f:args")
                .is_some_and(|a| a.is_member() && a.keys().next().is_none()),
            "an atomic list is owned as a whole"
        );
        assert!(
            web.child("f:ports")
                .and_then(|p| p.child("k:{\"containerPort\":80,\"protocol\":\"TCP\"}"))
                .is_some()
        );
    }
}
