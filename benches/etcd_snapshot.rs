//! Benchmark: keelson's snapshot (stream + sha256 check + fsync) against
//! `etcdctl snapshot save` on the same ~200 MB etcd, in the same run.
//!
//! `cargo bench --bench etcd_snapshot` prints a table and the ratio of median
//! wall times. Set `KEELSON_BENCH_MB` to change the database size and
//! `KEELSON_BENCH_RUNS` the number of runs per tool.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use keelson::backup::local_etcd::LocalEtcd;
use keelson::backup::store::Trigger;
use keelson::backup::{EtcdClusterConfig, take_snapshot};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stats(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    (
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; only
    // do the heavy work under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("etcd_snapshot: run with `cargo bench --bench etcd_snapshot`");
        return;
    }
    for bin in ["etcd", "etcdctl"] {
        if Command::new(bin).arg("--version").output().is_err() {
            println!(
                "SKIPPED etcd_snapshot: `{bin}` not found (install etcd-server and etcd-client)"
            );
            return;
        }
    }
    let target_mb = env_or("KEELSON_BENCH_MB", 200);
    let runs = env_or("KEELSON_BENCH_RUNS", 5).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let etcd = LocalEtcd::start(
        "bench",
        &tmp.path().join("data"),
        None,
        &["--quota-backend-bytes", "8589934592"],
    )
    .await
    .expect("etcd starts");

    // Fill with incompressible values, several writers at once.
    let fill_start = Instant::now();
    let value_size = 256 * 1024;
    let keys = target_mb * 1024 * 1024 / value_size;
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut client = etcd.client().await.expect("client");
        tasks.push(tokio::spawn(async move {
            let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ w as u64;
            for i in (w..keys).step_by(writers) {
                let value: Vec<u8> = (0..value_size)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                client
                    .put(format!("/bench/{i:06}").as_bytes(), &value)
                    .await
                    .expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let db_size = etcd
        .client()
        .await
        .expect("client")
        .status()
        .await
        .expect("status")
        .db_size;
    println!(
        "filled {keys} keys × {} KiB in {:.1}s; etcd database {:.1} MiB",
        value_size / 1024,
        fill_start.elapsed().as_secs_f64(),
        db_size as f64 / 1048576.0
    );

    let cfg = EtcdClusterConfig {
        endpoints: vec![etcd.client_url.clone()],
        dir: Some(tmp.path().join("keelson")),
        jitter_seconds: 0,
        ..EtcdClusterConfig::default()
    };
    let ctl_path = tmp.path().join("etcdctl.db");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut verifies = Vec::new();
    let mut size = 0;
    // One untimed warm-up each, then alternate so drift hits both equally.
    for i in 0..=runs {
        let start = Instant::now();
        let record = take_snapshot("bench", &cfg, None, Trigger::OnDemand, Utc::now())
            .await
            .expect("keelson snapshot");
        let elapsed = start.elapsed();
        size = record.meta.size;
        if i > 0 {
            let start = Instant::now();
            keelson::backup::verify_file(&record.path).expect("snapshot verifies");
            verifies.push(start.elapsed());
        }
        std::fs::remove_file(&record.path).expect("cleanup");
        let _ = std::fs::remove_file(record.path.with_extension("json"));

        let start = Instant::now();
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &etcd.client_url, "snapshot", "save"])
            .arg(&ctl_path)
            .output()
            .expect("etcdctl runs");
        let ctl_elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ctl_size = std::fs::metadata(&ctl_path).expect("etcdctl file").len();
        assert_eq!(ctl_size, size, "keelson and etcdctl files differ in size");
        std::fs::remove_file(&ctl_path).expect("cleanup");
        if i > 0 {
            ours.push(elapsed);
            theirs.push(ctl_elapsed);
        }
    }
    let (o_min, o_med, o_max) = stats(&mut ours);
    let (t_min, t_med, t_max) = stats(&mut theirs);
    let (v_min, v_med, v_max) = stats(&mut verifies);
    let mib = size as f64 / 1048576.0;
    println!();
    println!("snapshot of {mib:.1} MiB, {runs} runs each (wall time)");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>10}",
        "tool", "min", "median", "max", "MiB/s"
    );
    for (name, min, med, max) in [
        ("keelson (stream+sha256 verify+fsync)", o_min, o_med, o_max),
        ("etcdctl snapshot save", t_min, t_med, t_max),
        (
            "keelson backup verify (sha256 + bbolt walk)",
            v_min,
            v_med,
            v_max,
        ),
    ] {
        println!(
            "{:<44} {:>8.3}s {:>8.3}s {:>8.3}s {:>10.1}",
            name,
            min.as_secs_f64(),
            med.as_secs_f64(),
            max.as_secs_f64(),
            mib / med.as_secs_f64()
        );
    }
    let ratio = o_med.as_secs_f64() / t_med.as_secs_f64();
    println!();
    println!("ratio keelson/etcdctl (median): {ratio:.2}x (target: <= 1.20x)");
    etcd.stop().await;
}
