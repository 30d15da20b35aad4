//! The restore check restores a snapshot into a throwaway etcd and reads a key.

use keelson::backup::restore_check::{RestoreCheckError, restore_check};
use keelson::backup::store::Trigger;
use keelson::backup::take_snapshot;

use crate::common::{TestEtcd, at};
use crate::require_etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_check_reads_a_known_key() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(25, 64).await;
    etcd.client()
        .await
        .put(b"/registry/namespaces/default", b"{\"kind\":\"Namespace\"}")
        .await
        .unwrap();
    let cfg = etcd.config("snaps");
    let rec = take_snapshot("rc", &cfg, None, Trigger::OnDemand, at(7, 0, 0))
        .await
        .unwrap();

    let report = restore_check(&rec.path, Some("/registry/namespaces/default"))
        .await
        .expect("restore check passes");
    assert_eq!(report.keys, 26);
    assert_eq!(report.key, "/registry/namespaces/default");
    assert_eq!(report.value_len, 20);

    let report = restore_check(&rec.path, None).await.expect("any key");
    assert_eq!(
        report.key, "/registry/namespaces/default",
        "first key in order"
    );

    let err = restore_check(&rec.path, Some("/registry/nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreCheckError::MissingKey(_)), "{err}");

    // A corrupted file is refused by etcdctl's own hash check.
    let mut bytes = std::fs::read(&rec.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    let bad = rec.path.with_file_name("corrupt.db");
    std::fs::write(&bad, bytes).unwrap();
    let err = restore_check(&bad, None).await.unwrap_err();
    assert!(matches!(err, RestoreCheckError::Restore(_)), "{err}");
}
