//! Plan: desired objects against live ones → create / update / delete /
//! unchanged, with a diff per change. A pure function: no I/O, so every rule
//! here (ownership, pruning, the mass-deletion guard, create-only, ignore
//! rules, delegations, manual managers' drift) is tested without a cluster.
//!
//! An existing object is unchanged when [`ownership::unchanged`] says so
//! from the applied hash and `managedFields` alone. Any other object gets a
//! verdict and a diff from the local normaliser ([`compare`]), marked for
//! confirmation: on a live cluster the server's dry run replaces both
//! (`apply::confirm`); offline (`--against`) they stand, as a best effort.

pub mod compare;
pub mod delegation;
pub mod desired;
pub mod diff;
pub mod fields;
pub mod immutable;
pub mod inventory;
pub mod lifecycle;
pub mod ownership;
pub mod server_set;
pub mod takeover;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use globset::Glob;
use serde::Serialize;
use serde_json::Value as Json;

use crate::render::objects::{ENV_LABEL, MANAGED_BY, PRUNE_ANNOTATION};
use crate::spec::{IgnoreRule, PruneSpec};
pub use delegation::Delegation;
pub use desired::DesiredObject;
pub use inventory::Inventory;
pub use lifecycle::Lifecycle;
use ownership::{Doubt, Owners};

/// The field manager keelson applies with.
pub const FIELD_MANAGER: &str = "keelson";

/// Default share of an environment a plan may delete.
pub const DEFAULT_MAX_DELETE_PERCENT: u32 = 50;

/// Identity of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectId {
    /// The id of an object: its `apiVersion`, `kind`, `metadata.namespace`
    /// and `metadata.name`, each empty when missing or not a string.
    pub fn of(o: &Json) -> ObjectId {
        // Direct lookups: `Value::pointer` allocates to unescape each token,
        // and ids are taken of every object of an environment.
        let s = |v: Option<&Json>| v.and_then(Json::as_str).unwrap_or_default().to_string();
        let meta = o.get("metadata");
        ObjectId {
            api_version: s(o.get("apiVersion")),
            kind: s(o.get("kind")),
            namespace: s(meta.and_then(|m| m.get("namespace"))),
            name: s(meta.and_then(|m| m.get("name"))),
        }
    }

    /// API group (empty for core).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// A key that is equal for the same object under any API version.
    pub fn key(&self) -> (&str, &str, &str, &str) {
        (self.group(), &self.kind, &self.namespace, &self.name)
    }

    /// Whether two ids name the same object regardless of API version.
    pub fn same_object(&self, other: &ObjectId) -> bool {
        self.group() == other.group()
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// What will happen to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Does not exist yet.
    Create,
    /// Exists and differs.
    Update,
    /// Exists and differs in a field that may not change once set: deleted,
    /// then created again. Only when the object opts in
    /// (`keelson.dev/force: enabled`) and the server refused the update for
    /// that reason alone ([`crate::apply::confirm`]).
    Replace,
    /// Exists, no longer desired, owned by keelson.
    Delete,
    /// Exists and matches.
    Unchanged,
    /// Left alone (create-only, prune disabled, or not keelson's).
    Skip,
}

/// One object's change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What.
    pub action: Action,
    /// Which object.
    pub id: ObjectId,
    /// Why (for skips) or notes (fields left to other managers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Unified diff (Secret values masked), empty when unchanged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// What to apply (desired minus ignored and delegated fields). Boxed:
    /// plans of thousands of objects are held for reporting, and most
    /// changes have none.
    #[serde(skip)]
    pub apply: Option<Box<Json>>,
    /// What confirming and writing the change needs beyond its body.
    #[serde(skip)]
    pub intent: Intent,
}

impl Change {
    /// A change with no diff, notes or body.
    pub fn new(action: Action, id: ObjectId) -> Change {
        Change {
            action,
            id,
            notes: Vec::new(),
            diff: String::new(),
            apply: None,
            intent: Intent::default(),
        }
    }
}

/// What confirming and writing one change needs beyond its body.
#[derive(Debug, Clone, Default)]
pub struct Intent {
    /// The verdict is the local normaliser's; on a live cluster the server's
    /// dry run replaces it.
    pub confirm: bool,
    /// JSON pointers left to others (ignore rules, delegations): not
    /// compared, not applied, not taken over.
    pub exempt: Vec<String>,
    /// Manual managers own fields of the live object: apply takes them over
    /// before it applies (see [`takeover`]).
    pub takeover: bool,
    /// The object as the server's dry run says it will be after the write
    /// (server fields stripped): apply checks the write against it. Boxed,
    /// as [`Change::apply`].
    pub expected: Option<Box<Json>>,
    /// The field paths (fieldsV1 keys) the write must remove; apply checks
    /// that each is gone from what it wrote.
    pub removed: Vec<Vec<String>>,
    /// The server refused the change in a dry run: applying it cannot
    /// succeed, and its step is not started.
    pub refused: Option<String>,
    /// Fields that may not change once set which the local comparison
    /// found changed ([`immutable::changed`]); offline plans act on them
    /// ([`immutable::settle_offline`]), live ones ask the server.
    pub immutable: Vec<String>,
}

/// The plan of one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Environment.
    pub environment: String,
    /// Changes, in apply order (deletions last, in reverse order).
    pub changes: Vec<Change>,
    /// Set when the mass-deletion guard (or another safety rule) refuses
    /// the plan; nothing of it may be applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The inventory to record after a successful apply.
    #[serde(skip)]
    pub inventory: Inventory,
    /// Field managers whose writes are drift (from the environment).
    #[serde(skip)]
    pub manual_managers: Vec<String>,
    /// A whole-environment event (retirement, namespace move) this plan
    /// carries out, shown as its own entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replacements (delete, then create).
    pub replace: usize,
    /// Deletes.
    pub delete: usize,
    /// Unchanged.
    pub unchanged: usize,
    /// Skipped.
    pub skip: usize,
}

impl Summary {
    /// Objects written: created, updated, replaced and deleted.
    pub fn changes(&self) -> usize {
        self.create + self.update + self.replace + self.delete
    }
}

impl Plan {
    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.delete += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Skip => s.skip += 1,
            }
        }
        s
    }

    /// Whether anything would be written.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| {
            matches!(
                c.action,
                Action::Create | Action::Update | Action::Replace | Action::Delete
            )
        })
    }
}

/// What the plan needs to know of the environment.
#[derive(Debug, Clone)]
pub struct DesiredEnv {
    /// Environment name.
    pub name: String,
    /// Rendered objects, in apply order, packed ([`DesiredObject`]).
    pub objects: Vec<DesiredObject>,
    /// Ignore rules.
    pub ignore: Vec<IgnoreRule>,
    /// Prune settings.
    pub prune: PruneSpec,
    /// Adopt existing unlabelled objects.
    pub adopt: bool,
    /// The environment's Rancher project, recorded in the inventory.
    pub rancher: Option<inventory::RancherRef>,
    /// Field managers whose writes are drift to take over and revert
    /// (`spec.manualManagers`, else [`ownership::DEFAULT_MANUAL_MANAGERS`]).
    pub manual_managers: Vec<String>,
}

/// What is live for the environment.
#[derive(Debug, Clone, Default)]
pub struct LiveEnv {
    /// Objects labelled for this environment, from LISTs, but the
    /// `cleared` ones.
    pub owned: Vec<Json>,
    /// Desired objects that exist but are not labelled for this environment.
    pub foreign: Vec<Json>,
    /// The recorded inventory, if any.
    pub inventory: Option<Inventory>,
    /// Fields the cluster delegates to a controller keelson can see (an
    /// HPA's `spec.replicas`).
    pub delegations: Vec<Delegation>,
    /// Ids of owned objects observe already knows to be unchanged
    /// ([`ownership::clears`]), as the desired objects name them. They are
    /// not in `owned`: the LIST's label selector proved them this
    /// environment's and keelson's, and nothing else of them is read. The
    /// plan counts both for the mass-deletion guard.
    pub cleared: HashSet<ObjectId>,
    /// Each listed workload's (`apply::health::is_workload`) name and
    /// health, cleared or not, in LIST order, judged as it was read
    /// (`apply::health::judge`): what `reconcile`'s app states report.
    pub health: Vec<(String, crate::apply::health::Verdict)>,
}

/// The live body of a cleared object that `LiveEnv::owned` does not hold.
static NO_BODY: Json = Json::Null;

/// Plan one environment.
pub fn plan(desired: &DesiredEnv, live: &LiveEnv) -> Plan {
    // One change per desired object and at most one per other live object:
    // sized once, with no room left from doubling (plans are held).
    let mut changes = Vec::with_capacity(desired.objects.len() + live.owned.len());
    let owned: BTreeMap<ObjectId, &Json> = live
        .owned
        .iter()
        .filter(|o| !inventory::is_inventory(o))
        .map(|o| (ObjectId::of(o), o))
        .collect();
    // Lookups by version-independent key: environments hold thousands of
    // objects, so nothing here may scan a list per object.
    let owned_by_key: HashMap<(&str, &str, &str, &str), &Json> =
        owned.iter().map(|(id, o)| (id.key(), *o)).collect();
    let foreign_ids: Vec<ObjectId> = live.foreign.iter().map(ObjectId::of).collect();
    let foreign_by_key: HashMap<(&str, &str, &str, &str), &Json> = foreign_ids
        .iter()
        .map(ObjectId::key)
        .zip(live.foreign.iter())
        .collect();
    let recorded: HashSet<(&str, &str, &str, &str)> = live
        .inventory
        .iter()
        .flat_map(|i| i.objects.iter().map(ObjectId::key))
        .collect();
    let desired_keys: HashSet<(&str, &str, &str, &str)> =
        desired.objects.iter().map(|d| d.id().key()).collect();

    let delegations = delegation::in_env(&desired.objects, &live.delegations);
    for d in &desired.objects {
        let id = d.id().clone();
        let ignored = ignored_pointers(&desired.ignore, &id);
        let mut exempt = ignored.clone();
        let delegated = delegation::of(&delegations, &id);
        exempt.extend(delegated.iter().map(|d| d.pointer.clone()));
        // A cleared object is held by its id alone.
        let cleared = live.cleared.contains(&id);
        let live_obj = owned_by_key
            .get(&id.key())
            .or_else(|| foreign_by_key.get(&id.key()))
            .copied()
            .or_else(|| cleared.then_some(&NO_BODY));
        let Some(l) = live_obj else {
            // A new object gets its delegated fields (the HPA's target
            // starts at the declared replicas); ignored ones stay out.
            let want = body(d.value(), &ignored);
            let mut c = Change::new(Action::Create, id);
            c.diff = diff::unified(&c.id, None, Some(&want));
            c.apply = Some(want.into());
            c.intent.exempt = exempt;
            changes.push(c);
            continue;
        };
        // A cleared object came from the LIST by both labels.
        let labelled = cleared
            || (label(l, ENV_LABEL) == Some(desired.name.as_str())
                && label(l, MANAGED_BY) == Some("keelson"));
        // Tenancy: `adopt` takes over unlabelled objects, never another
        // environment's.
        let other_env = label(l, ENV_LABEL).filter(|e| *e != desired.name);
        if !labelled && (!desired.adopt || other_env.is_some()) {
            let note = match other_env {
                Some(e) => format!(
                    "exists but it belongs to environment `{e}`; an environment never takes over \
                     another's objects"
                ),
                None => "exists but it is not managed by keelson; set `adopt: true` in \
                         environment.yaml to take it over"
                    .to_string(),
            };
            let mut c = Change::new(Action::Skip, id);
            c.notes.push(note);
            changes.push(c);
            continue;
        }
        if d.create_only() {
            let mut c = Change::new(Action::Unchanged, id);
            c.notes.push("create-only: exists, never updated".into());
            changes.push(c);
            continue;
        }
        let mut c = Change::new(Action::Unchanged, id);
        c.notes.extend(delegated.iter().map(|d| d.note()));
        if cleared {
            c.intent.exempt = exempt;
            changes.push(c);
            continue;
        }
        let mut want = body(d.value(), &exempt);
        let owners = Owners::of(l, FIELD_MANAGER, &desired.manual_managers);
        c.intent.takeover = owners.has_manual(l, &exempt);
        let doubt = match ownership::unchanged(&want, l, &owners, &exempt) {
            Ok(()) if labelled => {
                c.intent.exempt = exempt;
                changes.push(c);
                continue;
            }
            Ok(()) => None,
            Err(d) => Some(d),
        };
        tracing::debug!(object = %c.id, ?doubt, "not known to be unchanged");
        if let Some(Doubt::Manual(who)) = &doubt {
            c.notes.push(format!(
                "fields set by {} only are drift; apply takes them over and removes them",
                who.join(", ")
            ));
        }
        // Not known to be unchanged: the local normaliser's verdict, which
        // the server's dry run replaces on a live cluster. The live view
        // holds what keelson owns and what manual managers added, so both a
        // removal from Git and an entry added by hand show.
        let mut mine = owners.keelson.clone().unwrap_or_default();
        for (_, set) in &owners.manual {
            mine.union(set);
        }
        // What the server sets itself stays whatever keelson applies: never
        // shown as removed.
        let mine = server_set::without(&mine, l);
        let mut live_view = compare::project(l, &want, Some(&mine), "");
        compare::remove_pointers(&mut live_view, &exempt);
        if !labelled {
            c.notes.push("adopting an existing object".into());
        }
        // The hash is bookkeeping: live without it (captured state, objects
        // applied before keelson recorded it) is not a change by itself.
        let mut cmp = want.clone();
        diff::drop_hash(&mut cmp);
        diff::drop_hash(&mut live_view);
        let same = labelled
            && compare::same(&live_view, &cmp, "")
            && !matches!(doubt, Some(Doubt::Manual(_)));
        if !same {
            c.action = Action::Update;
            c.diff = diff::unified(&c.id, Some(&live_view), Some(&want));
            c.intent.immutable = immutable::changed(&c.id, l, &live_view, &cmp);
        }
        ownership::keep_exempt(&mut want, l, &owners, &exempt);
        c.apply = Some(want.into());
        c.intent.confirm = true;
        c.intent.exempt = exempt;
        changes.push(c);
    }

    // Prune: labelled for this environment, recorded in the inventory, and
    // no longer desired.
    let mut deletes = Vec::new();
    for (id, l) in &owned {
        if desired_keys.contains(&id.key()) {
            continue;
        }
        let in_inventory = recorded.contains(&id.key());
        let note = if !in_inventory {
            Some("labelled for this environment but not in keelson's inventory; not pruned")
        } else if annotation(l, PRUNE_ANNOTATION) == Some("disabled") {
            Some("keelson.dev/prune: disabled; not pruned")
        } else if !desired.prune.enabled {
            Some("pruning is disabled for this environment")
        } else {
            None
        };
        match note {
            Some(n) => {
                let mut c = Change::new(Action::Skip, id.clone());
                c.notes.push(n.into());
                changes.push(c);
            }
            None => {
                let mut c = Change::new(Action::Delete, id.clone());
                c.diff = diff::unified(id, Some(&diff::strip_server_fields(l)), None);
                deletes.push(c);
            }
        }
    }
    deletes.sort_by_key(|c| std::cmp::Reverse(crate::render::kind_rank(&c.id.kind)));

    // Every labelled object counts, the cleared ones held by id too.
    let bodiless = live
        .cleared
        .iter()
        .filter(|id| !owned.contains_key(id))
        .count();
    let managed = live
        .inventory
        .as_ref()
        .map_or(0, |i| i.objects.len())
        .max(owned.len() + bodiless);
    let refused = guard(&desired.prune, deletes.len(), managed);
    changes.extend(deletes);

    // After apply, keelson owns what it created, updated or left unchanged,
    // plus what it kept from the old inventory without pruning.
    let was_recorded = |id: &ObjectId| recorded.contains(&id.key());
    let mut inventory = Inventory {
        objects: changes
            .iter()
            .filter(|c| match c.action {
                Action::Create | Action::Update | Action::Replace | Action::Unchanged => true,
                Action::Skip => was_recorded(&c.id),
                Action::Delete => false,
            })
            .map(|c| c.id.clone())
            .collect(),
        allow_delete_all: desired.prune.allow_delete_all,
        max_delete_percent: desired.prune.max_delete_percent,
        rancher: desired.rancher.clone(),
    };
    inventory.objects.shrink_to_fit();
    // Never apply what cannot be recorded.
    let refused = refused.or_else(|| inventory.check_size().err().map(|e| e.to_string()));
    // Plans of every environment are held until the run reports: no room
    // left over from growing (up to half of thousands of entries).
    changes.shrink_to_fit();
    Plan {
        environment: desired.name.clone(),
        changes,
        refused,
        inventory,
        manual_managers: desired.manual_managers.clone(),
        lifecycle: None,
    }
}

/// What keelson applies of desired object `d`: without the fields at
/// `exempt` pointers (given in either Secret form), a Secret's `stringData`
/// folded into `data` as the server stores it ([`compare::fold_string_data`]).
fn body(mut want: Json, exempt: &[String]) -> Json {
    compare::remove_pointers(&mut want, exempt);
    compare::fold_string_data(&mut want);
    compare::remove_pointers(&mut want, exempt);
    want
}

/// The mass-deletion guard.
pub fn guard(prune: &PruneSpec, deletes: usize, managed: usize) -> Option<String> {
    if deletes == 0 || managed == 0 {
        return None;
    }
    if deletes >= managed && !prune.allow_delete_all {
        return Some(format!(
            "refusing to delete all {managed} objects of the environment; set `prune.allowDeleteAll: true` in environment.yaml to allow it"
        ));
    }
    let max = prune
        .max_delete_percent
        .unwrap_or(DEFAULT_MAX_DELETE_PERCENT);
    if deletes < managed && deletes * 100 > max as usize * managed {
        return Some(format!(
            "refusing to delete {deletes} of {managed} objects ({}%), over the {max}% limit; raise `prune.maxDeletePercent` in environment.yaml to allow it",
            deletes * 100 / managed
        ));
    }
    None
}

fn ignored_pointers(rules: &[IgnoreRule], id: &ObjectId) -> Vec<String> {
    rules
        .iter()
        .filter(|r| r.kind.as_ref().is_none_or(|k| k == &id.kind))
        .filter(|r| {
            r.name.as_ref().is_none_or(|n| {
                Glob::new(n)
                    .map(|g| g.compile_matcher().is_match(&id.name))
                    .unwrap_or(false)
            })
        })
        .flat_map(|r| r.pointers.iter().cloned())
        .collect()
}

fn label<'a>(o: &'a Json, key: &str) -> Option<&'a str> {
    meta_str(o, "labels", key)
}

fn annotation<'a>(o: &'a Json, key: &str) -> Option<&'a str> {
    meta_str(o, "annotations", key)
}

/// `metadata.<map>.<key>` of an object as a string, by direct lookups
/// (no JSON pointer parsing on the per-object path).
pub fn meta_str<'a>(o: &'a Json, map: &str, key: &str) -> Option<&'a str> {
    o.get("metadata")?.get(map)?.get(key)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::objects::APPLY_ANNOTATION;
    use serde_json::json;

    fn obj(kind: &str, name: &str, env: Option<&str>, annotations: Json) -> Json {
        let mut labels = json!({});
        if let Some(e) = env {
            labels = json!({MANAGED_BY: "keelson", ENV_LABEL: e});
        }
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns", "labels": labels, "annotations": annotations}, "data": {"a": "1"}})
    }

    fn desired(objects: Vec<Json>) -> DesiredEnv {
        DesiredEnv {
            name: "dev".into(),
            objects: objects.into_iter().map(DesiredObject::from).collect(),
            ignore: Vec::new(),
            prune: PruneSpec {
                enabled: true,
                max_delete_percent: None,
                allow_delete_all: false,
            },
            adopt: false,
            rancher: None,
            manual_managers: ownership::default_manual_managers(),
        }
    }

    /// The names a plan's inventory records.
    fn recorded_names(p: &Plan) -> Vec<&str> {
        p.inventory
            .objects
            .iter()
            .map(|o| o.name.as_str())
            .collect()
    }

    fn inventory_of(objects: &[&Json]) -> Option<Inventory> {
        Some(Inventory {
            objects: objects.iter().map(|o| ObjectId::of(o)).collect(),
            ..Inventory::default()
        })
    }

    #[test]
    fn prunes_only_labelled_objects_in_the_inventory() {
        let keep = obj("ConfigMap", "keep", Some("dev"), json!({}));
        let gone = obj("ConfigMap", "gone", Some("dev"), json!({}));
        let stray = obj("ConfigMap", "stray", Some("dev"), json!({}));
        let pinned = obj(
            "ConfigMap",
            "pinned",
            Some("dev"),
            json!({PRUNE_ANNOTATION: "disabled"}),
        );
        let live = LiveEnv {
            owned: vec![keep.clone(), gone.clone(), stray.clone(), pinned.clone()],
            foreign: Vec::new(),
            inventory: inventory_of(&[&keep, &gone, &pinned]),
            ..LiveEnv::default()
        };
        let mut d = desired(vec![keep.clone()]);
        d.prune.max_delete_percent = Some(100);
        let p = plan(&d, &live);
        let action = |n: &str| p.changes.iter().find(|c| c.id.name == n).map(|c| c.action);
        assert_eq!(action("keep"), Some(Action::Unchanged));
        assert_eq!(action("gone"), Some(Action::Delete));
        assert_eq!(action("stray"), Some(Action::Skip), "not in the inventory");
        assert_eq!(action("pinned"), Some(Action::Skip), "prune disabled");
        assert!(p.refused.is_none());
        assert_eq!(recorded_names(&p), ["keep", "pinned"]);
    }

    #[test]
    fn create_only_objects_are_never_updated() {
        let mut want = obj(
            "ConfigMap",
            "seed",
            Some("dev"),
            json!({APPLY_ANNOTATION: "create-only"}),
        );
        let live_obj = want.clone();
        want["data"]["a"] = json!("2");
        let live = LiveEnv {
            owned: vec![live_obj.clone()],
            foreign: Vec::new(),
            inventory: inventory_of(&[&live_obj]),
            ..LiveEnv::default()
        };
        let p = plan(&desired(vec![want]), &live);
        assert_eq!(p.changes[0].action, Action::Unchanged);
        assert!(p.changes[0].apply.is_none());
    }

    #[test]
    fn the_guard_refuses_mass_and_total_deletion_unless_allowed() {
        let spec = |pct: Option<u32>, all: bool| PruneSpec {
            enabled: true,
            max_delete_percent: pct,
            allow_delete_all: all,
        };
        assert!(guard(&spec(None, false), 1, 4).is_none());
        assert!(guard(&spec(None, false), 3, 4).unwrap().contains("75%"));
        assert!(guard(&spec(Some(80), false), 3, 4).is_none());
        assert!(
            guard(&spec(Some(100), false), 4, 4)
                .unwrap()
                .contains("allowDeleteAll")
        );
        assert!(guard(&spec(None, true), 4, 4).is_none());
        assert!(guard(&spec(None, false), 0, 0).is_none());
    }

    #[test]
    fn objects_held_by_id_alone_are_unchanged_and_counted_by_the_guard() {
        let kept = obj("ConfigMap", "kept", Some("dev"), json!({}));
        let seed = obj(
            "ConfigMap",
            "seed",
            Some("dev"),
            json!({APPLY_ANNOTATION: "create-only"}),
        );
        let gone: Vec<Json> = ["gone-1", "gone-2"]
            .iter()
            .map(|n| obj("ConfigMap", n, Some("dev"), json!({})))
            .collect();
        let live = LiveEnv {
            owned: gone.clone(),
            inventory: inventory_of(&gone.iter().collect::<Vec<_>>()),
            cleared: [&kept, &seed].into_iter().map(ObjectId::of).collect(),
            ..LiveEnv::default()
        };
        let p = plan(&desired(vec![kept, seed]), &live);
        let actions: Vec<(&str, Action)> = p
            .changes
            .iter()
            .map(|c| (c.id.name.as_str(), c.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("kept", Action::Unchanged),
                ("seed", Action::Unchanged),
                ("gone-1", Action::Delete),
                ("gone-2", Action::Delete)
            ]
        );
        assert!(p.changes[1].notes[0].starts_with("create-only"));
        // 2 of 4 labelled objects: at the 50% limit, not "all 2".
        assert_eq!(p.refused, None);
        assert_eq!(recorded_names(&p), ["kept", "seed"]);
    }

    #[test]
    fn adopting_a_namespace_never_shows_its_server_set_label_removed() {
        // `kubectl apply` (client-side) made it: its manager owns what the
        // server's defaulter set, the `kubernetes.io/metadata.name` label
        // and the finalizer, which no apply can remove.
        let live = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "shop-dev",
            "labels": {"kubernetes.io/metadata.name": "shop-dev"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                    "f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}},
                "f:spec": {"f:finalizers": {}}}}]},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let want = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "shop-dev", "labels": {MANAGED_BY: "keelson", ENV_LABEL: "dev"}}});
        let mut d = desired(vec![want]);
        d.adopt = true;
        let p = plan(
            &d,
            &LiveEnv {
                foreign: vec![live],
                ..LiveEnv::default()
            },
        );
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Update);
        let removed: Vec<&str> = c.diff.lines().filter(|l| l.starts_with('-')).collect();
        assert!(
            removed
                .iter()
                .any(|l| l.contains("kubectl.kubernetes.io/last-applied-configuration")),
            "{}",
            c.diff
        );
        assert!(
            !removed
                .iter()
                .any(|l| l.contains("kubernetes.io/metadata.name") || l.contains("- kubernetes")),
            "{}",
            c.diff
        );
    }

    #[test]
    fn objects_of_another_environment_are_not_taken_over() {
        let want = obj("ConfigMap", "shared", Some("dev"), json!({}));
        let theirs = obj("ConfigMap", "shared", Some("staging"), json!({}));
        let live = LiveEnv {
            owned: Vec::new(),
            foreign: vec![theirs],
            inventory: None,
            ..LiveEnv::default()
        };
        let p = plan(&desired(vec![want]), &live);
        assert_eq!(p.changes[0].action, Action::Skip);
        assert!(p.changes[0].notes[0].contains("belongs to environment `staging`"));
        assert!(p.inventory.objects.is_empty());
    }
}
