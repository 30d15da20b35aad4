//! One task per environment. It runs one reconcile at a time for its
//! environment, retries failures with exponential backoff, re-checks drift on
//! an interval, and records every outcome. The shared semaphore bounds how
//! many environments reconcile at once; it is fair (first come, first
//! served), so no environment starves another.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::engine::{Shared, backoff};
use super::fence::Fence;
use super::lease::{Acquire, Term};
use super::report::Posted;
use super::shard;
use super::{EnvOutcome, EnvReconciler, Outcome};
use crate::record::kube::ClusterStatusError;
use crate::record::{Attempt, CommitRef, EnvStatus, SyncRecord, Trigger, now_rfc3339};
use crate::source::Checkout;

/// The mailbox of one environment's worker.
pub(crate) struct EnvSlot {
    pub name: String,
    pending: Mutex<Option<Arc<Checkout>>>,
    notify: Notify,
    pub first_done: AtomicBool,
}

impl EnvSlot {
    pub fn new(name: &str) -> EnvSlot {
        EnvSlot {
            name: name.to_string(),
            pending: Mutex::new(None),
            notify: Notify::new(),
            first_done: AtomicBool::new(false),
        }
    }

    /// Ask the worker to sync to `tree` (replacing any older request).
    pub fn set_target(&self, tree: Arc<Checkout>) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(tree);
        self.notify.notify_one();
    }

    fn take(&self) -> Option<Arc<Checkout>> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The worker loop of one environment; returns on shutdown, never in the
/// middle of a reconcile.
pub(crate) async fn run<R: EnvReconciler>(
    shared: Arc<Shared>,
    reconciler: Arc<R>,
    slot: Arc<EnvSlot>,
    mut good: Option<Arc<Checkout>>,
) {
    let s = &shared.settings;
    let mut target: Option<Arc<Checkout>> = None;
    let mut failures = 0u32;
    let mut retry_at: Option<Instant> = None;
    let mut next_drift = Instant::now() + s.drift_interval;
    loop {
        if let Some(new) = slot.take() {
            target = Some(new);
            failures = 0;
            retry_at = None;
        }
        let now = Instant::now();
        if let Some(t) = target.clone().filter(|_| retry_at.is_none_or(|r| r <= now)) {
            // Another replica owns it now. Keep the target and look again
            // after a retry period: the member list may have flapped (our
            // own member Lease lost and taken again) faster than the
            // rebalance, which sees only the latest list, could notice.
            if !shared.owns(&slot.name) {
                retry_at = Some(Instant::now() + lease_retry(&shared));
                continue;
            }
            let term = match hold(&shared, &slot.name).await {
                Held::Yes(term) => term,
                Held::No(why) => {
                    debug!(env = %slot.name, "waiting for the environment lease: {why}");
                    retry_at = Some(Instant::now() + lease_retry(&shared));
                    continue;
                }
            };
            let trigger = if failures == 0 {
                Trigger::Commit
            } else {
                Trigger::Retry
            };
            let (outcome, recorded) =
                sync(&shared, &*reconciler, &slot.name, &t, false, trigger, term).await;
            slot.first_done.store(true, Ordering::SeqCst);
            let again = (!recorded).then(|| t.clone());
            match outcome {
                Outcome::NoChange | Outcome::Applied { .. } => {
                    good = Some(t);
                    target = None;
                    failures = 0;
                    retry_at = None;
                    next_drift = Instant::now() + s.drift_interval;
                }
                // A bad commit is not retried: only a new commit can fix it.
                Outcome::Invalid { .. } => {
                    target = None;
                    failures = 0;
                    retry_at = None;
                }
                Outcome::Failed { .. } | Outcome::Drift { .. } => {
                    failures += 1;
                    let delay = backoff(failures, s.retry_base, s.max_backoff);
                    warn!(env = %slot.name, failures, retry_in = ?delay, "sync failed; backing off");
                    retry_at = Some(Instant::now() + delay);
                }
            }
            // The status object in the cluster is stale (the Lease was lost
            // before it could be written): sync again soon, which writes it,
            // rather than at the next drift check.
            if let Some(t) = again
                && target.is_none()
            {
                target = Some(t);
                retry_at = Some(Instant::now() + lease_retry(&shared));
            }
            continue;
        }
        if target.is_none() && now >= next_drift {
            if let Some(g) = good.clone().filter(|_| shared.owns(&slot.name)) {
                // Even a check that only reports takes the Lease: it
                // writes the environment's status object.
                let Held::Yes(term) = hold(&shared, &slot.name).await else {
                    next_drift = Instant::now() + lease_retry(&shared);
                    continue;
                };
                let (outcome, _) = sync(
                    &shared,
                    &*reconciler,
                    &slot.name,
                    &g,
                    !s.self_heal,
                    Trigger::Drift,
                    term,
                )
                .await;
                slot.first_done.store(true, Ordering::SeqCst);
                if let Outcome::Drift { count } = outcome {
                    warn!(env = %slot.name, count, "drift found (selfHeal is off: reporting only)");
                }
            }
            next_drift = Instant::now() + s.drift_interval;
            continue;
        }
        let wake = match (&target, retry_at) {
            (Some(_), Some(r)) => r,
            _ => next_drift,
        };
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break,
            _ = slot.notify.notified() => {}
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// Whether we may write an environment.
pub(crate) enum Held {
    /// Yes: under this Lease term (`None` without coordination).
    Yes(Option<Arc<Term>>),
    /// Not now, and why.
    No(String),
}

/// Take the environment's Lease, when replicas coordinate.
pub(crate) async fn hold(shared: &Shared, env: &str) -> Held {
    let Some(coord) = &shared.coord else {
        return Held::Yes(None);
    };
    let labels = shard::lease_labels(shard::ENVIRONMENT_ROLE, Some(env));
    match coord
        .leases
        .try_acquire(&shard::env_lease_name(env), &labels)
        .await
    {
        Ok(Acquire::Held(term)) => {
            shared
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(term.clone());
            Held::Yes(Some(term))
        }
        Ok(Acquire::HeldBy { holder }) => Held::No(format!("held by {holder}")),
        Err(e) => {
            warn!(env, error = %e, "cannot take the environment lease");
            Held::No(e.to_string())
        }
    }
}

/// Release the Lease `term` taken by [`hold`], if any.
pub(crate) async fn let_go(shared: &Shared, term: &Option<Arc<Term>>) {
    if let Some(t) = term {
        t.release().await;
        shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|h| !Arc::ptr_eq(h, t));
    }
}

/// Record one sync of `env` at `commit` everywhere: the sync metrics, the
/// status in the local store (last applied commit, drift count, apps with
/// `healthySince`, the last attempt or drift check), the history (a drift
/// check that found nothing is not history) and, when replicas coordinate,
/// the in-cluster `KeelsonEnvironment` status, written only while the Lease
/// `term` still holds. Returns false when the Lease was lost before that
/// write (always true without coordination). The environment workers and
/// the preview loop record through it alike.
pub(crate) async fn record(
    shared: &Shared,
    env: &str,
    commit: &crate::source::CommitInfo,
    trigger: Trigger,
    took: std::time::Duration,
    o: EnvOutcome,
    term: &Option<Arc<Term>>,
) -> bool {
    let EnvOutcome {
        outcome,
        apps,
        changes,
    } = o;
    shared.metrics.observe_sync(env, took, &outcome);
    let at = now_rfc3339();
    let mut status = match shared.store.status(env) {
        Ok(Some(st)) => st,
        Ok(None) => EnvStatus {
            env: env.to_string(),
            ..EnvStatus::default()
        },
        Err(e) => {
            warn!(env, error = %e, "cannot read the environment status");
            EnvStatus {
                env: env.to_string(),
                ..EnvStatus::default()
            }
        }
    };
    let applied_now = matches!(outcome, Outcome::Applied { .. })
        || (matches!(outcome, Outcome::NoChange)
            && (trigger != Trigger::Drift || status.last_applied.is_none()));
    if applied_now {
        status.last_applied = Some(CommitRef {
            commit: commit.id.clone(),
            at: at.clone(),
        });
    }
    match &outcome {
        Outcome::Drift { count } => status.drift = *count,
        Outcome::NoChange | Outcome::Applied { .. } => status.drift = 0,
        _ => {}
    }
    if !apps.is_empty() {
        let mut apps = apps;
        super::since_healthy(&status.apps, &mut apps, &at);
        status.apps = apps;
        status.apps_observed_at = Some(at.clone());
    }
    let attempt = Some(Attempt {
        commit: commit.id.clone(),
        at: at.clone(),
        trigger,
        outcome: outcome.clone(),
    });
    if trigger == Trigger::Drift {
        status.last_drift_check = attempt;
    } else {
        status.last_attempt = attempt;
    }
    // History first: once status shows an attempt, its history entry exists.
    // Periodic checks that found nothing are not history.
    if trigger != Trigger::Drift || !matches!(outcome, Outcome::NoChange) {
        let record = SyncRecord::of(env, commit, at, trigger, took, outcome, changes);
        if let Err(e) = shared.store.append_history(&record) {
            warn!(env, error = %e, "cannot record the sync in the history");
        }
    }
    if let Err(e) = shared.store.put_status(&status) {
        warn!(env, error = %e, "cannot record the environment status");
    }
    let mut recorded = true;
    if let (Some(coord), Some(t)) = (&shared.coord, term) {
        // Under the Lease, like every other write to the environment.
        // Each of its writes checks the fence right before it goes out.
        match coord
            .status
            .put(&status, coord.leases.identity(), &**t)
            .await
        {
            Ok(()) => {}
            Err(ClusterStatusError::Fenced(why)) => {
                recorded = false;
                warn!(env, "status not written to the cluster: {why}");
            }
            // An API error (no CRD, RBAC) is not retried: it would only
            // fail again; it is logged with each sync.
            Err(e) => warn!(env, error = %e, "cannot record the status in the cluster"),
        }
    }
    recorded
}

/// How soon to ask again for a Lease someone else holds.
fn lease_retry(shared: &Shared) -> std::time::Duration {
    shared
        .coord
        .as_ref()
        .map(|c| c.leases.timing().retry_period)
        .unwrap_or(shared.settings.retry_base)
}

/// Run one reconcile under the shared bound, then record it everywhere.
/// Returns its outcome, and false when the Lease was lost before its status
/// could be written to the cluster (always true without coordination).
/// With a Lease `term`, it is renewed while the reconcile runs, every write
/// is fenced by it, and it is released at the end.
async fn sync<R: EnvReconciler>(
    shared: &Shared,
    reconciler: &R,
    env: &str,
    tree: &Checkout,
    dry_run: bool,
    trigger: Trigger,
    term: Option<Arc<Term>>,
) -> (Outcome, bool) {
    let permit = shared.permits.acquire().await;
    let started = Instant::now();
    let renewer = term.clone().map(|t| {
        let period = lease_retry(shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if t.renew().await.is_err() {
                    return;
                }
            }
        })
    });
    let fence = term.clone().map(|t| t as Arc<dyn Fence>);
    let EnvOutcome {
        outcome,
        apps,
        changes,
    } = reconciler
        .reconcile_fenced(&tree.path, env, dry_run, fence)
        .await;
    let took = started.elapsed();
    drop(permit);
    // What the reconcile allocated is freed now: give it back.
    tokio::task::spawn_blocking(super::memory::trim);
    if let Some(r) = renewer {
        r.abort();
    }
    let commit = &tree.commit;
    let recorded = record(
        shared,
        env,
        commit,
        trigger,
        took,
        EnvOutcome {
            outcome: outcome.clone(),
            apps,
            changes,
        },
        &term,
    )
    .await;
    let_go(shared, &term).await;
    match &outcome {
        Outcome::Invalid { diagnostics } => {
            warn!(env, commit = %commit.id, errors = diagnostics.len(), "commit has spec errors; not applied, the last good commit stays in place");
            for d in diagnostics {
                warn!(env, "{d}");
            }
        }
        Outcome::Failed { message } => {
            warn!(env, commit = %commit.id, trigger = trigger.as_str(), "sync failed: {message}")
        }
        o => {
            info!(env, commit = %commit.id, trigger = trigger.as_str(), took_ms = took.as_millis() as u64, "{}", o.summary())
        }
    }
    if trigger != Trigger::Drift
        && let Some(reporter) = &shared.reporter
    {
        match reporter.post(&commit.id, env, &outcome).await {
            Ok(Posted::Sent) => shared.metrics.observe_commit_status("sent"),
            Ok(Posted::Unchanged) => shared.metrics.observe_commit_status("unchanged"),
            Err(e) => {
                shared.metrics.observe_commit_status("error");
                warn!(env, error = %e, "cannot post the commit status");
            }
        }
    }
    (outcome, recorded)
}
