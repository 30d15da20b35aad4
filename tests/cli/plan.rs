//! The text and markdown plans of `keelson reconcile`, on the example
//! repository against its captured live state (examples/live), pinned by
//! snapshots and checked for the layout a reader relies on.

use std::process::Command;

use super::{copy_example, git_commit_all, keelson, project_root};

fn plan(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["reconcile", "--dry-run", "--against", "examples/live"];
    all.extend_from_slice(args);
    keelson(&project_root(), &all)
}

#[test]
fn the_text_plan_is_laid_out_to_be_scanned() {
    let (code, out, err) = plan(&[]);
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Each object gets a blank line and its own header.
    for (i, l) in lines.iter().enumerate() {
        if ["+ create ", "~ update ", "- delete ", "! skip "]
            .iter()
            .any(|p| l.starts_with(p))
        {
            assert_eq!(lines[i - 1], "", "no blank line before {l:?}:\n{out}");
        }
    }
    // Creates are one line each: no diff lines follow a create header.
    let create = lines
        .iter()
        .position(|l| l.starts_with("+ create "))
        .expect("the example creates objects");
    assert_eq!(lines[create + 1], "", "{out}");
    assert!(lines[create].ends_with(" lines)"), "{}", lines[create]);
    // The count is the object's lines, as --show-creates prints them (the
    // diff's ---/+++/@@ headers are not the object's).
    let header = lines[create].rsplit_once(" (").unwrap().0;
    let count: usize = lines[create]
        .rsplit_once(" (")
        .unwrap()
        .1
        .trim_end_matches(" lines)")
        .parse()
        .unwrap();
    let (_, shown, _) = plan(&["--show-creates"]);
    let body: Vec<&str> = shown
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("    +") && !l.starts_with("    +++"))
        .collect();
    assert_eq!(count, body.len(), "{header}: {body:?}");
    // Diffs are indented under their object.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("    -") || l.starts_with("    +")),
        "{out}"
    );
    // Every environment has its summary, and the plan ends with the total.
    for env in ["dev", "preview-pr-123", "prod", "staging"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{env}: ")) && l.contains(" to create, ")),
            "{env} has no summary line:\n{out}"
        );
    }
    let total = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Plan: "))
        .expect("a total line");
    assert!(total.ends_with("in 4 environments."), "{total}");
    assert!(
        lines[0].starts_with("Planned against the captured state in examples/live"),
        "{}",
        lines[0]
    );
    // prod is reached without scrolling through create YAML.
    let prod = lines
        .iter()
        .position(|l| l.starts_with("== prod "))
        .unwrap();
    assert!(prod < 80, "prod starts at line {prod}");
    insta::assert_snapshot!("text-plan", out);
}

#[test]
fn show_creates_prints_the_objects_under_creates() {
    let (code, out, _) = plan(&["--env", "dev", "--show-creates"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("+ create Deployment/shop-dev/orders\n"),
        "{out}"
    );
    assert!(out.contains("    +++ "), "{out}");
    assert!(!out.contains("--show-creates prints"), "{out}");
    let (_, short, _) = plan(&["--env", "dev"]);
    assert!(short.len() * 3 < out.len(), "creates collapsed by default");
    assert!(
        short.contains("--show-creates prints their objects"),
        "{short}"
    );
}

#[test]
fn colour_follows_the_flag_and_the_terminal() {
    let (_, always, _) = plan(&["--env", "prod", "--color", "always"]);
    assert!(always.contains("\x1b[1m\x1b[33m~ update "), "{always}");
    assert!(always.contains("\x1b[31m-"), "{always}");
    let (_, never, _) = plan(&["--env", "prod", "--color", "never"]);
    assert!(!never.contains('\x1b'));
    // auto: stdout is a pipe here, so no colour.
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args([
            "reconcile",
            "--dry-run",
            "--against",
            "examples/live",
            "--env",
            "prod",
        ])
        .current_dir(project_root())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}

/// The text between `<summary><b>{env}</b>` and the `</details>` closing
/// that environment's section.
fn section<'a>(md: &'a str, env: &str) -> &'a str {
    let start = md
        .find(&format!("<summary><b>{env}</b>"))
        .unwrap_or_else(|| panic!("no section for {env}:\n{md}"));
    let mut depth = 1;
    let mut at = start;
    loop {
        let open = md[at..].find("<details").map(|i| i + at);
        let close = md[at..].find("</details>").map(|i| i + at).expect("closed");
        match open {
            Some(o) if o < close => {
                depth += 1;
                at = o + 1;
            }
            _ => {
                depth -= 1;
                if depth == 0 {
                    return &md[start..close];
                }
                at = close + 1;
            }
        }
    }
}

#[test]
fn the_markdown_plan_is_fit_to_post() {
    let (code, md, _) = plan(&["--output", "markdown"]);
    assert_eq!(code, 2);
    // One overall summary at the top, before any section.
    let first_section = md.find("<details").unwrap();
    let total = md.find("**Plan: ").expect("a total");
    assert!(total < first_section);
    let table = md
        .find("| environment | create | update | delete |")
        .unwrap();
    assert!(table < first_section);
    for env in ["dev", "preview-pr-123", "prod", "staging"] {
        assert!(
            md[..first_section].contains(&format!("| `{env}` |")),
            "{env}"
        );
    }
    // Each environment's Rancher part is inside its own section.
    for env in ["prod", "staging"] {
        let s = section(&md, env);
        assert!(
            s.contains(&format!("Rancher: not managed: environment `{env}`")),
            "{env}:\n{s}"
        );
        assert!(s.contains(&format!("### {env}\n")), "{s}");
    }
    assert_eq!(
        md.matches("<details").count(),
        md.matches("</details>").count()
    );
    assert!(md.chars().count() < 65_536);
    insta::assert_snapshot!("markdown-plan", md);
}

#[test]
fn each_rancher_heading_is_inside_its_own_environment_section() {
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    let env = repo.path().join("environments/prod/environment.yaml");
    let text = std::fs::read_to_string(&env).unwrap();
    std::fs::write(&env, text.replacen("pods: \"200\"", "pods: \"250\"", 1)).unwrap();
    let (code, md, err) = keelson(
        repo.path(),
        &[
            "reconcile",
            "--dry-run",
            "--against-ref",
            "HEAD",
            "-o",
            "markdown",
        ],
    );
    assert_eq!(code, 2, "{err}");
    let prod = section(&md, "prod");
    let heading = prod
        .find("#### Rancher: project `shop-prod` in cluster `c-m-prod01`")
        .unwrap_or_else(|| panic!("{md}"));
    assert!(prod.find("### prod\n").unwrap() < heading);
    assert!(
        prod.contains("resourceQuota.limit.pods: 200 -> 250"),
        "{prod}"
    );
    let staging = section(&md, "staging");
    assert!(
        staging.contains("#### Rancher: project `shop-staging`"),
        "{staging}"
    );
    assert!(staging.contains("No changes."), "{staging}");
    assert_eq!(md.matches("#### Rancher: ").count(), 2, "{md}");
}

#[test]
fn a_long_markdown_plan_is_cut_under_the_limit_with_a_pointer() {
    let url = "https://ci.example.com/jobs/42";
    let (full_code, full, _) = plan(&["--output", "markdown"]);
    for limit in [2_000usize, 6_000, 20_000] {
        let (code, md, _) = plan(&[
            "--output",
            "markdown",
            "--markdown-limit",
            &limit.to_string(),
            "--full-plan-url",
            url,
        ]);
        assert_eq!(code, full_code, "cutting the output keeps the exit code");
        assert!(md.len() <= limit, "{} > {limit}", md.len());
        assert!(md.contains("This plan is too long for one comment"), "{md}");
        assert!(md.contains(url), "{md}");
        // The summary survives any cut.
        assert!(md.contains("**Plan: "), "{md}");
        assert_eq!(
            md.matches("<details").count(),
            md.matches("</details>").count(),
            "{md}"
        );
    }
    assert!(
        full.len() > 20_000,
        "the example's plan is long enough to cut"
    );
}

#[test]
fn a_plan_larger_than_a_github_comment_is_cut_by_default() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("README"), "start\n").unwrap();
    git_commit_all(repo.path(), "empty");
    let status = Command::new("python3")
        .arg(project_root().join("scripts/gen-large-repo.py"))
        .arg(repo.path().join("envs"))
        .args(["--apps", "60", "--envs", "2"])
        .status()
        .expect("python3 runs scripts/gen-large-repo.py");
    assert!(status.success());
    let (code, md, err) = keelson(
        repo.path(),
        &[
            "reconcile",
            "--dry-run",
            "--against-ref",
            "HEAD",
            "--repo",
            "envs",
            "--output",
            "markdown",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(md.chars().count() <= 65_536, "{}", md.chars().count());
    assert!(md.contains("This plan is too long for one comment"));
    assert!(
        md.contains("keelson reconcile"),
        "the note says how to see it all"
    );
    assert_eq!(
        md.matches("<details").count(),
        md.matches("</details>").count()
    );
}

#[test]
fn an_apply_that_was_refused_prints_what_happened_not_the_plan() {
    // The refused-plan wording in dry runs; applies are covered in tests/kube.
    let repo = copy_example();
    git_commit_all(repo.path(), "base");
    std::fs::remove_dir_all(repo.path().join("environments/dev")).unwrap();
    let (code, out, _) = keelson(
        repo.path(),
        &["reconcile", "--dry-run", "--against-ref", "HEAD"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dev: refused, nothing applied"), "{out}");
    assert!(out.contains("1 failed or refused: dev."), "{out}");
}

/// The example repository wired to a test server (no Rancher endpoint).
fn cluster_repo(srv: &kube_apiserver::TestServer) -> tempfile::TempDir {
    let repo = copy_example();
    let kc = repo.path().join("kubeconfig");
    srv.write_kubeconfig(&kc).unwrap();
    let mut cfg = String::from("apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n");
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {}\n    context: test\n",
            kc.display()
        ));
    }
    std::fs::write(repo.path().join("keelson.yaml"), cfg).unwrap();
    repo
}

#[test]
fn after_a_failed_apply_the_summary_counts_what_was_written() {
    use kube_apiserver::{Fault, Gvr, TestServer};
    let srv = TestServer::start_blocking();
    // Every Deployment write fails; the rest of dev goes through.
    srv.faults().inject(
        Fault::status(500)
            .method("PATCH")
            .path_contains("/deployments/")
            .times(10_000),
    );
    let repo = cluster_repo(&srv);
    let (code, out, _) = keelson(
        repo.path(),
        &["reconcile", "--env", "dev", "--no-wait", "--timeout", "5"],
    );
    assert_eq!(code, 1, "{out}");
    let live = |gvr: &str| {
        srv.list_objects(&Gvr::parse(gvr), Some("shop-dev"))
            .into_iter()
            .filter(|o| o["metadata"]["labels"]["keelson.dev/environment"] == "dev")
            .count()
    };
    assert_eq!(live("apps/v1/deployments"), 0);
    let namespace = srv
        .get_object(&Gvr::parse("v1/namespaces"), None, "shop-dev")
        .is_some();
    let written =
        usize::from(namespace) + live("v1/services") + live("networking.k8s.io/v1/ingresses");
    assert!(
        written >= 4,
        "the Namespace and Services went through: {out}"
    );
    // dev plans 10 objects; what was not written failed or was not attempted.
    assert!(
        out.contains(&format!(
            "dev: {written} created, 0 updated, 0 deleted, {} failed",
            10 - written
        )),
        "the counts are of writes that happened, not of the plan:\n{out}"
    );
    assert!(
        out.contains(&format!(
            "Applied: {written} created, 0 updated, 0 deleted, in 1 environment. 1 failed or refused: dev."
        )),
        "{out}"
    );
}
