//! Drift: re-observed on an interval; reverted with selfHeal, reported without.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_in_status_and_metrics_without_self_heal() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.drift_interval = Duration::from_millis(150);
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    fake.set_live("prod", "hand-edited");
    let st = wait_status(&running, "drift shows in status", |st| {
        env_status(st, "prod")["drift"] == 1
    })
    .await;
    assert_eq!(
        env_status(&st, "prod")["lastDriftCheck"]["trigger"],
        "drift"
    );
    assert_eq!(
        env_status(&st, "prod")["lastDriftCheck"]["outcome"]["result"],
        "drift"
    );
    wait_metric(&running, "keelson_drift_objects", &["env=\"prod\""], 1.0).await;
    // Reported, not reverted; and only dry runs were used for the check.
    assert_eq!(fake.tag("prod").as_deref(), Some("hand-edited"));
    assert_eq!(fake.calls("prod", false), 1);
    assert!(fake.calls("prod", true) >= 1);
    assert_eq!(
        metric(&running, "keelson_drift_objects", &["env=\"dev\""]).await,
        0.0
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reverted_with_self_heal() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.drift_interval = Duration::from_millis(150);
    s.self_heal = true;
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    fake.set_live("prod", "hand-edited");
    wait_until("drift is reverted", || {
        fake.tag("prod").as_deref() == Some("1.0.0")
    })
    .await;
    wait_history(&running, "prod", "the heal is recorded", |h| {
        h["trigger"] == "drift" && h["outcome"]["result"] == "applied"
    })
    .await;
    assert_eq!(fake.calls("prod", true), 0, "self-heal applies directly");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_checks_use_the_last_good_commit_while_the_head_is_invalid() {
    let (repo, good) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.drift_interval = Duration::from_millis(150);
    s.self_heal = true;
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    repo.write("environments/prod/pipeline.yaml", "error: broken\n");
    repo.commit("broken prod");
    running.trigger();
    wait_status(&running, "bad commit attempted", |st| {
        env_status(st, "prod")["lastAttempt"]["outcome"]["result"] == "invalid"
    })
    .await;
    fake.set_live("prod", "hand-edited");
    wait_until("drift reverted to the last good spec", || {
        fake.tag("prod").as_deref() == Some("1.0.0")
    })
    .await;
    let heal = wait_history(&running, "prod", "the heal is recorded", |h| {
        h["trigger"] == "drift" && h["outcome"]["result"] == "applied"
    })
    .await;
    assert_eq!(
        heal["commit"],
        good.as_str(),
        "healed to the last good commit"
    );
    let st = status(&running).await;
    let prod = env_status(&st, "prod");
    assert_eq!(prod["lastApplied"]["commit"], good.as_str());
    // The bad commit's error stays visible next to the drift checks.
    assert_eq!(prod["lastAttempt"]["outcome"]["result"], "invalid");
    running.shutdown();
    running.wait().await;
}
