//! Delegations keelson can see: fields that Git declares but a controller
//! is entitled to set. Today that is the `spec.replicas` of a workload a
//! HorizontalPodAutoscaler targets (`spec.scaleTargetRef`), whether the HPA
//! is in the environment or only on the cluster. A delegated field is
//! neither compared nor applied, and the plan names who it is left to.
//! Any other field another writer changed is drift.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::{DesiredObject, ObjectId};

/// One delegated field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The workload: API group, kind, namespace, name.
    pub target: (String, String, String, String),
    /// The delegated field, as a JSON pointer (`/spec/replicas`).
    pub pointer: String,
    /// Who it is delegated to (the HPA).
    pub by: ObjectId,
}

impl Delegation {
    /// The delegation an HPA (`autoscaling/v1` or `v2`) makes, if it names
    /// a target.
    pub fn from_hpa(hpa: &Json) -> Option<Delegation> {
        if hpa.get("kind").and_then(Json::as_str) != Some("HorizontalPodAutoscaler") {
            return None;
        }
        let by = ObjectId::of(hpa);
        let t = hpa.get("spec")?.get("scaleTargetRef")?;
        let kind = t.get("kind")?.as_str()?.to_string();
        let name = t.get("name")?.as_str()?.to_string();
        let group = t
            .get("apiVersion")
            .and_then(Json::as_str)
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g)
            .to_string();
        Some(Delegation {
            target: (group, kind, by.namespace.clone(), name),
            pointer: "/spec/replicas".into(),
            by,
        })
    }

    /// The plan's note.
    pub fn note(&self) -> String {
        format!("{} is delegated to {}; left alone", self.pointer, self.by)
    }
}

/// Delegations by target: those the cluster holds plus those the desired
/// objects make.
pub type ByTarget = HashMap<(String, String, String, String), Vec<Delegation>>;

/// Every delegation that applies in an environment: `live`'s and those of
/// the desired HPAs (only those are parsed).
pub fn in_env(desired: &[DesiredObject], live: &[Delegation]) -> ByTarget {
    let mut out: ByTarget = HashMap::new();
    let hpas = desired
        .iter()
        .filter(|d| d.id().kind == "HorizontalPodAutoscaler")
        .filter_map(|d| Delegation::from_hpa(&d.value()));
    for d in live.iter().cloned().chain(hpas) {
        let list = out.entry(d.target.clone()).or_default();
        if !list
            .iter()
            .any(|x| x.by.same_object(&d.by) && x.pointer == d.pointer)
        {
            list.push(d);
        }
    }
    out
}

/// The delegations of one object.
pub fn of<'a>(all: &'a ByTarget, id: &ObjectId) -> &'a [Delegation] {
    if all.is_empty() {
        return &[];
    }
    let key = (
        id.group().to_string(),
        id.kind.clone(),
        id.namespace.clone(),
        id.name.clone(),
    );
    all.get(&key).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_hpa_delegates_its_targets_replicas() {
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "orders", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders"}}});
        let all = in_env(
            &[DesiredObject::new(&hpa)],
            &[Delegation::from_hpa(&hpa).unwrap()],
        );
        let id = ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "orders".into(),
        };
        let d = of(&all, &id);
        assert_eq!(d.len(), 1, "counted once");
        assert_eq!(
            d[0].note(),
            "/spec/replicas is delegated to HorizontalPodAutoscaler/shop/orders; left alone"
        );
        let other = ObjectId {
            name: "payments".into(),
            ..id
        };
        assert!(of(&all, &other).is_empty());
    }
}
