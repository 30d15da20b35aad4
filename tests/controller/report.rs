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

/// A fake GitHub statuses API: `POST /repos/{o}/{r}/statuses/{sha}` stores a status (and
/// counts the post), `GET /repos/{o}/{r}/commits/{sha}/statuses` lists them newest first.
#[derive(Clone, Default)]
struct FakeGitHub {
    /// (sha, status) in the order posted; ids are positions.
    statuses: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl FakeGitHub {
    async fn start(&self) -> String {
        async fn create(
            State(gh): State<FakeGitHub>,
            axum::extract::Path((_, _, sha)): axum::extract::Path<(String, String, String)>,
            body: Bytes,
        ) -> (StatusCode, axum::Json<serde_json::Value>) {
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut all = gh.statuses.lock().unwrap();
            v["id"] = serde_json::json!(all.len() + 1);
            all.push((sha, v.clone()));
            (StatusCode::CREATED, axum::Json(v))
        }
        async fn list(
            State(gh): State<FakeGitHub>,
            axum::extract::Path((_, _, sha)): axum::extract::Path<(String, String, String)>,
        ) -> axum::Json<Vec<serde_json::Value>> {
            let all = gh.statuses.lock().unwrap();
            axum::Json(
                all.iter()
                    .rev()
                    .filter(|(s, _)| *s == sha)
                    .map(|(_, v)| v.clone())
                    .collect(),
            )
        }
        let app = Router::new()
            .route("/repos/{o}/{r}/statuses/{sha}", post(create))
            .route(
                "/repos/{o}/{r}/commits/{sha}/statuses",
                axum::routing::get(list),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn posts(&self, context: &str) -> Vec<String> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| v["context"] == context)
            .map(|(_, v)| v["state"].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_is_posted_only_when_it_changes_even_across_restarts() {
    let gh = FakeGitHub::default();
    let api = gh.start().await;
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let config = ReporterConfig {
        provider: Provider::GitHub,
        api_url: api,
        repository: "platform/environments".into(),
        token: Secret::new("gh-token-123"),
    };
    let fake = Fake::default();
    fake.fail_next("prod", 1000);
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.commit_status = Some(config.clone());
    let running = start(s.clone(), &fake).await;
    // Six failed attempts of prod (every retry is a sync of the same commit).
    wait_until("6 prod attempts", || fake.calls("prod", false) >= 6).await;
    wait_metric(
        &running,
        "keelson_commit_statuses_total",
        &["result=\"unchanged\""],
        4.0,
    )
    .await;
    assert_eq!(gh.posts("keelson/prod"), ["error"]);
    assert_eq!(gh.posts("keelson/dev"), ["success"]);
    running.shutdown();
    running.wait().await;

    // A restarted controller (empty memory) still posts nothing new for the same error:
    // it reads the commit's statuses first.
    let again = Fake::default();
    again.fail_next("prod", 3);
    let running = start(s, &again).await;
    wait_until("prod fails and then succeeds", || {
        again.tag("prod").is_some()
    })
    .await;
    wait_until("the success is posted", || {
        gh.posts("keelson/prod").len() == 2
    })
    .await;
    assert_eq!(gh.posts("keelson/prod"), ["error", "success"]);
    running.shutdown();
    running.wait().await;
    // dev: the restart's sync says "applied" again, with the same description: unchanged.
    assert_eq!(gh.posts("keelson/dev"), ["success"]);
}
