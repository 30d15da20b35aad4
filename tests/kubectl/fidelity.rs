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
