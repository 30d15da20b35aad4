//! [`Cluster`] over a folder of captured objects (`kubectl get -o yaml`
//! output, one or many documents per file, `List` kinds unwrapped), for
//! `reconcile --dry-run --against DIR` on CI runners without cluster
//! credentials. It is read-only.

use std::path::Path;

use serde_json::Value as Json;

use super::{Cluster, ClusterError, Resource, builtin};
use crate::plan::ObjectId;
use crate::render::objects::CLUSTER_SCOPED;
use crate::yaml::{self, Limits};

/// Captured live state.
pub struct DirCluster {
    objects: Vec<Json>,
}

impl DirCluster {
    /// Read every `.yaml`/`.yml`/`.json` file under `dir`.
    pub fn load(dir: &Path) -> Result<Self, ClusterError> {
        let mut objects = Vec::new();
        let mut files = Vec::new();
        collect(dir, &mut files)
            .map_err(|e| ClusterError::Config(format!("reading {}: {e}", dir.display())))?;
        files.sort();
        let limits = Limits {
            max_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| ClusterError::Config(format!("reading {}: {e}", f.display())))?;
            let docs = yaml::parse_documents(&text, limits).map_err(|e| {
                ClusterError::Config(format!(
                    "{}:{}:{}: {}",
                    f.display(),
                    e.span.start.line,
                    e.span.start.col,
                    e.message
                ))
            })?;
            for d in docs {
                let v = d.to_json();
                if let Some(spec) = keelson_spec(&v) {
                    return Err(ClusterError::Config(format!(
                        "{}:{}:{}: {spec} is a keelson spec, not a cluster object: --against \
                         reads captured objects (as `kubectl get -o yaml` writes them), not an \
                         environments repository",
                        f.display(),
                        d.span.start.line,
                        d.span.start.col,
                    )));
                }
                match v.get("items").and_then(Json::as_array) {
                    Some(items)
                        if v.get("kind")
                            .and_then(Json::as_str)
                            .is_some_and(|k| k.ends_with("List")) =>
                    {
                        objects.extend(items.iter().cloned());
                    }
                    _ if v.is_object() => objects.push(v),
                    _ => {}
                }
            }
        }
        Ok(DirCluster { objects })
    }

    /// Captured state made of `objects` (`reconcile --against-ref` builds
    /// them from the base commit).
    pub fn from_objects(objects: Vec<Json>) -> Self {
        DirCluster { objects }
    }

    /// Number of objects read.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no objects were read.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// `kind: K (keelson.dev/…)` when `v` is one of keelson's own documents
/// (an Environment, a Pipeline, a Policy, a Config), which no cluster holds.
fn keelson_spec(v: &Json) -> Option<String> {
    let api_version = v.get("apiVersion")?.as_str()?;
    api_version.starts_with("keelson.dev/").then(|| {
        let kind = v.get("kind").and_then(Json::as_str).unwrap_or("?");
        format!("`kind: {kind}` ({api_version})")
    })
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

fn matches_selector(o: &Json, selector: &str) -> bool {
    let labels = o.pointer("/metadata/labels");
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels.and_then(|l| l.get(k)).and_then(Json::as_str) == Some(v),
            None => labels.and_then(|l| l.get(term)).is_some(),
        })
}

impl Cluster for DirCluster {
    fn dry_runs(&self) -> bool {
        false
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<Resource, ClusterError> {
        Ok(builtin(api_version, kind).unwrap_or_else(|| {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            Resource {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
                namespaced: !CLUSTER_SCOPED.contains(&kind),
            }
        }))
    }

    async fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Json>, ClusterError> {
        Ok(self
            .objects
            .iter()
            .filter(|o| {
                let id = ObjectId::of(o);
                id.kind == res.kind
                    && id.group() == res.group
                    && namespace.is_none_or(|ns| id.namespace == ns)
                    && matches_selector(o, selector)
            })
            .cloned()
            .collect())
    }

    async fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Json>, ClusterError> {
        Ok(self
            .objects
            .iter()
            .find(|o| {
                let id = ObjectId::of(o);
                id.kind == res.kind
                    && id.group() == res.group
                    && id.name == name
                    && namespace.is_none_or(|ns| id.namespace == ns)
            })
            .cloned())
    }

    async fn apply(
        &self,
        _res: &Resource,
        _obj: &Json,
        _dry_run: bool,
    ) -> Result<Json, ClusterError> {
        Err(ClusterError::ReadOnly(
            "captured state (--against) cannot be written; use --dry-run".into(),
        ))
    }

    async fn merge_patch(
        &self,
        _res: &Resource,
        _ns: Option<&str>,
        _name: &str,
        _patch: &Json,
    ) -> Result<Json, ClusterError> {
        Err(ClusterError::ReadOnly(
            "captured state (--against) cannot be written; use --dry-run".into(),
        ))
    }

    async fn delete(
        &self,
        _res: &Resource,
        _ns: Option<&str>,
        _name: &str,
        _dry_run: bool,
    ) -> Result<(), ClusterError> {
        Err(ClusterError::ReadOnly(
            "captured state (--against) cannot be written; use --dry-run".into(),
        ))
    }
}
