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
