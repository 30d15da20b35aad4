//! Benchmark: what one environment's Rancher state costs per reconcile,
//! against the in-memory Rancher v3 test server over loopback HTTP.
//!
//! `cargo bench --bench rancher_plan` prints min/median/max wall time of a
//! converged (no-op) plan, of a first apply (project, namespace, members)
//! and the number of requests each makes. `KEELSON_BENCH_RUNS` sets the runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keelson::rancher::{
    DesiredMember, DesiredProject, DesiredRancher, RancherClient, RancherEndpoint, Subject, apply,
    plan,
};
use rancher_server::{DEFAULT_TOKEN, RancherServer, ServerOptions};

fn desired(env: &str, members: usize) -> DesiredRancher {
    let q = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    DesiredRancher {
        environment: env.into(),
        cluster_id: "c-m-abc12".into(),
        project: DesiredProject {
            name: format!("bench-{env}"),
            description: Some("bench".into()),
            resource_quota: q(&[("limitsCpu", "40"), ("limitsMemory", "80Gi")]),
            namespace_default_quota: q(&[("limitsCpu", "8"), ("limitsMemory", "16Gi")]),
            container_default_limits: q(&[("limitsCpu", "500m"), ("requestsCpu", "100m")]),
        },
        namespace: format!("bench-{env}"),
        members: (0..members)
            .map(|i| DesiredMember {
                subject: Subject::UserPrincipalId(format!("local://u-{i:05}")),
                role: "read-only".into(),
            })
            .collect(),
    }
}

fn stats(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "min {:>8.2?}  median {:>8.2?}  max {:>8.2?}",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rancher_plan: run with `cargo bench --bench rancher_plan`");
        return;
    }
    let runs: usize = std::env::var("KEELSON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let server = RancherServer::start_with(ServerOptions {
        activate_after: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let dir = std::env::temp_dir().join(format!("keelson-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, DEFAULT_TOKEN).unwrap();
    let client = RancherClient::from_endpoint(&RancherEndpoint {
        url: server.url().into(),
        token_file: Some(token),
        ..Default::default()
    })
    .unwrap()
    .with_active_wait(Duration::from_secs(5), Duration::from_millis(1));

    let mut first = Vec::new();
    let mut first_requests = 0;
    for i in 0..runs {
        let d = desired(&format!("e{i}"), 10);
        server.clear_log();
        let t = Instant::now();
        let report = apply(&client, &plan(&client, &d).await.unwrap()).await;
        first.push(t.elapsed());
        assert!(report.is_success());
        first_requests = server.requests().len();
    }
    let d = desired("e0", 10);
    let mut noop = Vec::new();
    let mut noop_requests = 0;
    for _ in 0..runs {
        server.clear_log();
        let t = Instant::now();
        let p = plan(&client, &d).await.unwrap();
        noop.push(t.elapsed());
        assert!(!p.has_changes());
        noop_requests = server.requests().len();
    }
    println!("rancher plan+apply, {runs} runs, 10 members, loopback HTTP");
    println!(
        "  first apply   {}  ({first_requests} requests)",
        stats(&mut first)
    );
    println!(
        "  no-op plan    {}  ({noop_requests} requests)",
        stats(&mut noop)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
