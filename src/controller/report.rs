//! Commit statuses: after each sync of a commit, tell the Git host how each
//! environment fared, the way Flux's notification providers do. One status
//! per environment, with context `keelson/<env>`, so a commit page shows a
//! row per environment.

use serde_json::json;

use super::Outcome;
use crate::source::Secret;

/// Which API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST /repos/{owner}/{repo}/statuses/{sha}`.
    GitHub,
    /// `POST /projects/{id}/statuses/{sha}`.
    GitLab,
}

impl Provider {
    /// The public API base URL.
    pub fn default_api_url(self) -> &'static str {
        match self {
            Provider::GitHub => "https://api.github.com",
            Provider::GitLab => "https://gitlab.com/api/v4",
        }
    }
}

/// Where and how to post statuses.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// GitHub or GitLab.
    pub provider: Provider,
    /// API base URL, without a trailing slash.
    pub api_url: String,
    /// `owner/name` (GitHub) or project id or path (GitLab).
    pub repository: String,
    /// API token.
    pub token: Secret,
}

/// A failed status post.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request could not be sent.
    #[error(
        "cannot post the commit status to {url}: {message}. Check commitStatus.apiUrl and the network"
    )]
    Send {
        /// Target URL.
        url: String,
        /// Cause.
        message: String,
    },
    /// The API refused it.
    #[error(
        "{url} refused the commit status with HTTP {status}: {body}. Check the token's permissions (repo:status / api)"
    )]
    Refused {
        /// Target URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the response body.
        body: String,
    },
}

/// Posts commit statuses.
#[derive(Debug, Clone)]
pub struct Reporter {
    config: ReporterConfig,
    client: reqwest::Client,
}

impl Reporter {
    /// A reporter for `config`.
    pub fn new(config: ReporterConfig) -> Reporter {
        let client = reqwest::Client::builder()
            .user_agent(concat!("keelson/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Reporter { config, client }
    }

    /// Post the outcome of syncing `env` to `commit`.
    pub async fn post(
        &self,
        commit: &str,
        env: &str,
        outcome: &Outcome,
    ) -> Result<(), ReportError> {
        let base = self.config.api_url.trim_end_matches('/');
        let context = format!("keelson/{env}");
        let mut description = outcome.summary();
        if description.chars().count() > 140 {
            description = description.chars().take(137).collect::<String>() + "...";
        }
        let request = match self.config.provider {
            Provider::GitHub => {
                let state = match outcome {
                    Outcome::NoChange | Outcome::Applied { .. } => "success",
                    Outcome::Invalid { .. } => "failure",
                    Outcome::Drift { .. } | Outcome::Failed { .. } => "error",
                };
                let url = format!("{base}/repos/{}/statuses/{commit}", self.config.repository);
                self.client
                    .post(url)
                    .bearer_auth(self.config.token.expose())
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .json(&json!({"state": state, "description": description, "context": context}))
            }
            Provider::GitLab => {
                let state = match outcome {
                    Outcome::NoChange | Outcome::Applied { .. } => "success",
                    _ => "failed",
                };
                let project = encode_component(&self.config.repository);
                let url = format!("{base}/projects/{project}/statuses/{commit}");
                self.client
                    .post(url)
                    .header("PRIVATE-TOKEN", self.config.token.expose())
                    .json(&json!({"state": state, "description": description, "name": context}))
            }
        };
        let request = request.build().map_err(|e| ReportError::Send {
            url: base.to_string(),
            message: e.to_string(),
        })?;
        let url = request.url().to_string();
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| ReportError::Send {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(ReportError::Refused {
            url,
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        })
    }
}

/// Percent-encode a path segment (GitLab wants `group%2Fproject`).
fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_gitlab_project_paths() {
        assert_eq!(
            super::encode_component("group/sub project"),
            "group%2Fsub%20project"
        );
        assert_eq!(super::encode_component("42"), "42");
    }
}
