//! `metadata.managedFields` bookkeeping for apply (operation `Apply`) and every other write
//! (operation `Update`), following the API server's field manager.

use serde_json::{Value, json};

use super::fieldset::{FieldSet, display_path};
use super::walk::{apply_set, get_path, merge_apply, remove_path, tracked_content, update_sets};

/// One `managedFields` entry with its parsed field set.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the manager wrote with.
    pub api_version: String,
    /// RFC 3339 time of the last change of this manager's set.
    pub time: String,
    /// `status` for writes through the status subresource.
    pub subresource: String,
    /// The owned fields.
    pub set: FieldSet,
}

impl Entry {
    fn same_identity(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// Parse `metadata.managedFields` of an object.
pub fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e.get("manager").is_some())
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or("Update").into(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                    time: e["time"].as_str().unwrap_or_default().into(),
                    subresource: e["subresource"].as_str().unwrap_or_default().into(),
                    set: FieldSet::from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Write entries back into `metadata.managedFields`, dropping empty ones, in the API server's order.
pub fn store_entries(obj: &mut Value, mut list: Vec<Entry>) {
    list.retain(|e| !e.set.is_empty());
    list.sort_by(|p, q| {
        (
            &p.operation,
            &p.time,
            &p.manager,
            &p.api_version,
            &p.subresource,
        )
            .cmp(&(
                &q.operation,
                &q.time,
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
    });
    let rendered: Vec<Value> = list
        .iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.set.to_fields_v1(),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if rendered.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(rendered));
        }
    }
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation.
    pub operation: String,
    /// Its apiVersion.
    pub api_version: String,
    /// `.spec.replicas` style path.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone)]
pub enum ApplyError {
    /// Fields other managers own with different values (409 unless forced).
    Conflicts(Vec<Conflict>),
    /// The configuration is structurally invalid (duplicate keys, items without keys).
    Invalid(Vec<String>),
}

/// Who is writing and how.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// `status` for the status subresource, else empty.
    pub subresource: &'a str,
    /// Current time, RFC 3339.
    pub now: &'a str,
    /// Fields the write resets: neither applied nor owned ([`super::reset::reset_fields`]).
    pub reset: &'a [super::reset::FieldPath],
}

/// Server-side apply of `applied` onto `live` (an empty object when creating).
///
/// Returns the merged object with updated managedFields, or the conflicts when another manager
/// owns a field the configuration would change and `force` is off.
pub fn apply(
    live: &Value,
    applied: &Value,
    w: &Writer<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    let mut list = entries(live);
    let applied_content = tracked_content(applied, w.reset);
    let new_set = apply_set(&applied_content).map_err(ApplyError::Invalid)?;
    let live_content = tracked_content(live, w.reset);
    let me = |e: &Entry| e.same_identity(w.manager, "Apply", w.subresource);

    let mut conflicts = Vec::new();
    let mut conflict_paths = Vec::new();
    for p in new_set.leaf_paths() {
        let Some(lv) = get_path(&live_content, &p) else {
            continue;
        };
        if get_path(&applied_content, &p) == Some(lv) {
            continue;
        }
        for e in list.iter().filter(|e| !me(e) && e.set.contains(&p)) {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                field: display_path(&p),
            });
            conflict_paths.push(p.clone());
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(ApplyError::Conflicts(conflicts));
        }
        for e in list.iter_mut().filter(|e| !me(e)) {
            for p in &conflict_paths {
                e.set.remove(p);
            }
        }
    }

    let mut merged = merge_apply(live, &applied_content, &mut Vec::new());
    let old_set = list
        .iter()
        .find(|e| me(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut others = FieldSet::default();
    for e in list.iter().filter(|e| !me(e)) {
        others.union(&e.set);
    }
    for p in old_set.difference(&new_set).paths() {
        if !others.contains_prefix(&p) && !new_set.contains_prefix(&p) {
            remove_path(&mut merged, &p);
            // A list whose last item went is removed with it (structured-merge-diff's
            // removingWalker leaves no empty list behind).
            if let Some((_, parent)) = p.split_last()
                && !parent.is_empty()
                && get_path(&merged, parent)
                    .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
            {
                remove_path(&mut merged, parent);
            }
        }
    }

    match list.iter_mut().find(|e| me(e)) {
        Some(e) => {
            let mut a = e.set.clone();
            let mut b = new_set.clone();
            a.prune();
            b.prune();
            if a != b {
                e.set = new_set;
                e.time = w.now.to_string();
            }
            e.api_version = w.api_version.to_string();
        }
        None => list.push(Entry {
            manager: w.manager.into(),
            operation: "Apply".into(),
            api_version: w.api_version.into(),
            time: w.now.into(),
            subresource: w.subresource.into(),
            set: new_set,
        }),
    }
    store_entries(&mut merged, list);
    Ok(merged)
}

/// Record an `Update` by `w` that turned `old` (None on create) into `new`: the writer gains the
/// fields it changed, and every other manager loses them.
pub fn update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let mut list = old.map(entries).unwrap_or_default();
    let old_cmp = old.map(|o| tracked_content(o, w.reset));
    let new_content = tracked_content(new, w.reset);
    let (changed, removed) = update_sets(old_cmp.as_ref(), &new_content);
    let removed_paths = removed.paths();
    let me = |e: &Entry| e.same_identity(w.manager, "Update", w.subresource);
    for e in list.iter_mut().filter(|e| !me(e)) {
        e.set = e.set.difference(&changed);
        for p in &removed_paths {
            e.set.remove_subtree(p);
        }
    }
    let pos = list.iter().position(me);
    let mut set = pos.map(|i| list[i].set.clone()).unwrap_or_default();
    let before = set.clone();
    set.union(&changed);
    for p in &removed_paths {
        set.remove_subtree(p);
    }
    set.prune();
    let mut before_pruned = before;
    before_pruned.prune();
    match pos {
        Some(i) => {
            if set != before_pruned {
                list[i].time = w.now.to_string();
                list[i].set = set;
            }
            list[i].api_version = w.api_version.to_string();
        }
        None if !set.is_empty() => list.push(Entry {
            manager: w.manager.into(),
            operation: "Update".into(),
            api_version: w.api_version.into(),
            time: w.now.into(),
            subresource: w.subresource.into(),
            set,
        }),
        None => {}
    }
    store_entries(new, list);
}

/// The conflict message the API server sends (and kubectl prints).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    let who = |c: &Conflict| {
        if c.operation == "Update" {
            format!("\"{}\" using {}", c.manager, c.api_version)
        } else {
            format!("\"{}\"", c.manager)
        }
    };
    if conflicts.len() == 1 {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            who(&conflicts[0]),
            conflicts[0].field
        );
    }
    let mut managers: Vec<String> = conflicts.iter().map(who).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in &managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| who(c) == *m) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The `details.causes` of a conflict Status.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<Value> {
    conflicts
        .iter()
        .map(|c| {
            let msg = if c.operation == "Update" {
                format!("conflict with \"{}\" using {}", c.manager, c.api_version)
            } else {
                format!("conflict with \"{}\"", c.manager)
            };
            json!({"type": "FieldManagerConflict", "message": msg, "field": c.field})
        })
        .collect()
}
