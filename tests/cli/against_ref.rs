//! `keelson reconcile --dry-run --against-ref REV`: the working tree planned
//! against another commit of a real Git repository, with no cluster and no
//! credentials (no kubeconfig exists where these run).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{copy_example, git_commit_all};

/// Run keelson in `dir` where no kubeconfig, keelson config or Rancher
/// token could be found: HOME is an empty folder, KUBECONFIG is unset.
fn offline(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .env_remove("KEELSON_CONFIG")
        .output()
        .expect("run keelson");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn edit(dir: &Path, rel: &str, from: &str, to: &str) {
    let p = dir.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} does not contain {from:?}");
    std::fs::write(p, text.replacen(from, to, 1)).unwrap();
}

fn json_plan(dir: &Path, rev: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "reconcile",
        "--dry-run",
        "--against-ref",
        rev,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = offline(dir, &args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}

/// `(environment, action, object)` of every change that is not "unchanged".
fn changes(v: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for env in v["environments"].as_array().unwrap() {
        assert!(env.get("error").is_none(), "{env}");
        for c in env["plan"]["changes"].as_array().unwrap() {
            if c["action"] != "unchanged" {
                let id = &c["id"];
                out.push((
                    env["environment"].as_str().unwrap().to_string(),
                    c["action"].as_str().unwrap().to_string(),
                    format!(
                        "{}/{}/{}",
                        id["kind"].as_str().unwrap(),
                        id["namespace"].as_str().unwrap(),
                        id["name"].as_str().unwrap()
                    ),
                ));
            }
        }
    }
    out
}

fn rancher_summaries(v: &Value, env: &str) -> Vec<String> {
    v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == env)
        .and_then(|e| e["rancher"]["plan"]["changes"].as_array())
        .map(|cs| {
            cs.iter()
                .filter(|c| c["action"] != "unchanged")
                .map(|c| c["summary"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_plan_against_the_same_commit_is_empty_and_exits_0() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    let (code, v, err) = json_plan(repo.path(), "HEAD", &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(
        changes(&v),
        vec![],
        "rendering a commit twice changes nothing"
    );
    assert_eq!(v["environments"].as_array().unwrap().len(), 4);
    assert!(rancher_summaries(&v, "prod").is_empty(), "{v}");
    assert!(
        v["against"].as_str().unwrap().contains("base"),
        "{}",
        v["against"]
    );
}

#[test]
fn a_merge_request_is_planned_against_its_base_commit() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    // The merge request: a new orders release in prod, staging's mailer
    // loses its QUEUE variable (a field removed since the base), and payments
    // leaves dev.
    edit(
        repo.path(),
        "environments/prod/pipeline.yaml",
        "tag: \"1.42.0\"",
        "tag: \"1.43.0\"",
    );
    edit(
        repo.path(),
        "environments/staging/environment.yaml",
        "      env:\n        QUEUE: mail-staging\n",
        "",
    );
    git_commit_all(repo.path(), "orders 1.43.0 in prod, mailer without QUEUE");

    let (code, v, err) = json_plan(repo.path(), "HEAD~1", &[]);
    assert_eq!(code, 2, "changes planned → exit 2\n{v}\n{err}");
    assert_eq!(
        changes(&v),
        vec![
            (
                "prod".into(),
                "update".into(),
                "Deployment/shop-prod/orders".into()
            ),
            (
                "staging".into(),
                "update".into(),
                "Deployment/shop-staging/mailer".into()
            ),
        ]
    );
    let diff_of = |env: &str| -> String {
        v["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["environment"] == env)
            .unwrap()["plan"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["action"] == "update")
            .unwrap()["diff"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let prod = diff_of("prod");
    assert!(
        prod.contains("-") && prod.contains("orders:1.42.0") && prod.contains("+"),
        "{prod}"
    );
    assert!(prod.contains("orders:1.43.0"), "{prod}");
    let staging = diff_of("staging");
    assert!(
        staging
            .lines()
            .any(|l| l.starts_with('-') && l.contains("mail-staging")),
        "the removed variable shows as a removal:\n{staging}"
    );

    // The text and markdown outputs tell the same, with the same exit code.
    let (code, text, _) = offline(
        repo.path(),
        &["reconcile", "--dry-run", "--against-ref", "HEAD~1"],
    );
    assert_eq!(code, 2);
    assert!(
        text.contains("~ update Deployment/shop-prod/orders"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to create, 2 to update, 0 to delete, in 4 environments."),
        "{text}"
    );
    let (code, md, _) = offline(
        repo.path(),
        &[
            "reconcile",
            "--dry-run",
            "--against-ref",
            "HEAD~1",
            "--output",
            "markdown",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        md.contains("<code>~ update Deployment/shop-prod/orders</code>"),
        "{md}"
    );
}

#[test]
fn uncommitted_changes_in_the_working_tree_are_planned() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    edit(
        repo.path(),
        "environments/dev/pipeline.yaml",
        "orders:",
        "orders:\n      region: eu-west-1",
    );
    let (code, v, err) = json_plan(repo.path(), "HEAD", &["--env", "dev"]);
    assert_eq!(code, 2, "{v}\n{err}");
    assert_eq!(
        changes(&v),
        vec![(
            "dev".into(),
            "update".into(),
            "Deployment/shop-dev/orders".into()
        )]
    );
}

#[test]
fn rancher_changes_come_from_the_two_commits() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    edit(
        repo.path(),
        "environments/prod/environment.yaml",
        "limitsCpu: \"40\"",
        "limitsCpu: \"48\"",
    );
    edit(
        repo.path(),
        "environments/prod/environment.yaml",
        "        role: read-only\n",
        "        role: read-only\n      - userPrincipalId: \"local://u-oncall\"\n        role: project-member\n",
    );
    git_commit_all(repo.path(), "prod: more CPU, on-call member");
    let (code, v, err) = json_plan(repo.path(), "HEAD~1", &[]);
    assert_eq!(code, 2, "Rancher changes are changes\n{v}\n{err}");
    assert_eq!(changes(&v), vec![], "no Kubernetes object changes");
    let prod = rancher_summaries(&v, "prod");
    assert_eq!(prod.len(), 2, "{prod:?}");
    assert!(
        prod[0].starts_with("update project shop-prod") && prod[0].contains("limitsCpu"),
        "{prod:?}"
    );
    assert_eq!(
        prod[1],
        "add userPrincipalId=local://u-oncall as project-member"
    );
    assert!(rancher_summaries(&v, "staging").is_empty());
    // Reading Rancher would need an endpoint and a token; nothing says it tried.
    assert!(!err.contains("Rancher endpoint"), "{err}");
}

#[test]
fn a_removed_environment_is_retired_only_as_its_spec_allowed() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    std::fs::remove_dir_all(repo.path().join("environments/preview-pr-123")).unwrap();
    git_commit_all(repo.path(), "close preview-pr-123");
    let (code, v, err) = json_plan(repo.path(), "HEAD~1", &[]);
    assert_eq!(code, 2, "{v}\n{err}");
    let deleted: Vec<String> = changes(&v)
        .into_iter()
        .filter(|(env, action, _)| env == "preview-pr-123" && action == "delete")
        .map(|(_, _, id)| id)
        .collect();
    assert!(
        deleted.contains(&"Namespace//shop-preview-pr-123".to_string()),
        "the preview allowed deleting everything: {deleted:?}"
    );

    // dev does not allow deleting everything: its removal is refused.
    std::fs::remove_dir_all(repo.path().join("environments/dev")).unwrap();
    git_commit_all(repo.path(), "remove dev");
    let (code, v, _) = json_plan(repo.path(), "HEAD~1", &[]);
    assert_eq!(code, 1, "a refused plan is an error: {v}");
    let dev = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "dev")
        .expect("dev is planned as retired");
    assert!(
        dev["plan"]["refused"]
            .as_str()
            .unwrap()
            .contains("allowDeleteAll"),
        "{dev}"
    );
}

#[test]
fn a_repository_in_a_sub_folder_is_planned_against_the_same_folder() {
    let outer = tempfile::tempdir().unwrap();
    let example = copy_example();
    super::copy_dir(example.path(), &outer.path().join("platform/envs"));
    std::fs::write(outer.path().join("README"), "monorepo\n").unwrap();
    git_commit_all(outer.path(), "base");
    let envs = outer.path().join("platform/envs");
    edit(
        &envs,
        "environments/prod/pipeline.yaml",
        "tag: \"1.42.0\"",
        "tag: \"1.43.0\"",
    );
    let (code, v, err) = json_plan(outer.path(), "HEAD", &["--repo", "platform/envs"]);
    assert_eq!(code, 2, "{v}\n{err}");
    assert_eq!(changes(&v).len(), 1, "{:?}", changes(&v));
}

#[test]
fn a_base_without_the_repository_plans_everything_as_new() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("README"), "empty start\n").unwrap();
    git_commit_all(repo.path(), "first commit");
    let example = copy_example();
    super::copy_dir(example.path(), repo.path());
    let (code, v, err) = json_plan(repo.path(), "HEAD", &["--env", "prod"]);
    assert_eq!(code, 2, "{v}\n{err}");
    let c = changes(&v);
    assert!(
        !c.is_empty() && c.iter().all(|(_, a, _)| a == "create"),
        "{c:?}"
    );
}

#[test]
fn an_unknown_revision_says_how_to_fetch_it() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    let (code, out, err) = offline(
        repo.path(),
        &["reconcile", "--dry-run", "--against-ref", "origin/main"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("--against-ref origin/main: no such commit"),
        "{err}"
    );
    assert!(err.contains("git fetch origin main"), "{err}");
    assert!(out.is_empty(), "no plan is printed: {out}");

    let plain = tempfile::tempdir().unwrap();
    super::copy_dir(repo.path(), plain.path());
    std::fs::remove_dir_all(plain.path().join(".git")).unwrap();
    let (code, _, err) = offline(
        plain.path(),
        &["reconcile", "--dry-run", "--against-ref", "HEAD"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("inside a Git working tree"), "{err}");
}

#[test]
fn against_ref_refuses_cluster_flags() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    let (code, _, err) = offline(
        repo.path(),
        &[
            "reconcile",
            "--against-ref",
            "HEAD",
            "--kubeconfig",
            "/tmp/kc",
        ],
    );
    assert_eq!(code, 1, "a usage error exits 1: {err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_base_whose_spec_has_errors_cannot_be_planned_against() {
    let repo = copy_example();
    edit(
        repo.path(),
        "environments/staging/environment.yaml",
        "runtime: python",
        "runtime: pyhton",
    );
    git_commit_all(repo.path(), "broken staging");
    edit(
        repo.path(),
        "environments/staging/environment.yaml",
        "runtime: pyhton",
        "runtime: python",
    );
    git_commit_all(repo.path(), "fix staging");
    let (code, v, _) = json_plan(repo.path(), "HEAD~1", &[]);
    assert_eq!(code, 1, "an unknown base is an error, not a plan: {v}");
    let staging = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "staging")
        .unwrap();
    assert!(
        staging["error"]
            .as_str()
            .unwrap()
            .contains("the base commit's spec of `staging` has errors"),
        "{staging}"
    );
    assert!(staging.get("plan").is_none());
    // The other environments are planned as usual.
    let prod = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "prod")
        .unwrap();
    assert!(prod["plan"].is_object(), "{prod}");
}

/// Review time: a merge request changing a field the API server never lets
/// change (a Job's template) is shown refused, with the way out, although
/// no server is asked; with `keelson.dev/force: enabled` it is a replace.
#[test]
fn an_immutable_change_is_refused_or_replaced_in_review() {
    let repo = copy_example();
    let dir = repo.path().join("environments/dev/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let job = |image: &str, force: bool| {
        let annotations = if force {
            "  annotations:\n    keelson.dev/force: enabled\n"
        } else {
            ""
        };
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: shop-dev\n{annotations}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: {image}\n          resources:\n            limits: {{cpu: 500m, memory: 1Gi}}\n"
        )
    };
    std::fs::write(dir.join("migrate.yaml"), job("migrate:1", false)).unwrap();
    git_commit_all(repo.path(), "base");
    let plan_dev = |extra: &[&str]| {
        let mut args = vec![
            "reconcile",
            "--dry-run",
            "--against-ref",
            "HEAD",
            "--env",
            "dev",
        ];
        args.extend_from_slice(extra);
        offline(repo.path(), &args)
    };

    // A quantity in another form is no change: nothing refused.
    let same = job("migrate:1", false).replace("memory: 1Gi", "memory: 1024Mi");
    std::fs::write(dir.join("migrate.yaml"), same).unwrap();
    let (code, out, err) = plan_dev(&[]);
    assert_eq!(code, 0, "1Gi = 1024Mi:\n{out}\n{err}");

    std::fs::write(dir.join("migrate.yaml"), job("migrate:2", false)).unwrap();
    let (code, out, err) = plan_dev(&[]);
    assert_eq!(code, 1, "refused in review:\n{out}\n{err}");
    assert!(
        out.contains("the API server will refuse this change")
            && out.contains("spec.template may not change once set")
            && out.contains("annotate it `keelson.dev/force: enabled`"),
        "{out}"
    );

    std::fs::write(dir.join("migrate.yaml"), job("migrate:2", true)).unwrap();
    let (code, v, err) = json_plan(repo.path(), "HEAD", &["--env", "dev"]);
    assert_eq!(code, 2, "{v}\n{err}");
    assert_eq!(
        changes(&v),
        vec![(
            "dev".into(),
            "replace".into(),
            "Job/shop-dev/migrate".into()
        )]
    );
    let (code, md, err) = plan_dev(&["--output", "markdown"]);
    assert_eq!(code, 2, "{md}\n{err}");
    assert!(
        md.contains("| environment | create | update | replace | delete | |")
            && md.contains("| `dev` | 0 | 0 | 1 | 0 | changes |"),
        "{md}"
    );
}
