//! The regression suite of issue #15: objects stored the way a real
//! kube-apiserver stores them (canonical quantities, dropped empty
//! collections, defaults inside lists, Go artefacts, `stringData` folded into
//! `data`), written from manifests that use the other forms
//! (tests/fixtures/real-server). On those:
//! - an unchanged environment plans nothing, offline too, and no request
//!   goes beyond one LIST per kind and namespace;
//! - a change in Git plans exactly that change;
//! - a change by hand or by another manager shows and is reverted;
//! - a field delegated to an HPA is left to it, without an ignore rule.
//!
//! Every step checks the live state, not only keelson's output.

use serde_json::{Value, json};

use crate::Harness;

const FIXTURE: &str = "tests/fixtures/real-server/ledger.yaml";
const STS: &str = "apps/v1/statefulsets";
const DEPLOY: &str = "apps/v1/deployments";

fn with_fixture() -> Harness {
    let h = Harness::new();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE),
        h.path("environments/prod/manifests/ledger.yaml"),
    )
    .unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "prod", "--no-wait"]);
    assert_eq!(code, 2, "{out}\n{err}");
    h
}

/// The changed lines of a plan's diffs: diff lines are indented by four
/// spaces, then their marker (`+`, `-`, or a space for context); the
/// `---`/`+++` headers are left out.
fn changed_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .map(String::from)
        .collect()
}

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
fn an_environment_stored_in_a_real_servers_form_plans_nothing_online_or_offline() {
    let h = with_fixture();
    // The server did store other forms than the manifests wrote.
    let sts = h.get(STS, Some("shop-prod"), "ledger").unwrap();
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"]["cpu"], "500m", "{c}");
    assert_eq!(c["resources"]["limits"]["memory"], "1536Mi", "{c}");
    assert!(c.get("env").is_none() && c.get("args").is_none(), "{c}");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let np = h
        .get(
            "networking.k8s.io/v1/networkpolicies",
            Some("shop-prod"),
            "ledger-from-payments",
        )
        .unwrap();
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
    let secret = h.get("v1/secrets", Some("shop-prod"), "ledger-db").unwrap();
    assert!(secret.get("stringData").is_none() && secret["data"]["password"].is_string());

    h.srv.reset_requests();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 0, "no phantom drift:\n{out}\n{err}");
    let asked: Vec<String> = h
        .srv
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" || r.query.contains("dryRun"))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(asked.is_empty(), "a no-op plan only reads: {asked:?}");
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);

    // Offline, from what `kubectl get -o yaml --show-managed-fields` shows.
    let dir = tempfile::tempdir().unwrap();
    let mut captured = Vec::new();
    for gvr in [
        "v1/namespaces",
        "v1/configmaps",
        "v1/secrets",
        "v1/services",
        "apps/v1/deployments",
        "apps/v1/statefulsets",
        "networking.k8s.io/v1/ingresses",
        "networking.k8s.io/v1/networkpolicies",
        "policy/v1/poddisruptionbudgets",
        "autoscaling/v2/horizontalpodautoscalers",
    ] {
        let ns = (gvr != "v1/namespaces").then_some("shop-prod");
        captured.extend(
            h.srv
                .list_objects(&kube_apiserver::Gvr::parse(gvr), ns)
                .into_iter()
                .filter(|o| ns.is_some() || o["metadata"]["name"] == "shop-prod"),
        );
    }
    std::fs::write(
        dir.path().join("live.json"),
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": captured}))
            .unwrap(),
    )
    .unwrap();
    let (code, out, err) = h.keelson(&[
        "reconcile",
        "--env",
        "prod",
        "--dry-run",
        "--against",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "offline, no phantom drift either:\n{out}\n{err}");
}

#[test]
fn on_a_real_servers_form_git_changes_plan_exactly_and_other_writers_are_reverted() {
    let h = with_fixture();
    let prod = "/apis/apps/v1/namespaces/shop-prod";

    // The HPA in the environment owns orders' replicas: its controller
    // scales, and keelson leaves it alone without an ignore rule.
    assert_eq!(
        h.patch(
            &format!("{prod}/deployments/orders?fieldManager=kube-controller-manager&force=true"),
            "application/apply-patch+yaml",
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "orders", "namespace": "shop-prod"}, "spec": {"replicas": 6}}),
        ),
        200
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("/spec/replicas is delegated to HorizontalPodAutoscaler/shop-prod/orders"),
        "{out}"
    );

    // A change in Git: the plan holds exactly it.
    let file = h.path("environments/prod/manifests/ledger.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("ledger:1.0.0", "ledger:1.0.1")).unwrap();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("0 to create, 1 to update, 0 to delete"),
        "{out}"
    );
    assert_eq!(
        changed_lines(&out),
        [
            "-          image: registry.example.com/shop/ledger:1.0.0",
            "+          image: registry.example.com/shop/ledger:1.0.1",
        ],
        "{out}"
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--no-wait"]);
    assert_eq!(code, 2, "{out}");
    let sts = h.get(STS, Some("shop-prod"), "ledger").unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/ledger:1.0.1"
    );

    // By hand: an env var added with kubectl set env, the Secret's password
    // edited with kubectl edit; by an operator: a Deployment's image.
    assert_eq!(
        h.patch(
            &format!("{prod}/statefulsets/ledger?fieldManager=kubectl-set"),
            "application/strategic-merge-patch+json",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "ledger", "env": [{"name": "DEBUG", "value": "1"}]}]}}}}),
        ),
        200
    );
    assert_eq!(
        h.patch(
            "/api/v1/namespaces/shop-prod/secrets/ledger-db?fieldManager=kubectl-edit",
            "application/merge-patch+json",
            &json!({"data": {"password": "aHVudGVyMg=="}}),
        ),
        200
    );
    assert_eq!(
        h.patch(
            &format!("{prod}/deployments/payments?fieldManager=ops-dashboard&force=true"),
            "application/apply-patch+yaml",
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "payments", "namespace": "shop-prod"},
                "spec": {"template": {"spec": {"containers": [{"name": "payments", "image": "registry.example.com/shop/payments:hotfix"}]}}}}),
        ),
        200
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--dry-run"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("0 to create, 3 to update, 0 to delete"),
        "{out}"
    );
    let changed = changed_lines(&out);
    for line in [
        "-            - name: DEBUG",
        "-  password: \"*** (old value)\"",
        "+  password: \"*** (new value)\"",
        "-          image: registry.example.com/shop/payments:hotfix",
    ] {
        assert!(changed.iter().any(|l| l == line), "{line:?} in:\n{out}");
    }
    assert!(!out.contains("aHVudGVyMg=="), "no Secret value in a plan");
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod", "--no-wait"]);
    assert_eq!(code, 2, "{out}");
    let sts = h.get(STS, Some("shop-prod"), "ledger").unwrap();
    assert!(
        sts["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none(),
        "{sts}"
    );
    let secret = h.get("v1/secrets", Some("shop-prod"), "ledger-db").unwrap();
    assert_eq!(
        secret["data"]["password"], "bm90LWEtcmVhbC1wYXNzd29yZA==",
        "the Git value is back"
    );
    let payments = h.get(DEPLOY, Some("shop-prod"), "payments").unwrap();
    assert_ne!(
        payments["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/payments:hotfix"
    );
    assert_eq!(
        names(&payments["spec"]["template"]["spec"]["containers"]),
        ["payments"]
    );
    let orders = h.get(DEPLOY, Some("shop-prod"), "orders").unwrap();
    assert_eq!(orders["spec"]["replicas"], 6, "still the HPA's");

    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "prod"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.srv.write_count(), 0);
}
