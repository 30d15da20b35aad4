//! Helpers: throwaway etcd servers, etcdctl, configs, a manual clock.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use keelson::backup::EtcdClusterConfig;
use keelson::backup::etcd::EtcdClient;
use keelson::backup::local_etcd::LocalEtcd;
use keelson::backup::schedule::Clock;
use tempfile::TempDir;
use tokio::sync::watch;

/// The env var that lets the backup tests skip where etcd cannot be installed.
pub const ALLOW_SKIP: &str = "KEELSON_TEST_ALLOW_NO_ETCD";

/// True when etcd and etcdctl are installed. When they are missing the test
/// fails with a clear message: a skipped test must never count as passed.
/// Only where etcd cannot be installed, `KEELSON_TEST_ALLOW_NO_ETCD=1` turns
/// the failure into a loud skip (printed, and the test returns early).
pub fn have_etcd(test: &str) -> bool {
    for bin in ["etcd", "etcdctl"] {
        if Command::new(bin).arg("--version").output().is_err() {
            let why = format!(
                "{test}: `{bin}` not found on PATH; install Debian's etcd-server and etcd-client \
                 (scripts/test does), or set {ALLOW_SKIP}=1 where etcd cannot be installed"
            );
            if std::env::var(ALLOW_SKIP).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED (NOT PASSED) {why}");
                return false;
            }
            panic!("{why}");
        }
    }
    true
}

/// Returns early from a test when etcd is not installed and skipping is
/// explicitly allowed; fails the test otherwise.
#[macro_export]
macro_rules! require_etcd {
    () => {
        if !$crate::common::have_etcd(module_path!()) {
            return;
        }
    };
}

/// A running etcd with its own temporary directory.
pub struct TestEtcd {
    pub etcd: LocalEtcd,
    pub tmp: TempDir,
}

impl TestEtcd {
    /// Starts a fresh single-member etcd on loopback.
    pub async fn start() -> TestEtcd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let etcd = LocalEtcd::start("test", &tmp.path().join("data"), None, &[])
            .await
            .expect("etcd starts");
        TestEtcd { etcd, tmp }
    }

    pub fn url(&self) -> String {
        self.etcd.client_url.clone()
    }

    pub async fn client(&self) -> EtcdClient {
        self.etcd.client().await.expect("client connects")
    }

    /// A config pointing at this etcd that snapshots into `<tmp>/<dir>`.
    pub fn config(&self, dir: &str) -> EtcdClusterConfig {
        EtcdClusterConfig {
            endpoints: vec![self.url()],
            dir: Some(self.tmp.path().join(dir)),
            jitter_seconds: 0,
            ..EtcdClusterConfig::default()
        }
    }

    /// Writes `n` keys `/registry/test/<i>` with `size`-byte values; returns the last revision.
    pub async fn fill(&self, n: usize, size: usize) -> i64 {
        let mut client = self.client().await;
        let mut rev = 0;
        for i in 0..n {
            let value: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
            rev = client
                .put(format!("/registry/test/{i:05}").as_bytes(), &value)
                .await
                .expect("put");
        }
        rev
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        etcdctl(&self.url(), args)
    }
}

/// Runs etcdctl (API v3) against `endpoint`.
pub fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("etcdctl runs")
}

/// Restores `snapshot` with etcdctl, boots etcd on it and returns every key.
pub async fn restored_keys(snapshot: &Path) -> Vec<Vec<u8>> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("restored");
    let port = keelson::backup::local_etcd::free_port().expect("port");
    let (peer, cluster) = LocalEtcd::peer_settings("restored", port);
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(&data)
        .args(["--name", "restored", "--initial-cluster", &cluster])
        .args(["--initial-advertise-peer-urls", &peer])
        .output()
        .expect("etcdctl runs");
    assert!(
        out.status.success(),
        "restore of {} failed: {}",
        snapshot.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let etcd = LocalEtcd::start("restored", &data, Some(port), &[])
        .await
        .expect("restored etcd starts");
    let keys = etcd
        .client()
        .await
        .expect("client")
        .keys()
        .await
        .expect("keys");
    etcd.stop().await;
    keys
}

/// `.db` and `.part` files in `dir` (recursively not needed: one level).
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// A fixed instant for tests.
pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
}

/// A clock that only moves when the test says so.
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: watch::channel(start).0,
        })
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|t| *t >= deadline).await;
        })
    }
}
