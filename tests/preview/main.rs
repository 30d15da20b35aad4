//! Preview environments end to end: the real binary and the library's
//! record of previews, over real HTTP, against the Kubernetes API test
//! server, with the example repository's `environments/_templates/`.

mod allocation;
mod cli;

use std::path::{Path, PathBuf};
use std::process::Command;

use kube_apiserver::{Gvr, ServerOptions, TestServer};
use serde_json::{Value, json};

/// A test server, its `keelson-system` namespace, and a copy of the example
/// repository wired to it.
pub struct Harness {
    /// The API server.
    pub srv: TestServer,
    /// The repository copy (environments, policies, schema, keelson.yaml).
    pub repo: tempfile::TempDir,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// Start a server and copy the example repository.
    pub fn new() -> Harness {
        let srv = TestServer::start_blocking_with(ServerOptions::default()).expect("server starts");
        srv.create_object(
            &Gvr::parse("v1/namespaces"),
            "test",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keelson-system"}}),
        )
        .expect("namespace");
        let repo = tempfile::tempdir().unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for sub in ["environments", "policies", "schema"] {
            copy_dir(&root.join(sub), &repo.path().join(sub));
        }
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
        Harness { srv, repo }
    }

    /// Run keelson in the repository: (exit code, stdout, stderr).
    pub fn keelson(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(args)
            .current_dir(self.repo.path())
            .env("NO_COLOR", "1")
            .env_remove("KUBECONFIG")
            .output()
            .expect("run keelson");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A stored object.
    pub fn get(&self, gvr: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.srv.get_object(&Gvr::parse(gvr), ns, name)
    }

    /// The stored objects of `gvr` in `ns`.
    pub fn list(&self, gvr: &str, ns: &str) -> Vec<Value> {
        self.srv.list_objects(&Gvr::parse(gvr), Some(ns))
    }

    /// The record of previews, parsed: key → record.
    pub fn records(&self) -> serde_json::Map<String, Value> {
        let cm = self.get("v1/configmaps", Some("keelson-system"), "keelson-previews");
        let data = cm.and_then(|c| c.get("data").cloned()).unwrap_or(json!({}));
        data.as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_str(v.as_str().unwrap()).unwrap()))
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
