//! Create, no-op, update, drift normalisation, namespace placement, retire.

use keelson::rancher::{
    Action, ChangeKind, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, Outcome, PROJECT_ID_ANNOTATION,
    RetiredRancher, apply, plan, plan_retire,
};
use rancher_server::RancherServer;
use serde_json::json;

use crate::common::{CLUSTER, client, converge, desired};

#[tokio::test]
async fn creates_projects_with_quotas_members_and_namespaces_for_staging_and_prod() {
    let server = RancherServer::start().await;
    let client = client(&server);
    for env in ["staging", "prod"] {
        let d = desired(env);
        let p = plan(&client, &d).await.unwrap();
        let actions: Vec<(ChangeKind, Action)> =
            p.changes.iter().map(|c| (c.kind, c.action)).collect();
        assert_eq!(
            actions,
            vec![
                (ChangeKind::Project, Action::Create),
                (ChangeKind::Namespace, Action::Create),
                (ChangeKind::Member, Action::Create),
                (ChangeKind::Member, Action::Create),
            ]
        );
        assert_eq!(p.project_id, None);
        let report = apply(&client, &p).await;
        assert!(report.is_success(), "{}", report.render_text());
        assert_eq!(report.applied().count(), 4);
        let pid = report.project_id.clone().unwrap();
        assert!(pid.starts_with("c-m-abc12:p-"), "{pid}");
        assert_eq!(
            report.namespace_annotation(),
            Some((PROJECT_ID_ANNOTATION.to_string(), pid.clone()))
        );

        let project = server
            .projects()
            .into_iter()
            .find(|p| p["id"] == pid.as_str())
            .unwrap();
        assert_eq!(project["name"], format!("shop-{env}"));
        assert_eq!(project["state"], "active");
        assert_eq!(project["resourceQuota"]["limit"]["limitsCpu"], "40");
        assert_eq!(project["resourceQuota"]["limit"]["pods"], "200");
        assert_eq!(
            project["namespaceDefaultResourceQuota"]["limit"]["limitsMemory"],
            "16Gi"
        );
        assert_eq!(
            project["containerDefaultResourceLimit"]["requestsCpu"],
            "100m"
        );
        assert_eq!(project["labels"][MANAGED_BY_LABEL], "keelson");
        assert_eq!(project["labels"][ENVIRONMENT_LABEL], env);

        let ns = server.namespace(CLUSTER, &format!("shop-{env}")).unwrap();
        assert_eq!(ns["projectId"], pid.as_str());
        // Rancher stores the project as this annotation (the v3 view shows it as `projectId`).
        let annotations = server
            .namespace_annotations(CLUSTER, &format!("shop-{env}"))
            .unwrap();
        assert_eq!(annotations[PROJECT_ID_ANNOTATION], pid);

        let bindings: Vec<_> = server
            .bindings()
            .into_iter()
            .filter(|b| b["projectId"] == pid.as_str())
            .collect();
        assert_eq!(bindings.len(), 2);
        let group = bindings
            .iter()
            .find(|b| b["groupPrincipalId"] == "github_team://1234")
            .unwrap();
        assert_eq!(group["roleTemplateId"], "project-member");
        let user = bindings
            .iter()
            .find(|b| b["userPrincipalId"] == "local://u-abc12")
            .unwrap();
        assert_eq!(user["roleTemplateId"], "read-only");
        for b in &bindings {
            assert_eq!(b["labels"][MANAGED_BY_LABEL], "keelson");
            assert_eq!(b["labels"][ENVIRONMENT_LABEL], env);
        }
    }
    assert_eq!(server.projects().len(), 2);
}

#[tokio::test]
async fn second_plan_and_apply_issue_no_writes() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    converge(&client, &d).await;
    server.clear_log();

    let p = plan(&client, &d).await.unwrap();
    assert!(!p.has_changes(), "{}", p.render_text());
    assert!(p.changes.iter().all(|c| c.action == Action::Unchanged));
    // A converged plan costs three reads: project, namespace, bindings.
    let reads: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        reads,
        vec![
            "/v3/projects".to_string(),
            "/v3/clusters/c-m-abc12/namespaces/shop-prod".to_string(),
            "/v3/projectroletemplatebindings".to_string(),
        ]
    );
    let report = apply(&client, &p).await;
    assert!(report.is_success());
    assert!(
        report
            .results
            .iter()
            .all(|r| r.outcome == Outcome::Unchanged)
    );
    assert_eq!(
        server.writes(),
        vec![],
        "a converged environment must not write"
    );
    assert_eq!(
        server.requests().len(),
        3,
        "apply of a no-op plan sends nothing"
    );
}

#[tokio::test]
async fn quota_change_is_exactly_one_update() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    let pid = converge(&client, &d).await;
    d.project
        .resource_quota
        .insert("limitsCpu".into(), "48".into());
    server.clear_log();

    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.change_count(), 1, "{}", p.render_text());
    let change = p
        .changes
        .iter()
        .find(|c| c.action != Action::Unchanged)
        .unwrap();
    assert_eq!(
        (change.kind, change.action),
        (ChangeKind::Project, Action::Update)
    );
    assert_eq!(change.diff.len(), 1);
    assert_eq!(change.diff[0].field, "resourceQuota.limit.limitsCpu");
    assert_eq!(change.diff[0].before.as_deref(), Some("40"));
    assert_eq!(change.diff[0].after.as_deref(), Some("48"));

    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    let writes = server.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PUT");
    assert_eq!(writes[0].path, format!("/v3/projects/{pid}"));
    let body = writes[0].body.as_ref().unwrap();
    // Both quotas travel together, as Rancher validates them as a pair.
    assert_eq!(body["resourceQuota"]["limit"]["limitsCpu"], "48");
    assert_eq!(
        body["namespaceDefaultResourceQuota"]["limit"]["limitsCpu"],
        "8"
    );
    let project = server
        .projects()
        .into_iter()
        .find(|p| p["id"] == pid.as_str())
        .unwrap();
    assert_eq!(project["resourceQuota"]["limit"]["limitsCpu"], "48");
    assert_eq!(
        project["labels"][MANAGED_BY_LABEL], "keelson",
        "labels survive the PUT"
    );
}

#[tokio::test]
async fn equivalent_quantities_and_rancher_added_fields_are_not_drift() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    // State made by hand in the Rancher UI, spelled differently, with the
    // decorations Rancher adds to every object.
    let pid = server.insert_project(json!({
        "clusterId": CLUSTER, "name": "shop-prod", "description": "Shop prod", "state": "active",
        "labels": {"cattle.io/creator": "norman", "field.cattle.io/projectId": "p-hand1"},
        "resourceQuota": {"type": "/v3/schemas/projectResourceQuota",
            "limit": {"type": "/v3/schemas/resourceQuotaLimit", "limitsCpu": "40000m", "limitsMemory": "81920Mi", "pods": "200"},
            "usedLimit": {"limitsCpu": "1200m", "pods": "12"}},
        "namespaceDefaultResourceQuota": {"type": "/v3/schemas/namespaceResourceQuota",
            "limit": {"type": "/v3/schemas/resourceQuotaLimit", "limitsCpu": "8000m", "limitsMemory": "16384Mi", "pods": "50"}},
        "containerDefaultResourceLimit": {"type": "/v3/schemas/containerResourceLimit",
            "limitsCpu": "0.5", "limitsMemory": "536870912", "requestsCpu": "0.1", "requestsMemory": "128Mi"},
    }));
    server.add_namespace(CLUSTER, "shop-prod", Some(&pid));
    for (field, id, role) in [
        ("groupPrincipalId", "github_team://1234", "project-member"),
        ("userPrincipalId", "local://u-abc12", "read-only"),
    ] {
        server.insert_binding(json!({"projectId": pid, "roleTemplateId": role, field: id}));
    }

    let p = plan(&client, &d).await.unwrap();
    assert!(!p.has_changes(), "phantom drift:\n{}", p.render_text());
    assert_eq!(p.project_id.as_deref(), Some(pid.as_str()));
}

#[tokio::test]
async fn existing_namespace_outside_the_project_is_placed_in_it() {
    let server = RancherServer::start().await;
    let client = client(&server);
    server.add_namespace(CLUSTER, "shop-prod", None);
    let d = desired("prod");
    let p = plan(&client, &d).await.unwrap();
    let ns_change = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Namespace)
        .unwrap();
    assert_eq!(ns_change.action, Action::Update);
    assert_eq!(ns_change.diff[0].before, None);

    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    let pid = report.project_id.unwrap();
    let ns = server.namespace(CLUSTER, "shop-prod").unwrap();
    assert_eq!(ns["projectId"], pid.as_str());
    // Rancher stores the project as this annotation (the v3 view shows it as `projectId`).
    assert_eq!(
        server.namespace_annotations(CLUSTER, "shop-prod").unwrap()[PROJECT_ID_ANNOTATION],
        pid
    );
    let ns_writes: Vec<_> = server
        .writes()
        .into_iter()
        .filter(|w| w.path.contains("/namespaces"))
        .collect();
    assert_eq!(ns_writes.len(), 1);
    assert_eq!(ns_writes[0].method, "PUT");
    assert_eq!(
        ns_writes[0].path,
        "/v3/clusters/c-m-abc12/namespaces/shop-prod"
    );

    // A namespace in another project is moved too, and then given this
    // project's container defaults (Rancher would keep the old project's).
    let other = server.insert_project(json!({"clusterId": CLUSTER, "name": "elsewhere"}));
    server.add_namespace(CLUSTER, "shop-prod", Some(&other));
    let p = plan(&client, &d).await.unwrap();
    let kinds: Vec<ChangeKind> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![ChangeKind::Namespace, ChangeKind::NamespaceQuota],
        "{}",
        p.render_text()
    );
    assert!(apply(&client, &p).await.is_success());
    let ns = server.namespace(CLUSTER, "shop-prod").unwrap();
    assert_eq!(ns["projectId"], pid.as_str());
    assert_eq!(ns["containerDefaultResourceLimit"]["limitsMemory"], "512Mi");
    assert_eq!(
        server.resource_quota(CLUSTER, "shop-prod").unwrap()["limits.cpu"],
        "8"
    );
    assert!(!plan(&client, &d).await.unwrap().has_changes());
}

#[tokio::test]
async fn plan_renders_as_text_markdown_and_json() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let p = plan(&client, &desired("prod")).await.unwrap();
    let text = p.render_text();
    assert!(
        text.contains("+ create project shop-prod in cluster c-m-abc12"),
        "{text}"
    );
    assert!(
        text.contains("resourceQuota.limit.limitsCpu: (none) -> 40"),
        "{text}"
    );
    assert!(
        text.contains("+ add groupPrincipalId=github_team://1234 as project-member"),
        "{text}"
    );
    let md = p.render_markdown();
    assert!(
        md.contains("| + | create namespace shop-prod in project shop-prod |"),
        "{md}"
    );
    let j = serde_json::to_value(&p).unwrap();
    assert_eq!(j["environment"], "prod");
    assert_eq!(j["changes"][0]["kind"], "project");
    assert_eq!(j["changes"][0]["action"], "create");
    assert!(j["changes"][0]["diff"].as_array().unwrap().len() >= 10);
    // A plan read back from JSON can be shown but not applied blindly.
    let back: keelson::rancher::RancherPlan = serde_json::from_value(j).unwrap();
    let report = apply(&client, &back).await;
    assert!(
        report
            .results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Skipped { .. }))
    );
    assert!(server.writes().is_empty());
}

#[tokio::test]
async fn retire_removes_owned_state_but_keeps_shared_projects() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let d = desired("prod");
    let pid = converge(&client, &d).await;
    let retired = RetiredRancher {
        environment: "prod".into(),
        cluster_id: CLUSTER.into(),
        project: "shop-prod".into(),
        namespace: "shop-prod".into(),
    };

    // Another team's namespace in the project keeps it alive.
    server.add_namespace(CLUSTER, "payments", Some(&pid));
    let p = plan_retire(&client, &retired).await.unwrap();
    let project = p
        .changes
        .iter()
        .find(|c| c.kind == ChangeKind::Project)
        .unwrap();
    assert_eq!(project.action, Action::Unchanged);
    assert!(project.summary.contains("payments"), "{}", project.summary);
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .count(),
        2
    );
    assert!(apply(&client, &p).await.is_success());
    assert!(server.bindings().is_empty());
    assert_eq!(server.projects().len(), 1);

    // Without it, the project keelson created goes.
    server.add_namespace(CLUSTER, "payments", None);
    let p = plan_retire(&client, &retired).await.unwrap();
    assert_eq!(p.change_count(), 1, "{}", p.render_text());
    assert!(apply(&client, &p).await.is_success());
    assert!(server.projects().is_empty());

    // A project keelson did not create is never deleted.
    let hand = server.insert_project(json!({"clusterId": CLUSTER, "name": "shop-prod"}));
    let p = plan_retire(&client, &retired).await.unwrap();
    assert!(!p.has_changes(), "{}", p.render_text());
    assert!(server.projects().iter().any(|p| p["id"] == hand.as_str()));
}

/// A fence that lets `allowed` writes through, then refuses, as a Lease
/// lost mid-run does (`keelson run` with replicas).
struct LosesLeaseAfter {
    allowed: std::sync::atomic::AtomicUsize,
}

impl keelson::controller::fence::Fence for LosesLeaseAfter {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        use std::sync::atomic::Ordering;
        let left = self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        Box::pin(async move {
            left.map(|_| ())
                .map_err(|_| "the lease of environment prod is held by replica-b".to_string())
        })
    }
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_sends_no_further_rancher_write() {
    let server = RancherServer::start().await;
    let fence = std::sync::Arc::new(LosesLeaseAfter {
        allowed: std::sync::atomic::AtomicUsize::new(1),
    });
    let client = client(&server).with_fence(fence);
    let d = desired("prod");
    let p = plan(&client, &d).await.expect("reads are not fenced");
    assert_eq!(p.changes.len(), 4, "{}", p.render_text());
    let report = apply(&client, &p).await;
    assert!(!report.is_success(), "{}", report.render_text());
    let text = report.render_text();
    assert!(
        text.contains("not written: the lease of environment prod is held by replica-b"),
        "{text}"
    );
    // Only the write made while the Lease was held reached Rancher.
    let writes = server.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].path, "/v3/projects", "{writes:?}");
}
