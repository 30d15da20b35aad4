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
use super::desired::{DesiredMember, DesiredRancher, PROJECT_ID_ANNOTATION};
use super::error::RancherError;
use super::placement::{namespace_change, namespace_quota_change};
use super::project::project_change;
use super::usage;
use crate::quantity;

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// The Rancher project and its quotas.
    Project,
    /// The namespace's place in the project.
    Namespace,
    /// The namespace's own quota and container defaults.
    NamespaceQuota,
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
    /// Why Rancher would refuse this change, with the numbers it would
    /// check (its `usedLimit`, the project limit). Apply sends nothing for
    /// the environment while any change has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// What apply sends; absent from JSON (a printed plan is for reading).
    #[serde(skip)]
    pub(crate) op: Option<Op>,
}

/// The request(s) behind a change. Project ids of a project that apply has
/// yet to create are filled in during apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    CreateProject(Value),
    ReplaceProject {
        id: String,
        body: Value,
    },
    DeleteProject {
        id: String,
    },
    CreateNamespace,
    PlaceNamespace {
        raw: Value,
    },
    /// `None` leaves that part as Rancher holds it; an empty map clears it.
    SetNamespaceQuota {
        raw: Value,
        quota: Option<BTreeMap<String, String>>,
        limits: Option<BTreeMap<String, String>>,
    },
    CreateBinding(DesiredMember),
    DeleteBinding {
        id: String,
    },
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

    /// The changes Rancher would refuse, each with why.
    pub fn refusals(&self) -> impl Iterator<Item = &RancherChange> {
        self.changes.iter().filter(|c| c.refused.is_some())
    }

    /// Each refused change as `summary: why`, for errors and reports.
    pub fn refusal_reasons(&self) -> Vec<String> {
        self.refusals()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.summary,
                    c.refused.as_deref().unwrap_or_default()
                )
            })
            .collect()
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
    let ns = client
        .get_namespace(&desired.cluster_id, &desired.namespace)
        .await?;
    let bindings = match &live {
        Some(p) => client.list_bindings(&p.id).await?,
        None => Vec::new(),
    };
    let mut plan = plan_from(desired, live.as_ref(), ns.as_ref(), &bindings);
    usage::check(client, desired, live.as_ref(), &mut plan.changes).await?;
    Ok(plan)
}

/// Plans `desired` against Rancher state already read: the project of that
/// name (if any), the environment's namespace (if any) and the project's
/// bindings. [`plan`] reads them from Rancher and then checks the plan
/// against the project's usage; an offline plan (`reconcile --against-ref`)
/// builds them from the base commit's spec, where there is no usage to read.
pub fn plan_from(
    desired: &DesiredRancher,
    live: Option<&LiveProject>,
    ns: Option<&LiveNamespace>,
    bindings: &[LiveBinding],
) -> RancherPlan {
    let mut changes = vec![project_change(desired, live)];
    let project_id = live.map(|p| p.id.clone());
    let placement = namespace_change(desired, project_id.as_deref(), ns);
    let moving = placement.action == Action::Update;
    changes.push(placement);
    changes.extend(namespace_quota_change(desired, ns, moving));
    changes.extend(member_changes(desired, bindings));
    RancherPlan {
        environment: desired.environment.clone(),
        cluster_id: desired.cluster_id.clone(),
        project: desired.project.name.clone(),
        project_id,
        namespace: desired.namespace.clone(),
        changes,
    }
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
    let live = client
        .find_project(&retired.cluster_id, &retired.project)
        .await?;
    let (bindings, namespaces) = match &live {
        Some(p) => {
            let bindings = client.list_bindings(&p.id).await?;
            let namespaces: Vec<String> = if p.owned_by(&retired.environment) {
                client
                    .list_namespaces(&retired.cluster_id)
                    .await?
                    .into_iter()
                    .filter(|n| n.project_id.as_deref() == Some(p.id.as_str()))
                    .map(|n| n.name)
                    .collect()
            } else {
                Vec::new()
            };
            (bindings, namespaces)
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(retire_from(retired, live.as_ref(), &bindings, &namespaces))
}

/// Plans the removal of an environment's Rancher state from state already
/// read: the project (if any), its bindings and the names of the namespaces
/// in it. See [`plan_retire`].
pub fn retire_from(
    retired: &RetiredRancher,
    live: Option<&LiveProject>,
    bindings: &[LiveBinding],
    namespaces_in_project: &[String],
) -> RancherPlan {
    let env = &retired.environment;
    let mut changes = Vec::new();
    let project_id = live.map(|p| p.id.clone());
    if let Some(p) = live {
        for b in bindings {
            if b.owned_by(env) {
                changes.push(delete_binding_change(b));
            }
        }
        let target = format!("project {}", p.name);
        let kept = |why: String| RancherChange {
            kind: ChangeKind::Project,
            action: Action::Unchanged,
            target: target.clone(),
            summary: format!("keep project {} ({}): {why}", p.name, p.id),
            diff: vec![],
            refused: None,
            op: None,
        };
        let foreign: Vec<&str> = namespaces_in_project
            .iter()
            .map(String::as_str)
            .filter(|n| *n != retired.namespace)
            .collect();
        if !p.owned_by(env) {
            changes.push(kept(format!(
                "keelson did not create it for environment {env}"
            )));
        } else if foreign.is_empty() {
            changes.push(RancherChange {
                kind: ChangeKind::Project,
                action: Action::Delete,
                target,
                summary: format!("delete project {} ({})", p.name, p.id),
                diff: vec![],
                refused: None,
                op: Some(Op::DeleteProject { id: p.id.clone() }),
            });
        } else {
            changes.push(kept(format!(
                "it holds namespaces keelson does not own for {env}: {}",
                foreign.join(", ")
            )));
        }
    }
    RancherPlan {
        environment: env.clone(),
        cluster_id: retired.cluster_id.clone(),
        project: retired.project.clone(),
        project_id,
        namespace: retired.namespace.clone(),
        changes,
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
                refused: None,
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
                refused: None,
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
        refused: None,
        op: Some(Op::DeleteBinding { id: b.id.clone() }),
    }
}

pub(super) fn map_diff(
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
