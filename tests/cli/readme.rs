//! Every command in the README runs as written: each line of its ```sh
//! blocks is run here (the cluster ones against the Kubernetes API test
//! server), or is named below with the reason it is not; and every inline
//! `keelson …` span without placeholders is accepted by the argument parser.

use std::path::Path;
use std::process::Command;

use kube_apiserver::{Gvr, TestServer};

use super::{copy_dir, git_commit_all, keelson_bin_dir, project_root};

/// README lines this test does not run, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "scripts/test",
        "the whole suite, which is what runs this test",
    ),
    (
        "cargo install --locked --path .",
        "a 20-minute release build of the crate every test here builds",
    ),
    // "Running keelson in Kubernetes": a container build and a real
    // cluster; tests/ha/deploy.rs checks deploy/ itself (keelson validate,
    // kubernetes-validate --strict, a server-side dry run of -k deploy/).
    (
        "docker build -t registry.example.com/platform/keelson:0.1.0 .",
        "needs a container daemon and base images from a registry",
    ),
    (
        "docker push registry.example.com/platform/keelson:0.1.0",
        "needs a registry",
    ),
    (
        "kubectl create namespace keelson-system",
        "needs a real cluster",
    ),
    (
        "kubectl -n keelson-system create secret generic keelson-git --from-file=token=./git-token",
        "needs a real cluster and a Git token",
    ),
    (
        "kubectl -n keelson-system create secret generic keelson-webhook --from-literal=secret=\"$(openssl rand -hex 32)\"",
        "needs a real cluster",
    ),
    (
        "$EDITOR deploy/config.yaml deploy/kustomization.yaml",
        "an interactive edit",
    ),
    ("kubectl apply -k deploy/", "needs a real cluster"),
    (
        "kubectl -n keelson-system get keelsonenvironments",
        "needs a real cluster",
    ),
    // "Try it against a local API server": this test starts the same server
    // in-process and writes its kubeconfig to target/kc.yaml; the keelson
    // commands of that section run against it.
    (
        "cargo build --release -p kube-apiserver",
        "a release build of the server this test starts in-process",
    ),
    (
        "target/release/kube-apiserver --listen 127.0.0.1:0 --kubeconfig target/kc.yaml &",
        "this test starts the same server and writes target/kc.yaml",
    ),
    (
        "keelson run -c target/local.yaml &",
        "a daemon; tests/controller runs the controller against this server",
    ),
    (
        "keelson status -c target/local.yaml",
        "asks the controller of the line before",
    ),
];

struct Line {
    number: usize,
    command: String,
}

/// Lines of ```sh blocks, without comments.
fn sh_lines(readme: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for (i, l) in readme.lines().enumerate() {
        let t = l.trim();
        if let Some(lang) = t.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = t.split(" #").next().unwrap_or_default().trim();
        if !command.is_empty() && !command.starts_with('#') {
            out.push(Line {
                number: i + 1,
                command: command.to_string(),
            });
        }
    }
    out
}

/// Inline code spans outside code blocks.
fn inline_spans(readme: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, l) in readme.lines().enumerate() {
        if l.trim().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = l.split('`').collect();
        for span in parts.iter().skip(1).step_by(2) {
            out.push((i + 1, span.to_string()));
        }
    }
    out
}

/// A copy of the example repository as a Git repository whose `origin/main`
/// is one commit behind HEAD (staging's mailer was bumped since).
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["environments", "policies", "schema", "examples/live"] {
        copy_dir(&project_root().join(sub), &dir.path().join(sub));
    }
    let pipeline = dir.path().join("environments/staging/pipeline.yaml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let older = text.replacen("tag: \"2.3.0\"", "tag: \"2.2.9\"", 1);
    assert_ne!(older, text, "staging's mailer tag moved; update this test");
    std::fs::write(&pipeline, older).unwrap();
    let base = git_commit_all(dir.path(), "base");
    std::fs::write(&pipeline, text).unwrap();
    git_commit_all(dir.path(), "bump mailer");
    let repo = git2::Repository::open(dir.path()).unwrap();
    repo.reference("refs/remotes/origin/main", base, true, "test")
        .unwrap();
    dir
}

fn run_sh(line: &str, dir: &Path, env: &[(&str, String)]) -> (i32, String) {
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
        .env("NO_COLOR", "1")
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

#[test]
fn every_command_in_the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let lines = sh_lines(&readme);
    assert!(lines.len() >= 10, "the README's commands were not found");
    let repo = sandbox();

    // The commands of "Running against a real cluster" need one: the test
    // server, named by the keelson config they pass.
    let srv = TestServer::start_blocking();
    let kubeconfig = repo.path().join("kubeconfig");
    srv.write_kubeconfig(&kubeconfig).unwrap();
    // "Try it against a local API server" names the server's kubeconfig so.
    std::fs::create_dir_all(repo.path().join("target")).unwrap();
    srv.write_kubeconfig(repo.path().join("target/kc.yaml"))
        .unwrap();
    let mut cfg = String::from("apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n");
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {}\n    context: test\n",
            kubeconfig.display()
        ));
    }
    std::fs::write(repo.path().join("keelson.yaml"), cfg).unwrap();

    let mut ran = 0;
    let mut local_applied = false;
    for Line { number, command } in &lines {
        if let Some((_, why)) = NOT_RUN.iter().find(|(c, _)| c == command) {
            eprintln!("README:{number}: not run here ({why}): {command}");
            continue;
        }
        let (code, out) = if command.starts_with("scripts/") {
            let bin = keelson_bin_dir().display().to_string();
            run_sh(command, &project_root(), &[("KEELSON_BIN", bin)])
        } else if command.starts_with("keelson ") {
            run_sh(command, repo.path(), &[])
        } else {
            panic!(
                "README:{number}: `{command}` is neither run by this test nor listed in NOT_RUN"
            );
        };
        // 2 is "changes planned or applied"; 1 is always an error.
        assert!(
            code == 0 || code == 2,
            "README:{number}: `{command}` exited {code}:\n{out}"
        );
        ran += 1;
        // The local walk-through: the apply lands, and the plan after it
        // finds nothing to do, as the README says.
        if command == "keelson reconcile --kubeconfig target/kc.yaml --context test --env dev" {
            let orders = srv.get_object(
                &Gvr::parse("apps/v1/deployments"),
                Some("shop-dev"),
                "orders",
            );
            assert!(
                orders.is_some(),
                "README:{number}: dev was not applied:\n{out}"
            );
            local_applied = true;
        }
        if local_applied && command.ends_with("--context test --env dev --dry-run") {
            assert_eq!(code, 0, "README:{number}: a plan after the apply:\n{out}");
        }
        if command.starts_with("scripts/dry-run") {
            assert!(
                out.contains("this demo script exits 0"),
                "README:{number}: the script must say why it exits 0:\n{out}"
            );
        }
        if command.contains("--output markdown > plan.md") {
            let md = std::fs::read_to_string(repo.path().join("plan.md")).unwrap();
            assert!(md.starts_with("## keelson plan"), "{md}");
        }
        if command.contains("--against-ref origin/main") {
            let md = std::fs::read_to_string(repo.path().join("plan.md")).unwrap();
            assert!(
                md.contains("Plan: 0 to create, 1 to update, 0 to delete"),
                "only staging's mailer changed since origin/main:\n{md}"
            );
        }
    }
    assert!(ran >= 10, "only {ran} README commands ran");
    let after = srv.get_object(
        &Gvr::parse("apps/v1/deployments"),
        Some("shop-prod"),
        "orders",
    );
    assert!(
        after.is_some(),
        "`keelson reconcile -c keelson.yaml` applied the example to the test server"
    );
}

/// A placeholder (`ENV`, `[--repo DIR]`, `…`) marks a span as syntax, not
/// a command.
fn is_syntax(span: &str) -> bool {
    span.contains(['[', '|', '…', '<'])
        || span
            .split_whitespace()
            .any(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
}

#[test]
fn every_inline_keelson_command_in_the_readme_parses() {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let mut checked = 0;
    for (line, span) in inline_spans(&readme) {
        let Some(args) = span.strip_prefix("keelson ") else {
            continue;
        };
        if is_syntax(&span) {
            continue;
        }
        // `--help` after the arguments: clap rejects unknown flags and
        // values before it prints help, and runs nothing.
        let args: Vec<&str> = args
            .split_whitespace()
            .take_while(|a| *a != ">")
            .chain(["--help"])
            .collect();
        let out = Command::new(keelson_bin_dir().join("keelson"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README:{line}: `{span}` is refused:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} inline commands checked");
}
