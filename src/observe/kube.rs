//! [`Cluster`] over kube-rs: kubeconfig contexts or in-cluster config, TLS
//! verified as the kubeconfig says, discovery cached per kind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::{Cluster, ClusterError, Resource, builtin};
use crate::plan::FIELD_MANAGER;

/// The identity named in the User-Agent of every request, set once by
/// `keelson run` (its Lease identity) so that audit logs tell replicas apart.
static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Name this process `identity` in the User-Agent of every client made
/// after the call: `keelson/<version> (<identity>)`.
pub fn set_identity(identity: &str) {
    let _ = IDENTITY.set(identity.to_string());
}

/// The User-Agent keelson sends.
pub fn user_agent() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match IDENTITY.get() {
        Some(id) => format!("keelson/{version} ({id})"),
        None => format!("keelson/{version}"),
    }
}

/// Who named a connection's kubeconfig file and context, so that an error
/// about them points at the flag or the config line to fix.
#[derive(Debug, Clone, Default)]
pub struct Named {
    /// The keelson cluster connected to (an environment's `cluster:`, a key
    /// of the config's `clusters:`).
    pub cluster: Option<String>,
    /// Where the kubeconfig path was named, said after "from":
    /// `--kubeconfig`, `the config, keelson.yaml:4:17`.
    pub kubeconfig: Option<String>,
    /// Where the context was named.
    pub context: ContextBy,
}

/// Where a connection's context was named.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ContextBy {
    /// Not said (the error names only the context).
    #[default]
    Unsaid,
    /// `--context NAME`.
    Flag,
    /// `context:` under `clusters.<cluster>` of the config, at `file:line:col`.
    Config(Option<String>),
    /// Nothing: the cluster's name is taken as the context's.
    ClusterName,
}

impl Named {
    /// Cluster `name` as the keelson config's `clusters.<name>` sets it.
    pub fn config(name: &str, cc: &crate::config::ClusterConfig) -> Named {
        Named {
            cluster: Some(name.to_string()),
            kubeconfig: cc.kubeconfig.as_ref().map(|_| match &cc.at.kubeconfig {
                Some(at) => format!("the config, {at}"),
                None => "the config".to_string(),
            }),
            context: match &cc.context {
                Some(_) => ContextBy::Config(cc.at.context.clone()),
                None => ContextBy::ClusterName,
            },
        }
    }
}

/// A live cluster.
pub struct KubeCluster {
    client: kube::Client,
    cache: Mutex<HashMap<(String, String), Resource>>,
    /// Page size for LISTs.
    pub page_size: u32,
}

impl KubeCluster {
    /// Connect with a kubeconfig (`path`, else KUBECONFIG / ~/.kube/config)
    /// and `context` (else the current one), or in-cluster.
    pub async fn connect(
        path: Option<&Path>,
        context: Option<&str>,
        in_cluster: bool,
    ) -> Result<Self, ClusterError> {
        Self::connect_named(path, context, in_cluster, &Named::default()).await
    }

    /// Connect to cluster `name` as the config's `clusters.<name>` says: its
    /// kubeconfig and context (the context named `name` when it sets none),
    /// or in-cluster.
    pub async fn connect_configured(
        name: &str,
        cc: &crate::config::ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let context = cc.context.as_deref().unwrap_or(name);
        let named = Named::config(name, cc);
        Self::connect_named(
            cc.kubeconfig.as_deref(),
            Some(context),
            cc.in_cluster,
            &named,
        )
        .await
    }

    /// [`KubeCluster::connect`], with errors that say who named the
    /// kubeconfig and the context (`named`).
    pub async fn connect_named(
        path: Option<&Path>,
        context: Option<&str>,
        in_cluster: bool,
        named: &Named,
    ) -> Result<Self, ClusterError> {
        let config = if in_cluster {
            kube::Config::incluster()
                .map_err(|e| ClusterError::Config(format!("in-cluster config: {e}")))?
        } else {
            let options = KubeConfigOptions {
                context: context.map(str::to_string),
                ..KubeConfigOptions::default()
            };
            let (files, from) = kubeconfig_files(path, named.kubeconfig.as_deref());
            if !files.iter().any(|f| f.is_file()) {
                return Err(ClusterError::Config(missing_kubeconfig(
                    &files,
                    &from,
                    path.is_some(),
                )));
            }
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            let kc = match path {
                Some(p) => Kubeconfig::read_from(p),
                None => Kubeconfig::read(),
            }
            .map_err(|e| ClusterError::Config(format!("kubeconfig {}: {e}", names.join(", "))))?;
            if let Some(c) = context
                && !kc.contexts.iter().any(|n| n.name == c)
            {
                let known: Vec<&str> = kc.contexts.iter().map(|n| n.name.as_str()).collect();
                return Err(ClusterError::Config(missing_context(
                    &names, &from, c, &known, named,
                )));
            }
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| {
                    ClusterError::Config(format!(
                        "kubeconfig {}{}: {e}",
                        names.join(", "),
                        context
                            .map(|c| format!(", context `{c}`"))
                            .unwrap_or_default()
                    ))
                })?
        };
        // kube's own retry layer honours Retry-After up to 1000 s and knows
        // nothing of --timeout; keelson retries in `apply::with_retries`,
        // with every wait capped.
        let mut config = config;
        config.default_retry = false;
        if let Ok(agent) = axum::http::HeaderValue::from_str(&user_agent()) {
            config.headers.push((axum::http::header::USER_AGENT, agent));
        }
        let client = kube::Client::try_from(config)
            .map_err(|e| ClusterError::Config(format!("kube client: {e}")))?;
        Ok(KubeCluster {
            client,
            cache: Mutex::new(HashMap::new()),
            page_size: 500,
        })
    }

    /// The kube-rs client (for typed APIs such as Leases).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    fn api(&self, res: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = api_resource(res);
        match namespace {
            Some(ns) if res.namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        }
    }
}

/// The kubeconfig files kube-rs reads, and where that list came from:
/// `path` (named by `named_by`: `--kubeconfig`, `the config, FILE:L:C`),
/// else every file in `KUBECONFIG`, else `~/.kube/config`.
pub fn kubeconfig_files(path: Option<&Path>, named_by: Option<&str>) -> (Vec<PathBuf>, String) {
    if let Some(p) = path {
        let from = named_by.map_or("given".to_string(), |n| format!("from {n}"));
        return (vec![p.to_path_buf()], from);
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return (
            std::env::split_paths(&list).collect(),
            "from KUBECONFIG".into(),
        );
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    (
        vec![home.join(".kube").join("config")],
        "the default".into(),
    )
}

/// The error for kubeconfig files that do not exist. A file named on
/// purpose (`named`: by --kubeconfig or the config) is said to be missing;
/// for the default ones, every way on is listed.
pub fn missing_kubeconfig(files: &[PathBuf], from: &str, named: bool) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if named {
        return format!(
            "no kubeconfig: {} ({from}) does not exist; name an existing kubeconfig file",
            names.join(", ")
        );
    }
    format!(
        "no kubeconfig: {} ({from}) does not exist. Pass --kubeconfig FILE or set KUBECONFIG, \
         or map cluster names to kubeconfigs in a keelson config (-c/--config FILE)",
        names.join(", ")
    )
}

/// The error for a context the kubeconfig lacks, pointing at whoever named
/// it (`named`).
fn missing_context(names: &[String], from: &str, c: &str, known: &[&str], named: &Named) -> String {
    let head = format!(
        "kubeconfig {} ({from}) has no context `{c}` (it has: {})",
        names.join(", "),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    );
    let cluster = named.cluster.as_deref().unwrap_or(c);
    match &named.context {
        ContextBy::Unsaid => head,
        ContextBy::Flag => format!("{head}, named by --context: pass one it has"),
        ContextBy::Config(at) => format!(
            "{head}, named by `context: {c}` under clusters.{cluster} ({}): fix it there, \
             or add a context `{c}` to the kubeconfig",
            at.as_deref().unwrap_or("in the config")
        ),
        ContextBy::ClusterName => format!(
            "{head}: cluster `{cluster}` names no context, so its name is taken for one. Name \
             the context in a keelson config (`context:` under clusters.{cluster}, -c/--config \
             FILE), add a context `{c}` to the kubeconfig, or use --context NAME for every \
             environment"
        ),
    }
}

fn api_resource(res: &Resource) -> ApiResource {
    ApiResource {
        group: res.group.clone(),
        version: res.version.clone(),
        api_version: res.api_version(),
        kind: res.kind.clone(),
        plural: res.plural.clone(),
    }
}

fn what(res: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", res.kind),
        None => format!("{} {name}", res.kind),
    }
}

fn map_err(verb: &str, what: String, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) => ClusterError::Api {
            verb: verb.into(),
            what,
            code: s.code,
            reason: s.reason.clone(),
            message: match super::explain::status_hint(s.code) {
                Some(hint) => format!("{}; {hint}", s.message),
                None => s.message.clone(),
            },
            retry_after: s
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0),
            immutable: {
                let causes = s.details.as_ref().map(|d| &d.causes[..]).unwrap_or(&[]);
                let all = if causes.is_empty() {
                    super::immutable_cause(&s.message)
                } else {
                    causes.iter().all(|c| super::immutable_cause(&c.message))
                };
                (s.code == 422 && all).then(|| {
                    Box::new(
                        causes
                            .iter()
                            .map(|c| c.field.clone())
                            .filter(|f| !f.is_empty())
                            .collect(),
                    )
                })
            },
        },
        other => {
            let unreachable = cannot_connect(&other);
            let message = super::explain::transport(&other);
            ClusterError::Transport {
                verb: verb.into(),
                what,
                message: if unreachable {
                    format!("the API server cannot be reached: {message}")
                } else {
                    message
                },
                unreachable,
            }
        }
    }
}

/// Whether an error is a failure to connect at all (refused, no route,
/// unknown host, connect timeout), found anywhere in its chain of causes.
fn cannot_connect(e: &kube::Error) -> bool {
    use std::io::ErrorKind;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        // hyper-util's connector says "client error (Connect)" for every
        // failure to open a connection, DNS and timeouts included.
        if c.to_string().contains("client error (Connect)") {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A LIST page: its items left raw.
#[derive(serde::Deserialize)]
struct Page<'a> {
    metadata: Option<PageMeta>,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

/// A LIST page's `metadata`: the token of the next page.
#[derive(serde::Deserialize)]
struct PageMeta {
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

fn to_json(o: DynamicObject) -> Json {
    serde_json::to_value(o).unwrap_or(Json::Null)
}

impl Cluster for KubeCluster {
    async fn resource(&self, api_version: &str, kind: &str) -> Result<Resource, ClusterError> {
        if let Some(r) = builtin(api_version, kind) {
            return Ok(r);
        }
        let key = (api_version.to_string(), kind.to_string());
        if let Some(r) = self.cache.lock().expect("lock").get(&key) {
            return Ok(r.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| match e {
                // Only an answer from the server says the kind is not there;
                // a connection that failed says nothing about it.
                kube::Error::Api(s) if s.code != 404 => map_err(
                    "discover",
                    format!("{kind} ({api_version})"),
                    kube::Error::Api(s),
                ),
                kube::Error::Api(_) | kube::Error::Discovery(_) => ClusterError::UnknownKind(
                    format!("{kind} ({api_version}) is not served by the cluster: {e}"),
                ),
                other => map_err("discover", format!("{kind} ({api_version})"), other),
            })?;
        let r = Resource {
            group: ar.group,
            version: ar.version,
            kind: ar.kind,
            plural: ar.plural,
            namespaced: matches!(caps.scope, Scope::Namespaced),
        };
        self.cache.lock().expect("lock").insert(key, r.clone());
        Ok(r)
    }

    async fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Json>, ClusterError> {
        let mut out = Vec::new();
        self.list_each(res, namespace, selector, &mut |raw| {
            out.push(super::listed::whole(raw, res))
        })
        .await?;
        Ok(out)
    }

    async fn list_each(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        selector: &str,
        each: &mut (dyn FnMut(&RawValue) + Send),
    ) -> Result<(), ClusterError> {
        // Raw JSON pages: the page is split into its items unparsed, and
        // each is handed on as raw JSON for the caller to parse as far as it
        // needs; each page is handed on before the next is read.
        let ar = api_resource(res);
        let ns = namespace.filter(|_| res.namespaced);
        let url = <DynamicObject as kube::Resource>::url_path(&ar, ns);
        let mut params = ListParams::default().labels(selector).limit(self.page_size);
        loop {
            let req = kube::core::Request::new(&url).list(&params).map_err(|e| {
                ClusterError::Transport {
                    verb: "list".into(),
                    what: what(res, namespace, "*"),
                    message: e.to_string(),
                    unreachable: false,
                }
            })?;
            let text = self
                .client
                .request_text(req)
                .await
                .map_err(|e| map_err("list", what(res, namespace, "*"), e))?;
            let page: Page<'_> = serde_json::from_str(&text).map_err(|e| {
                map_err(
                    "list",
                    what(res, namespace, "*"),
                    kube::Error::SerdeError(e),
                )
            })?;
            let next = page
                .metadata
                .and_then(|m| m.continue_token)
                .filter(|c| !c.is_empty());
            for item in page.items.unwrap_or_default() {
                each(item);
            }
            match next {
                Some(c) => params = params.continue_token(&c),
                None => return Ok(()),
            }
        }
    }

    async fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Json>, ClusterError> {
        self.api(res, namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(to_json))
            .map_err(|e| map_err("get", what(res, namespace, name), e))
    }

    async fn apply(&self, res: &Resource, obj: &Json, dry_run: bool) -> Result<Json, ClusterError> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let namespace = obj.pointer("/metadata/namespace").and_then(Json::as_str);
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        if dry_run {
            params = params.dry_run();
        }
        self.api(res, namespace)
            .patch(name, &params, &Patch::Apply(obj))
            .await
            .map(to_json)
            .map_err(|e| map_err("apply", what(res, namespace, name), e))
    }

    async fn merge_patch(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Json,
    ) -> Result<Json, ClusterError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.api(res, namespace)
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .map(to_json)
            .map_err(|e| map_err("patch", what(res, namespace, name), e))
    }

    async fn delete(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ClusterError> {
        let mut params = DeleteParams::background();
        if dry_run {
            params = params.dry_run();
        }
        match self.api(res, namespace).delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(map_err("delete", what(res, namespace, name), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A 422 as kube-apiserver sends it, with `causes` (field, message).
    fn invalid(causes: &[(&str, &str)]) -> ClusterError {
        let status: kube::core::Status = serde_json::from_value(json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
            "reason": "Invalid", "message": "Job.batch \"migrate\" is invalid: …",
            "details": {"name": "migrate", "group": "batch", "kind": "Job",
                "causes": causes.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "field": f, "message": m})).collect::<Vec<_>>()}
        }))
        .unwrap();
        map_err(
            "apply",
            "Job shop/migrate".into(),
            kube::Error::Api(status.into()),
        )
    }

    #[test]
    fn a_422_is_immutable_only_when_every_cause_is_a_field_fixed_once_set() {
        let e = invalid(&[(
            "spec.template",
            "Invalid value: {\"spec\":{}}: field is immutable",
        )]);
        assert_eq!(
            e.immutable_fields(),
            Some(&["spec.template".to_string()][..])
        );
        let sts = invalid(&[(
            "spec",
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )]);
        assert!(sts.is_immutable());
        assert!(
            invalid(&[(
                "spec.clusterIPs[0]",
                "Invalid value: []string{\"None\"}: may not change once set"
            )])
            .is_immutable()
        );
        assert!(
            invalid(&[(
                "data",
                "Forbidden: field is immutable when `immutable` is set"
            )])
            .is_immutable()
        );
        // One cause that a new object would meet too: not a replacement.
        let mixed = invalid(&[
            ("spec.selector", "Invalid value: {}: field is immutable"),
            ("spec.template.spec.containers[0].image", "Required value"),
        ]);
        assert!(!mixed.is_immutable());
        assert!(
            !invalid(&[(
                "spec.resources.requests.storage",
                "Forbidden: field can not be less than previous value"
            )])
            .is_immutable()
        );
    }
}
