//! `coordination.k8s.io/v1` Leases with optimistic concurrency and fencing.
//!
//! One Lease guards each environment (`keelson-env-<env>`), and one Lease
//! per replica says it is alive (`keelson-member-<identity>`, see
//! [`super::shard`]). The protocol is client-go's `leaderelection` over a
//! `Lease` lock (k8s.io/client-go/tools/leaderelection):
//! - every write to a Lease is a PUT (or a create) carrying the
//!   `resourceVersion` last read, so of two instances racing for one Lease
//!   exactly one wins and the other gets `409 Conflict`;
//! - another holder's Lease counts as expired only when its record has not
//!   changed for `leaseDurationSeconds` *as observed on our own monotonic
//!   clock* (never by comparing its `renewTime` with our wall clock, which
//!   would make correctness depend on clock skew between nodes);
//! - a holder renews every `retry_period`, and gives the Lease up as lost
//!   when it could not renew within `renew_deadline` (< duration) of its last
//!   successful renewal.
//!
//! Fencing ([`Term::check`]): before each write to an environment the holder
//! re-reads the Lease and requires its own identity and the
//! `resourceVersion` of its own last renewal (any other write to the Lease,
//! such as a takeover, changes it), and then that its last renewal was sent
//! less than `renew_deadline` ago on the monotonic clock. The clock check
//! comes last, right before the write goes out, so a process that was paused
//! (SIGSTOP, a long GC-like stall, a frozen VM) past its deadline finds out on
//! resuming and writes nothing: another instance may only take over after
//! `duration` without a change, and `renew_deadline < duration`.
//!
//! Why not a crate: `kube-leader-election` (kube 4) states it has no
//! fencing; `kube-lease-manager` (kube 5) renews with unconditional patches
//! and judges expiry by comparing the holder's `renewTime` with the local
//! wall clock, and exposes no `resourceVersion` to fence writes with. Both
//! run one background task per Lease, which does not suit a Lease per
//! environment held only while that environment is written.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, PostParams};
use tokio::sync::RwLock;
use tracing::{debug, info, warn};

/// Label on every Lease keelson makes: what it guards (`environment` or `member`).
pub const ROLE_LABEL: &str = "keelson.dev/lease";

/// Timing of every Lease, as client-go's `LeaderElectionConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a Lease stays valid without renewal (`leaseDurationSeconds`;
    /// whole seconds, at least 1). Default 15 s.
    pub duration: Duration,
    /// A holder that could not renew within this long of its last renewal
    /// stops writing (must be below `duration`). Default 10 s.
    pub renew_deadline: Duration,
    /// How often holders renew and candidates retry. Default 2 s.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// `leaseDurationSeconds` as stored in the Lease.
    pub fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Why these values cannot work, if they cannot (client-go's rules:
    /// `leaseDuration > renewDeadline > retryPeriod`).
    pub fn problem(&self) -> Option<String> {
        if self.duration.as_secs() < 1 || self.duration.subsec_nanos() != 0 {
            return Some("the lease duration must be whole seconds, at least 1s".into());
        }
        if self.renew_deadline >= self.duration {
            return Some("renewDeadline must be shorter than the lease duration".into());
        }
        if self.retry_period >= self.renew_deadline {
            return Some("retryPeriod must be shorter than renewDeadline".into());
        }
        None
    }
}

/// A Lease operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// The API server answered with an error or could not be reached.
    #[error("lease {name} in namespace {namespace}: {message}")]
    Api {
        /// Lease name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// What went wrong, with the server's status when there is one.
        message: String,
    },
}

/// The answer to [`Leases::try_acquire`].
#[derive(Debug)]
pub enum Acquire {
    /// We hold the Lease now; keep it renewed with [`Term::renew`].
    Held(Arc<Term>),
    /// Someone else holds it and it has not expired.
    HeldBy {
        /// Their `holderIdentity`.
        holder: String,
    },
}

/// The Leases of one namespace, as one identity sees them.
pub struct Leases {
    api: Api<Lease>,
    client: kube::Client,
    namespace: String,
    identity: String,
    timing: LeaseTiming,
    /// Per Lease: the last record seen (`resourceVersion`) and when it was
    /// first seen, on the monotonic clock.
    observed: Mutex<HashMap<String, (String, Instant)>>,
}

impl Leases {
    /// Leases in `namespace` on the cluster of `client`, held as `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        timing: LeaseTiming,
    ) -> Leases {
        Leases {
            api: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            timing,
            observed: Mutex::new(HashMap::new()),
        }
    }

    /// The client of the cluster holding the Leases (status objects live
    /// there too).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Our `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The timing every Lease is held with.
    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// The namespace the Leases live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn err(&self, name: &str, e: kube::Error) -> LeaseError {
        let message = match &e {
            kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
            other => other.to_string(),
        };
        LeaseError::Api {
            name: name.to_string(),
            namespace: self.namespace.clone(),
            message,
        }
    }

    /// Note the record `rv` of Lease `name`; returns how long it has been
    /// unchanged as far as we have watched it.
    fn observe(&self, name: &str, rv: &str) -> Duration {
        let mut seen = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get(name) {
            Some((v, at)) if v == rv => now.duration_since(*at),
            _ => {
                seen.insert(name.to_string(), (rv.to_string(), now));
                Duration::ZERO
            }
        }
    }

    /// Take Lease `name` (creating it with `labels` when missing) if it is
    /// free, expired or already ours. Never waits: a candidate calls again
    /// every `retry_period`.
    pub async fn try_acquire(
        self: &Arc<Self>,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Acquire, LeaseError> {
        let sent = Instant::now();
        let current = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.err(name, e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(self.namespace.clone()),
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.held(name, &created, sent)),
                Err(kube::Error::Api(s)) if s.code == 409 => self.taken(name).await,
                Err(e) => Err(self.err(name, e)),
            };
        };
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let unchanged_for = self.observe(name, &rv);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        let lease_duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        if !ours && !holder.is_empty() && unchanged_for < lease_duration {
            return Ok(Acquire::HeldBy { holder });
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        let acquired = if ours {
            spec.acquire_time.clone()
        } else {
            None
        };
        lease.spec = Some(self.spec(acquired, transitions));
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(updated) => {
                if !ours {
                    info!(lease = name, previous = %holder, "lease acquired");
                }
                Ok(self.held(name, &updated, sent))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => self.taken(name).await,
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Lost a race for `name`: report who won.
    async fn taken(&self, name: &str) -> Result<Acquire, LeaseError> {
        let lease = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.err(name, e))?;
        let (holder, rv) = lease
            .map(|l| {
                let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                (h, l.metadata.resource_version.unwrap_or_default())
            })
            .unwrap_or_default();
        self.observe(name, &rv);
        Ok(Acquire::HeldBy { holder })
    }

    fn spec(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.duration_seconds()),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn held(self: &Arc<Self>, name: &str, lease: &Lease, sent: Instant) -> Acquire {
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        self.observe(name, &rv);
        Acquire::Held(Arc::new(Term {
            leases: self.clone(),
            name: name.to_string(),
            state: RwLock::new(TermState {
                lease: lease.clone(),
                renewed_at: sent,
                lost: None,
                stopped: false,
            }),
        }))
    }

    /// Every Lease in the namespace carrying `selector`.
    pub async fn list(&self, selector: &str) -> Result<Vec<Lease>, LeaseError> {
        self.api
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|e| self.err(selector, e))
    }

    /// Whether Lease `lease` (listed) is held by a live instance, judged on
    /// our clock: held, and its record changed within its duration (our own
    /// Leases count as live; their owner checks them).
    pub fn is_live(&self, lease: &Lease) -> bool {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        let unchanged_for = self.observe(&name, &rv);
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder.is_empty() {
            return false;
        }
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        holder == self.identity || unchanged_for < duration
    }
}

/// One holding of one Lease: from its acquisition until it is released or lost.
pub struct Term {
    leases: Arc<Leases>,
    name: String,
    /// Renewals take it for writing; fence checks for reading, so a check
    /// never compares against a renewal in flight.
    state: RwLock<TermState>,
}

struct TermState {
    /// The Lease as our last write left it.
    lease: Lease,
    /// When the request of our last successful write was sent.
    renewed_at: Instant,
    /// Why the Lease is lost, once it is.
    lost: Option<String>,
    /// Writing stopped (shutdown): fence checks fail, release still works.
    stopped: bool,
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term").field("lease", &self.name).finish()
    }
}

impl Term {
    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `resourceVersion` of our last write to the Lease: the fencing token.
    pub async fn token(&self) -> String {
        let st = self.state.read().await;
        st.lease
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default()
    }

    /// Renew (a PUT with our last `resourceVersion`). A conflict means
    /// someone else wrote the Lease: the term is lost for good.
    pub async fn renew(&self) -> Result<(), String> {
        let mut st = self.state.write().await;
        if let Some(why) = &st.lost {
            return Err(why.clone());
        }
        let timing = self.leases.timing;
        if st.renewed_at.elapsed() >= timing.renew_deadline {
            let why = format!(
                "lease {} not renewed for {:?} (renew deadline {:?})",
                self.name,
                st.renewed_at.elapsed(),
                timing.renew_deadline
            );
            st.lost = Some(why.clone());
            return Err(why);
        }
        let sent = Instant::now();
        let mut lease = st.lease.clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            spec.lease_duration_seconds = Some(timing.duration_seconds());
        }
        match self
            .leases
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                let rv = updated
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default();
                self.leases.observe(&self.name, &rv);
                st.lease = updated;
                st.renewed_at = sent;
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                let why = format!(
                    "lease {} was taken over or removed: {}",
                    self.name, s.message
                );
                warn!(lease = %self.name, "{why}");
                st.lost = Some(why.clone());
                Err(why)
            }
            Err(e) => {
                // Transient: the deadline decides.
                debug!(lease = %self.name, error = %e, "lease renewal failed; retrying");
                Ok(())
            }
        }
    }

    /// The fencing check, before each write: the Lease still names us with
    /// the `resourceVersion` of our last renewal, and that renewal was sent
    /// less than `renew_deadline` ago.
    pub async fn check(&self) -> Result<(), String> {
        let st = self.state.read().await;
        if let Some(why) = &st.lost {
            return Err(why.clone());
        }
        if st.stopped {
            return Err(format!(
                "shutting down: writes under lease {} stopped",
                self.name
            ));
        }
        let ours = st
            .lease
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let live = match self.leases.api.get_opt(&self.name).await {
            Ok(l) => l,
            Err(e) => return Err(format!("cannot read lease {}: {e}", self.name)),
        };
        let (holder, rv) = live
            .map(|l| {
                let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                (h, l.metadata.resource_version.unwrap_or_default())
            })
            .unwrap_or_default();
        if holder != self.leases.identity || rv != ours {
            return Err(format!(
                "lease {} is no longer ours (holder `{holder}`, resourceVersion {rv}, ours {ours})",
                self.name
            ));
        }
        // Last, so that nothing slow stands between this and the write.
        let since = st.renewed_at.elapsed();
        if since >= self.leases.timing.renew_deadline {
            return Err(format!(
                "lease {} last renewed {since:?} ago, past the renew deadline {:?}",
                self.name, self.leases.timing.renew_deadline
            ));
        }
        Ok(())
    }

    /// Refuse every further write under this term (its fence fails), while
    /// still holding the Lease until [`Term::release`]. Waits for fence
    /// checks in flight.
    pub async fn stop(&self) {
        self.state.write().await.stopped = true;
    }

    /// Whether the term is known lost.
    pub async fn is_lost(&self) -> bool {
        self.state.read().await.lost.is_some()
    }

    /// Give the Lease up so another instance can take it at once (client-go's
    /// `ReleaseOnCancel`: holder cleared, duration 1 s). A conflict means it
    /// was not ours any more, which is fine.
    pub async fn release(&self) {
        let mut st = self.state.write().await;
        if st.lost.is_some() {
            return;
        }
        let mut lease = st.lease.clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        st.lost = Some(format!("lease {} released", self.name));
        match self
            .leases
            .api
            .replace(&self.name, &release_params(), &lease)
            .await
        {
            Ok(_) => debug!(lease = %self.name, "lease released"),
            Err(e) => debug!(lease = %self.name, error = %e, "lease release failed"),
        }
    }
}

/// Field manager of a release, `keelson-release` (acquisitions and renewals
/// use the default): audit and request logs tell a release, which ends a
/// term, from the writes inside it.
pub const RELEASE_MANAGER: &str = "keelson-release";

fn release_params() -> PostParams {
    PostParams {
        field_manager: Some(RELEASE_MANAGER.to_string()),
        ..PostParams::default()
    }
}

/// A Kubernetes object name (RFC 1123 subdomain, at most 63 characters here
/// so it also fits a label value) for `prefix` + `name`: lowercase, other
/// characters turned into `-`, and a hash suffix whenever the name had to
/// change or be cut, so two names never map to one Lease.
pub fn object_name(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let plain = format!("{prefix}{clean}");
    if clean == name && plain.len() <= 63 && !plain.ends_with('-') {
        return plain;
    }
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    let keep = 63 - hash.len() - 1;
    let mut head: String = plain.chars().take(keep).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        assert_eq!(object_name("keelson-env-", "prod"), "keelson-env-prod");
        let a = object_name("keelson-env-", "Prod_EU");
        let b = object_name("keelson-env-", "prod-eu");
        assert_ne!(a, b);
        assert!(a.starts_with("keelson-env-prod-eu-"), "{a}");
        let long = object_name("keelson-env-", &"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn timing_follows_client_go_rules() {
        assert_eq!(LeaseTiming::default().problem(), None);
        let bad = LeaseTiming {
            duration: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(500),
        };
        assert!(bad.problem().unwrap().contains("renewDeadline"));
        let frac = LeaseTiming {
            duration: Duration::from_millis(2500),
            ..LeaseTiming::default()
        };
        assert!(frac.problem().unwrap().contains("whole seconds"));
    }
}
