//! Intent is recorded before it is acted on. Before the first write of a
//! run, the environment's inventory holds the union of what it held and
//! what the run may create; after the run it shrinks to what exists. A crash
//! between any two requests (kill -9) therefore leaves every object keelson
//! made findable and prunable: the next run plans it like any other
//! recorded object.
//!
//! Also here: reading an environment's inventories wherever they live (by
//! label, across namespaces), so that a changed `namespace` finds the
//! objects of the earlier one (pipe-cd#5213, fluxcd/flux#2269).

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::observe::{self, Cluster, ClusterError};
use crate::plan::inventory::{self, InventoryError};
use crate::plan::{Action, Inventory, Plan};

/// Why an inventory could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntentError {
    /// The cluster refused or could not be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The inventory does not fit, or what is stored does not parse.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

/// An environment's inventories as found on the cluster.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The inventory in the environment's namespace.
    pub current: Option<Inventory>,
    /// Inventories of the same environment in other namespaces: what it
    /// owned before its `namespace` changed. By namespace.
    pub earlier: Vec<(String, Inventory)>,
}

impl Recorded {
    /// Everything recorded for the environment, for planning.
    pub fn merged(&self) -> Option<Inventory> {
        let mut all = self.current.clone();
        for (_, inv) in &self.earlier {
            all = Some(match all {
                Some(a) => a.union(inv),
                None => inv.clone(),
            });
        }
        all
    }
}

/// Read every inventory of `env` on the cluster: the one in `namespace`
/// and any in other namespaces.
pub async fn read<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
) -> Result<Recorded, IntentError> {
    let cm = configmaps();
    let heads = cluster
        .list(&cm, None, &inventory::head_selector(env))
        .await?;
    let mut recorded = Recorded::default();
    for head in heads {
        let ns = head
            .pointer("/metadata/namespace")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        if head.pointer("/metadata/name").and_then(Json::as_str) != Some(inventory::NAME) {
            continue;
        }
        let inv = read_whole(cluster, env, &ns, &head).await?;
        if ns == namespace {
            recorded.current = Some(inv);
        } else {
            recorded.earlier.push((ns, inv));
        }
    }
    recorded.earlier.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(recorded)
}

/// The whole inventory of a head: its own objects and its parts'.
pub async fn read_whole<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
    head: &Json,
) -> Result<Inventory, IntentError> {
    let read = Inventory::read_head(head)?;
    let mut inv = read.inventory;
    if read.parts.is_empty() {
        return Ok(inv);
    }
    let parts = cluster
        .list(
            &configmaps(),
            Some(namespace),
            &inventory::part_selector(env),
        )
        .await?;
    for name in &read.parts {
        let part = parts
            .iter()
            .find(|p| p.pointer("/metadata/name").and_then(Json::as_str) == Some(name))
            .ok_or_else(|| InventoryError::MissingPart { name: name.clone() })?;
        inv.add_part(part)?;
    }
    Ok(inv)
}

/// Store `inv` as the inventory of `env` in `namespace`: new parts first,
/// then the head, then the parts the head no longer names. Each step keeps
/// a complete inventory on the cluster, whatever stops the sequence.
pub async fn write<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
    inv: &Inventory,
    opts: &ApplyOptions,
) -> Result<(), IntentError> {
    let stored = inv.encode(env, namespace)?;
    let cm = configmaps();
    let existing = part_names(cluster, env, namespace, opts).await?;
    for (name, part) in &stored.parts {
        if !existing.contains(name) {
            let (r, _) = apply::with_retries(opts, || cluster.apply(&cm, part, false)).await;
            r?;
        }
    }
    let (r, _) = apply::with_retries(opts, || cluster.apply(&cm, &stored.head, false)).await;
    r?;
    for name in existing.iter().filter(|n| !stored.parts.contains_key(*n)) {
        let (r, _) =
            apply::with_retries(opts, || cluster.delete(&cm, Some(namespace), name, false)).await;
        r?;
    }
    Ok(())
}

/// Delete the inventory of `env` in `namespace`: the head first (so a crash
/// never leaves a head without its parts), then the parts.
pub async fn delete<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
    opts: &ApplyOptions,
) -> Result<(), IntentError> {
    let cm = configmaps();
    let existing = part_names(cluster, env, namespace, opts).await?;
    let (r, _) = apply::with_retries(opts, || {
        cluster.delete(&cm, Some(namespace), inventory::NAME, false)
    })
    .await;
    r?;
    for name in &existing {
        let (r, _) =
            apply::with_retries(opts, || cluster.delete(&cm, Some(namespace), name, false)).await;
        r?;
    }
    Ok(())
}

async fn part_names<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
    opts: &ApplyOptions,
) -> Result<BTreeSet<String>, ClusterError> {
    let cm = configmaps();
    let selector = inventory::part_selector(env);
    let (r, _) = apply::with_retries(opts, || cluster.list(&cm, Some(namespace), &selector)).await;
    Ok(r?
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Json::as_str))
        .map(str::to_string)
        .collect())
}

fn configmaps() -> observe::Resource {
    observe::builtin("v1", "ConfigMap").expect("ConfigMap is built in")
}

/// What applying a plan with its intent recorded did.
#[derive(Debug)]
pub struct Outcome {
    /// What apply did.
    pub report: ApplyReport,
    /// Why the inventory could not be recorded, if it could not.
    pub error: Option<String>,
}

/// Apply `plan` to environment `env` in `namespace`, recording intent first
/// and the result after:
/// 1. the environment's Namespace, when the plan creates it (the inventory
///    lives in it, so it is the one write that must come first);
/// 2. the inventory, grown to the union of what was recorded (in any
///    namespace) and what the plan keeps or creates;
/// 3. the plan;
/// 4. the inventory, shrunk to what exists: the plan's inventory after a
///    full success, else the union less what was deleted and what was never
///    attempted. The earlier namespaces' inventories go once the move is
///    complete; a retired environment's inventory goes with its last object.
pub async fn apply_recorded<C: Cluster>(
    cluster: &C,
    env: &str,
    namespace: &str,
    plan: &mut Plan,
    recorded: &Recorded,
    opts: &ApplyOptions,
) -> Outcome {
    let mut report = ApplyReport::default();
    let creates_namespace = plan.changes.iter().position(|c| {
        c.action == Action::Create && c.id.kind == "Namespace" && c.id.name == namespace
    });
    if let Some(i) = creates_namespace {
        let first = Plan {
            environment: plan.environment.clone(),
            changes: vec![plan.changes.remove(i)],
            refused: None,
            inventory: Inventory::default(),
            manual_managers: plan.manual_managers.clone(),
            lifecycle: None,
        };
        let first_opts = ApplyOptions {
            wait_health: false,
            ..opts.clone()
        };
        report = apply::apply_plan(cluster, &first, &first_opts).await;
        plan.changes
            .insert(i, first.changes.into_iter().next().expect("one change"));
        if report.failed() {
            return not_applied(plan, report, i, None);
        }
    }

    let before = recorded.current.clone();
    let mut intent = plan.inventory.clone();
    if let Some(all) = recorded.merged() {
        intent = intent.union(&all);
    }
    let mut stored = before.clone();
    if before.as_ref().is_none_or(|b| !b.same(&intent)) {
        if let Err(e) = write(cluster, env, namespace, &intent, opts).await {
            let why = format!("recording the inventory before applying: {e}; nothing applied");
            return not_applied(plan, report, usize::MAX, Some(why));
        }
        stored = Some(intent.clone());
    }

    let rest = creates_namespace.map(|i| plan.changes.remove(i));
    let mut applied = apply::apply_plan(cluster, plan, opts).await;
    if let (Some(i), Some(c)) = (creates_namespace, rest) {
        plan.changes.insert(i, c);
    }
    report.results.append(&mut applied.results);
    report.health = applied.health;

    let writes_ok = report.results.iter().all(|r| r.error.is_none());
    let after = if writes_ok {
        plan.inventory.clone()
    } else {
        shrink(&intent, &report)
    };
    let namespace_deleted = report.results.iter().any(|r| {
        r.action == Action::Delete
            && r.error.is_none()
            && r.id.kind == "Namespace"
            && r.id.name == namespace
    });
    let mut error = None;
    let result = if namespace_deleted {
        // Everything in it, the inventory too, goes with the namespace.
        Ok(())
    } else if after.objects.is_empty() && plan.lifecycle.is_some() {
        delete(cluster, env, namespace, opts).await
    } else if stored.as_ref().is_none_or(|s| !s.same(&after)) {
        write(cluster, env, namespace, &after, opts).await
    } else {
        Ok(())
    };
    if let Err(e) = result {
        error = Some(format!("recording the inventory: {e}"));
    }
    if writes_ok && error.is_none() {
        for (ns, _) in &recorded.earlier {
            if let Err(e) = delete(cluster, env, ns, opts).await {
                error = Some(format!(
                    "removing the earlier inventory in namespace {ns}: {e}"
                ));
            }
        }
    }
    Outcome { report, error }
}

/// The intent less what the report shows gone: objects deleted, and
/// creates never sent.
fn shrink(intent: &Inventory, report: &ApplyReport) -> Inventory {
    let gone: BTreeSet<(&str, &str, &str, &str)> = report
        .results
        .iter()
        .filter(|r| {
            (r.action == Action::Delete && r.error.is_none())
                || (r.action == Action::Create && r.attempts == 0)
        })
        .map(|r| r.id.key())
        .collect();
    Inventory {
        objects: intent
            .objects
            .iter()
            .filter(|o| !gone.contains(&o.key()))
            .cloned()
            .collect(),
        ..intent.clone()
    }
}

/// A report in which nothing after the change at `done` (or nothing at
/// all) was attempted.
fn not_applied(
    plan: &Plan,
    mut report: ApplyReport,
    done: usize,
    error: Option<String>,
) -> Outcome {
    let reason = error
        .clone()
        .unwrap_or_else(|| "creating the namespace failed".into());
    for (i, c) in plan.changes.iter().enumerate() {
        if i != done
            && matches!(
                c.action,
                Action::Create | Action::Update | Action::Replace | Action::Delete
            )
        {
            report.results.push(apply::ObjectResult {
                id: c.id.clone(),
                action: c.action,
                error: Some(format!("not attempted: {reason}")),
                attempts: 0,
            });
        }
    }
    Outcome { report, error }
}
