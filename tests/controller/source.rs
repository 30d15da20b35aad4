//! The Git source: force-pushes, unreachable remotes, local watching, restarts.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_push_moves_to_the_new_head() {
    let (repo, first) = two_env_repo();
    repo.set_tag("prod", "1.1.0");
    let second = repo.commit("prod 1.1.0");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("prod at 1.1.0", || {
        fake.tag("prod").as_deref() == Some("1.1.0")
    })
    .await;
    // Rewrite history: drop `second`, commit something else on top of `first`.
    repo.reset_hard(&first);
    repo.set_tag("prod", "1.2.0-hotfix");
    let rewritten = repo.commit("prod hotfix (force-pushed)");
    assert_ne!(rewritten, second);
    running.trigger();
    let st = wait_status(&running, "the rewritten head is applied", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == rewritten.as_str()
    })
    .await;
    assert_eq!(fake.tag("prod").as_deref(), Some("1.2.0-hotfix"));
    assert_eq!(st["source"]["head"]["id"], rewritten.as_str());
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_remote_keeps_the_last_good_commit_and_reports_the_error() {
    let (repo, first) = two_env_repo();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("envs.git");
    std::fs::rename(repo.path(), &remote).unwrap();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&remote.display().to_string(), state.path());
    s.poll_interval = Duration::from_millis(100);
    s.max_backoff = Duration::from_millis(300);
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    wait_recorded(&running, "prod", &first).await;

    let away = remote_dir.path().join("moved-away");
    std::fs::rename(&remote, &away).unwrap();
    let st = wait_status(&running, "the fetch error shows", |st| {
        st["source"]["error"].is_string()
    })
    .await;
    assert!(
        st["source"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot fetch branch `main`"),
        "{st}"
    );
    assert_eq!(st["source"]["head"]["id"], first.as_str());
    assert_eq!(
        env_status(&st, "prod")["lastApplied"]["commit"],
        first.as_str()
    );
    wait_metric(&running, "keelson_git_fetch_errors_total", &[], 1.0).await;
    let (code, _) = get(&running, "/readyz").await;
    assert_eq!(
        code, 200,
        "a fetch error does not make a synced controller unready"
    );

    // The remote comes back with a new commit.
    std::fs::rename(&away, &remote).unwrap();
    let back = git2::Repository::open(&remote).unwrap();
    std::fs::write(
        remote.join("environments/prod/pipeline.yaml"),
        pipeline("1.3.0"),
    )
    .unwrap();
    let mut index = back.index().unwrap();
    index
        .add_path(std::path::Path::new("environments/prod/pipeline.yaml"))
        .unwrap();
    index.write().unwrap();
    let tree = back.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    let parent = back.head().unwrap().peel_to_commit().unwrap();
    back.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "after the outage",
        &tree,
        &[&parent],
    )
    .unwrap();
    running.trigger();
    wait_until("the new commit is applied", || {
        fake.tag("prod").as_deref() == Some("1.3.0")
    })
    .await;
    wait_status(&running, "the error clears", |st| {
        st["source"]["error"].is_null()
    })
    .await;
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_repository_is_watched_for_commits() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.watch_local = true;
    let running = start(s, &fake).await;
    wait_until("prod applied", || {
        fake.tag("prod").as_deref() == Some("1.0.0")
    })
    .await;
    // Poll interval is an hour and nobody triggers: only the watcher can pick this up.
    repo.set_tag("prod", "1.0.1");
    repo.commit("prod 1.0.1");
    wait_until("the watcher picked up the commit", || {
        fake.tag("prod").as_deref() == Some("1.0.1")
    })
    .await;
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_keeps_its_history_and_status() {
    let (repo, first) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let url = repo.path().display().to_string();
    let running = start(settings(&url, state.path()), &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    repo.set_tag("prod", "1.1.0");
    let second = repo.commit("prod 1.1.0");
    running.trigger();
    wait_status(&running, "second applied", |st| {
        env_status(st, "prod")["lastApplied"]["commit"] == second.as_str()
    })
    .await;
    running.shutdown();
    running.wait().await;

    // The remote is gone while we are down: the mirror still serves `second`.
    let gone = settings("/nonexistent/keelson-remote", state.path());
    let running = start(gone, &fake).await;
    let (_, body) = get(&running, "/history?env=prod").await;
    let history: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let commits: Vec<&str> = history
        .iter()
        .map(|h| h["commit"].as_str().unwrap())
        .collect();
    // Newest first; the oldest two are the syncs of the first run.
    assert!(
        commits.ends_with(&[second.as_str(), first.as_str()]),
        "{body}"
    );
    let st = wait_status(&running, "restarted controller is ready", |st| {
        st["ready"] == true
    })
    .await;
    assert_eq!(
        env_status(&st, "prod")["lastApplied"]["commit"],
        second.as_str()
    );
    assert_eq!(st["source"]["head"]["id"], second.as_str());
    assert!(st["source"]["error"].is_string());
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_branch_is_reported_and_the_last_good_commit_stays() {
    let (repo, first) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    wait_recorded(&running, "prod", &first).await;
    assert_eq!(
        metric(&running, "keelson_git_branch_missing", &[]).await,
        0.0
    );
    let applies = fake.calls("prod", false);

    // Delete `main` on the remote: HEAD moves to another branch first.
    let git = git2::Repository::open(repo.path()).unwrap();
    let head = git.head().unwrap().peel_to_commit().unwrap();
    git.branch("release", &head, false).unwrap();
    git.set_head("refs/heads/release").unwrap();
    git.find_branch("main", git2::BranchType::Local)
        .unwrap()
        .delete()
        .unwrap();
    running.trigger();
    let st = wait_status(&running, "the missing branch shows", |st| {
        st["source"]["branchMissing"] == true
    })
    .await;
    let error = st["source"]["error"].as_str().unwrap();
    assert!(error.contains("branch `main` was not found"), "{st}");
    assert!(st["source"]["consecutiveErrors"].as_u64().unwrap() >= 1);
    // The last good commit is still the one served and applied.
    assert_eq!(st["source"]["head"]["id"], first.as_str());
    assert_eq!(
        env_status(&st, "prod")["lastApplied"]["commit"],
        first.as_str()
    );
    assert_eq!(
        metric(&running, "keelson_git_branch_missing", &[]).await,
        1.0
    );
    assert!(metric(&running, "keelson_git_fetch_errors_total", &[]).await >= 1.0);
    // Nothing was reconciled because of it: no apply, hence no prune.
    running.trigger();
    wait_metric(&running, "keelson_git_fetch_errors_total", &[], 2.0).await;
    assert_eq!(fake.calls("prod", false), applies);
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.0"));

    // The branch comes back with a new commit: it is picked up, the report clears.
    git.branch("main", &head, false).unwrap();
    git.set_head("refs/heads/main").unwrap();
    repo.set_tag("prod", "1.0.2");
    repo.commit("prod 1.0.2");
    running.trigger();
    wait_until("the new commit is applied", || {
        fake.tag("prod").as_deref() == Some("1.0.2")
    })
    .await;
    let st = wait_status(&running, "the report clears", |st| {
        st["source"]["branchMissing"] == false && st["source"]["error"].is_null()
    })
    .await;
    assert_eq!(st["source"]["consecutiveErrors"], 0);
    assert_eq!(
        metric(&running, "keelson_git_branch_missing", &[]).await,
        0.0
    );
    running.shutdown();
    running.wait().await;
}
