//! Reconcile: the stages wired together for one environment — render,
//! observe, plan, (server dry-run), apply, record the inventory — and the
//! clusters they run against. Used by `keelson reconcile` and the controller.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::Mutex;

use crate::apply::{self, ApplyOptions, ApplyReport, health};
use crate::config::Config;
use crate::observe::dir::DirCluster;
use crate::observe::kube::{ContextBy, KubeCluster, Named};
use crate::observe::{self, Cluster, ClusterError, Resource};
use crate::plan::{self, Action, DesiredEnv, DesiredObject, Lifecycle, Plan, inventory};
use crate::rancher::{self, DesiredRancher, RancherClient};
use crate::render::{self, ResolvedEnv};

pub mod intent;
pub mod retire;
pub mod tenants;

pub use retire::{Evidence, retired_envs};

/// How to reconcile.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// Confirm each planned change with a server-side dry-run apply.
    pub server_dry_run: bool,
    /// How to apply.
    pub apply: ApplyOptions,
}

/// Per app: version and health as observed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppState {
    /// App name.
    pub name: String,
    /// Image tag (or digest prefix) desired.
    pub version: String,
    /// Health of its workload ([`health::Health::Unknown`] when not observed).
    pub health: health::Health,
    /// What was seen.
    pub reason: String,
}

/// The result of reconciling one environment.
#[derive(Debug, Clone, Serialize)]
pub struct EnvResult {
    /// Environment.
    pub environment: String,
    /// Cluster name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// The plan, when observing worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// What apply did (not in dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyReport>,
    /// Why the environment failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per app state.
    pub apps: Vec<AppState>,
    /// Rancher state planned (and applied) beside the objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rancher: Option<RancherOutcome>,
}

/// The Rancher part of an environment's reconcile.
#[derive(Debug, Clone, Serialize)]
pub struct RancherOutcome {
    /// The Rancher plan (JSON of `rancher::RancherPlan`).
    pub plan: Json,
    /// What apply did (JSON of `rancher::ApplyReport`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<Json>,
    /// Whether the plan has changes.
    pub changed: bool,
    /// Why the Rancher part failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The plan (and apply) as text.
    #[serde(skip)]
    pub text: String,
    /// The plan as markdown.
    #[serde(skip)]
    pub markdown: String,
}

impl RancherOutcome {
    /// The outcome of planning `plan` (nothing applied yet).
    pub fn planned(plan: &rancher::RancherPlan) -> Self {
        // A change Rancher would refuse fails the plan too (a dry run in
        // review shows it before the merge).
        let refused: Vec<String> = plan.refusal_reasons();
        RancherOutcome {
            plan: serde_json::to_value(plan).unwrap_or(Json::Null),
            applied: None,
            changed: plan.has_changes(),
            error: (!refused.is_empty())
                .then(|| format!("rancher: Rancher would refuse {}", refused.join("; "))),
            text: plan.render_text(),
            markdown: plan.render_markdown(),
        }
    }

    /// Apply `plan` and record what happened.
    async fn apply(
        &mut self,
        client: &RancherClient,
        plan: &rancher::RancherPlan,
    ) -> rancher::ApplyReport {
        let report = rancher::apply(client, plan).await;
        self.applied = serde_json::to_value(&report).ok();
        self.text.push_str(&report.render_text());
        self.error = report.error.as_ref().map(|e| e.to_string());
        report
    }
}

impl EnvResult {
    /// Whether this environment failed (error, refusal, failed apply).
    pub fn failed(&self) -> bool {
        self.error.is_some()
            || self.rancher.as_ref().is_some_and(|r| r.error.is_some())
            || self.plan.as_ref().is_some_and(|p| {
                p.refused.is_some() || p.changes.iter().any(|c| c.intent.refused.is_some())
            })
            || self.apply.as_ref().is_some_and(ApplyReport::failed)
    }

    /// Whether the plan has changes.
    pub fn changed(&self) -> bool {
        self.plan.as_ref().is_some_and(Plan::has_changes)
            || self.rancher.as_ref().is_some_and(|r| r.changed)
    }

    fn error(env: &str, cluster: &str, namespace: &str, error: String) -> EnvResult {
        EnvResult {
            environment: env.into(),
            cluster: cluster.into(),
            namespace: namespace.into(),
            plan: None,
            apply: None,
            error: Some(error),
            apps: Vec::new(),
            rancher: None,
        }
    }
}

/// Any cluster keelson can talk to.
pub enum AnyCluster {
    /// A live cluster.
    Kube(KubeCluster),
    /// Captured state.
    Dir(DirCluster),
}

impl Cluster for AnyCluster {
    fn dry_runs(&self) -> bool {
        match self {
            AnyCluster::Kube(c) => c.dry_runs(),
            AnyCluster::Dir(c) => c.dry_runs(),
        }
    }
    async fn resource(&self, api_version: &str, kind: &str) -> Result<Resource, ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.resource(api_version, kind).await,
            AnyCluster::Dir(c) => c.resource(api_version, kind).await,
        }
    }
    async fn list(
        &self,
        res: &Resource,
        ns: Option<&str>,
        sel: &str,
    ) -> Result<Vec<Json>, ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.list(res, ns, sel).await,
            AnyCluster::Dir(c) => c.list(res, ns, sel).await,
        }
    }
    async fn list_each(
        &self,
        res: &Resource,
        ns: Option<&str>,
        sel: &str,
        each: &mut (dyn FnMut(&serde_json::value::RawValue) + Send),
    ) -> Result<(), ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.list_each(res, ns, sel, each).await,
            AnyCluster::Dir(c) => c.list_each(res, ns, sel, each).await,
        }
    }
    async fn get(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Json>, ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.get(res, ns, name).await,
            AnyCluster::Dir(c) => c.get(res, ns, name).await,
        }
    }
    async fn apply(&self, res: &Resource, obj: &Json, dry_run: bool) -> Result<Json, ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.apply(res, obj, dry_run).await,
            AnyCluster::Dir(c) => c.apply(res, obj, dry_run).await,
        }
    }
    async fn merge_patch(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        patch: &Json,
    ) -> Result<Json, ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.merge_patch(res, ns, name, patch).await,
            AnyCluster::Dir(c) => c.merge_patch(res, ns, name, patch).await,
        }
    }
    async fn delete(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        match self {
            AnyCluster::Kube(c) => c.delete(res, ns, name, dry_run).await,
            AnyCluster::Dir(c) => c.delete(res, ns, name, dry_run).await,
        }
    }
}

/// Connections to the clusters environments name, made once and shared.
pub struct Clusters {
    config: Option<Config>,
    /// `--kubeconfig FILE` / `--context NAME`. With a context, that one
    /// context serves every environment; a file alone replaces only the
    /// kubeconfig file, and each environment's cluster is still its own
    /// context in it (see [`Clusters::get`]).
    pub override_kubeconfig: Option<(Option<PathBuf>, Option<String>)>,
    against: Option<Arc<AnyCluster>>,
    open: Mutex<HashMap<String, Arc<AnyCluster>>>,
}

impl Clusters {
    /// Clusters from the keelson config (`None`: cluster names are kubeconfig
    /// contexts), or captured state for every environment.
    pub fn new(config: Option<Config>, against: Option<PathBuf>) -> Result<Self, ClusterError> {
        let against = match against {
            Some(dir) => Some(Arc::new(AnyCluster::Dir(DirCluster::load(&dir)?))),
            None => None,
        };
        Ok(Clusters {
            config,
            override_kubeconfig: None,
            against,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// How many objects the captured state (`--against`) holds; `None`
    /// against live clusters.
    pub fn captured_objects(&self) -> Option<usize> {
        match self.against.as_deref()? {
            AnyCluster::Dir(d) => Some(d.len()),
            AnyCluster::Kube(_) => None,
        }
    }

    /// Every environment planned against one captured state, with no
    /// config (so no Rancher endpoint).
    pub fn captured(cluster: DirCluster) -> Self {
        Clusters {
            config: None,
            override_kubeconfig: None,
            against: Some(Arc::new(AnyCluster::Dir(cluster))),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The Rancher client of cluster `name`, when the config names an endpoint.
    pub fn rancher(&self, name: &str) -> Result<Option<RancherClient>, String> {
        let Some(ep) = self
            .config
            .as_ref()
            .and_then(|c| c.clusters.get(name))
            .and_then(|c| c.rancher.as_ref())
        else {
            return Ok(None);
        };
        RancherClient::from_endpoint(ep)
            .map(Some)
            .map_err(|e| format!("Rancher endpoint of cluster `{name}`: {e}"))
    }

    /// The cluster named `name`.
    pub async fn get(&self, name: &str) -> Result<Arc<AnyCluster>, ClusterError> {
        if let Some(a) = &self.against {
            return Ok(a.clone());
        }
        let mut open = self.open.lock().await;
        if let Some(c) = open.get(name) {
            return Ok(c.clone());
        }
        let c = match (&self.override_kubeconfig, &self.config) {
            // `--context NAME`: every environment goes to NAME, by choice.
            (Some((path, Some(context))), _) => {
                let named = Named {
                    cluster: Some(name.to_string()),
                    kubeconfig: path.as_ref().map(|_| "--kubeconfig".to_string()),
                    context: ContextBy::Flag,
                };
                KubeCluster::connect_named(path.as_deref(), Some(context), false, &named).await?
            }
            // `--kubeconfig FILE` alone swaps the file, not the mapping: a
            // cluster is the context the config names for it, else the
            // context of its own name, as with `KUBECONFIG=FILE`. Falling
            // back to the file's current context sent every environment,
            // prod included, to one cluster under headers naming others.
            (Some((path, None)), cfg) => {
                let cc = cfg.as_ref().and_then(|c| c.clusters.get(name));
                let context = cc.and_then(|cc| cc.context.as_deref()).unwrap_or(name);
                let named = Named {
                    cluster: Some(name.to_string()),
                    kubeconfig: Some("--kubeconfig".to_string()),
                    context: match cc {
                        Some(cc) if cc.context.is_some() => {
                            ContextBy::Config(cc.at.context.clone())
                        }
                        _ => ContextBy::ClusterName,
                    },
                };
                KubeCluster::connect_named(path.as_deref(), Some(context), false, &named).await?
            }
            (None, Some(cfg)) => {
                let cc = cfg.clusters.get(name).ok_or_else(|| {
                    ClusterError::Config(format!(
                        "cluster `{name}` is not in the keelson config; known clusters: {}",
                        cfg.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                KubeCluster::connect_configured(name, cc).await?
            }
            (None, None) => {
                let named = Named {
                    cluster: Some(name.to_string()),
                    kubeconfig: None,
                    context: ContextBy::ClusterName,
                };
                KubeCluster::connect_named(None, Some(name), false, &named).await?
            }
        };
        let c = Arc::new(AnyCluster::Kube(c));
        open.insert(name.to_string(), c.clone());
        Ok(c)
    }
}

/// The plan input of an environment. Each object is packed as it is
/// rendered ([`DesiredObject`]): an environment's thousands of objects are
/// never all held parsed. They come in [`render::render_env`]'s order.
pub fn desired_env(env: &ResolvedEnv) -> DesiredEnv {
    let mut objects = Vec::new();
    render::each_object(env, render::Stamp::Hash, |o, _| {
        objects.push(DesiredObject::new(&o));
    });
    // `render::order_key`, read from the ids; a stable sort, as render's.
    fn key(d: &DesiredObject) -> (u8, &str, &str, &str) {
        let id = d.id();
        (
            render::kind_rank(&id.kind),
            &id.kind,
            &id.namespace,
            &id.name,
        )
    }
    objects.sort_by(|a, b| key(a).cmp(&key(b)));
    objects.shrink_to_fit();
    DesiredEnv {
        rancher: env.rancher.as_ref().map(|r| inventory::RancherRef {
            cluster: env.cluster.clone(),
            cluster_id: r.cluster_id.clone(),
            project: r.project.clone(),
        }),
        name: env.name.clone(),
        objects,
        ignore: env.ignore.clone(),
        prune: env.prune.clone(),
        adopt: env.adopt,
        manual_managers: env
            .manual_managers
            .clone()
            .unwrap_or_else(plan::ownership::default_manual_managers),
    }
}

/// Reconcile one environment on `cluster`, and its Rancher state through
/// `rancher` when the spec has a `rancher:` section. Rancher goes first: the
/// Namespace carries the project annotation only Rancher can tell.
pub async fn reconcile_env<C: Cluster>(
    cluster: &C,
    env: &ResolvedEnv,
    rancher: Option<&RancherClient>,
    opts: &Options,
) -> EnvResult {
    let mut desired = desired_env(env);
    let mut outcome = None;
    if let Some(spec) = &env.rancher {
        match rancher_step(env, spec, rancher, opts).await {
            Ok((o, annotation)) => {
                // A dry run goes on to show the Kubernetes plan as well.
                let failed = o.error.is_some() && !opts.dry_run;
                outcome = Some(o);
                if failed {
                    let mut r = EnvResult::error(
                        &env.name,
                        &env.cluster,
                        &env.namespace,
                        "Rancher apply failed; Kubernetes objects were not applied".into(),
                    );
                    r.rancher = outcome;
                    return r;
                }
                if let Some((key, value)) = annotation {
                    annotate_namespace(&mut desired.objects, &env.namespace, &key, &value);
                }
            }
            Err(e) => return EnvResult::error(&env.name, &env.cluster, &env.namespace, e),
        }
    }
    let mut r = run(
        cluster,
        desired,
        &env.cluster,
        &env.namespace,
        versions(env),
        opts,
        Mode::Spec,
    )
    .await;
    r.rancher = outcome;
    r
}

/// Reconcile one environment on the cluster (and Rancher) its spec names.
pub async fn reconcile_named(clusters: &Clusters, env: &ResolvedEnv, opts: &Options) -> EnvResult {
    reconcile_named_fenced(clusters, env, opts, None).await
}

/// [`reconcile_named`], with `fence` (a Lease term of `keelson run` with
/// replicas) checked before every Kubernetes and Rancher write.
pub async fn reconcile_named_fenced(
    clusters: &Clusters,
    env: &ResolvedEnv,
    opts: &Options,
    fence: Option<std::sync::Arc<dyn crate::controller::fence::Fence>>,
) -> EnvResult {
    let rancher = match clusters.rancher(&env.cluster) {
        Ok(r) => r,
        Err(e) => return EnvResult::error(&env.name, &env.cluster, &env.namespace, e),
    };
    let cluster = match clusters.get(&env.cluster).await {
        Ok(c) => c,
        Err(e) => {
            return EnvResult::error(&env.name, &env.cluster, &env.namespace, e.to_string());
        }
    };
    match fence {
        Some(f) => {
            let rancher = rancher.map(|r| r.with_fence(f.clone()));
            let fenced = crate::controller::fence::FencedCluster::new(cluster.as_ref(), f);
            reconcile_env(&fenced, env, rancher.as_ref(), opts).await
        }
        None => reconcile_env(cluster.as_ref(), env, rancher.as_ref(), opts).await,
    }
}

type Annotation = Option<(String, String)>;

async fn rancher_step(
    env: &ResolvedEnv,
    spec: &crate::spec::RancherSpec,
    client: Option<&RancherClient>,
    opts: &Options,
) -> Result<(RancherOutcome, Annotation), String> {
    let Some(client) = client else {
        let msg = format!(
            "environment `{}` has a rancher section but cluster `{}` has no Rancher endpoint in the keelson config",
            env.name, env.cluster
        );
        // Rancher is managed only where the operator connected it; the
        // Kubernetes side goes ahead, and the output says what was skipped.
        return Ok((
            RancherOutcome {
                plan: Json::Null,
                applied: None,
                changed: false,
                error: None,
                text: format!("Rancher: not managed: {msg}\n"),
                markdown: format!("> Rancher: not managed: {msg}\n\n"),
            },
            None,
        ));
    };
    let desired = DesiredRancher::from_spec(&env.name, &env.namespace, spec)
        .map_err(|e| format!("rancher: {e}"))?;
    let plan = rancher::plan(client, &desired)
        .await
        .map_err(|e| format!("rancher: {e}"))?;
    let mut outcome = RancherOutcome::planned(&plan);
    if opts.dry_run {
        return Ok((outcome, plan.namespace_annotation()));
    }
    let report = outcome.apply(client, &plan).await;
    Ok((outcome, report.namespace_annotation()))
}

fn annotate_namespace(objects: &mut [DesiredObject], namespace: &str, key: &str, value: &str) {
    for d in objects.iter_mut() {
        if d.id().kind != "Namespace" || d.id().name != namespace {
            continue;
        }
        let mut o = d.value();
        if let Some(meta) = o.get_mut("metadata").and_then(Json::as_object_mut) {
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| Json::Object(Default::default()));
            if let Some(a) = ann.as_object_mut() {
                a.insert(key.to_string(), Json::String(value.to_string()));
            }
            // The applied hash covers what Rancher added too.
            render::stamp::stamp(&mut o);
            *d = DesiredObject::new(&o);
        }
    }
}

fn versions(env: &ResolvedEnv) -> Vec<(String, String)> {
    env.apps
        .iter()
        .map(|a| (a.name.clone(), a.version()))
        .collect()
}

/// What the environment is doing as a whole, beside its own changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reconcile it against its spec.
    Spec,
    /// Its folder was removed: delete what the inventory in this namespace records.
    Retire,
}

async fn run<C: Cluster>(
    cluster: &C,
    desired: DesiredEnv,
    cluster_name: &str,
    namespace: &str,
    versions: Vec<(String, String)>,
    opts: &Options,
    mode: Mode,
) -> EnvResult {
    let env = desired.name.clone();
    let fail = |what: String| EnvResult::error(&env, cluster_name, namespace, what);
    let mut recorded = match intent::read(cluster, &env, namespace).await {
        Ok(r) => r,
        Err(e) => return fail(format!("reading the inventory: {e}")),
    };
    if mode == Mode::Retire {
        // Each namespace's inventory of a retired environment retires on its own.
        recorded.earlier.clear();
    }
    let live = match observe::observe(
        cluster,
        &env,
        &desired.objects,
        &desired.manual_managers,
        recorded.merged(),
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return fail(format!("observing the cluster: {e}")),
    };
    let mut plan = plan::plan(&desired, &live);
    if let Err(e) = tenants::protect_namespaces(cluster, &env, &mut plan).await {
        return fail(format!("observing the cluster: {e}"));
    }
    plan.lifecycle = lifecycle(&env, namespace, &plan, &recorded, mode);
    if let (Some(Lifecycle::Move { from, .. }), Some(reason)) = (&plan.lifecycle, &plan.refused) {
        plan.refused = Some(format!(
            "environment `{env}` moved from namespace {from} to {namespace}, which deletes its objects in {from}: {reason}; or set `namespace: {from}` back"
        ));
    }
    // On a live cluster the server judges every object the no-op decision
    // could not clear; offline, the local normaliser's verdict stands.
    if cluster.dry_runs()
        && plan.refused.is_none()
        && let Err(e) =
            apply::confirm::confirm(cluster, &mut plan, &live, &opts.apply, opts.server_dry_run)
                .await
    {
        return fail(format!("server-side dry run: {e}"));
    }
    if !cluster.dry_runs() {
        plan::immutable::settle_offline(&mut plan.changes);
    }
    let apps = app_states(&versions, &live.health, &env);
    // Only the recorded inventories are needed from here on; free the rest
    // before applying (thousands of objects).
    drop(live);
    drop(desired);
    let mut result = EnvResult {
        environment: env.clone(),
        cluster: cluster_name.into(),
        namespace: namespace.into(),
        plan: None,
        apply: None,
        error: None,
        apps,
        rancher: None,
    };
    if opts.dry_run || plan.refused.is_some() {
        result.plan = Some(without_bodies(plan));
        return result;
    }
    // --timeout bounds every wait of this apply: retries, Retry-After, CRDs
    // and workload health.
    let apply_opts = opts.apply.started();
    let outcome =
        intent::apply_recorded(cluster, &env, namespace, &mut plan, &recorded, &apply_opts).await;
    let mut report = outcome.report;
    result.error = outcome.error;
    for h in &report.health {
        if let Some(a) = result.apps.iter_mut().find(|a| a.name == h.id.name) {
            a.health = h.health;
            a.reason = h.reason.clone();
        }
    }
    report.results.sort_by(|a, b| a.id.cmp(&b.id));
    result.apply = Some(report);
    result.plan = Some(without_bodies(plan));
    result
}

/// The whole-environment event of a plan: a retirement, or a move when
/// inventories of the environment live in other namespaces.
fn lifecycle(
    env: &str,
    namespace: &str,
    plan: &Plan,
    recorded: &intent::Recorded,
    mode: Mode,
) -> Option<Lifecycle> {
    if mode == Mode::Retire {
        return Some(Lifecycle::Retire {
            environment: env.to_string(),
            objects: plan.summary().delete,
        });
    }
    let (from, _) = recorded.earlier.first()?;
    let objects = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter(|c| recorded.earlier.iter().any(|(_, inv)| inv.contains(&c.id)))
        .count();
    Some(Lifecycle::Move {
        environment: env.to_string(),
        from: from.clone(),
        to: namespace.to_string(),
        objects,
    })
}

/// A plan kept for reporting: the bodies to apply and the inventory to
/// record (recorded by now, or never in a dry run) are not needed any more,
/// and with thousands of objects they are most of its memory.
fn without_bodies(mut plan: Plan) -> Plan {
    for c in &mut plan.changes {
        c.apply = None;
    }
    plan.inventory.objects = Vec::new();
    plan
}

/// Each app's state: its workload's health as observed (the last workload
/// of its name in LIST order), or missing.
fn app_states(
    versions: &[(String, String)],
    workloads: &[(String, health::Verdict)],
    env: &str,
) -> Vec<AppState> {
    let workloads: HashMap<&str, &health::Verdict> =
        workloads.iter().map(|(n, v)| (n.as_str(), v)).collect();
    versions
        .iter()
        .map(|(name, version)| {
            let (health, reason) = match workloads.get(name.as_str()) {
                Some(v) => (v.health, v.reason.clone()),
                None => (health::Health::Missing, format!("not deployed in {env}")),
            };
            AppState {
                name: name.clone(),
                version: version.clone(),
                health,
                reason,
            }
        })
        .collect()
}
