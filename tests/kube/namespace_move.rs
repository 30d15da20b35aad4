//! Changing an environment's namespace (issue 9, point 4; case 11): the
//! earlier inventory is found by label in the old namespace, its objects
//! are planned for deletion under the mass-deletion guard, and there are
//! never two untracked copies.

use crate::Harness;
use crate::intent::{live_ids, recorded};

const DEPLOY: &str = "apps/v1/deployments";

#[test]
fn a_namespace_move_deletes_the_old_copy_under_the_guard() {
    let h = Harness::new();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    let old = live_ids(&h, "dev");
    let n = old.len();
    h.edit(
        "environments/dev/environment.yaml",
        "namespace: shop-dev",
        "namespace: shop-dev-v2",
    );

    // Refused by the guard, with a message that says how; nothing written.
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "move environment dev from namespace shop-dev to shop-dev-v2: {n} objects in shop-dev to delete"
        )),
        "{out}"
    );
    assert!(
        out.contains("REFUSED: environment `dev` moved from namespace shop-dev to shop-dev-v2"),
        "{out}"
    );
    assert!(out.contains("prune.allowDeleteAll"), "{out}");
    assert!(out.contains("or set `namespace: shop-dev` back"), "{out}");
    assert_eq!(out.matches("- delete ").count(), n, "{out}");
    h.srv.reset_requests();
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(h.srv.write_count(), 0, "a refused move writes nothing");
    assert_eq!(live_ids(&h, "dev"), old);
    assert_eq!(
        recorded(&h, "dev", "shop-dev"),
        old,
        "the old copy stays tracked"
    );

    // Allowed: the new copy is created and the old one deleted.
    h.edit(
        "environments/dev/environment.yaml",
        "  apps:\n",
        "  prune:\n    allowDeleteAll: true\n  apps:\n",
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        h.get(DEPLOY, Some("shop-dev-v2"), "orders").is_some(),
        "{out}"
    );
    assert!(h.get(DEPLOY, Some("shop-dev"), "orders").is_none(), "{out}");
    let new = live_ids(&h, "dev");
    assert_eq!(new.len(), n, "one copy: {new:?}");
    assert!(
        new.iter()
            .all(|(_, ns, name)| ns == "shop-dev-v2" || name == "shop-dev-v2")
    );
    assert_eq!(recorded(&h, "dev", "shop-dev-v2"), new);
    assert!(
        h.get("v1/configmaps", Some("shop-dev"), "keelson-inventory")
            .is_none(),
        "the earlier inventory is gone"
    );

    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("move environment"), "{out}");
}

#[test]
fn a_move_whose_old_namespace_was_not_keelsons_deletes_the_objects_and_the_old_inventory() {
    let h = Harness::new();
    // The namespace exists before keelson, so dev does not own it.
    h.srv
        .create_object(
            &kube_apiserver::Gvr::parse("v1/namespaces"),
            "kubectl",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop-dev"}}),
        )
        .unwrap();
    h.edit(
        "environments/dev/environment.yaml",
        "  apps:\n",
        "  prune:\n    allowDeleteAll: true\n  apps:\n",
    );
    assert_eq!(h.keelson(&["reconcile", "--env", "dev", "--no-wait"]).0, 2);
    h.edit(
        "environments/dev/environment.yaml",
        "namespace: shop-dev",
        "namespace: shop-dev-v2",
    );
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        h.get("v1/namespaces", None, "shop-dev").is_some(),
        "not keelson's"
    );
    assert!(h.get(DEPLOY, Some("shop-dev"), "orders").is_none());
    assert!(
        h.get("v1/configmaps", Some("shop-dev"), "keelson-inventory")
            .is_none()
    );
    let (code, out, _) = h.keelson(&["reconcile", "--env", "dev", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
}
