//! Check: everything that can be wrong with a repository of specs, found in
//! one pass — schema errors (while loading), cross-file consistency, CEL
//! policy rules over the merged apps, and every object keelson would apply,
//! checked as the API server would check it ([`kube`], [`objects`]).

pub mod kube;
pub mod objects;
pub mod rules;
pub mod schema;
pub mod tenancy;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::diag::{Diagnostic, Severity, did_you_mean};
use crate::render::{self, ResolvedEnv};
use crate::spec::{self, EnvFiles, Repo};

/// The outcome of checking a repository.
#[derive(Debug)]
pub struct Report {
    /// What was loaded.
    pub repo: Repo,
    /// Every finding, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Environments with no errors, merged and ready to render.
    pub ready: BTreeMap<String, ResolvedEnv>,
    /// Environments blocked by errors (their own or a policy's).
    pub blocked: Vec<String>,
}

impl Report {
    /// Drop the YAML trees of the repository and of the ready
    /// environments ([`spec::Repo::forget_positions`]), and the file texts
    /// kept to show diagnostics in context, once the diagnostics have been
    /// reported: nothing after the check places a finding in a file, and a
    /// reconcile holds the report while it renders and observes.
    pub fn forget_positions(&mut self) {
        self.repo.forget_positions();
        self.repo.sources = Default::default();
        for env in self.ready.values_mut() {
            spec::forget_manifest_positions(&mut env.manifests);
        }
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// Load and check the repository at `root` (its preview templates with
/// sample parameters).
pub fn check_repo(root: &Path) -> Report {
    let (repo, mut diags) = spec::load_repo(root);
    crate::preview::check_templates(&repo, &mut diags);
    check_loaded(repo, diags)
}

/// Check a loaded repository; `diags` are the loader's findings. Previews
/// ([`crate::preview::online`]) are added to `repo` before this, so they
/// meet every check of an environment.
pub fn check_loaded(repo: Repo, mut diags: Vec<Diagnostic>) -> Report {
    let mut ready = BTreeMap::new();
    let mut blocked = Vec::new();

    check_policies(&repo, &mut diags);
    let compiled = rules::Compiled::new(&repo.policies, &mut diags);
    let policies_ok = !repo.policies_failed
        && compiled.all_ok()
        && !diags
            .iter()
            .any(|d| d.severity == Severity::Error && d.file.starts_with("policies"));
    let namespaces = namespace_owners(&repo);
    let crds = objects::crd_index(&repo);

    let envs: Vec<(&String, &EnvFiles)> = repo.environments.iter().collect();
    let check = |env: &EnvFiles| -> EnvCheck {
        let mut diags = Vec::new();
        cross_check(env, &namespaces, &mut diags);
        let mut ok =
            !env.load_failed && policies_ok && diags.iter().all(|d| d.severity != Severity::Error);
        let mut resolved_ok = None;
        if ok {
            match render::resolve(env, &repo.policies) {
                Ok(resolved) => {
                    let mut findings = compiled.evaluate(&resolved);
                    findings.extend(objects::check_env(
                        &resolved,
                        env,
                        &repo.policies,
                        &crds,
                        kube::Options::default(),
                    ));
                    findings.extend(tenancy::check(env, &resolved, &repo.policies, &namespaces));
                    ok = findings.iter().all(|d| d.severity != Severity::Error);
                    diags.extend(findings);
                    if ok {
                        resolved_ok = Some(resolved);
                    }
                }
                Err(errs) => {
                    diags.extend(errs);
                }
            }
        }
        EnvCheck {
            diags,
            resolved: resolved_ok,
        }
    };
    for ((name, _), result) in envs.iter().zip(each_env(&envs, check)) {
        diags.extend(result.diags);
        match result.resolved {
            Some(resolved) => {
                ready.insert((*name).clone(), resolved);
            }
            None => blocked.push((*name).clone()),
        }
    }
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diags.dedup();
    Report {
        repo,
        diagnostics: diags,
        ready,
        blocked,
    }
}

/// What checking one environment found.
struct EnvCheck {
    diags: Vec<Diagnostic>,
    /// The merged environment, when it had no errors.
    resolved: Option<ResolvedEnv>,
}

/// `check` of every environment, on as many threads as there are cores
/// (at most one per environment), each taking the next environment when it
/// is done; results in the order of `envs`. Rendering and type-checking
/// thousands of objects is most of `validate`'s time, and environments are
/// independent.
fn each_env<'a, T: Send>(
    envs: &[(&'a String, &'a EnvFiles)],
    check: impl Fn(&'a EnvFiles) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(envs.len());
    if threads <= 1 {
        return envs.iter().map(|(_, e)| check(e)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((_, env)) = envs.get(i) else { break };
                        done.push((i, check(env)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an environment check panicked"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

fn check_policies(repo: &Repo, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for p in &repo.policies {
        let name = p.value.metadata.name.as_str();
        if let Some(first) = seen.insert(name, &p.file) {
            diags.push(Diagnostic::error(
                "policy",
                &p.file,
                Some(p.node.locate("/metadata/name", false)),
                format!(
                    "policy name `{name}` is already used by {}",
                    first.display()
                ),
            ));
        }
        for (i, g) in p.value.spec.applies_to.iter().enumerate() {
            if let Err(e) = globset::Glob::new(g) {
                diags.push(Diagnostic::error(
                    "policy",
                    &p.file,
                    Some(p.node.locate(&format!("/spec/appliesTo/{i}"), false)),
                    format!("invalid environment glob `{g}`: {e}"),
                ));
            }
        }
    }
}

/// (cluster, namespace) → environments using it.
fn namespace_owners(repo: &Repo) -> HashMap<(String, String), Vec<String>> {
    let mut m: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (name, env) in &repo.environments {
        if let Some(e) = &env.environment {
            m.entry((e.value.spec.cluster.clone(), e.value.spec.namespace.clone()))
                .or_default()
                .push(name.clone());
        }
    }
    m
}

fn cross_check(
    env: &EnvFiles,
    namespaces: &HashMap<(String, String), Vec<String>>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(e) = &env.environment else { return };
    let spec = &e.value.spec;
    if e.value.metadata.name != env.name {
        diags.push(
            Diagnostic::error(
                "environment",
                &e.file,
                Some(e.node.locate("/metadata/name", false)),
                format!(
                    "metadata.name is `{}` but the folder is `{}`",
                    e.value.metadata.name, env.name
                ),
            )
            .with_help("the folder name is the environment name; make them match"),
        );
    }
    if let Some(others) = namespaces.get(&(spec.cluster.clone(), spec.namespace.clone()))
        && others.len() > 1
    {
        diags.push(
                Diagnostic::error(
                    "environment",
                    &e.file,
                    Some(e.node.locate("/spec/namespace", false)),
                    format!(
                        "namespace `{}` on cluster `{}` is used by several environments: {}",
                        spec.namespace,
                        spec.cluster,
                        others.join(", ")
                    ),
                )
                .with_help("each environment needs its own namespace, or they would prune each other's objects"),
            );
    }
    if let Some(r) = &spec.rancher
        && let Err(err) = crate::rancher::DesiredRancher::from_spec(&env.name, &spec.namespace, r)
    {
        diags.push(Diagnostic::error(
            "rancher",
            &e.file,
            Some(e.node.locate("/spec/rancher", true)),
            err.to_string(),
        ));
    }
    if let Some(schedule) = spec.backup.as_ref().and_then(|b| b.schedule.as_ref())
        && let Err(err) = crate::backup::schedule::parse_schedule(&env.name, schedule)
    {
        diags.push(
            Diagnostic::error(
                "backup",
                &e.file,
                Some(e.node.locate("/spec/backup/schedule", false)),
                format!("`{schedule}` is not a valid 5-field cron schedule"),
            )
            .with_help(
                err.to_string()
                    .rsplit("\": ")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
        );
    }
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, app) in spec.apps.iter().enumerate() {
        if let Some(j) = first_seen.insert(app.name.as_str(), i) {
            let first = e.node.locate(&format!("/spec/apps/{j}/name"), false);
            diags.push(Diagnostic::error(
                "environment",
                &e.file,
                Some(e.node.locate(&format!("/spec/apps/{i}/name"), false)),
                format!(
                    "duplicate app name `{}` (first defined at line {}, column {})",
                    app.name, first.start.line, first.start.col
                ),
            ));
        }
        let pipeline_image = env
            .pipeline
            .as_ref()
            .and_then(|p| p.value.spec.apps.get(&app.name))
            .and_then(|a| a.image.as_ref());
        if app.image.is_none() && pipeline_image.is_none() {
            diags.push(
                Diagnostic::error(
                    "environment",
                    &e.file,
                    Some(e.node.locate(&format!("/spec/apps/{i}/name"), false)),
                    format!("app `{}` has no image", app.name),
                )
                .with_help("set `image:` (the repository, without tag) on the app"),
            );
        }
        if let Some(h) = &app.health
            && let Some(crate::spec::IntOrString::Str(port)) = &h.port
            && !app.ports.iter().any(|p| &p.name == port)
        {
            diags.push(
                Diagnostic::error(
                    "environment",
                    &e.file,
                    Some(e.node.locate(&format!("/spec/apps/{i}/health/port"), false)),
                    format!("health check port `{port}` is not one of the app's ports"),
                )
                .with_help(format!(
                    "named ports: {}",
                    app.ports
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    if let Some(p) = &env.pipeline {
        if let Some(pe) = p
            .value
            .metadata
            .as_ref()
            .and_then(|m| m.environment.as_ref())
            && pe != &env.name
        {
            diags.push(Diagnostic::error(
                "pipeline",
                &p.file,
                Some(p.node.locate("/metadata/environment", false)),
                format!(
                    "pipeline.yaml says environment `{pe}` but sits in `{}`",
                    env.name
                ),
            ));
        }
        for name in p.value.spec.apps.keys() {
            if !spec.apps.iter().any(|a| &a.name == name) {
                let d = Diagnostic::error(
                    "pipeline",
                    &p.file,
                    Some(p.node.locate(&format!("/spec/apps/{name}"), true)),
                    format!("app `{name}` is not defined in environment.yaml"),
                );
                diags.push(
                    match did_you_mean(name, spec.apps.iter().map(|a| a.name.as_str())) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => {
                            d.with_help("add the app to environment.yaml first, or remove it here")
                        }
                    },
                );
            }
        }
    }
    let mut manifest_ids: HashMap<(String, String, String), &Path> = HashMap::new();
    for m in &env.manifests {
        let s = |p: &str| {
            m.object
                .pointer(p)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let id = (s("/kind"), s("/metadata/namespace"), s("/metadata/name"));
        if let Some(first) = manifest_ids.insert(id.clone(), &m.file) {
            diags.push(Diagnostic::error(
                "manifest",
                &m.file,
                Some(m.node.locate("/metadata/name", false)),
                format!(
                    "{} `{}` is defined twice (also in {})",
                    id.0,
                    id.2,
                    first.display()
                ),
            ));
        }
        let rendered_kinds = ["Deployment", "Service", "Ingress", "PodDisruptionBudget"];
        if rendered_kinds.contains(&id.0.as_str())
            && spec.apps.iter().any(|a| a.name == id.2)
            && id.1.is_empty()
        {
            diags.push(
                Diagnostic::error(
                    "manifest",
                    &m.file,
                    Some(m.node.locate("/metadata/name", false)),
                    format!(
                        "{} `{}` clashes with the one keelson renders for app `{}`",
                        id.0, id.2, id.2
                    ),
                )
                .with_help("rename the manifest, or change the app in environment.yaml instead"),
            );
        }
    }
}
