//! Snapshots match `etcdctl snapshot save` and carry correct metadata.

use std::os::unix::fs::PermissionsExt;

use keelson::backup::store::{self, SnapshotName, Trigger};
use keelson::backup::{take_snapshot, verify_file};
use sha2::{Digest, Sha256};

use crate::common::{TestEtcd, at, files_with_suffix, restored_keys};
use crate::require_etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_matches_etcdctl_and_restores_the_same_keys() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    let rev = etcd.fill(300, 2048).await;
    let cfg = etcd.config("snaps");

    let record = take_snapshot("prod-eu", &cfg, None, Trigger::OnDemand, at(9, 30, 0))
        .await
        .expect("snapshot succeeds");
    let ctl_path = etcd.tmp.path().join("etcdctl.db");
    let out = etcd.etcdctl(&["snapshot", "save", ctl_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = std::fs::read(&record.path).unwrap();
    let theirs = std::fs::read(&ctl_path).unwrap();
    assert_eq!(ours.len(), theirs.len(), "same size as etcdctl's file");
    assert_eq!(record.meta.size, ours.len() as u64);
    // The last 32 bytes are etcd's sha256 of everything before them.
    let (data, trailer) = ours.split_at(ours.len() - 32);
    assert_eq!(Sha256::digest(data).as_slice(), trailer);
    assert_eq!(record.meta.sha256, hex::encode(trailer));
    assert_eq!(
        &theirs[theirs.len() - 32..],
        trailer,
        "same database bytes as etcdctl"
    );

    // Name, mode, metadata.
    let name = SnapshotName::parse(record.path.file_name().unwrap().to_str().unwrap()).unwrap();
    assert_eq!(name.cluster, "prod-eu");
    assert_eq!(name.time, at(9, 30, 0));
    assert_eq!(name.revision, rev);
    assert!(
        record
            .path
            .to_string_lossy()
            .ends_with(&format!("-rev{rev}.db"))
    );
    let mode = std::fs::metadata(&record.path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "snapshots hold secrets: owner-only");
    let meta = store::read_meta(&record.path).expect("metadata file beside the snapshot");
    assert_eq!(meta, record.meta);
    assert_eq!(meta.trigger, Trigger::OnDemand);
    assert_eq!(meta.revision, rev);
    assert!(meta.etcd_version.starts_with("3."), "{}", meta.etcd_version);
    assert!(meta.verified);
    assert!(files_with_suffix(&cfg.dir.clone().unwrap(), ".part").is_empty());

    let report = verify_file(&record.path).expect("verify passes");
    assert_eq!(
        report.walk.revision,
        Some(rev),
        "highest revision in the key bucket"
    );
    assert!(report.walk.entries >= 300);
    verify_file(&ctl_path).expect("etcdctl's file verifies too");

    let expected: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("/registry/test/{i:05}").into_bytes())
        .collect();
    let ours_keys = restored_keys(&record.path).await;
    let theirs_keys = restored_keys(&ctl_path).await;
    assert_eq!(ours_keys, expected);
    assert_eq!(ours_keys, theirs_keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_gets_an_identical_copy_and_metadata() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(20, 100).await;
    let mut cfg = etcd.config("primary");
    let remote = etcd.tmp.path().join("remote/etcd");
    cfg.copy_to = Some(remote.clone());

    let record = take_snapshot("c1", &cfg, None, Trigger::Scheduled, at(1, 0, 0))
        .await
        .expect("snapshot succeeds");
    assert_eq!(record.copies.len(), 1);
    let copy = &record.copies[0];
    assert_eq!(copy.parent().unwrap(), remote);
    assert_eq!(
        std::fs::read(copy).unwrap(),
        std::fs::read(&record.path).unwrap()
    );
    assert_eq!(store::read_meta(copy).unwrap(), record.meta);
    verify_file(copy).expect("copy verifies");
    assert!(files_with_suffix(&remote, ".part").is_empty());
}
