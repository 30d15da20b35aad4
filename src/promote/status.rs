//! What is promotable, for `keelson status`: along `promotion.stages`, each
//! app whose recorded version in one stage differs from the next stage's,
//! with the health gate's verdict on it.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::PromotionConfig;
use super::gate::{self, Evidence};
use crate::record::EnvStatus;

/// One app that could move from one stage to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotable {
    /// App name.
    pub app: String,
    /// Source environment.
    pub from: String,
    /// Target environment.
    pub to: String,
    /// Version running in the source (as recorded).
    pub version: String,
    /// Version running in the target.
    pub replaces: String,
    /// The gate's evidence when met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_met: Option<Evidence>,
    /// Why the gate is not met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_refused: Option<String>,
}

/// Every promotable app along `stages` (consecutive pairs), at `now`. An
/// app counts when both stages have recorded it and its versions differ;
/// one not running in the next stage is not promoted there.
pub fn promotable(
    statuses: &[EnvStatus],
    stages: &[String],
    min: Duration,
    now: SystemTime,
) -> Vec<Promotable> {
    let mut out = Vec::new();
    for pair in stages.windows(2) {
        let (from, to) = (&pair[0], &pair[1]);
        let (Some(src), Some(dst)) = (
            statuses.iter().find(|s| &s.env == from),
            statuses.iter().find(|s| &s.env == to),
        ) else {
            continue;
        };
        for app in &src.apps {
            let Some(there) = dst.apps.iter().find(|a| a.name == app.name) else {
                continue;
            };
            if there.version == app.version {
                continue;
            }
            let verdict = gate::check(statuses, from, &app.name, &app.version, min, now);
            out.push(Promotable {
                app: app.name.clone(),
                from: from.clone(),
                to: to.clone(),
                version: app.version.clone(),
                replaces: there.version.clone(),
                gate_refused: verdict.as_ref().err().map(|e| e.to_string()),
                gate_met: verdict.ok(),
            });
        }
    }
    out
}

/// The text section of `keelson status`: a table, or a line saying there is
/// nothing to promote; empty when no stages are configured.
pub fn render(list: &[Promotable], cfg: &PromotionConfig) -> String {
    if cfg.stages.len() < 2 {
        return String::new();
    }
    let min = humantime::format_duration(Duration::from_secs(cfg.min_healthy().as_secs()));
    let mut out = format!(
        "\npromotable along {} (promotion.minHealthy {min}):\n",
        cfg.stages.join(" -> ")
    );
    if list.is_empty() {
        out.push_str("  nothing: every app runs the same version in each next stage\n");
        return out;
    }
    // Read left to right: app, the version that moves, from where to where,
    // what it replaces there, and the gate.
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|p| {
            [
                p.app.clone(),
                p.version.clone(),
                format!("{} -> {}", p.from, p.to),
                format!("replaces {}", p.replaces),
                match (&p.gate_met, &p.gate_refused) {
                    (Some(ev), _) => format!("gate met: {ev}"),
                    (None, Some(why)) => format!("gate not met: {why}"),
                    (None, None) => String::new(),
                },
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0], r[1], r[2], r[3], r[4]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::health::Health;
    use crate::controller::AppStatus;

    fn env(name: &str, apps: &[(&str, &str, Option<&str>)]) -> EnvStatus {
        EnvStatus {
            env: name.into(),
            apps_observed_at: Some("2026-11-30T14:00:00Z".into()),
            apps: apps
                .iter()
                .map(|(n, v, since)| AppStatus {
                    name: n.to_string(),
                    version: v.to_string(),
                    health: if since.is_some() {
                        Health::Healthy
                    } else {
                        Health::Progressing
                    },
                    healthy_since: since.map(str::to_string),
                })
                .collect(),
            ..EnvStatus::default()
        }
    }

    #[test]
    fn lists_differing_apps_with_the_gate() {
        let st = [
            env(
                "staging",
                &[
                    ("orders", "1.43.0", Some("2026-11-30T12:00:00Z")),
                    ("mailer", "2.3.0", Some("2026-11-30T12:00:00Z")),
                    ("pay", "0.20.0", None),
                ],
            ),
            env(
                "prod",
                &[
                    ("orders", "1.42.0", Some("2026-11-01T00:00:00Z")),
                    ("mailer", "2.3.0", Some("2026-11-01T00:00:00Z")),
                    ("pay", "0.19.4", Some("2026-11-01T00:00:00Z")),
                ],
            ),
        ];
        let cfg = PromotionConfig {
            stages: vec!["dev".into(), "staging".into(), "prod".into()],
            ..PromotionConfig::default()
        };
        let now = humantime::parse_rfc3339("2026-11-30T14:00:00Z").unwrap();
        let list = promotable(&st, &cfg.stages, cfg.min_healthy(), now);
        let text = render(&list, &cfg);
        assert_eq!(
            text,
            "\npromotable along dev -> staging -> prod (promotion.minHealthy 10m):\n\
             \x20 orders  1.43.0  staging -> prod  replaces 1.42.0  gate met: 1.43.0 healthy since 2026-11-30T12:00:00Z (2h)\n\
             \x20 pay     0.20.0  staging -> prod  replaces 0.19.4  gate not met: pay 0.20.0 is progressing in `staging` (last observation: never)\n"
        );
    }
}
