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
