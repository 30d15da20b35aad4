//! The app × environment matrix: "which version of X runs in prod right now?"

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::EnvStatus;
use crate::apply::health::Health;

/// One cell: the version and health of an app in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Image tag.
    pub version: String,
    /// Health.
    pub health: Health,
}

/// One column header: an environment and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvColumn {
    /// Environment.
    pub env: String,
    /// Last applied commit (short), if any.
    pub commit: Option<String>,
    /// Result word of the last attempt (`applied`, `invalid`, ...).
    pub result: Option<String>,
    /// Objects drifted at the last check.
    pub drift: u64,
}

/// Apps as rows, environments as columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Matrix {
    /// Columns in name order, or in promotion order after
    /// [`Matrix::in_stage_order`].
    pub environments: Vec<EnvColumn>,
    /// App name → environment → cell.
    pub apps: BTreeMap<String, BTreeMap<String, Cell>>,
}

impl Matrix {
    /// Build the matrix from the status of every environment.
    pub fn from_status(all: &[EnvStatus]) -> Matrix {
        let mut m = Matrix::default();
        let mut sorted: Vec<&EnvStatus> = all.iter().collect();
        sorted.sort_by(|a, b| a.env.cmp(&b.env));
        for s in sorted {
            m.environments.push(EnvColumn {
                env: s.env.clone(),
                commit: s
                    .last_applied
                    .as_ref()
                    .map(|c| short(&c.commit).to_string()),
                result: s
                    .last_attempt
                    .as_ref()
                    .map(|a| a.outcome.word().to_string()),
                drift: s.drift,
            });
            for app in &s.apps {
                m.apps.entry(app.name.clone()).or_default().insert(
                    s.env.clone(),
                    Cell {
                        version: app.version.clone(),
                        health: app.health,
                    },
                );
            }
        }
        m
    }

    /// The columns in promotion order: the environments named in `stages`
    /// (`promotion.stages`, e.g. `[dev, staging, prod]`) first, in that
    /// order, then the others by name.
    pub fn in_stage_order(mut self, stages: &[String]) -> Matrix {
        let rank = |env: &str| stages.iter().position(|s| s == env).unwrap_or(stages.len());
        // Stable: the unstaged keep their name order.
        self.environments.sort_by_key(|c| rank(&c.env));
        self
    }

    /// A plain-text table, one row per app plus a commit and a result row.
    pub fn render(&self) -> String {
        self.render_table(true)
    }

    /// The table for versions declared in a repository: no health, and the
    /// result row says whether each environment's specs are valid.
    pub fn render_declared(&self) -> String {
        self.render_table(false)
    }

    fn render_table(&self, observed: bool) -> String {
        let mut header = vec!["APP".to_string()];
        header.extend(self.environments.iter().map(|e| e.env.to_uppercase()));
        let mut rows = vec![header];
        for (app, cells) in &self.apps {
            let mut row = vec![app.clone()];
            for col in &self.environments {
                row.push(match cells.get(&col.env) {
                    Some(c) if observed => format!("{} ({})", c.version, c.health.as_str()),
                    Some(c) => c.version.clone(),
                    None => "-".into(),
                });
            }
            rows.push(row);
        }
        let mut commit = vec!["(commit)".to_string()];
        commit.extend(
            self.environments
                .iter()
                .map(|e| e.commit.clone().unwrap_or_else(|| "-".into())),
        );
        rows.push(commit);
        let label = if observed { "(last result)" } else { "(specs)" };
        let mut result = vec![label.to_string()];
        result.extend(
            self.environments
                .iter()
                .map(|e| match (&e.result, e.drift) {
                    (Some(r), _) if !observed && r == "invalid" => r.clone(),
                    (Some(_), _) if !observed => "valid".into(),
                    (Some(r), 0) => r.clone(),
                    (Some(r), d) => format!("{r}, drift {d}"),
                    (None, _) => "pending".into(),
                }),
        );
        rows.push(result);
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        out
    }
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{AppStatus, Outcome};
    use crate::record::{Attempt, CommitRef, Trigger};

    #[test]
    fn answers_which_version_runs_where() {
        let env = |name: &str, tag: &str| EnvStatus {
            env: name.into(),
            last_applied: Some(CommitRef {
                commit: "0123456789abcdef".into(),
                at: "2026-01-01T00:00:00Z".into(),
            }),
            last_attempt: Some(Attempt {
                commit: "0123456789abcdef".into(),
                at: "2026-01-01T00:00:00Z".into(),
                trigger: Trigger::Commit,
                outcome: Outcome::NoChange,
            }),
            last_drift_check: None,
            drift: 0,
            apps_observed_at: None,
            apps: vec![AppStatus {
                name: "api".into(),
                version: tag.into(),
                health: Health::Healthy,
                healthy_since: None,
            }],
        };
        let m = Matrix::from_status(&[env("prod", "1.4.2"), env("dev", "1.5.0")]);
        let text = m.render();
        let api_line = text.lines().find(|l| l.starts_with("api")).unwrap();
        assert_eq!(api_line, "api            1.5.0 (healthy)  1.4.2 (healthy)");
        assert!(
            text.starts_with("APP            DEV              PROD\n"),
            "{text}"
        );
        assert!(text.contains("(commit)       0123456789ab"), "{text}");
    }

    #[test]
    fn stage_order_puts_promotion_stages_first() {
        let envs: Vec<EnvStatus> = ["prod", "preview-a", "dev", "staging"]
            .iter()
            .map(|n| EnvStatus {
                env: n.to_string(),
                ..EnvStatus::default()
            })
            .collect();
        let stages = ["dev", "staging", "prod"].map(String::from);
        let m = Matrix::from_status(&envs).in_stage_order(&stages);
        let order: Vec<&str> = m.environments.iter().map(|c| c.env.as_str()).collect();
        assert_eq!(order, ["dev", "staging", "prod", "preview-a"]);
        let m = Matrix::from_status(&envs).in_stage_order(&[]);
        let order: Vec<&str> = m.environments.iter().map(|c| c.env.as_str()).collect();
        assert_eq!(order, ["dev", "preview-a", "prod", "staging"]);
    }
}
