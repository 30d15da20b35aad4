//! Tenancy (issue 9, point 5): every reach of one environment into another,
//! into a system namespace or into the cluster is refused at `validate`
//! with file:line:col, and allowed when a platform policy grants it; at plan
//! time another environment's objects and namespace are never taken over
//! or pruned.

use kube_apiserver::Gvr;

use crate::Harness;

const REACH: &str = "environments/dev/manifests/reach.yaml";

/// Each case: a manifest (or an edit), and where `validate` must point.
const CASES: &[(&str, &str, &str)] = &[
    (
        "Namespace of another environment",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-prod\n",
        "reach.yaml:2:7",
    ),
    (
        "ConfigMap in another environment's namespace",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dev-was-here\n  namespace: shop-prod\ndata:\n  a: b\n",
        "reach.yaml:5:14",
    ),
    (
        "ConfigMap in kube-system",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dev-was-here\n  namespace: kube-system\ndata:\n  a: b\n",
        "reach.yaml:5:14",
    ),
    (
        "ClusterRoleBinding to cluster-admin",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: dev-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: shop-dev\n",
        "reach.yaml:2:7",
    ),
];

const GRANT: &str = "apiVersion: keelson.dev/v1\nkind: Policy\nmetadata:\n  name: dev-reach\nspec:\n  appliesTo: [dev]\n  tenancy:\n    destinations:\n      - namespace: shop-prod\n      - namespace: kube-system\n    clusterResourceWhitelist:\n      - group: \"\"\n        kind: Namespace\n      - group: rbac.authorization.k8s.io\n        kind: ClusterRoleBinding\n";

fn write(h: &Harness, rel: &str, text: &str) {
    let p = h.path(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn each_reach_is_refused_at_validate_and_allowed_by_a_policy() {
    let h = Harness::new();
    for (what, manifest, at) in CASES {
        write(&h, REACH, manifest);
        let (code, out, err) = h.keelson(&["validate", "--color", "never"]);
        assert_eq!(code, 1, "{what}: refused\n{err}{out}");
        assert!(
            out.contains(&format!("environments/dev/manifests/{at}")),
            "{what}: {out}"
        );
        assert!(out.contains("error[tenancy]"), "{what}: {out}");
        assert!(
            out.contains("tenancy:"),
            "{what}: says which policy field grants it\n{out}"
        );
        h.srv.reset_requests();
        let (code, _, _) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
        assert_eq!(code, 1, "{what}");
        assert_eq!(h.srv.write_count(), 0, "{what}: nothing applied");
    }
    // A system namespace as the environment's own.
    std::fs::remove_file(h.path(REACH)).unwrap();
    h.edit(
        "environments/dev/environment.yaml",
        "namespace: shop-dev",
        "namespace: kube-system",
    );
    let (code, out, _) = h.keelson(&["validate", "--color", "never"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("environments/dev/environment.yaml:9:14"),
        "{out}"
    );
    assert!(out.contains("`kube-system` is a system namespace"), "{out}");

    // The platform team grants each of them.
    write(&h, "policies/dev-reach.yaml", GRANT);
    let (code, out, err) = h.keelson(&["validate", "--color", "never"]);
    assert_eq!(
        code, 0,
        "kube-system granted as dev's namespace\n{err}{out}"
    );
    h.edit(
        "environments/dev/environment.yaml",
        "namespace: kube-system",
        "namespace: shop-dev",
    );
    for (what, manifest, _) in CASES {
        write(&h, REACH, manifest);
        let (code, out, err) = h.keelson(&["validate", "--color", "never"]);
        assert_eq!(code, 0, "{what}: granted\n{err}{out}");
    }
    // And applied: all four at once.
    let all: Vec<&str> = CASES.iter().map(|c| c.1).collect();
    write(
        &h,
        REACH,
        &all.join("---\n").replace(
            "name: dev-was-here\n  namespace: kube-system",
            "name: dev-was-here-too\n  namespace: kube-system",
        ),
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        h.get("v1/configmaps", Some("kube-system"), "dev-was-here-too")
            .is_some()
    );
    assert!(
        h.get("v1/configmaps", Some("shop-prod"), "dev-was-here")
            .is_some()
    );
    assert!(
        h.get(
            "rbac.authorization.k8s.io/v1/clusterrolebindings",
            None,
            "dev-admin"
        )
        .is_some()
    );
}

#[test]
fn another_environments_namespace_and_objects_are_never_taken_over_or_pruned() {
    let h = Harness::new();
    // dev claims prod's namespace (granted, or from before tenancy was
    // checked) before prod exists, and puts prod's ConfigMap there.
    write(&h, "policies/dev-reach.yaml", GRANT);
    write(&h, REACH, CASES[0].1);
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    let ns = h.get("v1/namespaces", None, "shop-prod").unwrap();
    assert_eq!(ns["metadata"]["labels"]["keelson.dev/environment"], "dev");

    // prod does not take the namespace over, even with adopt.
    h.edit(
        "environments/prod/environment.yaml",
        "  apps:\n",
        "  adopt: true\n  apps:\n",
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "prod", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(
            "belongs to environment `dev`; an environment never takes over another's objects"
        ),
        "{out}"
    );
    assert!(
        h.get("apps/v1/deployments", Some("shop-prod"), "orders")
            .is_some()
    );
    let ns = h.get("v1/namespaces", None, "shop-prod").unwrap();
    assert_eq!(ns["metadata"]["labels"]["keelson.dev/environment"], "dev");

    // dev drops the manifest: it never prunes the namespace prod lives in.
    std::fs::remove_file(h.path(REACH)).unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert!(code == 0 || code == 2, "{out}{err}");
    assert!(out.contains("holds environment `prod`'s objects"), "{out}");
    let ns = h.get("v1/namespaces", None, "shop-prod").unwrap();
    assert!(ns["metadata"]["deletionTimestamp"].is_null(), "{ns}");
    assert!(
        h.get("apps/v1/deployments", Some("shop-prod"), "orders")
            .is_some()
    );
    let cms = h
        .srv
        .list_objects(&Gvr::parse("v1/configmaps"), Some("shop-prod"));
    assert!(cms.iter().any(|c| c["metadata"]["name"] == "shop-config"));
}
