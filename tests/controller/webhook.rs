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
    // One client for the whole binary: building one loads the TLS roots,
    // which costs ~0.2 s in a debug build. No idle pool, so no connection
    // outlives the test runtime that opened it.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        keelson::http::client_builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    });
    let mut req = client
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

/// `application/x-www-form-urlencoded` with the JSON in `payload`, as GitHub sends it when
/// the hook's content type is "form".
fn form(json: &str) -> String {
    let mut out = String::from("payload=");
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_push_events_for_the_followed_branch_trigger_a_fetch() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = start(s, &fake).await;
    wait_until("prod applied", || fake.tag("prod").is_some()).await;
    wait_metric(&running, "keelson_git_fetches_total", &[], 1.0).await;
    repo.set_tag("prod", "1.5.0");
    repo.commit("prod 1.5.0");

    let form_type = (
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    );
    let json_type = ("Content-Type", "application/json".to_string());
    let main_push = r#"{"ref":"refs/heads/main","after":"1111"}"#;
    let other_push = r#"{"ref":"refs/heads/feature","after":"2222"}"#;
    let pr = r#"{"action":"opened","number":7,"pull_request":{"head":{"ref":"main"}}}"#;
    let comment = r#"{"action":"created","issue":{"number":7},"comment":{"body":"lgtm"}}"#;
    // (event header, content type, body, expected code)
    let ignored: Vec<(&str, (&str, String), String, u16)> = vec![
        ("pull_request", json_type.clone(), pr.to_string(), 202),
        ("issue_comment", json_type.clone(), comment.to_string(), 202),
        ("pull_request", form_type.clone(), form(pr), 202),
        ("push", form_type.clone(), form(other_push), 202),
        ("push", json_type.clone(), other_push.to_string(), 202),
        (
            "push",
            json_type.clone(),
            r#"{"ref":"refs/tags/v1.5.0"}"#.to_string(),
            202,
        ),
        (
            "push",
            ("Content-Type", "text/plain".into()),
            main_push.to_string(),
            415,
        ),
        (
            "push",
            form_type.clone(),
            "ref=refs/heads/main".to_string(),
            400,
        ),
    ];
    for round in 0..2 {
        for (event, ct, body, want) in &ignored {
            let code = post(
                &running,
                &[
                    ("X-Hub-Signature-256", github_sig(body)),
                    ("X-GitHub-Event", event.to_string()),
                    ct.clone(),
                ],
                body,
            )
            .await;
            assert_eq!(code, *want, "round {round}: {event} {ct:?} {body}");
        }
    }
    // GitLab: a merge request event is ignored too.
    let mr = r#"{"object_kind":"merge_request","ref":"refs/heads/main"}"#;
    let code = post(
        &running,
        &[
            ("X-Gitlab-Token", SECRET.into()),
            ("X-Gitlab-Event", "Merge Request Hook".into()),
        ],
        mr,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(
        metric(
            &running,
            "keelson_webhook_requests_total",
            &["result=\"ignored\""]
        )
        .await,
        13.0
    );
    assert_eq!(
        metric(
            &running,
            "keelson_webhook_requests_total",
            &["result=\"unreadable\""]
        )
        .await,
        4.0
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        metric(&running, "keelson_git_fetches_total", &[]).await,
        1.0,
        "an ignored event triggered a fetch"
    );
    assert_eq!(fake.tag("prod").as_deref(), Some("1.0.0"));

    // A form-encoded push to the followed branch is decoded and fetches.
    let body = form(main_push);
    let code = post(
        &running,
        &[
            ("X-Hub-Signature-256", github_sig(&body)),
            ("X-GitHub-Event", "push".into()),
            form_type,
        ],
        &body,
    )
    .await;
    assert_eq!(code, 202);
    wait_until("prod runs 1.5.0", || {
        fake.tag("prod").as_deref() == Some("1.5.0")
    })
    .await;
    assert_eq!(
        metric(&running, "keelson_git_fetches_total", &[]).await,
        2.0
    );
    running.shutdown();
    running.wait().await;
}
