//! Errors a new user meets: each names the cause and the next step, each
//! exits 1 (2 is only "changes planned or applied"), and a typo is an error,
//! never an empty answer.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use kube_apiserver::{ServerOptions, TestServer};

use super::{copy_example, keelson, project_root};

/// Run keelson in `dir` with a HOME of its own and no KUBECONFIG, so that
/// nothing of the machine running the tests is read.
fn isolated(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .env_remove("KEELSON_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let root = project_root();
    for args in [
        &["reconcile", "--output", "yaml"][..],
        &["no-such-command"],
        &["validate", "--no-such-flag"],
        &["status", "--repo"],
    ] {
        let (code, _, err) = keelson(&root, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("error:"), "{err}");
    }
    for args in [&["--help"][..], &["--version"], &["reconcile", "--help"]] {
        assert_eq!(keelson(&root, args).0, 0, "{args:?}");
    }
}

#[test]
fn one_flag_convention_across_subcommands_with_old_spellings_kept() {
    let root = project_root();
    // --output/-o everywhere it applies; `md` for markdown.
    let (code, md, _) = keelson(
        &root,
        &[
            "reconcile",
            "--dry-run",
            "--against",
            "examples/live",
            "-o",
            "md",
        ],
    );
    assert_eq!(code, 2);
    assert!(md.starts_with("## keelson plan"), "{md}");
    let (code, a, _) = keelson(&root, &["status", "--repo", ".", "-o", "json"]);
    assert_eq!(code, 0);
    let (code, b, _) = keelson(&root, &["status", "--repo", ".", "--json"]);
    assert_eq!(code, 0, "the old `--json` is a hidden alias");
    assert_eq!(a, b);
    serde_json::from_str::<serde_json::Value>(&a).unwrap();
    let (code, _, _) = keelson(&root, &["validate", "-o", "json"]);
    assert_eq!(code, 0);
    // -e/--env and -c/--config on every subcommand that takes them.
    let (code, out, _) = keelson(&root, &["status", "--repo", ".", "-e", "prod"]);
    assert_eq!(code, 0);
    assert!(out.contains("PROD") && !out.contains("STAGING"), "{out}");
    for args in [
        &["reconcile", "-c", "x.yaml", "--help"][..],
        &["run", "-c", "x.yaml", "--help"],
        &["status", "-c", "x.yaml", "--help"],
        &["backup", "-c", "x.yaml", "list", "--help"],
        &["backup", "list", "-o", "json", "--help"],
    ] {
        assert_eq!(keelson(&root, args).0, 0, "{args:?}");
    }
    let (_, help, _) = keelson(&root, &["status", "--help"]);
    assert!(
        !help.contains("--json"),
        "old spellings stay hidden:\n{help}"
    );
}

#[test]
fn a_missing_config_reads_the_same_in_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let mut messages = Vec::new();
    for args in [
        &["run"][..],
        &["backup", "list"],
        &["run", "-c", "missing.yaml"],
    ] {
        let (code, _, err) = isolated(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("cannot read the keelson config: no such file"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("pass -c/--config FILE or set KEELSON_CONFIG"),
            "{args:?}: {err}"
        );
        let first: Vec<&str> = err.lines().take(4).collect();
        messages.push(first.join("\n").replace("missing.yaml", "keelson.yaml"));
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:#?}");
    // status needs no config for most of what it does: one error that says
    // what it can read instead, not a config error and then a second one.
    let (code, out, err) = isolated(dir.path(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("there is no keelson config at keelson.yaml"),
        "{err}"
    );
    for way in [
        "--server URL",
        "--repo DIR",
        "--kubeconfig FILE",
        "-c/--config FILE",
    ] {
        assert!(err.contains(way), "{way}: {err}");
    }
    // A config that exists but is wrong is its own error, at its line.
    std::fs::write(
        dir.path().join("keelson.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Config\nclusterz: {}\n",
    )
    .unwrap();
    let (code, _, err) = isolated(dir.path(), &["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--> keelson.yaml:3:1"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
}

#[test]
fn status_typos_are_errors_not_empty_tables() {
    let root = project_root();
    let (code, out, err) = keelson(&root, &["status", "--repo", "/nonexistent"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("/nonexistent: no such directory"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = keelson(&root, &["status", "--repo", empty.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no environments in"), "{err}");
    let (code, out, err) = keelson(&root, &["status", "--repo", ".", "--env", "prdo"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no environment `prdo`"), "{err}");
    assert!(err.contains("did you mean `prod`?"), "{err}");
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("nope");
    let (code, _, err) = keelson(&root, &["status", "--state-dir", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no status store there"), "{err}");
    assert!(
        !missing.exists(),
        "status must not create a state directory"
    );
}

#[test]
fn a_missing_kubeconfig_is_one_error_with_the_ways_on() {
    let repo = copy_example();
    let (code, out, err) = isolated(repo.path(), &["reconcile", "--dry-run"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        err.matches("no kubeconfig").count(),
        1,
        "once, not per environment:\n{err}"
    );
    assert!(
        err.contains(".kube/config (the default) does not exist"),
        "{err}"
    );
    assert!(!err.contains("'\""), "no doubled quoting: {err}");
    for way in [
        "--kubeconfig FILE",
        "KUBECONFIG",
        "-c/--config FILE",
        "--against DIR",
        "--against-ref REV",
    ] {
        assert!(err.contains(way), "{way}: {err}");
    }
    assert!(out.is_empty(), "{out}");
    // preview list: a record that cannot be read is never "no previews".
    let (code, out, err) = isolated(repo.path(), &["preview", "list"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("the preview record on cluster `dev` cannot be read: no kubeconfig"),
        "{err}"
    );
    // Planning without a cluster is reconcile's way on, not preview list's.
    assert!(!err.contains("--against"), "{err}");
    let (code, _, err) = isolated(
        repo.path(),
        &["reconcile", "--dry-run", "--kubeconfig", "/nonexistent/kc"],
    );
    assert_eq!(code, 1);
    // A file named on purpose is said to be missing, with no advice to
    // pass the flag that named it.
    assert!(
        err.contains("no kubeconfig: /nonexistent/kc (from --kubeconfig) does not exist"),
        "{err}"
    );
    assert!(!err.contains("Pass --kubeconfig"), "{err}");
    std::fs::write(
        repo.path().join("keelson.yaml"),
        "apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  prod-eu:\n    kubeconfig: /nonexistent/kc2\n",
    )
    .unwrap();
    let (code, _, err) = isolated(repo.path(), &["reconcile", "--dry-run", "--env", "prod"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/kc2 (from the config, ./keelson.yaml:5:17) does not exist"),
        "{err}"
    );
}

fn kubeconfig(dir: &Path, server: &str, token: bool) -> String {
    let user = if token { "{token: abc}" } else { "{}" };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         contexts:\n- name: test\n  context: {{cluster: c, user: u}}\ncurrent-context: test\n\
         users:\n- name: u\n  user: {user}\n"
    );
    write_kubeconfig(dir, &text)
}

fn write_kubeconfig(dir: &Path, text: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `reconcile --dry-run --env prod` against context `test` of `kubeconfig`:
/// its stdout+stderr.
fn plan_with(kc: &str) -> (i32, String) {
    plan_in(kc, &["--context", "test"])
}

/// `reconcile --dry-run --env prod --kubeconfig kc`, then `extra`.
fn plan_in(kc: &str, extra: &[&str]) -> (i32, String) {
    let repo = copy_example();
    let mut args = vec![
        "reconcile",
        "--dry-run",
        "--env",
        "prod",
        "--kubeconfig",
        kc,
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = isolated(repo.path(), &args);
    (code, format!("{out}{err}"))
}

#[test]
fn a_repo_flag_at_the_wrong_folder_says_which_folder_to_pass() {
    let root = project_root();
    let (code, _, err) = keelson(&root, &["validate", "--repo", "environments"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("environments has no environments/ folder"),
        "{err}"
    );
    assert!(
        err.contains("looks like a folder inside the repository: point --repo at the folder that holds environments/"),
        "{err}"
    );
    let (code, _, err) = keelson(&root, &["validate", "--repo", "/nonexistent/keelson-repo"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/nonexistent/keelson-repo does not exist or is not a folder"),
        "{err}"
    );
    // The arrow names the real place, not a repository-relative
    // `environments` that points nowhere.
    assert!(
        err.contains("--> /nonexistent/keelson-repo/environments\n"),
        "{err}"
    );
    let (code, _, err) = keelson(
        &root,
        &[
            "reconcile",
            "--dry-run",
            "--repo",
            "/nonexistent/keelson-repo",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("/nonexistent/keelson-repo does not exist or is not a folder: nothing planned, nothing deleted"),
        "{err}"
    );
}

#[test]
fn against_a_folder_of_specs_or_of_nothing_is_not_silently_an_empty_cluster() {
    let root = project_root();
    // The environments repository is not captured state: an error at the
    // first keelson document, nothing planned.
    let (code, out, err) = keelson(
        &root,
        &["reconcile", "--dry-run", "--against", "environments/prod"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "environment.yaml:3:1: `kind: Environment` (keelson.dev/v1) is a keelson spec"
        ),
        "{err}"
    );
    assert!(!out.contains("+ create"), "{out}");
    // An empty folder is an empty cluster, said out loud.
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = keelson(
        &root,
        &[
            "reconcile",
            "--dry-run",
            "--env",
            "prod",
            "--against",
            empty.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "holds no Kubernetes objects (*.yaml, *.yml, *.json): planning against an empty cluster"
        ),
        "{err}"
    );
}

#[test]
fn a_kubeconfig_alone_never_sends_an_environment_to_its_current_context() {
    // The example's prod is on cluster `prod-eu`. The file's current context
    // reaches a live server; its `prod-eu` context reaches nothing.
    let srv = TestServer::start_blocking();
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let both = write_kubeconfig(
        dir.path(),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: live\n  cluster: {{server: {}}}\n\
             - name: dead\n  cluster: {{server: {dead}}}\ncontexts:\n\
             - name: test\n  context: {{cluster: live, user: u}}\n\
             - name: prod-eu\n  context: {{cluster: dead, user: u}}\n\
             current-context: test\nusers:\n- name: u\n  user: {{token: abc}}\n",
            srv.url()
        ),
    );
    let (code, out) = plan_in(&both, &[]);
    assert_eq!(code, 1, "prod goes to its own context, prod-eu: {out}");
    assert!(out.contains("connection refused"), "{out}");
    assert!(
        !out.contains("+ create"),
        "nothing planned against `test`: {out}"
    );
    // A file without the environment's context: an error naming the
    // contexts it has and the flag that picks one.
    let only_test = kubeconfig(dir.path(), srv.url(), true);
    let (code, out) = plan_in(&only_test, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("has no context `prod-eu` (it has: test)"),
        "{out}"
    );
    assert!(out.contains("--context NAME"), "{out}");
    assert!(!out.contains("+ create"), "{out}");
    // `--context` is the one way to send every environment to one context.
    let (code, out) = plan_in(&only_test, &["--context", "test"]);
    assert_eq!(code, 2, "planned against `test`: {out}");
    assert!(out.contains("+ create"), "{out}");
}

#[test]
fn an_untrusted_certificate_is_named_a_tls_problem() {
    let srv = TestServer::start_blocking_with(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let with_ca = srv.kubeconfig();
    let without_ca: String = with_ca
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(with_ca, without_ca);
    let (code, out) = plan_with(&write_kubeconfig(dir.path(), &without_ca));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TLS: the API server's certificate is not trusted"),
        "{out}"
    );
    assert!(out.contains("certificate-authority-data"), "{out}");
    // With its CA the same server is reached.
    let (code, out) = plan_with(&write_kubeconfig(dir.path(), &with_ca));
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_refused_connection_and_an_unknown_host_are_named() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = plan_with(&kubeconfig(dir.path(), &format!("http://{addr}"), true));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("connection refused: nothing listens"), "{out}");
    let (code, out) = plan_with(&kubeconfig(
        dir.path(),
        "https://keelson-no-such-host.invalid:6443",
        true,
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DNS: the API server's host name does not resolve"),
        "{out}"
    );
}

#[test]
fn refused_credentials_are_named_401() {
    let srv = TestServer::start_blocking_with(ServerOptions {
        require_token: true,
        ..ServerOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = plan_with(&kubeconfig(dir.path(), srv.url(), false));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("401"), "{out}");
    assert!(out.contains("refused the credentials"), "{out}");
}

#[test]
fn missing_permissions_are_named_403() {
    // An API server that knows the user but allows nothing, as RBAC does.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces is forbidden: User \"ci\" cannot list resource \"namespaces\"","reason":"Forbidden","code":403}"#;
            let _ = write!(
                s,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = plan_with(&kubeconfig(dir.path(), &url, true));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("403"), "{out}");
    assert!(out.contains("RBAC"), "{out}");
}

#[test]
fn a_mistyped_enum_value_gets_a_did_you_mean() {
    let repo = copy_example();
    let env = repo.path().join("environments/prod/environment.yaml");
    let text = std::fs::read_to_string(&env).unwrap();
    std::fs::write(&env, text.replacen("runtime: jvm", "runtime: jmv", 1)).unwrap();
    let (code, out, _) = keelson(repo.path(), &["validate"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("`jmv` is not an allowed value"), "{out}");
    assert!(out.contains("did you mean `jvm`?"), "{out}");
    assert!(
        out.contains("expected one of: jvm, node, go, python, generic"),
        "{out}"
    );
    assert!(!out.contains("Runtime"), "no schema type names: {out}");
    assert!(out.contains("environment.yaml:"), "names the file: {out}");
}

#[test]
fn a_context_missing_from_the_kubeconfig_is_named_with_the_ones_there() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "http://127.0.0.1:1", true);
    let repo = copy_example();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["reconcile", "--dry-run", "--env", "prod"])
        .current_dir(repo.path())
        .env("HOME", home.path())
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "kubeconfig {kc} (from KUBECONFIG) has no context `prod-eu` (it has: test)"
        )),
        "{text}"
    );
    assert!(text.contains("--context NAME"), "{text}");
    assert!(
        text.contains("cluster `prod-eu` names no context, so its name is taken for one"),
        "{text}"
    );
    // A context the config names: that cluster's entry, where it stands,
    // and where the kubeconfig was named.
    std::fs::write(
        repo.path().join("keelson.yaml"),
        format!(
            "apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  prod-eu:\n    kubeconfig: {kc}\n    context: tset\n"
        ),
    )
    .unwrap();
    let (code, out, err) = isolated(repo.path(), &["reconcile", "--dry-run", "--env", "prod"]);
    assert_eq!(code, 1, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains(&format!(
            "kubeconfig {kc} (from the config, ./keelson.yaml:5:17) has no context `tset` (it has: \
             test), named by `context: tset` under clusters.prod-eu (./keelson.yaml:6:14)"
        )),
        "{text}"
    );
    // --context names it: the flag is blamed, not the config.
    let (_, out, err) = isolated(
        repo.path(),
        &[
            "reconcile",
            "--dry-run",
            "--env",
            "prod",
            "--kubeconfig",
            &kc,
            "--context",
            "tset",
        ],
    );
    let text = format!("{out}{err}");
    assert!(
        text.contains("(from --kubeconfig) has no context `tset`"),
        "{text}"
    );
    assert!(text.contains("named by --context"), "{text}");
}

/// Every cluster of keelson.yaml at a closed port: each environment fails
/// once, the retire scan's failure (it cannot list the inventories either)
/// is said once for all clusters, and the closing line counts the real
/// environments only (it counted a "(retired environments)" entry per
/// cluster).
#[test]
fn unreachable_clusters_fail_each_environment_once_and_the_retire_scan_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "http://127.0.0.1:1", true);
    let repo = copy_example();
    // Preview templates would stop retirement earlier (their record is
    // unreadable too); without them the scan runs.
    for d in ["_templates", "preview-pr-123"] {
        std::fs::remove_dir_all(repo.path().join("environments").join(d)).unwrap();
    }
    let mut cfg = String::from("apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n");
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {kc}\n    context: test\n"
        ));
    }
    std::fs::write(repo.path().join("keelson.yaml"), cfg).unwrap();

    let (code, out, err) = isolated(repo.path(), &["reconcile", "--dry-run"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("in 3 environments. 3 failed or refused: dev, prod, staging."),
        "{out}\n{err}"
    );
    assert!(!out.contains("retired environments"), "{out}");
    let scan: Vec<&str> = err.lines().filter(|l| l.contains("not retired")).collect();
    assert_eq!(scan.len(), 1, "{err}");
    assert!(
        scan[0].starts_with(
            "error: environments removed from the repository are not retired on clusters `dev`, `prod-eu`, `staging-eu`: listing inventories:"
        ),
        "{err}"
    );
    assert!(scan[0].contains("cannot be reached"), "{err}");

    let (code, out, err) = isolated(repo.path(), &["reconcile", "--dry-run", "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["environments"].as_array().unwrap().len(), 3, "{out}");
    let errors = v["retireErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{out}");
    assert_eq!(errors[0]["cluster"], "dev");
}
