//! Sets of field paths in the `fieldsV1` format of `metadata.managedFields`.
//!
//! A path element is kept as its fieldsV1 key string: `f:name` (a field), `k:{"name":"web"}` (an
//! item of a list keyed by its merge keys), `v:"x"` (an item of a set list). A node is *owned*
//! when the path to it is in the set: a leaf `{}` or an intermediate node carrying `".": {}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A tree of owned field paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// Whether the path leading to this node is itself in the set.
    pub owned: bool,
    /// Child path elements.
    pub children: BTreeMap<String, FieldSet>,
}

/// One path: a list of fieldsV1 path elements.
pub type Path = Vec<String>;

impl FieldSet {
    /// Parse a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut fs = FieldSet::default();
        if let Some(m) = v.as_object() {
            if m.is_empty() {
                fs.owned = true;
            }
            for (k, child) in m {
                if k == "." {
                    fs.owned = true;
                } else {
                    fs.children
                        .insert(k.clone(), FieldSet::from_fields_v1(child));
                }
            }
        }
        fs
    }

    /// Render as a `fieldsV1` object (`.` first, then elements in sorted order).
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.owned && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            if !c.is_empty() {
                m.insert(k.clone(), c.to_fields_v1());
            }
        }
        Value::Object(m)
    }

    /// True when no path at all is owned.
    pub fn is_empty(&self) -> bool {
        !self.owned && self.children.values().all(|c| c.is_empty())
    }

    /// Mark `path` as owned.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.owned = true;
    }

    /// Whether `path` itself is owned.
    pub fn contains(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| n.owned)
    }

    /// Whether `path` or anything below it is owned.
    pub fn contains_prefix(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    fn node(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    /// Drop `path` and everything below it.
    pub fn remove_subtree(&mut self, path: &[String]) {
        if let Some((last, parent)) = path.split_last() {
            let mut node = self;
            for pe in parent {
                match node.children.get_mut(pe) {
                    Some(n) => node = n,
                    None => return,
                }
            }
            node.children.remove(last);
        } else {
            *self = FieldSet::default();
        }
    }

    /// Un-own exactly `path`, keeping anything owned below it.
    pub fn remove(&mut self, path: &[String]) {
        let mut node = self;
        for pe in path {
            match node.children.get_mut(pe) {
                Some(n) => node = n,
                None => return,
            }
        }
        node.owned = false;
    }

    /// Add every path of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.owned |= other.owned;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// Paths owned here and not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            owned: self.owned && !other.owned,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Every owned path, parents before children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.collect(&mut cur, &mut out);
        out
    }

    /// Owned paths that have nothing owned below them (the values conflicts are judged on).
    pub fn leaf_paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.collect(&mut cur, &mut out);
        out.retain(|p| {
            self.node(p)
                .is_some_and(|n| n.children.values().all(FieldSet::is_empty))
        });
        out
    }

    fn collect(&self, cur: &mut Path, out: &mut Vec<Path>) {
        if self.owned {
            out.push(cur.clone());
        }
        for (k, c) in &self.children {
            cur.push(k.clone());
            c.collect(cur, out);
            cur.pop();
        }
    }

    /// Drop empty branches so equality compares only owned paths.
    pub fn prune(&mut self) {
        for c in self.children.values_mut() {
            c.prune();
        }
        self.children.retain(|_, c| !c.is_empty());
    }
}

/// `f:name`.
pub fn field_pe(name: &str) -> String {
    format!("f:{name}")
}

/// `k:{"containerPort":80,"protocol":"TCP"}`: merge keys in sorted order, as the API server writes them.
pub fn key_pe(keys: &[(String, Value)]) -> String {
    let mut sorted: Vec<&(String, Value)> = keys.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("k:{{{}}}", parts.join(","))
}

/// Human form of a path as conflict messages print it: `.spec.template.spec.containers[name="web"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_fields_v1_with_dot_entries() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}});
        let fs = FieldSet::from_fields_v1(&v);
        assert!(fs.contains(&["f:metadata".into(), "f:labels".into()]));
        assert!(!fs.contains(&["f:metadata".into()]));
        assert_eq!(fs.to_fields_v1(), v);
    }

    #[test]
    fn difference_keeps_children_not_in_other() {
        let a = FieldSet::from_fields_v1(&json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        let b = FieldSet::from_fields_v1(&json!({"f:spec": {"f:a": {}}}));
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:spec": {"f:b": {}}})
        );
    }

    #[test]
    fn key_elements_are_sorted_and_displayed_like_the_api_server() {
        let pe = key_pe(&[
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(pe, r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        let p = vec![
            "f:spec".to_string(),
            "f:containers".into(),
            r#"k:{"name":"web"}"#.into(),
            "f:image".into(),
        ];
        assert_eq!(display_path(&p), r#".spec.containers[name="web"].image"#);
    }
}
