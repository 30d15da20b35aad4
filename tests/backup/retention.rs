//! Retention keeps exactly N scheduled snapshots per destination, counts only
//! files that verify now, and never deletes on-demand ones or the last one
//! that verifies.

use std::path::Path;

use chrono::{DateTime, Utc};
use keelson::backup::retention::{self, Integrity, apply_retention};
use keelson::backup::store::{
    self, RestoreCheckOutcome, SnapshotMeta, SnapshotName, Trigger, clean_stale_parts,
    list_snapshots,
};
use keelson::backup::{SnapshotRecord, take_snapshot};

use crate::common::{TestEtcd, at, files_with_suffix};
use crate::require_etcd;

/// One real snapshot of a small etcd, to copy under other names.
async fn real_snapshot(etcd: &TestEtcd) -> SnapshotRecord {
    etcd.fill(10, 100).await;
    take_snapshot(
        "src",
        &etcd.config("source"),
        None,
        Trigger::OnDemand,
        at(23, 0, 0),
    )
    .await
    .expect("snapshot")
}

/// A copy of `real` named for `cluster` at `time`, with its metadata (same
/// size and sha256: the file verifies); `verified: false` marks one that
/// failed its check when taken.
fn copy_as(
    real: &SnapshotRecord,
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
        revision: real.meta.revision,
    }
    .file_name();
    let path = dir.join(&name);
    std::fs::copy(&real.path, &path).unwrap();
    let meta = SnapshotMeta {
        cluster: cluster.into(),
        file: name.clone(),
        created_at: time,
        trigger,
        verified,
        ..real.meta.clone()
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

/// Flip one bit in the middle of a file, in place (as a failing disk would).
fn flip_a_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_newest_n_scheduled_and_every_on_demand() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    let real = real_snapshot(&etcd).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut scheduled: Vec<String> = (0..6)
        .map(|h| copy_as(&real, dir, "prod", at(h, 0, 0), Trigger::Scheduled, true))
        .collect();
    let manual = copy_as(&real, dir, "prod", at(0, 30, 0), Trigger::OnDemand, true);
    // A name sharing the prefix belongs to another cluster.
    let other = copy_as(&real, dir, "prod-eu", at(0, 0, 0), Trigger::Scheduled, true);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_deletes_the_only_good_snapshot() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    let real = real_snapshot(&etcd).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = copy_as(&real, dir, "c", at(0, 0, 0), Trigger::Scheduled, true);
    copy_as(&real, dir, "c", at(1, 0, 0), Trigger::Scheduled, false);
    let failed_check = copy_as(&real, dir, "c", at(2, 0, 0), Trigger::Scheduled, true);
    let path = dir.join(&failed_check);
    let mut meta = store::read_meta(&path).unwrap();
    meta.restore_check = Some(RestoreCheckOutcome {
        checked_at: at(2, 1, 0),
        passed: false,
        keys: None,
        error: Some("boom".into()),
    });
    store::write_meta(&path, &meta).unwrap();
    // Metadata says good, the file is not.
    let truncated = copy_as(&real, dir, "c", at(3, 0, 0), Trigger::Scheduled, true);
    std::fs::write(dir.join(&truncated), b"").unwrap();
    let flipped = copy_as(&real, dir, "c", at(4, 0, 0), Trigger::Scheduled, true);
    flip_a_bit(&dir.join(&flipped));

    assert!(apply_retention(dir, "c", 1).unwrap().is_empty());
    assert!(dir.join(&good).exists(), "the only good snapshot stays");
    // A newer good one lets the older ones go.
    let newer = copy_as(&real, dir, "c", at(5, 0, 0), Trigger::Scheduled, true);
    apply_retention(dir, "c", 1).unwrap();
    assert_eq!(names(dir, "c"), vec![newer]);
}

/// The issue's case, end to end with a real etcd: with `retain: 2`, a scheduled snapshot
/// bit-flipped after it was written and one truncated to 0 bytes must not count, so the
/// older good one survives the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_snapshots_do_not_count_and_the_last_good_one_stays() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(20, 200).await;
    let mut cfg = etcd.config("snaps");
    cfg.retain = 2;
    let take = |h: u32| {
        let cfg = cfg.clone();
        async move {
            take_snapshot("r", &cfg, None, Trigger::Scheduled, at(h, 0, 0))
                .await
                .unwrap()
                .path
        }
    };
    let a = take(1).await;
    let b = take(2).await;
    flip_a_bit(&b);
    let c = take(3).await;
    std::fs::write(&c, b"").unwrap();
    let check = |p: &Path| {
        let s = list_snapshots(p.parent().unwrap(), Some("r"))
            .unwrap()
            .into_iter()
            .find(|s| s.path == p)
            .unwrap();
        retention::check(&s)
    };
    assert_eq!(check(&a), Integrity::Good);
    assert!(
        matches!(check(&b), Integrity::Corrupt(ref why) if why.contains("sha256")),
        "{:?}",
        check(&b)
    );
    assert!(
        matches!(check(&c), Integrity::Corrupt(ref why) if why.contains("0 bytes")),
        "{:?}",
        check(&c)
    );
    // Metadata-only retention would now keep c and b and delete a.
    let d = take(4).await;
    assert!(a.exists(), "the last good snapshot before d was deleted");
    assert!(d.exists());
    // The good ones are a and d; b and c are newer than the cutoff (a) and stay as evidence.
    assert_eq!(
        names(a.parent().unwrap(), "r").len(),
        4,
        "{:?}",
        names(a.parent().unwrap(), "r")
    );
    // One more good snapshot: now d and e are the two kept; everything older goes.
    let e = take(5).await;
    let left: Vec<String> = names(a.parent().unwrap(), "r");
    let expect: Vec<String> = [&e, &d]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, expect);
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
