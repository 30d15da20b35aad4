//! The three v3 resources keelson manages, read into small typed views.
//!
//! Each view keeps the raw JSON too: updates send back what Rancher gave
//! (with keelson's fields changed), so fields keelson does not know survive.
//! URLs are always built from the configured base, never from `links`, so the
//! token cannot be sent to a host a response names.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{RancherClient, seg};
use super::desired::{
    CONTAINER_LIMIT_KEYS, DesiredMember, ENVIRONMENT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    QUOTA_KEYS,
};
use super::error::RancherError;

/// A project as Rancher holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveProject {
    /// `c-m-abc12:p-xyz34`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Owning cluster.
    pub cluster_id: String,
    /// Description.
    pub description: String,
    /// `initializing`, `active`, …
    pub state: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `resourceQuota.limit`, limit keys only.
    pub resource_quota: BTreeMap<String, String>,
    /// `namespaceDefaultResourceQuota.limit`, limit keys only.
    pub namespace_default_quota: BTreeMap<String, String>,
    /// `containerDefaultResourceLimit`, limit keys only.
    pub container_default_limits: BTreeMap<String, String>,
    /// `resourceQuota.usedLimit`: the sum of the quotas of the project's
    /// namespaces, as Rancher last computed it. Rancher's webhook refuses a
    /// `resourceQuota` below it.
    pub used_limit: BTreeMap<String, String>,
    /// The object as received.
    pub raw: Value,
}

/// A project role template binding as Rancher holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBinding {
    /// `p-xyz34:prtb-abcde`.
    pub id: String,
    /// `c-m-abc12:p-xyz34`.
    pub project_id: String,
    /// Role template id.
    pub role_template_id: String,
    /// Subject fields Rancher returned (`userId`, `userPrincipalId`, …).
    pub subjects: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A namespace as the cluster-scoped v3 API shows it.
///
/// Rancher keeps `projectId`, `resourceQuota` and
/// `containerDefaultResourceLimit` as the namespace annotations
/// `field.cattle.io/<field>` and shows them as fields (rancher/rancher
/// `pkg/schemas/cluster.cattle.io/v3/schema.go`, `AnnotationField`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveNamespace {
    /// Namespace name.
    pub name: String,
    /// `c-m-abc12:p-xyz34`, or `None` outside any project.
    pub project_id: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `resourceQuota.limit`: the namespace's own quota, which Rancher's
    /// quota controller turns into the namespace's `ResourceQuota`.
    pub resource_quota: BTreeMap<String, String>,
    /// `containerDefaultResourceLimit`: the namespace's container defaults
    /// (its `LimitRange`).
    pub container_default_limits: BTreeMap<String, String>,
    /// Why Rancher withholds the namespace's quota (its
    /// `ResourceQuotaValidated` condition is false), with Rancher's message.
    pub quota_withheld: Option<String>,
    /// The object as received.
    pub raw: Value,
}

fn string_map(v: Option<&Value>, keep: Option<&[&str]>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = v {
        for (k, val) in m {
            // Rancher adds `type` and similar keys to nested objects.
            if keep.is_some_and(|keys| !keys.contains(&k.as_str())) {
                continue;
            }
            match val {
                Value::String(s) if !s.is_empty() => {
                    out.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    out.insert(k.clone(), n.to_string());
                }
                _ => {}
            }
        }
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn decode(path: &str, detail: &str) -> RancherError {
    RancherError::Decode {
        method: "GET".into(),
        path: path.into(),
        detail: detail.into(),
    }
}

impl LiveProject {
    /// Reads a project object.
    pub fn from_value(v: Value) -> Result<Self, RancherError> {
        let id = text(&v, "id");
        if id.is_empty() {
            return Err(decode("/v3/projects", "a project without `id`"));
        }
        Ok(LiveProject {
            name: text(&v, "name"),
            cluster_id: text(&v, "clusterId"),
            description: text(&v, "description"),
            state: text(&v, "state"),
            labels: string_map(v.get("labels"), None),
            resource_quota: string_map(v.pointer("/resourceQuota/limit"), Some(QUOTA_KEYS)),
            namespace_default_quota: string_map(
                v.pointer("/namespaceDefaultResourceQuota/limit"),
                Some(QUOTA_KEYS),
            ),
            container_default_limits: string_map(
                v.get("containerDefaultResourceLimit"),
                Some(CONTAINER_LIMIT_KEYS),
            ),
            used_limit: string_map(v.pointer("/resourceQuota/usedLimit"), Some(QUOTA_KEYS)),
            id,
            raw: v,
        })
    }

    /// True when keelson created it for `environment`.
    pub fn owned_by(&self, environment: &str) -> bool {
        owned(&self.labels, environment)
    }
}

fn owned(labels: &BTreeMap<String, String>, environment: &str) -> bool {
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(ENVIRONMENT_LABEL).map(String::as_str) == Some(environment)
}

impl LiveBinding {
    /// Reads a binding object.
    pub fn from_value(v: &Value) -> Result<Self, RancherError> {
        let id = text(v, "id");
        if id.is_empty() {
            return Err(decode(
                "/v3/projectroletemplatebindings",
                "a binding without `id`",
            ));
        }
        Ok(LiveBinding {
            id,
            project_id: text(v, "projectId"),
            role_template_id: text(v, "roleTemplateId"),
            subjects: string_map(
                Some(v),
                Some(&["userId", "userPrincipalId", "groupId", "groupPrincipalId"]),
            ),
            labels: string_map(v.get("labels"), None),
        })
    }

    /// True when this binding grants `member` (same role, same subject field and id).
    pub fn grants(&self, member: &DesiredMember) -> bool {
        self.role_template_id == member.role
            && self
                .subjects
                .get(member.subject.field())
                .map(String::as_str)
                == Some(member.subject.id())
    }

    /// True when keelson created it for `environment`.
    pub fn owned_by(&self, environment: &str) -> bool {
        owned(&self.labels, environment)
    }

    /// `field=value` of the first subject, for summaries.
    pub fn subject_text(&self) -> String {
        for f in ["userPrincipalId", "groupPrincipalId", "userId", "groupId"] {
            if let Some(v) = self.subjects.get(f) {
                return format!("{f}={v}");
            }
        }
        "(no subject)".into()
    }
}

impl LiveNamespace {
    /// Reads a namespace object.
    pub fn from_value(v: Value) -> Self {
        let name = Some(text(&v, "name"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| text(&v, "id"));
        let project_id = v
            .get("projectId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        LiveNamespace {
            name,
            project_id,
            labels: string_map(v.get("labels"), None),
            resource_quota: string_map(v.pointer("/resourceQuota/limit"), Some(QUOTA_KEYS)),
            container_default_limits: string_map(
                v.get("containerDefaultResourceLimit"),
                Some(CONTAINER_LIMIT_KEYS),
            ),
            quota_withheld: withheld(&v),
            raw: v,
        }
    }
}

/// The message of a false `ResourceQuotaValidated` condition, which Rancher's
/// quota controller keeps in the `cattle.io/status` annotation
/// (rancher/rancher `pkg/controllers/managementuser/resourcequota/resource_quota_sync.go`).
fn withheld(v: &Value) -> Option<String> {
    let status = v.pointer("/annotations/cattle.io~1status")?.as_str()?;
    let status: Value = serde_json::from_str(status).ok()?;
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ResourceQuotaValidated" && c["status"] == "False")
        .map(|c| {
            c.get("message")
                .and_then(Value::as_str)
                .unwrap_or("Rancher did not validate the namespace quota")
                .to_string()
        })
}

impl RancherClient {
    /// Finds the project named `name` in `cluster_id`.
    pub async fn find_project(
        &self,
        cluster_id: &str,
        name: &str,
    ) -> Result<Option<LiveProject>, RancherError> {
        let found = self
            .list("/v3/projects", &[("clusterId", cluster_id), ("name", name)])
            .await?;
        // Filter again: a server that ignores a filter must not make keelson
        // act on the wrong project.
        let mut matches = Vec::new();
        for v in found {
            let p = LiveProject::from_value(v)?;
            if p.name == name && p.cluster_id == cluster_id {
                matches.push(p);
            }
        }
        if matches.len() > 1 {
            let ids: Vec<&str> = matches.iter().map(|p| p.id.as_str()).collect();
            return Err(RancherError::Config(format!(
                "cluster {cluster_id} has {} projects named {name:?} ({}); rename all but one in Rancher",
                matches.len(),
                ids.join(", ")
            )));
        }
        Ok(matches.pop())
    }

    /// Reads a project by id, `None` when it does not exist.
    pub async fn get_project(&self, id: &str) -> Result<Option<LiveProject>, RancherError> {
        match self.get_opt(&format!("/v3/projects/{}", seg(id))).await? {
            Some(v) => Ok(Some(LiveProject::from_value(v)?)),
            None => Ok(None),
        }
    }

    /// Creates a project (POST /v3/projects).
    pub async fn create_project(&self, body: &Value) -> Result<LiveProject, RancherError> {
        let v = self
            .request(Method::POST, "/v3/projects", &[], Some(body))
            .await?;
        LiveProject::from_value(v)
    }

    /// Replaces a project (PUT /v3/projects/{id}).
    pub async fn replace_project(
        &self,
        id: &str,
        body: &Value,
    ) -> Result<LiveProject, RancherError> {
        let path = format!("/v3/projects/{}", seg(id));
        let v = self.request(Method::PUT, &path, &[], Some(body)).await?;
        LiveProject::from_value(v)
    }

    /// Deletes a project.
    pub async fn delete_project(&self, id: &str) -> Result<(), RancherError> {
        let path = format!("/v3/projects/{}", seg(id));
        self.request(Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }

    /// Lists the role template bindings of a project.
    pub async fn list_bindings(&self, project_id: &str) -> Result<Vec<LiveBinding>, RancherError> {
        let all = self
            .list(
                "/v3/projectroletemplatebindings",
                &[("projectId", project_id)],
            )
            .await?;
        let mut out = Vec::new();
        for v in &all {
            let b = LiveBinding::from_value(v)?;
            if b.project_id == project_id {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Creates a binding.
    pub async fn create_binding(&self, body: &Value) -> Result<LiveBinding, RancherError> {
        let v = self
            .request(
                Method::POST,
                "/v3/projectroletemplatebindings",
                &[],
                Some(body),
            )
            .await?;
        LiveBinding::from_value(&v)
    }

    /// Deletes a binding.
    pub async fn delete_binding(&self, id: &str) -> Result<(), RancherError> {
        let path = format!("/v3/projectroletemplatebindings/{}", seg(id));
        self.request(Method::DELETE, &path, &[], None)
            .await
            .map(drop)
    }

    /// Reads a namespace through the cluster API, `None` when it does not exist.
    pub async fn get_namespace(
        &self,
        cluster_id: &str,
        name: &str,
    ) -> Result<Option<LiveNamespace>, RancherError> {
        let path = format!("/v3/clusters/{}/namespaces/{}", seg(cluster_id), seg(name));
        Ok(self.get_opt(&path).await?.map(LiveNamespace::from_value))
    }

    /// Lists the namespaces of a cluster.
    pub async fn list_namespaces(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<LiveNamespace>, RancherError> {
        let path = format!("/v3/clusters/{}/namespaces", seg(cluster_id));
        Ok(self
            .list(&path, &[])
            .await?
            .into_iter()
            .map(LiveNamespace::from_value)
            .collect())
    }

    /// Creates a namespace through the cluster API.
    pub async fn create_namespace(
        &self,
        cluster_id: &str,
        body: &Value,
    ) -> Result<LiveNamespace, RancherError> {
        let path = format!("/v3/clusters/{}/namespaces", seg(cluster_id));
        let v = self.request(Method::POST, &path, &[], Some(body)).await?;
        Ok(LiveNamespace::from_value(v))
    }

    /// Replaces a namespace through the cluster API.
    pub async fn update_namespace(
        &self,
        cluster_id: &str,
        name: &str,
        body: &Value,
    ) -> Result<LiveNamespace, RancherError> {
        let path = format!("/v3/clusters/{}/namespaces/{}", seg(cluster_id), seg(name));
        let v = self.request(Method::PUT, &path, &[], Some(body)).await?;
        Ok(LiveNamespace::from_value(v))
    }
}

/// A quota object as Rancher takes it, or `null` for none.
///
/// A norman PUT merges nested objects key by key (rancher/rancher
/// `pkg/norman/types/convert/merge/merge.go`), so a key that Rancher holds
/// (`live`) and the spec dropped is sent as `null`; left out, it would stay.
pub(crate) fn limit_object(
    want: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
    wrap: bool,
) -> Value {
    if want.is_empty() {
        return Value::Null;
    }
    let mut inner: serde_json::Map<String, Value> =
        want.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    for k in live.keys().filter(|k| !want.contains_key(*k)) {
        inner.insert(k.clone(), Value::Null);
    }
    if wrap {
        json!({ "limit": inner })
    } else {
        Value::Object(inner)
    }
}
