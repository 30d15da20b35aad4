//! Member bindings: only the ones keelson created for this environment go.

use keelson::rancher::{Action, ChangeKind, DesiredMember, Subject, apply, plan};
use rancher_server::RancherServer;
use serde_json::json;

use crate::common::{client, converge, desired};

#[tokio::test]
async fn removed_member_loses_its_binding_and_foreign_bindings_stay() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    let pid = converge(&client, &d).await;
    // Made by a person in the UI, and by keelson for another environment
    // sharing the project: neither is prod's to remove.
    let by_hand = server.insert_binding(json!({
        "projectId": pid, "roleTemplateId": "project-owner", "userPrincipalId": "local://u-admin",
    }));
    let other_env = server.insert_binding(json!({
        "projectId": pid, "roleTemplateId": "read-only", "userPrincipalId": "local://u-qa",
        "labels": {"app.kubernetes.io/managed-by": "keelson", "keelson.dev/environment": "staging"},
    }));
    let user_binding = server
        .bindings()
        .into_iter()
        .find(|b| b["userPrincipalId"] == "local://u-abc12")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    d.members.retain(|m| m.role != "read-only");
    server.clear_log();
    let p = plan(&client, &d).await.unwrap();
    assert_eq!(p.change_count(), 1, "{}", p.render_text());
    let del = p
        .changes
        .iter()
        .find(|c| c.action == Action::Delete)
        .unwrap();
    assert_eq!(del.kind, ChangeKind::Member);
    assert!(
        del.summary.contains("userPrincipalId=local://u-abc12"),
        "{}",
        del.summary
    );

    let report = apply(&client, &p).await;
    assert!(report.is_success(), "{}", report.render_text());
    let writes = server.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "DELETE");
    assert_eq!(
        writes[0].path,
        format!("/v3/projectroletemplatebindings/{user_binding}")
    );
    let ids: Vec<String> = server
        .bindings()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&by_hand), "hand-made binding kept");
    assert!(ids.contains(&other_env), "other environment's binding kept");
    assert!(!ids.contains(&user_binding));
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn role_change_adds_the_new_binding_before_removing_the_old() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("dev");
    converge(&client, &d).await;
    d.members[1].role = "project-member".into();
    server.clear_log();
    let p = plan(&client, &d).await.unwrap();
    let order: Vec<Action> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .map(|c| c.action)
        .collect();
    assert_eq!(
        order,
        vec![Action::Create, Action::Delete],
        "{}",
        p.render_text()
    );
    assert!(apply(&client, &p).await.is_success());
    let methods: Vec<String> = server.writes().iter().map(|w| w.method.clone()).collect();
    assert_eq!(methods, vec!["POST", "DELETE"]);
    let user: Vec<_> = server
        .bindings()
        .into_iter()
        .filter(|b| b["userPrincipalId"] == "local://u-abc12")
        .collect();
    assert_eq!(user.len(), 1);
    assert_eq!(user[0]["roleTemplateId"], "project-member");
}

#[tokio::test]
async fn an_existing_binding_made_by_hand_satisfies_a_member() {
    let server = RancherServer::start().await;
    let client = client(&server);
    let mut d = desired("prod");
    let pid = converge(&client, &d).await;
    server.insert_binding(json!({
        "projectId": pid, "roleTemplateId": "project-owner", "groupPrincipalId": "github_team://99",
    }));
    d.members.push(DesiredMember {
        subject: Subject::GroupPrincipalId("github_team://99".into()),
        role: "project-owner".into(),
    });
    let p = plan(&client, &d).await.unwrap();
    assert!(!p.has_changes(), "{}", p.render_text());
}
