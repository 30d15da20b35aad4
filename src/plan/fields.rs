//! Server-side apply field sets (`metadata.managedFields[].fieldsV1`).
//!
//! A field set is a trie of path elements as the API server writes them
//! (structured-merge-diff's `fieldpath.Set` in its JSON form): `f:<name>` for
//! a map key, `k:<json>` for an item of a keyed list (`containers`, `env`,
//! `ports`…) identified by its key fields, `v:<json>` for an item of a set
//! list (`finalizers`), `i:<n>` for an index. A node is a *member* when it is
//! owned itself: a leaf (`{}`) or a node marked with `"."`; other nodes are
//! only prefixes of owned paths.
//!
//! Keelson reads these sets to decide, without comparing values, whether an
//! object is still as it applied it (see [`super::ownership`]), and writes
//! them back to take manual managers' fields over (see [`super::takeover`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

/// A set of owned field paths, keyed as in fieldsV1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTree {
    member: bool,
    children: BTreeMap<String, FieldTree>,
}

impl FieldTree {
    /// Parse a fieldsV1 object. `k:` and `v:` keys are re-serialised
    /// canonically (sorted keys, compact) so lookups do not depend on the
    /// server's key order.
    pub fn parse(v: &Json) -> FieldTree {
        let mut t = FieldTree::default();
        let Json::Object(m) = v else { return t };
        if m.is_empty() {
            t.member = true;
            return t;
        }
        for (k, child) in m {
            if k == "." {
                t.member = true;
                continue;
            }
            t.children.insert(canonical_key(k), FieldTree::parse(child));
        }
        t
    }

    /// The fieldsV1 JSON of this set (what `managedFields` holds).
    pub fn to_fields_v1(&self) -> Json {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Json::Object(Map::new()));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Json::Object(m)
    }

    /// Add every path of `other` to this set.
    pub fn union(&mut self, other: &FieldTree) {
        self.member |= other.member;
        for (k, v) in &other.children {
            self.children.entry(k.clone()).or_default().union(v);
        }
    }

    /// The paths of this set that `other` does not own.
    pub fn difference(&self, other: Option<&FieldTree>) -> FieldTree {
        let Some(other) = other else {
            return self.clone();
        };
        let mut out = FieldTree {
            member: false,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = c.difference(other.children.get(k));
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        // A map or item marked `.` whose every owned field `other` owns too
        // holds nothing of its own: the mark alone is not a difference.
        out.member =
            self.member && !other.member && (self.children.is_empty() || !out.children.is_empty());
        out
    }

    /// The set holding `sub` at `path` and nothing else.
    pub fn rooted(path: &[String], sub: FieldTree) -> FieldTree {
        path.iter().rev().fold(sub, |t, k| {
            let mut parent = FieldTree::default();
            parent.children.insert(k.clone(), t);
            parent
        })
    }

    /// The subtree at `key`, if any path goes through it.
    pub fn child(&self, key: &str) -> Option<&FieldTree> {
        self.children.get(key)
    }

    /// The subtree at `path`.
    pub fn at(&self, path: &[String]) -> Option<&FieldTree> {
        path.iter().try_fold(self, |t, k| t.children.get(k))
    }

    /// Whether the node at `path` is owned itself.
    pub fn owns(&self, path: &[String]) -> bool {
        self.at(path).is_some_and(|t| t.member)
    }

    /// The child keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.children.keys().map(String::as_str)
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Whether this node is owned itself (a leaf or a node marked `.`).
    pub fn is_member(&self) -> bool {
        self.member
    }

    /// The owned leaves (members without owned children), as paths.
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut at = Vec::new();
        self.collect_leaves(&mut at, &mut out);
        out
    }

    fn collect_leaves(&self, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.children.is_empty() {
            if self.member {
                out.push(at.clone());
            }
            return;
        }
        for (k, c) in &self.children {
            at.push(k.clone());
            c.collect_leaves(at, out);
            at.pop();
        }
    }

    /// Keep only the paths `keep` accepts; `keep` sees each path once, and
    /// a rejected node is dropped with everything under it.
    pub fn retain(&mut self, keep: &mut dyn FnMut(&[String]) -> bool) {
        let mut at = Vec::new();
        self.retain_at(&mut at, keep);
    }

    fn retain_at(&mut self, at: &mut Vec<String>, keep: &mut dyn FnMut(&[String]) -> bool) {
        let keys: Vec<String> = self.children.keys().cloned().collect();
        for k in keys {
            at.push(k.clone());
            if keep(at) {
                let c = self.children.get_mut(&k).expect("key exists");
                c.retain_at(at, keep);
                if c.is_empty() {
                    self.children.remove(&k);
                }
            } else {
                self.children.remove(&k);
            }
            at.pop();
        }
    }
}

/// A fieldsV1 key with its `k:`/`v:` JSON in canonical form (any other
/// key as it is).
pub fn canonical_key(k: &str) -> String {
    for prefix in ["k:", "v:"] {
        if let Some(json) = k.strip_prefix(prefix)
            && let Ok(j) = serde_json::from_str::<Json>(json)
        {
            return format!("{prefix}{}", canonical(&j));
        }
    }
    k.to_string()
}

/// JSON with sorted keys, compact: the form `k:` keys are compared in.
pub fn canonical(v: &Json) -> String {
    fn sort(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let sorted: BTreeMap<&String, Json> = m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Json::Object(out)
            }
            Json::Array(a) => Json::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap_or_default()
}

/// The merge key fields of a list, by its field name and items; `None` for
/// atomic lists. Used only where no field set says how the server keys a
/// list (offline plans, the local normaliser); the no-op decision reads the
/// keys from keelson's own field set instead.
pub fn merge_keys(list_field: &str, items: &[Json]) -> Option<&'static [&'static str]> {
    match list_field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "hostAliases" => Some(&["ip"]),
        "topologySpreadConstraints" => Some(&["topologyKey", "whenUnsatisfiable"]),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => {
            Some(&["containerPort", "protocol"])
        }
        "ports" if items.iter().any(|i| i.get("port").is_some()) => Some(&["port", "protocol"]),
        _ => None,
    }
}

/// The fieldsV1 key of a list item under `keys`. A missing `protocol` is
/// `TCP`, the default the server fills in before it keys the item.
pub fn item_key(item: &Json, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                m.insert((*k).to_string(), v.clone());
            }
            None if *k == "protocol" => {
                m.insert("protocol".into(), Json::String("TCP".into()));
            }
            None => {}
        }
    }
    format!("k:{}", canonical(&Json::Object(m)))
}

/// The key field names of a keyed list, read from a field set's `k:`
/// children (`k:{"containerPort":80,"protocol":"TCP"}` →
/// `["containerPort", "protocol"]`); `None` when the set holds no items.
pub fn keys_in(list: &FieldTree) -> Option<Vec<String>> {
    let k = list.keys().find(|k| k.starts_with("k:"))?;
    match serde_json::from_str::<Json>(&k[2..]) {
        Ok(Json::Object(m)) => Some(m.keys().cloned().collect()),
        _ => None,
    }
}

/// Whether a list item matches a `k:` key (its key fields are equal; a
/// missing `protocol` is `TCP`).
pub fn item_matches(item: &Json, key: &Map<String, Json>) -> bool {
    key.iter().all(|(k, v)| match item.get(k) {
        Some(iv) => iv == v,
        None => k == "protocol" && v == "TCP",
    })
}

/// The JSON pointer (RFC 6901) of a field path in `obj`, resolving list items
/// by their keys; `None` when the path is not in `obj`.
pub fn pointer_of(obj: &Json, path: &[String]) -> Option<String> {
    let mut at = obj;
    let mut out = String::new();
    for seg in path {
        let (next, token) = step(at, seg)?;
        out.push('/');
        out.push_str(&token.replace('~', "~0").replace('/', "~1"));
        at = next;
    }
    Some(out)
}

/// One step of a field path into `v`: the child and its pointer token.
fn step<'a>(v: &'a Json, seg: &str) -> Option<(&'a Json, String)> {
    if let Some(name) = seg.strip_prefix("f:") {
        return v.get(name).map(|c| (c, name.to_string()));
    }
    let items = v.as_array()?;
    let found = if let Some(key) = seg.strip_prefix("k:") {
        let key: Map<String, Json> = serde_json::from_str(key).ok()?;
        items.iter().position(|i| item_matches(i, &key))
    } else if let Some(value) = seg.strip_prefix("v:") {
        let value: Json = serde_json::from_str(value).ok()?;
        items.iter().position(|i| *i == value)
    } else if let Some(index) = seg.strip_prefix("i:") {
        index.parse::<usize>().ok().filter(|i| *i < items.len())
    } else {
        None
    }?;
    Some((&items[found], found.to_string()))
}

/// Remove the field at `path` from `obj`; returns whether it was there.
pub fn remove_path(obj: &mut Json, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let mut at = obj;
    for seg in parent {
        let Some((_, token)) = step(at, seg) else {
            return false;
        };
        at = match at {
            Json::Object(m) => m.get_mut(&token),
            Json::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .expect("step found it");
    }
    let Some((_, token)) = step(at, last) else {
        return false;
    };
    match at {
        Json::Object(m) => m.remove(&token).is_some(),
        Json::Array(a) => {
            let i: usize = token.parse().expect("index");
            a.remove(i);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_members_and_canonical_keys() {
        let t = FieldTree::parse(&json!({
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}
        }));
        let web = path(&[
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            &item_key(&json!({"name": "web"}), &["name"]),
        ]);
        assert!(t.owns(&web), "the item is marked `.`");
        assert!(!t.owns(&path(&["f:spec"])), "a prefix is not owned");
        assert!(t.owns(&path(&["f:spec", "f:replicas"])));
        let mut with = web.clone();
        with.push("f:image".into());
        assert!(t.owns(&with));
        assert_eq!(
            FieldTree::parse(&t.to_fields_v1()),
            t,
            "round trip through fieldsV1"
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = FieldTree::parse(&json!({"k:{\"protocol\":\"TCP\",\"port\":80}": {}}));
        let b = FieldTree::parse(&json!({"k:{\"port\":80,\"protocol\":\"TCP\"}": {}}));
        assert_eq!(a, b);
        assert_eq!(
            item_key(&json!({"port": 80}), &["port", "protocol"]),
            "k:{\"port\":80,\"protocol\":\"TCP\"}"
        );
    }

    #[test]
    fn difference_and_union_work_on_members() {
        let a = FieldTree::parse(
            &json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}),
        );
        let b = FieldTree::parse(
            &json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}),
        );
        let d = a.difference(Some(&b));
        assert_eq!(
            d.leaves(),
            vec![path(&["f:data", "f:b"])],
            "the labels map's mark alone is no difference"
        );
        let mut u = b.clone();
        u.union(&a);
        assert_eq!(u, a);
    }

    #[test]
    fn paths_resolve_to_pointers_by_item_keys() {
        let obj = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 5005, "name": "debug"}]},
            "metadata": {"labels": {"a/b": "1"}}});
        assert_eq!(
            pointer_of(
                &obj,
                &path(&[
                    "f:spec",
                    "f:ports",
                    "k:{\"port\":5005,\"protocol\":\"TCP\"}"
                ])
            )
            .as_deref(),
            Some("/spec/ports/1")
        );
        assert_eq!(
            pointer_of(&obj, &path(&["f:metadata", "f:labels", "f:a/b"])).as_deref(),
            Some("/metadata/labels/a~1b")
        );
        assert_eq!(pointer_of(&obj, &path(&["f:spec", "f:missing"])), None);
        let mut o = obj.clone();
        assert!(remove_path(
            &mut o,
            &path(&[
                "f:spec",
                "f:ports",
                "k:{\"port\":5005,\"protocol\":\"TCP\"}"
            ])
        ));
        assert_eq!(o["spec"]["ports"], json!([{"port": 80, "protocol": "TCP"}]));
    }

    #[test]
    fn retain_drops_rejected_subtrees() {
        let mut t = FieldTree::parse(&json!({"f:spec": {"f:replicas": {}, "f:paused": {}}}));
        t.retain(&mut |p| p.last().is_none_or(|k| k != "f:replicas"));
        assert_eq!(t.leaves(), vec![path(&["f:spec", "f:paused"])]);
    }

    #[test]
    fn list_keys_are_read_from_a_field_set() {
        let t = FieldTree::parse(&json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {}}));
        assert_eq!(
            keys_in(&t),
            Some(vec!["containerPort".to_string(), "protocol".to_string()])
        );
    }
}
