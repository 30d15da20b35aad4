//! Apply a plan: server-side apply in dependency order (namespaces and CRDs
//! first, waiting for each CRD to be Established; then config, services,
//! workloads), deletions in reverse, bounded parallelism within a step,
//! retries with backoff, and a wait for workload health.
//!
//! Each update first takes manual managers' fields over (when the plan saw
//! any), and each write is checked against what the plan promised
//! ([`verify`]). A step holding a change the server refused in its dry run
//! is not started: it cannot succeed, and starting it half-applies the
//! environment.

pub mod confirm;
pub mod health;
pub mod verify;

use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value as Json;

use crate::observe::{Cluster, ClusterError, Resource};
use crate::plan::takeover::takeover_patch;
use crate::plan::{Action, Change, FIELD_MANAGER, ObjectId, Plan};
use crate::render::kind_rank;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Objects applied at once within one step.
    pub parallelism: usize,
    /// Attempts per request on retryable errors.
    pub attempts: u32,
    /// First backoff; doubles per attempt.
    pub backoff: Duration,
    /// How long to wait for CRDs and workloads.
    pub timeout: Duration,
    /// Wait for workload health after applying.
    pub wait_health: bool,
    /// How often to poll while waiting.
    pub poll: Duration,
    /// The longest single wait between two attempts, whatever the backoff
    /// or the server's `Retry-After` say.
    pub max_backoff: Duration,
    /// No wait extends past this instant (set from `timeout` when an
    /// environment's apply starts; see [`ApplyOptions::started`]).
    pub deadline: Option<tokio::time::Instant>,
}

impl ApplyOptions {
    /// These options with the deadline set `timeout` from now, unless one is
    /// set already.
    pub fn started(&self) -> ApplyOptions {
        ApplyOptions {
            deadline: Some(
                self.deadline
                    .unwrap_or_else(|| tokio::time::Instant::now() + self.timeout),
            ),
            ..self.clone()
        }
    }

    /// The instant waits must end by: the deadline, else `timeout` from now.
    pub fn wait_until(&self) -> tokio::time::Instant {
        self.deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + self.timeout)
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 8,
            attempts: 5,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(300),
            wait_health: true,
            poll: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
            deadline: None,
        }
    }
}

/// The result of one object's write.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    /// Which object.
    pub id: ObjectId,
    /// What was done.
    pub action: Action,
    /// The error, if it failed or was not attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requests made (more than one when retried).
    pub attempts: u32,
}

/// The result of applying a plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// One entry per write, in the order they finished.
    pub results: Vec<ObjectResult>,
    /// Health of the workloads touched.
    pub health: Vec<health::WorkloadHealth>,
}

impl ApplyReport {
    /// Whether any write failed or any workload is neither healthy nor
    /// suspended (degraded, or still progressing at the timeout).
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.error.is_some()) || self.health.iter().any(|h| !h.is_ok())
    }

    /// A one-line account of failures, for summaries.
    pub fn failure_summary(&self) -> Option<String> {
        let errors: Vec<String> = self
            .results
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.id)))
            .chain(
                self.health
                    .iter()
                    .filter(|h| !h.is_ok())
                    .map(|h| format!("{} {}: {}", h.id, h.health, h.reason)),
            )
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

/// Run `f` with retries on retryable errors ([`ClusterError::retryable`]),
/// at most `attempts` times. Each wait is the exponential backoff, or the
/// server's `Retry-After` when it gives one, capped by `max_backoff`; a wait
/// that would pass the deadline is not made, and the last error is returned
/// with a note saying so. A server that cannot be reached at all is tried
/// again only while the backoff is short: it is not there, and every later
/// request would fail the same way.
pub async fn with_retries<T, F, Fut>(
    opts: &ApplyOptions,
    mut f: F,
) -> (Result<T, ClusterError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let until = opts.wait_until();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Err(e) if e.retryable() && attempt < attempts_for(&e, opts) => {
                let backoff = opts
                    .backoff
                    .saturating_mul(2u32.saturating_pow(attempt - 1));
                let delay = e.retry_after().unwrap_or(backoff).min(opts.max_backoff);
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                if delay > left {
                    let note = match e.retry_after() {
                        Some(ra) => format!(
                            " (not retried: the server asked to wait {}s, past the timeout)",
                            ra.as_secs()
                        ),
                        None => " (not retried: the timeout is reached)".to_string(),
                    };
                    return (Err(e.noted(&note)), attempt);
                }
                tracing::debug!(error = %e, attempt, "retrying after {delay:?}");
                tokio::time::sleep(delay).await;
            }
            other => return (other, attempt),
        }
    }
}

/// Attempts for an error: a server that refuses connections gets three
/// quick tries (it may be restarting), not the full count.
fn attempts_for(e: &ClusterError, opts: &ApplyOptions) -> u32 {
    if e.unreachable() {
        opts.attempts.min(3)
    } else {
        opts.attempts
    }
}

/// Set once a request finds the API server unreachable: the writes still
/// queued are not attempted, instead of each retrying on its own.
#[derive(Debug, Default)]
struct Reachability(std::sync::atomic::AtomicBool);

impl Reachability {
    fn gone(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note(&self, e: &ClusterError) {
        if e.unreachable() {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Apply `plan` (which must not be refused).
pub async fn apply_plan<C: Cluster>(cluster: &C, plan: &Plan, opts: &ApplyOptions) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut writes: Vec<&Change> = plan.changes.iter().filter(|c| c.apply.is_some()).collect();
    writes.sort_by_key(|c| kind_rank(&c.id.kind));
    let mut deletes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    deletes.sort_by_key(|c| std::cmp::Reverse(kind_rank(&c.id.kind)));

    let mut failed = false;
    let reach = Reachability::default();
    for step in steps(&writes) {
        if !failed && step.iter().any(|c| c.intent.refused.is_some()) {
            // Known to fail: nothing of this step or after it is started.
            failed = true;
            report
                .results
                .extend(step.iter().map(|c| match &c.intent.refused {
                    Some(e) => ObjectResult {
                        id: c.id.clone(),
                        action: c.action,
                        error: Some(format!(
                            "not applied: the server refused it in a dry run: {e}"
                        )),
                        attempts: 0,
                    },
                    None => not_attempted(c),
                }));
            continue;
        }
        if failed {
            report.results.extend(step.iter().map(|c| not_attempted(c)));
            continue;
        }
        let mut futures = Vec::with_capacity(step.len());
        for c in &step {
            futures.push(write_one(cluster, c, &plan.manual_managers, opts, &reach));
        }
        let results = bounded(futures, opts.parallelism).await;
        failed = results.iter().any(|r| r.error.is_some());
        report.results.extend(results);
        if !failed {
            for crd in step
                .iter()
                .filter(|c| c.id.kind == "CustomResourceDefinition")
            {
                if let Err(e) = health::wait_crd_established(cluster, &crd.id.name, opts).await {
                    failed = true;
                    report.results.push(ObjectResult {
                        id: crd.id.clone(),
                        action: crd.action,
                        error: Some(e),
                        attempts: 0,
                    });
                }
            }
        }
    }
    for step in steps(&deletes) {
        if failed {
            report.results.extend(step.iter().map(|c| not_attempted(c)));
            continue;
        }
        let mut futures = Vec::with_capacity(step.len());
        for c in &step {
            futures.push(delete_one(cluster, c, opts, &reach));
        }
        let results = bounded(futures, opts.parallelism).await;
        failed = results.iter().any(|r| r.error.is_some());
        report.results.extend(results);
    }
    if opts.wait_health && !failed {
        let workloads: Vec<&ObjectId> = writes
            .iter()
            .filter(|c| health::is_workload(&c.id.kind))
            .map(|c| &c.id)
            .collect();
        let checks = workloads
            .iter()
            .map(|id| health::wait_workload(cluster, id, opts));
        report.health = futures::future::join_all(checks).await;
    }
    report
}

/// Run `futures`, at most `limit` at a time.
async fn bounded<F: std::future::Future<Output = ObjectResult>>(
    futures: Vec<F>,
    limit: usize,
) -> Vec<ObjectResult> {
    stream::iter(futures)
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

/// Consecutive changes of the same kind rank form one step.
fn steps<'a>(changes: &[&'a Change]) -> Vec<Vec<&'a Change>> {
    let mut out: Vec<Vec<&Change>> = Vec::new();
    for c in changes {
        match out.last_mut() {
            Some(step) if kind_rank(&step[0].id.kind) == kind_rank(&c.id.kind) => step.push(c),
            _ => out.push(vec![c]),
        }
    }
    out
}

fn not_attempted(c: &Change) -> ObjectResult {
    ObjectResult {
        id: c.id.clone(),
        action: c.action,
        error: Some("not attempted: an earlier step failed".into()),
        attempts: 0,
    }
}

fn unreachable_result(c: &Change) -> ObjectResult {
    ObjectResult {
        id: c.id.clone(),
        action: c.action,
        error: Some("not attempted: the API server is unreachable".into()),
        attempts: 0,
    }
}

async fn write_one<C: Cluster>(
    cluster: &C,
    c: &Change,
    manual: &[String],
    opts: &ApplyOptions,
    reach: &Reachability,
) -> ObjectResult {
    if reach.gone() {
        return unreachable_result(c);
    }
    let body = c.apply.as_ref().expect("writes have a body");
    let mut deleted = 0;
    if c.action == Action::Replace {
        match delete_and_wait(cluster, c, opts, reach).await {
            (Ok(()), n) => deleted = n,
            (Err(e), attempts) => {
                return ObjectResult {
                    id: c.id.clone(),
                    action: c.action,
                    error: Some(format!("replace: {e}")),
                    attempts,
                };
            }
        }
    }
    let (result, attempts) = with_retries(opts, || async {
        let res = cluster.resource(&c.id.api_version, &c.id.kind).await?;
        if c.intent.takeover {
            take_over(cluster, &res, c, manual).await?;
        }
        cluster.apply(&res, body, false).await
    })
    .await;
    if let Err(e) = &result {
        reach.note(e);
    }
    let error = match result {
        Ok(stored) => verify::check(c, body, &stored).err(),
        Err(e) if c.action == Action::Replace => {
            Some(format!("replace: deleted, but not created again: {e}"))
        }
        Err(e) => Some(e.to_string()),
    };
    ObjectResult {
        id: c.id.clone(),
        action: c.action,
        error,
        attempts: attempts + deleted,
    }
}

/// The first half of a replacement: delete the object (background
/// propagation: its dependents are collected after it, as `kubectl replace
/// --force` does), then wait until it is gone, finalizers run, so that the
/// create that follows makes a new object rather than meeting the old one.
/// Returns the requests made, and why it failed.
async fn delete_and_wait<C: Cluster>(
    cluster: &C,
    c: &Change,
    opts: &ApplyOptions,
    reach: &Reachability,
) -> (Result<(), String>, u32) {
    let failed = |what: &str, e: ClusterError, n| {
        reach.note(&e);
        (Err(format!("{what}: {e}")), n)
    };
    let (res, attempts) = with_retries(opts, || async {
        let res = cluster.resource(&c.id.api_version, &c.id.kind).await?;
        let ns = res.namespaced.then_some(c.id.namespace.as_str());
        cluster.delete(&res, ns, &c.id.name, false).await?;
        Ok(res)
    })
    .await;
    let res = match res {
        Ok(res) => res,
        Err(e) => return failed("not deleted", e, attempts),
    };
    let ns = res.namespaced.then_some(c.id.namespace.as_str());
    let until = opts.wait_until();
    let poll = opts.poll.min(Duration::from_millis(500));
    let mut n = attempts;
    loop {
        n += 1;
        let live = match cluster.get(&res, ns, &c.id.name).await {
            Ok(live) => live,
            Err(e) => return failed("deleted, then not read again", e, n),
        };
        let Some(live) = live else {
            return (Ok(()), n);
        };
        if tokio::time::Instant::now() + poll > until {
            let finalizers = live
                .pointer("/metadata/finalizers")
                .map(Json::to_string)
                .unwrap_or_else(|| "none".into());
            return (
                Err(format!(
                    "deleted, but still there at the timeout (finalizers: {finalizers}); \
                     not created again"
                )),
                n,
            );
        }
        tokio::time::sleep(poll).await;
    }
}

/// Move the fields manual managers own into keelson's apply entry, read
/// from the object as it is now; a concurrent write fails the patch's
/// resourceVersion precondition (409), and the retry reads again.
async fn take_over<C: Cluster>(
    cluster: &C,
    res: &Resource,
    c: &Change,
    manual: &[String],
) -> Result<(), ClusterError> {
    let ns = res.namespaced.then_some(c.id.namespace.as_str());
    let Some(live) = cluster.get(res, ns, &c.id.name).await? else {
        return Ok(());
    };
    if let Some(patch) = takeover_patch(&live, FIELD_MANAGER, manual, &c.intent.exempt) {
        cluster.merge_patch(res, ns, &c.id.name, &patch).await?;
    }
    Ok(())
}

async fn delete_one<C: Cluster>(
    cluster: &C,
    c: &Change,
    opts: &ApplyOptions,
    reach: &Reachability,
) -> ObjectResult {
    if reach.gone() {
        return unreachable_result(c);
    }
    let (result, attempts) = with_retries(opts, || async {
        let res = cluster.resource(&c.id.api_version, &c.id.kind).await?;
        let ns = res.namespaced.then_some(c.id.namespace.as_str());
        cluster.delete(&res, ns, &c.id.name, false).await
    })
    .await;
    if let Err(e) = &result {
        reach.note(e);
    }
    ObjectResult {
        id: c.id.clone(),
        action: Action::Delete,
        error: result.err().map(|e| e.to_string()),
        attempts,
    }
}

/// The server-side dry-run result of applying `body` (force, as keelson),
/// as the server returns it: with `managedFields`, which say what the
/// apply would own.
pub async fn server_dry_run<C: Cluster>(
    cluster: &C,
    id: &ObjectId,
    body: &Json,
    opts: &ApplyOptions,
) -> Result<Json, ClusterError> {
    let (r, _) = with_retries(opts, || async {
        let res = cluster.resource(&id.api_version, &id.kind).await?;
        cluster.apply(&res, body, true).await
    })
    .await;
    r
}
