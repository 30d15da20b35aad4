//! deploy/ as a user would use it: its manifests pass `keelson validate`
//! (as an environment's passthrough manifests), `kubernetes-validate
//! --strict` and `kubectl apply --server-side --dry-run=server -k deploy/`
//! against the test API server; the keelson.yaml it ships passes keelson's
//! own config check; and the RBAC checker of [`crate::rbac`] refuses what
//! the Role does not grant (the HA test checks every replica request with
//! it). About 3 s.

use std::path::Path;
use std::process::Command;

use kube_apiserver::{Gvr, RequestRecord, TestServer};
use serde_json::json;

use crate::cluster::{LEASE_NS, copy_dir};

const KUBECTL: &str = "/usr/bin/kubectl";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `deploy/*.yaml` files that are Kubernetes objects.
const OBJECTS: [&str; 9] = [
    "namespace",
    "crd",
    "serviceaccount",
    "rbac",
    "config",
    "deployment",
    "pdb",
    "service",
    "secrets.example",
];

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn keelson_validate_and_kubernetes_validate_accept_deploy() {
    // keelson validate: deploy/ as the manifests of an environment.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&root().join("schema"), &repo.join("schema"));
    std::fs::create_dir_all(repo.join("policies")).unwrap();
    std::fs::copy(
        root().join("policies/base.yaml"),
        repo.join("policies/base.yaml"),
    )
    .unwrap();
    // keelson's own CRD and cluster-wide RBAC are cluster-scoped: tenancy refuses them unless the
    // platform team grants them, as it would to deploy keelson with keelson.
    std::fs::write(
        repo.join("policies/keelson-platform.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Policy\nmetadata:\n  name: keelson-platform\nspec:\n  appliesTo: [keelson]\n  tenancy:\n    clusterResourceWhitelist:\n      - {group: apiextensions.k8s.io, kind: CustomResourceDefinition}\n      - {group: rbac.authorization.k8s.io, kind: ClusterRole}\n      - {group: rbac.authorization.k8s.io, kind: ClusterRoleBinding}\n",
    )
    .unwrap();
    let env = repo.join("environments/keelson");
    std::fs::create_dir_all(env.join("manifests")).unwrap();
    std::fs::write(
        env.join("environment.yaml"),
        format!(
            "apiVersion: keelson.dev/v1\nkind: Environment\nmetadata:\n  name: keelson\nspec:\n  cluster: home\n  namespace: {LEASE_NS}\n  apps: []\n"
        ),
    )
    .unwrap();
    for f in OBJECTS {
        std::fs::copy(
            root().join(format!("deploy/{f}.yaml")),
            env.join(format!("manifests/{f}.yaml")),
        )
        .unwrap();
    }
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["validate", "--color", "never", "--repo"])
        .arg(&repo));
    assert!(ok, "keelson validate refused deploy/:\n{out}");
    assert!(out.contains("1 environment"), "{out}");

    // The keelson.yaml of deploy/config.yaml passes the controller's config
    // check (its secret files moved under a temporary root).
    let cm = keelson::yaml::parse_one(
        &std::fs::read_to_string(root().join("deploy/config.yaml")).unwrap(),
        keelson::yaml::Limits::default(),
    )
    .unwrap()
    .to_json();
    let etc = dir.path().join("etc/keelson");
    for (sub, file) in [("git", "token"), ("webhook", "secret")] {
        std::fs::create_dir_all(etc.join(sub)).unwrap();
        std::fs::write(etc.join(sub).join(file), "not-a-real-secret\n").unwrap();
    }
    let text = cm["data"]["keelson.yaml"]
        .as_str()
        .unwrap()
        .replace("/etc/keelson/", &format!("{}/", etc.display()));
    let cfg = dir.path().join("keelson.yaml");
    std::fs::write(&cfg, text).unwrap();
    let loaded = keelson::controller::config::load(&cfg)
        .unwrap_or_else(|e| panic!("deploy/config.yaml's keelson.yaml: {e}"));
    let leases = loaded.settings.leases.expect("controller.leases is set");
    assert_eq!(leases.cluster.as_deref(), Some("in-cluster"));

    // kubernetes-validate --strict (PyPI; scripts/test installs it).
    let have = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let opted_out = std::env::var("KEELSON_SKIP_KUBERNETES_VALIDATE").is_ok_and(|v| v == "1");
        assert!(
            opted_out,
            "kubernetes-validate is not installed (`python3 -m pip install kubernetes-validate`, \
             as scripts/test does); KEELSON_SKIP_KUBERNETES_VALIDATE=1 skips this check on purpose"
        );
        eprintln!("SKIPPED on purpose (KEELSON_SKIP_KUBERNETES_VALIDATE=1): kubernetes-validate");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    for f in OBJECTS {
        cmd.arg(root().join(format!("deploy/{f}.yaml")));
    }
    let (ok, out) = run(&mut cmd);
    assert!(ok, "kubernetes-validate --strict refused deploy/:\n{out}");
    let passed = out.matches(" passed for resource ").count();
    // 13 objects in the 9 files.
    assert_eq!(passed, 13, "every object of deploy/ validated:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_dry_run_of_deploy_passes() {
    if !Path::new(KUBECTL).exists() {
        let opted_out = std::env::var("KEELSON_SKIP_KUBECTL_TESTS").is_ok_and(|v| v == "1");
        assert!(
            opted_out,
            "kubectl not found at {KUBECTL}; KEELSON_SKIP_KUBECTL_TESTS=1 skips this on purpose"
        );
        eprintln!("SKIPPED on purpose (KEELSON_SKIP_KUBECTL_TESTS=1): kubectl not found");
        return;
    }
    let srv = TestServer::start().await;
    // As in the README: the namespace exists (a dry run creates nothing, so
    // the namespaced objects need it), and the Prometheus Operator's CRD for
    // the ServiceMonitor example.
    srv.create_object(
        &Gvr::parse("v1/namespaces"),
        "test-seed",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}}),
    )
    .unwrap();
    srv.create_object(
        &Gvr::parse("apiextensions.k8s.io/v1/customresourcedefinitions"),
        "test-seed",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
               "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors",
                                  "singular": "servicemonitor", "listKind": "ServiceMonitorList"},
                        "versions": [{"name": "v1", "served": true, "storage": true,
                                      "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    srv.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = |args: &[&str]| {
        let mut cmd = Command::new(KUBECTL);
        cmd.args(args)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path());
        run(&mut cmd)
    };
    let deploy = root().join("deploy");
    let examples = root().join("deploy/examples/servicemonitor.yaml");
    for target in [
        vec!["-k", deploy.to_str().unwrap()],
        vec!["-f", examples.to_str().unwrap()],
    ] {
        let mut args = vec![
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=kubectl",
        ];
        args.extend(target);
        let (ok, out) = kubectl(&args);
        assert!(ok, "kubectl {}:\n{out}", args.join(" "));
        assert!(out.contains("(server dry run)"), "{out}");
    }
    // A dry run wrote nothing.
    assert!(
        srv.get_object(
            &Gvr::parse("apps/v1/deployments"),
            Some(LEASE_NS),
            "keelson"
        )
        .is_none()
    );
}

/// The checker used on the HA test's request log is not vacuous: it
/// refuses what deploy/rbac.yaml does not grant.
#[test]
fn the_rbac_checker_refuses_what_the_role_does_not_grant() {
    let rbac = crate::rbac::Rbac::load(root());
    let req = |method: &str, path: &str| {
        let now = std::time::Instant::now();
        let r = RequestRecord {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            content_type: None,
            user_agent: Some("keelson/0.1.0 (replica-0)".into()),
            status: 200,
            dry_run: false,
            authenticated: true,
            started: now,
            finished: now,
        };
        rbac.allows(&crate::rbac::attributes(&r).unwrap())
    };
    let lease =
        format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/keelson-env-prod");
    assert!(req("PUT", &lease));
    assert!(req("GET", &lease));
    assert!(!req("DELETE", &lease), "nothing deletes Leases");
    assert!(
        !req("PATCH", &lease),
        "Leases are only PUT with a resourceVersion"
    );
    assert!(
        !req(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/shop-prod/leases/x"
        ),
        "the Role is for the Leases' namespace only"
    );
    let status =
        format!("/apis/keelson.dev/v1/namespaces/{LEASE_NS}/keelsonenvironments/prod/status");
    assert!(req("PATCH", &status));
    assert!(!req("PUT", &status));
    assert!(req(
        "PATCH",
        "/apis/apps/v1/namespaces/shop-prod/deployments/orders"
    ));
    assert!(req("DELETE", "/api/v1/namespaces/shop-prod/configmaps/x"));
    assert!(!req(
        "GET",
        "/api/v1/namespaces/shop-prod/pods/orders-1/log"
    ));
    assert!(!req(
        "PATCH",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin"
    ));
}
