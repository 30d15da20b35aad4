//! `/status`, `keelson status`, `/metrics`, `/healthz`, `/readyz`.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_which_version_runs_where() {
    let (repo, _) = two_env_repo();
    repo.set_tag("prod", "1.4.2");
    repo.set_tag("dev", "1.5.0");
    repo.commit("versions");
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    let st = wait_status(&running, "both synced", |st| st["ready"] == true).await;
    assert_eq!(st["matrix"]["apps"]["web"]["prod"]["version"], "1.4.2");
    assert_eq!(st["matrix"]["apps"]["web"]["dev"]["version"], "1.5.0");
    assert_eq!(st["matrix"]["apps"]["web"]["prod"]["health"], "healthy");

    let server = format!("http://{}", running.addr());
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--server", &server])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web = text
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = web
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        ["web", "1.5.0 (healthy)", "1.4.2 (healthy)"],
        "{text}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--server", &server, "--history", "--env", "prod"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("applied: 1 created, 0 updated, 0 deleted"),
        "{text}"
    );
    assert!(text.contains("Dev Eloper <dev@example.com>"), "{text}");
    assert!(
        text.contains("\n    update Deployment/prod/web\n"),
        "{text}"
    );
    assert!(!text.contains(" dev "), "only prod was asked for: {text}");

    running.shutdown();
    running.wait().await;
    // With the controller stopped, the store is read directly.
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("web") && l.contains("1.4.2 (healthy)")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_with_syncs() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let running = start(
        settings(&repo.path().display().to_string(), state.path()),
        &fake,
    )
    .await;
    wait_status(&running, "ready", |st| st["ready"] == true).await;

    let scrape = || async {
        let (code, text) = get(&running, "/metrics").await;
        assert_eq!(code, 200);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).unwrap()
    };
    let value =
        |scrape: &prometheus_parse::Scrape, name: &str, env: &str, outcome: Option<&str>| -> f64 {
            scrape
                .samples
                .iter()
                .filter(|s| s.metric == name && s.labels.get("env") == Some(env))
                .filter(|s| outcome.is_none_or(|o| s.labels.get("outcome") == Some(o)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                    prometheus_parse::Value::Untyped(v) => v,
                    _ => 0.0,
                })
                .sum()
        };
    let before = scrape().await;
    assert_eq!(
        value(
            &before,
            "keelson_sync_results_total",
            "prod",
            Some("applied")
        ),
        1.0
    );
    let applied_at = value(
        &before,
        "keelson_last_successful_sync_timestamp_seconds",
        "prod",
        None,
    );
    assert!(applied_at > 1.0e9, "a unix timestamp: {applied_at}");
    let histogram = before
        .samples
        .iter()
        .find(|s| {
            s.metric == "keelson_sync_duration_seconds" && s.labels.get("env") == Some("prod")
        })
        .expect("duration histogram for prod");
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().unwrap().count, 1.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }

    repo.set_tag("prod", "1.1.0");
    repo.commit("prod 1.1.0");
    running.trigger();
    wait_metric(
        &running,
        "keelson_sync_results_total",
        &["env=\"prod\"", "outcome=\"applied\""],
        2.0,
    )
    .await;
    let after = scrape().await;
    assert_eq!(
        value(
            &after,
            "keelson_sync_results_total",
            "prod",
            Some("applied")
        ),
        2.0
    );
    assert_eq!(
        value(&after, "keelson_apply_requests_total", "prod", None),
        2.0
    );
    assert_eq!(
        value(&after, "keelson_sync_results_total", "dev", None),
        1.0
    );
    running.shutdown();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_first_sync_of_every_environment() {
    let (repo, _) = two_env_repo();
    let state = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.set_delay(Duration::from_millis(1000));
    let mut s = settings(&repo.path().display().to_string(), state.path());
    s.max_parallel = 1;
    let running = start(s, &fake).await;
    let (code, _) = get(&running, "/healthz").await;
    assert_eq!(code, 200);
    let (code, body) = get(&running, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    wait_until("both synced", || {
        fake.tag("dev").is_some() && fake.tag("prod").is_some()
    })
    .await;
    wait_status(&running, "ready", |st| st["ready"] == true).await;
    let (code, _) = get(&running, "/readyz").await;
    assert_eq!(code, 200);
    running.shutdown();
    running.wait().await;
}

#[test]
fn status_with_repo_shows_the_declared_versions_and_blocking_errors() {
    let repo = GitRepo::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::e2e::copy_dir(
        &root.join("environments"),
        &repo.path().join("environments"),
    );
    crate::e2e::copy_dir(&root.join("policies"), &repo.path().join("policies"));
    crate::e2e::copy_dir(&root.join("schema"), &repo.path().join("schema"));
    // orders is the first app of prod's pipeline file.
    let p = repo.path().join("environments/prod/pipeline.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let tag_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("tag:"))
        .unwrap();
    std::fs::write(&p, text.replacen(tag_line, "      tag: \"9.9.9\"", 1)).unwrap();
    let commit = repo.commit("pin orders");
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("APP"))
        .unwrap()
        .split_whitespace()
        .collect();
    let prod = header.iter().position(|h| *h == "PROD").unwrap();
    let orders: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("orders"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(orders[prod], "9.9.9", "{text}");
    assert!(text.contains(&commit[..12]), "{text}");

    let broken = root.join("tests/fixtures/broken/unknown-field");
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["status", "--repo"])
        .arg(&broken)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("(specs)") && l.contains("invalid")),
        "{text}"
    );
    assert!(
        text.contains("environments/dev/environment.yaml:11:7"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_backup_schedules_run_inside_the_controller() {
    let (repo, _) = two_env_repo();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keelson.yaml");
    std::fs::write(
        &path,
        format!(
            "stateDir: state\nclusters:\n  prod-eu:\n    etcd:\n      endpoints: [\"http://127.0.0.1:1\"]\n      schedule: \"0 */6 * * *\"\ncontroller:\n  repository: {{ url: {}, watch: false }}\n  listen: 127.0.0.1:0\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let loaded = keelson::controller::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.settings.backups.is_some());
    let fake = Fake::default();
    let running = start(loaded.settings, &fake).await;
    let st = wait_status(&running, "backup schedules show", |st| {
        st["backups"]["clusters"]["prod-eu"]["schedule"] == "0 */6 * * *"
    })
    .await;
    let next = &st["backups"]["clusters"]["prod-eu"]["nextRun"];
    assert!(next.is_string(), "the next snapshot is scheduled: {st}");
    running.shutdown();
    running.wait().await;
}
