//! Retention: which snapshots are good *now*, and which scheduled ones may go.
//!
//! Metadata says what was true when a snapshot was written; a file can be
//! truncated or damaged afterwards. So a snapshot counts as good only when
//! its file verifies today ([`verify_file`]: size against the metadata, the
//! trailing sha256 against the data and the metadata, the bbolt structure),
//! and retention never deletes the last snapshot that verifies.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::store::{StoredSnapshot, list_snapshots, meta_path, sync_dir};
use super::verify::verify_file;

/// What a snapshot file is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// The file verifies and its metadata records no failed check.
    Good,
    /// The file verifies but has no metadata (copied in by hand): it can
    /// be restored, yet nothing says which cluster state it holds.
    NoMetadata,
    /// A restore check of this file failed.
    RestoreFailed(String),
    /// The file does not verify, or was never verified.
    Corrupt(String),
}

impl Integrity {
    /// Whether retention may count it as a good snapshot.
    pub fn is_good(&self) -> bool {
        matches!(self, Integrity::Good)
    }
}

/// Check one snapshot file now. Reads the whole file (about 1.5 GB/s).
pub fn check(s: &StoredSnapshot) -> Integrity {
    if let Err(e) = verify_file(&s.path) {
        return Integrity::Corrupt(e.to_string());
    }
    match &s.meta {
        None => Integrity::NoMetadata,
        Some(m) if !m.verified => {
            Integrity::Corrupt("its sha256 did not match etcd's when it was taken".into())
        }
        Some(m) => match &m.restore_check {
            Some(rc) if !rc.passed => Integrity::RestoreFailed(
                rc.error
                    .clone()
                    .unwrap_or_else(|| "restore check failed".into()),
            ),
            _ => Integrity::Good,
        },
    }
}

/// The newest snapshot of `cluster` in `dir` that verifies now, if any.
pub fn newest_good(dir: &Path, cluster: &str) -> io::Result<Option<StoredSnapshot>> {
    Ok(list_snapshots(dir, Some(cluster))?
        .into_iter()
        .filter(|s| s.meta.is_some())
        .find(|s| check(s).is_good()))
}

/// Applies retention in `dir` for `cluster`: keeps the newest `retain`
/// scheduled snapshots that verify now and deletes scheduled ones older than
/// the oldest kept. On-demand snapshots and files without metadata are never
/// deleted, and nothing is deleted until `retain` snapshots verify, so the
/// last one that verifies always survives. Snapshots that no longer verify
/// are logged. Returns the deleted paths.
pub fn apply_retention(dir: &Path, cluster: &str, retain: usize) -> io::Result<Vec<PathBuf>> {
    let retain = retain.max(1);
    let snapshots = list_snapshots(dir, Some(cluster))?;
    let mut good: Vec<&StoredSnapshot> = Vec::new();
    for s in snapshots.iter().filter(|s| s.is_scheduled()) {
        match check(s) {
            Integrity::Good => good.push(s),
            Integrity::Corrupt(why) | Integrity::RestoreFailed(why) => {
                tracing::warn!(file = %s.path.display(), "snapshot does not count as good: {why}");
            }
            Integrity::NoMetadata => {}
        }
        if good.len() == retain {
            break;
        }
    }
    let Some(oldest_kept) = good.get(retain - 1) else {
        return Ok(Vec::new());
    };
    let cutoff = oldest_kept.name.time;
    let mut deleted = Vec::new();
    for s in &snapshots {
        if s.is_scheduled() && s.name.time < cutoff {
            fs::remove_file(&s.path)?;
            let _ = fs::remove_file(meta_path(&s.path));
            deleted.push(s.path.clone());
        }
    }
    if !deleted.is_empty() {
        sync_dir(dir)?;
    }
    Ok(deleted)
}
