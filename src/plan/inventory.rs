//! The inventory: the list of objects keelson applied to an environment,
//! kept in ConfigMaps in the environment's namespace. Only objects that are
//! both labelled and in the inventory are ever pruned, so a stray label on
//! someone else's object cannot get it deleted.
//!
//! Storage (pure encoding here; the I/O is `reconcile::intent`):
//! - the head, ConfigMap `keelson-inventory`, key `inventory`: JSON with the
//!   environment's prune settings and Rancher project, and either the
//!   objects themselves (`objects`, the original single-ConfigMap format,
//!   still used while it fits in [`INLINE_BUDGET`]) or the names of its
//!   parts (`parts`);
//! - parts, ConfigMaps `keelson-inventory-<hash>`, key `objects`: object ids
//!   grouped by apiVersion, kind and namespace. A part's name is the hash of
//!   its content, so parts are never rewritten: a change writes the new
//!   parts, then the head, then deletes the parts the head no longer names.
//!   A crash at any point leaves a head whose parts all exist. Objects are
//!   spread over parts by a hash of their identity, so adding one object
//!   rewrites one part, not all of them.
//!
//! A ConfigMap holds at most 1 MiB of data on a real server
//! (`k8s.io/kubernetes/pkg/apis/core/validation.ValidateConfigMap`,
//! `core.MaxSecretSize`); every part stays under [`PART_BUDGET`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use super::ObjectId;
use crate::render::objects::{ENV_LABEL, MANAGED_BY};

/// Name of the inventory's head ConfigMap.
pub const NAME: &str = "keelson-inventory";
/// Label marking inventory ConfigMaps (so they are never planned
/// themselves): `true` on the head, [`PART`] on parts.
pub const LABEL: &str = "keelson.dev/inventory";
/// The [`LABEL`] value of a part.
pub const PART: &str = "part";
/// Bytes of data a ConfigMap may hold on a real server.
pub const CONFIGMAP_DATA_LIMIT: usize = 1 << 20;
/// Objects stay in the head while their ids take at most this many bytes.
pub const INLINE_BUDGET: usize = 256 * 1024;
/// Bytes of ids per part (a quarter of the limit is left for hash imbalance
/// and the ConfigMap's own fields).
pub const PART_BUDGET: usize = 768 * 1024;
/// Most parts an inventory may have: about 96 MiB of ids, some 400,000
/// objects with 250-character names. A plan that needs more is refused.
pub const MAX_PARTS: usize = 128;

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

/// Why an inventory cannot be stored or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// More ids than [`MAX_PARTS`] parts hold.
    #[error(
        "the inventory of {objects} objects needs {bytes} bytes, over the {max} bytes keelson records ({MAX_PARTS} ConfigMaps of {PART_BUDGET} bytes); split the environment"
    )]
    TooLarge {
        /// Objects to record.
        objects: usize,
        /// Bytes their ids take.
        bytes: usize,
        /// The most keelson records.
        max: usize,
    },
    /// The head or a part does not parse.
    #[error("inventory ConfigMap {name} cannot be read: {reason}")]
    Corrupt {
        /// ConfigMap name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The head names a part that does not exist.
    #[error(
        "inventory part {name} named by keelson-inventory is missing; the inventory is incomplete, so nothing is planned (restore the ConfigMap, or delete keelson-inventory to start a new inventory, which orphans what only that part recorded)"
    )]
    MissingPart {
        /// ConfigMap name.
        name: String,
    },
}

/// The head's `inventory` key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ObjectId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    #[serde(default)]
    allow_delete_all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_delete_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rancher: Option<RancherRef>,
}

/// Ids of one apiVersion, kind and namespace, in a part.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    api_version: String,
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    namespace: String,
    names: Vec<String>,
}

/// The ConfigMaps that store an inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The head, `keelson-inventory`.
    pub head: Json,
    /// The parts, by name (empty while the objects fit in the head).
    pub parts: BTreeMap<String, Json>,
}

/// A head read from the cluster: the inventory without the objects of its
/// parts, and the names of those parts.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadHead {
    /// The inventory (objects so far: those inline in the head).
    pub inventory: Inventory,
    /// Parts to read and add with [`Inventory::add_part`].
    pub parts: Vec<String>,
}

impl Inventory {
    /// Whether `id` is recorded (any API version of it).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.objects.iter().any(|o| o.same_object(id))
    }

    /// The same objects and settings, regardless of order.
    pub fn same(&self, other: &Inventory) -> bool {
        let a: std::collections::BTreeSet<&ObjectId> = self.objects.iter().collect();
        let b: std::collections::BTreeSet<&ObjectId> = other.objects.iter().collect();
        a == b
            && self.rancher == other.rancher
            && self.allow_delete_all == other.allow_delete_all
            && self.max_delete_percent == other.max_delete_percent
    }

    /// Every object of `self` and of `other` (each once, by identity), with
    /// `self`'s settings.
    pub fn union(&self, other: &Inventory) -> Inventory {
        let mut seen: std::collections::HashSet<(&str, &str, &str, &str)> =
            self.objects.iter().map(ObjectId::key).collect();
        let mut objects = self.objects.clone();
        for o in &other.objects {
            if seen.insert(o.key()) {
                objects.push(o.clone());
            }
        }
        Inventory {
            objects,
            ..self.clone()
        }
    }

    /// Check that this inventory can be stored, without building it: what
    /// planning calls, so that nothing is applied that cannot be recorded.
    pub fn check_size(&self) -> Result<(), InventoryError> {
        let bytes: usize = self.objects.iter().map(id_bytes).sum();
        // Parts hold at most PART_BUDGET each; hash imbalance is absorbed by
        // the budget's headroom (see `encode`), so this bound is what counts.
        let max = MAX_PARTS * PART_BUDGET;
        if bytes > max {
            return Err(InventoryError::TooLarge {
                objects: self.objects.len(),
                bytes,
                max,
            });
        }
        Ok(())
    }

    /// The ConfigMaps that store this inventory for environment `env` in
    /// `namespace`.
    pub fn encode(&self, env: &str, namespace: &str) -> Result<Stored, InventoryError> {
        self.check_size()?;
        let mut head = Head {
            allow_delete_all: self.allow_delete_all,
            max_delete_percent: self.max_delete_percent,
            rancher: self.rancher.clone(),
            ..Head::default()
        };
        let bytes: usize = self.objects.iter().map(id_bytes).sum();
        let mut parts = BTreeMap::new();
        if bytes <= INLINE_BUDGET {
            head.objects = self.objects.clone();
        } else {
            for (name, cm) in self.parts(env, namespace, bytes)? {
                head.parts.push(name.clone());
                parts.insert(name, cm);
            }
            head.count = Some(self.objects.len());
        }
        let head = configmap(
            env,
            namespace,
            NAME,
            "true",
            true,
            "inventory",
            serde_json::to_string(&head).unwrap_or_default(),
        );
        Ok(Stored { head, parts })
    }

    /// Spread the objects over parts by a hash of their identity: as few
    /// parts as fit, doubling until every part is within its budget.
    fn parts(
        &self,
        env: &str,
        namespace: &str,
        bytes: usize,
    ) -> Result<Vec<(String, Json)>, InventoryError> {
        let mut count = bytes.div_ceil(PART_BUDGET / 2).max(2);
        loop {
            let mut buckets: Vec<Vec<&ObjectId>> = vec![Vec::new(); count];
            for o in &self.objects {
                buckets[bucket(o, count)].push(o);
            }
            let texts: Vec<String> = buckets.iter().map(|b| encode_part(b)).collect();
            if texts.iter().all(|t| t.len() <= PART_BUDGET) {
                return Ok(texts
                    .into_iter()
                    .map(|text| {
                        let name = format!("{NAME}-{}", &hex::encode(Sha256::digest(&text))[..16]);
                        let cm = configmap(env, namespace, &name, PART, false, "objects", text);
                        (name, cm)
                    })
                    .collect());
            }
            if count >= MAX_PARTS {
                return Err(InventoryError::TooLarge {
                    objects: self.objects.len(),
                    bytes,
                    max: MAX_PARTS * PART_BUDGET,
                });
            }
            count = (count * 2).min(MAX_PARTS);
        }
    }

    /// Read a head ConfigMap: the new format, or the original
    /// single-ConfigMap one (`objects` inline, no `parts`).
    pub fn read_head(cm: &Json) -> Result<ReadHead, InventoryError> {
        let corrupt = |reason: String| InventoryError::Corrupt {
            name: cm
                .pointer("/metadata/name")
                .and_then(Json::as_str)
                .unwrap_or(NAME)
                .to_string(),
            reason,
        };
        let text = cm
            .pointer("/data/inventory")
            .and_then(Json::as_str)
            .ok_or_else(|| corrupt("no `inventory` key".into()))?;
        let head: Head = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        Ok(ReadHead {
            inventory: Inventory {
                objects: head.objects,
                allow_delete_all: head.allow_delete_all,
                max_delete_percent: head.max_delete_percent,
                rancher: head.rancher,
            },
            parts: head.parts,
        })
    }

    /// Add the objects of part ConfigMap `cm`.
    pub fn add_part(&mut self, cm: &Json) -> Result<(), InventoryError> {
        let name = cm
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let corrupt = |reason: String| InventoryError::Corrupt {
            name: name.to_string(),
            reason,
        };
        let text = cm
            .pointer("/data/objects")
            .and_then(Json::as_str)
            .ok_or_else(|| corrupt("no `objects` key".into()))?;
        let groups: Vec<Group> = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        for g in groups {
            self.objects
                .extend(g.names.into_iter().map(|name| ObjectId {
                    api_version: g.api_version.clone(),
                    kind: g.kind.clone(),
                    namespace: g.namespace.clone(),
                    name,
                }));
        }
        Ok(())
    }

    /// Read an inventory held whole in one ConfigMap (the original format,
    /// or a head without parts). `None` when it does not parse or has parts.
    pub fn from_configmap(cm: &Json) -> Option<Inventory> {
        let head = Inventory::read_head(cm).ok()?;
        head.parts.is_empty().then_some(head.inventory)
    }
}

/// Whether `o` is an inventory ConfigMap (head or part).
pub fn is_inventory(o: &Json) -> bool {
    o.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(LABEL))
        .is_some()
}

/// The label selector of an environment's inventory parts.
pub fn part_selector(env: &str) -> String {
    format!("{LABEL}={PART},{ENV_LABEL}={env}")
}

/// The label selector of an environment's inventory heads (in any namespace).
pub fn head_selector(env: &str) -> String {
    format!("{LABEL}=true,{ENV_LABEL}={env}")
}

/// Bytes an id takes in a part, about: its name, quoted, and a share of its
/// group.
fn id_bytes(o: &ObjectId) -> usize {
    o.name.len() + 3
}

fn bucket(o: &ObjectId, count: usize) -> usize {
    let (group, kind, ns, name) = o.key();
    let mut h = Sha256::new();
    for s in [group, kind, ns, name] {
        h.update(s.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
    (n % count as u64) as usize
}

fn encode_part(ids: &[&ObjectId]) -> String {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for o in ids {
        groups
            .entry((&o.api_version, &o.kind, &o.namespace))
            .or_default()
            .push(&o.name);
    }
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|((api_version, kind, namespace), mut names)| {
            names.sort_unstable();
            Group {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: namespace.into(),
                names: names.into_iter().map(str::to_string).collect(),
            }
        })
        .collect();
    serde_json::to_string(&groups).unwrap_or_default()
}

/// A ConfigMap of the inventory. Parts carry no `managed-by` label, so the
/// LISTs that observe an environment never return them (they can be large).
fn configmap(
    env: &str,
    namespace: &str,
    name: &str,
    role: &str,
    managed: bool,
    key: &str,
    text: String,
) -> Json {
    let mut labels = serde_json::Map::new();
    if managed {
        labels.insert(MANAGED_BY.into(), json!("keelson"));
    }
    labels.insert(ENV_LABEL.into(), json!(env));
    labels.insert(LABEL.into(), json!(role));
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "data": { key: text },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, name_len: usize) -> Vec<ObjectId> {
        (0..n)
            .map(|i| ObjectId {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: "shop-dev".into(),
                name: format!("flag-{i:06}-{}", "x".repeat(name_len)),
            })
            .collect()
    }

    fn read_back(stored: &Stored) -> Inventory {
        let head = Inventory::read_head(&stored.head).unwrap();
        let mut inv = head.inventory;
        for p in &head.parts {
            inv.add_part(&stored.parts[p]).unwrap();
        }
        inv
    }

    fn data_bytes(cm: &Json) -> usize {
        cm["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| k.len() + v.as_str().unwrap().len())
            .sum()
    }

    #[test]
    fn small_inventories_keep_the_original_single_configmap_format() {
        let inv = Inventory {
            objects: ids(3, 4),
            allow_delete_all: true,
            ..Inventory::default()
        };
        let stored = inv.encode("dev", "shop-dev").unwrap();
        assert!(stored.parts.is_empty());
        // What keelson before split inventories wrote, and reads back.
        let old = json!({"objects": inv.objects, "allowDeleteAll": true});
        assert_eq!(
            serde_json::from_str::<Json>(stored.head["data"]["inventory"].as_str().unwrap())
                .unwrap(),
            old
        );
        let old_cm = json!({"data": {"inventory": old.to_string()}});
        assert_eq!(Inventory::from_configmap(&old_cm), Some(inv.clone()));
        assert!(read_back(&stored).same(&inv));
    }

    #[test]
    fn large_inventories_split_into_parts_within_the_configmap_limit() {
        let inv = Inventory {
            objects: ids(25_000, 240),
            ..Inventory::default()
        };
        let stored = inv.encode("dev", "shop-dev").unwrap();
        assert!(stored.parts.len() >= 8, "{}", stored.parts.len());
        for cm in stored.parts.values().chain([&stored.head]) {
            assert!(data_bytes(cm) < CONFIGMAP_DATA_LIMIT, "{}", data_bytes(cm));
            assert_eq!(cm["metadata"]["labels"][ENV_LABEL], "dev");
        }
        assert!(
            stored
                .parts
                .values()
                .all(|p| p["metadata"]["labels"].get(MANAGED_BY).is_none())
        );
        let back = read_back(&stored);
        assert_eq!(back.objects.len(), 25_000);
        assert!(back.same(&inv));
    }

    #[test]
    fn adding_one_object_rewrites_one_part() {
        let mut inv = Inventory {
            objects: ids(6_000, 240),
            ..Inventory::default()
        };
        let before = inv.encode("dev", "shop-dev").unwrap();
        inv.objects.push(ObjectId {
            name: "one-more".into(),
            ..inv.objects[0].clone()
        });
        let after = inv.encode("dev", "shop-dev").unwrap();
        let new: Vec<&String> = after
            .parts
            .keys()
            .filter(|k| !before.parts.contains_key(*k))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(before.parts.len(), after.parts.len());
    }

    #[test]
    fn an_inventory_beyond_the_limit_is_refused_before_anything_is_stored() {
        let inv = Inventory {
            objects: ids(1, (MAX_PARTS * PART_BUDGET) + 1),
            ..Inventory::default()
        };
        assert!(matches!(
            inv.check_size(),
            Err(InventoryError::TooLarge { objects: 1, .. })
        ));
        assert!(inv.encode("dev", "ns").is_err());
    }

    #[test]
    fn union_keeps_each_object_once() {
        let a = Inventory {
            objects: ids(3, 1),
            ..Inventory::default()
        };
        let b = Inventory {
            objects: ids(5, 1)[2..].to_vec(),
            ..Inventory::default()
        };
        assert_eq!(a.union(&b).objects.len(), 5);
    }
}
