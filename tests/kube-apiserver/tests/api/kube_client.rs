//! keelson's Kubernetes client (kube-rs 5) against the test server: kubeconfig, discovery,
//! apply with a field manager, dry runs, typed errors, paging and watch.

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Discovery;
use kube::{Client, Config};
use kube_apiserver::TestServer;
use serde_json::json;

async fn client(srv: &TestServer) -> Client {
    // Built in the workspace, rustls has both ring and aws-lc-rs; pick one.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    srv.write_kubeconfig(&path).unwrap();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn deployment(image: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_discovers_applies_lists_and_watches() {
    let srv = TestServer::start().await;
    let client = client(&srv).await;

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let apps = discovery.get("apps").expect("apps group discovered");
    assert!(
        apps.recommended_resources()
            .iter()
            .any(|(ar, caps)| ar.kind == "Deployment"
                && caps.scope == kube::discovery::Scope::Namespaced)
    );

    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let missing = deploys.get("web").await.unwrap_err();
    match missing {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "deployments.apps \"web\" not found");
        }
        other => panic!("expected an API error, got {other:?}"),
    }

    let pp = PatchParams::apply("keelson");
    let dry = deploys
        .patch(
            "web",
            &PatchParams {
                dry_run: true,
                ..pp.clone()
            },
            &Patch::Apply(deployment("web:1")),
        )
        .await
        .unwrap();
    assert_eq!(dry.metadata.generation, Some(1));
    assert!(
        deploys.get_opt("web").await.unwrap().is_none(),
        "dry run stored nothing"
    );

    let d = deploys
        .patch("web", &pp, &Patch::Apply(deployment("web:1")))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("keelson")
    );
    let again = deploys
        .patch("web", &pp, &Patch::Apply(deployment("web:2")))
        .await
        .unwrap();
    assert_eq!(again.metadata.generation, Some(2));
    let live = deploys.get("web").await.unwrap();
    assert_eq!(live.status.unwrap().ready_replicas, Some(2));

    let conflict = deploys
        .patch(
            "web",
            &PatchParams::apply("hpa-controller"),
            &Patch::Apply(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 7}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{conflict:?}"
    );

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    for i in 0..5 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "labels": {"app": "web"}}});
        cms.patch(&format!("cm-{i}"), &pp, &Patch::Apply(cm))
            .await
            .unwrap();
    }
    let first = cms
        .list(&ListParams::default().labels("app=web").limit(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("continue token");
    let rest = cms
        .list(
            &ListParams::default()
                .labels("app=web")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);

    let rv = first.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    cms.delete("cm-0", &Default::default()).await.unwrap();
    let mut deleted = None;
    while let Some(ev) = stream.next().await {
        if let WatchEvent::Deleted(cm) = ev.unwrap() {
            deleted = cm.metadata.name;
            break;
        }
    }
    assert_eq!(deleted.as_deref(), Some("cm-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_verifies_the_generated_ca_and_sends_its_token() {
    let opts = kube_apiserver::ServerOptions {
        tls: true,
        require_token: true,
        ..Default::default()
    };
    let srv = TestServer::start_with(opts).await.unwrap();
    assert!(
        srv.ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let client = client(&srv).await;
    let nss: Api<Namespace> = Api::all(client);
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    assert!(srv.requests().iter().all(|r| r.authenticated));

    // A client that does not trust the CA is refused at the TLS layer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let no_ca: String = srv
        .kubeconfig()
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, no_ca).unwrap();
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let untrusting: Api<Namespace> = Api::all(Client::try_from(config).unwrap());
    assert!(untrusting.list(&ListParams::default()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_metadata_only_calls_and_events_group() {
    let srv = TestServer::start().await;
    let client = client(&srv).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("keelson");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inv", "labels": {"app.kubernetes.io/managed-by": "keelson"}}, "data": {"big": "x".repeat(1000)}});
    cms.patch("inv", &pp, &Patch::Apply(cm)).await.unwrap();
    let metas = cms
        .list_metadata(&ListParams::default().labels("app.kubernetes.io/managed-by=keelson"))
        .await
        .unwrap();
    assert_eq!(metas.items.len(), 1);
    assert_eq!(metas.items[0].metadata.name.as_deref(), Some("inv"));
    let one = cms.get_metadata("inv").await.unwrap();
    assert_eq!(
        one.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let log = srv.requests();
    let last = log.last().unwrap();
    assert_eq!(last.path, "/api/v1/namespaces/default/configmaps/inv");

    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "default");
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "sync.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "keelson", "reportingInstance": "keelson-0",
        "action": "Apply", "reason": "Synced", "type": "Normal", "regarding": {"kind": "ConfigMap", "name": "inv", "namespace": "default"}});
    events
        .create(&PostParams::default(), &serde_json::from_value(ev).unwrap())
        .await
        .unwrap();
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_streaming_list_ends_initial_events_with_a_bookmark() {
    let srv = TestServer::start().await;
    let client = client(&srv).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..3 {
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("s{i}")}});
        cms.patch(
            &format!("s{i}"),
            &PatchParams::apply("keelson"),
            &Patch::Apply(cm),
        )
        .await
        .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::streaming_lists().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = Vec::new();
    loop {
        match stream
            .next()
            .await
            .expect("stream ended before the bookmark")
            .unwrap()
        {
            WatchEvent::Added(cm) => added.push(cm.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, ["s0", "s1", "s2"]);
}
