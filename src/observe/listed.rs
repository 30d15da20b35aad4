//! Listed objects, read only as far as the no-op decision needs, and shrunk
//! to what planning and reporting read.
//!
//! A LIST page holds thousands of objects; parsed in full into JSON values
//! they take about seven times their wire size, and most of a no-op's time
//! goes to building and dropping them. A [`Listed`] object is parsed
//! shallowly from its raw JSON instead: its metadata without
//! `managedFields`, the names of its managers with their field sets left
//! raw, and its `spec` and `status` left raw. An object the no-op decision
//! clears ([`crate::plan::ownership::clears_entries`]) then becomes its
//! [`headless`] form without its body ever being parsed; any other object is
//! parsed in full, once.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::Resource;
use crate::apply::health::is_workload;
use crate::plan::{DesiredObject, ObjectId, ownership};
use crate::render::objects::APPLIED_HASH_ANNOTATION;

/// One item of a LIST page, parsed shallowly (see the module doc).
pub struct Listed<'a> {
    raw: &'a RawValue,
    api_version: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    metadata: Map<String, Json>,
    managed: Vec<Entry<'a>>,
    spec: Option<&'a RawValue>,
    status: Option<&'a RawValue>,
}

/// The top level of an item: other fields are skipped unparsed.
#[derive(Deserialize)]
struct Shallow<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Meta<'a>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
}

/// `metadata` with `managedFields` split off.
#[derive(Default)]
struct Meta<'a> {
    rest: Map<String, Json>,
    managed: Vec<Entry<'a>>,
}

/// One `managedFields` entry: who wrote, how, and its field set (raw).
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, default)]
    manager: Cow<'a, str>,
    #[serde(borrow, default)]
    operation: Cow<'a, str>,
    #[serde(borrow, default)]
    subresource: Cow<'a, str>,
    #[serde(rename = "fieldsV1", borrow, default)]
    fields: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Meta<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Meta<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("object metadata")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Meta<'a>, A::Error> {
                let mut meta = Meta::default();
                while let Some(k) = m.next_key::<String>()? {
                    if k == "managedFields" {
                        meta.managed = m
                            .next_value::<Option<Vec<Entry<'de>>>>()?
                            .unwrap_or_default();
                    } else {
                        meta.rest.insert(k, m.next_value()?);
                    }
                }
                Ok(meta)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Listed<'a> {
    /// Parse an item shallowly; `None` when it is not in the shape of an
    /// object (the caller then parses it in full and judges it as JSON).
    pub fn parse(raw: &'a RawValue) -> Option<Listed<'a>> {
        let s: Shallow<'a> = serde_json::from_str(raw.get()).ok()?;
        Some(Listed {
            raw,
            api_version: s.api_version,
            kind: s.kind,
            metadata: s.metadata.rest,
            managed: s.metadata.managed,
            spec: s.spec,
            status: s.status,
        })
    }

    /// The object's id. LIST items of built-in kinds carry no `apiVersion`
    /// and `kind`: those come from the listed resource.
    pub fn id(&self, res: &Resource) -> ObjectId {
        let s = |k: &str| {
            self.metadata
                .get(k)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = self.type_of(res);
        ObjectId {
            api_version,
            kind,
            namespace: s("namespace"),
            name: s("name"),
        }
    }

    /// `apiVersion` and `kind`: the item's own, else the resource's.
    fn type_of(&self, res: &Resource) -> (String, String) {
        (
            self.api_version
                .as_deref()
                .map_or_else(|| res.api_version(), str::to_string),
            self.kind
                .as_deref()
                .map_or_else(|| res.kind.clone(), str::to_string),
        )
    }

    /// Whether the no-op decision clears this object against `desired`
    /// ([`ownership::clears_entries`]); only keelson's field set is parsed,
    /// and `desired` only when the applied hashes agree.
    pub fn clears(&self, desired: &DesiredObject, manual: &[String]) -> bool {
        let hash = self
            .metadata
            .get("annotations")
            .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
            .and_then(Json::as_str);
        if hash.is_none() || desired.applied_hash() != hash {
            return false;
        }
        let entries: Vec<(&str, &str, &str)> = self
            .managed
            .iter()
            .map(|e| (&*e.manager, &*e.operation, &*e.subresource))
            .collect();
        let fields = |i: usize| {
            Cow::Owned(
                self.managed[i]
                    .fields
                    .and_then(|f| serde_json::from_str(f.get()).ok())
                    .unwrap_or(Json::Null),
            )
        };
        ownership::clears_entries(&desired.value(), hash, &entries, &fields, manual)
    }

    /// Whether the object carries the inventory label (an inventory part,
    /// which the plan never counts as one of the environment's objects).
    pub fn is_inventory(&self) -> bool {
        self.metadata
            .get("labels")
            .and_then(|l| l.get(crate::plan::inventory::LABEL))
            .is_some()
    }

    /// What is kept of an object the plan will find unchanged (see
    /// [`headless`]), built without parsing its body.
    pub fn headless(self, res: &Resource) -> Json {
        let (api_version, kind) = self.type_of(res);
        let workload = is_workload(&kind);
        let mut o = Map::new();
        let mut meta = self.metadata;
        meta.retain(|k, _| kept_meta(k, workload));
        o.insert("metadata".into(), Json::Object(meta));
        if workload {
            if let Some(Ok(Json::Object(mut spec))) =
                self.spec.map(|s| serde_json::from_str::<Json>(s.get()))
            {
                spec.retain(|k, _| HEALTH_SPEC.contains(&k.as_str()));
                o.insert("spec".into(), Json::Object(spec));
            }
            if let Some(Ok(status)) = self.status.map(|s| serde_json::from_str::<Json>(s.get())) {
                o.insert("status".into(), status);
            }
        }
        o.insert("apiVersion".into(), Json::String(api_version));
        o.insert("kind".into(), Json::String(kind));
        compact(Json::Object(o))
    }

    /// The whole object, parsed, with the resource's `apiVersion` and `kind`.
    pub fn full(&self, res: &Resource) -> Json {
        whole(self.raw, res)
    }
}

/// A raw item parsed in full, with the resource's `apiVersion` and `kind`
/// where it has none (LIST items of built-in kinds omit them). JSON that
/// does not parse is `null`.
pub fn whole(raw: &RawValue, res: &Resource) -> Json {
    let mut o: Json = serde_json::from_str(raw.get()).unwrap_or(Json::Null);
    if let Some(m) = o.as_object_mut() {
        m.entry("apiVersion")
            .or_insert_with(|| Json::String(res.api_version()));
        m.entry("kind")
            .or_insert_with(|| Json::String(res.kind.clone()));
    }
    o
}

/// Drop what planning never reads, so thousands of live objects take less
/// memory: the status of everything but workloads (whose health is read),
/// and the bookkeeping of managedFields entries.
pub fn slim(mut o: Json) -> Json {
    let workload = is_workload(o.get("kind").and_then(Json::as_str).unwrap_or_default());
    if let Some(m) = o.as_object_mut()
        && !workload
    {
        m.remove("status");
    }
    if let Some(entries) = o
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Json::as_array_mut)
    {
        for e in entries.iter_mut().filter_map(Json::as_object_mut) {
            e.remove("time");
            e.remove("fieldsType");
            e.remove("apiVersion");
        }
    }
    o
}

/// What is kept of an object the plan will find unchanged: its identity
/// and labels (ownership, the inventory), and for workloads
/// `metadata.generation`, `status` and [`HEALTH_SPEC`] (health).
pub fn headless(mut o: Json) -> Json {
    let workload = is_workload(o.get("kind").and_then(Json::as_str).unwrap_or_default());
    if let Some(m) = o.as_object_mut() {
        let spec = m.remove("spec").filter(|_| workload);
        m.retain(|k, _| {
            matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || (workload && k == "status")
        });
        if let Some(meta) = m.get_mut("metadata").and_then(Json::as_object_mut) {
            meta.retain(|k, _| kept_meta(k, workload));
        }
        if let Some(Json::Object(mut spec)) = spec {
            spec.retain(|k, _| HEALTH_SPEC.contains(&k.as_str()));
            m.insert("spec".into(), Json::Object(spec));
        }
    }
    compact(o)
}

/// Whether a cleared object keeps metadata field `key`: nothing reads its
/// annotations, uid, resourceVersion or timestamps (see [`headless`]).
fn kept_meta(key: &str, workload: bool) -> bool {
    matches!(key, "name" | "namespace" | "labels") || (workload && key == "generation")
}

/// `v` rebuilt with every map and list at its exact size. Maps parsed
/// from a LIST page grew by doubling and keep the room of the keys
/// [`headless`] removed; thousands of kept objects then hold that much
/// empty room each.
fn compact(v: Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(m.into_iter().map(|(k, v)| (k, compact(v))).collect()),
        Json::Array(a) => {
            let mut a: Vec<Json> = a.into_iter().map(compact).collect();
            a.shrink_to_fit();
            Json::Array(a)
        }
        other => other,
    }
}

/// The `spec` fields health judging reads (`apply::health`).
const HEALTH_SPEC: &[&str] = &[
    "replicas",
    "paused",
    "updateStrategy",
    "suspend",
    "completions",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployments() -> Resource {
        Resource {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
        }
    }

    #[test]
    fn a_listed_object_is_read_shallowly_and_shrunk_like_the_parsed_one() {
        // As a LIST item of a built-in kind: no apiVersion, no kind.
        let item = json!({"metadata": {"name": "web", "namespace": "n", "generation": 2,
                "labels": {"app": "web"}, "annotations": {APPLIED_HASH_ANNOTATION: "h1"},
                "managedFields": [
                    {"manager": "keelson", "operation": "Apply", "apiVersion": "apps/v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}},
                        "f:annotations": {"f:keelson.dev/applied-hash": {}}}, "f:spec": {"f:replicas": {}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                     "fieldsV1": {"f:status": {"f:replicas": {}}}}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": []}}},
            "status": {"replicas": 2}});
        let raw = serde_json::value::to_raw_value(&item).unwrap();
        let res = deployments();
        let l = Listed::parse(&raw).expect("an object");
        let id = l.id(&res);
        assert_eq!(id.to_string(), "Deployment/n/web");
        assert_eq!(id.api_version, "apps/v1");
        let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"},
                "annotations": {APPLIED_HASH_ANNOTATION: "h1"}}, "spec": {"replicas": 2}});
        let full = whole(&raw, &res);
        assert!(l.clears(&DesiredObject::new(&want), &[]));
        assert!(
            crate::plan::ownership::clears(&want, &full, &[]),
            "the same verdict"
        );
        let mut changed = want.clone();
        changed["spec"]["paused"] = json!(true);
        assert!(
            !l.clears(&DesiredObject::new(&changed), &[]),
            "keelson does not own spec.paused"
        );
        assert!(
            l.clears(
                &DesiredObject::new(&want),
                &["kube-controller-manager".into()]
            ),
            "status writes are left out"
        );
        assert_eq!(l.headless(&res), headless(full));
        // A manager name that is not a string: judged from the full parse.
        let odd = json!({"metadata": {"name": "x", "managedFields": [{"manager": 7}]}});
        assert!(Listed::parse(&serde_json::value::to_raw_value(&odd).unwrap()).is_none());
    }
}
