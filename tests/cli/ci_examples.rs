//! examples/ci as a CI runner would run them: the keelson commands of the
//! GitHub Actions workflow and the GitLab CI job, with the variables the CI
//! sets, in a real Git repository with a merge request on top of its base;
//! then the posting script on the plan they made, against the local forge.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::post_comment::{Flavour, Forge, GITHUB_TOKEN, GITLAB_TOKEN, post};
use super::{copy_example, git_commit_all, keelson_bin_dir, project_root};

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(project_root().join("examples/ci").join(name)).unwrap();
    keelson::yaml::parse_one(&text, keelson::yaml::Limits::default())
        .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e:?}"))
        .to_json()
}

/// The lines of `script` that run keelson.
fn keelson_lines(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("code=0; ").unwrap_or(l))
        .filter(|l| l.starts_with("keelson "))
        .map(str::to_string)
        .collect()
}

/// A merge request: the example at its base commit, and prod's orders
/// bumped on top. Returns the base commit id.
fn merge_request(dir: &Path) -> String {
    let example = copy_example();
    super::copy_dir(example.path(), dir);
    let base = git_commit_all(dir, "base").to_string();
    let p = dir.join("environments/prod/pipeline.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen("tag: \"1.42.0\"", "tag: \"1.43.0\"", 1)).unwrap();
    git_commit_all(dir, "orders 1.43.0");
    base
}

fn run(line: &str, dir: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let path = format!(
        "{}:{}",
        keelson_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("KUBECONFIG")
        .env_remove("KEELSON_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn assert_plan(code: i32, out: &str, line: &str) {
    assert_eq!(code, 2, "`{line}` plans the merge request's change:\n{out}");
}

#[test]
fn the_github_workflow_plans_offline_and_posts_one_comment() {
    let wf = load("github-actions.yml");
    assert!(wf["on"].get("pull_request").is_some(), "{wf}");
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    let steps = wf["jobs"]["plan"]["steps"].as_array().unwrap();
    let checkout = &steps[0];
    assert_eq!(
        checkout["with"]["fetch-depth"], 0,
        "the base commit is needed"
    );
    let post_step = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("post-plan-comment.py"))
        })
        .expect("a step posts the plan");
    assert_eq!(
        post_step["env"]["GITHUB_TOKEN"], "${{ secrets.GITHUB_TOKEN }}",
        "the token comes from the secret store, never from the repository"
    );

    let root = tempfile::tempdir().unwrap();
    let envs = root.path().join("envs");
    let base = merge_request(&envs);
    let run_url = "https://github.com/acme/envs/actions/runs/1";
    let vars = [("BASE", base.as_str()), ("RUN_URL", run_url)];
    let mut ran = 0;
    for step in steps {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        for line in keelson_lines(script) {
            let (code, out) = run(&line, &envs, &vars);
            if line.contains("reconcile") {
                assert_plan(code, &out, &line);
            } else {
                assert_eq!(code, 0, "`{line}`:\n{out}");
            }
            ran += 1;
        }
    }
    assert_eq!(ran, 3, "validate, the markdown plan, the log plan");
    let plan = root.path().join("plan.md");
    let md = std::fs::read_to_string(&plan).unwrap();
    assert!(
        md.contains("<code>~ update Deployment/shop-prod/orders</code>"),
        "{md}"
    );

    // The posting step, twice (two pushes): one comment, the latest plan.
    let forge = Forge::start(Flavour::GitHub, 3);
    let event = root.path().join("event.json");
    std::fs::write(&event, r#"{"pull_request": {"number": 7}}"#).unwrap();
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("GITHUB_API_URL", forge.url.as_str()),
        ("GITHUB_REPOSITORY", "acme/envs"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
    ];
    for _ in 0..2 {
        let (code, out) = post(&plan, &env, &[]);
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains(GITHUB_TOKEN));
    }
    let comments = forge.comments();
    assert_eq!(comments.len(), 4);
    assert_eq!(comments[3].1, format!("<!-- keelson-plan -->\n{md}"));
}

#[test]
fn the_gitlab_job_plans_offline_and_posts_one_note() {
    let job = load("gitlab-ci.yml");
    let job = &job["keelson-plan"];
    assert_eq!(
        job["rules"][0]["if"],
        "$CI_PIPELINE_SOURCE == \"merge_request_event\""
    );
    assert_eq!(job["variables"]["GIT_DEPTH"], 0);
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        script
            .iter()
            .any(|l| l.contains("post-plan-comment.py plan.md"))
    );
    assert!(script.contains(&"test \"$code\" != 1"));

    let dir = tempfile::tempdir().unwrap();
    let base = merge_request(dir.path());
    let vars = [
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base.as_str()),
        (
            "CI_JOB_URL",
            "https://gitlab.example.com/acme/envs/-/jobs/9",
        ),
    ];
    let mut ran = 0;
    for line in script.iter().flat_map(|l| keelson_lines(l)) {
        // The job keeps keelson's exit code in $code for its last line.
        let shell = if line.ends_with("|| code=$?") {
            format!("code=0; {line}; exit $code")
        } else {
            line.clone()
        };
        let (code, out) = run(&shell, dir.path(), &vars);
        if line.contains("reconcile") && !line.ends_with("|| true") {
            assert_plan(code, &out, &line);
        } else {
            assert_eq!(code, 0, "`{line}`:\n{out}");
        }
        ran += 1;
    }
    assert_eq!(ran, 3, "validate, the markdown plan, the log plan");
    let plan = dir.path().join("plan.md");
    let md = std::fs::read_to_string(&plan).unwrap();
    assert!(
        md.contains("**Plan: 0 to create, 1 to update, 0 to delete"),
        "{md}"
    );

    let forge = Forge::start(Flavour::GitLab, 0);
    let api = format!("{}/api/v4", forge.url);
    let env = [
        ("GITLAB_CI", "true"),
        ("KEELSON_GITLAB_TOKEN", GITLAB_TOKEN),
        ("CI_API_V4_URL", api.as_str()),
        ("CI_PROJECT_ID", "42"),
        ("CI_MERGE_REQUEST_IID", "5"),
    ];
    for _ in 0..2 {
        let (code, out) = post(&plan, &env, &[]);
        assert_eq!(code, 0, "{out}");
    }
    let notes = forge.comments();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1, format!("<!-- keelson-plan -->\n{md}"));
}
