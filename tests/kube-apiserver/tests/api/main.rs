//! The test server over real HTTP: paths, Status bodies, server-side apply, dry runs, paging,
//! watch and fault injection.

mod defaults;
mod http;
mod kube_client;
mod reset;
mod ssa;
mod stored;
mod streams;
mod validation;

use http::{get, post, put, request};
use kube_apiserver::TestServer;
use serde_json::{Value, json};

fn deployment(name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn namespace(srv: &TestServer, name: &str) {
    let r = post(
        srv.url(),
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

const DEPLOYS: &str = "/apis/apps/v1/namespaces/shop/deployments";

#[test]
fn not_found_already_exists_and_conflict_are_status_objects_with_real_wording() {
    let srv = TestServer::start_blocking();
    let r = get(srv.url(), &format!("{DEPLOYS}/web"));
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "deployments.apps \"web\" not found",
            "reason": "NotFound", "code": 404, "details": {"name": "web", "group": "apps", "kind": "deployments"}})
    );

    let r = post(srv.url(), DEPLOYS, &deployment("web", "nginx:1"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "namespaces \"shop\" not found");

    namespace(&srv, "shop");
    let created = post(srv.url(), DEPLOYS, &deployment("web", "nginx:1"));
    assert_eq!(created.status, 201);
    let obj = created.json();
    assert_eq!(obj["kind"], "Deployment");
    assert_eq!(obj["apiVersion"], "apps/v1");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        obj["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "api-test");

    let again = post(srv.url(), DEPLOYS, &deployment("web", "nginx:1"));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["reason"], "AlreadyExists");
    assert_eq!(
        again.json()["message"],
        "deployments.apps \"web\" already exists"
    );

    let mut stale = obj.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let r = put(srv.url(), &format!("{DEPLOYS}/web"), &stale);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["reason"], "Conflict");
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // A current resourceVersion succeeds; a spec change bumps generation, a label change does not.
    let mut fresh = get(srv.url(), &format!("{DEPLOYS}/web")).json();
    fresh["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let r = put(srv.url(), &format!("{DEPLOYS}/web"), &fresh);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 2);
    // The status stand-in wrote after the PUT, so read the current version first.
    let mut relabel = get(srv.url(), &format!("{DEPLOYS}/web")).json();
    relabel["metadata"]["labels"]["team"] = json!("a");
    let r = put(srv.url(), &format!("{DEPLOYS}/web"), &relabel);
    assert_eq!(r.json()["metadata"]["generation"], 2);
    let rv_a: u64 = r.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv_a > fresh["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    );
}

#[test]
fn invalid_bad_request_method_and_path_errors() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let mut d = deployment("web", "");
    d["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(r.status, 422);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(
        s["message"],
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
    );
    assert_eq!(
        s["details"]["causes"][0]["field"],
        "spec.template.spec.containers[0].image"
    );

    let r = post(
        srv.url(),
        DEPLOYS,
        &json!({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
    assert_eq!(
        r.json()["message"],
        "the API version in the data (v1) does not match the expected API version (apps/v1)"
    );

    let r = request(
        srv.url(),
        "POST",
        &format!("{DEPLOYS}/web"),
        Some("application/json"),
        "{}",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["reason"], "MethodNotAllowed");

    let r = get(srv.url(), "/apis/apps/v1/namespaces/shop/gizmos");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["message"],
        "the server could not find the requested resource"
    );

    let r = request(
        srv.url(),
        "PATCH",
        &format!("{DEPLOYS}/web"),
        Some("application/apply-patch+yaml"),
        "{}",
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );

    let r = request(
        srv.url(),
        "PATCH",
        &format!("{DEPLOYS}/web"),
        Some("text/plain"),
        "{}",
    );
    assert_eq!(r.status, 415);
}

#[test]
fn namespaced_and_all_namespace_paths_lists_and_cluster_scope() {
    let srv = TestServer::start_blocking();
    for ns in ["a", "b"] {
        namespace(&srv, ns);
        let r = post(
            srv.url(),
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            &deployment("web", "nginx:1"),
        );
        assert_eq!(r.status, 201);
    }
    let all = get(srv.url(), "/apis/apps/v1/deployments").json();
    assert_eq!(all["kind"], "DeploymentList");
    assert_eq!(all["apiVersion"], "apps/v1");
    let nss: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(nss, ["a", "b"]);
    let one = get(srv.url(), "/apis/apps/v1/namespaces/b/deployments").json();
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert!(
        one["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 4
    );

    let fs = get(
        srv.url(),
        "/apis/apps/v1/deployments?fieldSelector=metadata.namespace%3Da",
    )
    .json();
    assert_eq!(fs["items"].as_array().unwrap().len(), 1);

    // Cluster-scoped kinds live at the top level only.
    let ns = get(srv.url(), "/api/v1/namespaces/a").json();
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "a");
    let r = get(
        srv.url(),
        "/apis/rbac.authorization.k8s.io/v1/namespaces/a/clusterroles",
    );
    assert_eq!(r.status, 404);
    let r = post(
        srv.url(),
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "viewer"}, "rules": []}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["metadata"].get("namespace").is_none());

    // Delete answers with a success Status carrying the uid; propagationPolicy is accepted.
    let uid =
        get(srv.url(), "/apis/apps/v1/namespaces/a/deployments/web").json()["metadata"]["uid"]
            .clone();
    let r = request(
        srv.url(),
        "DELETE",
        "/apis/apps/v1/namespaces/a/deployments/web?propagationPolicy=Foreground",
        Some("application/json"),
        "{}",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "Success");
    assert_eq!(r.json()["details"]["uid"], uid);
    assert_eq!(
        get(srv.url(), "/apis/apps/v1/namespaces/a/deployments/web").status,
        404
    );
}

#[test]
fn discovery_legacy_and_aggregated() {
    let srv = TestServer::start_blocking();
    let apps = get(srv.url(), "/apis/apps/v1").json();
    let d = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments")
        .unwrap();
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["namespaced"], true);
    assert_eq!(d["shortNames"], json!(["deploy"]));
    assert!(d["verbs"].as_array().unwrap().contains(&json!("patch")));
    let core = get(srv.url(), "/api/v1").json();
    let ns = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "namespaces")
        .unwrap();
    assert_eq!(ns["namespaced"], false);
    let groups = get(srv.url(), "/apis").json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "networking.k8s.io",
        "policy",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "autoscaling",
        "apiextensions.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    let r = http::request_with(
        srv.url(),
        "GET",
        "/apis",
        None,
        "",
        &[(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )],
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let agg = r.json();
    assert_eq!(agg["kind"], "APIGroupDiscoveryList");
    let hpa = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "autoscaling")
        .unwrap();
    assert_eq!(hpa["versions"][0]["version"], "v2");
    assert_eq!(hpa["versions"][0]["resources"][0]["scope"], "Namespaced");
    assert_eq!(get(srv.url(), "/version").json()["major"], "1");
}

#[test]
fn server_defaults_secrets_services_and_workloads() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}});
    let s = post(srv.url(), "/api/v1/namespaces/shop/secrets", &secret).json();
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    assert!(s.get("stringData").is_none(), "stringData is write-only");

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let s = post(srv.url(), "/api/v1/namespaces/shop/services", &svc).json();
    let port = &s["spec"]["ports"][0];
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(port["targetPort"], 80);
    let np = port["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&np), "{np}");
    assert!(
        s["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );

    let d = post(srv.url(), DEPLOYS, &deployment("web", "nginx")).json();
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always",
        "untagged image means :latest"
    );
    // Defaults are owned by the Update manager that created the object, as on a real server.
    let mf = &d["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    assert!(mf["f:revisionHistoryLimit"].is_object(), "{mf}");
}

#[test]
fn labels_quantities_and_requests_over_limits_are_refused_like_the_real_server() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let mut d = deployment("web", "nginx:1");
    d["metadata"]["labels"]["team"] = json!("payments & billing");
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with(
            "Deployment.apps \"web\" is invalid: metadata.labels: Invalid value: \"payments & billing\": a valid label must be an empty string"
        ),
        "{}",
        r.text()
    );

    let mut d = deployment("web", "nginx:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"memory": "512mb"}});
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );

    let mut d = deployment("web", "nginx:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "2", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "0.5Gi"}});
    let r = post(srv.url(), DEPLOYS, &d);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
    );
}

#[test]
fn finalizers_hold_a_deleted_object_until_removed() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["keelson.dev/inventory"]}});
    assert_eq!(
        post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm).status,
        201
    );
    let path = "/api/v1/namespaces/shop/configmaps/held";
    let r = request(srv.url(), "DELETE", path, None, "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["kind"],
        "ConfigMap",
        "a held object comes back, not a Status"
    );
    assert!(r.json()["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(get(srv.url(), path).status, 200);
    let r = request(
        srv.url(),
        "PATCH",
        path,
        Some("application/merge-patch+json"),
        r#"{"metadata":{"finalizers":null}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(srv.url(), path).status, 404);
}

#[test]
fn malformed_bodies_are_client_errors_and_the_server_keeps_serving() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    assert_eq!(
        post(srv.url(), DEPLOYS, &deployment("web", "nginx:1")).status,
        201
    );
    let web = format!("{DEPLOYS}/web");
    for (ct, body) in [
        ("application/merge-patch+json", "[1]"),
        ("application/merge-patch+json", "\"x\""),
        ("application/merge-patch+json", r#"{"metadata":"x"}"#),
        ("application/strategic-merge-patch+json", r#"{"spec":"x"}"#),
        (
            "application/json-patch+json",
            r#"[{"op":"replace","path":"","value":7}]"#,
        ),
        ("application/json-patch+json", "{not json"),
        ("application/apply-patch+yaml", "- just\n- a list\n"),
        (
            "application/apply-patch+yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: x\n",
        ),
    ] {
        let r = request(
            srv.url(),
            "PATCH",
            &format!("{web}?fieldManager=fuzz"),
            Some(ct),
            body,
        );
        assert!(
            (400..500).contains(&r.status),
            "{ct} {body}: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.json()["kind"], "Status");
    }
    for body in ["[]", "{\"metadata\": 5}", "null"] {
        let r = request(srv.url(), "POST", DEPLOYS, Some("application/json"), body);
        assert!((400..500).contains(&r.status), "{body}: {}", r.status);
    }
    assert_eq!(get(srv.url(), &web).json()["spec"]["replicas"], 1);
}

#[test]
fn statefulset_and_daemonset_status_follow_spec_and_the_health_hook() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let mut sts = deployment("db", "postgres:16");
    sts["kind"] = json!("StatefulSet");
    sts["spec"]["replicas"] = json!(3);
    sts["spec"]["serviceName"] = json!("db");
    assert_eq!(
        post(
            srv.url(),
            "/apis/apps/v1/namespaces/shop/statefulsets",
            &sts
        )
        .status,
        201
    );
    let s = get(srv.url(), "/apis/apps/v1/namespaces/shop/statefulsets/db").json();
    assert_eq!(s["status"]["readyReplicas"], 3);
    assert_eq!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );

    let mut ds = deployment("agent", "fluent-bit:3");
    ds["kind"] = json!("DaemonSet");
    ds["spec"].as_object_mut().unwrap().remove("replicas");
    assert_eq!(
        post(srv.url(), "/apis/apps/v1/namespaces/shop/daemonsets", &ds).status,
        201
    );
    let gvr = kube_apiserver::Gvr::parse("apps/v1/daemonsets");
    srv.set_workload_healthy(&gvr, "shop", "agent", false);
    let d = get(srv.url(), "/apis/apps/v1/namespaces/shop/daemonsets/agent").json();
    assert_eq!(d["status"]["numberReady"], 0);
    assert_eq!(d["status"]["numberUnavailable"], 1);
    srv.set_workload_healthy(&gvr, "shop", "agent", true);
    let d = get(srv.url(), "/apis/apps/v1/namespaces/shop/daemonsets/agent").json();
    assert_eq!(
        d["status"]["numberReady"],
        d["status"]["desiredNumberScheduled"]
    );
}

/// pkg/registry/core/namespace/strategy.go `PrepareForUpdate`: an update keeps a Namespace's
/// `spec.finalizers` and `status` (finalizers change only through the finalize subresource);
/// `PrepareForCreate` makes it Active whatever the client sent.
#[test]
fn a_namespace_update_keeps_its_finalizers_and_status() {
    let srv = TestServer::start_blocking();
    let r = post(
        srv.url(),
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
            "status": {"phase": "Terminating"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"]["phase"], "Active");
    assert_eq!(r.json()["spec"]["finalizers"], json!(["kubernetes"]));
    let mut ns = r.json();
    ns["spec"]["finalizers"] = json!(["example.com/x"]);
    ns["metadata"]["labels"]["team"] = json!("a");
    let r = put(srv.url(), "/api/v1/namespaces/n", &ns);
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = get(srv.url(), "/api/v1/namespaces/n").json();
    assert_eq!(
        stored["metadata"]["labels"]["team"], "a",
        "the update itself is taken"
    );
    assert_eq!(stored["spec"]["finalizers"], json!(["kubernetes"]));
    let r = request(
        srv.url(),
        "PATCH",
        "/api/v1/namespaces/n?fieldManager=m&force=true",
        Some("application/apply-patch+yaml"),
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": []}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = get(srv.url(), "/api/v1/namespaces/n").json();
    assert_eq!(stored["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(stored["status"]["phase"], "Active");
}
