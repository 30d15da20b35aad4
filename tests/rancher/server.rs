//! Fidelity of the Rancher test server itself, driven over raw HTTP.

use keelson::rancher::{PROJECT_ID_ANNOTATION, apply, plan};
use rancher_server::RancherServer;
use serde_json::{Value, json};

use crate::common::{CLUSTER, call, client, desired};

#[tokio::test]
async fn collections_resources_errors_and_filters_have_ranchers_shapes() {
    let server = RancherServer::start().await;
    let (s, created) = call(
        &server,
        reqwest::Method::POST,
        "/v3/projects",
        Some(
            json!({"clusterId": CLUSTER, "name": "a", "resourceQuota": {"limit": {"pods": "5"}},
                    "namespaceDefaultResourceQuota": {"limit": {"pods": "1"}}}),
        ),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(created["type"], "project");
    assert_eq!(created["state"], "initializing");
    assert_eq!(
        created["resourceQuota"]["limit"]["type"],
        "/v3/schemas/resourceQuotaLimit"
    );
    let id = created["id"].as_str().unwrap();
    assert!(
        id.starts_with("c-m-abc12:p-") && id.len() == "c-m-abc12:p-xxxxx".len(),
        "{id}"
    );
    assert!(
        created["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/projects/{id}"))
    );
    call(
        &server,
        reqwest::Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": "b"})),
    )
    .await;

    let (s, list) = call(
        &server,
        reqwest::Method::GET,
        "/v3/projects?clusterId=c-m-abc12&name=b",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["type"], "collection");
    assert_eq!(list["resourceType"], "project");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["name"], "b");
    assert!(
        list["pagination"].is_object() && list["links"].is_object() && list["actions"].is_object()
    );

    let (s, err) = call(
        &server,
        reqwest::Method::GET,
        "/v3/projects/c-m-abc12:p-nope0",
        None,
    )
    .await;
    assert_eq!(
        (
            s,
            err["type"].as_str(),
            err["status"].as_u64(),
            err["code"].as_str()
        ),
        (404, Some("error"), Some(404), Some("NotFound"))
    );
    let (s, err) = call(
        &server,
        reqwest::Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": "c", "resourceQuota": {"limit": {"pods": "5"}}})),
    )
    .await;
    // Rancher 2.8+ refuses it in its webhook: a 400, with the webhook's message.
    assert_eq!((s, err["code"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        err["message"],
        "admission webhook \"rancher.cattle.io.projects.management.cattle.io\" denied the request: \
         project.spec.namespaceDefaultResourceQuota: Required value: required when resourceQuota is set"
    );

    let anon = keelson::http::client()
        .get(format!("{}/v3/projects", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let body: Value = anon.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "baseType": "error", "status": 401, "code": "Unauthorized", "message": "must authenticate"})
    );
}

#[tokio::test]
async fn move_action_refuses_projects_with_a_quota_which_is_why_keelson_uses_the_annotation() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let report = apply(&client, &plan(&client, &desired("prod")).await.unwrap()).await;
    let pid = report.project_id.unwrap();
    server.add_namespace(CLUSTER, "stray", None);
    let (s, err) = call(
        &server,
        reqwest::Method::POST,
        "/v3/clusters/c-m-abc12/namespaces/stray?action=move",
        Some(json!({"projectId": pid})),
    )
    .await;
    assert_eq!(s, 500);
    assert_eq!(
        err["message"],
        "can't move namespace. Project shop-prod has resource quota set"
    );
    // Writing the annotation (what `move` does inside Rancher) is honoured.
    let (s, ns) = call(
        &server,
        reqwest::Method::PUT,
        "/v3/clusters/c-m-abc12/namespaces/stray",
        Some(json!({"annotations": {PROJECT_ID_ANNOTATION: pid}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ns["projectId"], pid.as_str());
    assert_eq!(
        ns["labels"][PROJECT_ID_ANNOTATION],
        pid.split_once(':').unwrap().1
    );
}

#[tokio::test]
async fn client_follows_pagination_on_the_same_server() {
    let server = RancherServer::start().await;
    let client = client(&server);
    for i in 0..5 {
        server.insert_project(json!({"clusterId": CLUSTER, "name": format!("p{i}")}));
    }
    let all = client
        .list("/v3/projects", &[("limit", "2")])
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.path == "/v3/projects")
        .count();
    assert_eq!(gets, 3, "three pages of two");
}

#[tokio::test]
async fn fault_injection_fails_exactly_the_nth_request() {
    let server = RancherServer::start().await;
    server.fail_nth(2, 503);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            call(&server, reqwest::Method::GET, "/v3/projects", None)
                .await
                .0,
        );
    }
    assert_eq!(statuses, vec![200, 503, 200]);
}
