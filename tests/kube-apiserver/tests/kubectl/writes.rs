//! kubectl verbs beyond apply: dry runs, patches, labels, CRDs, rollout status (watch).

use std::time::Duration;

use kube_apiserver::ServerOptions;
use serde_json::json;

use super::fixtures;
use super::harness::{Kubectl, managed_entry, manifests_dir};

#[test]
fn server_dry_run_stores_nothing() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    k.srv.reset_requests();
    let out = k
        .run(&["apply", "--server-side", "--dry-run=server", "-f", &dir])
        .ok();
    assert!(
        out.stdout
            .contains("deployment.apps/web serverside-applied (server dry run)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        k.srv.write_count(),
        0,
        "dry run must not count as a write: {:?}",
        k.srv.requests()
    );
    assert!(
        k.srv
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.dry_run)
    );
    assert!(
        k.object("apps/v1/deployments", Some("shop"), "web")
            .is_none()
    );

    // kubectl create asks for strict field validation.
    let cm = k.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndta:\n  a: b\n",
    );
    let out = k.run(&["create", "-f", &cm]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Error from server (BadRequest)")
            && out.stderr.contains("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""),
        "{}",
        out.stderr
    );
}

#[test]
fn patch_label_and_scale_like_edits_are_update_managers() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ])
    .ok();
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/minReadySeconds","value":5}]"#,
    ])
    .ok();
    k.run(&[
        "patch", "deploy", "web", "-n", "shop", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#,
    ])
    .ok();
    k.run(&["label", "deploy", "web", "-n", "shop", "team=payments"])
        .ok();
    let d = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "JAVA_OPTS", "value": "-Xmx307m"}, {"name": "EXTRA", "value": "1"}])
    );
    assert_eq!(d["metadata"]["labels"]["team"], "payments");
    k.run(&["scale", "deploy", "web", "-n", "shop", "--replicas=4"])
        .ok();
    let scaled = k.get_json(&["deploy", "web", "-n", "shop"]);
    let scaler = scaled["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "scale")
        .unwrap();
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(scaled["spec"]["replicas"], 4);
    assert_eq!(
        d["metadata"]["generation"], 4,
        "three spec patches bump generation; the label does not"
    );
    let patcher =
        managed_entry(&d, "kubectl-patch").expect("kubectl patch records an Update manager");
    assert_eq!(patcher["operation"], "Update");
    assert!(patcher["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    assert!(managed_entry(&d, "kubectl-label").is_some());

    // The applier drops env EXTRA? It never owned it, so a re-apply keeps it.
    k.run(&["apply", "--server-side", "--force-conflicts", "-f", &dir])
        .ok();
    let d = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][1]["name"],
        "EXTRA"
    );
    assert_eq!(d["spec"]["replicas"], 2);
}

#[test]
fn crd_becomes_served_once_established() {
    // A delay no test outlives: the CRD is established by the hook below, never by the timer.
    let opts = ServerOptions {
        crd_establish_delay: Duration::from_secs(3600),
        ..ServerOptions::default()
    };
    let Some(k) = Kubectl::start_with(opts) else {
        return;
    };
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    let crd = k.write("crd.yaml", fixtures::CRD);
    k.run(&["apply", "--server-side", "-f", &crd]).ok();
    let early = k.run(&["get", "widgets", "-A"]);
    assert_eq!(
        early.code, 1,
        "not served before Established: {}",
        early.stdout
    );
    let not_yet = k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=1s",
    ]);
    assert_eq!(
        not_yet.code, 1,
        "the condition is not there yet: {}",
        not_yet.stdout
    );
    k.srv.establish_crds();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ])
    .ok();
    let widget = k.write("widget.yaml", fixtures::WIDGET);
    k.run(&["apply", "--server-side", "-f", &widget]).ok();
    let w = k.get_json(&["wdg", "blue", "-n", "shop"]);
    assert_eq!(w["spec"]["size"], 3);
    assert_eq!(w["kind"], "Widget");
    let names = k.run(&["get", "widgets", "-A", "-o", "name"]).ok().stdout;
    assert_eq!(names.trim(), "widget.example.com/blue");
    k.run(&["delete", "crd", "widgets.example.com"]).ok();
    // kubectl still has the type in its discovery cache; the server no longer serves it.
    let gone = k.run(&["get", "widgets", "-A"]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr
            .contains("the server could not find the requested resource"),
        "{}",
        gone.stderr
    );
}

#[test]
fn rollout_status_watches_until_ready_and_reports_unhealthy() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let out = k
        .run(&[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "shop",
            "--timeout=10s",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("deployment \"web\" successfully rolled out"),
        "{}",
        out.stdout
    );

    k.srv.set_deployment_healthy("shop", "web", false);
    let bad = k.run(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "shop",
        "--timeout=10s",
    ]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("deployment \"web\" exceeded its progress deadline"),
        "{}",
        bad.stderr
    );
}

#[test]
fn label_selector_lists_page_with_chunk_size() {
    let Some(k) = Kubectl::start() else { return };
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    let mut docs = String::new();
    for i in 0..7 {
        let tier = if i % 2 == 0 { "a" } else { "b" };
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: shop\n  labels:\n    tier: {tier}\n"
        ));
    }
    let f = k.write("cms.yaml", &docs);
    k.run(&["apply", "--server-side", "-f", &f]).ok();
    k.srv.reset_requests();
    let names = k
        .run(&[
            "get",
            "cm",
            "-n",
            "shop",
            "-l",
            "tier in (a)",
            "--chunk-size=2",
            "-o",
            "name",
        ])
        .ok()
        .stdout;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "configmap/cm-0",
            "configmap/cm-2",
            "configmap/cm-4",
            "configmap/cm-6"
        ]
    );
    let lists: Vec<_> = k
        .srv
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces/shop/configmaps")
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(lists[1].query.contains("continue="), "{lists:?}");
    let none = k
        .run(&[
            "get",
            "cm",
            "-n",
            "shop",
            "-l",
            "tier notin (a,b)",
            "-o",
            "name",
        ])
        .ok()
        .stdout;
    assert_eq!(none.trim(), "");
}

#[test]
fn client_side_apply_upgrades_to_server_side_without_touching_the_spec() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "-f", &dir]).ok();
    let csa = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(
        managed_entry(&csa, "kubectl-client-side-apply").unwrap()["operation"],
        "Update"
    );
    assert!(
        csa["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // kubectl moves the client-side manager's fields to its server-side manager (a JSON patch of
    // managedFields), then applies; defaults the old manager owned must not be lost.
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let ssa = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert!(
        managed_entry(&ssa, "kubectl-client-side-apply").is_none(),
        "{}",
        ssa["metadata"]["managedFields"]
    );
    assert_eq!(
        managed_entry(&ssa, "kubectl").unwrap()["operation"],
        "Apply"
    );
    assert_eq!(ssa["metadata"]["generation"], 1);
    assert_eq!(ssa["spec"], csa["spec"]);

    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let again = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        ssa["metadata"]["resourceVersion"]
    );
}

#[test]
fn get_watch_prints_rows_for_new_objects() {
    use std::io::Read;
    let Some(k) = Kubectl::start() else { return };
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    let mut child = std::process::Command::new(super::harness::KUBECTL)
        .args(["get", "configmaps", "-n", "shop", "-w", "--cache-dir"])
        .arg(k.path("cache"))
        .env("KUBECONFIG", k.path("kubeconfig"))
        .env("HOME", k.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kubectl get -w");
    // Wait (bounded) until kubectl's watch is open, then create an object it must report.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !k
        .srv
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/configmaps") && r.query.contains("watch=true"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl never opened its watch"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cm = k.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: shop\ndata:\n  a: b\n");
    k.run(&["apply", "--server-side", "-f", &cm]).ok();
    // kubectl prints the row as soon as the event arrives; the server then ends the watch.
    k.srv.close_watches();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let row = out
        .lines()
        .find(|l| l.starts_with("watched"))
        .unwrap_or_else(|| panic!("no row for the new object in:\n{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "1", "DATA column: {row}");
}

#[test]
fn a_misspelled_field_fails_server_side_apply() {
    let Some(k) = Kubectl::start() else { return };
    let ns = k.write("ns.yaml", fixtures::NAMESPACE);
    k.run(&["apply", "--server-side", "-f", &ns]).ok();
    let typo = k.write(
        "typo.yaml",
        &fixtures::DEPLOYMENT.replace("  replicas: 2", "  replicaz: 2"),
    );
    let out = k.run(&["apply", "--server-side", "-f", &typo]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema"),
        "{}",
        out.stderr
    );
    assert!(
        k.object("apps/v1/deployments", Some("shop"), "web")
            .is_none()
    );
}

/// `kubectl patch --subresource=status` (deploymentStatusStrategy): the
/// spec and labels it sends are reset and owned by nobody, its annotation
/// is kept and owned by `kubectl-patch` (subresource status), and the
/// generation stays. (The stand-in controller rewrites the status at once.)
#[test]
fn a_status_patch_keeps_the_spec_and_labels_and_owns_only_what_it_kept() {
    let Some(k) = Kubectl::start() else { return };
    let dir = manifests_dir(&k);
    k.run(&["apply", "--server-side", "-f", &dir]).ok();
    let before = k.get_json(&["deploy", "web", "-n", "shop"]);
    k.run(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"x"},"annotations":{"seen":"yes"}},"spec":{"replicas":9},"status":{"collisionCount":1}}"#,
    ])
    .ok();
    let d = k.get_json(&["deploy", "web", "-n", "shop"]);
    assert_eq!(d["spec"]["replicas"], before["spec"]["replicas"]);
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{d}");
    assert_eq!(d["metadata"]["annotations"]["seen"], "yes");
    assert_eq!(
        d["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    let patcher = managed_entry(&d, "kubectl-patch").expect("an Update manager");
    assert_eq!(patcher["subresource"], "status");
    let f = &patcher["fieldsV1"];
    assert!(
        f["f:metadata"]["f:annotations"]["f:seen"].is_object(),
        "{f}"
    );
    assert!(f["f:metadata"].get("f:labels").is_none(), "{f}");
    assert!(f.get("f:spec").is_none(), "{f}");
}
