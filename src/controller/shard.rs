//! Sharding environments across replicas.
//!
//! Each replica holds a member Lease (`keelson-member-<identity>`) and renews
//! it every retry period; the live members are those whose Lease changed
//! within its duration, as observed on our own clock (see [`super::lease`]).
//! Environment `e` belongs to the member with the highest rendezvous score
//! `hash(member, e)` (highest random weight hashing, Thaler and Ravishankar
//! 1996): when a member joins it takes about 1/N of the environments from
//! the others and nothing else moves; when one leaves, only its environments
//! move. Ownership only decides who *tries*: the environment's own Lease is
//! still what allows a write, so two replicas whose views of the membership
//! differ for a moment never write one environment at once.
//!
//! The same loop lists every keelson Lease once per retry period, so the
//! record of an environment Lease held by a replica that died mid-apply has
//! been watched from before it died, and is taken over one duration after
//! its last renewal (not one duration after we first looked).

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::lease::{Acquire, Leases, ROLE_LABEL, Term, object_name};

/// The `keelson.dev/lease` value of member Leases.
pub const MEMBER_ROLE: &str = "member";
/// The `keelson.dev/lease` value of environment Leases.
pub const ENVIRONMENT_ROLE: &str = "environment";

/// The rendezvous score of `member` for `env`: the first 8 bytes of
/// SHA-256(`member` NUL `env`), big-endian.
pub fn score(member: &str, env: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(member.as_bytes());
    h.update([0]);
    h.update(env.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The member that owns `env`: the highest score (ties, which need a hash
/// collision, go to the smaller name). `None` without members.
pub fn owner<'a>(env: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .map(|m| (score(m, env), std::cmp::Reverse(m.as_str())))
        .max()
        .map(|(_, std::cmp::Reverse(m))| m)
}

/// Labels of a keelson Lease with `role`.
pub fn lease_labels(role: &str, env: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "keelson".to_string(),
        ),
        (ROLE_LABEL.to_string(), role.to_string()),
    ]);
    if let Some(e) = env {
        l.insert("keelson.dev/environment".into(), object_name("", e));
    }
    l
}

/// The Lease name guarding environment `env`.
pub fn env_lease_name(env: &str) -> String {
    object_name("keelson-env-", env)
}

/// Keep our member Lease, follow the others', and publish the sorted live
/// members on `live` whenever they change. Returns on `shutdown`, after
/// releasing our member Lease so the others rebalance at once.
pub async fn run_membership(
    leases: Arc<Leases>,
    live: watch::Sender<Vec<String>>,
    shutdown: CancellationToken,
) {
    let name = object_name("keelson-member-", leases.identity());
    let labels = lease_labels(MEMBER_ROLE, None);
    let mut term: Option<Arc<Term>> = None;
    let period = leases.timing().retry_period;
    loop {
        // Hold (or renew) our own member Lease.
        let ours = match &term {
            Some(t) => t.renew().await.is_ok(),
            None => false,
        };
        if !ours {
            term = None;
            match leases.try_acquire(&name, &labels).await {
                Ok(Acquire::Held(t)) => {
                    info!(lease = %name, "joined as a member");
                    term = Some(t);
                }
                Ok(Acquire::HeldBy { holder }) => {
                    warn!(lease = %name, %holder, "our member lease is held by another identity; is the identity unique?");
                }
                Err(e) => warn!(error = %e, "cannot hold the member lease"),
            }
        }
        // Follow every keelson Lease (members decide ownership; watching
        // environment Leases starts their expiry clocks).
        let members = match leases.list(ROLE_LABEL).await {
            Ok(all) => {
                let mut m: Vec<String> = all
                    .iter()
                    .filter(|l| {
                        let role = l
                            .metadata
                            .labels
                            .as_ref()
                            .and_then(|x| x.get(ROLE_LABEL))
                            .map(String::as_str);
                        let live = leases.is_live(l);
                        role == Some(MEMBER_ROLE) && live
                    })
                    .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
                    .collect();
                m.sort();
                m.dedup();
                Some(m)
            }
            Err(e) => {
                warn!(error = %e, "cannot list the member leases");
                None
            }
        };
        // Without our own Lease we are no member: own nothing.
        let members = match (&term, members) {
            (None, _) => Some(Vec::new()),
            (Some(_), Some(m)) => Some(m),
            (Some(_), None) => None,
        };
        if let Some(m) = members {
            live.send_if_modified(|cur| {
                if *cur == m {
                    return false;
                }
                info!(members = ?m, "members changed");
                *cur = m;
                true
            });
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
    live.send_replace(Vec::new());
    if let Some(t) = term {
        t.release().await;
        info!(lease = %name, "member lease released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn counts(envs: &[String], members: &[String]) -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for e in envs {
            *c.entry(owner(e, members).unwrap().to_string()).or_default() += 1;
        }
        c
    }

    #[test]
    fn a_thousand_environments_spread_evenly_over_three_replicas() {
        let envs = names(1000, "env-");
        let members = vec![
            "keelson-7d9f-abc".to_string(),
            "keelson-7d9f-def".to_string(),
            "keelson-7d9f-ghi".to_string(),
        ];
        let c = counts(&envs, &members);
        assert_eq!(c.values().sum::<usize>(), 1000);
        assert_eq!(c.len(), 3, "{c:?}");
        // Binomial(1000, 1/3): sd ≈ 15; within ±15% of 333 is ~3 sd.
        for (m, n) in &c {
            assert!((283..=383).contains(n), "{m} got {n}: {c:?}");
        }
    }

    #[test]
    fn a_joining_replica_takes_a_fair_share_and_nothing_else_moves() {
        let envs = names(1000, "env-");
        let three = names(3, "replica-");
        let mut four = three.clone();
        four.push("replica-new".into());
        let mut moved = 0;
        for e in &envs {
            let before = owner(e, &three).unwrap();
            let after = owner(e, &four).unwrap();
            if before != after {
                assert_eq!(after, "replica-new", "{e} moved between old replicas");
                moved += 1;
            }
        }
        // About 1/4 of 1000.
        assert!((200..=300).contains(&moved), "{moved} moved");
    }

    #[test]
    fn a_leaving_replica_hands_over_only_its_own_environments() {
        let envs = names(1000, "env-");
        let three = names(3, "replica-");
        let two: Vec<String> = three[..2].to_vec();
        for e in &envs {
            let before = owner(e, &three).unwrap();
            let after = owner(e, &two).unwrap();
            if before != "replica-2" {
                assert_eq!(before, after, "{e} moved though its owner stayed");
            }
        }
        assert_eq!(owner("env-1", &[]), None);
    }

    #[test]
    fn ownership_does_not_depend_on_member_order() {
        let a = vec!["x".to_string(), "y".to_string(), "z".to_string()];
        let b = vec!["z".to_string(), "x".to_string(), "y".to_string()];
        for e in names(100, "e") {
            assert_eq!(owner(&e, &a), owner(&e, &b));
        }
    }
}
