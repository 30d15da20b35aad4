//! Namespace quota drift, moves between projects, and refusals that depend
//! on usage: keelson against the strict test server, each test asserting
//! the state Rancher holds afterwards.

use std::collections::BTreeMap;

use keelson::rancher::{Action, ChangeKind, Outcome, RancherError, apply, plan};
use rancher_server::RancherServer;
use reqwest::Method;
use serde_json::json;

use crate::common::{CLUSTER, call, client, converge, desired};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The namespace's quota as Kubernetes enforces it (`limits.cpu`, …).
fn enforced(server: &RancherServer, ns: &str, resource: &str) -> Option<String> {
    server
        .resource_quota(CLUSTER, ns)
        .and_then(|q| q.get(resource).cloned())
}

#[tokio::test]
async fn a_changed_namespace_default_reaches_the_existing_namespace() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    converge(&client, &d).await;
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("8")
    );

    // Rancher would change the project only; the namespace keeps 8 CPUs.
    d.project.namespace_default_quota =
        map(&[("limitsCpu", "4"), ("limitsMemory", "8Gi"), ("pods", "50")]);
    d.project
        .container_default_limits
        .insert("limitsCpu".into(), "250m".into());
    let p = plan(&client, &d).await.unwrap();
    let quota = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::NamespaceQuota)
        .expect("a namespace quota change");
    assert_eq!(quota.action, Action::Update);
    let fields: Vec<&str> = quota.diff.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "resourceQuota.limit.limitsCpu",
            "resourceQuota.limit.limitsMemory",
            "containerDefaultResourceLimit.limitsCpu",
        ]
    );
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());

    let ann = server.namespace_annotations(CLUSTER, "shop-prod").unwrap();
    let q: serde_json::Value = serde_json::from_str(&ann["field.cattle.io/resourceQuota"]).unwrap();
    assert_eq!(
        q["limit"],
        json!({"pods": "50", "limitsCpu": "4", "limitsMemory": "8Gi"})
    );
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("4")
    );
    assert_eq!(
        enforced(&server, "shop-prod", "limits.memory").as_deref(),
        Some("8Gi")
    );
    assert_eq!(
        server.limit_range(CLUSTER, "shop-prod").unwrap()["default"]["cpu"],
        "250m"
    );

    server.clear_log();
    let again = plan(&client, &d).await.unwrap();
    assert!(!again.has_changes(), "{}", again.render_text());
}

#[tokio::test]
async fn a_quota_changed_by_hand_on_the_namespace_is_drift() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    converge(&client, &d).await;
    server.annotate_namespace(
        CLUSTER,
        "shop-prod",
        "field.cattle.io/resourceQuota",
        Some(r#"{"limit":{"limitsCpu":"2","limitsMemory":"16Gi","pods":"50"}}"#),
    );
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("2")
    );
    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.change_count(), 1, "{}", p.render_text());
    assert!(
        p.render_text()
            .contains("resourceQuota.limit.limitsCpu: 2 -> 8"),
        "{}",
        p.render_text()
    );
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("8")
    );
}

#[tokio::test]
async fn a_namespace_moved_between_projects_ends_with_the_target_quota() {
    let server = RancherServer::start().await;
    let client = client(&server);
    // The namespace lives in a project with other limits and other resources.
    let (s, old) = call(
        &server,
        Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": "legacy",
                    "resourceQuota": {"limit": {"limitsCpu": "100", "requestsStorage": "100Gi"}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "20", "requestsStorage": "50Gi"}},
                    "containerDefaultResourceLimit": {"limitsCpu": "2", "limitsMemory": "4Gi"}})),
    )
    .await;
    assert_eq!(s, 201);
    let old_id = old["id"].as_str().unwrap().to_string();
    server.add_namespace(CLUSTER, "shop-prod", Some(&old_id));
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("20")
    );

    let d = desired("prod");
    let p = plan(&client, &d).await.unwrap();
    let kinds: Vec<(ChangeKind, Action)> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .map(|c| (c.kind, c.action))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Project, Action::Create),
            (ChangeKind::Namespace, Action::Update),
            (ChangeKind::NamespaceQuota, Action::Update),
            (ChangeKind::Member, Action::Create),
            (ChangeKind::Member, Action::Create),
        ]
    );
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    let pid = report.project_id.clone().unwrap();

    let ns = server.namespace(CLUSTER, "shop-prod").unwrap();
    assert_eq!(ns["projectId"], pid.as_str());
    let want = BTreeMap::from([
        ("limits.cpu".to_string(), "8".to_string()),
        ("limits.memory".to_string(), "16Gi".to_string()),
        ("pods".to_string(), "50".to_string()),
    ]);
    assert_eq!(server.resource_quota(CLUSTER, "shop-prod"), Some(want));
    assert_eq!(
        server.limit_range(CLUSTER, "shop-prod").unwrap(),
        json!({"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"},
               "defaultRequest": {"cpu": "100m", "memory": "128Mi"}})
    );
    let status = &server.namespace_annotations(CLUSTER, "shop-prod").unwrap()["cattle.io/status"];
    assert!(status.contains(r#""status":"True""#), "{status}");
    let project = server.project(&pid).unwrap();
    assert_eq!(project["resourceQuota"]["usedLimit"]["limitsCpu"], "8");

    let again = plan(&client, &d).await.unwrap();
    assert!(!again.has_changes(), "{}", again.render_text());
}

#[tokio::test]
async fn a_namespace_from_a_project_with_larger_quotas_ends_with_the_target_quota() {
    let server = RancherServer::start().await;
    let client = client(&server);
    // Its old quota (60 CPUs) is more than the whole target project (40):
    // right after the move Rancher withholds it and keeps the old
    // ResourceQuota, until keelson sets the target's.
    let (s, old) = call(
        &server,
        Method::POST,
        "/v3/projects",
        Some(json!({"clusterId": CLUSTER, "name": "big",
                    "resourceQuota": {"limit": {"limitsCpu": "100", "pods": "500"}},
                    "namespaceDefaultResourceQuota": {"limit": {"limitsCpu": "60", "pods": "300"}}})),
    )
    .await;
    assert_eq!(s, 201);
    server.add_namespace(CLUSTER, "shop-prod", Some(old["id"].as_str().unwrap()));
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("60")
    );

    let d = desired("prod");
    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.refusals().count(), 0, "{}", p.render_text());
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    let pid = report.project_id.clone().unwrap();

    assert_eq!(
        server.resource_quota(CLUSTER, "shop-prod"),
        Some(BTreeMap::from([
            ("limits.cpu".to_string(), "8".to_string()),
            ("limits.memory".to_string(), "16Gi".to_string()),
            ("pods".to_string(), "50".to_string()),
        ]))
    );
    let status = &server.namespace_annotations(CLUSTER, "shop-prod").unwrap()["cattle.io/status"];
    assert!(status.contains(r#""status":"True""#), "{status}");
    let used = &server.project(&pid).unwrap()["resourceQuota"]["usedLimit"];
    assert_eq!(
        (&used["limitsCpu"], &used["pods"]),
        (&json!("8"), &json!("50"))
    );
    assert!(!plan(&client, &d).await.unwrap().has_changes());
}

/// A project of `limitsCpu: 40` whose four other namespaces hold 8 each.
async fn crowded(server: &RancherServer) -> String {
    let client = client(server);
    let d = desired("prod");
    let pid = converge(&client, &d).await;
    for i in 0..4 {
        let mut ann = serde_json::Map::new();
        ann.insert("field.cattle.io/projectId".into(), json!(pid));
        ann.insert(
            "field.cattle.io/resourceQuota".into(),
            json!(r#"{"limit":{"limitsCpu":"8","limitsMemory":"16Gi","pods":"10"}}"#),
        );
        server.add_namespace_with(CLUSTER, &format!("team-{i}"), ann);
    }
    let used = server.project(&pid).unwrap()["resourceQuota"]["usedLimit"]["limitsCpu"].clone();
    assert_eq!(used, "40");
    pid
}

#[tokio::test]
async fn a_limit_below_what_namespaces_use_is_flagged_before_anything_is_sent() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let pid = crowded(&server).await;
    let mut d = desired("prod");
    d.project
        .resource_quota
        .insert("limitsCpu".into(), "32".into());
    d.members.pop();

    let p = plan(&client, &d).await.unwrap();
    let refused: Vec<&str> = p
        .refusals()
        .map(|c| c.refused.as_deref().unwrap())
        .collect();
    assert_eq!(refused.len(), 1, "{}", p.render_text());
    assert!(
        refused[0].starts_with(
            "resourceQuota.limit.limitsCpu 32 is below the 40 the project's namespaces already hold"
        ),
        "{}",
        refused[0]
    );
    assert!(
        p.render_text().contains("! Rancher would refuse this"),
        "{}",
        p.render_text()
    );

    server.clear_log();
    let report = apply(&client, &p).await;
    assert!(matches!(
        report.error,
        Some(RancherError::WouldBeRefused { .. })
    ));
    assert!(server.writes().is_empty(), "{:?}", server.writes());
    assert_eq!(report.applied().count(), 0);
    // The member removal was not sent either: no half-applied environment.
    assert_eq!(server.bindings().len(), 2);
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["limit"]["limitsCpu"],
        "40"
    );
}

#[tokio::test]
async fn a_new_default_that_does_not_fit_the_namespaces_is_flagged() {
    let server = RancherServer::start().await;
    let client = client(&server);
    crowded(&server).await;
    let mut d = desired("prod");
    d.project
        .resource_quota
        .insert("requestsStorage".into(), "100Gi".into());
    d.project
        .namespace_default_quota
        .insert("requestsStorage".into(), "20Gi".into());
    // Five namespaces × 20Gi fit the 100Gi limit exactly.
    let p = plan(&client, &d).await.unwrap();
    assert!(p.changes[0].refused.is_none(), "{}", p.render_text());
    // Five × 30Gi do not: Rancher's webhook would answer 400.
    d.project
        .namespace_default_quota
        .insert("requestsStorage".into(), "30Gi".into());
    let p = plan(&client, &d).await.unwrap();
    let why = p.changes[0].refused.as_deref().expect("refused");
    assert!(
        why.starts_with("namespaceDefaultQuota.requestsStorage 30Gi for each of the project's 5 namespaces makes 150Gi, over resourceQuota.limit.requestsStorage 100Gi"),
        "{why}"
    );
    server.clear_log();
    let report = apply(&client, &p).await;
    assert!(matches!(
        report.error,
        Some(RancherError::WouldBeRefused { .. })
    ));
    assert!(server.writes().is_empty());
}

#[tokio::test]
async fn a_refusal_the_plan_could_not_see_is_reported_in_ranchers_words() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let pid = converge(&client, &desired("prod")).await;
    let mut d = desired("prod");
    d.project
        .resource_quota
        .insert("limitsCpu".into(), "12".into());
    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.refusals().count(), 0, "{}", p.render_text());
    // Between plan and apply, someone adds a namespace to the project.
    server.add_namespace(CLUSTER, "late", Some(&pid));

    let report = apply(&client, &p).await;
    let Some(RancherError::Invalid(api)) = &report.error else {
        panic!("{}", report.render_text());
    };
    let message = "admission webhook \"rancher.cattle.io.projects.management.cattle.io\" denied the request: project.spec.resourceQuota: Forbidden: resourceQuota is below the used limit on fields: limits.cpu=16";
    assert_eq!(
        (api.status, api.code.as_str(), api.message.as_str()),
        (400, "BadRequest", message)
    );
    let failed = report
        .results
        .iter()
        .find(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .unwrap();
    let Outcome::Failed { message: m, .. } = &failed.outcome else {
        unreachable!()
    };
    assert_eq!(m.as_deref(), Some(message));
    assert!(
        report.render_text().contains(message),
        "{}",
        report.render_text()
    );
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["limit"]["limitsCpu"],
        "40"
    );
}

#[tokio::test]
async fn a_namespace_that_would_not_fit_its_new_project_is_flagged() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let pid = crowded(&server).await;
    // Our namespace leaves; a stranger takes its room; then we want it back.
    let (s, _) = call(
        &server,
        Method::PUT,
        &format!("/v3/clusters/{CLUSTER}/namespaces/shop-prod"),
        Some(json!({"annotations": {"field.cattle.io/projectId": ""}})),
    )
    .await;
    assert_eq!(s, 200);
    server.add_namespace(CLUSTER, "stranger", Some(&pid));
    let p = plan(&client, &desired("prod")).await.unwrap();
    let mv = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Namespace)
        .unwrap();
    assert_eq!(mv.action, Action::Update);
    let why = mv.refused.as_deref().expect("refused");
    assert!(
        why.starts_with("namespace shop-prod moved in needs 8 of resourceQuota.limit.limitsCpu 40, but the project's other namespaces already hold 40 (their quotas); Rancher would withhold"),
        "{why}"
    );
    server.clear_log();
    assert!(!apply(&client, &p).await.is_success());
    assert!(server.writes().is_empty());
    assert_eq!(
        server.namespace(CLUSTER, "shop-prod").unwrap()["projectId"],
        ""
    );
}

#[tokio::test]
async fn a_quota_key_dropped_from_the_spec_is_removed_in_rancher() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    let pid = converge(&client, &d).await;
    d.project.resource_quota.remove("pods");
    d.project.namespace_default_quota.remove("pods");
    d.project.container_default_limits.remove("requestsMemory");
    let p = plan(&client, &d).await.unwrap();
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());

    let project = server.project(&pid).unwrap();
    assert!(
        project["resourceQuota"]["limit"].get("pods").is_none(),
        "{project}"
    );
    assert!(
        project["namespaceDefaultResourceQuota"]["limit"]
            .get("pods")
            .is_none()
    );
    assert!(
        project["containerDefaultResourceLimit"]
            .get("requestsMemory")
            .is_none()
    );
    // Rancher's controller completes the namespace quota with the project's
    // resources only, so `pods` leaves the namespace as well.
    let quota = server.resource_quota(CLUSTER, "shop-prod").unwrap();
    assert!(!quota.contains_key("pods"), "{quota:?}");
    assert!(!plan(&client, &d).await.unwrap().has_changes());
}

#[tokio::test]
async fn a_move_without_manage_namespaces_fails_with_ranchers_403() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    let pid = converge(&client, &d).await;
    let other = server.insert_project(json!({"clusterId": CLUSTER, "name": "elsewhere"}));
    let (s, _) = call(
        &server,
        Method::PUT,
        &format!("/v3/clusters/{CLUSTER}/namespaces/shop-prod"),
        Some(json!({"annotations": {"field.cattle.io/projectId": other}})),
    )
    .await;
    assert_eq!(s, 200);
    server.deny_manage_namespaces(&pid);

    let p = plan(&client, &d).await.unwrap();
    let report = apply(&client, &p).await;
    let Some(RancherError::Forbidden(api)) = &report.error else {
        panic!("{}", report.render_text());
    };
    assert_eq!(
        (api.status, api.message.as_str()),
        (
            403,
            "admission webhook \"rancher.cattle.io.namespaces\" denied the request: Unauthorized"
        )
    );
    // Rancher's words name no permission; keelson's next step does.
    let text = report.render_text();
    assert!(
        text.contains("needs the `manage-namespaces` verb on that project"),
        "{text}"
    );
    assert_eq!(
        server.namespace(CLUSTER, "shop-prod").unwrap()["projectId"],
        other.as_str()
    );
}

#[tokio::test]
async fn a_larger_namespace_quota_that_does_not_fit_is_flagged_and_rancher_agrees() {
    let server = RancherServer::start().await;
    let client = client(&server);
    crowded(&server).await;
    let mut d = desired("prod");
    d.project
        .namespace_default_quota
        .insert("limitsCpu".into(), "10".into());
    let p = plan(&client, &d).await.unwrap();
    assert!(p.changes[0].refused.is_none(), "{}", p.render_text());
    let quota = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::NamespaceQuota)
        .unwrap();
    let why = quota.refused.as_deref().expect("refused");
    assert!(
        why.starts_with("namespace shop-prod given its quota needs 10 of resourceQuota.limit.limitsCpu 40, but the project's other namespaces already hold 32 (their quotas); Rancher refuses it (422 MaxLimitExceeded)"),
        "{why}"
    );
    // What Rancher answers to that write.
    let (s, err) = call(
        &server,
        Method::PUT,
        &format!("/v3/clusters/{CLUSTER}/namespaces/shop-prod"),
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "10", "limitsMemory": "16Gi", "pods": "50"}}})),
    )
    .await;
    assert_eq!((s, err["code"].as_str()), (422, Some("MaxLimitExceeded")));
    assert_eq!(
        err["message"],
        "exceeds projectLimit on fields: limits.cpu=42"
    );
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("8")
    );
}

#[tokio::test]
async fn container_defaults_dropped_from_the_spec_leave_the_namespace() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    converge(&client, &d).await;
    assert!(server.limit_range(CLUSTER, "shop-prod").is_some());

    // Rancher keeps a namespace's own container defaults when its project
    // has none, so clearing the project alone leaves the LimitRange.
    d.project.container_default_limits.clear();
    let p = plan(&client, &d).await.unwrap();
    let quota = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::NamespaceQuota)
        .expect("a namespace quota change");
    assert_eq!(quota.action, Action::Update);
    let cleared: Vec<(&str, Option<&str>)> = quota
        .diff
        .iter()
        .map(|f| (f.field.as_str(), f.after.as_deref()))
        .collect();
    assert_eq!(
        cleared,
        vec![
            ("containerDefaultResourceLimit.limitsCpu", None),
            ("containerDefaultResourceLimit.limitsMemory", None),
            ("containerDefaultResourceLimit.requestsCpu", None),
            ("containerDefaultResourceLimit.requestsMemory", None),
        ]
    );
    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());

    assert_eq!(server.limit_range(CLUSTER, "shop-prod"), None);
    let ns = server.namespace(CLUSTER, "shop-prod").unwrap();
    assert!(
        ns["containerDefaultResourceLimit"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{ns}"
    );
    // The quota is untouched.
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("8")
    );
    assert!(!plan(&client, &d).await.unwrap().has_changes());
}

#[tokio::test]
async fn a_withheld_neighbour_counts_against_the_namespace_quota_as_rancher_counts_it() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    d.project
        .resource_quota
        .insert("limitsCpu".into(), "48".into());
    let pid = converge(&client, &d).await;
    // Four neighbours of 8 fit (40 of 48 with ours); a fifth of 10 does not
    // and is withheld, so usedLimit stays at 40.
    for (name, cpu) in [("t0", 8), ("t1", 8), ("t2", 8), ("t3", 8), ("greedy", 10)] {
        let mut ann = serde_json::Map::new();
        ann.insert("field.cattle.io/projectId".into(), json!(pid));
        ann.insert(
            "field.cattle.io/resourceQuota".into(),
            json!(format!(
                r#"{{"limit":{{"limitsCpu":"{cpu}","limitsMemory":"1Gi","pods":"1"}}}}"#
            )),
        );
        server.add_namespace_with(CLUSTER, name, ann);
    }
    assert_eq!(
        enforced(&server, "greedy", "limits.cpu").as_deref(),
        Some("0")
    );
    assert_eq!(
        server.project(&pid).unwrap()["resourceQuota"]["usedLimit"]["limitsCpu"],
        "40"
    );

    // 12 fits beside usedLimit (32 + 12 = 44), but Rancher's namespace store
    // adds the withheld neighbour too: 42 + 12 = 54 > 48.
    d.project
        .namespace_default_quota
        .insert("limitsCpu".into(), "12".into());
    let p = plan(&client, &d).await.unwrap();
    let quota = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::NamespaceQuota)
        .unwrap();
    let why = quota.refused.as_deref().expect("refused");
    assert!(
        why.starts_with("namespace shop-prod given its quota needs 12 of resourceQuota.limit.limitsCpu 48, but the project's other namespaces already hold 42 (their quotas); Rancher refuses it (422 MaxLimitExceeded)"),
        "{why}"
    );
    // Rancher agrees.
    let (s, err) = call(
        &server,
        Method::PUT,
        &format!("/v3/clusters/{CLUSTER}/namespaces/shop-prod"),
        Some(json!({"resourceQuota": {"limit": {"limitsCpu": "12", "limitsMemory": "16Gi", "pods": "50"}}})),
    )
    .await;
    assert_eq!((s, err["code"].as_str()), (422, Some("MaxLimitExceeded")));
    server.clear_log();
    assert!(!apply(&client, &p).await.is_success());
    assert!(server.writes().is_empty(), "{:?}", server.writes());
    assert_eq!(
        enforced(&server, "shop-prod", "limits.cpu").as_deref(),
        Some("8")
    );
}
