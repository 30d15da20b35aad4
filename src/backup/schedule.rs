//! The schedule runner the controller spawns: one task per cluster that
//! sleeps until the next cron slot (plus a per-cluster jitter), snapshots,
//! prunes, sometimes runs a restore check, and records the outcome.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::EtcdClusterConfig;
use super::restore_check::restore_check;
use super::snapshot::{SnapshotError, SnapshotRecord, take_snapshot};
use super::status::BackupStatusHandle;
use super::store::{self, RestoreCheckOutcome, Trigger};
use crate::config::Config;

/// A source of time the runner sleeps against; tests drive a manual one.
pub trait Clock: Send + Sync {
    /// Current time.
    fn now(&self) -> DateTime<Utc>;
    /// Completes once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>)
    -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // Sleep in bounded steps so a wall-clock jump (NTP, suspend) is
            // noticed within a minute instead of after the original delay.
            loop {
                let left = deadline - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Duration::from_secs(60))).await;
            }
        })
    }
}

/// An invalid backup setting.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "cluster {cluster}: invalid etcd.schedule {expr:?}: {reason}; use 5 fields, e.g. \"0 */12 * * *\""
    )]
    Cron {
        /// Cluster name.
        cluster: String,
        /// The expression.
        expr: String,
        /// Parser message.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error(
        "cluster {cluster}: unknown etcd.timeZone {name:?}; use an IANA time zone name such as \"Europe/Berlin\" or \"UTC\""
    )]
    TimeZone {
        /// Cluster name.
        cluster: String,
        /// The name given.
        name: String,
    },
    /// The expression never fires.
    #[error("cluster {cluster}: etcd.schedule {expr:?} has no future run")]
    NoNextRun {
        /// Cluster name.
        cluster: String,
        /// The expression.
        expr: String,
    },
    /// `retain` is zero.
    #[error("cluster {0}: etcd.retain must be at least 1")]
    Retain(String),
    /// The cluster name cannot be part of a file name.
    #[error("cluster name {0:?} cannot name snapshot files; use letters, digits, '.', '_' and '-'")]
    Name(String),
    /// No endpoints.
    #[error("cluster {0}: etcd.endpoints is empty; list at least one client URL")]
    NoEndpoints(String),
}

/// A cluster's snapshot schedule: a cron expression read in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression.
    pub cron: Cron,
    /// The zone its fields are read in.
    pub time_zone: Tz,
}

impl Schedule {
    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next_slot(&self.cron, self.time_zone, after)
    }
}

/// Parses an IANA time zone name; `None` is UTC.
pub fn parse_time_zone(cluster: &str, name: Option<&str>) -> Result<Tz, ScheduleError> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => n.parse::<Tz>().map_err(|_| ScheduleError::TimeZone {
            cluster: cluster.to_string(),
            name: n.to_string(),
        }),
    }
}

/// Parses a 5-field cron expression (minute hour day month weekday).
pub fn parse_schedule(cluster: &str, expr: &str) -> Result<Cron, ScheduleError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| ScheduleError::Cron {
            cluster: cluster.to_string(),
            expr: expr.to_string(),
            reason: e.to_string(),
        })
}

/// Checks one cluster's backup settings.
pub fn validate(cluster: &str, cfg: &EtcdClusterConfig) -> Result<Schedule, ScheduleError> {
    // The name becomes part of file names and the lock file: no separators.
    let name_ok = !cluster.is_empty()
        && !cluster.starts_with('.')
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(ScheduleError::Name(cluster.to_string()));
    }
    if cfg.endpoints.is_empty() {
        return Err(ScheduleError::NoEndpoints(cluster.to_string()));
    }
    if cfg.retain == 0 {
        return Err(ScheduleError::Retain(cluster.to_string()));
    }
    let time_zone = parse_time_zone(cluster, cfg.time_zone.as_deref())?;
    let cron = parse_schedule(cluster, &cfg.schedule)?;
    Ok(Schedule { cron, time_zone })
}

/// The first slot of `cron`, read in `tz`, strictly after `after`.
pub fn next_slot(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A stable per-cluster delay in `[0, max_seconds)`: spreads clusters that
/// share a schedule without making one cluster's run time unpredictable.
pub fn jitter(cluster: &str, max_seconds: u64) -> Duration {
    if max_seconds == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(cluster.as_bytes());
    let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    Duration::from_millis(n % (max_seconds * 1000))
}

/// Runs every cluster's schedule until `shutdown` is cancelled. Clusters with
/// invalid settings get the error in their status and are not scheduled.
///
/// First, each cluster's last success is restored from the newest snapshot
/// on disk that verifies now ([`restore_last_success`]), so that
/// `keelson_etcd_snapshot_last_success_timestamp` survives a restart, even
/// one while etcd is down.
pub async fn run_schedules(
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    status: BackupStatusHandle,
    shutdown: CancellationToken,
) {
    restore_last_success(&cfg, &status).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (name, cluster) in &cfg.clusters {
        let Some(etcd) = cluster.etcd.clone() else {
            continue;
        };
        let schedule = match validate(name, &etcd) {
            Ok(schedule) => schedule,
            Err(err) => {
                tracing::error!(cluster = %name, "{err}");
                status.update(name, |s| {
                    s.schedule = etcd.schedule.clone();
                    s.last_error = Some(err.to_string());
                });
                continue;
            }
        };
        tasks.spawn(run_cluster(
            name.clone(),
            etcd,
            schedule,
            cfg.clone(),
            clock.clone(),
            status.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Set each cluster's last success (time, file, size, revision) from the
/// newest snapshot in any of its destinations that verifies now. Scheduled and
/// on-demand snapshots both count: either can be restored.
pub async fn restore_last_success(cfg: &Config, status: &BackupStatusHandle) {
    for (name, cluster) in &cfg.clusters {
        let Some(etcd) = &cluster.etcd else {
            continue;
        };
        let dirs = etcd.destinations(cfg.state_dir.as_deref());
        let cluster_name = name.clone();
        // Verifying reads whole files: off the async workers.
        let found = tokio::task::spawn_blocking(move || {
            let mut newest: Option<store::StoredSnapshot> = None;
            for dir in dirs {
                match super::retention::newest_good(&dir, &cluster_name) {
                    Ok(Some(s)) if newest.as_ref().is_none_or(|n| s.name.time > n.name.time) => {
                        newest = Some(s);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(cluster = %cluster_name, dir = %dir.display(), "cannot list snapshots: {e}");
                    }
                }
            }
            newest
        })
        .await
        .ok()
        .flatten();
        let Some(snapshot) = found else {
            continue;
        };
        let Some(meta) = snapshot.meta.clone() else {
            continue;
        };
        tracing::info!(cluster = %name, file = %snapshot.path.display(), at = %meta.created_at, "last good etcd snapshot found on disk");
        status.update(name, |s| {
            if s.last_success.is_none_or(|t| t < meta.created_at) {
                s.last_success = Some(meta.created_at);
                s.last_file = Some(snapshot.path.clone());
                s.last_size_bytes = Some(meta.size);
                s.last_duration_seconds = Some(meta.duration_seconds);
                s.last_revision = Some(meta.revision);
            }
        });
    }
}

async fn run_cluster(
    name: String,
    etcd: EtcdClusterConfig,
    schedule: Schedule,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    status: BackupStatusHandle,
    shutdown: CancellationToken,
) {
    let delay = chrono::Duration::from_std(jitter(&name, etcd.jitter_seconds)).unwrap_or_default();
    let mut last_slot: Option<DateTime<Utc>> = None;
    loop {
        // Slots missed while a run was in progress are skipped, not queued.
        let now = clock.now();
        let after = last_slot.map_or(now, |s| s.max(now));
        let Some(slot) = schedule.next_after(after) else {
            let err = ScheduleError::NoNextRun {
                cluster: name.clone(),
                expr: etcd.schedule.clone(),
            };
            status.update(&name, |s| s.last_error = Some(err.to_string()));
            return;
        };
        let at = slot + delay;
        status.update(&name, |s| {
            s.schedule = etcd.schedule.clone();
            s.time_zone = schedule.time_zone.name().to_string();
            s.next_run = Some(at);
        });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = clock.sleep_until(at) => {}
        }
        last_slot = Some(slot);
        let runs = {
            let mut runs = 0;
            status.update(&name, |s| {
                s.scheduled_runs += 1;
                runs = s.scheduled_runs;
            });
            runs
        };
        let check = etcd.restore_check_every > 0 && runs % u64::from(etcd.restore_check_every) == 0;
        let state_dir = cfg.state_dir.as_deref();
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = run_once(&name, &etcd, state_dir, clock.as_ref(), &status, Trigger::Scheduled, check) => {}
        }
    }
}

/// Takes one snapshot, records it in `status`, and runs a restore check when
/// `check` is set. Used by the schedule and by `keelson backup now`.
pub async fn run_once(
    name: &str,
    etcd: &EtcdClusterConfig,
    state_dir: Option<&Path>,
    clock: &dyn Clock,
    status: &BackupStatusHandle,
    trigger: Trigger,
    check: bool,
) -> Result<SnapshotRecord, SnapshotError> {
    let started = clock.now();
    status.update(name, |s| {
        s.running = true;
        s.last_attempt = Some(started);
    });
    let result = take_snapshot(name, etcd, state_dir, trigger, started).await;
    match &result {
        Ok(record) => {
            tracing::info!(cluster = %name, file = %record.path.display(), size = record.meta.size, "etcd snapshot saved");
            status.update(name, |s| {
                s.running = false;
                s.last_success = Some(started);
                s.last_file = Some(record.path.clone());
                s.last_size_bytes = Some(record.meta.size);
                s.last_duration_seconds = Some(record.meta.duration_seconds);
                s.last_revision = Some(record.meta.revision);
                s.last_error = None;
                s.successes_total += 1;
            });
        }
        Err(SnapshotError::Busy { .. }) => {
            tracing::warn!(cluster = %name, "etcd snapshot skipped: another one is running");
            status.update(name, |s| {
                s.running = false;
                s.skipped_total += 1;
            });
        }
        Err(err) => {
            tracing::error!(cluster = %name, "etcd snapshot failed: {err}");
            status.update(name, |s| {
                s.running = false;
                s.last_error = Some(err.to_string());
                s.failures_total += 1;
            });
        }
    }
    let mut record = result?;
    if check {
        let outcome = check_and_record(&mut record, etcd.restore_check_key.as_deref(), clock).await;
        status.update(name, |s| {
            if !outcome.passed {
                s.restore_check_failures_total += 1;
            }
            s.last_restore_check = Some(outcome);
        });
    }
    Ok(record)
}

/// Runs a restore check of `record` and stores the outcome in its metadata
/// files (the primary and every copy).
pub async fn check_and_record(
    record: &mut SnapshotRecord,
    known_key: Option<&str>,
    clock: &dyn Clock,
) -> RestoreCheckOutcome {
    let checked_at = clock.now();
    let outcome = match restore_check(&record.path, known_key).await {
        Ok(report) => RestoreCheckOutcome {
            checked_at,
            passed: true,
            keys: Some(report.keys),
            error: None,
        },
        Err(err) => {
            tracing::error!(file = %record.path.display(), "restore check failed: {err}");
            RestoreCheckOutcome {
                checked_at,
                passed: false,
                keys: None,
                error: Some(err.to_string()),
            }
        }
    };
    record.meta.restore_check = Some(outcome.clone());
    for path in std::iter::once(&record.path).chain(&record.copies) {
        if let Err(err) = store::write_meta(path, &record.meta) {
            tracing::warn!(file = %path.display(), "cannot record restore check: {err}");
        }
    }
    outcome
}
