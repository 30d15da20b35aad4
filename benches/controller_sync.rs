//! Benchmark: how long a pushed commit takes to reach the cluster through
//! `keelson run`'s loop, from the signed webhook to the change being live.
//!
//! `cargo bench --bench controller_sync` prints min/median/p95/max of:
//! - the controller's own overhead (fetch, export, diff, scheduling, record)
//!   with a no-op pipeline over 20 environments, one of which changes;
//! - the whole path with the real pipeline (check, render, plan, apply with
//!   health waits) against the Kubernetes and Rancher test servers, using
//!   the project's example environments.
//!
//! `KEELSON_BENCH_RUNS` sets the runs (default 20).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keelson::controller::pipeline::KubeReconciler;
use keelson::controller::webhook::sign;
use keelson::controller::{Controller, EnvOutcome, EnvReconciler, Outcome, Running, config};
use keelson::source::Secret;
use kube_apiserver::{Gvr, TestServer};
use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions};

const SECRET: &str = "bench-secret";

fn runs() -> usize {
    std::env::var("KEELSON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

fn git_commit(repo: &git2::Repository, message: &str) -> String {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Bench", "bench@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
        .to_string()
}

fn init_repo(dir: &Path) -> git2::Repository {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    git2::Repository::init_opts(dir, &opts).unwrap()
}

async fn webhook(running: &Running) {
    let body = r#"{"ref":"refs/heads/main"}"#;
    let sig = format!(
        "sha256={}",
        hex::encode(sign(SECRET.as_bytes(), body.as_bytes()))
    );
    let status = keelson::http::client()
        .post(format!("http://{}/hooks/git", running.addr()))
        .header("X-Hub-Signature-256", sig)
        .header("X-GitHub-Event", "push")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
}

async fn wait(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: runs={} min={:?} median={:?} p95={:?} max={:?}",
        samples.len(),
        samples[0],
        at(0.5),
        at(0.95),
        samples[samples.len() - 1]
    );
}

/// Applies whatever `tag:` line the environment's pipeline file has.
#[derive(Clone, Default)]
struct NoopPipeline {
    live: Arc<Mutex<std::collections::BTreeMap<String, String>>>,
}

impl EnvReconciler for NoopPipeline {
    async fn reconcile(&self, root: &Path, env: &str, _dry_run: bool) -> EnvOutcome {
        let text = std::fs::read_to_string(root.join(format!("environments/{env}/pipeline.yaml")))
            .unwrap_or_default();
        self.live.lock().unwrap().insert(env.into(), text);
        EnvOutcome::bare(Outcome::Applied {
            created: 0,
            updated: 1,
            replaced: 0,
            deleted: 0,
        })
    }
}

async fn controller_overhead() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let repo = init_repo(&repo_dir);
    for i in 0..20 {
        let p = repo_dir.join(format!("environments/env{i:02}"));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("pipeline.yaml"), "tag: 0\n").unwrap();
    }
    git_commit(&repo, "initial");
    let pipeline = NoopPipeline::default();
    let mut s = keelson::controller::Settings::new(
        keelson::source::RepoSpec {
            url: repo_dir.display().to_string(),
            branch: "main".into(),
            auth: Default::default(),
        },
        dir.path().join("state"),
    );
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.poll_interval = Duration::from_secs(3600);
    s.drift_interval = Duration::from_secs(3600);
    s.watch_local = false;
    s.webhook_secret = Some(Secret::new(SECRET));
    let running = Controller::new(s, pipeline.clone()).start().await.unwrap();
    wait(|| pipeline.live.lock().unwrap().len() == 20).await;
    let mut samples = Vec::new();
    for run in 1..=runs() {
        let text = format!("tag: {run}\n");
        std::fs::write(repo_dir.join("environments/env07/pipeline.yaml"), &text).unwrap();
        git_commit(&repo, &format!("bump {run}"));
        let started = Instant::now();
        webhook(&running).await;
        wait(|| pipeline.live.lock().unwrap().get("env07") == Some(&text)).await;
        samples.push(started.elapsed());
    }
    report(
        "webhook → applied, no-op pipeline, 20 environments",
        samples,
    );
    running.shutdown();
    running.wait().await;
}

#[path = "../tests/support/copy_dir.rs"]
mod copy_dir_support;
use copy_dir_support::copy_dir;

async fn real_pipeline() {
    let srv = TestServer::start().await;
    let rancher = RancherServer::start_with(ServerOptions {
        clusters: vec!["c-m-stag01".into(), "c-m-prod01".into()],
        ..ServerOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    srv.write_kubeconfig(d.join("kubeconfig")).unwrap();
    std::fs::write(d.join("rancher-token"), DEFAULT_TOKEN).unwrap();
    std::fs::write(d.join("hook"), SECRET).unwrap();
    let repo_dir = d.join("repo");
    let repo = init_repo(&repo_dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&root.join(sub), &repo_dir.join(sub));
    }
    git_commit(&repo, "example environments");
    let mut cfg = format!("stateDir: {}\nclusters:\n", d.join("state").display());
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {}\n    context: test\n",
            d.join("kubeconfig").display()
        ));
        if c != "dev" {
            cfg.push_str(&format!(
                "    rancher:\n      url: {}\n      tokenFile: {}\n",
                rancher.url(),
                d.join("rancher-token").display()
            ));
        }
    }
    cfg.push_str(&format!(
        "controller:\n  repository: {{ url: {}, watch: false }}\n  pollInterval: 1h\n  driftInterval: 1h\n  listen: 127.0.0.1:0\n  webhook: {{ secretFile: {} }}\n",
        repo_dir.display(),
        d.join("hook").display()
    ));
    std::fs::write(d.join("keelson.yaml"), cfg).unwrap();
    let loaded = config::load(&d.join("keelson.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = KubeReconciler::new(Some(loaded.config), Default::default()).unwrap();
    let running = Controller::new(loaded.settings, pipeline)
        .start()
        .await
        .unwrap();
    let image = || {
        srv.get_object(
            &Gvr::parse("apps/v1/deployments"),
            Some("shop-prod"),
            "orders",
        )
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_string)
        })
    };
    wait(|| image().is_some()).await;
    let pipeline_file = repo_dir.join("environments/prod/pipeline.yaml");
    let original = std::fs::read_to_string(&pipeline_file).unwrap();
    let tag_line = original
        .lines()
        .find(|l| l.trim_start().starts_with("tag:"))
        .unwrap()
        .to_string();
    let mut samples = Vec::new();
    for run in 1..=runs() {
        let tag = format!("9.{run}.0");
        std::fs::write(
            &pipeline_file,
            original.replacen(&tag_line, &format!("      tag: \"{tag}\""), 1),
        )
        .unwrap();
        git_commit(&repo, &format!("orders {tag}"));
        let want = format!("registry.example.com/shop/orders:{tag}");
        let started = Instant::now();
        webhook(&running).await;
        wait(|| image().as_deref() == Some(want.as_str())).await;
        samples.push(started.elapsed());
    }
    report(
        "webhook → live, real pipeline, example repo (prod changed)",
        samples,
    );
    running.shutdown();
    running.wait().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(controller_overhead());
    rt.block_on(real_pipeline());
}
