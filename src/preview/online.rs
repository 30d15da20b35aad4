//! Previews joined to a checked repository: the records read from the
//! clusters the templates use, each active preview materialised as an
//! environment, and the whole checked together (a preview's namespace
//! clashes with a folder's like any other). Retirement may act on what is
//! absent only when every record was read ([`Included::complete`]): a
//! record that cannot be read proves nothing, and retires nothing.

use std::collections::BTreeMap;
use std::path::Path;

use super::PreviewsConfig;
use super::record::{Previews, State};
use super::store::Store;
use super::template::{cluster_of, materialise};
use crate::check::{self, Report};
use crate::diag::Diagnostic;
use crate::reconcile::Clusters;
use crate::spec::{self, Repo};

/// A repository checked with its previews.
#[derive(Debug)]
pub struct Included {
    /// The check, previews included.
    pub report: Report,
    /// Whether every record was read; environments absent from the report
    /// may be retired only then.
    pub complete: bool,
    /// The records read, by cluster name.
    pub records: BTreeMap<String, Previews>,
}

/// Template names by the cluster their previews run on.
pub fn template_clusters(repo: &Repo) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in repo.templates.values() {
        if let Some(c) = cluster_of(t) {
            out.entry(c).or_default().push(t.name.clone());
        }
    }
    out
}

/// Read the record of every cluster that `repo`'s templates use.
pub async fn read_records(
    repo: &Repo,
    clusters: &Clusters,
    cfg: &PreviewsConfig,
) -> BTreeMap<String, Result<Previews, String>> {
    let mut out = BTreeMap::new();
    for name in template_clusters(repo).into_keys() {
        let read = match clusters.get(&name).await {
            Ok(c) => Store::new(c.as_ref(), cfg.namespace())
                .read()
                .await
                .map(|(p, _)| p)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.insert(name, read);
    }
    out
}

/// `report` again, with every active preview of `clusters`' records as an
/// environment. Without templates it is returned as it is.
pub async fn include(report: Report, clusters: &Clusters, cfg: &PreviewsConfig) -> Included {
    if report.repo.templates.is_empty() {
        return Included {
            report,
            complete: true,
            records: BTreeMap::new(),
        };
    }
    let read = read_records(&report.repo, clusters, cfg).await;
    let root = report.repo.root.clone();
    drop(report);
    with_records(&root, &read)
}

/// Load and check `root` with the previews of `read` (by cluster; an `Err`
/// says why that cluster's record could not be read).
pub fn with_records(root: &Path, read: &BTreeMap<String, Result<Previews, String>>) -> Included {
    let (mut repo, mut diags) = spec::load_repo(root);
    super::check_templates(&repo, &mut diags);
    let mut complete = true;
    let mut records = BTreeMap::new();
    let by_cluster = template_clusters(&repo);
    for (cluster, result) in read {
        match result {
            Ok(previews) => {
                add_previews(&mut repo, previews, &mut diags);
                records.insert(cluster.clone(), previews.clone());
            }
            Err(message) => {
                complete = false;
                for t in by_cluster.get(cluster).into_iter().flatten() {
                    let Some(doc) = repo.templates.get(t).and_then(|t| t.template.as_ref()) else {
                        continue;
                    };
                    diags.push(
                        Diagnostic::error(
                            "io",
                            &doc.file,
                            None,
                            format!(
                                "the previews of template `{t}` are unknown: the record on cluster `{cluster}` cannot be read: {message}"
                            ),
                        )
                        .with_help("no preview is planned and no environment is retired until the record can be read"),
                    );
                }
            }
        }
    }
    Included {
        report: check::check_loaded(repo, diags),
        complete,
        records,
    }
}

/// Materialise the active previews of `previews` into `repo`.
fn add_previews(repo: &mut Repo, previews: &Previews, diags: &mut Vec<Diagnostic>) {
    for record in previews.by_key.values() {
        if record.state != State::Active {
            continue;
        }
        // A template removed from the repository takes its previews with it
        // (they are retired like a removed folder).
        let Some(t) = repo.templates.get(&record.template) else {
            continue;
        };
        let env = materialise(t, record, diags);
        if let Some(folder) = repo.environments.get(&env.name) {
            let file = folder
                .environment
                .as_ref()
                .map(|d| d.file.clone())
                .unwrap_or_else(|| Path::new("environments").join(&env.name));
            diags.push(
                Diagnostic::error(
                    "preview",
                    &file,
                    None,
                    format!(
                        "`{}` is both a folder and a preview of template `{}`",
                        env.name, record.template
                    ),
                )
                .with_help(
                    "rename the folder: preview-<template>-<number> names belong to previews",
                ),
            );
            continue;
        }
        repo.environments.insert(env.name.clone(), env);
    }
}
