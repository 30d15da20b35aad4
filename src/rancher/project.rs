//! The project change: create it, or PUT the quotas keelson manages.

use std::collections::BTreeMap;

use serde_json::Value;

use super::api::{LiveProject, limit_object};
use super::desired::{DesiredProject, DesiredRancher};
use super::plan::{Action, ChangeKind, FieldDiff, Op, RancherChange, map_diff};

pub(super) fn project_change(
    desired: &DesiredRancher,
    live: Option<&LiveProject>,
) -> RancherChange {
    let want = &desired.project;
    let target = format!("project {}", want.name);
    let Some(live) = live else {
        let body = serde_json::json!({
            "type": "project",
            "clusterId": desired.cluster_id,
            "name": want.name,
            "description": want.description.clone().unwrap_or_default(),
            "labels": desired.owner_labels(),
            "resourceQuota": limit_object(&want.resource_quota, &BTreeMap::new(), true),
            "namespaceDefaultResourceQuota": limit_object(&want.namespace_default_quota, &BTreeMap::new(), true),
            "containerDefaultResourceLimit": limit_object(&want.container_default_limits, &BTreeMap::new(), false),
        });
        let diff = project_diff(want, &LiveProject::empty());
        return RancherChange {
            kind: ChangeKind::Project,
            action: Action::Create,
            summary: format!(
                "create project {} in cluster {}",
                want.name, desired.cluster_id
            ),
            target,
            diff,
            refused: None,
            op: Some(Op::CreateProject(body)),
        };
    };
    let diff = project_diff(want, live);
    if diff.is_empty() {
        return RancherChange {
            kind: ChangeKind::Project,
            action: Action::Unchanged,
            summary: format!("project {} ({}) is up to date", want.name, live.id),
            target,
            diff,
            refused: None,
            op: None,
        };
    }
    let mut body = live.raw.clone();
    if let Value::Object(m) = &mut body {
        // Read-only parts of the answer; Rancher recomputes them.
        for k in [
            "links",
            "actions",
            "state",
            "transitioning",
            "transitioningMessage",
            "conditions",
        ] {
            m.remove(k);
        }
        if let Some(d) = &want.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        // Both quotas go together, as Rancher validates them as a pair.
        // `usedLimit` is left out: the PUT merges it back from what Rancher holds.
        m.insert(
            "resourceQuota".into(),
            limit_object(&want.resource_quota, &live.resource_quota, true),
        );
        m.insert(
            "namespaceDefaultResourceQuota".into(),
            limit_object(
                &want.namespace_default_quota,
                &live.namespace_default_quota,
                true,
            ),
        );
        m.insert(
            "containerDefaultResourceLimit".into(),
            limit_object(
                &want.container_default_limits,
                &live.container_default_limits,
                false,
            ),
        );
    }
    let fields: Vec<String> = diff.iter().map(|d| d.field.clone()).collect();
    RancherChange {
        kind: ChangeKind::Project,
        action: Action::Update,
        summary: format!(
            "update project {} ({}): {}",
            want.name,
            live.id,
            fields.join(", ")
        ),
        target,
        diff,
        refused: None,
        op: Some(Op::ReplaceProject {
            id: live.id.clone(),
            body,
        }),
    }
}

impl LiveProject {
    pub(super) fn empty() -> Self {
        LiveProject {
            id: String::new(),
            name: String::new(),
            cluster_id: String::new(),
            description: String::new(),
            state: String::new(),
            labels: BTreeMap::new(),
            resource_quota: BTreeMap::new(),
            namespace_default_quota: BTreeMap::new(),
            container_default_limits: BTreeMap::new(),
            used_limit: BTreeMap::new(),
            raw: Value::Null,
        }
    }
}

fn project_diff(want: &DesiredProject, live: &LiveProject) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    if let Some(d) = &want.description
        && d.trim() != live.description.trim()
    {
        out.push(FieldDiff {
            field: "description".into(),
            before: Some(live.description.clone()).filter(|s| !s.is_empty()),
            after: Some(d.clone()).filter(|s| !s.is_empty()),
        });
    }
    map_diff(
        "resourceQuota.limit",
        &want.resource_quota,
        &live.resource_quota,
        &mut out,
    );
    map_diff(
        "namespaceDefaultResourceQuota.limit",
        &want.namespace_default_quota,
        &live.namespace_default_quota,
        &mut out,
    );
    map_diff(
        "containerDefaultResourceLimit",
        &want.container_default_limits,
        &live.container_default_limits,
        &mut out,
    );
    out
}
