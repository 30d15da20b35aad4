//! Record: status and history of syncs, kept in an embedded database
//! (`redb`) in the state directory so that a restart loses nothing.
//!
//! Values are stored as JSON so that the on-disk format is readable with any
//! tool and survives field additions (`#[serde(default)]`).

// `redb::Error` is large; the closures that return it hand it straight to
// `Store::err`, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod kube;
pub mod matrix;

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::controller::{AppStatus, Outcome};

pub use matrix::Matrix;

const STATUS: TableDefinition<&str, &str> = TableDefinition::new("env_status");
const HISTORY: TableDefinition<u64, &str> = TableDefinition::new("history");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// History entries kept; older ones are dropped as new ones arrive, so a
/// controller that runs for years keeps a bounded file.
pub const HISTORY_LIMIT: u64 = 20_000;

/// Errors of the status store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error(
        "cannot open the status store {path}: {source}. If `keelson run` is using this state \
         directory, ask it instead with `keelson status --server URL`"
    )]
    Open {
        /// Database file.
        path: PathBuf,
        /// Cause.
        source: redb::DatabaseError,
    },
    /// A read or write failed.
    #[error(
        "status store {path}: {message}. Check the disk and the permissions of the state directory"
    )]
    Io {
        /// Database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// Which commit an environment was synced to, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitRef {
    /// Full commit id.
    pub commit: String,
    /// RFC 3339 time of the sync.
    pub at: String,
}

/// The latest known state of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnvStatus {
    /// Environment name.
    pub env: String,
    /// Last commit that was applied (or found in sync) successfully.
    #[serde(default)]
    pub last_applied: Option<CommitRef>,
    /// The most recent sync of a commit (first try or retry), successful or
    /// not. Drift checks do not replace it, so a bad commit's errors stay
    /// visible until a newer commit is synced.
    #[serde(default)]
    pub last_attempt: Option<Attempt>,
    /// The most recent drift check.
    #[serde(default)]
    pub last_drift_check: Option<Attempt>,
    /// Objects that differ from the spec at the last drift check.
    #[serde(default)]
    pub drift: u64,
    /// Per app: running version and health, from the last observation.
    #[serde(default)]
    pub apps: Vec<AppStatus>,
    /// RFC 3339 time of that observation: a sync or drift check that read
    /// the apps (a failed one leaves `apps` and this as they were). The
    /// promotion gate counts healthy time up to here, not up to its own
    /// clock, so a stopped controller's record does not age into a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps_observed_at: Option<String>,
}

/// One sync or drift check, as shown in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Commit the attempt used.
    pub commit: String,
    /// RFC 3339 time it finished.
    pub at: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// What happened.
    pub outcome: Outcome,
}

/// Why a sync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// A new commit changed the environment (or the controller started).
    Commit,
    /// A retry after a failure.
    Retry,
    /// The periodic drift check.
    Drift,
}

impl Trigger {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Commit => "commit",
            Trigger::Retry => "retry",
            Trigger::Drift => "drift",
        }
    }
}

/// One entry of the sync history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// Increasing sequence number.
    #[serde(default)]
    pub seq: u64,
    /// Environment.
    pub env: String,
    /// Commit id.
    pub commit: String,
    /// Commit author (`Name <email>`).
    pub author: String,
    /// First line of the commit message.
    #[serde(default)]
    pub summary: String,
    /// RFC 3339 time the sync finished.
    pub at: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// Wall time of the reconcile, in milliseconds.
    pub duration_ms: u64,
    /// What happened (with counts of the changes made).
    pub outcome: Outcome,
    /// The objects written (or differing, for drift), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

impl SyncRecord {
    /// The history entry of a sync of `env` at `commit` that finished at
    /// `at` (RFC 3339) after `took`; the store gives it its `seq`.
    pub fn of(
        env: &str,
        commit: &crate::source::CommitInfo,
        at: String,
        trigger: Trigger,
        took: std::time::Duration,
        outcome: Outcome,
        changes: Vec<String>,
    ) -> SyncRecord {
        SyncRecord {
            seq: 0,
            env: env.to_string(),
            commit: commit.id.clone(),
            author: commit.author.clone(),
            summary: commit.summary.clone(),
            at,
            trigger,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            outcome,
            changes,
        }
    }
}

/// The status and history database.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// The database file inside a state directory.
    pub fn file_in(state_dir: &Path) -> PathBuf {
        state_dir.join("status.redb")
    }

    /// Open (or create) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = Store::file_in(state_dir);
        if let Err(e) = std::fs::create_dir_all(state_dir) {
            return Err(StoreError::Io {
                path,
                message: format!("cannot create the state directory: {e}"),
            });
        }
        let db = Database::create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let store = Store { db, path };
        // Create the tables up front so readers never see "table does not exist".
        store.write(|tx| {
            tx.open_table(STATUS)?;
            tx.open_table(HISTORY)?;
            tx.open_table(META)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Replace the status of `status.env`.
    pub fn put_status(&self, status: &EnvStatus) -> Result<(), StoreError> {
        let json = serde_json::to_string(status).map_err(|e| self.err(e))?;
        self.write(|tx| {
            tx.open_table(STATUS)?
                .insert(status.env.as_str(), json.as_str())?;
            Ok(())
        })
    }

    /// The status of one environment.
    pub fn status(&self, env: &str) -> Result<Option<EnvStatus>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(STATUS).map_err(|e| self.err(e))?;
        let Some(v) = table.get(env).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        serde_json::from_str(v.value())
            .map(Some)
            .map_err(|e| self.err(e))
    }

    /// The status of every environment, sorted by name.
    pub fn all_status(&self) -> Result<Vec<EnvStatus>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(STATUS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(v.value()).map_err(|e| self.err(e))?);
        }
        Ok(out)
    }

    /// Append `record` to the history; returns its sequence number.
    pub fn append_history(&self, record: &SyncRecord) -> Result<u64, StoreError> {
        let mut record = record.clone();
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(HISTORY).map_err(|e| self.err(e))?;
            let last = table
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value());
            record.seq = last.map_or(1, |l| l + 1);
            let json = serde_json::to_string(&record).map_err(|e| self.err(e))?;
            table
                .insert(record.seq, json.as_str())
                .map_err(|e| self.err(e))?;
            if record.seq > HISTORY_LIMIT {
                table
                    .remove(record.seq - HISTORY_LIMIT)
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(record.seq)
    }

    /// Up to `limit` history entries, newest first, optionally of one environment.
    pub fn history(&self, env: Option<&str>, limit: usize) -> Result<Vec<SyncRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(HISTORY).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(|e| self.err(e))?;
            let rec: SyncRecord = serde_json::from_str(v.value()).map_err(|e| self.err(e))?;
            if env.is_none_or(|e| e == rec.env) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// The newest `per_env` entries of each environment, newest first, from
    /// at most the `scan` newest entries of the whole history (so a page that
    /// refreshes every few seconds never reads all 20,000).
    pub fn recent_per_env(
        &self,
        per_env: usize,
        scan: usize,
    ) -> Result<std::collections::BTreeMap<String, Vec<SyncRecord>>, StoreError> {
        let mut out: std::collections::BTreeMap<String, Vec<SyncRecord>> = Default::default();
        for rec in self.history(None, scan)? {
            let list = out.entry(rec.env.clone()).or_default();
            if list.len() < per_env {
                list.push(rec);
            }
        }
        Ok(out)
    }

    /// Set a small piece of controller state (e.g. the last fetched commit).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(META)?.insert(key, value)?;
            Ok(())
        })
    }

    /// Read a piece of controller state.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(META).map_err(|e| self.err(e))?;
        Ok(table
            .get(key)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_string()))
    }
}

/// The current time as RFC 3339 (seconds precision, UTC).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(env: &str, commit: &str) -> SyncRecord {
        SyncRecord {
            seq: 0,
            env: env.into(),
            commit: commit.into(),
            author: "A <a@example.com>".into(),
            summary: "bump".into(),
            at: now_rfc3339(),
            trigger: Trigger::Commit,
            duration_ms: 3,
            outcome: Outcome::Applied {
                created: 0,
                updated: 1,
                replaced: 0,
                deleted: 0,
            },
            changes: vec!["update Deployment/shop/web".into()],
        }
    }

    #[test]
    fn status_and_history_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let status = EnvStatus {
                env: "prod".into(),
                drift: 2,
                ..EnvStatus::default()
            };
            store.put_status(&status).unwrap();
            assert_eq!(store.append_history(&record("prod", "a1")).unwrap(), 1);
            assert_eq!(store.append_history(&record("dev", "b2")).unwrap(), 2);
            assert_eq!(store.append_history(&record("prod", "c3")).unwrap(), 3);
            store.set_meta("head", "c3").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.status("prod").unwrap().unwrap().drift, 2);
        assert!(store.status("qa").unwrap().is_none());
        let prod: Vec<String> = store
            .history(Some("prod"), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.commit)
            .collect();
        assert_eq!(prod, ["c3", "a1"]);
        assert_eq!(store.history(None, 1).unwrap()[0].seq, 3);
        assert_eq!(store.meta("head").unwrap().as_deref(), Some("c3"));
    }
}
