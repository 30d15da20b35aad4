//! The `controller.leases:` section: sharing the environments between
//! replicas through Leases.
//!
//! ```yaml
//! controller:
//!   leases:
//!     cluster: home            # the cluster (from `clusters:`) that holds the Leases
//!     namespace: keelson-system
//!     identity: keelson-0      # default: $POD_NAME, else <hostname>-<pid>
//!     duration: 15s            # leaseDurationSeconds
//!     renewDeadline: 10s
//!     retryPeriod: 2s
//! ```

use serde::{Deserialize, Serialize};

use super::config::Checker;
use super::lease::LeaseTiming;
use crate::config::Config;

/// The `controller.leases` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeasesConfig {
    /// The cluster, by its name under `clusters:`, that holds the Leases.
    /// Default: the in-cluster service account when running in a pod, else
    /// the only cluster of the config.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Namespace of the Leases. Default `$POD_NAMESPACE`, else `keelson-system`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// This replica's `holderIdentity`; unique per replica. Default
    /// `$POD_NAME`, else `<hostname>-<pid>`.
    #[serde(default)]
    pub identity: Option<String>,
    /// `leaseDurationSeconds` (whole seconds). Default `15s`.
    #[serde(default)]
    pub duration: Option<String>,
    /// A holder that cannot renew within this stops writing. Default `10s`.
    #[serde(default)]
    pub renew_deadline: Option<String>,
    /// How often Leases are renewed and retried. Default `2s`.
    #[serde(default)]
    pub retry_period: Option<String>,
}

/// Where the Leases live and how they are held, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseSettings {
    /// Cluster name under `clusters:`; `None`: in-cluster.
    pub cluster: Option<String>,
    /// Namespace of the Leases.
    pub namespace: String,
    /// Our `holderIdentity`.
    pub identity: String,
    /// Durations.
    pub timing: LeaseTiming,
}

/// This replica's default identity: `$POD_NAME`, else `<hostname>-<pid>`.
pub fn default_identity() -> String {
    if let Ok(p) = std::env::var("POD_NAME")
        && !p.trim().is_empty()
    {
        return p.trim().to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keelson".into());
    format!("{host}-{}", std::process::id())
}

/// Whether this process runs in a Kubernetes pod.
pub fn in_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

impl Checker<'_> {
    /// Resolve `controller.leases` (`l`) against the clusters of `config`.
    pub(super) fn leases(&mut self, l: &LeasesConfig, config: &Config) -> Option<LeaseSettings> {
        let p = "/controller/leases";
        let defaults = LeaseTiming::default();
        let timing = LeaseTiming {
            duration: self.duration(
                &format!("{p}/duration"),
                l.duration.as_deref(),
                defaults.duration,
            ),
            renew_deadline: self.duration(
                &format!("{p}/renewDeadline"),
                l.renew_deadline.as_deref(),
                defaults.renew_deadline,
            ),
            retry_period: self.duration(
                &format!("{p}/retryPeriod"),
                l.retry_period.as_deref(),
                defaults.retry_period,
            ),
        };
        if let Some(problem) = timing.problem() {
            self.error(
                p,
                problem,
                "client-go's rule: duration > renewDeadline > retryPeriod, e.g. 15s, 10s, 2s",
            );
        }
        let cluster = match &l.cluster {
            Some(c) if !config.clusters.contains_key(c) => {
                let known: Vec<&str> = config.clusters.keys().map(String::as_str).collect();
                self.error(
                    &format!("{p}/cluster"),
                    format!("cluster `{c}` is not under `clusters:`"),
                    &format!(
                        "name one of: {}",
                        if known.is_empty() {
                            "(none)".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                None
            }
            Some(c) => Some(c.clone()),
            None if in_pod() => None,
            None if config.clusters.len() == 1 => config.clusters.keys().next().cloned(),
            None => {
                self.error(
                    p,
                    "which cluster holds the Leases?",
                    "set `cluster:` to a cluster under `clusters:` (in a pod, the default is the pod's own cluster)",
                );
                None
            }
        };
        let namespace = l
            .namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "keelson-system".into());
        let identity = l.identity.clone().unwrap_or_else(default_identity);
        if identity.trim().is_empty() {
            self.error(
                &format!("{p}/identity"),
                "the identity is empty",
                "leave it out to use $POD_NAME",
            );
        }
        Some(LeaseSettings {
            cluster,
            namespace,
            identity,
            timing,
        })
    }
}
