//! Scheduled, verified etcd snapshots.
//!
//! A snapshot streams etcd's bbolt database over the gRPC Maintenance API into
//! a `.part` file, checks the sha256 etcd sends last, and only then renames the
//! file to its final `.db` name. `verify` re-checks the trailing digest and the
//! bbolt structure; `restore_check` proves a restore works by booting a
//! throwaway etcd on the restored data. `schedule` runs all of it on a cron
//! schedule per cluster, and `status` exposes the outcome as Prometheus text.

pub mod bolt;
pub mod cli;
pub mod etcd;
pub mod local_etcd;
pub mod proto;
pub mod restore_check;
pub mod retention;
pub mod schedule;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use schedule::{Clock, SystemClock, run_schedules};
pub use snapshot::{SnapshotError, SnapshotRecord, take_snapshot};
pub use status::{BackupStatus, BackupStatusHandle, ClusterBackupStatus};
pub use store::Trigger;
pub use verify::{VerifyError, VerifyReport, verify_file};

/// Default cron schedule, the same as RKE2/K3s `etcd-snapshot-schedule-cron`
/// (read in UTC unless `timeZone` is set).
pub const DEFAULT_SCHEDULE: &str = "0 */12 * * *";
/// Default number of scheduled snapshots kept per cluster and destination.
pub const DEFAULT_RETAIN: usize = 5;
/// Default upper bound of the per-cluster start delay, in seconds.
pub const DEFAULT_JITTER_SECONDS: u64 = 30;

/// Per-cluster etcd settings from the keelson config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdClusterConfig {
    /// Client endpoints, e.g. `https://10.0.0.1:2379`; tried in order.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// CA bundle that signed etcd's serving certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// etcd user, when etcd auth is enabled.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password of `username` (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// 5-field cron expression, read in `time_zone`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// IANA time zone the schedule is read in (`Europe/Berlin`), as a
    /// Kubernetes CronJob's `timeZone`; UTC when absent. RKE2 and K3s read
    /// their snapshot cron in the node's local time: set this to that zone
    /// to match them. Daylight saving follows croner's rules (a slot in the
    /// spring-forward gap runs just after it; one in the repeated hour once).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Scheduled snapshots kept per destination (on-demand ones are never pruned).
    #[serde(default = "default_retain")]
    pub retain: usize,
    /// Snapshot directory; `<stateDir>/snapshots` when absent.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Second destination, e.g. a mounted remote volume.
    #[serde(default)]
    pub copy_to: Option<PathBuf>,
    /// Run a restore check on every Nth scheduled snapshot (0 = never).
    #[serde(default)]
    pub restore_check_every: u32,
    /// Key the restore check must find, e.g. `/registry/namespaces/default`.
    #[serde(default)]
    pub restore_check_key: Option<String>,
    /// Upper bound of the start delay added to each scheduled run, in seconds.
    #[serde(default = "default_jitter")]
    pub jitter_seconds: u64,
}

impl Default for EtcdClusterConfig {
    fn default() -> Self {
        EtcdClusterConfig {
            endpoints: Vec::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password_file: None,
            schedule: default_schedule(),
            time_zone: None,
            retain: default_retain(),
            dir: None,
            copy_to: None,
            restore_check_every: 0,
            restore_check_key: None,
            jitter_seconds: default_jitter(),
        }
    }
}

impl EtcdClusterConfig {
    /// The primary snapshot directory, resolved against the config's state dir.
    pub fn snapshot_dir(&self, state_dir: Option<&Path>) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.clone(),
            None => state_dir
                .unwrap_or(Path::new(".keelson-state"))
                .join("snapshots"),
        }
    }

    /// Every destination: the primary directory first, then `copy_to`.
    pub fn destinations(&self, state_dir: Option<&Path>) -> Vec<PathBuf> {
        let mut dirs = vec![self.snapshot_dir(state_dir)];
        dirs.extend(self.copy_to.clone());
        dirs
    }
}

fn default_schedule() -> String {
    DEFAULT_SCHEDULE.into()
}

fn default_retain() -> usize {
    DEFAULT_RETAIN
}

fn default_jitter() -> u64 {
    DEFAULT_JITTER_SECONDS
}
