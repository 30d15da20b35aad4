//! Rancher v3 API: projects, quotas, namespace placement and members.
//!
//! The flow mirrors the Kubernetes side: the renderer builds a
//! [`DesiredRancher`] per environment, [`plan`] reads Rancher and compares,
//! [`apply`] writes the difference and reports each step. Namespaces are
//! placed with the `field.cattle.io/projectId` annotation (see
//! `docs/rancher.md` for why not the `move` action).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod api;
mod apply;
mod client;
mod desired;
mod error;
mod from_spec;
mod placement;
mod plan;
mod project;
mod render;
mod usage;

pub use api::{LiveBinding, LiveNamespace, LiveProject};
pub use apply::{ApplyReport, ChangeResult, Outcome, apply};
pub use client::{DEFAULT_ACTIVE_TIMEOUT, DEFAULT_TIMEOUT, RancherClient, Token};
pub use desired::{
    CONTAINER_LIMIT_KEYS, DesiredMember, DesiredProject, DesiredRancher, ENVIRONMENT_LABEL,
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, PROJECT_ID_ANNOTATION, QUOTA_KEYS, Subject, owner_labels,
};
pub use error::{ApiError, RancherError};
pub use plan::{
    Action, ChangeKind, FieldDiff, RancherChange, RancherPlan, RetiredRancher, plan, plan_from,
    plan_retire, retire_from,
};

/// Per-cluster Rancher endpoint from the keelson config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RancherEndpoint {
    /// Base URL, e.g. `https://rancher.example.com` (the client adds `/v3`).
    pub url: String,
    /// File holding the API token `token-xxxxx:secret` (one of this and `tokenEnv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// PEM file of the CA that signed Rancher's certificate; when set, only it is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification. Never use it outside a lab.
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// Timeout of each request, in seconds (30 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}
