//! The object store: one ordered map under one lock, a global resourceVersion counter, and the
//! watch event history.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::registry::{Registry, ResourceType};

/// Store key: (group, resource, namespace or "", name). Objects are stored version-less.
pub type Key = (String, String, String, String);

/// A watch event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug)]
pub struct Event {
    /// resourceVersion after the change.
    pub rv: u64,
    /// Event type.
    pub kind: EventType,
    /// API group of the object.
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Namespace or "".
    pub namespace: String,
    /// The object after the change (before, for deletes, with the deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, for MODIFIED.
    pub old: Option<Arc<Value>>,
}

/// All server state behind the single lock.
pub struct Store {
    /// Objects by key.
    pub objects: BTreeMap<Key, Value>,
    /// Last issued resourceVersion.
    pub rv: u64,
    /// Served resource types.
    pub registry: Registry,
    /// Recent events for watches that resume from a resourceVersion.
    pub history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// Live event feed.
    pub events: broadcast::Sender<Arc<Event>>,
    /// Workloads a test marked unhealthy.
    pub unhealthy: HashSet<Key>,
    /// What the stand-in workload controllers remember (templates rolled out, steered rollouts).
    pub workloads: crate::controllers::Workloads,
    next_ip: u32,
    next_node_port: u32,
}

impl Store {
    /// An empty store with the `default`, `kube-system` and `kube-public` namespaces.
    pub fn new(history_cap: usize) -> Store {
        let (events, _) = broadcast::channel(65_536);
        let mut s = Store {
            objects: BTreeMap::new(),
            rv: 0,
            registry: Registry::default(),
            history: VecDeque::new(),
            history_cap,
            events,
            unhealthy: HashSet::new(),
            workloads: Default::default(),
            next_ip: 10,
            next_node_port: 0,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let now = crate::util::now_rfc3339();
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "uid": crate::util::new_uid(), "creationTimestamp": now,
                    "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            s.put(
                ("".into(), "namespaces".into(), String::new(), ns.into()),
                obj,
                EventType::Added,
            );
        }
        s
    }

    /// Key of an object of `rt`.
    pub fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> Key {
        (
            rt.group.clone(),
            rt.resource.clone(),
            if rt.namespaced {
                ns.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// Look an object up.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Store `obj` under `key` with a fresh resourceVersion and tell watchers; returns the stored object.
    pub fn put(&mut self, key: Key, mut obj: Value, kind: EventType) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let old = self.objects.insert(key.clone(), obj.clone());
        self.emit(key, kind, obj.clone(), old);
        obj
    }

    /// Remove an object and tell watchers; returns it with the deletion's resourceVersion.
    pub fn delete(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(key.clone(), EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    fn emit(&mut self, key: Key, kind: EventType, obj: Value, old: Option<Value>) {
        let ev = Arc::new(Event {
            rv: self.rv,
            kind,
            group: key.0,
            resource: key.1,
            namespace: key.2,
            object: Arc::new(obj),
            old: old.map(Arc::new),
        });
        if self.history.len() >= self.history_cap {
            self.history.pop_front();
        }
        self.history.push_back(ev.clone());
        let _ = self.events.send(ev);
    }

    /// Objects of one resource, optionally in one namespace, in key order, starting after `after`.
    pub fn scan<'a>(
        &'a self,
        rt: &ResourceType,
        ns: Option<&'a str>,
        after: Option<(String, String)>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let g = rt.group.clone();
        let r = rt.resource.clone();
        let start: Key = match after {
            Some((ans, aname)) => (g.clone(), r.clone(), ans, format!("{aname}\0")),
            None => (
                g.clone(),
                r.clone(),
                ns.unwrap_or_default().to_string(),
                String::new(),
            ),
        };
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.0 == g && k.1 == r && ns.is_none_or(|n| k.2 == n))
    }

    /// The `openAPIV3Schema` of a custom resource's version, from its CRD.
    pub fn crd_schema(&self, rt: &ResourceType) -> Option<Value> {
        let name = format!("{}.{}", rt.resource, rt.group);
        let key: Key = (
            "apiextensions.k8s.io".into(),
            "customresourcedefinitions".into(),
            String::new(),
            name,
        );
        let crd = self.objects.get(&key)?;
        crd["spec"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == rt.version.as_str())
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
            .filter(|s| s.is_object())
    }

    /// Hand out a cluster resource: a Service `clusterIP` or a `nodePort` (30000-32767).
    pub fn allocate(&mut self, what: &str) -> String {
        if what == "nodePort" {
            self.next_node_port += 1;
            return (30000 + self.next_node_port % 2768).to_string();
        }
        self.next_ip += 1;
        format!("10.96.{}.{}", self.next_ip / 250, self.next_ip % 250 + 1)
    }

    /// The oldest resourceVersion a watch can resume from.
    pub fn oldest_resumable(&self) -> u64 {
        self.history
            .front()
            .map(|e| e.rv.saturating_sub(1))
            .unwrap_or(self.rv)
    }
}
