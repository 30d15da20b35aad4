//! End to end: the real `keelson run` binary, a real Git repository holding
//! the project's example environments, and the Kubernetes API test server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keelson::controller::webhook::sign;
use kube_apiserver::{Gvr, TestServer};
use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions};
use serde_json::{Value, json};

use crate::support::GitRepo;

const SECRET: &str = "e2e-webhook-secret";
const PROD_PIPELINE: &str = "environments/prod/pipeline.yaml";

#[path = "../support/copy_dir.rs"]
mod copy_dir_support;
pub use copy_dir_support::copy_dir;

pub(crate) struct Controller {
    child: Child,
    base: String,
}

impl Controller {
    /// Start `keelson run`; logs go to `log`.
    pub(crate) fn start(config: &Path, log: &Path) -> Controller {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .to_string();
        Controller { child, base }
    }

    pub(crate) async fn get_json(&self, path: &str) -> Value {
        crate::get_json::get_json(&format!("{}{path}", self.base)).await
    }

    pub(crate) async fn wait_status(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = self.get_json("/status").await;
            if cond(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: {st:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn hook(&self, headers: &[(&str, String)], body: &str) -> u16 {
        let mut req = keelson::http::client()
            .post(format!("{}/hooks/git", self.base))
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap().status().as_u16()
    }

    pub(crate) fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "keelson run exited with {status}");
    }
}

/// A test that fails half-way must not leave its `keelson run` behind.
impl Drop for Controller {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn env<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == name)
        .unwrap_or(&Value::Null)
}

fn orders_image(srv: &TestServer) -> Option<String> {
    let d = srv.get_object(
        &Gvr::parse("apps/v1/deployments"),
        Some("shop-prod"),
        "orders",
    )?;
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .map(str::to_string)
}

async fn wait_image(srv: &TestServer, tag: &str) {
    let want = format!("registry.example.com/shop/orders:{tag}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while orders_image(srv).as_deref() != Some(want.as_str()) {
        assert!(
            Instant::now() < deadline,
            "orders never ran {tag}: {:?}",
            orders_image(srv)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn bump(repo: &GitRepo, from: &str, to: &str) -> String {
    let p = repo.path().join(PROD_PIPELINE);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen(&format!("tag: \"{from}\""), &format!("tag: \"{to}\""), 1),
    )
    .unwrap();
    repo.commit(&format!("prod: orders {to}"))
}

/// A manual edit on the cluster, by another field manager.
async fn edit_replicas(srv: &TestServer, replicas: u32) {
    patch_orders(srv, json!({"spec": {"replicas": replicas}})).await;
}

/// Merge-patch the prod orders Deployment as `kubectl edit` would.
async fn patch_orders(srv: &TestServer, patch: Value) {
    let status = keelson::http::client()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/shop-prod/deployments/orders?fieldManager=kubectl-edit",
            srv.url()
        ))
        .header("Content-Type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

fn replicas(srv: &TestServer) -> Value {
    srv.get_object(
        &Gvr::parse("apps/v1/deployments"),
        Some("shop-prod"),
        "orders",
    )
    .unwrap()["spec"]["replicas"]
        .clone()
}

/// The keelson config: every cluster on the Kubernetes test server, staging
/// and prod also managed through the Rancher test server at `rancher`.
fn config(
    dir: &Path,
    repo: &Path,
    kubeconfig: &Path,
    rancher: &str,
    controller: &str,
) -> std::path::PathBuf {
    let mut cfg = format!(
        "apiVersion: keelson.dev/v1\nkind: Config\nstateDir: {}\nclusters:\n",
        dir.join("state").display()
    );
    for c in ["dev", "staging-eu", "prod-eu"] {
        cfg.push_str(&format!(
            "  {c}:\n    kubeconfig: {}\n    context: test\n",
            kubeconfig.display()
        ));
        if c != "dev" {
            cfg.push_str(&format!(
                "    rancher:\n      url: {rancher}\n      tokenFile: {}\n",
                dir.join("rancher-token").display()
            ));
        }
    }
    cfg.push_str(&format!(
        "controller:\n  repository:\n    url: {}\n    watch: false\n  webhook:\n    secretFile: {}\n{controller}",
        repo.display(),
        dir.join("webhook-secret").display()
    ));
    let path = dir.join("keelson.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelson_run_keeps_the_test_cluster_at_the_repository() {
    let srv = TestServer::start().await;
    let rancher = RancherServer::start_with(ServerOptions {
        clusters: vec!["c-m-stag01".into(), "c-m-prod01".into()],
        ..ServerOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rancher-token"), DEFAULT_TOKEN).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    srv.write_kubeconfig(&kubeconfig).unwrap();
    std::fs::write(dir.path().join("webhook-secret"), format!("{SECRET}\n")).unwrap();
    let repo = GitRepo::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["environments", "policies", "schema"] {
        copy_dir(&root.join(sub), &repo.path().join(sub));
    }
    let first = repo.commit("example environments");

    // Phase 1: polling every second, self-healing.
    let cfg = config(
        dir.path(),
        repo.path(),
        &kubeconfig,
        rancher.url(),
        "  pollInterval: 1s\n  driftInterval: 1s\n  selfHeal: true\n",
    );
    let ctl = Controller::start(&cfg, &dir.path().join("run1.log"));
    let st = ctl
        .wait_status("every environment synced", |st| st["ready"] == true)
        .await;
    assert_eq!(
        env(&st, "prod")["lastApplied"]["commit"],
        first.as_str(),
        "{st:#}"
    );
    assert_eq!(
        st["matrix"]["apps"]["orders"]["prod"]["version"], "1.42.0",
        "{st:#}"
    );
    wait_image(&srv, "1.42.0").await;

    // A commit that bumps a tag reaches the cluster by polling.
    let bumped = bump(&repo, "1.42.0", "1.43.0");
    wait_image(&srv, "1.43.0").await;
    let st = ctl
        .wait_status("the bump is recorded", |st| {
            env(st, "prod")["lastApplied"]["commit"] == bumped.as_str()
        })
        .await;
    assert_eq!(st["matrix"]["apps"]["orders"]["prod"]["version"], "1.43.0");
    let history = ctl.get_json("/history?env=prod").await;
    let sync = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["commit"] == bumped.as_str())
        .unwrap();
    assert_eq!(sync["outcome"]["result"], "applied", "{sync:#}");
    assert_eq!(sync["author"], "Dev Eloper <dev@example.com>");
    assert!(
        sync["changes"]
            .as_array()
            .unwrap()
            .contains(&json!("update Deployment/shop-prod/orders")),
        "{sync:#}"
    );
    assert_eq!(
        env(&st, "dev")["lastApplied"]["commit"],
        first.as_str(),
        "dev's files did not change"
    );

    // A commit with a spec error is not applied and shows with its position.
    let p = repo.path().join(PROD_PIPELINE);
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen("tag: \"1.43.0\"", "tag: \"1.44.0\"", 1)
            .replacen(
                "      region: eu-west-1\n",
                "      region: eu-west-1\n      colour: blue\n",
                1,
            ),
    )
    .unwrap();
    let bad = repo.commit("prod: typo");
    let st = ctl
        .wait_status("the bad commit is reported", |st| {
            env(st, "prod")["lastAttempt"]["commit"] == bad.as_str()
        })
        .await;
    let prod = env(&st, "prod");
    assert_eq!(
        prod["lastAttempt"]["outcome"]["result"], "invalid",
        "{prod:#}"
    );
    let diags = prod["lastAttempt"]["outcome"]["diagnostics"].to_string();
    assert!(
        diags.contains("environments/prod/pipeline.yaml:11:7"),
        "{diags}"
    );
    assert!(diags.contains("unknown field `colour`"), "{diags}");
    assert_eq!(prod["lastApplied"]["commit"], bumped.as_str());
    assert_eq!(
        orders_image(&srv).unwrap(),
        "registry.example.com/shop/orders:1.43.0"
    );

    // Manual drift is reverted (selfHeal), even while the head is invalid.
    edit_replicas(&srv, 9).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while replicas(&srv) == 9 {
        assert!(Instant::now() < deadline, "drift was never reverted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replicas(&srv), 3);
    // The revert is live before its sync is recorded: wait for the record.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let history = ctl.get_json("/history?env=prod").await;
        let recorded = history
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["trigger"] == "drift" && h["outcome"]["result"] == "applied");
        if recorded {
            break;
        }
        assert!(Instant::now() < deadline, "{history:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctl.stop();

    // Phase 2: restarted with an hour-long poll and no self-heal.
    let cfg = config(
        dir.path(),
        repo.path(),
        &kubeconfig,
        rancher.url(),
        "  pollInterval: 1h\n  driftInterval: 1s\n",
    );
    let ctl = Controller::start(&cfg, &dir.path().join("run2.log"));
    let history = ctl.get_json("/history?env=prod&limit=1000").await;
    let commits: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["commit"].as_str().unwrap())
        .collect();
    for c in [&first, &bumped, &bad] {
        assert!(
            commits.contains(&c.as_str()),
            "history lost {c} across the restart: {history:#}"
        );
    }
    ctl.wait_status("ready after restart", |st| st["ready"] == true)
        .await;

    // A fixed commit, announced by a wrongly signed webhook: 401, nothing applied.
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("      colour: blue\n", "", 1);
    std::fs::write(&p, text).unwrap();
    let fixed = repo.commit("prod: fix typo");
    let body = r#"{"ref":"refs/heads/main"}"#;
    let forged = format!(
        "sha256={}",
        hex::encode(sign(b"not-the-secret", body.as_bytes()))
    );
    assert_eq!(
        ctl.hook(&[("X-Hub-Signature-256", forged)], body).await,
        401
    );
    assert_eq!(ctl.hook(&[], body).await, 401);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        orders_image(&srv).unwrap(),
        "registry.example.com/shop/orders:1.43.0"
    );

    // The signed webhook brings it in.
    let signed = format!(
        "sha256={}",
        hex::encode(sign(SECRET.as_bytes(), body.as_bytes()))
    );
    let sent = Instant::now();
    assert_eq!(
        ctl.hook(
            &[
                ("X-Hub-Signature-256", signed),
                ("X-GitHub-Event", "push".into())
            ],
            body
        )
        .await,
        202
    );
    wait_image(&srv, "1.44.0").await;
    eprintln!("webhook to applied: {:?}", sent.elapsed());
    ctl.wait_status("the fix is recorded", |st| {
        env(st, "prod")["lastApplied"]["commit"] == fixed.as_str()
    })
    .await;

    // Without selfHeal, drift is reported, not reverted; status shows the
    // version that actually runs.
    edit_replicas(&srv, 7).await;
    let deploy = srv
        .get_object(
            &Gvr::parse("apps/v1/deployments"),
            Some("shop-prod"),
            "orders",
        )
        .unwrap();
    let mut containers = deploy["spec"]["template"]["spec"]["containers"].clone();
    containers[0]["image"] = json!("registry.example.com/shop/orders:1.44.0-hotfix");
    patch_orders(
        &srv,
        json!({"spec": {"template": {"spec": {"containers": containers}}}}),
    )
    .await;
    let st = ctl
        .wait_status("the hand-set version shows", |st| {
            st["matrix"]["apps"]["orders"]["prod"]["version"] == "1.44.0-hotfix"
        })
        .await;
    assert!(env(&st, "prod")["drift"].as_u64().unwrap() >= 1, "{st:#}");
    let st = ctl
        .wait_status("drift is reported", |st| {
            env(st, "prod")["drift"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert_eq!(
        env(&st, "prod")["lastDriftCheck"]["outcome"]["result"],
        "drift"
    );
    assert_eq!(replicas(&srv), 7);
    let metrics = keelson::http::client()
        .get(format!("{}/metrics", ctl.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).unwrap();
    let drift = scrape
        .samples
        .iter()
        .find(|s| s.metric == "keelson_drift_objects" && s.labels.get("env") == Some("prod"))
        .expect("drift gauge for prod");
    assert!(
        matches!(drift.value, prometheus_parse::Value::Gauge(v) if v >= 1.0),
        "{drift:?}"
    );
    ctl.stop();
}
