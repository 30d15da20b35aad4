//! The test server is as strict as a real Rancher (2.8+) where keelson can
//! trip: each test drives it over raw HTTP, the way any client would, and
//! checks the behaviour named in the Rancher source the server cites.

use rancher_server::{RancherServer, RoleTemplate};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{CLUSTER, call};

const PROJECTS_WEBHOOK: &str =
    "admission webhook \"rancher.cattle.io.projects.management.cattle.io\" denied the request: ";

async fn project(server: &RancherServer, name: &str, limit: Value, default: Value) -> String {
    let (s, p) = call(
        server,
        Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": name,
                    "resourceQuota": {"limit": limit},
                    "namespaceDefaultResourceQuota": {"limit": default},
                    "containerDefaultResourceLimit": {"limitsCpu": "500m", "requestsCpu": "100m"}})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

fn ns_path(name: &str) -> String {
    format!("/v3/clusters/{CLUSTER}/namespaces/{name}")
}

#[tokio::test]
async fn a_namespace_put_drops_project_id_and_only_the_annotation_moves_it() {
    let server = RancherServer::start().await;
    let a = server.insert_project(json!({"clusterId": CLUSTER, "name": "a"}));
    let b = server.insert_project(json!({"clusterId": CLUSTER, "name": "b"}));
    server.add_namespace(CLUSTER, "web", Some(&a));

    // `projectId` is `noupdate`: accepted, and ignored.
    let (s, ns) = call(
        &server,
        Method::PUT,
        &ns_path("web"),
        Some(json!({"projectId": b})),
    )
    .await;
    assert_eq!((s, ns["projectId"].as_str()), (200, Some(a.as_str())));
    // The annotation is what Rancher reads.
    let (s, ns) = call(
        &server,
        Method::PUT,
        &ns_path("web"),
        Some(json!({"annotations": {"field.cattle.io/projectId": b}})),
    )
    .await;
    assert_eq!((s, ns["projectId"].as_str()), (200, Some(b.as_str())));
    // The v3 view shows the field, not the annotation it is stored in.
    assert!(
        ns["annotations"].get("field.cattle.io/projectId").is_none(),
        "{ns}"
    );
    assert_eq!(
        server.namespace_annotations(CLUSTER, "web").unwrap()["field.cattle.io/projectId"],
        b
    );

    // Moving into a project needs `manage-namespaces` on it (rancher/webhook).
    server.deny_manage_namespaces(&a);
    let (s, err) = call(
        &server,
        Method::PUT,
        &ns_path("web"),
        Some(json!({"annotations": {"field.cattle.io/projectId": a}})),
    )
    .await;
    assert_eq!((s, err["code"].as_str()), (403, Some("Unauthorized")));
    assert_eq!(
        err["message"],
        "admission webhook \"rancher.cattle.io.namespaces\" denied the request: Unauthorized"
    );
    assert_eq!(
        server.namespace(CLUSTER, "web").unwrap()["projectId"],
        b.as_str()
    );
}

#[tokio::test]
async fn quota_refusals_are_400s_from_the_webhook_with_its_message() {
    let server = RancherServer::start().await;
    let pid = project(
        &server,
        "p",
        json!({"limitsCpu": "20"}),
        json!({"limitsCpu": "8"}),
    )
    .await;
    server.add_namespace(CLUSTER, "one", Some(&pid));
    server.add_namespace(CLUSTER, "two", Some(&pid));
    let p = server.project(&pid).unwrap();
    assert_eq!(p["resourceQuota"]["usedLimit"]["limitsCpu"], "16");

    let put = |limit: &str, default: &str| {
        json!({"resourceQuota": {"limit": {"limitsCpu": limit}},
               "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": default}}})
    };
    let path = format!("/v3/projects/{pid}");
    let (s, err) = call(&server, Method::PUT, &path, Some(put("12", "4"))).await;
    assert_eq!((s, err["code"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        err["message"],
        format!(
            "{PROJECTS_WEBHOOK}project.spec.resourceQuota: Forbidden: resourceQuota is below the used limit on fields: limits.cpu=16"
        )
    );
    let (s, err) = call(&server, Method::PUT, &path, Some(put("20", "30"))).await;
    assert_eq!(s, 400);
    assert_eq!(
        err["message"],
        format!(
            "{PROJECTS_WEBHOOK}project.spec.namespaceDefaultResourceQuota: Forbidden: namespace default quota limit exceeds project limit on fields: limits.cpu=30"
        )
    );
    // A resource added to the defaults must fit every namespace (2 × 16Gi > 24Gi).
    let (s, err) = call(
        &server,
        Method::PUT,
        &path,
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "20", "limitsMemory": "24Gi"}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "8", "limitsMemory": "16Gi"}}})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        err["message"],
        format!(
            "{PROJECTS_WEBHOOK}exceeds project limit on fields limits.memory=32Gi when applied to all namespaces in the project"
        )
    );
    // Nothing changed.
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["limit"]["limitsCpu"],
        "20"
    );
}

#[tokio::test]
async fn a_put_keeps_quota_keys_it_leaves_out_and_removes_those_it_nulls() {
    let server = RancherServer::start().await;
    let limit = json!({"limitsCpu": "20", "pods": "100"});
    let pid = project(
        &server,
        "p",
        limit.clone(),
        json!({"limitsCpu": "8", "pods": "10"}),
    )
    .await;
    let path = format!("/v3/projects/{pid}");
    let (s, p) = call(
        &server,
        Method::PUT,
        &path,
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "20"}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "8"}}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        p["resourceQuota"]["limit"]["pods"], "100",
        "norman merges nested keys"
    );
    let (s, p) = call(
        &server,
        Method::PUT,
        &path,
        Some(
            json!({"resourceQuota": {"limit": {"limitsCpu": "20", "pods": null}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "8", "pods": null}}}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert!(p["resourceQuota"]["limit"].get("pods").is_none(), "{p}");
    assert!(
        p["namespaceDefaultResourceQuota"]["limit"]
            .get("pods")
            .is_none(),
        "{p}"
    );
}

#[tokio::test]
async fn locked_and_cluster_roles_are_refused_for_project_members() {
    let server = RancherServer::start().await;
    let pid = server.insert_project(json!({"clusterId": CLUSTER, "name": "p"}));
    server.set_role_template_locked("read-only", true);
    server.add_role_template(RoleTemplate {
        id: "rt-custom".into(),
        display_name: "Deployer".into(),
        context: "project".into(),
        locked: false,
    });
    let bind = |role: &str| json!({"projectId": pid, "roleTemplateId": role, "userPrincipalId": "local://u-1"});
    let prtbs = "/v3/projectroletemplatebindings";
    let webhook = "admission webhook \"rancher.cattle.io.projectroletemplatebindings.management.cattle.io\" denied the request: ";

    let (s, err) = call(&server, Method::POST, prtbs, Some(bind("read-only"))).await;
    assert_eq!((s, err["code"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        err["message"],
        format!(
            "{webhook}projectroletemplatebinding.roleTemplate: Forbidden: referenced role 'Read-only' is locked and cannot be assigned"
        )
    );
    let (s, err) = call(&server, Method::POST, prtbs, Some(bind("cluster-owner"))).await;
    assert_eq!(s, 400);
    assert_eq!(
        err["message"],
        format!(
            "{webhook}projectroletemplatebinding.roleTemplate.context: Unsupported value: \"cluster\": supported values: \"project\""
        )
    );
    let (s, err) = call(&server, Method::POST, prtbs, Some(bind("no-such-role"))).await;
    assert_eq!(
        (s, err["code"].as_str(), err["fieldName"].as_str()),
        (422, Some("InvalidFormat"), Some("roleTemplateId"))
    );
    let (s, _) = call(&server, Method::POST, prtbs, Some(bind("rt-custom"))).await;
    assert_eq!(s, 201);
    assert_eq!(server.bindings().len(), 1);
}

#[tokio::test]
async fn namespace_quotas_are_filled_once_and_withheld_when_they_do_not_fit() {
    let server = RancherServer::start().await;
    let pid = project(
        &server,
        "p",
        json!({"limitsCpu": "20"}),
        json!({"limitsCpu": "8"}),
    )
    .await;
    server.add_namespace(CLUSTER, "old", Some(&pid));
    let quota = |ns: &str| {
        server
            .resource_quota(CLUSTER, ns)
            .map(|q| q["limits.cpu"].clone())
    };
    assert_eq!(quota("old").as_deref(), Some("8"));
    assert_eq!(
        server.namespace_annotations(CLUSTER, "old").unwrap()["field.cattle.io/resourceQuota"],
        r#"{"limit":{"limitsCpu":"8"}}"#
    );
    assert_eq!(
        server.limit_range(CLUSTER, "old").unwrap()["default"]["cpu"],
        "500m"
    );

    // A changed default reaches new namespaces only (rancher/rancher#24664).
    let (s, _) = call(
        &server,
        Method::PUT,
        &format!("/v3/projects/{pid}"),
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "20"}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "4"}}})),
    )
    .await;
    assert_eq!(s, 200);
    server.add_namespace(CLUSTER, "new", Some(&pid));
    assert_eq!(quota("old").as_deref(), Some("8"));
    assert_eq!(quota("new").as_deref(), Some("4"));
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["usedLimit"]["limitsCpu"],
        "12"
    );

    // A namespace that brings more than the project has left is withheld.
    let mut ann = serde_json::Map::new();
    ann.insert("field.cattle.io/projectId".into(), json!(pid));
    ann.insert(
        "field.cattle.io/resourceQuota".into(),
        json!(r#"{"limit":{"limitsCpu":"10"}}"#),
    );
    server.add_namespace_with(CLUSTER, "greedy", ann);
    assert_eq!(quota("greedy").as_deref(), Some("0"));
    let status = &server.namespace_annotations(CLUSTER, "greedy").unwrap()["cattle.io/status"];
    assert!(
        status.contains("Resource quota [limits.cpu=22] exceeds project limit"),
        "{status}"
    );
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["usedLimit"]["limitsCpu"],
        "12"
    );
    // A withheld quota still counts against the next namespace
    // (`getNamespacesLimits`): 8 + 4 + 10 + 4 > 20, though usedLimit is 12.
    server.add_namespace(CLUSTER, "late", Some(&pid));
    assert_eq!(quota("late").as_deref(), Some("0"));
}

#[tokio::test]
async fn a_namespace_quota_is_checked_against_its_current_project() {
    let server = RancherServer::start().await;
    let small = project(
        &server,
        "small",
        json!({"limitsCpu": "10"}),
        json!({"limitsCpu": "5"}),
    )
    .await;
    let big = project(
        &server,
        "big",
        json!({"limitsCpu": "100", "pods": "100"}),
        json!({"limitsCpu": "50", "pods": "10"}),
    )
    .await;
    server.add_namespace(CLUSTER, "web", Some(&small));
    server.add_namespace(CLUSTER, "other", Some(&small));

    // The target's quota, sent with the move, is judged by the old project.
    let (s, err) = call(
        &server,
        Method::PUT,
        &ns_path("web"),
        Some(json!({"annotations": {"field.cattle.io/projectId": big},
                    "resourceQuota": {"limit": {"limitsCpu": "50", "pods": "10"}}})),
    )
    .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (422, Some("MissingRequired")),
        "{err}"
    );
    let (s, err) = call(
        &server,
        Method::PUT,
        &ns_path("web"),
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "6"}}})),
    )
    .await;
    assert_eq!((s, err["code"].as_str()), (422, Some("MaxLimitExceeded")));
    assert_eq!(
        err["message"],
        "exceeds projectLimit on fields: limits.cpu=11"
    );
    assert_eq!(err["fieldName"], "resourceQuota");
}

#[tokio::test]
async fn container_defaults_are_the_projects_completed_by_the_namespaces_own() {
    let server = RancherServer::start().await;
    let (s, p) = call(
        &server,
        Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": "p",
                    "containerDefaultResourceLimit": {"limitsCpu": "500m", "requestsCpu": "100m"}})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    server.add_namespace(CLUSTER, "follows", Some(&pid));
    server.add_namespace(CLUSTER, "own", Some(&pid));
    let own = r#"{"limitsCpu":"1","limitsMemory":"1Gi"}"#;
    server.annotate_namespace(
        CLUSTER,
        "own",
        "field.cattle.io/containerDefaultResourceLimit",
        Some(own),
    );
    let range = |ns: &str| server.limit_range(CLUSTER, ns);
    assert_eq!(
        range("follows").unwrap(),
        json!({"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}})
    );
    // `completeLimit`: the namespace's value for a resource the project
    // names wins; its other resources (limitsMemory) are left out.
    assert_eq!(
        range("own").unwrap(),
        json!({"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "100m"}})
    );

    // A changed project default reaches a namespace without its own.
    let path = format!("/v3/projects/{pid}");
    let body =
        json!({"containerDefaultResourceLimit": {"limitsCpu": "250m", "requestsCpu": "50m"}});
    let (s, _) = call(&server, Method::PUT, &path, Some(body)).await;
    assert_eq!(s, 200);
    assert_eq!(range("follows").unwrap()["default"]["cpu"], "250m");
    assert_eq!(
        range("own").unwrap(),
        json!({"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "50m"}})
    );

    // Without project defaults the namespace's own stand, whole.
    let body = json!({"containerDefaultResourceLimit": null});
    let (s, _) = call(&server, Method::PUT, &path, Some(body)).await;
    assert_eq!(s, 200);
    assert_eq!(range("follows"), None);
    assert_eq!(
        range("own").unwrap(),
        json!({"type": "Container", "default": {"cpu": "1", "memory": "1Gi"}, "defaultRequest": {}})
    );
    // The controller never rewrites the annotation.
    assert_eq!(
        server.namespace_annotations(CLUSTER, "own").unwrap()["field.cattle.io/containerDefaultResourceLimit"],
        own
    );
    assert!(
        !server
            .namespace_annotations(CLUSTER, "follows")
            .unwrap()
            .contains_key("field.cattle.io/containerDefaultResourceLimit")
    );
}
