//! Who owns what in a live object, and the no-op decision built on it.
//!
//! Keelson does not decide "unchanged" by comparing values, which would mean
//! emulating the server's normalisation (defaults, canonical quantities,
//! dropped empty collections) for every kind and server version. An object
//! is unchanged when all of these hold:
//! - its `keelson.dev/applied-hash` annotation equals the desired object's:
//!   Git has not changed since keelson applied it;
//! - keelson's `Apply` entry in `managedFields` still owns every field the
//!   desired object sets: a writer that changes a field takes its ownership
//!   (the API server's field manager moves it), so a field keelson lost was
//!   changed by someone else;
//! - no manual manager (`kubectl edit`, `kubectl patch`…) owns a field that
//!   keelson does not own and no controller owns: entries someone added by
//!   hand.
//!
//! Fields under an exempt pointer (an environment `ignore` rule, or a
//! delegation such as an HPA's `spec.replicas`) are left out of all three.
//! Anything else falls to a server-side dry run (or, offline, to the local
//! normaliser in [`super::compare`]).

use std::borrow::Cow;

use serde_json::Value as Json;

use super::fields::{FieldTree, canonical, canonical_key, keys_in, pointer_of};
use crate::render::objects::APPLIED_HASH_ANNOTATION;

/// Managers whose writes are manual edits: drift that keelson takes over and
/// reverts, as Flux does for `kubectl` and `before-first-apply`. Matched
/// exactly. `kubectl rollout restart` (`kubectl-rollout`) and `kubectl scale`
/// are operations, not edits, and are not on the list.
pub const DEFAULT_MANUAL_MANAGERS: &[&str] = &[
    "kubectl",
    "kubectl-edit",
    "kubectl-patch",
    "kubectl-set",
    "kubectl-label",
    "kubectl-annotate",
    "kubectl-replace",
    "kubectl-create",
    "kubectl-client-side-apply",
    "before-first-apply",
];

/// The default manual managers, owned.
pub fn default_manual_managers() -> Vec<String> {
    DEFAULT_MANUAL_MANAGERS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The field sets of an object's managers.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Fields keelson applied (its `Apply` entry), if it ever applied.
    pub keelson: Option<FieldTree>,
    /// Each manual manager's fields.
    pub manual: Vec<(String, FieldTree)>,
    /// The union of every other manager's fields (controllers).
    pub others: FieldTree,
}

impl Owners {
    /// Read `metadata.managedFields` of a live object. Status writes are
    /// left out: they never touch what keelson applies.
    pub fn of(live: &Json, manager: &str, manual: &[String]) -> Owners {
        let mut o = Owners::default();
        let Some(entries) = live
            .pointer("/metadata/managedFields")
            .and_then(Json::as_array)
        else {
            return o;
        };
        for e in entries {
            let name = e.get("manager").and_then(Json::as_str).unwrap_or_default();
            let sub = e.get("subresource").and_then(Json::as_str).unwrap_or("");
            if sub == "status" {
                continue;
            }
            let op = e.get("operation").and_then(Json::as_str).unwrap_or("");
            let tree = FieldTree::parse(e.get("fieldsV1").unwrap_or(&Json::Null));
            if name == manager && op == "Apply" && sub.is_empty() {
                o.keelson
                    .get_or_insert_with(FieldTree::default)
                    .union(&tree);
            } else if manual.iter().any(|m| m == name) {
                match o.manual.iter_mut().find(|(n, _)| n == name) {
                    Some((_, t)) => t.union(&tree),
                    None => o.manual.push((name.to_string(), tree)),
                }
            } else {
                o.others.union(&tree);
            }
        }
        o
    }

    /// The fields only manual managers own (not keelson, not a controller),
    /// outside `exempt` pointers, with the managers that own each: leaves,
    /// or whole list items when an item was added by hand. These are drift:
    /// apply takes them over and removes them. See [`drift_of`].
    pub fn manual_only(&self, live: &Json, exempt: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
        let mut out: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for (name, set) in &self.manual {
            for leaf in drift_of(name, set, self.keelson.as_ref(), &self.others, live, exempt) {
                match out.iter_mut().find(|(l, _)| *l == leaf) {
                    Some((_, who)) => who.push(name.clone()),
                    None => out.push((leaf, vec![name.clone()])),
                }
            }
        }
        out
    }

    /// Whether any manual manager owns anything outside `exempt` pointers
    /// (so apply must take their fields over first).
    pub fn has_manual(&self, live: &Json, exempt: &[String]) -> bool {
        self.manual.iter().any(|(_, set)| {
            set.leaves()
                .iter()
                .any(|leaf| pointer_of(live, leaf).is_none_or(|p| !is_exempt(&p, exempt)))
        })
    }
}

/// Manual managers that create objects: their field sets also hold every
/// default the server filled in at creation (`dnsPolicy`, `protocol`…),
/// which a takeover would release only for the server to set again. Of
/// theirs, only entries of maps and items of lists are drift.
pub const CREATORS: &[&str] = &[
    "kubectl",
    "kubectl-create",
    "kubectl-client-side-apply",
    "before-first-apply",
];

/// Map-typed fields (`map[string]…` in the API): their entries are the
/// user's, never defaults.
const MAP_FIELDS: &[&str] = &[
    "f:labels",
    "f:annotations",
    "f:data",
    "f:binaryData",
    "f:stringData",
    "f:nodeSelector",
    "f:limits",
    "f:requests",
    "f:hard",
    "f:parameters",
];

/// The drift in one manual manager's field set `set`: what it alone owns
/// (not keelson, not a controller), outside `exempt`, present in `live`; a
/// list item it added is one path. Of a creator's fields ([`CREATORS`])
/// only map entries and list items count.
pub fn drift_of(
    manager: &str,
    set: &FieldTree,
    keelson: Option<&FieldTree>,
    others: &FieldTree,
    live: &Json,
    exempt: &[String],
) -> Vec<Vec<String>> {
    // Fields the server sets and keeps whatever is applied are nobody's drift.
    let only = super::server_set::without(&set.difference(keelson).difference(Some(others)), live);
    let creator = CREATORS.contains(&manager);
    let mut out: Vec<Vec<String>> = Vec::new();
    for mut leaf in only.leaves() {
        // A whole list item added by hand is removed as one.
        if let Some(j) = (0..leaf.len()).find(|&j| is_item(&leaf[j]) && only.owns(&leaf[..=j])) {
            leaf.truncate(j + 1);
        }
        let entry = leaf.last().is_some_and(|l| is_item(l))
            || leaf
                .len()
                .checked_sub(2)
                .is_some_and(|i| MAP_FIELDS.contains(&leaf[i].as_str()));
        if creator && !entry {
            continue;
        }
        let Some(p) = pointer_of(live, &leaf) else {
            // Owned but not in the object (a stale set): nothing to revert.
            continue;
        };
        if !is_exempt(&p, exempt) && !out.contains(&leaf) {
            out.push(leaf);
        }
    }
    out
}

fn is_item(seg: &str) -> bool {
    seg.starts_with("k:") || seg.starts_with("v:") || seg.starts_with("i:")
}

/// Keep what keelson alone owns under an exempt pointer: its live value goes
/// into `want`. An apply that left it out would release the field, and the
/// server would remove it (reset `spec.replicas` to 1 the moment an ignore
/// rule is added), as Argo CD's `RespectIgnoreDifferences` avoids. A field
/// another manager also owns is simply released to it. Pointers through
/// lists are left as they are.
pub fn keep_exempt(want: &mut Json, live: &Json, owners: &Owners, exempt: &[String]) {
    let Some(mine) = &owners.keelson else { return };
    for p in exempt {
        let Some(value) = live.pointer(p) else {
            continue;
        };
        let segs: Vec<String> = p
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let mut at = live;
        let mut through_list = false;
        for s in &segs {
            through_list |= at.is_array();
            at = match at.get(s.as_str()) {
                Some(v) => v,
                None => break,
            };
        }
        if through_list {
            continue;
        }
        let path: Vec<String> = segs.iter().map(|s| format!("f:{s}")).collect();
        let shared = owners.others.owns(&path) || owners.manual.iter().any(|(_, t)| t.owns(&path));
        if !mine.owns(&path) || shared {
            continue;
        }
        let mut at = &mut *want;
        for s in &segs[..segs.len() - 1] {
            if !at.is_object() {
                break;
            }
            at = at
                .as_object_mut()
                .expect("an object")
                .entry(s.clone())
                .or_insert_with(|| Json::Object(Default::default()));
        }
        if let (Some(m), Some(last)) = (at.as_object_mut(), segs.last()) {
            m.insert(last.clone(), value.clone());
        }
    }
}

/// Whether pointer `p` is at or under one of `exempt`.
pub fn is_exempt(p: &str, exempt: &[String]) -> bool {
    exempt
        .iter()
        .any(|e| p == e || (p.starts_with(e.as_str()) && p[e.len()..].starts_with('/')))
}

/// Why an object is not known to be unchanged (for the plan's notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doubt {
    /// The desired object's hash differs from the one keelson recorded.
    Hash,
    /// Keelson no longer owns a field it applies: someone changed it.
    Lost,
    /// Manual managers own fields keelson does not: entries added by hand.
    Manual(Vec<String>),
}

/// The no-op decision: `Ok` when `live` is as keelson last applied `want`
/// (desired minus exempt fields), from the applied hash and `managedFields`
/// alone. `Err` says why not; the caller then asks the server (or the local
/// normaliser) what differs.
pub fn unchanged(
    want: &Json,
    live: &Json,
    owners: &Owners,
    exempt: &[String],
) -> Result<(), Doubt> {
    let hash = super::meta_str(want, "annotations", APPLIED_HASH_ANNOTATION);
    if hash.is_none() || hash != super::meta_str(live, "annotations", APPLIED_HASH_ANNOTATION) {
        return Err(Doubt::Hash);
    }
    match &owners.keelson {
        Some(mine) if covers(mine, want, Level::Top) => {}
        _ => return Err(Doubt::Lost),
    }
    let manual = owners.manual_only(live, exempt);
    if !manual.is_empty() {
        let mut who: Vec<String> = manual.into_iter().flat_map(|(_, w)| w).collect();
        who.sort();
        who.dedup();
        return Err(Doubt::Manual(who));
    }
    Ok(())
}

/// The no-op decision made while observing, so that the body of a live
/// object can be dropped at once: `true` only when [`unchanged`] is sure to
/// hold whatever the exempt pointers are (the applied hash matches,
/// keelson's entry owns every field of the whole desired object, and no
/// manual manager has an entry at all). Anything else keeps its body for
/// the plan to judge.
///
/// Runs for every listed object, so it reads keelson's fieldsV1 as JSON
/// (see `Set`) instead of building a [`FieldTree`] of every manager's
/// fields as [`Owners::of`] does.
pub fn clears(desired: &Json, live: &Json, manual: &[String]) -> bool {
    fn str_of<'a>(e: &'a Json, k: &str) -> &'a str {
        e.get(k).and_then(Json::as_str).unwrap_or("")
    }
    let entries: Vec<&Json> = live
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Json::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let names: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                str_of(e, "manager"),
                str_of(e, "operation"),
                str_of(e, "subresource"),
            )
        })
        .collect();
    let fields = |i: usize| Cow::Borrowed(entries[i].get("fieldsV1").unwrap_or(&Json::Null));
    let hash = super::meta_str(live, "annotations", APPLIED_HASH_ANNOTATION);
    clears_entries(desired, hash, &names, &fields, manual)
}

/// [`clears`] from the parts of a live object it reads: its applied hash,
/// its `managedFields` entries as (manager, operation, subresource), and
/// `fields(i)`, the fieldsV1 of entry `i`, asked only for keelson's entry.
pub fn clears_entries<'f>(
    desired: &Json,
    live_hash: Option<&str>,
    entries: &[(&str, &str, &str)],
    fields: &dyn Fn(usize) -> Cow<'f, Json>,
    manual: &[String],
) -> bool {
    let hash = super::meta_str(desired, "annotations", APPLIED_HASH_ANNOTATION);
    if hash.is_none() || hash != live_hash {
        return false;
    }
    // keelson's `Apply` entries: one, as the server keeps them; were there
    // more, their union is taken, as the plan does.
    let mut mine = Vec::new();
    for (i, (name, op, sub)) in entries.iter().enumerate() {
        if *sub == "status" {
            continue;
        }
        if *name == super::FIELD_MANAGER && *op == "Apply" && sub.is_empty() {
            mine.push(i);
        } else if manual.iter().any(|m| m == name) {
            return false;
        }
    }
    if mine.is_empty() {
        return false;
    }
    // What keelson applies of a Secret is its folded form.
    let folded;
    let want = if desired.get("stringData").is_some() {
        let mut f = desired.clone();
        super::compare::fold_string_data(&mut f);
        folded = f;
        &folded
    } else {
        desired
    };
    if let [i] = mine[..] {
        return covers(&*fields(i), want, Level::Top);
    }
    let mut union = FieldTree::default();
    for i in mine {
        union.union(&FieldTree::parse(&fields(i)));
    }
    covers(&union, want, Level::Top)
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Top,
    Metadata,
    Inner,
}

/// A field set [`covers`] can walk: parsed ([`FieldTree`]), or a fieldsV1
/// object read where it lies (`Json`), whose `k:`/`v:` keys are compared
/// canonically only when the server's spelling is not the canonical one.
trait Set {
    /// The subtree at `key` (a canonical fieldsV1 key).
    fn child(&self, key: &str) -> Option<&Self>;
    /// Owned as a whole: a member with no children (an atomic map or list).
    fn whole(&self) -> bool;
    /// The key field names of a keyed list, from a `k:` child.
    fn list_keys(&self) -> Option<Vec<String>>;
    /// Whether the set holds items of a set list (`v:` children).
    fn has_values(&self) -> bool;
}

impl Set for FieldTree {
    fn child(&self, key: &str) -> Option<&Self> {
        FieldTree::child(self, key)
    }
    fn whole(&self) -> bool {
        self.is_member() && self.keys().next().is_none()
    }
    fn list_keys(&self) -> Option<Vec<String>> {
        keys_in(self)
    }
    fn has_values(&self) -> bool {
        self.keys().any(|k| k.starts_with("v:"))
    }
}

impl Set for Json {
    fn child(&self, key: &str) -> Option<&Self> {
        let m = self.as_object()?;
        if let Some(c) = m.get(key) {
            return Some(c);
        }
        // Servers write keys canonically (sorted, compact); compare any
        // other spelling the way `FieldTree::parse` does.
        let prefix = key.get(..2).filter(|p| *p == "k:" || *p == "v:")?;
        m.iter()
            .find(|(k, _)| k.starts_with(prefix) && canonical_key(k) == key)
            .map(|(_, c)| c)
    }
    fn whole(&self) -> bool {
        self.as_object().is_some_and(|m| m.keys().all(|k| k == "."))
    }
    fn list_keys(&self) -> Option<Vec<String>> {
        let k = self.as_object()?.keys().find(|k| k.starts_with("k:"))?;
        match serde_json::from_str::<Json>(&k[2..]) {
            Ok(Json::Object(m)) => Some(m.keys().cloned().collect()),
            _ => None,
        }
    }
    fn has_values(&self) -> bool {
        self.as_object()
            .is_some_and(|m| m.keys().any(|k| k.starts_with("v:")))
    }
}

/// Whether field set `t` owns every field `v` sets. How a list is keyed is
/// read from `t` itself (its `k:`/`v:` children), so no schema is needed:
/// a list the server treats as atomic is owned as a whole.
fn covers<S: Set>(t: &S, v: &Json, level: Level) -> bool {
    let mut key = String::new();
    match v {
        Json::Object(m) => m.iter().all(|(k, c)| {
            let skip = match level {
                Level::Top => matches!(k.as_str(), "apiVersion" | "kind" | "status"),
                Level::Metadata => matches!(
                    k.as_str(),
                    "name"
                        | "namespace"
                        | "uid"
                        | "resourceVersion"
                        | "generation"
                        | "creationTimestamp"
                        | "managedFields"
                        | "selfLink"
                ),
                Level::Inner => false,
            };
            if skip || c.is_null() {
                return true;
            }
            key.clear();
            key.push_str("f:");
            key.push_str(k);
            let Some(sub) = t.child(&key) else {
                return false;
            };
            if sub.whole() {
                // Owned as a whole: an atomic map (a label selector) or list.
                return true;
            }
            let next = if level == Level::Top && k == "metadata" {
                Level::Metadata
            } else {
                Level::Inner
            };
            match c {
                Json::Object(_) => covers(sub, c, next),
                Json::Array(items) => covers_list(sub, items),
                _ => true,
            }
        }),
        _ => true,
    }
}

fn covers_list<S: Set>(t: &S, items: &[Json]) -> bool {
    if items.is_empty() || t.whole() {
        // Empty, or atomic: owned as a whole.
        return true;
    }
    if let Some(names) = t.list_keys() {
        return items.iter().all(|item| {
            let mut key = serde_json::Map::new();
            for n in &names {
                match item.get(n) {
                    Some(v) => {
                        key.insert(n.clone(), v.clone());
                    }
                    None if n == "protocol" => {
                        key.insert(n.clone(), Json::String("TCP".into()));
                    }
                    None => return false,
                }
            }
            let key = format!("k:{}", canonical(&Json::Object(key)));
            t.child(&key).is_some_and(|sub| match item {
                Json::Object(_) => covers(sub, item, Level::Inner),
                _ => true,
            })
        });
    }
    if t.has_values() {
        return items
            .iter()
            .all(|i| t.child(&format!("v:{}", canonical(i))).is_some());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manual() -> Vec<String> {
        default_manual_managers()
    }

    fn deployment(image: &str, hash: &str) -> Json {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"},
                "annotations": {APPLIED_HASH_ANNOTATION: hash}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]}}}})
    }

    fn keelson_fields() -> Json {
        json!({"f:metadata": {"f:labels": {"f:app": {}}, "f:annotations": {"f:keelson.dev/applied-hash": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    }

    fn live_with(managed: Json, image: &str) -> Json {
        let mut l = deployment(image, "h1");
        l["metadata"]["managedFields"] = managed;
        // What the server adds: defaults, status.
        l["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        l["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
        l["status"] = json!({"replicas": 2});
        l
    }

    #[test]
    fn an_object_keelson_applied_and_nobody_touched_is_unchanged() {
        let want = deployment("x:1", "h1");
        let live = live_with(
            json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": keelson_fields()}]),
            "x:1",
        );
        let o = Owners::of(&live, "keelson", &manual());
        assert_eq!(unchanged(&want, &live, &o, &[]), Ok(()));
        assert!(clears(&want, &live, &manual()), "observe may drop its body");
    }

    #[test]
    fn clears_reads_item_keys_in_any_spelling_and_unions_several_entries() {
        let want = deployment("x:1", "h1");
        // An item key with its fields in another order than canonical.
        let mut f = keelson_fields();
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"] = json!({
            "k:{\"protocol\":\"TCP\",\"containerPort\":8080}": {".": {}, "f:containerPort": {}}});
        let live = live_with(
            json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": f}]),
            "x:1",
        );
        assert!(clears(&want, &live, &manual()));
        // A port keelson does not own is not cleared, in either spelling.
        let mut other = want.clone();
        other["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
            json!(9090);
        assert!(!clears(&other, &live, &manual()));
        // keelson's fields split over two Apply entries: their union counts.
        let all = keelson_fields();
        let meta = json!({"f:metadata": all["f:metadata"].clone()});
        let spec = json!({"f:spec": all["f:spec"].clone()});
        let live = live_with(
            json!([
                {"manager": "keelson", "operation": "Apply", "fieldsV1": meta},
                {"manager": "keelson", "operation": "Apply", "fieldsV1": spec.clone()}
            ]),
            "x:1",
        );
        assert!(clears(&want, &live, &manual()));
        let live = live_with(
            json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": spec}]),
            "x:1",
        );
        assert!(!clears(&want, &live, &manual()), "the labels are not owned");
    }

    #[test]
    fn a_changed_spec_changes_the_hash() {
        let want = deployment("x:2", "h2");
        let live = live_with(
            json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": keelson_fields()}]),
            "x:1",
        );
        let o = Owners::of(&live, "keelson", &manual());
        assert_eq!(unchanged(&want, &live, &o, &[]), Err(Doubt::Hash));
        assert!(!clears(&want, &live, &manual()));
    }

    #[test]
    fn a_field_another_writer_changed_is_no_longer_keelsons() {
        let want = deployment("x:1", "h1");
        let mut mine = keelson_fields();
        mine["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            .as_object_mut()
            .unwrap()
            .remove("f:image");
        let live = live_with(
            json!([
                {"manager": "keelson", "operation": "Apply", "fieldsV1": mine},
                {"manager": "rancher", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}
            ]),
            "x:hotfix",
        );
        let o = Owners::of(&live, "keelson", &manual());
        assert_eq!(unchanged(&want, &live, &o, &[]), Err(Doubt::Lost));
        assert!(!clears(&want, &live, &manual()));
        // Unless the field is delegated (which only the plan knows: observe
        // keeps the body).
        let mut want = want;
        want["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
        assert_eq!(unchanged(&want, &live, &o, &[]), Ok(()));
    }

    #[test]
    fn entries_added_by_hand_are_drift_unless_exempt() {
        let want = deployment("x:1", "h1");
        let mut live = live_with(
            json!([
                {"manager": "keelson", "operation": "Apply", "fieldsV1": keelson_fields()},
                {"manager": "kubectl-label", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:debug": {}}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}}
            ]),
            "x:1",
        );
        live["metadata"]["labels"]["debug"] = json!("true");
        live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        let o = Owners::of(&live, "keelson", &manual());
        assert_eq!(
            unchanged(&want, &live, &o, &[]),
            Err(Doubt::Manual(vec!["kubectl-label".into()]))
        );
        assert!(!clears(&want, &live, &manual()));
        assert!(o.has_manual(&live, &[]));
        assert_eq!(
            unchanged(&want, &live, &o, &["/metadata/labels".into()]),
            Ok(()),
            "an ignore rule exempts it; the controller's annotation is never drift"
        );
    }

    #[test]
    fn lists_are_keyed_as_the_server_keyed_them() {
        // The server treats `args` as atomic: owned as a whole.
        let want = json!({"spec": {"args": ["a", "b"], "finalizers": ["x"]}});
        let t =
            FieldTree::parse(&json!({"f:spec": {"f:args": {}, "f:finalizers": {"v:\"x\"": {}}}}));
        assert!(covers(&t, &want, Level::Top));
        let t =
            FieldTree::parse(&json!({"f:spec": {"f:args": {}, "f:finalizers": {"v:\"y\"": {}}}}));
        assert!(!covers(&t, &want, Level::Top));
        // A label selector is an atomic map.
        let want = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let t = FieldTree::parse(&json!({"f:spec": {"f:selector": {}}}));
        assert!(covers(&t, &want, Level::Top));
    }

    #[test]
    fn an_exempt_field_keelson_alone_owns_keeps_its_live_value() {
        let live = live_with(
            json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": keelson_fields()}]),
            "x:1",
        );
        let o = Owners::of(&live, "keelson", &manual());
        let mut want = json!({"spec": {}});
        keep_exempt(&mut want, &live, &o, &["/spec/replicas".into()]);
        assert_eq!(want["spec"]["replicas"], 2);
        // Shared with the HPA controller: released to it.
        let mut live = live;
        live["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}}));
        let o = Owners::of(&live, "keelson", &manual());
        let mut want = json!({"spec": {}});
        keep_exempt(&mut want, &live, &o, &["/spec/replicas".into()]);
        assert!(want["spec"].get("replicas").is_none());
    }

    #[test]
    fn exempt_pointers_match_whole_segments() {
        assert!(is_exempt("/spec/replicas", &["/spec/replicas".into()]));
        assert!(is_exempt("/spec/template/x", &["/spec/template".into()]));
        assert!(!is_exempt("/spec/replicasX", &["/spec/replicas".into()]));
    }
}
