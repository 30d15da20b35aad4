//! The environment's namespace: its place in the project, and its own quota
//! and container defaults.
//!
//! Rancher gives a namespace the project's `namespaceDefaultResourceQuota`
//! and `containerDefaultResourceLimit` once, as the namespace annotations
//! `field.cattle.io/resourceQuota` and
//! `field.cattle.io/containerDefaultResourceLimit`, and from then on honours
//! the annotations: a changed project default never reaches a namespace that
//! exists (rancher/rancher#24664, #36604;
//! `pkg/controllers/managementuser/resourcequota/resource_quota_sync.go`,
//! `completeQuota`). A namespace moved from another project keeps the values
//! it brought. So keelson compares the namespace's own values with the spec
//! and writes them through the v3 namespace fields `resourceQuota` and
//! `containerDefaultResourceLimit`, which Rancher stores as those annotations
//! after checking them against the namespace's current project
//! (`pkg/api/norman/store/namespace/store.go`).

use std::collections::BTreeMap;

use super::api::LiveNamespace;
use super::desired::DesiredRancher;
use super::plan::{Action, ChangeKind, FieldDiff, Op, RancherChange, map_diff};

/// Where the namespace goes: create it in the project, move it, or leave it.
pub(super) fn namespace_change(
    desired: &DesiredRancher,
    project_id: Option<&str>,
    ns: Option<&LiveNamespace>,
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
            refused: None,
            op: Some(Op::CreateNamespace),
        },
        Some(ns) if project_id.is_some() && ns.project_id.as_deref() == project_id => {
            RancherChange {
                kind: ChangeKind::Namespace,
                action: Action::Unchanged,
                summary: format!("namespace {name} is in project {}", desired.project.name),
                target,
                diff: vec![],
                refused: None,
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
            refused: None,
            op: Some(Op::PlaceNamespace {
                raw: ns.raw.clone(),
            }),
        },
    }
}

/// Rancher's `completeQuota`/`completeLimit`: the namespace's own values
/// win, the project's fill the resources the namespace does not name.
/// `only_project_keys` drops the namespace's other resources, as
/// `completeQuota` does.
fn complete(
    own: &BTreeMap<String, String>,
    project: &BTreeMap<String, String>,
    only_project_keys: bool,
) -> BTreeMap<String, String> {
    let mut out = project.clone();
    for (k, v) in own {
        if !only_project_keys || project.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// What the namespace's own quota and container defaults must be: the
/// project's defaults from the spec.
///
/// Rancher completes the namespace's values with the project's defaults
/// (the namespace's win), so the values compared are the ones Rancher will
/// enforce once the project change is applied. The quota is compared only
/// when the project has one (Rancher clears a namespace quota in a project
/// without one); container defaults when the spec sets them or the
/// namespace holds its own: Rancher keeps a namespace's own container
/// defaults when the project has none (`getResourceLimitToUpdate` of
/// `resource_quota_sync.go` falls back to the annotation), so defaults the
/// spec dropped are cleared on the namespace too. A namespace moved out of
/// another project always gets its container defaults written: on the move
/// Rancher stores the old project's ones on it (`store.go` fills them in
/// from the project it checks against).
pub(super) fn namespace_quota_change(
    desired: &DesiredRancher,
    ns: Option<&LiveNamespace>,
    moving: bool,
) -> Option<RancherChange> {
    // A namespace keelson creates gets the project's defaults from Rancher.
    let ns = ns?;
    let want = &desired.project;
    let from_project = moving && ns.project_id.is_some();
    let manage_quota = !want.resource_quota.is_empty();
    let manage_limits = !want.container_default_limits.is_empty()
        || !ns.container_default_limits.is_empty()
        || from_project;
    let mut diff = Vec::new();
    if manage_quota {
        let effective = complete(&ns.resource_quota, &want.namespace_default_quota, true);
        map_diff(
            "resourceQuota.limit",
            &want.namespace_default_quota,
            &effective,
            &mut diff,
        );
    }
    if manage_limits {
        let effective = if from_project {
            ns.container_default_limits.clone()
        } else {
            complete(
                &ns.container_default_limits,
                &want.container_default_limits,
                false,
            )
        };
        map_diff(
            "containerDefaultResourceLimit",
            &want.container_default_limits,
            &effective,
            &mut diff,
        );
    }
    let name = &desired.namespace;
    let target = format!("namespace {name} quota");
    let withheld = ns
        .quota_withheld
        .as_ref()
        .filter(|_| manage_quota && !moving);
    if diff.is_empty() && !from_project {
        // Rancher holds the right values; say so when it does not enforce
        // them (the project had no room left), as writing them again would
        // change nothing.
        return withheld.map(|why| RancherChange {
            kind: ChangeKind::NamespaceQuota,
            action: Action::Unchanged,
            target,
            summary: format!(
                "namespace {name} has the project's quota, but Rancher does not enforce it: {why}"
            ),
            diff: vec![],
            refused: None,
            op: None,
        });
    }
    let mut fields: Vec<String> = diff.iter().map(|d| d.field.clone()).collect();
    if fields.is_empty() {
        fields.push("container defaults of the new project".into());
    }
    Some(RancherChange {
        kind: ChangeKind::NamespaceQuota,
        action: Action::Update,
        target,
        summary: format!("set the quota of namespace {name}: {}", fields.join(", ")),
        diff,
        refused: None,
        op: Some(Op::SetNamespaceQuota {
            raw: ns.raw.clone(),
            quota: manage_quota.then(|| want.namespace_default_quota.clone()),
            limits: manage_limits.then(|| want.container_default_limits.clone()),
        }),
    })
}
