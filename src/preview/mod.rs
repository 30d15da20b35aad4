//! Preview environments: one environment per merge request, made from a
//! template in the repository (`environments/_templates/<name>/`), with a
//! time-to-live and a block of ports and an id of its own.
//!
//! A preview is an environment in every other respect. Its files are the
//! template's with the parameters filled in ([`params`], [`template`]), so
//! it goes through the same schema, CEL policy, tenancy, render, plan,
//! prune and retirement as a folder. What makes it exist is its entry in
//! the cluster's record ([`store`], [`record`]): the record is the one
//! truth that replicas, restarts, CI jobs and people share. Releasing a
//! preview takes it out of the set of environments, which retires it
//! through the ordinary retirement path (under the mass-deletion guard, to
//! which every template opts in), and frees its block once its objects are
//! gone.
//!
//! - [`params`]: the parameters and their substitution into YAML;
//! - [`template`]: materialising a preview, checking a template;
//! - [`record`]: what is recorded per preview, and allocation;
//! - [`lifecycle`]: create/update within limits, release, forget;
//! - [`actions`]: applying and releasing one preview (CLI and controller);
//! - [`source`]: what the merge request source of `keelson run` does;
//! - [`store`]: the record in the cluster, with optimistic concurrency;
//! - [`online`]: previews joined to a checked repository, for `reconcile`.

pub mod actions;
pub mod lifecycle;
pub mod online;
pub mod params;
pub mod record;
pub mod source;
pub mod store;
pub mod template;

use serde::{Deserialize, Serialize};

pub use record::{PortBlock, PreviewRecord, Previews, State};
pub use template::{check_templates, materialise};

/// The `previews:` section of the keelson config: platform settings that
/// are not the repository's to choose.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewsConfig {
    /// Namespace of the record of previews on each cluster (default
    /// `keelson-system`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Most previews at once, over every template.
    #[serde(default)]
    pub max_total: Option<u32>,
    /// How often `keelson run` lists the merge requests of templates with a
    /// `source` and checks time-to-live (`30s`, `1m`; default `1m`). A
    /// merge request webhook acts at once.
    #[serde(default)]
    pub poll_interval: Option<String>,
}

impl PreviewsConfig {
    /// The record's namespace.
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .unwrap_or(store::DEFAULT_NAMESPACE)
    }
}
