//! Backup status shared between the schedule runner and the controller's
//! `/status` and `/metrics` endpoints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::store::RestoreCheckOutcome;

/// Status of one cluster's backups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackupStatus {
    /// Cron schedule.
    pub schedule: String,
    /// IANA time zone the schedule is read in (`UTC` unless configured).
    pub time_zone: String,
    /// When the next scheduled run starts (jitter included).
    pub next_run: Option<DateTime<Utc>>,
    /// A snapshot is being taken right now.
    pub running: bool,
    /// Start of the latest attempt.
    pub last_attempt: Option<DateTime<Utc>>,
    /// Start of the latest successful snapshot.
    pub last_success: Option<DateTime<Utc>>,
    /// Latest successful snapshot file.
    pub last_file: Option<PathBuf>,
    /// Its size in bytes.
    pub last_size_bytes: Option<u64>,
    /// Its transfer time in seconds.
    pub last_duration_seconds: Option<f64>,
    /// Its etcd revision.
    pub last_revision: Option<i64>,
    /// Error of the latest attempt, cleared by a success.
    pub last_error: Option<String>,
    /// Successful snapshots since start.
    pub successes_total: u64,
    /// Failed snapshots since start.
    pub failures_total: u64,
    /// Runs skipped because another snapshot of the cluster was running.
    pub skipped_total: u64,
    /// Scheduled runs since start (drives `restoreCheckEvery`).
    pub scheduled_runs: u64,
    /// Latest restore check.
    pub last_restore_check: Option<RestoreCheckOutcome>,
    /// Failed restore checks since start.
    pub restore_check_failures_total: u64,
}

/// Status of every cluster, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackupStatus {
    /// Per-cluster status.
    pub clusters: BTreeMap<String, ClusterBackupStatus>,
}

/// Shared, cloneable handle to the live status.
#[derive(Debug, Clone)]
pub struct BackupStatusHandle {
    inner: Arc<Mutex<BackupStatus>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for BackupStatusHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl BackupStatusHandle {
    /// An empty status.
    pub fn new() -> Self {
        BackupStatusHandle {
            inner: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> BackupStatus {
        self.inner.lock().expect("status lock").clone()
    }

    /// Applies `f` to `cluster`'s status and wakes subscribers.
    pub fn update(&self, cluster: &str, f: impl FnOnce(&mut ClusterBackupStatus)) {
        {
            let mut status = self.inner.lock().expect("status lock");
            f(status.clusters.entry(cluster.to_string()).or_default());
        }
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that changes on every update.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Prometheus text exposition of the current status.
    pub fn to_prometheus(&self) -> String {
        self.snapshot().to_prometheus()
    }
}

impl BackupStatus {
    /// Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        type Getter = fn(&ClusterBackupStatus) -> Option<f64>;
        let metrics: [(&str, &str, &str, Getter); 10] = [
            (
                "keelson_etcd_snapshot_last_success_timestamp",
                "gauge",
                "Unix time of the latest successful etcd snapshot.",
                |s| s.last_success.map(|t| t.timestamp_millis() as f64 / 1000.0),
            ),
            (
                "keelson_etcd_snapshot_last_duration_seconds",
                "gauge",
                "Transfer time of the latest successful etcd snapshot.",
                |s| s.last_duration_seconds,
            ),
            (
                "keelson_etcd_snapshot_last_size_bytes",
                "gauge",
                "Size of the latest successful etcd snapshot.",
                |s| s.last_size_bytes.map(|v| v as f64),
            ),
            (
                "keelson_etcd_snapshot_last_failed",
                "gauge",
                "1 when the latest etcd snapshot attempt failed.",
                |s| Some(if s.last_error.is_some() { 1.0 } else { 0.0 }),
            ),
            (
                "keelson_etcd_snapshot_success_total",
                "counter",
                "Successful etcd snapshots.",
                |s| Some(s.successes_total as f64),
            ),
            (
                "keelson_etcd_snapshot_failures_total",
                "counter",
                "Failed etcd snapshots.",
                |s| Some(s.failures_total as f64),
            ),
            (
                "keelson_etcd_snapshot_skipped_total",
                "counter",
                "etcd snapshot runs skipped because one was already running.",
                |s| Some(s.skipped_total as f64),
            ),
            (
                "keelson_etcd_snapshot_next_run_timestamp",
                "gauge",
                "Unix time of the next scheduled etcd snapshot.",
                |s| s.next_run.map(|t| t.timestamp_millis() as f64 / 1000.0),
            ),
            (
                "keelson_etcd_snapshot_last_restore_check_passed",
                "gauge",
                "1 when the latest restore check passed, 0 when it failed.",
                |s| {
                    s.last_restore_check
                        .as_ref()
                        .map(|r| if r.passed { 1.0 } else { 0.0 })
                },
            ),
            (
                "keelson_etcd_snapshot_restore_check_failures_total",
                "counter",
                "Failed restore checks of etcd snapshots.",
                |s| Some(s.restore_check_failures_total as f64),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, get) in metrics {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (cluster, status) in &self.clusters {
                if let Some(value) = get(status) {
                    let _ = writeln!(
                        out,
                        "{name}{{cluster=\"{}\"}} {value}",
                        escape_label(cluster)
                    );
                }
            }
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
