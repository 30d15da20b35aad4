//! Fields the API server refuses to change once set (REAL-SERVER.md
//! "Immutable fields"; kube-apiserver's `ValidateImmutableField` and the
//! update validation of each kind), and what keelson does about a change to
//! one: a replacement where the object opts in, else a refusal that names
//! the way out.
//!
//! On a live cluster the server's dry run says which changes it refuses
//! ([`crate::apply::confirm`]); offline (`--against`, `--against-ref`) the
//! local normaliser's view of the same fields is compared here, so that a
//! merge request whose change the server would refuse is shown so in
//! review, not after the merge. A best effort, as the local normaliser is.

use serde_json::Value as Json;

use super::compare;
use super::{Action, Change, ObjectId};
use crate::render::objects::FORCE_ANNOTATION;

/// The fields of a StatefulSet's spec that may change (apps/validation
/// `ValidateStatefulSetUpdate`); any other key of its spec may not.
const STATEFULSET_MUTABLE: [&str; 6] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// Kinds never replaced, whatever their annotation says: deleting them
/// deletes data or everything inside them (a claim's volume, a namespace's
/// objects, a CRD's custom resources).
pub const NEVER_REPLACED: [&str; 4] = [
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Namespace",
    "CustomResourceDefinition",
];

/// The fields that may not change once set which differ between `view` (the
/// live object projected onto what keelson manages, as the plan compares
/// it) and `desired`, named as the API server names them
/// (`spec.template`). `live` is the whole live object (a ConfigMap's
/// `immutable`, a Job's `suspend`). Empty for kinds without such fields.
pub fn changed(id: &ObjectId, live: &Json, view: &Json, desired: &Json) -> Vec<String> {
    let differs = |pointer: &str| {
        let field = pointer.rsplit('/').next().unwrap_or_default();
        match (view.pointer(pointer), desired.pointer(pointer)) {
            (None, None) => false,
            (Some(a), Some(b)) => !compare::same(a, b, field),
            (Some(x), None) | (None, Some(x)) => !empty(x),
        }
    };
    let mut out = Vec::new();
    let mut check = |pointer: &str| {
        if differs(pointer) {
            out.push(pointer.trim_start_matches('/').replace('/', "."));
        }
    };
    match (id.group(), id.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => check("/spec/selector"),
        ("batch", "Job") => {
            check("/spec/selector");
            if live.pointer("/spec/suspend") != Some(&Json::Bool(true)) {
                check("/spec/template");
            }
        }
        ("apps", "StatefulSet") => {
            for key in keys(view, desired, "/spec") {
                if !STATEFULSET_MUTABLE.contains(&key.as_str()) {
                    check(&format!("/spec/{key}"));
                }
            }
        }
        ("", "Service") => {
            check("/spec/clusterIP");
            check("/spec/clusterIPs");
        }
        ("", "PersistentVolumeClaim") => {
            for key in keys(view, desired, "/spec") {
                match key.as_str() {
                    "volumeAttributesClassName" | "volumeName" => {}
                    "resources" => {
                        for k in keys(view, desired, "/spec/resources") {
                            if k != "requests" {
                                check(&format!("/spec/resources/{k}"));
                            }
                        }
                    }
                    _ => check(&format!("/spec/{key}")),
                }
            }
        }
        ("", "Secret" | "ConfigMap") => {
            if id.kind == "Secret" {
                check("/type");
            }
            if live.get("immutable") == Some(&Json::Bool(true)) {
                check("/data");
                check("/binaryData");
                check("/immutable");
            }
        }
        _ => {}
    }
    out
}

/// The keys of the objects at `pointer` in either value, sorted, once each.
fn keys(a: &Json, b: &Json, pointer: &str) -> Vec<String> {
    let mut out: Vec<String> = [a, b]
        .iter()
        .filter_map(|v| v.pointer(pointer).and_then(Json::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// What to say of a change to `fields` (none named: the server did not say).
pub fn describe(fields: &[String]) -> String {
    match fields {
        [] => "a field that may not change once set changes".to_string(),
        fields => format!("{} may not change once set", fields.join(", ")),
    }
}

/// `Ok` when an update of `c` refused (or, offline, foreseen to be refused)
/// for fields that may not change once set may be carried out as a
/// replacement: the desired object opts in with `keelson.dev/force:
/// enabled` and is not of a kind whose deletion loses data
/// ([`NEVER_REPLACED`]). Otherwise, the note that says what to do. `what`
/// is [`describe`]'s account of the fields.
pub fn replaceable(c: &Change, what: &str) -> Result<(), String> {
    if NEVER_REPLACED.contains(&c.id.kind.as_str()) {
        return Err(format!(
            "{what}; keelson never replaces a {} (deleting it would lose what it \
             holds): change it by hand, or give it a new name",
            c.id.kind
        ));
    }
    let opted_in = c
        .apply
        .as_ref()
        .and_then(|b| b.pointer("/metadata/annotations"))
        .and_then(|a| a.get(FORCE_ANNOTATION))
        .and_then(Json::as_str)
        == Some("enabled");
    if opted_in {
        Ok(())
    } else {
        Err(format!(
            "{what}: only deleting {} and creating it again carries this out; annotate it \
             `{FORCE_ANNOTATION}: enabled` in Git to let keelson replace it (what it runs is \
             stopped and started again), or give it a new name",
            c.id
        ))
    }
}

/// Turn update `c`, refused for `fields` alone, into a replacement where
/// [`replaceable`], else mark it refused: `note` (the server's refusal, or
/// the offline estimate) and the way out are shown, `refused` is what apply
/// reports for it.
pub fn settle(c: &mut Change, fields: &[String], note: String, refused: String) {
    let what = describe(fields);
    match replaceable(c, &what) {
        Ok(()) => {
            c.action = Action::Replace;
            c.notes.push(format!(
                "replace ({FORCE_ANNOTATION}: enabled): {what}; apply deletes {} and creates it \
                 again",
                c.id
            ));
        }
        Err(why) => {
            c.notes.push(note);
            c.notes.push(why);
            c.intent.refused = Some(refused);
        }
    }
}

/// Offline plans: settle every update whose local comparison found fields
/// that may not change once set changing ([`changed`], kept in
/// `Intent::immutable`), as the server's dry run would have.
pub fn settle_offline(changes: &mut [Change]) {
    for c in changes {
        if c.action == Action::Update && !c.intent.immutable.is_empty() {
            let fields = std::mem::take(&mut c.intent.immutable);
            let refusal = format!(
                "the API server will refuse this change (offline estimate; a live plan asks the \
                 server): {}",
                describe(&fields)
            );
            settle(c, &fields, refusal.clone(), refusal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(o: &Json) -> ObjectId {
        ObjectId::of(o)
    }

    fn job(image: &str, extra_label: bool) -> Json {
        let mut labels = json!({"app": "migrate"});
        if extra_label {
            labels["batch.kubernetes.io/controller-uid"] = json!("u1");
        }
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m", "namespace": "n"},
            "spec": {"template": {"metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}})
    }

    #[test]
    fn a_job_template_change_is_named_and_server_fields_are_not() {
        let desired = job("m:2", false);
        let live = job("m:1", true);
        let view = compare::project(&live, &desired, None, "");
        assert_eq!(
            changed(&id(&desired), &live, &view, &desired),
            ["spec.template"]
        );
        // The same template, with what the server added: nothing.
        let live = job("m:2", true);
        let view = compare::project(&live, &desired, None, "");
        assert!(changed(&id(&desired), &live, &view, &desired).is_empty());
        // A suspended Job's template may change.
        let mut live = job("m:1", true);
        live["spec"]["suspend"] = json!(true);
        let view = compare::project(&live, &desired, None, "");
        assert!(changed(&id(&desired), &live, &view, &desired).is_empty());
    }

    #[test]
    fn statefulset_claims_and_immutable_configmaps() {
        let sts = |size: &str, replicas: i64| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "n"},
                "spec": {"replicas": replicas, "serviceName": "db", "volumeClaimTemplates": [
                    {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}]}})
        };
        let (desired, live) = (sts("2Gi", 3), sts("1Gi", 3));
        let view = compare::project(&live, &desired, None, "");
        assert_eq!(
            changed(&id(&desired), &live, &view, &desired),
            ["spec.volumeClaimTemplates"]
        );
        let (desired, live) = (sts("1Gi", 5), sts("1024Mi", 3));
        let view = compare::project(&live, &desired, None, "");
        assert!(
            changed(&id(&desired), &live, &view, &desired).is_empty(),
            "replicas may change; 1Gi = 1024Mi"
        );

        let cm = |v: &str, immutable: bool| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
                "immutable": immutable, "data": {"k": v}})
        };
        let (desired, live) = (cm("2", true), cm("1", true));
        let view = compare::project(&live, &desired, None, "");
        assert_eq!(changed(&id(&desired), &live, &view, &desired), ["data"]);
        let (desired, live) = (cm("2", false), cm("1", false));
        let view = compare::project(&live, &desired, None, "");
        assert!(changed(&id(&desired), &live, &view, &desired).is_empty());
    }

    #[test]
    fn settling_replaces_what_opts_in_and_refuses_the_rest() {
        let mut body = job("m:2", false);
        let mut c = Change::new(Action::Update, id(&body));
        c.apply = Some(body.clone().into());
        c.intent.immutable = vec!["spec.template".into()];
        let mut refused = c.clone();
        settle_offline(std::slice::from_mut(&mut refused));
        assert_eq!(refused.action, Action::Update);
        assert!(refused.intent.refused.is_some());
        assert!(
            refused.notes[1].contains("annotate it `keelson.dev/force: enabled`"),
            "{:?}",
            refused.notes
        );
        body["metadata"]["annotations"] = json!({FORCE_ANNOTATION: "enabled"});
        c.apply = Some(body.into());
        settle_offline(std::slice::from_mut(&mut c));
        assert_eq!(c.action, Action::Replace);
        assert!(c.intent.refused.is_none());
    }
}
