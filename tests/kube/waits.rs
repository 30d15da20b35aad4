//! Waits that end (issue 9, point 7): a `Retry-After` far beyond
//! `--timeout` does not hold the run, and a server that goes away stops the
//! run early instead of retrying every remaining object.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube_apiserver::Fault;

use crate::Harness;

#[test]
fn a_retry_after_of_100000_seconds_does_not_block_past_the_timeout() {
    let h = Harness::new();
    h.srv.faults().inject(
        Fault::too_many_requests(100_000)
            .method("PATCH")
            .path_contains("deployments")
            .times(1),
    );
    let started = Instant::now();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--timeout", "5", "--no-wait"]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        out.contains("the server asked to wait 100000s, past the timeout"),
        "{out}"
    );
    assert_eq!(h.srv.faults().fired(), 1);
    // Once the server stops throttling, the next run completes.
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
}

#[test]
fn a_short_retry_after_is_honoured() {
    let h = Harness::new();
    h.srv.faults().inject(
        Fault::too_many_requests(2)
            .method("PATCH")
            .path_contains("deployments")
            .times(1),
    );
    let started = Instant::now();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as asked"
    );
    assert!(
        h.get("apps/v1/deployments", Some("shop-dev"), "orders")
            .is_some()
    );
}

#[test]
fn an_api_server_that_goes_away_stops_the_run_early() {
    let h = Harness::new();
    let extra: Vec<String> = (0..400)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{i:03}\ndata:\n  n: \"{i}\"\n"))
        .collect();
    let dir = h.path("environments/dev/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("many.yaml"), extra.join("---\n")).unwrap();
    h.srv.faults().set_latency(Duration::from_millis(5));
    let Harness { srv, repo } = h;
    let child = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["reconcile", "--env", "dev", "--no-wait", "--timeout", "120"])
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while srv.write_count() < 20 {
        assert!(Instant::now() < deadline, "keelson never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    srv.shutdown();
    let gone = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = gone.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} after the server went away"
    );
    assert!(
        stdout.contains("the API server cannot be reached"),
        "{stdout}"
    );
    eprintln!("stopped {took:?} after the server went away");
    let unreachable = stdout
        .matches("not attempted: the API server is unreachable")
        .count();
    assert!(
        unreachable > 300,
        "{unreachable} objects were not attempted\n{stdout}"
    );
}
