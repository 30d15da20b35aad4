//! The in-cluster `KeelsonEnvironment` status is written under the Lease
//! fence one write at a time: a status write never goes out on a check made
//! before the object's own apply (a replica paused during that first write
//! must not send the second when it resumes), the object is applied once per
//! process, and again when someone deleted it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use keelson::controller::fence::Fence;
use keelson::record::EnvStatus;
use keelson::record::kube::{ClusterStatus, ClusterStatusError};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_apiserver::{Gvr, TestServer};
use serde_json::json;

/// Lets `allowed` checks pass, refuses every one after them.
struct Countdown {
    allowed: usize,
    checks: AtomicUsize,
}

impl Fence for Countdown {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < self.allowed {
                Ok(())
            } else {
                Err("lease keelson-env-dev is no longer ours".to_string())
            }
        })
    }
}

fn fence(allowed: usize) -> Countdown {
    Countdown {
        allowed,
        checks: AtomicUsize::new(0),
    }
}

/// Successful writes to KeelsonEnvironments since request `from`: (method, path).
fn writes(srv: &TestServer, from: usize) -> Vec<(String, String)> {
    srv.requests()[from..]
        .iter()
        .filter(|r| r.is_write() && (200..300).contains(&r.status))
        .filter(|r| r.path.contains("/keelsonenvironments/"))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_write_is_fenced_on_its_own_and_the_object_is_applied_once() {
    keelson::http::install_crypto_provider();
    let srv = TestServer::start().await;
    srv.create_object(
        &Gvr::parse("apiextensions.k8s.io/v1/customresourcedefinitions"),
        "test",
        keelson::record::kube::crd(),
    )
    .unwrap();
    srv.create_object(
        &Gvr::parse("v1/namespaces"),
        "test",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keelson-system"}}),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    srv.write_kubeconfig(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let status = ClusterStatus::new(client, "keelson-system");
    let gvr = Gvr::parse("keelson.dev/v1/keelsonenvironments");
    let st = |drift| EnvStatus {
        env: "dev".into(),
        drift,
        ..EnvStatus::default()
    };
    let obj = "/apis/keelson.dev/v1/namespaces/keelson-system/keelsonenvironments/dev";
    let stored_drift = || {
        srv.get_object(&gvr, Some("keelson-system"), "dev")
            .and_then(|o| o["status"]["drift"].as_u64())
    };

    // The fence lets the object's apply through and refuses right after it:
    // the status write does not go out.
    let from = srv.requests().len();
    let f = fence(1);
    match status.put(&st(1), "replica-1", &f).await {
        Err(ClusterStatusError::Fenced(why)) => assert!(why.contains("no longer ours"), "{why}"),
        other => panic!("the second write was not fenced: {other:?}"),
    }
    assert_eq!(f.checks.load(Ordering::SeqCst), 2, "one check per write");
    assert_eq!(writes(&srv, from), [("PATCH".to_string(), obj.to_string())]);
    assert_eq!(stored_drift(), None, "no status was written");

    // A fence that refuses at once: nothing at all is written.
    let from = srv.requests().len();
    assert!(matches!(
        status.put(&st(2), "replica-1", &fence(0)).await,
        Err(ClusterStatusError::Fenced(_))
    ));
    assert_eq!(writes(&srv, from), []);

    // Under a valid Lease: the object exists, so one write, the status alone.
    let from = srv.requests().len();
    status.put(&st(3), "replica-1", &fence(9)).await.unwrap();
    assert_eq!(
        writes(&srv, from),
        [("PATCH".to_string(), format!("{obj}/status"))]
    );
    assert_eq!(stored_drift(), Some(3));

    // Deleted behind our back: the status write's 404 applies the object
    // again, then its status.
    assert!(srv.delete_object(&gvr, Some("keelson-system"), "dev"));
    assert_eq!(stored_drift(), None);
    let from = srv.requests().len();
    status.put(&st(4), "replica-1", &fence(9)).await.unwrap();
    assert_eq!(stored_drift(), Some(4), "the status is back");
    let w = writes(&srv, from);
    assert_eq!(
        w,
        [
            ("PATCH".to_string(), obj.to_string()),
            ("PATCH".to_string(), format!("{obj}/status"))
        ],
        "{w:?}"
    );
}
