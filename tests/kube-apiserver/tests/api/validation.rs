//! Validation with the real status codes and messages (REAL-SERVER.md "Validation"): type errors
//! (400 for ordinary writes, the typed-patch 500 for server-side apply), names per kind, pod spec
//! and Service rules (422 with `details.causes`), and the size limits.

use kube_apiserver::TestServer;
use serde_json::{Value, json};

use super::http::{apply, post, request};
use super::namespace;

fn deployment(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}})
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/shop/deployments";

#[test]
fn wrong_types_are_decode_errors_and_typed_patch_errors() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"port": 8080}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["reason"], "BadRequest");
    assert_eq!(
        r.json()["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    );

    let mut d = deployment(
        json!([{"name": "web", "image": "web:1", "env": [{"name": "PORT", "value": 8080}]}]),
    );
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value of type string"
    );
    d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("8080");
    d["spec"]["replicas"] = json!("2");
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(
        r.json()["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );

    // Server-side apply converts the configuration to a typed value first.
    let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: two\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: web:1\n        env: [{name: PORT, value: 8080}]\n";
    let r = apply(
        srv.url(),
        &format!("{DEPLOYS}/web?fieldManager=keelson"),
        manifest,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    let s = r.json();
    assert!(s.get("reason").is_none(), "{s}");
    assert_eq!(
        s["message"],
        "failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string"
    );
    let manifest = manifest.replace("replicas: two", "replicas: 2");
    let r = apply(
        srv.url(),
        &format!("{DEPLOYS}/web?fieldManager=keelson"),
        &manifest,
    );
    assert_eq!(
        r.json()["message"],
        "failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"web\"].env[name=\"PORT\"].value: expected string, got &value.valueUnstructured{Value:8080}"
    );
    assert!(
        srv.get_object(
            &kube_apiserver::Gvr::parse("apps/v1/deployments"),
            Some("shop"),
            "web"
        )
        .is_none()
    );
}

fn causes(r: &super::http::Resp) -> Vec<(String, String, String)> {
    let s = r.json();
    assert_eq!(s["code"], 422, "{s}");
    assert_eq!(s["reason"], "Invalid", "{s}");
    s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["reason"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn pod_spec_and_service_rules_are_invalid_with_their_causes() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let d = deployment(json!([{"name": "web", "image": "web:1",
        "env": [{"name": "A=B", "value": "x"}],
        "ports": [{"name": "http-metrics-endpoint", "containerPort": 9090}, {"name": "http", "containerPort": 8080}, {"name": "http", "containerPort": 8081}]}]));
    let mut d = d;
    d["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "fast lane"});
    let r = post(srv.url(), DEPLOYS, &d);
    let c = causes(&r);
    let c0 = "spec.template.spec.containers[0]";
    assert_eq!(
        c,
        vec![
            ("FieldValueInvalid".into(), format!("{c0}.env[0].name"), "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='".into()),
            ("FieldValueInvalid".into(), format!("{c0}.ports[0].name"), "Invalid value: \"http-metrics-endpoint\": must be no more than 15 characters".into()),
            ("FieldValueDuplicate".into(), format!("{c0}.ports[2].name"), "Duplicate value: \"http\"".into()),
            ("FieldValueInvalid".into(), "spec.template.spec.nodeSelector".into(), "Invalid value: \"fast lane\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()),
        ]
    );

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http_port"}, {"name": "http", "port": 80}, {"port": 443}]}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/services", &svc);
    let c = causes(&r);
    assert_eq!(
        c,
        vec![
            ("FieldValueInvalid".into(), "spec.ports[0].targetPort".into(), "Invalid value: \"http_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into()),
            ("FieldValueDuplicate".into(), "spec.ports[1].name".into(), "Duplicate value: \"http\"".into()),
            ("FieldValueDuplicate".into(), "spec.ports[1]".into(), "Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}".into()),
            ("FieldValueRequired".into(), "spec.ports[2].name".into(), "Required value".into()),
        ]
    );

    // Services are named by DNS-1035 labels: no leading digit.
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/services", &svc);
    assert_eq!(
        r.json()["message"],
        "Service \"1web\" is invalid: metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    );
}

#[test]
fn size_limits_answer_like_the_real_server() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let big = "x".repeat(600 * 1024);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": big, "b": big}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm);
    assert_eq!(
        r.json()["message"],
        "ConfigMap \"big\" is invalid: []: Too long: must have at most 1048576 bytes"
    );
    assert_eq!(
        causes(&r),
        vec![(
            "FieldValueTooLong".into(),
            "[]".into(),
            "Too long: must have at most 1048576 bytes".into()
        )]
    );

    let mut annotations = serde_json::Map::new();
    annotations.insert("note".into(), json!("y".repeat(300 * 1024)));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "noted", "annotations": annotations}});
    let r = post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm);
    assert_eq!(
        r.json()["message"],
        "ConfigMap \"noted\" is invalid: metadata.annotations: Too long: must have at most 262144 bytes"
    );

    // Over etcd's request limit: a storage error, 500 without a reason. A dry run never gets there.
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "many"},
        "secrets": (0..9000).map(|i| json!({"name": format!("{}-{i}", "s".repeat(160))})).collect::<Vec<_>>()});
    let path = "/api/v1/namespaces/shop/serviceaccounts";
    let r = post(srv.url(), &format!("{path}?dryRun=All"), &sa);
    assert_eq!(r.status, 201, "{}", &r.text()[..200]);
    let r = post(srv.url(), path, &sa);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "etcdserver: request is too large", "code": 500})
    );

    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over"},
        "data": {"a": "q".repeat(3 * 1024 * 1024 + 1)}});
    let r = request(
        srv.url(),
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        Some("application/json"),
        &body.to_string(),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["reason"], "RequestEntityTooLarge");
    assert_eq!(
        r.json()["message"],
        "Request entity too large: limit is 3145728"
    );
}

#[test]
fn immutable_fields_refuse_changes_with_the_real_messages() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: m:1}]\n";
    let path = "/apis/batch/v1/namespaces/shop/jobs/migrate?fieldManager=keelson";
    assert_eq!(apply(srv.url(), path, job).status, 201);
    let r = apply(srv.url(), path, &job.replace("m:1", "m:2"));
    let c = causes(&r);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("FieldValueInvalid", "spec.template")
    );
    assert!(c[0].2.ends_with(": field is immutable"), "{c:?}");

    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: pg:16}]\n";
    let path = "/apis/apps/v1/namespaces/shop/statefulsets/db?fieldManager=keelson";
    assert_eq!(apply(srv.url(), path, sts).status, 201);
    assert_eq!(
        apply(srv.url(), path, &sts.replace("pg:16", "pg:17")).status,
        200
    );
    let r = apply(
        srv.url(),
        path,
        &sts.replace("serviceName: db", "serviceName: db-headless"),
    );
    assert_eq!(
        r.json()["message"],
        "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );

    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: frozen}\nimmutable: true\ndata: {a: \"1\"}\n";
    let path = "/api/v1/namespaces/shop/configmaps/frozen?fieldManager=keelson";
    assert_eq!(apply(srv.url(), path, cm).status, 201);
    let r = apply(srv.url(), path, &cm.replace("\"1\"", "\"2\""));
    assert_eq!(
        r.json()["message"],
        "ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );

    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: Opaque\ndata: {a: Yg==}\n";
    let path = "/api/v1/namespaces/shop/secrets/tls?fieldManager=keelson";
    assert_eq!(apply(srv.url(), path, secret).status, 201);
    let r = apply(
        srv.url(),
        path,
        &secret.replace("Opaque", "kubernetes.io/basic-auth"),
    );
    assert_eq!(
        r.json()["message"],
        "Secret \"tls\" is invalid: type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"
    );
}

#[test]
fn service_cluster_ips_and_claim_specs_do_not_change_once_set() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    // An allocated cluster IP is kept by a re-apply that does not name it, and a ports change
    // goes through; naming another IP is refused as validateUpgradeDowngradeClusterIPs does.
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";
    let path = "/api/v1/namespaces/shop/services/web?fieldManager=keelson";
    let created = apply(srv.url(), path, svc);
    assert_eq!(created.status, 201);
    let ip = created.json()["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let r = apply(srv.url(), path, &svc.replace("port: 80", "port: 8080"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["spec"]["clusterIP"], ip.as_str());
    let moved = svc.replace("spec:\n", "spec:\n  clusterIP: 10.96.200.200\n");
    let r = apply(srv.url(), path, &moved);
    assert_eq!(
        r.json()["message"],
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.200.200\"}: may not change once set",
        "{}",
        r.json()
    );
    assert_eq!(
        causes(&r),
        [(
            "FieldValueInvalid".to_string(),
            "spec.clusterIPs[0]".to_string(),
            "Invalid value: []string{\"10.96.200.200\"}: may not change once set".to_string()
        )]
    );
    // Same IP named explicitly: no change, accepted.
    let same = svc.replace("spec:\n", &format!("spec:\n  clusterIP: {ip}\n"));
    assert_eq!(apply(srv.url(), path, &same).status, 200);

    // A pending claim's spec is immutable, storage included.
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";
    let path = "/api/v1/namespaces/shop/persistentvolumeclaims/data?fieldManager=keelson";
    assert_eq!(apply(srv.url(), path, pvc).status, 201);
    let r = apply(
        srv.url(),
        path,
        &pvc.replace("ReadWriteOnce", "ReadWriteMany"),
    );
    let c = causes(&r);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("FieldValueForbidden", "spec")
    );
    assert!(
        c[0].2.starts_with("Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"),
        "{c:?}"
    );
    assert!(c[0].2.contains("accessModes"), "{c:?}");
    let grown = pvc.replace("1Gi", "2Gi");
    assert_eq!(
        apply(srv.url(), path, &grown).status,
        422,
        "pending: no resize"
    );

    // Bound (as the PV controller would mark it): storage may grow, never shrink.
    let status = json!({"status": {"phase": "Bound"}});
    let r = request(
        srv.url(),
        "PATCH",
        "/api/v1/namespaces/shop/persistentvolumeclaims/data/status",
        Some("application/merge-patch+json"),
        &status.to_string(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = apply(srv.url(), path, &grown);
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["spec"]["resources"]["requests"]["storage"], "2Gi");
    let r = apply(srv.url(), path, pvc);
    assert_eq!(
        causes(&r),
        [(
            "FieldValueForbidden".to_string(),
            "spec.resources.requests.storage".to_string(),
            "Forbidden: field can not be less than previous value".to_string()
        )]
    );
    let stored = srv
        .get_object(
            &kube_apiserver::Gvr::parse("v1/persistentvolumeclaims"),
            Some("shop"),
            "data",
        )
        .unwrap();
    assert_eq!(stored["spec"]["resources"]["requests"]["storage"], "2Gi");
    assert_eq!(stored["spec"]["accessModes"], json!(["ReadWriteOnce"]));
}
