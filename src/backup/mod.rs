//! Scheduled, verified etcd snapshots (placeholder until the backup work lands).

pub mod cli;

use serde::{Deserialize, Serialize};

/// Per-cluster etcd settings from the keelson config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdClusterConfig {
    /// Client endpoints, e.g. `https://10.0.0.1:2379`.
    #[serde(default)]
    pub endpoints: Vec<String>,
}
