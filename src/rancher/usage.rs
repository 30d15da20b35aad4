//! Refusals that depend on what the project's namespaces already use,
//! predicted at plan time from the `usedLimit` Rancher reports, so that a
//! plan says "Rancher would refuse this, and why" before anything is sent.
//!
//! The rules are Rancher's:
//! - rancher/webhook `pkg/resources/management.cattle.io/v3/project/validator.go`
//!   refuses (400) a `resourceQuota` below the project's `usedLimit`, and
//!   (rancher/webhook v0.4, Rancher 2.7–2.8, `checkQuotaRequest`) a resource
//!   newly added to the namespace defaults whose default, given to every
//!   namespace of the project, exceeds the project limit;
//! - rancher/rancher `pkg/api/norman/store/namespace/store.go` refuses (422
//!   `MaxLimitExceeded`) a namespace quota that does not fit beside the
//!   quotas of the project's other namespaces, on create and on update.
//!
//! `usedLimit` sums the quotas of the namespaces Rancher validated
//! (`resource_quota_calculate_used.go`), which is what the webhook reads.
//! The namespace checks add up the quota annotations of every other
//! namespace of the project, validated or withheld (`store.go`, and
//! `getNamespacesLimits` of `resource_quota_sync.go`), so the plan reads
//! those, which can hold more than `usedLimit`.

use std::collections::BTreeMap;

use super::api::LiveProject;
use super::client::RancherClient;
use super::desired::DesiredRancher;
use super::error::RancherError;
use super::plan::{Action, ChangeKind, Op, RancherChange};
use crate::quantity;

fn nanos(v: Option<&String>) -> i128 {
    v.and_then(|s| quantity::parse(s)).unwrap_or(0)
}

fn show(n: i128, like: &str) -> String {
    quantity::format(n, quantity::is_binary(like))
}

/// Marks the changes of `changes` that Rancher would refuse.
pub(super) async fn check(
    client: &RancherClient,
    desired: &DesiredRancher,
    live: Option<&LiveProject>,
    changes: &mut [RancherChange],
) -> Result<(), RancherError> {
    let want = &desired.project;
    if want.resource_quota.is_empty() {
        return Ok(());
    }
    let moving = changes
        .iter()
        .any(|c| c.kind == ChangeKind::Namespace && c.action == Action::Update);
    let namespace_checked = |c: &RancherChange| match (&c.kind, &c.action, &c.op) {
        (ChangeKind::Namespace, Action::Create | Action::Update, _) => true,
        (
            ChangeKind::NamespaceQuota,
            Action::Update,
            Some(Op::SetNamespaceQuota { quota: Some(_), .. }),
        ) => !moving,
        _ => false,
    };
    // One read, only when a namespace check needs it.
    let others = match live {
        Some(p) if changes.iter().any(namespace_checked) => {
            sibling_quotas(client, desired, &p.id).await?
        }
        _ => BTreeMap::new(),
    };
    for change in changes.iter_mut() {
        let why = match (&change.kind, &change.action) {
            (ChangeKind::Project, Action::Update) => match live {
                Some(p) => project_update(client, desired, p).await?,
                None => Vec::new(),
            },
            _ if !namespace_checked(change) => Vec::new(),
            (ChangeKind::Namespace, Action::Create) => {
                namespace_fits(desired, &others, "created", REFUSED)
            }
            // Rancher takes the move, then its quota controller withholds a
            // quota that does not fit.
            (ChangeKind::Namespace, _) => namespace_fits(desired, &others, "moved in", WITHHELD),
            _ => namespace_fits(desired, &others, "given its quota", REFUSED),
        };
        if !why.is_empty() {
            change.refused = Some(why.join("; "));
        }
    }
    Ok(())
}

/// The project webhook's checks of a quota update.
async fn project_update(
    client: &RancherClient,
    desired: &DesiredRancher,
    live: &LiveProject,
) -> Result<Vec<String>, RancherError> {
    let want = &desired.project;
    let mut why = Vec::new();
    if live.resource_quota.is_empty() {
        // The webhook only checks usage against a quota the project had.
        return Ok(why);
    }
    for (k, limit) in &want.resource_quota {
        let u = nanos(live.used_limit.get(k));
        if u > nanos(Some(limit)) {
            why.push(format!(
                "resourceQuota.limit.{k} {limit} is below the {} the project's namespaces already hold (usedLimit); Rancher's webhook refuses it (400): lower their quotas first or keep the limit at {} or more",
                show(u, limit),
                show(u, limit)
            ));
        }
    }
    let added: Vec<(&String, &String)> = want
        .namespace_default_quota
        .iter()
        .filter(|(k, _)| !live.used_limit.contains_key(*k))
        .collect();
    if added.is_empty() {
        return Ok(why);
    }
    let count = client
        .list_namespaces(&desired.cluster_id)
        .await?
        .iter()
        .filter(|n| n.project_id.as_deref() == Some(live.id.as_str()))
        .count() as i128;
    for (k, default) in added {
        let limit = want.resource_quota.get(k);
        let total = nanos(Some(default)) * count;
        if count > 0 && total > nanos(limit) {
            why.push(format!(
                "namespaceDefaultQuota.{k} {default} for each of the project's {count} namespaces makes {}, over resourceQuota.limit.{k} {}; Rancher's webhook refuses a new default that does not fit the namespaces already in the project (400): raise the limit or lower the default",
                show(total, default),
                limit.map(String::as_str).unwrap_or("(none)")
            ));
        }
    }
    Ok(why)
}

const REFUSED: &str = "Rancher refuses it (422 MaxLimitExceeded)";
const WITHHELD: &str = "Rancher would withhold the namespace's quota (a ResourceQuota of 0 for it)";

/// The quotas of the project's namespaces other than the environment's,
/// summed per resource (nanos; a negative one counts as zero, as
/// `IsQuotaFit` of rancher/rancher `pkg/resourcequota` takes it).
async fn sibling_quotas(
    client: &RancherClient,
    desired: &DesiredRancher,
    project_id: &str,
) -> Result<BTreeMap<String, i128>, RancherError> {
    let mut sum = BTreeMap::new();
    for n in client.list_namespaces(&desired.cluster_id).await? {
        if n.name == desired.namespace || n.project_id.as_deref() != Some(project_id) {
            continue;
        }
        for (k, v) in &n.resource_quota {
            *sum.entry(k.clone()).or_insert(0) += nanos(Some(v)).max(0);
        }
    }
    Ok(sum)
}

/// The namespace store's (and the quota controller's) check: the
/// namespace's quota beside the other namespaces'.
fn namespace_fits(
    desired: &DesiredRancher,
    others: &BTreeMap<String, i128>,
    how: &str,
    consequence: &str,
) -> Vec<String> {
    let want = &desired.project;
    let quota = &want.namespace_default_quota;
    let mut why = Vec::new();
    for (k, limit) in &want.resource_quota {
        let mine = nanos(quota.get(k));
        let others = others.get(k).copied().unwrap_or(0);
        if mine + others > nanos(Some(limit)) {
            why.push(format!(
                "namespace {} {how} needs {} of resourceQuota.limit.{k} {limit}, but the project's other namespaces already hold {} (their quotas); {consequence}: raise the limit or lower the other namespaces' quotas",
                desired.namespace,
                show(mine, limit),
                show(others, limit)
            ));
        }
    }
    why
}
