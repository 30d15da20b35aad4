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
    /// Preview environments: where their record lives, the platform's limit.
    #[serde(default)]
    pub previews: Option<crate::preview::PreviewsConfig>,
    /// The GitHub or GitLab API: merge requests for previews and promotion.
    #[serde(default)]
    pub forge: Option<crate::forge::ForgeConfig>,
    /// Promotion between environments: stage order, health gate, author.
    #[serde(default)]
    pub promotion: Option<crate::promote::PromotionConfig>,
}

/// How to reach one cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    /// Path of a kubeconfig file, relative to the config file;
    /// `KUBECONFIG` or `~/.kube/config` when absent.
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
    /// Where `kubeconfig:` and `context:` were written, for errors about
    /// them; filled by [`read_config`], empty for a config built in code.
    #[serde(skip)]
    pub at: ClusterPositions,
}

/// Where a cluster's settings stand in the config file, as `file:line:col`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterPositions {
    /// Of `kubeconfig:`'s value.
    pub kubeconfig: Option<String>,
    /// Of `context:`'s value.
    pub context: Option<String>,
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

/// The help line of every "cannot read the config" error, whichever
/// subcommand meets it.
pub const MISSING_CONFIG_HELP: &str = "pass -c/--config FILE or set KEELSON_CONFIG; \
     the README's \"Running against a real cluster\" shows a minimal config";

/// A config file read and decoded, with what positions its errors need.
#[derive(Debug)]
pub struct ConfigFile {
    /// The decoded file.
    pub config: Config,
    /// Its YAML tree, to point a later check at a key.
    pub node: crate::yaml::Node,
    /// Its text, for snippets.
    pub sources: crate::diag::Sources,
}

/// Read and check the keelson config file. Errors name file:line:col.
pub fn load_config(path: &std::path::Path) -> Result<Config, ConfigError> {
    read_config(path).map(|f| f.config)
}

/// Read and decode the keelson config file: the one reader of `keelson.yaml`
/// for every subcommand (the controller checks its section on top).
pub fn read_config(path: &std::path::Path) -> Result<ConfigFile, ConfigError> {
    use crate::diag::{Diagnostic, Sources, render};
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
            let cause = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            };
            return Err(fail(
                Diagnostic::error(
                    "config",
                    path,
                    None,
                    format!("cannot read the keelson config: {cause}"),
                )
                .with_help(MISSING_CONFIG_HELP),
                &sources,
            ));
        }
    };
    sources.add(path, &text);
    let node = crate::yaml::parse_one(&text, crate::yaml::Limits::default())
        .map_err(|e| fail(Diagnostic::from_yaml(path, e), &sources))?;
    let config: Config = serde_path_to_error::deserialize(node.to_json()).map_err(|e| {
        let pointer = pointer_of(e.path());
        let message = e.inner().to_string();
        // serde names the unknown field and the expected ones; point at the key.
        let unknown = message.starts_with("unknown field");
        let span = node.locate(&pointer, unknown);
        let d = Diagnostic::error("config", path, Some(span), message.clone());
        let d = match unknown_field_hint(&message) {
            Some(help) => d.with_help(help),
            None => d,
        };
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
    let mut config = config;
    let dir = path.parent().unwrap_or(std::path::Path::new(""));
    for (name, cluster) in &mut config.clusters {
        // Relative to the config file, as every other path in it (token
        // files, the controller's repository), not to where keelson runs.
        if let Some(k) = &cluster.kubeconfig
            && k.is_relative()
        {
            cluster.kubeconfig = Some(dir.join(k));
        }
        let key = name.replace('~', "~0").replace('/', "~1");
        let at = |field: &str, set: bool| {
            set.then(|| {
                let s = node
                    .locate(&format!("/clusters/{key}/{field}"), false)
                    .start;
                format!("{}:{}:{}", path.display(), s.line, s.col)
            })
        };
        cluster.at = ClusterPositions {
            kubeconfig: at("kubeconfig", cluster.kubeconfig.is_some()),
            context: at("context", cluster.context.is_some()),
        };
    }
    Ok(ConfigFile {
        config,
        node,
        sources,
    })
}

/// The JSON pointer of a serde path (`/clusters/dev/contxt`).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

/// "unknown field `pollIntervall`, expected one of `a`, `b`" → "did you mean `pollInterval`?"
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let candidates: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    match crate::diag::did_you_mean(field, candidates.iter().copied()) {
        Some(c) => Some(format!("did you mean `{c}`?")),
        None if !candidates.is_empty() => Some(format!("known fields: {}", candidates.join(", "))),
        None => None,
    }
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
    fn a_relative_kubeconfig_is_read_beside_the_config_with_its_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keelson.yaml");
        std::fs::write(
            &path,
            "apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  dev: {kubeconfig: kc.yaml, context: test}\n  prod:\n    kubeconfig: /abs/kc\n",
        )
        .unwrap();
        let c = read_config(&path).unwrap().config;
        let dev = &c.clusters["dev"];
        assert_eq!(
            dev.kubeconfig.as_deref(),
            Some(dir.path().join("kc.yaml").as_path())
        );
        let at = |l: usize, c: usize| Some(format!("{}:{l}:{c}", path.display()));
        assert_eq!(dev.at.kubeconfig, at(4, 21));
        assert_eq!(dev.at.context, at(4, 39));
        let prod = &c.clusters["prod"];
        assert_eq!(
            prod.kubeconfig.as_deref(),
            Some(std::path::Path::new("/abs/kc"))
        );
        assert_eq!(
            (prod.at.kubeconfig.clone(), prod.at.context.clone()),
            (at(6, 17), None)
        );
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
