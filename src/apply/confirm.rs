//! The server's verdict on planned changes: a server-side dry-run apply of
//! each object the no-op decision could not clear, compared with live.
//!
//! The server computes the result with its own defaults, canonical forms and
//! ownership rules, so the diff is exact where keelson's local normaliser is
//! only a best effort. The fields only manual managers own are then removed
//! from the result, because the apply takes them over first
//! ([`crate::plan::takeover`]). One request per doubtful object: an
//! environment nobody touched makes none.

use std::collections::HashMap;

use futures::stream::{self, StreamExt};
use serde_json::Value as Json;

use super::{ApplyOptions, server_dry_run};
use crate::observe::{Cluster, ClusterError};
use crate::plan::fields::{FieldTree, pointer_of};
use crate::plan::ownership::{Owners, is_exempt};
use crate::plan::takeover::drop_manual_only;
use crate::plan::{Action, Change, FIELD_MANAGER, LiveEnv, Plan, diff, immutable};
use crate::render::objects::APPLIED_HASH_ANNOTATION;

/// Replace the local verdict of every change marked for confirmation with
/// the server's, and (with `creates`) check every create with the server
/// too. A change the server refuses is marked refused: its apply step will
/// not start. Errors reaching the server fail the whole confirmation.
pub async fn confirm<C: Cluster>(
    cluster: &C,
    plan: &mut Plan,
    live: &LiveEnv,
    opts: &ApplyOptions,
    creates: bool,
) -> Result<(), ClusterError> {
    let todo: Vec<usize> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.intent.confirm || (creates && c.action == Action::Create))
        .filter(|(_, c)| c.apply.is_some())
        .map(|(i, _)| i)
        .collect();
    if todo.is_empty() {
        // Nothing to ask: do not index thousands of live objects.
        return Ok(());
    }
    let by_key: HashMap<_, &Json> = live
        .owned
        .iter()
        .chain(&live.foreign)
        .map(|o| (crate::plan::ObjectId::of(o), o))
        .map(|(id, o)| {
            (
                (
                    id.group().to_string(),
                    id.kind.clone(),
                    id.namespace.clone(),
                    id.name.clone(),
                ),
                o,
            )
        })
        .collect();
    let results: Vec<(usize, Result<Json, ClusterError>)> = stream::iter(todo)
        .map(|i| {
            let c = &plan.changes[i];
            async move {
                let body = c.apply.as_ref().expect("filtered");
                (i, server_dry_run(cluster, &c.id, body, opts).await)
            }
        })
        .buffer_unordered(opts.parallelism.max(1))
        .collect()
        .await;
    let manual = plan.manual_managers.clone();
    for (i, r) in results {
        let c = &mut plan.changes[i];
        let result = match r {
            Ok(r) => r,
            Err(e) if c.action == Action::Update && e.is_immutable() => {
                // The server's message quotes the whole new value (a Job's
                // template as one JSON line); the fields say enough.
                let fields = e.immutable_fields().unwrap_or_default().to_vec();
                let (note, refused) = if fields.is_empty() {
                    (
                        format!("the server refuses this change (dry run): {e}"),
                        e.to_string(),
                    )
                } else {
                    (
                        "the server refuses this change (dry run, 422 Invalid)".to_string(),
                        format!("{} (422 Invalid)", immutable::describe(&fields)),
                    )
                };
                immutable::settle(c, &fields, note, refused);
                continue;
            }
            Err(e) if refusal(&e, c.action) => {
                c.notes
                    .push(format!("the server refuses this change (dry run): {e}"));
                c.intent.refused = Some(e.to_string());
                continue;
            }
            Err(ClusterError::UnknownKind(_)) | Err(ClusterError::Api { code: 404, .. })
                if c.action == Action::Create =>
            {
                // Its namespace or CRD comes in an earlier step.
                continue;
            }
            Err(e) => return Err(e),
        };
        if c.action == Action::Create {
            continue;
        }
        let id = &c.id;
        let l = by_key
            .get(&(
                id.group().to_string(),
                id.kind.clone(),
                id.namespace.clone(),
                id.name.clone(),
            ))
            .copied();
        let Some(l) = l else { continue };
        judge(c, l, result, &manual);
    }
    Ok(())
}

/// Set a change's action, diff and expectations from the server's dry-run
/// `result` against `live`.
fn judge(c: &mut Change, live: &Json, mut result: Json, manual: &[String]) {
    drop_manual_only(&mut result, FIELD_MANAGER, manual, &c.intent.exempt);
    c.intent.removed = removed_paths(live, &result, manual, &c.intent.exempt);
    let before = diff::for_display(live);
    let mut after = diff::for_display(&result);
    diff::align_order(&mut after, &before);
    let adopting = c.notes.iter().any(|n| n.starts_with("adopting"));
    if before == after && !adopting {
        c.action = Action::Unchanged;
        c.diff.clear();
        c.intent.removed.clear();
        if hash(live) == hash(&result) {
            c.apply = None;
        } else {
            c.notes.push(
                "no field changes; apply records keelson's applied hash (keelson.dev/applied-hash)"
                    .into(),
            );
            c.intent.expected = Some(after.into());
        }
    } else {
        c.action = Action::Update;
        c.diff = diff::unified(&c.id, Some(&before), Some(&after));
        c.intent.expected = Some(after.into());
    }
}

fn hash(o: &Json) -> Option<&str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
        .and_then(Json::as_str)
}

/// The field paths keelson or manual managers own in `live` that the result
/// no longer has: what the apply promises to remove. Apply checks that each
/// is gone from what it wrote.
fn removed_paths(
    live: &Json,
    result: &Json,
    manual: &[String],
    exempt: &[String],
) -> Vec<Vec<String>> {
    let owners = Owners::of(live, FIELD_MANAGER, manual);
    let mut set: FieldTree = owners.keelson.unwrap_or_default();
    for (_, s) in &owners.manual {
        set.union(s);
    }
    set.leaves()
        .into_iter()
        .filter(|leaf| {
            pointer_of(live, leaf).is_some_and(|p| !is_exempt(&p, exempt))
                && pointer_of(result, leaf).is_none()
        })
        .collect()
}

/// Whether a dry-run error means the change itself cannot be applied (as
/// opposed to the server being unreachable or overloaded).
fn refusal(e: &ClusterError, action: Action) -> bool {
    match e {
        ClusterError::Api { code, .. } if *code == 404 => action != Action::Create,
        ClusterError::Api { .. } => !e.retryable(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Intent, ObjectId};
    use serde_json::json;

    fn change(body: Json) -> Change {
        let mut c = Change::new(Action::Update, ObjectId::of(&body));
        c.apply = Some(body.into());
        c.intent = Intent {
            confirm: true,
            ..Intent::default()
        };
        c
    }

    fn cm(data: Json, hash: &str, managed: Json) -> Json {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n", "resourceVersion": "3",
                "annotations": {APPLIED_HASH_ANNOTATION: hash}, "managedFields": managed},
            "data": data})
    }

    #[test]
    fn the_server_result_decides_and_manual_entries_are_removed() {
        let managed = json!([
            {"manager": "keelson", "operation": "Apply", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:extra": {}}}}
        ]);
        let live = cm(json!({"a": "1", "extra": "x"}), "h1", managed.clone());
        // The dry run keeps `extra` (kubectl-edit owns it): the takeover
        // removes it, and the plan says so.
        let result = cm(json!({"a": "1", "extra": "x"}), "h1", managed);
        let mut c = change(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}),
        );
        judge(
            &mut c,
            &live,
            result,
            &crate::plan::ownership::default_manual_managers(),
        );
        assert_eq!(c.action, Action::Update);
        assert!(c.diff.contains("-  extra: x"), "{}", c.diff);
        assert_eq!(
            c.intent.removed,
            vec![vec!["f:data".to_string(), "f:extra".to_string()]]
        );
        assert!(c.intent.expected.is_some());
    }

    #[test]
    fn no_difference_but_a_stale_hash_is_unchanged_and_recorded() {
        let managed = json!([{"manager": "keelson", "operation": "Apply", "fieldsV1": {"f:data": {"f:a": {}}}}]);
        let live = cm(json!({"a": "1"}), "old", managed.clone());
        let result = cm(json!({"a": "1"}), "new", managed.clone());
        let mut c = change(json!({}));
        judge(&mut c, &live, result, &[]);
        assert_eq!(c.action, Action::Unchanged);
        assert!(c.apply.is_some(), "the hash is recorded");
        let mut c = change(json!({}));
        judge(&mut c, &live, live.clone(), &[]);
        assert_eq!(c.action, Action::Unchanged);
        assert!(c.apply.is_none(), "nothing to write");
        assert!(c.diff.is_empty());
    }
}
