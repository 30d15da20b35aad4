//! The status page served at `/` by `keelson run`: the answer to "which
//! version of app X runs in prod right now?" for people who do not use the
//! CLI (seed 004).
//!
//! The page is server-rendered HTML (askama, checked at compile time) with no
//! build step and no network dependency: styles and the small refresh script
//! are inline. It shows exactly what `/status` and `/history` serve — the
//! same masked plans, the same diagnostics — and nothing else, so it never
//! becomes a second place where a Secret could leak. It refreshes itself
//! every few seconds by fetching `/?fragment=1` and swapping the content in;
//! without JavaScript a `<meta refresh>` does the same.

use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::server::StatusReport;
use crate::controller::Outcome;
use crate::record::SyncRecord;
use crate::record::matrix::short;

/// How often the page refreshes itself, in seconds.
pub const REFRESH_SECONDS: u32 = 5;

/// Syncs shown per environment.
pub const HISTORY_PER_ENV: usize = 5;

/// The whole page (`GET /`).
#[derive(Template)]
#[template(path = "status.html")]
pub struct Page {
    /// Seconds between refreshes.
    pub refresh: u32,
    /// The part that refreshes.
    pub body: Body,
}

/// The content that is swapped in on refresh (`GET /?fragment=1`).
#[derive(Template)]
#[template(path = "status_body.html")]
pub struct Body {
    /// RFC 3339 time the page was rendered.
    pub rendered_at: String,
    /// Whether every environment had its first sync.
    pub ready: bool,
    /// Where the Git source stands.
    pub source: SourceView,
    /// Environment columns, in name order.
    pub envs: Vec<EnvView>,
    /// App rows: one cell per column of `envs`.
    pub rows: Vec<RowView>,
    /// Backups, per cluster (empty when `keelson run` takes none).
    pub backups: Vec<BackupView>,
}

/// The Git source.
pub struct SourceView {
    /// Repository URL (passwords are already masked by the source).
    pub url: String,
    /// Followed branch.
    pub branch: String,
    /// Short id of the commit served.
    pub head: String,
    /// Its first message line and author.
    pub head_summary: String,
    /// Age of the last successful fetch.
    pub last_fetch: String,
    /// The fetch error, while fetches fail.
    pub error: Option<String>,
}

/// One environment: its column header and its section.
pub struct EnvView {
    /// Environment name.
    pub name: String,
    /// Short id of the last applied commit.
    pub commit: String,
    /// Age of the last successful sync.
    pub applied_age: String,
    /// Outcome word of the last attempt (`applied`, `invalid`, …).
    pub result: String,
    /// CSS class of the outcome.
    pub result_class: &'static str,
    /// Outcome of the last attempt in one line.
    pub result_summary: String,
    /// Objects that differed at the last drift check.
    pub drift: u64,
    /// Age of the last drift check.
    pub drift_age: String,
    /// `file:line:col: message` of an invalid spec, or the failure message.
    pub errors: Vec<String>,
    /// The latest syncs, newest first.
    pub syncs: Vec<SyncView>,
}

/// One sync of the history.
pub struct SyncView {
    /// How long ago it finished.
    pub age: String,
    /// RFC 3339 time it finished.
    pub at: String,
    /// Short commit id.
    pub commit: String,
    /// Author and first message line.
    pub author: String,
    /// First line of the commit message.
    pub summary: String,
    /// Why it ran.
    pub trigger: &'static str,
    /// What happened, in one line.
    pub outcome: String,
    /// CSS class of the outcome.
    pub outcome_class: &'static str,
    /// The objects written (or drifted), one line each, as the CLI prints
    /// them (Secrets are never shown by value).
    pub changes: Vec<String>,
}

/// One app row of the matrix.
pub struct RowView {
    /// App name.
    pub app: String,
    /// One cell per environment column; `None` where the app is not deployed.
    pub cells: Vec<Option<CellView>>,
}

/// One cell: an app in an environment.
pub struct CellView {
    /// Image tag.
    pub version: String,
    /// Health word.
    pub health: &'static str,
}

/// The backups of one cluster.
pub struct BackupView {
    /// Cluster name.
    pub cluster: String,
    /// Cron schedule.
    pub schedule: String,
    /// Age of the last good snapshot (`never`).
    pub last_success_age: String,
    /// Its time, RFC 3339.
    pub last_success: String,
    /// Snapshot file name.
    pub file: String,
    /// Size, human readable.
    pub size: String,
    /// The latest error, when the latest attempt failed.
    pub error: Option<String>,
    /// When the next run starts.
    pub next_run: String,
}

impl Body {
    /// Build the page content from what `/status` serves and each
    /// environment's latest history entries.
    pub fn new(
        report: &StatusReport,
        history: &[(String, Vec<SyncRecord>)],
        now: DateTime<Utc>,
    ) -> Body {
        let source = SourceView {
            url: report.source.url.clone(),
            branch: report.source.branch.clone(),
            head: report
                .source
                .head
                .as_ref()
                .map(|h| short(&h.id).to_string())
                .unwrap_or_else(|| "—".into()),
            head_summary: report
                .source
                .head
                .as_ref()
                .map(|h| format!("{} ({})", h.summary, h.author))
                .unwrap_or_default(),
            last_fetch: age(report.source.last_fetch.as_deref(), now),
            error: report.source.error.clone(),
        };
        let mut statuses: Vec<_> = report.environments.iter().collect();
        statuses.sort_by(|a, b| a.env.cmp(&b.env));
        let envs: Vec<EnvView> = statuses
            .iter()
            .map(|s| {
                let attempt = s.last_attempt.as_ref();
                let syncs = history
                    .iter()
                    .find(|(env, _)| env == &s.env)
                    .map(|(_, records)| records.iter().map(|r| sync_view(r, now)).collect())
                    .unwrap_or_default();
                EnvView {
                    name: s.env.clone(),
                    commit: s
                        .last_applied
                        .as_ref()
                        .map(|c| short(&c.commit).to_string())
                        .unwrap_or_else(|| "—".into()),
                    applied_age: age(s.last_applied.as_ref().map(|c| c.at.as_str()), now),
                    result: attempt.map_or("pending", |a| a.outcome.word()).to_string(),
                    result_class: attempt.map_or("unknown", |a| outcome_class(&a.outcome)),
                    result_summary: attempt
                        .map_or_else(|| "not synced yet".to_string(), |a| a.outcome.summary()),
                    drift: s.drift,
                    drift_age: age(s.last_drift_check.as_ref().map(|a| a.at.as_str()), now),
                    errors: attempt.map(|a| errors(&a.outcome)).unwrap_or_default(),
                    syncs,
                }
            })
            .collect();
        let rows = report
            .matrix
            .apps
            .iter()
            .map(|(app, by_env)| RowView {
                app: app.clone(),
                cells: envs
                    .iter()
                    .map(|e| {
                        by_env.get(&e.name).map(|c| CellView {
                            version: c.version.clone(),
                            health: c.health.as_str(),
                        })
                    })
                    .collect(),
            })
            .collect();
        Body {
            rendered_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ready: report.ready,
            source,
            envs,
            rows,
            backups: backups(&report.backups, now),
        }
    }
}

fn sync_view(r: &SyncRecord, now: DateTime<Utc>) -> SyncView {
    SyncView {
        age: age(Some(&r.at), now),
        at: r.at.clone(),
        commit: short(&r.commit).to_string(),
        author: r.author.clone(),
        summary: r.summary.clone(),
        trigger: r.trigger.as_str(),
        outcome: r.outcome.summary(),
        outcome_class: outcome_class(&r.outcome),
        changes: r.changes.clone(),
    }
}

fn outcome_class(o: &Outcome) -> &'static str {
    match o {
        Outcome::NoChange | Outcome::Applied { .. } => "ok",
        Outcome::Drift { .. } => "warn",
        Outcome::Invalid { .. } | Outcome::Failed { .. } => "bad",
    }
}

fn errors(o: &Outcome) -> Vec<String> {
    match o {
        Outcome::Invalid { diagnostics } => diagnostics.clone(),
        Outcome::Failed { message } => vec![message.clone()],
        _ => Vec::new(),
    }
}

fn backups(v: &Json, now: DateTime<Utc>) -> Vec<BackupView> {
    let Some(clusters) = v.get("clusters").and_then(Json::as_object) else {
        return Vec::new();
    };
    let s = |c: &Json, k: &str| c.get(k).and_then(Json::as_str).map(str::to_string);
    clusters
        .iter()
        .map(|(name, c)| BackupView {
            cluster: name.clone(),
            schedule: s(c, "schedule").unwrap_or_default(),
            last_success_age: age(s(c, "lastSuccess").as_deref(), now),
            last_success: s(c, "lastSuccess").unwrap_or_default(),
            file: s(c, "lastFile")
                .map(|f| {
                    std::path::Path::new(&f)
                        .file_name()
                        .map_or(f.clone(), |n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_default(),
            size: c
                .get("lastSizeBytes")
                .and_then(Json::as_u64)
                .map(human_bytes)
                .unwrap_or_default(),
            error: s(c, "lastError"),
            next_run: s(c, "nextRun").map(|t| until(&t, now)).unwrap_or_default(),
        })
        .collect()
}

/// `3m ago`, `2h ago`, `5d ago`; `never` when there is no time.
fn age(at: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = at.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "never".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    format!("{} ago", span(secs))
}

fn until(at: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(at) {
        Ok(t) => format!(
            "in {}",
            span((t.with_timezone(&Utc) - now).num_seconds().max(0))
        ),
        Err(_) => String::new(),
    }
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(age(Some("2026-11-30T11:59:30Z"), now), "30s ago");
        assert_eq!(age(Some("2026-11-30T11:00:00Z"), now), "1h ago");
        assert_eq!(age(Some("2026-11-27T12:00:00Z"), now), "3d ago");
        assert_eq!(age(None, now), "never");
        assert_eq!(until("2026-11-30T12:05:00Z", now), "in 5m");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
