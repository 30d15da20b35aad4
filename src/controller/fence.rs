//! Fenced writes: a [`Cluster`] whose every write (server-side apply, delete;
//! not dry runs) is preceded by a check that this instance still holds the
//! environment's Lease ([`super::lease::Term::check`]). The whole apply path
//! (inventory, objects, prunes, retirement) goes through [`Cluster`], so
//! wrapping the cluster fences all of it without touching the apply code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value as Json;

use super::lease::Term;
use crate::observe::{Cluster, ClusterError, Resource};

/// A check made before each write; an error names why writing must stop.
pub trait Fence: Send + Sync {
    /// `Ok` while writes may go on.
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

impl Fence for Term {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(Term::check(self))
    }
}

/// `inner`, with `fence` checked before every write.
pub struct FencedCluster<'a, C> {
    inner: &'a C,
    fence: Arc<dyn Fence>,
}

impl<'a, C: Cluster> FencedCluster<'a, C> {
    /// Wrap `inner`.
    pub fn new(inner: &'a C, fence: Arc<dyn Fence>) -> Self {
        FencedCluster { inner, fence }
    }

    async fn guard(&self, verb: &str, what: String) -> Result<(), ClusterError> {
        self.fence.check().await.map_err(|why| {
            tracing::warn!(%verb, %what, "write refused by the lease fence: {why}");
            ClusterError::Fenced(format!("{verb} {what}: not written: {why}"))
        })
    }
}

fn name_of(obj: &Json) -> String {
    let ns = obj.pointer("/metadata/namespace").and_then(Json::as_str);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Json::as_str)
        .unwrap_or_default();
    match ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

impl<C: Cluster> Cluster for FencedCluster<'_, C> {
    fn fence(&self) -> Option<Arc<dyn Fence>> {
        Some(self.fence.clone())
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<Resource, ClusterError> {
        self.inner.resource(api_version, kind).await
    }

    async fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Json>, ClusterError> {
        self.inner.list(res, namespace, selector).await
    }

    async fn list_each(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
        each: &mut (dyn FnMut(&serde_json::value::RawValue) + Send),
    ) -> Result<(), ClusterError> {
        self.inner.list_each(res, namespace, selector, each).await
    }

    async fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Json>, ClusterError> {
        self.inner.get(res, namespace, name).await
    }

    async fn apply(&self, res: &Resource, obj: &Json, dry_run: bool) -> Result<Json, ClusterError> {
        if !dry_run {
            self.guard("apply", format!("{} {}", res.kind, name_of(obj)))
                .await?;
        }
        self.inner.apply(res, obj, dry_run).await
    }

    async fn merge_patch(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Json,
    ) -> Result<Json, ClusterError> {
        let what = match namespace {
            Some(ns) => format!("{} {ns}/{name}", res.kind),
            None => format!("{} {name}", res.kind),
        };
        self.guard("patch", what).await?;
        self.inner.merge_patch(res, namespace, name, patch).await
    }

    async fn delete(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        if !dry_run {
            let what = match namespace {
                Some(ns) => format!("{} {ns}/{name}", res.kind),
                None => format!("{} {name}", res.kind),
            };
            self.guard("delete", what).await?;
        }
        self.inner.delete(res, namespace, name, dry_run).await
    }
}
