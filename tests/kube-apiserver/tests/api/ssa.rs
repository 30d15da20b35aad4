//! Server-side apply over HTTP: YAML bodies, create-via-apply, merge keys, field removal,
//! conflicts with their Status, forced takeover, and dryRun.

use kube_apiserver::{Gvr, TestServer};
use serde_json::json;

use super::http::{apply, get, request};
use super::namespace;

const WEB: &str = "/apis/apps/v1/namespaces/shop/deployments/web";

fn manifest(image: &str, env: &[(&str, &str)], replicas: Option<u32>) -> String {
    let mut s = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    app: web\nspec:\n",
    );
    if let Some(r) = replicas {
        s.push_str(&format!("  replicas: {r}\n"));
    }
    s.push_str("  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n");
    s.push_str(&format!(
        "      - name: web\n        image: {image}\n        env:\n"
    ));
    for (k, v) in env {
        s.push_str(&format!("        - name: {k}\n          value: \"{v}\"\n"));
    }
    s.push_str("      - name: sidecar\n        image: envoy:1\n");
    s
}

#[test]
fn apply_creates_merges_by_key_and_removes_dropped_fields() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let url = format!("{WEB}?fieldManager=keelson");
    let r = apply(
        srv.url(),
        &url,
        &manifest("web:1", &[("A", "1"), ("B", "2")], Some(2)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );

    // Another manager adds an env var to the same container (merge key: name).
    let other = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        env:\n        - name: C\n          value: \"3\"\n";
    let r = apply(srv.url(), &format!("{WEB}?fieldManager=injector"), other);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json()["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert_eq!(
        env,
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}])
    );

    // keelson drops B and the replicas: B goes, C (owned by the injector) stays, and replicas,
    // owned by nobody now, is removed and defaulted back to 1 (the real server's HPA gotcha).
    let r = apply(srv.url(), &url, &manifest("web:2", &[("A", "1")], None));
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    let env = &d["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][1]["name"],
        "sidecar"
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["metadata"]["generation"], 3,
        "both spec changes bumped generation"
    );
    let keelson = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "keelson")
        .unwrap();
    assert!(keelson["fieldsV1"]["f:spec"].get("f:replicas").is_none());
}

#[test]
fn conflict_status_lists_fields_and_force_moves_ownership() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson"),
        &manifest("web:1", &[("A", "1")], Some(2)),
    );
    let hpa = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":4,\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"web:9\"}]}}}}";
    let r = apply(
        srv.url(),
        &format!("{WEB}?fieldManager=hpa-controller"),
        hpa,
    );
    assert_eq!(r.status, 409);
    let s = r.json();
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(
        s["message"],
        "Apply failed with 2 conflicts: conflicts with \"keelson\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
    assert_eq!(
        s["details"]["causes"][0],
        json!({"type": "FieldManagerConflict", "message": "conflict with \"keelson\"", "field": ".spec.replicas"})
    );

    let r = apply(
        srv.url(),
        &format!("{WEB}?fieldManager=hpa-controller&force=true"),
        hpa,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["spec"]["replicas"], 4);
    // keelson re-applying its own values now conflicts the other way round.
    let r = apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson"),
        &manifest("web:1", &[("A", "1")], Some(2)),
    );
    assert_eq!(r.status, 409);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("conflicts with \"hpa-controller\"")
    );
}

#[test]
fn dry_run_answers_fully_and_stores_nothing() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let rv = srv.resource_version();
    srv.reset_requests();
    let r = apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson&dryRun=All"),
        &manifest("web:1", &[], Some(1)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["metadata"]["generation"], 1);
    assert_eq!(
        r.json()["spec"]["strategy"]["type"],
        "RollingUpdate",
        "defaults are applied in a dry run too"
    );
    assert_eq!(get(srv.url(), WEB).status, 404);
    assert_eq!(srv.resource_version(), rv);
    assert_eq!(srv.write_count(), 0);

    apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson"),
        &manifest("web:1", &[], Some(1)),
    );
    let stored = srv
        .get_object(&Gvr::parse("apps/v1/deployments"), Some("shop"), "web")
        .unwrap();
    let rv = srv.resource_version();
    for (method, ct, body) in [
        (
            "PATCH",
            "application/merge-patch+json",
            "{\"spec\":{\"replicas\":5}}",
        ),
        (
            "PATCH",
            "application/json-patch+json",
            "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":5}]",
        ),
        (
            "PATCH",
            "application/strategic-merge-patch+json",
            "{\"spec\":{\"replicas\":5}}",
        ),
        ("DELETE", "application/json", "{}"),
    ] {
        let r = request(
            srv.url(),
            method,
            &format!("{WEB}?dryRun=All"),
            Some(ct),
            body,
        );
        assert_eq!(r.status, 200, "{method} {ct}: {}", r.text());
        if method == "PATCH" {
            assert_eq!(r.json()["spec"]["replicas"], 5);
            assert_eq!(r.json()["metadata"]["generation"], 2);
        }
    }
    assert_eq!(srv.resource_version(), rv);
    assert_eq!(
        srv.get_object(&Gvr::parse("apps/v1/deployments"), Some("shop"), "web")
            .unwrap(),
        stored
    );
    assert_eq!(
        srv.write_count(),
        1,
        "only the real apply counts: {:?}",
        srv.requests()
    );
}

#[test]
fn update_managers_are_recorded_for_patches_and_a_noop_apply_does_not_write() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let url = format!("{WEB}?fieldManager=keelson");
    apply(srv.url(), &url, &manifest("web:1", &[], Some(1)));
    let r = request(
        srv.url(),
        "PATCH",
        &format!("{WEB}?fieldManager=scaler"),
        Some("application/merge-patch+json"),
        "{\"spec\":{\"replicas\":3}}",
    );
    let mf = r.json()["metadata"]["managedFields"].clone();
    let scaler = mf
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "scaler")
        .unwrap();
    assert_eq!(scaler["operation"], "Update");
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

    let before = srv.resource_version();
    let again = apply(srv.url(), &url, &manifest("web:1", &[], None));
    assert_eq!(again.status, 200);
    let after_first = srv.resource_version();
    let r = apply(srv.url(), &url, &manifest("web:1", &[], None));
    assert_eq!(r.status, 200);
    assert!(after_first >= before);
    assert_eq!(
        srv.resource_version(),
        after_first,
        "an identical apply must not bump resourceVersion"
    );
}

#[test]
fn direct_hooks_apply_as_another_manager_and_delete() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let gvr = Gvr::parse("apps/v1/deployments");
    apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson"),
        &manifest("web:1", &[], Some(2)),
    );
    let hpa = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 6}});
    let err = srv
        .apply_object(&gvr, "hpa-controller", hpa.clone(), false)
        .unwrap_err();
    assert_eq!(err.code, 409);
    let d = srv.apply_object(&gvr, "hpa-controller", hpa, true).unwrap();
    assert_eq!(d["spec"]["replicas"], 6);
    assert!(srv.delete_object(&gvr, Some("shop"), "web"));
    assert!(!srv.delete_object(&gvr, Some("shop"), "web"));
    assert_eq!(get(srv.url(), WEB).status, 404);
}

#[test]
fn duplicate_env_names_fail_apply_like_the_real_server() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let r = apply(
        srv.url(),
        &format!("{WEB}?fieldManager=keelson"),
        &manifest("web:1", &[("JAVA_OPTS", "a"), ("JAVA_OPTS", "b")], Some(1)),
    );
    assert_eq!(r.status, 500);
    let s = r.json();
    assert!(
        s.get("reason").is_none(),
        "the real server gives no reason: {s}"
    );
    assert_eq!(
        s["message"],
        "failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"web\"].env: duplicate entries for key [name=\"JAVA_OPTS\"]"
    );
    assert_eq!(get(srv.url(), WEB).status, 404);
}

#[test]
fn custom_resources_merge_lists_by_their_crd_list_map_keys() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gateways.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gateways", "singular": "gateway", "kind": "Gateway"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "listeners": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
                    "hosts": {"type": "array", "items": {"type": "string"}}}}}}}}]}});
    let r = super::http::post(
        srv.url(),
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let path = "/apis/example.com/v1/namespaces/shop/gateways/gw";
    let a = r#"{"apiVersion":"example.com/v1","kind":"Gateway","metadata":{"name":"gw"},"spec":{"listeners":[{"name":"http","port":80}],"hosts":["a"]}}"#;
    let b = r#"{"apiVersion":"example.com/v1","kind":"Gateway","metadata":{"name":"gw"},"spec":{"listeners":[{"name":"https","port":443}]}}"#;
    assert_eq!(
        apply(srv.url(), &format!("{path}?fieldManager=keelson"), a).status,
        201
    );
    let r = apply(srv.url(), &format!("{path}?fieldManager=certs"), b);
    assert_eq!(r.status, 200, "{}", r.text());
    let gw = r.json();
    assert_eq!(
        gw["spec"]["listeners"],
        json!([{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    );
    let certs = gw["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "certs")
        .unwrap();
    assert!(
        certs["fieldsV1"]["f:spec"]["f:listeners"]["k:{\"name\":\"https\"}"].is_object(),
        "{certs}"
    );
    // hosts has no list type: atomic, owned as a whole.
    let keelson = gw["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "keelson")
        .unwrap();
    assert_eq!(keelson["fieldsV1"]["f:spec"]["f:hosts"], json!({}));

    // Fields the CRD schema does not declare: apply fails, a plain create drops them.
    let typo = r#"{"apiVersion":"example.com/v1","kind":"Gateway","metadata":{"name":"gw2"},"spec":{"listners":[]}}"#;
    let typo = typo.replace("[]", "[{\"name\":\"x\"}]");
    let r = apply(
        srv.url(),
        "/apis/example.com/v1/namespaces/shop/gateways/gw2?fieldManager=keelson",
        &typo,
    );
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json()["message"],
        "failed to create typed patch object (shop/gw2; example.com/v1, Kind=Gateway): .spec.listners: field not declared in schema"
    );
    let created = super::http::post(
        srv.url(),
        "/apis/example.com/v1/namespaces/shop/gateways",
        &serde_json::from_str(&typo).unwrap(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json()["spec"],
        json!({}),
        "pruned like a structural schema prunes"
    );
}

#[test]
fn undeclared_fields_fail_apply_strict_writes_and_are_dropped_otherwise() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let typo = manifest("web:1", &[], Some(1)).replace("  replicas: 1\n", "  replica: 1\n");
    let r = apply(srv.url(), &format!("{WEB}?fieldManager=keelson"), &typo);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "failed to create typed patch object (shop/web; apps/v1, Kind=Deployment): .spec.replica: field not declared in schema"
    );

    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "dta": {"x": "y"}});
    let r = request(
        srv.url(),
        "POST",
        "/api/v1/namespaces/shop/configmaps?fieldValidation=Strict",
        Some("application/json"),
        &cm.to_string(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""
    );
    let r = super::http::post(srv.url(), "/api/v1/namespaces/shop/configmaps", &cm);
    assert_eq!(r.status, 201);
    assert!(
        r.json().get("dta").is_none(),
        "dropped like the real decoder does: {}",
        r.text()
    );
    assert_eq!(
        r.header("warning"),
        Some(r#"299 - "unknown field \"dta\"""#)
    );
    let r = request(
        srv.url(),
        "POST",
        "/api/v1/namespaces/shop/configmaps?fieldValidation=Ignore",
        Some("application/json"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "dta": {"x": "y"}}).to_string(),
    );
    assert_eq!(r.status, 201);
    assert!(r.header("warning").is_none(), "Ignore drops silently");
}

#[test]
fn a_keyed_list_takes_the_order_of_the_applied_configuration() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    let url = format!("{WEB}?fieldManager=keelson");
    let with = |first: &str, second: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - {{name: {first}, image: {first}:1}}\n      - {{name: {second}, image: {second}:1}}\n"
        )
    };
    assert_eq!(apply(srv.url(), &url, &with("app", "proxy")).status, 201);
    // Another manager adds a container of its own.
    let injector = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: agent, image: agent:1}\n";
    let r = apply(srv.url(), &format!("{WEB}?fieldManager=injector"), injector);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = apply(srv.url(), &url, &with("proxy", "app"));
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = get(srv.url(), WEB).json()["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    // keelson's two containers follow its configuration (proxy before app); the injector's, not
    // named by it, keeps its place behind the live item it followed, as structured-merge-diff
    // merges: live [app, proxy, agent] + applied [proxy, app] → [proxy, agent, app].
    assert_eq!(names, ["proxy", "agent", "app"]);
}
