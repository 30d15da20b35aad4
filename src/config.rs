//! The keelson config file (`keelson.yaml`): where clusters, Rancher and etcd
//! live, and how the controller reaches the Git repository.
//!
//! Credentials are never read from the environments repository: the config
//! names files or environment variables that hold them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backup::EtcdClusterConfig;
use crate::rancher::RancherEndpoint;

/// The whole config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Always `keelson.dev/v1`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Always `Config`.
    #[serde(default = "config_kind")]
    pub kind: String,
    /// Clusters by the name environments use in `spec.cluster`.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// Where keelson keeps its state (inventory cache, history, snapshots index).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The controller (`keelson run`): repository, intervals, webhook, status reporting.
    #[serde(default)]
    pub controller: Option<crate::controller::ControllerConfig>,
}

/// How to reach one cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    /// Path of a kubeconfig file; `KUBECONFIG` or `~/.kube/config` when absent.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; the current context when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// Use the in-cluster service account instead of a kubeconfig.
    #[serde(default)]
    pub in_cluster: bool,
    /// Rancher endpoint managing this cluster, if any.
    #[serde(default)]
    pub rancher: Option<RancherEndpoint>,
    /// etcd endpoints and snapshot schedule, if keelson backs this cluster up.
    #[serde(default)]
    pub etcd: Option<EtcdClusterConfig>,
}

fn api_version() -> String {
    "keelson.dev/v1".into()
}

fn config_kind() -> String {
    "Config".into()
}

/// Why the config file could not be used; the diagnostics carry positions.
#[derive(Debug, thiserror::Error)]
#[error("{}", .rendered)]
pub struct ConfigError {
    /// The problems found.
    pub diagnostics: Vec<crate::diag::Diagnostic>,
    /// The problems, rendered with snippets.
    pub rendered: String,
}

/// Read and check the keelson config file. Errors name file:line:col.
pub fn load_config(path: &std::path::Path) -> Result<Config, ConfigError> {
    use crate::diag::{Diagnostic, Sources, did_you_mean, render};
    let fail = |d: Diagnostic, sources: &Sources| ConfigError {
        rendered: render(std::slice::from_ref(&d), sources, false),
        diagnostics: vec![d],
    };
    let mut sources = Sources::default();
    let text = match std::fs::read(path) {
        Ok(bytes) if bytes.len() > crate::yaml::Limits::default().max_bytes => {
            return Err(fail(
                Diagnostic::error("size", path, None, "config file is over the 1 MiB limit"),
                &sources,
            ));
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                return Err(fail(
                    Diagnostic::error("encoding", path, None, "config file is not valid UTF-8"),
                    &sources,
                ));
            }
        },
        Err(e) => {
            return Err(fail(
                Diagnostic::error(
                    "io",
                    path,
                    None,
                    format!("cannot read the config file: {e}"),
                )
                .with_help("pass --config FILE, or create keelson.yaml (see the README)"),
                &sources,
            ));
        }
    };
    sources.add(path, &text);
    let node = crate::yaml::parse_one(&text, crate::yaml::Limits::default())
        .map_err(|e| fail(Diagnostic::from_yaml(path, e), &sources))?;
    let json = node.to_json();
    let config: Config = serde_path_to_error::deserialize(&json).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => format!("/{index}"),
                serde_path_to_error::Segment::Map { key } => format!("/{key}"),
                _ => String::new(),
            })
            .collect();
        let inner = e.into_inner().to_string();
        // serde names the unknown field and the expected ones; point at the key.
        let unknown = inner
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        let (span, d) = match &unknown {
            Some(field) => {
                // serde_path_to_error's path may already end in the field.
                let at = if pointer.ends_with(&format!("/{field}")) {
                    pointer.clone()
                } else {
                    format!("{pointer}/{field}")
                };
                let span = node.locate(&at, true);
                let expected: Vec<&str> = inner
                    .split("expected ")
                    .nth(1)
                    .map(|r| {
                        r.split(['`', ',', ' '])
                            .filter(|s| !s.is_empty() && *s != "one" && *s != "of" && *s != "or")
                            .collect()
                    })
                    .unwrap_or_default();
                let d = Diagnostic::error("config", path, Some(span), inner.clone());
                let d = match did_you_mean(field, expected.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d,
                };
                (span, d)
            }
            None => {
                let span = node.locate(&pointer, false);
                (
                    span,
                    Diagnostic::error(
                        "config",
                        path,
                        Some(span),
                        format!("{inner} (at {pointer})"),
                    ),
                )
            }
        };
        let _ = span;
        fail(d, &sources)
    })?;
    if config.kind != "Config" || config.api_version != "keelson.dev/v1" {
        return Err(fail(
            Diagnostic::error(
                "config",
                path,
                Some(node.locate("/kind", false)),
                format!(
                    "expected apiVersion keelson.dev/v1 and kind Config, found {} {}",
                    config.api_version, config.kind
                ),
            ),
            &sources,
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_nested_fields_point_at_the_key_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keelson.yaml");
        std::fs::write(
            &path,
            "apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  dev:\n    contxt: dev\n",
        )
        .unwrap();
        let err = load_config(&path).unwrap_err();
        let d = &err.diagnostics[0];
        assert_eq!((d.line, d.column), (5, 5), "{}", err.rendered);
        assert_eq!(d.help.as_deref(), Some("did you mean `context`?"));
    }

    #[test]
    fn a_wrong_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keelson.yaml");
        std::fs::write(&path, "apiVersion: keelson.dev/v1\nkind: Environment\n").unwrap();
        assert!(
            load_config(&path)
                .unwrap_err()
                .rendered
                .contains("kind Config")
        );
    }
}
