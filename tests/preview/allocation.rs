//! Port blocks and ids stay unique across 200 create/release cycles by two
//! replicas writing the record at once, and across a restart (new clients
//! that know only what the cluster recorded).

use std::collections::BTreeSet;

use chrono::Utc;
use keelson::observe::kube::KubeCluster;
use keelson::preview::lifecycle::{self, Limits, Request};
use keelson::preview::record::Previews;
use keelson::preview::store::Store;
use keelson::spec::preview::{PortPool, PreviewTemplateSpec};

use super::Harness;

fn spec(count: u16) -> PreviewTemplateSpec {
    PreviewTemplateSpec {
        ports: Some(PortPool {
            base: 30000,
            count,
            max: Some(30059),
        }),
        ..PreviewTemplateSpec::default()
    }
}

fn request(number: u64) -> Request {
    Request {
        number,
        branch: format!("b{number}"),
        sha: format!("{number:07x}"),
        source: "test".into(),
        ..Request::default()
    }
}

/// Every recorded block lies in the pool and no two share a port; no two
/// previews share an id.
fn assert_unique(p: &Previews, step: &str) {
    let mut ports = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in p.by_key.values() {
        assert!(ids.insert(r.id), "{step}: id {} twice: {p:?}", r.id);
        for port in r.ports.expect("a block").ports() {
            assert!(
                (30000..=30059).contains(&port),
                "{step}: {port} outside the pool"
            );
            assert!(ports.insert(port), "{step}: port {port} twice: {p:?}");
        }
    }
}

async fn connect(h: &Harness) -> KubeCluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    KubeCluster::connect(Some(&h.repo.path().join("kubeconfig")), Some("test"), false)
        .await
        .expect("connect")
}

/// One cycle of one replica: create the preview `number` of `template`,
/// and release the one `number - 6` of it: six live per template, sharing
/// one pool of 60 ports in blocks of two sizes.
async fn cycle(store: &Store<'_, KubeCluster>, template: &str, count: u16, number: u64) {
    let now = Utc::now();
    store
        .update(|p| {
            lifecycle::upsert(
                p,
                template,
                &spec(count),
                &request(number),
                Limits::default(),
                now,
            )
        })
        .await
        .unwrap_or_else(|e| panic!("{template}.{number}: {e}"));
    if number >= 6 {
        let key = format!("{template}.{}", number - 6);
        store
            .update(|p| {
                lifecycle::forget(p, &key);
                Ok::<_, String>(())
            })
            .await
            .unwrap();
    }
}

#[test]
fn blocks_and_ids_stay_unique_across_200_cycles_two_replicas_and_a_restart() {
    let h = Harness::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut before_restart = None;
        for life in 0..2 {
            // Each life is a fresh pair of replicas: nothing in memory
            // survives from the one before.
            let (a, b) = (connect(&h).await, connect(&h).await);
            let (sa, sb) = (
                Store::new(&a, "keelson-system"),
                Store::new(&b, "keelson-system"),
            );
            if let Some(prev) = &before_restart {
                let (now, _) = sa.read().await.unwrap();
                assert_eq!(&now, prev, "the record survives the restart as it was");
            }
            for i in 0..50u64 {
                let n = life * 50 + i;
                // Two replicas at once, on two templates of different block sizes.
                tokio::join!(cycle(&sa, "web", 3, n), cycle(&sb, "api", 2, n));
                let (p, _) = sa.read().await.unwrap();
                assert_unique(&p, &format!("life {life} cycle {n}"));
            }
            before_restart = Some(sa.read().await.unwrap().0);
        }
        let (p, _) = Store::new(&connect(&h).await, "keelson-system")
            .read()
            .await
            .unwrap();
        // 100 cycles × 2 replicas = 200 creates, 188 releases.
        assert_eq!(p.by_key.len(), 12, "{p:?}");
        assert_unique(&p, "end");
    });
}
