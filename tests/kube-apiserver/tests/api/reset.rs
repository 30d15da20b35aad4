//! Fields a write resets: each registry strategy's `PrepareForCreate`/`PrepareForUpdate` keeps
//! some fields from the stored object, and its `GetResetFields` tells the server-side apply field
//! manager neither to apply nor to record them for the writer (structured-merge-diff's
//! `Updater.IgnoreFilter`).

use kube_apiserver::TestServer;
use serde_json::{Value, json};

use super::http::{apply, get, post, request};
use super::{deployment, namespace};

fn entry<'a>(obj: &'a Value, manager: &str, subresource: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager && e["subresource"].as_str().unwrap_or("") == subresource)
        .unwrap_or_else(|| panic!("no entry of {manager} ({subresource:?}) in {obj}"))
}

fn crd(srv: &TestServer, plural: &str, kind: &str, status_subresource: bool) {
    let mut version = json!({"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}});
    if status_subresource {
        version["subresources"] = json!({"status": {}});
    }
    let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
            "versions": [version]}});
    let r = post(
        srv.url(),
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Kubernetes' `customResourceStrategy.GetResetFields`: `status` only where the CRD has a status
/// subresource; without one, `status` is an ordinary field that apply writes and records.
#[test]
fn apply_to_the_main_resource_neither_writes_nor_owns_a_status_subresource() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    crd(&srv, "caches", "Cache", true);
    crd(&srv, "notes", "Note", false);
    let with_status = |kind: &str| {
        format!(
            r#"{{"apiVersion":"example.com/v1","kind":"{kind}","metadata":{{"name":"a"}},"spec":{{"size":1}},"status":{{"ready":true}}}}"#
        )
    };

    let url = "/apis/example.com/v1/namespaces/shop/caches/a?fieldManager=keelson";
    let r = apply(srv.url(), url, &with_status("Cache"));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = apply(srv.url(), url, &with_status("Cache"));
    assert_eq!(r.status, 200, "{}", r.text());
    let cache = r.json();
    assert!(cache.get("status").is_none(), "status reset: {cache}");
    let fields = &entry(&cache, "keelson", "")["fieldsV1"];
    assert!(fields["f:spec"]["f:size"].is_object(), "{fields}");
    assert!(
        fields.get("f:status").is_none(),
        "status not owned: {fields}"
    );

    let url = "/apis/example.com/v1/namespaces/shop/notes/a?fieldManager=keelson";
    let r = apply(srv.url(), url, &with_status("Note"));
    assert_eq!(r.status, 201, "{}", r.text());
    let note = r.json();
    assert_eq!(note["status"], json!({"ready": true}), "{note}");
    let fields = &entry(&note, "keelson", "")["fieldsV1"];
    assert!(fields["f:status"]["f:ready"].is_object(), "{fields}");
    // And a merge patch of it (an Update) is recorded like any other field.
    let r = request(
        srv.url(),
        "PATCH",
        "/apis/example.com/v1/namespaces/shop/notes/a?fieldManager=editor",
        Some("application/merge-patch+json"),
        r#"{"status":{"ready":false}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let note = r.json();
    assert_eq!(note["status"]["ready"], false);
    assert!(entry(&note, "editor", "")["fieldsV1"]["f:status"]["f:ready"].is_object());

    // A built-in kind: a Deployment's status stays the controller's.
    let r = post(
        srv.url(),
        "/apis/apps/v1/namespaces/shop/deployments",
        &deployment("web", "nginx:1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"status":{"replicas":7}}"#;
    let r = apply(
        srv.url(),
        "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=keelson",
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let web = r.json();
    assert_ne!(web["status"]["replicas"], 7, "{web}");
    assert!(
        web["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["manager"] != "keelson"),
        "an apply of reset fields only owns nothing: {web}"
    );
}

/// The status strategies: a custom resource's `/status` takes only `status`
/// (`statusStrategy.PrepareForUpdate`, reset set `spec`); a Deployment's resets `spec` and
/// `metadata.labels` and keeps other metadata changes (`deploymentStatusStrategy`).
#[test]
fn a_status_write_resets_spec_and_owns_none_of_it() {
    let srv = TestServer::start_blocking();
    namespace(&srv, "shop");
    crd(&srv, "caches", "Cache", true);
    let base = "/apis/example.com/v1/namespaces/shop/caches/a";
    let r = apply(
        srv.url(),
        &format!("{base}?fieldManager=keelson"),
        r#"{"apiVersion":"example.com/v1","kind":"Cache","metadata":{"name":"a"},"spec":{"size":1}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = apply(
        srv.url(),
        &format!("{base}/status?fieldManager=ctl"),
        r#"{"apiVersion":"example.com/v1","kind":"Cache","metadata":{"name":"a"},"spec":{"size":9},"status":{"ready":true}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cache = r.json();
    assert_eq!(cache["spec"]["size"], 1);
    assert_eq!(cache["status"]["ready"], true);
    let fields = &entry(&cache, "ctl", "status")["fieldsV1"];
    assert!(fields.get("f:spec").is_none(), "{fields}");
    assert!(fields["f:status"]["f:ready"].is_object(), "{fields}");

    let r = post(
        srv.url(),
        "/apis/apps/v1/namespaces/shop/deployments",
        &deployment("web", "nginx:1"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = apply(
        srv.url(),
        "/apis/apps/v1/namespaces/shop/deployments/web/status?fieldManager=ctl",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"tier":"x"},"annotations":{"seen":"yes"}},"spec":{"replicas":5},"status":{"observedGeneration":1}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let web = get(srv.url(), "/apis/apps/v1/namespaces/shop/deployments/web").json();
    assert_eq!(web["spec"]["replicas"], 1, "{web}");
    assert!(web["metadata"]["labels"].get("tier").is_none(), "{web}");
    assert_eq!(web["metadata"]["annotations"]["seen"], "yes", "{web}");
    assert_eq!(
        web["metadata"]["generation"], 1,
        "a status write bumps no generation"
    );
    let fields = &entry(&web, "ctl", "status")["fieldsV1"];
    assert!(fields.get("f:spec").is_none(), "{fields}");
    assert!(fields["f:metadata"].get("f:labels").is_none(), "{fields}");
    assert!(
        fields["f:metadata"]["f:annotations"]["f:seen"].is_object(),
        "{fields}"
    );
    assert!(
        fields["f:status"]["f:observedGeneration"].is_object(),
        "{fields}"
    );
}

/// pkg/registry/core/namespace/strategy.go `PrepareForCreate`: the `kubernetes` finalizer is
/// appended to whatever finalizers the client sends; the creator does not own it.
#[test]
fn a_namespace_is_created_with_the_kubernetes_finalizer_appended() {
    let srv = TestServer::start_blocking();
    let r = post(
        srv.url(),
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"},
            "spec": {"finalizers": ["example.com/x"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    let r = post(
        srv.url(),
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}, "spec": {}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["spec"]["finalizers"], json!(["kubernetes"]));
    let created = r.json();
    let fields = &entry(&created, "api-test", "")["fieldsV1"];
    assert!(fields.pointer("/f:spec/f:finalizers").is_none(), "{fields}");

    let r = apply(
        srv.url(),
        "/api/v1/namespaces/c?fieldManager=keelson",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"},"spec":{"finalizers":["example.com/x"]}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let ns = r.json();
    assert_eq!(
        ns["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    let fields = &entry(&ns, "keelson", "")["fieldsV1"];
    assert!(fields["f:spec"]["f:finalizers"].is_object(), "{fields}");
}
