//! Templates as environments: a preview is its template's files with the
//! parameters filled in, loaded exactly as a folder's files are (kind,
//! schema, typed model), so `check` (cross-file checks, CEL policy,
//! tenancy) and `render` treat it as any other environment. A template is
//! also checked on its own, with sample parameters, so `keelson validate`
//! finds its mistakes before any merge request does.

use std::path::Path;

use crate::check::schema::Kind;
use crate::diag::{Diagnostic, Severity};
use crate::spec::preview::{DEFAULT_TAG, TemplateFiles};
use crate::spec::{EnvFiles, Repo, manifest_docs, typed_doc};

use super::params::{Inputs, Params};
use super::record::PreviewRecord;

/// The parameters of `record`, a preview of template `t`.
pub fn params_of(t: &TemplateFiles, record: &PreviewRecord) -> Params {
    let tag_pattern = t
        .template
        .as_ref()
        .and_then(|d| d.value.spec.tag.as_deref())
        .unwrap_or(DEFAULT_TAG);
    Params::new(
        &Inputs {
            template: &t.name,
            number: record.number,
            branch: &record.branch,
            sha: &record.sha,
            tag: record.tag.as_deref(),
            ports: record.ports.map(|b| (b.first, b.count)),
            id: record.id,
        },
        tag_pattern,
    )
}

/// The environment `record` is: the template's files with its parameters
/// filled in. Problems become diagnostics at the template's lines, and mark
/// the environment `load_failed` (blocked, never retired).
pub fn materialise(
    t: &TemplateFiles,
    record: &PreviewRecord,
    diags: &mut Vec<Diagnostic>,
) -> EnvFiles {
    let params = params_of(t, record);
    let before = diags.len();
    let mut env = EnvFiles {
        name: record.name(),
        load_failed: t.load_failed,
        ..EnvFiles::default()
    };
    if let Some(raw) = &t.environment {
        for node in &raw.nodes {
            let node = params.substitute(&raw.file, node, diags);
            env.environment = typed_doc(raw.file.clone(), node, Kind::Environment, diags);
        }
    }
    if let Some(raw) = &t.pipeline {
        for node in &raw.nodes {
            let node = params.substitute(&raw.file, node, diags);
            env.pipeline = typed_doc(raw.file.clone(), node, Kind::Pipeline, diags);
        }
    }
    for raw in &t.manifests {
        let nodes = raw
            .nodes
            .iter()
            .map(|n| params.substitute(&raw.file, n, diags))
            .collect();
        env.manifests.extend(manifest_docs(&raw.file, nodes, diags));
    }
    env.load_failed |= env.environment.is_none()
        || diags[before..]
            .iter()
            .any(|d| d.severity == Severity::Error);
    env
}

/// A preview that stands for any: merge request 1 on the first block and
/// id of the template's pools.
fn sample(t: &TemplateFiles) -> PreviewRecord {
    let spec = t.template.as_ref().map(|d| d.value.spec.clone());
    let spec = spec.unwrap_or_default();
    PreviewRecord {
        template: t.name.clone(),
        number: 1,
        branch: "sample-branch".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        tag: None,
        ports: spec.ports.map(|p| super::record::PortBlock {
            first: p.base,
            count: p.count,
        }),
        id: spec.ids.and_then(|i| i.base).unwrap_or(1),
        ..PreviewRecord::default()
    }
}

/// Check every template of `repo`: its own settings, and a sample preview
/// through the whole check of an environment. Diagnostics point at the
/// template's files.
pub fn check_templates(repo: &Repo, diags: &mut Vec<Diagnostic>) {
    for t in repo.templates.values() {
        if t.template.is_none() {
            continue;
        }
        settings(t, diags);
        if t.load_failed || t.environment.is_none() {
            continue;
        }
        let mut found = Vec::new();
        let env = materialise(t, &sample(t), &mut found);
        if !env.load_failed {
            let mut mini = Repo {
                root: repo.root.clone(),
                policies: repo.policies.clone(),
                policies_failed: repo.policies_failed,
                ..Repo::default()
            };
            opt_in(&env, &mut found);
            mini.environments.insert(env.name.clone(), env);
            let report = crate::check::check_loaded(mini, Vec::new());
            found.extend(report.diagnostics);
        }
        // Only what is about the template: policy files report for themselves.
        let dir = Path::new("environments")
            .join(crate::spec::preview::TEMPLATES_DIR)
            .join(&t.name);
        found.retain(|d| d.file.starts_with(&dir));
        diags.extend(found);
    }
}

/// A preview is released by retiring it, which deletes everything it
/// created: the template must say so (`prune.allowDeleteAll: true`), as
/// any environment must before all of it may be deleted.
fn opt_in(env: &EnvFiles, diags: &mut Vec<Diagnostic>) {
    let Some(e) = &env.environment else { return };
    let allowed = e
        .value
        .spec
        .prune
        .as_ref()
        .is_some_and(|p| p.allow_delete_all && p.enabled);
    if !allowed {
        diags.push(
            Diagnostic::error(
                "preview",
                &e.file,
                Some(e.node.locate("/spec/prune", true)),
                "a preview template must allow its previews to be deleted whole: releasing a preview retires it, which deletes everything it created",
            )
            .with_help("add `prune: {allowDeleteAll: true}` under spec (pruning enabled)"),
        );
    }
}

/// The template's own settings: name, time-to-live, pools, a literal cluster.
fn settings(t: &TemplateFiles, diags: &mut Vec<Diagnostic>) {
    let Some(doc) = &t.template else { return };
    let spec = &doc.value.spec;
    if doc.value.metadata.name != t.name {
        diags.push(
            Diagnostic::error(
                "preview",
                &doc.file,
                Some(doc.node.locate("/metadata/name", false)),
                format!(
                    "metadata.name is `{}` but the template folder is `{}`",
                    doc.value.metadata.name, t.name
                ),
            )
            .with_help("the folder name is the template name; make them match"),
        );
    }
    if let Some(ttl) = &spec.ttl
        && let Err(e) = humantime::parse_duration(ttl)
    {
        diags.push(
            Diagnostic::error(
                "preview",
                &doc.file,
                Some(doc.node.locate("/spec/ttl", false)),
                format!("`{ttl}` is not a duration: {e}"),
            )
            .with_help("write a duration such as 72h, 3d or 1h30m"),
        );
    }
    if let Some(p) = &spec.ports {
        let last = u32::from(p.base) + u32::from(p.count) - 1;
        if last > u32::from(p.last()) {
            diags.push(
                Diagnostic::error(
                    "preview",
                    &doc.file,
                    Some(doc.node.locate("/spec/ports", true)),
                    format!(
                        "the port pool {}..={} cannot hold one block of {} ports",
                        p.base,
                        p.last(),
                        p.count
                    ),
                )
                .with_help("raise ports.max or lower ports.base"),
            );
        }
    }
    if let Some(raw) = &t.environment
        && let Some(node) = raw.nodes.first()
        && let Some(cluster) = node.get("spec").and_then(|s| s.get("cluster"))
        && cluster.as_str().is_some_and(|c| c.contains("${"))
    {
        diags.push(
            Diagnostic::error(
                "preview",
                &raw.file,
                Some(cluster.span),
                "a template's `spec.cluster` cannot hold parameters",
            )
            .with_help("previews of a template share one cluster, which keeps their record of ports and ids; name it literally"),
        );
    }
}

/// The cluster a template's previews run on (its environment's literal
/// `spec.cluster`).
pub fn cluster_of(t: &TemplateFiles) -> Option<String> {
    let node = t.environment.as_ref()?.nodes.first()?;
    let c = node.get("spec")?.get("cluster")?.as_str()?;
    (!c.contains("${")).then(|| c.to_string())
}
