//! Workload health after apply, end to end: the test server's stand-in controllers produce
//! each rollout state (failed, paused, OnDelete, partitioned, old pods terminating, Jobs,
//! DaemonSets), `keelson reconcile` judges it, and the wait ends as soon as the verdict is
//! final. The same states are read by `kubectl rollout status`, the reference.

use std::process::Command;
use std::time::{Duration, Instant};

use kube_apiserver::{Gvr, Rollout};
use serde_json::{Value, json};

use crate::Harness;

const ENV: &str = "preview-pr-123";
const NS: &str = "shop-preview-pr-123";
const MANIFESTS: &str = "environments/preview-pr-123/manifests/workloads.yaml";

fn gvr(s: &str) -> Gvr {
    Gvr::parse(s)
}

/// Run `reconcile --output json` for the preview environment: (exit code, its result, time).
fn reconcile(h: &Harness, timeout_secs: u64) -> (i32, Value, Duration) {
    let started = Instant::now();
    // With a unit, as a user writes it (`2s`); plain seconds parse too.
    let timeout = format!("{timeout_secs}s");
    let (code, out, err) = h.keelson(&[
        "reconcile",
        "--env",
        ENV,
        "--timeout",
        &timeout,
        "--output",
        "json",
    ]);
    let took = started.elapsed();
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, doc["environments"][0].clone(), took)
}

/// The health entry of one workload in a reconcile result.
fn health_of<'a>(env: &'a Value, kind: &str, name: &str) -> &'a Value {
    env["apply"]["health"]
        .as_array()
        .and_then(|hs| {
            hs.iter()
                .find(|h| h["id"]["kind"] == kind && h["id"]["name"] == name)
        })
        .unwrap_or_else(|| panic!("no health for {kind}/{name} in {env:#}"))
}

fn workload(kind: &str, name: &str, image: &str, spec_extra: Value) -> String {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": name, "image": image,
                "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]},
        },
    });
    if kind == "Job" {
        spec.as_object_mut().unwrap().remove("selector");
        spec["template"]["spec"]["restartPolicy"] = json!("Never");
    }
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    serde_json::to_string(&json!({
        "apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn write_manifests(h: &Harness, docs: &[String]) {
    let p = h.path(MANIFESTS);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, docs.join("\n---\n")).unwrap();
}

#[test]
fn a_failed_rollout_ends_the_wait_at_once_as_degraded() {
    let h = Harness::new();
    // The deployment controller will report ProgressDeadlineExceeded for the app.
    h.srv.set_rollout(
        &gvr("apps/v1/deployments"),
        NS,
        "storefront",
        Rollout::Failed,
    );
    let (code, env, took) = reconcile(&h, 300);
    assert_eq!(code, 1, "{env:#}");
    assert!(took < Duration::from_secs(60), "waited {took:?}");
    let hs = health_of(&env, "Deployment", "storefront");
    assert_eq!(hs["health"], "degraded", "{hs}");
    assert!(
        hs["reason"]
            .as_str()
            .unwrap()
            .contains("ProgressDeadlineExceeded"),
        "{hs}"
    );
    assert_eq!(env["apps"][0]["health"], "degraded");
    // The live object says the same.
    let live = h
        .get("apps/v1/deployments", Some(NS), "storefront")
        .unwrap();
    let progressing = live["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["status"], "False");
}

#[test]
fn a_rollout_with_old_pods_terminating_is_progressing_until_the_timeout() {
    let h = Harness::new();
    h.srv.set_rollout(
        &gvr("apps/v1/deployments"),
        NS,
        "storefront",
        Rollout::OldPodsTerminating(1),
    );
    let (code, env, _) = reconcile(&h, 2);
    assert_eq!(code, 1, "{env:#}");
    let hs = health_of(&env, "Deployment", "storefront");
    assert_eq!(hs["health"], "progressing", "{hs}");
    assert_eq!(
        hs["reason"],
        "1 old replicas are pending termination (after waiting 2s)"
    );
    let live = h
        .get("apps/v1/deployments", Some(NS), "storefront")
        .unwrap();
    assert_eq!(live["status"]["replicas"], 2);
    assert_eq!(live["status"]["updatedReplicas"], 1);
}

#[test]
fn a_paused_deployment_is_suspended_and_does_not_hold_the_apply() {
    let h = Harness::new();
    write_manifests(
        &h,
        &[workload(
            "Deployment",
            "batch-ui",
            "registry.example.com/shop/batch-ui:1.0",
            json!({"replicas": 2, "paused": true}),
        )],
    );
    let (code, env, took) = reconcile(&h, 300);
    assert_eq!(code, 2, "{env:#}");
    assert!(took < Duration::from_secs(60), "waited {took:?}");
    let hs = health_of(&env, "Deployment", "batch-ui");
    assert_eq!(hs["health"], "suspended", "{hs}");
    assert_eq!(hs["reason"], "Deployment is paused");
    let live = h.get("apps/v1/deployments", Some(NS), "batch-ui").unwrap();
    let progressing = live["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["reason"], "DeploymentPaused");
}

#[test]
fn statefulsets_with_on_delete_or_a_partition_are_healthy_after_an_image_change() {
    let h = Harness::new();
    let docs = |tag: &str| {
        vec![
            workload(
                "StatefulSet",
                "db",
                &format!("registry.example.com/shop/db:{tag}"),
                json!({"replicas": 3, "serviceName": "db", "updateStrategy": {"type": "OnDelete"}}),
            ),
            workload(
                "StatefulSet",
                "cache",
                &format!("registry.example.com/shop/cache:{tag}"),
                json!({"replicas": 3, "serviceName": "cache",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
            ),
        ]
    };
    write_manifests(&h, &docs("1.0"));
    let (code, env, _) = reconcile(&h, 300);
    assert_eq!(code, 2, "{env:#}");
    write_manifests(&h, &docs("1.1"));
    let (code, env, took) = reconcile(&h, 300);
    assert_eq!(code, 2, "{env:#}");
    assert!(took < Duration::from_secs(60), "waited {took:?}");
    for name in ["db", "cache"] {
        let hs = health_of(&env, "StatefulSet", name);
        assert_eq!(hs["health"], "healthy", "{hs}");
    }
    // OnDelete: no pod took the new template; the revisions differ.
    let db = h.get("apps/v1/statefulsets", Some(NS), "db").unwrap();
    assert_eq!(db["status"]["updatedReplicas"], 0);
    assert_ne!(
        db["status"]["currentRevision"],
        db["status"]["updateRevision"]
    );
    // Partition 2 of 3: only ordinal 2 was updated.
    let cache = h.get("apps/v1/statefulsets", Some(NS), "cache").unwrap();
    assert_eq!(cache["status"]["updatedReplicas"], 1);
    assert_eq!(cache["status"]["currentReplicas"], 2);
}

#[test]
fn jobs_and_daemonsets_are_waited_for() {
    let h = Harness::new();
    write_manifests(
        &h,
        &[
            workload(
                "DaemonSet",
                "agent",
                "registry.example.com/shop/agent:1.0",
                json!({}),
            ),
            workload(
                "Job",
                "migrate",
                "registry.example.com/shop/migrate:1.0",
                json!({}),
            ),
        ],
    );
    let (code, env, _) = reconcile(&h, 300);
    assert_eq!(code, 2, "{env:#}");
    assert_eq!(health_of(&env, "DaemonSet", "agent")["health"], "healthy");
    assert_eq!(health_of(&env, "Job", "migrate")["health"], "healthy");
    let job = h.get("batch/v1/jobs", Some(NS), "migrate").unwrap();
    assert_eq!(job["status"]["succeeded"], 1);

    // A second Job that fails, and a DaemonSet whose pods are not available.
    h.srv
        .set_rollout(&gvr("batch/v1/jobs"), NS, "seed", Rollout::Failed);
    h.srv.set_rollout(
        &gvr("apps/v1/daemonsets"),
        NS,
        "agent",
        Rollout::Available(0),
    );
    write_manifests(
        &h,
        &[
            workload(
                "DaemonSet",
                "agent",
                "registry.example.com/shop/agent:1.1",
                json!({}),
            ),
            workload(
                "Job",
                "migrate",
                "registry.example.com/shop/migrate:1.0",
                json!({}),
            ),
            workload(
                "Job",
                "seed",
                "registry.example.com/shop/seed:1.0",
                json!({"backoffLimit": 2}),
            ),
        ],
    );
    let (code, env, _) = reconcile(&h, 3);
    assert_eq!(code, 1, "{env:#}");
    let seed = health_of(&env, "Job", "seed");
    assert_eq!(seed["health"], "degraded", "{seed}");
    assert_eq!(
        seed["reason"],
        "Failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
    );
    let agent = health_of(&env, "DaemonSet", "agent");
    assert_eq!(agent["health"], "progressing", "{agent}");
    assert!(
        agent["reason"]
            .as_str()
            .unwrap()
            .starts_with("0 of 1 updated pods are available"),
        "{agent}"
    );
    let job = h.get("batch/v1/jobs", Some(NS), "seed").unwrap();
    assert_eq!(job["status"]["failed"], 3);
}

/// `kubectl rollout status --watch=false` on the states the test server produces: where
/// kubectl has an answer, keelson's verdict is the same.
#[test]
fn the_test_servers_rollout_states_read_the_same_in_kubectl() {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into());
    if !std::path::Path::new(&kubectl).exists() {
        // The same opt-out as the kubectl fidelity suite (tests/kube-apiserver/tests/kubectl).
        assert_eq!(
            std::env::var("KEELSON_SKIP_KUBECTL_TESTS").as_deref(),
            Ok("1"),
            "kubectl not found at {kubectl}: it is the oracle of this test (install kubectl \
             v1.28 or newer or set KUBECTL; KEELSON_SKIP_KUBECTL_TESTS=1 skips it on purpose)"
        );
        eprintln!(
            "SKIPPED on purpose (KEELSON_SKIP_KUBECTL_TESTS=1): kubectl not found at {kubectl}"
        );
        return;
    }
    let h = Harness::new();
    let kubeconfig = h.path("kubeconfig");
    let deploy = gvr("apps/v1/deployments");
    let sts = gvr("apps/v1/statefulsets");
    h.srv
        .create_object(
            &gvr("v1/namespaces"),
            "test",
            json!({"metadata": {"name": "k"}}),
        )
        .unwrap();
    let create = |g: &Gvr, doc: String| {
        let mut o: Value = serde_json::from_str(&doc).unwrap();
        o["metadata"]["namespace"] = json!("k");
        h.srv.create_object(g, "test", o).unwrap();
    };
    create(
        &deploy,
        workload("Deployment", "web", "nginx:1", json!({"replicas": 3})),
    );
    create(
        &sts,
        workload(
            "StatefulSet",
            "db",
            "postgres:16",
            json!({"replicas": 3, "serviceName": "db",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
        ),
    );
    let rollout_status = |what: &str| {
        let out = Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["rollout", "status", what, "-n", "k", "--watch=false"])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let judge = |g: &Gvr, name: &str| {
        let o = h.srv.get_object(g, Some("k"), name).unwrap();
        keelson::apply::health::judge(&o)
    };
    use keelson::apply::health::Health::*;
    let cases = [
        (Rollout::Complete, Healthy, "successfully rolled out"),
        (
            Rollout::Updated(1),
            Progressing,
            "1 out of 3 new replicas have been updated",
        ),
        (
            Rollout::OldPodsTerminating(2),
            Progressing,
            "2 old replicas are pending termination",
        ),
        (
            Rollout::Available(1),
            Progressing,
            "1 of 3 updated replicas are available",
        ),
        (Rollout::Failed, Degraded, "exceeded its progress deadline"),
    ];
    for (rollout, health, kubectl_says) in cases {
        h.srv.set_rollout(&deploy, "k", "web", rollout);
        let verdict = judge(&deploy, "web");
        let said = rollout_status("deployment/web");
        assert_eq!(verdict.health, health, "{rollout:?}: {}", verdict.reason);
        assert!(
            said.contains(kubectl_says),
            "{rollout:?}: kubectl said {said}"
        );
        if health == Progressing {
            assert!(
                said.contains(&verdict.reason),
                "{said} vs {}",
                verdict.reason
            );
        }
    }
    // A StatefulSet with partition 1 after a template change: 2 of 3 pods updated is done.
    h.srv
        .apply_object(
            &sts,
            "test",
            serde_json::from_str::<Value>(&workload(
                "StatefulSet",
                "db",
                "postgres:17",
                json!({"replicas": 3, "serviceName": "db",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
            ))
            .map(|mut o| {
                o["metadata"]["namespace"] = json!("k");
                o
            })
            .unwrap(),
            true,
        )
        .unwrap();
    assert_eq!(judge(&sts, "db").health, Healthy);
    assert!(rollout_status("statefulset/db").contains("partitioned roll out complete: 2 new pods"));
    h.srv.set_rollout(&sts, "k", "db", Rollout::Updated(1));
    assert_eq!(judge(&sts, "db").health, Progressing);
    assert!(
        rollout_status("statefulset/db")
            .contains("Waiting for partitioned roll out to finish: 1 out of 2 new pods")
    );
}
