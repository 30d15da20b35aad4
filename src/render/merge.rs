//! The three-layer merge: policy defaults < user layer < pipeline layer.
//!
//! Each layer owns its fields (the schemas enforce which); where two layers
//! may set the same field (`domain`, `image`), the later layer wins. Policies
//! merge in order: the environment's `policies:` list, or file-name order of
//! the policies whose `appliesTo` matches; a later policy overrides an
//! earlier one field by field, and maps merge key by key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use globset::Glob;

use crate::diag::Diagnostic;
use crate::spec::{
    App, Doc, EnvFiles, Environment, Health, IgnoreRule, Manifest, Pipeline, PipelineApp, Policy,
    PolicyDefaults, Port, PruneSpec, RancherSpec, Rule, Runtime,
};
use crate::yaml::Span;

/// The merged policy defaults of one environment.
pub type Defaults = PolicyDefaults;

/// A rule with where it came from.
#[derive(Debug, Clone)]
pub struct SourcedRule {
    /// Policy name.
    pub policy: String,
    /// Policy file.
    pub file: PathBuf,
    /// Span of the rule's `expr`.
    pub span: Span,
    /// The rule.
    pub rule: Rule,
}

/// An app after merging all three layers.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedApp {
    /// Name.
    pub name: String,
    /// Image repository.
    pub repository: String,
    /// Tag, or empty.
    pub tag: String,
    /// Digest, or empty.
    pub digest: String,
    /// Runtime.
    pub runtime: Runtime,
    /// Replicas.
    pub replicas: u32,
    /// CPU limit, or empty.
    pub cpu: String,
    /// Memory limit, or empty.
    pub memory: String,
    /// Ports.
    pub ports: Vec<Port>,
    /// Health check.
    pub health: Option<Health>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Host name.
    pub domain: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Node selector (environment, app and region).
    pub node_selector: BTreeMap<String, String>,
    /// Extra pod labels.
    pub labels: BTreeMap<String, String>,
    /// Command.
    pub command: Vec<String>,
    /// Args.
    pub args: Vec<String>,
    /// Where the app is declared (environment.yaml, its `name:` value).
    pub span: Span,
}

impl ResolvedApp {
    /// The full image reference: `repo:tag@digest`, `repo:tag`, `repo@digest` or `repo`.
    pub fn image(&self) -> String {
        let mut s = self.repository.clone();
        if !self.tag.is_empty() {
            s.push(':');
            s.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            s.push('@');
            s.push_str(&self.digest);
        }
        s
    }

    /// What `keelson status` shows as the running version.
    pub fn version(&self) -> String {
        if !self.tag.is_empty() {
            self.tag.clone()
        } else if !self.digest.is_empty() {
            self.digest.chars().take(19).collect()
        } else {
            "latest".into()
        }
    }
}

/// An environment after merging.
#[derive(Debug, Clone)]
pub struct ResolvedEnv {
    /// Name.
    pub name: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// environment.yaml path.
    pub file: PathBuf,
    /// Environment labels.
    pub labels: BTreeMap<String, String>,
    /// Merged policy defaults.
    pub defaults: Defaults,
    /// Names of the policies in force, in merge order.
    pub policies: Vec<String>,
    /// Rules in force.
    pub rules: Vec<SourcedRule>,
    /// Apps in spec order.
    pub apps: Vec<ResolvedApp>,
    /// Raw manifests.
    pub manifests: Vec<Manifest>,
    /// Prune settings.
    pub prune: PruneSpec,
    /// Ignore rules.
    pub ignore: Vec<IgnoreRule>,
    /// Adopt unlabelled objects.
    pub adopt: bool,
    /// Field managers whose writes are drift (`None`: the defaults).
    pub manual_managers: Option<Vec<String>>,
    /// Rancher settings.
    pub rancher: Option<RancherSpec>,
}

/// Merge one environment's layers. Errors name the file and position.
pub fn resolve(
    env_files: &EnvFiles,
    policies: &[Doc<Policy>],
) -> Result<ResolvedEnv, Vec<Diagnostic>> {
    let Some(env_doc) = &env_files.environment else {
        return Err(Vec::new());
    };
    let env: &Environment = &env_doc.value;
    let mut diags = Vec::new();

    let selected = select_policies(env_doc, policies, &mut diags);
    let mut defaults = PolicyDefaults::default();
    let mut rules = Vec::new();
    for p in &selected {
        if let Some(d) = &p.value.spec.defaults {
            overlay(&mut defaults, d);
        }
        for (i, rule) in p.value.spec.rules.iter().enumerate() {
            rules.push(SourcedRule {
                policy: p.value.metadata.name.clone(),
                file: p.file.clone(),
                span: p.node.locate(&format!("/spec/rules/{i}/expr"), false),
                rule: rule.clone(),
            });
        }
    }

    let pipeline: Option<&Doc<Pipeline>> = env_files.pipeline.as_ref();
    let empty = PipelineApp::default();
    let app_defaults = defaults.app_defaults.clone().unwrap_or_default();
    let mut apps = Vec::new();
    for (i, app) in env.spec.apps.iter().enumerate() {
        let p = pipeline
            .and_then(|p| p.value.spec.apps.get(&app.name))
            .unwrap_or(&empty);
        apps.push(merge_app(
            env,
            app,
            p,
            &app_defaults,
            env_doc.node.locate(&format!("/spec/apps/{i}/name"), false),
        ));
    }

    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(ResolvedEnv {
        name: env_files.name.clone(),
        cluster: env.spec.cluster.clone(),
        namespace: env.spec.namespace.clone(),
        file: env_doc.file.clone(),
        labels: env.spec.labels.clone(),
        defaults,
        policies: selected
            .iter()
            .map(|p| p.value.metadata.name.clone())
            .collect(),
        rules,
        apps,
        manifests: env_files.manifests.clone(),
        prune: env.spec.prune.clone().unwrap_or(PruneSpec {
            enabled: true,
            max_delete_percent: None,
            allow_delete_all: false,
        }),
        ignore: env.spec.ignore.clone(),
        adopt: env.spec.adopt,
        manual_managers: env.spec.manual_managers.clone(),
        rancher: env.spec.rancher.clone(),
    })
}

fn select_policies<'a>(
    env_doc: &Doc<Environment>,
    policies: &'a [Doc<Policy>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<&'a Doc<Policy>> {
    let env = &env_doc.value;
    match &env.spec.policies {
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let found = policies.iter().find(|p| &p.value.metadata.name == name);
                if found.is_none() {
                    let d = Diagnostic::error(
                        "policy",
                        &env_doc.file,
                        Some(env_doc.node.locate(&format!("/spec/policies/{i}"), false)),
                        format!("unknown policy `{name}`"),
                    );
                    let names: Vec<&str> = policies
                        .iter()
                        .map(|p| p.value.metadata.name.as_str())
                        .collect();
                    diags.push(
                        match crate::diag::did_you_mean(name, names.iter().copied()) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => {
                                d.with_help(format!("policies in policies/: {}", names.join(", ")))
                            }
                        },
                    );
                }
                found
            })
            .collect(),
        None => policies
            .iter()
            .filter(|p| applies_to(&p.value.spec.applies_to, &env.metadata.name))
            .collect(),
    }
}

/// Whether a policy with these `appliesTo` globs applies to environment `env`.
pub fn applies_to(globs: &[String], env: &str) -> bool {
    globs.is_empty()
        || globs.iter().any(|g| {
            Glob::new(g)
                .map(|g| g.compile_matcher().is_match(env))
                .unwrap_or(false)
        })
}

fn merge_app(
    env: &Environment,
    app: &App,
    p: &PipelineApp,
    d: &crate::spec::AppDefaults,
    span: Span,
) -> ResolvedApp {
    let mut node_selector = env.spec.node_selector.clone();
    node_selector.extend(app.node_selector.clone());
    if let Some(region) = &p.region {
        node_selector.insert("topology.kubernetes.io/region".into(), region.clone());
    }
    ResolvedApp {
        name: app.name.clone(),
        repository: p
            .image
            .clone()
            .or_else(|| app.image.clone())
            .unwrap_or_default(),
        tag: p.tag.clone().unwrap_or_default(),
        digest: p.digest.clone().unwrap_or_default(),
        runtime: app.runtime.unwrap_or(Runtime::Generic),
        replicas: app.replicas.or(d.replicas).unwrap_or(1),
        cpu: app
            .cpu
            .clone()
            .or_else(|| d.cpu.clone())
            .map(|q| q.0)
            .unwrap_or_default(),
        memory: app
            .memory
            .clone()
            .or_else(|| d.memory.clone())
            .map(|q| q.0)
            .unwrap_or_default(),
        ports: app.ports.clone(),
        health: app.health.clone(),
        env: app.env.clone(),
        domain: p.domain.clone().or_else(|| app.domain.clone()),
        region: p.region.clone(),
        node_selector,
        labels: app.labels.clone(),
        command: app.command.clone(),
        args: app.args.clone(),
        span,
    }
}

/// Overlay `top` onto `base`: fields `top` sets win; maps merge.
fn overlay(base: &mut PolicyDefaults, top: &PolicyDefaults) {
    macro_rules! take {
        ($($f:ident),*) => { $( if top.$f.is_some() { base.$f = top.$f.clone(); } )* };
    }
    take!(
        rollout,
        overcommit,
        revision_history_limit,
        dns_policy,
        jvm_heap_ratio,
        pod_disruption_budget,
        termination_grace_period_seconds,
        ingress_class
    );
    base.dns_options.extend(top.dns_options.clone());
    base.labels.extend(top.labels.clone());
    base.pod_annotations.extend(top.pod_annotations.clone());
    if let Some(t) = &top.app_defaults {
        let b = base.app_defaults.get_or_insert_with(Default::default);
        if t.replicas.is_some() {
            b.replicas = t.replicas;
        }
        if t.cpu.is_some() {
            b.cpu = t.cpu.clone();
        }
        if t.memory.is_some() {
            b.memory = t.memory.clone();
        }
    }
    if let Some(t) = &top.probes {
        let b = base.probes.get_or_insert_with(Default::default);
        if t.period_seconds.is_some() {
            b.period_seconds = t.period_seconds;
        }
        if t.timeout_seconds.is_some() {
            b.timeout_seconds = t.timeout_seconds;
        }
        if t.failure_threshold.is_some() {
            b.failure_threshold = t.failure_threshold;
        }
        if t.initial_delay_seconds.is_some() {
            b.initial_delay_seconds = t.initial_delay_seconds;
        }
    }
}
