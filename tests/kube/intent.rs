//! Intent is recorded before writing (issue 9, point 2): keelson is killed
//! (SIGKILL) at 20 random points of applies, and after every kill each
//! object labelled for the environment is in its inventory; converging
//! afterwards leaves nothing orphaned.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use kube_apiserver::{Fault, Gvr};
use serde_json::Value;

use crate::Harness;

const EXTRAS: usize = 30;

/// (kind, namespace, name) of each object labelled for `env`, inventory
/// ConfigMaps and objects being deleted aside.
pub fn live_ids(h: &Harness, env: &str) -> BTreeSet<(String, String, String)> {
    [
        "v1/namespaces",
        "v1/configmaps",
        "v1/services",
        "apps/v1/deployments",
        "networking.k8s.io/v1/ingresses",
        "policy/v1/poddisruptionbudgets",
    ]
    .iter()
    .flat_map(|g| h.srv.list_objects(&Gvr::parse(g), None))
    .filter(|o| o["metadata"]["labels"]["keelson.dev/environment"] == env)
    .filter(|o| {
        o["metadata"]["labels"]
            .get("keelson.dev/inventory")
            .is_none()
    })
    .filter(|o| o["metadata"]["deletionTimestamp"].is_null())
    .map(|o| id(&o))
    .collect()
}

fn id(o: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"]),
    )
}

/// What the inventory of `env` in `namespace` records, read as keelson
/// reads it (head and parts).
pub fn recorded(h: &Harness, env: &str, namespace: &str) -> BTreeSet<(String, String, String)> {
    use keelson::plan::inventory::Inventory;
    let Some(head) = h.get("v1/configmaps", Some(namespace), "keelson-inventory") else {
        return BTreeSet::new();
    };
    let read = Inventory::read_head(&head).expect("head parses");
    let mut inv = read.inventory;
    let parts = h
        .srv
        .list_objects(&Gvr::parse("v1/configmaps"), Some(namespace));
    for name in &read.parts {
        let part = parts
            .iter()
            .find(|p| p["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("part {name} of {env}'s inventory exists"));
        inv.add_part(part).unwrap();
    }
    inv.objects
        .into_iter()
        .map(|o| (o.kind, o.namespace, o.name))
        .collect()
}

fn extras() -> String {
    (0..EXTRAS)
        .map(|i| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-{i:02}\ndata:\n  n: \"{i}\"\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A deterministic pseudo-random number in 1..=n for round `i`.
fn pick(i: u64, n: usize) -> u64 {
    let x = (i + 1)
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(17)
        ^ 0x9e37_79b9;
    x % n as u64 + 1
}

/// Start keelson on dev, hold the `nth` request of `method` in the server,
/// kill keelson (SIGKILL) while it waits for it, and let the server finish.
fn kill_at(h: &Harness, method: &str, nth: u64) {
    h.srv.faults().clear();
    h.srv.faults().inject(
        Fault::delay(Duration::from_millis(150))
            .method(method)
            .nth(nth),
    );
    let fired_before = h.srv.faults().fired();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["reconcile", "--env", "dev", "--no-wait"])
        .current_dir(h.repo.path())
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.srv.faults().fired() == fired_before {
        if child.try_wait().unwrap().is_some() {
            break; // fewer writes than `nth`: it finished
        }
        assert!(
            Instant::now() < deadline,
            "keelson never reached write {nth}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().ok(); // SIGKILL
    child.wait().unwrap();
    // The held request completes in the server, as it would on a real one.
    std::thread::sleep(Duration::from_millis(250));
    h.srv.faults().clear();
}

fn converge(h: &Harness) {
    let (code, out, err) = h.keelson(&["reconcile", "--env", "dev", "--no-wait"]);
    assert!(code == 0 || code == 2, "{out}{err}");
}

#[test]
fn killed_at_20_random_points_of_applies_nothing_is_orphaned() {
    let started = Instant::now();
    let h = Harness::new();
    h.edit(
        "environments/dev/environment.yaml",
        "  apps:\n",
        "  prune:\n    maxDeletePercent: 100\n  apps:\n",
    );
    converge(&h);
    let base = live_ids(&h, "dev");
    assert_eq!(recorded(&h, "dev", "shop-dev"), base);
    let extra_file = h.path("environments/dev/manifests/extra.yaml");
    std::fs::create_dir_all(extra_file.parent().unwrap()).unwrap();

    for round in 0..20u64 {
        let creating = round % 2 == 0;
        if creating {
            // Killed while creating the extras.
            std::fs::write(&extra_file, extras()).unwrap();
            kill_at(&h, "PATCH", pick(round, EXTRAS + 2));
        } else {
            // Killed while pruning them.
            std::fs::write(&extra_file, extras()).unwrap();
            converge(&h);
            assert_eq!(live_ids(&h, "dev").len(), base.len() + EXTRAS);
            std::fs::remove_file(&extra_file).unwrap();
            kill_at(&h, "DELETE", pick(round, EXTRAS));
        }
        let live = live_ids(&h, "dev");
        let rec = recorded(&h, "dev", "shop-dev");
        let untracked: Vec<_> = live.difference(&rec).collect();
        assert!(
            untracked.is_empty(),
            "round {round}: labelled but not recorded after the kill: {untracked:?}"
        );
        if round % 4 == 2 {
            // Sometimes the next run finishes what was started first.
            converge(&h);
            assert_eq!(
                live_ids(&h, "dev").len(),
                base.len() + EXTRAS,
                "round {round}"
            );
        }
        // Revert: the extras leave Git, and every one of them leaves the cluster.
        let _ = std::fs::remove_file(&extra_file);
        converge(&h);
        assert_eq!(live_ids(&h, "dev"), base, "round {round}: orphans left");
        assert_eq!(recorded(&h, "dev", "shop-dev"), base, "round {round}");
    }
    eprintln!("20 kill rounds took {:?}", started.elapsed());
}
