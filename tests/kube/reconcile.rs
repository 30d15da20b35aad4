//! The scenarios of the Kubernetes issue.

use std::time::Duration;

use kube_apiserver::{Fault, ServerOptions};
use serde_json::json;

use crate::Harness;

const DEPLOY: &str = "apps/v1/deployments";

#[test]
fn fresh_apply_creates_everything_and_a_second_run_writes_nothing() {
    let h = Harness::new();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 2, "changes applied → exit 2\n{out}\n{err}");
    assert!(
        out.contains("prod: 16 created, 0 updated, 0 deleted"),
        "{out}"
    );
    let orders = h
        .get(DEPLOY, Some("shop-prod"), "orders")
        .expect("orders deployed");
    assert_eq!(
        orders["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "keelson"
    );
    assert_eq!(
        orders["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/orders:1.42.0"
    );
    let managers: Vec<_> = orders["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].clone())
        .collect();
    assert!(managers.contains(&json!("keelson")), "{managers:?}");
    let inv = h
        .get("v1/configmaps", Some("shop-prod"), "keelson-inventory")
        .expect("inventory recorded");
    assert!(
        inv["data"]["inventory"]
            .as_str()
            .unwrap()
            .contains("\"name\":\"orders\"")
    );

    h.srv.reset_requests();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "no change → exit 0\n{out}\n{err}");
    assert_eq!(
        h.srv.write_count(),
        0,
        "second run wrote: {:?}",
        h.srv
            .requests()
            .iter()
            .filter(|r| r.is_write())
            .collect::<Vec<_>>()
    );
    assert!(
        out.contains("prod: 0 created, 0 updated, 0 deleted"),
        "{out}"
    );
}

#[test]
fn a_tag_bump_updates_only_that_deployment() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    h.edit(
        "environments/prod/pipeline.yaml",
        "\"1.42.0\"",
        "\"1.43.0\"",
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("~ update Deployment/shop-prod/orders"),
        "{out}"
    );
    assert!(
        out.contains("-          image: registry.example.com/shop/orders:1.42.0"),
        "{out}"
    );
    assert!(
        out.contains("+          image: registry.example.com/shop/orders:1.43.0"),
        "{out}"
    );
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 2, "{out}");
    let writes: Vec<_> = h
        .srv
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0]
            .path
            .ends_with("/namespaces/shop-prod/deployments/orders"),
        "{writes:?}"
    );
    let orders = h.get(DEPLOY, Some("shop-prod"), "orders").unwrap();
    assert_eq!(
        orders["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/orders:1.43.0"
    );
    assert_eq!(orders["metadata"]["generation"], 2);
}

#[test]
fn dry_run_writes_nothing() {
    let h = Harness::new();
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(h.srv.write_count(), 0);
    assert!(
        out.contains("dev: 10 to create, 0 to update, 0 to delete"),
        "{out}"
    );
    assert!(h.get("v1/namespaces", None, "shop-prod").is_none());
}

#[test]
fn a_removed_app_is_pruned_but_unlabelled_objects_are_never_touched() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "staging"]).0, 2);
    // Someone else's objects in the namespace: one with a name keelson
    // will want, one keelson knows nothing about.
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/configmaps"),
            "someone",
            json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "mailer", "namespace": "shop-staging"}, "data": {"owner": "ops"}}),
        )
        .unwrap();
    let env = std::fs::read_to_string(h.path("environments/staging/environment.yaml")).unwrap();
    let cut = env.find("    - name: mailer").unwrap();
    std::fs::write(h.path("environments/staging/environment.yaml"), &env[..cut]).unwrap();
    h.edit(
        "environments/staging/pipeline.yaml",
        "    mailer:\n      tag: \"2.3.0\"\n",
        "",
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("- delete Deployment/shop-staging/mailer"),
        "{out}"
    );
    assert!(
        h.get(DEPLOY, Some("shop-staging"), "mailer").is_none(),
        "pruned"
    );
    assert!(h.get(DEPLOY, Some("shop-staging"), "orders").is_some());
    let cm = h
        .get("v1/configmaps", Some("shop-staging"), "mailer")
        .expect("someone else's object survives");
    assert_eq!(cm["data"]["owner"], "ops");
}

#[test]
fn an_existing_unlabelled_object_is_not_adopted() {
    let h = Harness::new();
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/namespaces"),
            "someone",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-dev"}}),
        )
        .unwrap();
    h.srv
        .create_object(&kube_apiserver::Gvr::parse("v1/services"), "someone", json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders", "namespace": "shop-dev"},
            "spec": {"ports": [{"port": 1, "name": "x"}]}}))
        .unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("! skip Service/shop-dev/orders"), "{out}");
    assert!(
        out.contains("is not managed by keelson; set `adopt: true`"),
        "{out}"
    );
    let svc = h.get("v1/services", Some("shop-dev"), "orders").unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 1, "untouched");
}

#[test]
fn mass_deletion_is_refused() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "dev"]).0, 2);
    let env = std::fs::read_to_string(h.path("environments/dev/environment.yaml")).unwrap();
    let cut = env.find("    - name: storefront").unwrap();
    std::fs::write(h.path("environments/dev/environment.yaml"), &env[..cut]).unwrap();
    std::fs::write(
        h.path("environments/dev/pipeline.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n    orders:\n      tag: \"1.0.0\"\n",
    )
    .unwrap();
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED: refusing to delete"), "{out}");
    assert!(out.contains("prune.maxDeletePercent"), "{out}");
    assert_eq!(h.srv.write_count(), 0);
    assert!(h.get(DEPLOY, Some("shop-dev"), "payments").is_some());
}

#[test]
fn replicas_an_hpa_on_the_cluster_targets_are_left_to_it_without_an_ignore_rule() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    // An HPA keelson does not manage targets orders, and its controller
    // scales orders to 7 under its own field manager.
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("autoscaling/v2/horizontalpodautoscalers"),
            "platform",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "orders", "namespace": "shop-prod"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders"},
                    "minReplicas": 2, "maxReplicas": 10}}),
        )
        .unwrap();
    let status = reqwest_like_patch(
        &h,
        "/apis/apps/v1/namespaces/shop-prod/deployments/orders?fieldManager=kube-controller-manager&force=true",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "orders", "namespace": "shop-prod"}, "spec": {"replicas": 7}}),
    );
    assert_eq!(status, 200);
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
    assert!(
        out.contains(
            "note: /spec/replicas is delegated to HorizontalPodAutoscaler/shop-prod/orders; left alone"
        ),
        "the plan names the delegation:\n{out}"
    );
    assert_eq!(
        h.get(DEPLOY, Some("shop-prod"), "orders").unwrap()["spec"]["replicas"],
        7
    );
    // A real change to orders is still applied, without taking replicas back.
    h.edit(
        "environments/prod/pipeline.yaml",
        "\"1.42.0\"",
        "\"1.42.1\"",
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        !out.contains("replicas: 7"),
        "replicas are not in the diff:\n{out}"
    );
    let orders = h.get(DEPLOY, Some("shop-prod"), "orders").unwrap();
    assert_eq!(orders["spec"]["replicas"], 7);
    assert_eq!(
        orders["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/orders:1.42.1"
    );
}

#[test]
fn a_field_git_declares_changed_by_any_other_manager_is_drift_and_is_taken_back() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    // No HPA: an operator scaling orders and a dashboard changing its image
    // (server-side apply under their own managers, forced) are drift.
    for (manager, body) in [
        ("some-operator", json!({"spec": {"replicas": 7}})),
        (
            "rancher-ui",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "orders", "image": "registry.example.com/shop/orders:hotfix"}]}}}}),
        ),
    ] {
        let mut body = body;
        body["apiVersion"] = json!("apps/v1");
        body["kind"] = json!("Deployment");
        body["metadata"] = json!({"name": "orders", "namespace": "shop-prod"});
        let status = reqwest_like_patch(
            &h,
            &format!(
                "/apis/apps/v1/namespaces/shop-prod/deployments/orders?fieldManager={manager}&force=true"
            ),
            body,
        );
        assert_eq!(status, 200);
    }
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("-  replicas: 7") && out.contains("+  replicas: 3"),
        "{out}"
    );
    assert!(
        out.contains("-          image: registry.example.com/shop/orders:hotfix"),
        "{out}"
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 2, "{out}");
    let orders = h.get(DEPLOY, Some("shop-prod"), "orders").unwrap();
    assert_eq!(orders["spec"]["replicas"], 3);
    assert_eq!(
        orders["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/orders:1.42.0"
    );
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
}

#[test]
fn ignore_rules_hide_fields_from_diff_and_apply() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    // prod ignores /spec/replicas of storefront; even a manual edit is left alone.
    let status = reqwest_like_patch(
        &h,
        "/apis/apps/v1/namespaces/shop-prod/deployments/storefront?fieldManager=kubectl-edit",
        json!({"spec": {"replicas": 11}}),
    );
    assert_eq!(status, 200);
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
    assert_eq!(
        h.get(DEPLOY, Some("shop-prod"), "storefront").unwrap()["spec"]["replicas"],
        11
    );
}

#[test]
fn server_dry_run_confirms_no_phantom_drift_and_real_changes() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "staging"]).0, 2);
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&[
        "reconcile",
        "--env",
        "staging",
        "--server-dry-run",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
    h.edit(
        "environments/staging/pipeline.yaml",
        "\"0.20.0\"",
        "\"0.20.1\"",
    );
    let (code, out, _) = h.keelson(&[
        "reconcile",
        "--env",
        "staging",
        "--server-dry-run",
        "--dry-run",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("+          image: registry.example.com/shop/payments:0.20.1"),
        "{out}"
    );
    assert!(
        h.srv
            .requests()
            .iter()
            .any(|r| r.query.contains("dryRun=All")),
        "a server-side dry run was made"
    );
    assert_eq!(h.srv.write_count(), 0);
}

#[test]
fn a_crd_is_established_before_its_custom_resources_are_applied() {
    let h = Harness::with(ServerOptions {
        crd_establish_delay: Duration::from_millis(700),
        ..ServerOptions::default()
    });
    std::fs::create_dir_all(h.path("environments/dev/manifests")).unwrap();
    // A CRD is cluster-scoped: the platform team allows dev to install it.
    std::fs::write(
        h.path("policies/dev-crds.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Policy\nmetadata:\n  name: dev-crds\nspec:\n  appliesTo: [dev]\n  tenancy:\n    clusterResourceWhitelist:\n      - group: apiextensions.k8s.io\n        kind: CustomResourceDefinition\n",
    )
    .unwrap();
    std::fs::write(
        h.path("environments/dev/manifests/widgets.yaml"),
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: blue
spec:
  color: blue
"#,
    )
    .unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let w = h
        .get("example.com/v1/widgets", Some("shop-dev"), "blue")
        .expect("custom resource applied");
    assert_eq!(w["spec"]["color"], "blue");
    assert_eq!(w["metadata"]["labels"]["keelson.dev/environment"], "dev");
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
}

#[test]
fn manual_edits_are_drift_and_are_reverted() {
    let h = Harness::new();
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    let status = reqwest_like_patch(
        &h,
        "/apis/apps/v1/namespaces/shop-prod/deployments/orders?fieldManager=kubectl-edit",
        json!({"spec": {"replicas": 9}}),
    );
    assert_eq!(status, 200);
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("    -  replicas: 9\n    +  replicas: 3"),
        "{out}"
    );
    assert_eq!(h.keelson(&["reconcile", "--env", "prod"]).0, 2);
    assert_eq!(
        h.get(DEPLOY, Some("shop-prod"), "orders").unwrap()["spec"]["replicas"],
        3
    );
}

#[test]
fn server_errors_and_throttling_are_retried() {
    let h = Harness::new();
    h.srv
        .faults()
        .inject(Fault::status(500).method("PATCH").times(2));
    h.srv.faults().inject(
        Fault::too_many_requests(0)
            .method("PATCH")
            .path_contains("deployments")
            .times(1),
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        h.srv.faults().fired() >= 3,
        "faults fired: {}",
        h.srv.faults().fired()
    );
    assert!(h.get(DEPLOY, Some("shop-dev"), "orders").is_some());
}

#[test]
fn persistent_failures_fail_the_environment_but_not_the_others() {
    let h = Harness::new();
    h.srv.faults().inject(
        Fault::status(500)
            .path_contains("/namespaces/shop-staging/")
            .times(1000),
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "staging", "--env", "dev"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("apply failed:") || out.contains("error:"),
        "{out}"
    );
    assert!(out.contains("dev: 10 created"), "{out}");
    assert!(h.get(DEPLOY, Some("shop-dev"), "orders").is_some());
}

#[test]
fn unhealthy_workloads_are_reported_with_the_reason() {
    let h = Harness::with(ServerOptions {
        deployment_ready_delay: Duration::from_secs(3600),
        ..ServerOptions::default()
    });
    let (code, out, _) = h.keelson(&["reconcile", "--env", "preview-pr-123", "--timeout", "1"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("health Deployment/shop-preview-pr-123/storefront:"),
        "{out}"
    );
    assert!(
        out.contains("replicas") || out.contains("generation"),
        "{out}"
    );
}

#[test]
fn markdown_and_json_outputs_describe_the_plan() {
    let h = Harness::new();
    let (code, md, _) = h.keelson(&[
        "reconcile",
        "--env",
        "prod",
        "--dry-run",
        "--output",
        "markdown",
    ]);
    assert_eq!(code, 2);
    assert!(
        md.contains("<summary><b>prod</b>: 16 to create, 0 to update, 0 to delete</summary>"),
        "{md}"
    );
    assert!(
        md.contains(
            "<details><summary><code>+ create Deployment/shop-prod/orders</code></summary>"
        ),
        "{md}"
    );
    assert!(md.contains("```diff\n"), "{md}");
    let (_, js, _) = h.keelson(&[
        "reconcile",
        "--env",
        "prod",
        "--dry-run",
        "--output",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["environments"][0]["environment"], "prod");
    assert_eq!(
        v["environments"][0]["plan"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        16
    );
}

/// PATCH over plain HTTP/1.1, as another client of the API would.
fn reqwest_like_patch(h: &Harness, path_and_query: &str, body: serde_json::Value) -> u16 {
    use std::io::{Read, Write};
    let ct = if path_and_query.contains("force=true") {
        "application/apply-patch+yaml"
    } else {
        "application/merge-patch+json"
    };
    let addr = h.srv.url().trim_start_matches("http://").to_string();
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "PATCH {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn kubectl_and_keelson_agree_on_the_rendered_example() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: kubectl is not installed");
        return;
    }
    let h = Harness::new();
    let (code, rendered, err) = h.keelson(&["render", "--env", "prod"]);
    assert_eq!(code, 0, "{err}");
    let file = h.path("prod.yaml");
    std::fs::write(&file, rendered).unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(h.path("kubeconfig"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "keelson",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("deployment.apps/orders serverside-applied"),
        "{out}"
    );
    // What kubectl applied is exactly what keelson wants: nothing to update.
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    // keelson records its inventory, then kubectl sees no difference either.
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        h.get("v1/configmaps", Some("shop-prod"), "keelson-inventory")
            .is_some()
    );
    let (code, out, err) = kubectl(&[
        "diff",
        "--server-side",
        "--field-manager",
        "keelson",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "kubectl diff found differences:\n{out}{err}");
}

#[test]
fn removing_an_environment_folder_retires_it_only_when_it_allowed_deleting_everything() {
    let h = Harness::new();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "preview-pr-123"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(h.keelson(&["reconcile", "--env", "staging"]).0, 2);
    std::fs::remove_dir_all(h.path("environments/preview-pr-123")).unwrap();
    std::fs::remove_dir_all(h.path("environments/staging")).unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--dry-run"]);
    assert_eq!(code, 1, "staging's retirement is refused:\n{out}");
    assert!(
        out.contains("- delete Namespace/shop-preview-pr-123"),
        "{out}"
    );
    assert!(
        out.contains("REFUSED: environment folder removed: refusing to delete all"),
        "{out}"
    );
    let (code, out, _) = h.keelson(&["reconcile"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        h.get(DEPLOY, Some("shop-preview-pr-123"), "storefront")
            .is_none(),
        "preview retired"
    );
    assert!(
        h.get(DEPLOY, Some("shop-staging"), "orders").is_some(),
        "staging kept"
    );
}
