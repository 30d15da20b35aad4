//! Desired objects as the plan holds them: packed.
//!
//! An environment's rendered objects are held from render until its plan is
//! made. Parsed, as order-keeping `serde_json` values, a rendered Deployment
//! takes about 10 KiB (every map is an `IndexMap` with its own hash table,
//! every value 80 bytes); the 7,000 objects of an environment of 3,000 apps
//! took 59 MiB, the largest part of a no-op reconcile's peak memory. Packed,
//! an object is its id, the two facts the plan reads of every object, and
//! its compact JSON text: about 1.5 KiB. The text is parsed again only
//! where an object's body is read: the no-op decision's ownership check
//! (once the applied hashes agree) and the plan of an object that is not
//! known to be unchanged.

use serde_json::Value as Json;

use super::{ObjectId, meta_str};
use crate::render::objects::{APPLIED_HASH_ANNOTATION, APPLY_ANNOTATION};

/// One desired object, packed (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    id: ObjectId,
    applied_hash: Option<Box<str>>,
    create_only: bool,
    text: Box<str>,
}

impl DesiredObject {
    /// Pack `o`: its id ([`ObjectId::of`]), its applied-hash annotation,
    /// whether it is `keelson.dev/apply: create-only`, and its compact JSON.
    pub fn new(o: &Json) -> DesiredObject {
        DesiredObject {
            id: ObjectId::of(o),
            applied_hash: meta_str(o, "annotations", APPLIED_HASH_ANNOTATION).map(Into::into),
            create_only: meta_str(o, "annotations", APPLY_ANNOTATION) == Some("create-only"),
            // A `Value` always serialises: its map keys are strings.
            text: serde_json::to_string(o)
                .expect("a JSON value serialises")
                .into_boxed_str(),
        }
    }

    /// The object's id.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }

    /// The `keelson.dev/applied-hash` annotation, if the object has one.
    pub fn applied_hash(&self) -> Option<&str> {
        self.applied_hash.as_deref()
    }

    /// Whether the object is applied once and never updated
    /// (`keelson.dev/apply: create-only`).
    pub fn create_only(&self) -> bool {
        self.create_only
    }

    /// The object, parsed from its text: the same value it was packed from
    /// (keys in the same order, numbers as they were).
    pub fn value(&self) -> Json {
        // The text was written by `new` from a value: it parses.
        serde_json::from_str(&self.text).expect("packed JSON parses")
    }
}

impl From<Json> for DesiredObject {
    fn from(o: Json) -> DesiredObject {
        DesiredObject::new(&o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_packed_object_parses_back_to_the_same_value_in_the_same_order() {
        let o = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop",
                "annotations": {APPLIED_HASH_ANNOTATION: "abc", APPLY_ANNOTATION: "create-only"}},
            "spec": {"replicas": 2, "zeta": 1.5, "alpha": [1, -2, 18446744073709551615u64],
                "template": {"z": null, "a": "x"}}});
        let d = DesiredObject::new(&o);
        assert_eq!(d.id().to_string(), "Deployment/shop/web");
        assert_eq!(d.applied_hash(), Some("abc"));
        assert!(d.create_only());
        let back = d.value();
        assert_eq!(back, o);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&o).unwrap(),
            "keys keep their order"
        );
        let plain = DesiredObject::from(json!({"kind": "ConfigMap", "metadata": {"name": "c"}}));
        assert_eq!(plain.applied_hash(), None);
        assert!(!plain.create_only());
    }
}
