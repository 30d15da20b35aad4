//! Fidelity of the Kubernetes API test server, proven by driving it with the real kubectl.
//!
//! Every test starts its own server, writes a kubeconfig, and runs `/usr/bin/kubectl` (or
//! `$KUBECTL`); when kubectl is missing the tests fail, unless `KEELSON_SKIP_KUBECTL_TESTS=1`
//! skips them on purpose. Debian 12's `kubernetes-client` (kubectl 1.20) is too old: it asks for
//! API paths a 1.28+ server no longer serves.

mod fidelity;
mod fixtures;
mod harness;
mod writes;

use harness::{Kubectl, managed_entry, manifests_dir};

#[test]
fn server_side_apply_of_a_manifest_dir_records_managers_generation_and_rv() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    let out = k.run(&["apply", "--server-side", "-f", &dir]).ok();
    for line in [
        "namespace/shop serverside-applied",
        "configmap/web-settings serverside-applied",
        "deployment.apps/web serverside-applied",
        "service/web serverside-applied",
        "ingress.networking.k8s.io/web serverside-applied",
        "poddisruptionbudget.policy/web serverside-applied",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing {line:?} in:\n{}",
            out.stdout
        );
    }

    let d = k.get_json(&["deployment", "web", "-n", "shop"]);
    assert_eq!(d["metadata"]["generation"], 1);
    let rv: u64 = d["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 0);
    let entry = managed_entry(&d, "kubectl").expect("kubectl owns the applied fields");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    let containers = &entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(
        containers["k:{\"name\":\"web\"}"]["f:image"].is_object(),
        "{containers}"
    );
    assert!(
        containers["k:{\"name\":\"web\"}"]["f:ports"]["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"].is_object(),
        "{containers}"
    );
    // Server defaults are present but not owned by kubectl.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(entry["fieldsV1"]["f:spec"].get("f:strategy").is_none());
    // The status stand-in reports the rollout as done, under its own manager.
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(
        managed_entry(&d, "kube-controller-manager").unwrap()["subresource"],
        "status"
    );

    let svc = k.get_json(&["service", "web", "-n", "shop"]);
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    let ing = k.get_json(&["ingress", "web", "-n", "shop"]);
    assert_eq!(ing["spec"]["rules"][0]["host"], "shop.dev.example.com");
    let pdb = k.get_json(&["pdb", "web", "-n", "shop"]);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let cm = k.get_json(&["cm", "web-settings", "-n", "shop"]);
    assert_eq!(cm["data"]["REGION"], "eu-west");
    assert_eq!(cm["kind"], "ConfigMap");

    let yaml = k
        .run(&["get", "deploy", "web", "-n", "shop", "-o", "yaml"])
        .ok()
        .stdout;
    assert!(
        yaml.contains("kind: Deployment")
            && yaml.contains("image: registry.example.com/shop/web:1.4.2")
    );

    let names = k
        .run(&[
            "get",
            "deploy,svc,cm",
            "-n",
            "shop",
            "-l",
            "app=web",
            "-o",
            "name",
        ])
        .ok()
        .stdout;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "deployment.apps/web",
            "service/web",
            "configmap/web-settings"
        ]
    );
    let table = k.run(&["get", "deploy", "-n", "shop"]).ok().stdout;
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("2/2"),
        "{table}"
    );
}

#[test]
fn changed_image_bumps_generation_and_diff_exits_one_then_zero() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let unchanged = k.run(&["diff", "--server-side", "-f", &dir]);
    assert_eq!(
        unchanged.code, 0,
        "no change expected:\n{}{}",
        unchanged.stdout, unchanged.stderr
    );

    let rv_before =
        k.get_json(&["deploy", "web", "-n", "shop"])["metadata"]["resourceVersion"].clone();
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let again = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(
        again["metadata"]["resourceVersion"], rv_before,
        "a no-op apply must not write"
    );

    let path = k.path("manifests/20-deployment.yaml");
    let changed = fixtures::DEPLOYMENT.replace("web:1.4.2", "web:1.5.0");
    std::fs::write(&path, changed).unwrap();
    let diff = k.run(&["diff", "--server-side", "-f", &dir]);
    assert_eq!(
        diff.code, 1,
        "diff should report the change:\n{}{}",
        diff.stdout, diff.stderr
    );
    assert!(
        diff.stdout
            .contains("-        image: registry.example.com/shop/web:1.4.2"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("+        image: registry.example.com/shop/web:1.5.0"),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains("+  generation: 2"), "{}", diff.stdout);
    // diff used dryRun: nothing stored.
    assert_eq!(
        k.get_json(&["deploy", "web", "-n", "shop"])["metadata"]["generation"],
        1
    );

    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let d = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/web:1.5.0"
    );
    assert_eq!(k.run(&["diff", "--server-side", "-f", &dir]).code, 0);
}

#[test]
fn another_field_manager_conflicts_until_forced() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let hpa = k.write(
        "hpa/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  replicas: 5\n",
    );
    let refused = k.run(&[
        "apply",
        "--server-side",
        "--field-manager=hpa-controller",
        "-f",
        &hpa,
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        k.get_json(&["deploy", "web", "-n", "shop"])["spec"]["replicas"],
        2
    );

    k.run(&[
        "apply",
        "--server-side",
        "--field-manager=hpa-controller",
        "--force-conflicts",
        "-f",
        &hpa,
    ])
    .ok();
    let d = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(d["spec"]["replicas"], 5);
    let hpa_entry = managed_entry(&d, "hpa-controller").unwrap();
    assert_eq!(
        hpa_entry["fieldsV1"],
        serde_json::json!({"f:spec": {"f:replicas": {}}})
    );
    let kubectl_entry = managed_entry(&d, "kubectl").unwrap();
    assert!(
        kubectl_entry["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}

#[test]
fn delete_then_get_is_not_found_and_create_twice_already_exists() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let deploy = k.path("manifests/20-deployment.yaml");
    let out = k.run(&["delete", "-f", deploy.to_str().unwrap()]).ok();
    assert_eq!(out.stdout.trim(), "deployment.apps \"web\" deleted");
    let get = k.run(&["get", "deploy", "web", "-n", "shop"]);
    assert_eq!(get.code, 1);
    assert_eq!(
        get.stderr.trim(),
        "Error from server (NotFound): deployments.apps \"web\" not found"
    );

    let cm = k.write("extra/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: shop\ndata:\n  a: b\n");
    k.run(&["create", "-f", &cm]).ok();
    let twice = k.run(&["create", "-f", &cm]);
    assert_eq!(twice.code, 1);
    assert!(
        twice
            .stderr
            .contains("Error from server (AlreadyExists): error when creating")
            && twice.stderr.contains("configmaps \"extra\" already exists"),
        "{}",
        twice.stderr
    );
    let created = k.get_json(&["cm", "extra", "-n", "shop"]);
    assert_eq!(
        managed_entry(&created, "kubectl-create").unwrap()["operation"],
        "Update"
    );

    let ns_missing = k.write(
        "extra/lost.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: nowhere\n",
    );
    let lost = k.run(&["create", "-f", &ns_missing]);
    assert!(
        lost.stderr.contains("Error from server (NotFound)")
            && lost.stderr.contains("namespaces \"nowhere\" not found"),
        "{}",
        lost.stderr
    );

    // Deleting the namespace removes it and its content; kubectl waits for that.
    let out = k.run(&["delete", "namespace", "shop"]).ok();
    assert_eq!(out.stdout.trim(), "namespace \"shop\" deleted");
    assert!(k.object("v1/configmaps", Some("shop"), "extra").is_none());
}

#[test]
fn https_with_generated_ca_and_required_token() {
    let opts = kube_apiserver::ServerOptions {
        tls: true,
        require_token: true,
        ..Default::default()
    };
    let Some(k) = Kubectl::start_with(opts) else {
        return;
    };
    assert!(k.srv.url().starts_with("https://127.0.0.1:"));
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    assert_eq!(
        k.get_json(&["deploy", "web", "-n", "shop"])["metadata"]["generation"],
        1
    );
    let requests = k.srv.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.authenticated),
        "kubectl sent its token over TLS"
    );
}
