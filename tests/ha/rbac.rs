//! The RBAC of `deploy/rbac.yaml`, checked request by request: every
//! request a replica made must be allowed by the Role (in the Leases'
//! namespace) or the ClusterRole, as the API server's RBAC authorizer
//! would decide it (k8s.io/apiserver `RequestInfoFactory` for the verb and
//! resource of a request; plugin/pkg/auth/authorizer/rbac `RuleAllows`).

use std::path::Path;

use kube_apiserver::RequestRecord;
use serde_json::Value as Json;

use super::cluster::LEASE_NS;

/// What RBAC sees of a request.
#[derive(Debug, PartialEq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// The RBAC attributes of a request; `None` for non-resource URLs
/// (discovery, `/version`, `/openapi`), open to every authenticated user
/// through `system:discovery`.
pub fn attributes(r: &RequestRecord) -> Option<Attributes> {
    let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _v, rest @ ..] => (String::new(), rest),
        ["apis", g, _v, rest @ ..] => (g.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [] => return None,
        [res] => (res.to_string(), None, None),
        [res, name] => (res.to_string(), Some(name.to_string()), None),
        [res, name, sub, ..] => (
            res.to_string(),
            Some(name.to_string()),
            Some(sub.to_string()),
        ),
    };
    let watch = r
        .query
        .split('&')
        .any(|q| q == "watch=true" || q == "watch=1");
    let verb = match (r.method.as_str(), name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => panic!("unexpected method {m} {}", r.path),
    };
    Some(Attributes {
        verb: verb.into(),
        group,
        resource: match sub {
            Some(s) => format!("{resource}/{s}"),
            None => resource,
        },
        namespace,
        name,
    })
}

/// The rules of the Role (namespaced in the Leases' namespace) and the
/// ClusterRole in `deploy/rbac.yaml`.
pub struct Rbac {
    role: Vec<Json>,
    cluster_role: Vec<Json>,
}

impl Rbac {
    pub fn load(root: &Path) -> Rbac {
        let text = std::fs::read_to_string(root.join("deploy/rbac.yaml")).unwrap();
        let docs = keelson::yaml::parse_documents(&text, keelson::yaml::Limits::default()).unwrap();
        let mut rbac = Rbac {
            role: Vec::new(),
            cluster_role: Vec::new(),
        };
        for d in docs {
            let d = d.to_json();
            let rules = d["rules"].as_array().cloned().unwrap_or_default();
            match d["kind"].as_str() {
                Some("Role") => {
                    assert_eq!(d["metadata"]["namespace"], LEASE_NS);
                    rbac.role.extend(rules)
                }
                Some("ClusterRole") => rbac.cluster_role.extend(rules),
                _ => {}
            }
        }
        assert!(!rbac.role.is_empty() && !rbac.cluster_role.is_empty());
        rbac
    }

    /// Whether `a` is allowed.
    pub fn allows(&self, a: &Attributes) -> bool {
        let in_role_ns = a.namespace.as_deref() == Some(LEASE_NS);
        let role = self.role.iter().filter(|_| in_role_ns);
        role.chain(&self.cluster_role)
            .any(|rule| rule_allows(rule, a))
    }
}

fn has(list: &Json, v: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|x| x == v || x == "*"))
}

fn rule_allows(rule: &Json, a: &Attributes) -> bool {
    has(&rule["verbs"], &a.verb)
        && has(&rule["apiGroups"], &a.group)
        && has(&rule["resources"], &a.resource)
        && match rule["resourceNames"].as_array() {
            None => true,
            Some(names) if names.is_empty() => true,
            Some(names) => a
                .name
                .as_deref()
                .is_some_and(|n| names.iter().any(|x| x == n)),
        }
}

/// Requests made by the replicas (named in their User-Agent) that the RBAC
/// of deploy/ would refuse, and how many were checked.
pub fn refused(log: &[RequestRecord], root: &Path) -> (usize, Vec<String>) {
    let rbac = Rbac::load(root);
    let mut checked = 0;
    let mut out = Vec::new();
    for r in log.iter().filter(|r| super::log::identity(r).is_some()) {
        let Some(a) = attributes(r) else { continue };
        checked += 1;
        if !rbac.allows(&a) {
            out.push(format!("{} {} ({a:?})", r.method, r.path));
        }
    }
    out.sort();
    out.dedup();
    (checked, out)
}
