//! The inventory at any size (issue 9, point 3; case 12): 5,000 objects
//! with 246-character names need some 1.4 MB of ids, over the 1 MiB a
//! ConfigMap may hold (the test server refuses more, as a real one does).
//! Every one is recorded, and removing some from Git prunes exactly those.
//! (25,000 ids are split and read back in `plan::inventory`'s unit tests;
//! end to end, 25,000 objects take two minutes of a debug build.)

use std::time::Instant;

use kube_apiserver::Gvr;

use crate::Harness;
use crate::intent::{live_ids, recorded};

const FILES: usize = 5;
const PER_FILE: usize = 1_000;

fn flags(file: usize) -> String {
    (file * PER_FILE..(file + 1) * PER_FILE)
        .map(|i| {
            let name = format!("flag-{i:05}.")
                + &["a", "b", "c", "d"].map(|c| c.repeat(58)).join(".");
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  enabled: \"true\"\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn an_inventory_of_5000_objects_is_recorded_within_the_configmap_limit_and_prunes() {
    let started = Instant::now();
    let h = Harness::new();
    h.edit(
        "environments/dev/environment.yaml",
        "  apps:\n",
        "  prune:\n    maxDeletePercent: 100\n  apps:\n",
    );
    let dir = h.path("environments/dev/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    for f in 0..FILES {
        std::fs::write(dir.join(format!("flags-{f:02}.yaml")), flags(f)).unwrap();
    }
    // The objects are put on the server as keelson would apply them
    // (server-side apply, field manager keelson) without 5,000 requests:
    // this test is about recording them, which the first run does.
    let report = keelson::check::check_repo(h.repo.path());
    let dev = &report.ready["dev"];
    let mut seeded = 0;
    for o in keelson::render::render_env(dev) {
        if o["kind"] == "Namespace" {
            h.srv
                .apply_object(&Gvr::parse("v1/namespaces"), "keelson", o, true)
                .unwrap();
        } else if o["kind"] == "ConfigMap"
            && o["metadata"]["name"].as_str().unwrap().starts_with("flag-")
        {
            h.srv
                .apply_object(&Gvr::parse("v1/configmaps"), "keelson", o, true)
                .unwrap();
            seeded += 1;
        }
    }
    assert_eq!(seeded, FILES * PER_FILE);
    let seeded_at = started.elapsed();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{}\n{err}", out.lines().last().unwrap_or_default());
    assert!(
        out.contains(" updated, 0 deleted"),
        "{}",
        out.lines().last().unwrap_or_default()
    );
    let applied = started.elapsed();

    let live = live_ids(&h, "dev");
    assert!(live.len() > FILES * PER_FILE, "{}", live.len());
    assert_eq!(
        recorded(&h, "dev", "shop-dev"),
        live,
        "every object recorded"
    );
    let parts: Vec<_> = h
        .srv
        .list_objects(&Gvr::parse("v1/configmaps"), Some("shop-dev"))
        .into_iter()
        .filter(|c| {
            c["metadata"]["labels"]
                .get("keelson.dev/inventory")
                .is_some()
        })
        .collect();
    assert!(
        parts.len() >= 3,
        "split over several ConfigMaps: {}",
        parts.len()
    );
    let total: usize = parts.iter().map(|c| c["data"].to_string().len()).sum();
    assert!(total > 1 << 20, "{total} bytes of ids in all");
    for p in &parts {
        let bytes: usize = p["data"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap().len())
            .sum();
        assert!(
            bytes <= 1 << 20,
            "{} holds {bytes} bytes",
            p["metadata"]["name"]
        );
    }

    // Removing 1,000 from Git prunes exactly those 1,000.
    for f in 0..1 {
        std::fs::remove_file(dir.join(format!("flags-{f:02}.yaml"))).unwrap();
    }
    h.srv.reset_requests();
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert_eq!(code, 2, "{}\n{err}", out.lines().last().unwrap_or_default());
    assert!(
        out.contains("dev: 0 created, 0 updated, 1000 deleted"),
        "{}",
        out.lines().last().unwrap_or_default()
    );
    // Only the deletes and the inventory were written: one changed head,
    // and at most every part once (each part holds some of the 1,000).
    let writes: Vec<_> = h
        .srv
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    let others: Vec<_> = writes
        .iter()
        .filter(|r| r.method != "DELETE" || !r.path.contains("/configmaps/flag-"))
        .collect();
    assert!(others.len() <= 1 + 2 * parts.len(), "{others:?}");
    let after = live_ids(&h, "dev");
    assert_eq!(after.len(), live.len() - PER_FILE);
    assert!(after.iter().all(|(_, _, n)| !n.starts_with("flag-00")));
    assert_eq!(recorded(&h, "dev", "shop-dev"), after);
    eprintln!(
        "5,000 objects: seeded {seeded_at:?}, first run {:?}, prune of 1,000 {:?}",
        applied - seeded_at,
        started.elapsed() - applied
    );
}
