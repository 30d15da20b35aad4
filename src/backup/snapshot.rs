//! Taking one snapshot: stream, hash, check, fsync, rename, copy, prune.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::EtcdClusterConfig;
use super::bolt::{self, BoltError};
use super::etcd::{EtcdClient, EtcdError};
pub use super::store::Trigger;
use super::store::{self, ClusterLock, SnapshotMeta, SnapshotName};

/// Longest wait for the next chunk before a stalled stream is abandoned.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Chunks buffered between the gRPC reader and the disk writer.
const PIPELINE_DEPTH: usize = 256;

/// Why a snapshot failed. No variant leaves a `.db` file behind.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Another snapshot of this cluster is running; this run was skipped.
    #[error("a snapshot of cluster {cluster} is already running; this run was skipped")]
    Busy {
        /// Cluster name.
        cluster: String,
    },
    /// The snapshot directory cannot be created or written.
    #[error(
        "cannot use snapshot directory {dir}: {source}; create it or fix its permissions, or set `etcd.dir`"
    )]
    Dir {
        /// Directory.
        dir: PathBuf,
        /// I/O error.
        source: io::Error,
    },
    /// etcd could not be reached or refused a call.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The stream broke or ended early.
    #[error(
        "snapshot stream from {endpoint} broke after {received} bytes: {reason}; the partial file was removed, the next run will retry"
    )]
    Stream {
        /// Endpoint streamed from.
        endpoint: String,
        /// Database bytes received.
        received: u64,
        /// What went wrong.
        reason: String,
    },
    /// Our sha256 of the data differs from etcd's.
    #[error(
        "sha256 mismatch: etcd sent {expected}, received data hashes to {actual}; the partial file was removed"
    )]
    Checksum {
        /// Digest etcd sent.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// The data is not a valid bbolt database.
    #[error("snapshot data is not a valid bbolt database: {0}")]
    Bolt(#[from] BoltError),
    /// Writing the file failed (disk full, I/O error).
    #[error(
        "cannot write {path}: {source}; free disk space or point `etcd.dir` at a writable volume"
    )]
    Write {
        /// File being written.
        path: PathBuf,
        /// I/O error.
        source: io::Error,
    },
    /// Copying to the second destination failed (the primary file is intact).
    #[error(
        "snapshot {file} was saved, but copying it to {dest} failed: {source}; check that the volume is mounted and writable"
    )]
    Copy {
        /// Primary file.
        file: PathBuf,
        /// Second destination directory.
        dest: PathBuf,
        /// I/O error.
        source: io::Error,
    },
}

/// A completed snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    /// The primary `.db` file.
    pub path: PathBuf,
    /// Copies in the second destination.
    pub copies: Vec<PathBuf>,
    /// Metadata as written beside the file.
    pub meta: SnapshotMeta,
    /// Files deleted by retention, all destinations.
    pub pruned: Vec<PathBuf>,
}

/// Takes a snapshot of `cluster` into every configured destination, then
/// applies retention. `now` names the file (the schedule passes its clock).
pub async fn take_snapshot(
    cluster: &str,
    cfg: &EtcdClusterConfig,
    state_dir: Option<&Path>,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<SnapshotRecord, SnapshotError> {
    let dir = cfg.snapshot_dir(state_dir);
    let dir_err = |source| SnapshotError::Dir {
        dir: dir.clone(),
        source,
    };
    fs::create_dir_all(&dir).map_err(dir_err)?;
    let _lock = ClusterLock::try_acquire(&dir, cluster)
        .map_err(dir_err)?
        .ok_or_else(|| SnapshotError::Busy {
            cluster: cluster.to_string(),
        })?;
    store::clean_stale_parts(&dir, cluster).map_err(dir_err)?;
    if let Some(copy_dir) = &cfg.copy_to {
        // A copy interrupted by a crash leaves its `.part` there too; a
        // missing or unmounted volume is reported later, by the copy itself.
        let _ = store::clean_stale_parts(copy_dir, cluster);
    }

    let mut client = EtcdClient::connect(cfg).await?;
    let status = client.status().await?;
    let status_revision = status
        .header
        .as_ref()
        .map(|h| h.revision)
        .unwrap_or_default();
    let mut name = SnapshotName {
        cluster: cluster.to_string(),
        time: now,
        revision: status_revision,
    };
    let started = Instant::now();
    let saved = save_stream(&mut client, &dir.join(name.file_name())).await?;
    let duration = started.elapsed();
    // Writes between `Status` and the snapshot move the revision on; the
    // database itself says which revision it holds.
    name.revision = saved.revision.unwrap_or(status_revision);
    let revision = name.revision;
    let path = dir.join(name.file_name());

    let meta = SnapshotMeta {
        cluster: cluster.to_string(),
        file: name.file_name(),
        created_at: now,
        size: saved.file_len,
        sha256: hex::encode(saved.sha256),
        revision,
        etcd_version: status.version.clone(),
        endpoint: client.endpoint().to_string(),
        duration_seconds: duration.as_secs_f64(),
        keelson_version: env!("CARGO_PKG_VERSION").to_string(),
        trigger,
        verified: true,
        restore_check: None,
    };
    // The metadata goes first: a `.db` without metadata is treated as foreign
    // and never pruned, so a crash between the two renames is safe.
    store::write_meta(&path, &meta).map_err(|source| SnapshotError::Write {
        path: store::meta_path(&path),
        source,
    })?;
    finish_rename(&saved.part, &path)?;

    let mut copies = Vec::new();
    if let Some(dest) = &cfg.copy_to {
        let copy = copy_to(&path, dest, &meta).map_err(|source| SnapshotError::Copy {
            file: path.clone(),
            dest: dest.clone(),
            source,
        })?;
        copies.push(copy);
    }
    let mut pruned = Vec::new();
    for dest in cfg.destinations(state_dir) {
        // Retention reads every kept snapshot in full: off the async workers.
        let (d, c, retain) = (dest.clone(), cluster.to_string(), cfg.retain);
        let result =
            tokio::task::spawn_blocking(move || super::retention::apply_retention(&d, &c, retain))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
        pruned.extend(result.map_err(|source| SnapshotError::Dir {
            dir: dest.clone(),
            source,
        })?);
    }
    Ok(SnapshotRecord {
        path,
        copies,
        meta,
        pruned,
    })
}

/// A verified `.part` file ready to be renamed.
struct Saved {
    part: PathBuf,
    file_len: u64,
    sha256: [u8; 32],
    revision: Option<i64>,
}

/// Removes the `.part` file unless the snapshot completed.
struct PartGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What the writer thread hands back.
struct Written {
    file: File,
    len: u64,
    sha256: [u8; 32],
    head: Vec<u8>,
}

/// Streams a snapshot from `client` into `<path>.part`, verified and fsynced
/// with etcd's digest appended (the layout `etcdctl snapshot save` writes and
/// `etcdctl snapshot restore` checks).
async fn save_stream(client: &mut EtcdClient, path: &Path) -> Result<Saved, SnapshotError> {
    let part = store::part_path(path);
    let write_err = |source| SnapshotError::Write {
        path: part.clone(),
        source,
    };
    let file = store::create_private(&part).map_err(write_err)?;
    let mut guard = PartGuard {
        path: part.clone(),
        armed: true,
    };
    let endpoint = client.endpoint().to_string();
    let mut stream = client.snapshot().await?;

    // Hashing and writing run on a blocking thread so that they overlap with
    // receiving and decoding the next chunks.
    let (tx, rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, rx));

    let mut received: u64 = 0;
    let mut total: Option<u64> = None;
    let mut digest: Option<Bytes> = None;
    let broke = |received, reason: String| SnapshotError::Stream {
        endpoint: endpoint.clone(),
        received,
        reason,
    };
    let stream_result: Result<(), SnapshotError> = async {
        loop {
            let msg = match tokio::time::timeout(IDLE_TIMEOUT, stream.message()).await {
                Err(_) => {
                    return Err(broke(
                        received,
                        format!("no data for {}s", IDLE_TIMEOUT.as_secs()),
                    ));
                }
                Ok(Err(status)) => {
                    let mut reason = status.message().to_string();
                    let mut source = std::error::Error::source(&status);
                    while let Some(s) = source {
                        let text = s.to_string();
                        if !reason.contains(&text) {
                            reason = format!("{reason}: {text}");
                        }
                        source = s.source();
                    }
                    return Err(broke(received, reason));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(msg))) => msg,
            };
            if digest.is_some() {
                return Err(broke(
                    received,
                    "data after the final sha256 message".into(),
                ));
            }
            let data_done = total.is_some_and(|t| received == t);
            if data_done {
                if msg.blob.len() != 32 {
                    return Err(broke(
                        received,
                        format!(
                            "final message holds {} bytes, expected a 32-byte sha256",
                            msg.blob.len()
                        ),
                    ));
                }
                digest = Some(msg.blob);
                continue;
            }
            let len = msg.blob.len() as u64;
            let expected_total = received + len + msg.remaining_bytes;
            match total {
                None => total = Some(expected_total),
                Some(t) if t != expected_total => {
                    return Err(broke(
                        received,
                        format!("size changed mid-stream ({t} then {expected_total} bytes)"),
                    ));
                }
                Some(_) => {}
            }
            received += len;
            if tx.send(msg.blob).await.is_err() {
                // The writer stopped: its error is reported below.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| write_err(io::Error::other(e.to_string())))?
        .map_err(write_err)?;
    stream_result?;

    let Some(expected) = digest else {
        let reason = match total {
            Some(t) if received < t => format!("stream ended with {} bytes missing", t - received),
            _ => "stream ended before etcd sent the sha256".to_string(),
        };
        return Err(broke(received, reason));
    };
    if written.len != received {
        return Err(write_err(io::Error::other("writer lost data")));
    }
    if expected.as_ref() != written.sha256 {
        return Err(SnapshotError::Checksum {
            expected: hex::encode(&expected),
            actual: hex::encode(written.sha256),
        });
    }
    let bolt_meta = bolt::check_head(&written.head, written.len)?;

    let mut file = written.file;
    file.write_all(&expected).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    let revision = bolt::last_revision(&file, &bolt_meta)?;
    guard.armed = false;
    Ok(Saved {
        part,
        file_len: written.len + 32,
        sha256: written.sha256,
        revision,
    })
}

fn write_chunks(file: File, mut rx: mpsc::Receiver<Bytes>) -> io::Result<Written> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(bolt::HEAD_LEN);
    let mut len = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        if head.len() < bolt::HEAD_LEN {
            let take = (bolt::HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        len += chunk.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(Written {
        file,
        len,
        sha256: hasher.finalize().into(),
        head,
    })
}

/// Renames a finished `.part` to its final name and fsyncs the directory.
fn finish_rename(part: &Path, path: &Path) -> Result<(), SnapshotError> {
    let result = fs::rename(part, path)
        .and_then(|()| store::sync_dir(path.parent().unwrap_or(Path::new("."))));
    result.map_err(|source| {
        let _ = fs::remove_file(part);
        SnapshotError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Copies a finished snapshot and its metadata into `dest`, atomically.
fn copy_to(src: &Path, dest: &Path, meta: &SnapshotMeta) -> io::Result<PathBuf> {
    fs::create_dir_all(dest)?;
    let target = dest.join(src.file_name().unwrap_or_default());
    let part = store::part_path(&target);
    let result = (|| {
        let mut from = File::open(src)?;
        let mut to = store::create_private(&part)?;
        io::copy(&mut from, &mut to)?;
        to.sync_all()?;
        store::write_meta(&target, meta)?;
        fs::rename(&part, &target)?;
        store::sync_dir(dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&part);
    }
    result.map(|()| target)
}
