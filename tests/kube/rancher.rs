//! Rancher state in the same reconcile as the Kubernetes objects: the real
//! binary against both test servers.

use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions};

use crate::Harness;

struct Both {
    h: Harness,
    rancher: RancherServer,
    _rt: tokio::runtime::Runtime,
}

fn both(token: &str) -> Both {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rancher = rt.block_on(RancherServer::start_with(ServerOptions {
        clusters: vec!["c-m-stag01".into(), "c-m-prod01".into()],
        ..ServerOptions::default()
    }));
    let h = Harness::new();
    std::fs::write(h.path("rancher-token"), token).unwrap();
    let kc = h.path("kubeconfig");
    let cfg = format!(
        "apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  dev:\n    kubeconfig: {kc}\n    context: test\n  staging-eu:\n    kubeconfig: {kc}\n    context: test\n    rancher:\n      url: {url}\n      tokenFile: {tok}\n  prod-eu:\n    kubeconfig: {kc}\n    context: test\n    rancher:\n      url: {url}\n      tokenFile: {tok}\n",
        kc = kc.display(),
        url = rancher.url(),
        tok = h.path("rancher-token").display()
    );
    std::fs::write(h.path("keelson.yaml"), cfg).unwrap();
    Both {
        h,
        rancher,
        _rt: rt,
    }
}

#[test]
fn staging_gets_its_project_members_and_namespace_placement_in_one_reconcile() {
    let b = both(DEFAULT_TOKEN);
    let (code, out, err) = b.h.keelson(&["reconcile", "--env", "staging", "--dry-run"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("Rancher (cluster c-m-stag01, project shop-staging)"),
        "{out}"
    );
    assert!(b.rancher.writes().is_empty(), "dry run wrote to Rancher");

    let (code, out, err) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let projects = b.rancher.projects();
    let project = projects
        .iter()
        .find(|p| p["name"] == "shop-staging")
        .expect("project created");
    assert_eq!(project["resourceQuota"]["limit"]["limitsCpu"], "16");
    let project_id = project["id"].as_str().unwrap().to_string();
    let bindings = b.rancher.bindings();
    assert_eq!(
        bindings
            .iter()
            .filter(|x| x["projectId"] == project_id.as_str())
            .count(),
        2,
        "{bindings:?}"
    );
    let ns =
        b.h.get("v1/namespaces", None, "shop-staging")
            .expect("namespace applied");
    assert_eq!(
        ns["metadata"]["annotations"]["field.cattle.io/projectId"],
        project_id.as_str(),
        "{ns}"
    );

    // Nothing changed: no writes to Rancher nor to Kubernetes.
    b.rancher.clear_log();
    b.h.srv.reset_requests();
    let (code, out, _) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 0, "{out}");
    assert!(b.rancher.writes().is_empty(), "{:?}", b.rancher.writes());
    assert_eq!(b.h.srv.write_count(), 0);

    // A quota change is one Rancher update.
    b.h.edit(
        "environments/staging/environment.yaml",
        "limitsCpu: \"16\"",
        "limitsCpu: \"24\"",
    );
    b.rancher.clear_log();
    let (code, out, _) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(b.rancher.writes().len(), 1, "{:?}", b.rancher.writes());
}

#[test]
fn a_bad_rancher_token_fails_that_environment_only() {
    let b = both("token-wrong:nope");
    let (code, out, _) =
        b.h.keelson(&["reconcile", "--env", "staging", "--env", "dev"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("401"), "{out}");
    assert!(
        !out.contains("token-wrong:nope"),
        "the token must never be printed: {out}"
    );
    assert!(out.contains("dev: 10 created"), "{out}");
    assert!(
        b.h.get("v1/namespaces", None, "shop-staging").is_none(),
        "nothing of staging applied"
    );
}

#[test]
fn retiring_an_environment_removes_the_rancher_state_keelson_created() {
    let b = both(DEFAULT_TOKEN);
    b.h.edit(
        "environments/staging/environment.yaml",
        "    maxDeletePercent: 25\n",
        "    allowDeleteAll: true\n",
    );
    let (code, out, err) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        b.rancher
            .projects()
            .iter()
            .any(|p| p["name"] == "shop-staging")
    );
    assert_eq!(b.rancher.bindings().len(), 2);
    let inv =
        b.h.get("v1/configmaps", Some("shop-staging"), "keelson-inventory")
            .unwrap();
    assert!(
        inv["data"]["inventory"]
            .as_str()
            .unwrap()
            .contains("\"project\":\"shop-staging\""),
        "{inv}"
    );

    std::fs::remove_dir_all(b.h.path("environments/staging")).unwrap();
    let (code, out, _) = b.h.keelson(&["reconcile", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        b.rancher.writes().iter().all(|w| w.method != "DELETE"),
        "dry run deleted in Rancher"
    );
    let (code, out, err) = b.h.keelson(&["reconcile"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let staging_bindings: Vec<_> = b
        .rancher
        .bindings()
        .into_iter()
        .filter(|x| x["labels"]["keelson.dev/environment"] == "staging")
        .collect();
    assert!(
        staging_bindings.is_empty(),
        "staging's bindings removed:\n{out}\n{staging_bindings:?}"
    );
    assert!(
        b.h.get("apps/v1/deployments", Some("shop-staging"), "orders")
            .is_none()
    );
}

#[test]
fn a_limit_below_what_the_project_uses_fails_the_plan_and_writes_nothing() {
    let b = both(DEFAULT_TOKEN);
    let (code, out, err) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let project_id = b
        .rancher
        .projects()
        .iter()
        .find(|p| p["name"] == "shop-staging")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .unwrap();
    // Another team's namespace in the project: 8 + 8 CPUs in use.
    b.rancher
        .add_namespace("c-m-stag01", "search-staging", Some(&project_id));
    b.h.edit(
        "environments/staging/environment.yaml",
        "limitsCpu: \"16\"",
        "limitsCpu: \"12\"",
    );
    b.rancher.clear_log();
    b.h.srv.reset_requests();

    let (code, out, _) = b.h.keelson(&["reconcile", "--env", "staging", "--dry-run"]);
    assert_eq!(code, 1, "a plan Rancher would refuse fails review: {out}");
    assert!(
        out.contains(
            "! Rancher would refuse this: resourceQuota.limit.limitsCpu 12 is below the 16"
        ),
        "{out}"
    );
    let (code, out, _) = b.h.keelson(&["reconcile", "--env", "staging"]);
    assert_eq!(code, 1, "{out}");
    assert!(b.rancher.writes().is_empty(), "{:?}", b.rancher.writes());
    assert_eq!(
        b.h.srv.write_count(),
        0,
        "Kubernetes objects wait for Rancher"
    );
    let project = b.rancher.project(&project_id).unwrap();
    assert_eq!(project["resourceQuota"]["limit"]["limitsCpu"], "16");
}
