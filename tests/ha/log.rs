//! Reading the test server's request log: who wrote which environment, and
//! under which Lease term.
//!
//! A *term* of replica X on environment E's Lease is a maximal run of
//! successful writes to that Lease by X (its acquisition, renewals and
//! release), up to the first successful write to it by another replica.
//! The server orders writes to one Lease (each carries the
//! `resourceVersion` it read), so terms of different replicas follow each
//! other and never interleave. A write by X to E is proper when it started
//! after X's term had begun (the acquisition answered) and finished before
//! the next replica's term began. Requests are timed by the server
//! (`started`..`finished` brackets whatever a request changed).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use kube_apiserver::RequestRecord;

use super::cluster::LEASE_NS;

/// The replica named in a request's User-Agent: `keelson/<v> (<identity>)`.
pub fn identity(r: &RequestRecord) -> Option<String> {
    let ua = r.user_agent.as_deref()?;
    let start = ua.find('(')? + 1;
    let end = ua[start..].find(')')? + start;
    Some(ua[start..end].to_string())
}

/// The environment a request's path writes to: an object in its namespace,
/// the namespace itself, or its `KeelsonEnvironment` status object.
pub fn env_of(path: &str, namespaces: &BTreeMap<String, String>) -> Option<String> {
    if let Some(rest) = path.strip_prefix(&format!(
        "/apis/keelson.dev/v1/namespaces/{LEASE_NS}/keelsonenvironments/"
    )) {
        let name = rest.split('/').next().unwrap_or_default();
        return namespaces.keys().find(|e| e.as_str() == name).cloned();
    }
    namespaces
        .iter()
        .find(|(_, ns)| {
            path.contains(&format!("/namespaces/{ns}/"))
                || path.ends_with(&format!("/namespaces/{ns}"))
        })
        .map(|(e, _)| e.clone())
}

fn lease_env(path: &str) -> Option<String> {
    path.strip_prefix(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/keelson-env-"
    ))
    .map(str::to_string)
}

fn ok_write(r: &RequestRecord) -> bool {
    r.is_write() && (200..300).contains(&r.status)
}

/// Whether a Lease write is a release (`keelson::controller::lease::RELEASE_MANAGER`).
pub fn is_release(r: &RequestRecord) -> bool {
    r.query.split('&').any(|q| {
        q == format!(
            "fieldManager={}",
            keelson::controller::lease::RELEASE_MANAGER
        )
    })
}

/// One replica's term on one environment's Lease.
#[derive(Debug, Clone)]
struct Term {
    who: String,
    /// When its first (acquiring) write was answered.
    acquired: Instant,
    /// When the next replica's first write began (None: still open).
    until: Option<Instant>,
}

fn terms(log: &[RequestRecord]) -> BTreeMap<String, Vec<Term>> {
    let mut by_env: BTreeMap<String, Vec<&RequestRecord>> = BTreeMap::new();
    for r in log.iter().filter(|r| ok_write(r)) {
        if let Some(env) = lease_env(&r.path) {
            by_env.entry(env).or_default().push(r);
        }
    }
    let mut out = BTreeMap::new();
    for (env, mut writes) in by_env {
        writes.sort_by_key(|r| r.started);
        let mut ts: Vec<Term> = Vec::new();
        for w in writes {
            let who = identity(w).unwrap_or_else(|| "?".into());
            let open = ts.last().is_some_and(|t| t.until.is_none());
            match ts.last_mut() {
                // A renewal, or the release that ends the term.
                Some(t) if open && t.who == who => {
                    if is_release(w) {
                        t.until = Some(w.started);
                    }
                }
                // A release with no open term of its own: nothing to end.
                _ if is_release(w) => {}
                last => {
                    if let Some(t) = last
                        && t.until.is_none()
                    {
                        t.until = Some(w.started);
                    }
                    ts.push(Term {
                        who,
                        acquired: w.finished,
                        until: None,
                    });
                }
            }
        }
        out.insert(env, ts);
    }
    out
}

/// What the log shows.
pub struct Report {
    /// Environment writes checked.
    pub writes: usize,
    /// Changes of Lease holder across all environments.
    pub handovers: usize,
    /// Writes outside their writer's term.
    pub violations: Vec<String>,
    /// Environments and the replicas that wrote them.
    pub writers: BTreeMap<String, BTreeSet<String>>,
}

impl Report {
    /// Panic with every violation.
    pub fn assert_ok(&self) {
        assert!(
            self.violations.is_empty(),
            "{} write(s) outside the writer's lease term:\n{}",
            self.violations.len(),
            self.violations.join("\n")
        );
        assert!(self.writes > 0, "no environment writes in the log");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} environment writes, {} lease handovers, {} violations; writers: {:?}",
            self.writes,
            self.handovers,
            self.violations.len(),
            self.writers
        )
    }
}

/// Check that every successful write to an environment happened inside a
/// Lease term of the replica that made it.
pub fn check_single_writer(log: &[RequestRecord], namespaces: &BTreeMap<String, String>) -> Report {
    let terms = terms(log);
    let mut report = Report {
        writes: 0,
        handovers: terms.values().map(|t| t.len().saturating_sub(1)).sum(),
        violations: Vec::new(),
        writers: BTreeMap::new(),
    };
    for r in log.iter().filter(|r| ok_write(r)) {
        let Some(env) = env_of(&r.path, namespaces) else {
            continue;
        };
        report.writes += 1;
        let who = identity(r).unwrap_or_else(|| "?".into());
        report
            .writers
            .entry(env.clone())
            .or_default()
            .insert(who.clone());
        let inside = terms.get(&env).into_iter().flatten().any(|t| {
            t.who == who && t.acquired <= r.started && t.until.is_none_or(|u| r.finished <= u)
        });
        if !inside {
            report.violations.push(format!(
                "{who}: {} {} (terms on {env}: {:?})",
                r.method,
                r.path,
                terms
                    .get(&env)
                    .map(|ts| ts.iter().map(|t| t.who.as_str()).collect::<Vec<_>>())
            ));
        }
    }
    report
}

/// Writes by `who` to an environment after `resumed`, before `who` wrote
/// that environment's Lease again.
pub fn env_writes_between_resume_and_reacquire(
    log: &[RequestRecord],
    namespaces: &BTreeMap<String, String>,
    who: &str,
    resumed: Instant,
) -> Vec<String> {
    let mine: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| ok_write(r) && r.started >= resumed && identity(r).as_deref() == Some(who))
        .collect();
    let mut out = Vec::new();
    for r in &mine {
        let Some(env) = env_of(&r.path, namespaces) else {
            continue;
        };
        let reacquired = mine.iter().any(|l| {
            lease_env(&l.path).as_deref() == Some(env.as_str()) && l.finished <= r.started
        });
        if !reacquired {
            out.push(format!("{} {}", r.method, r.path));
        }
    }
    out
}
