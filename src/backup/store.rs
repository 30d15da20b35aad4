//! Snapshot files on disk: names, metadata files, listing, stale `.part`
//! cleanup, atomic writes and the per-cluster lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// Timestamp layout in file names: sortable, UTC, millisecond precision.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";
const TIME_LEN: usize = "20260101T000000.000Z".len();

/// What started a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `keelson backup now`; never pruned automatically.
    OnDemand,
    /// The schedule runner; pruned by retention.
    Scheduled,
}

/// Result of a restore check, as stored in the metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreCheckOutcome {
    /// When the check ran.
    pub checked_at: DateTime<Utc>,
    /// Whether the restored etcd served the expected key.
    pub passed: bool,
    /// Key count in the restored etcd, when it started.
    pub keys: Option<i64>,
    /// Error text when the check failed.
    pub error: Option<String>,
}

/// The metadata file written beside each snapshot (`<name>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMeta {
    /// Cluster name from the keelson config.
    pub cluster: String,
    /// Snapshot file name.
    pub file: String,
    /// When the snapshot started (UTC).
    pub created_at: DateTime<Utc>,
    /// File size in bytes, the trailing sha256 included.
    pub size: u64,
    /// Hex sha256 of the database bytes (equal to the 32-byte trailer).
    pub sha256: String,
    /// etcd revision at snapshot time.
    pub revision: i64,
    /// etcd server version.
    pub etcd_version: String,
    /// Endpoint the snapshot came from.
    pub endpoint: String,
    /// Wall time of the transfer, in seconds.
    pub duration_seconds: f64,
    /// keelson version that wrote the file.
    pub keelson_version: String,
    /// On-demand or scheduled.
    pub trigger: Trigger,
    /// The sha256 matched etcd's digest and the bbolt meta pages were valid.
    pub verified: bool,
    /// Latest restore check, if one ran.
    #[serde(default)]
    pub restore_check: Option<RestoreCheckOutcome>,
}

/// The parts of a snapshot file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName {
    /// Cluster name.
    pub cluster: String,
    /// Snapshot time.
    pub time: DateTime<Utc>,
    /// etcd revision.
    pub revision: i64,
}

impl SnapshotName {
    /// `<cluster>-<UTC timestamp>-rev<revision>.db`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-rev{}.db",
            self.cluster,
            self.time.format(TIME_FORMAT),
            self.revision
        )
    }

    /// Parses a file name written by [`SnapshotName::file_name`].
    pub fn parse(file_name: &str) -> Option<SnapshotName> {
        let stem = file_name.strip_suffix(".db")?;
        let (rest, rev) = stem.rsplit_once("-rev")?;
        let revision = rev.parse().ok()?;
        if rest.len() < TIME_LEN + 2 || !rest.is_char_boundary(rest.len() - TIME_LEN) {
            return None;
        }
        let (cluster, time) = rest.split_at(rest.len() - TIME_LEN);
        let cluster = cluster.strip_suffix('-')?;
        let time = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
        Some(SnapshotName {
            cluster: cluster.to_string(),
            time: time.and_utc(),
            revision,
        })
    }
}

/// Path of the metadata file of a snapshot.
pub fn meta_path(snapshot: &Path) -> PathBuf {
    snapshot.with_extension("json")
}

/// Reads the metadata file beside `snapshot`, if it exists and parses.
pub fn read_meta(snapshot: &Path) -> Option<SnapshotMeta> {
    let raw = fs::read(meta_path(snapshot)).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Writes the metadata file beside `snapshot` atomically.
pub fn write_meta(snapshot: &Path, meta: &SnapshotMeta) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
    atomic_write(&meta_path(snapshot), &json)
}

/// Writes `data` to `path` via a `.part` file, fsync, rename and directory fsync.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    let part = part_path(path);
    let result = (|| {
        let mut f = create_private(&part)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&part, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result
}

/// `<path>.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Creates (truncating) a file readable by its owner only: snapshots hold secrets.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// fsyncs a directory so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One snapshot file found on disk.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    /// Full path of the `.db` file.
    pub path: PathBuf,
    /// Parsed file name.
    pub name: SnapshotName,
    /// File size.
    pub size: u64,
    /// Metadata file contents, when present.
    pub meta: Option<SnapshotMeta>,
}

impl StoredSnapshot {
    /// Scheduled according to its metadata: only these are ever pruned.
    pub fn is_scheduled(&self) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|m| m.trigger == Trigger::Scheduled)
    }
}

/// Snapshots in `dir`, newest first; only `cluster`'s when given. A missing
/// directory holds no snapshots.
pub fn list_snapshots(dir: &Path, cluster: Option<&str>) -> io::Result<Vec<StoredSnapshot>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(SnapshotName::parse) else {
            continue;
        };
        if cluster.is_some_and(|c| c != name.cluster) {
            continue;
        }
        let path = entry.path();
        let size = entry.metadata()?.len();
        let meta = read_meta(&path);
        out.push(StoredSnapshot {
            path,
            name,
            size,
            meta,
        });
    }
    out.sort_by(|a, b| b.name.time.cmp(&a.name.time).then(b.path.cmp(&a.path)));
    Ok(out)
}

/// Removes `.part` files of `cluster` left by crashed or killed runs. Callers
/// hold the cluster lock, so no live run owns them.
pub fn clean_stale_parts(dir: &Path, cluster: &str) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".part") else {
            continue;
        };
        // Both `<name>.db.part` and the metadata's `<name>.json.part`.
        let db_name = match stem.strip_suffix(".json") {
            Some(base) => format!("{base}.db"),
            None => stem.to_string(),
        };
        if SnapshotName::parse(&db_name).is_some_and(|n| n.cluster == cluster) {
            fs::remove_file(entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// An exclusive lock on `<dir>/.<cluster>.lock`, held while a snapshot of
/// that cluster runs, so that overlapping runs (the schedule and a
/// `backup now`, or two keelson processes) skip instead of queueing.
///
/// It is a POSIX record lock plus an in-process registry, not `flock`: an
/// `flock` is shared with any child forked while it is held (etcd and etcdctl
/// for restore checks), so it could outlive the run by the child's lifetime.
#[derive(Debug)]
pub struct ClusterLock {
    key: PathBuf,
    file: Option<File>,
}

/// Lock files this process holds; POSIX locks do not exclude the owning process.
static HELD: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

impl ClusterLock {
    /// Takes the lock, or returns `Ok(None)` when another run holds it.
    pub fn try_acquire(dir: &Path, cluster: &str) -> io::Result<Option<ClusterLock>> {
        let key = fs::canonicalize(dir)?.join(format!(".{cluster}.lock"));
        // Check in-process first: opening and closing the file while another
        // task holds the lock would release that task's POSIX lock.
        if !HELD.lock().expect("lock registry").insert(key.clone()) {
            return Ok(None);
        }
        let release = |key: &PathBuf| {
            HELD.lock().expect("lock registry").remove(key);
        };
        let file = match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&key)
        {
            Ok(file) => file,
            Err(err) => {
                release(&key);
                return Err(err);
            }
        };
        match rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(ClusterLock {
                key,
                file: Some(file),
            })),
            Err(err) => {
                release(&key);
                if err == rustix::io::Errno::AGAIN || err == rustix::io::Errno::ACCESS {
                    Ok(None)
                } else {
                    Err(err.into())
                }
            }
        }
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // Close (releasing the POSIX lock) before another task of this
        // process may open the file: a later close would release its lock.
        drop(self.file.take());
        HELD.lock().expect("lock registry").remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_round_trip_even_with_dashes_in_the_cluster() {
        let name = SnapshotName {
            cluster: "prod-eu-2".into(),
            time: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 5).unwrap()
                + chrono::Duration::milliseconds(42),
            revision: 48213,
        };
        let file = name.file_name();
        assert_eq!(file, "prod-eu-2-20261123T120005.042Z-rev48213.db");
        assert_eq!(SnapshotName::parse(&file), Some(name));
    }

    #[test]
    fn foreign_names_are_ignored() {
        for bad in [
            "prod.db",
            "prod-rev1.db",
            "-20261123T120005.042Z-rev1.db",
            "prod-20261123T120005.042Z-revX.db",
            "prod-20261399T120005.042Z-rev1.db",
            "prod-20261123T120005.042Z-rev1.db.part",
        ] {
            assert_eq!(SnapshotName::parse(bad), None, "{bad}");
        }
    }
}
