//! The three spec kinds as Rust types. `schema/*.schema.json` describes the
//! same shapes for editors and for validation; `tests/spec_schema.rs` proves
//! that the two agree on every example file.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The API version of every keelson kind.
pub const API_VERSION: &str = "keelson.dev/v1";

fn is_false(b: &bool) -> bool {
    !*b
}

/// A Kubernetes quantity (`500m`, `1Gi`, `2`). YAML may write small ones as
/// numbers; they are kept as the text written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Hash)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Quantity(s)),
            serde_json::Value::Number(n) => Ok(Quantity(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a quantity such as \"500m\" or \"1Gi\", found {other}"
            ))),
        }
    }
}

/// A value that Kubernetes accepts as an integer or a string (`25%`, `http`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A string.
    Str(String),
}

/// `metadata` of Environment and Policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The name.
    pub name: String,
    /// Free-form labels of the spec itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `environments/<env>/environment.yaml`: the user layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    /// `keelson.dev/v1`.
    pub api_version: String,
    /// `Environment`.
    pub kind: String,
    /// Name, which must match the folder name.
    pub metadata: Metadata,
    /// The environment.
    pub spec: EnvironmentSpec,
}

/// What an environment is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// Cluster name, as in the keelson config file.
    pub cluster: String,
    /// The namespace every app of the environment lives in.
    pub namespace: String,
    /// Policies to apply, by name. When absent, every policy whose
    /// `appliesTo` matches the environment applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// Labels put on every object of the environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Node selector for every pod of the environment (node pool pinning).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Rancher project and members, for Rancher-managed clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rancher: Option<RancherSpec>,
    /// The apps.
    #[serde(default)]
    pub apps: Vec<App>,
    /// Pruning and the mass-deletion guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSpec>,
    /// Fields to ignore when diffing (owned by someone else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
    /// Take over existing unlabelled objects of the same name instead of
    /// refusing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopt: bool,
    /// Field managers whose writes are manual edits: fields only they own,
    /// inside objects keelson manages, are drift that apply takes over and
    /// removes. When absent: `kubectl`, `kubectl-edit`, `kubectl-patch`,
    /// `kubectl-set`, `kubectl-label`, `kubectl-annotate`, `kubectl-replace`,
    /// `kubectl-create`, `kubectl-client-side-apply`, `before-first-apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_managers: Option<Vec<String>>,
    /// etcd snapshot schedule override for this environment's cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// An app of the user layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// DNS-1123 name, unique in the environment.
    pub name: String,
    /// Image repository without tag; the pipeline layer supplies the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Runtime, which turns on runtime-specific defaults (`jvm`: heap size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Replica count; policy `appDefaults.replicas` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// CPU limit; requests follow from the policy's overcommit ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory limit; requests follow from the policy's overcommit ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Container ports; an app without ports gets no Service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// HTTP health check, used for readiness and liveness probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Host name for an Ingress (the pipeline layer may override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Extra node selector for this app.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Extra pod labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Container command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Container args.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Runtimes with defaults of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// A JVM: JAVA_OPTS gets `-Xmx` from the memory limit.
    Jvm,
    /// Node.js: NODE_OPTIONS gets `--max-old-space-size` from the memory limit.
    Node,
    /// Go.
    Go,
    /// Python.
    Python,
    /// Anything else.
    Generic,
}

/// A container port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// Port name (IANA_SVC_NAME).
    pub name: String,
    /// Port number.
    pub port: u16,
    /// TCP (default) or UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    /// HTTP path, e.g. `/healthz`.
    pub path: String,
    /// Port number or name; the first port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// Seconds before the first liveness check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
}

/// Rancher project settings of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RancherSpec {
    /// Rancher cluster id, e.g. `c-m-abc12`.
    pub cluster_id: String,
    /// Project name (display name).
    pub project: String,
    /// Project description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Project resource quota (Rancher limit keys such as `limitsCpu`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_quota: BTreeMap<String, Quantity>,
    /// Default quota of each namespace in the project.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_default_quota: BTreeMap<String, Quantity>,
    /// Default container limits (`limitsCpu`, `limitsMemory`, `requestsCpu`, `requestsMemory`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub container_default_limits: BTreeMap<String, Quantity>,
    /// Project members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// A project member: one subject and a role template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// e.g. `local://u-abc12`, `github_user://123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_id: Option<String>,
    /// e.g. `github_team://1234`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_principal_id: Option<String>,
    /// A Rancher user id, e.g. `u-abc12` (Rancher's `userId`, beside the principal ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A Rancher group id (Rancher's `groupId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Role template id, e.g. `project-member`, `read-only`, `project-owner`.
    pub role: String,
}

/// Pruning options and the mass-deletion guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PruneSpec {
    /// Delete objects removed from the spec (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Refuse a plan that deletes more than this share of the environment's
    /// objects (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_percent: Option<u32>,
    /// Allow a plan that deletes every object of the environment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_delete_all: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// Fields to ignore when diffing, on the objects a selector picks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IgnoreRule {
    /// Kind, e.g. `Deployment`; every kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Object name or glob; every name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JSON pointers (RFC 6901), e.g. `/spec/replicas`.
    pub pointers: Vec<String>,
}

/// etcd snapshot settings of an environment's cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSpec {
    /// 5-field cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How many snapshots to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<u32>,
}

/// `environments/<env>/pipeline.yaml`: the pipeline layer, written by CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    /// `keelson.dev/v1`.
    pub api_version: String,
    /// `Pipeline`.
    pub kind: String,
    /// Optional; the environment is the folder the file is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PipelineMetadata>,
    /// Per-app build data.
    pub spec: PipelineSpec,
}

/// `metadata` of a Pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineMetadata {
    /// The environment, which must match the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Per-app build data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    /// By app name.
    #[serde(default)]
    pub apps: BTreeMap<String, PipelineApp>,
}

/// What CI knows about one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineApp {
    /// Image repository, overriding the user layer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Image digest (`sha256:…`); pins the image when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Host name, overriding the user layer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Region the app is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `policies/*.yaml`: the platform layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// `keelson.dev/v1`.
    pub api_version: String,
    /// `Policy`.
    pub kind: String,
    /// Name, referenced from `environment.spec.policies`.
    pub metadata: Metadata,
    /// Defaults and rules.
    pub spec: PolicySpec,
}

/// Defaults and rules of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// Environment name globs (default: every environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    /// Defaults for rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<PolicyDefaults>,
    /// What environments under this policy may reach beyond their own
    /// namespace ([`crate::check::tenancy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<Tenancy>,
    /// CEL rules every app must pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// Exceptions to tenancy that the platform team grants, named as in Argo
/// CD's AppProject (`destinations`, `clusterResourceWhitelist`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenancy {
    /// Namespaces an environment may write into (or use as its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Destination>,
    /// Cluster-scoped kinds an environment may create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_whitelist: Vec<GroupKind>,
}

/// A namespace an environment may write into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Name or glob (`monitoring`, `team-*`). A system namespace (`kube-*`,
    /// `default`) is granted only by a pattern that does not start with a
    /// wildcard.
    pub namespace: String,
}

/// An API group and kind (globs allowed); `""` is the core group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupKind {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// Rendering defaults owned by the platform team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyDefaults {
    /// Defaults for app fields the user layer leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_defaults: Option<AppDefaults>,
    /// Rolling update strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Overcommit: requests = limits / ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overcommit: Option<Overcommit>,
    /// Deployment `revisionHistoryLimit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<u32>,
    /// Pod `dnsPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// Pod DNS resolver options, e.g. `ndots: "2"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dns_options: BTreeMap<String, String>,
    /// JVM heap as a share of the memory limit (default 0.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jvm_heap_ratio: Option<f64>,
    /// Labels on every rendered object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations on every pod (log settings, for example).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// A PodDisruptionBudget for every app with more than one replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PdbDefaults>,
    /// Probe timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbeDefaults>,
    /// Pod `terminationGracePeriodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u32>,
    /// Ingress class for apps with a domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
}

/// Defaults of app fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppDefaults {
    /// Replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// CPU limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

/// Rolling update parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// `maxSurge`, e.g. `25%` or `1`.
    pub max_surge: IntOrString,
    /// `maxUnavailable`; keelson never lets it reach every replica.
    pub max_unavailable: IntOrString,
}

/// Overcommit ratios: requests = limits / ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Overcommit {
    /// CPU ratio (≥ 1).
    pub cpu: f64,
    /// Memory ratio (≥ 1).
    pub memory: f64,
}

/// PodDisruptionBudget defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdbDefaults {
    /// `minAvailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// `maxUnavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// Probe timing defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeDefaults {
    /// `periodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    /// `timeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// `failureThreshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// Liveness `initialDelaySeconds` when the app does not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
}

/// A CEL rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Short name, shown in diagnostics.
    pub name: String,
    /// CEL expression that must be true. Variables: `app`, `env`.
    pub expr: String,
    /// Message when the expression is false.
    pub message: String,
    /// `error` (default) blocks apply; `warning` does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<RuleSeverity>,
    /// `app` (default): evaluated per app; `environment`: once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RuleScope>,
}

/// Rule severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    /// Blocks apply.
    Error,
    /// Reported only.
    Warning,
}

/// What a rule is evaluated over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleScope {
    /// Once per app.
    App,
    /// Once per environment.
    Environment,
}
