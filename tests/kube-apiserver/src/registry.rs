//! The resource types the server serves: built-in groups plus CRDs registered at run time.

use serde_json::Value;

/// Verbs served on every collection and object.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource (one group/version/resource and its kind).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// Singular lowercase name, e.g. `deployment`.
    pub singular: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for `kubectl get`, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether the resource has a `/status` subresource (then `status` is ignored on the main resource).
    pub has_status: bool,
    /// Whether this came from a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `configmaps` for the core group: how errors name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Path prefix of the group version: `/api/v1` or `/apis/apps/v1`.
    pub fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn rt(
    group: &str,
    version: &str,
    resource: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    all: bool,
    status: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        has_status: status,
        custom: false,
    }
}

fn builtins() -> Vec<ResourceType> {
    vec![
        rt(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            false,
            true,
        ),
        rt(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        rt("", "v1", "secrets", "Secret", true, &[], false, false),
        rt("", "v1", "services", "Service", true, &["svc"], true, true),
        rt(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
        ),
        rt("", "v1", "pods", "Pod", true, &["po"], true, true),
        rt(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            false,
            true,
        ),
        rt(
            "",
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            false,
            &["pv"],
            false,
            true,
        ),
        rt(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            false,
            false,
        ),
        rt("", "v1", "events", "Event", true, &["ev"], false, false),
        rt(
            "",
            "v1",
            "limitranges",
            "LimitRange",
            true,
            &["limits"],
            false,
            false,
        ),
        rt(
            "",
            "v1",
            "resourcequotas",
            "ResourceQuota",
            true,
            &["quota"],
            false,
            true,
        ),
        rt("", "v1", "nodes", "Node", false, &["no"], false, true),
        rt(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
            &["rc"],
            true,
            true,
        ),
        rt(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
        ),
        rt(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
            true,
        ),
        rt(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            true,
            true,
        ),
        rt(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            true,
        ),
        rt(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
        ),
        rt("batch", "v1", "jobs", "Job", true, &[], true, true),
        rt(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            true,
            &["cj"],
            true,
            true,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            true,
            &["ing"],
            false,
            true,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
            false,
            false,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            false,
            true,
        ),
        rt(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
        ),
        rt(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            false,
            false,
        ),
        rt(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            false,
            false,
        ),
        rt(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            false,
            &["pc"],
            false,
            false,
        ),
        rt(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            true,
            true,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicies",
            "ValidatingAdmissionPolicy",
            false,
            &[],
            false,
            true,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
            false,
            &[],
            false,
            false,
        ),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            false,
            true,
        ),
    ]
}

/// All served resources, in discovery order.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { types: builtins() }
    }
}

impl Registry {
    /// Every served resource.
    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// The resource served at `group/version/resource`.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.resource == resource)
    }

    /// Any version of `group/resource` (objects are stored version-less).
    pub fn lookup_gr(&self, group: &str, resource: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.resource == resource)
    }

    /// Groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    if !vs.contains(&t.version) {
                        vs.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Resources of one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect()
    }

    /// Serve the resources a CRD object describes (called once it is Established).
    pub fn register_crd(&mut self, crd: &Value) {
        self.unregister_crd(crd);
        for t in crd_types(crd) {
            self.types.push(t);
        }
    }

    /// Stop serving a CRD's resources.
    pub fn unregister_crd(&mut self, crd: &Value) {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        self.types
            .retain(|t| !(t.custom && t.group == group && t.resource == plural));
    }
}

/// The resource types a CustomResourceDefinition describes, one per served version.
/// Whether objects of `rt` carry `metadata.generation`: custom resources, and the built-in kinds
/// whose registry strategy sets it in `PrepareForCreate` (pkg/registry/*/strategy.go). Services,
/// ConfigMaps, Secrets, ServiceAccounts, RBAC objects, PVCs, Endpoints and HPAs (in 1.32) have none.
pub fn has_generation(rt: &ResourceType) -> bool {
    rt.custom
        || matches!(
            (rt.group.as_str(), rt.kind.as_str()),
            (
                "apps",
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
            ) | ("batch", "Job" | "CronJob")
                | (
                    "networking.k8s.io",
                    "Ingress" | "NetworkPolicy" | "IngressClass"
                )
                | ("policy", "PodDisruptionBudget")
                | ("", "ReplicationController")
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
                | ("discovery.k8s.io", "EndpointSlice")
                | (
                    "admissionregistration.k8s.io",
                    "ValidatingWebhookConfiguration"
                        | "MutatingWebhookConfiguration"
                        | "ValidatingAdmissionPolicy"
                        | "ValidatingAdmissionPolicyBinding"
                )
        )
}

pub fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    // The storage version is listed first so it becomes the preferred version in discovery.
    let mut ordered: Vec<&Value> = versions
        .iter()
        .filter(|v| v["storage"] == Value::Bool(true))
        .collect();
    ordered.extend(
        versions
            .iter()
            .filter(|v| v["storage"] != Value::Bool(true)),
    );
    for v in ordered {
        if v["served"] == Value::Bool(false) {
            continue;
        }
        out.push(ResourceType {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            resource: plural.into(),
            singular: names["singular"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.into(),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
            has_status: v["subresources"]["status"].is_object(),
            custom: true,
        });
    }
    out
}
