//! Honest outcomes: after each write, the object the server returned is
//! checked against what the plan promised, so keelson never reports a change
//! that did not happen (a field that stays because another manager still
//! owns it, a value a webhook or controller put back).

use serde_json::Value as Json;

use crate::plan::compare::project;
use crate::plan::fields::{FieldTree, pointer_of};
use crate::plan::{Change, diff};

/// Check the object `stored` (the server's answer to the write of `body`)
/// against the change: every field the plan removes is gone, and every
/// field the body sets holds the value the server's dry run planned. `Err`
/// names the fields that differ.
pub fn check(c: &Change, body: &Json, stored: &Json) -> Result<(), String> {
    // A removed field the server set again and nobody owns is a default
    // (the server fills it in on every write), not a field kept.
    let mut owned = FieldTree::default();
    for e in stored
        .pointer("/metadata/managedFields")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        owned.union(&FieldTree::parse(e.get("fieldsV1").unwrap_or(&Json::Null)));
    }
    let kept: Vec<String> = c
        .intent
        .removed
        .iter()
        .filter(|p| owned.at(p).is_some())
        .filter_map(|p| pointer_of(stored, p))
        .collect();
    if !kept.is_empty() {
        return Err(format!(
            "the server kept {} after the apply; another field manager still owns {}",
            kept.join(", "),
            if kept.len() == 1 { "it" } else { "them" }
        ));
    }
    if let Some(expected) = &c.intent.expected {
        let got = project(&diff::for_display(stored), body, None, "");
        let want = project(expected, body, None, "");
        let mut differ = Vec::new();
        differences(&want, &got, "", &mut differ);
        if !differ.is_empty() {
            differ.truncate(5);
            return Err(format!(
                "after the apply, live differs from what the server's dry run planned at {}",
                differ.join(", ")
            ));
        }
    }
    Ok(())
}

/// JSON pointers where `a` and `b` differ.
fn differences(a: &Json, b: &Json, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            for (k, v) in x {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match y.get(k) {
                    Some(w) => differences(v, w, &p, out),
                    None => out.push(p),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")));
            }
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(if at.is_empty() { "/".into() } else { at.into() }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, ObjectId};
    use serde_json::json;

    fn change() -> Change {
        let mut c = Change::new(
            Action::Update,
            ObjectId::of(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            ),
        );
        c.intent.removed = vec![vec!["f:data".into(), "f:old".into()]];
        c.intent.expected = Some(json!({"data": {"a": "2"}}).into());
        c
    }

    #[test]
    fn a_field_the_server_kept_is_reported() {
        let body = json!({"data": {"a": "2"}});
        let kept = json!({"metadata": {"managedFields": [{"manager": "kubectl-edit", "fieldsV1": {"f:data": {"f:old": {}}}}]},
            "data": {"a": "2", "old": "x"}});
        let e = check(&change(), &body, &kept).unwrap_err();
        assert!(e.contains("kept /data/old"), "{e}");
        let defaulted = json!({"data": {"a": "2", "old": "x"}});
        assert!(
            check(&change(), &body, &defaulted).is_ok(),
            "set again by the server, owned by nobody"
        );
        assert!(check(&change(), &body, &json!({"data": {"a": "2"}, "status": {}})).is_ok());
    }

    #[test]
    fn an_old_value_is_reported() {
        let body = json!({"data": {"a": "2"}});
        let e = check(&change(), &body, &json!({"data": {"a": "1"}})).unwrap_err();
        assert!(e.contains("/data/a"), "{e}");
    }
}
