//! The inventory: the list of objects keelson applied to an environment,
//! kept in a ConfigMap in the environment's namespace. Only objects that are
//! both labelled and in the inventory are ever pruned, so a stray label on
//! someone else's object cannot get it deleted.

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::ObjectId;
use crate::render::objects::{ENV_LABEL, MANAGED_BY};

/// Name of the inventory ConfigMap.
pub const NAME: &str = "keelson-inventory";
/// Label marking the inventory ConfigMap (so it is never planned itself).
pub const LABEL: &str = "keelson.dev/inventory";

/// What keelson applied to one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Objects applied.
    pub objects: Vec<ObjectId>,
    /// The environment's `prune.allowDeleteAll` when last applied, so a
    /// removed environment folder can still be retired when it allowed it.
    #[serde(default)]
    pub allow_delete_all: bool,
    /// The environment's `prune.maxDeletePercent` when last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_percent: Option<u32>,
    /// The Rancher project the environment used, so retiring it can remove
    /// the Rancher state keelson created too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rancher: Option<RancherRef>,
}

/// Where an environment's Rancher state lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RancherRef {
    /// The cluster name in the keelson config (whose Rancher endpoint to use).
    #[serde(default)]
    pub cluster: String,
    /// Rancher cluster id.
    pub cluster_id: String,
    /// Project display name.
    pub project: String,
}

impl Inventory {
    /// Whether `id` is recorded (any API version of it).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.objects.iter().any(|o| o.same_object(id))
    }

    /// The ConfigMap that stores this inventory.
    pub fn to_configmap(&self, env: &str, namespace: &str) -> Json {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": namespace,
                "labels": { MANAGED_BY: "keelson", ENV_LABEL: env, LABEL: "true" },
            },
            "data": { "inventory": serde_json::to_string(self).unwrap_or_default() },
        })
    }

    /// Read an inventory ConfigMap.
    pub fn from_configmap(cm: &Json) -> Option<Inventory> {
        let text = cm.pointer("/data/inventory")?.as_str()?;
        serde_json::from_str(text).ok()
    }
}

/// Whether `o` is an inventory ConfigMap.
pub fn is_inventory(o: &Json) -> bool {
    o.pointer("/metadata/labels")
        .and_then(|l| l.get(LABEL))
        .is_some()
}
