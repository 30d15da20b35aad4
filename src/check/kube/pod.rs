//! Pod specs, wherever they appear (Pods, workload templates, Jobs).
//!
//! Source: `pkg/apis/core/validation/validation.go` (`ValidatePodSpec`,
//! `validateContainers`, `validateContainerPorts`, `ValidateEnv`,
//! `ValidateVolumes`, `ValidateVolumeMounts`, `ValidateResourceRequirements`,
//! `validateProbe`, `validateTolerations`), Kubernetes 1.33.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, LifecycleHandler, PodSpec, Probe, ResourceRequirements,
    Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ErrorType, Errors, FieldError, Path, meta, names};

/// Regular, init or ephemeral container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Regular,
    Init,
}

/// `ValidatePodSpec`.
pub fn pod_spec(s: &PodSpec, at: &Path, errs: &mut Errors) {
    pod_spec_with(s, at, &[], errs);
}

/// [`pod_spec`] with volumes the owner adds (a StatefulSet's
/// `volumeClaimTemplates`), which mounts may name.
pub fn pod_spec_with(s: &PodSpec, at: &Path, owner_volumes: &[&str], errs: &mut Errors) {
    let volumes = at.field("volumes");
    let mut volume_names: HashSet<&str> = owner_volumes.iter().copied().collect();
    for (i, v) in s.volumes.iter().flatten().enumerate() {
        volume(v, &volumes.index(i), errs);
        if !volume_names.insert(v.name.as_str()) {
            errs.duplicate(&volumes.index(i).field("name"), &v.name);
        }
    }
    let containers = at.field("containers");
    if s.containers.is_empty() {
        errs.required(&containers, "");
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut host_ports: HashSet<(i32, String, String)> = HashSet::new();
    let init = at.field("initContainers");
    for (role, list, path) in [
        (
            Role::Init,
            s.init_containers.as_deref().unwrap_or_default(),
            &init,
        ),
        (Role::Regular, s.containers.as_slice(), &containers),
    ] {
        for (i, c) in list.iter().enumerate() {
            let item = path.index(i);
            container(c, role, &volume_names, &item, errs);
            if !c.name.is_empty() && !seen.insert(c.name.as_str()) {
                errs.duplicate(&item.field("name"), &c.name);
            }
            // AccumulateUniqueHostPorts: one host port per protocol and IP.
            let ports = item.field("ports");
            for (j, p) in c.ports.iter().flatten().enumerate() {
                let Some(hp) = p.host_port.filter(|h| *h != 0) else {
                    continue;
                };
                let key = (
                    hp,
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.host_ip.clone().unwrap_or_default(),
                );
                if !host_ports.insert(key.clone()) {
                    errs.duplicate(
                        &ports.index(j).field("hostPort"),
                        format!("{}/{}", key.0, key.1),
                    );
                }
            }
        }
    }
    errs.one_of(
        &at.field("restartPolicy"),
        s.restart_policy.as_deref(),
        &["Always", "OnFailure", "Never"],
    );
    errs.one_of(
        &at.field("dnsPolicy"),
        s.dns_policy.as_deref(),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    dns_config(s, at, errs);
    if let Some(ns) = &s.node_selector {
        meta::labels(ns, &at.field("nodeSelector"), errs);
    }
    for (field, value) in [
        ("serviceAccountName", &s.service_account_name),
        ("priorityClassName", &s.priority_class_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.check(&at.field(field), v, names::dns1123_subdomain(v));
        }
    }
    for (field, value) in [("hostname", &s.hostname), ("subdomain", &s.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            errs.check(&at.field(field), v, names::dns1123_label(v));
        }
    }
    errs.non_negative(
        &at.field("terminationGracePeriodSeconds"),
        s.termination_grace_period_seconds,
    );
    if let Some(a) = s.active_deadline_seconds
        && a <= 0
    {
        errs.invalid(
            &at.field("activeDeadlineSeconds"),
            a,
            "must be between 1 and 2147483647, inclusive",
        );
    }
    let tol = at.field("tolerations");
    for (i, t) in s.tolerations.iter().flatten().enumerate() {
        toleration(t, &tol.index(i), errs);
    }
    let tsc = at.field("topologySpreadConstraints");
    for (i, c) in s.topology_spread_constraints.iter().flatten().enumerate() {
        let item = tsc.index(i);
        if c.max_skew <= 0 {
            errs.invalid(
                &item.field("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            );
        }
        if c.topology_key.is_empty() {
            errs.required(&item.field("topologyKey"), "can not be empty");
        } else {
            errs.check(
                &item.field("topologyKey"),
                &c.topology_key,
                names::qualified_name(&c.topology_key),
            );
        }
        errs.one_of(
            &item.field("whenUnsatisfiable"),
            Some(c.when_unsatisfiable.as_str()),
            &["DoNotSchedule", "ScheduleAnyway"],
        );
    }
}

fn dns_config(s: &PodSpec, at: &Path, errs: &mut Errors) {
    let cfg = at.field("dnsConfig");
    let nameservers = s
        .dns_config
        .as_ref()
        .and_then(|c| c.nameservers.as_deref())
        .unwrap_or_default();
    if s.dns_policy.as_deref() == Some("None") && nameservers.is_empty() {
        errs.required(
            &cfg.field("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        );
    }
    let Some(c) = &s.dns_config else { return };
    if nameservers.len() > 3 {
        errs.invalid(
            &cfg.field("nameservers"),
            nameservers,
            "must not have more than 3 nameservers",
        );
    }
    let ns = cfg.field("nameservers");
    for (i, n) in nameservers.iter().enumerate() {
        if n.parse::<std::net::IpAddr>().is_err() {
            errs.invalid(&ns.index(i), n, "must be a valid IP address");
        }
    }
    let searches = c.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.invalid(
            &cfg.field("searches"),
            searches.len(),
            "must not have more than 32 search paths",
        );
    }
    let opts = cfg.field("options");
    for (i, o) in c.options.iter().flatten().enumerate() {
        if o.name.as_deref().is_none_or(str::is_empty) {
            let item = opts.index(i);
            errs.required(&item.field("name"), "Option.Name must not be empty");
            if let Some(e) = errs.list.last_mut() {
                e.field = item.to_string();
            }
        }
    }
}

fn toleration(t: &Toleration, at: &Path, errs: &mut Errors) {
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() {
        errs.check(&at.field("key"), key, names::qualified_name(key));
    }
    let op = t.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() && op != "Exists" {
        errs.invalid(
            &at.field("operator"),
            op,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
    }
    let value = t.value.as_deref().unwrap_or_default();
    match op {
        "Exists" if !value.is_empty() => errs.invalid(
            &at.field("operator"),
            value,
            "value must be empty when `operator` is 'Exists'",
        ),
        "Equal" | "" => errs.check(&at.field("value"), value, names::label_value(value)),
        "Exists" => {}
        other => errs.not_supported(&at.field("operator"), other, &["Equal", "Exists"]),
    }
    errs.one_of(
        &at.field("effect"),
        t.effect.as_deref().filter(|e| !e.is_empty()),
        &["NoSchedule", "PreferNoSchedule", "NoExecute"],
    );
}

/// `ValidateVolumes` for one volume: a DNS-1123 label name and exactly one
/// source.
fn volume(v: &Volume, at: &Path, errs: &mut Errors) {
    if v.name.is_empty() {
        errs.required(&at.field("name"), "");
    } else {
        errs.check(&at.field("name"), &v.name, names::dns1123_label(&v.name));
    }
    let sources = serde_json::to_value(v)
        .ok()
        .and_then(|j| {
            j.as_object()
                .map(|m| m.keys().filter(|k| *k != "name").count())
        })
        .unwrap_or(0);
    if sources == 0 {
        errs.required(at, "must specify a volume type");
    } else if sources > 1 {
        errs.forbidden(at, "may not specify more than 1 volume type");
    }
    for (field, mode) in [
        (
            "configMap",
            v.config_map.as_ref().and_then(|c| c.default_mode),
        ),
        ("secret", v.secret.as_ref().and_then(|c| c.default_mode)),
    ] {
        if let Some(m) = mode
            && !(0..=0o777).contains(&m)
        {
            errs.invalid(
                &at.field(field).field("defaultMode"),
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            );
        }
    }
    if let Some(q) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
        quantity(q, &at.field("emptyDir").field("sizeLimit"), errs);
    }
}

fn container(c: &Container, role: Role, volumes: &HashSet<&str>, at: &Path, errs: &mut Errors) {
    if c.name.is_empty() {
        errs.required(&at.field("name"), "");
    } else {
        errs.check(&at.field("name"), &c.name, names::dns1123_label(&c.name));
    }
    match c.image.as_deref() {
        None | Some("") => errs.required(&at.field("image"), ""),
        Some(i) if i.trim() != i => errs.invalid(
            &at.field("image"),
            i,
            "must not have leading or trailing whitespace",
        ),
        Some(_) => {}
    }
    errs.one_of(
        &at.field("imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        &["Always", "IfNotPresent", "Never"],
    );
    errs.one_of(
        &at.field("terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
    );
    ports(c, at, errs);
    let env = at.field("env");
    for (i, e) in c.env.iter().flatten().enumerate() {
        env_var(e, &env.index(i), errs);
    }
    let env_from = at.field("envFrom");
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        env_from_source(e, &env_from.index(i), errs);
    }
    mounts(c, volumes, at, errs);
    if let Some(r) = &c.resources {
        resources(r, &at.field("resources"), errs);
    }
    if role == Role::Regular {
        for (field, probe_) in [
            ("livenessProbe", &c.liveness_probe),
            ("readinessProbe", &c.readiness_probe),
            ("startupProbe", &c.startup_probe),
        ] {
            if let Some(p) = probe_ {
                probe(p, field, &at.field(field), errs);
            }
        }
    }
    if let Some(l) = &c.lifecycle {
        let lc = at.field("lifecycle");
        for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                lifecycle_handler(h, &lc.field(field), errs);
            }
        }
    }
}

/// `validateContainerPorts`.
fn ports(c: &Container, at: &Path, errs: &mut Errors) {
    let list = at.field("ports");
    let mut names_seen: HashMap<&str, usize> = HashMap::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let item = list.index(i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            errs.check(&item.field("name"), name, names::port_name(name));
            if names_seen.insert(name, i).is_some() {
                errs.duplicate(&item.field("name"), name);
            }
        }
        let msgs = names::port_num(i64::from(p.container_port));
        if !msgs.is_empty() {
            errs.invalid(
                &item.field("containerPort"),
                p.container_port,
                msgs.join("; "),
            );
        }
        if let Some(hp) = p.host_port.filter(|h| *h != 0) {
            let msgs = names::port_num(i64::from(hp));
            if !msgs.is_empty() {
                errs.invalid(&item.field("hostPort"), hp, msgs.join("; "));
            }
        }
        errs.one_of(
            &item.field("protocol"),
            p.protocol.as_deref(),
            &["TCP", "UDP", "SCTP"],
        );
    }
}

/// `ValidateEnv` for one variable.
fn env_var(e: &EnvVar, at: &Path, errs: &mut Errors) {
    if e.name.is_empty() {
        errs.required(&at.field("name"), "");
    } else if errs.options.relaxed_env_names() {
        errs.check(
            &at.field("name"),
            &e.name,
            names::relaxed_env_var_name(&e.name),
        );
    } else {
        errs.check(&at.field("name"), &e.name, names::env_var_name(&e.name));
    }
    let Some(from) = &e.value_from else { return };
    let vf = at.field("valueFrom");
    if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errs.invalid(&vf, "", "may not be specified when `value` is not empty");
    }
    let count = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if count == 0 {
        errs.invalid(
            &vf,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        );
    } else if count > 1 {
        errs.invalid(
            &vf,
            "",
            "may not have more than one field specified at a time",
        );
    }
    for (field, key) in [
        (
            "configMapKeyRef",
            from.config_map_key_ref.as_ref().map(|r| &r.key),
        ),
        ("secretKeyRef", from.secret_key_ref.as_ref().map(|r| &r.key)),
    ] {
        if let Some(k) = key {
            let p = vf.field(field);
            if k.is_empty() {
                errs.required(&p.field("key"), "");
            } else {
                errs.check(&p.field("key"), k, names::config_map_key(k));
            }
        }
    }
    if let Some(f) = &from.field_ref {
        let path = f.field_path.as_str();
        let supported = [
            "metadata.name",
            "metadata.namespace",
            "metadata.uid",
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.hostIP",
            "status.hostIPs",
            "status.podIP",
            "status.podIPs",
        ];
        let subscripted = ["metadata.labels['", "metadata.annotations['"]
            .iter()
            .any(|p| path.starts_with(p) && path.ends_with("']"));
        if !supported.contains(&path) && !subscripted {
            errs.not_supported(&vf.field("fieldRef").field("fieldPath"), path, &supported);
        }
    }
    if let Some(r) = &from.resource_field_ref {
        let supported = [
            "limits.cpu",
            "limits.memory",
            "limits.ephemeral-storage",
            "requests.cpu",
            "requests.memory",
            "requests.ephemeral-storage",
        ];
        if !supported.contains(&r.resource.as_str()) && !r.resource.contains("hugepages-") {
            errs.not_supported(
                &vf.field("resourceFieldRef").field("resource"),
                &r.resource,
                &supported,
            );
        }
    }
}

fn env_from_source(e: &EnvFromSource, at: &Path, errs: &mut Errors) {
    if let Some(p) = e.prefix.as_deref().filter(|p| !p.is_empty()) {
        let msgs = if errs.options.relaxed_env_names() {
            names::relaxed_env_var_name(p)
        } else {
            names::env_var_name(p)
        };
        errs.check(&at.field("prefix"), p, msgs);
    }
    match (e.config_map_ref.is_some(), e.secret_ref.is_some()) {
        (false, false) => {
            errs.invalid(at, "", "must specify one of: `configMapRef` or `secretRef`")
        }
        (true, true) => errs.invalid(
            at,
            "",
            "may not have more than one field specified at a time",
        ),
        _ => {}
    }
}

/// `ValidateVolumeMounts`: each names a volume of the pod, and no two mount
/// at one path.
fn mounts(c: &Container, volumes: &HashSet<&str>, at: &Path, errs: &mut Errors) {
    let list = at.field("volumeMounts");
    let mut paths: HashSet<&str> = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let item = list.index(i);
        if m.name.is_empty() {
            errs.required(&item.field("name"), "");
        } else if !volumes.contains(m.name.as_str()) {
            errs.not_found(&item.field("name"), &m.name);
        }
        if m.mount_path.is_empty() {
            errs.required(&item.field("mountPath"), "");
        } else if !paths.insert(m.mount_path.as_str()) {
            errs.invalid(&item.field("mountPath"), &m.mount_path, "must be unique");
        }
        if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sp.starts_with('/') {
                errs.invalid(&item.field("subPath"), sp, "must be a relative path");
            }
            if sp.split('/').any(|s| s == "..") {
                errs.invalid(&item.field("subPath"), sp, "must not contain '..'");
            }
        }
    }
}

/// A quantity's syntax, as its JSON decoding checks it (a 400 on the real
/// server): the parsed value in nano-units, or `None` after an error.
pub fn quantity(q: &Quantity, at: &Path, errs: &mut Errors) -> Option<i128> {
    let v = crate::quantity::parse(&q.0);
    if v.is_none() {
        errs.add(FieldError {
            pointer: at.pointer(),
            field: String::new(),
            kind: ErrorType::Type,
            value: None,
            detail: format!(
                "{}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                super::shown(&q.0)
            ),
            at_key: false,
        });
    }
    v
}

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// `ValidateResourceRequirements`: standard or fully qualified names,
/// non-negative quantities, and requests no higher than limits.
pub fn resources(r: &ResourceRequirements, at: &Path, errs: &mut Errors) {
    let limits = at.field("limits");
    let requests = at.field("requests");
    let mut parsed_limits: BTreeMap<&str, i128> = BTreeMap::new();
    for (part, map, path) in [
        ("limits", &r.limits, &limits),
        ("requests", &r.requests, &requests),
    ] {
        for (name, q) in map.iter().flatten() {
            let entry = path.key(name);
            resource_name(name, &entry, errs);
            let Some(v) = quantity(q, &entry, errs) else {
                continue;
            };
            if v < 0 {
                errs.invalid(&entry, &q.0, "must be greater than or equal to 0");
            }
            if part == "limits" {
                parsed_limits.insert(name, v);
            } else if let Some(l) = parsed_limits.get(name.as_str())
                && v > *l
            {
                let limit = &r
                    .limits
                    .as_ref()
                    .and_then(|m| m.get(name))
                    .map(|q| q.0.clone())
                    .unwrap_or_default();
                errs.invalid(
                    &entry,
                    &q.0,
                    format!("must be less than or equal to {name} limit of {limit}"),
                );
            }
        }
    }
}

/// `validateContainerResourceName`.
fn resource_name(name: &str, at: &Path, errs: &mut Errors) {
    let msgs = names::qualified_name(name);
    let bad = if !msgs.is_empty() {
        Some(msgs.join("; "))
    } else if !name.contains('/') {
        (!(STANDARD_CONTAINER_RESOURCES.contains(&name) || name.starts_with("hugepages-")))
            .then(|| "must be a standard resource type or fully qualified".to_string())
    } else if name.starts_with("kubernetes.io/") || name.starts_with("requests.") {
        Some("must be a standard resource for containers".to_string())
    } else {
        None
    };
    if let Some(detail) = bad {
        errs.invalid(at, name, detail);
        if let Some(e) = errs.list.last_mut() {
            e.at_key = true;
        }
    }
}

/// `validateProbe` and `validateHandler`.
fn probe(p: &Probe, which: &str, at: &Path, errs: &mut Errors) {
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    handler_count(handlers, at, errs);
    for (field, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        errs.non_negative(&at.field(field), v.map(i64::from));
    }
    if which != "readinessProbe"
        && let Some(s) = p.success_threshold
        && s != 1
    {
        errs.invalid(&at.field("successThreshold"), s, "must be 1");
    }
    if which == "readinessProbe" && p.termination_grace_period_seconds.is_some() {
        errs.invalid(
            &at.field("terminationGracePeriodSeconds"),
            p.termination_grace_period_seconds,
            "must not be set for readinessProbes",
        );
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
        && which != "readinessProbe"
    {
        errs.invalid(
            &at.field("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        );
    }
    if let Some(h) = &p.http_get {
        let hp = at.field("httpGet");
        port_num_or_name(&h.port, &hp.field("port"), errs);
        errs.one_of(&hp.field("scheme"), h.scheme.as_deref(), &["HTTP", "HTTPS"]);
    }
    if let Some(t) = &p.tcp_socket {
        port_num_or_name(&t.port, &at.field("tcpSocket").field("port"), errs);
    }
    if let Some(g) = &p.grpc {
        let msgs = names::port_num(i64::from(g.port));
        if !msgs.is_empty() {
            errs.invalid(&at.field("grpc").field("port"), g.port, msgs.join("; "));
        }
    }
    if let Some(e) = &p.exec
        && e.command.as_ref().is_none_or(Vec::is_empty)
    {
        errs.required(&at.field("exec").field("command"), "");
    }
}

fn lifecycle_handler(h: &LifecycleHandler, at: &Path, errs: &mut Errors) {
    let n = [
        h.exec.is_some(),
        h.http_get.is_some(),
        h.tcp_socket.is_some(),
        h.sleep.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    handler_count(n, at, errs);
    if let Some(g) = &h.http_get {
        port_num_or_name(&g.port, &at.field("httpGet").field("port"), errs);
    }
}

fn handler_count(n: usize, at: &Path, errs: &mut Errors) {
    if n == 0 {
        errs.required(at, "must specify a handler type");
    } else if n > 1 {
        errs.forbidden(at, "may not specify more than 1 handler type");
    }
}

/// `ValidatePortNumOrName`: a number 1-65535 or an IANA_SVC_NAME.
pub fn port_num_or_name(p: &IntOrString, at: &Path, errs: &mut Errors) {
    match p {
        IntOrString::Int(i) => {
            let msgs = names::port_num(i64::from(*i));
            if !msgs.is_empty() {
                errs.invalid(at, i, msgs.join("; "));
            }
        }
        IntOrString::String(s) => errs.check(at, s, names::port_name(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(spec: serde_json::Value) -> Vec<String> {
        let s: PodSpec = serde_json::from_value(spec).unwrap();
        let mut e = Errors::default();
        pod_spec(&s, &Path::root().field("spec"), &mut e);
        e.list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_pod_spec_passes() {
        let e = check(json!({
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "nodeSelector": {"pool": "general"},
        }));
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn the_usual_mistakes_are_refused_with_the_servers_words() {
        let e = check(json!({
            "containers": [{
                "name": "web", "image": "nginx",
                "ports": [{"name": "8080", "containerPort": 8080}, {"name": "http", "containerPort": 70000}],
                "env": [{"name": "", "value": "x"}],
                "resources": {"limits": {"memory": "512Mi"}, "requests": {"memory": "1Gi", "memroy": "1"}},
                "livenessProbe": {"httpGet": {"port": 80}, "exec": {"command": ["true"]}},
                "readinessProbe": {},
                "volumeMounts": [{"name": "nope", "mountPath": "/d"}],
            }, {"name": "web", "image": " nginx"}],
            "nodeSelector": {"pool": "general purpose"},
        }));
        let want = [
            "spec.containers[0].ports[0].name: Invalid value: \"8080\": must contain at least one letter (a-z)",
            "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].env[0].name: Required value",
            "spec.containers[0].volumeMounts[0].name: Not found: \"nope\"",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"1Gi\": must be less than or equal to memory limit of 512Mi",
            "spec.containers[0].resources.requests[memroy]: Invalid value: \"memroy\": must be a standard resource type or fully qualified",
            "spec.containers[0].livenessProbe: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            "spec.containers[1].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
            "spec.containers[1].name: Duplicate value: \"web\"",
            "spec.nodeSelector[pool]: Invalid value: \"general purpose\"",
        ];
        for w in want {
            assert!(
                e.iter().any(|e| e.starts_with(w)),
                "missing {w}\n in {e:#?}"
            );
        }
    }

    #[test]
    fn env_names_follow_the_version() {
        let s: PodSpec = serde_json::from_value(json!({"containers": [{"name": "a", "image": "i", "env": [{"name": "1-A B", "value": "x"}]}]})).unwrap();
        let mut relaxed = Errors::default();
        pod_spec(&s, &Path::root(), &mut relaxed);
        assert!(relaxed.list.is_empty(), "{:?}", relaxed.list);
        let mut strict = Errors::new(super::super::Options { minor: 31 });
        pod_spec(&s, &Path::root(), &mut strict);
        assert_eq!(strict.list.len(), 1);
    }

    #[test]
    fn bad_quantities_are_decoding_errors() {
        let e = check(
            json!({"containers": [{"name": "a", "image": "i", "resources": {"limits": {"memory": "512MB"}}}]}),
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("quantities must match"), "{e:?}");
    }
}
