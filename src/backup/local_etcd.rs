//! A single-member etcd on loopback, used by the restore check (and by tests
//! and benchmarks). It is killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::etcd::{ConnectOptions, EtcdClient};

/// Why a local etcd did not come up.
#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    /// The binary is missing or could not start.
    #[error(
        "cannot start {binary}: {source}; install etcd (Debian: etcd-server) or set KEELSON_ETCD"
    )]
    Spawn {
        /// Binary tried.
        binary: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// No free loopback port.
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    /// It started but never answered.
    #[error("etcd on {url} did not become ready: {reason}; log tail:\n{log}")]
    NotReady {
        /// Client URL.
        url: String,
        /// Last error.
        reason: String,
        /// Tail of etcd's log.
        log: String,
    },
}

/// The etcd binary: `$KEELSON_ETCD` or `etcd` from `PATH`.
pub fn etcd_binary() -> String {
    std::env::var("KEELSON_ETCD").unwrap_or_else(|_| "etcd".into())
}

/// The etcdctl binary: `$KEELSON_ETCDCTL` or `etcdctl` from `PATH`.
pub fn etcdctl_binary() -> String {
    std::env::var("KEELSON_ETCDCTL").unwrap_or_else(|_| "etcdctl".into())
}

/// The etcdutl binary (etcd 3.5+): `$KEELSON_ETCDUTL` or `etcdutl` from `PATH`.
pub fn etcdutl_binary() -> String {
    std::env::var("KEELSON_ETCDUTL").unwrap_or_else(|_| "etcdutl".into())
}

/// A free TCP port on 127.0.0.1, chosen by the OS.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running single-member etcd listening on 127.0.0.1 only.
#[derive(Debug)]
pub struct LocalEtcd {
    child: Child,
    /// Client URL, `http://127.0.0.1:<port>`.
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    /// Member name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl LocalEtcd {
    /// Peer URL and `--initial-cluster` value for a member `name` on `peer_port`.
    pub fn peer_settings(name: &str, peer_port: u16) -> (String, String) {
        let peer = format!("http://127.0.0.1:{peer_port}");
        let cluster = format!("{name}={peer}");
        (peer, cluster)
    }

    /// Starts etcd on fresh loopback ports with `data_dir` (new or restored)
    /// and waits until it answers. `peer_port` must match a restore's
    /// `--initial-advertise-peer-urls`; `None` picks a free one.
    pub async fn start(
        name: &str,
        data_dir: &Path,
        peer_port: Option<u16>,
        extra_args: &[&str],
    ) -> Result<LocalEtcd, LocalEtcdError> {
        let mut last = String::new();
        // A port picked by the OS can be taken before etcd binds it: retry.
        for _ in 0..3 {
            match Self::try_start(name, data_dir, peer_port, extra_args).await {
                Ok(etcd) => return Ok(etcd),
                Err(err @ LocalEtcdError::Spawn { .. }) => return Err(err),
                Err(err) => last = err.to_string(),
            }
        }
        Err(LocalEtcdError::NotReady {
            url: "127.0.0.1".into(),
            reason: last,
            log: String::new(),
        })
    }

    async fn try_start(
        name: &str,
        data_dir: &Path,
        peer_port: Option<u16>,
        extra_args: &[&str],
    ) -> Result<LocalEtcd, LocalEtcdError> {
        let client_port = free_port().map_err(LocalEtcdError::Port)?;
        let peer_port = match peer_port {
            Some(p) => p,
            None => free_port().map_err(LocalEtcdError::Port)?,
        };
        let client_url = format!("http://127.0.0.1:{client_port}");
        let (peer_url, initial_cluster) = Self::peer_settings(name, peer_port);
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log).map_err(|source| LocalEtcdError::Spawn {
            binary: etcd_binary(),
            source,
        })?;
        let log_err = log_file
            .try_clone()
            .map_err(|source| LocalEtcdError::Spawn {
                binary: etcd_binary(),
                source,
            })?;
        let binary = etcd_binary();
        let child = Command::new(&binary)
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(extra_args)
            .env_remove("ETCD_NAME")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LocalEtcdError::Spawn { binary, source })?;
        let mut etcd = LocalEtcd {
            child,
            client_url,
            peer_url,
            name: name.to_string(),
            data_dir: data_dir.to_path_buf(),
            log,
        };
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    async fn wait_ready(&mut self) -> Result<(), LocalEtcdError> {
        let mut reason = String::from("timed out");
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                reason = format!("etcd exited with {status}");
                break;
            }
            match self.client().await {
                Ok(_) => return Ok(()),
                Err(err) => reason = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.start_kill();
        Err(LocalEtcdError::NotReady {
            url: self.client_url.clone(),
            reason,
            log: self.log_tail(),
        })
    }

    /// A client connected to this etcd (no TLS, no auth).
    pub async fn client(&self) -> Result<EtcdClient, super::etcd::EtcdError> {
        EtcdClient::connect_any(
            std::slice::from_ref(&self.client_url),
            &ConnectOptions::default(),
        )
        .await
    }

    /// The last lines of etcd's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Process id, for tests that kill etcd mid-stream.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills etcd and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
