//! An in-memory Rancher v3 API test server.
//!
//! It follows Rancher's wire shapes (norman collections and resources, error
//! bodies `{type:"error", status, code, message}`), bearer-token auth, list
//! filters, project state `initializing` → `active`, the cluster-scoped
//! namespace API with the `field.cattle.io/projectId` annotation, and the
//! namespace `move` action with Rancher's refusal for projects with a quota.
//! Tests drive faults (fail the Nth request, fail matching requests, add
//! latency) and read a request log to prove what a client sent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;

mod handlers;
mod resources;
mod tls;

pub use tls::TestCa;

/// The token every server accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "token-kt3st:s3cr3tvalue0123456789";

/// Built-in project role templates the server knows.
pub const ROLE_TEMPLATES: &[&str] = &[
    "project-owner",
    "project-member",
    "read-only",
    "projectroletemplatebindings-manage",
    "workloads-manage",
];

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

#[derive(Debug)]
pub(crate) struct Inner {
    pub base: String,
    pub tokens: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
    pub activate_after: Duration,
    pub projects: BTreeMap<String, Project>,
    pub bindings: BTreeMap<String, Value>,
    /// (cluster, name) → namespace.
    pub namespaces: BTreeMap<(String, String), Value>,
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
            tokens: opts.tokens.iter().cloned().collect(),
            clusters: opts.clusters.iter().cloned().collect(),
            activate_after: opts.activate_after,
            projects: BTreeMap::new(),
            bindings: BTreeMap::new(),
            namespaces: BTreeMap::new(),
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

    /// Adds a namespace to a cluster, optionally inside a project (`c-…:p-…`).
    pub fn add_namespace(&self, cluster: &str, name: &str, project_id: Option<&str>) {
        let mut s = lock(&self.state);
        let mut body = serde_json::json!({ "name": name });
        if let Some(p) = project_id {
            body["projectId"] = Value::String(p.to_string());
        }
        let ns = handlers::new_namespace(&s.base, cluster, &body);
        s.namespaces
            .insert((cluster.to_string(), name.to_string()), ns);
    }

    /// Stores a project as given (fields are kept verbatim, `id` is generated
    /// when absent) and returns its id. For seeding state made "by hand".
    pub fn insert_project(&self, obj: Value) -> String {
        let mut s = lock(&self.state);
        handlers::insert_project_raw(&mut s, obj)
    }

    /// Stores a binding as given and returns its id.
    pub fn insert_binding(&self, obj: Value) -> String {
        let mut s = lock(&self.state);
        handlers::insert_binding_raw(&mut s, obj)
    }

    /// All projects, as the API would show them.
    pub fn projects(&self) -> Vec<Value> {
        let mut s = lock(&self.state);
        handlers::refresh_states(&mut s);
        s.projects.values().map(|p| p.obj.clone()).collect()
    }

    /// All role template bindings.
    pub fn bindings(&self) -> Vec<Value> {
        lock(&self.state).bindings.values().cloned().collect()
    }

    /// One namespace.
    pub fn namespace(&self, cluster: &str, name: &str) -> Option<Value> {
        lock(&self.state)
            .namespaces
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
