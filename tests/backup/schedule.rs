//! The schedule runner fires at the cron slots of a controllable clock,
//! records status and metrics, retries failures at the next slot, and runs
//! restore checks on its cadence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keelson::backup::schedule::{jitter, next_slot, parse_schedule, validate};
use keelson::backup::store::{SnapshotName, list_snapshots};
use keelson::backup::{BackupStatus, BackupStatusHandle, EtcdClusterConfig, run_schedules};
use keelson::config::{ClusterConfig, Config};
use tokio_util::sync::CancellationToken;

use crate::common::{ManualClock, TestEtcd, at};
use crate::require_etcd;

/// Waits (bounded) until `cond` holds for the status.
async fn wait_for(
    status: &BackupStatusHandle,
    what: &str,
    cond: impl Fn(&BackupStatus) -> bool,
) -> BackupStatus {
    let mut rx = status.subscribe();
    let wait = async {
        loop {
            let snap = status.snapshot();
            if cond(&snap) {
                return snap;
            }
            let _ = rx.changed().await;
        }
    };
    match tokio::time::timeout(Duration::from_secs(60), wait).await {
        Ok(snap) => snap,
        Err(_) => panic!(
            "timed out waiting for {what}; status: {:#?}",
            status.snapshot()
        ),
    }
}

fn cluster(etcd: EtcdClusterConfig) -> ClusterConfig {
    ClusterConfig {
        etcd: Some(etcd),
        ..Default::default()
    }
}

#[test]
fn cron_slots_and_jitter() {
    let cron = parse_schedule("c", "0 */12 * * *").unwrap();
    let utc = chrono_tz::Tz::UTC;
    assert_eq!(
        next_slot(&cron, utc, at(0, 0, 0)),
        Some(at(12, 0, 0)),
        "strictly after"
    );
    assert_eq!(next_slot(&cron, utc, at(11, 59, 59)), Some(at(12, 0, 0)));
    assert!(
        parse_schedule("c", "0 0 */12 * * *").is_err(),
        "6 fields are refused"
    );
    assert!(
        parse_schedule("c", "nope")
            .unwrap_err()
            .to_string()
            .contains("5 fields")
    );
    let j = jitter("prod-eu", 30);
    assert!(j < Duration::from_secs(30));
    assert_eq!(j, jitter("prod-eu", 30), "stable per cluster");
    assert_ne!(jitter("prod-eu", 30), jitter("prod-us", 30));
    assert_eq!(jitter("x", 0), Duration::ZERO);
    let mut cfg = EtcdClusterConfig {
        endpoints: vec!["http://127.0.0.1:2379".into()],
        ..Default::default()
    };
    cfg.retain = 0;
    assert!(
        validate("c", &cfg)
            .unwrap_err()
            .to_string()
            .contains("retain")
    );
    cfg.retain = 1;
    assert!(validate("prod-eu.1_a", &cfg).is_ok());
    for bad in ["", "../x", "a/b", ".hidden", "a b"] {
        assert!(validate(bad, &cfg).is_err(), "{bad:?}");
    }
}

#[test]
fn schedules_are_read_in_their_time_zone() {
    use chrono::TimeZone;
    let mut cfg = EtcdClusterConfig {
        endpoints: vec!["http://127.0.0.1:2379".into()],
        schedule: "0 2 * * *".into(),
        ..Default::default()
    };
    // UTC unless a zone is named.
    let utc = validate("c", &cfg).unwrap();
    assert_eq!(utc.next_after(at(0, 0, 0)), Some(at(2, 0, 0)));
    // 02:00 in Berlin is 01:00 UTC in winter (CET, +1) and 00:00 UTC in summer (CEST, +2).
    cfg.time_zone = Some("Europe/Berlin".into());
    let berlin = validate("c", &cfg).unwrap();
    assert_eq!(
        berlin.next_after(Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 1, 11, 1, 0, 0).unwrap())
    );
    assert_eq!(
        berlin.next_after(Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 7, 11, 0, 0, 0).unwrap())
    );
    // Spring forward on 2026-03-29: 02:00-03:00 does not exist in Berlin; the 02:00 slot
    // runs once, just after the gap (03:00 CEST = 01:00 UTC).
    assert_eq!(
        berlin.next_after(Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap())
    );
    // Fall back on 2026-10-25: 02:00-03:00 happens twice in Berlin (CEST, then CET). The
    // 02:30 slot runs once, at its first occurrence (00:30 UTC); the next is the day after.
    cfg.schedule = "30 2 * * *".into();
    let berlin = validate("c", &cfg).unwrap();
    let first = berlin
        .next_after(Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap())
        .unwrap();
    assert_eq!(first, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    assert_eq!(
        berlin.next_after(first),
        Some(Utc.with_ymd_and_hms(2026, 10, 26, 1, 30, 0).unwrap())
    );
    // Every 12 hours in New York: 00:00 and 12:00 local, EST (-5).
    cfg.schedule = "0 */12 * * *".into();
    cfg.time_zone = Some("America/New_York".into());
    let ny = validate("c", &cfg).unwrap();
    assert_eq!(ny.next_after(at(0, 0, 0)), Some(at(5, 0, 0)));
    assert_eq!(ny.next_after(at(5, 0, 0)), Some(at(17, 0, 0)));
    cfg.time_zone = Some("Mars/Olympus_Mons".into());
    let err = validate("c", &cfg).unwrap_err().to_string();
    assert!(
        err.contains("unknown etcd.timeZone \"Mars/Olympus_Mons\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fires_at_cron_slots_and_reports_status() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(10, 100).await;
    let mut good = etcd.config("snaps");
    good.schedule = "*/10 * * * *".into();
    good.retain = 2;
    good.restore_check_every = 2;
    let mut jittered = good.clone();
    jittered.jitter_seconds = 30;
    jittered.dir = Some(etcd.tmp.path().join("jittered"));
    let mut down = good.clone();
    down.endpoints = vec![format!(
        "http://127.0.0.1:{}",
        keelson::backup::local_etcd::free_port().unwrap()
    )];
    down.dir = Some(etcd.tmp.path().join("down"));
    down.restore_check_every = 0;
    let mut broken = good.clone();
    broken.schedule = "every day".into();

    let mut clusters = BTreeMap::new();
    clusters.insert("good".to_string(), cluster(good.clone()));
    clusters.insert("jit".to_string(), cluster(jittered));
    clusters.insert("down".to_string(), cluster(down));
    clusters.insert("broken".to_string(), cluster(broken));
    clusters.insert("no-etcd".to_string(), ClusterConfig::default());
    let cfg = Arc::new(Config {
        clusters,
        ..Default::default()
    });

    let clock = ManualClock::new(at(0, 0, 0));
    let status = BackupStatusHandle::new();
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_schedules(
        cfg,
        clock.clone(),
        status.clone(),
        shutdown.clone(),
    ));

    let jit = chrono::Duration::from_std(jitter("jit", 30)).unwrap();
    let s = wait_for(&status, "first next_run", |s| {
        ["good", "jit", "down"]
            .iter()
            .all(|c| s.clusters.get(*c).is_some_and(|c| c.next_run.is_some()))
    })
    .await;
    assert_eq!(s.clusters["good"].next_run, Some(at(0, 10, 0)));
    assert_eq!(s.clusters["jit"].next_run, Some(at(0, 10, 0) + jit));
    assert!(
        s.clusters["broken"]
            .last_error
            .as_deref()
            .unwrap()
            .contains("invalid etcd.schedule")
    );
    assert!(!s.clusters.contains_key("no-etcd"));
    let dir = good.dir.clone().unwrap();
    assert!(
        list_snapshots(&dir, None).unwrap().is_empty(),
        "nothing before the first slot"
    );

    // Slot 00:10: "good" and "down" fire, "jit" waits for its jitter.
    clock.set(at(0, 10, 0));
    let s = wait_for(&status, "first runs", |s| {
        s.clusters["good"].successes_total == 1
            && s.clusters["good"].next_run == Some(at(0, 20, 0))
            && s.clusters["down"].failures_total == 1
            && s.clusters["down"].next_run == Some(at(0, 20, 0))
    })
    .await;
    assert_eq!(s.clusters["good"].next_run, Some(at(0, 20, 0)));
    assert_eq!(
        s.clusters["jit"].successes_total, 0,
        "jitter delays the run"
    );
    let down_status = &s.clusters["down"];
    assert!(
        down_status
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot reach etcd")
    );
    assert_eq!(
        down_status.next_run,
        Some(at(0, 20, 0)),
        "retried at the next slot"
    );
    let snaps = list_snapshots(&dir, Some("good")).unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].name.time, at(0, 10, 0));

    // Jump past two slots: one run, not a backlog.
    clock.set(at(0, 35, 0));
    let s = wait_for(&status, "restore check after the second run", |s| {
        s.clusters["good"].last_restore_check.is_some()
            && s.clusters["good"].next_run == Some(at(0, 40, 0))
            && s.clusters["jit"].successes_total == 1
            && s.clusters["down"].failures_total == 2
    })
    .await;
    let g = &s.clusters["good"];
    assert_eq!(g.successes_total, 2);
    assert_eq!(g.scheduled_runs, 2);
    assert_eq!(g.next_run, Some(at(0, 40, 0)));
    assert!(
        g.last_restore_check.as_ref().unwrap().passed,
        "{:?}",
        g.last_restore_check
    );
    let names: Vec<_> = list_snapshots(&dir, Some("good"))
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names.iter().map(|n| n.time).collect::<Vec<_>>(),
        vec![at(0, 35, 0), at(0, 10, 0)]
    );
    let latest = SnapshotName::parse(
        g.last_file
            .as_ref()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(latest.time, at(0, 35, 0));
    let meta = keelson::backup::store::read_meta(g.last_file.as_ref().unwrap()).unwrap();
    assert!(
        meta.restore_check.unwrap().passed,
        "restore check recorded in metadata"
    );

    // The failing cluster is retried at its next slot and fails again.
    assert_eq!(s.clusters["down"].failures_total, 2);

    let text = status.to_prometheus();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let good_size = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "keelson_etcd_snapshot_last_size_bytes"
                && s.labels.get("cluster") == Some("good")
        })
        .expect("size sample for good");
    assert!(
        matches!(good_size.value, prometheus_parse::Value::Gauge(v) if v as u64 == g.last_size_bytes.unwrap())
    );
    assert!(text.contains("# TYPE keelson_etcd_snapshot_last_success_timestamp gauge"));
    let ts = at(0, 35, 0).timestamp();
    assert!(
        text.contains(&format!(
            "keelson_etcd_snapshot_last_success_timestamp{{cluster=\"good\"}} {ts}"
        )),
        "{text}"
    );
    assert!(
        text.contains("keelson_etcd_snapshot_failures_total{cluster=\"down\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("keelson_etcd_snapshot_last_failed{cluster=\"down\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("keelson_etcd_snapshot_last_size_bytes{cluster=\"good\"}"),
        "{text}"
    );
    assert!(!text.contains("keelson_etcd_snapshot_last_success_timestamp{cluster=\"down\"}"));
    assert!(
        text.contains("keelson_etcd_snapshot_last_restore_check_passed{cluster=\"good\"} 1"),
        "{text}"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), runner)
        .await
        .expect("runner stops on shutdown")
        .unwrap();
}

/// After a restart while etcd is down, the last-success metric comes back from the newest
/// snapshot on disk that verifies (a newer, damaged one does not count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_success_is_restored_at_start_from_the_newest_snapshot_that_verifies() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(10, 100).await;
    let mut cfg = etcd.config("snaps");
    let older = keelson::backup::take_snapshot(
        "c",
        &cfg,
        None,
        keelson::backup::Trigger::Scheduled,
        at(1, 0, 0),
    )
    .await
    .unwrap();
    let newest = keelson::backup::take_snapshot(
        "c",
        &cfg,
        None,
        keelson::backup::Trigger::OnDemand,
        at(2, 0, 0),
    )
    .await
    .unwrap();
    let mut bytes = std::fs::read(&newest.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x80;
    std::fs::write(&newest.path, bytes).unwrap();
    // etcd is down now.
    cfg.endpoints = vec![format!(
        "http://127.0.0.1:{}",
        keelson::backup::local_etcd::free_port().unwrap()
    )];
    let mut clusters = BTreeMap::new();
    clusters.insert("c".to_string(), cluster(cfg));
    let config = Arc::new(Config {
        clusters,
        ..Default::default()
    });
    let status = BackupStatusHandle::new();
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_schedules(
        config,
        ManualClock::new(at(3, 0, 0)),
        status.clone(),
        shutdown.clone(),
    ));
    let s = wait_for(&status, "the last success is restored", |s| {
        s.clusters
            .get("c")
            .is_some_and(|c| c.last_success.is_some())
    })
    .await;
    let c = &s.clusters["c"];
    assert_eq!(c.last_success, Some(at(1, 0, 0)));
    assert_eq!(c.last_file.as_deref(), Some(older.path.as_path()));
    assert_eq!(c.last_size_bytes, Some(older.meta.size));
    assert_eq!(
        c.successes_total, 0,
        "restored, not counted as a new success"
    );
    let text = status.to_prometheus();
    let want = format!(
        "keelson_etcd_snapshot_last_success_timestamp{{cluster=\"c\"}} {}\n",
        at(1, 0, 0).timestamp()
    );
    assert!(text.contains(&want), "{text}");
    shutdown.cancel();
    runner.await.unwrap();
}
