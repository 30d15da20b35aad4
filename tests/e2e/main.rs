//! Opt-in end-to-end suite against a real cluster: set
//! `KEELSON_E2E_KUBECONFIG` and `KEELSON_E2E_CONTEXT` (the context every
//! environment goes to; without it each environment's `cluster` must be a
//! context of the file) and run
//! `cargo test --test e2e -- --ignored`. It
//! applies the example's preview environment, proves a second run changes
//! nothing, then retires it by removing its folder.

use std::path::{Path, PathBuf};
use std::process::Command;

fn keelson(repo: &Path, args: &[&str]) -> (i32, String) {
    let kubeconfig = std::env::var("KEELSON_E2E_KUBECONFIG").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keelson"));
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(repo)
        .env("NO_COLOR", "1");
    if let Ok(ctx) = std::env::var("KEELSON_E2E_CONTEXT") {
        cmd.arg("--context").arg(ctx);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

// Ignored, so that a run without a cluster reports it as `ignored`, never as
// passed. Run it with `KEELSON_E2E_KUBECONFIG=… cargo test --test e2e -- --ignored`.
#[test]
#[ignore = "needs a real cluster: set KEELSON_E2E_KUBECONFIG and pass --ignored"]
fn preview_environment_round_trip_on_a_real_cluster() {
    assert!(
        std::env::var("KEELSON_E2E_KUBECONFIG").is_ok(),
        "set KEELSON_E2E_KUBECONFIG to a kubeconfig of a real cluster to run this test"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = tempfile::tempdir().unwrap();
    for sub in ["policies", "schema"] {
        copy(&root.join(sub), &repo.path().join(sub));
    }
    copy(
        &root.join("environments/preview-pr-123"),
        &repo.path().join("environments/preview-pr-123"),
    );
    let (code, out) = keelson(
        repo.path(),
        &["reconcile", "--env", "preview-pr-123", "--dry-run"],
    );
    assert!(code == 0 || code == 2, "{out}");
    let (code, out) = keelson(
        repo.path(),
        &["reconcile", "--env", "preview-pr-123", "--no-wait"],
    );
    assert!(code == 0 || code == 2, "{out}");
    let (code, out) = keelson(
        repo.path(),
        &["reconcile", "--env", "preview-pr-123", "--dry-run"],
    );
    assert_eq!(code, 0, "a second run must find nothing to change:\n{out}");
    // Retire it: the folder goes, the spec allowed deleting everything.
    std::fs::remove_dir_all(repo.path().join("environments/preview-pr-123")).unwrap();
    std::fs::create_dir_all(repo.path().join("environments")).unwrap();
    let (code, out) = keelson(repo.path(), &["reconcile", "--no-wait"]);
    assert!(code == 0 || code == 2, "{out}");
    assert!(
        out.contains("delete Namespace/shop-preview-pr-123"),
        "{out}"
    );
}
