//! Rancher's errors reach the user typed, with Rancher's own words, and a
//! partial apply says exactly what was and was not applied.

use std::time::Duration;

use keelson::rancher::{
    ChangeKind, Outcome, RancherClient, RancherEndpoint, RancherError, apply, plan,
};
use rancher_server::{RancherServer, ServerOptions};

use crate::common::{client, converge, desired, endpoint};

#[tokio::test]
async fn wrong_token_is_unauthorized_with_ranchers_message_and_no_secret() {
    let server = RancherServer::start().await;
    let setup = endpoint(&server, "token-wrong:n0tTheS3cretYouWant");
    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    let err = plan(&client, &desired("prod")).await.unwrap_err();
    let RancherError::Unauthorized(api) = &err else {
        panic!("expected Unauthorized, got {err:?}");
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.code, "Unauthorized");
    assert_eq!(api.message, "must authenticate");
    let shown = err.to_string();
    assert!(
        shown.contains("must authenticate") && shown.contains("token"),
        "{shown}"
    );
    for text in [shown, format!("{err:?}"), format!("{client:?}")] {
        assert!(!text.contains("n0tTheS3cret"), "token leaked: {text}");
    }
    let reqs = server.requests();
    assert!(reqs.iter().all(|r| r.had_bearer && r.status == 401));
}

#[tokio::test]
async fn server_error_mid_apply_reports_what_was_and_was_not_applied() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    let p = plan(&client, &d).await.unwrap();
    server.fail_matching("POST", "/v3/projectroletemplatebindings", 500, 1);

    let report = apply(&client, &p).await;
    assert!(!report.is_success());
    let outcomes: Vec<(ChangeKind, &Outcome)> = report
        .results
        .iter()
        .map(|r| (r.kind, &r.outcome))
        .collect();
    assert_eq!(outcomes[0], (ChangeKind::Project, &Outcome::Applied));
    assert_eq!(outcomes[1], (ChangeKind::Namespace, &Outcome::Applied));
    let Outcome::Failed {
        status,
        code,
        message,
        error,
    } = &report.results[2].outcome
    else {
        panic!("{}", report.render_text());
    };
    assert_eq!(*status, Some(500));
    assert_eq!(code.as_deref(), Some("ServerError"));
    assert!(message.as_deref().unwrap().contains("injected failure"));
    assert!(error.contains("retry later"), "{error}");
    assert!(matches!(report.results[3].outcome, Outcome::Skipped { .. }));
    assert_eq!(report.applied().count(), 2);
    assert_eq!(report.not_applied().count(), 2);
    assert!(matches!(report.error, Some(RancherError::Server(_))));
    let text = report.render_text();
    assert!(
        text.contains("FAILED") && text.contains("not applied"),
        "{text}"
    );
    let j = serde_json::to_value(&report).unwrap();
    assert_eq!(j["results"][2]["outcome"], "failed");
    assert_eq!(j["results"][2]["status"], 500);
    assert!(server.bindings().is_empty());

    // The next run finishes the job and touches only what is missing.
    server.clear_log();
    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.change_count(), 2, "{}", p.render_text());
    assert!(apply(&client, &p).await.is_success());
    assert_eq!(server.writes().len(), 2);
    assert_eq!(server.bindings().len(), 2);
}

#[tokio::test]
async fn a_failing_environment_does_not_stop_another() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let prod = plan(&client, &desired("prod")).await.unwrap();
    let staging = plan(&client, &desired("staging")).await.unwrap();
    server.fail_nth(1, 500);
    let failed = apply(&client, &prod).await;
    let ok = apply(&client, &staging).await;
    assert!(!failed.is_success());
    assert_eq!(failed.applied().count(), 0);
    assert!(ok.is_success(), "{}", ok.render_text());
    let names: Vec<String> = server
        .projects()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["shop-staging"]);
}

#[tokio::test]
async fn rejected_content_is_invalid_with_the_field_rancher_named() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    d.members[0].role = "no-such-role".into();
    let p = plan(&client, &d).await.unwrap();
    let report = apply(&client, &p).await;
    let Some(RancherError::Invalid(api)) = &report.error else {
        panic!("{}", report.render_text());
    };
    assert_eq!(api.status, 422);
    assert_eq!(api.code, "InvalidFormat");
    assert_eq!(api.field_name.as_deref(), Some("roleTemplateId"));
    assert!(api.message.contains("no-such-role"));
}

#[tokio::test]
async fn reads_are_retried_on_a_gateway_error_but_writes_are_not() {
    let server = RancherServer::start().await;
    let client = client(&server);
    server.fail_nth(1, 503);
    let p = plan(&client, &desired("prod")).await.unwrap();
    let first: Vec<(String, u16)> = server
        .requests()
        .iter()
        .take(2)
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert_eq!(
        first,
        vec![
            ("/v3/projects".to_string(), 503),
            ("/v3/projects".to_string(), 200)
        ]
    );

    server.fail_matching("POST", "/v3/projects", 503, 1);
    let report = apply(&client, &p).await;
    let Some(RancherError::Server(api)) = &report.error else {
        panic!("{}", report.render_text());
    };
    assert_eq!(api.status, 503);
    assert_eq!(server.writes().len(), 1, "a write is sent once");
}

#[tokio::test]
async fn forbidden_and_conflict_are_typed() {
    let server = RancherServer::start().await;
    let client = client(&server);
    server.fail_nth(1, 403);
    let err = plan(&client, &desired("prod")).await.unwrap_err();
    assert!(matches!(err, RancherError::Forbidden(_)), "{err:?}");
    assert!(err.to_string().contains("permission"));

    let pid = converge(&client, &desired("prod")).await;
    let mut d = desired("prod");
    d.project.description = Some("changed".into());
    let p = plan(&client, &d).await.unwrap();
    server.fail_matching("PUT", &format!("/v3/projects/{pid}"), 409, 1);
    let report = apply(&client, &p).await;
    assert!(
        matches!(report.error, Some(RancherError::Conflict(_))),
        "{}",
        report.render_text()
    );
}

#[tokio::test]
async fn slow_rancher_times_out_with_a_typed_error() {
    let server = RancherServer::start().await;
    let mut setup = endpoint(&server, rancher_server::DEFAULT_TOKEN);
    setup.endpoint.timeout_seconds = Some(1);
    let client = RancherClient::from_endpoint(&setup.endpoint).unwrap();
    server.set_latency(Duration::from_millis(2500));
    let err = plan(&client, &desired("prod")).await.unwrap_err();
    let RancherError::Timeout { path, after, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, "/v3/projects");
    assert_eq!(*after, Duration::from_secs(1));
    assert!(err.to_string().contains("timeoutSeconds"));
}

#[tokio::test]
async fn project_that_never_becomes_active_stops_apply() {
    let server = RancherServer::start_with(ServerOptions {
        activate_after: Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let client =
        client(&server).with_active_wait(Duration::from_millis(300), Duration::from_millis(20));
    let p = plan(&client, &desired("prod")).await.unwrap();
    let report = apply(&client, &p).await;
    let Some(RancherError::NotActive { state, .. }) = &report.error else {
        panic!("{}", report.render_text());
    };
    assert_eq!(state, "initializing");
    assert!(
        report.results[1..]
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Skipped { .. }))
    );
    // The id is still reported: the project exists and a later run adopts it.
    assert!(report.project_id.is_some());
}

type Edit = dyn Fn(&mut keelson::rancher::DesiredRancher);

#[tokio::test]
async fn invalid_desired_state_is_refused_before_any_request() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let cases: Vec<(Box<Edit>, &str)> = vec![
        (
            Box::new(|d| {
                d.project.namespace_default_quota.remove("pods");
            }),
            "namespaceDefaultQuota.pods",
        ),
        (
            Box::new(|d| {
                d.project
                    .resource_quota
                    .insert("limitsCpu".into(), "lots".into());
            }),
            "not a quantity",
        ),
        (
            Box::new(|d| {
                d.project.resource_quota.insert("gpus".into(), "1".into());
            }),
            "not a Rancher limit key",
        ),
        (
            Box::new(|d| {
                d.project
                    .namespace_default_quota
                    .insert("limitsCpu".into(), "41".into());
            }),
            "exceeds",
        ),
        (
            Box::new(|d| {
                d.project
                    .container_default_limits
                    .insert("requestsCpu".into(), "1".into());
            }),
            "requestsCpu",
        ),
        (
            Box::new(|d| {
                let m = d.members[0].clone();
                d.members.push(m);
            }),
            "twice",
        ),
        (Box::new(|d| d.cluster_id.clear()), "clusterId"),
    ];
    for (edit, expect) in cases {
        let mut d = desired("prod");
        edit(&mut d);
        let err = plan(&client, &d).await.unwrap_err();
        assert!(
            matches!(err, RancherError::InvalidDesired { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(expect),
            "{err} should mention {expect}"
        );
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn config_errors_say_what_to_fix() {
    let server = RancherServer::start().await;
    let mut ep = RancherEndpoint {
        url: server.url().into(),
        ..Default::default()
    };
    let err = RancherClient::from_endpoint(&ep).unwrap_err();
    assert!(err.to_string().contains("tokenFile or tokenEnv"), "{err}");
    ep.token_file = Some("/nonexistent/keelson-token".into());
    let err = RancherClient::from_endpoint(&ep).unwrap_err();
    assert!(matches!(err, RancherError::TokenFile { .. }), "{err:?}");
    ep.token_file = None;
    ep.token_env = Some("KEELSON_TEST_RANCHER_TOKEN_UNSET".into());
    assert!(
        RancherClient::from_endpoint(&ep)
            .unwrap_err()
            .to_string()
            .contains("KEELSON_TEST_RANCHER_TOKEN_UNSET")
    );
}
