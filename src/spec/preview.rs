//! `environments/_templates/<name>/preview.yaml`: how previews of one
//! template are made. `schema/preview-template.schema.json` describes the
//! same shape; the environment itself is the `environment.yaml` (and
//! `pipeline.yaml`, `manifests/`) beside it, with `${...}` parameters
//! ([`crate::preview::params`]).

use serde::{Deserialize, Serialize};

use super::Metadata;

/// The label prefix that sets one merge request's time-to-live when the
/// template names none: `preview-ttl/168h`.
pub const DEFAULT_TTL_LABEL_PREFIX: &str = "preview-ttl/";

/// The merge request label that asks for a preview when the template names
/// none (as in Argo CD's pull-request generator examples).
pub const DEFAULT_PREVIEW_LABEL: &str = "deploy/preview";

/// The image tag parameter `mr.tag` when neither the command line nor the
/// template gives one.
pub const DEFAULT_TAG: &str = "pr-${mr.number}-${mr.shortSha}";

/// The last port of a pool whose template names no `max`: the end of the
/// default NodePort range (`--service-node-port-range=30000-32767`).
pub const DEFAULT_PORT_MAX: u16 = 32767;

/// `preview.yaml` of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewTemplate {
    /// `keelson.dev/v1`.
    pub api_version: String,
    /// `PreviewTemplate`.
    pub kind: String,
    /// The template's name, which must match its folder.
    pub metadata: Metadata,
    /// Time-to-live, limits, port block, id and sources.
    pub spec: PreviewTemplateSpec,
}

/// What a template says about its previews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewTemplateSpec {
    /// How long a preview lives after it is created (`72h`); none: until
    /// its merge request closes or it is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// A merge request label starting with this prefix sets that preview's
    /// time-to-live (default [`DEFAULT_TTL_LABEL_PREFIX`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_label_prefix: Option<String>,
    /// Most previews of this template at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_previews: Option<u32>,
    /// The block of ports each preview gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortPool>,
    /// The id each preview gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdPool>,
    /// `mr.tag` when the merge request's pipeline gives none, with
    /// parameters (default [`DEFAULT_TAG`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Merge requests that `keelson run` makes previews of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PreviewSource>,
}

/// A pool of ports, handed out in blocks of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortPool {
    /// First port of the pool.
    pub base: u16,
    /// Ports per preview.
    pub count: u16,
    /// Last port of the pool (default [`DEFAULT_PORT_MAX`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
}

impl PortPool {
    /// The last port of the pool.
    pub fn last(&self) -> u16 {
        self.max.unwrap_or(DEFAULT_PORT_MAX)
    }
}

/// The ids previews get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdPool {
    /// Smallest id handed out (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
}

/// Where merge requests come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewSource {
    /// Pull requests of a GitHub repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubSource>,
    /// Merge requests of a GitLab project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabSource>,
}

/// GitHub pull requests (REST `GET /repos/{owner}/{repo}/pulls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GithubSource {
    /// `owner/name`.
    pub repository: String,
    /// Only pull requests with this label (default [`DEFAULT_PREVIEW_LABEL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// GitLab merge requests (REST `GET /projects/:id/merge_requests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitlabSource {
    /// Project path (`group/name`) or numeric id.
    pub project: String,
    /// Only merge requests with this label (default [`DEFAULT_PREVIEW_LABEL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The folder under `environments/` that holds preview templates; it is not
/// an environment.
pub const TEMPLATES_DIR: &str = "_templates";

/// A spec file of a template, parsed with positions but not yet typed: its
/// `${...}` parameters are filled in per preview before the schema sees it.
#[derive(Debug, Clone)]
pub struct RawDoc {
    /// Path relative to the repository root.
    pub file: std::path::PathBuf,
    /// The documents (one for environment.yaml and pipeline.yaml).
    pub nodes: Vec<crate::yaml::Node>,
}

/// The files of one template folder.
#[derive(Debug, Clone, Default)]
pub struct TemplateFiles {
    /// Folder name, the template's name.
    pub name: String,
    /// `preview.yaml`, when it loaded.
    pub template: Option<super::Doc<PreviewTemplate>>,
    /// `environment.yaml`, parsed.
    pub environment: Option<RawDoc>,
    /// `pipeline.yaml`, parsed, when present.
    pub pipeline: Option<RawDoc>,
    /// `manifests/*.yaml`, parsed.
    pub manifests: Vec<RawDoc>,
    /// Whether any file of the template had an error while loading.
    pub load_failed: bool,
}

/// Load every template under `dir` (`environments/_templates`).
pub(super) fn load_templates(
    loader: &mut super::Loader<'_>,
    dir: &std::path::Path,
) -> std::collections::BTreeMap<String, TemplateFiles> {
    use crate::check::schema::Kind;
    use crate::diag::{Diagnostic, Severity};

    let mut out = std::collections::BTreeMap::new();
    for tdir in super::subdirs(dir) {
        let name = tdir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let before = loader.diags.len();
        let mut t = TemplateFiles {
            name: name.clone(),
            ..TemplateFiles::default()
        };
        let preview_file = tdir.join("preview.yaml");
        if preview_file.is_file() {
            t.template = loader.typed::<PreviewTemplate>(&preview_file, Kind::PreviewTemplate);
        } else {
            loader.diags.push(
                Diagnostic::error(
                    "layout",
                    &super::rel(loader.root, &tdir),
                    None,
                    format!("preview template `{name}` has no preview.yaml"),
                )
                .with_help("add preview.yaml (kind PreviewTemplate) beside the template's environment.yaml"),
            );
        }
        let env_file = tdir.join("environment.yaml");
        if env_file.is_file() {
            t.environment = loader.raw(&env_file, false);
        } else {
            loader.diags.push(
                Diagnostic::error(
                    "layout",
                    &super::rel(loader.root, &tdir),
                    None,
                    format!("preview template `{name}` has no environment.yaml"),
                )
                .with_help("a template holds the environment.yaml every preview is made from"),
            );
        }
        let pipe_file = tdir.join("pipeline.yaml");
        if pipe_file.is_file() {
            t.pipeline = loader.raw(&pipe_file, false);
        }
        for file in super::yaml_files(&tdir.join("manifests")) {
            t.manifests.extend(loader.raw(&file, true));
        }
        for stray in super::files(&tdir) {
            let fname = stray
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let known = ["preview.yaml", "environment.yaml", "pipeline.yaml"];
            if !known.contains(&fname.as_str())
                && !fname.starts_with('.')
                && !fname.ends_with(".md")
            {
                let d = Diagnostic::warning(
                    "layout",
                    &super::rel(loader.root, &stray),
                    None,
                    format!("`{fname}` is not read by keelson"),
                );
                loader.diags.push(match crate::diag::did_you_mean(&fname, known) {
                    Some(h) => d.with_help(format!("did you mean `{h}`?")),
                    None => d.with_help(
                        "template folders hold preview.yaml, environment.yaml, pipeline.yaml and manifests/",
                    ),
                });
            }
        }
        t.load_failed = t.template.is_none()
            || loader.diags[before..]
                .iter()
                .any(|d| d.severity == Severity::Error);
        out.insert(name, t);
    }
    out
}
