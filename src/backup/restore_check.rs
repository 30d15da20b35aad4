//! The restore check: restore a snapshot into a throwaway data dir with
//! `etcdutl` (or, on etcd 3.4, `etcdctl`) `snapshot restore`, boot etcd on it on loopback, count the keys and
//! read a known key, then remove everything.

use std::path::Path;

use serde::Serialize;
use tokio::process::Command;

use super::etcd::EtcdError;
use super::local_etcd::{self, LocalEtcd, LocalEtcdError};

/// Why a restore check failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreCheckError {
    /// No temporary directory.
    #[error("cannot create a temporary directory for the restore check: {0}")]
    TempDir(std::io::Error),
    /// etcdctl is missing.
    #[error(
        "cannot run {binary}: {source}; install etcdctl (Debian: etcd-client) or set KEELSON_ETCDCTL"
    )]
    Etcdctl {
        /// Binary tried.
        binary: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// `etcdctl snapshot restore` refused the file.
    #[error("etcdctl snapshot restore failed: {0}")]
    Restore(String),
    /// The restored etcd did not start.
    #[error("restored etcd did not start: {0}")]
    Start(#[from] LocalEtcdError),
    /// The restored etcd did not answer.
    #[error("restored etcd did not answer: {0}")]
    Query(#[from] EtcdError),
    /// The restored store is empty.
    #[error("the restored etcd holds no keys")]
    Empty,
    /// The known key is missing.
    #[error("the restored etcd has no key {0:?}")]
    MissingKey(String),
}

/// What the restored etcd held.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreCheckReport {
    /// Number of keys.
    pub keys: i64,
    /// The key that was read.
    pub key: String,
    /// Length of its value.
    pub value_len: usize,
}

/// Restores `snapshot` into a temporary etcd and reads `known_key` from it
/// (or the first key when `None`).
pub async fn restore_check(
    snapshot: &Path,
    known_key: Option<&str>,
) -> Result<RestoreCheckReport, RestoreCheckError> {
    let tmp = tempfile::Builder::new()
        .prefix("keelson-restore-check-")
        .tempdir()
        .map_err(RestoreCheckError::TempDir)?;
    let data_dir = tmp.path().join("member");
    let name = "keelson-restore-check";
    let peer_port = local_etcd::free_port().map_err(RestoreCheckError::TempDir)?;
    let (peer_url, initial_cluster) = LocalEtcd::peer_settings(name, peer_port);
    // etcd 3.5 moved restore to etcdutl and 3.6 removed it from etcdctl;
    // 3.4 only has etcdctl. Both take the same flags.
    let mut out = None;
    let mut last_err = None;
    for binary in [local_etcd::etcdutl_binary(), local_etcd::etcdctl_binary()] {
        let result = Command::new(&binary)
            .args(["snapshot", "restore"])
            .arg(snapshot)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--name", name])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .env("ETCDCTL_API", "3")
            .output()
            .await;
        match result {
            Ok(o) => {
                out = Some(o);
                break;
            }
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                last_err = Some(RestoreCheckError::Etcdctl { binary, source });
            }
            Err(source) => return Err(RestoreCheckError::Etcdctl { binary, source }),
        }
    }
    let Some(out) = out else {
        return Err(last_err.expect("at least one binary was tried"));
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        return Err(RestoreCheckError::Restore(last));
    }
    let etcd = LocalEtcd::start(name, &data_dir, Some(peer_port), &[]).await?;
    let result = async {
        let mut client = etcd.client().await?;
        let keys = client.count_keys().await?;
        if keys == 0 {
            return Err(RestoreCheckError::Empty);
        }
        let (key, value_len) = match known_key {
            Some(key) => {
                let value = client
                    .get(key.as_bytes())
                    .await?
                    .ok_or_else(|| RestoreCheckError::MissingKey(key.to_string()))?;
                (key.to_string(), value.len())
            }
            None => {
                let kv = client.first().await?.ok_or(RestoreCheckError::Empty)?;
                (
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    kv.value.len(),
                )
            }
        };
        Ok(RestoreCheckReport {
            keys,
            key,
            value_len,
        })
    }
    .await;
    etcd.stop().await;
    drop(tmp);
    result
}
