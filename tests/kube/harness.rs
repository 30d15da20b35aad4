//! The suite's harness: a Kubernetes API test server and a copy of the
//! example repository wired to it (also used by tests/preview).

use std::path::PathBuf;
use std::process::Command;

use kube_apiserver::{Gvr, ServerOptions, TestServer};
use serde_json::Value;

/// A test server plus a copy of the example repository wired to it.
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
        Harness::with(ServerOptions::default())
    }

    /// Start a server with options.
    pub fn with(opts: ServerOptions) -> Harness {
        let srv = TestServer::start_blocking_with(opts).expect("server starts");
        let repo = tempfile::tempdir().unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for sub in ["environments", "policies", "schema"] {
            copy_dir(&root.join(sub), &repo.path().join(sub));
        }
        srv.write_kubeconfig(repo.path().join("kubeconfig"))
            .unwrap();
        let kc = repo.path().join("kubeconfig");
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

    /// A file of the repository copy.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.repo.path().join(rel)
    }

    /// Replace text in a repository file.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.path(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        std::fs::write(p, text.replacen(from, to, 1)).unwrap();
    }

    /// A stored object.
    pub fn get(&self, gvr: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.srv.get_object(&Gvr::parse(gvr), ns, name)
    }

    /// PATCH over plain HTTP/1.1 with `content_type`, as another client of
    /// the API would (`?fieldManager=kubectl-edit` makes it that manager's
    /// write). Returns the status code.
    pub fn patch(&self, path_and_query: &str, content_type: &str, body: &Value) -> u16 {
        self.request("PATCH", path_and_query, content_type, body).0
    }

    /// One HTTP/1.1 request: (status code, body).
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &Value,
    ) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.srv.url().trim_start_matches("http://").to_string();
        let body = body.to_string();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let code = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }
}

#[path = "../support/copy_dir.rs"]
mod copy_dir_support;
pub use copy_dir_support::copy_dir;
