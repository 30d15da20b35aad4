//! `POST /hooks/git`: signed webhooks trigger a sync; anything else gets 401.

use keelson::controller::webhook::sign;
use keelson::source::Secret;

use crate::support::*;

const SECRET: &str = "webhook-test-secret";

async fn post(
    running: &keelson::controller::Running,
    headers: &[(&str, String)],
    body: &str,
) -> u16 {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}/hooks/git", running.addr()))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn github_sig(body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(sign(SECRET.as_bytes(), body.as_bytes()))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_push_triggers_a_sync() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    repo.set_tag("prod", "1.4.0");
    repo.commit("prod 1.4.0");
    // The poll interval is an hour: only the webhook can bring this in.
    let body = r#"{"ref":"refs/heads/main","after":"0000"}"#;
    let code = post(
        &running,
        &[
            ("X-Hub-Signature-256", github_sig(body)),
            ("X-GitHub-Event", "push".into()),
        ],
        body,
    )
    .await;
    assert_eq!(code, 202);
    wait_until("prod runs 1.4.0", || {
        fake.tag("prod").as_deref() == Some("1.4.0")
    })
    .await;
    assert_eq!(
        metric(
            &running,
            "keelson_webhook_requests_total",
            &["result=\"accepted\""]
        )
        .await,
        1.0
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_push_with_the_right_token_triggers_a_sync() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = start(s, &fake).await;
    wait_until("dev applied", || fake.tag("dev").is_some()).await;
    repo.set_tag("dev", "2.0.0");
    repo.commit("dev 2.0.0");
    let body = r#"{"object_kind":"push","ref":"refs/heads/main"}"#;
    let code = post(
        &running,
        &[
            ("X-Gitlab-Token", SECRET.into()),
            ("X-Gitlab-Event", "Push Hook".into()),
        ],
        body,
    )
    .await;
    assert_eq!(code, 202);
    wait_until("dev runs 2.0.0", || {
        fake.tag("dev").as_deref() == Some("2.0.0")
    })
    .await;
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_wrongly_signed_webhooks_get_401_and_apply_nothing() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    wait_metric(&running, "keelson_git_fetches_total", &[], 1.0).await;
    repo.set_tag("prod", "6.6.6");
    repo.commit("not to be fetched by a forged hook");
    let body = r#"{"ref":"refs/heads/main"}"#;
    let forged = format!(
        "sha256={}",
        hex::encode(sign(b"wrong-secret", body.as_bytes()))
    );
    assert_eq!(
        post(&running, &[("X-Hub-Signature-256", forged)], body).await,
        401
    );
    // Signed for a different body.
    assert_eq!(
        post(&running, &[("X-Hub-Signature-256", github_sig("{}"))], body).await,
        401
    );
    assert_eq!(
        post(&running, &[("X-Gitlab-Token", "guess".into())], body).await,
        401
    );
    assert_eq!(post(&running, &[], body).await, 401);
    assert_eq!(
        post(
            &running,
            &[("X-Hub-Signature-256", "sha256=zz".into())],
            body
        )
        .await,
        401
    );
    assert_eq!(
        metric(
            &running,
            "keelson_webhook_requests_total",
            &["result=\"rejected\""]
        )
        .await,
        5.0
    );
    // Give a wrongly triggered fetch time to show; none may have happened.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        metric(&running, "keelson_git_fetches_total", &[]).await,
        1.0
    );
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.0"));
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_other_branches_and_pings_do_not_sync() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = start(s, &fake).await;
    wait_metric(&running, "keelson_git_fetches_total", &[], 1.0).await;
    let other = r#"{"ref":"refs/heads/feature"}"#;
    assert_eq!(
        post(
            &running,
            &[("X-Hub-Signature-256", github_sig(other))],
            other
        )
        .await,
        202
    );
    let ping = r#"{"zen":"Keep it logically awesome."}"#;
    let code = post(
        &running,
        &[
            ("X-Hub-Signature-256", github_sig(ping)),
            ("X-GitHub-Event", "ping".into()),
        ],
        ping,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &running,
            "keelson_webhook_requests_total",
            &["result=\"ignored\""]
        )
        .await,
        1.0
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        metric(&running, "keelson_git_fetches_total", &[]).await,
        1.0
    );
    running.shutdown();
    running.wait().await;
}
