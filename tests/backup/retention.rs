//! Retention keeps exactly N scheduled snapshots per destination and never
//! deletes on-demand ones or the last good one.

use std::path::Path;

use chrono::{DateTime, Utc};
use keelson::backup::store::{
    self, RestoreCheckOutcome, SnapshotMeta, SnapshotName, Trigger, apply_retention,
    clean_stale_parts, list_snapshots,
};
use keelson::backup::take_snapshot;

use crate::common::{TestEtcd, at, files_with_suffix};
use crate::require_etcd;

/// Writes a fake snapshot with metadata; `verified: false` marks a bad one.
fn fake(
    dir: &Path,
    cluster: &str,
    time: DateTime<Utc>,
    trigger: Trigger,
    verified: bool,
) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let name = SnapshotName {
        cluster: cluster.into(),
        time,
        revision: 7,
    }
    .file_name();
    let path = dir.join(&name);
    std::fs::write(&path, b"data").unwrap();
    let meta = SnapshotMeta {
        cluster: cluster.into(),
        file: name.clone(),
        created_at: time,
        size: 4,
        sha256: String::new(),
        revision: 7,
        etcd_version: "3.4.23".into(),
        endpoint: "http://127.0.0.1:2379".into(),
        duration_seconds: 0.1,
        keelson_version: "test".into(),
        trigger,
        verified,
        restore_check: None,
    };
    store::write_meta(&path, &meta).unwrap();
    name
}

fn names(dir: &Path, cluster: &str) -> Vec<String> {
    list_snapshots(dir, Some(cluster))
        .unwrap()
        .into_iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn keeps_newest_n_scheduled_and_every_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut scheduled: Vec<String> = (0..6)
        .map(|h| fake(dir, "prod", at(h, 0, 0), Trigger::Scheduled, true))
        .collect();
    let manual = fake(dir, "prod", at(0, 30, 0), Trigger::OnDemand, true);
    // A name sharing the prefix belongs to another cluster.
    let other = fake(dir, "prod-eu", at(0, 0, 0), Trigger::Scheduled, true);
    // A foreign .db without metadata.
    let foreign = SnapshotName {
        cluster: "prod".into(),
        time: at(0, 10, 0),
        revision: 1,
    }
    .file_name();
    std::fs::write(dir.join(&foreign), b"x").unwrap();

    let deleted = apply_retention(dir, "prod", 3).unwrap();
    assert_eq!(deleted.len(), 3);
    scheduled.reverse();
    let left = names(dir, "prod");
    let mut expected = scheduled[..3].to_vec();
    expected.extend([manual.clone(), foreign.clone()]);
    expected.sort();
    let mut got = left.clone();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(names(dir, "prod-eu"), vec![other]);
    // Metadata of deleted snapshots goes too.
    assert_eq!(files_with_suffix(dir, ".json").len(), 3 + 1 + 1);
    // Idempotent.
    assert!(apply_retention(dir, "prod", 3).unwrap().is_empty());
}

#[test]
fn never_deletes_the_only_good_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = fake(dir, "c", at(0, 0, 0), Trigger::Scheduled, true);
    fake(dir, "c", at(1, 0, 0), Trigger::Scheduled, false);
    let failed_check = fake(dir, "c", at(2, 0, 0), Trigger::Scheduled, true);
    let path = dir.join(&failed_check);
    let mut meta = store::read_meta(&path).unwrap();
    meta.restore_check = Some(RestoreCheckOutcome {
        checked_at: at(2, 1, 0),
        passed: false,
        keys: None,
        error: Some("boom".into()),
    });
    store::write_meta(&path, &meta).unwrap();

    assert!(apply_retention(dir, "c", 1).unwrap().is_empty());
    assert!(dir.join(&good).exists(), "the only good snapshot stays");
    // A newer good one lets the older ones go.
    let newer = fake(dir, "c", at(3, 0, 0), Trigger::Scheduled, true);
    apply_retention(dir, "c", 1).unwrap();
    assert_eq!(names(dir, "c"), vec![newer]);
}

#[test]
fn stale_part_files_are_cleaned_per_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mine = SnapshotName {
        cluster: "a".into(),
        time: at(0, 0, 0),
        revision: 3,
    }
    .file_name();
    let theirs = SnapshotName {
        cluster: "b".into(),
        time: at(0, 0, 0),
        revision: 3,
    }
    .file_name();
    std::fs::write(dir.join(format!("{mine}.part")), b"half").unwrap();
    std::fs::write(
        dir.join(format!("{}.json.part", mine.trim_end_matches(".db"))),
        b"{",
    )
    .unwrap();
    std::fs::write(dir.join(format!("{theirs}.part")), b"half").unwrap();
    let removed = clean_stale_parts(dir, "a").unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(
        files_with_suffix(dir, ".part"),
        vec![dir.join(format!("{theirs}.part"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_snapshots_keep_exactly_n_in_each_destination() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(10, 100).await;
    let mut cfg = etcd.config("primary");
    cfg.retain = 2;
    cfg.copy_to = Some(etcd.tmp.path().join("copy"));
    let primary = cfg.dir.clone().unwrap();
    let stale = primary.join(format!(
        "{}.part",
        SnapshotName {
            cluster: "r".into(),
            time: at(0, 0, 0),
            revision: 1
        }
        .file_name()
    ));
    std::fs::create_dir_all(&primary).unwrap();
    std::fs::write(&stale, b"left by a crash").unwrap();

    let manual = take_snapshot("r", &cfg, None, Trigger::OnDemand, at(0, 1, 0))
        .await
        .unwrap();
    let mut last = Vec::new();
    for h in 1..=4 {
        let rec = take_snapshot("r", &cfg, None, Trigger::Scheduled, at(h, 0, 0))
            .await
            .unwrap();
        last.push(rec.path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(!stale.exists(), "stale .part cleaned");
    for dir in [primary.clone(), etcd.tmp.path().join("copy")] {
        let listed = list_snapshots(&dir, Some("r")).unwrap();
        let scheduled: Vec<_> = listed.iter().filter(|s| s.is_scheduled()).collect();
        assert_eq!(
            scheduled.len(),
            2,
            "exactly N scheduled in {}",
            dir.display()
        );
        let got: Vec<String> = scheduled
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, vec![last[3].clone(), last[2].clone()]);
        assert!(files_with_suffix(&dir, ".part").is_empty());
    }
    assert!(manual.path.exists(), "on-demand snapshots are never pruned");
}
