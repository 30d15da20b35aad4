//! The real `keelson run` binary: config diagnostics, serving, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn a_bad_config_is_refused_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keelson.yaml");
    std::fs::write(
        &config,
        "controller:\n  repository:\n    url: /nonexistent/envs\n  pollInterval: often\n  selfHeel: true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // serde stops at the first unknown field, with a hint.
    assert!(err.contains("keelson.yaml:5:3"), "{err}");
    assert!(err.contains("did you mean `selfHeal`?"), "{err}");

    std::fs::write(
        &config,
        "controller:\n  repository:\n    url: /nonexistent/envs\n  pollInterval: often\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("keelson.yaml:3:10"), "{err}");
    assert!(
        err.contains("local repository /nonexistent/envs does not exist"),
        "{err}"
    );
    assert!(err.contains("keelson.yaml:4:17"), "{err}");
    assert!(err.contains("`often` is not a duration"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelson_run_serves_and_stops_cleanly_on_sigterm() {
    let (repo, commit) = two_env_repo();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keelson.yaml");
    std::fs::write(
        &config,
        format!(
            "stateDir: state\ncontroller:\n  repository:\n    url: {}\n  pollInterval: 1h\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args([
            "run",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let health = keelson::http::client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let st = crate::get_json::get_json(&format!("{base}/status")).await;
        if st["source"]["head"]["id"] == commit.as_str()
            && st["environments"].as_array().unwrap().len() == 2
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{st}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let logs = String::from_utf8_lossy(&out.stderr);
    let first = logs.lines().next().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|_| panic!("not JSON: {first}"));
    assert!(json["fields"]["message"].is_string(), "{first}");
    assert!(logs.contains("all environment workers stopped"), "{logs}");
    assert!(dir.path().join("state/status.redb").is_file());
}
