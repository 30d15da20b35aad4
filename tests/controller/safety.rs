//! `keelson run` and issue 9: a commit that empties the checkout retires
//! nothing (point 1), and a symlink out of the repository is an error naming
//! it, never its target's content, and nothing of it is applied (point 6).

use std::path::Path;

use kube_apiserver::{Gvr, TestServer};

use crate::e2e::{Controller, copy_dir, env};
use crate::support::GitRepo;

const CONTENT: &str = "hunter2-controller-secret";

fn config(dir: &Path, repo: &Path, kubeconfig: &Path) -> std::path::PathBuf {
    let mut cfg = format!(
        "apiVersion: keelson.dev/v1\nkind: Config\nstateDir: {}\nclusters:\n",
        dir.join("state").display()
    );
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {}\n    context: test\n",
            kubeconfig.display()
        ));
    }
    cfg.push_str(&format!(
        "controller:\n  repository:\n    url: {}\n    watch: false\n  pollInterval: 1s\n  driftInterval: 1h\n",
        repo.display()
    ));
    let path = dir.join("keelson.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn deletes(srv: &TestServer) -> Vec<String> {
    srv.requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelson_run_retires_nothing_from_a_broken_commit_and_reads_nothing_outside_the_repository()
{
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    srv.write_kubeconfig(&kubeconfig).unwrap();
    let repo = GitRepo::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&root.join(sub), &repo.path().join(sub));
    }
    repo.commit("example environments");
    let cfg = config(dir.path(), repo.path(), &kubeconfig);
    let ctl = Controller::start(&cfg, &dir.path().join("run.log"));
    ctl.wait_status("every environment synced", |st| st["ready"] == true)
        .await;
    let preview = Gvr::parse("apps/v1/deployments");
    assert!(
        srv.get_object(&preview, Some("shop-preview-pr-123"), "storefront")
            .is_some()
    );

    // A commit that deletes environments/ (an empty checkout, as Git sees it).
    srv.reset_requests();
    std::fs::remove_dir_all(repo.path().join("environments")).unwrap();
    let empty = repo.commit("oops: everything removed");
    let st = ctl
        .wait_status("the empty commit is reported", |st| {
            env(st, "preview-pr-123")["lastAttempt"]["commit"] == empty.as_str()
        })
        .await;
    let preview_status = env(&st, "preview-pr-123");
    assert_eq!(
        preview_status["lastAttempt"]["outcome"]["result"], "invalid",
        "{st:#}"
    );
    assert!(
        preview_status["lastAttempt"]["outcome"]["diagnostics"]
            .to_string()
            .contains("not retired"),
        "{preview_status:#}"
    );
    assert!(deletes(&srv).is_empty(), "{:?}", deletes(&srv));
    assert!(
        srv.get_object(&preview, Some("shop-preview-pr-123"), "storefront")
            .is_some()
    );

    // Restored, with a manifest linked to a file outside the repository.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("token.yaml"),
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\nstringData:\n  token: {CONTENT}\n"),
    )
    .unwrap();
    copy_dir(
        &root.join("environments"),
        &repo.path().join("environments"),
    );
    let manifests = repo.path().join("environments/dev/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("token.yaml"),
        manifests.join("token.yaml"),
    )
    .unwrap();
    let linked = repo.commit("dev: a linked manifest");
    let st = ctl
        .wait_status("the linked commit is reported", |st| {
            env(st, "dev")["lastAttempt"]["commit"] == linked.as_str()
        })
        .await;
    let dev = env(&st, "dev");
    assert_eq!(
        dev["lastAttempt"]["outcome"]["result"], "invalid",
        "{dev:#}"
    );
    let diags = dev["lastAttempt"]["outcome"]["diagnostics"].to_string();
    assert!(
        diags.contains(
            "environments/dev/manifests/token.yaml is a symlink that leads outside the repository"
        ),
        "{diags}"
    );
    let everything = ctl.get_json("/status").await.to_string()
        + &ctl.get_json("/history?limit=1000").await.to_string();
    assert!(!everything.contains(CONTENT), "the target's content leaked");
    assert!(
        srv.get_object(&Gvr::parse("v1/secrets"), Some("shop-dev"), "stolen")
            .is_none()
    );
    assert!(deletes(&srv).is_empty(), "{:?}", deletes(&srv));
    ctl.stop();
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(!log.contains(CONTENT), "the log leaks the target's content");
}
