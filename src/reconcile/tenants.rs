//! Tenancy at plan time: whatever labels say, an environment never deletes
//! a namespace that holds another environment's inventory. A Namespace
//! claimed by one environment (created before tenancy was checked, or
//! allowed by a policy) may host another environment's workloads, and
//! pruning it would delete them all. The other half, never taking over an
//! object labelled for another environment, is in `plan`.

use serde_json::Value as Json;

use crate::observe::{self, Cluster, ClusterError};
use crate::plan::{Action, Plan, inventory};
use crate::render::objects::ENV_LABEL;

/// Turn each planned deletion of a Namespace holding another environment's
/// inventory into a skip that says why.
pub async fn protect_namespaces<C: Cluster>(
    cluster: &C,
    env: &str,
    plan: &mut Plan,
) -> Result<(), ClusterError> {
    let cm = observe::builtin("v1", "ConfigMap").expect("ConfigMap is built in");
    let selector = format!("{}=true", inventory::LABEL);
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.action == Action::Delete && c.id.kind == "Namespace")
    {
        let heads = cluster.list(&cm, Some(&c.id.name), &selector).await?;
        let others: Vec<&str> = heads
            .iter()
            .filter_map(|h| {
                h.pointer("/metadata/labels")
                    .and_then(|l| l.get(ENV_LABEL))
                    .and_then(Json::as_str)
            })
            .filter(|e| *e != env)
            .collect();
        if let Some(other) = others.first() {
            c.action = Action::Skip;
            c.diff.clear();
            c.notes.push(format!(
                "holds environment `{other}`'s objects (its inventory is here); environment `{env}` never deletes another environment's namespace"
            ));
        }
    }
    Ok(())
}
