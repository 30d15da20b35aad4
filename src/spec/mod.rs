//! Loading a repository of specs: files → YAML with positions → schema check
//! → typed model. Every problem in every file becomes a diagnostic; loading
//! never stops at the first one.

pub mod annotations;
pub mod confine;
pub mod edit;
pub mod model;
pub mod preview;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::check::schema::{self, Kind};
use crate::diag::{Diagnostic, Sources};
use crate::yaml::{self, Limits, Node};

pub use model::*;

/// A parsed, schema-valid spec file.
#[derive(Debug, Clone)]
pub struct Doc<T> {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// The YAML tree, for positions.
    pub node: Node,
    /// The typed value.
    pub value: T,
}

/// One raw Kubernetes manifest from `manifests/`.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// The YAML tree, for positions.
    pub node: Node,
    /// The object.
    pub object: Json,
}

/// The files of one environment folder.
#[derive(Debug, Clone, Default)]
pub struct EnvFiles {
    /// Folder name.
    pub name: String,
    /// `environment.yaml`, when it loaded.
    pub environment: Option<Doc<Environment>>,
    /// `pipeline.yaml`, when present and loaded.
    pub pipeline: Option<Doc<Pipeline>>,
    /// `manifests/*.yaml`.
    pub manifests: Vec<Manifest>,
    /// Whether any file of this environment had an error while loading.
    pub load_failed: bool,
}

/// Everything read from a repository.
#[derive(Debug, Clone, Default)]
pub struct Repo {
    /// The repository root.
    pub root: PathBuf,
    /// Environments by folder name.
    pub environments: BTreeMap<String, EnvFiles>,
    /// Policies, sorted by file name.
    pub policies: Vec<Doc<Policy>>,
    /// Whether any policy file had an error (which blocks every environment).
    pub policies_failed: bool,
    /// Preview templates (`environments/_templates/<name>/`) by name.
    pub templates: BTreeMap<String, preview::TemplateFiles>,
    /// File texts, for rendering diagnostics.
    pub sources: Sources,
}

impl Repo {
    /// Drop the YAML trees kept for positions (each becomes an empty node),
    /// once every diagnostic has been made: they are about 13 times the
    /// size of the text (36 MiB at 3,000 apps × 3), and reconciling needs
    /// only the typed values. [`Node::locate`] on an emptied tree gives
    /// the start of the file.
    pub fn forget_positions(&mut self) {
        for env in self.environments.values_mut() {
            if let Some(d) = &mut env.environment {
                d.node = Node::empty();
            }
            if let Some(d) = &mut env.pipeline {
                d.node = Node::empty();
            }
            forget_manifest_positions(&mut env.manifests);
        }
        for p in &mut self.policies {
            p.node = Node::empty();
        }
    }
}

/// [`Repo::forget_positions`] for a list of manifests (an environment's,
/// or a merged environment's copy of them).
pub fn forget_manifest_positions(manifests: &mut [Manifest]) {
    for m in manifests {
        m.node = Node::empty();
    }
}

/// What is wrong with a repository root that has no `environments/`
/// folder, and what to do: (message, help).
pub fn layout_error(root: &Path) -> (String, String) {
    let expects = "keelson expects environments/<env>/environment.yaml under the repository root \
                   (the current directory, or --repo DIR)";
    if !root.is_dir() {
        return (
            format!("{} does not exist or is not a folder", root.display()),
            expects.to_string(),
        );
    }
    let inside = root.file_name().is_some_and(|n| n == "environments")
        || root.join("environment.yaml").is_file();
    let help = if inside {
        format!(
            "{expects}; {} looks like a folder inside the repository: point --repo at the folder that holds environments/",
            root.display()
        )
    } else {
        expects.to_string()
    };
    (
        format!("{} has no environments/ folder", root.display()),
        help,
    )
}

/// Load every spec under `root`. Diagnostics come back beside the repo; an
/// environment whose files failed is marked `load_failed`.
pub fn load_repo(root: &Path) -> (Repo, Vec<Diagnostic>) {
    load_repo_with(root, Limits::default())
}

/// [`load_repo`] with explicit input limits.
pub fn load_repo_with(root: &Path, limits: Limits) -> (Repo, Vec<Diagnostic>) {
    let mut repo = Repo {
        root: root.to_path_buf(),
        ..Repo::default()
    };
    let mut diags = Vec::new();
    let mut loader = Loader {
        root,
        limits,
        sources: &mut repo.sources,
        diags: &mut diags,
    };

    let policy_dir = root.join("policies");
    if loader.confined(&policy_dir) {
        for file in yaml_files(&policy_dir) {
            match loader.typed::<Policy>(&file, Kind::Policy) {
                Some(doc) => repo.policies.push(doc),
                None => repo.policies_failed = true,
            }
        }
    } else {
        repo.policies_failed = true;
    }

    let env_root = root.join("environments");
    if !loader.confined(&env_root) {
        return (repo, diags);
    }
    if !env_root.is_dir() {
        let (message, help) = layout_error(root);
        // The path as given (`/tmp/x/environments`, `./environments`): the
        // usual repository-relative `environments` names no real place
        // when the root is the problem.
        loader
            .diags
            .push(Diagnostic::error("layout", &env_root, None, message).with_help(help));
    }
    for dir in subdirs(&env_root) {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name == preview::TEMPLATES_DIR {
            // Not an environment: the templates previews are made from.
            repo.templates = preview::load_templates(&mut loader, &dir);
            continue;
        }
        let mut env = EnvFiles {
            name: name.clone(),
            ..EnvFiles::default()
        };
        let before = loader.diags.len();
        if !loader.confined(&dir) {
            // Blocked, not removed: a folder that is there is never retired.
            env.load_failed = true;
            repo.environments.insert(name, env);
            continue;
        }
        let env_file = dir.join("environment.yaml");
        if env_file.is_file() {
            env.environment = loader.typed::<Environment>(&env_file, Kind::Environment);
        } else {
            loader.diags.push(
                Diagnostic::error(
                    "layout",
                    &rel(root, &dir),
                    None,
                    format!("environment `{name}` has no environment.yaml"),
                )
                .with_help("add environment.yaml, or remove the folder to retire the environment"),
            );
        }
        let pipe_file = dir.join("pipeline.yaml");
        if pipe_file.is_file() {
            env.pipeline = loader.typed::<Pipeline>(&pipe_file, Kind::Pipeline);
        }
        let manifest_dir = dir.join("manifests");
        if loader.confined(&manifest_dir) {
            for file in yaml_files(&manifest_dir) {
                env.manifests.extend(loader.manifests(&file));
            }
        }
        for stray in files(&dir) {
            let fname = stray
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if !["environment.yaml", "pipeline.yaml"].contains(&fname.as_str())
                && !fname.starts_with('.')
                && !fname.ends_with(".md")
            {
                let hint = crate::diag::did_you_mean(&fname, ["environment.yaml", "pipeline.yaml"]);
                let d = Diagnostic::warning(
                    "layout",
                    &rel(root, &stray),
                    None,
                    format!("`{fname}` is not read by keelson"),
                );
                loader.diags.push(match hint {
                    Some(h) => d.with_help(format!("did you mean `{h}`?")),
                    None => d.with_help(
                        "environment folders hold environment.yaml, pipeline.yaml and manifests/",
                    ),
                });
            }
        }
        env.load_failed = loader.diags[before..]
            .iter()
            .any(|d| d.severity == crate::diag::Severity::Error);
        repo.environments.insert(name, env);
    }
    if env_root.is_dir() && repo.environments.is_empty() && repo.templates.is_empty() {
        // An empty clone or the wrong folder, never a real repository: it
        // must not read as "every environment was removed". (A repository
        // of preview templates alone is a real one.)
        loader.diags.push(
            Diagnostic::error("layout", Path::new("environments"), None, "environments/ holds no environment")
                .with_help("add environments/<env>/environment.yaml; to retire the last environment, delete its namespace by hand"),
        );
    }
    (repo, diags)
}

struct Loader<'a> {
    root: &'a Path,
    limits: Limits,
    sources: &'a mut Sources,
    diags: &'a mut Vec<Diagnostic>,
}

impl Loader<'_> {
    /// Whether `path` stays inside the root; an error naming the link when
    /// it does not.
    fn confined(&mut self, path: &Path) -> bool {
        match confine::check(self.root, path) {
            Ok(()) => true,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error("symlink", &e.link, None, e.to_string())
                        .with_help("replace the link with the file itself, or a link to a file inside the repository"),
                );
                false
            }
        }
    }

    /// Read a file as UTF-8 text within the size limit.
    fn read(&mut self, path: &Path) -> Option<(PathBuf, String)> {
        if !self.confined(path) {
            return None;
        }
        let file = rel(self.root, path);
        let size = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "io",
                    &file,
                    None,
                    format!("cannot read: {e}"),
                ));
                return None;
            }
        };
        if size > self.limits.max_bytes as u64 {
            self.diags.push(
                Diagnostic::error(
                    "size",
                    &file,
                    None,
                    format!(
                        "file is {size} bytes, over the {} byte limit",
                        self.limits.max_bytes
                    ),
                )
                .with_help("split the file; spec files should be small"),
            );
            return None;
        }
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    "io",
                    &file,
                    None,
                    format!("cannot read: {e}"),
                ));
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.sources.add(&file, &text);
                Some((file, text))
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let pos = yaml::line_col_of_byte(e.as_bytes(), at);
                self.diags.push(
                    Diagnostic::error(
                        "encoding",
                        &file,
                        Some(yaml::Span::point(pos)),
                        format!("file is not valid UTF-8 (byte 0x{:02x})", e.as_bytes()[at]),
                    )
                    .with_help("save the file as UTF-8"),
                );
                None
            }
        }
    }

    /// Read and parse a file, keeping it untyped (a template's files hold
    /// parameters that only a preview fills in).
    fn raw(&mut self, path: &Path, several: bool) -> Option<preview::RawDoc> {
        let (file, text) = self.read(path)?;
        let parsed = if several {
            yaml::parse_documents(&text, self.limits)
        } else {
            yaml::parse_one(&text, self.limits).map(|n| vec![n])
        };
        match parsed {
            Ok(nodes) => Some(preview::RawDoc { file, nodes }),
            Err(e) => {
                self.diags.push(Diagnostic::from_yaml(&file, e));
                None
            }
        }
    }

    /// Read, parse, check kind and schema, and convert to `T`.
    fn typed<T: DeserializeOwned>(&mut self, path: &Path, kind: Kind) -> Option<Doc<T>> {
        let (file, text) = self.read(path)?;
        let node = match yaml::parse_one(&text, self.limits) {
            Ok(n) => n,
            Err(e) => {
                self.diags.push(Diagnostic::from_yaml(&file, e));
                return None;
            }
        };
        typed_doc(file, node, kind, self.diags)
    }

    /// Read raw manifests (several documents per file allowed).
    fn manifests(&mut self, path: &Path) -> Vec<Manifest> {
        let Some((file, text)) = self.read(path) else {
            return Vec::new();
        };
        let docs = match yaml::parse_documents(&text, self.limits) {
            Ok(d) => d,
            Err(e) => {
                self.diags.push(Diagnostic::from_yaml(&file, e));
                return Vec::new();
            }
        };
        manifest_docs(&file, docs, self.diags)
    }
}

/// Check a parsed document's kind and schema and convert it to `T`; every
/// problem becomes a diagnostic at its position in `file`. Loading and
/// preview materialisation ([`crate::preview`]) share it, so a preview's
/// files meet exactly the checks of a folder's.
pub(crate) fn typed_doc<T: DeserializeOwned>(
    file: PathBuf,
    node: Node,
    kind: Kind,
    diags: &mut Vec<Diagnostic>,
) -> Option<Doc<T>> {
    let json = node.to_json();
    if !json.is_object() {
        diags.push(Diagnostic::error(
            "schema",
            &file,
            Some(node.span),
            format!(
                "expected a mapping with apiVersion, kind and spec, found {}",
                type_name(&json)
            ),
        ));
        return None;
    }
    if let Some(found) = json.get("kind").and_then(Json::as_str)
        && found != kind.name()
    {
        let span = node.locate("/kind", false);
        diags.push(
            Diagnostic::error(
                "kind",
                &file,
                Some(span),
                format!(
                    "expected kind `{}` in this file, found `{found}`",
                    kind.name()
                ),
            )
            .with_help(format!(
                "{} files hold kind {}",
                file.file_name().unwrap_or_default().to_string_lossy(),
                kind.name()
            )),
        );
        return None;
    }
    let errors = schema::validate(kind, &file, &node, &json);
    if !errors.is_empty() {
        diags.extend(errors);
        return None;
    }
    match serde_json::from_value::<T>(json) {
        Ok(value) => Some(Doc { file, node, value }),
        Err(e) => {
            // The schema should have caught this; report it rather than panic.
            diags.push(Diagnostic::error(
                "schema",
                &file,
                Some(node.span),
                e.to_string(),
            ));
            None
        }
    }
}

/// The raw manifests among parsed documents of `file`: each needs
/// apiVersion, kind and metadata.name, and keelson's own annotations take
/// only their values ([`annotations`]).
pub(crate) fn manifest_docs(
    file: &Path,
    docs: Vec<Node>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Manifest> {
    let mut out = Vec::new();
    for node in docs {
        let object = node.to_json();
        if object.is_null() {
            continue; // an empty document between `---` separators
        }
        let mut ok = object.is_object();
        for field in ["apiVersion", "kind"] {
            if object
                .get(field)
                .and_then(Json::as_str)
                .is_none_or(str::is_empty)
            {
                ok = false;
                diags.push(
                    Diagnostic::error(
                        "manifest",
                        file,
                        Some(node.span),
                        format!("manifest has no `{field}`"),
                    )
                    .with_help("every Kubernetes object needs apiVersion, kind and metadata.name"),
                );
            }
        }
        if object
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            ok = false;
            diags.push(Diagnostic::error(
                "manifest",
                file,
                Some(node.locate("/metadata", false)),
                "manifest has no `metadata.name`",
            ).with_help("generateName is not supported: keelson must know each object's name to diff and prune it"));
        }
        if ok {
            annotations::check(file, &node, &object, diags);
            out.push(Manifest {
                file: file.to_path_buf(),
                node,
                object,
            });
        }
    }
    out
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// `path` relative to `root`, for messages.
pub fn rel(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    sorted_entries(dir)
        .into_iter()
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .starts_with('.')
        })
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    sorted_entries(dir)
        .into_iter()
        .filter(|p| p.is_file())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect()
}
