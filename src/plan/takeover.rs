//! Taking manual managers' fields over, as Flux's `ssa` package and
//! kubectl's client-side-to-server-side migration (`csaupgrade`, kubectl
//! 1.26+) do.
//!
//! A field set by `kubectl edit`, `kubectl patch`, `kubectl label`, the
//! client-side `kubectl apply`… belongs to that manager, not to keelson, so
//! a server-side apply that omits it leaves it in place. Before applying,
//! keelson rewrites `metadata.managedFields` so that those managers' fields
//! are keelson's (merged into its `Apply` entry); the apply that follows then
//! removes whatever Git does not declare. Fields under an exempt pointer
//! (an `ignore` rule, a delegation) stay with their manager.

use serde_json::{Value as Json, json};

use super::fields::{FieldTree, pointer_of, remove_path};
use super::ownership::{CREATORS, Owners, drift_of, is_exempt};

/// The merge patch that moves manual managers' fields into `manager`'s
/// `Apply` entry, with the live `resourceVersion` as a precondition (a
/// concurrent write makes it fail with 409 Conflict, and the caller reads
/// again). `None` when no manual manager owns anything to move.
pub fn takeover_patch(
    live: &Json,
    manager: &str,
    manual: &[String],
    exempt: &[String],
) -> Option<Json> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let owners = Owners::of(live, manager, manual);
    let mut out: Vec<Json> = Vec::with_capacity(entries.len());
    let mut moved = FieldTree::default();
    let mut mine: Option<usize> = None;
    for e in entries {
        let name = e.get("manager").and_then(Json::as_str).unwrap_or_default();
        let op = e
            .get("operation")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let sub = e.get("subresource").and_then(Json::as_str).unwrap_or("");
        if name == manager && op == "Apply" && sub.is_empty() {
            mine = Some(out.len());
            out.push(e.clone());
            continue;
        }
        if sub == "status" || !manual.iter().any(|m| m == name) {
            out.push(e.clone());
            continue;
        }
        let set = FieldTree::parse(e.get("fieldsV1").unwrap_or(&Json::Null));
        let taken = taken_from(name, &set, &owners, live, exempt);
        if taken.is_empty() {
            out.push(e.clone());
            continue;
        }
        moved.union(&taken);
        let keep = set.difference(Some(&taken));
        if !keep.is_empty() {
            let mut e = e.clone();
            e["fieldsV1"] = keep.to_fields_v1();
            out.push(e);
        }
    }
    if moved.is_empty() {
        return None;
    }
    match mine {
        Some(i) => {
            let mut set = FieldTree::parse(out[i].get("fieldsV1").unwrap_or(&Json::Null));
            set.union(&moved);
            out[i]["fieldsV1"] = set.to_fields_v1();
        }
        None => out.push(json!({
            "manager": manager,
            "operation": "Apply",
            "apiVersion": live.get("apiVersion").cloned().unwrap_or(Json::Null),
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "fieldsType": "FieldsV1",
            "fieldsV1": moved.to_fields_v1(),
        })),
    }
    Some(json!({"metadata": {
        "managedFields": out,
        "resourceVersion": live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Json::Null),
    }}))
}

/// What keelson takes from one manual manager's `set`: every field, except
/// under exempt pointers, for an editing manager; for a creator (whose set
/// holds the server's defaults, see [`CREATORS`]) the fields keelson also
/// owns and its drift (map entries, list items) only.
fn taken_from(
    name: &str,
    set: &FieldTree,
    owners: &Owners,
    live: &Json,
    exempt: &[String],
) -> FieldTree {
    if !CREATORS.contains(&name) {
        let mut keep = set.clone();
        keep.retain(&mut |path| {
            pointer_of(live, path).is_some_and(|p| {
                is_exempt(&p, exempt) || exempt.iter().any(|x| x.starts_with(&format!("{p}/")))
            })
        });
        return set.difference(Some(&keep));
    }
    let shared = owners
        .keelson
        .as_ref()
        .map(|k| set.difference(Some(&set.difference(Some(k)))))
        .unwrap_or_default();
    let mut taken = shared;
    for path in drift_of(
        name,
        set,
        owners.keelson.as_ref(),
        &owners.others,
        live,
        exempt,
    ) {
        if let Some(sub) = set.at(&path) {
            taken.union(&FieldTree::rooted(&path, sub.clone()));
        }
    }
    if set.difference(Some(&taken)).is_empty() {
        // Only the marks of maps and items keelson took are left: take
        // them too, so the manager's entry goes.
        return set.clone();
    }
    taken
}

/// What `obj` (a server-side dry-run result) becomes once the takeover is
/// done too: the fields only manual managers own are gone, and so are the
/// maps and lists that held nothing else. Returns the removed pointers.
pub fn drop_manual_only(
    obj: &mut Json,
    manager: &str,
    manual: &[String],
    exempt: &[String],
) -> Vec<String> {
    let owners = Owners::of(obj, manager, manual);
    let drift = owners.manual_only(obj, exempt);
    let mut removed = Vec::new();
    for (path, _) in &drift {
        let Some(p) = pointer_of(obj, path) else {
            continue;
        };
        if remove_path(obj, path) {
            removed.push(p);
            prune_empty(obj, path);
        }
    }
    removed
}

/// Remove the collections on `path` that the removal left empty, deepest
/// first, as the server drops an emptied map or list.
fn prune_empty(obj: &mut Json, path: &[String]) {
    for depth in (1..path.len()).rev() {
        let parent = &path[..depth];
        let Some(p) = pointer_of(obj, parent) else {
            return;
        };
        let empty = match obj.pointer(&p) {
            Some(Json::Object(m)) => m.is_empty(),
            Some(Json::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty || !remove_path(obj, parent) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ownership::default_manual_managers;

    fn csa_object() -> Json {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n", "resourceVersion": "7",
                "labels": {"keelson.dev/environment": "dev", "debug": "1"},
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:b": {}}}},
                    {"manager": "kubectl-label", "operation": "Update", "apiVersion": "v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:debug": {}}}}},
                    {"manager": "keelson", "operation": "Apply", "apiVersion": "v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:keelson.dev/environment": {}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:x": {}}}}}
                ]},
            "data": {"a": "1", "b": "2"}})
    }

    #[test]
    fn manual_fields_move_into_keelsons_apply_entry() {
        let live = csa_object();
        let patch = takeover_patch(&live, "keelson", &default_manual_managers(), &[]).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let entries = patch["metadata"]["managedFields"].as_array().unwrap();
        let managers: Vec<&str> = entries
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["keelson", "kube-controller-manager"]);
        let mine = FieldTree::parse(&entries[0]["fieldsV1"]);
        for p in [
            vec!["f:data", "f:b"],
            vec!["f:metadata", "f:labels", "f:debug"],
            vec!["f:data", "f:a"],
        ] {
            let p: Vec<String> = p.into_iter().map(String::from).collect();
            assert!(mine.owns(&p), "{p:?} taken over");
        }
    }

    #[test]
    fn exempt_fields_stay_with_their_manager() {
        let live = csa_object();
        let patch = takeover_patch(
            &live,
            "keelson",
            &default_manual_managers(),
            &["/metadata/labels".into()],
        )
        .unwrap();
        let entries = patch["metadata"]["managedFields"].as_array().unwrap();
        assert!(
            entries.iter().any(|e| e["manager"] == "kubectl-label"),
            "{entries:?}"
        );
        assert!(
            takeover_patch(&live, "keelson", &[], &[]).is_none(),
            "no manual managers"
        );
    }

    #[test]
    fn the_planned_result_drops_what_only_manual_managers_own() {
        let mut after = csa_object();
        let removed = drop_manual_only(&mut after, "keelson", &default_manual_managers(), &[]);
        assert_eq!(removed, ["/data/b", "/metadata/labels/debug"]);
        assert_eq!(after["data"], json!({"a": "1"}));
        let mut svc = json!({"metadata": {"managedFields": [
                {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:ports": {
                    "k:{\"port\":5005,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:name": {}, "f:protocol": {}}}}}}]},
            "spec": {"ports": [{"port": 5005, "name": "debug", "protocol": "TCP"}]}});
        let removed = drop_manual_only(&mut svc, "keelson", &default_manual_managers(), &[]);
        assert_eq!(removed, ["/spec/ports/0"]);
        assert!(svc["spec"].get("ports").is_none(), "{svc}");
    }

    #[test]
    fn what_the_server_sets_itself_is_never_dropped() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a",
            "labels": {"kubernetes.io/metadata.name": "a", "debug": "1"},
            "managedFields": [{"manager": "kubectl-create", "operation": "Update", "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}, "f:debug": {}}}}}]}});
        let removed = drop_manual_only(&mut ns, "keelson", &default_manual_managers(), &[]);
        assert_eq!(removed, ["/metadata/labels/debug"]);
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "a"})
        );
    }
}
