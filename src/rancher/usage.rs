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

use std::collections::BTreeMap;

use super::api::{LiveNamespace, LiveProject};
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
    ns: Option<&LiveNamespace>,
    changes: &mut [RancherChange],
) -> Result<(), RancherError> {
    let want = &desired.project;
    if want.resource_quota.is_empty() {
        return Ok(());
    }
    let used = live.map(|p| p.used_limit.clone()).unwrap_or_default();
    let moving = changes
        .iter()
        .any(|c| c.kind == ChangeKind::Namespace && c.action == Action::Update);
    for change in changes.iter_mut() {
        let why = match (&change.kind, &change.action, &change.op) {
            (ChangeKind::Project, Action::Update, _) => match live {
                Some(p) => project_update(client, desired, p).await?,
                None => Vec::new(),
            },
            (ChangeKind::Namespace, Action::Create, _) => {
                namespace_fits(desired, &used, &BTreeMap::new(), "created", REFUSED)
            }
            // Rancher takes the move, then its quota controller withholds a
            // quota that does not fit.
            (ChangeKind::Namespace, Action::Update, _) => {
                namespace_fits(desired, &used, &BTreeMap::new(), "moved in", WITHHELD)
            }
            (
                ChangeKind::NamespaceQuota,
                Action::Update,
                Some(Op::SetNamespaceQuota { quota: Some(_), .. }),
            ) if !moving => {
                // Our namespace's own share of `usedLimit` is freed when it
                // is already counted in this project.
                let ours = match (ns, live) {
                    (Some(n), Some(p))
                        if n.project_id.as_deref() == Some(p.id.as_str())
                            && n.quota_withheld.is_none() =>
                    {
                        n.resource_quota.clone()
                    }
                    _ => BTreeMap::new(),
                };
                namespace_fits(desired, &used, &ours, "given its quota", REFUSED)
            }
            _ => Vec::new(),
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

/// The namespace store's (and the quota controller's) check: the
/// namespace's quota beside the other namespaces'.
fn namespace_fits(
    desired: &DesiredRancher,
    used: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
    how: &str,
    consequence: &str,
) -> Vec<String> {
    let want = &desired.project;
    let quota = &want.namespace_default_quota;
    let mut why = Vec::new();
    for (k, limit) in &want.resource_quota {
        let mine = nanos(quota.get(k));
        let others = (nanos(used.get(k)) - nanos(ours.get(k))).max(0);
        if mine + others > nanos(Some(limit)) {
            why.push(format!(
                "namespace {} {how} needs {} of resourceQuota.limit.{k} {limit}, but the project's other namespaces already hold {} (usedLimit); {consequence}: raise the limit or lower the other namespaces' quotas",
                desired.namespace,
                show(mine, limit),
                show(others, limit)
            ));
        }
    }
    why
}
