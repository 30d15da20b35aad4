//! The controller's core: settings, shared state, the source loop that turns
//! new commits into per-environment work, and the start/stop handle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::lease::Leases;
use super::metrics::Metrics;
use super::report::{Reporter, ReporterConfig};
use super::worker::{self, EnvSlot};
use super::{EnvReconciler, server, watch};
use crate::backup::{BackupStatusHandle, SystemClock, run_schedules};
use crate::config::Config;
use crate::record::{Store, StoreError, now_rfc3339};
use crate::source::{Affected, Checkout, CommitInfo, GitSource, RepoSpec, Secret, SourceError};

/// Everything the controller needs to run, resolved from the config file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Repository, branch and credentials.
    pub repo: RepoSpec,
    /// Mirror, exported trees and the status store live here.
    pub state_dir: PathBuf,
    /// How often to fetch.
    pub poll_interval: Duration,
    /// How often to re-check each environment for drift.
    pub drift_interval: Duration,
    /// Re-apply on drift instead of only reporting it.
    pub self_heal: bool,
    /// Environments reconciled at the same time.
    pub max_parallel: usize,
    /// Address of the HTTP server (port 0 picks a free one).
    pub listen: SocketAddr,
    /// First retry delay after a failure; doubles per failure.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Secret that push webhooks must be signed with.
    pub webhook_secret: Option<Secret>,
    /// Where to post commit statuses, if anywhere.
    pub commit_status: Option<ReporterConfig>,
    /// Watch a local repository for changes (ignored for remote URLs).
    pub watch_local: bool,
    /// The whole config, when some cluster has an etcd backup schedule: the
    /// schedules then run inside the controller.
    pub backups: Option<Arc<Config>>,
    /// Share the environments with other replicas through Leases
    /// (`controller.leases`); `None`: this process is the only writer.
    pub leases: Option<super::lease_config::LeaseSettings>,
    /// Previews from merge requests and their time-to-live
    /// ([`super::previews`]); `None`: off.
    pub previews: Option<Arc<super::previews::PreviewSettings>>,
}

impl Settings {
    /// Defaults: poll 1m, drift 5m, 4 in parallel, `127.0.0.1:8080`.
    pub fn new(repo: RepoSpec, state_dir: PathBuf) -> Settings {
        Settings {
            repo,
            state_dir,
            poll_interval: Duration::from_secs(60),
            drift_interval: Duration::from_secs(300),
            self_heal: false,
            max_parallel: 4,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            retry_base: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            webhook_secret: None,
            commit_status: None,
            watch_local: true,
            backups: None,
            leases: None,
            previews: None,
        }
    }
}

/// Errors that stop the controller from starting.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The status store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Git mirror could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}. Pick another `controller.listen` address")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The local repository could not be watched.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// Repository path.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

/// Where the Git source stands, as shown in `/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// Repository URL or path.
    pub url: String,
    /// Branch.
    pub branch: String,
    /// The commit being served.
    pub head: Option<CommitInfo>,
    /// RFC 3339 time of the last successful fetch.
    pub last_fetch: Option<String>,
    /// The last fetch error, while fetches fail.
    pub error: Option<String>,
    /// Fetches failed in a row.
    pub consecutive_errors: u32,
    /// The remote did not advertise the followed branch at the last fetch
    /// (deleted or renamed). The last fetched commit stays applied, and
    /// nothing is pruned because of it.
    #[serde(default)]
    pub branch_missing: bool,
}

/// State shared by the source loop, the workers and the HTTP server.
pub(crate) struct Shared {
    pub settings: Settings,
    pub store: Store,
    pub metrics: Metrics,
    pub source: Mutex<SourceStatus>,
    pub trigger: Arc<Notify>,
    /// Wakes the preview loop (merge request webhooks, new commits).
    pub preview_trigger: Notify,
    pub shutdown: CancellationToken,
    pub envs: Mutex<BTreeMap<String, Arc<EnvSlot>>>,
    pub head_known: AtomicBool,
    pub permits: Semaphore,
    pub reporter: Option<Reporter>,
    pub backups: Option<BackupStatusHandle>,
    /// Leases and membership, when replicas share the environments.
    pub coord: Option<Coordination>,
    /// The newest exported commit, handed to environments this replica
    /// comes to own.
    pub head: Mutex<Option<Arc<Checkout>>>,
    /// Environment Lease terms held now (released at the end of each sync,
    /// or all at once when a shutdown runs out of time).
    pub held: Mutex<Vec<Arc<super::lease::Term>>>,
}

/// How this replica coordinates with the others.
pub(crate) struct Coordination {
    /// Environment and member Leases, held as this replica's identity.
    pub leases: Arc<Leases>,
    /// The live members, sorted (empty while we are no member).
    pub members: tokio::sync::watch::Receiver<Vec<String>>,
    /// Every environment's status, in the cluster.
    pub status: crate::record::kube::ClusterStatus,
}

impl Shared {
    /// Whether this replica reconciles `env`: always without coordination,
    /// else when the rendezvous hash over the live members picks us.
    pub fn owns(&self, env: &str) -> bool {
        match &self.coord {
            None => true,
            Some(c) => {
                let members = c.members.borrow();
                super::shard::owner(env, &members) == Some(c.leases.identity())
            }
        }
    }

    /// Ready once a commit is known, we are a member (with coordination),
    /// and every environment we own had its first attempt.
    pub fn is_ready(&self) -> Result<(), String> {
        if self.shutdown.is_cancelled() {
            return Err("shutting down".into());
        }
        if !self.head_known.load(Ordering::SeqCst) {
            return Err("no commit fetched yet".into());
        }
        if let Some(c) = &self.coord
            && c.members.borrow().is_empty()
        {
            return Err("not a member yet (member lease not held)".into());
        }
        let envs = self.envs.lock().unwrap_or_else(|p| p.into_inner());
        let waiting: Vec<&str> = envs
            .values()
            .filter(|s| self.owns(&s.name))
            .filter(|s| !s.first_done.load(Ordering::SeqCst))
            .map(|s| s.name.as_str())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("first sync pending for: {}", waiting.join(", ")))
        }
    }

    fn set_source(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut self.source.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The exponential delay after `failures` failures in a row.
pub(crate) fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(max.max(base))
}

/// A controller, ready to start.
pub struct Controller<R> {
    settings: Settings,
    reconciler: R,
    leases: Option<Arc<Leases>>,
}

/// A started controller.
pub struct Running {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl<R: EnvReconciler> Controller<R> {
    /// A controller with these settings and pipeline.
    pub fn new(settings: Settings, reconciler: R) -> Self {
        Controller {
            settings,
            reconciler,
            leases: None,
        }
    }

    /// Share the environments with other replicas through `leases`: hold a
    /// member Lease, reconcile only the environments the rendezvous hash
    /// gives us, and write to one only while holding its Lease.
    pub fn with_leases(mut self, leases: Arc<Leases>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Open the store and the mirror, bind the HTTP server and start syncing.
    pub async fn start(self) -> Result<Running, ControllerError> {
        let settings = self.settings;
        std::fs::create_dir_all(&settings.state_dir).map_err(|e| StoreError::Io {
            path: settings.state_dir.clone(),
            message: format!("cannot create the state directory: {e}"),
        })?;
        let store = Store::open(&settings.state_dir)?;
        let (spec, dir) = (settings.repo.clone(), settings.state_dir.clone());
        let source = tokio::task::spawn_blocking(move || GitSource::open(spec, &dir))
            .await
            .expect("opening the mirror does not panic")?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ControllerError::Listen {
                addr: settings.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ControllerError::Listen {
                addr: settings.listen,
                source,
            })?;
        let shutdown = CancellationToken::new();
        let mut membership = None;
        let coord = self.leases.map(|leases| {
            let (tx, rx) = tokio::sync::watch::channel(Vec::new());
            membership = Some(tokio::spawn(super::shard::run_membership(
                leases.clone(),
                tx,
                shutdown.clone(),
            )));
            Coordination {
                status: crate::record::kube::ClusterStatus::new(
                    leases.client(),
                    leases.namespace(),
                ),
                leases,
                members: rx,
            }
        });
        let shared = Arc::new(Shared {
            coord,
            head: Mutex::new(None),
            held: Mutex::new(Vec::new()),
            metrics: Metrics::default(),
            source: Mutex::new(SourceStatus {
                url: settings.repo.display_url(),
                branch: settings.repo.branch.clone(),
                ..SourceStatus::default()
            }),
            trigger: Arc::new(Notify::new()),
            preview_trigger: Notify::new(),
            shutdown,
            envs: Mutex::new(BTreeMap::new()),
            head_known: AtomicBool::new(false),
            permits: Semaphore::new(settings.max_parallel.max(1)),
            reporter: settings.commit_status.clone().map(Reporter::new),
            backups: settings.backups.as_ref().map(|_| BackupStatusHandle::new()),
            store,
            settings,
        });
        let watcher = match shared.settings.repo.local_path() {
            Some(path) if shared.settings.watch_local => Some(
                watch::spawn(
                    &path,
                    &shared.settings.state_dir,
                    shared.trigger.clone(),
                    shared.shutdown.clone(),
                )
                .map_err(|e| ControllerError::Watch {
                    path,
                    message: e.to_string(),
                })?,
            ),
            _ => None,
        };
        info!(%addr, url = %shared.settings.repo.display_url(), branch = %shared.settings.repo.branch, "keelson controller started");
        // The server outlives the workers: /healthz answers while syncs drain.
        let server_stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(listener, shared.clone(), server_stop.clone()));
        let backups = match (&shared.settings.backups, &shared.backups) {
            (Some(config), Some(handle)) => {
                info!("running the etcd backup schedules");
                Some(tokio::spawn(run_schedules(
                    config.clone(),
                    Arc::new(SystemClock),
                    handle.clone(),
                    shared.shutdown.clone(),
                )))
            }
            _ => None,
        };
        let previews = shared
            .settings
            .previews
            .clone()
            .map(|p| tokio::spawn(super::previews::run(shared.clone(), p)));
        let rebalance = shared
            .coord
            .as_ref()
            .map(|_| tokio::spawn(rebalance(shared.clone())));
        let looped = tokio::spawn(source_loop(
            shared.clone(),
            Arc::new(self.reconciler),
            Arc::new(Mutex::new(source)),
        ));
        let task = tokio::spawn(async move {
            let _ = looped.await;
            server_stop.cancel();
            let _ = server.await;
            if let Some(w) = watcher {
                let _ = w.await;
            }
            if let Some(b) = backups {
                let _ = b.await;
            }
            if let Some(r) = rebalance {
                let _ = r.await;
            }
            if let Some(p) = previews {
                let _ = p.await;
            }
            if let Some(m) = membership {
                let _ = m.await;
            }
        });
        Ok(Running { addr, shared, task })
    }
}

impl Running {
    /// The address the HTTP server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Fetch now, as a webhook would.
    pub fn trigger(&self) {
        self.shared.trigger.notify_one();
    }

    /// Stop: no new syncs start, in-flight ones finish, the server drains.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Wait until the controller has stopped (after [`Running::shutdown`]).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stop within `deadline` (SIGTERM): take no new work, hand the member
    /// Lease over at once, let in-flight syncs finish; if they have not by
    /// the deadline, refuse their further writes, wait `grace` for writes
    /// already sent, and release their environment Leases so another replica
    /// takes over now rather than a Lease duration later. Returns whether
    /// everything finished in time. `/healthz` answers until the end.
    pub async fn stop_within(self, deadline: Duration, grace: Duration) -> bool {
        self.shutdown();
        let shared = self.shared.clone();
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_ok() {
            return true;
        }
        let held: Vec<_> = shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        warn!(
            leases = held.len(),
            "shutdown deadline reached: abandoning in-flight syncs"
        );
        for t in &held {
            t.stop().await;
        }
        tokio::time::sleep(grace).await;
        for t in &held {
            t.release().await;
        }
        task.abort();
        false
    }
}

async fn blocking<T: Send + 'static>(
    source: &Arc<Mutex<GitSource>>,
    f: impl FnOnce(&mut GitSource) -> T + Send + 'static,
) -> T {
    let source = source.clone();
    tokio::task::spawn_blocking(move || f(&mut source.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .expect("git operations do not panic")
}

async fn source_loop<R: EnvReconciler>(
    shared: Arc<Shared>,
    reconciler: Arc<R>,
    source: Arc<Mutex<GitSource>>,
) {
    let mut workers = JoinSet::new();
    let mut head: Option<Arc<Checkout>> = None;
    let mut failures = 0u32;
    let s = &shared.settings;
    loop {
        let fetched = blocking(&source, |g| g.fetch()).await;
        let branch_missing = matches!(fetched, Err(SourceError::NoBranch { .. }));
        shared
            .metrics
            .observe_fetch(fetched.is_ok(), branch_missing);
        let commit = match fetched {
            Ok(c) => {
                failures = 0;
                shared.set_source(|st| {
                    if st.branch_missing {
                        info!(branch = %s.repo.branch, "the followed branch is back on the remote");
                    }
                    st.last_fetch = Some(now_rfc3339());
                    st.error = None;
                    st.consecutive_errors = 0;
                    st.branch_missing = false;
                });
                Some(c)
            }
            Err(e) => {
                failures += 1;
                if branch_missing {
                    error!(error = %e, failures, "the followed branch is gone from the remote; keeping the last fetched commit applied");
                } else {
                    warn!(error = %e, failures, "git fetch failed");
                }
                shared.set_source(|st| {
                    st.error = Some(e.to_string());
                    st.consecutive_errors = failures;
                    st.branch_missing = branch_missing;
                });
                // Serve the last fetched commit (from a previous run) while the remote is away.
                if head.is_none() {
                    blocking(&source, |g| g.local_head()).await
                } else {
                    None
                }
            }
        };
        if let Some(c) = commit.filter(|c| head.as_ref().is_none_or(|h| h.commit.id != c.id)) {
            match advance(
                &shared,
                &reconciler,
                &source,
                head.as_deref(),
                &c,
                &mut workers,
            )
            .await
            {
                Ok(checkout) => head = Some(checkout),
                Err(e) => {
                    error!(error = %e, commit = %c.id, "cannot read the new commit");
                    shared.set_source(|st| st.error = Some(e.to_string()));
                }
            }
        }
        let delay = if failures == 0 {
            s.poll_interval
        } else {
            backoff(failures, s.poll_interval, s.max_backoff)
        };
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = shared.trigger.notified() => debug!("fetch triggered"),
            _ = tokio::time::sleep(delay) => {}
        }
    }
    info!("shutting down: waiting for in-flight syncs");
    while workers.join_next().await.is_some() {}
    info!("all environment workers stopped");
}

/// Move to commit `c`: export it, start workers for new environments and hand
/// the commit to every environment it affects.
async fn advance<R: EnvReconciler>(
    shared: &Arc<Shared>,
    reconciler: &Arc<R>,
    source: &Arc<Mutex<GitSource>>,
    prev: Option<&Checkout>,
    c: &CommitInfo,
    workers: &mut JoinSet<()>,
) -> Result<Arc<Checkout>, SourceError> {
    let id = c.id.clone();
    let checkout = Arc::new(blocking(source, move |g| g.export(&id)).await?);
    let affected = match prev {
        None => Affected::All,
        Some(p) => {
            let (from, to) = (p.commit.id.clone(), c.id.clone());
            match blocking(source, move |g| g.changed_paths(&from, &to)).await {
                Ok(paths) => {
                    let (r, old, new) = (reconciler.clone(), p.path.clone(), checkout.path.clone());
                    // Checking trees is CPU work on files.
                    tokio::task::spawn_blocking(move || r.affected(&old, &new, &paths))
                        .await
                        .unwrap_or(Affected::All)
                }
                Err(e) => {
                    warn!(error = %e, "cannot diff against the previous commit; re-rendering every environment");
                    Affected::All
                }
            }
        }
    };
    let present = reconciler.environments(&checkout.path);
    info!(commit = %c.id, author = %c.author, summary = %c.summary, affected = ?affected, "new commit");
    let mut new_slots = Vec::new();
    {
        let envs = shared.envs.lock().unwrap_or_else(|p| p.into_inner());
        for env in &present {
            if !envs.contains_key(env) {
                new_slots.push(env.clone());
            }
        }
    }
    for env in &new_slots {
        let good = last_good_checkout(shared, source, env).await;
        let slot = Arc::new(EnvSlot::new(env));
        shared
            .envs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(env.clone(), slot.clone());
        slot.set_target(checkout.clone());
        workers.spawn(worker::run(shared.clone(), reconciler.clone(), slot, good));
    }
    let envs = shared.envs.lock().unwrap_or_else(|p| p.into_inner());
    for (name, slot) in envs.iter() {
        if affected.contains(name) && !new_slots.contains(name) {
            slot.set_target(checkout.clone());
        }
    }
    drop(envs);
    if let Err(e) = shared.store.set_meta("head", &c.id) {
        warn!(error = %e, "cannot record the head commit");
    }
    shared.set_source(|st| st.head = Some(c.clone()));
    *shared.head.lock().unwrap_or_else(|p| p.into_inner()) = Some(checkout.clone());
    shared.head_known.store(true, Ordering::SeqCst);
    shared.preview_trigger.notify_one();
    Ok(checkout)
}

/// When the members change, hand the head commit to every environment this
/// replica has come to own (its previous owner may have died mid-apply), and
/// wake the preview loop, whose source may have come to this replica too.
async fn rebalance(shared: Arc<Shared>) {
    let Some(coord) = &shared.coord else { return };
    let mut members = coord.members.clone();
    let mut owned: std::collections::BTreeSet<String> = Default::default();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            changed = members.changed() => if changed.is_err() { return },
        }
        let head = shared
            .head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let envs: Vec<Arc<EnvSlot>> = shared
            .envs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut now_owned = std::collections::BTreeSet::new();
        let mut gained = 0;
        for slot in envs {
            if !shared.owns(&slot.name) {
                continue;
            }
            now_owned.insert(slot.name.clone());
            if !owned.contains(&slot.name)
                && let Some(h) = &head
            {
                slot.set_target(h.clone());
                gained += 1;
            }
        }
        let lost = owned.difference(&now_owned).count();
        info!(
            owned = now_owned.len(),
            gained, lost, "environments rebalanced"
        );
        owned = now_owned;
        // The merge request source may have moved here too (its owner is
        // picked among the members like an environment's): the preview loop
        // looks at once rather than after its interval.
        shared.preview_trigger.notify_one();
    }
}

/// The tree of the last commit applied to `env` in an earlier run, so drift
/// checks keep using it while newer commits are invalid.
async fn last_good_checkout(
    shared: &Shared,
    source: &Arc<Mutex<GitSource>>,
    env: &str,
) -> Option<Arc<Checkout>> {
    let commit = shared.store.status(env).ok()??.last_applied?.commit;
    match blocking(source, move |g| g.export(&commit)).await {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            debug!(env, error = %e, "last applied commit is not in the mirror");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(2), Duration::from_secs(30));
        let delays: Vec<u64> = (1..=6).map(|n| backoff(n, base, max).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);
        // A huge failure count neither overflows nor exceeds the cap.
        assert_eq!(backoff(u32::MAX, base, max), max);
    }
}
