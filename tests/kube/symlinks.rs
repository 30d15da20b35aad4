//! Symlinks that leave the repository (issue 9, point 6): an error naming
//! the link, never the target's content, in `validate`, `render`,
//! `reconcile` and `set-image`; nothing outside the root is read, written
//! or applied. (The controller's side is in tests/controller/safety.rs.)

use std::os::unix::fs::symlink;

use crate::Harness;

const CONTENT: &str = "hunter2-very-secret-first-line";

#[test]
fn links_out_of_the_repository_are_errors_naming_the_link() {
    let h = Harness::new();
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path();
    std::fs::write(o.join("passwd"), format!("{CONTENT}:x:0:0\nroot:x:0:0\n")).unwrap();
    std::fs::write(
        o.join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\nstringData:\n  token: hunter2-token\n",
    )
    .unwrap();
    let manifests = h.path("environments/dev/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    symlink(o.join("passwd"), manifests.join("passwd.yaml")).unwrap();
    symlink(o.join("secret.yaml"), manifests.join("secret.yaml")).unwrap();
    // A link inside the repository is fine.
    symlink(
        "../../staging/manifests/shop-config.yaml",
        manifests.join("shared.yaml"),
    )
    .unwrap();
    // A linked environment folder.
    let qa = o.join("qa");
    std::fs::create_dir_all(&qa).unwrap();
    std::fs::write(
        qa.join("environment.yaml"),
        std::fs::read_to_string(h.path("environments/dev/environment.yaml"))
            .unwrap()
            .replace("name: dev", "name: qa")
            .replace("shop-dev", "shop-qa"),
    )
    .unwrap();
    std::fs::write(
        qa.join("pipeline.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps: {}\n",
    )
    .unwrap();
    symlink(&qa, h.path("environments/qa")).unwrap();
    let outside_path = o.to_string_lossy().to_string();

    for args in [
        vec!["validate", "--color", "never"],
        vec!["render", "--color", "never"],
        vec!["reconcile", "--no-wait", "--color", "never"],
        vec!["reconcile", "--dry-run", "--output", "json"],
    ] {
        h.srv.reset_requests();
        let (code, out, err) = h.keelson(&args);
        assert_eq!(code, 1, "{args:?}\n{out}{err}");
        for link in [
            "environments/dev/manifests/passwd.yaml is a symlink that leads outside the repository",
            "environments/dev/manifests/secret.yaml is a symlink that leads outside the repository",
            "environments/qa is a symlink that leads outside the repository",
        ] {
            // validate's findings are its output (stdout); the others' are
            // beside their product (stderr).
            let said = if args[0] == "validate" { &out } else { &err };
            assert!(said.contains(link), "{args:?}: {link}\n{out}{err}");
        }
        for leak in [CONTENT, "hunter2", outside_path.as_str()] {
            assert!(
                !out.contains(leak) && !err.contains(leak),
                "{args:?} leaks {leak}"
            );
        }
        assert!(
            h.srv
                .requests()
                .iter()
                .all(|r| !r.path.contains("shop-qa") && !r.path.contains("shop-dev")),
            "{args:?}: neither dev nor qa is touched"
        );
    }
    assert!(h.get("v1/secrets", Some("shop-dev"), "stolen").is_none());
    assert!(h.get("v1/namespaces", None, "shop-qa").is_none());

    // set-image through a linked environment folder, or a linked pipeline.yaml.
    let before = std::fs::read_to_string(qa.join("pipeline.yaml")).unwrap();
    let (code, _, err) = h.keelson(&["set-image", "qa", "orders", "9.9.9"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("environments/qa is a symlink that leads outside"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(qa.join("pipeline.yaml")).unwrap(),
        before
    );
    std::fs::remove_file(manifests.join("passwd.yaml")).unwrap();
    std::fs::remove_file(manifests.join("secret.yaml")).unwrap();
    let pipe = h.path("environments/dev/pipeline.yaml");
    std::fs::rename(&pipe, o.join("dev-pipeline.yaml")).unwrap();
    symlink(o.join("dev-pipeline.yaml"), &pipe).unwrap();
    let (code, _, err) = h.keelson(&["set-image", "dev", "orders", "9.9.9"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("environments/dev/pipeline.yaml is a symlink that leads outside"),
        "{err}"
    );
    assert!(
        !std::fs::read_to_string(o.join("dev-pipeline.yaml"))
            .unwrap()
            .contains("9.9.9")
    );

    // With the links gone, the link inside the repository is read.
    std::fs::remove_file(&pipe).unwrap();
    std::fs::rename(o.join("dev-pipeline.yaml"), &pipe).unwrap();
    std::fs::remove_file(h.path("environments/qa")).unwrap();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        h.get("v1/configmaps", Some("shop-dev"), "shop-config")
            .is_some()
    );
}
