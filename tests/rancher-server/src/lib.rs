//! An in-memory Rancher v3 API test server, as strict as a real Rancher.
//!
//! It follows Rancher's wire shapes (norman collections and resources, error
//! bodies `{type:"error", status, code, message}`), bearer-token auth, list
//! filters and pagination, and project state `initializing` → `active`.
//! Beyond the shapes it models what a client can trip over, each piece from
//! the Rancher source named in its module:
//! - norman's request handling: fields that are not updatable (a namespace's
//!   `projectId`) are dropped from a PUT, nested objects are merged key by
//!   key, protected labels and annotations survive ([`merge`]);
//! - the namespace store's quota check against the namespace's *current*
//!   project, and the namespace fields stored as `field.cattle.io/…`
//!   annotations ([`namespaces`]);
//! - rancher/webhook's refusals, answered as 400 (or 403) with the webhook's
//!   message: project quotas against each other and against `usedLimit`,
//!   locked and cluster-context role templates, and the `manage-namespaces`
//!   verb a namespace move needs ([`webhook`], [`projects`], [`bindings`]);
//! - the resource quota controllers: namespace quotas filled from the
//!   project's defaults (and not updated when the defaults change), quotas
//!   that do not fit withheld, `usedLimit` summed ([`controllers`]).
//!
//! Tests drive faults (fail the Nth request, fail matching requests, add
//! latency) and read a request log to prove what a client sent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;

mod bindings;
mod controllers;
mod handlers;
mod merge;
mod namespaces;
mod projects;
mod quantity;
mod tls;
mod webhook;

pub use tls::TestCa;

/// The token every server accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "token-kt3st:s3cr3tvalue0123456789";

/// The user the tokens belong to (shown in permission refusals).
pub const TOKEN_USER: &str = "user-t3st";

/// A role template as Rancher holds it (`management.cattle.io/v3` RoleTemplate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTemplate {
    /// Id, e.g. `project-member`.
    pub id: String,
    /// Display name, used in refusals (`'Read-only'`).
    pub display_name: String,
    /// `project` or `cluster`.
    pub context: String,
    /// A locked role may not be assigned.
    pub locked: bool,
}

impl RoleTemplate {
    fn builtin(id: &str, display_name: &str, context: &str) -> Self {
        RoleTemplate {
            id: id.into(),
            display_name: display_name.into(),
            context: context.into(),
            locked: false,
        }
    }
}

/// Rancher's built-in role templates (rancher/rancher
/// `pkg/data/management/role_data.go`), the project and the cluster ones.
pub fn builtin_role_templates() -> Vec<RoleTemplate> {
    let project = [
        ("project-owner", "Project Owner"),
        ("project-member", "Project Member"),
        ("read-only", "Read-only"),
        ("create-ns", "Create Namespaces"),
        ("configmaps-manage", "Manage Config Maps"),
        ("ingress-manage", "Manage Ingress"),
        (
            "projectroletemplatebindings-manage",
            "Manage Project Members",
        ),
        ("secrets-manage", "Manage Secrets"),
        ("serviceaccounts-manage", "Manage Service Accounts"),
        ("services-manage", "Manage Services"),
        ("persistentvolumeclaims-manage", "Manage Volumes"),
        ("workloads-manage", "Manage Workloads"),
        ("configmaps-view", "View Config Maps"),
        ("ingress-view", "View Ingress"),
        ("projectroletemplatebindings-view", "View Project Members"),
        ("secrets-view", "View Secrets"),
        ("serviceaccounts-view", "View Service Accounts"),
        ("services-view", "View Services"),
        ("persistentvolumeclaims-view", "View Volumes"),
        ("workloads-view", "View Workloads"),
        ("admin", "Kubernetes admin"),
        ("edit", "Kubernetes edit"),
        ("view", "Kubernetes view"),
    ];
    let cluster = [
        ("cluster-owner", "Cluster Owner"),
        ("cluster-member", "Cluster Member"),
        (
            "clusterroletemplatebindings-manage",
            "Manage Cluster Members",
        ),
        ("clusterroletemplatebindings-view", "View Cluster Members"),
        ("nodes-manage", "Manage Nodes"),
        ("nodes-view", "View Nodes"),
        ("projects-create", "Create Projects"),
        ("projects-view", "View All Projects"),
        ("storage-manage", "Manage Storage"),
    ];
    project
        .iter()
        .map(|(id, name)| RoleTemplate::builtin(id, name, "project"))
        .chain(
            cluster
                .iter()
                .map(|(id, name)| RoleTemplate::builtin(id, name, "cluster")),
        )
        .collect()
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Bearer tokens accepted (`token-xxxxx:secret`).
    pub tokens: Vec<String>,
    /// Clusters that exist (`c-m-abc12`).
    pub clusters: Vec<String>,
    /// How long a new project stays `initializing`.
    pub activate_after: Duration,
    /// Serve HTTPS with a certificate signed by this CA.
    pub tls: Option<TestCa>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tokens: vec![DEFAULT_TOKEN.to_string()],
            clusters: vec!["c-m-abc12".to_string()],
            activate_after: Duration::from_millis(150),
            tls: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// JSON body sent, if any.
    pub body: Option<Value>,
    /// True when an `Authorization: Bearer` header was present.
    pub had_bearer: bool,
}

impl LoggedRequest {
    /// True for anything but GET/HEAD.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    /// Fire on this request number (1-based, counted since the fault was added).
    pub nth: Option<usize>,
    pub seen: usize,
    pub remaining: usize,
    pub status: u16,
    pub message: String,
}

#[derive(Debug)]
pub(crate) struct Project {
    pub obj: Value,
    pub active_at: Instant,
}

/// A namespace as Kubernetes stores it: name, labels and all annotations
/// (Rancher keeps `projectId`, `resourceQuota`, `containerDefaultResourceLimit`
/// and `description` as `field.cattle.io/…` annotations).
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub name: String,
    pub labels: serde_json::Map<String, Value>,
    pub annotations: serde_json::Map<String, Value>,
    pub created_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// Base URL links are built from; set per request from its `Host`.
    pub base: String,
    /// Base URL of the listener itself.
    pub own_base: String,
    pub tokens: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
    pub activate_after: Duration,
    pub projects: BTreeMap<String, Project>,
    pub bindings: BTreeMap<String, Value>,
    /// (cluster, name) → namespace.
    pub namespaces: BTreeMap<(String, String), Namespace>,
    /// (cluster, namespace) → the `ResourceQuota` hard limits Kubernetes enforces.
    pub quotas: BTreeMap<(String, String), quantity::ResourceList>,
    /// (cluster, namespace) → the `LimitRange` container defaults.
    pub limit_ranges: BTreeMap<(String, String), Value>,
    pub role_templates: BTreeMap<String, RoleTemplate>,
    /// Projects (`c-…:p-…`) whose `manage-namespaces` verb the token's user lacks.
    pub no_manage_namespaces: BTreeSet<String>,
    pub next_id: u64,
    pub log: Vec<LoggedRequest>,
    pub faults: Vec<Fault>,
    pub latency: Duration,
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A panicking test thread must not hide the log from the others.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running server; stops when dropped.
pub struct RancherServer {
    addr: SocketAddr,
    base: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RancherServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RancherServer {
    /// Starts a plain-HTTP server with the default options on 127.0.0.1.
    pub async fn start() -> RancherServer {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server on an OS-chosen loopback port.
    pub async fn start_with(opts: ServerOptions) -> RancherServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let state: Shared = Arc::new(Mutex::new(Inner {
            base: base.clone(),
            own_base: base.clone(),
            tokens: opts.tokens.iter().cloned().collect(),
            clusters: opts.clusters.iter().cloned().collect(),
            activate_after: opts.activate_after,
            projects: BTreeMap::new(),
            bindings: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            quotas: BTreeMap::new(),
            limit_ranges: BTreeMap::new(),
            role_templates: builtin_role_templates()
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            no_manage_namespaces: BTreeSet::new(),
            next_id: 0,
            log: Vec::new(),
            faults: Vec::new(),
            latency: Duration::ZERO,
        }));
        let app = handlers::router(state.clone());
        let task = match opts.tls {
            Some(ca) => tokio::spawn(tls::serve(listener, app, ca)),
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
        };
        RancherServer {
            addr,
            base,
            state,
            task,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (without `/v3`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes a cluster exist.
    pub fn add_cluster(&self, id: &str) {
        lock(&self.state).clusters.insert(id.to_string());
    }

    /// Adds a namespace to a cluster, optionally inside a project (`c-…:p-…`),
    /// as `kubectl create namespace` with the project annotation would: the
    /// quota controllers then give it the project's defaults.
    pub fn add_namespace(&self, cluster: &str, name: &str, project_id: Option<&str>) {
        let mut annotations = serde_json::Map::new();
        if let Some(p) = project_id {
            annotations.insert(namespaces::PROJECT_ID.into(), Value::String(p.into()));
        }
        self.add_namespace_with(cluster, name, annotations);
    }

    /// Adds a namespace with these annotations (e.g. a quota annotation left
    /// from an older project default), then lets the controllers run.
    pub fn add_namespace_with(
        &self,
        cluster: &str,
        name: &str,
        annotations: serde_json::Map<String, Value>,
    ) {
        let mut s = lock(&self.state);
        let ns = Namespace {
            name: name.into(),
            labels: serde_json::Map::new(),
            annotations,
            created_ms: handlers::now_ms(),
        };
        s.namespaces
            .insert((cluster.to_string(), name.to_string()), ns);
        controllers::namespace_changed(&mut s, cluster, name);
    }

    /// Sets (or, with `None`, removes) one annotation of a namespace, as
    /// `kubectl annotate` would, then lets the controllers run.
    pub fn annotate_namespace(&self, cluster: &str, name: &str, key: &str, value: Option<&str>) {
        let mut s = lock(&self.state);
        if let Some(ns) = s
            .namespaces
            .get_mut(&(cluster.to_string(), name.to_string()))
        {
            match value {
                Some(v) => {
                    ns.annotations.insert(key.into(), Value::String(v.into()));
                }
                None => {
                    ns.annotations.remove(key);
                }
            }
        }
        controllers::namespace_changed(&mut s, cluster, name);
    }

    /// Stores a project as given (fields are kept verbatim, `id` is generated
    /// when absent) and returns its id. For seeding state made "by hand".
    pub fn insert_project(&self, obj: Value) -> String {
        let mut s = lock(&self.state);
        let id = projects::insert_raw(&mut s, obj);
        controllers::project_changed(&mut s, &id);
        id
    }

    /// Stores a binding as given and returns its id.
    pub fn insert_binding(&self, obj: Value) -> String {
        let mut s = lock(&self.state);
        bindings::insert_raw(&mut s, obj)
    }

    /// Adds (or replaces) a role template.
    pub fn add_role_template(&self, role: RoleTemplate) {
        lock(&self.state)
            .role_templates
            .insert(role.id.clone(), role);
    }

    /// Locks or unlocks a role template (`locked: true` in the Rancher UI).
    pub fn set_role_template_locked(&self, id: &str, locked: bool) {
        if let Some(r) = lock(&self.state).role_templates.get_mut(id) {
            r.locked = locked;
        }
    }

    /// Takes the `manage-namespaces` verb on `project_id` from the token's user.
    pub fn deny_manage_namespaces(&self, project_id: &str) {
        lock(&self.state)
            .no_manage_namespaces
            .insert(project_id.to_string());
    }

    /// All projects, as the API would show them.
    pub fn projects(&self) -> Vec<Value> {
        let mut s = lock(&self.state);
        projects::refresh_states(&mut s);
        s.projects.values().map(|p| p.obj.clone()).collect()
    }

    /// One project by id, as the API would show it.
    pub fn project(&self, id: &str) -> Option<Value> {
        self.projects().into_iter().find(|p| p["id"] == id)
    }

    /// All role template bindings.
    pub fn bindings(&self) -> Vec<Value> {
        lock(&self.state).bindings.values().cloned().collect()
    }

    /// One namespace, as the v3 API shows it.
    pub fn namespace(&self, cluster: &str, name: &str) -> Option<Value> {
        let s = lock(&self.state);
        s.namespaces
            .get(&(cluster.to_string(), name.to_string()))
            .map(|ns| namespaces::view(&s.own_base, cluster, ns))
    }

    /// One namespace's annotations as Kubernetes stores them (what Rancher's
    /// controllers read).
    pub fn namespace_annotations(
        &self,
        cluster: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        lock(&self.state)
            .namespaces
            .get(&(cluster.to_string(), name.to_string()))
            .map(|ns| {
                ns.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
    }

    /// The hard limits of the namespace's default `ResourceQuota` (what
    /// Kubernetes enforces), keyed by resource name (`limits.cpu`), values
    /// in canonical form; `None` when there is no quota.
    pub fn resource_quota(&self, cluster: &str, name: &str) -> Option<BTreeMap<String, String>> {
        lock(&self.state)
            .quotas
            .get(&(cluster.to_string(), name.to_string()))
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.canonical())).collect())
    }

    /// The namespace's default `LimitRange` item (`{default: {cpu, memory},
    /// defaultRequest: {…}}`), `None` when there is none.
    pub fn limit_range(&self, cluster: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .limit_ranges
            .get(&(cluster.to_string(), name.to_string()))
            .cloned()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Requests that could change state (not GET/HEAD).
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(LoggedRequest::is_write)
            .collect()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        lock(&self.state).log.clear();
    }

    /// Fails the `n`th request from now (1 = the next one) with `status`.
    pub fn fail_nth(&self, n: usize, status: u16) {
        lock(&self.state).faults.push(Fault {
            method: None,
            path_prefix: None,
            nth: Some(n),
            seen: 0,
            remaining: 1,
            status,
            message: format!("injected failure of request {n}"),
        });
    }

    /// Fails the next `times` requests with this method and path prefix.
    pub fn fail_matching(&self, method: &str, path_prefix: &str, status: u16, times: usize) {
        lock(&self.state).faults.push(Fault {
            method: Some(method.to_uppercase()),
            path_prefix: Some(path_prefix.to_string()),
            nth: None,
            seen: 0,
            remaining: times,
            status,
            message: format!("injected failure of {method} {path_prefix}"),
        });
    }

    /// Delays every answer by `d`.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.state).latency = d;
    }

    /// Removes all faults and latency.
    pub fn clear_faults(&self) {
        let mut s = lock(&self.state);
        s.faults.clear();
        s.latency = Duration::ZERO;
    }
}
