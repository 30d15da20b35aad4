//! Starting, addressing and stopping the server, and the test hooks on it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::faults::{Faults, RequestRecord};
use crate::ops;
use crate::store::Store;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; port 0 lets the OS choose.
    pub listen: SocketAddr,
    /// Time between creating a CRD and it becoming Established (and its resources served).
    pub crd_establish_delay: Duration,
    /// Time between a Deployment write and the server filling in its status.
    pub deployment_ready_delay: Duration,
    /// Time a deleted namespace stays Terminating before it and its content are removed.
    pub namespace_finalize_delay: Duration,
    /// Refuse requests without an `Authorization: Bearer` header (401), as a real cluster would.
    /// Off by default: client-go (kubectl) never sends a bearer token over plain HTTP.
    pub require_token: bool,
    /// How many past events a watch can resume from.
    pub watch_history: usize,
    /// Keep a log of requests for [`TestServer::requests`].
    pub record_requests: bool,
    /// Serve HTTPS with a generated CA (put into the kubeconfig) instead of plain HTTP.
    pub tls: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            crd_establish_delay: Duration::ZERO,
            deployment_ready_delay: Duration::ZERO,
            namespace_finalize_delay: Duration::from_millis(200),
            require_token: false,
            watch_history: 20_000,
            record_requests: true,
            tls: false,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free loopback address such as 127.0.0.1:0")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or configuration could not be made.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The runtime thread of a blocking server failed.
    #[error("cannot start the server's runtime thread: {0}")]
    Runtime(String),
}

/// A group/version/resource, e.g. `apps/v1/deployments` or `v1/configmaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gvr {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource.
    pub resource: String,
}

impl Gvr {
    /// Build from parts.
    pub fn new(group: &str, version: &str, resource: &str) -> Gvr {
        Gvr {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }

    /// Parse `apps/v1/deployments` or `v1/configmaps`.
    pub fn parse(s: &str) -> Gvr {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [v, r] => Gvr::new("", v, r),
            [g, v, r] => Gvr::new(g, v, r),
            _ => Gvr::new("", "v1", s),
        }
    }
}

pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Faults,
    pub log: Mutex<Vec<RequestRecord>>,
    pub opts: ServerOptions,
    pub shutdown: watch::Receiver<bool>,
    /// Bumped by [`TestServer::close_watches`]; open watches end when it changes.
    pub close_watches: watch::Sender<u64>,
    pub addr: String,
}

impl Shared {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run controller follow-ups: at once when their delay is zero, else on a timer.
    pub fn run_followups(self: &Arc<Self>, followups: Vec<ops::Followup>) {
        for f in followups {
            let delay = match f {
                ops::Followup::WorkloadStatus(_) => self.opts.deployment_ready_delay,
                ops::Followup::EstablishCrd(_) => self.opts.crd_establish_delay,
                ops::Followup::FinalizeNamespace(_) => self.opts.namespace_finalize_delay,
            };
            if delay.is_zero() {
                self.run_followup(&f);
            } else {
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    me.run_followup(&f);
                });
            }
        }
    }

    pub fn run_followup(&self, f: &ops::Followup) {
        let mut store = self.store();
        match f {
            ops::Followup::WorkloadStatus(key) => {
                crate::controllers::workload_status(&mut store, key);
            }
            ops::Followup::EstablishCrd(name) => {
                crate::controllers::establish_crd(&mut store, name);
            }
            ops::Followup::FinalizeNamespace(name) => ops::finalize_namespace(&mut store, name),
        }
    }
}

struct RuntimeThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A running test server. Dropping it stops it.
pub struct TestServer {
    url: String,
    pub(crate) shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    runtime: Option<RuntimeThread>,
    ca_pem: Option<String>,
}

impl TestServer {
    /// Start on 127.0.0.1 with an OS-chosen port and default options.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> TestServer {
        match Self::start_with(ServerOptions::default()).await {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// Start with options, on the current tokio runtime.
    pub async fn start_with(opts: ServerOptions) -> Result<TestServer, StartError> {
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen,
            source,
        })?;
        let tls = if opts.tls {
            Some(crate::tls::generate()?)
        } else {
            None
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(opts.watch_history)),
            faults: Faults::default(),
            log: Mutex::new(Vec::new()),
            opts,
            shutdown: shutdown_rx.clone(),
            close_watches: watch::channel(0).0,
            addr: addr.to_string(),
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let acceptor = tls.map(|t| t.acceptor);
        tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx, acceptor));
        Ok(TestServer {
            url: format!("{scheme}://{addr}"),
            shared,
            shutdown_tx,
            runtime: None,
            ca_pem,
        })
    }

    /// Start on a runtime thread of its own, for synchronous tests and benchmarks.
    ///
    /// # Panics
    /// If the server cannot start.
    pub fn start_blocking() -> TestServer {
        match Self::start_blocking_with(ServerOptions::default()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`TestServer::start_blocking`] with options.
    pub fn start_blocking_with(opts: ServerOptions) -> Result<TestServer, StartError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kube-apiserver".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(StartError::Runtime(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    let started = TestServer::start_with(opts).await;
                    let ok = started.is_ok();
                    let _ = tx.send(started);
                    if ok {
                        let _ = stop_rx.await;
                    }
                });
            })
            .map_err(|e| StartError::Runtime(e.to_string()))?;
        let mut srv = rx
            .recv()
            .map_err(|e| StartError::Runtime(e.to_string()))??;
        srv.runtime = Some(RuntimeThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        });
        Ok(srv)
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the server certificate, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A kubeconfig whose current context `test` points at this server with a bearer token
    /// (and, over HTTPS, the CA as `certificate-authority-data`).
    pub fn kubeconfig(&self) -> String {
        use base64::Engine;
        let ca = match &self.ca_pem {
            Some(pem) => format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}{ca}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\nusers:\n- name: test\n  user:\n    token: keelson-test-token\n",
            self.url
        )
    }

    /// Write [`TestServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Stop serving; open watches end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(mut rt) = self.runtime.take() {
            if let Some(s) = rt.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = rt.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let conn_stop = shutdown.clone();
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut stop = conn_stop;
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { crate::api::handle(shared, req).await }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            tokio::select! {
                                _ = conn => {}
                                _ = stop.wait_for(|s| *s) => {}
                            }
                        }
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            tokio::select! {
                                _ = conn => {}
                                _ = stop.wait_for(|s| *s) => {}
                            }
                        }
                    }
                });
            }
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_handle_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TestServer>();
        send_sync::<Faults>();
    }

    #[test]
    fn gvr_parsing() {
        assert_eq!(
            Gvr::parse("apps/v1/deployments"),
            Gvr::new("apps", "v1", "deployments")
        );
        assert_eq!(
            Gvr::parse("v1/configmaps"),
            Gvr::new("", "v1", "configmaps")
        );
    }
}
