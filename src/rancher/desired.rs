//! What keelson wants Rancher to hold for one environment.
//!
//! The renderer maps the `rancher` section of `environment.yaml` onto these
//! types; the planner compares them with what Rancher holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RancherError;
use crate::quantity;

/// Label keelson puts on every Rancher object it creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "keelson";
/// Label naming the environment that created a Rancher object.
pub const ENVIRONMENT_LABEL: &str = "keelson.dev/environment";
/// Namespace annotation Rancher reads to place a namespace in a project.
pub const PROJECT_ID_ANNOTATION: &str = "field.cattle.io/projectId";

/// Keys Rancher accepts in `resourceQuota.limit` and `namespaceDefaultResourceQuota.limit`.
pub const QUOTA_KEYS: &[&str] = &[
    "configMaps",
    "limitsCpu",
    "limitsMemory",
    "persistentVolumeClaims",
    "pods",
    "replicationControllers",
    "requestsCpu",
    "requestsMemory",
    "requestsStorage",
    "secrets",
    "services",
    "servicesLoadBalancers",
    "servicesNodePorts",
];

/// Keys Rancher accepts in `containerDefaultResourceLimit`.
pub const CONTAINER_LIMIT_KEYS: &[&str] =
    &["limitsCpu", "limitsMemory", "requestsCpu", "requestsMemory"];

/// Rancher state of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredRancher {
    /// Environment name; written into the `keelson.dev/environment` label.
    pub environment: String,
    /// Rancher cluster id, e.g. `c-m-abc12`.
    pub cluster_id: String,
    /// The project the environment's namespace lives in.
    pub project: DesiredProject,
    /// The environment's namespace, placed in the project.
    pub namespace: String,
    /// Project members keelson keeps for this environment.
    #[serde(default)]
    pub members: Vec<DesiredMember>,
}

/// A Rancher project and its quotas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredProject {
    /// Display name (`name` in the v3 API), unique per cluster.
    pub name: String,
    /// Description; left as it is in Rancher when `None`.
    #[serde(default)]
    pub description: Option<String>,
    /// `resourceQuota.limit`: keys from [`QUOTA_KEYS`]; empty means no quota.
    #[serde(default)]
    pub resource_quota: BTreeMap<String, String>,
    /// `namespaceDefaultResourceQuota.limit`; required for every key of `resource_quota`.
    #[serde(default)]
    pub namespace_default_quota: BTreeMap<String, String>,
    /// `containerDefaultResourceLimit`: keys from [`CONTAINER_LIMIT_KEYS`].
    #[serde(default)]
    pub container_default_limits: BTreeMap<String, String>,
}

/// Who a member binding names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Subject {
    /// `userPrincipalId`, e.g. `local://u-abc12`, `github_user://42`.
    UserPrincipalId(String),
    /// `groupPrincipalId`, e.g. `github_team://1234`.
    GroupPrincipalId(String),
    /// `userId`, e.g. `u-abc12`.
    UserId(String),
    /// `groupId`.
    GroupId(String),
}

impl Subject {
    /// The v3 field name that carries this subject.
    pub fn field(&self) -> &'static str {
        match self {
            Subject::UserPrincipalId(_) => "userPrincipalId",
            Subject::GroupPrincipalId(_) => "groupPrincipalId",
            Subject::UserId(_) => "userId",
            Subject::GroupId(_) => "groupId",
        }
    }

    /// The subject's id.
    pub fn id(&self) -> &str {
        match self {
            Subject::UserPrincipalId(s)
            | Subject::GroupPrincipalId(s)
            | Subject::UserId(s)
            | Subject::GroupId(s) => s,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.field(), self.id())
    }
}

/// One project member: a subject and a role template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredMember {
    /// The user or group.
    pub subject: Subject,
    /// Role template id, e.g. `project-member`, `read-only`, `project-owner`.
    pub role: String,
}

impl DesiredRancher {
    /// Checks what Rancher would refuse, before any request is sent.
    pub fn validate(&self) -> Result<(), RancherError> {
        let fail = |message: String| {
            Err(RancherError::InvalidDesired {
                environment: self.environment.clone(),
                message,
            })
        };
        if self.cluster_id.trim().is_empty() {
            return fail(
                "rancher.clusterId is empty; set it to the Rancher cluster id (c-…)".into(),
            );
        }
        if self.project.name.trim().is_empty() {
            return fail("rancher.project is empty; name the Rancher project".into());
        }
        if self.namespace.trim().is_empty() {
            return fail("the environment has no namespace to place in the project".into());
        }
        let p = &self.project;
        for (what, map, keys) in [
            ("resourceQuota", &p.resource_quota, QUOTA_KEYS),
            (
                "namespaceDefaultQuota",
                &p.namespace_default_quota,
                QUOTA_KEYS,
            ),
            (
                "containerDefaultLimits",
                &p.container_default_limits,
                CONTAINER_LIMIT_KEYS,
            ),
        ] {
            for (key, value) in map {
                if !keys.contains(&key.as_str()) {
                    return fail(format!(
                        "rancher.{what}.{key} is not a Rancher limit key; use one of {}",
                        keys.join(", ")
                    ));
                }
                if quantity::parse(value).is_none() {
                    return fail(format!(
                        "rancher.{what}.{key}: {value:?} is not a quantity (e.g. 500m, 2, 512Mi)"
                    ));
                }
            }
        }
        // Rancher refuses a project quota without a per-namespace default for
        // the same resource, and a default larger than the project limit.
        for (key, limit) in &p.resource_quota {
            let Some(default) = p.namespace_default_quota.get(key) else {
                return fail(format!(
                    "rancher.resourceQuota.{key} needs rancher.namespaceDefaultQuota.{key} too (Rancher requires both)"
                ));
            };
            if quantity::parse(default) > quantity::parse(limit) {
                return fail(format!(
                    "rancher.namespaceDefaultQuota.{key} ({default}) exceeds rancher.resourceQuota.{key} ({limit})"
                ));
            }
        }
        for key in p.namespace_default_quota.keys() {
            if !p.resource_quota.contains_key(key) {
                return fail(format!(
                    "rancher.namespaceDefaultQuota.{key} has no rancher.resourceQuota.{key}; set both or neither"
                ));
            }
        }
        let c = &p.container_default_limits;
        for (req, lim) in [
            ("requestsCpu", "limitsCpu"),
            ("requestsMemory", "limitsMemory"),
        ] {
            if let (Some(r), Some(l)) = (c.get(req), c.get(lim))
                && quantity::parse(r) > quantity::parse(l)
            {
                return fail(format!(
                    "rancher.containerDefaultLimits.{req} ({r}) exceeds {lim} ({l})"
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in &self.members {
            if m.role.trim().is_empty() || m.subject.id().trim().is_empty() {
                return fail(format!(
                    "rancher.members: every member needs a role and a non-empty {}",
                    m.subject.field()
                ));
            }
            if !seen.insert(m) {
                return fail(format!(
                    "rancher.members lists {} with role {} twice",
                    m.subject, m.role
                ));
            }
        }
        Ok(())
    }

    /// Labels keelson puts on the Rancher objects it creates for this environment.
    pub fn owner_labels(&self) -> BTreeMap<String, String> {
        owner_labels(&self.environment)
    }
}

/// The ownership labels of an environment.
pub fn owner_labels(environment: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
        (ENVIRONMENT_LABEL.to_string(), environment.to_string()),
    ])
}
