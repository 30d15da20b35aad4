//! Failures are clear errors and never leave a file that looks complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keelson::backup::etcd::EtcdError;
use keelson::backup::local_etcd::free_port;
use keelson::backup::store::{ClusterLock, Trigger};
use keelson::backup::{SnapshotError, take_snapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{TestEtcd, at, files_with_suffix};
use crate::require_etcd;

/// A loopback TCP proxy that forwards to `upstream` and cuts every connection
/// once `limit` bytes have flowed back from the server.
async fn cutting_proxy(upstream: String, limit: u64) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forwarded = Arc::new(AtomicU64::new(0));
    let counter = forwarded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut sent = 0u64;
                let mut buf = vec![0u8; 16 * 1024];
                while sent < limit {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let n = n.min((limit - sent) as usize);
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n as u64;
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                }
                // Cut: drop both directions.
                up.abort();
            });
        }
    });
    (format!("http://{addr}"), forwarded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_stream_leaves_no_snapshot() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(40, 200 * 1024).await; // ~8 MB database
    let upstream = etcd.url().trim_start_matches("http://").to_string();
    let (proxy, forwarded) = cutting_proxy(upstream, 2 * 1024 * 1024).await;
    let mut cfg = etcd.config("snaps");
    cfg.endpoints = vec![proxy];

    let err = take_snapshot("cut", &cfg, None, Trigger::Scheduled, at(3, 0, 0))
        .await
        .expect_err("a cut stream must fail");
    assert!(matches!(err, SnapshotError::Stream { .. }), "{err}");
    assert!(
        err.to_string().contains("partial file was removed"),
        "{err}"
    );
    assert!(
        forwarded.load(Ordering::SeqCst) >= 2 * 1024 * 1024,
        "the stream was underway"
    );
    let dir = cfg.dir.clone().unwrap();
    assert!(
        files_with_suffix(&dir, ".db").is_empty(),
        "no .db after a cut"
    );
    assert!(
        files_with_suffix(&dir, ".part").is_empty(),
        "no .part left behind"
    );
    assert!(
        files_with_suffix(&dir, ".json").is_empty(),
        "no metadata for a failed run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_mid_stream_leaves_no_snapshot() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(60, 500 * 1024).await; // ~30 MB database
    // A proxy that never cuts but reports progress lets the test kill etcd
    // while the stream is underway, without guessing at timing.
    let upstream = etcd.url().trim_start_matches("http://").to_string();
    let (proxy, forwarded) = cutting_proxy(upstream, u64::MAX).await;
    let mut cfg = etcd.config("snaps");
    cfg.endpoints = vec![proxy];
    let pid = etcd.etcd.pid().unwrap();
    let killer = tokio::spawn(async move {
        while forwarded.load(Ordering::SeqCst) < 1024 * 1024 {
            tokio::task::yield_now().await;
        }
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    });
    let result = take_snapshot("killed", &cfg, None, Trigger::Scheduled, at(3, 0, 0)).await;
    killer.await.unwrap();
    let dir = cfg.dir.clone().unwrap();
    match result {
        Err(err) => {
            eprintln!("etcd killed mid-stream: {err}");
            assert!(matches!(err, SnapshotError::Stream { .. }), "{err}");
            assert!(files_with_suffix(&dir, ".db").is_empty());
        }
        // etcd can finish sending before the kill lands; then the file must be whole.
        Ok(record) => {
            eprintln!("etcd finished the stream before the kill landed");
            keelson::backup::verify_file(&record.path).expect("a completed snapshot verifies");
        }
    }
    assert!(files_with_suffix(&dir, ".part").is_empty());
}

#[tokio::test]
async fn etcd_down_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let cfg = keelson::backup::EtcdClusterConfig {
        endpoints: vec![format!("http://127.0.0.1:{port}")],
        dir: Some(tmp.path().join("snaps")),
        ..Default::default()
    };
    let err = take_snapshot("down", &cfg, None, Trigger::OnDemand, at(4, 0, 0))
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(err, SnapshotError::Etcd(EtcdError::Unreachable { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("cannot reach etcd"), "{err}");
    assert!(
        err.to_string().contains(&port.to_string()),
        "names the endpoint: {err}"
    );
    assert!(files_with_suffix(&tmp.path().join("snaps"), ".db").is_empty());
}

#[tokio::test]
async fn unwritable_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cfg = keelson::backup::EtcdClusterConfig {
        endpoints: vec!["http://127.0.0.1:1".into()],
        dir: Some(file.join("snaps")),
        ..Default::default()
    };
    let err = take_snapshot("w", &cfg, None, Trigger::OnDemand, at(4, 0, 0))
        .await
        .expect_err("dir cannot be created");
    assert!(matches!(err, SnapshotError::Dir { .. }), "{err}");
    assert!(
        err.to_string().contains("etcd.dir"),
        "tells what to change: {err}"
    );
}

#[tokio::test]
async fn overlapping_run_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snaps");
    std::fs::create_dir_all(&dir).unwrap();
    let held = ClusterLock::try_acquire(&dir, "busy")
        .unwrap()
        .expect("lock is free");
    let cfg = keelson::backup::EtcdClusterConfig {
        endpoints: vec!["http://127.0.0.1:1".into()],
        dir: Some(dir.clone()),
        ..Default::default()
    };
    let err = take_snapshot("busy", &cfg, None, Trigger::Scheduled, at(5, 0, 0))
        .await
        .expect_err("a run is in progress");
    assert!(matches!(err, SnapshotError::Busy { .. }), "{err}");
    // Other clusters are not blocked.
    assert!(ClusterLock::try_acquire(&dir, "other").unwrap().is_some());
    drop(held);
    assert!(ClusterLock::try_acquire(&dir, "busy").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_user_and_password() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(5, 10).await;
    for args in [
        &["user", "add", "root:s3cret-pw", "--interactive=false"][..],
        &["auth", "enable"][..],
    ] {
        let out = etcd.etcdctl(args);
        assert!(
            out.status.success(),
            "{:?}: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pw = etcd.tmp.path().join("etcd-pass");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let mut cfg = etcd.config("snaps");
    cfg.username = Some("root".into());
    cfg.password_file = Some(pw.clone());
    let record = take_snapshot("auth", &cfg, None, Trigger::OnDemand, at(6, 0, 0))
        .await
        .expect("snapshot with credentials");
    keelson::backup::verify_file(&record.path).unwrap();

    std::fs::write(&pw, "wrong").unwrap();
    let err = take_snapshot("auth", &cfg, None, Trigger::OnDemand, at(6, 1, 0))
        .await
        .expect_err("wrong password");
    assert!(
        matches!(err, SnapshotError::Etcd(EtcdError::Auth { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("passwordFile"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "never print the password: {err}"
    );

    cfg.username = None;
    cfg.password_file = None;
    let err = take_snapshot("auth", &cfg, None, Trigger::OnDemand, at(6, 2, 0))
        .await
        .expect_err("no credentials");
    assert!(
        matches!(err, SnapshotError::Etcd(EtcdError::Auth { .. })),
        "{err}"
    );
    assert_eq!(
        files_with_suffix(&etcd.tmp.path().join("snaps"), ".db").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_over_to_the_next_endpoint() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(3, 10).await;
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let mut cfg = etcd.config("snaps");
    cfg.endpoints = vec![dead, etcd.url()];
    let record = take_snapshot("multi", &cfg, None, Trigger::OnDemand, at(9, 0, 0))
        .await
        .expect("second endpoint answers");
    assert_eq!(record.meta.endpoint, etcd.url());
}
