//! `keelson preview create|list|delete`, and `keelson reconcile` beside them.

use serde_json::Value;

use super::Harness;

const NS_123: &str = "shop-preview-storefront-123";
const NS_124: &str = "shop-preview-storefront-124";

fn node_ports(h: &Harness, ns: &str) -> Vec<u64> {
    let svc = h
        .get("v1/services", Some(ns), "storefront-node-ports")
        .unwrap_or_else(|| panic!("no node-port Service in {ns}"));
    svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nodePort"].as_u64().unwrap())
        .collect()
}

fn image(h: &Harness, ns: &str) -> String {
    let d = h
        .get("apps/v1/deployments", Some(ns), "storefront")
        .unwrap_or_else(|| panic!("no Deployment in {ns}"));
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A preview is created from the template and applied, updated by a new
/// commit, kept by a full `keelson reconcile`, released with every object
/// gone, and its ports and id go to the next preview.
#[test]
fn create_update_reconcile_and_delete_a_preview() {
    let h = Harness::new();
    let create = |n: &str, sha: &str, tag: &str| {
        let (code, out, err) = h.keelson(&[
            "preview",
            "create",
            "storefront",
            n,
            "--branch",
            "feature/cart",
            "--sha",
            sha,
            "--tag",
            tag,
            "--no-wait",
        ]);
        assert_eq!(code, 0, "create {n}:\n{out}\n{err}");
        out
    };
    let out = create("123", "5f3e2a1c0ffee", "pr-123-5f3e2a1");
    assert!(
        out.contains("preview preview-storefront-123: ports 30000-30002, id 1, expires"),
        "{out}"
    );
    assert_eq!(
        image(&h, NS_123),
        "registry.example.com/shop/storefront:pr-123-5f3e2a1"
    );
    assert_eq!(node_ports(&h, NS_123), [30000, 30001, 30002]);
    let ns = h.get("v1/namespaces", None, NS_123).expect("namespace");
    assert_eq!(
        ns["metadata"]["labels"]["preview"],
        "preview-storefront-123"
    );

    create("124", "aaaaaaa1", "pr-124-aaaaaaa");
    assert_eq!(node_ports(&h, NS_124), [30003, 30004, 30005]);
    let records = h.records();
    assert_eq!(records["storefront.124"]["id"], 2, "{records:?}");

    // A new commit on the merge request updates it in place.
    create("123", "9b8c7d6e5f", "pr-123-9b8c7d6");
    assert_eq!(
        image(&h, NS_123),
        "registry.example.com/shop/storefront:pr-123-9b8c7d6"
    );
    assert_eq!(
        node_ports(&h, NS_123),
        [30000, 30001, 30002],
        "it keeps its block"
    );

    let (code, out, err) = h.keelson(&["preview", "list", "-o", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = listed["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["preview-storefront-123", "preview-storefront-124"]);

    // A whole-repository reconcile treats previews as environments: it
    // plans them (no change) and retires neither.
    let (code, out, err) = h.keelson(&["reconcile", "--no-wait"]);
    assert_eq!(code, 2, "the folders are created:\n{out}\n{err}");
    for n in [123, 124] {
        assert!(
            out.contains(&format!(
                "preview-storefront-{n}: 0 created, 0 updated, 0 deleted"
            )),
            "{out}"
        );
    }
    assert!(!out.contains("retire"), "{out}");
    assert!(
        h.get("apps/v1/deployments", Some(NS_123), "storefront")
            .is_some()
    );
    assert!(
        h.get("apps/v1/deployments", Some(NS_124), "storefront")
            .is_some()
    );

    let (code, out, err) = h.keelson(&["preview", "delete", "storefront", "123"]);
    assert_eq!(code, 0, "delete:\n{out}\n{err}");
    assert!(
        out.contains("preview-storefront-123: 0 created, 0 updated, 5 deleted"),
        "{out}"
    );
    for (kind, name) in [
        ("apps/v1/deployments", "storefront"),
        ("v1/services", "storefront"),
        ("v1/services", "storefront-node-ports"),
    ] {
        assert!(
            h.get(kind, Some(NS_123), name).is_none(),
            "{kind} {name} left"
        );
    }
    // The namespace terminates (200 ms on the test server) and takes the
    // inventory with it: nothing of the preview is left.
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        h.get("v1/namespaces", None, NS_123).is_none()
    });
    assert!(gone, "namespace {NS_123} still there");
    assert!(h.list("v1/configmaps", NS_123).is_empty());
    assert!(!h.records().contains_key("storefront.123"));
    assert_eq!(
        node_ports(&h, NS_124),
        [30003, 30004, 30005],
        "124 untouched"
    );

    // The freed block and id go to the next preview.
    create("125", "cccccccc", "pr-125-ccccccc");
    assert_eq!(
        node_ports(&h, "shop-preview-storefront-125"),
        [30000, 30001, 30002]
    );
    assert_eq!(h.records()["storefront.125"]["id"], 1);

    let (code, _, err) = h.keelson(&["preview", "delete", "storefront", "123"]);
    assert_eq!(code, 1);
    assert!(err.contains("no preview preview-storefront-123"), "{err}");
}

/// A fence that refuses every write, as a Lease held by another replica.
struct LeaseHeldElsewhere;

impl keelson::controller::fence::Fence for LeaseHeldElsewhere {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async { Err("held by replica-b".to_string()) })
    }
}

/// `keelson run` applies and releases previews under their environment's
/// Lease: without it, neither an apply nor a release writes anything.
#[test]
fn preview_writes_without_the_lease_are_refused() {
    use keelson::preview::actions;
    let h = Harness::new();
    let (code, out, err) = h.keelson(&[
        "preview",
        "create",
        "storefront",
        "123",
        "--branch",
        "feature/cart",
        "--sha",
        "5f3e2a1c0ffee",
        "--tag",
        "pr-123-5f3e2a1",
        "--no-wait",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let before = image(&h, NS_123);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = keelson::config::load_config(&h.path("keelson.yaml")).unwrap();
        let cfg = config.previews.clone().unwrap_or_default();
        let clusters = keelson::reconcile::Clusters::new(Some(config), None).unwrap();
        let base = keelson::check::check_repo(h.repo.path());
        let read = keelson::preview::online::read_records(&base.repo, &clusters, &cfg).await;
        // A new tag for the preview, applied without the Lease.
        h.edit(
            "environments/_templates/storefront/pipeline.yaml",
            "${mr.tag}",
            "pr-123-fenced",
        );
        let report = actions::check_with(h.repo.path(), &read);
        let fence = Some(std::sync::Arc::new(LeaseHeldElsewhere) as _);
        let opts = keelson::reconcile::Options::default();
        let applied = actions::apply(&report, "preview-storefront-123", &clusters, &opts, fence)
            .await
            .unwrap();
        assert!(applied.failed(), "{applied:?}");
        let what = actions::Release {
            cluster: "dev",
            template: "storefront",
            number: 123,
            reason: "test",
            tombstone: false,
        };
        let fence = Some(std::sync::Arc::new(LeaseHeldElsewhere) as _);
        let released = actions::release(&base, &clusters, &cfg, what, &opts, fence).await;
        assert!(
            released.is_err() || !released.as_ref().unwrap().done,
            "{released:?}"
        );
    });
    assert_eq!(image(&h, NS_123), before, "the apply wrote nothing");
    let records = h.records();
    assert_eq!(
        records["storefront.123"]["state"], "active",
        "the release wrote nothing: {records:?}"
    );
    assert!(
        h.get("apps/v1/deployments", Some(NS_123), "storefront")
            .is_some()
    );
}
