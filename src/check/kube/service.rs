//! Services, Ingresses and NetworkPolicies.
//!
//! Sources: `pkg/apis/core/validation/validation.go` (`ValidateService`,
//! `validateServicePort`), `pkg/apis/networking/validation/validation.go`
//! (`ValidateIngressSpec`, `validateIngressBackend`, `ValidateNetworkPolicySpec`).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Errors, Path, meta, names, pod};

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// `ValidateService`.
pub fn service(svc: &Service, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &svc.spec else {
        return errs.required(&at, "");
    };
    let ty = s.type_.as_deref().unwrap_or("ClusterIP");
    errs.one_of(
        &at.field("type"),
        Some(ty),
        &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
    );
    let ports = s.ports.as_deref().unwrap_or_default();
    let ports_at = at.field("ports");
    if ty == "ExternalName" {
        match s.external_name.as_deref() {
            None | Some("") => errs.required(&at.field("externalName"), ""),
            Some(n) => errs.check(&at.field("externalName"), n, names::dns1123_subdomain(n)),
        }
    } else if ports.is_empty() && s.cluster_ip.as_deref() != Some("None") {
        errs.required(&ports_at, "");
    }
    let mut names_seen: HashSet<&str> = HashSet::new();
    let mut keys_seen: HashSet<(i32, &str)> = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let item = ports_at.index(i);
        match p.name.as_deref().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => errs.required(&item.field("name"), ""),
            None => {}
            Some(n) => {
                errs.check(&item.field("name"), n, names::dns1123_label(n));
                if !names_seen.insert(n) {
                    errs.duplicate(&item.field("name"), n);
                }
            }
        }
        let msgs = names::port_num(i64::from(p.port));
        if !msgs.is_empty() {
            errs.invalid(&item.field("port"), p.port, msgs.join("; "));
        }
        let protocol = p.protocol.as_deref().unwrap_or("TCP");
        errs.one_of(&item.field("protocol"), Some(protocol), PROTOCOLS);
        if !keys_seen.insert((p.port, protocol)) {
            errs.duplicate_item(
                &item,
                "port",
                serde_json::json!({"port": p.port, "protocol": protocol}),
            );
        }
        if let Some(tp) = &p.target_port {
            pod::port_num_or_name(tp, &item.field("targetPort"), errs);
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.forbidden(
                    &item.field("nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                );
            } else {
                let msgs = names::port_num(i64::from(np));
                if !msgs.is_empty() {
                    errs.invalid(&item.field("nodePort"), np, msgs.join("; "));
                }
            }
        }
    }
    if let Some(sel) = &s.selector {
        meta::labels(sel, &at.field("selector"), errs);
    }
    errs.one_of(
        &at.field("sessionAffinity"),
        s.session_affinity.as_deref(),
        &["ClientIP", "None"],
    );
    if let Some(p) = s.external_traffic_policy.as_deref() {
        if ty != "NodePort" && ty != "LoadBalancer" {
            errs.forbidden(
                &at.field("externalTrafficPolicy"),
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            );
        }
        errs.one_of(
            &at.field("externalTrafficPolicy"),
            Some(p),
            &["Cluster", "Local"],
        );
    }
    errs.one_of(
        &at.field("internalTrafficPolicy"),
        s.internal_traffic_policy.as_deref(),
        &["Cluster", "Local"],
    );
}

/// `ValidateIngressSpec`.
pub fn ingress(ing: &Ingress, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &ing.spec else { return };
    if let Some(c) = s.ingress_class_name.as_deref() {
        errs.check(
            &at.field("ingressClassName"),
            c,
            names::dns1123_subdomain(c),
        );
    }
    if let Some(b) = &s.default_backend {
        backend(b, &at.field("defaultBackend"), errs);
    } else if s.rules.as_ref().is_none_or(Vec::is_empty) {
        errs.invalid(
            &at.field("rules"),
            "",
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    let rules = at.field("rules");
    for (i, r) in s.rules.iter().flatten().enumerate() {
        let item = rules.index(i);
        if let Some(h) = r.host.as_deref().filter(|h| !h.is_empty()) {
            errs.check(&item.field("host"), h, names::host(h));
        }
        let Some(http) = &r.http else { continue };
        let http_at = item.field("http");
        let paths = http_at.field("paths");
        for (j, p) in http.paths.iter().enumerate() {
            let pi = paths.index(j);
            let ty = p.path_type.as_str();
            errs.one_of(
                &pi.field("pathType"),
                Some(ty),
                &["Exact", "Prefix", "ImplementationSpecific"],
            );
            let path = p.path.as_deref().unwrap_or_default();
            if (ty == "Exact" || ty == "Prefix") && !path.starts_with('/') {
                errs.invalid(&pi.field("path"), path, "must be an absolute path");
            }
            if ty == "Exact" || ty == "Prefix" {
                for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                    if path.contains(bad) {
                        errs.invalid(&pi.field("path"), path, format!("must not contain '{bad}'"));
                    }
                }
            }
            backend(&p.backend, &pi.field("backend"), errs);
        }
    }
    let tls = at.field("tls");
    for (i, t) in s.tls.iter().flatten().enumerate() {
        let hosts = tls.index(i);
        let hosts = hosts.field("hosts");
        for (j, h) in t.hosts.iter().flatten().enumerate() {
            errs.check(&hosts.index(j), h, names::host(h));
        }
    }
}

/// `validateIngressBackend`: a Service (by DNS-1035 name, with a port name
/// or number but not both) or a resource, not both.
fn backend(b: &IngressBackend, at: &Path, errs: &mut Errors) {
    match (&b.service, &b.resource) {
        (Some(_), Some(_)) => errs.invalid(at, "", "cannot set both resource and service backends"),
        (None, None) => errs.invalid(at, "", "resource or service backend is required"),
        _ => {}
    }
    let Some(svc) = &b.service else { return };
    let s = at.field("service");
    errs.check(&s.field("name"), &svc.name, names::dns1035_label(&svc.name));
    let port = s.field("port");
    match svc
        .port
        .as_ref()
        .map(|p| (p.name.as_deref().filter(|n| !n.is_empty()), p.number))
    {
        None | Some((None, None)) => errs.required(&port, "port name or number is required"),
        Some((Some(_), Some(_))) => {
            errs.invalid(&port, "", "cannot set both port name & port number")
        }
        Some((Some(n), None)) => errs.check(&port.field("name"), n, names::port_name(n)),
        Some((None, Some(n))) => {
            let msgs = names::port_num(i64::from(n));
            if !msgs.is_empty() {
                errs.invalid(&port.field("number"), n, msgs.join("; "));
            }
        }
    }
}

/// `ValidateNetworkPolicySpec`: selectors, ports and protocols.
pub fn network_policy(np: &NetworkPolicy, errs: &mut Errors) {
    let root = Path::root();
    let at = root.field("spec");
    let Some(s) = &np.spec else { return };
    if let Some(sel) = &s.pod_selector {
        meta::label_selector(sel, &at.field("podSelector"), errs);
    }
    let types = at.field("policyTypes");
    for (i, t) in s.policy_types.iter().flatten().enumerate() {
        errs.one_of(&types.index(i), Some(t.as_str()), &["Ingress", "Egress"]);
    }
    let ingress = at.field("ingress");
    for (i, r) in s.ingress.iter().flatten().enumerate() {
        let item = ingress.index(i);
        policy_ports(r.ports.as_deref(), &item.field("ports"), errs);
        peers(r.from.as_deref(), &item.field("from"), errs);
    }
    let egress = at.field("egress");
    for (i, r) in s.egress.iter().flatten().enumerate() {
        let item = egress.index(i);
        policy_ports(r.ports.as_deref(), &item.field("ports"), errs);
        peers(r.to.as_deref(), &item.field("to"), errs);
    }
}

fn policy_ports(
    ports: Option<&[k8s_openapi::api::networking::v1::NetworkPolicyPort]>,
    at: &Path,
    errs: &mut Errors,
) {
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let item = at.index(i);
        errs.one_of(&item.field("protocol"), p.protocol.as_deref(), PROTOCOLS);
        if let Some(port) = &p.port {
            pod::port_num_or_name(port, &item.field("port"), errs);
        }
        if let Some(end) = p.end_port {
            match &p.port {
                Some(IntOrString::Int(start)) if end < *start => errs.invalid(
                    &item.field("endPort"),
                    end,
                    "must be greater than or equal to `port`",
                ),
                Some(IntOrString::String(_)) | None => errs.forbidden(
                    &item.field("endPort"),
                    "may not be specified when `port` is non-numeric or not set",
                ),
                _ => {}
            }
        }
    }
}

fn peers(
    peers: Option<&[k8s_openapi::api::networking::v1::NetworkPolicyPeer]>,
    at: &Path,
    errs: &mut Errors,
) {
    for (i, p) in peers.into_iter().flatten().enumerate() {
        let item = at.index(i);
        let n = [
            p.pod_selector.is_some(),
            p.namespace_selector.is_some(),
            p.ip_block.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n == 0 {
            errs.required(&item, "must specify a peer");
        } else if p.ip_block.is_some() && n > 1 {
            errs.forbidden(&item, "may not specify both ipBlock and another peer");
        }
        if let Some(s) = &p.pod_selector {
            meta::label_selector(s, &item.field("podSelector"), errs);
        }
        if let Some(s) = &p.namespace_selector {
            meta::label_selector(s, &item.field("namespaceSelector"), errs);
        }
        if let Some(b) = &p.ip_block
            && !is_cidr(&b.cidr)
        {
            errs.invalid(
                &item.field("ipBlock").field("cidr"),
                &b.cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            );
        }
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Vec<String> {
        let s: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})).unwrap();
        let mut e = Errors::default();
        service(&s, &mut e);
        e.list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn service_ports_are_unique_named_and_target_real_names() {
        let e = svc(json!({"ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "http", "port": 80, "targetPort": "web_port"},
            {"port": 443},
        ]}));
        let want = [
            "spec.ports[1].name: Duplicate value: \"http\"",
            "spec.ports[1]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            "spec.ports[1].targetPort: Invalid value: \"web_port\"",
            "spec.ports[2].name: Required value",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.starts_with(w)), "missing {w} in {e:#?}");
        }
        assert_eq!(e.len(), 4, "{e:#?}");
    }

    #[test]
    fn ingress_backends_and_hosts() {
        let i: Ingress = serde_json::from_value(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
            "spec": {"rules": [{"host": "Shop.example.com", "http": {"paths": [
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}}
            ]}}]}})).unwrap();
        let mut e = Errors::default();
        ingress(&i, &mut e);
        let e: Vec<String> = e.list.iter().map(ToString::to_string).collect();
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].starts_with("spec.rules[0].host: Invalid value: \"Shop.example.com\""));
        assert!(e[1].contains("must be an absolute path"));
        assert!(e[2].contains("cannot set both port name & port number"));
    }
}
