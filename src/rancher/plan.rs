//! Desired Rancher state against live state: what would change.
//!
//! Reading is the only I/O here. Quantities are compared by value and only
//! the fields keelson manages are compared, so Rancher's own additions
//! (`type`, `usedLimit`, `state`, generated labels) never show as drift.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::{LiveBinding, LiveNamespace, LiveProject};
use super::client::RancherClient;
use super::desired::{DesiredMember, DesiredProject, DesiredRancher, PROJECT_ID_ANNOTATION};
use super::error::RancherError;
use crate::quantity;

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// The Rancher project and its quotas.
    Project,
    /// The namespace's place in the project.
    Namespace,
    /// A project member (role template binding).
    Member,
}

/// What apply would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Create it.
    Create,
    /// Change it.
    Update,
    /// Remove it.
    Delete,
    /// Nothing to do.
    Unchanged,
}

/// One field that changes: `None` means absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// v3 field path, e.g. `resourceQuota.limit.limitsCpu`.
    pub field: String,
    /// Value in Rancher now.
    pub before: Option<String>,
    /// Value after apply.
    pub after: Option<String>,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RancherChange {
    /// Project, namespace or member.
    pub kind: ChangeKind,
    /// Create, update, delete or unchanged.
    pub action: Action,
    /// What it acts on, e.g. `project shop-prod`.
    pub target: String,
    /// One line for humans.
    pub summary: String,
    /// Fields that change (empty when unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldDiff>,
    /// What apply sends; absent from JSON (a printed plan is for reading).
    #[serde(skip)]
    pub(crate) op: Option<Op>,
}

/// The request(s) behind a change. Project ids of a project that apply has
/// yet to create are filled in during apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    CreateProject(Value),
    ReplaceProject { id: String, body: Value },
    DeleteProject { id: String },
    CreateNamespace,
    PlaceNamespace { raw: Value },
    CreateBinding(DesiredMember),
    DeleteBinding { id: String },
}

/// The Rancher part of an environment's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RancherPlan {
    /// Environment name.
    pub environment: String,
    /// Rancher cluster id.
    pub cluster_id: String,
    /// Project display name.
    pub project: String,
    /// `c-m-abc12:p-xyz34` when the project exists already.
    pub project_id: Option<String>,
    /// The environment's namespace.
    pub namespace: String,
    /// Changes in the order apply makes them.
    pub changes: Vec<RancherChange>,
}

impl RancherPlan {
    /// True when apply would write anything.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// Number of changes that write.
    pub fn change_count(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .count()
    }

    /// The annotation the rendered Namespace must carry, when the project id is known.
    pub fn namespace_annotation(&self) -> Option<(String, String)> {
        self.project_id
            .as_ref()
            .map(|id| (PROJECT_ID_ANNOTATION.to_string(), id.clone()))
    }
}

/// Plans the Rancher state of one environment.
pub async fn plan(
    client: &RancherClient,
    desired: &DesiredRancher,
) -> Result<RancherPlan, RancherError> {
    desired.validate()?;
    let live = client
        .find_project(&desired.cluster_id, &desired.project.name)
        .await?;
    let mut changes = vec![project_change(desired, live.as_ref())];
    let project_id = live.as_ref().map(|p| p.id.clone());

    let ns = client
        .get_namespace(&desired.cluster_id, &desired.namespace)
        .await?;
    changes.push(namespace_change(desired, project_id.as_deref(), ns));

    let bindings = match &project_id {
        Some(id) => client.list_bindings(id).await?,
        None => Vec::new(),
    };
    changes.extend(member_changes(desired, &bindings));

    Ok(RancherPlan {
        environment: desired.environment.clone(),
        cluster_id: desired.cluster_id.clone(),
        project: desired.project.name.clone(),
        project_id,
        namespace: desired.namespace.clone(),
        changes,
    })
}

/// What keelson knows about an environment that is being retired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetiredRancher {
    /// Environment name.
    pub environment: String,
    /// Rancher cluster id.
    pub cluster_id: String,
    /// Project display name it used.
    pub project: String,
    /// Its namespace.
    pub namespace: String,
}

/// Plans the removal of an environment's Rancher state: the bindings keelson
/// created for it, and the project when keelson created it for this
/// environment and it holds no namespace but the environment's own.
pub async fn plan_retire(
    client: &RancherClient,
    retired: &RetiredRancher,
) -> Result<RancherPlan, RancherError> {
    let env = &retired.environment;
    let live = client
        .find_project(&retired.cluster_id, &retired.project)
        .await?;
    let mut changes = Vec::new();
    let project_id = live.as_ref().map(|p| p.id.clone());
    if let Some(p) = &live {
        for b in client.list_bindings(&p.id).await? {
            if b.owned_by(env) {
                changes.push(delete_binding_change(&b));
            }
        }
        let target = format!("project {}", p.name);
        let kept = |why: String| RancherChange {
            kind: ChangeKind::Project,
            action: Action::Unchanged,
            target: target.clone(),
            summary: format!("keep project {} ({}): {why}", p.name, p.id),
            diff: vec![],
            op: None,
        };
        if !p.owned_by(env) {
            changes.push(kept(format!(
                "keelson did not create it for environment {env}"
            )));
        } else {
            let foreign: Vec<String> = client
                .list_namespaces(&retired.cluster_id)
                .await?
                .into_iter()
                .filter(|n| {
                    n.project_id.as_deref() == Some(p.id.as_str()) && n.name != retired.namespace
                })
                .map(|n| n.name)
                .collect();
            if foreign.is_empty() {
                changes.push(RancherChange {
                    kind: ChangeKind::Project,
                    action: Action::Delete,
                    target,
                    summary: format!("delete project {} ({})", p.name, p.id),
                    diff: vec![],
                    op: Some(Op::DeleteProject { id: p.id.clone() }),
                });
            } else {
                changes.push(kept(format!(
                    "it holds namespaces keelson does not own for {env}: {}",
                    foreign.join(", ")
                )));
            }
        }
    }
    Ok(RancherPlan {
        environment: env.clone(),
        cluster_id: retired.cluster_id.clone(),
        project: retired.project.clone(),
        project_id,
        namespace: retired.namespace.clone(),
        changes,
    })
}

fn project_change(desired: &DesiredRancher, live: Option<&LiveProject>) -> RancherChange {
    let want = &desired.project;
    let target = format!("project {}", want.name);
    let Some(live) = live else {
        let body = serde_json::json!({
            "type": "project",
            "clusterId": desired.cluster_id,
            "name": want.name,
            "description": want.description.clone().unwrap_or_default(),
            "labels": desired.owner_labels(),
            "resourceQuota": super::api::limit_object(&want.resource_quota, true),
            "namespaceDefaultResourceQuota": super::api::limit_object(&want.namespace_default_quota, true),
            "containerDefaultResourceLimit": super::api::limit_object(&want.container_default_limits, false),
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
        m.insert(
            "resourceQuota".into(),
            super::api::limit_object(&want.resource_quota, true),
        );
        m.insert(
            "namespaceDefaultResourceQuota".into(),
            super::api::limit_object(&want.namespace_default_quota, true),
        );
        m.insert(
            "containerDefaultResourceLimit".into(),
            super::api::limit_object(&want.container_default_limits, false),
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
        op: Some(Op::ReplaceProject {
            id: live.id.clone(),
            body,
        }),
    }
}

impl LiveProject {
    fn empty() -> Self {
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

fn map_diff(
    prefix: &str,
    want: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
    out: &mut Vec<FieldDiff>,
) {
    let keys: std::collections::BTreeSet<&String> = want.keys().chain(live.keys()).collect();
    for k in keys {
        let (a, b) = (live.get(k), want.get(k));
        let same = match (a, b) {
            (Some(x), Some(y)) => quantity::same(x, y),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(FieldDiff {
                field: format!("{prefix}.{k}"),
                before: a.cloned(),
                after: b.cloned(),
            });
        }
    }
}

fn namespace_change(
    desired: &DesiredRancher,
    project_id: Option<&str>,
    ns: Option<LiveNamespace>,
) -> RancherChange {
    let name = &desired.namespace;
    let target = format!("namespace {name}");
    let after = Some(project_id.unwrap_or("(new project)").to_string());
    match ns {
        None => RancherChange {
            kind: ChangeKind::Namespace,
            action: Action::Create,
            summary: format!(
                "create namespace {name} in project {}",
                desired.project.name
            ),
            target,
            diff: vec![FieldDiff {
                field: "projectId".into(),
                before: None,
                after,
            }],
            op: Some(Op::CreateNamespace),
        },
        Some(ns) if project_id.is_some() && ns.project_id.as_deref() == project_id => {
            RancherChange {
                kind: ChangeKind::Namespace,
                action: Action::Unchanged,
                summary: format!("namespace {name} is in project {}", desired.project.name),
                target,
                diff: vec![],
                op: None,
            }
        }
        Some(ns) => RancherChange {
            kind: ChangeKind::Namespace,
            action: Action::Update,
            summary: format!(
                "move namespace {name} into project {} (now {})",
                desired.project.name,
                ns.project_id.as_deref().unwrap_or("in no project")
            ),
            target,
            diff: vec![FieldDiff {
                field: "projectId".into(),
                before: ns.project_id.clone(),
                after,
            }],
            op: Some(Op::PlaceNamespace { raw: ns.raw }),
        },
    }
}

fn member_changes(desired: &DesiredRancher, bindings: &[LiveBinding]) -> Vec<RancherChange> {
    let mut out = Vec::new();
    for m in &desired.members {
        let target = format!("member {}", m.subject);
        match bindings.iter().find(|b| b.grants(m)) {
            Some(b) => out.push(RancherChange {
                kind: ChangeKind::Member,
                action: Action::Unchanged,
                summary: format!("{} is {} ({})", m.subject, m.role, b.id),
                target,
                diff: vec![],
                op: None,
            }),
            None => out.push(RancherChange {
                kind: ChangeKind::Member,
                action: Action::Create,
                summary: format!("add {} as {}", m.subject, m.role),
                target,
                diff: vec![FieldDiff {
                    field: "roleTemplateId".into(),
                    before: None,
                    after: Some(m.role.clone()),
                }],
                op: Some(Op::CreateBinding(m.clone())),
            }),
        }
    }
    for b in bindings {
        // Only bindings keelson made for this environment are ever removed.
        if b.owned_by(&desired.environment) && !desired.members.iter().any(|m| b.grants(m)) {
            out.push(delete_binding_change(b));
        }
    }
    out
}

fn delete_binding_change(b: &LiveBinding) -> RancherChange {
    RancherChange {
        kind: ChangeKind::Member,
        action: Action::Delete,
        target: format!("member {}", b.subject_text()),
        summary: format!(
            "remove {} as {} ({})",
            b.subject_text(),
            b.role_template_id,
            b.id
        ),
        diff: vec![FieldDiff {
            field: "roleTemplateId".into(),
            before: Some(b.role_template_id.clone()),
            after: None,
        }],
        op: Some(Op::DeleteBinding { id: b.id.clone() }),
    }
}
