//! Project role template bindings.
//!
//! Norman's builder checks the references first (`roleTemplateId`,
//! `projectId`: 422 `InvalidFormat` "Not found type: …", from
//! `pkg/norman/parse/builder`), then rancher/webhook
//! `pkg/resources/management.cattle.io/v3/projectroletemplatebinding/validator.go`
//! refuses, with a 400: a subject other than exactly one of user, group or
//! service account; a locked role template; a role template whose context is
//! not `project`.

use serde_json::{Value, json};

use crate::Inner;
use crate::handlers::{Answer, field_error, now_ms, short_id};
use crate::webhook::{self, PRTBS};

const SUBJECTS: [&str; 4] = ["userId", "userPrincipalId", "groupId", "groupPrincipalId"];

pub(crate) fn create(s: &mut Inner, body: &Value) -> Answer {
    let project_id = body["projectId"].as_str().unwrap_or_default().to_string();
    let role = body["roleTemplateId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (field, value) in [("projectId", &project_id), ("roleTemplateId", &role)] {
        if value.is_empty() {
            return field_error(422, "MissingRequired", field, "");
        }
    }
    let Some(template) = s.role_templates.get(&role).cloned() else {
        return field_error(
            422,
            "InvalidFormat",
            "roleTemplateId",
            &format!("Not found type: roleTemplate id: {role}"),
        );
    };
    if !s.projects.contains_key(&project_id) {
        return field_error(
            422,
            "InvalidFormat",
            "projectId",
            &format!("Not found type: project id: {project_id}"),
        );
    }
    let set = |f: &str| body[f].as_str().is_some_and(|v| !v.is_empty());
    let user = set("userId") || set("userPrincipalId");
    let group = set("groupId") || set("groupPrincipalId");
    let service_account = set("serviceAccount");
    if [user, group, service_account]
        .iter()
        .filter(|b| **b)
        .count()
        != 1
    {
        return webhook::bad_request(
            PRTBS,
            &webhook::forbidden(
                "projectroletemplatebinding",
                "binding must target only a user [userName]/[userPrincipalName] OR a group [groupName]/[groupPrincipalName] OR a [serviceAccount]",
            ),
        );
    }
    if template.locked {
        return webhook::bad_request(
            PRTBS,
            &webhook::forbidden(
                "projectroletemplatebinding.roleTemplate",
                &format!(
                    "referenced role '{}' is locked and cannot be assigned",
                    template.display_name
                ),
            ),
        );
    }
    if template.context != "project" {
        return webhook::bad_request(
            PRTBS,
            &webhook::not_supported(
                "projectroletemplatebinding.roleTemplate.context",
                &template.context,
                &["project"],
            ),
        );
    }
    let project_name = project_id
        .split_once(':')
        .map(|(_, p)| p)
        .unwrap_or(&project_id)
        .to_string();
    let name = format!("prtb-{}", short_id(s));
    let id = format!("{project_name}:{name}");
    let mut obj = json!({
        "id": id, "type": "projectRoleTemplateBinding", "baseType": "projectRoleTemplateBinding",
        "name": name, "namespaceId": project_name, "projectId": project_id, "roleTemplateId": role,
        "labels": body["labels"].as_object().cloned().unwrap_or_default(),
        "annotations": body["annotations"].as_object().cloned().unwrap_or_default(),
        "creatorId": crate::TOKEN_USER, "createdTS": now_ms(), "state": "active",
        "links": {
            "self": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
            "update": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
            "remove": format!("{}/v3/projectroletemplatebindings/{id}", s.base),
        },
        "actions": {},
    });
    for f in SUBJECTS {
        if set(f) {
            obj[f] = body[f].clone();
        }
    }
    // Rancher resolves a local principal to its user and fills `userId`.
    if let Some(u) = body["userPrincipalId"]
        .as_str()
        .and_then(|p| p.strip_prefix("local://"))
        && !set("userId")
    {
        obj["userId"] = json!(u);
    }
    s.bindings.insert(id, obj.clone());
    (201, obj)
}

pub(crate) fn insert_raw(s: &mut Inner, mut obj: Value) -> String {
    let id = match obj["id"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let pid = obj["projectId"].as_str().unwrap_or_default().to_string();
            let pname = pid
                .split_once(':')
                .map(|(_, p)| p.to_string())
                .unwrap_or(pid);
            format!("{pname}:prtb-{}", short_id(s))
        }
    };
    obj["id"] = json!(id);
    s.bindings.insert(id.clone(), obj);
    id
}
