//! Walking objects: the field set an applied configuration names, the fields an update changed,
//! merging an applied configuration into the live object, and reading or removing one path.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, field_pe, key_pe};
use super::schema::{is_atomic_map, is_granular_map, item_key, list_keys};

/// Metadata fields the server owns; they never appear in managed fields.
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The part of an object that field management tracks: no apiVersion/kind, no server-owned
/// metadata, and none of the fields the write resets (see [`super::reset`]).
pub fn tracked_content(obj: &Value, reset: &[super::reset::FieldPath]) -> Value {
    let mut out = obj.clone();
    for path in reset {
        super::reset::remove(&mut out, path);
    }
    if let Some(m) = out.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        let drop_meta = match m.get_mut("metadata").and_then(Value::as_object_mut) {
            Some(meta) => {
                for k in SYSTEM_META {
                    meta.remove(*k);
                }
                meta.is_empty()
            }
            None => false,
        };
        if drop_meta {
            m.remove("metadata");
        }
    }
    out
}

/// The set of fields an applied configuration specifies (what its manager will own), or the
/// structural errors that make it no valid apply configuration (duplicate keys in a keyed list,
/// list items without their key), worded like structured-merge-diff's.
pub fn apply_set(content: &Value) -> Result<FieldSet, Vec<String>> {
    let mut w = ApplyWalk::default();
    let mut fs = FieldSet::default();
    if let Some(m) = content.as_object() {
        w.map(m, &mut fs);
    }
    if w.errors.is_empty() {
        Ok(fs)
    } else {
        Err(w.errors)
    }
}

#[derive(Default)]
struct ApplyWalk {
    names: Vec<String>,
    pes: Vec<String>,
    errors: Vec<String>,
}

impl ApplyWalk {
    fn value(&mut self, v: &Value, node: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() && !is_atomic_map(&self.names) => self.map(m, node),
            Value::Array(items) if !items.is_empty() => match list_keys(&self.names) {
                Some(keys) => self.keyed_list(items, &keys, node),
                None => node.owned = true,
            },
            _ => node.owned = true,
        }
    }

    fn keyed_list(&mut self, items: &[Value], keys: &[String], node: &mut FieldSet) {
        let mut seen: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(k) = item_key(item, keys) else {
                self.errors.push(format!(
                    "{}: element {i}: associative list with keys has an element that omits key field {:?}",
                    super::fieldset::display_path(&self.pes),
                    keys[0]
                ));
                continue;
            };
            let pe = key_pe(&k);
            if seen.contains(&pe) {
                let shown = super::fieldset::display_path(std::slice::from_ref(&pe));
                self.errors.push(format!(
                    "{}: duplicate entries for key {shown}",
                    super::fieldset::display_path(&self.pes)
                ));
                continue;
            }
            seen.push(pe.clone());
            let child = node.children.entry(pe.clone()).or_default();
            child.owned = true;
            if let Some(m) = item.as_object() {
                self.pes.push(pe);
                self.map(m, child);
                self.pes.pop();
            }
        }
    }

    fn map(&mut self, m: &Map<String, Value>, node: &mut FieldSet) {
        for (k, child) in m {
            self.names.push(k.clone());
            self.pes.push(field_pe(k));
            self.value(child, node.children.entry(field_pe(k)).or_default());
            self.pes.pop();
            self.names.pop();
        }
    }
}

/// Structs embedded by value (not behind a pointer): creating them is not an "add" of the
/// struct itself, so the real server records no `.` for them in an Update manager's set.
fn is_embedded_struct(names: &[String]) -> bool {
    matches!(
        names.last().map(String::as_str),
        Some(
            "metadata"
                | "spec"
                | "status"
                | "template"
                | "strategy"
                | "resources"
                | "updateStrategy"
                | "jobTemplate"
        )
    )
}

/// Fields an update changed: (added or modified paths, removed paths).
pub fn update_sets(old: Option<&Value>, new: &Value) -> (FieldSet, FieldSet) {
    let mut changed = FieldSet::default();
    let mut removed = FieldSet::default();
    let mut names = Vec::new();
    diff(old, new, &mut names, &mut changed, &mut removed);
    changed.prune();
    removed.prune();
    (changed, removed)
}

fn diff(
    old: Option<&Value>,
    new: &Value,
    names: &mut Vec<String>,
    changed: &mut FieldSet,
    removed: &mut FieldSet,
) {
    let atomic_map = is_atomic_map(names);
    match new {
        Value::Object(nm) if !nm.is_empty() && !atomic_map => {
            let om = old.and_then(Value::as_object);
            if om.is_none()
                && !names.is_empty()
                && (is_granular_map(names) || !is_embedded_struct(names))
            {
                changed.owned = true;
            }
            for (k, nv) in nm {
                names.push(k.clone());
                let c = changed.children.entry(field_pe(k)).or_default();
                let r = removed.children.entry(field_pe(k)).or_default();
                diff(om.and_then(|o| o.get(k)), nv, names, c, r);
                names.pop();
            }
            if let Some(om) = om {
                for k in om.keys().filter(|k| !nm.contains_key(*k)) {
                    removed.children.entry(field_pe(k)).or_default().owned = true;
                }
            }
        }
        Value::Array(items) if !items.is_empty() && list_keys(names).is_some() => {
            let keys = list_keys(names).unwrap_or_default();
            let olds: Vec<(String, &Value)> = old
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| item_key(i, &keys).map(|k| (key_pe(&k), i)))
                        .collect()
                })
                .unwrap_or_default();
            if old.and_then(Value::as_array).is_none()
                && names.last().is_some_and(|n| n != "containers")
            {
                changed.owned = true;
            }
            let mut new_pes = Vec::new();
            for item in items {
                let Some(k) = item_key(item, &keys) else {
                    changed.owned = true;
                    continue;
                };
                let pe = key_pe(&k);
                let prev = olds.iter().find(|(p, _)| *p == pe).map(|(_, v)| *v);
                let c = changed.children.entry(pe.clone()).or_default();
                if prev.is_none() {
                    c.owned = true;
                }
                let r = removed.children.entry(pe.clone()).or_default();
                diff(prev, item, names, c, r);
                new_pes.push(pe);
            }
            for (pe, _) in olds.iter().filter(|(p, _)| !new_pes.contains(p)) {
                removed.children.entry(pe.clone()).or_default().owned = true;
            }
        }
        _ => {
            if old != Some(new) {
                changed.owned = true;
            }
        }
    }
}

/// Merge an applied configuration into the live object: maps merge, keyed lists merge item by
/// item, everything else is replaced by the applied value.
pub fn merge_apply(live: &Value, applied: &Value, names: &mut Vec<String>) -> Value {
    match (live, applied) {
        (Value::Object(lm), Value::Object(am)) if !is_atomic_map(names) => {
            let mut out = lm.clone();
            for (k, av) in am {
                if av.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = match lm.get(k) {
                    Some(lv) => merge_apply(lv, av, names),
                    None => av.clone(),
                };
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(li), Value::Array(ai)) if list_keys(names).is_some() => {
            let keys = list_keys(names).unwrap_or_default();
            Value::Array(merge_keyed_list(li, ai, &keys, names))
        }
        _ => applied.clone(),
    }
}

/// Merge a keyed list the way structured-merge-diff's `mergingWalker.visitListItems` does: the
/// items the applied configuration names come in its order, live items it does not name keep
/// their place around them.
fn merge_keyed_list(
    live: &[Value],
    applied: &[Value],
    keys: &[String],
    names: &mut Vec<String>,
) -> Vec<Value> {
    use std::collections::{HashMap, HashSet, VecDeque};
    let pe = |v: &Value, i: usize, side: &str| {
        item_key(v, keys)
            .map(|k| key_pe(&k))
            .unwrap_or_else(|| format!("{side}{i}"))
    };
    let lpes: Vec<String> = live
        .iter()
        .enumerate()
        .map(|(i, v)| pe(v, i, "live:"))
        .collect();
    let rpes: Vec<String> = applied
        .iter()
        .enumerate()
        .map(|(i, v)| pe(v, i, "applied:"))
        .collect();
    let mut lidx: HashMap<&str, usize> = HashMap::new();
    for (i, p) in lpes.iter().enumerate() {
        lidx.entry(p.as_str()).or_insert(i);
    }
    let mut ridx: HashMap<&str, usize> = HashMap::new();
    for (i, p) in rpes.iter().enumerate() {
        ridx.entry(p.as_str()).or_insert(i);
    }
    let mut shared: VecDeque<&str> = rpes
        .iter()
        .map(String::as_str)
        .filter(|p| lidx.contains_key(p))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(live.len().max(applied.len()));
    let merge_item = |l: Option<&Value>, r: Option<&Value>, names: &mut Vec<String>| match (l, r) {
        (Some(l), Some(r)) => merge_apply(l, r, names),
        (Some(l), None) => l.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => Value::Null,
    };
    let (mut li, mut ri) = (0, 0);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let p = lpes[li].as_str();
            if p == rpes[ri] {
                merged_rhs.insert(p);
                let l = lidx.get(p).map(|&i| &live[i]);
                let r = ridx.get(p).map(|&i| &applied[i]);
                out.push(merge_item(l, r, names));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if ridx.contains_key(p) && next_shared.is_some_and(|n| n != p) {
                // A shared item, but not the one due in this round.
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let p = lpes[li].as_str();
            if !ridx.contains_key(p) {
                out.push(live[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(p) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let p = rpes[ri].as_str();
            merged_rhs.insert(p);
            let l = lidx.get(p).map(|&i| &live[i]);
            out.push(merge_item(l, Some(&applied[ri]), names));
            ri += 1;
            if next_shared == Some(p) {
                next_shared = shared.pop_front();
            }
        }
    }
    out
}

fn item_matches(item: &Value, pe: &str) -> bool {
    if let Some(k) = pe.strip_prefix("k:") {
        let Ok(want) = serde_json::from_str::<Map<String, Value>>(k) else {
            return false;
        };
        let Some(obj) = item.as_object() else {
            return false;
        };
        want.iter().all(|(kk, kv)| match obj.get(kk) {
            Some(v) => v == kv,
            None => super::schema::key_default(kk).as_ref() == Some(kv),
        })
    } else if let Some(v) = pe.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|want| *item == want)
    } else {
        false
    }
}

/// The value at `path`, if present.
pub fn get_path<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for pe in path {
        cur = if let Some(f) = pe.strip_prefix("f:") {
            cur.as_object()?.get(f)?
        } else if let Some(i) = pe.strip_prefix("i:") {
            cur.as_array()?.get(i.parse::<usize>().ok()?)?
        } else {
            cur.as_array()?.iter().find(|it| item_matches(it, pe))?
        };
    }
    Some(cur)
}

/// Remove the value at `path`; returns whether something was removed.
pub fn remove_path(obj: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let mut cur = obj;
    for pe in parent {
        let next = if let Some(f) = pe.strip_prefix("f:") {
            cur.as_object_mut().and_then(|m| m.get_mut(f))
        } else if let Some(i) = pe.strip_prefix("i:") {
            let idx = i.parse::<usize>().ok();
            cur.as_array_mut()
                .and_then(|a| idx.and_then(|i| a.get_mut(i)))
        } else {
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|it| item_matches(it, pe)))
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        cur.as_object_mut().is_some_and(|m| m.remove(f).is_some())
    } else if let Some(a) = cur.as_array_mut() {
        let before = a.len();
        a.retain(|it| !item_matches(it, last));
        a.len() != before
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(image: &str) -> Value {
        json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {
            "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}}})
    }

    #[test]
    fn apply_set_uses_merge_keys_and_atomic_selector() {
        let fs = apply_set(&deploy("nginx:1")).unwrap();
        assert_eq!(
            fs.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
        );
    }

    #[test]
    fn merge_apply_merges_containers_by_name() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let applied = json!({"spec": {"containers": [{"name": "b", "image": "z"}]}});
        let merged = merge_apply(&live, &applied, &mut vec![]);
        assert_eq!(merged["spec"]["containers"][0]["image"], "x");
        assert_eq!(merged["spec"]["containers"][1]["image"], "z");
    }

    #[test]
    fn merged_keyed_lists_take_the_applied_order_around_other_items() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}, {"name": "c"}]}});
        let applied =
            json!({"spec": {"containers": [{"name": "c"}, {"name": "a"}, {"name": "n"}]}});
        let merged = merge_apply(&live, &applied, &mut names(&[]));
        let order: Vec<&str> = merged["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        // x (not in the configuration) keeps its place; b too; c, a, n follow the configuration.
        assert_eq!(order, ["x", "b", "c", "a", "n"]);
    }

    #[test]
    fn update_sets_report_changed_and_removed() {
        let (changed, removed) =
            update_sets(Some(&deploy("nginx:1")), &json!({"spec": {"replicas": 2}}));
        assert!(changed.is_empty());
        assert!(removed.contains(&["f:spec".into(), "f:template".into()]));
        let (changed, _) = update_sets(Some(&deploy("nginx:1")), &deploy("nginx:2"));
        let p: Vec<String> = vec![
            "f:spec".into(),
            "f:template".into(),
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"web\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(changed.paths(), vec![p.clone()]);
        let mut obj = deploy("nginx:1");
        assert_eq!(get_path(&obj, &p), Some(&json!("nginx:1")));
        assert!(remove_path(&mut obj, &p[..5]));
        assert_eq!(obj["spec"]["template"]["spec"]["containers"], json!([]));
    }
}
