//! Server-side apply behaviour: ownership, conflicts, forced takeover, removal of dropped fields.

use serde_json::{Value, json};

use super::managed::{ApplyError, Conflict, Writer, apply, conflict_message, entries, update};

fn conflicts(e: ApplyError) -> Vec<Conflict> {
    match e {
        ApplyError::Conflicts(c) => c,
        ApplyError::Invalid(errs) => panic!("expected conflicts, got {errs:?}"),
    }
}

fn w(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now: "2026-01-01T00:00:00Z",
        reset: super::reset::STATUS,
    }
}

fn deploy(replicas: i64, image: &str, extra_env: bool) -> Value {
    let mut env = vec![json!({"name": "A", "value": "1"})];
    if extra_env {
        env.push(json!({"name": "B", "value": "2"}));
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image, "env": env}]}}}})
}

fn skeleton() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}})
}

#[test]
fn apply_records_manager_and_fields_v1() {
    let obj = apply(
        &skeleton(),
        &deploy(2, "nginx:1", false),
        &w("keelson"),
        false,
    )
    .unwrap();
    let mf = &obj["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "keelson");
    assert_eq!(mf["operation"], "Apply");
    assert_eq!(mf["fieldsType"], "FieldsV1");
    assert_eq!(
        mf["fieldsV1"]["f:metadata"],
        json!({"f:labels": {"f:app": {}}})
    );
    assert_eq!(
        mf["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:env"],
        json!({"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}})
    );
}

#[test]
fn conflicting_field_is_refused_then_forced() {
    let live = apply(
        &skeleton(),
        &deploy(2, "nginx:1", false),
        &w("keelson"),
        false,
    )
    .unwrap();
    let hpa = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let err = conflicts(apply(&live, &hpa, &w("hpa-controller"), false).unwrap_err());
    assert_eq!(
        conflict_message(&err),
        "Apply failed with 1 conflict: conflict with \"keelson\": .spec.replicas"
    );
    let forced = apply(&live, &hpa, &w("hpa-controller"), true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    let es = entries(&forced);
    let keelson = es.iter().find(|e| e.manager == "keelson").unwrap();
    assert!(
        !keelson
            .set
            .contains(&["f:spec".into(), "f:replicas".into()])
    );
    // keelson applying again without replicas keeps the HPA's value and gets no conflict.
    let mut again = deploy(2, "nginx:1", false);
    again["spec"].as_object_mut().unwrap().remove("replicas");
    let out = apply(&forced, &again, &w("keelson"), false).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
}

#[test]
fn same_value_is_shared_not_conflicting() {
    let live = apply(
        &skeleton(),
        &deploy(2, "nginx:1", false),
        &w("keelson"),
        false,
    )
    .unwrap();
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let out = apply(&live, &other, &w("other"), false).unwrap();
    assert_eq!(entries(&out).len(), 2);
}

#[test]
fn dropped_fields_are_removed_unless_someone_else_owns_them() {
    let live = apply(
        &skeleton(),
        &deploy(2, "nginx:1", true),
        &w("keelson"),
        false,
    )
    .unwrap();
    let out = apply(&live, &deploy(2, "nginx:1", false), &w("keelson"), false).unwrap();
    let env = &out["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env, &json!([{"name": "A", "value": "1"}]));

    // An Update manager that set label `team` keeps it when keelson never applied it.
    let mut edited = live.clone();
    edited["metadata"]["labels"]["team"] = json!("x");
    update(Some(&live), &mut edited, &w("kubectl-edit"));
    let out = apply(&edited, &deploy(2, "nginx:1", true), &w("keelson"), false).unwrap();
    assert_eq!(out["metadata"]["labels"]["team"], "x");
    let editor = entries(&out)
        .into_iter()
        .find(|e| e.manager == "kubectl-edit")
        .unwrap();
    assert_eq!(editor.operation, "Update");
}

#[test]
fn update_takes_ownership_from_other_managers() {
    let live = apply(
        &skeleton(),
        &deploy(2, "nginx:1", false),
        &w("keelson"),
        false,
    )
    .unwrap();
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(7);
    update(Some(&live), &mut scaled, &w("kubectl-scale"));
    let es = entries(&scaled);
    let scale = es.iter().find(|e| e.manager == "kubectl-scale").unwrap();
    assert!(scale.set.contains(&["f:spec".into(), "f:replicas".into()]));
    let k = es.iter().find(|e| e.manager == "keelson").unwrap();
    assert!(!k.set.contains(&["f:spec".into(), "f:replicas".into()]));
    // Now keelson's apply of replicas 2 conflicts with the Update manager, named with its apiVersion.
    let err =
        conflicts(apply(&scaled, &deploy(2, "nginx:1", false), &w("keelson"), false).unwrap_err());
    assert_eq!(
        conflict_message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn unchanged_apply_keeps_the_entry_time() {
    let live = apply(
        &skeleton(),
        &deploy(2, "nginx:1", false),
        &w("keelson"),
        false,
    )
    .unwrap();
    let later = Writer {
        now: "2030-01-01T00:00:00Z",
        ..w("keelson")
    };
    let out = apply(&live, &deploy(2, "nginx:1", false), &later, false).unwrap();
    assert_eq!(out, live);
}

#[test]
fn update_manager_sets_have_the_real_dot_entries() {
    let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx", "resources": {},
                "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
    update(None, &mut obj, &w("kubectl-create"));
    assert_eq!(
        obj["metadata"]["managedFields"][0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {}, "f:image": {}, "f:name": {}, "f:resources": {},
                    "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}
                }}}}
            }
        })
    );
}

#[test]
fn duplicate_keys_and_missing_keys_are_invalid_apply_configurations() {
    let mut d = deploy(1, "nginx:1", false);
    d["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]);
    d["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"image": "x"}));
    match apply(&skeleton(), &d, &w("keelson"), false).unwrap_err() {
        ApplyError::Invalid(errs) => assert_eq!(
            errs,
            [
                ".spec.template.spec.containers[name=\"web\"].env: duplicate entries for key [name=\"A\"]",
                ".spec.template.spec.containers: element 1: associative list with keys has an element that omits key field \"name\"",
            ]
        ),
        other => panic!("{other:?}"),
    }
}
