//! Shared helpers: real Git repositories, a recording fake pipeline, and a
//! controller started on a loopback port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keelson::controller::{
    AppStatus, Controller, EnvOutcome, EnvReconciler, Health, Outcome, Running, Settings,
};
use keelson::source::{Auth, RepoSpec};

/// A Git repository with a work tree, on disk.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl GitRepo {
    /// An empty repository whose branch is `main`.
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = git2::Repository::init_opts(dir.path(), &opts).unwrap();
        GitRepo { dir, repo }
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `text` to `rel` (creating folders).
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Write the fake pipeline file of `env` with `tag`.
    pub fn set_tag(&self, env: &str, tag: &str) {
        self.write(&format!("environments/{env}/pipeline.yaml"), &pipeline(tag));
    }

    /// Commit everything in the work tree to `main`; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("Dev Eloper", "dev@example.com").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    /// Move `main` back to `commit` (as a force-push would), resetting the work tree.
    pub fn reset_hard(&self, commit: &str) {
        let obj = self
            .repo
            .find_object(git2::Oid::from_str(commit).unwrap(), None)
            .unwrap();
        self.repo.reset(&obj, git2::ResetType::Hard, None).unwrap();
    }
}

/// The fake pipeline file: one app `web` with an image tag.
pub fn pipeline(tag: &str) -> String {
    format!("apps:\n  web:\n    tag: {tag}\n")
}

/// One call the controller made to the fake pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub env: String,
    pub dry_run: bool,
}

/// State of the fake cluster and of the calls made.
#[derive(Default)]
pub struct FakeState {
    /// env → tag running.
    pub cluster: Mutex<BTreeMap<String, String>>,
    pub calls: Mutex<Vec<Call>>,
    /// env → failures still to produce.
    pub fail: Mutex<BTreeMap<String, u32>>,
    pub delay: Mutex<Duration>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub per_env_in_flight: Mutex<BTreeMap<String, usize>>,
    pub max_per_env: AtomicUsize,
    pub completed: AtomicUsize,
}

/// A recording fake of the reconcile pipeline. It reads
/// `environments/<env>/pipeline.yaml` (`tag: X`) from the tree it is given;
/// a line `error: message` makes the spec invalid at that line.
#[derive(Clone, Default)]
pub struct Fake {
    pub state: Arc<FakeState>,
}

impl Fake {
    pub fn tag(&self, env: &str) -> Option<String> {
        self.state.cluster.lock().unwrap().get(env).cloned()
    }

    pub fn set_live(&self, env: &str, tag: &str) {
        self.state
            .cluster
            .lock()
            .unwrap()
            .insert(env.into(), tag.into());
    }

    pub fn calls(&self, env: &str, dry_run: bool) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.env == env && c.dry_run == dry_run)
            .count()
    }

    pub fn fail_next(&self, env: &str, times: u32) {
        self.state.fail.lock().unwrap().insert(env.into(), times);
    }

    pub fn set_delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }
}

impl EnvReconciler for Fake {
    async fn reconcile(&self, root: &Path, env: &str, dry_run: bool) -> EnvOutcome {
        let s = &self.state;
        s.calls.lock().unwrap().push(Call {
            env: env.into(),
            dry_run,
        });
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        {
            let mut per = s.per_env_in_flight.lock().unwrap();
            let n = per.entry(env.to_string()).or_default();
            *n += 1;
            s.max_per_env.fetch_max(*n, Ordering::SeqCst);
        }
        let delay = *s.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let out = self.decide(root, env, dry_run);
        *s.per_env_in_flight.lock().unwrap().get_mut(env).unwrap() -= 1;
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        s.completed.fetch_add(1, Ordering::SeqCst);
        out
    }
}

impl Fake {
    fn decide(&self, root: &Path, env: &str, dry_run: bool) -> EnvOutcome {
        let rel = format!("environments/{env}/pipeline.yaml");
        let text = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if let Some(msg) = line.trim_start().strip_prefix("error:") {
                let col = line.len() - line.trim_start().len() + 1;
                return EnvOutcome::bare(Outcome::Invalid {
                    diagnostics: vec![format!("{rel}:{}:{col}: {}", i + 1, msg.trim())],
                });
            }
        }
        {
            let mut fail = self.state.fail.lock().unwrap();
            if let Some(n) = fail.get_mut(env).filter(|n| **n > 0) {
                *n -= 1;
                return EnvOutcome::bare(Outcome::Failed {
                    message: "connection refused (fake)".into(),
                });
            }
        }
        let want = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("tag:"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        let mut cluster = self.state.cluster.lock().unwrap();
        let live = cluster.get(env).cloned();
        let outcome = if live.as_deref() == Some(want.as_str()) {
            Outcome::NoChange
        } else if dry_run {
            Outcome::Drift { count: 1 }
        } else {
            let created = u64::from(live.is_none());
            cluster.insert(env.to_string(), want.clone());
            Outcome::Applied {
                created,
                updated: 1 - created,
                replaced: 0,
                deleted: 0,
            }
        };
        let version = cluster.get(env).cloned().unwrap_or_default();
        let changes = match outcome {
            Outcome::Applied { .. } | Outcome::Drift { .. } => {
                vec![format!("update Deployment/{env}/web")]
            }
            _ => Vec::new(),
        };
        EnvOutcome {
            outcome,
            apps: vec![AppStatus {
                name: "web".into(),
                version,
                health: Health::Healthy,
                healthy_since: None,
            }],
            changes,
        }
    }
}

/// Settings for a test: loopback port chosen by the OS, long intervals
/// (tests trigger explicitly), fast retries.
pub fn settings(repo_url: &str, state_dir: &Path) -> Settings {
    let mut s = Settings::new(
        RepoSpec {
            url: repo_url.to_string(),
            branch: "main".into(),
            auth: Auth::default(),
        },
        PathBuf::from(state_dir),
    );
    s.listen = "127.0.0.1:0".parse().unwrap();
    s.poll_interval = Duration::from_secs(3600);
    s.drift_interval = Duration::from_secs(3600);
    s.retry_base = Duration::from_millis(50);
    s.max_backoff = Duration::from_millis(400);
    s.watch_local = false;
    s
}

pub async fn start(settings: Settings, fake: &Fake) -> Running {
    Controller::new(settings, fake.clone())
        .start()
        .await
        .unwrap()
}

/// Poll `cond` until it holds; fail the test with `what` after 20 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET `path` from the controller; returns status and body.
pub async fn get(running: &Running, path: &str) -> (u16, String) {
    let resp = keelson::http::client()
        .get(format!("http://{}{path}", running.addr()))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// GET `/status` as JSON.
pub async fn status(running: &Running) -> serde_json::Value {
    let (code, body) = get(running, "/status").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Wait until `/status` shows `env` applied at `commit`: a worker records its
/// sync after the apply returns, so the fake's state alone runs ahead of it.
pub async fn wait_recorded(running: &Running, env: &str, commit: &str) {
    wait_status(
        running,
        &format!("{env}'s apply of {commit} is recorded"),
        |st| env_status(st, env)["lastApplied"]["commit"] == commit,
    )
    .await;
}

/// The status entry of `env` (`null` until the environment has one, so it
/// can be polled for).
pub fn env_status<'a>(status: &'a serde_json::Value, env: &str) -> &'a serde_json::Value {
    static NULL: serde_json::Value = serde_json::Value::Null;
    status["environments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["env"] == env))
        .unwrap_or(&NULL)
}

/// A repo with environments dev and prod at tag 1.0.0, committed.
pub fn two_env_repo() -> (GitRepo, String) {
    let repo = GitRepo::new();
    repo.set_tag("dev", "1.0.0");
    repo.set_tag("prod", "1.0.0");
    repo.write("policies/base.yaml", "kind: Policy\n");
    let c = repo.commit("initial");
    (repo, c)
}

/// Poll `/status` until `cond` holds; returns that status. Fails after 20 s.
pub async fn wait_status(
    running: &Running,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let st = status(running).await;
        if cond(&st) {
            return st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of an unlabelled metric, or the sum over a labelled family
/// filtered by `labels` (`env="prod"` fragments).
pub async fn metric(running: &Running, name: &str, labels: &[&str]) -> f64 {
    let (_, text) = get(running, "/metrics").await;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Wait until a metric reaches at least `min`.
pub async fn wait_metric(running: &Running, name: &str, labels: &[&str], min: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(running, name, labels).await < min {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} never reached {min}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll `/history?env=E` until some entry satisfies `cond`; returns it.
pub async fn wait_history(
    running: &Running,
    env: &str,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(running, &format!("/history?env={env}&limit=1000")).await;
        let history: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        if let Some(h) = history.into_iter().find(|h| cond(h)) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
