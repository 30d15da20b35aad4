//! Retirement needs positive evidence (issue 9, point 1): a checkout that
//! fails to load plans nothing and deletes nothing, and a retirement is its
//! own named plan entry.

use std::path::Path;

use crate::{Harness, copy_dir};

const DEPLOY: &str = "apps/v1/deployments";

/// Objects labelled for `env` on the server, over the kinds the example renders.
fn labelled(h: &Harness, env: &str) -> usize {
    let gvrs = [
        "v1/namespaces",
        "v1/configmaps",
        "v1/services",
        "apps/v1/deployments",
        "networking.k8s.io/v1/ingresses",
        "networking.k8s.io/v1/networkpolicies",
        "policy/v1/poddisruptionbudgets",
    ];
    gvrs.iter()
        .flat_map(|g| h.srv.list_objects(&kube_apiserver::Gvr::parse(g), None))
        .filter(|o| o["metadata"]["labels"]["keelson.dev/environment"] == env)
        .filter(|o| {
            o["metadata"]["labels"]
                .get("keelson.dev/inventory")
                .is_none()
        })
        .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
        .count()
}

fn deletes(h: &Harness) -> Vec<String> {
    h.srv
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect()
}

/// A copy of the harness repository with `edit` applied, outside it.
fn variant(h: &Harness, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&h.path(sub), &dir.path().join(sub));
    }
    edit(dir.path());
    dir
}

#[test]
fn a_checkout_that_fails_to_load_plans_nothing_deletes_nothing_and_exits_1() {
    let h = Harness::new();
    let (code, out, err) = h.keelson(&["reconcile", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    let before = labelled(&h, "preview-pr-123");
    assert!(before > 3, "{before}");
    let config = h.path("keelson.yaml");
    let config = config.to_str().unwrap();

    let no_environments = variant(&h, |d| {
        std::fs::remove_dir_all(d.join("environments")).unwrap()
    });
    let empty_folder = tempfile::tempdir().unwrap();
    let empty_environments = variant(&h, |d| {
        std::fs::remove_dir_all(d.join("environments")).unwrap();
        std::fs::create_dir(d.join("environments")).unwrap();
    });
    // A folder without environment.yaml is a layout error: the preview
    // folder's absence proves nothing in such a tree.
    let layout_error = variant(&h, |d| {
        std::fs::remove_dir_all(d.join("environments/preview-pr-123")).unwrap();
        std::fs::remove_file(d.join("environments/staging/environment.yaml")).unwrap();
    });
    for (what, repo) in [
        ("no environments/ folder", no_environments.path()),
        ("an empty folder", empty_folder.path()),
        ("an empty environments/ folder", empty_environments.path()),
        ("a layout error", layout_error.path()),
    ] {
        let repo = repo.to_str().unwrap();
        for dry_run in [true, false] {
            h.srv.reset_requests();
            let mut args = vec!["reconcile", "--repo", repo, "--config", config, "--no-wait"];
            if dry_run {
                args.push("--dry-run");
            }
            let (code, out, err) = h.keelson(&args);
            assert_eq!(code, 1, "{what}, dry run {dry_run}: exit 1\n{out}{err}");
            assert!(deletes(&h).is_empty(), "{what}: {:?}", deletes(&h));
            assert!(!out.contains("retire environment"), "{what}: {out}");
            assert!(!out.contains("- delete"), "{what}: {out}");
        }
        let (code, out, err) = h.keelson(&["render", "--repo", repo]);
        if what == "a layout error" {
            // The environments that load still render; staging's error fails it.
            assert_eq!(code, 1, "{what}: {out}{err}");
        } else {
            assert_eq!(code, 1, "render of {what} exits 1\n{out}{err}");
            assert!(out.is_empty(), "{what}: {out}");
            assert!(err.contains("nothing rendered"), "{what}: {err}");
        }
        assert_eq!(labelled(&h, "preview-pr-123"), before, "{what}");
    }
    let (_, _, err) = h.keelson(&[
        "reconcile",
        "--repo",
        layout_error.path().to_str().unwrap(),
        "--config",
        config,
        "--dry-run",
    ]);
    assert!(
        err.contains("environments removed from the repository are not retired: the repository has 1 layout error"),
        "{err}"
    );
    assert!(
        h.get(DEPLOY, Some("shop-preview-pr-123"), "storefront")
            .is_some(),
        "nothing of the preview was deleted"
    );

    // A filtered run never retires either.
    std::fs::remove_dir_all(h.path("environments/preview-pr-123")).unwrap();
    h.srv.reset_requests();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(deletes(&h).is_empty(), "{:?}", deletes(&h));

    // The healthy tree without the folder retires it, as one named entry.
    let (code, out, err) = h.keelson(&["reconcile", "--dry-run"]);
    assert_eq!(code, 2, "{out}{err}");
    let planned = out.matches("- delete ").count();
    assert_eq!(planned, before, "{out}");
    assert!(
        out.contains(&format!(
            "retire environment preview-pr-123: {before} objects"
        )),
        "{out}"
    );
    let (code, out, err) = h.keelson(&["reconcile", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(labelled(&h, "preview-pr-123"), 0, "{out}");
    assert!(
        h.get("v1/namespaces", None, "shop-preview-pr-123")
            .is_none_or(|ns| ns["metadata"]["deletionTimestamp"].is_string())
    );
    assert!(h.get(DEPLOY, Some("shop-dev"), "orders").is_some());
}

#[test]
fn validate_refuses_an_empty_environments_folder() {
    let h = Harness::new();
    std::fs::remove_dir_all(h.path("environments")).unwrap();
    std::fs::create_dir(h.path("environments")).unwrap();
    let (code, _, err) = h.keelson(&["validate"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("environments/ holds no environment"), "{err}");
}
