//! What kubectl sees of the server's stored form, defaults and validation: the same behaviour a
//! real kube-apiserver shows (REAL-SERVER.md), proven through the real client.

use super::fixtures;
use super::harness::Kubectl;

const SIZED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: sized
  namespace: shop
spec:
  selector:
    matchLabels: {app: sized}
  template:
    metadata:
      labels: {app: sized}
    spec:
      containers:
      - name: app
        image: app:1
        args: []
        env:
        - {name: EMPTY, value: \"\"}
        resources:
          requests: {cpu: 0.5, memory: 1024Mi}
          limits: {cpu: 1000m, memory: 2048Mi}
";

#[test]
fn stored_form_is_canonical_and_diff_of_the_same_manifest_is_empty() {
    let Some(k) = Kubectl::start() else { return };
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    let file = k.write("sized.yaml", SIZED);
    k.run(&["apply", "--server-side", "-f", &file]).ok();
    let d = k.get_json(&["deployment", "sized", "-n", "shop"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"]["cpu"], "500m");
    assert_eq!(c["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(c["resources"]["limits"]["cpu"], "1");
    assert_eq!(c["resources"]["limits"]["memory"], "2Gi");
    assert!(c.get("args").is_none(), "{c}");
    assert_eq!(c["env"][0], serde_json::json!({"name": "EMPTY"}));
    assert!(
        d["spec"]["template"]["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp")
    );
    // The server's dry run of the same manifest lands on the same stored form: no diff.
    let diff = k.run(&["diff", "--server-side", "-f", &file]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
    let cm = k.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {}\n",
    );
    k.run(&["apply", "--server-side", "-f", &cm]).ok();
    let c = k.get_json(&["configmap", "c", "-n", "shop"]);
    assert!(c.get("data").is_none(), "{c}");
    assert!(c["metadata"].get("generation").is_none(), "{c}");
}

#[test]
fn generator_commands_that_send_protobuf_create_objects() {
    let Some(k) = Kubectl::start() else { return };
    k.run(&["create", "namespace", "team-a"]).ok();
    let ns = k.get_json(&["namespace", "team-a"]);
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    k.run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=REGION=eu-west",
    ])
    .ok();
    let cm = k.get_json(&["configmap", "settings", "-n", "team-a"]);
    assert_eq!(cm["data"]["REGION"], "eu-west");
    assert_eq!(
        super::harness::managed_entry(&cm, "kubectl-create").unwrap()["operation"],
        "Update"
    );
    k.run(&[
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        "team-a",
        "--from-literal=password=hunter2",
    ])
    .ok();
    let s = k.object("v1/secrets", Some("team-a"), "db").unwrap();
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    assert_eq!(s["type"], "Opaque");
    k.run(&["create", "serviceaccount", "robot", "-n", "team-a"])
        .ok();
    assert!(
        k.object("v1/serviceaccounts", Some("team-a"), "robot")
            .is_some()
    );
    // A kind without a protobuf table is refused with 415, naming what the server reads.
    let out = k.run(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team-a",
        "--image=web:1",
    ]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("unknown format") && out.stderr.contains("send JSON"),
        "{}",
        out.stderr
    );
}

#[test]
fn webhook_configurations_are_served_and_defaulted() {
    let Some(k) = Kubectl::start() else { return };
    let hook = k.write(
        "hook.yaml",
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: policy
webhooks:
- name: check.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig:
    service: {namespace: default, name: policy}
  rules:
  - operations: [CREATE]
    apiGroups: [apps]
    apiVersions: [v1]
    resources: [deployments]
",
    );
    k.run(&["apply", "--server-side", "-f", &hook]).ok();
    let w = k.get_json(&["validatingwebhookconfiguration", "policy"]);
    let hook = &w["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["matchPolicy"], "Equivalent");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["namespaceSelector"], serde_json::json!({}));
    assert_eq!(hook["rules"][0]["scope"], "*");
    assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    assert_eq!(w["metadata"]["generation"], 1);
    let diff = k.run(&[
        "diff",
        "--server-side",
        "-f",
        &k.path("hook.yaml").to_string_lossy(),
    ]);
    assert_eq!(diff.code, 0, "{}{}", diff.stdout, diff.stderr);
}
