//! Non-apply patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch (approximated as a merge patch whose keyed lists merge by their merge keys).

use serde_json::Value;

use crate::ssa::schema::{item_key, list_keys};

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(pm) => {
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, pv) in pm {
                if pv.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), pv);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

/// Strategic merge patch: like a merge patch, but lists with merge keys merge item by item and
/// honour `$patch: delete` / `$patch: replace`; other `$` directives are dropped.
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Value {
    smp(target, patch, &mut Vec::new())
}

fn smp(target: &Value, patch: &Value, names: &mut Vec<String>) -> Value {
    match patch {
        Value::Object(pm) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = pm.clone();
                p.remove("$patch");
                return Value::Object(p);
            }
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, pv) in pm {
                if k.starts_with('$') {
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = smp(out.get(k).unwrap_or(&Value::Null), pv, names);
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(items) => match (list_keys(names), target.as_array()) {
            (Some(keys), Some(live)) => {
                let mut out = live.clone();
                for item in items {
                    let key = item_key(item, &keys);
                    let pos = key.as_ref().and_then(|k| {
                        out.iter()
                            .position(|l| item_key(l, &keys).as_ref() == Some(k))
                    });
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(p), true) => {
                            out.remove(p);
                        }
                        (None, true) => {}
                        (Some(p), false) => out[p] = smp(&out[p], item, names),
                        (None, false) => out.push(smp(&Value::Null, item, names)),
                    }
                }
                Value::Array(out)
            }
            _ => Value::Array(items.iter().map(|i| smp(&Value::Null, i, names)).collect()),
        },
        _ => patch.clone(),
    }
}

/// Why a JSON patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum JsonPatchError {
    /// The patch document is not a list of operations.
    #[error("the patch is not a JSON array of operations")]
    NotAnArray,
    /// An operation lacks a field it needs, or names an unknown op.
    #[error("invalid operation: {0}")]
    BadOp(String),
    /// A path does not resolve in the document.
    #[error("{0}")]
    Path(String),
    /// A `test` operation failed.
    #[error("testing value {0} failed")]
    TestFailed(String),
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let ops = patch.as_array().ok_or(JsonPatchError::NotAnArray)?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"]
            .as_str()
            .ok_or_else(|| JsonPatchError::BadOp(op.to_string()))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| JsonPatchError::BadOp(op.to_string()))?;
        match kind {
            "add" => add(
                &mut doc,
                path,
                op.get("value").cloned().unwrap_or(Value::Null),
            )?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(
                    &mut doc,
                    path,
                    op.get("value").cloned().unwrap_or(Value::Null),
                )?;
            }
            "move" | "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or_else(|| JsonPatchError::BadOp(op.to_string()))?;
                let v = if kind == "move" {
                    remove(&mut doc, from)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| JsonPatchError::Path(missing(from)))?
                };
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != op.get("value") {
                    return Err(JsonPatchError::TestFailed(path.to_string()));
                }
            }
            other => return Err(JsonPatchError::BadOp(format!("unknown op {other:?}"))),
        }
    }
    Ok(doc)
}

fn missing(path: &str) -> String {
    format!("doc is missing path: \"{path}\": missing value")
}

fn split(path: &str) -> Result<(&str, String), JsonPatchError> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| JsonPatchError::Path(missing(path)))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..idx], last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let p = doc
        .pointer_mut(parent)
        .ok_or_else(|| JsonPatchError::Path(missing(path)))?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| JsonPatchError::Path(missing(path)))?;
                if i > a.len() {
                    return Err(JsonPatchError::Path(missing(path)));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(JsonPatchError::Path(missing(path))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, JsonPatchError> {
    let (parent, last) = split(path)?;
    let p = doc
        .pointer_mut(parent)
        .ok_or_else(|| JsonPatchError::Path(missing(path)))?;
    match p {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| JsonPatchError::Path(missing(path))),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| JsonPatchError::Path(missing(path)))?;
            if i >= a.len() {
                return Err(JsonPatchError::Path(missing(path)));
            }
            Ok(a.remove(i))
        }
        _ => Err(JsonPatchError::Path(missing(path))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_nulls() {
        let out = merge_patch(
            &json!({"a": 1, "b": {"c": 2, "d": 3}}),
            &json!({"b": {"c": null}, "e": [1]}),
        );
        assert_eq!(out, json!({"a": 1, "b": {"d": 3}, "e": [1]}));
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}});
        let out = strategic_merge_patch(&live, &patch);
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "b", "image": "z"}]}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let doc = json!({"a": [1, 2], "b": {"c": 1}});
        let patch = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 5},
            {"op": "test", "path": "/b/c", "value": 5},
            {"op": "remove", "path": "/a/0"}
        ]);
        assert_eq!(
            json_patch(&doc, &patch).unwrap(),
            json!({"a": [2, 3], "b": {"c": 5}})
        );
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}
