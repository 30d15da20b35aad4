//! High availability: several real `keelson run` processes share the
//! environments of one Git repository through Leases on the Kubernetes API
//! test server. The server's request log (who wrote what, and when, on the
//! server's clock) is the evidence that no environment ever had two writers.

mod cluster;
mod deploy;
#[path = "../support/get_json.rs"]
mod get_json;
mod log;
mod rbac;
mod shutdown;
mod soak;

use std::time::{Duration, Instant};

use cluster::{Fleet, Setup};

/// Lease timing of these tests: `duration`, `renewDeadline`, `retryPeriod`.
const DURATION: Duration = Duration::from_secs(2);

/// Three replicas share six environments. One is paused (SIGSTOP) mid-apply
/// past its Lease duration and resumed; later one is killed (SIGKILL)
/// mid-apply. Every environment converges after each, the paused replica
/// writes nothing on resuming until it holds a Lease again, and the server's
/// request log shows no write outside its writer's Lease term, and every
/// request the replicas made is one deploy/rbac.yaml allows. About 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_killed_replicas_never_overlap_writers() {
    let setup = Setup::new(6).await;
    let mut fleet = Fleet::start(&setup, 3);
    setup
        .wait_converged("1.0.0", Duration::from_secs(120))
        .await;
    // The first replica up may sync everything before the others join; once
    // all three are members, a release is shared between them.
    setup.wait_members(3, Duration::from_secs(30)).await;
    let shared_at = Instant::now();
    setup.release("1.1.0");
    setup
        .wait_converged("1.1.0", Duration::from_secs(120))
        .await;
    let owners = setup.owners_since(shared_at);
    assert_eq!(
        owners.len(),
        3,
        "every replica applies some environments once all are members: {owners:?}"
    );

    // Slow reads and writes down so that a replica is caught mid-sync.
    setup.slow_writes(Duration::from_millis(150));
    setup.slow_reads(Duration::from_millis(100));

    // SIGSTOP right after taking an environment's Lease, with the whole
    // sync still to do; the others take over after one Lease duration.
    let since = Instant::now();
    setup.release("2.0.0");
    let paused = setup.wait_acquired(since, Duration::from_secs(60)).await;
    fleet.signal(&paused, "STOP");
    let stopped_at = Instant::now();
    setup
        .wait_converged("2.0.0", Duration::from_secs(120))
        .await;
    // Nobody took over a Lease of the paused replica before it went one
    // duration without a renewal (server clock), and some were taken over.
    let requests = setup.srv.requests();
    let lease_writes: Vec<_> = requests
        .iter()
        .filter(|r| r.is_write() && (200..300).contains(&r.status))
        .filter(|r| r.path.contains("/leases/keelson-env-"))
        .collect();
    let mut takeovers = 0;
    for path in lease_writes
        .iter()
        .map(|r| &r.path)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let by = |r: &&&kube_apiserver::RequestRecord| {
            log::identity(r).as_deref() == Some(paused.as_str())
        };
        let Some(last) = lease_writes
            .iter()
            .filter(|r| &r.path == path && r.started < stopped_at)
            .filter(by)
            .max_by_key(|r| r.started)
        else {
            continue;
        };
        // Released before the pause: free for anyone at once.
        if log::is_release(last) {
            continue;
        }
        let last = last.started;
        let taken = lease_writes
            .iter()
            .filter(|r| &r.path == path && r.started > last && !by(r))
            .map(|r| r.started)
            .min();
        if let Some(t) = taken {
            takeovers += 1;
            assert!(
                t.duration_since(last) >= DURATION,
                "{path} taken over {:?} after the paused replica's last renewal",
                t.duration_since(last)
            );
        }
    }
    assert!(
        takeovers > 0,
        "no lease of the paused replica was taken over"
    );
    let resumed_at = Instant::now();
    fleet.signal(&paused, "CONT");
    // Its writes still to go (objects, or at least the status object) are
    // refused by the fence.
    let deadline = resumed_at + Duration::from_secs(10);
    let refused = |logs: String| {
        logs.contains("lease fence") || logs.contains("status not written to the cluster")
    };
    while !refused(fleet.logs(&paused)) {
        assert!(
            Instant::now() < deadline,
            "the paused replica never refused a write after resuming:\n{}",
            fleet.logs(&paused)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = log::env_writes_between_resume_and_reacquire(
        &setup.srv.requests(),
        &setup.namespaces(),
        &paused,
        resumed_at,
    );
    assert!(
        stale.is_empty(),
        "{paused} wrote after resuming without taking the lease again: {stale:#?}"
    );

    // SIGKILL mid-apply; the others converge within a Lease duration plus
    // one sync.
    let release = setup.release("3.0.0");
    let victim = setup.wait_mid_apply(Duration::from_secs(60)).await;
    let killed_at = Instant::now();
    fleet.kill(&victim);
    setup
        .wait_converged("3.0.0", Duration::from_secs(120))
        .await;
    let took = killed_at.elapsed();
    eprintln!(
        "paused {paused}, then killed {victim}: converged {took:?} after the kill (lease duration {DURATION:?})"
    );
    // One Lease duration, then one sync of slowed writes; generous for a
    // shared 2-core machine.
    assert!(
        took < DURATION + Duration::from_secs(20),
        "took {took:?} to converge after the kill"
    );

    let report = log::check_single_writer(&setup.srv.requests(), &setup.namespaces());
    eprintln!("{report}");
    report.assert_ok();
    assert!(
        report.handovers >= 2,
        "the environments did not change hands after the pause and the kill: {report}"
    );

    // State in the cluster: every environment's KeelsonEnvironment names
    // the commit, and any replica's /status shows all of them.
    let short: String = release.chars().take(12).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let objects = setup.srv.list_objects(
            &kube_apiserver::Gvr::parse("keelson.dev/v1/keelsonenvironments"),
            Some(cluster::LEASE_NS),
        );
        let synced: Vec<&str> = objects
            .iter()
            .filter(|o| o["status"]["commit"] == short.as_str() && o["status"]["state"] == "Synced")
            .filter_map(|o| o["spec"]["environment"].as_str())
            .collect();
        if synced.len() == setup.envs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "KeelsonEnvironments at {short}: {synced:?} of {:?}",
            setup.envs
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let survivor = fleet
        .addrs
        .keys()
        .find(|id| **id != victim)
        .unwrap()
        .clone();
    let status = get_json::get_json(&format!("{}/status", fleet.addrs[&survivor])).await;
    let at_head: Vec<&str> = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["lastApplied"]["commit"] == release.as_str())
        .filter_map(|e| e["env"].as_str())
        .collect();
    assert_eq!(
        at_head.len(),
        setup.envs.len(),
        "{survivor}'s /status does not show every environment at {release}: {status}"
    );
    // `keelson status --kubeconfig` reads the same picture from the cluster.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args([
            "status",
            "-o",
            "json",
            "--context",
            "test",
            "--namespace",
            cluster::LEASE_NS,
        ])
        .arg("--kubeconfig")
        .arg(setup.dir.path().join("kubeconfig"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let at_head = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["lastApplied"]["commit"] == release.as_str())
        .count();
    assert_eq!(
        at_head,
        setup.envs.len(),
        "keelson status --kubeconfig: {listed}"
    );

    // Every request the replicas made is allowed by deploy/rbac.yaml.
    let (checked, refused) = rbac::refused(
        &setup.srv.requests(),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(
        refused.is_empty(),
        "requests deploy/rbac.yaml does not allow ({checked} checked):\n{}",
        refused.join("\n")
    );
    assert!(checked > 100, "only {checked} replica requests checked");

    // SIGTERM: every replica exits cleanly and hands its Leases back (all
    // but the killed replica's member Lease, which simply expires).
    fleet.stop_all();
    let killed = format!("keelson-member-{victim}");
    let held: Vec<String> = setup
        .srv
        .list_objects(
            &kube_apiserver::Gvr::parse("coordination.k8s.io/v1/leases"),
            Some(cluster::LEASE_NS),
        )
        .iter()
        .filter(|l| l["metadata"]["name"] != killed.as_str())
        .filter(|l| {
            l["spec"]["holderIdentity"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
        })
        .map(|l| {
            format!(
                "{} held by {}",
                l["metadata"]["name"], l["spec"]["holderIdentity"]
            )
        })
        .collect();
    assert!(
        held.is_empty(),
        "leases still held after every replica stopped: {held:?}"
    );
}
