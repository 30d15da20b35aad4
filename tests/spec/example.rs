//! The example repository at the project root validates clean and renders
//! into sound Kubernetes objects; golden snapshots pin the output.

use keelson::check::check_repo;
use keelson::render::{quantity, render_env};
use serde_json::Value;

use crate::{keelson, project_root};

#[test]
fn the_example_repository_validates_clean() {
    let report = check_repo(&project_root());
    let errors: Vec<_> = report.diagnostics.iter().map(|d| d.one_line()).collect();
    assert_eq!(report.errors(), 0, "{errors:#?}");
    let mut envs: Vec<_> = report.ready.keys().cloned().collect();
    envs.sort();
    assert_eq!(envs, ["dev", "preview-pr-123", "prod", "staging"]);
    let (code, out, err) = keelson(&project_root(), &["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 4 environments"), "{out}");
}

fn prod_objects() -> Vec<Value> {
    let report = check_repo(&project_root());
    render_env(&report.ready["prod"])
}

fn containers(o: &Value) -> &Vec<Value> {
    o.pointer("/spec/template/spec/containers")
        .unwrap()
        .as_array()
        .unwrap()
}

#[test]
fn every_prod_deployment_has_requests_limits_probes_and_labels() {
    let objects = prod_objects();
    let deployments: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 4);
    for d in deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        for c in containers(d) {
            for field in [
                "/resources/limits/cpu",
                "/resources/limits/memory",
                "/resources/requests/cpu",
                "/resources/requests/memory",
            ] {
                assert!(c.pointer(field).is_some(), "{name}: no {field}");
            }
            let serves = c.get("ports").is_some();
            assert_eq!(
                c.get("readinessProbe").is_some(),
                serves,
                "{name}: readiness probe"
            );
            assert_eq!(
                c.get("livenessProbe").is_some(),
                serves,
                "{name}: liveness probe"
            );
        }
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "keelson"
        );
        assert_eq!(d["metadata"]["labels"]["keelson.dev/environment"], "prod");
        // Never zero ready pods during a rollout.
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
            "{name}"
        );
        assert!(d["spec"]["replicas"].as_u64().unwrap() >= 2);
    }
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "keelson",
            "{}",
            o["metadata"]["name"]
        );
    }
}

#[test]
fn the_jvm_app_gets_xmx_of_six_tenths_of_its_memory_limit() {
    let objects = prod_objects();
    let orders = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "orders")
        .unwrap();
    let c = &containers(orders)[0];
    let limit = quantity::parse(
        c.pointer("/resources/limits/memory")
            .unwrap()
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let expected = (limit * 0.6 / (1024.0 * 1024.0)).floor() as u64;
    let env = c["env"].as_array().unwrap();
    let opts = env
        .iter()
        .find(|e| e["name"] == "JAVA_OPTS")
        .expect("JAVA_OPTS set");
    assert_eq!(opts["value"], format!("-Xmx{expected}m"));
    assert_eq!(expected, 1228, "2Gi × 0.6");
}

#[test]
fn requests_follow_the_overcommit_ratio() {
    let objects = prod_objects();
    let orders = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "orders")
        .unwrap();
    let r = &containers(orders)[0]["resources"];
    assert_eq!(r["limits"]["cpu"], "2");
    assert_eq!(r["requests"]["cpu"], "500m", "cpu ratio 4");
    assert_eq!(r["requests"]["memory"], "2Gi", "memory ratio 1");
}

#[test]
fn prod_renders_services_ingresses_pdbs_and_passthrough_manifests() {
    let objects = prod_objects();
    let ids: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ids[0], "Namespace/shop-prod", "namespace first");
    for id in [
        "Service/orders",
        "Ingress/orders",
        "Ingress/storefront",
        "PodDisruptionBudget/payments",
        "ConfigMap/shop-config",
        "NetworkPolicy/payments-from-orders",
    ] {
        assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
    }
    assert!(
        !ids.contains(&"Service/mailer".to_string()),
        "a worker without ports has no Service"
    );
    let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    assert_eq!(
        cm["metadata"]["namespace"], "shop-prod",
        "passthrough gets the env namespace"
    );
}

#[test]
fn render_output_is_deterministic_and_pinned_by_snapshots() {
    for env in ["dev", "staging", "prod", "preview-pr-123"] {
        let (code, out, err) = keelson(&project_root(), &["render", "--env", env]);
        assert_eq!(code, 0, "{err}");
        let (_, again, _) = keelson(&project_root(), &["render", "--env", env]);
        assert_eq!(out, again, "render must be deterministic");
        insta::assert_snapshot!(format!("render-{env}"), out);
    }
}

#[test]
fn rendered_yaml_reads_back_as_the_same_objects() {
    let (_, out, _) = keelson(&project_root(), &["render", "--env", "prod"]);
    let docs = keelson::yaml::parse_documents(&out, keelson::yaml::Limits::default()).unwrap();
    let back: Vec<Value> = docs.iter().map(|d| d.to_json()).collect();
    assert_eq!(back, prod_objects());
}

#[test]
fn render_of_an_unknown_environment_names_the_known_ones() {
    let (code, _, err) = keelson(&project_root(), &["render", "--env", "prd"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `prod`?"), "{err}");
}
