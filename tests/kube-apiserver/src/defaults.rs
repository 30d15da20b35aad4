//! Defaulting: the values the real API server fills in when a built-in object is decoded, and
//! the defaults of a custom resource's structural schema.
//!
//! Sources (kubernetes/kubernetes): pkg/apis/core/v1/defaults.go, pkg/apis/apps/v1/defaults.go,
//! pkg/apis/batch/v1/defaults.go, pkg/apis/networking/v1/defaults.go,
//! pkg/apis/autoscaling/v2/defaults.go, the declarative `+default=` tags of k8s.io/api (container
//! and Service port `protocol`), and apiextensions-apiserver's structural defaulting.
//! Defaulting treats an absent field and a zero `omitempty` scalar alike, so it runs after
//! [`crate::stored::drop_unset_scalars`].
//!
//! What the registry sets later (Service IPs and node ports, a Job's generated selector) is in
//! [`allocate`] and [`job_selector`]: it happens after field management, so no manager owns it.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(v);
    }
}

/// The value at a path, without creating anything on the way (IndexMut would insert nulls).
fn at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(*k))
}

fn each_item(v: Option<&mut Value>, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.and_then(Value::as_array_mut) {
        items.iter_mut().filter(|i| i.is_object()).for_each(&mut f);
    }
}

/// `parsers.ParseImageName`: the tag, `latest` when there is neither tag nor digest.
fn image_tag(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None if digest => "",
        None => "latest",
    }
}

/// SetDefaults_Container (and the `+default="TCP"` of ContainerPort.protocol).
fn default_container(c: &mut Value) {
    let policy = if image_tag(c["image"].as_str().unwrap_or_default()) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    each_item(c.get_mut("ports"), |p| {
        set_default(p, "protocol", json!("TCP"))
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            // SetDefaults_Probe
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
        }
    }
}

/// Defaults that apply wherever their struct appears inside a pod spec: SetDefaults_HTTPGetAction,
/// SetDefaults_ObjectFieldSelector, and ResourceFieldSelector's value-typed `divisor` (written
/// as `"0"` when unset).
fn default_nested(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match k.as_str() {
                    "httpGet" if child.is_object() => {
                        set_default(child, "path", json!("/"));
                        set_default(child, "scheme", json!("HTTP"));
                    }
                    "fieldRef" if child.is_object() => {
                        set_default(child, "apiVersion", json!("v1"))
                    }
                    "resourceFieldRef" if child.is_object() => {
                        set_default(child, "divisor", json!("0"))
                    }
                    _ => {}
                }
                default_nested(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_nested),
        _ => {}
    }
}

/// Volume sources (one of them must be set; none means `emptyDir: {}`).
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// SetDefaults_Volume and the volume sources' `defaultMode` (0644 = 420).
fn default_volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else { return };
    if !VOLUME_SOURCES.iter().any(|s| m.contains_key(*s)) {
        m.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = m.get_mut(src).filter(|s| s.is_object()) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = m.get_mut("hostPath").filter(|s| s.is_object()) {
        set_default(h, "type", json!(""));
    }
    each_item(at(v, &["projected", "sources"]), |s| {
        if let Some(t) = s.get_mut("serviceAccountToken").filter(|t| t.is_object()) {
            set_default(t, "expirationSeconds", json!(3600));
        }
    });
}

/// SetDefaults_PodSpec plus the defaults of everything inside a pod spec.
pub fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.filter(|s| s.is_object()) else {
        return;
    };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_item(spec.get_mut(list), default_container);
    }
    each_item(spec.get_mut("volumes"), default_volume);
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    // The v1 conversion keeps the deprecated `serviceAccount` equal to `serviceAccountName`.
    if let Some(sa) = spec.get("serviceAccountName").cloned() {
        set_default(spec, "serviceAccount", sa);
    }
    default_nested(spec);
}

/// A pod template at `path` (its `spec`).
fn default_template(obj: &mut Value, path: &[&str]) {
    let mut p = path.to_vec();
    p.push("spec");
    default_pod_spec(at(obj, &p));
}

fn default_service(spec: &mut Value) {
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if spec["sessionAffinity"] == "ClientIP" {
        set_default(spec, "sessionAffinityConfig", json!({}));
        if let Some(c) = spec.get_mut("sessionAffinityConfig") {
            set_default(c, "clientIP", json!({}));
            if let Some(ip) = c.get_mut("clientIP") {
                set_default(ip, "timeoutSeconds", json!(10800));
            }
        }
    } else if let Some(m) = spec.as_object_mut() {
        m.remove("sessionAffinityConfig");
    }
    let ty = spec["type"].as_str().unwrap_or_default().to_string();
    each_item(spec.get_mut("ports"), |p| {
        set_default(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        if p.get("targetPort")
            .is_none_or(|t| *t == json!(0) || *t == json!(""))
        {
            p["targetPort"] = port;
        }
    });
    // service.ExternallyAccessible: NodePort, LoadBalancer, or ClusterIP with external IPs.
    let external = matches!(ty.as_str(), "NodePort" | "LoadBalancer")
        || (ty == "ClusterIP"
            && spec["externalIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty()));
    if external {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

/// The HPA scaling rules' defaults (pkg/apis/autoscaling/v2/defaults.go GenerateHPAScale*Rules).
fn default_scaling_rules(behavior: &mut Value, which: &str) {
    let (window, policies) = if which == "scaleUp" {
        (
            0,
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        )
    } else {
        (
            300,
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        )
    };
    set_default(behavior, which, json!({}));
    if let Some(r) = behavior.get_mut(which).filter(|r| r.is_object()) {
        set_default(r, "stabilizationWindowSeconds", json!(window));
        set_default(r, "selectPolicy", json!("Max"));
        set_default(r, "policies", policies);
    }
}

/// SetDefaults_LimitRangeItem: for `Container` limits, `default` from `max`, `defaultRequest`
/// from `default`, then from `min`.
fn default_limit_range_item(item: &mut Value) {
    if item["type"] != "Container" {
        return;
    }
    let fill = |item: &mut Value, to: &str, from: &str| {
        let src = item[from].as_object().cloned().unwrap_or_default();
        set_default(item, to, json!({}));
        if let Some(dst) = item.get_mut(to).and_then(Value::as_object_mut) {
            for (k, v) in src {
                dst.entry(k).or_insert(v);
            }
        }
    };
    fill(item, "default", "max");
    fill(item, "defaultRequest", "default");
    fill(item, "defaultRequest", "min");
}

/// Fill in the defaults the real API server sets, so clients see (and must tolerate) them.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        if let Some(schema) = crate::ssa::schema::custom_schema() {
            structural_defaults(obj, &schema);
        }
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            // Each default on its own: an apply that drops `strategy.type` gets it back.
            set_default(spec, "strategy", json!({}));
            if let Some(strategy) = spec.get_mut("strategy").filter(|s| s.is_object()) {
                set_default(strategy, "type", json!("RollingUpdate"));
                if strategy["type"] == "RollingUpdate" {
                    set_default(strategy, "rollingUpdate", json!({}));
                    if let Some(ru) = strategy.get_mut("rollingUpdate") {
                        set_default(ru, "maxSurge", json!("25%"));
                        set_default(ru, "maxUnavailable", json!("25%"));
                    }
                }
            }
            default_template(obj, &["spec", "template"]);
        }
        ("apps", "StatefulSet") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            if spec["updateStrategy"]["type"].is_null() {
                set_default(spec, "updateStrategy", json!({}));
                spec["updateStrategy"]["type"] = json!("RollingUpdate");
                set_default(&mut spec["updateStrategy"], "rollingUpdate", json!({}));
            }
            if spec["updateStrategy"]["type"] == "RollingUpdate"
                && let Some(ru) = at(spec, &["updateStrategy", "rollingUpdate"])
            {
                set_default(ru, "partition", json!(0));
            }
            set_default(spec, "persistentVolumeClaimRetentionPolicy", json!({}));
            if let Some(p) = spec.get_mut("persistentVolumeClaimRetentionPolicy") {
                set_default(p, "whenDeleted", json!("Retain"));
                set_default(p, "whenScaled", json!("Retain"));
            }
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            each_item(spec.get_mut("volumeClaimTemplates"), |t| {
                set_default(t, "apiVersion", json!("v1"));
                set_default(t, "kind", json!("PersistentVolumeClaim"));
                if let Some(s) = t.get_mut("spec").filter(|s| s.is_object()) {
                    set_default(s, "volumeMode", json!("Filesystem"));
                }
                set_default(t, "status", json!({}));
                set_default(&mut t["status"], "phase", json!("Pending"));
            });
            default_template(obj, &["spec", "template"]);
        }
        ("apps", "DaemonSet") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "updateStrategy", json!({}));
            if let Some(us) = spec.get_mut("updateStrategy").filter(|s| s.is_object()) {
                set_default(us, "type", json!("RollingUpdate"));
                if us["type"] == "RollingUpdate" {
                    set_default(us, "rollingUpdate", json!({}));
                    if let Some(ru) = us.get_mut("rollingUpdate") {
                        set_default(ru, "maxUnavailable", json!(1));
                        set_default(ru, "maxSurge", json!(0));
                    }
                }
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            default_template(obj, &["spec", "template"]);
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "replicas", json!(1));
            }
            default_template(obj, &["spec", "template"]);
        }
        ("", "ReplicationController") => {
            let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "replicas", json!(1));
                if labels.is_object() && spec["selector"].as_object().is_none_or(Map::is_empty) {
                    spec["selector"] = labels.clone();
                }
            }
            if labels.is_object()
                && obj["metadata"]["labels"]
                    .as_object()
                    .is_none_or(Map::is_empty)
            {
                obj["metadata"]["labels"] = labels;
            }
            default_template(obj, &["spec", "template"]);
        }
        ("batch", "Job") => {
            let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
                spec["completions"] = json!(1);
            }
            set_default(spec, "parallelism", json!(1));
            let backoff = if spec.get("backoffLimitPerIndex").is_some() {
                i32::MAX
            } else {
                6
            };
            set_default(spec, "backoffLimit", json!(backoff));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            let replacement = if spec.get("podFailurePolicy").is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            };
            set_default(spec, "podReplacementPolicy", json!(replacement));
            if labels.as_object().is_some_and(|l| !l.is_empty())
                && obj["metadata"]["labels"]
                    .as_object()
                    .is_none_or(Map::is_empty)
            {
                obj["metadata"]["labels"] = labels;
            }
            default_template(obj, &["spec", "template"]);
        }
        ("batch", "CronJob") => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
            }
            default_template(obj, &["spec", "jobTemplate", "spec", "template"]);
        }
        ("", "Pod") => {
            default_pod_spec(obj.get_mut("spec"));
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "enableServiceLinks", json!(true));
                // SetDefaults_Pod: requests default to limits (pods only, not templates).
                for list in ["containers", "initContainers"] {
                    each_item(spec.get_mut(list), |c| {
                        let Some(limits) = c["resources"]["limits"].as_object().cloned() else {
                            return;
                        };
                        set_default(&mut c["resources"], "requests", json!({}));
                        if let Some(r) = c["resources"]["requests"].as_object_mut() {
                            for (k, v) in limits {
                                r.entry(k).or_insert(v);
                            }
                        }
                    });
                }
            }
        }
        ("", "PodTemplate") => default_template(obj, &["template"]),
        ("", "Service") => {
            let spec = &mut obj["spec"];
            if !spec.is_object() {
                *spec = json!({});
            }
            default_service(spec);
        }
        ("", "Endpoints") => each_item(obj.get_mut("subsets"), |s| {
            each_item(s.get_mut("ports"), |p| {
                set_default(p, "protocol", json!("TCP"))
            });
        }),
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            set_default(obj, "status", json!({}));
            set_default(&mut obj["status"], "phase", json!("Pending"));
        }
        ("", "PersistentVolume") => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            set_default(obj, "status", json!({}));
            set_default(&mut obj["status"], "phase", json!("Pending"));
        }
        ("", "LimitRange") => each_item(at(obj, &["spec", "limits"]), default_limit_range_item),
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            if let Some(meta) = obj["metadata"].as_object_mut()
                && name.as_str().is_some_and(|n| !n.is_empty())
            {
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                labels["kubernetes.io/metadata.name"] = name;
            }
            // Active on create (a create drops the client's status); an update
            // keeps the stored status (carry_system_fields), Terminating included.
            set_default(obj, "status", json!({}));
            set_default(&mut obj["status"], "phase", json!("Active"));
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            // stringData is write-only: the server folds it into data, base64-encoded.
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                if !obj["data"].is_object() {
                    obj["data"] = json!({});
                }
                for (k, v) in sd {
                    let text = v.as_str().unwrap_or_default().to_string();
                    obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            for dir in ["ingress", "egress"] {
                each_item(spec.get_mut(dir), |rule| {
                    each_item(rule.get_mut("ports"), |p| {
                        set_default(p, "protocol", json!("TCP"))
                    });
                });
            }
            if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
                let mut types = vec![json!("Ingress")];
                if spec["egress"].as_array().is_some_and(|e| !e.is_empty()) {
                    types.push(json!("Egress"));
                }
                spec["policyTypes"] = Value::Array(types);
            }
        }
        ("networking.k8s.io", "IngressClass") => {
            if let Some(p) = at(obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
                set_default(p, "scope", json!("Cluster"));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "minReplicas", json!(1));
            if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
                spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}]);
            }
            if let Some(b) = spec.get_mut("behavior").filter(|b| b.is_object()) {
                default_scaling_rules(b, "scaleUp");
                default_scaling_rules(b, "scaleDown");
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
                return;
            };
            set_default(spec, "conversion", json!({"strategy": "None"}));
            let kind = spec["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(names) = spec.get_mut("names").filter(|n| n.is_object())
                && !kind.is_empty()
            {
                set_default(names, "singular", json!(kind.to_lowercase()));
                set_default(names, "listKind", json!(format!("{kind}List")));
            }
        }
        ("admissionregistration.k8s.io", kind) => default_admission(kind, obj),
        _ => {}
    }
}

/// pkg/apis/admissionregistration/v1/defaults.go: each webhook's failurePolicy, matchPolicy,
/// selectors, timeout (and reinvocationPolicy for mutating ones), rule scope and service port;
/// a ValidatingAdmissionPolicy's failurePolicy and match resources.
fn default_admission(kind: &str, obj: &mut Value) {
    let match_resources = |m: &mut Value| {
        set_default(m, "namespaceSelector", json!({}));
        set_default(m, "objectSelector", json!({}));
        set_default(m, "matchPolicy", json!("Equivalent"));
        each_item(m.get_mut("resourceRules"), |r| {
            set_default(r, "scope", json!("*"))
        });
    };
    match kind {
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
            each_item(obj.get_mut("webhooks"), |w| {
                set_default(w, "failurePolicy", json!("Fail"));
                set_default(w, "matchPolicy", json!("Equivalent"));
                set_default(w, "namespaceSelector", json!({}));
                set_default(w, "objectSelector", json!({}));
                set_default(w, "timeoutSeconds", json!(10));
                if kind == "MutatingWebhookConfiguration" {
                    set_default(w, "reinvocationPolicy", json!("Never"));
                }
                each_item(w.get_mut("rules"), |r| set_default(r, "scope", json!("*")));
                if let Some(svc) = at(w, &["clientConfig", "service"]).filter(|s| s.is_object()) {
                    set_default(svc, "port", json!(443));
                }
            });
        }
        "ValidatingAdmissionPolicy" => {
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                set_default(spec, "failurePolicy", json!("Fail"));
                if let Some(m) = spec.get_mut("matchConstraints").filter(|m| m.is_object()) {
                    match_resources(m);
                }
            }
        }
        "ValidatingAdmissionPolicyBinding" => {
            if let Some(m) = at(obj, &["spec", "matchResources"]).filter(|m| m.is_object()) {
                match_resources(m);
            }
        }
        _ => {}
    }
}

/// Apply the `default`s of a structural schema to a custom resource (apiextensions-apiserver
/// `structuraldefaulting.Default`): a missing property, or a null one that is not `nullable`,
/// gets its default; then its own properties are defaulted.
pub fn structural_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    let Some(d) = s.get("default") else { continue };
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => s["nullable"] != true,
                        Some(_) => false,
                    };
                    if missing {
                        m.insert(k.clone(), d.clone());
                    }
                }
                for (k, child) in m.iter_mut() {
                    if k == "metadata" || k == "apiVersion" || k == "kind" {
                        continue;
                    }
                    if let Some(s) = props.get(k) {
                        structural_defaults(child, s);
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for child in m.values_mut() {
                    structural_defaults(child, &schema["additionalProperties"]);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                structural_defaults(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

/// What the Service registry allocates after field management (so no field manager owns it):
/// `clusterIP`/`clusterIPs`, `ipFamilies`, `ipFamilyPolicy`, and node ports. On an update the
/// values already allocated are kept (`PatchAllocatedValues`).
pub fn allocate(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    alloc: &mut dyn FnMut(&str) -> String,
) {
    if rt.custom || !rt.group.is_empty() || rt.kind != "Service" {
        return;
    }
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    let old_spec = old.map(|o| &o["spec"]);
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty == "ExternalName" {
        return;
    }
    let old_ip = old_spec
        .and_then(|s| s.get("clusterIP"))
        .filter(|ip| ip.is_string());
    if spec.get("clusterIP").is_none() {
        match old_ip {
            Some(ip) => {
                spec["clusterIP"] = ip.clone();
                if let Some(ips) = old_spec.and_then(|s| s.get("clusterIPs")) {
                    spec["clusterIPs"] = ips.clone();
                }
            }
            None => {
                let ip = alloc("clusterIP");
                spec["clusterIP"] = json!(ip);
            }
        }
    }
    if spec.get("clusterIPs").is_none() {
        spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
    }
    for (k, v) in [
        ("ipFamilies", json!(["IPv4"])),
        ("ipFamilyPolicy", json!("SingleStack")),
    ] {
        if spec.get(k).is_none() {
            let kept = old_spec.and_then(|s| s.get(k)).cloned();
            spec[k] = kept.unwrap_or(v);
        }
    }
    let node_ports = ty == "NodePort"
        || (ty == "LoadBalancer" && spec["allocateLoadBalancerNodePorts"] != false);
    if !node_ports {
        return;
    }
    let old_ports = old_spec
        .and_then(|s| s["ports"].as_array())
        .cloned()
        .unwrap_or_default();
    each_item(spec.get_mut("ports"), |p| {
        if p.get("nodePort").is_some() {
            return;
        }
        let same = old_ports.iter().find(|o| {
            o["port"] == p["port"] && o["protocol"] == p["protocol"] && o["nodePort"].is_number()
        });
        p["nodePort"] = match same {
            Some(o) => o["nodePort"].clone(),
            None => json!(alloc("nodePort").parse::<u64>().unwrap_or(30000)),
        };
    });
}

/// A Job's generated selector and template labels (pkg/registry/batch/job/strategy.go
/// `generateSelector`), set at create unless `spec.manualSelector` is true.
pub fn job_selector(rt: &ResourceType, obj: &mut Value) {
    if rt.custom || rt.group != "batch" || rt.kind != "Job" || obj["spec"]["manualSelector"] == true
    {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if let Some(t) = spec.get_mut("template").filter(|t| t.is_object()) {
        set_default(t, "metadata", json!({}));
        set_default(&mut t["metadata"], "labels", json!({}));
        let labels = &mut t["metadata"]["labels"];
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            set_default(labels, k, v.clone());
        }
    }
    if spec.get("selector").is_none() {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_decide_the_pull_policy() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("registry:5000/team/app"), "latest");
        assert_eq!(image_tag("registry:5000/team/app:2"), "2");
        assert_eq!(image_tag("app@sha256:abc"), "");
        assert_eq!(image_tag("app:latest"), "latest");
    }

    #[test]
    fn structural_defaults_fill_missing_and_non_nullable_null_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {},
            "properties": {"replicas": {"type": "integer", "default": 1},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}}}}}});
        let mut obj =
            json!({"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}], "replicas": null}});
        structural_defaults(&mut obj, &schema);
        assert_eq!(
            obj["spec"],
            json!({"ports": [{"port": 80, "protocol": "TCP"}], "replicas": 1})
        );
        let mut empty = json!({"metadata": {"name": "x"}});
        structural_defaults(&mut empty, &schema);
        assert_eq!(empty["spec"], json!({"replicas": 1}));
    }
}
