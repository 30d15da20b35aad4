//! Typed decoding of built-in kinds into their k8s-openapi types, the way the
//! API server's strict JSON decoding reads them: a value of the wrong type
//! fails (`json: cannot unmarshal string into Go struct field … of type
//! int32`), and a field the type does not declare is refused, as
//! `kubectl apply --validate=strict` and server-side apply both refuse it
//! (`serde_ignored` reports every field the type skipped).

use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::{ErrorType, Errors, FieldError, meta, pod, service, workloads};

/// What the built-in table made of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A built-in kind, decoded and checked.
    Checked,
    /// A built-in kind that failed to decode (errors recorded).
    Failed,
    /// A built-in API group that does not serve this version or kind.
    NotServed,
    /// Not a built-in API group: a custom resource.
    NotBuiltin,
}

/// Decode `obj` as `T`, recording type errors and undeclared fields.
pub fn decode<T: DeserializeOwned>(obj: &Json, errs: &mut Errors) -> Option<T> {
    let mut unknown: Vec<String> = Vec::new();
    let result: Result<T, _> = serde_ignored::deserialize(obj, |path| {
        unknown.push(ignored_pointer(&path));
    });
    for pointer in unknown {
        errs.add(FieldError {
            pointer,
            field: String::new(),
            kind: ErrorType::UnknownField,
            value: None,
            detail: String::new(),
            at_key: true,
        });
    }
    match result {
        Ok(v) => Some(v),
        Err(_) => {
            // Decode again, slower, to learn where it failed.
            let err = match serde_path_to_error::deserialize::<_, T>(obj) {
                Ok(_) => return None,
                Err(e) => e,
            };
            let pointer: String = err
                .path()
                .iter()
                .map(|seg| match seg {
                    serde_path_to_error::Segment::Seq { index } => format!("/{index}"),
                    serde_path_to_error::Segment::Map { key } => {
                        format!("/{}", key.replace('~', "~0").replace('/', "~1"))
                    }
                    _ => String::new(),
                })
                .collect();
            errs.add(FieldError {
                pointer,
                field: String::new(),
                kind: ErrorType::Type,
                value: None,
                detail: type_message(&err.into_inner().to_string()),
                at_key: false,
            });
            None
        }
    }
}

fn ignored_pointer(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}/{index}", ignored_pointer(parent)),
        P::Map { parent, key } => format!(
            "{}/{}",
            ignored_pointer(parent),
            key.replace('~', "~0").replace('/', "~1")
        ),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_pointer(parent)
        }
    }
}

/// serde's message in the API's terms: Go type names for Rust ones.
fn type_message(serde: &str) -> String {
    let mut m = serde.to_string();
    for (rust, go) in [
        ("expected i32", "expected an integer (int32)"),
        ("expected i64", "expected an integer (int64)"),
        ("expected u32", "expected an integer (int32)"),
        ("expected f64", "expected a number"),
        ("expected a string", "expected a string"),
        ("expected a boolean", "expected a boolean (true or false)"),
    ] {
        m = m.replace(rust, go);
    }
    m
}

/// Decode `T` and run its rules.
fn run<T>(obj: &Json, errs: &mut Errors, rules: fn(&T, &mut Errors)) -> Found
where
    T: DeserializeOwned + Resource + k8s_openapi::Metadata<Ty = meta::ObjectMeta>,
    T::Scope: 'static,
{
    match decode::<T>(obj, errs) {
        Some(v) => {
            meta::object_meta(
                T::GROUP,
                T::KIND,
                meta::is_namespaced::<T>(),
                v.metadata(),
                errs,
            );
            rules(&v, errs);
            Found::Checked
        }
        None => Found::Failed,
    }
}

fn nothing<T>(_: &T, _: &mut Errors) {}

macro_rules! table {
    ($api_version:ident, $kind:ident, $obj:ident, $errs:ident; $($ty:ty => $rules:expr),* $(,)?) => {{
        $(
            if $api_version == <$ty as Resource>::API_VERSION && $kind == <$ty as Resource>::KIND {
                return run::<$ty>($obj, $errs, $rules);
            }
        )*
    }};
}

/// API groups built into kube-apiserver (and the aggregator): a kind or
/// version they do not serve is an error, not a custom resource.
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Decode and check `obj` if its apiVersion and kind are built in.
pub fn builtin(api_version: &str, kind: &str, obj: &Json, errs: &mut Errors) -> Found {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v1 as autoscaling1,
        autoscaling::v2 as autoscaling, batch::v1 as batch, certificates::v1 as certificates,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, flowcontrol::v1 as flowcontrol, networking::v1 as networking,
        node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, resource::v1beta1 as dra1,
        resource::v1beta2 as dra2, scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    table!(api_version, kind, obj, errs;
        core::ConfigMap => super::config::config_map,
        core::Secret => super::config::secret,
        core::Namespace => nothing,
        core::Service => service::service,
        core::ServiceAccount => nothing,
        core::Pod => |p: &core::Pod, e| if let Some(s) = &p.spec { pod::pod_spec(s, &super::Path::root().field("spec"), e) },
        core::PodTemplate => |p: &core::PodTemplate, e| if let Some(t) = &p.template { workloads::template_only(t, &super::Path::root().field("template"), e) },
        core::PersistentVolumeClaim => nothing,
        core::PersistentVolume => nothing,
        core::Endpoints => nothing,
        core::Event => nothing,
        core::LimitRange => nothing,
        core::ResourceQuota => nothing,
        core::Node => nothing,
        core::ReplicationController => nothing,
        core::Binding => nothing,
        apps::Deployment => workloads::deployment,
        apps::StatefulSet => workloads::stateful_set,
        apps::DaemonSet => workloads::daemon_set,
        apps::ReplicaSet => workloads::replica_set,
        apps::ControllerRevision => nothing,
        batch::Job => workloads::job,
        batch::CronJob => workloads::cron_job,
        autoscaling::HorizontalPodAutoscaler => workloads::hpa,
        autoscaling1::HorizontalPodAutoscaler => nothing,
        networking::Ingress => service::ingress,
        networking::IngressClass => nothing,
        networking::NetworkPolicy => service::network_policy,
        networking::IPAddress => nothing,
        networking::ServiceCIDR => nothing,
        policy::PodDisruptionBudget => workloads::pdb,
        rbac::Role => nothing,
        rbac::RoleBinding => nothing,
        rbac::ClusterRole => nothing,
        rbac::ClusterRoleBinding => nothing,
        coordination::Lease => nothing,
        discovery::EndpointSlice => nothing,
        events::Event => nothing,
        storage::StorageClass => nothing,
        storage::CSIDriver => nothing,
        storage::CSINode => nothing,
        storage::CSIStorageCapacity => nothing,
        storage::VolumeAttachment => nothing,
        scheduling::PriorityClass => nothing,
        node::RuntimeClass => nothing,
        certificates::CertificateSigningRequest => nothing,
        flowcontrol::FlowSchema => nothing,
        flowcontrol::PriorityLevelConfiguration => nothing,
        admission::MutatingWebhookConfiguration => nothing,
        admission::ValidatingWebhookConfiguration => nothing,
        admission::ValidatingAdmissionPolicy => nothing,
        admission::ValidatingAdmissionPolicyBinding => nothing,
        apiextensions::CustomResourceDefinition => super::crd::definition,
        apiregistration::APIService => nothing,
        dra1::DeviceClass => nothing,
        dra1::ResourceClaim => nothing,
        dra1::ResourceClaimTemplate => nothing,
        dra1::ResourceSlice => nothing,
        dra2::DeviceClass => nothing,
        dra2::ResourceClaim => nothing,
        dra2::ResourceClaimTemplate => nothing,
        dra2::ResourceSlice => nothing,
    );
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if BUILTIN_GROUPS.contains(&group) {
        Found::NotServed
    } else {
        Found::NotBuiltin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(obj: Json) -> Vec<FieldError> {
        let mut e = Errors::default();
        let api = obj["apiVersion"].as_str().unwrap().to_string();
        let kind = obj["kind"].as_str().unwrap().to_string();
        builtin(&api, &kind, &obj, &mut e);
        e.list
    }

    #[test]
    fn undeclared_fields_are_refused_at_their_pointer() {
        let e = errors(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "lables": {"x": "y"}},
            "data": {"k": "v"}, "extra": 1,
        }));
        let ptrs: Vec<_> = e.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/metadata/lables", "/extra"]);
        assert_eq!(e[0].to_string(), "unknown field \"metadata.lables\"");
        assert!(e.iter().all(|e| e.at_key));
    }

    #[test]
    fn wrong_types_fail_at_the_field() {
        let e = errors(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a"},
            "spec": {"replicas": "three", "selector": {}, "template": {}},
        }));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].pointer, "/spec/replicas");
        assert!(
            e[0].detail.contains("expected an integer"),
            "{}",
            e[0].detail
        );
        let e = errors(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"n": 1}},
        }));
        assert_eq!(e[0].pointer, "/metadata/labels/n");
    }

    #[test]
    fn kinds_a_builtin_group_does_not_serve_are_refused() {
        let mut e = Errors::default();
        let obj = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "a"}});
        assert_eq!(
            builtin("extensions/v1beta1", "Ingress", &obj, &mut e),
            Found::NotServed
        );
        assert_eq!(
            builtin("policy/v1beta1", "PodDisruptionBudget", &obj, &mut e),
            Found::NotServed
        );
        assert_eq!(
            builtin("cert-manager.io/v1", "Certificate", &obj, &mut e),
            Found::NotBuiltin
        );
    }
}
