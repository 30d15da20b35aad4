//! What tests do with a running server besides HTTP: inspect and seed objects, read the request
//! log, inject faults, steer the stand-in controllers.

use serde_json::Value;

use crate::faults::{Faults, RequestRecord};
use crate::ops::{self, Ctx, Outcome};
use crate::server::{Gvr, TestServer};
use crate::status::ApiError;
use crate::store::Store;

impl TestServer {
    /// Fault injection hooks.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request served since start or the last [`TestServer::reset_requests`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log().clone()
    }

    /// Forget the request log.
    pub fn reset_requests(&self) {
        self.shared.log().clear();
    }

    /// Requests that could change state (not GET, not dry-run) since the last reset.
    pub fn write_count(&self) -> usize {
        self.shared.log().iter().filter(|r| r.is_write()).count()
    }

    /// The stored object, as a GET at `gvr`'s version would return it.
    pub fn get_object(&self, gvr: &Gvr, namespace: Option<&str>, name: &str) -> Option<Value> {
        let store = self.shared.store();
        let rt = store
            .registry
            .lookup(&gvr.group, &gvr.version, &gvr.resource)?
            .clone();
        let mut obj = store.get(&Store::key(&rt, namespace, name))?.clone();
        obj["apiVersion"] = Value::String(rt.api_version());
        Some(obj)
    }

    /// All stored objects of `gvr`, optionally in one namespace.
    pub fn list_objects(&self, gvr: &Gvr, namespace: Option<&str>) -> Vec<Value> {
        let store = self.shared.store();
        let Some(rt) = store
            .registry
            .lookup(&gvr.group, &gvr.version, &gvr.resource)
            .cloned()
        else {
            return Vec::new();
        };
        store
            .scan(&rt, namespace, None)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Number of stored objects of every kind.
    pub fn object_count(&self) -> usize {
        self.shared.store().objects.len()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }

    /// Create an object directly (no HTTP, not logged), as field manager `manager`.
    pub fn create_object(&self, gvr: &Gvr, manager: &str, obj: Value) -> Result<Value, ApiError> {
        let out = {
            let mut store = self.shared.store();
            let rt = store
                .registry
                .lookup(&gvr.group, &gvr.version, &gvr.resource)
                .cloned()
                .ok_or_else(ApiError::path_not_found)?;
            let ns = obj["metadata"]["namespace"].as_str().map(String::from);
            let ctx = Ctx {
                rt: &rt,
                ns: ns.as_deref(),
                dry_run: false,
                manager,
                now: crate::util::now_rfc3339(),
                strict: true,
                warn: false,
                warnings: Default::default(),
            };
            ops::create(&mut store, &ctx, obj)?
        };
        let Outcome {
            object, followups, ..
        } = out;
        for f in followups {
            self.shared.run_followup(&f);
        }
        Ok(object)
    }

    /// Server-side apply `obj` directly (no HTTP, not logged) as field manager `manager`, e.g. an
    /// HPA controller taking `spec.replicas`. Conflicts come back as the 409 `ApiError`.
    pub fn apply_object(
        &self,
        gvr: &Gvr,
        manager: &str,
        obj: Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        let out = {
            let mut store = self.shared.store();
            let rt = store
                .registry
                .lookup(&gvr.group, &gvr.version, &gvr.resource)
                .cloned()
                .ok_or_else(ApiError::path_not_found)?;
            let ns = obj["metadata"]["namespace"].as_str().map(String::from);
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ctx = Ctx {
                rt: &rt,
                ns: ns.as_deref(),
                dry_run: false,
                manager,
                now: crate::util::now_rfc3339(),
                strict: true,
                warn: false,
                warnings: Default::default(),
            };
            let schema = if rt.custom {
                store.crd_schema(&rt)
            } else {
                None
            };
            crate::ssa::schema::with_custom_schema(schema, || {
                ops::patch(
                    &mut store,
                    &ctx,
                    &name,
                    ops::PatchKind::Apply,
                    obj,
                    force,
                    "",
                )
            })?
        };
        for f in &out.followups {
            self.shared.run_followup(f);
        }
        Ok(out.object)
    }

    /// Delete an object directly (no HTTP, not logged); false if it did not exist.
    pub fn delete_object(&self, gvr: &Gvr, namespace: Option<&str>, name: &str) -> bool {
        let mut store = self.shared.store();
        let Some(rt) = store
            .registry
            .lookup(&gvr.group, &gvr.version, &gvr.resource)
            .cloned()
        else {
            return false;
        };
        let key = Store::key(&rt, namespace, name);
        if rt.resource == "namespaces" && !rt.custom {
            let existed = store.get(&key).is_some();
            ops::finalize_namespace(&mut store, name);
            return existed;
        }
        store.delete(&key).is_some()
    }

    /// Make a Deployment report (un)healthy status: no ready or available replicas, and
    /// `Available=False` / `Progressing=False (ProgressDeadlineExceeded)` conditions.
    pub fn set_deployment_healthy(&self, namespace: &str, name: &str, healthy: bool) {
        self.set_workload_healthy(
            &Gvr::new("apps", "v1", "deployments"),
            namespace,
            name,
            healthy,
        );
    }

    /// Like [`TestServer::set_deployment_healthy`] for `apps/v1` deployments, statefulsets and
    /// daemonsets: an unhealthy workload reports no ready or available pods.
    pub fn set_workload_healthy(&self, gvr: &Gvr, namespace: &str, name: &str, healthy: bool) {
        let mut store = self.shared.store();
        let key = (
            gvr.group.clone(),
            gvr.resource.clone(),
            namespace.to_string(),
            name.to_string(),
        );
        if healthy {
            store.unhealthy.remove(&key);
        } else {
            store.unhealthy.insert(key.clone());
        }
        crate::controllers::workload_status(&mut store, &key);
    }

    /// Establish every CRD now instead of after `crd_establish_delay`, so a test can first observe
    /// the not-yet-served state without racing a timer.
    pub fn establish_crds(&self) {
        let mut store = self.shared.store();
        let names: Vec<String> = store
            .objects
            .keys()
            .filter(|k| k.0 == "apiextensions.k8s.io" && k.1 == "customresourcedefinitions")
            .map(|k| k.3.clone())
            .collect();
        for name in names {
            crate::controllers::establish_crd(&mut store, &name);
        }
    }

    /// End every open watch (clients see the stream close and must re-watch), as when an API
    /// server restarts or a load balancer drops long connections.
    pub fn close_watches(&self) {
        self.shared.close_watches.send_modify(|n| *n += 1);
    }
}
