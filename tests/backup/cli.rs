//! `keelson backup now|list|verify` end to end through the binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{TestEtcd, files_with_suffix};
use crate::require_etcd;

fn keelson(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keelson"))
        .arg("backup")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("keelson runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_list_verify_through_the_cli() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(12, 50).await;
    etcd.client()
        .await
        .put(b"/registry/namespaces/default", b"ns")
        .await
        .unwrap();
    let root = etcd.tmp.path();
    let config = root.join("keelson.yaml");
    std::fs::write(
        &config,
        format!(
            r#"apiVersion: keelson.dev/v1
kind: Config
stateDir: {state}
clusters:
  prod-eu:
    context: prod-eu
    etcd:
      endpoints: ["{url}"]
      schedule: "0 */12 * * *"
      retain: 3
      copyTo: {copy}
      restoreCheckKey: /registry/namespaces/default
  staging:
    context: staging
"#,
            state = root.join("state").display(),
            url = etcd.url(),
            copy = root.join("copy").display(),
        ),
    )
    .unwrap();

    let out = keelson(&config, &["now"]);
    assert!(out.status.success(), "{}", text(&out));
    let primary = root.join("state/snapshots");
    let dbs = files_with_suffix(&primary, ".db");
    assert_eq!(dbs.len(), 1, "{}", text(&out));
    assert!(
        text(&out).contains(&format!("saved {}", dbs[0].display())),
        "{}",
        text(&out)
    );
    assert_eq!(files_with_suffix(&root.join("copy"), ".db").len(), 1);

    let out = keelson(&config, &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("CLUSTER"), "{listing}");
    assert!(
        lines[0].contains("REVISION")
            && lines[0].contains("VERIFIED")
            && lines[0].contains("LOCATION")
    );
    assert_eq!(lines.len(), 3, "one row per destination: {listing}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("on-demand") && l.contains("sha256")),
        "{listing}"
    );

    let out = keelson(&config, &["list", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["cluster"], "prod-eu");
        assert_eq!(row["meta"]["trigger"], "on-demand");
        assert_eq!(row["size"], row["meta"]["size"]);
        assert_eq!(row["verified"], "sha256");
    }

    let out = keelson(&config, &["verify", "--all", "--restore-check"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert_eq!(t.matches("OK ").count(), 2, "{t}");
    assert!(t.contains("restore check passed: 13 keys"), "{t}");
    assert!(t.contains("/registry/namespaces/default"), "{t}");
    let out = keelson(&config, &["list", "--cluster", "prod-eu"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored"),
        "{}",
        text(&out)
    );

    // A damaged file fails verify with exit code 1.
    let mut bytes = std::fs::read(&dbs[0]).unwrap();
    bytes[8192] ^= 0x10;
    let bad = root.join("bad.db");
    std::fs::write(&bad, bytes).unwrap();
    let out = keelson(&config, &["verify", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("sha256"), "{}", text(&out));

    // Clear errors for a cluster without etcd and for a missing config.
    let out = keelson(&config, &["now", "--cluster", "staging"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no `etcd` section"), "{}", text(&out));
    let out = keelson(&root.join("missing.yaml"), &["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("missing.yaml"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_failure_mid_snapshot_leaves_no_file() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(20, 256 * 1024).await; // ~5 MB database
    let root = etcd.tmp.path();
    let config = root.join("keelson.yaml");
    let snaps = root.join("snaps");
    std::fs::write(
        &config,
        format!(
            "clusters:\n  full:\n    etcd:\n      endpoints: [\"{}\"]\n      dir: {}\n",
            etcd.url(),
            snaps.display()
        ),
    )
    .unwrap();
    // A file-size limit makes writes fail like a full disk does; SIGXFSZ is
    // ignored so the write returns an error instead of killing the process.
    let script = format!(
        "trap '' XFSZ; ulimit -f 2048; exec \"{}\" backup --config \"{}\" now",
        env!("CARGO_BIN_EXE_keelson"),
        config.display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("cannot write"), "{t}");
    assert!(
        t.contains("free disk space"),
        "tells the user what to do: {t}"
    );
    assert!(files_with_suffix(&snaps, ".db").is_empty(), "{t}");
    assert!(files_with_suffix(&snaps, ".part").is_empty(), "{t}");

    // Without the limit the next run succeeds.
    let out = keelson(&config, &["now"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_with_suffix(&snaps, ".db").len(), 1);
}

#[test]
fn another_process_holding_the_lock_makes_now_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = tmp.path().join("snaps");
    std::fs::create_dir_all(&snaps).unwrap();
    let config = tmp.path().join("keelson.yaml");
    std::fs::write(
        &config,
        format!(
            "clusters:\n  locked:\n    etcd:\n      endpoints: [\"http://127.0.0.1:1\"]\n      dir: {}\n",
            snaps.display()
        ),
    )
    .unwrap();
    let held = keelson::backup::store::ClusterLock::try_acquire(&snaps, "locked")
        .unwrap()
        .expect("lock is free");
    let out = keelson(&config, &["now"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already running"), "{}", text(&out));
    drop(held);
    // Released: the run now gets past the lock and fails on the dead endpoint.
    let out = keelson(&config, &["now"]);
    assert!(text(&out).contains("cannot reach etcd"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_what_is_true_now() {
    require_etcd!();
    let etcd = TestEtcd::start().await;
    etcd.fill(20, 100).await;
    let root = etcd.tmp.path();
    let config = root.join("keelson.yaml");
    let snaps = root.join("snaps");
    std::fs::write(
        &config,
        format!(
            "clusters:\n  c:\n    etcd:\n      endpoints: [\"{}\"]\n      dir: {}\n",
            etcd.url(),
            snaps.display()
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let out = keelson(&config, &["now"]);
        assert!(out.status.success(), "{}", text(&out));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let dbs = files_with_suffix(&snaps, ".db");
    assert_eq!(dbs.len(), 3);
    // After they were written: one truncated to 0 bytes, one with a bit flipped.
    std::fs::write(&dbs[0], b"").unwrap();
    let mut bytes = std::fs::read(&dbs[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&dbs[1], bytes).unwrap();

    let out = keelson(&config, &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let row = |p: &Path| {
        listing
            .lines()
            .find(|l| l.ends_with(&p.display().to_string()))
            .unwrap_or_else(|| panic!("no row for {}: {listing}", p.display()))
            .to_string()
    };
    assert!(row(&dbs[0]).contains("corrupt"), "{listing}");
    assert!(row(&dbs[1]).contains("corrupt"), "{listing}");
    assert!(row(&dbs[2]).contains("sha256"), "{listing}");
    assert!(
        listing.contains(&format!("{}: CORRUPT: ", dbs[0].display()))
            && listing.contains("0 bytes, but the metadata file says"),
        "{listing}"
    );

    let out = keelson(&config, &["list", "--output", "json"]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_path = |p: &Path| {
        rows.iter()
            .find(|r| r["location"] == p.display().to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(by_path(&dbs[1])["verified"], "corrupt");
    assert!(
        by_path(&dbs[1])["problem"]
            .as_str()
            .unwrap()
            .contains("sha256"),
        "{:?}",
        by_path(&dbs[1])
    );
    assert_eq!(by_path(&dbs[2])["verified"], "sha256");
    assert!(by_path(&dbs[2])["problem"].is_null());
}
