//! Drift on a real API server's terms: entries added by hand are seen and
//! removed, client-side-applied objects are migrated on adoption, and a
//! change the server refuses is not started.

use serde_json::{Value, json};

use crate::Harness;

const DEPLOY: &str = "apps/v1/deployments";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn entries_added_by_hand_are_shown_and_removed_but_a_controllers_are_left_alone() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "dev"]).0, 2);
    let ns = "/api/v1/namespaces/shop-dev";
    let apps = "/apis/apps/v1/namespaces/shop-dev";
    // kubectl patch: a Service port; kubectl set env: an env var; kubectl
    // label: a label; an operator (not a manual manager): an annotation.
    assert_eq!(
        h.patch(
            &format!("{ns}/services/payments?fieldManager=kubectl-patch"),
            JSON_PATCH,
            &json!([{"op": "add", "path": "/spec/ports/-", "value": {"name": "debug", "port": 5005, "targetPort": 5005, "protocol": "TCP"}}]),
        ),
        200
    );
    assert_eq!(
        h.patch(
            &format!("{apps}/deployments/orders?fieldManager=kubectl-set"),
            STRATEGIC,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "orders", "env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-agentlib:jdwp"}]}]}}}}),
        ),
        200
    );
    assert_eq!(
        h.patch(
            &format!("{apps}/deployments/orders?fieldManager=kubectl-label"),
            MERGE_PATCH,
            &json!({"metadata": {"labels": {"debug": "true"}}}),
        ),
        200
    );
    assert_eq!(
        h.patch(
            &format!("{apps}/deployments/orders?fieldManager=mesh-operator"),
            MERGE_PATCH,
            &json!({"metadata": {"annotations": {"mesh.example.com/injected": "true"}}}),
        ),
        200
    );

    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("~ update Service/shop-dev/payments"), "{out}");
    assert!(
        out.contains("-    - name: debug") && out.contains("-      port: 5005"),
        "{out}"
    );
    assert!(out.contains("-    debug: \"true\""), "{out}");
    assert!(
        out.contains("-            - name: JAVA_TOOL_OPTIONS"),
        "{out}"
    );
    assert!(
        out.contains("fields set by kubectl-label, kubectl-set only are drift"),
        "{out}"
    );
    assert!(!out.contains("mesh.example.com"), "{out}");

    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("0 created, 2 updated, 0 deleted"), "{out}");
    let svc = h.get("v1/services", Some("shop-dev"), "payments").unwrap();
    assert_eq!(names(&svc["spec"]["ports"]), ["grpc", "metrics"]);
    let orders = h.get(DEPLOY, Some("shop-dev"), "orders").unwrap();
    assert!(
        orders["metadata"]["labels"].get("debug").is_none(),
        "{orders}"
    );
    assert_eq!(
        names(&orders["spec"]["template"]["spec"]["containers"][0]["env"]),
        ["JAVA_OPTS", "SPRING_PROFILES_ACTIVE"]
    );
    assert_eq!(
        orders["metadata"]["annotations"]["mesh.example.com/injected"], "true",
        "a controller's entry stays"
    );
    let managers: Vec<&str> = orders["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert!(
        !managers.iter().any(|m| m.starts_with("kubectl")),
        "the manual managers' fields were taken over: {managers:?}"
    );

    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
}

#[test]
fn a_client_side_applied_object_is_migrated_on_adoption_and_a_removed_key_goes() {
    let h = Harness::new();
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\n  namespace: shop-dev\ndata:\n  currency: EUR\n  banner: xmas-sale\n";
    std::fs::create_dir_all(h.path("environments/dev/manifests")).unwrap();
    std::fs::write(
        h.path("environments/dev/manifests/shop-config.yaml"),
        manifest,
    )
    .unwrap();
    h.edit(
        "environments/dev/environment.yaml",
        "  namespace: shop-dev\n",
        "  namespace: shop-dev\n  adopt: true\n",
    );
    // What `kubectl apply -f` (client-side) left: the last-applied
    // annotation, and every field owned by kubectl-client-side-apply.
    let last_applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "shop-config", "namespace": "shop-dev"},
        "data": {"currency": "EUR", "banner": "xmas-sale"}});
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/namespaces"),
            "rancher",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-dev"}}),
        )
        .unwrap();
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/configmaps"),
            "kubectl-client-side-apply",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shop-config", "namespace": "shop-dev", "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string()}},
                "data": {"currency": "EUR", "banner": "xmas-sale"}}),
        )
        .unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("adopting an existing object"), "{out}");
    let cm = h
        .get("v1/configmaps", Some("shop-dev"), "shop-config")
        .unwrap();
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers, ["keelson"], "migrated as kubectl 1.26+ does");
    assert!(
        cm["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none(),
        "{cm}"
    );

    // Git drops a key: it is planned, removed, and the next plan is clean.
    std::fs::write(
        h.path("environments/dev/manifests/shop-config.yaml"),
        manifest.replace("  banner: xmas-sale\n", ""),
    )
    .unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("-  banner: xmas-sale"), "{out}");
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("0 created, 1 updated, 0 deleted"), "{out}");
    let cm = h
        .get("v1/configmaps", Some("shop-dev"), "shop-config")
        .unwrap();
    assert_eq!(cm["data"], json!({"currency": "EUR"}));
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_namespace_made_with_kubectl_is_adopted_and_its_server_set_label_is_never_shown_removed() {
    let h = Harness::new();
    h.edit(
        "environments/dev/environment.yaml",
        "  namespace: shop-dev\n",
        "  namespace: shop-dev\n  adopt: true\n",
    );
    // `kubectl create namespace`: the server's defaulter sets the
    // `kubernetes.io/metadata.name` label, which the creator then owns.
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/namespaces"),
            "kubectl-create",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-dev"}}),
        )
        .unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("adopting an existing object"), "{out}");
    assert!(!out.contains("-    kubernetes.io/metadata.name"), "{out}");
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}");
    let ns = h.get("v1/namespaces", None, "shop-dev").unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "shop-dev",
        "{ns}"
    );
    assert_eq!(ns["metadata"]["labels"]["keelson.dev/environment"], "dev");
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_change_the_server_refuses_is_shown_and_its_step_is_not_started() {
    let h = Harness::new();
    let manifest = |app: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\n  namespace: shop-dev\nspec:\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n    spec:\n      containers:\n        - name: worker\n          image: registry.example.com/worker:1\n"
        )
    };
    std::fs::create_dir_all(h.path("environments/dev/manifests")).unwrap();
    let file = h.path("environments/dev/manifests/worker.yaml");
    std::fs::write(&file, manifest("worker")).unwrap();
    assert_eq!(h.keelson(&["reconcile", "--env", "dev", "--no-wait"]).0, 2);
    // A selector change (immutable) beside an image bump in the same step.
    std::fs::write(&file, manifest("worker-v2")).unwrap();
    h.edit(
        "environments/dev/pipeline.yaml",
        "orders:\n      tag: \"",
        "orders:\n      tag: \"9",
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 1, "a plan the server refuses fails:\n{out}");
    assert!(
        out.contains("the server refuses this change (dry run")
            && out.contains("spec.selector may not change once set"),
        "{out}"
    );
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 1, "{out}");
    let writes: Vec<_> = h
        .srv
        .requests()
        .into_iter()
        .filter(|r| r.is_write() && !r.query.contains("dryRun"))
        .collect();
    assert!(
        writes.is_empty(),
        "the Deployment step was not started: {writes:?}"
    );
    let orders = h.get(DEPLOY, Some("shop-dev"), "orders").unwrap();
    assert!(
        !orders["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .contains(":9"),
        "{orders}"
    );
}

/// A change to a field that may not change once set is carried out as a
/// replacement (delete, then create) only where the object opts in with
/// `keelson.dev/force: enabled`, never for a PersistentVolumeClaim; the
/// plan says `replace`, and the live object is a new one afterwards.
#[test]
fn an_immutable_change_replaces_an_object_that_opts_in_and_never_a_claim() {
    let h = Harness::new();
    let manifest = |app: &str, force: bool| {
        let annotations = if force {
            "  annotations:\n    keelson.dev/force: enabled\n"
        } else {
            ""
        };
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\n  namespace: shop-dev\n{annotations}spec:\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n    spec:\n      containers:\n        - name: worker\n          image: registry.example.com/worker:1\n"
        )
    };
    let claim = |mode: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: shop-dev\n  annotations:\n    keelson.dev/force: enabled\nspec:\n  accessModes: [{mode}]\n  resources:\n    requests:\n      storage: 1Gi\n"
        )
    };
    std::fs::create_dir_all(h.path("environments/dev/manifests")).unwrap();
    let file = h.path("environments/dev/manifests/worker.yaml");
    let pvc = h.path("environments/dev/manifests/data.yaml");
    std::fs::write(&file, manifest("worker", false)).unwrap();
    std::fs::write(&pvc, claim("ReadWriteOnce")).unwrap();
    assert_eq!(h.keelson(&["reconcile", "--env", "dev", "--no-wait"]).0, 2);
    let uid = |h: &Harness| {
        h.get(DEPLOY, Some("shop-dev"), "worker").unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = uid(&h);

    // Without the annotation the plan names the way out.
    std::fs::write(&file, manifest("worker-v2", false)).unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("spec.selector may not change once set")
            && out.contains("annotate it `keelson.dev/force: enabled`"),
        "{out}"
    );

    // With it: a replacement, planned and carried out.
    std::fs::write(&file, manifest("worker-v2", true)).unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("-/+ replace Deployment/shop-dev/worker")
            && out.contains("0 to create, 0 to update, 1 to replace, 0 to delete"),
        "{out}"
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("1 replaced"), "{out}");
    let live = h.get(DEPLOY, Some("shop-dev"), "worker").unwrap();
    assert_ne!(uid(&h), before, "a new object: {live}");
    assert_eq!(
        live["spec"]["selector"]["matchLabels"]["app"], "worker-v2",
        "{live}"
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 0, "nothing left to do:\n{out}");

    // A claim is never replaced, annotation or not: its volume would go.
    std::fs::write(&pvc, claim("ReadWriteMany")).unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("keelson never replaces a PersistentVolumeClaim"),
        "{out}"
    );
    let claim = h
        .get("v1/persistentvolumeclaims", Some("shop-dev"), "data")
        .unwrap();
    assert_eq!(claim["spec"]["accessModes"][0], "ReadWriteOnce", "{claim}");
}
