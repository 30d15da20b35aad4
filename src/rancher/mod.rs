//! Rancher v3 API: projects, quotas, namespace placement, members (placeholder).

use serde::{Deserialize, Serialize};

/// Per-cluster Rancher endpoint from the keelson config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RancherEndpoint {
    /// Base URL, e.g. `https://rancher.example.com` (the client adds `/v3`).
    pub url: String,
}
