//! Prometheus metrics, exposed in the text exposition format (0.0.4).
//!
//! The set is small and fixed, so it is kept in plain maps behind one mutex
//! rather than a general registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Outcome;

/// Upper bounds of the sync duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    sync_duration: BTreeMap<String, Histogram>,
    sync_results: BTreeMap<(String, String), u64>,
    drift: BTreeMap<String, u64>,
    last_success: BTreeMap<String, f64>,
    fetch_errors: u64,
    fetches: u64,
    branch_missing: bool,
    apply_requests: BTreeMap<(String, String), u64>,
    webhooks: BTreeMap<String, u64>,
    commit_statuses: BTreeMap<String, u64>,
}

/// The controller's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Record one sync or drift check of `env`.
    pub fn observe_sync(&self, env: &str, took: Duration, outcome: &Outcome) {
        self.with(|m| {
            let h = m.sync_duration.entry(env.to_string()).or_default();
            let secs = took.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
            *m.sync_results
                .entry((env.to_string(), outcome.word().to_string()))
                .or_default() += 1;
            match outcome {
                Outcome::NoChange | Outcome::Applied { .. } => {
                    m.last_success.insert(env.to_string(), unix_now());
                    m.drift.insert(env.to_string(), 0);
                }
                Outcome::Drift { count } => {
                    m.drift.insert(env.to_string(), *count);
                }
                _ => {}
            }
            if let Outcome::Applied {
                created,
                updated,
                replaced,
                deleted,
            } = outcome
            {
                for (action, n) in [
                    ("create", created),
                    ("update", updated),
                    ("replace", replaced),
                    ("delete", deleted),
                ] {
                    *m.apply_requests
                        .entry((env.to_string(), action.to_string()))
                        .or_default() += n;
                }
            }
        });
    }

    /// Record a fetch attempt, and whether the remote lacked the followed branch.
    pub fn observe_fetch(&self, ok: bool, branch_missing: bool) {
        self.with(|m| {
            m.fetches += 1;
            if !ok {
                m.fetch_errors += 1;
            }
            m.branch_missing = branch_missing;
        });
    }

    /// Record a webhook request and how it was answered (`accepted`, `rejected`, `ignored`).
    pub fn observe_webhook(&self, result: &str) {
        self.with(|m| *m.webhooks.entry(result.to_string()).or_default() += 1);
    }

    /// Record a commit status: `sent`, `unchanged` (not posted again) or `error`.
    pub fn observe_commit_status(&self, result: &str) {
        self.with(|m| *m.commit_statuses.entry(result.to_string()).or_default() += 1);
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut o = String::new();
            header(
                &mut o,
                "keelson_sync_duration_seconds",
                "histogram",
                "Time taken by one reconcile of an environment.",
            );
            for (env, h) in &m.sync_duration {
                let env = escape(env);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "keelson_sync_duration_seconds_bucket{{env=\"{env}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "keelson_sync_duration_seconds_bucket{{env=\"{env}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "keelson_sync_duration_seconds_sum{{env=\"{env}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "keelson_sync_duration_seconds_count{{env=\"{env}\"}} {}",
                    h.count
                );
            }
            header(
                &mut o,
                "keelson_sync_results_total",
                "counter",
                "Syncs and drift checks by environment and outcome.",
            );
            for ((env, outcome), n) in &m.sync_results {
                let _ = writeln!(
                    o,
                    "keelson_sync_results_total{{env=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(env)
                );
            }
            header(
                &mut o,
                "keelson_drift_objects",
                "gauge",
                "Objects that differ from the spec at the last check.",
            );
            for (env, n) in &m.drift {
                let _ = writeln!(o, "keelson_drift_objects{{env=\"{}\"}} {n}", escape(env));
            }
            header(
                &mut o,
                "keelson_last_successful_sync_timestamp_seconds",
                "gauge",
                "Unix time of the last successful sync.",
            );
            for (env, t) in &m.last_success {
                let _ = writeln!(
                    o,
                    "keelson_last_successful_sync_timestamp_seconds{{env=\"{}\"}} {t}",
                    escape(env)
                );
            }
            header(
                &mut o,
                "keelson_git_fetches_total",
                "counter",
                "Git fetch attempts.",
            );
            let _ = writeln!(o, "keelson_git_fetches_total {}", m.fetches);
            header(
                &mut o,
                "keelson_git_fetch_errors_total",
                "counter",
                "Git fetches that failed.",
            );
            let _ = writeln!(o, "keelson_git_fetch_errors_total {}", m.fetch_errors);
            header(
                &mut o,
                "keelson_git_branch_missing",
                "gauge",
                "1 while the remote does not advertise the followed branch (the last fetched commit stays applied).",
            );
            let _ = writeln!(o, "keelson_git_branch_missing {}", u8::from(m.branch_missing));
            header(
                &mut o,
                "keelson_apply_requests_total",
                "counter",
                "Objects created, updated or deleted by apply.",
            );
            for ((env, action), n) in &m.apply_requests {
                let _ = writeln!(
                    o,
                    "keelson_apply_requests_total{{env=\"{}\",action=\"{action}\"}} {n}",
                    escape(env)
                );
            }
            header(
                &mut o,
                "keelson_webhook_requests_total",
                "counter",
                "Webhook requests by result.",
            );
            for (result, n) in &m.webhooks {
                let _ = writeln!(
                    o,
                    "keelson_webhook_requests_total{{result=\"{result}\"}} {n}"
                );
            }
            header(
                &mut o,
                "keelson_commit_statuses_total",
                "counter",
                "Commit statuses by result: sent, unchanged (already on the commit, not posted) or error.",
            );
            for (result, n) in &m.commit_statuses {
                let _ = writeln!(o, "keelson_commit_statuses_total{{result=\"{result}\"}} {n}");
            }
            header(
                &mut o,
                "keelson_commit_status_errors_total",
                "counter",
                "Commit statuses that could not be posted.",
            );
            let _ = writeln!(
                o,
                "keelson_commit_status_errors_total {}",
                m.commit_statuses.get("error").copied().unwrap_or(0)
            );
            o
        })
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_sync("dev", Duration::from_millis(70), &Outcome::NoChange);
        m.observe_sync("dev", Duration::from_secs(3), &Outcome::Drift { count: 2 });
        let text = m.render();
        assert!(
            text.contains("keelson_sync_duration_seconds_bucket{env=\"dev\",le=\"0.05\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("keelson_sync_duration_seconds_bucket{env=\"dev\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("keelson_sync_duration_seconds_bucket{env=\"dev\",le=\"5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("keelson_drift_objects{env=\"dev\"} 2\n"),
            "{text}"
        );
    }
}
