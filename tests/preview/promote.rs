//! `keelson promote`: a real Git clone of the example repository, the
//! controller's real status recording (its sync loop, store and `/status`)
//! over a fake cluster whose health the test sets, and the real binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keelson::apply::health::Health;
use keelson::controller::{
    AppStatus, Controller, EnvOutcome, EnvReconciler, Outcome, Running, Settings,
};
use keelson::source::{Auth, RepoSpec};

/// A cluster that runs whatever each environment's pipeline.yaml says, with
/// the health the test sets per `(env, app)` (healthy by default).
#[derive(Clone, Default)]
struct Cluster {
    health: Arc<Mutex<HashMap<(String, String), Health>>>,
}

impl Cluster {
    fn set(&self, env: &str, app: &str, h: Health) {
        self.health
            .lock()
            .unwrap()
            .insert((env.into(), app.into()), h);
    }
}

impl EnvReconciler for Cluster {
    async fn reconcile(&self, root: &Path, env: &str, _dry_run: bool) -> EnvOutcome {
        let file = root.join("environments").join(env).join("pipeline.yaml");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let versions = keelson::promote::versions(&file, &text).unwrap_or_default();
        let health = self.health.lock().unwrap();
        EnvOutcome {
            outcome: Outcome::NoChange,
            apps: versions
                .iter()
                .map(|(app, v)| AppStatus {
                    name: app.clone(),
                    version: v.recorded(),
                    health: health
                        .get(&(env.to_string(), app.clone()))
                        .copied()
                        .unwrap_or(Health::Healthy),
                    healthy_since: None,
                })
                .collect(),
            changes: Vec::new(),
        }
    }
}

/// A Git clone (branch `main`) of the example repository, and a keelson
/// config beside it (outside the repository).
struct Repo {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Repo {
    fn new(config: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let repo = dir.path().join("repo");
        for sub in ["environments", "policies", "schema"] {
            super::harness::copy_dir(&root.join(sub), &repo.join(sub));
        }
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["config", "user.name", "Dev Eloper"]);
        git(&repo, &["config", "user.email", "dev@example.com"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "example repository"]);
        let path = dir.path().join("keelson.yaml");
        std::fs::write(
            &path,
            format!("apiVersion: keelson.dev/v1\nkind: Config\n{config}"),
        )
        .unwrap();
        Repo { dir, config: path }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.path(), args)
    }

    /// `keelson promote ARGS -c <config>` in the clone: (code, stdout, stderr).
    fn promote(&self, args: &[&str]) -> (i32, String, String) {
        self.promote_with(&self.config, args)
    }

    /// A second config beside the first, `promotion:` being `promotion`.
    fn other_config(&self, promotion: &str) -> PathBuf {
        let path = self.dir.path().join("other.yaml");
        std::fs::write(
            &path,
            format!("apiVersion: keelson.dev/v1\nkind: Config\npromotion:\n{promotion}"),
        )
        .unwrap();
        path
    }

    /// `keelson promote ARGS -c CONFIG` in the clone.
    fn promote_with(&self, config: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg("promote")
            .args(args)
            .arg("-c")
            .arg(config)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run keelson");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The line of `keelson status --server SERVER` that lists `app` as
    /// promotable along `pair` (`staging -> prod`), its column padding
    /// collapsed to single spaces.
    fn promotable(&self, server: &str, app: &str, pair: &str) -> String {
        let out = tokio::task::block_in_place(|| {
            Command::new(env!("CARGO_BIN_EXE_keelson"))
                .args(["status", "--server", server, "-c"])
                .arg(&self.config)
                .output()
                .expect("run keelson")
        });
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        let (_, section) = text
            .split_once("promotable along dev -> staging -> prod (promotion.minHealthy 1s):\n")
            .unwrap_or_else(|| panic!("no promotable section: {text}"));
        section
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{app} ")) && l.contains(pair))
            .unwrap_or_else(|| panic!("{app} {pair} is not listed: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The changed lines between `main` and `branch`, `-`/`+` prefixed.
    fn changed_lines(&self, branch: &str) -> Vec<String> {
        self.git(&["diff", "-U0", "main", branch])
            .lines()
            .filter(|l| {
                (l.starts_with('-') || l.starts_with('+'))
                    && !l.starts_with("---")
                    && !l.starts_with("+++")
            })
            .map(str::to_string)
            .collect()
    }
}

/// The controller on the clone, observing every 100 ms.
async fn controller(repo: &Repo, state: &Path, cluster: &Cluster) -> Running {
    let mut s = Settings::new(
        RepoSpec {
            url: repo.path().display().to_string(),
            branch: "main".into(),
            auth: Auth::default(),
        },
        state.to_path_buf(),
    );
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.poll_interval = Duration::from_secs(3600);
    s.drift_interval = Duration::from_millis(100);
    s.watch_local = false;
    Controller::new(s, cluster.clone()).start().await.unwrap()
}

/// Poll the controller's `/status` until `app` in `env` has `healthySince`
/// (or, with `false`, has none); returns it.
async fn healthy_since(running: &Running, env: &str, app: &str, healthy: bool) -> Option<String> {
    let url = format!("http://{}/status", running.addr());
    for _ in 0..500 {
        let st = crate::get_json::get_json(&url).await;
        let found = st["environments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["env"] == env)
            .flat_map(|e| e["apps"].as_array().cloned().unwrap_or_default())
            .find(|a| a["name"] == app);
        if let Some(a) = found {
            let since = a["healthySince"].as_str().map(str::to_string);
            if since.is_some() == healthy {
                return since;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{app} in {env} never recorded healthy={healthy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_waits_for_the_gate_then_commits_exactly_the_tag_line() {
    let repo = Repo::new(
        "promotion:\n  stages: [dev, staging, prod]\n  minHealthy: 1s\n  author: {name: Release Bot, email: release@example.com}\n",
    );
    let state = tempfile::tempdir().unwrap();
    let cluster = Cluster::default();
    cluster.set("staging", "orders", Health::Progressing);
    let running = controller(&repo, state.path(), &cluster).await;
    let server = format!("http://{}", running.addr());
    // The same record is judged with minHealthy 1h (too soon, whatever the
    // machine's load) and with 1s, once a second has passed.
    let hour = repo.other_config("  minHealthy: 1h\n");
    let promote = |config: Option<&Path>| {
        let repo = &repo;
        let server = server.clone();
        let config = config.unwrap_or(&repo.config).to_path_buf();
        async move {
            tokio::task::block_in_place(|| {
                repo.promote_with(
                    &config,
                    &[
                        "orders", "--from", "staging", "--to", "prod", "--server", &server,
                    ],
                )
            })
        }
    };
    healthy_since(&running, "staging", "orders", false).await;

    // Running, but not healthy: refused, with what the status says.
    let (code, _, err) = promote(None).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "refused: orders: orders 1.43.0-rc.2 is progressing in `staging` (last observation: 20"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was committed"), "{err}");
    let line = repo.promotable(&server, "orders", "staging -> prod");
    assert!(
        line.contains(
            "1.43.0-rc.2 staging -> prod replaces 1.42.0 gate not met: orders 1.43.0-rc.2 is progressing in `staging`"
        ),
        "{line}"
    );

    // Healthy, but for less than minHealthy: refused, saying since when.
    cluster.set("staging", "orders", Health::Healthy);
    let since = healthy_since(&running, "staging", "orders", true)
        .await
        .unwrap();
    let (code, _, err) = promote(Some(&hour)).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "orders 1.43.0-rc.2 has been healthy in `staging` since {since} ("
        )) && err.contains("less than promotion.minHealthy (1h)"),
        "{err}"
    );
    assert_eq!(repo.git(&["branch", "--list", "promote/*"]), "");

    // Healthy for long enough, by the same record: committed on a branch.
    // The gate counts healthy time up to the last observation (every 100
    // ms here), so wait half a second past the minimum.
    let start = humantime::parse_rfc3339(&since).unwrap() + Duration::from_millis(1500);
    if let Ok(wait) = start.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let (code, out, err) = promote(None).await;
    assert_eq!(code, 0, "{out}{err}");
    let branch = "promote/prod/orders-1.43.0-rc.2";
    assert!(out.contains(&format!("on branch {branch}")), "{out}");
    let line = repo.promotable(&server, "orders", "staging -> prod");
    assert!(
        line.contains(&format!(
            "1.43.0-rc.2 staging -> prod replaces 1.42.0 gate met: 1.43.0-rc.2 healthy since {since} ("
        )),
        "{line}"
    );
    assert_eq!(
        repo.changed_lines(branch),
        [
            "-      tag: \"1.42.0\"   # release 2026-11-20",
            "+      tag: \"1.43.0-rc.2\"   # release 2026-11-20",
        ]
    );
    assert_eq!(
        repo.git(&["diff", "--name-only", "main", branch]),
        "environments/prod/pipeline.yaml\n"
    );
    let log = repo.git(&["log", "-1", "--format=%an <%ae>|%s|%b", branch]);
    assert!(
        log.starts_with(
            "Release Bot <release@example.com>|promote orders 1.43.0-rc.2 from staging to prod|orders: 1.42.0 -> 1.43.0-rc.2 (1.43.0-rc.2 healthy since "
        ),
        "{log}"
    );
    // The clone's checkout is untouched: still on main, nothing modified.
    assert_eq!(repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]), "main\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_all_moves_only_differing_apps_and_drops_a_stale_digest() {
    let repo = Repo::new("promotion:\n  minHealthy: 0s\n");
    let state = tempfile::tempdir().unwrap();
    let cluster = Cluster::default();
    let running = controller(&repo, state.path(), &cluster).await;
    for app in ["orders", "storefront", "payments", "mailer"] {
        healthy_since(&running, "staging", app, true).await;
    }
    running.shutdown();
    running.wait().await;

    // From the stopped controller's status store.
    let state_dir = state.path().display().to_string();
    let promote_all = || {
        tokio::task::block_in_place(|| {
            repo.promote(&[
                "--all",
                "--from",
                "staging",
                "--to",
                "prod",
                "--state-dir",
                &state_dir,
            ])
        })
    };
    let (code, out, err) = promote_all();
    assert_eq!(code, 0, "{out}{err}");
    let base = repo.git(&["rev-parse", "--short=7", "main"]);
    let branch = format!("promote/prod/from-staging-{}", base.trim());
    assert!(out.contains(&branch), "{out}");
    // mailer is 2.3.0 in both: untouched. payments' prod digest pinned the
    // old build, so it goes with the old tag.
    assert_eq!(
        repo.changed_lines(&branch),
        [
            "-      tag: \"1.42.0\"   # release 2026-11-20",
            "+      tag: \"1.43.0-rc.2\"   # release 2026-11-20",
            "-      tag: \"3.8.1\"",
            "+      tag: \"3.9.0-rc.1\"",
            "-      tag: \"0.19.4\"",
            "-      digest: sha256:4d1b0b2f8c1e6a5d3c9b7a8e2f1d0c9b8a7e6d5c4b3a2f1e0d9c8b7a6e5d4c3b",
            "+      tag: \"0.20.0\"",
        ]
    );
    let subject = repo.git(&["log", "-1", "--format=%s", &branch]);
    assert_eq!(subject, "promote 3 apps from staging to prod\n");
    // The promoted tree is valid: every spec of the branch checks clean.
    repo.git(&["checkout", "-q", &branch]);
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["validate", "--repo", "."])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing left to move: a second --all from the branch says so.
    let (code, out, err) = promote_all();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("nothing to promote"), "{out}");
}

/// With `--push` and a `forge:` section: the branch reaches the remote and a
/// merge request into `main` is opened on the fake forge, its description
/// holding what moves, the gate's finding and the offline plan of prod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_pushes_and_opens_a_merge_request_with_the_plan() {
    use super::forge::{FakeForge, Flavour, REPOSITORY};
    for (flavour, kind) in [(Flavour::GitHub, "github"), (Flavour::GitLab, "gitlab")] {
        let fake = FakeForge::start(flavour);
        let repo = Repo::new(&format!(
            "forge:\n  kind: {kind}\n  apiUrl: {}\n  repository: {REPOSITORY}\n  tokenFile: forge-token\npromotion:\n  minHealthy: 0s\n",
            fake.api_url
        ));
        std::fs::write(repo.dir.path().join("forge-token"), fake.token()).unwrap();
        let remote = repo.dir.path().join("remote.git");
        git(
            repo.dir.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        repo.git(&["remote", "add", "origin", &remote.display().to_string()]);
        repo.git(&["push", "-q", "origin", "main"]);
        // GitHub: the gate reads a stopped controller's store; GitLab: the
        // gate is skipped, and the merge request says so.
        let state = tempfile::tempdir().unwrap();
        let gate: Vec<String> = if flavour == Flavour::GitHub {
            let running = controller(&repo, state.path(), &Cluster::default()).await;
            healthy_since(&running, "staging", "orders", true).await;
            running.shutdown();
            running.wait().await;
            vec!["--state-dir".into(), state.path().display().to_string()]
        } else {
            vec!["--skip-health-gate".into()]
        };
        let mut args = vec!["orders", "--from", "staging", "--to", "prod", "--push"];
        args.extend(gate.iter().map(String::as_str));
        let (code, out, err) = tokio::task::block_in_place(|| repo.promote(&args));
        assert_eq!(code, 0, "{kind}: {out}{err}");
        let branch = "promote/prod/orders-1.43.0-rc.2";
        assert_eq!(
            git(&remote, &["rev-parse", branch]),
            repo.git(&["rev-parse", branch]),
            "{kind}: the branch is on the remote"
        );
        let mr = fake
            .mr(1)
            .unwrap_or_else(|| panic!("{kind}: no merge request: {out}{err}"));
        assert!(
            out.contains(&format!(
                "opened merge request #1 into main: {}",
                fake.web_url(1)
            )),
            "{kind}: {out}"
        );
        assert_eq!(mr.head_branch, branch);
        assert_eq!(mr.base_branch, "main");
        assert_eq!(mr.title, "promote orders 1.43.0-rc.2 from staging to prod");
        let d = &mr.description;
        // The plan of prod for the promotion commit against its base: one
        // Deployment changes, and only by its version.
        assert!(
            d.contains("**Plan: 0 to create, 1 to update, 0 to delete, in 1 environment.**"),
            "{d}"
        );
        assert!(d.contains("Planned against the base commit "), "{d}");
        assert!(
            d.contains("<code>~ update Deployment/shop-prod/orders</code>"),
            "{d}"
        );
        assert!(
            d.contains("-          image: registry.example.com/shop/orders:1.42.0\n+          image: registry.example.com/shop/orders:1.43.0-rc.2\n"),
            "{d}"
        );
        if flavour == Flavour::GitHub {
            assert!(
                d.contains("| orders | 1.42.0 | 1.43.0-rc.2 | met: 1.43.0-rc.2 healthy since "),
                "{d}"
            );
        } else {
            assert!(
                d.contains(
                    "| orders | 1.42.0 | 1.43.0-rc.2 | **skipped** (`--skip-health-gate`) |"
                ),
                "{d}"
            );
            assert!(
                err.contains("warning: health gate skipped (--skip-health-gate)"),
                "{err}"
            );
        }
        assert!(fake.refused().is_empty(), "{kind}: {:?}", fake.refused());
        assert!(!out.contains(fake.token()) && !err.contains(fake.token()));
    }
}
