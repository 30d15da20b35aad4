//! The health gate: a version may leave an environment only after it has
//! run there healthy, without a break, for `promotion.minHealthy`, as the
//! controller recorded it (the local status store, a controller's `/status`,
//! or the `KeelsonEnvironment` objects; see [`crate::record`]). Kargo's
//! verification of a Stage before Freight moves on plays the same part.
//!
//! The evidence is [`crate::controller::AppStatus::healthy_since`]: set at
//! the first sync or drift check that saw this version healthy, kept while
//! later ones still do, cleared by anything else.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

#[cfg(doc)]
use super::Version;
use crate::apply::health::Health;
use crate::record::EnvStatus;

/// What the gate found when it let a version through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The version seen running (as recorded).
    pub version: String,
    /// RFC 3339 time since which it has been healthy.
    pub healthy_since: String,
    /// How long that is, in whole seconds.
    pub healthy_for_seconds: u64,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} healthy since {} ({})",
            self.version,
            self.healthy_since,
            humantime::format_duration(Duration::from_secs(self.healthy_for_seconds))
        )
    }
}

/// Why the gate refused, with what the recorded status says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No status is recorded for the source environment.
    #[error(
        "no recorded status for environment `{env}`: the controller has not synced it yet, or the \
         status read is not the controller's (pass --server, --kubeconfig or --state-dir)"
    )]
    NoStatus {
        /// Source environment.
        env: String,
    },
    /// The environment's status has no entry for the app.
    #[error(
        "the recorded status of `{env}` has no app `{app}`: it has not been observed there \
         (last observation: {observed})"
    )]
    NoApp {
        /// Source environment.
        env: String,
        /// App.
        app: String,
        /// When the environment was last observed.
        observed: String,
    },
    /// Another version runs in the source environment.
    #[error(
        "`{env}` runs {app} {running} ({health}{since}), not {wanted}, the version to promote: \
         wait for the controller to sync `{env}` and for {wanted} to run healthy there"
    )]
    OtherVersion {
        /// Source environment.
        env: String,
        /// App.
        app: String,
        /// Version recorded as running.
        running: String,
        /// Its health.
        health: Health,
        /// `, healthy since …` or empty.
        since: String,
        /// Version being promoted.
        wanted: String,
    },
    /// The version runs, but is not healthy.
    #[error("{app} {version} is {health} in `{env}` (last observation: {observed})")]
    NotHealthy {
        /// Source environment.
        env: String,
        /// App.
        app: String,
        /// Version.
        version: String,
        /// Its recorded health.
        health: Health,
        /// When the environment was last observed.
        observed: String,
    },
    /// Healthy, but not for long enough.
    #[error(
        "{app} {version} has been healthy in `{env}` since {since} ({healthy_for} up to the last \
         observation, {observed}), less than promotion.minHealthy ({min}); it may be promoted once \
         observed healthy at {from} or later"
    )]
    TooSoon {
        /// Source environment.
        env: String,
        /// App.
        app: String,
        /// Version.
        version: String,
        /// RFC 3339 start of the healthy run.
        since: String,
        /// How long so far.
        healthy_for: String,
        /// The configured minimum.
        min: String,
        /// RFC 3339 time it will have been long enough.
        from: String,
        /// RFC 3339 time of the last observation.
        observed: String,
    },
}

/// Check that version `want` (as recorded: the tag, see
/// [`Version::recorded`]) has run healthy in environment `env` for at least
/// `min` at time `now`, according to `statuses` (every environment's
/// recorded status).
pub fn check(
    statuses: &[EnvStatus],
    env: &str,
    app: &str,
    want: &str,
    min: Duration,
    now: SystemTime,
) -> Result<Evidence, Box<Refusal>> {
    let Some(st) = statuses.iter().find(|s| s.env == env) else {
        return Err(Box::new(Refusal::NoStatus { env: env.into() }));
    };
    let observed = last_observed(st);
    let Some(a) = st.apps.iter().find(|a| a.name == app) else {
        return Err(Box::new(Refusal::NoApp {
            env: env.into(),
            app: app.into(),
            observed,
        }));
    };
    let wanted = want.to_string();
    if a.version != wanted {
        return Err(Box::new(Refusal::OtherVersion {
            env: env.into(),
            app: app.into(),
            running: a.version.clone(),
            health: a.health,
            since: a
                .healthy_since
                .as_ref()
                .map(|s| format!(", healthy since {s}"))
                .unwrap_or_default(),
            wanted,
        }));
    }
    let since = match (&a.health, &a.healthy_since) {
        (Health::Healthy, Some(since)) => since,
        (health, _) => {
            return Err(Box::new(Refusal::NotHealthy {
                env: env.into(),
                app: app.into(),
                version: wanted,
                health: *health,
                observed,
            }));
        }
    };
    // Healthy time is what was observed: up to the last observation of the
    // apps (never past `now`), so a record that stopped being refreshed
    // does not pass by getting old. A record without that time counts none.
    let parse = |t: &str| humantime::parse_rfc3339_weak(t).ok();
    let start = parse(since).unwrap_or(now);
    let observed_at = st
        .apps_observed_at
        .as_deref()
        .and_then(parse)
        .unwrap_or(start)
        .min(now);
    let healthy_for = observed_at.duration_since(start).unwrap_or_default();
    let secs =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    if healthy_for < min {
        return Err(Box::new(Refusal::TooSoon {
            env: env.into(),
            app: app.into(),
            version: wanted,
            since: since.clone(),
            healthy_for: secs(healthy_for),
            min: secs(min),
            from: humantime::format_rfc3339_seconds(start + min).to_string(),
            observed: humantime::format_rfc3339_seconds(observed_at).to_string(),
        }));
    }
    Ok(Evidence {
        version: wanted,
        healthy_since: since.clone(),
        healthy_for_seconds: healthy_for.as_secs(),
    })
}

/// When the environment was last observed (sync or drift check), for messages.
fn last_observed(st: &EnvStatus) -> String {
    [&st.last_attempt, &st.last_drift_check]
        .into_iter()
        .flatten()
        .map(|a| a.at.as_str())
        .max()
        .unwrap_or("never")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::AppStatus;

    fn status(version: &str, health: Health, since: Option<&str>) -> Vec<EnvStatus> {
        observed(version, health, since, "2026-11-30T14:00:00Z")
    }

    fn observed(version: &str, health: Health, since: Option<&str>, at: &str) -> Vec<EnvStatus> {
        vec![EnvStatus {
            env: "staging".into(),
            apps_observed_at: Some(at.into()),
            apps: vec![AppStatus {
                name: "orders".into(),
                version: version.into(),
                health,
                healthy_since: since.map(str::to_string),
            }],
            ..EnvStatus::default()
        }]
    }

    fn at(t: &str) -> SystemTime {
        humantime::parse_rfc3339(t).unwrap()
    }

    #[test]
    fn refuses_until_healthy_long_enough() {
        let want = "1.43.0";
        let min = Duration::from_secs(600);
        let now = at("2026-11-30T14:00:00Z");
        let st = status("1.43.0", Health::Healthy, Some("2026-11-30T13:55:00Z"));
        let e = check(&st, "staging", "orders", want, min, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "orders 1.43.0 has been healthy in `staging` since 2026-11-30T13:55:00Z (5m up to the \
             last observation, 2026-11-30T14:00:00Z), less than promotion.minHealthy (10m); it may \
             be promoted once observed healthy at 2026-11-30T14:05:00Z or later"
        );
        // An hour later with no new observation: still too soon.
        let later = at("2026-11-30T15:00:00Z");
        assert!(check(&st, "staging", "orders", want, min, later).is_err());
        let st = observed(
            "1.43.0",
            Health::Healthy,
            Some("2026-11-30T13:55:00Z"),
            "2026-11-30T14:06:00Z",
        );
        let ok = check(&st, "staging", "orders", want, min, later).unwrap();
        assert_eq!(ok.healthy_for_seconds, 660);
        let st = status("1.42.0", Health::Healthy, Some("2026-11-29T00:00:00Z"));
        let e = check(&st, "staging", "orders", want, min, now).unwrap_err();
        assert!(e.to_string().starts_with("`staging` runs orders 1.42.0 (healthy, healthy since 2026-11-29T00:00:00Z), not 1.43.0"), "{e}");
        let st = status("1.43.0", Health::Progressing, None);
        let e = check(&st, "staging", "orders", want, min, now).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("orders 1.43.0 is progressing in `staging`"),
            "{e}"
        );
        let e = check(&st, "dev", "orders", want, min, now).unwrap_err();
        assert!(matches!(*e, Refusal::NoStatus { .. }));
    }
}
