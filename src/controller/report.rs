//! Commit statuses: after each sync of a commit, tell the Git host how each
//! environment fared, the way Flux's notification providers do. One status
//! per environment, with context `keelson/<env>`, so a commit page shows a
//! row per environment; a status is posted only when it differs from the
//! commit's latest one for that context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// What [`Reporter::post`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// A new status was created.
    Sent,
    /// The commit already has this state and description for the context.
    Unchanged,
}

/// (commit, context) → (state, description).
type Remembered = HashMap<(String, String), (String, String)>;

/// Statuses remembered per (commit, context), so retries post nothing new.
/// Bounded: it is a cache, the Git host's list is the truth.
const REMEMBERED: usize = 4096;

/// Posts commit statuses, each only when its state or description changed
/// for that commit and context, as Flux's notification-controller does:
/// GitHub keeps at most 1,000 statuses per commit and context, and a retry
/// loop must not fill them with copies.
#[derive(Debug, Clone)]
pub struct Reporter {
    config: ReporterConfig,
    client: reqwest::Client,
    /// (commit, context) → (state, description) last posted or found.
    last: Arc<Mutex<Remembered>>,
}

impl Reporter {
    /// A reporter for `config`.
    pub fn new(config: ReporterConfig) -> Reporter {
        let client = crate::http::client_builder()
            .user_agent(concat!("keelson/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Reporter {
            config,
            client,
            last: Arc::default(),
        }
    }

    /// The provider's state and the description for an outcome.
    fn state_of(&self, outcome: &Outcome) -> (&'static str, String) {
        let mut description = outcome.summary();
        if description.chars().count() > 140 {
            description = description.chars().take(137).collect::<String>() + "...";
        }
        let state = match (self.config.provider, outcome) {
            (_, Outcome::NoChange | Outcome::Applied { .. }) => "success",
            (Provider::GitHub, Outcome::Invalid { .. }) => "failure",
            (Provider::GitHub, _) => "error",
            (Provider::GitLab, _) => "failed",
        };
        (state, description)
    }

    /// Post the outcome of syncing `env` to `commit`, unless the commit
    /// already shows the same state and description for `keelson/<env>`:
    /// remembered from an earlier post, or else read from the host's list of
    /// the commit's statuses (which survives restarts). A failed list read
    /// does not block the post.
    pub async fn post(
        &self,
        commit: &str,
        env: &str,
        outcome: &Outcome,
    ) -> Result<Posted, ReportError> {
        let context = format!("keelson/{env}");
        let (state, description) = self.state_of(outcome);
        let key = (commit.to_string(), context.clone());
        let want = (state.to_string(), description.clone());
        let known = self.remembered(&key);
        let known = match known {
            Some(k) => Some(k),
            None => match self.latest(commit, &context).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot list the commit's statuses; posting");
                    None
                }
            },
        };
        if known.as_ref() == Some(&want) {
            self.remember(key, want);
            return Ok(Posted::Unchanged);
        }
        let base = self.config.api_url.trim_end_matches('/');
        let request = match self.config.provider {
            Provider::GitHub => {
                let url = format!("{base}/repos/{}/statuses/{commit}", self.config.repository);
                self.github(self.client.post(url))
                    .json(&json!({"state": state, "description": description, "context": context}))
            }
            Provider::GitLab => {
                let project = encode_component(&self.config.repository);
                let url = format!("{base}/projects/{project}/statuses/{commit}");
                self.client
                    .post(url)
                    .header("PRIVATE-TOKEN", self.config.token.expose())
                    .json(&json!({"state": state, "description": description, "name": context}))
            }
        };
        self.send(request).await?;
        self.remember(key, want);
        Ok(Posted::Sent)
    }

    fn remembered(&self, key: &(String, String)) -> Option<(String, String)> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn remember(&self, key: (String, String), value: (String, String)) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() >= REMEMBERED && !last.contains_key(&key) {
            last.clear();
        }
        last.insert(key, value);
    }

    fn github(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .bearer_auth(self.config.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// The newest status of `context` on `commit`, as (state, description):
    /// GitHub's `GET /repos/{repo}/commits/{sha}/statuses` (newest first),
    /// GitLab's `GET /projects/{id}/repository/commits/{sha}/statuses?name=`.
    async fn latest(
        &self,
        commit: &str,
        context: &str,
    ) -> Result<Option<(String, String)>, ReportError> {
        let base = self.config.api_url.trim_end_matches('/');
        let (request, name_field) = match self.config.provider {
            Provider::GitHub => {
                let url = format!(
                    "{base}/repos/{}/commits/{commit}/statuses?per_page=100",
                    self.config.repository
                );
                (self.github(self.client.get(url)), "context")
            }
            Provider::GitLab => {
                let project = encode_component(&self.config.repository);
                let url = format!(
                    "{base}/projects/{project}/repository/commits/{commit}/statuses?name={}",
                    encode_component(context)
                );
                let r = self
                    .client
                    .get(url)
                    .header("PRIVATE-TOKEN", self.config.token.expose());
                (r, "name")
            }
        };
        let response = self.send(request).await?;
        let list: Vec<serde_json::Value> =
            response.json().await.map_err(|e| ReportError::Send {
                url: base.to_string(),
                message: format!("unexpected statuses list: {e}"),
            })?;
        // The highest id is the newest, whatever order the host lists in.
        Ok(list
            .iter()
            .filter(|s| s[name_field] == context)
            .max_by_key(|s| s["id"].as_u64().unwrap_or(0))
            .map(|s| {
                let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                (field("state"), field("description"))
            }))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ReportError> {
        let base = self.config.api_url.trim_end_matches('/');
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
            return Ok(response);
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
