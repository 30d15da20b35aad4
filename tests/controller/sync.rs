//! The sync loop: new commits, changed-environment detection, bad commits,
//! backoff, bounded parallelism.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_reaches_the_cluster_within_the_poll_interval() {
    let (repo, first) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.poll_interval = Duration::from_millis(200);
    let running = start(s, &fake).await;
    wait_until("both environments are at 1.0.0", || {
        fake.tag("dev").as_deref() == Some("1.0.0") && fake.tag("prod").as_deref() == Some("1.0.0")
    })
    .await;
    wait_status(&running, "ready", |st| st["ready"] == true).await;
    let (code, _) = get(&running, "/readyz").await;
    assert_eq!(code, 200);

    repo.set_tag("prod", "1.1.0");
    let second = repo.commit("prod: bump web to 1.1.0");
    wait_until("prod runs 1.1.0", || {
        fake.tag("prod").as_deref() == Some("1.1.0")
    })
    .await;
    let st = wait_status(&running, "prod status shows the new commit", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == second.as_str()
    })
    .await;
    let prod = env_status(&st, "prod");
    assert_eq!(prod["lastApplied"]["commit"], second.as_str());
    assert_eq!(prod["apps"][0]["version"], "1.1.0");
    // Only prod's files changed, so dev was not re-rendered.
    assert_eq!(fake.calls("dev", false), 1);
    assert_eq!(fake.calls("prod", false), 2);
    assert_eq!(
        env_status(&st, "dev")["lastApplied"]["commit"],
        first.as_str()
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_re_renders_every_environment() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("first syncs", || {
        fake.calls("dev", false) == 1 && fake.calls("prod", false) == 1
    })
    .await;
    repo.write("policies/base.yaml", "kind: Policy\nspec: {}\n");
    repo.commit("policy: tighten defaults");
    repo.write("README.md", "docs only\n");
    running.trigger();
    wait_until("both re-rendered", || {
        fake.calls("dev", false) == 2 && fake.calls("prod", false) == 2
    })
    .await;
    repo.commit("docs");
    running.trigger();
    wait_status(&running, "the docs commit is the head", |st| {
        st["source"]["head"]["summary"] == "docs"
    })
    .await;
    // A README change touches no environment.
    assert_eq!(
        (fake.calls("dev", false), fake.calls("prod", false)),
        (2, 2)
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_with_spec_errors_is_not_applied_and_shows_in_status() {
    let (repo, good) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("prod at 1.0.0", || {
        fake.tag("prod").as_deref() == Some("1.0.0")
    })
    .await;

    repo.write(
        "environments/prod/pipeline.yaml",
        "apps:\n  web:\n    tag: 2.0.0\n    error: replicas must be at least 1\n",
    );
    let bad = repo.commit("prod: broken");
    running.trigger();
    let st = wait_status(&running, "the bad commit was attempted", |st| {
        env_status(st, "prod")["lastAttempt"]["commit"] == bad.as_str()
    })
    .await;
    let prod = env_status(&st, "prod");
    assert_eq!(prod["lastAttempt"]["outcome"]["result"], "invalid");
    assert_eq!(
        prod["lastAttempt"]["outcome"]["diagnostics"][0],
        "environments/prod/pipeline.yaml:4:5: replicas must be at least 1"
    );
    // The last good commit stays in place.
    assert_eq!(prod["lastApplied"]["commit"], good.as_str());
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.0"));

    // `keelson status` shows the error with its position.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--server", &format!("http://{}", running.addr())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("environments/prod/pipeline.yaml:4:5: replicas must be at least 1"),
        "{text}"
    );

    repo.set_tag("prod", "2.0.1");
    let fixed = repo.commit("prod: fix");
    running.trigger();
    wait_status(&running, "the fixed commit is applied", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == fixed.as_str()
    })
    .await;
    assert_eq!(fake.tag("prod").as_deref(), Some("2.0.1"));
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_and_do_not_hold_up_other_environments() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.fail_next("prod", 3);
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("dev is applied", || fake.tag("dev").is_some()).await;
    wait_status(&running, "prod is applied after retries", |st| {
        env_status(st, "prod")["lastAttempt"]["outcome"]["result"] == "applied"
    })
    .await;
    assert_eq!(fake.calls("prod", false), 4);
    let (_, body) = get(&running, "/history?env=prod").await;
    let history: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let triggers: Vec<&str> = history
        .iter()
        .rev()
        .map(|h| h["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["commit", "retry", "retry", "retry"]);
    let results: Vec<&str> = history
        .iter()
        .rev()
        .map(|h| h["outcome"]["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["failed", "failed", "failed", "applied"]);
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_is_bounded_and_each_environment_runs_one_at_a_time() {
    let repo = GitRepo::new();
    for i in 0..6 {
        repo.set_tag(&format!("env{i}"), "1");
    }
    repo.commit("six environments");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.set_delay(Duration::from_millis(60));
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.max_parallel = 2;
    s.drift_interval = Duration::from_millis(100);
    let running = start(s, &fake).await;
    wait_until("all six applied", || {
        (0..6).all(|i| fake.tag(&format!("env{i}")).is_some())
    })
    .await;
    // Keep commits and drift checks coming for a while.
    for n in 2..5 {
        for i in 0..6 {
            repo.set_tag(&format!("env{i}"), &n.to_string());
        }
        repo.commit(&format!("bump to {n}"));
        running.trigger();
        wait_until("all bumped", || {
            (0..6).all(|i| fake.tag(&format!("env{i}")) == Some(n.to_string()))
        })
        .await;
    }
    assert!(fake.state.max_in_flight.load(Ordering::SeqCst) <= 2);
    assert_eq!(fake.state.max_per_env.load(Ordering::SeqCst), 1);
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_sync_in_flight() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("first syncs", || {
        fake.tag("prod").is_some() && fake.tag("dev").is_some()
    })
    .await;
    fake.set_delay(Duration::from_millis(500));
    repo.set_tag("prod", "9.9.9");
    repo.commit("slow one");
    running.trigger();
    wait_until("the slow sync started", || {
        fake.state.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    running.shutdown();
    running.wait().await;
    assert_eq!(fake.state.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(fake.tag("prod").as_deref(), Some("9.9.9"));
    // And it was recorded before exit.
    let store = keelson::record::Store::open(state.path()).unwrap();
    let last = &store.history(Some("prod"), 1).unwrap()[0];
    assert_eq!(last.outcome.word(), "applied");
}
