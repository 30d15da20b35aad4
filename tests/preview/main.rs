//! Preview environments end to end: the real binary and the library's
//! record of previews, over real HTTP, against the Kubernetes API test
//! server, with the example repository's `environments/_templates/`.

mod allocation;
mod cli;
mod forge;
#[path = "../support/get_json.rs"]
mod get_json;
mod promote;
mod rancher;
mod run;

use kube_apiserver::Gvr;
use serde_json::{Value, json};

// The kube suite's harness (server, repository copy, `keelson` runner); the
// previews use part of it.
#[allow(dead_code)]
#[path = "../kube/harness.rs"]
mod harness;

/// The kube suite's [`harness::Harness`] plus a `keelson-system` namespace,
/// where the record of previews lives.
pub struct Harness(harness::Harness);

impl std::ops::Deref for Harness {
    type Target = harness::Harness;
    fn deref(&self) -> &harness::Harness {
        &self.0
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// Start a server, create `keelson-system` and copy the example repository.
    pub fn new() -> Harness {
        let h = harness::Harness::new();
        h.srv
            .create_object(
                &Gvr::parse("v1/namespaces"),
                "test",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keelson-system"}}),
            )
            .expect("namespace");
        Harness(h)
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
