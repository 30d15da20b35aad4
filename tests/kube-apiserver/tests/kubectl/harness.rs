//! Runs the real kubectl binary against a fresh test server with its own kubeconfig and cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kube_apiserver::{Gvr, ServerOptions, TestServer};
use serde_json::Value;

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// A test server plus a scratch directory holding the kubeconfig, kubectl's cache and manifests.
pub struct Kubectl {
    pub srv: TestServer,
    pub dir: tempfile::TempDir,
}

/// What one kubectl run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}):\n{}", self.stdout))
    }
}

fn kubectl_path() -> Option<PathBuf> {
    let p = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(KUBECTL));
    p.exists().then_some(p)
}

impl Kubectl {
    /// None (after printing why) when kubectl is not installed.
    pub fn start() -> Option<Kubectl> {
        Self::start_with(ServerOptions::default())
    }

    ///
    /// A missing kubectl fails the test (a skipped fidelity test must not count as passed),
    /// unless `KEELSON_SKIP_KUBECTL_TESTS=1` says on purpose that this machine has none.
    pub fn start_with(opts: ServerOptions) -> Option<Kubectl> {
        if kubectl_path().is_none() {
            let opted_out = std::env::var("KEELSON_SKIP_KUBECTL_TESTS").is_ok_and(|v| v == "1");
            assert!(
                opted_out,
                "kubectl not found at $KUBECTL or {KUBECTL}: the kubectl fidelity tests need it. Install \
                 kubectl (v1.28 or newer) or set KUBECTL=/path/to/kubectl; \
                 KEELSON_SKIP_KUBECTL_TESTS=1 skips these tests on purpose"
            );
            eprintln!("SKIPPED on purpose (KEELSON_SKIP_KUBECTL_TESTS=1): kubectl not found");
            return None;
        }
        let srv = TestServer::start_blocking_with(opts).expect("start test server");
        let dir = tempfile::tempdir().expect("temp dir");
        srv.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Some(Kubectl { srv, dir })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a manifest file (creating folders) and return its path as a string.
    pub fn write(&self, rel: &str, content: &str) -> String {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write manifest");
        p.to_string_lossy().into_owned()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = Command::new(kubectl_path().expect("kubectl"))
            .args(args)
            .arg("--cache-dir")
            .arg(self.path("cache"))
            .env("KUBECONFIG", self.path("kubeconfig"))
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .output()
            .expect("run kubectl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
        self.run(&a).ok().json()
    }

    pub fn object(&self, gvr: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.srv.get_object(&Gvr::parse(gvr), ns, name)
    }
}

/// The managedFields entry of `manager`, if any.
pub fn managed_entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

pub fn manifests_dir(k: &Kubectl) -> String {
    for (name, body) in super::fixtures::MANIFESTS {
        k.write(&format!("manifests/{name}"), body);
    }
    k.path("manifests").to_string_lossy().into_owned()
}

#[allow(dead_code)]
pub fn exists(p: &Path) -> bool {
    p.exists()
}
