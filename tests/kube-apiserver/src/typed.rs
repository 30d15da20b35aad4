//! Which fields of a built-in object its Go type does not declare. The real server cannot keep
//! them: server-side apply refuses them (`field not declared in schema`), other writes refuse them
//! under `fieldValidation=Strict` and drop them otherwise. Found by a round trip through the
//! k8s-openapi type, which keeps exactly the declared fields.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::ResourceType;
use crate::ssa::schema::{item_key, list_keys};

/// Something done with the k8s-openapi type of a built-in kind.
trait WithType {
    type Out;
    fn with<T: DeserializeOwned + Serialize>(self) -> Self::Out;
}

/// A round trip through the type: exactly the declared fields survive.
struct RoundTrip<'a>(&'a Value);

impl WithType for RoundTrip<'_> {
    type Out = Option<Value>;
    fn with<T: DeserializeOwned + Serialize>(self) -> Option<Value> {
        let typed = T::deserialize(self.0).ok()?;
        serde_json::to_value(typed).ok()
    }
}

/// Decoding into the type: the path and serde message of the first type error.
struct Decode<'a>(&'a Value);

impl WithType for Decode<'_> {
    type Out = Option<(serde_path_to_error::Path, String)>;
    fn with<T: DeserializeOwned + Serialize>(self) -> Self::Out {
        match serde_path_to_error::deserialize::<_, T>(self.0) {
            Ok(_) => None,
            Err(e) => Some((e.path().clone(), e.into_inner().to_string())),
        }
    }
}

/// The object as its k8s-openapi type sees it, or None for kinds without one (custom resources)
/// and objects the type cannot read (those fail elsewhere, or are left alone).
fn typed_view(rt: &ResourceType, obj: &Value) -> Option<Value> {
    dispatch(rt, RoundTrip(obj)).flatten()
}

/// The first type error of a built-in object: its path and serde's message
/// (`invalid type: string "two", expected i32`).
pub fn decode_error(rt: &ResourceType, obj: &Value) -> Option<(serde_path_to_error::Path, String)> {
    dispatch(rt, Decode(obj)).flatten()
}

fn dispatch<W: WithType>(rt: &ResourceType, w: W) -> Option<W::Out> {
    use k8s_openapi::api::admissionregistration::v1 as admission;
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    if rt.custom {
        return None;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => Some(w.with::<core::Namespace>()),
        ("", "ConfigMap") => Some(w.with::<core::ConfigMap>()),
        ("", "Secret") => Some(w.with::<core::Secret>()),
        ("", "Service") => Some(w.with::<core::Service>()),
        ("", "ServiceAccount") => Some(w.with::<core::ServiceAccount>()),
        ("", "Pod") => Some(w.with::<core::Pod>()),
        ("", "PersistentVolumeClaim") => Some(w.with::<core::PersistentVolumeClaim>()),
        ("", "PersistentVolume") => Some(w.with::<core::PersistentVolume>()),
        ("", "Endpoints") => Some(w.with::<core::Endpoints>()),
        ("", "Event") => Some(w.with::<core::Event>()),
        ("", "LimitRange") => Some(w.with::<core::LimitRange>()),
        ("", "ResourceQuota") => Some(w.with::<core::ResourceQuota>()),
        ("", "Node") => Some(w.with::<core::Node>()),
        ("", "ReplicationController") => Some(w.with::<core::ReplicationController>()),
        ("apps", "Deployment") => Some(w.with::<apps::Deployment>()),
        ("apps", "StatefulSet") => Some(w.with::<apps::StatefulSet>()),
        ("apps", "DaemonSet") => Some(w.with::<apps::DaemonSet>()),
        ("apps", "ReplicaSet") => Some(w.with::<apps::ReplicaSet>()),
        ("apps", "ControllerRevision") => Some(w.with::<apps::ControllerRevision>()),
        ("batch", "Job") => Some(w.with::<batch::Job>()),
        ("batch", "CronJob") => Some(w.with::<batch::CronJob>()),
        ("networking.k8s.io", "Ingress") => Some(w.with::<networking::Ingress>()),
        ("networking.k8s.io", "NetworkPolicy") => Some(w.with::<networking::NetworkPolicy>()),
        ("networking.k8s.io", "IngressClass") => Some(w.with::<networking::IngressClass>()),
        ("policy", "PodDisruptionBudget") => Some(w.with::<policy::PodDisruptionBudget>()),
        ("coordination.k8s.io", "Lease") => Some(w.with::<coordination::Lease>()),
        ("rbac.authorization.k8s.io", "Role") => Some(w.with::<rbac::Role>()),
        ("rbac.authorization.k8s.io", "RoleBinding") => Some(w.with::<rbac::RoleBinding>()),
        ("rbac.authorization.k8s.io", "ClusterRole") => Some(w.with::<rbac::ClusterRole>()),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            Some(w.with::<rbac::ClusterRoleBinding>())
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            Some(w.with::<autoscaling::HorizontalPodAutoscaler>())
        }
        ("events.k8s.io", "Event") => Some(w.with::<events::Event>()),
        ("discovery.k8s.io", "EndpointSlice") => Some(w.with::<discovery::EndpointSlice>()),
        ("storage.k8s.io", "StorageClass") => Some(w.with::<storage::StorageClass>()),
        ("scheduling.k8s.io", "PriorityClass") => Some(w.with::<scheduling::PriorityClass>()),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            Some(w.with::<admission::ValidatingWebhookConfiguration>())
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            Some(w.with::<admission::MutatingWebhookConfiguration>())
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            Some(w.with::<admission::ValidatingAdmissionPolicy>())
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            Some(w.with::<admission::ValidatingAdmissionPolicyBinding>())
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            Some(w.with::<apiextensions::CustomResourceDefinition>())
        }
        _ => None,
    }
}

/// A field the kind's type does not declare: its display path (`.spec.replica`, with list items
/// by key like `[name="web"]`) and its JSON pointer for removal.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField {
    /// SMD-style path: `.spec.template.spec.containers[name="web"].imagePullPolcy`.
    pub path: String,
    /// Dotted path as strict decoding reports it: `spec.template.spec.containers[0].imagePullPolcy`.
    pub dotted: String,
    /// JSON pointer into the object.
    pub pointer: String,
}

/// Every undeclared, non-empty field of `obj`. Custom resources are judged by the CRD schema in
/// force ([`crate::ssa::schema::with_custom_schema`]), where `x-kubernetes-preserve-unknown-fields`
/// and `additionalProperties` admit anything below them.
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> Vec<UnknownField> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    if rt.custom {
        let Some(schema) = crate::ssa::schema::custom_schema() else {
            return out;
        };
        let mut body = obj.clone();
        if let Some(m) = body.as_object_mut() {
            // Every object has these whatever its schema says.
            for k in ["apiVersion", "kind", "metadata"] {
                m.remove(k);
            }
        }
        against_schema(&body, &schema, &mut names, &mut Cursor::default(), &mut out);
        return out;
    }
    let Some(typed) = typed_view(rt, obj) else {
        return out;
    };
    compare(obj, &typed, &mut names, &mut Cursor::default(), &mut out);
    out
}

fn against_schema(
    v: &Value,
    schema: &Value,
    names: &mut Vec<String>,
    at: &mut Cursor,
    out: &mut Vec<UnknownField>,
) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            if props.is_none() && !schema["additionalProperties"].is_null() {
                return;
            }
            for (k, child) in m {
                let saved = at.enter_field(k);
                match props.and_then(|p| p.get(k)) {
                    Some(s) => {
                        names.push(k.clone());
                        against_schema(child, s, names, at, out);
                        names.pop();
                    }
                    None if !is_empty(child) => out.push(at.field()),
                    None => {}
                }
                at.leave(saved);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let saved = at.enter_item(i, item, names);
                against_schema(item, &schema["items"], names, at, out);
                at.leave(saved);
            }
        }
        _ => {}
    }
}

#[derive(Default)]
struct Cursor {
    path: String,
    dotted: String,
    pointer: String,
}

impl Cursor {
    fn enter_field(&mut self, k: &str) -> (usize, usize, usize) {
        let saved = (self.path.len(), self.dotted.len(), self.pointer.len());
        self.path.push('.');
        self.path.push_str(k);
        if !self.dotted.is_empty() {
            self.dotted.push('.');
        }
        self.dotted.push_str(k);
        self.pointer.push('/');
        self.pointer
            .push_str(&k.replace('~', "~0").replace('/', "~1"));
        saved
    }

    fn enter_item(&mut self, i: usize, item: &Value, names: &[String]) -> (usize, usize, usize) {
        let saved = (self.path.len(), self.dotted.len(), self.pointer.len());
        let shown = match list_keys(names).as_ref().and_then(|k| item_key(item, k)) {
            Some(k) => crate::ssa::fieldset::display_path(&[crate::ssa::fieldset::key_pe(&k)]),
            None => format!("[{i}]"),
        };
        self.path.push_str(&shown);
        self.dotted.push_str(&format!("[{i}]"));
        self.pointer.push_str(&format!("/{i}"));
        saved
    }

    fn leave(&mut self, saved: (usize, usize, usize)) {
        self.path.truncate(saved.0);
        self.dotted.truncate(saved.1);
        self.pointer.truncate(saved.2);
    }

    fn field(&self) -> UnknownField {
        UnknownField {
            path: self.path.clone(),
            dotted: self.dotted.clone(),
            pointer: self.pointer.clone(),
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn compare(
    input: &Value,
    typed: &Value,
    names: &mut Vec<String>,
    at: &mut Cursor,
    out: &mut Vec<UnknownField>,
) {
    match (input, typed) {
        (Value::Object(im), Value::Object(tm)) => {
            for (k, iv) in im {
                let saved = at.enter_field(k);
                match tm.get(k) {
                    Some(tv) => {
                        names.push(k.clone());
                        compare(iv, tv, names, at, out);
                        names.pop();
                    }
                    None if !is_empty(iv) => out.push(at.field()),
                    None => {}
                }
                at.leave(saved);
            }
        }
        (Value::Array(ia), Value::Array(ta)) => {
            for (i, (iv, tv)) in ia.iter().zip(ta).enumerate() {
                let saved = at.enter_item(i, iv, names);
                compare(iv, tv, names, at, out);
                at.leave(saved);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn finds_misspelled_fields_and_ignores_declared_ones() {
        let reg = Registry::default();
        let rt = reg.lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"replica": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {
                "containers": [{"name": "web", "image": "x", "imagePullPolcy": "Always", "resources": {}, "args": []}]}}}});
        let unknown = unknown_fields(rt, &d);
        let paths: Vec<&str> = unknown.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".spec.replica",
                ".spec.template.spec.containers[name=\"web\"].imagePullPolcy"
            ]
        );
        assert_eq!(
            unknown[1].dotted,
            "spec.template.spec.containers[0].imagePullPolcy"
        );
        assert_eq!(
            unknown[1].pointer,
            "/spec/template/spec/containers/0/imagePullPolcy"
        );
    }
}

#[cfg(test)]
mod custom_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_resources_are_judged_by_their_schema() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gateways", "kind": "Gateway"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        let rt = crate::registry::crd_types(&crd).remove(0);
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "listeners": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Gateway", "metadata": {"name": "g"},
            "spec": {"listners": [{"name": "x"}], "listeners": [{"name": "a", "port": 1}], "extra": {"anything": 1}}});
        let unknown =
            crate::ssa::schema::with_custom_schema(Some(schema), || unknown_fields(&rt, &obj));
        let mut paths: Vec<&str> = unknown.iter().map(|u| u.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, [".spec.listeners[0].port", ".spec.listners"]);
    }
}
