//! Commit statuses posted back to GitHub and GitLab, checked against a
//! loopback HTTP endpoint that records the requests.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use keelson::controller::report::{Provider, ReporterConfig};
use keelson::source::Secret;

use crate::support::*;

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: serde_json::Value,
}

async fn endpoint() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    async fn record(
        State(seen): State<Arc<Mutex<Vec<Seen>>>>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        seen.lock().unwrap().push(Seen {
            path: uri.path().to_string(),
            headers,
            body: serde_json::from_slice(&body).unwrap_or_default(),
        });
        StatusCode::CREATED
    }
    let app = Router::new()
        .fallback(post(record))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_statuses_carry_the_per_environment_outcome() {
    let (api, seen) = endpoint().await;
    let (repo, _) = two_env_repo();
    repo.write("environments/dev/pipeline.yaml", "error: tag is missing\n");
    let commit = repo.commit("dev is broken");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.commit_status = Some(ReporterConfig {
        provider: Provider::GitHub,
        api_url: api,
        repository: "platform/environments".into(),
        token: Secret::new("gh-token-123"),
    });
    let running = start(s, &fake).await;
    wait_until("two statuses posted", || seen.lock().unwrap().len() == 2).await;
    let mut all = seen.lock().unwrap().clone();
    all.sort_by_key(|s| s.body["context"].as_str().unwrap_or("").to_string());
    for s in &all {
        assert_eq!(
            s.path,
            format!("/repos/platform/environments/statuses/{commit}")
        );
        assert_eq!(s.headers["authorization"], "Bearer gh-token-123");
        assert_eq!(s.headers["accept"], "application/vnd.github+json");
        assert!(
            s.headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("keelson/")
        );
    }
    assert_eq!(all[0].body["context"], "keelson/dev");
    assert_eq!(all[0].body["state"], "failure");
    assert!(
        all[0].body["description"]
            .as_str()
            .unwrap()
            .contains("pipeline.yaml:1:1"),
        "{:?}",
        all[0].body
    );
    assert_eq!(all[1].body["context"], "keelson/prod");
    assert_eq!(all[1].body["state"], "success");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_statuses_use_the_project_path_and_private_token() {
    let (api, seen) = endpoint().await;
    let (repo, commit) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.fail_next("prod", 1);
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.commit_status = Some(ReporterConfig {
        provider: Provider::GitLab,
        api_url: format!("{api}/api/v4"),
        repository: "platform/environments".into(),
        token: Secret::new("gl-token-456"),
    });
    let running = start(s, &fake).await;
    // dev success, prod failed, prod retried and succeeded.
    wait_until("three statuses posted", || seen.lock().unwrap().len() == 3).await;
    let all = seen.lock().unwrap().clone();
    for s in &all {
        // The raw request path keeps the encoded slash.
        assert_eq!(
            s.path,
            format!("/api/v4/projects/platform%2Fenvironments/statuses/{commit}")
        );
        assert_eq!(s.headers["private-token"], "gl-token-456");
    }
    let prod: Vec<&str> = all
        .iter()
        .filter(|s| s.body["name"] == "keelson/prod")
        .map(|s| s.body["state"].as_str().unwrap())
        .collect();
    assert_eq!(prod, ["failed", "success"]);
    running.shutdown();
    running.wait().await;
}
