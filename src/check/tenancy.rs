//! Tenancy: an environment writes only into its own namespace, as an Argo
//! CD AppProject confines an Application to its `destinations` and its
//! `clusterResourceWhitelist`. Refused at `validate`, at the line that asks
//! for it:
//! - a system namespace (`kube-*`, `default`) as the environment's own;
//! - a manifest in another namespace (another environment's, a system one,
//!   or any other);
//! - a cluster-scoped manifest (ClusterRole, ClusterRoleBinding, CRD,
//!   Namespace…), since it is shared by every tenant of the cluster.
//!
//! A platform policy in force for the environment grants exceptions with
//! `spec.tenancy.destinations` (namespaces) and
//! `spec.tenancy.clusterResourceWhitelist` (group and kind). The platform
//! team owns `policies/`, so the allow-list has the right owner. A Namespace
//! object other than the environment's own needs both: the kind, and the
//! namespace as a destination.
//!
//! At plan time, keelson also never takes over an object labelled for
//! another environment, and never prunes a namespace that holds another
//! environment's inventory (`reconcile::tenants`).

use std::collections::HashMap;

use globset::Glob;

use crate::diag::Diagnostic;
use crate::render::ResolvedEnv;
use crate::render::objects::CLUSTER_SCOPED;
use crate::spec::{Doc, EnvFiles, Policy, Tenancy};

/// Whether `ns` is a system namespace: `default` and `kube-*` (`kube-system`,
/// `kube-public`, `kube-node-lease`).
pub fn is_system_namespace(ns: &str) -> bool {
    ns == "default" || ns.starts_with("kube-")
}

/// The grants of the policies in force for one environment.
#[derive(Debug, Default)]
pub struct Grants<'a> {
    tenancy: Vec<&'a Tenancy>,
}

impl<'a> Grants<'a> {
    /// The grants of `env`'s policies in force.
    pub fn of(env: &ResolvedEnv, policies: &'a [Doc<Policy>]) -> Grants<'a> {
        Grants {
            tenancy: policies
                .iter()
                .filter(|p| env.policies.contains(&p.value.metadata.name))
                .filter_map(|p| p.value.spec.tenancy.as_ref())
                .collect(),
        }
    }

    /// Whether a policy lets the environment write into namespace `ns`. A
    /// system namespace is granted only by a pattern that names it (does not
    /// start with a wildcard), so `*` never opens `kube-system`.
    pub fn namespace(&self, ns: &str) -> bool {
        self.tenancy.iter().flat_map(|t| &t.destinations).any(|d| {
            glob(&d.namespace, ns)
                && (!is_system_namespace(ns) || !d.namespace.starts_with(['*', '?', '[']))
        })
    }

    /// Whether a policy lets the environment create cluster-scoped objects
    /// of `group` and `kind`.
    pub fn cluster_kind(&self, group: &str, kind: &str) -> bool {
        self.tenancy
            .iter()
            .flat_map(|t| &t.cluster_resource_whitelist)
            .any(|gk| glob(&gk.group, group) && glob(&gk.kind, kind))
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    pattern == value
        || Glob::new(pattern)
            .map(|g| g.compile_matcher().is_match(value))
            .unwrap_or(false)
}

/// The tenancy findings of one environment. `owners` maps (cluster,
/// namespace) to the environments whose namespace it is.
pub fn check(
    files: &EnvFiles,
    env: &ResolvedEnv,
    policies: &[Doc<Policy>],
    owners: &HashMap<(String, String), Vec<String>>,
) -> Vec<Diagnostic> {
    let grants = Grants::of(env, policies);
    let mut out = Vec::new();
    let in_force = if env.policies.is_empty() {
        "no policy is in force for it".to_string()
    } else {
        format!("policies in force: {}", env.policies.join(", "))
    };
    let owner_of = |ns: &str| -> Option<&String> {
        owners
            .get(&(env.cluster.clone(), ns.to_string()))
            .and_then(|v| v.iter().find(|e| **e != env.name))
    };

    if let Some(doc) = &files.environment
        && is_system_namespace(&env.namespace)
        && !grants.namespace(&env.namespace)
    {
        out.push(
            Diagnostic::error(
                "tenancy",
                &doc.file,
                Some(doc.node.locate("/spec/namespace", false)),
                format!(
                    "namespace `{}` is a system namespace; environment `{}` may not use it",
                    env.namespace, env.name
                ),
            )
            .with_help(format!(
                "use a namespace of its own; or the platform team allows it in a policy: `tenancy: {{destinations: [{{namespace: {}}}]}}` ({in_force})",
                env.namespace
            )),
        );
    }

    for m in &files.manifests {
        let s = |p: &str| {
            m.object
                .pointer(p)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind, name) = (s("/apiVersion"), s("/kind"), s("/metadata/name"));
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let where_ns = |ns: &str| match owner_of(ns) {
            Some(other) => format!("namespace `{ns}`, environment `{other}`'s namespace"),
            None if is_system_namespace(ns) => format!("system namespace `{ns}`"),
            None => format!("namespace `{ns}`"),
        };
        if CLUSTER_SCOPED.contains(&kind.as_str()) {
            if kind == "Namespace" && name == env.namespace {
                continue;
            }
            let kind_ok = grants.cluster_kind(group, &kind);
            let ns_ok = kind != "Namespace" || grants.namespace(&name);
            if kind_ok && ns_ok {
                continue;
            }
            let (message, help) = if kind == "Namespace" {
                (
                    format!(
                        "Namespace `{name}` is not environment `{}`'s namespace (`{}`): it is {}; an environment never creates or claims another namespace",
                        env.name,
                        env.namespace,
                        where_ns(&name)
                    ),
                    format!(
                        "remove the manifest; or the platform team allows it in a policy: `tenancy: {{clusterResourceWhitelist: [{{group: \"\", kind: Namespace}}], destinations: [{{namespace: {name}}}]}}` ({in_force})"
                    ),
                )
            } else {
                (
                    format!(
                        "{kind} `{name}` is cluster-scoped: it reaches beyond environment `{}`'s namespace `{}`, into every tenant of the cluster",
                        env.name, env.namespace
                    ),
                    format!(
                        "{}; or the platform team allows it in a policy: `tenancy: {{clusterResourceWhitelist: [{{group: \"{group}\", kind: {kind}}}]}}` ({in_force})",
                        if kind.starts_with("ClusterRole") {
                            "use a Role and RoleBinding in the environment's namespace"
                        } else {
                            "remove the manifest (the platform team installs cluster-wide objects)"
                        }
                    ),
                )
            };
            out.push(
                Diagnostic::error(
                    "tenancy",
                    &m.file,
                    Some(m.node.locate("/kind", false)),
                    message,
                )
                .with_help(help),
            );
            continue;
        }
        let ns = s("/metadata/namespace");
        if ns.is_empty() || ns == env.namespace || grants.namespace(&ns) {
            continue;
        }
        out.push(
            Diagnostic::error(
                "tenancy",
                &m.file,
                Some(m.node.locate("/metadata/namespace", false)),
                format!(
                    "{kind} `{name}` is in {}; environment `{}` writes only into its own namespace `{}`",
                    where_ns(&ns),
                    env.name,
                    env.namespace
                ),
            )
            .with_help(format!(
                "leave out `metadata.namespace` (keelson puts the object in `{}`); or the platform team allows it in a policy: `tenancy: {{destinations: [{{namespace: {ns}}}]}}` ({in_force})",
                env.namespace
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Destination, GroupKind};

    #[test]
    fn system_namespaces_need_a_pattern_that_names_them() {
        let t = Tenancy {
            destinations: vec![
                Destination {
                    namespace: "*".into(),
                },
                Destination {
                    namespace: "kube-mon*".into(),
                },
            ],
            cluster_resource_whitelist: vec![GroupKind {
                group: "rbac.authorization.k8s.io".into(),
                kind: "Cluster*".into(),
            }],
        };
        let g = Grants { tenancy: vec![&t] };
        assert!(g.namespace("monitoring"));
        assert!(
            !g.namespace("kube-system"),
            "`*` never grants a system namespace"
        );
        assert!(!g.namespace("default"));
        assert!(g.namespace("kube-monitoring"));
        assert!(g.cluster_kind("rbac.authorization.k8s.io", "ClusterRoleBinding"));
        assert!(!g.cluster_kind("", "Namespace"));
        assert!(!Grants::default().namespace("monitoring"));
    }
}
