//! SIGTERM while a sync waits for a rollout that never completes: the
//! replica exits within `--shutdown-timeout` (plus a moment), `/healthz`
//! answers while it drains and `/readyz` does not, and the environment's
//! Lease is released for the next replica at once. About 5 s.

use std::time::{Duration, Instant};

use kube_apiserver::{Gvr, Rollout};

use crate::cluster::{APPS, Fleet, LEASE_NS, Setup};

const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_health_wait_exits_in_time_and_releases_the_lease() {
    let setup = Setup::new(1).await;
    let deployments = Gvr::parse("apps/v1/deployments");
    for app in APPS {
        setup
            .srv
            .set_rollout(&deployments, "ns-env-0", app, Rollout::Updated(0));
    }
    // Waits for health (no --no-wait).
    let mut fleet = Fleet::start_with(&setup, 1, &["--shutdown-timeout", "3s"]);
    let base = fleet.addrs["replica-0"].clone();
    let leases = Gvr::parse("coordination.k8s.io/v1/leases");
    let holder = || {
        setup
            .srv
            .get_object(&leases, Some(LEASE_NS), "keelson-env-env-0")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    // Applied, and waiting for the rollout under the Lease.
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup
        .srv
        .get_object(&deployments, Some("ns-env-0"), APPS[0])
        .is_none()
        || holder() != "replica-0"
    {
        assert!(Instant::now() < deadline, "{}", fleet.logs("replica-0"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let termed = Instant::now();
    fleet.signal("replica-0", "TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = keelson::http::client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "/healthz while draining");
    let ready = keelson::http::client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "/readyz while draining");
    assert!(ready.text().await.unwrap().contains("shutting down"));

    let status = fleet.wait_exit("replica-0", TIMEOUT + Duration::from_secs(5));
    let took = termed.elapsed();
    let logs = fleet.logs("replica-0");
    assert!(status.success(), "exit {status}:\n{logs}");
    assert!(
        took < TIMEOUT + Duration::from_secs(2),
        "took {took:?} to stop with --shutdown-timeout {TIMEOUT:?}"
    );
    assert!(logs.contains("abandoning in-flight syncs"), "{logs}");
    assert_eq!(holder(), "", "the environment Lease was not released");
}
