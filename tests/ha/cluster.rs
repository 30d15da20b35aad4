//! The fixture: one Kubernetes API test server, one Git repository of
//! environments, and a fleet of real `keelson run` processes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_apiserver::{Fault, Gvr, TestServer};
use serde_json::json;

/// Namespace of the Leases.
pub const LEASE_NS: &str = "keelson-system";

/// A Git repository (git2) with `n` environments on the test server.
pub struct Setup {
    pub srv: TestServer,
    pub dir: tempfile::TempDir,
    repo: git2::Repository,
    pub envs: Vec<String>,
}

/// The apps of every environment: a release writes one Deployment each, so
/// a replica paused after its first write still has writes to make.
pub const APPS: [&str; 4] = ["orders", "mailer", "billing", "search"];

fn environment(name: &str) -> String {
    let mut y = format!(
        "apiVersion: keelson.dev/v1\nkind: Environment\nmetadata:\n  name: {name}\nspec:\n  cluster: test\n  namespace: ns-{name}\n  apps:\n"
    );
    for (i, app) in APPS.iter().enumerate() {
        y.push_str(&format!(
            "    - name: {app}\n      image: registry.example.com/shop/{app}\n      runtime: go\n      memory: 128Mi\n      ports:\n        - name: http\n          port: {}\n      health:\n        path: /healthz\n",
            8080 + i
        ));
    }
    y
}

fn pipeline(tag: &str) -> String {
    let mut y = "apiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n".to_string();
    for app in APPS {
        y.push_str(&format!("    {app}:\n      tag: \"{tag}\"\n"));
    }
    y
}

impl Setup {
    /// The server (with the Lease namespace and one free Lease per
    /// environment), the repository at tag `1.0.0`, and the config.
    pub async fn new(n: usize) -> Setup {
        let srv = TestServer::start().await;
        srv.create_object(
            &Gvr::parse("v1/namespaces"),
            "test-seed",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}}),
        )
        .unwrap();
        // The CRD of deploy/, which must be the one keelson describes.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("deploy/crd.yaml")).unwrap();
        let crd = keelson::yaml::parse_one(&text, keelson::yaml::Limits::default())
            .unwrap()
            .to_json();
        assert_eq!(
            crd,
            keelson::record::kube::crd(),
            "deploy/crd.yaml differs from keelson::record::kube::crd()"
        );
        srv.create_object(
            &Gvr::parse("apiextensions.k8s.io/v1/customresourcedefinitions"),
            "test-seed",
            crd,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("repo");
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = git2::Repository::init_opts(&work, &opts).unwrap();
        let envs: Vec<String> = (0..n).map(|i| format!("env-{i}")).collect();
        copy_dir(&root.join("schema"), &work.join("schema"));
        std::fs::create_dir_all(work.join("policies")).unwrap();
        std::fs::copy(
            root.join("policies/base.yaml"),
            work.join("policies/base.yaml"),
        )
        .unwrap();
        for e in &envs {
            let d = work.join("environments").join(e);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("environment.yaml"), environment(e)).unwrap();
            // The Lease exists and is free, so that every write to it in
            // the request log names it (a create's path does not).
            srv.create_object(
                &Gvr::parse("coordination.k8s.io/v1/leases"),
                "test-seed",
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": format!("keelson-env-{e}"), "namespace": LEASE_NS},
                       "spec": {}}),
            )
            .unwrap();
        }
        let kubeconfig = dir.path().join("kubeconfig");
        srv.write_kubeconfig(&kubeconfig).unwrap();
        let setup = Setup {
            srv,
            repo,
            envs,
            dir,
        };
        setup.release("1.0.0");
        let cfg = format!(
            "apiVersion: keelson.dev/v1\nkind: Config\nstateDir: STATE\nclusters:\n  test:\n    kubeconfig: {}\n    context: test\ncontroller:\n  repository:\n    url: {}\n    watch: false\n  pollInterval: 500ms\n  driftInterval: 1h\n  maxParallel: 2\n  leases:\n    cluster: test\n    namespace: {LEASE_NS}\n    duration: 2s\n    renewDeadline: 1500ms\n    retryPeriod: 300ms\n",
            kubeconfig.display(),
            work.display()
        );
        std::fs::write(setup.dir.path().join("keelson.yaml"), cfg).unwrap();
        setup
    }

    /// Commit every environment's pipeline at image tag `tag`.
    pub fn release(&self, tag: &str) -> String {
        let envs = self.envs.clone();
        self.commit_tags(&envs, tag)
    }

    /// Commit environment `env`'s pipeline at `tag`; returns the commit id.
    pub fn release_one(&self, env: &str, tag: &str) -> String {
        self.commit_tags(&[env.to_string()], tag)
    }

    fn commit_tags(&self, envs: &[String], tag: &str) -> String {
        let work = self.repo.workdir().unwrap().to_path_buf();
        for e in envs {
            std::fs::write(
                work.join("environments").join(e).join("pipeline.yaml"),
                pipeline(tag),
            )
            .unwrap();
        }
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("CI", "ci@example.com").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(
                Some("HEAD"),
                &sig,
                &sig,
                &format!("release {tag}"),
                &tree,
                &parents,
            )
            .unwrap()
            .to_string()
    }

    /// A config for one process without Leases (state in `state-soak`),
    /// with `extra` appended to its `controller:` section.
    pub fn single_process_config(&self, extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.dir.path().join("keelson.yaml")).unwrap();
        let head = &text[..text.find("  leases:").unwrap()];
        let path = self.dir.path().join("keelson-soak.yaml");
        std::fs::write(
            &path,
            format!("{}{extra}", head.replace("STATE", "state-soak")),
        )
        .unwrap();
        path
    }

    /// The namespace of each environment.
    pub fn namespaces(&self) -> BTreeMap<String, String> {
        self.envs
            .iter()
            .map(|e| (e.clone(), format!("ns-{e}")))
            .collect()
    }

    /// Every PATCH from now on waits `d` at the server.
    pub fn slow_writes(&self, d: Duration) {
        self.srv
            .faults()
            .inject(Fault::delay(d).method("PATCH").times(u64::MAX));
    }

    /// Wait until every app of every environment runs `tag`.
    pub async fn wait_converged(&self, tag: &str, within: Duration) {
        let envs = self.envs.clone();
        self.wait_envs(&envs, tag, within).await
    }

    /// Wait until every app of `env` runs `tag`.
    pub async fn wait_one(&self, env: &str, tag: &str, within: Duration) {
        self.wait_envs(&[env.to_string()], tag, within).await
    }

    async fn wait_envs(&self, envs: &[String], tag: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let behind: Vec<String> = envs
                .iter()
                .flat_map(|e| APPS.map(|a| (e.clone(), a)))
                .filter(|(e, a)| self.image(e, a).as_deref() != Some(&image(a, tag)))
                .map(|(e, a)| format!("{e}/{a}={:?}", self.image(&e, a)))
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not at {tag} after {within:?}: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn image(&self, env: &str, app: &str) -> Option<String> {
        let d = self.srv.get_object(
            &Gvr::parse("apps/v1/deployments"),
            Some(&format!("ns-{env}")),
            app,
        )?;
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_string)
    }

    /// The replicas that wrote to some environment since `t`.
    pub fn owners_since(&self, t: Instant) -> BTreeSet<String> {
        let ns = self.namespaces();
        self.srv
            .requests()
            .iter()
            .filter(|r| r.is_write() && r.started >= t)
            .filter(|r| super::log::env_of(&r.path, &ns).is_some())
            .filter_map(super::log::identity)
            .collect()
    }

    /// Every read in an environment's namespace from now on waits `d`:
    /// planning takes longer, so a replica can be caught between taking an
    /// environment's Lease and writing to it.
    pub fn slow_reads(&self, d: Duration) {
        self.srv.faults().inject(
            Fault::delay(d)
                .method("GET")
                .path_contains("/namespaces/ns-env-")
                .times(u64::MAX),
        );
    }

    /// Wait until some replica takes an environment Lease after `since`
    /// (every sync releases its Lease, so the first write to one is an
    /// acquisition), and name it.
    pub async fn wait_acquired(&self, since: Instant, within: Duration) -> String {
        let deadline = since + within;
        let prefix =
            format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/keelson-env-");
        loop {
            let taker = self
                .srv
                .requests()
                .iter()
                .filter(|r| r.started >= since && r.is_write() && (200..300).contains(&r.status))
                .filter(|r| r.path.starts_with(&prefix) && !super::log::is_release(r))
                .find_map(super::log::identity);
            if let Some(who) = taker {
                return who;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took an environment lease"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until `n` replicas hold their member Lease.
    pub async fn wait_members(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let members: Vec<String> = self
                .srv
                .list_objects(&Gvr::parse("coordination.k8s.io/v1/leases"), Some(LEASE_NS))
                .iter()
                .filter(|l| l["metadata"]["labels"]["keelson.dev/lease"] == "member")
                .filter_map(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
                .collect();
            if members.len() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {members:?} hold a member lease after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until some replica writes to an environment, and name it.
    pub async fn wait_mid_apply(&self, within: Duration) -> String {
        let since = Instant::now();
        let deadline = since + within;
        loop {
            if let Some(who) = self.owners_since(since).into_iter().next() {
                return who;
            }
            assert!(Instant::now() < deadline, "no replica started applying");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The config of replica `id`: its own state directory.
    fn config(&self, id: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.dir.path().join("keelson.yaml")).unwrap();
        let path = self.dir.path().join(format!("keelson-{id}.yaml"));
        std::fs::write(&path, text.replace("STATE", &format!("state-{id}"))).unwrap();
        path
    }
}

fn image(app: &str, tag: &str) -> String {
    format!("registry.example.com/shop/{app}:{tag}")
}

#[path = "../support/copy_dir.rs"]
mod copy_dir_support;
pub use copy_dir_support::copy_dir;

/// Running `keelson run` processes, by identity (`replica-<i>`).
pub struct Fleet {
    children: BTreeMap<String, Child>,
    /// Each replica's `http://host:port`.
    pub addrs: BTreeMap<String, String>,
    logs: PathBuf,
}

impl Fleet {
    /// Start `n` replicas, each with its own state directory, not waiting
    /// for workloads to become healthy.
    pub fn start(setup: &Setup, n: usize) -> Fleet {
        Fleet::start_with(setup, n, &["--no-wait"])
    }

    /// Start `n` replicas with `extra` arguments to `keelson run`.
    pub fn start_with(setup: &Setup, n: usize, extra: &[&str]) -> Fleet {
        let logs = setup.dir.path().to_path_buf();
        let mut children = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for i in 0..n {
            let id = format!("replica-{i}");
            let log = logs.join(format!("{id}.log"));
            let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
                .args(["run", "--listen", "127.0.0.1:0"])
                .args(extra)
                .arg("--config")
                .arg(setup.config(&id))
                .env("POD_NAME", &id)
                .env("RUST_LOG", "info,keelson=debug")
                .env_remove("KUBECONFIG")
                .env_remove("KUBERNETES_SERVICE_HOST")
                .current_dir(&logs)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(
                line.starts_with("listening on "),
                "{id} did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            addrs.insert(id.clone(), line.trim()["listening on ".len()..].to_string());
            children.insert(id, child);
        }
        Fleet {
            children,
            addrs,
            logs,
        }
    }

    /// Send `SIG<sig>` to replica `id`.
    pub fn signal(&self, id: &str, sig: &str) {
        let pid = self.children[id].id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {id}");
    }

    /// kill -9 replica `id`.
    pub fn kill(&mut self, id: &str) {
        let mut child = self.children.remove(id).expect("a running replica");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Wait up to `within` for replica `id` to exit; its exit status.
    pub fn wait_exit(&mut self, id: &str, within: Duration) -> std::process::ExitStatus {
        let mut child = self.children.remove(id).expect("a running replica");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{id} did not exit within {within:?}:\n{}", self.logs(id));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log of replica `id`.
    pub fn logs(&self, id: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{id}.log"))).unwrap_or_default()
    }

    /// SIGTERM every replica and wait for each to exit cleanly.
    pub fn stop_all(&mut self) {
        for id in self.children.keys().cloned().collect::<Vec<_>>() {
            self.signal(&id, "CONT");
            self.signal(&id, "TERM");
        }
        for (id, mut child) in std::mem::take(&mut self.children) {
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "{id} exited with {status}: {}",
                self.logs(&id)
            );
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
